package ethanchor

import (
	"crypto/ecdsa"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/bindings"
)

// gatewayChain is the embedded dev chain as the gateway runs it: its own
// key funded at genesis, a block per transaction.
func gatewayChain(t *testing.T) (*chain.DevChain, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := crypto.GenerateKey()
	d, err := chain.StartDev(testCtx(t), chain.DevConfig{GatewayKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, key
}

func sender(t *testing.T, c *chain.Client, key *ecdsa.PrivateKey) *chain.Sender {
	t.Helper()
	s, err := chain.NewSender(testCtx(t), c, key, chain.SenderOptions{PollInterval: 10 * time.Millisecond, Logger: testLogger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Finding 10 of issue 14: with dev account 0's public key an attacker
// made itself the anchorer. The contract is now the gateway key's: the
// attacker's setAnchorer and transferOwnership revert, the roles stay.
func TestAttackerWithDevKeyCannotChangeAnchorer(t *testing.T) {
	ctx := testCtx(t)
	d, key := gatewayChain(t)
	gw := sender(t, d.Client(), key)
	dep, err := Deploy(ctx, gw, chain.OpenDeployments(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ClaimRoles(ctx, gw, dep.Address, chain.DevAccounts()[0].Key, chain.SenderOptions{}); err != nil {
		t.Fatal(err)
	}
	attacker := sender(t, d.Client(), chain.DevAccounts()[0].Key)
	for name, data := range map[string][]byte{
		"setAnchorer":       abiAnchor.PackSetAnchorer(attacker.Address()),
		"transferOwnership": abiAnchor.PackTransferOwnership(attacker.Address()),
	} {
		_, err := attacker.Transact(ctx, chain.TxRequest{To: &dep.Address, Data: data, Gas: 100_000})
		if !errors.Is(err, chain.ErrReverted) {
			t.Errorf("attacker's %s: %v, want a revert", name, err)
		}
	}
	r, err := ReadRoles(ctx, d.Client(), dep.Address)
	if err != nil {
		t.Fatal(err)
	}
	if r.Owner != gw.Address() || r.Anchorer != gw.Address() {
		t.Errorf("roles after the attack: %+v, gateway %s", r, gw.Address())
	}
	a := newAnchorer(t, gw, dep)
	if err := a.Preflight(ctx); err != nil {
		t.Errorf("Preflight: %v", err)
	}
}

// An AuditAnchor an earlier version left with dev account 0 is taken
// over: the gateway's key becomes owner and anchorer, and dev account 0
// can change nothing afterwards. One owned by anyone else is refused.
func TestClaimRolesFromDevAccount(t *testing.T) {
	ctx := testCtx(t)
	d, key := gatewayChain(t)
	dev0 := sender(t, d.Client(), chain.DevAccounts()[0].Key)
	old, err := Deploy(ctx, dev0, chain.OpenDeployments("")) // owner and anchorer: dev account 0
	if err != nil {
		t.Fatal(err)
	}
	gw := sender(t, d.Client(), key)
	changed, err := ClaimRoles(ctx, gw, old.Address, chain.DevAccounts()[0].Key, chain.SenderOptions{})
	if err != nil || !changed {
		t.Fatalf("ClaimRoles: %v, changed %v", err, changed)
	}
	if r, _ := ReadRoles(ctx, d.Client(), old.Address); r.Owner != gw.Address() || r.Anchorer != gw.Address() {
		t.Errorf("roles %+v", r)
	}
	if changed, err := ClaimRoles(ctx, gw, old.Address, chain.DevAccounts()[0].Key, chain.SenderOptions{}); err != nil || changed {
		t.Errorf("again: %v, changed %v", err, changed)
	}
	if _, err := dev0.Transact(ctx, chain.TxRequest{To: &old.Address, Data: abiAnchor.PackSetAnchorer(dev0.Address()), Gas: 100_000}); !errors.Is(err, chain.ErrReverted) {
		t.Errorf("dev account 0 after the takeover: %v", err)
	}

	// Someone took the contract before the gateway could.
	taken, err := Deploy(ctx, dev0, chain.OpenDeployments(""))
	if err != nil {
		t.Fatal(err)
	}
	thief := chain.DevAccounts()[5].Address
	if _, err := dev0.Transact(ctx, chain.TxRequest{To: &taken.Address, Data: abiAnchor.PackTransferOwnership(thief)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ClaimRoles(ctx, gw, taken.Address, chain.DevAccounts()[0].Key, chain.SenderOptions{}); !errors.Is(err, ErrRolesTaken) || !strings.Contains(err.Error(), thief.Hex()) {
		t.Errorf("contract owned by another: %v", err)
	}
}

// When the owner gives the anchorer role to another account, the running
// Log stops sending, its Health fails with ErrNoRole and the metric's
// reason is not_anchorer; the role given back, anchoring resumes.
func TestRoleTakenAwayFailsHealth(t *testing.T) {
	ctx := testCtx(t)
	d, key := gatewayChain(t)
	gw := sender(t, d.Client(), key)
	dep, err := Deploy(ctx, gw, chain.OpenDeployments(""))
	if err != nil {
		t.Fatal(err)
	}
	a := newAnchorer(t, gw, dep)
	st := openStore(t)
	w := &writer{st: st}
	l, _ := runLog(t, anchor.Config{Store: st, Anchorer: a, Interval: 100 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, ChainPollInterval: 50 * time.Millisecond, PreflightInterval: 100 * time.Millisecond})
	w.mustCreate(t, ctx, 3)
	waitFor(t, 30*time.Second, "first anchor", func() bool { return l.Status().Anchored == 3 })
	if err := l.Health(); err != nil {
		t.Fatalf("Health: %v", err)
	}

	// The owner (the gateway's own key, used by the test) hands the role
	// to someone else. The gateway's Sender learns of the used nonce when
	// it next sends.
	owner := sender(t, d.Client(), key)
	other := chain.DevAccounts()[1].Address
	if _, err := owner.Transact(ctx, chain.TxRequest{To: &dep.Address, Data: abiAnchor.PackSetAnchorer(other)}); err != nil {
		t.Fatal(err)
	}
	w.mustCreate(t, ctx, 2)
	waitFor(t, 30*time.Second, "Health to fail", func() bool { return l.Health() != nil })
	err = l.Health()
	if !errors.Is(err, anchor.ErrCannotAnchor) || !strings.Contains(err.Error(), other.Hex()) {
		t.Errorf("Health: %v", err)
	}
	if s := l.Status(); s.Blocked == "" || s.Anchored != 3 {
		t.Errorf("status %+v", s)
	}
	if _, err := owner.Transact(ctx, chain.TxRequest{To: &dep.Address, Data: abiAnchor.PackSetAnchorer(gw.Address())}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "anchoring to resume", func() bool { return l.Status().Anchored == 5 && l.Health() == nil })
}

// An anchorer without ether is reported (ErrNoFunds) before it sends.
func TestPreflightNoFunds(t *testing.T) {
	ctx := testCtx(t)
	d, key := gatewayChain(t)
	gw := sender(t, d.Client(), key)
	poor, _ := crypto.GenerateKey()
	poorAddr := crypto.PubkeyToAddress(poor.PublicKey)
	r, err := gw.Transact(ctx, chain.TxRequest{Data: append(common.FromHex(bindings.AuditAnchorMetaData.Bin), abiAnchor.PackConstructor(poorAddr)...)})
	if err != nil {
		t.Fatal(err)
	}
	a := newAnchorer(t, sender(t, d.Client(), poor), chain.Deployment{Address: r.ContractAddress, Block: r.BlockNumber.Uint64()})
	if err := a.Preflight(ctx); !errors.Is(err, anchor.ErrNoFunds) {
		t.Errorf("Preflight of an account without ether: %v", err)
	}
}
