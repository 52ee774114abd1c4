package siwe

import (
	"context"
	"crypto/rand"
	"sync"
	"time"
)

// NonceStore remembers the nonces the gateway has issued until each is
// used once or expires. Implementations must make Consume atomic: of two
// concurrent Consume calls for one nonce, at most one reports true.
// MemoryNonceStore serves one process; StoreNonceStore, in the store that
// gateway replicas behind a load balancer share, serves them all.
type NonceStore interface {
	// Put records a newly issued nonce, valid until expires.
	Put(ctx context.Context, nonce string, expires time.Time) error
	// Consume removes the nonce and reports whether it was issued and
	// had not expired at now.
	Consume(ctx context.Context, nonce string, now time.Time) (bool, error)
}

// Defaults for nonces.
const (
	DefaultNonceTTL  = 5 * time.Minute
	DefaultMaxNonces = 100_000
	nonceLen         = 22 // 22 base-62 characters: 131 bits
)

// MemoryNonceStore is an in-process NonceStore holding at most a fixed
// number of outstanding nonces. When full, it first drops expired nonces
// and then the oldest outstanding one: a flood of nonce requests can make
// a slow sign-in start over, but can neither grow memory without bound nor
// stop fresh sign-ins (rate limiting belongs in front of it).
type MemoryNonceStore struct {
	mu    sync.Mutex
	max   int
	live  map[string]time.Time
	order []queued // issue order; entries already consumed are skipped
	head  int
}

type queued struct {
	nonce   string
	expires time.Time
}

// NewMemoryNonceStore returns a store for at most max outstanding nonces
// (DefaultMaxNonces if max <= 0).
func NewMemoryNonceStore(max int) *MemoryNonceStore {
	if max <= 0 {
		max = DefaultMaxNonces
	}
	return &MemoryNonceStore{max: max, live: make(map[string]time.Time)}
}

// Put implements NonceStore.
func (s *MemoryNonceStore) Put(_ context.Context, nonce string, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.live) >= s.max && s.evictHead() {
	}
	s.order = append(s.order, queued{nonce, expires})
	s.live[nonce] = expires
	s.compact()
	return nil
}

// Consume implements NonceStore.
func (s *MemoryNonceStore) Consume(_ context.Context, nonce string, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.live[nonce]
	if !ok {
		return false, nil
	}
	delete(s.live, nonce)
	return now.Before(exp), nil
}

// Len returns the number of outstanding nonces (expired ones included
// until they are dropped).
func (s *MemoryNonceStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// evictHead drops the oldest queued nonce still outstanding, reporting
// whether there was one.
func (s *MemoryNonceStore) evictHead() bool {
	for s.head < len(s.order) {
		q := s.order[s.head]
		s.order[s.head] = queued{}
		s.head++
		if exp, ok := s.live[q.nonce]; ok && exp.Equal(q.expires) {
			delete(s.live, q.nonce)
			return true
		}
	}
	return false
}

// compact keeps the queue within a small multiple of the live set:
// consumed nonces leave stale queue entries behind.
func (s *MemoryNonceStore) compact() {
	if s.head > 0 && s.head >= len(s.order)/2 {
		s.order = append(s.order[:0:0], s.order[s.head:]...)
		s.head = 0
	}
	if len(s.order) > 2*s.max+16 {
		kept := s.order[:0:0]
		for _, q := range s.order[s.head:] {
			if exp, ok := s.live[q.nonce]; ok && exp.Equal(q.expires) {
				kept = append(kept, q)
			}
		}
		s.order, s.head = kept, 0
	}
}

const nonceAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newNonce returns 22 random letters and digits (131 bits).
func newNonce() string {
	var out [nonceLen]byte
	var buf [64]byte
	n := 0
	for n < nonceLen {
		rand.Read(buf[:])
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62: reject to keep the draw uniform
				continue
			}
			out[n] = nonceAlphabet[b%62]
			n++
			if n == nonceLen {
				break
			}
		}
	}
	return string(out[:])
}
