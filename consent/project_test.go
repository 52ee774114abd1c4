package consent

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/policy"
)

// Every shape of projected Consent is valid R4 and says what it should.
func TestConsentProjectionIsValidR4(t *testing.T) {
	reg := common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	pat := common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
	tx := common.HexToHash("0xabc1")
	granted := pos{Block: 10, Time: 1_767_225_600, Tx: tx, Index: 2}
	now := int64(1_767_225_700)
	tests := []struct {
		name, grantee, scope string
		r                    row
		status, end          string
		class                string
		actions              []string
	}{
		{"active with expiry", "Practitioner/123", "DiagnosticReport.rs",
			row{Expiry: 1_767_312_000, Granted: granted, Changed: granted},
			"active", "2026-01-02T00:00:00Z", "DiagnosticReport", []string{"access"}},
		{"until revoked, wildcard, organization", "Organization/org-9", "*.cruds",
			row{Expiry: math.MaxUint64, Granted: granted, Changed: granted},
			"active", "", "", []string{"access", "correct"}},
		{"client grantee, write only", "client/ehr-1", "Observation.cud",
			row{Expiry: math.MaxUint64, Granted: granted, Changed: granted},
			"active", "", "Observation", []string{"correct"}},
		{"expired", "Practitioner/123", "Observation.r",
			row{Expiry: uint64(now), Granted: granted, Changed: granted},
			"inactive", "2026-01-01T00:01:40Z", "Observation", []string{"access"}},
		{"revoked", "Practitioner/123", "Observation.r",
			row{Expiry: 0, Revoked: true, Granted: granted, Changed: pos{Block: 11, Time: 1_767_225_650, Tx: tx, Index: 0}},
			"inactive", "2026-01-01T00:00:50Z", "Observation", []string{"access"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := gkey{Patient: pat, Grantee: consentsig.Grantee(tc.grantee), Scope: consentsig.Scope(tc.scope)}
			body := consentBody(1337, reg, k, &tc.r, "Patient/pat-1", tc.grantee, tc.scope, now)
			res, err := fhir.Parse(body)
			if err != nil {
				t.Fatalf("fhir.Parse: %v\n%s", err, body)
			}
			if res.Type != "Consent" || res.ID != consentID(1337, reg, k) || !fhir.ValidID(res.ID) {
				t.Errorf("type %s id %s", res.Type, res.ID)
			}
			var c consentResource
			if err := json.Unmarshal(body, &c); err != nil {
				t.Fatal(err)
			}
			if c.Status != tc.status {
				t.Errorf("status %s, want %s", c.Status, tc.status)
			}
			if c.Patient.Reference != "Patient/pat-1" || c.Performer[0].Reference != "Patient/pat-1" {
				t.Errorf("patient %+v performer %+v", c.Patient, c.Performer)
			}
			a := c.Provision.Actor[0].Reference
			if strings.HasPrefix(tc.grantee, "client/") {
				if a.Reference != "" || a.Identifier == nil || a.Identifier.System != ClientSystem || a.Identifier.Value != "ehr-1" {
					t.Errorf("client actor %+v", a)
				}
			} else if a.Reference != tc.grantee {
				t.Errorf("actor %+v", a)
			}
			end := ""
			if c.Provision.Period != nil {
				end = c.Provision.Period.End
				if c.Provision.Period.Start != "2026-01-01T00:00:00Z" {
					t.Errorf("start %s", c.Provision.Period.Start)
				}
			}
			if end != tc.end {
				t.Errorf("period end %q, want %q", end, tc.end)
			}
			class := ""
			if len(c.Provision.Class) > 0 {
				class = c.Provision.Class[0].Code
			}
			if class != tc.class {
				t.Errorf("class %q, want %q", class, tc.class)
			}
			var acts []string
			for _, a := range c.Provision.Action {
				acts = append(acts, a.Coding[0].Code)
				if a.Text != "SMART "+tc.scope {
					t.Errorf("action text %q", a.Text)
				}
			}
			if !slices.Equal(acts, tc.actions) {
				t.Errorf("actions %v, want %v", acts, tc.actions)
			}
			if !strings.Contains(c.SourceReference.Identifier.Value, tx.Hex()) || c.Identifier[0].System != RegistrySystem {
				t.Errorf("source %+v identifier %+v", c.SourceReference, c.Identifier)
			}
		})
	}
}

// Projections follow the chain: created active, inactive after revoke and
// after expiry, deleted when a reorg removes the grant (see the reorg
// test), and not re-sent after a restart when nothing changed.
func TestProjectionLifecycle(t *testing.T) {
	e := newEnv(t, chain.DevConfig{Manual: true})
	pat := e.account(1)
	fl := e.follow(nil)
	fl.SetPatient(testCtx(t), wallet(pat.Address), "Patient/p-7")
	fl.AddGrantees(testCtx(t), "Practitioner/d-7")
	exp := e.dev.Head().Time + 4
	e.sendGrant(pat.Key, "Practitioner/d-7", "Observation.rs", exp)
	e.sendGrant(pat.Key, "Practitioner/d-7", "Condition.rs", forever)
	e.mine()
	status := func(scope string) string {
		fl.tmu.Lock()
		defer fl.tmu.Unlock()
		k := gkey{Patient: pat.Address, Grantee: consentsig.Grantee("Practitioner/d-7"), Scope: consentsig.Scope(scope)}
		p, ok := fl.projs[consentID(chain.DevChainID, e.registry, k)]
		if !ok {
			return "none"
		}
		if p.Patient != "Patient/p-7" {
			t.Errorf("projection patient %q", p.Patient)
		}
		if _, err := fhir.Parse(p.Body); err != nil {
			t.Errorf("invalid projection: %v", err)
		}
		var c consentResource
		json.Unmarshal(p.Body, &c)
		return c.Status
	}
	eventually(t, 5*time.Second, func() bool { return status("Observation.rs") == "active" && status("Condition.rs") == "active" }, "active projections")
	e.sendRevoke(pat.Key, "Practitioner/d-7", "Condition.rs")
	e.mine()
	eventually(t, 5*time.Second, func() bool { return status("Condition.rs") == "inactive" }, "revoked projection")
	// Expiry turns the projection inactive, by the wall clock.
	eventually(t, 15*time.Second, func() bool { return status("Observation.rs") == "inactive" }, "expired projection")
	if time.Now().Unix() < int64(exp) {
		t.Errorf("inactive before the expiry")
	}
	if fl.allowed("Practitioner/d-7", "Patient/p-7", "Observation", policy.PermRead) {
		t.Error("expired grant still allowed")
	}
	fl.tmu.Lock()
	n := fl.nproj
	fl.tmu.Unlock()
	fl.stop()
	fl2 := e.follow(nil) // the wallet mapping comes from the store
	time.Sleep(500 * time.Millisecond)
	fl2.SetPatient(testCtx(t), wallet(pat.Address), "Patient/p-7") // the gateway's feed: no change
	time.Sleep(300 * time.Millisecond)
	fl2.tmu.Lock()
	if fl2.nproj != 0 {
		t.Errorf("restart re-sent %d unchanged projections", fl2.nproj)
	}
	fl2.tmu.Unlock()
	t.Logf("%d projections sent", n)
}
