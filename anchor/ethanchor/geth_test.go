package ethanchor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/internal/gethtest"
	"github.com/fhirgate/fhirgate/store"
)

// startGeth runs `geth --dev` on a data dir initialised with
// chain.DevGenesis (mainnet gas rules, funded dev accounts), one block a
// second.
func startGeth(t *testing.T) (httpURL, wsURL string) {
	t.Helper()
	g, _ := json.Marshal(chain.DevGenesis())
	n := gethtest.StartDev(t, g, 1)
	return n.HTTP, n.WS
}

// lagRecorder measures "write acknowledged → version provable on chain":
// a version is provable from the moment the first checkpoint containing
// its leaf is confirmed.
type lagRecorder struct {
	mu sync.Mutex
	at map[uint64]time.Time // checkpoint tree size → when confirmed
}

func newLagRecorder() *lagRecorder { return &lagRecorder{at: map[uint64]time.Time{}} }

func (r *lagRecorder) confirmed(c anchor.Checkpoint) {
	r.mu.Lock()
	r.at[c.TreeSize] = time.Now()
	r.mu.Unlock()
}

func (r *lagRecorder) lags(t *testing.T, st *store.Store, acked []ack) []time.Duration {
	t.Helper()
	r.mu.Lock()
	sizes := make([]uint64, 0, len(r.at))
	for s := range r.at {
		sizes = append(sizes, s)
	}
	r.mu.Unlock()
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	var out []time.Duration
	for _, a := range acked {
		idx, err := st.LeafIndex(context.Background(), a.v.Type, a.v.ID, a.v.VID)
		if err != nil {
			t.Fatal(err)
		}
		i := sort.Search(len(sizes), func(i int) bool { return sizes[i] > idx })
		if i == len(sizes) {
			t.Fatalf("leaf %d never anchored", idx)
		}
		out = append(out, r.at[sizes[i]].Sub(a.at))
	}
	return out
}

// gasReport returns the gas used by each confirmed checkpoint's
// transaction and the leaves it added.
func gasReport(t *testing.T, l *anchor.Log, c *chain.Client) (gas, leaves []uint64) {
	t.Helper()
	ctx := testCtx(t)
	cps, err := l.Checkpoints(ctx, anchor.CheckpointQuery{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	prev := uint64(0)
	for _, cp := range cps {
		r, err := c.TransactionReceipt(ctx, common.Hash(cp.TxHash))
		if err != nil {
			t.Fatalf("receipt of checkpoint %d: %v", cp.TreeSize, err)
		}
		gas = append(gas, r.GasUsed)
		leaves = append(leaves, cp.TreeSize-prev)
		prev = cp.TreeSize
	}
	return gas, leaves
}

func summarize(xs []uint64) string {
	if len(xs) == 0 {
		return "none"
	}
	s := append([]uint64(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum uint64
	for _, x := range s {
		sum += x
	}
	return fmt.Sprintf("n=%d min=%d median=%d max=%d mean=%d", len(s), s[0], s[len(s)/2], s[len(s)-1], sum/uint64(len(s)))
}

// Against a real `geth --dev` built from the go-ethereum module in
// go.mod: versions written at a steady rate are provable on chain within
// seconds, `gateway verify`'s VerifyOnChain accepts real proofs over HTTP
// and rejects altered resources, altered proofs and roots not on chain,
// and $verify flags a version altered behind the gateway's back.
func TestGethDev(t *testing.T) {
	if testing.Short() {
		t.Skip("starts geth")
	}
	httpURL, wsURL := startGeth(t)
	ctx := testCtx(t)
	ws, err := chain.Dial(ctx, wsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ws.Close)
	sender, err := chain.NewSender(ctx, ws, chain.DevAccounts()[0].Key, chain.SenderOptions{Logger: testLogger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	dep, err := Deploy(ctx, sender, chain.OpenDeployments(filepath.Join(t.TempDir(), "deployments.json")))
	if err != nil {
		t.Fatal(err)
	}
	a := newAnchorer(t, sender, dep)
	st := openStore(t)
	w := &writer{st: st}
	rec := newLagRecorder()
	l, stop := runLog(t, anchor.Config{Store: st, Anchorer: a, Interval: 2 * time.Second, OnConfirmed: rec.confirmed})

	stopWrites := w.steady(t, ctx, 40)
	time.Sleep(12 * time.Second)
	stopWrites()
	size, _ := st.LogSize(ctx)
	if _, err := l.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "all anchored", func() bool { return l.Status().Anchored == size })
	stop()
	lags := rec.lags(t, st, w.acked)
	gas, leaves := gasReport(t, l, ws)
	t.Logf("geth --dev (1 s blocks, interval 2 s, 1 confirmation), %d versions: lag p50 %v p99 %v max %v; gas per checkpoint %s; leaves per checkpoint %s",
		len(lags), percentile(lags, .5).Round(time.Millisecond), percentile(lags, .99).Round(time.Millisecond), percentile(lags, 1).Round(time.Millisecond), summarize(gas), summarize(leaves))
	checkChainMatchesQueue(t, l, ws, dep.Address, size)
	verifyAll(t, l, ws, w.acked)

	v := w.acked[len(w.acked)/2].v
	p, err := l.ProofFor(ctx, v.Type, v.ID, v.VID)
	if err != nil {
		t.Fatal(err)
	}
	// Through JSON, as `gateway verify --proof proof.json --resource body.json` reads them.
	pj, _ := json.Marshal(p)
	p2, err := anchor.ParseProof(pj)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyOnChain(ctx, httpURL, p2, v.Body, WithContract(dep.Address)); err != nil {
		t.Fatalf("real proof rejected: %v", err)
	}
	altered := p2
	altered.Inclusion = append([]anchor.Hash(nil), p2.Inclusion...)
	altered.Inclusion[len(altered.Inclusion)-1][31] ^= 1
	for name, tc := range map[string]struct {
		p    anchor.Proof
		res  []byte
		want error
	}{
		"altered resource":  {p2, bytes.Replace(v.Body, []byte(`"Test`), []byte(`"Tesx`), 1), anchor.ErrResourceMismatch},
		"altered proof":     {altered, v.Body, anchor.ErrInclusionMismatch},
		"root not on chain": {forgeProof(t, p2), nil, anchor.ErrRootNotOnChain},
	} {
		if err := VerifyOnChain(ctx, httpURL, tc.p, tc.res); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	tamper(t, st, v)
	checks, err := l.VerifyResource(ctx, v.Type, v.ID)
	if err != nil || checks[0].Status != anchor.CheckFailed {
		t.Fatalf("$verify of an altered version: %+v, %v", checks, err)
	}
}
