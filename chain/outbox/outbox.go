// Package outbox makes the holder of a store lease the only sender of the
// gateway's Ethereum transactions among replicas that share one key and
// one store: a chain.Gate that records every signed transaction in the
// store, fenced by the lease, before the Sender broadcasts it.
//
// Why no two replicas ever use one nonce for different transactions: a
// transaction is broadcast only after its record committed under the
// lease's fence, so every broadcast transaction is in the store, and a
// replica that lost the lease cannot record (ErrConflict) and so cannot
// broadcast. A new holder resumes (chain.Sender re-reads its nonce at
// every change of lease token) at max(node's pending nonce, last
// recorded nonce + 1) and broadcasts the recorded transactions past the
// node's nonce again: those are the very transactions the old holder
// signed, so they cannot collide with anything.
package outbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/store"
)

// keep is how many nonces below the node's pending nonce stay recorded
// (a node that loses its pool after a restart gets them again).
const keep = 64

// Outbox is a chain.Gate over a store lease. Keys under
// store.ExtensionPrefix("outbox"): from(20) nonce(8) -> the signed
// transaction (binary encoding; the latest fee-bumped version).
type Outbox struct {
	e     store.Engine
	lease *store.Lease
	p     []byte
}

var _ chain.Gate = (*Outbox)(nil)

// New returns the outbox of account from, admitting while lease is held.
func New(e store.Engine, lease *store.Lease, from common.Address) *Outbox {
	return &Outbox{e: e, lease: lease, p: append(store.ExtensionPrefix("outbox"), from.Bytes()...)}
}

// Note is what TxRequest.Note returns for the outbox: writes committed in
// the same fenced commit as the transaction's record.
type Note func(b *store.Batch)

func (o *Outbox) key(nonce uint64) []byte {
	return binary.BigEndian.AppendUint64(bytes.Clone(o.p), nonce)
}

// Epoch implements chain.Gate: the lease's token (0 while not held).
func (o *Outbox) Epoch() uint64 { return o.lease.Token() }

// Admit implements chain.Gate.
func (o *Outbox) Admit(ctx context.Context, tx *types.Transaction, note any) error {
	if !o.lease.Held() {
		return store.ErrNotHeld
	}
	raw, err := tx.MarshalBinary()
	if err != nil {
		return err
	}
	var b store.Batch
	o.lease.Fence(&b)
	b.Set(o.key(tx.Nonce()), raw)
	switch n := note.(type) {
	case nil:
	case Note:
		n(&b)
	case func(*store.Batch):
		n(&b)
	default:
		return fmt.Errorf("outbox: note of type %T", note)
	}
	return o.e.Apply(ctx, &b)
}

// Resume implements chain.Gate.
func (o *Outbox) Resume(ctx context.Context, chainNonce uint64) ([]*types.Transaction, error) {
	var (
		out  []*types.Transaction
		old  [][]byte
		derr error
	)
	err := o.e.Scan(ctx, store.PrefixRange(o.p), func(k, v []byte) bool {
		n := binary.BigEndian.Uint64(k[len(o.p):])
		if n+keep < chainNonce {
			old = append(old, bytes.Clone(k))
			return true
		}
		if n < chainNonce {
			return true
		}
		tx := new(types.Transaction)
		if derr = tx.UnmarshalBinary(v); derr != nil {
			return false
		}
		out = append(out, tx)
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if len(old) > 0 && o.lease.Held() {
		var b store.Batch
		o.lease.Fence(&b)
		for _, k := range old {
			b.Delete(k)
		}
		_ = o.e.Apply(ctx, &b) // pruning only: the next resume tries again
	}
	return out, nil
}
