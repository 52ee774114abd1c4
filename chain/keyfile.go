package chain

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
)

// ErrBadPassphrase means a keystore file could not be decrypted with the
// passphrase given.
var ErrBadPassphrase = errors.New("chain: keystore passphrase does not decrypt the key")

// LoadKeyFile decrypts an Ethereum keystore (Web3 Secret Storage v3) JSON
// file, as written by geth account new, Foundry's cast wallet or MetaMask
// exports.
func LoadKeyFile(path, passphrase string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chain: key file: %w", err)
	}
	key, err := keystore.DecryptKey(data, passphrase)
	if err != nil {
		if errors.Is(err, keystore.ErrDecrypt) {
			return nil, fmt.Errorf("%w (%s)", ErrBadPassphrase, path)
		}
		return nil, fmt.Errorf("chain: key file %s: %w", path, err)
	}
	return key.PrivateKey, nil
}

// Passphrase returns the keystore passphrase from the environment variable
// env if it is set, else from the first line of file (if file is not
// empty), as geth's --password does. Neither: the empty passphrase.
func Passphrase(env, file string) (string, error) {
	if env != "" {
		if v, ok := os.LookupEnv(env); ok {
			return v, nil
		}
	}
	if file == "" {
		return "", nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("chain: passphrase file: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimRight(line, "\r"), nil
}

// LoadOrCreateKeyFile returns the key in the keystore file at path,
// creating it on first use: a fresh random key, written as a Web3 Secret
// Storage v3 file with the empty passphrase (the file's protection is its
// mode, 0600, in a 0700 directory; geth, cast and MetaMask's JSON import
// read it as it is, and `gateway serve --eth-key-file` accepts it).
// created reports whether this call made the key. Two processes starting
// together agree on one key: the file is linked into place, which fails
// for the second.
func LoadOrCreateKeyFile(path string) (key *ecdsa.PrivateKey, created bool, err error) {
	if k, err := LoadKeyFile(path, ""); err == nil || !errors.Is(err, os.ErrNotExist) {
		return k, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("chain: key directory: %w", err)
	}
	priv, err := crypto.GenerateKey()
	if err != nil {
		return nil, false, err
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return nil, false, err
	}
	// Light scrypt: the passphrase is empty, so a costly KDF would guard
	// nothing and only slow every start.
	data, err := keystore.EncryptKey(&keystore.Key{Id: id, Address: crypto.PubkeyToAddress(priv.PublicKey), PrivateKey: priv},
		"", keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		return nil, false, err
	}
	tmp, err := os.CreateTemp(dir, ".eth-key-*") // mode 0600
	if err != nil {
		return nil, false, fmt.Errorf("chain: write key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("chain: write key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("chain: write key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, false, fmt.Errorf("chain: write key: %w", err)
	}
	won := true
	if err := os.Link(tmp.Name(), path); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return nil, false, fmt.Errorf("chain: install key: %w", err)
		}
		won = false
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() //nolint:errcheck // best effort: the key is on disk either way
		d.Close()
	}
	k, err := LoadKeyFile(path, "")
	return k, won && err == nil, err
}
