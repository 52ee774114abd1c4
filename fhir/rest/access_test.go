package rest

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// The access model over HTTP (docs/security.md): one test per finding of
// the attack on the gateway (issue 14), each failing on the code before
// the access table. The table itself is enumerated in
// policy.TestAccessMatrix; these check that the routes ask it the right
// questions and answer as it says.

// accessWorld is a gateway with an audit trail, a consent mirror and a
// token per kind of principal.
type accessWorld struct {
	t       *testing.T
	s       *Server
	grants  *policy.Grants
	tok     map[string]string // principal name -> bearer token
	patient string            // Patient/<id> of "patient"
	other   string            // Patient/<id> of "other patient"
}

func newAccessWorld(t *testing.T) *accessWorld {
	t.Helper()
	consent, err := policy.NewConsent(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	s, key := auditedServer(t, Config{Decider: &policy.Decider{Consent: consent}})
	w := &accessWorld{t: t, s: s, grants: consent.Grants(), tok: map[string]string{}}
	mint := func(name string, g auth.Grant) {
		g.TTL = time.Hour
		tok, err := key.Mint(g, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		w.tok[name] = tok
	}
	mint("system", auth.Grant{Subject: "client/ehr", Scope: "system/*.cruds"})
	mint("other system", auth.Grant{Subject: "client/ehr-2", Scope: "system/*.cruds"})
	mint("linker", auth.Grant{Subject: "client/mpi", Scope: "system/*.cruds " + policy.ScopeIdentityLinking})
	mint("admin", auth.Grant{Subject: "client/admin", Role: policy.RoleAdmin, Scope: siwe.DefaultScopes[policy.RoleAdmin]})
	mint("regulator", auth.Grant{Subject: "client/reg", Role: policy.RoleRegulator, Scope: siwe.DefaultScopes[policy.RoleRegulator]})
	w.patient = w.create("system", "Patient", `{"resourceType":"Patient","name":[{"family":"Rivera"}]}`)
	w.other = w.create("system", "Patient", `{"resourceType":"Patient","name":[{"family":"Okafor"}]}`)
	doc := w.create("system", "Practitioner", `{"resourceType":"Practitioner","active":true,"name":[{"family":"Santos"}]}`)
	nogrant := w.create("system", "Practitioner", `{"resourceType":"Practitioner","active":true,"name":[{"family":"Nash"}]}`)
	mint("patient", auth.Grant{Role: policy.RolePatient, FHIRUser: w.patient, Scope: "patient/*.cruds"})
	mint("other patient", auth.Grant{Role: policy.RolePatient, FHIRUser: w.other, Scope: "patient/*.cruds"})
	mint("doctor", auth.Grant{Role: policy.RolePractitioner, FHIRUser: doc, Scope: "user/*.cruds"})
	mint("stranger", auth.Grant{Role: policy.RolePractitioner, FHIRUser: nogrant, Scope: "user/*.cruds"})
	return w
}

// do sends a request as a principal ("" for none); extra headers in pairs.
func (w *accessWorld) do(who, method, uri, body string, headers ...string) *fasthttp.Response {
	ctype := ""
	if body != "" {
		ctype = mimeFHIRJSON
		if method == "PATCH" {
			ctype = mimeJSONPatch
		}
	}
	return serveWith(w.s, method, uri, ctype, w.tok[who], []byte(body), headers...)
}

// create makes a resource as who and returns "Type/id".
func (w *accessWorld) create(who, typ, body string) string {
	w.t.Helper()
	res := w.do(who, "POST", "/fhir/"+typ, body)
	if res.StatusCode() != 201 {
		w.t.Fatalf("create %s as %s: %d %s", typ, who, res.StatusCode(), res.Body())
	}
	loc := string(res.Header.Peek("Location"))
	return typ + "/" + strings.Split(strings.SplitN(loc, "/"+typ+"/", 2)[1], "/")[0]
}

func (w *accessWorld) grant(patient, grantee, scope string) {
	if err := w.grants.Set(policy.Grant{Patient: patient, Grantee: grantee, Scope: scope, Expiry: policy.Forever}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *accessWorld) status(want int, res *fasthttp.Response, what string) {
	w.t.Helper()
	if res.StatusCode() != want {
		w.t.Errorf("%s: %d %s, want %d", what, res.StatusCode(), res.Body(), want)
	}
}

// searchIDs runs a search as who and returns the ids it found.
func (w *accessWorld) searchIDs(who, uri string, headers ...string) []string {
	w.t.Helper()
	res := w.do(who, "GET", uri, "", headers...)
	if res.StatusCode() != 200 {
		w.t.Fatalf("%s as %s: %d %s", uri, who, res.StatusCode(), res.Body())
	}
	var b struct {
		Entry []struct {
			Resource struct{ ResourceType, ID string }
		}
	}
	if err := json.Unmarshal(res.Body(), &b); err != nil {
		w.t.Fatal(err)
	}
	var ids []string
	for _, e := range b.Entry {
		if e.Resource.ResourceType != "OperationOutcome" {
			ids = append(ids, e.Resource.ResourceType+"/"+e.Resource.ID)
		}
	}
	return ids
}

func wallet(addr string) string {
	return `{"system":"` + siwe.CAIP10System + `","value":"eip155:1337:` + addr + `"}`
}

const (
	walletA = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
	walletB = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
)

// Finding 1: a practitioner takes over another practitioner's identity
// by adding their wallet to the other's record; creates an active record
// of their own; deletes others.
func TestPractitionerIdentityTakeover(t *testing.T) {
	w := newAccessWorld(t)
	victim := w.create("system", "Practitioner", `{"resourceType":"Practitioner","active":true,"name":[{"family":"Victim"}]}`)
	patch := `[{"op":"add","path":"/identifier","value":[` + wallet(walletA) + `]}]`
	w.status(403, w.do("stranger", "PATCH", "/fhir/"+victim, patch), "a practitioner adds a wallet to another's record")
	w.status(403, w.do("stranger", "PUT", "/fhir/"+victim, `{"resourceType":"Practitioner","id":"`+strings.TrimPrefix(victim, "Practitioner/")+`","active":true,"name":[{"family":"Mine"}]}`),
		"a practitioner rewrites another's record")
	w.status(403, w.do("stranger", "POST", "/fhir/Practitioner", `{"resourceType":"Practitioner","active":true,"identifier":[`+wallet(walletA)+`]}`),
		"a practitioner creates an active record with a wallet")
	w.status(403, w.do("stranger", "DELETE", "/fhir/"+victim, ""), "a practitioner deletes another's record")
	if _, err := resolveWallet(context.Background(), w.s.store, 1337, walletA); !errors.Is(err, siwe.ErrNotLinked) {
		t.Fatalf("the attacker's wallet resolves: %v", err)
	}
	// The directory stays readable, and an administrator verifies.
	w.status(200, w.do("stranger", "GET", "/fhir/"+victim, ""), "the directory is readable")
	w.status(200, w.do("admin", "PATCH", "/fhir/"+victim, patch), "an administrator links a wallet")
	if link, err := resolveWallet(context.Background(), w.s.store, 1337, walletA); err != nil || link.Resource != victim {
		t.Fatalf("the administrator's link: %+v %v", link, err)
	}
	// The EHR that keeps the staff directory may not change the active
	// flag of a record linked to a wallet.
	w.status(403, w.do("system", "PATCH", "/fhir/"+victim, `[{"op":"replace","path":"/active","value":false}]`), "an EHR deactivates a linked practitioner")
	w.status(200, w.do("linker", "PATCH", "/fhir/"+victim, `[{"op":"replace","path":"/active","value":false}]`), "the identity-linking system deactivates")
}

// Finding 2: data tied to a patient outside the Patient compartment.
func TestDataOutsideThePatientCompartment(t *testing.T) {
	w := newAccessWorld(t)
	pid := strings.TrimPrefix(w.patient, "Patient/")
	records := map[string]string{
		"Binary":           `{"resourceType":"Binary","contentType":"text/plain","securityContext":{"reference":"` + w.patient + `"},"data":"cG9zaXRpdmU="}`,
		"Bundle":           `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:6f4c8c1e-0000-4000-8000-000000000001","resource":{"resourceType":"DiagnosticReport","status":"final","code":{"text":"HIV"},"subject":{"reference":"` + w.patient + `"},"conclusion":"positive"}}]}`,
		"Task":             `{"resourceType":"Task","status":"requested","intent":"order","for":{"reference":"` + w.patient + `"}}`,
		"Device":           `{"resourceType":"Device","patient":{"reference":"` + w.patient + `"}}`,
		"Task (contained)": `{"resourceType":"Task","status":"requested","intent":"order","focus":{"reference":"#o"},"contained":[{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"subject":{"reference":"` + w.patient + `"}}]}`,
	}
	for name, body := range records {
		t.Run(name, func(t *testing.T) {
			typ, _, _ := strings.Cut(name, " ")
			ref := w.create("system", typ, body)
			for _, who := range []string{"stranger", "other patient", "other system"} {
				w.status(404, w.do(who, "GET", "/fhir/"+ref, ""), who+" reads "+typ)
				w.status(404, w.do(who, "PATCH", "/fhir/"+ref, `[{"op":"add","path":"/language","value":"en"}]`), who+" patches "+typ)
				w.status(204, w.do(who, "DELETE", "/fhir/"+ref, ""), who+" deletes "+typ+" (as if absent)")
			}
			// Administrators and regulators hold no scope for it at all.
			for _, who := range []string{"admin", "regulator"} {
				for _, m := range []string{"GET", "DELETE"} {
					w.status(403, w.do(who, m, "/fhir/"+ref, ""), who+" "+m+" "+typ)
				}
			}
			res := w.do("system", "GET", "/fhir/"+ref, "")
			if string(res.Header.Peek("ETag")) != `W/"1"` {
				t.Fatalf("%s was changed or deleted: %d %s", ref, res.StatusCode(), res.Body())
			}
			w.status(200, w.do("system", "GET", "/fhir/"+ref, ""), "the authoring EHR reads "+typ)
			w.status(200, w.do("patient", "GET", "/fhir/"+ref, ""), "the patient reads "+typ)
			w.status(404, w.do("doctor", "GET", "/fhir/"+ref, ""), "a doctor without a grant for "+typ)
		})
	}
	// Searches by patient find nothing for the others, everything for the
	// patient.
	for _, q := range []string{"Task?patient=" + pid, "Device?patient=" + pid, "Task?subject=" + w.patient} {
		if got := w.searchIDs("stranger", "/fhir/"+q); len(got) != 0 {
			t.Errorf("%s as a practitioner without a grant: %v", q, got)
		}
		if got := w.searchIDs("other patient", "/fhir/"+q); len(got) != 0 {
			t.Errorf("%s as another patient: %v", q, got)
		}
	}
	if got := w.searchIDs("patient", "/fhir/Task?patient="+pid); len(got) != 1 {
		t.Errorf("the patient's own Task: %v", got)
	}
}

// Finding 3: a grant of update on a patient's Patient record does not
// let a practitioner link a wallet to it (and sign in as the patient).
func TestPatientUpdateGrantIsNotATakeover(t *testing.T) {
	w := newAccessWorld(t)
	doc := principalOf(t, w, "doctor")
	w.grant(w.patient, doc, "Patient.u")
	patch := `[{"op":"add","path":"/identifier","value":[` + wallet(walletB) + `]}]`
	w.status(403, w.do("doctor", "PATCH", "/fhir/"+w.patient, patch), "a Patient.u grantee adds a wallet")
	if _, err := resolveWallet(context.Background(), w.s.store, 1337, walletB); !errors.Is(err, siwe.ErrNotLinked) {
		t.Fatalf("the wallet resolves: %v", err)
	}
	// The grant still lets them update the rest, and they get no body back
	// (they may not read it).
	res := w.do("doctor", "PATCH", "/fhir/"+w.patient, `[{"op":"add","path":"/gender","value":"female"}]`)
	w.status(200, res, "a Patient.u grantee updates the record")
	if strings.Contains(string(res.Body()), "Rivera") {
		t.Fatalf("a writer without read rights got the record back: %s", res.Body())
	}
	// The patient may not link a wallet to their own record either.
	w.status(403, w.do("patient", "PATCH", "/fhir/"+w.patient, patch), "a patient adds a wallet to their record")
}

// principalOf is the grantee name of a token's principal.
func principalOf(t *testing.T, w *accessWorld, who string) string {
	t.Helper()
	p, err := w.s.cfg.Verifier.Verify(w.tok[who])
	if err != nil {
		t.Fatal(err)
	}
	return p.Resource
}

// Finding 7: audit events that touch no patient, or another patient, are
// not the patients' to see.
func TestAuditEventsOfOthers(t *testing.T) {
	w := newAccessWorld(t)
	// An EHR's query that touches no patient, and the other patient's reads.
	w.do("system", "GET", "/fhir/Patient?identifier=urn:ssn|123-45-6789&family=Doe", "")
	// A search that returns both patients: each sees an event about them
	// alone (one event per patient), never the other's id.
	if res := w.do("system", "GET", "/fhir/Patient?_count=100", ""); !strings.Contains(string(res.Body()), w.other) {
		t.Fatalf("the EHR's search misses a patient: %s", res.Body())
	}
	w.do("other patient", "GET", "/fhir/"+w.other, "")
	w.do("patient", "GET", "/fhir/"+w.patient, "")
	var seen []string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		seen = w.searchIDs("patient", "/fhir/AuditEvent?_count=1000")
		if len(seen) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(seen) == 0 {
		t.Fatal("the patient sees none of their own events")
	}
	for _, ref := range seen {
		res := w.do("regulator", "GET", "/fhir/"+ref, "")
		body := string(res.Body())
		if !strings.Contains(body, w.patient) || strings.Contains(body, "urn:ssn") || strings.Contains(body, w.other) {
			t.Errorf("the patient sees an event not about them: %s", body)
		}
	}
	for _, who := range []string{"doctor", "system", "other system"} {
		if got := w.searchIDs(who, "/fhir/AuditEvent?_count=1000"); len(got) != 0 {
			t.Errorf("%s sees audit events: %v", who, got)
		}
	}
	if got := w.searchIDs("regulator", "/fhir/AuditEvent?_count=1000"); len(got) < 3 {
		t.Errorf("the regulator sees %d events", len(got))
	}
}

// Finding 11: a practitioner without a grant cannot tell an existing
// record from an absent one, on any route.
func TestNoExistenceOracle(t *testing.T) {
	w := newAccessWorld(t)
	report := w.create("system", "DiagnosticReport", `{"resourceType":"DiagnosticReport","status":"final","code":{"text":"HIV"},"subject":{"reference":"`+w.patient+`"},"conclusion":"positive"}`)
	id := strings.TrimPrefix(report, "DiagnosticReport/")
	absent := "0190a0b2-0000-7000-8000-000000000000"
	same := func(what string, a, b *fasthttp.Response) {
		t.Helper()
		if a.StatusCode() != b.StatusCode() || string(a.Body()) != string(b.Body()) || string(a.Header.Peek("ETag")) != string(b.Header.Peek("ETag")) {
			t.Errorf("%s tells existing from absent: %d %s / %d %s", what, a.StatusCode(), a.Body(), b.StatusCode(), b.Body())
		}
	}
	for _, who := range []string{"stranger", "other patient", "other system"} {
		for _, r := range []struct{ method, path, body string }{
			{"GET", "/fhir/DiagnosticReport/%s", ""},
			{"GET", "/fhir/DiagnosticReport/%s/_history/1", ""},
			{"GET", "/fhir/DiagnosticReport/%s/_history/9", ""},
			{"GET", "/fhir/DiagnosticReport/%s/_history", ""},
			{"PATCH", "/fhir/DiagnosticReport/%s", `[{"op":"replace","path":"/conclusion","value":"negative"}]`},
			{"DELETE", "/fhir/DiagnosticReport/%s", ""},
			{"PUT", "/fhir/DiagnosticReport/%s", `{"resourceType":"DiagnosticReport","id":"%s","status":"final","code":{"text":"x"},"subject":{"reference":"` + w.patient + `"}}`},
		} {
			if r.method == "PUT" && who == "other system" {
				continue // it may create such a record: see below
			}
			path := func(x string) string { return strings.Replace(r.path, "%s", x, 1) }
			body := func(x string) string { return strings.Replace(r.body, "%s", x, 1) }
			for _, ifMatch := range []string{"", `W/"1"`} {
				var h []string
				if ifMatch != "" {
					if r.method == "GET" {
						continue
					}
					h = []string{"If-Match", ifMatch}
				}
				same(who+" "+r.method+" "+r.path+" "+ifMatch, w.do(who, r.method, path(id), body(id), h...), w.do(who, r.method, path(absent), body(absent), h...))
			}
		}
		for _, entry := range []string{
			`{"request":{"method":"DELETE","url":"DiagnosticReport/%s"}}`,
			`{"request":{"method":"DELETE","url":"DiagnosticReport/%s","ifMatch":"W/\"1\""}}`,
			`{"request":{"method":"PUT","url":"DiagnosticReport/%s","ifMatch":"W/\"1\""},"resource":{"resourceType":"DiagnosticReport","id":"%s","status":"final","code":{"text":"x"},"subject":{"reference":"` + w.patient + `"}}}`,
		} {
			tx := func(x string) string {
				return `{"resourceType":"Bundle","type":"transaction","entry":[` + strings.ReplaceAll(entry, "%s", x) + `]}`
			}
			a, b := w.do(who, "POST", "/fhir", tx(id)), w.do(who, "POST", "/fhir", tx(absent))
			// The answers name the URL tried and carry their own Bundle id
			// and time: compare them without those.
			norm := func(body []byte, x string) string {
				return bundleStamp.ReplaceAllString(strings.ReplaceAll(string(body), x, "ID"), "")
			}
			if a.StatusCode() != b.StatusCode() || norm(a.Body(), id) != norm(b.Body(), absent) {
				t.Errorf("%s transaction %s tells existing from absent: %d %s / %d %s", who, entry, a.StatusCode(), a.Body(), b.StatusCode(), b.Body())
			}
		}
		same(who+" $everything", w.do(who, "GET", "/fhir/"+w.patient+"/$everything", ""), w.do(who, "GET", "/fhir/Patient/"+absent+"/$everything", ""))
	}
	// A principal that may create such a record learns only that the id
	// is taken, nothing of the record.
	res0 := w.do("other system", "PUT", "/fhir/"+report, `{"resourceType":"DiagnosticReport","id":"`+id+`","status":"final","code":{"text":"x"},"subject":{"reference":"`+w.patient+`"}}`)
	if res0.StatusCode() != 409 || strings.Contains(string(res0.Body()), "HIV") {
		t.Fatalf("update-as-create over a hidden record: %d %s", res0.StatusCode(), res0.Body())
	}
	// Nothing was changed or deleted by any of it.
	res := w.do("system", "GET", "/fhir/"+report, "")
	if res.StatusCode() != 200 || !strings.Contains(string(res.Body()), "positive") || string(res.Header.Peek("ETag")) != `W/"1"` {
		t.Fatalf("the report changed: %d %s", res.StatusCode(), res.Body())
	}
	// The patient's trail records the refused deletes as refusals, with
	// the reason, although they were answered 204 like absent records.
	deletes := w.searchIDs("regulator", "/fhir/AuditEvent?entity="+report+"&action=D")
	if len(deletes) == 0 {
		t.Fatal("the refused deletes were not audited")
	}
	for _, ref := range deletes {
		body := string(w.do("regulator", "GET", "/fhir/"+ref, "").Body())
		if !strings.Contains(body, `"outcome":"4"`) || !strings.Contains(body, w.patient) {
			t.Errorf("a hidden delete audited as: %s", body)
		}
	}
}

// Finding 13: a wallet is linked to one record; a second link is a 409,
// and a wallet that old data links twice never makes sign-in fail with 5xx.
func TestOneWalletOneRecord(t *testing.T) {
	w := newAccessWorld(t)
	body := func(typ string) string {
		return `{"resourceType":"` + typ + `","identifier":[` + wallet(walletA) + `]}`
	}
	w.create("linker", "Patient", body("Patient"))
	for _, typ := range []string{"Patient", "Practitioner"} {
		res := w.do("linker", "POST", "/fhir/"+typ, body(typ))
		w.status(409, res, "a second "+typ+" with a linked wallet")
		if !strings.Contains(string(res.Body()), "already linked") {
			t.Errorf("409 without saying why: %s", res.Body())
		}
	}
	// The same address in another case, on another chain, is one wallet.
	other := `{"resourceType":"Patient","identifier":[{"system":"` + siwe.CAIP10System + `","value":"eip155:1:` + strings.ToLower(walletA) + `"}]}`
	w.status(409, w.do("linker", "POST", "/fhir/Patient", other), "the wallet in lower case on chain 1")
	// Records written before wallets were unique: sign-in answers 403.
	for _, id := range []string{"legacy-1", "legacy-2"} {
		v := store.Version{Type: "Patient", ID: id, VID: 1, LastUpdated: time.Now(), Method: store.MethodCreate, Author: "client/ehr",
			Body: []byte(`{"resourceType":"Patient","id":"` + id + `","identifier":[` + wallet(walletB) + `]}`)}
		idx, err := search.Extract("Patient", mustParse(t, v.Body))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.s.store.Commit(context.Background(), []store.Write{{New: v, Index: idx}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := resolveWallet(context.Background(), w.s.store, 1337, walletB)
	if !errors.Is(err, ErrAmbiguousWallet) || !errors.Is(err, policy.ErrDenied) {
		t.Fatalf("a wallet on two records: %v, want a denial (403)", err)
	}
	// Unlinking frees the wallet for another record.
	first := w.searchIDs("linker", "/fhir/Patient?identifier="+url.QueryEscape(siwe.CAIP10System+"|eip155:1337:"+walletA))
	if len(first) != 1 {
		t.Fatalf("the linked record: %v", first)
	}
	w.status(200, w.do("linker", "PATCH", "/fhir/"+first[0], `[{"op":"remove","path":"/identifier"}]`), "unlink")
	w.create("linker", "Practitioner", body("Practitioner"))
}

// Finding 14 (break-glass): read and search of one named patient, never
// writes or searches across patients.
func TestBreakGlassBounds(t *testing.T) {
	w := newAccessWorld(t)
	report := w.create("system", "DiagnosticReport", `{"resourceType":"DiagnosticReport","status":"final","code":{"text":"HbA1c"},"subject":{"reference":"`+w.patient+`"}}`)
	w.create("system", "DiagnosticReport", `{"resourceType":"DiagnosticReport","status":"final","code":{"text":"HbA1c"},"subject":{"reference":"`+w.other+`"}}`)
	glass := []string{HeaderBreakGlass, "unconscious in A&E"}
	w.status(200, w.do("stranger", "GET", "/fhir/"+report, "", glass...), "break-glass read")
	w.status(403, w.do("stranger", "PATCH", "/fhir/"+report, `[{"op":"replace","path":"/status","value":"cancelled"}]`, glass...), "break-glass patch")
	w.status(403, w.do("stranger", "DELETE", "/fhir/"+report, "", glass...), "break-glass delete")
	w.status(200, w.do("system", "GET", "/fhir/"+report, ""), "the report survives")
	w.status(400, w.do("stranger", "GET", "/fhir/DiagnosticReport?code:text=HbA1c", "", glass...), "break-glass search naming no patient")
	if got := w.searchIDs("stranger", "/fhir/DiagnosticReport?patient="+w.patient, glass...); len(got) != 1 || got[0] != report {
		t.Fatalf("break-glass search of one patient: %v", got)
	}
	w.create("system", "Patient", `{"resourceType":"Patient","name":[{"family":"Rivas"}]}`)
	if got := w.searchIDs("stranger", "/fhir/Patient?name=riv", glass...); len(got) != 1 {
		t.Fatalf("break-glass Patient search by name opened %d patients, want 1", len(got))
	}
	if got := w.searchIDs("stranger", "/fhir/DiagnosticReport/_history", glass...); len(got) != 0 {
		t.Fatalf("break-glass type history: %v", got)
	}
	for _, ref := range w.searchIDs("stranger", "/fhir/_history", glass...) {
		if !strings.HasPrefix(ref, "Practitioner/") { // the directory is open to practitioners
			t.Fatalf("break-glass system history shows %s", ref)
		}
	}
}

var bundleStamp = regexp.MustCompile(`"id":"[0-9a-f-]{36}","meta":\{"lastUpdated":"[^"]+"\},`)

func mustParse(t *testing.T, body []byte) *fhirjson.Value {
	t.Helper()
	v, err := fhirjson.Parse(body, fhir.Limits)
	if err != nil {
		t.Fatal(err)
	}
	return &v
}

// The gateway's own records are the ones policy trusts as projections.
func TestGatewaySubject(t *testing.T) {
	if policy.Gateway != audit.Author || gatewayPrincipal.Subject != policy.Gateway {
		t.Fatalf("the gateway writes as %q, policy trusts %q", audit.Author, policy.Gateway)
	}
}

// An EHR (a system client) sees the Consents the gateway projected for
// grants to it, which name it by identifier (clients are not resources),
// and only those: not another client's, not one a client wrote itself.
func TestClientGranteeSeesItsConsents(t *testing.T) {
	w := newAccessWorld(t)
	ctx := context.Background()
	pid := strings.TrimPrefix(w.patient, "Patient/")
	consent := func(id, client string) string {
		return `{"resourceType":"Consent","id":"` + id + `","status":"active",` +
			`"scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},` +
			`"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],` +
			`"patient":{"reference":"Patient/` + pid + `"},` +
			`"policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},` +
			`"provision":{"type":"permit","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}]},` +
			`"reference":{"identifier":{"system":"` + policy.ClientSystem + `","value":"` + client + `"},"display":"client/` + client + `"}}]}}`
	}
	for id, client := range map[string]string{"c-ehr": "ehr", "c-ehr2": "ehr-2"} {
		if err := w.s.WriteAsGateway(ctx, "Consent", id, []byte(consent(id, client))); err != nil {
			t.Fatal(err)
		}
	}
	w.status(200, w.do("system", "GET", "/fhir/Consent/c-ehr", ""), "the EHR reads the Consent that grants it access")
	w.status(404, w.do("system", "GET", "/fhir/Consent/c-ehr2", ""), "the EHR reads another client's Consent")
	w.status(200, w.do("other system", "GET", "/fhir/Consent/c-ehr2", ""), "the other client reads its own")
	if got := w.searchIDs("system", "/fhir/Consent?patient="+w.patient); len(got) != 1 || got[0] != "Consent/c-ehr" {
		t.Errorf("the EHR's Consent search found %v, want only Consent/c-ehr", got)
	}
	w.status(403, w.do("system", "PUT", "/fhir/Consent/c-ehr", consent("c-ehr", "ehr")), "the grantee changes the projected Consent")
	w.status(404, w.do("stranger", "GET", "/fhir/Consent/c-ehr", ""), "a practitioner reads a client's Consent")
}
