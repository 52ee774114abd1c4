package consent

import (
	"context"
	"crypto/ecdsa"
	"math"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/policy"
)

const forever = math.MaxUint64

// Grants, revocations, re-grants and changed expiries reach the policy
// mirror; a grant and its revocation in one block end revoked.
func TestFollowGrantsAndRevocations(t *testing.T) {
	e := newEnv(t, chain.DevConfig{Manual: true})
	alice, bob := e.account(1), e.account(2)
	fl := e.follow(nil)
	if err := fl.SetPatient(testCtx(t), wallet(alice.Address), "Patient/alice-1"); err != nil {
		t.Fatal(err)
	}
	if err := fl.SetPatient(testCtx(t), wallet(bob.Address), "Patient/bob-2"); err != nil {
		t.Fatal(err)
	}
	if err := fl.AddGrantees(testCtx(t), "Practitioner/doc-1", "Organization/org-1", "client/ehr-1"); err != nil {
		t.Fatal(err)
	}
	type check struct {
		grantee, patient, typ string
		perm                  policy.Perm
		want                  bool
	}
	type pend struct {
		key *ecdsa.PrivateKey
		p   *chain.Pending
	}
	var sent []pend
	grant := func(a chain.Account, grantee, scope string, exp uint64) {
		sent = append(sent, pend{a.Key, e.sendGrant(a.Key, grantee, scope, exp)})
	}
	revoke := func(a chain.Account, grantee, scope string) {
		sent = append(sent, pend{a.Key, e.sendRevoke(a.Key, grantee, scope)})
	}
	steps := []struct {
		name   string
		send   func()
		checks []check
	}{
		{"grant DiagnosticReport.rs to a practitioner", func() {
			grant(alice, "Practitioner/doc-1", "DiagnosticReport.rs", forever)
		}, []check{
			{"Practitioner/doc-1", "Patient/alice-1", "DiagnosticReport", policy.PermRead, true},
			{"Practitioner/doc-1", "Patient/alice-1", "DiagnosticReport", policy.PermSearch, true},
			{"Practitioner/doc-1", "Patient/alice-1", "DiagnosticReport", policy.PermUpdate, false},
			{"Practitioner/doc-1", "Patient/alice-1", "Observation", policy.PermRead, false},
			{"Practitioner/doc-1", "Patient/bob-2", "DiagnosticReport", policy.PermRead, false},
		}},
		{"wildcard grant to a client, and to an organization", func() {
			grant(bob, "client/ehr-1", "*.rs", forever)
			grant(bob, "Organization/org-1", "Observation.cruds", forever)
		}, []check{
			{"client/ehr-1", "Patient/bob-2", "Observation", policy.PermRead, true},
			{"client/ehr-1", "Patient/bob-2", "Patient", policy.PermSearch, true},
			{"client/ehr-1", "Patient/bob-2", "Patient", policy.PermDelete, false},
			{"Organization/org-1", "Patient/bob-2", "Observation", policy.PermDelete, true},
		}},
		{"revoke", func() {
			revoke(alice, "Practitioner/doc-1", "DiagnosticReport.rs")
		}, []check{
			{"Practitioner/doc-1", "Patient/alice-1", "DiagnosticReport", policy.PermRead, false},
			{"client/ehr-1", "Patient/bob-2", "Observation", policy.PermRead, true},
		}},
		{"grant then revoke in the same block", func() {
			grant(alice, "Practitioner/doc-1", "Observation.r", forever)
			revoke(alice, "Practitioner/doc-1", "Observation.r")
		}, []check{
			{"Practitioner/doc-1", "Patient/alice-1", "Observation", policy.PermRead, false},
		}},
		{"revoke then grant in the same block", func() {
			revoke(bob, "client/ehr-1", "*.rs")
			grant(bob, "client/ehr-1", "*.rs", forever)
		}, []check{
			{"client/ehr-1", "Patient/bob-2", "Observation", policy.PermRead, true},
		}},
		{"re-grant with a shorter expiry (a few seconds)", func() {
			grant(bob, "Organization/org-1", "Observation.cruds", e.dev.Head().Time+3) // manual blocks run ahead of the wall clock
		}, []check{
			{"Organization/org-1", "Patient/bob-2", "Observation", policy.PermRead, true},
		}},
	}
	for _, st := range steps {
		sent = sent[:0]
		st.send()
		h := e.mine()
		for _, p := range sent {
			if r := e.wait(p.key, p.p); r.BlockNumber.Uint64() != h.Number.Uint64() {
				t.Fatalf("%s: mined in block %d, not %d", st.name, r.BlockNumber, h.Number)
			}
		}
		fl.caughtUpTo(t, h.Number.Uint64())
		for _, c := range st.checks {
			if got := fl.allowed(c.grantee, c.patient, c.typ, c.perm); got != c.want {
				t.Errorf("%s: %s %s %s %v = %v, want %v", st.name, c.grantee, c.patient, c.typ, c.perm, got, c.want)
			}
		}
	}
	// The shortened grant expires by the wall clock.
	eventually(t, 15*time.Second, func() bool {
		return !fl.allowed("Organization/org-1", "Patient/bob-2", "Observation", policy.PermRead)
	}, "expiry of the shortened grant")
	st := fl.Status()
	if st.Events != 9 {
		t.Errorf("events applied = %d, want 9", st.Events)
	}
	if err := fl.Health(); err != nil {
		t.Errorf("Health: %v", err)
	}
}

// A grant to a grantee or from a wallet the gateway does not know yet is
// kept and applied when they become known; unknown scopes never apply.
func TestPendingIdentities(t *testing.T) {
	e := newEnv(t, chain.DevConfig{Manual: true})
	carol := e.account(3)
	fl := e.follow(nil)
	e.sendGrant(carol.Key, "Practitioner/late-1", "Observation.rs", forever)
	e.sendGrant(carol.Key, "Practitioner/late-1", "Nonsense.rs", forever)    // no such type
	e.sendGrant(carol.Key, "Practitioner/late-1", "Observation.sr", forever) // wrong order
	h := e.mine()
	fl.caughtUpTo(t, h.Number.Uint64())
	if fl.allowed("Practitioner/late-1", "Patient/carol-3", "Observation", policy.PermRead) {
		t.Fatal("allowed before the patient and practitioner are known")
	}
	if got := fl.UnmappedWallets(); len(got) != 1 || got[0] != wallet(carol.Address) {
		t.Errorf("UnmappedWallets = %v", got)
	}
	if err := fl.SetPatient(testCtx(t), wallet(carol.Address), "Patient/carol-3"); err != nil {
		t.Fatal(err)
	}
	if fl.allowed("Practitioner/late-1", "Patient/carol-3", "Observation", policy.PermRead) {
		t.Fatal("allowed before the practitioner is known")
	}
	if st := fl.Status(); st.Unmapped != 3 || st.Grants != 3 {
		t.Errorf("status %+v, want 3 grants, 3 unmapped", st)
	}
	// The practitioner registers after the grant.
	if err := fl.AddGrantees(testCtx(t), "Practitioner/late-1"); err != nil {
		t.Fatal(err)
	}
	if !fl.allowed("Practitioner/late-1", "Patient/carol-3", "Observation", policy.PermRead) {
		t.Fatal("not allowed once patient and practitioner are known")
	}
	if st := fl.Status(); st.Unmapped != 2 || st.InForce != 1 {
		t.Errorf("status %+v, want 2 unmapped (the bad scopes), 1 in force", st)
	}
	// The preimage and the wallet mapping were kept: a restarted follower
	// applies the grant before the gateway feeds it again.
	fl.stop()
	fl2 := e.follow(nil)
	if !fl2.allowed("Practitioner/late-1", "Patient/carol-3", "Observation", policy.PermRead) {
		t.Fatal("restarted follower lost the grantee's preimage or the wallet mapping")
	}
	// Unmapping the wallet withdraws the grant from the policy.
	if err := fl2.SetPatient(testCtx(t), wallet(carol.Address), ""); err != nil {
		t.Fatal(err)
	}
	if fl2.allowed("Practitioner/late-1", "Patient/carol-3", "Observation", policy.PermRead) {
		t.Fatal("allowed after the wallet was unmapped")
	}
}

// A resolver maps wallets the gateway has not pushed.
func TestPatientResolver(t *testing.T) {
	e := newEnv(t, chain.DevConfig{Manual: true})
	dan := e.account(4)
	res := resolverFunc(func(w string) (string, error) {
		if w == wallet(dan.Address) {
			return "Patient/dan-4", nil
		}
		return "", nil
	})
	fl := e.follow(func(c *Config) { c.Patients = res })
	if err := fl.AddGrantees(testCtx(t), "Practitioner/p1"); err != nil {
		t.Fatal(err)
	}
	e.sendGrant(dan.Key, "Practitioner/p1", "Observation.r", forever)
	h := e.mine()
	fl.caughtUpTo(t, h.Number.Uint64())
	eventually(t, 5*time.Second, func() bool {
		return fl.allowed("Practitioner/p1", "Patient/dan-4", "Observation", policy.PermRead)
	}, "resolved patient")
}

type resolverFunc func(string) (string, error)

func (r resolverFunc) PatientByWallet(_ context.Context, w string) (string, error) { return r(w) }

// Two wallets of one patient granting the same scope: the policy holds the
// later expiry, and revoking one leaves the other in force.
func TestTwoWalletsOnePatient(t *testing.T) {
	e := newEnv(t, chain.DevConfig{Manual: true})
	w1, w2 := e.account(5), e.account(6)
	fl := e.follow(nil)
	fl.SetPatient(testCtx(t), wallet(w1.Address), "Patient/erin")
	fl.SetPatient(testCtx(t), wallet(w2.Address), "Patient/erin")
	fl.AddGrantees(testCtx(t), "Practitioner/p2")
	e.sendGrant(w1.Key, "Practitioner/p2", "Observation.r", uint64(time.Now().Unix()+3600))
	e.sendGrant(w2.Key, "Practitioner/p2", "Observation.r", forever)
	h := e.mine()
	fl.caughtUpTo(t, h.Number.Uint64())
	gs := fl.consent.Grants().Of("Patient/erin")
	if len(gs) != 1 || !gs[0].Expiry.Equal(policy.Forever) {
		t.Fatalf("grants %+v, want one until revoked", gs)
	}
	e.sendRevoke(w2.Key, "Practitioner/p2", "Observation.r")
	h = e.mine()
	fl.caughtUpTo(t, h.Number.Uint64())
	gs = fl.consent.Grants().Of("Patient/erin")
	if len(gs) != 1 || gs[0].Expiry.Equal(policy.Forever) {
		t.Fatalf("grants %+v, want the first wallet's", gs)
	}
	e.sendRevoke(w1.Key, "Practitioner/p2", "Observation.r")
	h = e.mine()
	fl.caughtUpTo(t, h.Number.Uint64())
	if gs := fl.consent.Grants().Of("Patient/erin"); len(gs) != 0 {
		t.Fatalf("grants %+v after both revoked", gs)
	}
}

func TestScopeTable(t *testing.T) {
	if n := ScopeCount(); n != 147*31 {
		t.Fatalf("%d scopes, want %d", n, 147*31)
	}
	for _, s := range []string{"DiagnosticReport.rs", "*.cruds", "*.r", "Patient.c", "VisionPrescription.cruds", "Observation.rs"} {
		got, ok := ScopeName(consentsig.Scope(s))
		if !ok || got != s {
			t.Errorf("ScopeName(%s) = %q, %v", s, got, ok)
		}
		if _, _, err := policy.ParseScope(s); err != nil {
			t.Errorf("policy refuses %s: %v", s, err)
		}
	}
	for _, s := range []string{"DiagnosticReport.sr", "DiagnosticReport.read", "*.*", "Foo.r", "DiagnosticReport.", ".rs", "diagnosticreport.rs"} {
		if _, ok := ScopeName(consentsig.Scope(s)); ok {
			t.Errorf("ScopeName(%s) known", s)
		}
	}
	if _, ok := ScopeName(common.Hash{}); ok {
		t.Error("zero hash known")
	}
}

func TestCAIP10(t *testing.T) {
	a := common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
	for _, tc := range []struct {
		in   string
		ok   bool
		id   uint64
		addr common.Address
	}{
		{"eip155:1337:0x70997970C51812dc3A010C7d01b50e0d17dc79C8", true, 1337, a},
		{"eip155:1337:0x70997970c51812dc3a010c7d01b50e0d17dc79c8", true, 1337, a},
		{"eip155:1:0x70997970c51812dc3a010c7d01b50e0d17dc79c8", true, 1, a},
		{"eip155:01:0x70997970c51812dc3a010c7d01b50e0d17dc79c8", false, 0, common.Address{}},
		{"eip155:0:0x70997970c51812dc3a010c7d01b50e0d17dc79c8", false, 0, common.Address{}},
		{"eip155:1337:70997970c51812dc3a010c7d01b50e0d17dc79c8", false, 0, common.Address{}},
		{"eip155:1337:0x70997970c51812dc3a010c7d01b50e0d17dc79", false, 0, common.Address{}},
		{"cosmos:1337:0x70997970c51812dc3a010c7d01b50e0d17dc79c8", false, 0, common.Address{}},
		{"eip155:1337", false, 0, common.Address{}},
		{"", false, 0, common.Address{}},
	} {
		id, addr, err := ParseCAIP10(tc.in)
		if (err == nil) != tc.ok || id != tc.id || addr != tc.addr {
			t.Errorf("ParseCAIP10(%q) = %d, %s, %v", tc.in, id, addr.Hex(), err)
		}
	}
	if s := CAIP10(1337, a); s != "eip155:1337:0x70997970C51812dc3A010C7d01b50e0d17dc79C8" {
		t.Errorf("CAIP10 = %s", s)
	}
}

func TestValidGrantee(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"Practitioner/123", true}, {"Organization/a-b.c", true}, {"client/ehr-1", true},
		{"Patient/1", false}, {"Practitioner/", false}, {"Practitioner/a/b", false}, {"Practitioner/a b", false},
		{"client/", false}, {"client/a b", false}, {"practitioner/1", false}, {"", false},
	} {
		if err := ValidGrantee(tc.in); (err == nil) != tc.ok {
			t.Errorf("ValidGrantee(%q) = %v", tc.in, err)
		}
	}
}
