package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/enginetest"
)

// Assumption 8 of issue 15: replicas rejected each other's tokens (a key
// per data directory). With the key in the shared store, replicas starting
// together end with one key, and a token minted by one is accepted by the
// other.
func TestStoredKeySharedByReplicas(t *testing.T) {
	for _, be := range enginetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			ctx := context.Background()
			a, b := be.Open(t), be.Open(t)
			keys := make([]*Key, 8)
			var wg sync.WaitGroup
			for i := range keys {
				e := a
				if i%2 == 1 {
					e = b
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					k, err := LoadOrCreateStoredKey(ctx, e, "")
					if err != nil {
						t.Error(err)
						return
					}
					keys[i] = k
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			for _, k := range keys {
				if k.ID != keys[0].ID || k.Issuer != keys[0].Issuer {
					t.Fatalf("replicas got different keys: %s and %s", keys[0].ID, k.ID)
				}
			}
			tok, err := keys[0].Mint(Grant{Scope: "system/*.rs", TTL: time.Hour}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := NewVerifier(keys[1]).Verify(tok); err != nil {
				t.Fatalf("a token minted on replica A, on replica B: %v", err)
			}
			// Control: a key of its own (what a data directory gave each
			// replica before) refuses it.
			own, err := LoadOrCreateKey(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := NewVerifier(own).Verify(tok); !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("another key accepted the token: %v", err)
			}
		})
	}
}

// A data directory's key file is imported into an empty store (tokens
// issued before stay valid). On Pebble the file then mirrors the store's
// key (`gateway token` reads it while the gateway holds the store); on
// Redis nothing is written to the data directory.
func TestStoredKeyImport(t *testing.T) {
	for _, be := range enginetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			ctx := context.Background()
			e := be.Open(t)
			shared := be.Name != "pebble"
			dir := t.TempDir()
			old, err := LoadOrCreateKey(dir)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := old.Mint(Grant{Scope: "system/*.rs", TTL: time.Hour}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			k, err := LoadOrCreateStoredKey(ctx, e, dir)
			if err != nil {
				t.Fatal(err)
			}
			if k.ID != old.ID {
				t.Fatalf("store key %s, the data directory's %s: not imported", k.ID, old.ID)
			}
			if _, err := NewVerifier(k).Verify(tok); err != nil {
				t.Fatalf("a token of the imported key: %v", err)
			}

			// Another data directory on the same store.
			fresh := t.TempDir()
			k2, err := LoadOrCreateStoredKey(ctx, e, fresh)
			if err != nil || k2.ID != k.ID {
				t.Fatalf("second data directory: %v, %v", k2, err)
			}
			f, err := readKey(filepath.Join(fresh, KeyFile))
			switch {
			case shared && !errors.Is(err, os.ErrNotExist):
				t.Fatalf("a shared store's key was written to a data directory: %v", err)
			case !shared && (err != nil || f.ID != k.ID):
				t.Fatalf("key file not written back from the store: %v, %v", f, err)
			}

			// A data directory holding another key.
			other := t.TempDir()
			o, err := LoadOrCreateKey(other)
			if err != nil {
				t.Fatal(err)
			}
			k3, err := LoadOrCreateStoredKey(ctx, e, other)
			if shared {
				if err != nil || k3.ID != k.ID {
					t.Fatalf("shared store with a stale key file: %v, %v", k3, err)
				}
			} else if !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("a key file differing from the store's: %v, want ErrKeyMismatch", err)
			}
			if f, err := readKey(filepath.Join(other, KeyFile)); err != nil || f.ID != o.ID {
				t.Fatalf("the other key file was changed: %v, %v", f, err)
			}
		})
	}
}
