package anchor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/enginetest"
	"github.com/fhirgate/fhirgate/store"
)

// replica is one gateway's anchor Log over a store shared with others,
// under the anchoring lease.
type replica struct {
	name  string
	l     *Log
	lease *store.Lease
	stopRun,
	stopKeep context.CancelFunc
	keepDone, runDone chan struct{}
}

const testLeaseTTL = 500 * time.Millisecond

// startReplica opens a Log over its own Store on the shared engine e,
// with its own lease, campaigning and running. Its keeper renews without
// releasing at the end, as a process that dies does.
func startReplica(t *testing.T, name string, e store.Engine, f *fakeChain, interval time.Duration) *replica {
	t.Helper()
	r := &replica{name: name, lease: store.NewLease(e, "anchor", name, store.LeaseOptions{TTL: testLeaseTTL})}
	cfg := fastConfig(store.New(e, store.Options{}), f)
	cfg.Interval, cfg.Lease, cfg.Logger = interval, r.lease, testLogger(t).With("replica", name)
	l, err := Open(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.l = l
	kctx, stopKeep := context.WithCancel(context.Background())
	rctx, stopRun := context.WithCancel(context.Background())
	r.stopKeep, r.stopRun = stopKeep, stopRun
	r.keepDone, r.runDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.keepDone)
		tk := time.NewTicker(testLeaseTTL / 5)
		defer tk.Stop()
		for {
			r.lease.Acquire(kctx)
			select {
			case <-kctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	go func() { defer close(r.runDone); l.Run(rctx) }()
	t.Cleanup(r.kill)
	return r
}

// kill stops the replica as a crash would: no release of the lease.
func (r *replica) kill() {
	r.stopKeep()
	<-r.keepDone
	r.stopRun()
	<-r.runDone
}

// pause stops the replica's renewals only: its loops go on, as those of a
// process whose lease renewals stall (a long GC pause, a partition).
func (r *replica) pause() {
	r.stopKeep()
	<-r.keepDone
}

// Two replicas anchor one log: one at a time; when the anchorer dies the
// other takes over within seconds and every leaf (those written during
// the switch too) is anchored, each checkpoint once, each proven from
// the one before.
func TestLeaseOneAnchorerAndTakeover(t *testing.T) {
	for _, be := range enginetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) { testOneAnchorer(t, func() store.Engine { return be.Open(t) }) })
	}
}

// testOneAnchorer runs on a backend whose open gives every replica its
// own handle.
func testOneAnchorer(t *testing.T, open func() store.Engine) {
	ctx := testCtx(t)
	st := store.New(open(), store.Options{})
	f := newFakeChain()
	m := startMiner(f, 10*time.Millisecond)
	defer m.Stop()

	a := startReplica(t, "a", open(), f, 100*time.Millisecond)
	waitFor(t, 5*time.Second, "a anchors", a.l.IsAnchorer)
	b := startReplica(t, "b", open(), f, 100*time.Millisecond)

	// Writers through their own store handle, all the time.
	w := newWriter(store.New(open(), store.Options{}))
	var (
		wmu      sync.Mutex
		versions []store.Version
		stopW    = make(chan struct{})
		wdone    = make(chan struct{})
	)
	go func() {
		defer close(wdone)
		for {
			select {
			case <-stopW:
				return
			case <-time.After(5 * time.Millisecond):
			}
			vs := w.create(t, ctx, 2)
			wmu.Lock()
			versions = append(versions, vs...)
			wmu.Unlock()
		}
	}()

	// One anchorer at a time, and the other one is healthy and serving.
	var both atomic.Int32
	sample := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
			if a.l.IsAnchorer() && b.l.IsAnchorer() {
				both.Add(1)
			}
		}
	}
	sample(time.Second)
	waitFor(t, 5*time.Second, "a checkpoint anchored by a", func() bool { return a.l.Status().Anchored > 0 })
	if b.l.IsAnchorer() {
		t.Fatal("b anchors while a holds the lease")
	}
	if err := b.l.Health(); err != nil {
		t.Fatalf("the standby replica reports itself broken: %v", err)
	}
	if s := b.l.Status(); !s.Standby || s.Integrated == 0 {
		t.Fatalf("standby status %+v", s)
	}
	if _, err := b.l.Cut(ctx); !errors.Is(err, ErrNotAnchorer) {
		t.Fatalf("Cut on the standby = %v, want ErrNotAnchorer", err)
	}

	// a dies mid-flight.
	died := time.Now()
	a.kill()
	waitFor(t, 5*time.Second, "b takes over", b.l.IsAnchorer)
	took := time.Since(died)
	t.Logf("takeover %s after the anchorer died (lease TTL %s)", took.Round(time.Millisecond), testLeaseTTL)
	if took > 3*testLeaseTTL {
		t.Errorf("takeover took %s", took)
	}
	sample(500 * time.Millisecond)
	close(stopW)
	<-wdone
	size, err := b.l.Cut(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logSize, _ := st.LogSize(ctx)
	if size != logSize {
		t.Fatalf("cut %d of %d leaves", size, logSize)
	}
	waitFor(t, 10*time.Second, "everything anchored by b", func() bool { return b.l.Status().Anchored == logSize })
	if n := both.Load(); n != 0 {
		t.Errorf("both replicas were the anchorer in %d samples", n)
	}
	b.kill()
	f.mu.Lock()
	reverts := f.reverts
	f.mu.Unlock()
	t.Logf("%d leaves, %d checkpoints on chain, %d reverted anchors", logSize, len(f.order), reverts)
	checkAnchoredAll(t, b.l, f, st, versions)
}

// A paused anchorer (its renewals stall, its loops go on) loses the lease
// to another replica; whatever it still tries to write to the tree or the
// queue is refused by the fence.
func TestLeaseStaleAnchorerFenced(t *testing.T) {
	ctx := testCtx(t)
	st := openStore(t, t.TempDir())
	e := st.Engine()
	f := newFakeChain()
	m := startMiner(f, 10*time.Millisecond)
	defer m.Stop()
	w := newWriter(st)
	a := startReplica(t, "a", e, f, time.Hour)
	waitFor(t, 5*time.Second, "a anchors", a.l.IsAnchorer)
	vs := w.create(t, ctx, 5)
	if _, err := a.l.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "anchored", func() bool { return a.l.Status().Anchored == 5 })
	b := startReplica(t, "b", e, f, time.Hour)
	a.pause()
	waitFor(t, 5*time.Second, "b takes over", b.l.IsAnchorer)
	vs = append(vs, w.create(t, ctx, 3)...)

	// a, stale, writes as if it still anchored: refused.
	cp := &Checkpoint{TreeSize: 100, Root: Hash{1}, ChainID: f.ref.ChainID, Contract: f.ref.Contract, State: StatePending, Cut: time.Now()}
	if err := a.l.putCheckpoint(ctx, cp); !errors.Is(err, ErrNotAnchorer) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a stale anchorer's checkpoint write = %v, want ErrNotAnchorer", err)
	}
	if c, _ := b.l.checkpointAt(ctx, 100); c != nil {
		t.Fatalf("the stale write landed: %+v", c)
	}
	// Its integration of a new leaf: refused. b's integration is held off
	// (its tree lock taken) so the new leaf cannot be integrated by b
	// first; a's first attempt may only catch up with what b integrated
	// before, the next one must be refused.
	b.l.treeMu.Lock()
	var err error
	for i := 0; i < 3 && !errors.Is(err, ErrNotAnchorer); i++ {
		vs = append(vs, w.create(t, ctx, 1)...)
		a.l.treeMu.Lock()
		_, err = a.l.integrateChunk(ctx, 100)
		a.l.treeMu.Unlock()
		if err != nil && !errors.Is(err, ErrNotAnchorer) {
			b.l.treeMu.Unlock()
			t.Fatal(err)
		}
	}
	b.l.treeMu.Unlock()
	if !errors.Is(err, ErrNotAnchorer) {
		t.Fatalf("a stale anchorer's integration = %v, want ErrNotAnchorer", err)
	}
	// b goes on from the stored state.
	want, _ := st.LogSize(ctx)
	size, err := b.l.Cut(ctx)
	if err != nil || size != want {
		t.Fatalf("b cut %d, %v; want %d", size, err, want)
	}
	waitFor(t, 5*time.Second, "b anchors", func() bool { return b.l.Status().Anchored == want })
	a.kill()
	b.kill()
	checkAnchoredAll(t, b.l, f, st, vs)
}
