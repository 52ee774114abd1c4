package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fhirgate/fhirgate/store"
)

// KeyExtension names the store extension holding the signing key.
const KeyExtension = "auth-key"

// ErrKeyMismatch: the data directory's key file is not the signing key the
// store holds, so tokens minted from the file would be refused.
var ErrKeyMismatch = errors.New("auth: the key file is not the store's signing key")

func storedKeyName() []byte {
	return append(store.ExtensionPrefix(KeyExtension), "token-signing-key"...)
}

// LoadOrCreateStoredKey returns the token signing key kept in e, so that
// every gateway replica on one shared store signs and verifies with one
// key (and one issuer, derived from it). The first caller creates it with
// a conditional commit (the key absent): of replicas starting together,
// one commit applies and all read back the same key.
//
// dataDir, if not "", holds a key file (KeyFile) of an earlier version or
// of `gateway token`: when the store has no key yet, that file's key
// becomes the store's, so that tokens already issued stay valid. Then:
//
//   - On an engine one process opens (Pebble), the file is also kept
//     equal to the store's key: created if missing (as LoadOrCreateKey
//     does, and written back from the store if deleted), and a file
//     holding another key fails with ErrKeyMismatch. `gateway token`
//     reads it while the gateway holds the store open.
//   - On a shared engine (Redis) the store is the only copy: nothing is
//     written to the data directory (a replica's local scratch), and a
//     key file there is imported only into an empty store, else ignored.
func LoadOrCreateStoredKey(ctx context.Context, e store.Engine, dataDir string) (*Key, error) {
	name := storedKeyName()
	shared := store.IsShared(e)
	path := ""
	if dataDir != "" {
		path = filepath.Join(dataDir, KeyFile)
	}
	for range 4 {
		v, err := e.Get(ctx, name)
		if err == nil {
			key, err := parseKey(v, "the store's signing key")
			if err != nil {
				return nil, err
			}
			if path != "" && !shared {
				if err := mirrorKeyFile(path, key, v); err != nil {
					return nil, err
				}
			}
			return key, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("auth: read the signing key: %w", err)
		}
		pemBytes, err := candidateKey(dataDir, path, shared)
		if err != nil {
			return nil, err
		}
		var b store.Batch
		b.Require(name, nil)
		b.Set(name, pemBytes)
		err = e.Apply(ctx, &b)
		switch {
		case err == nil, errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrUnknownOutcome):
			// Read back what stands: ours, another replica's, or (after
			// a lost answer) whichever applied.
		default:
			return nil, fmt.Errorf("auth: store the signing key: %w", err)
		}
	}
	return nil, errors.New("auth: the signing key could not be stored")
}

// candidateKey is the key to offer an empty store: the data directory's
// (on a single-process engine created there first, so that the file and
// the store agree), else a new one.
func candidateKey(dataDir, path string, shared bool) ([]byte, error) {
	if path == "" {
		return generatePEM()
	}
	if !shared {
		if _, err := LoadOrCreateKey(dataDir); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && shared {
		return generatePEM()
	}
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if _, err := parseKey(b, path); err != nil {
		return nil, err
	}
	return b, nil
}

// mirrorKeyFile makes sure path holds key (pemBytes), writing it if the
// file is missing.
func mirrorKeyFile(path string, key *Key, pemBytes []byte) error {
	f, err := readKey(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := installKeyFile(path, pemBytes); err != nil {
			return err
		}
		f, err = readKey(path)
	}
	if err != nil {
		return err
	}
	if !f.priv.Equal(key.priv) {
		return fmt.Errorf("%w: %s holds key %s, the store %s (tokens from `gateway token` would be refused): move the file away and the gateway writes the store's key there",
			ErrKeyMismatch, path, f.ID, key.ID)
	}
	return nil
}
