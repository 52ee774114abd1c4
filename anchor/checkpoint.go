package anchor

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// CheckpointState is where a checkpoint is in the anchor queue.
type CheckpointState string

// The states of the anchor queue. A checkpoint goes pending → submitted →
// confirmed; a revert, a dropped transaction or a reorg sends it back to
// pending (and it is anchored again), and a confirmed checkpoint becomes
// Final once its block is ReorgDepth deep.
const (
	// StatePending: cut, durable, not sent (or to be sent again).
	StatePending CheckpointState = "pending"
	// StateSubmitted: an anchoring transaction was broadcast.
	StateSubmitted CheckpointState = "submitted"
	// StateConfirmed: anchored in a canonical block with enough
	// confirmations. Proofs use only confirmed checkpoints.
	StateConfirmed CheckpointState = "confirmed"
	// StateSuperseded: the contract moved past this size without it
	// (only possible if something else anchors to the same contract);
	// later checkpoints cover its leaves.
	StateSuperseded CheckpointState = "superseded"
)

// Checkpoint is one record of the durable anchor queue, and the JSON of
// GET /anchor/checkpoints.
type Checkpoint struct {
	TreeSize uint64          `json:"treeSize"`
	Root     Hash            `json:"root"`
	ChainID  uint64          `json:"chainId"`
	Contract string          `json:"contract"`
	State    CheckpointState `json:"state"`
	// Final: confirmed and at least ReorgDepth blocks deep.
	Final bool `json:"final,omitzero"`
	// The latest anchoring transaction sent (submitted) or the one that
	// anchored it (confirmed).
	TxHash Hash   `json:"txHash,omitzero"`
	Nonce  uint64 `json:"nonce,omitzero"`
	// PrevSize is the checkpoint the last submission's consistency proof
	// started from.
	PrevSize    uint64 `json:"prevSize,omitzero"`
	BlockNumber uint64 `json:"blockNumber,omitzero"`
	BlockHash   Hash   `json:"blockHash,omitzero"`
	// Cut: when the checkpoint was taken; Submitted: last broadcast;
	// Confirmed: when the gateway saw it confirmed.
	Cut       time.Time `json:"cut"`
	Submitted time.Time `json:"submitted,omitzero"`
	Confirmed time.Time `json:"confirmed,omitzero"`
	Attempts  int       `json:"attempts,omitzero"` // submissions so far
	Reorgs    int       `json:"reorgs,omitzero"`   // times a reorg undid it
}

// Anchored reports whether proofs may use the checkpoint.
func (c *Checkpoint) Anchored() bool { return c.State == StateConfirmed }

func (l *Log) putCheckpoint(ctx context.Context, c *Checkpoint) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	var b store.Batch
	l.fence(&b)
	b.Set(l.k.cpKey(l.ref.key(), c.TreeSize), v)
	return l.apply(ctx, &b)
}

func decodeCheckpoint(v []byte) (*Checkpoint, error) {
	var c Checkpoint
	if err := json.Unmarshal(v, &c); err != nil {
		return nil, fmt.Errorf("anchor: corrupt checkpoint record: %w", err)
	}
	return &c, nil
}

// scanCheckpoints calls fn for the records of the current chain with
// treeSize >= from (descending from treeSize <= from when reverse), until
// fn returns false.
func (l *Log) scanCheckpoints(ctx context.Context, from uint64, reverse bool, fn func(*Checkpoint) bool) error {
	p := l.k.cpPrefix(l.ref.key())
	r := store.Range{Start: binary.BigEndian.AppendUint64(append([]byte(nil), p...), from), End: store.PrefixEnd(p)}
	if reverse {
		r = store.Range{Start: p, End: binary.BigEndian.AppendUint64(append([]byte(nil), p...), from+1), Reverse: true}
		if from == ^uint64(0) {
			r.End = store.PrefixEnd(p)
		}
	}
	var derr error
	err := l.e.Scan(ctx, r, func(_, v []byte) bool {
		c, err := decodeCheckpoint(v)
		if err != nil {
			derr = err
			return false
		}
		return fn(c)
	})
	if err == nil {
		err = derr
	}
	return err
}

// CheckpointQuery selects checkpoints for Checkpoints.
type CheckpointQuery struct {
	// After: only tree sizes > After (for paging: pass the last size of
	// the previous page).
	After uint64
	// Before, when set, lists newest first: only tree sizes < Before
	// (pass the last size of the previous page; ^uint64(0) for the
	// newest). After is then ignored.
	Before uint64
	// Limit: at most this many (0: 100).
	Limit int
	// All: every record of the queue (pending, submitted, superseded
	// too); by default only anchored (confirmed) checkpoints.
	All bool
}

// Checkpoints lists checkpoints of the current chain and contract in
// tree-size order: GET /anchor/checkpoints.
func (l *Log) Checkpoints(ctx context.Context, q CheckpointQuery) ([]Checkpoint, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	out := []Checkpoint{}
	keep := func(c *Checkpoint) bool {
		if q.All || c.Anchored() {
			out = append(out, *c)
		}
		return len(out) < q.Limit
	}
	if q.Before != 0 {
		from := q.Before
		if from != ^uint64(0) {
			from-- // sizes < Before
		}
		return out, l.scanCheckpoints(ctx, from, true, keep)
	}
	if q.After == ^uint64(0) {
		return out, nil
	}
	err := l.scanCheckpoints(ctx, q.After+1, false, func(c *Checkpoint) bool {
		if q.All || c.Anchored() {
			out = append(out, *c)
		}
		return len(out) < q.Limit
	})
	return out, err
}

// anchoredCovering returns the first anchored checkpoint whose tree
// contains leaf index (treeSize > index), or nil.
func (l *Log) anchoredCovering(ctx context.Context, index uint64) (*Checkpoint, error) {
	var found *Checkpoint
	if index == ^uint64(0) {
		return nil, nil
	}
	err := l.scanCheckpoints(ctx, index+1, false, func(c *Checkpoint) bool {
		if c.Anchored() {
			found = c
			return false
		}
		return true
	})
	return found, err
}

// checkpointAt returns the record for treeSize, or nil.
func (l *Log) checkpointAt(ctx context.Context, size uint64) (*Checkpoint, error) {
	v, err := l.e.Get(ctx, l.k.cpKey(l.ref.key(), size))
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return decodeCheckpoint(v)
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
