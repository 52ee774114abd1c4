package consent

import (
	"crypto/ecdsa"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/policy"
)

// replaceTx sends data from key with nonce, paying enough to replace a
// pooled transaction of the same nonce.
func (e *env) replaceTx(key *ecdsa.PrivateKey, nonce uint64, data []byte) *types.Transaction {
	e.t.Helper()
	// The pool resets to the new head asynchronously after a rewind:
	// until then it still counts the rewound transactions.
	e.waitPool(crypto.PubkeyToAddress(key.PublicKey), nonce+1)
	return e.sendRaw(key, nonce, data)
}

// sendRaw sends data to the registry from key with nonce and a high tip.
func (e *env) sendRaw(key *ecdsa.PrivateKey, nonce uint64, data []byte) *types.Transaction {
	e.t.Helper()
	to := e.registry
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(big.NewInt(chain.DevChainID)), &types.DynamicFeeTx{
		ChainID: big.NewInt(chain.DevChainID), Nonce: nonce, GasTipCap: big.NewInt(5e9), GasFeeCap: big.NewInt(500e9),
		Gas: 150_000, To: &to, Data: data,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.c.SendTransaction(testCtx(e.t), tx); err != nil {
		e.t.Fatal(err)
	}
	return tx
}

// waitPool waits until the pool (after a rewind) holds the account's
// transactions up to nonce next-1 again.
func (e *env) waitPool(a common.Address, next uint64) {
	e.t.Helper()
	eventually(e.t, 10*time.Second, func() bool {
		n, err := e.c.PendingNonceAt(testCtx(e.t), a)
		if err != nil {
			e.t.Fatal(err)
		}
		return n == next
	}, "pool reset")
	time.Sleep(50 * time.Millisecond)
}

func (e *env) rewind(n uint64) {
	e.t.Helper()
	if err := e.dev.Rewind(testCtx(e.t), n); err != nil {
		e.t.Fatal(err)
	}
}

// A reorg that drops a block the follower applied undoes its events
// (restoring what they replaced) and applies the new branch instead.
func TestReorgUndoesAndRedoes(t *testing.T) {
	e := newEnv(t, chain.DevConfig{Manual: true})
	pat := e.account(1)
	fl := e.follow(nil)
	fl.SetPatient(testCtx(t), wallet(pat.Address), "Patient/r-1")
	fl.AddGrantees(testCtx(t), "Practitioner/r-doc")
	allowed := func(typ string) bool {
		return fl.allowed("Practitioner/r-doc", "Patient/r-1", typ, policy.PermRead)
	}
	mineTo := func() uint64 {
		t.Helper()
		h := e.mine()
		fl.caughtUpTo(t, h.Number.Uint64())
		if fl.Status().BlockHash != h.Hash() {
			t.Fatalf("follower at %s, head %s", fl.Status().BlockHash.Hex(), h.Hash().Hex())
		}
		return h.Number.Uint64()
	}

	// 1. Undo: grant Observation in block k; a reorg replaces that
	// transaction with a grant of Condition.
	p := e.sendGrant(pat.Key, "Practitioner/r-doc", "Observation.r", forever)
	k := mineTo()
	if !allowed("Observation") {
		t.Fatal("grant not applied")
	}
	waitProj(t, fl, 1)
	e.rewind(k - 1)
	e.replaceTx(pat.Key, p.Nonce(), regABI.PackGrant(consentsig.Grantee("Practitioner/r-doc"), consentsig.Scope("Condition.r"), forever))
	mineTo()
	if allowed("Observation") || !allowed("Condition") {
		t.Fatalf("after reorg: Observation %v (want false), Condition %v (want true)", allowed("Observation"), allowed("Condition"))
	}
	if n := fl.Status().Events; n != 1 {
		t.Errorf("events %d, want 1", n)
	}
	waitProj(t, fl, 1) // the Observation Consent was deleted

	// 2. Redo: the same transaction is mined again in the new branch.
	p = e.sendGrant(pat.Key, "Practitioner/r-doc", "Encounter.r", forever)
	k = mineTo()
	e.rewind(k - 1)
	e.waitPool(pat.Address, p.Nonce()+1)
	mineTo() // the pool re-includes it
	if !allowed("Encounter") || !allowed("Condition") {
		t.Fatal("redo lost a grant")
	}
	if n := fl.Status().Events; n != 2 {
		t.Errorf("events %d, want 2", n)
	}

	// 3. A dropped revocation restores the grant it had revoked.
	p = e.sendRevoke(pat.Key, "Practitioner/r-doc", "Condition.r")
	k = mineTo()
	if allowed("Condition") {
		t.Fatal("revocation not applied")
	}
	e.rewind(k - 1)
	e.replaceTx(pat.Key, p.Nonce(), regABI.PackGrant(consentsig.Grantee("Practitioner/r-doc"), consentsig.Scope("Procedure.r"), forever))
	mineTo()
	if !allowed("Condition") || !allowed("Procedure") {
		t.Fatalf("after reorg: Condition %v Procedure %v, want both", allowed("Condition"), allowed("Procedure"))
	}

	// The change log: every undone block was applied before, and what is
	// applied now matches the chain's logs exactly once.
	var undone, applied int
	for _, c := range fl.changeLog() {
		if c.Undone {
			undone++
		} else {
			applied++
		}
	}
	if undone != 3 || applied != 6 {
		t.Errorf("%d undone, %d applied; want 3, 6", undone, applied)
	}
	if st := fl.Status(); st.Rebuilds != 0 || st.Reorgs != 3 {
		t.Errorf("rebuilds %d reorgs %d, want 0, 3", st.Rebuilds, st.Reorgs)
	}
	checkAgainstChain(t, e, fl)
}

func waitProj(t *testing.T, fl *follower, n int) {
	t.Helper()
	eventually(t, 5e9, func() bool {
		fl.tmu.Lock()
		defer fl.tmu.Unlock()
		return len(fl.projs) == n
	}, "%d projections", n)
}

// A reorg deeper than the kept history rebuilds the state from the
// registry's deployment block.
func TestDeepReorgRebuilds(t *testing.T) {
	e := newEnv(t, chain.DevConfig{Manual: true})
	pat := e.account(2)
	fl := e.follow(func(c *Config) { c.ReorgWindow = 2 })
	fl.SetPatient(testCtx(t), wallet(pat.Address), "Patient/d-1")
	fl.AddGrantees(testCtx(t), "Practitioner/d-doc")
	e.sendGrant(pat.Key, "Practitioner/d-doc", "Observation.r", forever)
	p := e.sendGrant(pat.Key, "Practitioner/d-doc", "Condition.r", forever)
	k := e.mine().Number.Uint64()
	for i := 0; i < 5; i++ {
		e.mine()
	}
	fl.caughtUpTo(t, k+5)
	if fl.Status().UndoDepth != 0 {
		t.Fatalf("undo records kept beyond the window: %d", fl.Status().UndoDepth)
	}
	e.rewind(k - 1)
	// The first grant is mined again; the second is replaced.
	e.replaceTx(pat.Key, p.Nonce(), regABI.PackGrant(consentsig.Grantee("Practitioner/d-doc"), consentsig.Scope("Procedure.r"), forever))
	var h *types.Header
	for i := 0; i < 7; i++ {
		h = e.mine()
	}
	eventually(t, 10e9, func() bool { return fl.Status().BlockHash == h.Hash() }, "follower on the new branch")
	for typ, want := range map[string]bool{"Observation": true, "Condition": false, "Procedure": true} {
		if got := fl.allowed("Practitioner/d-doc", "Patient/d-1", typ, policy.PermRead); got != want {
			t.Errorf("%s: %v, want %v", typ, got, want)
		}
	}
	if st := fl.Status(); st.Rebuilds != 1 {
		t.Errorf("rebuilds %d, want 1", st.Rebuilds)
	}
	checkAgainstChain(t, e, fl)
}

// State of another registry (redeployed on a reset chain) is discarded:
// the old registry's Consents are deleted and the new one is followed.
func TestRegistryChangeResetsState(t *testing.T) {
	e := newEnv(t, chain.DevConfig{Manual: true})
	pat := e.account(1)
	fl := e.follow(nil)
	fl.SetPatient(testCtx(t), wallet(pat.Address), "Patient/m-1")
	fl.AddGrantees(testCtx(t), "Practitioner/m-doc")
	e.sendGrant(pat.Key, "Practitioner/m-doc", "Observation.r", forever)
	fl.caughtUpTo(t, e.mine().Number.Uint64())
	waitProj(t, fl, 1)
	fl.stop()

	p, err := e.gw.Send(testCtx(t), chain.TxRequest{Data: regDeployCode(), Gas: 3_000_000})
	if err != nil {
		t.Fatal(err)
	}
	e.mine()
	r, err := e.gw.Wait(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	e.registry, e.start = r.ContractAddress, r.BlockNumber.Uint64()
	fl2 := e.follow(nil)
	fl2.caughtUpTo(t, e.dev.Head().Number.Uint64())
	if fl2.allowed("Practitioner/m-doc", "Patient/m-1", "Observation", policy.PermRead) || fl2.Status().Grants != 0 {
		t.Fatal("grant of the old registry survived")
	}
	eventually(t, 5*time.Second, func() bool {
		fl2.tmu.Lock()
		defer fl2.tmu.Unlock()
		return fl2.nproj == 1 && len(fl2.projs) == 0
	}, "deletion of the old registry's Consent")
	e.sendGrant(pat.Key, "Practitioner/m-doc", "Condition.r", forever)
	fl2.caughtUpTo(t, e.mine().Number.Uint64())
	if !fl2.allowed("Practitioner/m-doc", "Patient/m-1", "Condition", policy.PermRead) {
		t.Fatal("new registry not followed (the wallet mapping must survive the reset)")
	}
}
