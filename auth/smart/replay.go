package smart

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ReplayCache remembers the jti of every accepted client assertion until
// the assertion expires, so that none is accepted twice. Add must be
// atomic: of two concurrent Adds of one key, at most one reports fresh.
// MemoryReplayCache serves one process; gateway replicas need a shared one
// (e.g. Redis SET NX PX).
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
