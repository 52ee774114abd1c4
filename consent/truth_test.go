package consent

import (
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
)

// checkAgainstChain compares the follower's state with the chain: every
// row's expiry equals the contract's expiryOf at the follower's block, and
// the number of events applied equals the number of registry logs up to
// it.
func checkAgainstChain(t testing.TB, e *env, fl *follower) {
	t.Helper()
	ctx := testCtx(t)
	st := fl.Status()
	logs, err := e.c.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: u64(int64(e.start)), ToBlock: u64(int64(st.Block)), Addresses: []common.Address{e.registry},
	})
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(logs)) != st.Events {
		t.Errorf("follower applied %d events, the chain has %d logs up to block %d", st.Events, len(logs), st.Block)
	}
	keys := map[gkey]bool{}
	for _, l := range logs {
		keys[gkey{Patient: common.BytesToAddress(l.Topics[1][:]), Grantee: l.Topics[2], Scope: l.Topics[3]}] = true
	}
	inst := regABI.Instance(e.c, e.registry)
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if len(fl.rows) != len(keys) {
		t.Errorf("follower has %d rows, chain %d grant keys", len(fl.rows), len(keys))
	}
	for k := range keys {
		exp, err := bind.Call(inst, &bind.CallOpts{BlockNumber: u64(int64(st.Block))}, regABI.PackExpiryOf(k.Patient, k.Grantee, k.Scope), regABI.UnpackExpiryOf)
		if err != nil {
			t.Fatal(err)
		}
		r := fl.rows[k]
		if r == nil || r.Expiry != exp {
			t.Errorf("grant %x/%x: follower %+v, chain expiry %d", k.Grantee[:4], k.Scope[:4], r, exp)
		}
	}
	// The policy mirror holds exactly the live, mapped grants.
	now := time.Now().Unix()
	want := map[string][]string{}
	for k, r := range fl.rows {
		p, ok1 := fl.patients[k.Patient]
		g, ok2 := fl.grantees[k.Grantee]
		sc, ok3 := ScopeName(k.Scope)
		if ok1 && ok2 && ok3 && r.active(now) {
			want[p] = append(want[p], g+" "+sc)
		}
	}
	pats := map[string]bool{}
	for _, p := range fl.patients {
		pats[p] = true
	}
	for p := range pats {
		var got []string
		for _, g := range fl.consent.Grants().Of(p) {
			got = append(got, g.Grantee+" "+g.Scope)
		}
		slices.Sort(got)
		w := want[p]
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("policy for %s: %v, want %v", p, got, w)
		}
	}
}
