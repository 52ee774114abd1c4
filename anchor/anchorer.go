package anchor

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
)

// Anchorer is the chain side of anchoring: an AuditAnchor contract on some
// chain, reached through some client. anchor/ethanchor implements it on
// go-ethereum; tests use an in-memory chain. Every method may fail with a
// transient error while the chain is unreachable; the Log keeps its queue
// and tries again.
type Anchorer interface {
	// Chain names the chain and the contract checkpoints go to.
	Chain() ChainRef
	// State reads the canonical head and the contract's latest()
	// checkpoint at that head.
	State(ctx context.Context) (ChainState, error)
	// Submit sends anchor(TreeSize, Root, Proof) and returns once the
	// transaction is broadcast. The Anchorer keeps it moving afterwards
	// (fee bumps, rebroadcast) and calls req.Done once with the outcome
	// it saw (nil: mined and succeeded; an error wrapping ErrReverted: mined
	// and reverted; another error: it gave up). The Log does not rely on
	// Done for truth (that comes from Anchorings and State); Done only
	// makes it react sooner. Submitting a tree size again is how the Log
	// re-anchors after a reorg or a revert.
	Submit(ctx context.Context, req AnchorRequest) (TxRef, error)
	// Anchorings returns the checkpoints anchored in canonical blocks
	// from..to (inclusive), in chain order.
	Anchorings(ctx context.Context, from, to uint64) ([]Anchoring, error)
	// Find returns the canonical anchoring of treeSize, if there is one
	// (searching the whole chain; slower than Anchorings).
	Find(ctx context.Context, treeSize uint64) (Anchoring, bool, error)
	// RootAt returns the root the contract holds for treeSize at the
	// latest block, and false if that size was never anchored.
	RootAt(ctx context.Context, treeSize uint64) (Hash, bool, error)
}

// ErrReverted: an anchoring transaction was mined and failed. Anchorers
// wrap it in the error they pass to AnchorRequest.Done.
var ErrReverted = errors.New("anchor: anchoring transaction reverted")

// ChainRef names where checkpoints are anchored.
type ChainRef struct {
	ChainID  uint64 `json:"chainId"`
	Contract string `json:"contract"` // 0x-prefixed address as the chain shows it
}

// key is the 8-byte tag under which this chain's checkpoint records are
// kept, so that pointing the gateway at another contract starts a fresh
// queue (the new contract starts empty) without mixing records.
func (r ChainRef) key() [8]byte {
	s := sha256.Sum256(fmt.Appendf(nil, "%d:%s", r.ChainID, strings.ToLower(r.Contract)))
	return [8]byte(s[:8])
}

// ChainState is what the chain says now.
type ChainState struct {
	Head     uint64 // canonical head block number
	TreeSize uint64 // AuditAnchor.latest(): 0 before the first checkpoint
	Root     Hash
}

// AnchorRequest is one anchor(treeSize, root, consistencyProof) call.
type AnchorRequest struct {
	TreeSize uint64
	Root     Hash
	// PrevSize is the latest checkpoint the contract will hold when this
	// transaction runs (0: none); Proof is the consistency proof from it.
	PrevSize uint64
	Proof    []Hash
	// Done, if set, is called once with the transaction's outcome (see
	// Anchorer.Submit). It must not block.
	Done func(TxRef, error)
}

// TxRef identifies a sent anchoring transaction.
type TxRef struct {
	Hash  Hash
	Nonce uint64
}

// Anchoring is a checkpoint found in a block of the canonical chain.
type Anchoring struct {
	TreeSize    uint64
	Root        Hash
	TxHash      Hash
	BlockNumber uint64
	BlockHash   Hash
}
