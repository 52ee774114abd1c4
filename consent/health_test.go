package consent

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/policy"
)

// Consent-dependent access fails closed while the follower is stopped or
// the node is down for longer than MaxLag, with a clear reason, and
// recovers when it catches up.
func TestLagFailsClosed(t *testing.T) {
	e := newEnv(t, chain.DevConfig{Manual: true})
	pat := e.account(1)
	const maxLag = time.Second
	start := func() *follower {
		fl := e.follow(func(c *Config) { c.MaxLag = maxLag })
		fl.SetPatient(testCtx(t), wallet(pat.Address), "Patient/lag-1")
		fl.AddGrantees(testCtx(t), "Practitioner/lag-doc")
		return fl
	}
	fl := start()
	e.sendGrant(pat.Key, "Practitioner/lag-doc", "Observation.rs", forever)
	fl.caughtUpTo(t, e.mine().Number.Uint64())

	doc := &policy.Principal{Subject: "Practitioner/lag-doc", Role: policy.RolePractitioner, Resource: "Practitioner/lag-doc",
		Scopes: policy.Scopes{Clinical: []policy.Scope{{Context: "user", Type: "Observation", Perms: policy.PermRead | policy.PermSearch}}}}
	target := policy.Target{Type: "Observation", ID: "o1", Patients: []string{"Patient/lag-1"}}
	decide := func(fl *follower) policy.Decision {
		d := &policy.Decider{Consent: fl.consent, Health: fl.Health}
		return d.Decide(doc, policy.Read, target, policy.Glass{})
	}
	if d := decide(fl); !d.Allow {
		t.Fatalf("denied while current: %s", d.Reason)
	}

	// The follower stops: within MaxLag nothing changes, then access fails closed.
	fl.stop()
	stopped := time.Now()
	if err := fl.Health(); err != nil {
		t.Fatalf("unhealthy right after stopping: %v", err)
	}
	eventually(t, 5*time.Second, func() bool { return fl.Health() != nil }, "Health to fail")
	if lag := time.Since(stopped); lag < maxLag-200*time.Millisecond || lag > maxLag+time.Second {
		t.Errorf("failed after %v, want about %v", lag, maxLag)
	}
	err := fl.Health()
	if !errors.Is(err, ErrBehind) || !strings.Contains(err.Error(), "(limit 1s)") {
		t.Errorf("Health: %v", err)
	}
	d := decide(fl)
	if d.Allow || !strings.Contains(d.Reason, "consent cannot be checked now") || !strings.Contains(d.Reason, "behind") {
		t.Errorf("decision while behind: %+v", d)
	}
	t.Logf("403 reason: %s", d.Reason)

	// A new follower is unhealthy until it has caught up, then allows.
	fl2 := start()
	eventually(t, 5*time.Second, func() bool { return fl2.Health() == nil }, "recovery")
	if d := decide(fl2); !d.Allow {
		t.Fatalf("denied after recovery: %s", d.Reason)
	}
}

func TestHealthBeforeFirstCatchUp(t *testing.T) {
	e := newEnv(t, chain.DevConfig{Manual: true})
	pc, _ := policy.NewConsent(time.Now)
	f, err := NewFollower(testCtx(t), Config{Client: e.c, Registry: e.registry, Engine: e.eng, Grants: pc.Grants()})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Health(); !errors.Is(err, ErrBehind) || !strings.Contains(err.Error(), "not caught up") {
		t.Errorf("Health before Run: %v", err)
	}
}

// The node goes away (an RPC node over HTTP, polled): Health fails after
// MaxLag saying the node is not answering, and recovers when the node is
// back.
func TestLagNodeDown(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a chain")
	}
	ctx := testCtx(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dataDir := filepath.Join(t.TempDir(), "chain")
	dev, err := chain.StartDev(ctx, chain.DevConfig{DataDir: dataDir, ListenAddr: addr, BlockPeriod: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { dev.Close() }()
	e := &env{t: t, dev: dev, c: dev.Client(), dir: t.TempDir()}
	e.openEngine()
	gw, _ := chain.NewSender(ctx, dev.Client(), dev.Key(), chain.SenderOptions{Logger: testLogger()})
	r, err := gw.Transact(ctx, chain.TxRequest{Data: regDeployCode(), Gas: 3_000_000})
	if err != nil {
		t.Fatal(err)
	}
	e.registry, e.start = r.ContractAddress, r.BlockNumber.Uint64()
	httpC, err := chain.Dial(ctx, dev.HTTPURL())
	if err != nil {
		t.Fatal(err)
	}
	defer httpC.Close()
	e.c = httpC
	fl := e.follow(func(c *Config) { c.MaxLag = 2 * time.Second; c.PollInterval = 100 * time.Millisecond })
	eventually(t, 10*time.Second, func() bool { return fl.Health() == nil }, "caught up")

	dev.Close()
	down := time.Now()
	eventually(t, 10*time.Second, func() bool { return fl.Health() != nil }, "Health to fail")
	err = fl.Health()
	t.Logf("node down %v: %v", time.Since(down).Round(time.Millisecond), err)
	if !strings.Contains(err.Error(), "not answering") {
		t.Errorf("Health: %v", err)
	}
	dev, err = chain.StartDev(ctx, chain.DevConfig{DataDir: dataDir, ListenAddr: addr, BlockPeriod: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return fl.Health() == nil }, "recovery after the node is back")
}
