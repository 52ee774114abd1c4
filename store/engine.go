// Package store keeps versioned FHIR resources: every version, a pointer to
// the current one, history in time order, search index entries, and (for
// the audit log) leaves appended in the same commit.
//
// The resource logic is written once, here, over Engine: an ordered
// key-value store with one atomic, durable, conditional batch commit. The
// backends (store/pebble for one process, store/redis for several replicas)
// implement only Engine, so versioning, history and search mean exactly the
// same on every backend; storetest is the suite each must pass.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrNotFound: no such key, resource or version.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a commit's precondition failed because another writer
	// changed the resource first.
	ErrConflict = errors.New("concurrent modification")
	// ErrVersionConflict: the caller's expected version (If-Match) is not
	// the current one.
	ErrVersionConflict = errors.New("version conflict")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("store closed")
	// ErrUnknownOutcome: a network engine lost its answer to a commit (a
	// timeout or a broken connection after the commit was sent): it may or
	// may not have applied. Callers must not retry it blindly (a retry could
	// append a second audit event or log leaf); they read back what they
	// wrote, or fail the request with 503 and let the client decide.
	ErrUnknownOutcome = errors.New("commit outcome unknown")
	// ErrUnavailable: the engine cannot be reached now (a network store
	// down or failing over). Nothing was written; the request answers 503.
	ErrUnavailable = errors.New("store unavailable")
	// ErrTooLarge: a batch exceeds the engine's Limits.
	ErrTooLarge = errors.New("batch too large")
)

// Engine is an ordered key-value store. Keys compare bytewise.
type Engine interface {
	// Get returns the value of key, or ErrNotFound. The caller owns the
	// returned slice.
	Get(ctx context.Context, key []byte) ([]byte, error)
	// Scan calls fn for each key in [r.Start, r.End) in order (descending
	// when r.Reverse), at most r.Limit keys when r.Limit > 0, until fn
	// returns false. The slices passed to fn are valid only during the call.
	Scan(ctx context.Context, r Range, fn func(key, value []byte) bool) error
	// Apply commits b atomically and durably: when it returns nil every
	// operation is on stable storage (fsync, or AOF with appendfsync), and
	// no reader ever sees part of b. If any condition fails nothing is
	// written and the error is ErrConflict. b's Checks are read at the
	// same instant, and Apply sets b.Stale.
	Apply(ctx context.Context, b *Batch) error
	// Close releases the engine.
	Close() error
}

// MultiGetter is implemented by engines that read many keys in one step
// (store/redis: one MGET instead of a round trip per key). The store uses
// it where it reads many keys at once (a search's candidates, a page's
// resources); other engines are read one Get at a time (see GetMany).
type MultiGetter interface {
	// GetMany returns the values of keys, in order: nil for an absent
	// key, a non-nil (possibly empty) slice for a present one. The caller
	// owns the returned slices.
	GetMany(ctx context.Context, keys [][]byte) ([][]byte, error)
}

// GetMany reads keys with e's GetMany, or one Get at a time when e has
// none: nil for an absent key, in the order of keys.
func GetMany(ctx context.Context, e Engine, keys [][]byte) ([][]byte, error) {
	if m, ok := e.(MultiGetter); ok {
		return m.GetMany(ctx, keys)
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := e.Get(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return nil, err
		default:
			if v == nil {
				v = []byte{}
			}
			out[i] = v
		}
	}
	return out, nil
}

// Limits are what an engine accepts in one Apply. A Batch beyond them
// fails with ErrTooLarge before anything is sent. Engines that have
// limits implement Limited; zero fields mean no limit.
type Limits struct {
	MaxOps   int // len(Conds) + len(Ops) + len(Appends) + len(Checks)
	MaxBytes int // sum of keys and values
}

// Limited is implemented by engines with batch limits.
type Limited interface{ Limits() Limits }

// Shared is implemented by engines that several processes open at once
// (store/redis): then another process may commit at any time, so nothing
// read from the engine may be kept in a process's memory as current
// unless it is immutable (a version by id and version number).
type Shared interface{ Shared() bool }

// IsShared reports whether e is opened by several processes at once.
func IsShared(e Engine) bool {
	s, ok := e.(Shared)
	return ok && s.Shared()
}

// Range selects keys Start <= k < End. A nil End means no upper bound.
type Range struct {
	Start, End []byte
	Reverse    bool
	Limit      int
}

// PrefixRange is the range of all keys that start with p.
func PrefixRange(p []byte) Range {
	return Range{Start: p, End: PrefixEnd(p)}
}

// PrefixEnd returns the smallest key greater than every key with prefix p,
// or nil when there is none.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Batch is a set of writes applied atomically, guarded by conditions.
type Batch struct {
	// Conds must all hold when the batch applies.
	Conds []Cond
	// Ops are applied in order.
	Ops []Op
	// Appends are appended to the engine's single ordered log, in order,
	// with indexes assigned contiguously at commit (no gaps, even under
	// concurrency). Each assigned index is also stored, 8 bytes big-endian,
	// under the append's IndexKey.
	Appends []Append
	// Checks are read atomically with the commit (before its Ops) and
	// never make it fail: when Apply returns nil, Stale holds the indexes
	// (in order) of the checks that did not hold then. A reader that
	// answered from a value it kept in memory proves with them, in the
	// commit it makes anyway (the request's audit event), that the value
	// was still current at a moment after the request began (see
	// Store.Read and ReadSet).
	Checks []Cond
	Stale  []int
}

// Cond requires the value of Key to equal Value, or Key to be absent when
// Absent is set.
type Cond struct {
	Key    []byte
	Value  []byte
	Absent bool
}

// Op writes Value under Key, or deletes Key when Delete is set.
//
// TTL, when positive, lets the engine forget the key that long after the
// commit (Redis PEXPIRE): for single-use things such as sign-in nonces
// and replay caches. It is a hint for reclaiming space, not a clock:
// engines may ignore it (Pebble does) and keep the key for ever, so the
// value itself must say when it expires and readers must check it.
type Op struct {
	Key    []byte
	Value  []byte
	Delete bool
	TTL    time.Duration
}

// Append is one log entry.
type Append struct {
	Data     []byte
	IndexKey []byte
}

// Set adds a write.
func (b *Batch) Set(key, value []byte) { b.Ops = append(b.Ops, Op{Key: key, Value: value}) }

// Delete adds a deletion.
func (b *Batch) Delete(key []byte) { b.Ops = append(b.Ops, Op{Key: key, Delete: true}) }

// Require adds a condition that key holds value (nil value: key absent).
func (b *Batch) Require(key, value []byte) {
	b.Conds = append(b.Conds, Cond{Key: key, Value: value, Absent: value == nil})
}
