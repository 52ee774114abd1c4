package chain

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/store"
)

// devKeyName is where replicas on a shared store keep the gateway's key
// for a dev-genesis chain.
var devKeyName = append(store.ExtensionPrefix("chain"), "dev-key"...)

// LoadOrCreateDevKey returns the gateway's signing key on a chain that
// runs fhirgate's dev genesis, where no key file is given: on an engine
// one process opens, the keystore file at path (created on first use, as
// before); on a shared engine (several replicas) one key in the store,
// created by the first replica with a conditional write, so that every
// replica signs as the one account that owns the contracts. Only dev
// chains come here: their funds are play money, and the key in Redis is
// protected as the store is. Real networks take --eth-key-file, the same
// keystore mounted in every replica.
func LoadOrCreateDevKey(ctx context.Context, e store.Engine, path string) (*ecdsa.PrivateKey, error) {
	if !store.IsShared(e) {
		key, _, err := LoadOrCreateKeyFile(path)
		return key, err
	}
	for range 3 {
		b, err := e.Get(ctx, devKeyName)
		if err == nil {
			key, err := crypto.ToECDSA(b)
			if err != nil {
				return nil, fmt.Errorf("chain: the store's dev-chain key: %w", err)
			}
			return key, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("chain: read the dev-chain key: %w", err)
		}
		key, err := crypto.GenerateKey()
		if err != nil {
			return nil, err
		}
		var batch store.Batch
		batch.Require(devKeyName, nil)
		batch.Set(devKeyName, crypto.FromECDSA(key))
		switch err := e.Apply(ctx, &batch); {
		case err == nil:
			return key, nil
		case errors.Is(err, store.ErrConflict):
			continue // another replica made it first: read theirs
		default:
			return nil, fmt.Errorf("chain: store the dev-chain key: %w", err)
		}
	}
	return nil, errors.New("chain: the store's dev-chain key keeps changing")
}
