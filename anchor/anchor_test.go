package anchor

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// checkAnchoredAll checks the end state after anchoring settled: the
// contract holds the whole log, its checkpoints are exactly the queue's
// confirmed ones in order (none skipped, none twice), and every version
// written is provable against the chain.
func checkAnchoredAll(t *testing.T, l *Log, f *fakeChain, st *store.Store, versions []store.Version) {
	t.Helper()
	ctx := testCtx(t)
	size, order := f.latest()
	logSize, _ := st.LogSize(ctx)
	if size != logSize {
		t.Fatalf("contract holds %d leaves, log has %d", size, logSize)
	}
	cps, err := l.Checkpoints(ctx, CheckpointQuery{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var local []uint64
	for _, c := range cps {
		local = append(local, c.TreeSize)
		if r, ok, _ := f.RootAt(ctx, c.TreeSize); !ok || r != c.Root {
			t.Errorf("checkpoint %d: chain root %s, %v; queue %s", c.TreeSize, r, ok, c.Root)
		}
	}
	if !slices.Equal(local, order) {
		t.Fatalf("confirmed checkpoints %v, contract anchored %v", local, order)
	}
	// Newest first, paged by Before, lists the same checkpoints reversed.
	var newest []uint64
	for before := ^uint64(0); ; {
		page, err := l.Checkpoints(ctx, CheckpointQuery{Before: before, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			newest = append(newest, c.TreeSize)
		}
		before = page[len(page)-1].TreeSize
	}
	slices.Reverse(newest)
	if !slices.Equal(newest, local) {
		t.Fatalf("newest first %v, oldest first %v", newest, local)
	}
	all, _ := l.Checkpoints(ctx, CheckpointQuery{Limit: 1 << 20, All: true})
	for _, c := range all {
		if !c.Anchored() {
			t.Errorf("checkpoint %d left %s", c.TreeSize, c.State)
		}
	}
	for _, v := range versions {
		p, err := l.ProofFor(ctx, v.Type, v.ID, v.VID)
		if err != nil {
			t.Fatalf("ProofFor %s/%s/%d: %v", v.Type, v.ID, v.VID, err)
		}
		if err := VerifyProof(p, v.Body, f.rootAt()); err != nil {
			t.Fatalf("proof of %s/%s/%d: %v", v.Type, v.ID, v.VID, err)
		}
	}
}

// Writes go on through a chain outage; the queue holds every checkpoint
// cut meanwhile and, when the chain is back, anchors them all, oldest
// first, each proven from the one before: no leaf left out.
func TestAnchorOutageCatchUp(t *testing.T) {
	ctx := testCtx(t)
	st := openStore(t, t.TempDir())
	w := newWriter(st)
	f := newFakeChain()
	m := startMiner(f, 10*time.Millisecond)
	defer m.Stop()
	var confirmed atomic.Int64
	cfg := fastConfig(st, f)
	cfg.MaxInFlight = 3
	cfg.OnConfirmed = func(Checkpoint) { confirmed.Add(1) }
	l, stop := runLog(t, cfg)

	var versions []store.Version
	var vmu sync.Mutex
	writeFor := func(d time.Duration) {
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			vs := w.create(t, ctx, 3)
			vmu.Lock()
			versions = append(versions, vs...)
			vmu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}
	writeFor(200 * time.Millisecond)
	waitFor(t, 5*time.Second, "first anchors", func() bool { return confirmed.Load() > 0 })

	f.setDown(true)
	before := l.Status().LastCut
	writeFor(500 * time.Millisecond)
	waitFor(t, 5*time.Second, "chain error noticed", func() bool { return l.Status().ChainError != "" })
	if s := l.Status(); s.LastCut <= before {
		t.Fatalf("no checkpoint cut during the outage: %+v", s)
	}
	queued, _ := l.Checkpoints(ctx, CheckpointQuery{After: before, All: true, Limit: 1000})
	if len(queued) < 3 {
		t.Fatalf("only %d checkpoints queued during the outage", len(queued))
	}
	for _, c := range queued {
		if c.State != StatePending {
			t.Fatalf("checkpoint %d is %s during the outage", c.TreeSize, c.State)
		}
	}
	f.setDown(false)
	writeFor(100 * time.Millisecond)
	if _, err := l.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	logSize, _ := st.LogSize(ctx)
	waitFor(t, 10*time.Second, "catch-up", func() bool {
		s := l.Status()
		return s.Anchored == logSize && s.Queued == 0 && s.ChainError == ""
	})
	stop()
	checkAnchoredAll(t, l, f, st, versions)
	t.Logf("%d versions, %d checkpoints (%d queued during the outage)", len(versions), confirmed.Load(), len(queued))
}

// A reorg that drops the anchoring transaction is noticed, the checkpoint
// is anchored again, and proofs keep verifying; with the transaction
// re-injected into the pool (as geth does) the duplicate reverts
// harmlessly.
func TestAnchorReorg(t *testing.T) {
	for _, reinject := range []bool{false, true} {
		t.Run(fmt.Sprintf("reinject=%v", reinject), func(t *testing.T) {
			ctx := testCtx(t)
			st := openStore(t, t.TempDir())
			w := newWriter(st)
			f := newFakeChain()
			cfg := fastConfig(st, f)
			cfg.Interval = time.Hour // cut by hand
			l, stop := runLog(t, cfg)
			versions := w.create(t, ctx, 5)
			size1, _ := l.Cut(ctx)
			waitFor(t, 5*time.Second, "submission", func() bool { return l.Status().InFlight == 1 })
			f.Mine()
			waitFor(t, 5*time.Second, "first anchor", func() bool { return l.Status().Anchored == size1 })
			versions = append(versions, w.create(t, ctx, 4)...)
			size2, _ := l.Cut(ctx)
			waitFor(t, 5*time.Second, "submission", func() bool { return l.Status().InFlight == 1 })
			f.Mine()
			waitFor(t, 5*time.Second, "second anchor", func() bool { return l.Status().Anchored == size2 })
			f.Mine()
			first, _ := l.checkpointAt(ctx, size2)

			f.Reorg(2, reinject) // drops the block with the second anchor
			if s, _ := f.latest(); s != size1 {
				t.Fatalf("after the reorg the contract holds %d", s)
			}
			waitFor(t, 5*time.Second, "reorg noticed and resubmitted", func() bool {
				c, _ := l.checkpointAt(ctx, size2)
				return c.Reorgs == 1 && c.State == StateSubmitted
			})
			f.Mine()
			f.Mine()
			waitFor(t, 5*time.Second, "re-anchored", func() bool {
				c, _ := l.checkpointAt(ctx, size2)
				return c.Anchored()
			})
			stop()
			again, _ := l.checkpointAt(ctx, size2)
			if again.BlockHash == first.BlockHash {
				t.Error("re-anchored checkpoint still names the block that left the chain")
			}
			checkAnchoredAll(t, l, f, st, versions)
		})
	}
}

// A reverted anchoring transaction sends the checkpoint back to the queue
// and it is anchored on the next attempt; a restart in the middle resumes
// from the durable queue without anchoring anything twice.
func TestAnchorRevertAndRestart(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	st := openStore(t, dir)
	w := newWriter(st)
	f := newFakeChain()
	cfg := fastConfig(st, f)
	cfg.Interval = time.Hour
	l, stop := runLog(t, cfg)
	versions := w.create(t, ctx, 7)
	f.mu.Lock()
	f.failNext = 1
	f.mu.Unlock()
	size1, _ := l.Cut(ctx)
	waitFor(t, 5*time.Second, "submission", func() bool { return l.Status().InFlight == 1 })
	f.Mine() // reverts
	waitFor(t, 5*time.Second, "resubmission", func() bool {
		c, _ := l.checkpointAt(ctx, size1)
		return c.Attempts == 2 && c.State == StateSubmitted
	})
	f.Mine()
	waitFor(t, 5*time.Second, "anchor", func() bool { return l.Status().Anchored == size1 })

	// Submitted, not mined, then the process stops.
	versions = append(versions, w.create(t, ctx, 6)...)
	size2, _ := l.Cut(ctx)
	waitFor(t, 5*time.Second, "submission", func() bool { return l.Status().InFlight == 1 })
	stop()
	// Leaves written while the gateway is down.
	versions = append(versions, w.create(t, ctx, 5)...)
	closeStore(st)
	f.Mine() // the transaction sent before the stop is mined meanwhile

	st = openStore(t, dir)
	w.st = st
	cfg.Store = st
	l, stop = runLog(t, cfg)
	waitFor(t, 5*time.Second, "adopting the anchor mined while down", func() bool { return l.Status().Anchored == size2 })
	size3, _ := l.Cut(ctx)
	if size3 != size2+5 {
		t.Fatalf("cut %d after restart, want %d", size3, size2+5)
	}
	waitFor(t, 5*time.Second, "submission", func() bool { return l.Status().InFlight == 1 })
	f.Mine()
	waitFor(t, 5*time.Second, "anchor", func() bool { return l.Status().Anchored == size3 })
	stop()
	checkAnchoredAll(t, l, f, st, versions)
}

// A checkpoint is cut when MaxLeaves arrived, without waiting for the
// interval.
func TestCutByLeafCount(t *testing.T) {
	ctx := testCtx(t)
	st := openStore(t, t.TempDir())
	w := newWriter(st)
	f := newFakeChain()
	cfg := fastConfig(st, f)
	cfg.Interval, cfg.MaxLeaves = time.Hour, 100
	l, _ := runLog(t, cfg)
	w.createMany(t, ctx, 99)
	time.Sleep(50 * time.Millisecond)
	if c := l.Status().LastCut; c != 0 {
		t.Fatalf("cut at %d before 100 leaves", c)
	}
	w.createMany(t, ctx, 1)
	waitFor(t, 5*time.Second, "cut at 100 leaves", func() bool { return l.Status().LastCut == 100 })
	w.createMany(t, ctx, 150) // one commit: cut at 200, and 50 wait for the interval
	waitFor(t, 5*time.Second, "cut at 200 leaves", func() bool { return l.Status().LastCut == 200 })
	time.Sleep(50 * time.Millisecond)
	if c := l.Status().LastCut; c != 200 {
		t.Fatalf("cut at %d", c)
	}
}

// The proof and verification errors a caller sees before anchoring, with
// anchoring off, and for unknown versions.
func TestProofForStates(t *testing.T) {
	ctx := testCtx(t)
	st := openStore(t, t.TempDir())
	w := newWriter(st)
	vs := w.create(t, ctx, 3)

	off, err := Open(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.ProofFor(ctx, "Patient", vs[0].ID, 1); !errors.Is(err, ErrAnchoringDisabled) {
		t.Errorf("anchoring off: %v", err)
	}
	f := newFakeChain()
	cfg := fastConfig(st, f)
	cfg.Interval = time.Hour
	l, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.ProofFor(ctx, "Patient", "nope", 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown version: %v", err)
	}
	_, err = l.ProofFor(ctx, "Patient", vs[0].ID, 1)
	if !errors.Is(err, ErrNotAnchored) {
		t.Fatalf("before anchoring: %v", err)
	}
	if d, ok := RetryAfter(err); !ok || d < time.Second {
		t.Errorf("RetryAfter = %v, %v", d, ok)
	}
	checks, err := l.VerifyResource(ctx, "Patient", vs[0].ID)
	if err != nil || len(checks) != 1 || checks[0].Status != CheckPending {
		t.Fatalf("VerifyResource before integration: %+v, %v", checks, err)
	}
	if _, err := l.VerifyResource(ctx, "Patient", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("VerifyResource of an unknown resource: %v", err)
	}
}

// A contract that holds a root the log does not have raises the alarm and
// stops anchoring, instead of sending anchors that revert forever.
func TestAlarmOnForeignRoot(t *testing.T) {
	ctx := testCtx(t)
	st := openStore(t, t.TempDir())
	w := newWriter(st)
	f := newFakeChain()
	w.create(t, ctx, 4)
	f.mu.Lock()
	f.size, f.roots[3] = 3, Hash{1}
	f.mu.Unlock()
	l, _ := runLog(t, fastConfig(st, f))
	waitFor(t, 5*time.Second, "alarm", func() bool { return l.Status().Alarm != "" })
	f.mu.Lock()
	n := len(f.pool)
	f.mu.Unlock()
	if n != 0 {
		t.Errorf("%d anchors sent despite the alarm", n)
	}
}

// Under a sustained write load checkpoints are cut as soon as MaxLeaves
// arrived, never bigger (after the backlog found at start, which the
// first checkpoint covers whole).
func TestCutUnderLoad(t *testing.T) {
	ctx := testCtx(t)
	st := openStore(t, t.TempDir())
	newWriter(st).createMany(t, ctx, 2500) // backlog before the Log starts
	f := newFakeChain()
	m := startMiner(f, 20*time.Millisecond)
	defer m.Stop()
	cfg := fastConfig(st, f)
	cfg.Interval, cfg.MaxLeaves = time.Hour, 1000
	l, stop := runLog(t, cfg)
	var wg sync.WaitGroup
	end := time.Now().Add(2 * time.Second)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				v := store.Version{Type: "Patient", ID: id, VID: 1, LastUpdated: time.Now().UTC(), Body: []byte(`{"resourceType":"Patient"}`)}
				if err := st.Commit(ctx, []store.Write{{New: v, Leaf: NewLeaf("Patient", id, 1, v.Body).Data()}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	size, _ := st.LogSize(ctx)
	waitFor(t, 10*time.Second, "integration", func() bool { return l.Size() == size })
	stop()
	cps, _ := l.Checkpoints(ctx, CheckpointQuery{All: true, Limit: 1 << 20})
	if len(cps) < 3 || cps[0].TreeSize < 2500 {
		t.Fatalf("checkpoints %+v", cps)
	}
	for i := 1; i < len(cps); i++ {
		if d := cps[i].TreeSize - cps[i-1].TreeSize; d != 1000 {
			t.Fatalf("checkpoint %d holds %d leaves", cps[i].TreeSize, d)
		}
	}
	t.Logf("%d leaves: first checkpoint %d (backlog), then %d of 1000", size, cps[0].TreeSize, len(cps)-1)
}

// A second gateway on the same store (not running the log) serves proofs
// of what the first one integrated and anchored.
func TestReplicaServesProofs(t *testing.T) {
	ctx := testCtx(t)
	st := openStore(t, t.TempDir())
	f := newFakeChain()
	m := startMiner(f, 5*time.Millisecond)
	defer m.Stop()
	replica, err := Open(ctx, fastConfig(st, f))
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig(st, f)
	cfg.Interval = time.Hour
	l, _ := runLog(t, cfg)
	vs := newWriter(st).create(t, ctx, 6)
	size, _ := l.Cut(ctx)
	waitFor(t, 5*time.Second, "anchor", func() bool { return l.Status().Anchored == size })
	for _, v := range vs {
		p, err := replica.ProofFor(ctx, v.Type, v.ID, v.VID)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyProof(p, v.Body, f.rootAt()); err != nil {
			t.Fatal(err)
		}
	}
	if checks, err := replica.VerifyResource(ctx, "Patient", vs[0].ID); err != nil || checks[0].Status != CheckOK {
		t.Fatalf("replica $verify: %+v, %v", checks, err)
	}
}

// A transaction lost from the pool while later checkpoints are pipelined
// behind it: the later ones revert once, wait until the lost one is sent
// again and mined, and then go out; nothing reverts in a loop.
func TestLostTransaction(t *testing.T) {
	ctx := testCtx(t)
	st := openStore(t, t.TempDir())
	w := newWriter(st)
	f := newFakeChain()
	cfg := fastConfig(st, f)
	cfg.Interval, cfg.ResubmitAfter = time.Hour, time.Second
	l, stop := runLog(t, cfg)
	vs := w.create(t, ctx, 3)
	a, _ := l.Cut(ctx)
	waitFor(t, 5*time.Second, "A submitted", func() bool { return l.Status().InFlight == 1 })
	f.dropPool()
	vs = append(vs, w.create(t, ctx, 3)...)
	b, _ := l.Cut(ctx)
	waitFor(t, 5*time.Second, "B submitted", func() bool { c, _ := l.checkpointAt(ctx, b); return c.State == StateSubmitted })
	m := startMiner(f, 20*time.Millisecond)
	defer m.Stop()
	waitFor(t, 10*time.Second, "both anchored", func() bool { return l.Status().Anchored == b })
	stop()
	f.mu.Lock()
	reverts := f.reverts
	f.mu.Unlock()
	if reverts > 1 {
		t.Errorf("%d reverted anchors", reverts)
	}
	ca, _ := l.checkpointAt(ctx, a)
	t.Logf("A anchored after %d attempts, %d revert(s)", ca.Attempts, reverts)
	checkAnchoredAll(t, l, f, st, vs)
}
