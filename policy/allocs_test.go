package policy

import (
	"testing"
	"time"
)

// Allocation budgets of the decision (issue 18): it runs on every request
// and for every record a search finds, so it must not allocate on the
// paths readers take. Machine-independent, unlike a benchmark.
func TestDecideAllocationBudget(t *testing.T) {
	c, err := NewConsent(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	c.Grants().Set(Grant{Patient: "Patient/p", Grantee: "Practitioner/doc", Scope: "DiagnosticReport.rs", Expiry: Forever})
	d := &Decider{Consent: c, Health: func() error { return nil }}
	scopes := func(s string) Scopes {
		sc, err := ParseScopes(s)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	report := Target{Type: "DiagnosticReport", ID: "r", Patients: []string{"Patient/p"}, Creator: "client/ehr"}
	for _, tc := range []struct {
		name   string
		p      *Principal
		in     Interaction
		t      Target
		allow  bool
		budget float64
	}{
		{"patient reads their own", &Principal{Subject: "Patient/p", Role: RolePatient, Resource: "Patient/p", Scopes: scopes("patient/*.rs")}, Read, report, true, 0},
		{"practitioner reads by grant", &Principal{Subject: "Practitioner/doc", Role: RolePractitioner, Resource: "Practitioner/doc", Scopes: scopes("user/*.cruds")}, Read, report, true, 0},
		{"practitioner without grant", &Principal{Subject: "Practitioner/other", Role: RolePractitioner, Resource: "Practitioner/other", Scopes: scopes("user/*.cruds")}, Read, report, false, 1}, // the refusal says whose consent is missing
		{"system reads what it authored", &Principal{Subject: "client/ehr", Role: RoleSystem, ClientID: "ehr", Scopes: scopes("system/*.cruds")}, Read, report, true, 0},
		{"other patient refused", &Principal{Subject: "Patient/q", Role: RolePatient, Resource: "Patient/q", Scopes: scopes("patient/*.rs")}, Read, report, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := d.Decide(tc.p, tc.in, tc.t, Glass{}); got.Allow != tc.allow {
				t.Fatalf("allow = %v (%s), want %v", got.Allow, got.Reason, tc.allow)
			}
			n := testing.AllocsPerRun(1000, func() { d.Decide(tc.p, tc.in, tc.t, Glass{}) })
			t.Logf("%.1f allocations per decision (budget %.0f)", n, tc.budget)
			if n > tc.budget {
				t.Errorf("a decision allocates %.1f times, budget %.0f", n, tc.budget)
			}
		})
	}
}
