package smart

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// ReplayCache remembers the jti of every accepted client assertion until
// the assertion expires, so that none is accepted twice. Add must be
// atomic: of two concurrent Adds of one key, at most one reports fresh.
// StoreReplayCache keeps them in the store (durable across restarts, and
// shared by replicas on one store); MemoryReplayCache forgets them when
// the process ends, which reopens their window.
type ReplayCache interface {
	// Add records key until expires and reports whether it was new (not
	// recorded, or recorded but expired at now).
	Add(ctx context.Context, key string, expires, now time.Time) (fresh bool, err error)
}

// ErrReplayCacheFull: the cache holds its maximum of unexpired entries.
// Only authenticated clients add entries, so this takes a registered
// client minting assertions at a furious rate; the token request fails
// (as a server error) rather than forgetting a jti that could then be
// replayed.
var ErrReplayCacheFull = errors.New("smart: replay cache is full")

// DefaultMaxReplayEntries bounds a MemoryReplayCache.
const DefaultMaxReplayEntries = 100_000

// MemoryReplayCache is an in-process ReplayCache of bounded size.
type MemoryReplayCache struct {
	mu   sync.Mutex
	max  int
	seen map[string]time.Time
}

// NewMemoryReplayCache returns a cache for at most max unexpired entries
// (DefaultMaxReplayEntries if max <= 0).
func NewMemoryReplayCache(max int) *MemoryReplayCache {
	if max <= 0 {
		max = DefaultMaxReplayEntries
	}
	return &MemoryReplayCache{max: max, seen: make(map[string]time.Time)}
}

// Add implements ReplayCache.
func (c *MemoryReplayCache) Add(_ context.Context, key string, expires, now time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.seen[key]; ok && now.Before(exp) {
		return false, nil
	}
	if len(c.seen) >= c.max {
		for k, exp := range c.seen {
			if !now.Before(exp) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= c.max {
			return false, ErrReplayCacheFull
		}
	}
	c.seen[key] = expires
	return true, nil
}

// Len returns the number of entries (expired ones included until swept).
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// StoreReplayCache is a ReplayCache in a store.Engine, under its own
// extension prefix: an accepted jti is written durably (the engine's
// commit is fsynced) before its token is issued, so a restart does not
// reopen an assertion's window, and replicas sharing the store share the
// cache. Add is a conditional commit (the key absent, or holding the
// expired entry it read), so of two replicas adding one jti at once only
// one succeeds; nothing about a jti is decided from this process's memory
// (the count below only bounds the cache). Keys carry Op.TTL, so Redis
// forgets them by itself after their expiry.
//
// Bounded: entries live until their expiry (an assertion's exp, at most
// MaxAssertionLifetime ahead, plus the leeway) and are swept every
// SweepInterval and whenever the count reaches the maximum; beyond the
// maximum of unexpired entries Add fails with ErrReplayCacheFull.
type StoreReplayCache struct {
	e      store.Engine
	prefix []byte
	max    int

	mu        sync.Mutex
	live      int // entries in the store as of the last sweep, plus adds since
	lastSweep time.Time
}

// ReplayExtension names the store extension of StoreReplayCache.
const ReplayExtension = "smart-jti"

// SweepInterval is how often a StoreReplayCache deletes expired entries.
const SweepInterval = time.Minute

// sweepBatch bounds the deletions of one commit.
const sweepBatch = 512

// NewStoreReplayCache returns a replay cache in e for at most max
// unexpired entries (DefaultMaxReplayEntries if max <= 0). It sweeps the
// expired entries a previous run left.
func NewStoreReplayCache(ctx context.Context, e store.Engine, max int) (*StoreReplayCache, error) {
	if max <= 0 {
		max = DefaultMaxReplayEntries
	}
	c := &StoreReplayCache{e: e, prefix: store.ExtensionPrefix(ReplayExtension), max: max}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.sweep(ctx, time.Now()); err != nil {
		return nil, err
	}
	return c, nil
}

// Add implements ReplayCache.
func (c *StoreReplayCache) Add(ctx context.Context, key string, expires, now time.Time) (bool, error) {
	c.mu.Lock()
	if c.live >= c.max || now.Sub(c.lastSweep) >= SweepInterval {
		if err := c.sweep(ctx, now); err != nil {
			c.mu.Unlock()
			return false, err
		}
	}
	full := c.live >= c.max
	c.mu.Unlock()
	if full {
		return false, ErrReplayCacheFull
	}
	// The commit is conditional: concurrent Adds (of this process or
	// another replica) need no lock, and share the engine's group commit.
	k := append(append([]byte(nil), c.prefix...), key...)
	val := binary.BigEndian.AppendUint64(nil, uint64(expires.UnixNano()))
	for attempt := 0; attempt < 4; attempt++ {
		old, err := c.e.Get(ctx, k)
		switch {
		case errors.Is(err, store.ErrNotFound):
			old = nil
		case err != nil:
			return false, fmt.Errorf("smart: replay cache: %w", err)
		case len(old) == 8 && now.Before(time.Unix(0, int64(binary.BigEndian.Uint64(old)))):
			return false, nil // seen, not expired
		}
		var b store.Batch
		b.Require(k, old)
		// The engine may forget the key a little after it expires (a hint:
		// the value's expiry is what Add judges by).
		b.Ops = append(b.Ops, store.Op{Key: k, Value: val, TTL: max(expires.Sub(now), 0) + time.Minute})
		err = c.e.Apply(ctx, &b)
		if errors.Is(err, store.ErrConflict) {
			continue // another replica wrote it meanwhile: read again
		}
		if err != nil {
			return false, fmt.Errorf("smart: replay cache: %w", err)
		}
		if old == nil {
			c.mu.Lock()
			c.live++
			c.mu.Unlock()
		}
		return true, nil
	}
	return false, fmt.Errorf("smart: replay cache: %w", store.ErrConflict)
}

// sweep deletes the entries expired at now and counts the others (c.mu
// held: one sweep at a time). An entry rewritten meanwhile (by an Add, here
// or in another replica) is left alone; the count may miss Adds in flight.
func (c *StoreReplayCache) sweep(ctx context.Context, now time.Time) error {
	type entry struct{ k, v []byte }
	var expired []entry
	live := 0
	err := c.e.Scan(ctx, store.PrefixRange(c.prefix), func(k, v []byte) bool {
		if len(v) == 8 && now.Before(time.Unix(0, int64(binary.BigEndian.Uint64(v)))) {
			live++
		} else {
			expired = append(expired, entry{bytes.Clone(k), bytes.Clone(v)})
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("smart: replay cache sweep: %w", err)
	}
	for len(expired) > 0 {
		n := min(len(expired), sweepBatch)
		chunk := expired[:n]
		expired = expired[n:]
		var b store.Batch
		for _, e := range chunk {
			b.Require(e.k, e.v)
			b.Delete(e.k)
		}
		err := c.e.Apply(ctx, &b)
		if errors.Is(err, store.ErrConflict) {
			// One was rewritten: delete the others one by one.
			for _, e := range chunk {
				var b store.Batch
				b.Require(e.k, e.v)
				b.Delete(e.k)
				if err := c.e.Apply(ctx, &b); errors.Is(err, store.ErrConflict) {
					live++ // rewritten by a fresh Add
				} else if err != nil {
					return fmt.Errorf("smart: replay cache sweep: %w", err)
				}
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("smart: replay cache sweep: %w", err)
		}
	}
	c.live, c.lastSweep = live, now
	return nil
}

// Len returns the number of entries as of the last sweep plus the adds
// since (expired ones included until swept).
func (c *StoreReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}
