package chain_test

import (
	"context"
	"crypto/ecdsa"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/internal/enginetest"
	"github.com/fhirgate/fhirgate/store"
)

// Replicas starting together on a shared store sign as one account; a
// process alone on Pebble keeps its key file.
func TestDevKeySharedByReplicas(t *testing.T) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			keys := make([]*ecdsa.PrivateKey, 6)
			var wg sync.WaitGroup
			for i := range keys {
				wg.Add(1)
				e := b.Open(t)
				path := filepath.Join(t.TempDir(), "key.json") // each replica's own scratch
				go func() {
					defer wg.Done()
					k, err := chain.LoadOrCreateDevKey(ctx, e, path)
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
			shared := store.IsShared(b.Open(t))
			first := crypto.PubkeyToAddress(keys[0].PublicKey)
			for i, k := range keys[1:] {
				same := crypto.PubkeyToAddress(k.PublicKey) == first
				if shared && !same {
					t.Fatalf("replica %d signs as another account on a shared store", i+1)
				}
				if !shared && same {
					t.Fatalf("separate key files gave one key")
				}
			}
		})
	}
}
