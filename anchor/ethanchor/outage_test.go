package ethanchor

import (
	"context"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/chain"
)

// outageLength is how long the chain is unreachable in TestOutage
// (FHIRGATE_ANCHOR_OUTAGE, e.g. 60s for the full minute of the issue).
func outageLength(t *testing.T) time.Duration {
	if s := os.Getenv("FHIRGATE_ANCHOR_OUTAGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("FHIRGATE_ANCHOR_OUTAGE: %v", err)
		}
		return d
	}
	return 10 * time.Second
}

// A chain outage loses no leaf: the gateway's node connection drops
// (every RPC fails) while writes go on, then blocks stop being made while
// writes go on; afterwards everything queued is anchored, oldest first,
// each checkpoint proven from the one before, and every version written
// is provable on chain.
func TestOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain, takes tens of seconds")
	}
	ctx := testCtx(t)
	dc := startDevChain(t, time.Second)
	u, _ := url.Parse(dc.d.HTTPURL())
	px := startProxy(t, u.Host)
	client, err := chain.Dial(ctx, "http://"+px.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	sender, err := chain.NewSender(ctx, client, dc.d.Key(), chain.SenderOptions{StuckAfter: 5 * time.Second, PollInterval: 100 * time.Millisecond, Logger: testLogger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	a := newAnchorer(t, sender, dc.dep)
	st := openStore(t)
	w := &writer{st: st}
	var confirmed []anchor.Checkpoint
	l, stop := runLog(t, anchor.Config{Store: st, Anchorer: a, Interval: time.Second, ChainTimeout: 5 * time.Second,
		OnConfirmed: func(c anchor.Checkpoint) { confirmed = append(confirmed, c) }})

	stopWrites := w.steady(t, ctx, 50)
	defer stopWrites()
	waitFor(t, 20*time.Second, "first anchor", func() bool { return l.Status().Anchored > 0 })

	outage := outageLength(t)
	t.Logf("cutting the node connection for %v", outage)
	px.cut()
	before, _ := st.LogSize(ctx)
	time.Sleep(outage)
	during, _ := st.LogSize(ctx)
	s := l.Status()
	if s.ChainError == "" {
		t.Fatalf("outage not noticed: %+v", s)
	}
	t.Logf("during the outage: %d writes accepted, status %+v", during-before, s)
	if during-before < uint64(outage.Seconds())*20 {
		t.Fatalf("writes stalled during the outage: %d", during-before)
	}
	px.restore(t)

	waitFor(t, 60*time.Second, "catch-up after the outage", func() bool {
		s := l.Status()
		return s.ChainError == "" && s.Queued == 0
	})
	t.Logf("caught up: %+v", l.Status())

	t.Log("no blocks for 5s")
	dc.miner.pause(true)
	time.Sleep(5 * time.Second)
	dc.miner.pause(false)

	stopWrites()
	if _, err := l.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	size, _ := st.LogSize(ctx)
	waitFor(t, 60*time.Second, "everything anchored", func() bool { return l.Status().Anchored == size })
	stop()
	checkChainMatchesQueue(t, l, dc.d.Client(), dc.dep.Address, size)
	verifyAll(t, l, dc.d.Client(), w.acked)
	t.Logf("%d versions, %d checkpoints anchored, none left out", len(w.acked), len(confirmed))
}

// checkChainMatchesQueue: the contract's checkpoints are exactly the
// queue's confirmed ones, in order, ending at the log size.
func checkChainMatchesQueue(t *testing.T, l *anchor.Log, c bind.ContractBackend, contract common.Address, size uint64) {
	t.Helper()
	ctx := testCtx(t)
	inst := abiAnchor.Instance(c, contract)
	n, err := bind.Call(inst, nil, abiAnchor.PackCheckpointCount(), abiAnchor.UnpackCheckpointCount)
	if err != nil {
		t.Fatal(err)
	}
	var onChain []uint64
	for i := int64(0); i < n.Int64(); i++ {
		cp, err := bind.Call(inst, nil, abiAnchor.PackCheckpointAt(big.NewInt(i)), abiAnchor.UnpackCheckpointAt)
		if err != nil {
			t.Fatal(err)
		}
		onChain = append(onChain, cp.TreeSize)
	}
	cps, err := l.Checkpoints(ctx, anchor.CheckpointQuery{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var local []uint64
	for _, c := range cps {
		local = append(local, c.TreeSize)
	}
	if !slices.Equal(local, onChain) {
		t.Fatalf("queue confirmed %v\ncontract holds %v", local, onChain)
	}
	if onChain[len(onChain)-1] != size {
		t.Fatalf("contract ends at %d, log has %d", onChain[len(onChain)-1], size)
	}
	all, _ := l.Checkpoints(ctx, anchor.CheckpointQuery{Limit: 1 << 20, All: true})
	for _, c := range all {
		if !c.Anchored() {
			t.Errorf("checkpoint %d left %s", c.TreeSize, c.State)
		}
	}
}

// verifyAll proves every acknowledged version against the chain.
func verifyAll(t *testing.T, l *anchor.Log, c bind.ContractCaller, acked []ack) {
	t.Helper()
	ctx := testCtx(t)
	cache := map[uint64]anchor.Hash{}
	for _, a := range acked {
		p, err := l.ProofFor(ctx, a.v.Type, a.v.ID, a.v.VID)
		if err != nil {
			t.Fatalf("%s/%s: %v", a.v.Type, a.v.ID, err)
		}
		err = anchor.VerifyProof(p, a.v.Body, func(size uint64) (anchor.Hash, bool, error) {
			if r, ok := cache[size]; ok {
				return r, true, nil
			}
			r, ok, err := RootAt(ctx, c, common.HexToAddress(p.Checkpoint.Contract), size)
			if ok {
				cache[size] = r
			}
			return r, ok, err
		})
		if err != nil {
			t.Fatalf("%s/%s: %v", a.v.Type, a.v.ID, err)
		}
	}
}

// A reorg that drops the block holding an anchoring transaction is
// noticed, and the checkpoint anchored again: the transaction dropped for
// good (pool cleared, the re-sent one is a fee-bumped replacement on the
// same nonce) or re-injected into the pool by geth (re-mined).
func TestReorgSimulated(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	for _, drop := range []bool{true, false} {
		name := map[bool]string{true: "dropped", false: "reinjected"}[drop]
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			sc := startSimChain(t, 200*time.Millisecond)
			sender, err := chain.NewSender(ctx, sc.client, sc.key, chain.SenderOptions{StuckAfter: time.Second, Logger: testLogger(t, slog.LevelInfo)})
			if err != nil {
				t.Fatal(err)
			}
			dep, err := Deploy(ctx, sender, chain.OpenDeployments(""))
			if err != nil {
				t.Fatal(err)
			}
			a := newAnchorer(t, sender, dep)
			st := openStore(t)
			w := &writer{st: st}
			l, stop := runLog(t, anchor.Config{Store: st, Anchorer: a, Interval: time.Hour, ReorgDepth: 32})

			w.mustCreate(t, ctx, 5)
			size1, _ := l.Cut(ctx)
			waitFor(t, 20*time.Second, "first anchor", func() bool { return l.Status().Anchored == size1 })
			w.mustCreate(t, ctx, 6)
			size2, _ := l.Cut(ctx)
			waitFor(t, 20*time.Second, "second anchor", func() bool { return l.Status().Anchored == size2 })
			before := checkpoint(t, l, size2)

			sc.miner.pause(true)
			parent, err := sc.client.HeaderByNumber(ctx, new(big.Int).SetUint64(before.BlockNumber-1))
			if err != nil {
				t.Fatal(err)
			}
			if err := sc.sim.Fork(parent.Hash()); err != nil {
				t.Fatal(err)
			}
			if drop {
				sc.sim.Rollback() // the pool forgets the re-injected transaction
			}
			for i := 0; i < 3; i++ {
				sc.sim.Commit()
			}
			if r, _, _ := RootAt(ctx, sc.client, dep.Address, size2); drop && r != (anchor.Hash{}) {
				t.Fatal("the reorg did not remove the anchor")
			}
			t.Logf("reorg: block %d (%s) replaced", before.BlockNumber, before.BlockHash)
			sc.miner.pause(false)
			waitFor(t, 30*time.Second, "re-anchored", func() bool {
				c := checkpoint(t, l, size2)
				return c.Anchored() && c.BlockHash != before.BlockHash
			})
			stop()
			after := checkpoint(t, l, size2)
			t.Logf("re-anchored in block %d, tx %s (was %s), reorgs noted %d", after.BlockNumber, after.TxHash, before.TxHash, after.Reorgs)
			if r, ok, _ := RootAt(ctx, sc.client, dep.Address, size2); !ok || r != after.Root {
				t.Fatal("root not back on chain")
			}
			if drop && after.TxHash == before.TxHash {
				t.Error("dropped transaction came back unchanged?")
			}
			checkChainMatchesQueue(t, l, sc.client, dep.Address, size2)
			verifyAll(t, l, sc.client, w.acked)
			for _, a := range w.acked {
				p, _ := l.ProofFor(ctx, a.v.Type, a.v.ID, a.v.VID)
				if _, err := Verify(ctx, sc.client, p, a.v.Body); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func checkpoint(t *testing.T, l *anchor.Log, size uint64) anchor.Checkpoint {
	t.Helper()
	cps, err := l.Checkpoints(context.Background(), anchor.CheckpointQuery{After: size - 1, Limit: 1, All: true})
	if err != nil || len(cps) == 0 || cps[0].TreeSize != size {
		t.Fatalf("checkpoint %d: %+v, %v", size, cps, err)
	}
	return cps[0]
}
