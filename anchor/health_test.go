package anchor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// refusingChain is a fakeChain whose Preflight can be made to refuse, as
// ethanchor's does when the contract names another anchorer.
type refusingChain struct {
	*fakeChain
	mu      sync.Mutex
	refuse  error
	submits int
}

func (r *refusingChain) Preflight(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refuse
}

func (r *refusingChain) setRefuse(err error) {
	r.mu.Lock()
	r.refuse = err
	r.mu.Unlock()
}

func (r *refusingChain) Submit(ctx context.Context, req AnchorRequest) (TxRef, error) {
	r.mu.Lock()
	r.submits++
	r.mu.Unlock()
	return r.fakeChain.Submit(ctx, req)
}

// gauge reads one sample of the log's metrics.
func gauge(t *testing.T, l *Log, name, label string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(l.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s{%s}", name, label)
	return 0
}

// When the Anchorer says the gateway lost the anchorer role, nothing is
// sent, Health fails (so /readyz answers 503), the metrics say why; once
// the role is back, the queue is anchored and Health passes.
func TestHealthNoRole(t *testing.T) {
	ctx := testCtx(t)
	st := openStore(t, t.TempDir())
	w := newWriter(st)
	f := &refusingChain{fakeChain: newFakeChain()}
	cfg := fastConfig(st, f)
	cfg.Interval = time.Hour
	cfg.PreflightInterval = 20 * time.Millisecond
	l, _ := runLog(t, cfg)
	m := startMiner(f.fakeChain, 10*time.Millisecond)
	defer m.Stop()

	w.create(t, ctx, 3)
	size, _ := l.Cut(ctx)
	waitFor(t, 5*time.Second, "anchor", func() bool { return l.Status().Anchored == size })
	if err := l.Health(); err != nil || gauge(t, l, "fhirgate_anchor_ok", "") != 1 {
		t.Fatalf("healthy log: %v", err)
	}

	f.setRefuse(fmt.Errorf("%w: contract names 0xattacker", ErrNoRole))
	waitFor(t, 5*time.Second, "Health to fail", func() bool { return l.Health() != nil })
	err := l.Health()
	if !errors.Is(err, ErrCannotAnchor) || !strings.Contains(err.Error(), "0xattacker") {
		t.Errorf("Health: %v", err)
	}
	if gauge(t, l, "fhirgate_anchor_ok", "") != 0 || gauge(t, l, "fhirgate_anchor_problem", ProblemNoRole) != 1 || gauge(t, l, "fhirgate_anchor_problem", ProblemStalled) != 0 {
		t.Error("metrics do not say the role was lost")
	}
	f.mu.Lock()
	before := f.submits
	f.mu.Unlock()
	w.create(t, ctx, 2)
	size2, _ := l.Cut(ctx)
	time.Sleep(200 * time.Millisecond)
	f.mu.Lock()
	after := f.submits
	f.mu.Unlock()
	if after != before {
		t.Errorf("%d transactions sent without the role", after-before)
	}
	if s := l.Status(); s.Blocked == "" || s.Anchored != size {
		t.Errorf("status %+v", s)
	}

	f.setRefuse(nil)
	waitFor(t, 5*time.Second, "anchor after the role is back", func() bool { return l.Status().Anchored == size2 })
	if err := l.Health(); err != nil || gauge(t, l, "fhirgate_anchor_ok", "") != 1 {
		t.Errorf("after recovery: %v", err)
	}
}

// Anchoring transactions that keep reverting fail Health after
// MaxFailures; one that succeeds clears it.
func TestHealthRepeatedFailures(t *testing.T) {
	ctx := testCtx(t)
	st := openStore(t, t.TempDir())
	w := newWriter(st)
	f := newFakeChain()
	cfg := fastConfig(st, f)
	cfg.Interval = time.Hour
	cfg.ResubmitAfter = time.Hour // only the reverts send it again
	cfg.MaxFailures = 3
	l, _ := runLog(t, cfg)
	f.mu.Lock()
	f.failNext = 3
	f.mu.Unlock()
	w.create(t, ctx, 4)
	size, _ := l.Cut(ctx)
	pooled := func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.pool) > 0
	}
	for i := 1; i <= 3; i++ {
		waitFor(t, 5*time.Second, "submission", pooled)
		f.Mine() // reverts
		waitFor(t, 5*time.Second, "failure counted", func() bool { return l.Status().Failures == i })
	}
	err := l.Health()
	if !errors.Is(err, ErrCannotAnchor) || !strings.Contains(err.Error(), "failed") {
		t.Errorf("Health after 3 reverts: %v", err)
	}
	if gauge(t, l, "fhirgate_anchor_problem", ProblemFailures) != 1 || gauge(t, l, "fhirgate_anchor_consecutive_failures", "") != 3 {
		t.Error("metrics do not count the failures")
	}
	waitFor(t, 5*time.Second, "submission", pooled)
	f.Mine()
	waitFor(t, 5*time.Second, "anchor", func() bool { return l.Status().Anchored == size })
	if err := l.Health(); err != nil || l.Status().Failures != 0 {
		t.Errorf("after a success: %v, %d failures", err, l.Status().Failures)
	}
}

// A checkpoint that waits longer than StallAfter (the chain is away)
// fails Health, and the reason names the outage.
func TestHealthStalled(t *testing.T) {
	ctx := testCtx(t)
	st := openStore(t, t.TempDir())
	w := newWriter(st)
	f := newFakeChain()
	cfg := fastConfig(st, f)
	cfg.Interval = time.Hour
	cfg.StallAfter = 300 * time.Millisecond
	l, _ := runLog(t, cfg)
	f.setDown(true)
	w.create(t, ctx, 2)
	if _, err := l.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Health(); err != nil {
		t.Fatalf("Health at once: %v", err)
	}
	waitFor(t, 5*time.Second, "stall", func() bool { return l.Health() != nil })
	if err := l.Health(); !strings.Contains(err.Error(), "unreachable") || gauge(t, l, "fhirgate_anchor_problem", ProblemStalled) != 1 {
		t.Errorf("Health: %v", err)
	}
	f.setDown(false)
	m := startMiner(f, 10*time.Millisecond)
	defer m.Stop()
	waitFor(t, 5*time.Second, "recovery", func() bool { return l.Health() == nil })
}
