package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/enginetest"
	"github.com/fhirgate/fhirgate/store"
)

// eachBackend runs f on every engine (Pebble; Redis where redis-server
// is installed): open gives each simulated replica its own handle on one
// shared backend (a client of its own on Redis).
func eachBackend(t *testing.T, f func(t *testing.T, open func() store.Engine)) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { f(t, func() store.Engine { return b.Open(t) }) })
	}
}

func fencedPut(ctx context.Context, e store.Engine, l *store.Lease, k, v string) error {
	var b store.Batch
	l.Fence(&b)
	b.Set([]byte(k), []byte(v))
	return e.Apply(ctx, &b)
}

func TestLeaseOneHolderAndTakeover(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() store.Engine) {
		ctx := context.Background()
		const ttl = 400 * time.Millisecond
		e, eb := open(), open()
		a := store.NewLease(e, "job", "a", store.LeaseOptions{TTL: ttl})
		b := store.NewLease(eb, "job", "b", store.LeaseOptions{TTL: ttl})
		if ok, err := a.Acquire(ctx); !ok || err != nil {
			t.Fatalf("a: Acquire on a free lease = %v, %v", ok, err)
		}
		tokA := a.Token()
		if tokA == 0 {
			t.Fatal("a holds the lease with token 0")
		}
		// b watches while a renews: never taken.
		for range 6 {
			if ok, err := b.Acquire(ctx); ok || err != nil {
				t.Fatalf("b took a renewed lease: %v, %v", ok, err)
			}
			if ok, err := a.Acquire(ctx); !ok || err != nil {
				t.Fatalf("a: renew = %v, %v", ok, err)
			}
			time.Sleep(ttl / 4)
		}
		if err := fencedPut(ctx, e, a, "k", "from a"); err != nil {
			t.Fatalf("the holder's fenced commit: %v", err)
		}
		if err := fencedPut(ctx, eb, b, "k", "from b"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a non-holder's fenced commit = %v, want ErrConflict", err)
		}
		// a stops renewing (paused, or dead): b takes over within TTL plus
		// one of its campaign periods.
		start := time.Now()
		for {
			ok, err := b.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			if time.Since(start) > 3*ttl {
				t.Fatalf("b did not take over within %s", 3*ttl)
			}
			time.Sleep(ttl / 5)
		}
		took := time.Since(start)
		if took < ttl {
			t.Fatalf("b took over after %s, before the TTL %s", took, ttl)
		}
		if b.Token() <= tokA {
			t.Fatalf("token after takeover %d, before %d: must increase", b.Token(), tokA)
		}
		if a.Held() {
			t.Fatal("a still believes it holds the lease after TTL")
		}
		// The stale holder's commit is refused, although a's process never
		// heard of the takeover.
		if err := fencedPut(ctx, e, a, "k", "stale a"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("the stale holder's fenced commit = %v, want ErrConflict", err)
		}
		if got, _ := e.Get(ctx, []byte("k")); string(got) != "from a" {
			t.Fatalf("k = %q", got)
		}
		if ok, _ := a.Acquire(ctx); ok {
			t.Fatal("the stale holder took the lease back")
		}
		if err := fencedPut(ctx, eb, b, "k", "from b"); err != nil {
			t.Fatalf("the new holder's fenced commit: %v", err)
		}
		info, err := b.Info(ctx)
		if err != nil || info.Holder != "b" || info.Token != b.Token() {
			t.Fatalf("Info = %+v, %v", info, err)
		}
	})
}

func TestLeaseReleaseAndKeep(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() store.Engine) {
		ctx := context.Background()
		const ttl = 500 * time.Millisecond
		e := open()
		a := store.NewLease(e, "job", "a", store.LeaseOptions{TTL: ttl})
		b := store.NewLease(open(), "job", "b", store.LeaseOptions{TTL: ttl})
		actx, stopA := context.WithCancel(ctx)
		bctx, stopB := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); a.Keep(actx, nil) }()
		waitUntil(t, 2*time.Second, "a holds the lease", a.Held)
		go func() { defer wg.Done(); b.Keep(bctx, nil) }()
		changed := a.Changed()
		// Held continuously through renewals; b never holds it too.
		for range 10 {
			if !a.Held() || b.Held() {
				t.Fatalf("a held %v, b held %v", a.Held(), b.Held())
			}
			time.Sleep(ttl / 5)
		}
		tok := a.Token()
		stopA() // a shuts down: releases at once
		<-changed
		start := time.Now()
		waitUntil(t, 2*time.Second, "b takes the released lease", b.Held)
		if d := time.Since(start); d > ttl {
			t.Errorf("a released lease took %s to move (TTL %s)", d, ttl)
		}
		if b.Token() != tok+1 {
			t.Errorf("token %d after release of %d", b.Token(), tok)
		}
		if err := fencedPut(ctx, e, a, "k", "a after release"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("fenced commit after release = %v", err)
		}
		stopB()
		wg.Wait()
		if info, _ := b.Info(ctx); info.Holder != "" {
			t.Fatalf("after both stopped the holder is %q", info.Holder)
		}
	})
}

// TestLeaseRace: many contenders campaigning at once on a free lease:
// exactly one wins each token.
func TestLeaseRace(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() store.Engine) {
		ctx := context.Background()
		var (
			mu   sync.Mutex
			wins []string
			wg   sync.WaitGroup
		)
		for i := range 8 {
			l := store.NewLease(open(), "race", string(rune('a'+i)), store.LeaseOptions{TTL: time.Minute})
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ok, err := l.Acquire(ctx); ok && err == nil {
					mu.Lock()
					wins = append(wins, l.Holder())
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(wins) != 1 {
			t.Fatalf("winners: %v", wins)
		}
	})
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A process alone with its engine (Pebble) takes the lease an earlier
// run left at once; without Sole it waits a TTL.
func TestLeaseSoleAfterCrash(t *testing.T) {
	e := enginetest.Backends(t)[0].Open(t) // Pebble: one process
	ctx := context.Background()
	dead := store.NewLease(e, "job", "run-1", store.LeaseOptions{TTL: time.Minute})
	if ok, _ := dead.Acquire(ctx); !ok {
		t.Fatal("first run did not take the lease")
	}
	// run-1 crashes without releasing.
	if ok, _ := store.NewLease(e, "job", "run-2", store.LeaseOptions{TTL: time.Minute}).Acquire(ctx); ok {
		t.Fatal("a shared-engine contender took a live-looking lease at once")
	}
	next := store.NewLease(e, "job", "run-2", store.LeaseOptions{TTL: time.Minute, Sole: true})
	if ok, err := next.Acquire(ctx); !ok || err != nil {
		t.Fatalf("sole Acquire = %v, %v", ok, err)
	}
	if err := fencedPut(ctx, e, dead, "k", "v"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the earlier run's fenced commit = %v", err)
	}
}
