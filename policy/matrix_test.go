package policy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
)

// TestAccessMatrix enumerates every R4 resource type × every class its
// records can take × every kind of principal × every interaction, and
// checks each decision against the access table of docs/security.md,
// written out again here as "who may use which SMART permissions". The
// principals hold the widest scopes of their context, so what is tested
// is the table, not the scopes.
func TestAccessMatrix(t *testing.T) {
	c, err := policy.NewConsent(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range search.ResourceTypes() {
		// The granted doctor may read and search every type of x's.
		c.Grants().Set(policy.Grant{Patient: "Patient/x", Grantee: "Practitioner/granted", Scope: typ + ".rs", Expiry: policy.Forever})
	}
	c.Grants().Set(policy.Grant{Patient: "Patient/x", Grantee: "client/granted", Scope: "*.r", Expiry: policy.Forever})
	d := &policy.Decider{Consent: c, Health: func() error { return nil }}

	scoped := func(role policy.Role, subject, resource, client, scope string) *policy.Principal {
		sc, err := policy.ParseScopes(scope)
		if err != nil {
			t.Fatal(err)
		}
		return &policy.Principal{Subject: subject, Role: role, Resource: resource, ClientID: client, Scopes: sc}
	}
	person := func(role policy.Role, res string) *policy.Principal {
		ctx := map[policy.Role]string{policy.RolePatient: "patient", policy.RolePractitioner: "user"}[role]
		return scoped(role, res, res, "", ctx+"/*.cruds")
	}
	system := func(id string, extra ...string) *policy.Principal {
		return scoped(policy.RoleSystem, "client/"+id, "", id, strings.Join(append([]string{"system/*.cruds"}, extra...), " "))
	}
	type who struct {
		name  string
		p     *policy.Principal
		glass string // break-glass reason
	}
	principals := []who{
		{"patient x", person(policy.RolePatient, "Patient/x"), ""},
		{"other patient", person(policy.RolePatient, "Patient/q"), ""},
		{"practitioner with grant", person(policy.RolePractitioner, "Practitioner/granted"), ""},
		{"practitioner without grant", person(policy.RolePractitioner, "Practitioner/other"), ""},
		{"practitioner breaking the glass", person(policy.RolePractitioner, "Practitioner/other"), "unconscious in A&E"},
		{"practitioner author", person(policy.RolePractitioner, "Practitioner/author"), ""},
		{"system author", system("author"), ""},
		{"other system", system("other"), ""},
		{"system with grant", system("granted"), ""},
		{"identity-linking system", system("linker", policy.ScopeIdentityLinking), ""},
		{"admin", scoped(policy.RoleAdmin, "client/admin", "", "admin", "system/*.cruds"), ""},
		{"regulator", scoped(policy.RoleRegulator, "client/reg", "", "reg", "system/*.cruds"), ""},
		// A wallet asking to be registered: no row names it, so even
		// with every scope (which its tokens never carry) it gets nothing.
		{"applicant", scoped(policy.RoleApplicant, "did:pkh:eip155:1:0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "", "", "system/*.cruds patient/*.cruds user/*.cruds"), ""},
	}
	// want[class][principal] is the table: the SMART permissions allowed.
	// Break-glass is "rs" for reads and searches of the one patient only
	// (no history; checked below).
	want := map[policy.Class]map[string]string{
		policy.ClassPatient: {
			"patient x": "cruds", "practitioner with grant": "rs", "practitioner breaking the glass": "rs",
			"practitioner author": "ruds", "system author": "cruds", "other system": "c", "system with grant": "cr",
			"identity-linking system": "c",
		},
		policy.ClassDirectory: {
			"patient x": "rs", "other patient": "rs", "practitioner with grant": "rs", "practitioner without grant": "rs",
			"practitioner breaking the glass": "rs", "practitioner author": "rs", "system author": "cruds",
			"other system": "crs", "system with grant": "crs", "identity-linking system": "crs", "admin": "cruds", "regulator": "rs",
		},
		// Every system client records events; the one that recorded an
		// event reads it back; nobody changes or deletes one.
		policy.ClassAudit: {"patient x": "rs", "admin": "rs", "regulator": "rs", "system author": "crs",
			"other system": "c", "system with grant": "c", "identity-linking system": "c"},
		policy.ClassOther: {
			"system author": "cruds", "other system": "cruds", "system with grant": "cruds", "identity-linking system": "cruds", "admin": "cruds",
		},
	}
	interactions := []policy.Interaction{policy.Read, policy.VRead, policy.Create, policy.Update, policy.Patch, policy.Delete,
		policy.SearchType, policy.SearchSystem, policy.HistoryInstance, policy.HistoryType, policy.HistorySystem}

	checked := 0
	for _, typ := range search.ResourceTypes() {
		var targets []policy.Target
		switch {
		case typ == "AuditEvent":
			targets = append(targets, policy.Target{Type: typ, ID: "1", Patients: []string{"Patient/x"}, Creator: "fhirgate"})
		default:
			// Not tied to a patient: a directory record, or anything else.
			targets = append(targets, policy.Target{Type: typ, ID: "1"})
			if typ == "Patient" || search.CompartmentParams("Patient", typ) != nil || len(fhir.PatientPaths(typ)) > 0 {
				targets = append(targets, policy.Target{Type: typ, ID: "1", Patients: []string{"Patient/x"}})
			}
		}
		for _, tg := range targets {
			class := policy.ClassOf(&tg)
			for _, w := range principals {
				rec := tg
				// Authorship is per principal: the record was created by
				// the author principals.
				if w.name == "practitioner author" || w.name == "system author" {
					rec.Creator = w.p.Subject
				}
				perms := want[class][w.name]
				for _, in := range interactions {
					g := policy.Glass{Reason: w.glass}
					if in == policy.SearchType && w.glass != "" {
						g.Patient = "Patient/x"
					}
					allow := strings.ContainsRune(perms, permLetter(in.Perm()))
					if w.glass != "" && class == policy.ClassPatient {
						allow = in == policy.Read || in == policy.VRead || in == policy.SearchType
					}
					got := d.Decide(w.p, in, rec, g)
					checked++
					if got.Allow != allow {
						t.Errorf("%s %s on %s (%s): allow=%v (%s), want %v", w.name, in, typ, class, got.Allow, got.Reason, allow)
					}
					if got.BreakGlass && w.glass == "" {
						t.Errorf("%s %s on %s: flagged break-glass without a reason", w.name, in, typ)
					}
				}
			}
		}
	}
	t.Logf("%d decisions checked over %d resource types", checked, len(search.ResourceTypes()))
}

func permLetter(p policy.Perm) rune { return rune(p.String()[0]) }

// TestAccessMatrixSharedRecords: a record about two patients needs every
// one of them: a patient writes only records about themselves alone, a
// grant from one patient opens nothing, break-glass opens one patient.
func TestAccessMatrixSharedRecords(t *testing.T) {
	c, _ := policy.NewConsent(time.Now)
	c.Grants().Set(policy.Grant{Patient: "Patient/x", Grantee: "Practitioner/doc", Scope: "Observation.cruds", Expiry: policy.Forever})
	d := &policy.Decider{Consent: c}
	sc, _ := policy.ParseScopes("patient/*.cruds")
	pat := &policy.Principal{Subject: "Patient/x", Role: policy.RolePatient, Resource: "Patient/x", Scopes: sc}
	usc, _ := policy.ParseScopes("user/*.cruds")
	doc := &policy.Principal{Subject: "Practitioner/doc", Role: policy.RolePractitioner, Resource: "Practitioner/doc", Scopes: usc}
	both := policy.Target{Type: "Observation", ID: "o", Patients: []string{"Patient/x", "Patient/y"}}
	cases := []struct {
		name  string
		p     *policy.Principal
		in    policy.Interaction
		glass policy.Glass
		allow bool
	}{
		{"the patient reads a record about them and another", pat, policy.Read, policy.Glass{}, true},
		{"the patient may not change it", pat, policy.Update, policy.Glass{}, false},
		{"the patient may not create one naming another patient", pat, policy.Create, policy.Glass{}, false},
		{"a grant from one of two patients opens nothing", doc, policy.Read, policy.Glass{}, false},
		{"break-glass opens one patient, not the other", doc, policy.SearchType, policy.Glass{Reason: "ER", Patient: "Patient/y"}, true},
		{"break-glass read: one ungranted patient", doc, policy.Read, policy.Glass{Reason: "ER"}, true},
		{"break-glass search pinned elsewhere", doc, policy.SearchType, policy.Glass{Reason: "ER", Patient: "Patient/z"}, false},
		{"break-glass search without a pin", doc, policy.SearchType, policy.Glass{Reason: "ER"}, false},
		{"break-glass never writes", doc, policy.Patch, policy.Glass{Reason: "ER"}, false},
		{"break-glass no history", doc, policy.HistoryInstance, policy.Glass{Reason: "ER"}, false},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.Decide(tt.p, tt.in, both, tt.glass); got.Allow != tt.allow {
				t.Fatalf("allow=%v (%s), want %v", got.Allow, got.Reason, tt.allow)
			}
		})
	}
	three := policy.Target{Type: "Observation", ID: "o", Patients: []string{"Patient/x", "Patient/y", "Patient/z"}}
	if got := d.Decide(doc, policy.Read, three, policy.Glass{Reason: "ER"}); got.Allow {
		t.Fatalf("break-glass opened two ungranted patients: %s", got.Reason)
	}
}

// TestIdentityFields: wallet identifiers and a linked practitioner's
// active flag are written by administrators and identity-linking
// systems only, never through a grant, an authorship or a patient's own
// rights; and an identity-only change is all an administrator may make
// to a Patient record.
func TestIdentityFields(t *testing.T) {
	c, _ := policy.NewConsent(time.Now)
	c.Grants().Set(policy.Grant{Patient: "Patient/x", Grantee: "Practitioner/doc", Scope: "Patient.cruds", Expiry: policy.Forever})
	d := &policy.Decider{Consent: c}
	mk := func(role policy.Role, sub, res, scope string) *policy.Principal {
		sc, err := policy.ParseScopes(scope)
		if err != nil {
			t.Fatal(err)
		}
		return &policy.Principal{Subject: sub, Role: role, Resource: res, ClientID: strings.TrimPrefix(sub, "client/"), Scopes: sc}
	}
	pat := mk(policy.RolePatient, "Patient/x", "Patient/x", "patient/*.cruds")
	doc := mk(policy.RolePractitioner, "Practitioner/doc", "Practitioner/doc", "user/*.cruds")
	ehr := mk(policy.RoleSystem, "client/ehr", "", "system/*.cruds")
	linker := mk(policy.RoleSystem, "client/mpi", "", "system/*.cruds "+policy.ScopeIdentityLinking)
	admin := mk(policy.RoleAdmin, "client/admin", "", "system/*.cruds")
	patient := func(change, only bool, creator string) policy.Target {
		return policy.Target{Type: "Patient", ID: "x", Patients: []string{"Patient/x"}, Creator: creator, IdentityChange: change, IdentityOnly: only}
	}
	pract := func(id string, change, only bool) policy.Target {
		return policy.Target{Type: "Practitioner", ID: id, IdentityChange: change, IdentityOnly: only}
	}
	cases := []struct {
		name  string
		p     *policy.Principal
		in    policy.Interaction
		t     policy.Target
		allow bool
	}{
		{"the patient edits their demographics", pat, policy.Update, patient(false, false, ""), true},
		{"the patient adds a wallet to their record", pat, policy.Patch, patient(true, true, ""), false},
		{"a doctor granted Patient.u adds a wallet (finding 3)", doc, policy.Patch, patient(true, true, ""), false},
		{"a doctor granted Patient.u edits the record", doc, policy.Update, patient(false, false, ""), true},
		{"the authoring EHR adds a wallet", ehr, policy.Update, patient(true, false, "client/ehr"), false},
		{"an EHR creates a Patient with a wallet", ehr, policy.Create, patient(true, false, ""), false},
		{"the identity-linking system links a wallet", linker, policy.Patch, patient(true, true, ""), true},
		{"the identity-linking system may not change more than identity", linker, policy.Update, patient(true, false, ""), false},
		{"the identity-linking system creates a Patient with a wallet", linker, policy.Create, patient(true, false, ""), true},
		{"an administrator links a wallet to a patient", admin, policy.Patch, patient(true, true, ""), true},
		{"an administrator may not edit demographics", admin, policy.Update, patient(false, false, ""), false},
		{"an administrator may not read the patient", admin, policy.Read, patient(false, false, ""), false},
		{"a practitioner takes over another's record (finding 1)", doc, policy.Patch, pract("other", true, true), false},
		{"a practitioner edits another's record", doc, policy.Update, pract("other", false, false), false},
		{"a practitioner edits their own record", doc, policy.Update, pract("doc", false, false), false},
		{"a practitioner creates an active record with a wallet", doc, policy.Create, pract("", true, false), false},
		{"a practitioner deletes another's record", doc, policy.Delete, pract("other", false, false), false},
		{"an EHR creates a practitioner without a wallet", ehr, policy.Create, pract("", false, false), true},
		{"an EHR creates a practitioner with a wallet", ehr, policy.Create, pract("", true, false), false},
		{"an administrator verifies a practitioner", admin, policy.Update, pract("doc", true, true), true},
		{"the identity-linking system replaces a lost wallet", linker, policy.Patch, pract("doc", true, true), true},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.Decide(tt.p, tt.in, tt.t, policy.Glass{}); got.Allow != tt.allow {
				t.Fatalf("allow=%v (%s), want %v", got.Allow, got.Reason, tt.allow)
			}
		})
	}
}

// TestTableDocumented keeps docs/security.md's table the code's table.
func TestTableDocumented(t *testing.T) {
	doc, err := readDoc()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc, policy.Markdown()) {
		t.Fatalf("docs/security.md does not hold the access table as the code has it; put this in:\n%s", policy.Markdown())
	}
	for _, typ := range policy.DirectoryTypes {
		if !strings.Contains(doc, typ) {
			t.Errorf("docs/security.md does not name directory type %s", typ)
		}
	}
}

func readDoc() (string, error) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "security.md"))
	return string(b), err
}
