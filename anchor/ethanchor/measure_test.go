package ethanchor

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/store"
)

// Measurements for the quality bars. They take minutes, so they
// run only with FHIRGATE_MEASURE=1:
//
//	FHIRGATE_MEASURE=1 go test -run TestMeasure -v -timeout 30m ./anchor/ethanchor/
//
// FHIRGATE_MEASURE_SECONDS sets the length of each run (default 60).

func measureSeconds(t *testing.T) time.Duration {
	if os.Getenv("FHIRGATE_MEASURE") != "1" {
		t.Skip("set FHIRGATE_MEASURE=1 to measure")
	}
	n := 60
	if s := os.Getenv("FHIRGATE_MEASURE_SECONDS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	return time.Duration(n) * time.Second
}

// startEmbedded runs the gateway's default chain: the embedded dev chain
// with one block a second, AuditAnchor deployed.
func startEmbedded(t *testing.T) (*chain.DevChain, *chain.Sender, chain.Deployment) {
	ctx := testCtx(t)
	d, err := chain.StartDev(ctx, chain.DevConfig{BlockPeriod: chain.DefaultBlockPeriod})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	s, err := chain.NewSender(ctx, d.Client(), d.Key(), chain.SenderOptions{Logger: testLogger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	dep, err := Deploy(ctx, s, chain.OpenDeployments(""))
	if err != nil {
		t.Fatal(err)
	}
	return d, s, dep
}

// Anchor lag (write acknowledged → version provable on chain) at a steady
// inflow, with the gateway's defaults: 5 s interval, 1 s blocks, and 1 or 2
// confirmations. Bar: ≤ interval + 2 blocks. Also gas per checkpoint
// (mainnet rules: the embedded chain runs them).
func TestMeasureAnchorLag(t *testing.T) {
	dur := measureSeconds(t)
	for _, confs := range []uint64{1, 2} {
		t.Run(fmt.Sprintf("confirmations=%d", confs), func(t *testing.T) {
			ctx := testCtx(t)
			d, s, dep := startEmbedded(t)
			a := newAnchorer(t, s, dep)
			st := openStore(t)
			w := &writer{st: st}
			rec := newLagRecorder()
			l, stop := runLog(t, anchor.Config{Store: st, Anchorer: a, Confirmations: confs, OnConfirmed: rec.confirmed, Logger: testLogger(t, slog.LevelWarn)})
			const rate = 200
			stopWrites := w.steady(t, ctx, rate)
			time.Sleep(dur)
			stopWrites()
			size, _ := st.LogSize(ctx)
			waitFor(t, 30*time.Second, "all anchored", func() bool { return l.Status().Anchored == size })
			stop()
			lags := rec.lags(t, st, w.acked)
			gas, leaves := gasReport(t, l, d.Client())
			t.Logf("MEASURE lag, %d writes at %d/s over %v, interval 5s, 1s blocks, %d confirmation(s): p50 %v, p99 %v, max %v (bar: 5s + 2 blocks = 7s)",
				len(lags), rate, dur, confs, percentile(lags, .5).Round(time.Millisecond), percentile(lags, .99).Round(time.Millisecond), percentile(lags, 1).Round(time.Millisecond))
			t.Logf("MEASURE gas per checkpoint (mainnet rules): %s; leaves per checkpoint: %s", summarize(gas), summarize(leaves))
			if p99 := percentile(lags, .99); p99 > 5*time.Second+time.Duration(confs+1)*time.Second {
				t.Errorf("p99 lag %v above the bar", p99)
			}
		})
	}
}

// Create throughput with and without logging and anchoring, at the store
// (64 concurrent writers, synced commits): (a) versions without leaves
// (the REST layer's NoLog), (b) with leaves, nothing integrating them,
// (c) with leaves, the Log integrating and anchoring to the embedded chain.
// At the store level there is no parsing or validation, so the relative
// cost here is an upper bound of what REST creates see.
func TestMeasureOverhead(t *testing.T) {
	dur := measureSeconds(t) / 3
	_, s, _ := startEmbedded(t)
	body := make([]byte, 0, 1200)
	body = append(body, `{"address":[{"city":"Springfield","line":["1 Main St"],"postalCode":"12345"}],"birthDate":"1970-01-01","gender":"female","id":"%s","meta":{"lastUpdated":"2026-01-01T00:00:00Z","versionId":"1"},"name":[{"family":"Doe","given":["Jane","Q"]}],"resourceType":"Patient","telecom":[{"system":"phone","value":"555-0100"}],"text":{"div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Jane Doe</div>","status":"generated"}}`...)
	run := func(mode string) float64 {
		ctx := testCtx(t)
		st := openStore(t)
		var stop func()
		var l *anchor.Log
		if mode == "anchored" {
			// A fresh contract per run: a new store's log is not the old one's.
			dep, err := Deploy(ctx, s, chain.OpenDeployments(""))
			if err != nil {
				t.Fatal(err)
			}
			a := newAnchorer(t, s, dep)
			l, stop = runLog(t, anchor.Config{Store: st, Anchorer: a, Logger: testLogger(t, slog.LevelWarn)})
		}
		var n atomic.Int64
		var wg sync.WaitGroup
		end := time.Now().Add(dur)
		for g := 0; g < 64; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(end); i++ {
					id := fmt.Sprintf("g%d-%d", g, i)
					v := store.Version{Type: "Patient", ID: id, VID: 1, LastUpdated: time.Now().UTC(), Method: store.MethodCreate, Body: fmt.Appendf(nil, string(body), id)}
					wr := store.Write{New: v}
					if mode != "nolog" {
						wr.Leaf = anchor.NewLeaf(v.Type, v.ID, 1, v.Body).Data()
					}
					if err := st.Commit(ctx, []store.Write{wr}); err != nil {
						t.Error(err)
						return
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		rate := float64(n.Load()) / dur.Seconds()
		if l != nil {
			size, _ := st.LogSize(ctx)
			l.Cut(ctx)
			waitFor(t, 60*time.Second, "all anchored", func() bool { return l.Status().Anchored == size })
			stop()
			cps, _ := l.Checkpoints(ctx, anchor.CheckpointQuery{Limit: 1 << 20})
			t.Logf("anchored run: %d leaves in %d checkpoints", size, len(cps))
		}
		return rate
	}
	rates := map[string][]float64{}
	for round := 0; round < 3; round++ {
		for _, mode := range []string{"nolog", "leaves", "anchored"} {
			r := run(mode)
			rates[mode] = append(rates[mode], r)
			t.Logf("round %d %-8s %8.0f creates/s", round, mode, r)
		}
	}
	best := func(xs []float64) float64 {
		m := 0.0
		for _, x := range xs {
			m = max(m, x)
		}
		return m
	}
	mean := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	t.Logf("MEASURE store creates/s (mean of 3): no log %.0f, leaves %.0f, leaves+integration+anchoring %.0f",
		mean(rates["nolog"]), mean(rates["leaves"]), mean(rates["anchored"]))
	nolog, leaves, anchored := best(rates["nolog"]), best(rates["leaves"]), best(rates["anchored"])
	t.Logf("MEASURE store creates/s (best of 3, 64 writers, %v each): no log %.0f, leaves %.0f (%.1f%%), leaves+integration+anchoring %.0f (%.1f%% vs no log, %.1f%% vs leaves)",
		dur, nolog, leaves, 100*(nolog-leaves)/nolog, anchored, 100*(nolog-anchored)/nolog, 100*(leaves-anchored)/leaves)
}
