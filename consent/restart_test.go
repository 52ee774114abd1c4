package consent

import (
	"crypto/ecdsa"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/chain"
)

// stream sends n random grants and revocations from the given patients
// (each patient's own transactions in order; a revocation only of a grant
// the patient made) and returns when all are mined.
func (e *env) stream(t testing.TB, keys []*ecdsa.PrivateKey, grantees, scopes []string, n int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	type held struct{ g, s string }
	have := make([]map[held]bool, len(keys))
	for i := range have {
		have[i] = map[held]bool{}
	}
	var pend []struct {
		k *ecdsa.PrivateKey
		p *chain.Pending
	}
	for i := 0; i < n; i++ {
		pi := rng.IntN(len(keys))
		k := keys[pi]
		h := held{grantees[rng.IntN(len(grantees))], scopes[rng.IntN(len(scopes))]}
		var p *chain.Pending
		if have[pi][h] && rng.IntN(2) == 0 {
			p = e.sendRevoke(k, h.g, h.s)
			delete(have[pi], h)
		} else {
			exp := uint64(forever)
			if rng.IntN(3) == 0 {
				exp = uint64(time.Now().Unix()) + 3600 + rng.Uint64N(3600)
			}
			p = e.sendGrant(k, h.g, h.s, exp)
			have[pi][h] = true
		}
		pend = append(pend, struct {
			k *ecdsa.PrivateKey
			p *chain.Pending
		}{k, p})
		if rng.IntN(8) == 0 {
			time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		}
	}
	for _, x := range pend {
		e.wait(x.k, x.p)
	}
}

// The gateway restarts (follower stopped, store closed and reopened) many
// times while consent transactions stream in: afterwards every registry
// log was applied exactly once, in order, and the state equals the chain's.
func TestRestartMidStreamLosesNothing(t *testing.T) {
	e := newEnv(t, chain.DevConfig{}) // a block as soon as a transaction is pending
	var keys []*ecdsa.PrivateKey
	for i := 1; i <= 6; i++ {
		keys = append(keys, e.account(i).Key)
	}
	grantees := []string{"Practitioner/a", "Practitioner/b", "Organization/c", "client/d"}
	scopes := []string{"Observation.rs", "DiagnosticReport.r", "*.rs", "Patient.cruds"}
	setup := func(fl *follower) {
		for i, k := range keys {
			fl.SetPatient(testCtx(t), wallet(addrOf(k)), fmt.Sprintf("Patient/p%d", i))
		}
		fl.AddGrantees(testCtx(t), grantees...)
	}

	var (
		mu       sync.Mutex
		all      []Change
		restarts int
	)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the gateway, restarting
		defer wg.Done()
		rng := rand.New(rand.NewPCG(7, 7))
		for {
			fl := e.follow(nil)
			setup(fl)
			select {
			case <-done:
			case <-time.After(time.Duration(10+rng.IntN(90)) * time.Millisecond):
			}
			fl.stop()
			mu.Lock()
			all = append(all, fl.changeLog()...)
			restarts++
			mu.Unlock()
			if rng.IntN(2) == 0 {
				e.reopenEngine()
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	e.stream(t, keys, grantees, scopes, 600, 1)
	close(done)
	wg.Wait()

	fl := e.follow(nil)
	setup(fl)
	head := e.dev.Head().Number.Uint64()
	fl.caughtUpTo(t, head)
	all = append(all, fl.changeLog()...)
	t.Logf("%d restarts over the stream; head %d", restarts, head)

	logs, err := e.c.FilterLogs(testCtx(t), ethereum.FilterQuery{FromBlock: u64(int64(e.start)), ToBlock: u64(int64(head)), Addresses: []common.Address{e.registry}})
	if err != nil {
		t.Fatal(err)
	}
	type id struct {
		tx    common.Hash
		index uint
	}
	var applied []id
	for _, c := range all {
		if c.Undone {
			t.Fatalf("unexpected undo of block %d", c.Block)
		}
		for _, ev := range c.Events {
			applied = append(applied, id{ev.Tx, ev.Index})
		}
	}
	if len(applied) != len(logs) {
		t.Errorf("applied %d events, the chain has %d", len(applied), len(logs))
	}
	for i := range min(len(applied), len(logs)) {
		if want := (id{logs[i].TxHash, logs[i].Index}); applied[i] != want {
			t.Fatalf("event %d applied is %v, want %v (lost, repeated or out of order)", i, applied[i], want)
		}
	}
	checkAgainstChain(t, e, fl)
}
