package siwe

import (
	"context"
	"testing"
	"time"
)

func TestMemoryNonceStore(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s := NewMemoryNonceStore(3)
	put := func(n string, ttl time.Duration) {
		if err := s.Put(ctx, n, now.Add(ttl)); err != nil {
			t.Fatal(err)
		}
	}
	use := func(n string, at time.Time) bool {
		ok, err := s.Consume(ctx, n, at)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	put("aaaaaaaa", time.Minute)
	if !use("aaaaaaaa", now) || use("aaaaaaaa", now) {
		t.Fatal("nonce not single-use")
	}
	if use("never-issued", now) {
		t.Fatal("unknown nonce accepted")
	}
	put("bbbbbbbb", time.Minute)
	if use("bbbbbbbb", now.Add(time.Minute)) {
		t.Fatal("expired nonce accepted")
	}
	// Bounded: the oldest outstanding nonce is dropped first.
	for _, n := range []string{"n1111111", "n2222222", "n3333333", "n4444444"} {
		put(n, time.Minute)
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want 3", s.Len())
	}
	if use("n1111111", now) || !use("n2222222", now) || !use("n4444444", now) {
		t.Fatal("eviction order")
	}
	// Many issue/consume cycles keep the queue bounded.
	for i := 0; i < 10_000; i++ {
		n := newNonce()
		put(n, time.Minute)
		use(n, now)
	}
	if len(s.order) > 2*s.max+16+1 || s.Len() != 1 {
		t.Fatalf("queue %d entries, %d live", len(s.order), s.Len())
	}
}

func TestNewNonce(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		n := newNonce()
		if len(n) != nonceLen || !validNonce(n) || seen[n] {
			t.Fatalf("bad or repeated nonce %q", n)
		}
		seen[n] = true
	}
}
