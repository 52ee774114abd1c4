package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/internal/synth"
	"github.com/fhirgate/fhirgate/internal/testgateway"
	"github.com/fhirgate/fhirgate/policy"
)

// TestPractitionerRead runs the practitioner setup against the real
// gateway binary and its embedded chain (patients sign in with their
// wallets, grants relayed gas-free), then a short practitioner read
// phase: every read is a consent-checked 200, and a patient who granted
// nothing is refused to the same token, so the phase cannot measure 403s.
func TestPractitionerRead(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway with its chain")
	}
	start := time.Now()
	gw := testgateway.Start(t, "")
	sys := gw.Token(t, "system/*.cruds "+policy.ScopeIdentityLinking)
	var log strings.Builder
	res, s, err := runPractitionerRead(practitionerConfig{
		base: gw.Base, token: sys, patients: 4, scope: "Patient.rs", clients: 2,
		warmup: 200 * time.Millisecond, duration: time.Second, seed: 1, systemSame: true, grantWait: 20 * time.Second,
	}, &log)
	t.Log(log.String())
	if err != nil {
		t.Fatalf("%v\ngateway log:\n%s", err, gw.Logs())
	}
	if len(res) != 2 || res[0].Name != "read-practitioner" || res[1].Name != "read-system-same" {
		t.Fatalf("phases %v", res)
	}
	for _, r := range res {
		if r.OK == 0 || r.Errors() != 0 {
			t.Errorf("%s: %d reads, %d errors (%v, first: %s)", r.Name, r.OK, r.Errors(), r.Codes, r.FirstErr)
		}
	}
	if len(s.patients) != 4 || s.control == "" || !strings.HasPrefix(s.practitioner, "Practitioner/") {
		t.Fatalf("setup: %+v", s)
	}
	ctx := context.Background()
	for _, id := range s.patients {
		if st, body, err := readStatus(ctx, gw.Base, s.token, "Patient", id); err != nil || st != 200 {
			t.Errorf("granted Patient/%s: %d %v %.200s", id, st, err, body)
		}
	}
	// The same token on a patient without a grant: refused.
	if st, body, err := readStatus(ctx, gw.Base, s.token, "Patient", s.control); err != nil || st != 404 {
		t.Errorf("Patient/%s, who granted nothing: %d %v %.200s", s.control, st, err, body)
	}
	// The token is a practitioner's, not a system's: the system token
	// reads the control patient (its own record).
	if st, _, err := readStatus(ctx, gw.Base, sys, "Patient", s.control); err != nil || st != 200 {
		t.Errorf("system read of Patient/%s: %d %v", s.control, st, err)
	}
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// TestBenchPatient checks that the wallet identifier lands in the
// synthetic Patient's identifier list, as valid JSON.
func TestBenchPatient(t *testing.T) {
	w, err := newWallet()
	if err != nil {
		t.Fatal(err)
	}
	b, err := benchPatient(synth.New(1), 7, w.walletIdentifier(1337))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		ResourceType string
		Identifier   []struct{ System, Value string }
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if p.ResourceType != "Patient" || len(p.Identifier) != 2 || p.Identifier[1].System != siwe.CAIP10System || p.Identifier[1].Value != w.caip10(1337) {
		t.Fatalf("identifiers %+v", p.Identifier)
	}
}

// TestSuiteReportPractitioner checks that the report shows the
// practitioner phases, their ratios, the layer table and the target.
func TestSuiteReportPractitioner(t *testing.T) {
	res := func(name string, ok int64, serverUS int) *Result {
		r := &Result{Name: name, Clients: 64, Elapsed: time.Second, OK: ok, Codes: map[int]int64{}}
		r.Hist.Record(time.Millisecond)
		r.CPU = cpuDelta{self: time.Duration(ok) * 10 * time.Microsecond, server: time.Duration(ok) * time.Duration(serverUS) * time.Microsecond,
			serverOK: true, busy: time.Second, total: 2 * time.Second}
		return r
	}
	rd := round{res: map[string]*Result{}, metrics: map[string]phaseMetrics{}, grantsEffective: 900 * time.Millisecond}
	for _, r := range []*Result{res("raw-http", 40000, 20), res("read", 8000, 200), res("read-practitioner", 6000, 250), res("read-system-same", 8000, 200)} {
		rd.res[r.Name] = r
	}
	cfg := suiteConfig{gateway: "bin/gateway", clients: 64, duration: time.Second, rounds: 1, practitionerPatients: 64, practitionerScope: "Patient.rs"}
	var b strings.Builder
	writeSuiteReport(&b, cfg, []round{rd}, suiteInfo{started: time.Now()})
	out := b.String()
	for _, want := range []string{
		"| read-practitioner | GET /Patient/{id} by a practitioner",
		"| read-system-same | GET /Patient/{id}, system token",
		"practitioner reads/s ÷ system reads/s of the same K patients (the consent layer): **0.75**",
		"practitioner reads/s ÷ bare fiber req/s (own process): **0.15**",
		"| + practitioner principal and consent check (same K patients) | read-practitioner | 6000 | 0.75 | 250 µs | +50 µs |",
		"practitioner reads/s at 64 clients: 6000/s, target ≥ 30000/s: **missed by 80 %**",
		"K = 64 patients",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	cfg.noPractitioner = true
	b.Reset()
	writeSuiteReport(&b, cfg, []round{rd}, suiteInfo{started: time.Now()})
	if !strings.Contains(b.String(), "-no-practitioner") || strings.Contains(b.String(), "K = 64") {
		t.Errorf("-no-practitioner report:\n%s", b.String())
	}
}
