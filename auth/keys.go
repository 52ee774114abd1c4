// Package auth is the gateway's authorization server side: the signing key
// kept in the store (one for every replica: LoadOrCreateStoredKey), and the
// short-lived access tokens it issues and verifies. Tokens of people carry
// their resource binding (fhirUser, SMART patient context) and wallet: see
// Identity. The ways in are subpackages: auth/smart (SMART Backend
// Services, client_credentials with a JWT assertion) and auth/siwe
// (Sign-In With Ethereum).
package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// KeyFile is where the signing key lives, relative to the data directory.
const KeyFile = "keys/token-signing-key.pem"

// Key is the gateway's token signing key.
type Key struct {
	priv *ecdsa.PrivateKey
	// ID is a stable name for the key (a thumbprint of its public half).
	ID string
	// Issuer names this gateway in the tokens it issues; it is also the
	// audience of tokens minted for it by `gateway token`.
	Issuer string
}

// LoadOrCreateKey reads the signing key from dataDir, creating it on first
// use. Concurrent callers (serve and token started together) agree on one
// key: it is written to a temporary file and linked into place, which
// fails if another process got there first.
func LoadOrCreateKey(dataDir string) (*Key, error) {
	path := filepath.Join(dataDir, KeyFile)
	if k, err := readKey(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	pemBytes, err := generatePEM()
	if err != nil {
		return nil, err
	}
	if err := installKeyFile(path, pemBytes); err != nil {
		return nil, err
	}
	return readKey(path)
}

// generatePEM returns a new P-256 key as a PKCS #8 PEM block.
func generatePEM() ([]byte, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// installKeyFile writes pemBytes to path unless a file is there already:
// written to a temporary file, synced and linked into place, which fails
// if another process got there first (its key then stands).
func installKeyFile(path string, pemBytes []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("auth: key directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return fmt.Errorf("auth: write key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(pemBytes); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: write key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: write key: %w", err)
	}
	tmp.Close()
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("auth: install key: %w", err)
	}
	return nil
}

func readKey(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseKey(b, path)
}

// parseKey reads a PEM key; name says where it came from, for errors.
func parseKey(b []byte, name string) (*Key, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("auth: %s is not a PEM key", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: %s: %w", name, err)
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("auth: %s is not a P-256 key", name)
	}
	return newKey(priv)
}

func newKey(priv *ecdsa.PrivateKey) (*Key, error) {
	spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(spki)
	id := base64.RawURLEncoding.EncodeToString(sum[:12])
	return &Key{priv: priv, ID: id, Issuer: "urn:fhirgate:" + id}, nil
}
