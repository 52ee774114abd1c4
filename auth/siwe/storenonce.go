package siwe

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// NonceExtension names the store extension of StoreNonceStore.
const NonceExtension = "siwe-nonce"

// nonceSweepInterval is how often a StoreNonceStore deletes expired
// nonces (engines that honour Op.TTL forget them sooner by themselves).
const nonceSweepInterval = time.Minute

// nonceSweepBatch bounds the deletions of one commit.
const nonceSweepBatch = 512

// StoreNonceStore is a NonceStore in a store.Engine, so that every gateway
// replica on one shared store knows every nonce any of them issued, and a
// nonce is used once in all of them together: Consume is a conditional
// delete (the key must still hold the value read), so of concurrent
// consumers on any replicas exactly one commit applies.
//
// Each value is the nonce's expiry (8 bytes, Unix nanoseconds, big
// endian): an engine may ignore the Op.TTL given with it (Pebble does), so
// the expiry is judged from the value, never from the key's presence.
//
// Bounded like MemoryNonceStore: expired nonces are swept every
// nonceSweepInterval; when the outstanding nonces reach the maximum, a
// sweep (at most one a second) also drops the oldest outstanding ones
// down to three quarters of it. The count is this process's view (its
// last sweep plus its own Puts since), so several replicas together may
// overshoot the maximum by what they issue between sweeps.
type StoreNonceStore struct {
	e      store.Engine
	prefix []byte
	max    int

	mu        sync.Mutex
	live      int
	lastSweep time.Time
	sweeping  bool
}

// NewStoreNonceStore returns a nonce store in e for at most max
// outstanding nonces (DefaultMaxNonces if max <= 0).
func NewStoreNonceStore(e store.Engine, max int) *StoreNonceStore {
	if max <= 0 {
		max = DefaultMaxNonces
	}
	return &StoreNonceStore{e: e, prefix: store.ExtensionPrefix(NonceExtension), max: max}
}

func (s *StoreNonceStore) key(nonce string) []byte {
	return append(append(make([]byte, 0, len(s.prefix)+len(nonce)), s.prefix...), nonce...)
}

// Put implements NonceStore. The nonce must be new (they are 131 random
// bits): the commit requires the key absent rather than overwrite one.
func (s *StoreNonceStore) Put(ctx context.Context, nonce string, expires time.Time) error {
	now := time.Now()
	s.mu.Lock()
	due := !s.sweeping && (now.Sub(s.lastSweep) >= nonceSweepInterval || (s.live >= s.max && now.Sub(s.lastSweep) >= time.Second))
	if due {
		s.sweeping = true // one sweep at a time; other Puts do not wait for it
	}
	s.mu.Unlock()
	if due {
		live, err := s.sweep(ctx, now)
		s.mu.Lock()
		s.sweeping = false
		if err == nil {
			s.live, s.lastSweep = live, now
		}
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	k := s.key(nonce)
	var b store.Batch
	b.Require(k, nil)
	b.Ops = append(b.Ops, store.Op{
		Key:   k,
		Value: binary.BigEndian.AppendUint64(nil, uint64(expires.UnixNano())),
		TTL:   ttlUntil(expires, now),
	})
	if err := s.e.Apply(ctx, &b); err != nil {
		return fmt.Errorf("siwe: nonce store: %w", err)
	}
	s.mu.Lock()
	s.live++
	s.mu.Unlock()
	return nil
}

// ttlUntil is the engine's TTL hint for a key that expires at expires:
// a little beyond it, so that clock skew between replicas never lets the
// engine forget a key a replica still judges live (the value decides).
func ttlUntil(expires, now time.Time) time.Duration {
	return max(expires.Sub(now), 0) + time.Minute
}

// Consume implements NonceStore: a conditional delete of the value read.
// An expired nonce is deleted too, and refused.
func (s *StoreNonceStore) Consume(ctx context.Context, nonce string, now time.Time) (bool, error) {
	if !validNonce(nonce) {
		return false, nil // never issued; and keeps odd bytes out of keys
	}
	k := s.key(nonce)
	v, err := s.e.Get(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("siwe: nonce store: %w", err)
	}
	var b store.Batch
	b.Require(k, v)
	b.Delete(k)
	switch err := s.e.Apply(ctx, &b); {
	case errors.Is(err, store.ErrConflict):
		return false, nil // another request, here or on another replica, used it first
	case err != nil:
		return false, fmt.Errorf("siwe: nonce store: %w", err)
	}
	s.mu.Lock()
	s.live = max(s.live-1, 0)
	s.mu.Unlock()
	return len(v) == 8 && now.Before(time.Unix(0, int64(binary.BigEndian.Uint64(v)))), nil
}

// Len returns the outstanding nonces as this process counts them.
func (s *StoreNonceStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live
}

// sweep deletes the nonces expired at now and, when the rest reach the
// maximum, the oldest of them down to three quarters of it, and returns
// how many it left. Each deletion requires the value it read, so a nonce
// consumed meanwhile is not in the way and nothing else is touched.
func (s *StoreNonceStore) sweep(ctx context.Context, now time.Time) (int, error) {
	var drop, keep []sweepEntry
	err := s.e.Scan(ctx, store.PrefixRange(s.prefix), func(k, v []byte) bool {
		e := sweepEntry{k: bytes.Clone(k), v: bytes.Clone(v)}
		if len(v) == 8 {
			e.exp = int64(binary.BigEndian.Uint64(v))
		}
		if e.exp > now.UnixNano() {
			keep = append(keep, e)
		} else {
			drop = append(drop, e)
		}
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("siwe: nonce sweep: %w", err)
	}
	if len(keep) >= s.max {
		// The nonces issued first expire first: drop those.
		slices.SortFunc(keep, func(a, b sweepEntry) int { return cmp.Compare(a.exp, b.exp) })
		n := len(keep) - s.max*3/4
		drop, keep = append(drop, keep[:n]...), keep[n:]
	}
	for len(drop) > 0 {
		n := min(len(drop), nonceSweepBatch)
		if err := s.deleteUnchanged(ctx, drop[:n]); err != nil {
			return 0, fmt.Errorf("siwe: nonce sweep: %w", err)
		}
		drop = drop[n:]
	}
	return len(keep), nil
}

type sweepEntry struct {
	k, v []byte
	exp  int64
}

// deleteUnchanged deletes the entries that still hold the value read, in
// one commit. A conflict means some were consumed (or swept by another
// replica) meanwhile: those are read again and left out.
func (s *StoreNonceStore) deleteUnchanged(ctx context.Context, es []sweepEntry) error {
	for range 3 {
		if len(es) == 0 {
			return nil
		}
		var b store.Batch
		for _, e := range es {
			b.Require(e.k, e.v)
			b.Delete(e.k)
		}
		err := s.e.Apply(ctx, &b)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		still := es[:0]
		for _, e := range es {
			v, err := s.e.Get(ctx, e.k)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return err
			case bytes.Equal(v, e.v):
				still = append(still, e)
			}
		}
		es = still
	}
	return nil // still contended: the next sweep takes them
}
