package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/registration"
)

// regWorld is two gateway replicas (two Servers, each with its own
// registration store) over one real store with an audit trail, and a
// token per kind of principal.
type regWorld struct {
	t      *testing.T
	s, s2  *Server
	key    *auth.Key
	tok    map[string]string
	n      int    // wallets handed out
	record string // Patient/<id> of "patient"
	doc    string // Practitioner/<id> of "practitioner"
}

func newRegWorld(t *testing.T) *regWorld {
	t.Helper()
	a := newAuditedParts(t)
	replica := func() *Server {
		s := New(a.config(Config{Registration: registration.New(a.db, nil)}))
		s.SetReady(true)
		return s
	}
	key := a.key
	w := &regWorld{t: t, s: replica(), s2: replica(), key: key, tok: map[string]string{}}
	w.mint("system", auth.Grant{Subject: "client/ehr", Scope: "system/*.cruds"})
	w.mint("linker", auth.Grant{Subject: "client/mpi", Scope: "system/*.cruds " + policy.ScopeIdentityLinking})
	w.tok["admin"] = w.admin()
	w.mint("regulator", auth.Grant{Subject: "client/reg", Role: policy.RoleRegulator, Scope: siwe.DefaultScopes[policy.RoleRegulator]})
	w.tok["applicant"] = w.applicant(w.wallet())
	pw, ow, dw := w.wallet(), w.wallet(), w.wallet()
	w.record = w.create("linker", "Patient", `{"resourceType":"Patient","identifier":[`+walletIdent(pw)+`],"name":[{"family":"Okafor"}]}`)
	other := w.create("linker", "Patient", `{"resourceType":"Patient","identifier":[`+walletIdent(ow)+`],"name":[{"family":"Nash"}]}`)
	w.doc = w.create("linker", "Practitioner", `{"resourceType":"Practitioner","active":true,"identifier":[`+walletIdent(dw)+`],"name":[{"family":"Lee"}]}`)
	w.tok["patient"] = w.person(policy.RolePatient, w.record, pw)
	w.tok["other patient"] = w.person(policy.RolePatient, other, ow)
	w.tok["practitioner"] = w.person(policy.RolePractitioner, w.doc, dw)
	return w
}

func (w *regWorld) mint(name string, g auth.Grant) string {
	w.t.Helper()
	g.TTL = time.Hour
	tok, err := w.key.Mint(g, time.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	if name != "" {
		w.tok[name] = tok
	}
	return tok
}

// wallet hands out a new CAIP-10 account id.
func (w *regWorld) wallet() string {
	w.n++
	return fmt.Sprintf("eip155:1337:0x%040x", 0xabc000+w.n)
}

func walletIdent(wallet string) string {
	return `{"system":"` + siwe.CAIP10System + `","value":"` + wallet + `"}`
}

func (w *regWorld) applicant(wallet string) string {
	return w.mint("", auth.Grant{Role: policy.RoleApplicant, Wallet: wallet, Subject: "did:pkh:" + wallet, Scope: policy.ScopeRegistration})
}

func (w *regWorld) admin() string {
	wallet := w.wallet()
	return w.mint("", auth.Grant{Role: policy.RoleAdmin, Wallet: wallet, Subject: "did:pkh:" + wallet,
		Scope: siwe.DefaultScopes[policy.RoleAdmin] + " " + policy.ScopeRegistrationAdmin})
}

func (w *regWorld) person(role policy.Role, record, wallet string) string {
	return w.mint("", auth.Grant{Role: role, FHIRUser: record, Wallet: wallet, Scope: siwe.DefaultScopes[role]})
}

// call sends a request with token tok to replica s (nil: the first).
func (w *regWorld) call(s *Server, tok, method, uri, body string) *fasthttp.Response {
	if s == nil {
		s = w.s
	}
	ctype := ""
	if body != "" {
		ctype = mimeJSON
		if strings.HasPrefix(uri, "/fhir/") {
			ctype = mimeFHIRJSON
		}
	}
	return serve(s, method, uri, ctype, tok, []byte(body))
}

func (w *regWorld) do(who, method, uri, body string) *fasthttp.Response {
	return w.call(nil, w.tok[who], method, uri, body)
}

func (w *regWorld) create(who, typ, body string) string {
	w.t.Helper()
	res := w.do(who, "POST", "/fhir/"+typ, body)
	if res.StatusCode() != 201 {
		w.t.Fatalf("create %s: %d %s", typ, res.StatusCode(), res.Body())
	}
	loc := string(res.Header.Peek("Location"))
	return typ + "/" + strings.Split(strings.SplitN(loc, "/"+typ+"/", 2)[1], "/")[0]
}

// want checks a response's status and decodes its JSON body into out
// (if not nil).
func (w *regWorld) want(res *fasthttp.Response, status int, out any, what string) {
	w.t.Helper()
	if res.StatusCode() != status {
		w.t.Fatalf("%s: %d %s, want %d", what, res.StatusCode(), res.Body(), status)
	}
	if out != nil {
		if err := json.Unmarshal(res.Body(), out); err != nil {
			w.t.Fatalf("%s: %v in %s", what, err, res.Body())
		}
	}
}

// submit makes a request from tok and returns it.
func (w *regWorld) submit(tok, body string) registration.Request {
	w.t.Helper()
	var r registration.Request
	w.want(w.call(nil, tok, "POST", "/registration", body), 201, &r, "submit")
	if r.Status != registration.Pending || r.ID == "" {
		w.t.Fatalf("submitted: %+v", r)
	}
	return r
}

func (w *regWorld) read(tok, ref string) map[string]any {
	w.t.Helper()
	var m map[string]any
	w.want(w.call(nil, tok, "GET", "/fhir/"+ref, ""), 200, &m, "read "+ref)
	return m
}

// regDiag is the text of an OperationOutcome's first issue.
func regDiag(res *fasthttp.Response) string {
	var oo struct {
		Issue []struct {
			Diagnostics string
			Expression  []string
		}
	}
	json.Unmarshal(res.Body(), &oo)
	if len(oo.Issue) == 0 {
		return ""
	}
	return oo.Issue[0].Diagnostics
}

const (
	practitionerBody = `{"kind":"practitioner","name":{"prefix":"Dr.","given":"Maria","family":"Santos"},"qualification":"MD",
		"specialty":"Cardiology","licence":{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}}`
	patientBody = `{"kind":"patient","name":{"given":"Alex","family":"Rivera"},"birthDate":"1986-04-12",
		"email":"a@example.org","phone":"+44 20 7946 0000","clinicNumber":"MRN-40231"}`
)

// TestRegistrationRoles: every route for every kind of principal. Routes
// on a request are sent for a request that does not exist: a principal
// allowed to act gets 404, one refused 403 before anything is looked up.
func TestRegistrationRoles(t *testing.T) {
	w := newRegWorld(t)
	w.tok["linker no scope"] = w.tok["system"]
	w.tok["admin without scope"] = w.mint("", auth.Grant{Role: policy.RoleAdmin, Subject: "client/adm", Scope: siwe.DefaultScopes[policy.RoleAdmin]})
	w.tok[""] = ""
	spare := w.create("linker", "Practitioner", `{"resourceType":"Practitioner","active":true,"name":[{"family":"Spare"}]}`)
	deact := `{"record":"` + spare + `","reason":"test"}`
	routes := []struct {
		method, uri, body string
		want              map[string]int // by principal; others 403
	}{
		{"POST", "/registration", practitionerBody, map[string]int{"applicant": 201}},
		{"GET", "/registration/mine", "", map[string]int{"applicant": 200, "patient": 200, "other patient": 200, "practitioner": 200}},
		{"GET", "/registration?status=pending", "", map[string]int{"admin": 200, "linker": 200}},
		{"GET", "/registration/practitioners", "", map[string]int{"admin": 200}},
		// Another wallet's request is absent to any wallet.
		{"POST", "/registration/none/withdraw", "", map[string]int{"applicant": 404, "patient": 404, "other patient": 404, "practitioner": 404, "admin": 404}},
		{"POST", "/registration/none/verify", "{}", map[string]int{"admin": 404, "linker": 404}},
		{"POST", "/registration/none/reject", `{"reason":"x"}`, map[string]int{"admin": 404, "linker": 404}},
		{"POST", "/registration/deactivate", deact, map[string]int{"admin": 200}},
		{"POST", "/registration/reactivate", deact, map[string]int{"admin": 200}},
	}
	for _, rt := range routes {
		for _, who := range []string{"", "applicant", "patient", "other patient", "practitioner", "system", "linker no scope", "linker", "admin", "admin without scope", "regulator"} {
			want, ok := rt.want[who]
			switch {
			case who == "":
				want = 401
			case !ok:
				want = 403
			}
			res := w.do(who, rt.method, rt.uri, rt.body)
			if res.StatusCode() != want {
				t.Errorf("%s %s as %q: %d %s, want %d", rt.method, rt.uri, who, res.StatusCode(), res.Body(), want)
			}
			if res.StatusCode() >= 400 && (regDiag(res) == "" || !strings.Contains(string(res.Body()), "OperationOutcome")) {
				t.Errorf("%s %s as %q: no OperationOutcome: %s", rt.method, rt.uri, who, res.Body())
			}
			if cc := string(res.Header.Peek("Cache-Control")); res.StatusCode() != 401 && cc != "no-store" {
				t.Errorf("%s %s: Cache-Control %q", rt.method, rt.uri, cc)
			}
		}
	}
	// The linker decides patients' requests only.
	r := w.submit(w.applicant(w.wallet()), practitionerBody)
	for _, path := range []string{"/verify", "/reject"} {
		res := w.do("linker", "POST", "/registration/"+r.ID+path, `{"reason":"x"}`)
		if res.StatusCode() != 403 {
			t.Errorf("linker %s on a practitioner's request: %d %s", path, res.StatusCode(), res.Body())
		}
	}
	if res := w.do("linker", "GET", "/registration?kind=practitioner", ""); res.StatusCode() != 403 {
		t.Errorf("linker lists practitioners' requests: %d", res.StatusCode())
	}
	var list struct{ Requests []registration.Request }
	w.want(w.do("linker", "GET", "/registration", ""), 200, &list, "linker's queue")
	for _, q := range list.Requests {
		if q.Kind != registration.Patient {
			t.Errorf("linker sees a %s request", q.Kind)
		}
	}
}

// TestApplicantOpensNoFHIRRoute: an applicant's token reads, searches and
// creates nothing.
func TestApplicantOpensNoFHIRRoute(t *testing.T) {
	w := newRegWorld(t)
	for _, rq := range []struct{ method, uri, body string }{
		{"GET", "/fhir/" + w.doc, ""},
		{"GET", "/fhir/Practitioner", ""},
		{"GET", "/fhir/Organization", ""},
		{"GET", "/fhir/" + w.record, ""},
		{"GET", "/fhir/AuditEvent", ""},
		{"POST", "/fhir/Patient", `{"resourceType":"Patient","name":[{"family":"Me"}]}`},
		{"POST", "/fhir/Practitioner", `{"resourceType":"Practitioner","active":true}`},
	} {
		res := w.do("applicant", rq.method, rq.uri, rq.body)
		if res.StatusCode() != 403 {
			t.Errorf("%s %s as applicant: %d %s", rq.method, rq.uri, res.StatusCode(), res.Body())
		}
	}
}

func TestPractitionerRegistration(t *testing.T) {
	w := newRegWorld(t)
	wallet := w.wallet()
	tok := w.applicant(wallet)

	// Submit, see it, withdraw it.
	r := w.submit(tok, practitionerBody)
	var mine struct{ Requests []registration.Request }
	w.want(w.call(nil, tok, "GET", "/registration/mine", ""), 200, &mine, "mine")
	if len(mine.Requests) != 1 || mine.Requests[0].ID != r.ID || mine.Requests[0].Asserted.Licence.Value != "1234567893" {
		t.Fatalf("mine: %+v", mine)
	}
	res := w.call(nil, tok, "POST", "/registration", practitionerBody)
	if res.StatusCode() != 409 || !strings.Contains(regDiag(res), "already have a registration request waiting") {
		t.Fatalf("second pending request: %d %s", res.StatusCode(), res.Body())
	}
	if res := w.call(nil, w.applicant(w.wallet()), "POST", "/registration/"+r.ID+"/withdraw", ""); res.StatusCode() != 404 {
		t.Fatalf("another wallet withdrew it: %d %s", res.StatusCode(), res.Body())
	}
	var wd registration.Request
	w.want(w.call(nil, tok, "POST", "/registration/"+r.ID+"/withdraw", ""), 200, &wd, "withdraw")
	if wd.Status != registration.Withdrawn || len(wd.History) != 2 || wd.History[1].By != registration.ByYou || !strings.HasPrefix(wd.History[1].AuditEvent, "AuditEvent/") {
		t.Fatalf("withdrawn: %+v", wd)
	}
	if res := w.do("admin", "POST", "/registration/"+r.ID+"/verify", "{}"); res.StatusCode() != 409 {
		t.Fatalf("a withdrawn request verified: %d %s", res.StatusCode(), res.Body())
	}
	if res := w.call(nil, tok, "POST", "/registration/"+r.ID+"/withdraw", ""); res.StatusCode() != 409 {
		t.Fatalf("withdrawn twice: %d %s", res.StatusCode(), res.Body())
	}

	// Submit again; an administrator verifies it.
	r = w.submit(tok, practitionerBody)
	var list struct {
		Requests []registration.Request
		Next     string
	}
	w.want(w.do("admin", "GET", "/registration?kind=practitioner", ""), 200, &list, "queue")
	if !slices.ContainsFunc(list.Requests, func(q registration.Request) bool { return q.ID == r.ID }) {
		t.Fatalf("queue: %+v", list)
	}
	var v registration.Request
	w.want(w.do("admin", "POST", "/registration/"+r.ID+"/verify", ""), 200, &v, "verify")
	if v.Status != registration.Verified || !strings.HasPrefix(v.Record, "Practitioner/") {
		t.Fatalf("verified: %+v", v)
	}
	last := v.History[len(v.History)-1]
	if last.Action != registration.ActVerified || last.By != registration.ByAdmin || !strings.HasPrefix(last.AuditEvent, "AuditEvent/") {
		t.Fatalf("history: %+v", v.History)
	}
	doc := w.read(w.tok["admin"], v.Record)
	body, _ := json.Marshal(doc)
	for _, want := range []string{`"active":true`, wallet, `"1234567893"`, registration.System, `"Santos"`, `"MD"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("Practitioner lacks %s: %s", want, body)
		}
	}
	roles := w.search("admin", "/fhir/PractitionerRole?practitioner="+v.Record)
	if len(roles) != 1 {
		t.Errorf("PractitionerRoles: %v", roles)
	}

	// A retry creates nothing new.
	var again registration.Request
	w.want(w.do("admin", "POST", "/registration/"+r.ID+"/verify", "{}"), 200, &again, "verify again")
	if again.Record != v.Record || len(again.History) != len(v.History) {
		t.Fatalf("retry: %+v", again)
	}
	if got := w.search("admin", "/fhir/Practitioner?identifier="+url.QueryEscape(registration.System+"|"+r.ID)); len(got) != 1 {
		t.Fatalf("records of the request: %v", got)
	}
	// The applicant's session ended; signed in as the practitioner now,
	// the wallet sees its requests.
	if res := w.call(nil, tok, "GET", "/registration/mine", ""); res.StatusCode() != 401 {
		t.Fatalf("applicant token after verification: %d %s", res.StatusCode(), res.Body())
	}
	doctor := w.person(policy.RolePractitioner, v.Record, wallet)
	w.want(w.call(nil, doctor, "GET", "/registration/mine", ""), 200, &mine, "mine as practitioner")
	if len(mine.Requests) != 2 || mine.Requests[0].Status != registration.Verified || mine.Requests[1].Status != registration.Withdrawn {
		t.Fatalf("mine as practitioner: %+v", mine.Requests)
	}

	// Deactivate: the record says so, the session ends, the event is there.
	w.want(w.do("admin", "POST", "/registration/deactivate", `{"record":"`+v.Record+`","reason":"licence suspended"}`), 200, nil, "deactivate")
	if a := w.read(w.tok["admin"], v.Record)["active"]; a != false {
		t.Fatalf("active after deactivation: %v", a)
	}
	if res := w.call(nil, doctor, "GET", "/fhir/"+w.record, ""); res.StatusCode() != 401 {
		t.Fatalf("deactivated practitioner's token: %d %s", res.StatusCode(), res.Body())
	}
	if res := w.call(nil, doctor, "GET", "/registration/mine", ""); res.StatusCode() != 401 {
		t.Fatalf("deactivated practitioner's token on /mine: %d", res.StatusCode())
	}
	w.want(w.do("admin", "POST", "/registration/reactivate", `{"record":"`+v.Record+`"}`), 200, nil, "reactivate")
	w.want(w.call(nil, doctor, "GET", "/registration/mine", ""), 200, &mine, "mine after reactivation")
	var acts []string
	for _, h := range mine.Requests[0].History {
		acts = append(acts, h.Action)
		if h.Action == registration.ActDeactivated && (h.Reason != "licence suspended" || h.AuditEvent == "") {
			t.Errorf("deactivation entry: %+v", h)
		}
	}
	if !slices.Equal(acts, []string{"submitted", "verified", "deactivated", "reactivated"}) {
		t.Fatalf("history: %v", acts)
	}
	// The events, read back through the FHIR API by an administrator.
	var events []map[string]any
	for _, id := range w.search("admin", "/fhir/AuditEvent?entity="+v.Record) {
		events = append(events, w.read(w.tok["admin"], id))
	}
	var descs []string
	for _, e := range events {
		d, _ := e["outcomeDesc"].(string)
		descs = append(descs, d)
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), "Santos") || strings.Contains(string(b), "suspended") {
			t.Errorf("PHI or a reason in the event: %s", b)
		}
		if !strings.Contains(string(b), "urn:fhirgate:principal") {
			t.Errorf("the administrator is not named by identifier: %s", b)
		}
	}
	for _, want := range []string{"verified: record created", "practitioner deactivated", "practitioner reactivated"} {
		if !slices.ContainsFunc(descs, func(d string) bool { return strings.Contains(d, want) }) {
			t.Errorf("no event %q among %q", want, descs)
		}
	}
}

// search returns "Type/id" of what a FHIR search as who finds.
func (w *regWorld) search(who, uri string) []string {
	w.t.Helper()
	var b struct {
		Entry []struct {
			Resource struct{ ResourceType, ID string }
		}
	}
	w.want(w.do(who, "GET", uri, ""), 200, &b, uri)
	var ids []string
	for _, e := range b.Entry {
		if e.Resource.ResourceType != "OperationOutcome" {
			ids = append(ids, e.Resource.ResourceType+"/"+e.Resource.ID)
		}
	}
	return ids
}

// TestConcurrentVerifications: administrators on two replicas verify one
// request at once: one record, one transition, one event.
func TestConcurrentVerifications(t *testing.T) {
	w := newRegWorld(t)
	for round := range 3 {
		r := w.submit(w.applicant(w.wallet()), practitionerBody)
		var wg sync.WaitGroup
		records := make([]string, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := []*Server{w.s, w.s2}[i%2]
				res := w.call(s, w.tok["admin"], "POST", "/registration/"+r.ID+"/verify", "{}")
				if res.StatusCode() != 200 {
					t.Errorf("round %d: verify %d: %d %s", round, i, res.StatusCode(), res.Body())
					return
				}
				var v registration.Request
				json.Unmarshal(res.Body(), &v)
				records[i] = v.Record
			}()
		}
		wg.Wait()
		if got := w.search("admin", "/fhir/Practitioner?identifier="+url.QueryEscape(registration.System+"|"+r.ID)); len(got) != 1 {
			t.Fatalf("round %d: records %v", round, got)
		}
		for _, rec := range records {
			if rec != records[0] {
				t.Fatalf("round %d: answers name different records: %v", round, records)
			}
		}
		var list struct{ Requests []registration.Request }
		w.want(w.do("admin", "GET", "/registration?status=verified", ""), 200, &list, "verified")
		i := slices.IndexFunc(list.Requests, func(q registration.Request) bool { return q.ID == r.ID })
		if i < 0 {
			t.Fatal("not listed as verified")
		}
		n := 0
		for _, h := range list.Requests[i].History {
			if h.Action == registration.ActVerified {
				n++
			}
		}
		events := 0
		for _, id := range w.search("admin", "/fhir/AuditEvent?entity="+records[0]) {
			if d, _ := w.read(w.tok["admin"], id)["outcomeDesc"].(string); strings.Contains(d, "verified") {
				events++
			}
		}
		if n != 1 || events != 1 {
			t.Fatalf("round %d: %d transitions, %d events; history %+v", round, n, events, list.Requests[i].History)
		}
	}
}

func TestPatientRegistration(t *testing.T) {
	w := newRegWorld(t)

	// A new record, verified by the EHR's identity-linking service.
	wallet := w.wallet()
	r := w.submit(w.applicant(wallet), patientBody)
	var v registration.Request
	w.want(w.do("linker", "POST", "/registration/"+r.ID+"/verify", "{}"), 200, &v, "linker verifies")
	if v.History[len(v.History)-1].By != registration.ByLinking || !strings.HasPrefix(v.Record, "Patient/") {
		t.Fatalf("verified: %+v", v)
	}
	me := w.person(policy.RolePatient, v.Record, wallet)
	pt := w.read(me, v.Record)
	if b, _ := json.Marshal(pt); !strings.Contains(string(b), `"birthDate":"1986-04-12"`) || !strings.Contains(string(b), "a@example.org") {
		t.Fatalf("Patient: %s", b)
	}
	// The patient sees the event of their registration.
	var evs []string
	for _, id := range w.search0(me, "/fhir/AuditEvent?patient="+v.Record) {
		b, _ := json.Marshal(w.read(me, id))
		evs = append(evs, string(b))
	}
	if !slices.ContainsFunc(evs, func(e string) bool { return strings.Contains(e, "verified: record created") }) {
		t.Fatalf("the patient does not see their registration event: %v", evs)
	}
	if n := len(w.search0(w.tok["other patient"], "/fhir/AuditEvent?patient="+v.Record)); n != 0 {
		t.Fatalf("another patient sees %d of its events", n)
	}

	// Linking the clinic's record: by number and birth date.
	clinic := w.create("linker", "Patient", `{"resourceType":"Patient","identifier":[{"system":"urn:example:mrn","value":"MRN-40231"}],"birthDate":"1986-04-12","name":[{"family":"Rivera"}]}`)
	w.create("linker", "Patient", `{"resourceType":"Patient","identifier":[{"system":"urn:example:mrn","value":"MRN-777"}],"birthDate":"1950-01-01","name":[{"family":"Other"}]}`)
	wrongBirth := w.submit(w.applicant(w.wallet()), strings.Replace(patientBody, "1986-04-12", "1990-01-01", 1))
	res := w.do("admin", "POST", "/registration/"+wrongBirth.ID+"/verify", `{"clinicNumber":"MRN-40231"}`)
	unknown := w.do("admin", "POST", "/registration/"+wrongBirth.ID+"/verify", `{"clinicNumber":"MRN-00000"}`)
	if res.StatusCode() != 422 || unknown.StatusCode() != 422 || regDiag(res) != regDiag(unknown) {
		t.Fatalf("wrong birth date %d %q; unknown number %d %q", res.StatusCode(), regDiag(res), unknown.StatusCode(), regDiag(unknown))
	}
	first := w.wallet()
	r1 := w.submit(w.applicant(first), patientBody)
	w.want(w.do("admin", "POST", "/registration/"+r1.ID+"/verify", `{"clinicNumber":"MRN-40231","clinicSystem":"urn:example:mrn"}`), 200, &v, "link")
	if v.Record != clinic {
		t.Fatalf("linked %s, want %s", v.Record, clinic)
	}
	firstTok := w.person(policy.RolePatient, clinic, first)
	w.read(firstTok, clinic)

	// A second wallet asking for the same record: 409 unless the
	// administrator replaces the lost wallet.
	second := w.wallet()
	r2 := w.submit(w.applicant(second), patientBody)
	res = w.do("admin", "POST", "/registration/"+r2.ID+"/verify", `{"clinicNumber":"MRN-40231"}`)
	if res.StatusCode() != 409 || !strings.Contains(regDiag(res), "already linked to another wallet") {
		t.Fatalf("second wallet on a linked record: %d %s", res.StatusCode(), res.Body())
	}
	w.want(w.do("admin", "POST", "/registration/"+r2.ID+"/verify", `{"clinicNumber":"MRN-40231","replaceWallet":true}`), 200, &v, "replace wallet")
	b, _ := json.Marshal(w.read(w.tok["linker"], clinic))
	if strings.Contains(string(b), first) || !strings.Contains(string(b), second) {
		t.Fatalf("after the replacement: %s", b)
	}
	if res := w.call(nil, firstTok, "GET", "/fhir/"+clinic, ""); res.StatusCode() != 401 {
		t.Fatalf("the replaced wallet still reads: %d", res.StatusCode())
	}
	// A replay of the first (finished) verification takes nothing back.
	w.want(w.do("admin", "POST", "/registration/"+r1.ID+"/verify", `{}`), 200, nil, "replay")
	if b, _ := json.Marshal(w.read(w.tok["linker"], clinic)); strings.Contains(string(b), first) || !strings.Contains(string(b), second) {
		t.Fatalf("after a replay of the first verification: %s", b)
	}
	var mine struct{ Requests []registration.Request }
	w.want(w.call(nil, w.person(policy.RolePatient, clinic, second), "GET", "/registration/mine", ""), 200, &mine, "mine")
	if len(mine.Requests) != 1 || !slices.ContainsFunc(mine.Requests[0].History, func(h registration.Entry) bool {
		return h.Action == registration.ActWalletReplace && h.AuditEvent != ""
	}) {
		t.Fatalf("mine after replacement: %+v", mine)
	}

	// Reject with a reason: the requester reads it; it cannot be verified.
	tok := w.applicant(w.wallet())
	rj := w.submit(tok, patientBody)
	w.want(w.do("admin", "POST", "/registration/"+rj.ID+"/reject", `{"reason":"We could not find you in our files."}`), 200, nil, "reject")
	w.want(w.call(nil, tok, "GET", "/registration/mine", ""), 200, &mine, "mine after rejection")
	if got := mine.Requests[0]; got.Status != registration.Rejected || got.Reason != "We could not find you in our files." {
		t.Fatalf("rejected: %+v", got)
	}
	for _, path := range []string{"/verify", "/reject"} {
		if res := w.do("admin", "POST", "/registration/"+rj.ID+path, `{"reason":"x"}`); res.StatusCode() != 409 {
			t.Fatalf("%s of a rejected request: %d %s", path, res.StatusCode(), res.Body())
		}
	}
	if res := w.do("admin", "POST", "/registration/"+rj.ID+"/reject", `{}`); res.StatusCode() != 400 {
		t.Fatalf("reject without a reason: %d", res.StatusCode())
	}
}

// search0 is search with a token.
func (w *regWorld) search0(tok, uri string) []string {
	w.t.Helper()
	saved := w.tok["_"]
	w.tok["_"] = tok
	defer func() { w.tok["_"] = saved }()
	return w.search("_", uri)
}

// TestRegistrationNarrowCases: the refusals at the edges.
func TestRegistrationNarrowCases(t *testing.T) {
	w := newRegWorld(t)

	// A wallet linked to a record asks for nothing more, whatever its token.
	if res := w.do("patient", "POST", "/registration", patientBody); res.StatusCode() != 403 || !strings.Contains(regDiag(res), "already linked") {
		t.Fatalf("patient submits: %d %s", res.StatusCode(), res.Body())
	}
	linked := w.wallet()
	w.create("linker", "Patient", `{"resourceType":"Patient","identifier":[`+walletIdent(linked)+`]}`)
	if res := w.call(nil, w.applicant(linked), "POST", "/registration", patientBody); res.StatusCode() == 201 {
		t.Fatalf("a linked wallet's applicant token submitted: %s", res.Body())
	}

	// A verification for a wallet linked elsewhere since it asked: 409.
	wallet := w.wallet()
	r := w.submit(w.applicant(wallet), practitionerBody)
	w.create("linker", "Patient", `{"resourceType":"Patient","identifier":[`+walletIdent(wallet)+`]}`)
	res := w.do("admin", "POST", "/registration/"+r.ID+"/verify", "{}")
	if res.StatusCode() != 409 || !strings.Contains(regDiag(res), "already linked to another record") {
		t.Fatalf("verify of a wallet linked elsewhere: %d %s", res.StatusCode(), res.Body())
	}
	var got registration.Request
	w.want(w.do("admin", "GET", "/registration?kind=practitioner", ""), 200, nil, "queue")
	if q, _, err := w.s.cfg.Registration.Get(context.Background(), r.ID); err != nil || q.Status != registration.Pending {
		t.Fatalf("after a refused verification: %+v %v", q, err)
	}
	_ = got

	// Linking an existing practitioner record that holds another wallet.
	w2 := w.wallet()
	r2 := w.submit(w.applicant(w2), practitionerBody)
	res = w.do("admin", "POST", "/registration/"+r2.ID+"/verify", `{"record":"`+w.doc+`"}`)
	if res.StatusCode() != 409 {
		t.Fatalf("link to a practitioner with another wallet: %d %s", res.StatusCode(), res.Body())
	}
	if res := w.do("admin", "POST", "/registration/"+r2.ID+"/verify", `{"record":"Practitioner/nope"}`); res.StatusCode() != 422 {
		t.Fatalf("link to no record: %d %s", res.StatusCode(), res.Body())
	}

	// Bounds, refused with the field named.
	tok := w.applicant(w.wallet())
	for field, body := range map[string]string{
		"name.family":   strings.Replace(patientBody, `"Rivera"`, `"`+strings.Repeat("R", 201)+`"`, 1),
		"birthDate":     strings.Replace(patientBody, "1986-04-12", "2999-01-01", 1),
		"email":         strings.Replace(patientBody, "a@example.org", "not an email", 1),
		"name.given":    strings.Replace(patientBody, `"Alex"`, `"A B C D E F"`, 1),
		"licence.value": `{"kind":"practitioner","name":{"family":"S"},"qualification":"MD"}`,
	} {
		res := w.call(nil, tok, "POST", "/registration", body)
		var oo struct {
			Issue []struct {
				Diagnostics string
				Expression  []string
			}
		}
		json.Unmarshal(res.Body(), &oo)
		if res.StatusCode() != 400 || len(oo.Issue) == 0 || !slices.Contains(oo.Issue[0].Expression, field) || !strings.Contains(oo.Issue[0].Diagnostics, field) {
			t.Errorf("%s: %d %s", field, res.StatusCode(), res.Body())
		}
	}
	if res := serve(w.s, "POST", "/registration", "text/plain", tok, []byte(patientBody)); res.StatusCode() != 415 {
		t.Errorf("text/plain body: %d", res.StatusCode())
	}

	// The body limit holds after decompression.
	bomb := encode(t, "gzip", append([]byte(patientBody), bytes.Repeat([]byte(" "), 17<<20)...))
	if res := serveWith(w.s, "POST", "/registration", mimeJSON, tok, bomb, "Content-Encoding", "gzip"); res.StatusCode() != 413 {
		t.Errorf("a body over the limit once inflated: %d %s", res.StatusCode(), res.Body())
	}

	// At most 20 requests per wallet.
	many := w.applicant(w.wallet())
	for i := range registration.MaxPerWallet {
		q := w.submit(many, patientBody)
		w.want(w.call(nil, many, "POST", "/registration/"+q.ID+"/withdraw", ""), 200, nil, fmt.Sprint("withdraw ", i))
	}
	if res := w.call(nil, many, "POST", "/registration", patientBody); res.StatusCode() != 429 || !strings.Contains(regDiag(res), "ask the clinic") {
		t.Fatalf("request %d: %d %s", registration.MaxPerWallet+1, res.StatusCode(), res.Body())
	}
	var mine struct{ Requests []registration.Request }
	w.want(w.call(nil, many, "GET", "/registration/mine", ""), 200, &mine, "mine")
	if len(mine.Requests) != registration.MaxPerWallet {
		t.Fatalf("mine lists %d", len(mine.Requests))
	}

	// The queue pages.
	var page struct {
		Requests []registration.Request
		Next     string
	}
	w.want(w.do("admin", "GET", "/registration?status=withdrawn&_count=7", ""), 200, &page, "page 1")
	if len(page.Requests) != 7 || page.Next == "" {
		t.Fatalf("page 1: %d next %q", len(page.Requests), page.Next)
	}
	w.want(w.do("admin", "GET", "/registration?status=withdrawn&_count=7&cursor="+page.Next, ""), 200, &page, "page 2")
	if len(page.Requests) != 7 {
		t.Fatalf("page 2: %d", len(page.Requests))
	}
	if res := w.do("admin", "GET", "/registration?status=done", ""); res.StatusCode() != 400 {
		t.Fatalf("bad status: %d", res.StatusCode())
	}
	var prs struct {
		Practitioners []practitionerRow
		Next          string
	}
	w.want(w.do("admin", "GET", "/registration/practitioners?_count=100", ""), 200, &prs, "practitioners")
	if len(prs.Practitioners) != 1 || prs.Practitioners[0].Record != w.doc || !prs.Practitioners[0].Active || prs.Practitioners[0].Name != "Lee" || prs.Practitioners[0].Wallet == "" {
		t.Fatalf("practitioners: %+v", prs)
	}
}

// TestAccountEventsWithoutRequest: a practitioner registered before these
// routes (no request) sees what an administrator did to their record.
func TestAccountEventsWithoutRequest(t *testing.T) {
	w := newRegWorld(t)
	w.want(w.do("admin", "POST", "/registration/deactivate", `{"record":"`+w.doc+`","reason":"licence suspended"}`), 200, nil, "deactivate")
	var again map[string]any
	w.want(w.do("admin", "POST", "/registration/deactivate", `{"record":"`+w.doc+`","reason":"again"}`), 200, &again, "deactivate again")
	if again["changed"] != false {
		t.Fatalf("a second deactivation changed something: %v", again)
	}
	w.want(w.do("admin", "POST", "/registration/reactivate", `{"record":"`+w.doc+`"}`), 200, nil, "reactivate")
	var mine struct{ Requests []registration.Request }
	w.want(w.do("practitioner", "GET", "/registration/mine", ""), 200, &mine, "mine")
	if len(mine.Requests) != 1 || mine.Requests[0].Record != w.doc || len(mine.Requests[0].History) != 2 ||
		mine.Requests[0].History[0].Action != registration.ActDeactivated || mine.Requests[0].History[0].Reason != "licence suspended" {
		t.Fatalf("mine: %+v", mine)
	}
	if res := w.do("admin", "POST", "/registration/deactivate", `{"record":"Practitioner/none","reason":"x"}`); res.StatusCode() != 422 {
		t.Fatalf("deactivate no record: %d", res.StatusCode())
	}
	if res := w.do("admin", "POST", "/registration/deactivate", `{"record":"`+w.record+`","reason":"x"}`); res.StatusCode() != 400 {
		t.Fatalf("deactivate a Patient: %d", res.StatusCode())
	}
}

// TestVerificationFinishedAfterACrash: a replica that made the transition
// and died before writing the record leaves a verified request without
// its record; a retry after a while makes the record and the event.
func TestVerificationFinishedAfterACrash(t *testing.T) {
	w := newRegWorld(t)
	r := w.submit(w.applicant(w.wallet()), practitionerBody)
	ctx := context.Background()
	rec := "Practitioner/" + newID()
	if _, _, err := w.s.cfg.Registration.Update(ctx, r.ID, func(r *registration.Request, l **registration.Link) error {
		r.Status, r.Record, *l = registration.Verified, rec, &registration.Link{Record: rec, Create: true}
		r.History = append(r.History, registration.Entry{At: time.Now().Add(-time.Minute), Action: registration.ActVerified, By: registration.ByAdmin})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var v registration.Request
	w.want(w.do("admin", "POST", "/registration/"+r.ID+"/verify", "{}"), 200, &v, "retry")
	if v.Record != rec || !strings.HasPrefix(v.History[len(v.History)-1].AuditEvent, "AuditEvent/") {
		t.Fatalf("after the retry: %+v", v)
	}
	if a := w.read(w.tok["admin"], rec)["active"]; a != true {
		t.Fatalf("the record: active %v", a)
	}
}

// TestRacingDecisions: verify, reject and withdraw of one request at once
// on two replicas: one of them happens, and a record exists exactly when
// the verification won.
func TestRacingDecisions(t *testing.T) {
	w := newRegWorld(t)
	for round := range 4 {
		tok := w.applicant(w.wallet())
		r := w.submit(tok, practitionerBody)
		var wg sync.WaitGroup
		ok := make([]bool, 6)
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := []*Server{w.s, w.s2}[i%2]
				var res *fasthttp.Response
				switch i % 3 {
				case 0:
					res = w.call(s, w.tok["admin"], "POST", "/registration/"+r.ID+"/verify", "{}")
				case 1:
					res = w.call(s, w.tok["admin"], "POST", "/registration/"+r.ID+"/reject", `{"reason":"no"}`)
				case 2:
					res = w.call(s, tok, "POST", "/registration/"+r.ID+"/withdraw", "")
				}
				switch res.StatusCode() {
				case 200:
					ok[i] = true
				case 409:
				default:
					t.Errorf("round %d, %d: %d %s", round, i, res.StatusCode(), res.Body())
				}
			}()
		}
		wg.Wait()
		q, _, err := w.s.cfg.Registration.Get(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(q.History) != 2 {
			t.Fatalf("round %d: history %+v", round, q.History)
		}
		recs := w.search("admin", "/fhir/Practitioner?identifier="+url.QueryEscape(registration.System+"|"+r.ID))
		if (q.Status == registration.Verified) != (len(recs) == 1) || len(recs) > 1 {
			t.Fatalf("round %d: status %s, records %v", round, q.Status, recs)
		}
		// A reject or withdraw answers 200 only when it won; a
		// verification also answers the verified request to the others.
		verified, others := 0, 0
		for i, o := range ok {
			switch {
			case !o:
			case i%3 == 0:
				verified++
			default:
				others++
			}
		}
		if q.Status == registration.Verified && others != 0 || q.Status != registration.Verified && (others != 1 || verified != 0) {
			t.Fatalf("round %d: status %s; %d verifications and %d others answered 200", round, q.Status, verified, others)
		}
	}
}
