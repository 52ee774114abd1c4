package rest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/fhir/bulk"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// exportWorld is an in-process gateway on Pebble with an audit trail, a
// consent mirror, a bulk exporter running in the background and a token
// per kind of principal (accessWorld's). restart closes it all and opens
// it again on the same directory.
type exportWorld struct {
	*accessWorld
	dir     string
	key     *auth.Key
	ctx     context.Context // ends when the gateway stops
	decider *policy.Decider
	stop    func()
	decide  func(p *policy.Principal, v *store.Version) policy.Decision
	cfg     bulk.Config
	x       *bulk.Exporter
}

func newExportWorld(t *testing.T, cfg bulk.Config) *exportWorld {
	t.Helper()
	consent, err := policy.NewConsent(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	w := &exportWorld{dir: t.TempDir(), cfg: cfg,
		accessWorld: &accessWorld{t: t, grants: consent.Grants(), tok: map[string]string{}}}
	w.decider = &policy.Decider{Consent: consent}
	w.open()
	t.Cleanup(func() { w.stop() })
	mint := func(name string, g auth.Grant) {
		g.TTL = time.Hour
		tok, err := w.key.Mint(g, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		w.tok[name] = tok
	}
	mint("system", auth.Grant{Subject: "client/ehr", Scope: "system/*.cruds"})
	mint("other system", auth.Grant{Subject: "client/ehr-2", Scope: "system/*.cruds"})
	mint("observer", auth.Grant{Subject: "client/obs", Scope: "system/Observation.rs"})
	mint("admin", auth.Grant{Subject: "client/admin", Role: policy.RoleAdmin, Scope: siwe.DefaultScopes[policy.RoleAdmin]})
	w.patient = w.create("system", "Patient", `{"resourceType":"Patient","name":[{"family":"Rivera"}]}`)
	w.other = w.create("system", "Patient", `{"resourceType":"Patient","name":[{"family":"Okafor"}]}`)
	doc := w.create("system", "Practitioner", `{"resourceType":"Practitioner","active":true,"name":[{"family":"Santos"}]}`)
	mint("patient", auth.Grant{Role: policy.RolePatient, FHIRUser: w.patient, Scope: "patient/*.cruds"})
	mint("doctor", auth.Grant{Role: policy.RolePractitioner, FHIRUser: doc, Scope: "user/*.cruds"})
	mint("other patient", auth.Grant{Role: policy.RolePatient, FHIRUser: w.other, Scope: "patient/*.cruds"})
	nogrant := w.create("system", "Practitioner", `{"resourceType":"Practitioner","active":true,"name":[{"family":"Nash"}]}`)
	mint("stranger", auth.Grant{Role: policy.RolePractitioner, FHIRUser: nogrant, Scope: "user/*.cruds"})
	mint("regulator", auth.Grant{Subject: "client/reg", Role: policy.RoleRegulator, Scope: siwe.DefaultScopes[policy.RoleRegulator]})
	return w
}

// open builds the gateway over the directory.
func (w *exportWorld) open() {
	t := w.t
	decider := w.decider
	ctx, cancel := context.WithCancel(context.Background())
	w.ctx = ctx
	db, err := pebble.New(ctx, pebble.Config{Dir: w.dir + "/store", CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.OpenTrail(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db, store.Options{Shared: search.Shared, Virtual: map[string]store.Virtual{"AuditEvent": trail}})
	rec := audit.NewRecorder(trail, audit.Options{})
	go rec.Run(ctx)
	if w.key, err = auth.LoadOrCreateKey(w.dir); err != nil {
		t.Fatal(err)
	}
	cfg := w.cfg
	cfg.Store, cfg.Audit, cfg.Types, cfg.Poll = st, rec, search.ResourceTypes(), 20*time.Millisecond
	base := ExportDecider(decider)
	cfg.Decide = func(p *policy.Principal, v *store.Version) policy.Decision {
		if w.decide != nil {
			return w.decide(p, v)
		}
		return base(p, v)
	}
	w.x = bulk.New(cfg)
	done := make(chan struct{})
	go func() { defer close(done); w.x.Run(ctx) }()
	w.s = New(Config{Store: st, Verifier: auth.NewVerifier(w.key), BaseURL: "http://test/fhir", Indexer: search.Extract,
		Audit: rec, Decider: decider, Export: w.x})
	w.s.SetReady(true)
	w.stop = func() {
		cancel()
		<-done
		rec.Close(context.Background())
		st.Close()
	}
}

// call is one request through the handler stack, the body read out (a
// download is streamed).
func (w *exportWorld) call(who, method, uri string, headers ...string) (int, *fasthttp.ResponseHeader, []byte) {
	return w.callBody(who, method, uri, "", headers...)
}

// callBody is call with a request body (a FHIR JSON one when not empty,
// unless the headers name another Content-Type).
func (w *exportWorld) callBody(who, method, uri, reqBody string, headers ...string) (int, *fasthttp.ResponseHeader, []byte) {
	var req fasthttp.Request
	if reqBody != "" {
		req.Header.SetContentType("application/fhir+json")
		req.SetBodyString(reqBody)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.Header.SetHost("test")
	if tok := w.tok[who]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	w.s.app.Handler()(&ctx)
	body := bytes.Clone(ctx.Response.Body())
	var h fasthttp.ResponseHeader
	ctx.Response.Header.CopyTo(&h)
	return ctx.Response.StatusCode(), &h, body
}

// kickoff starts an export as who and returns its status URL's path.
func (w *exportWorld) kickoff(who, uri string) string {
	w.t.Helper()
	return w.kickoffWith(who, "GET", uri, "")
}

// kickoffPost starts an export as who with a POST of a Parameters body
// holding params (name, value[x] as JSON, ...).
func (w *exportWorld) kickoffPost(who, uri string, params ...string) string {
	w.t.Helper()
	return w.kickoffWith(who, "POST", uri, parametersBody(params...))
}

// parametersBody is a Parameters resource of (name, "valueX":json) pairs.
func parametersBody(params ...string) string {
	var ps []string
	for i := 0; i+1 < len(params); i += 2 {
		ps = append(ps, `{"name":"`+params[i]+`",`+params[i+1]+`}`)
	}
	return `{"resourceType":"Parameters","parameter":[` + strings.Join(ps, ",") + `]}`
}

func (w *exportWorld) kickoffWith(who, method, uri, reqBody string) string {
	w.t.Helper()
	status, h, body := w.callBody(who, method, uri, reqBody, "Prefer", "respond-async", "Accept", "application/fhir+json")
	if status != 202 {
		w.t.Fatalf("kick-off %s as %s: %d %s", uri, who, status, body)
	}
	loc := string(h.Peek("Content-Location"))
	if !strings.HasPrefix(loc, "http://test/fhir/$export-poll-status/") {
		w.t.Fatalf("Content-Location %q", loc)
	}
	return strings.TrimPrefix(loc, "http://test")
}

type exportManifest struct {
	TransactionTime     string `json:"transactionTime"`
	Request             string `json:"request"`
	RequiresAccessToken bool   `json:"requiresAccessToken"`
	Output              []struct {
		Type, URL string
		Count     int
		Extension struct{ SHA256 string }
	} `json:"output"`
	Error   []any `json:"error"`
	Deleted []struct {
		Type, URL string
		Count     int
		Extension struct{ SHA256 string }
	} `json:"deleted"`
	raw []byte
}

// wait polls the status URL as who until the manifest comes.
func (w *exportWorld) wait(who, status string) exportManifest {
	w.t.Helper()
	sawProgress := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		code, h, body := w.call(who, "GET", status)
		switch code {
		case 202:
			if len(h.Peek("X-Progress")) == 0 || string(h.Peek("Retry-After")) == "" {
				w.t.Fatalf("202 without X-Progress and Retry-After: %s", h)
			}
			sawProgress = true
			time.Sleep(10 * time.Millisecond)
			continue
		case 200:
			if ct := string(h.ContentType()); ct != "application/json" {
				w.t.Errorf("manifest Content-Type %q", ct)
			}
			var m exportManifest
			if err := json.Unmarshal(body, &m); err != nil {
				w.t.Fatalf("manifest: %v: %s", err, body)
			}
			m.raw = body
			_ = sawProgress
			return m
		default:
			w.t.Fatalf("status %s as %s: %d %s", status, who, code, body)
		}
	}
	w.t.Fatalf("export %s did not complete", status)
	return exportManifest{}
}

// download fetches every file of m as who: resource type -> "Type/id" ->
// the line.
func (w *exportWorld) download(who string, m exportManifest) map[string]string {
	w.t.Helper()
	out := map[string]string{}
	for _, f := range m.Output {
		code, h, body := w.call(who, "GET", strings.TrimPrefix(f.URL, "http://test"), "Accept", "application/fhir+ndjson")
		if code != 200 || string(h.ContentType()) != "application/fhir+ndjson" {
			w.t.Fatalf("download %s as %s: %d %s %s", f.URL, who, code, h.ContentType(), body)
		}
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != f.Extension.SHA256 {
			w.t.Errorf("file %s: sha256 differs from the manifest's", f.URL)
		}
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		if len(lines) != f.Count {
			w.t.Errorf("file %s: %d lines, manifest count %d", f.URL, len(lines), f.Count)
		}
		for _, l := range lines {
			var r struct{ ResourceType, ID string }
			if err := json.Unmarshal([]byte(l), &r); err != nil || r.ResourceType != f.Type {
				w.t.Fatalf("file %s: line %q (%v)", f.URL, l, err)
			}
			ref := r.ResourceType + "/" + r.ID
			if _, dup := out[ref]; dup {
				w.t.Errorf("%s exported twice", ref)
			}
			out[ref] = l
		}
	}
	return out
}

func refsOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (w *exportWorld) observation(who, patient, code string) string {
	return w.create(who, "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"`+code+`"},"subject":{"reference":"`+patient+`"}}`)
}

func TestExportKickoffRefusals(t *testing.T) {
	w := newExportWorld(t, bulk.Config{})
	async := []string{"Prefer", "respond-async"}
	tests := []struct {
		name, who, uri string
		headers        []string
		status         int
		want           string
	}{
		{"no Prefer", "system", "/fhir/$export", nil, 400, "Prefer: respond-async"},
		{"no token", "", "/fhir/$export", async, 401, "bearer token"},
		{"bad format", "system", "/fhir/$export?_outputFormat=text/csv", async, 400, "_outputFormat"},
		{"unknown type", "system", "/fhir/$export?_type=Patient,Nonsense", async, 400, "Nonsense"},
		{"audit trail", "system", "/fhir/$export?_type=AuditEvent", async, 400, "not exported"},
		{"bad since", "system", "/fhir/Patient/$export?_since=yesterday", async, 400, "_since"},
		{"elements", "system", "/fhir/$export?_elements=id", async, 400, "not supported"},
		{"patient in a GET", "system", "/fhir/Patient/$export?patient=Patient/x", async, 400, "POST"},
		{"unknown parameter", "system", "/fhir/$export?foo=1", async, 400, "not a parameter"},
		{"type beyond scope", "observer", "/fhir/$export?_type=Patient", async, 403, "scope"},
		{"group absent", "system", "/fhir/Group/nope/$export", async, 404, "not found"},
		{"lenient", "system", "/fhir/$export?foo=1&_outputFormat=application/fhir%2Bndjson", []string{"Prefer", "respond-async, handling=lenient"}, 202, ""},
		{"ndjson", "system", "/fhir/$export?_outputFormat=ndjson", async, 202, ""},
		{"plus in format", "system", "/fhir/$export?_outputFormat=application/fhir+ndjson", async, 202, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := w.call(tt.who, "GET", tt.uri, tt.headers...)
			if code != tt.status || !strings.Contains(string(body), tt.want) {
				t.Errorf("%s: %d %s, want %d with %q", tt.uri, code, body, tt.status, tt.want)
			}
			if code == 202 { // done with it (the caller's bound on running exports)
				w.call(tt.who, "DELETE", strings.TrimPrefix(string(h.Peek("Content-Location")), "http://test"))
			}
			if code >= 400 && !strings.Contains(string(body), `"resourceType":"OperationOutcome"`) {
				t.Errorf("%s: not an OperationOutcome: %s", tt.uri, body)
			}
		})
	}
}

// TestExportSystem: kick-off, polling, manifest, downloads with and
// without the right token, the audit trail, cancel.
func TestExportSystem(t *testing.T) {
	w := newExportWorld(t, bulk.Config{FileResources: 3, BlockBytes: 200})
	var want []string
	for i := range 7 {
		want = append(want, w.observation("system", w.patient, fmt.Sprint("obs", i)))
	}
	want = append(want, w.observation("system", w.other, "other"))
	// A resource written by another client, not granted: not the caller's.
	w.observation("other system", w.patient, "foreign")
	status := w.kickoff("system", "/fhir/$export?_type=Observation,Patient")
	m := w.wait("system", status)
	if !m.RequiresAccessToken || m.Request != "http://test/fhir/$export?_type=Observation,Patient" || m.Error == nil || len(m.Error) != 0 {
		t.Errorf("manifest: %s", m.raw)
	}
	if _, err := time.Parse(time.RFC3339Nano, m.TransactionTime); err != nil {
		t.Errorf("transactionTime %q", m.TransactionTime)
	}
	if len(m.Output) != 4 || m.Output[0].Type != "Observation" || m.Output[0].Count != 3 || m.Output[3].Type != "Patient" {
		t.Errorf("output: %s", m.raw)
	}
	got := w.download("system", m)
	want = append(want, w.patient, w.other)
	slices.Sort(want)
	if !slices.Equal(refsOf(got), want) {
		t.Errorf("exported %v, want %v", refsOf(got), want)
	}
	// The manifest is served again identically (it is stored).
	if code, _, again := w.call("system", "GET", status); code != 200 || !bytes.Equal(again, m.raw) {
		t.Errorf("second poll: %d %s", code, again)
	}

	// Another client: the same 404 as for a file or job that does not exist.
	file := strings.TrimPrefix(m.Output[0].URL, "http://test")
	job := strings.TrimPrefix(status, "/fhir/$export-poll-status/")
	_, _, absent := w.call("system", "GET", "/fhir/$export-file/"+job+"/99.ndjson")
	for _, c := range []struct{ who, uri string }{
		{"other system", file}, {"patient", file}, {"system", "/fhir/$export-file/" + job + "/99.ndjson"},
		{"system", "/fhir/$export-file/0123456789abcdef0123456789abcdef/1.ndjson"},
	} {
		code, _, body := w.call(c.who, "GET", c.uri)
		if code != 404 || !bytes.Equal(body, absent) {
			t.Errorf("%s as %s: %d %s, want 404 %s", c.uri, c.who, code, body, absent)
		}
	}
	if code, _, _ := w.call("", "GET", file); code != 401 {
		t.Errorf("download without a token: %d", code)
	}
	if code, _, _ := w.call("other system", "GET", status); code != 404 {
		t.Errorf("status as another client: %d", code)
	}
	if code, _, _ := w.call("admin", "GET", file); code != 200 {
		t.Errorf("download as admin: %d", code)
	}

	// Audited: one event per patient whose data left, naming the export;
	// one for the export with the manifest's hash.
	sum := sha256.Sum256(m.raw)
	for _, p := range []string{w.patient, w.other} {
		evs := auditEvents(t, w.s, "patient="+p)
		if !slices.ContainsFunc(evs, func(e map[string]any) bool {
			d, _ := e["outcomeDesc"].(string)
			return strings.Contains(d, "bulk data export "+job) && strings.Contains(d, hex.EncodeToString(sum[:]))
		}) {
			t.Errorf("no export event for %s", p)
		}
	}
	all := auditEvents(t, w.s, "subtype=operation")
	if !slices.ContainsFunc(all, func(e map[string]any) bool {
		d, _ := e["outcomeDesc"].(string)
		return strings.HasSuffix(d, "manifest sha256 "+hex.EncodeToString(sum[:])+", 2 patients")
	}) {
		t.Errorf("no export event with the manifest's hash")
	}

	// Cancel: 202, then the job and its files are gone.
	if code, _, body := w.call("other system", "DELETE", status); code != 404 {
		t.Errorf("cancel as another client: %d %s", code, body)
	}
	if code, _, body := w.call("system", "DELETE", status); code != 202 {
		t.Errorf("cancel: %d %s", code, body)
	}
	if code, _, _ := w.call("system", "GET", status); code != 404 {
		t.Errorf("status after cancel: %d", code)
	}
	if code, _, _ := w.call("system", "GET", file); code != 404 {
		t.Errorf("file after cancel: %d", code)
	}
}

// TestExportSinceAndConsent: _since keeps what changed since; a
// practitioner's Patient-level export holds the consented patient only;
// a patient exports their own records; a Group export its members'.
func TestExportSinceAndConsent(t *testing.T) {
	w := newExportWorld(t, bulk.Config{})
	w.observation("system", w.patient, "old")
	w.observation("system", w.other, "old other")
	time.Sleep(5 * time.Millisecond)
	since := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(5 * time.Millisecond)
	recent := w.observation("system", w.patient, "new")

	m := w.wait("system", w.kickoff("system", "/fhir/$export?_type=Observation&_since="+since))
	if got := refsOf(w.download("system", m)); !slices.Equal(got, []string{recent}) {
		t.Errorf("_since: %v, want %v", got, []string{recent})
	}

	// No grant: nothing of either patient.
	m = w.wait("doctor", w.kickoff("doctor", "/fhir/Patient/$export"))
	if got := w.download("doctor", m); len(got) != 0 {
		t.Errorf("practitioner without consent exported %v", refsOf(got))
	}
	w.grant(w.patient, w.tokSubject("doctor"), "*.rs")
	m = w.wait("doctor", w.kickoff("doctor", "/fhir/Patient/$export"))
	for _, ref := range refsOf(w.download("doctor", m)) {
		if ref == w.other || !strings.HasPrefix(ref, "Observation/") && ref != w.patient {
			t.Errorf("practitioner export holds %s", ref)
		}
	}
	if len(m.Output) == 0 {
		t.Errorf("practitioner with consent exported nothing")
	}

	m = w.wait("patient", w.kickoff("patient", "/fhir/Patient/$export"))
	got := w.download("patient", m)
	if len(got) != 3 {
		t.Errorf("patient's own export: %v", refsOf(got))
	}
	for ref, line := range got {
		if ref != w.patient && !strings.Contains(line, w.patient) {
			t.Errorf("patient export holds %s", ref)
		}
	}

	group := w.create("system", "Group", `{"resourceType":"Group","type":"person","actual":true,"member":[{"entity":{"reference":"`+w.other+`"}}]}`)
	m = w.wait("system", w.kickoff("system", "/fhir/"+group+"/$export?_type=Patient,Observation"))
	got = w.download("system", m)
	if len(got) != 2 || got[w.other] == "" {
		t.Errorf("group export: %v", refsOf(got))
	}
	for ref, line := range got {
		if ref != w.other && !strings.Contains(line, w.other) {
			t.Errorf("group export holds %s", ref)
		}
	}
}

// tokSubject is the subject a principal's token names (a practitioner's
// Practitioner/<id>).
func (w *exportWorld) tokSubject(who string) string {
	p, err := auth.NewVerifier(w.key).Verify(w.tok[who])
	if err != nil {
		w.t.Fatal(err)
	}
	return p.Resource
}

// TestExportResumesAfterRestart: a gateway stopped in the middle of an
// export resumes it when it starts again (the job and its files are in
// the store): every resource exactly once, the manifest served.
// stopAtDecision makes the export allow every resource and hang at its
// n-th decision until the gateway stops (a replica dying mid-export);
// the channel closes when it is reached.
func (w *exportWorld) stopAtDecision(n int32) <-chan struct{} {
	var seen atomic.Int32
	stopped := make(chan struct{})
	w.decide = func(*policy.Principal, *store.Version) policy.Decision {
		if seen.Add(1) == n {
			close(stopped)
			<-w.ctx.Done() // the replica stops here
		}
		return policy.Decision{Allow: true}
	}
	return stopped
}

func TestExportResumesAfterRestart(t *testing.T) {
	w := newExportWorld(t, bulk.Config{FileResources: 4, BlockBytes: 100})
	var want []string
	for i := range 12 {
		want = append(want, w.observation("system", w.patient, fmt.Sprint("obs", i)))
	}
	stopped := w.stopAtDecision(7)
	status := w.kickoff("system", "/fhir/$export?_type=Observation")
	<-stopped
	code, h, _ := w.call("system", "GET", status)
	if code != 202 || !strings.Contains(string(h.Peek("X-Progress")), "resources written") {
		t.Fatalf("status mid-export: %d %s", code, h.Peek("X-Progress"))
	}
	w.stop()
	w.decide = nil
	w.open()
	m := w.wait("system", status)
	got := w.download("system", m)
	slices.Sort(want)
	if !slices.Equal(refsOf(got), want) {
		t.Errorf("after restart: %v, want %v", refsOf(got), want)
	}
}

// TestExportFails: an export that cannot decide (the consent mirror is
// behind) fails, and its status says why (500 OperationOutcome).
func TestExportFails(t *testing.T) {
	w := newExportWorld(t, bulk.Config{})
	w.decide = func(*policy.Principal, *store.Version) policy.Decision { return policy.Decision{Unavailable: true} }
	status := w.kickoff("system", "/fhir/$export?_type=Patient")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		code, _, body := w.call("system", "GET", status)
		if code == 202 {
			continue
		}
		if code != 500 || !strings.Contains(string(body), "consents cannot be checked now") || !strings.Contains(string(body), "OperationOutcome") {
			t.Fatalf("failed export: %d %s", code, body)
		}
		return
	}
	t.Fatal("the export neither completed nor failed")
}

// TestExportPostKickoff: a POST of a Parameters body starts the same
// export a GET does, with the same refusals, and refuses what is
// malformed naming the parameter.
func TestExportPostKickoff(t *testing.T) {
	w := newExportWorld(t, bulk.Config{})
	obs := w.observation("system", w.patient, "posted")
	status := w.kickoffPost("system", "/fhir/$export", "_type", `"valueString":"Observation"`,
		"_outputFormat", `"valueString":"application/fhir+ndjson"`, "_since", `"valueInstant":"2000-01-01T00:00:00Z"`)
	m := w.wait("system", status)
	if m.Request != "http://test/fhir/$export" {
		t.Errorf("manifest request %q", m.Request)
	}
	if got := refsOf(w.download("system", m)); !slices.Equal(got, []string{obs}) {
		t.Errorf("POST export: %v, want %v", got, []string{obs})
	}

	async := []string{"Prefer", "respond-async"}
	lenient := []string{"Prefer", "respond-async, handling=lenient"}
	big := parametersBody("_type", `"valueString":"`+strings.Repeat("Patient,", 40_000)+`Patient"`)
	tests := []struct {
		name, uri, body string
		headers         []string
		status          int
		want            []string // in the body
	}{
		{"unknown type", "/fhir/$export", parametersBody("_type", `"valueString":"Patient,Nonsense"`), async, 400, []string{"Nonsense", `"_type"`}},
		{"since as a string", "/fhir/Patient/$export", parametersBody("_since", `"valueString":"2026-01-01T00:00:00Z"`), async, 400, []string{"_since", "valueInstant"}},
		{"bad since", "/fhir/Patient/$export", parametersBody("_since", `"valueInstant":"yesterday"`), async, 400, []string{"_since"}},
		{"since twice", "/fhir/$export", parametersBody("_since", `"valueInstant":"2026-01-01T00:00:00Z"`, "_since", `"valueInstant":"2026-01-01T00:00:00Z"`), async, 400, []string{"more than once"}},
		{"bad format", "/fhir/$export", parametersBody("_outputFormat", `"valueString":"text/csv"`), async, 400, []string{"_outputFormat"}},
		{"unknown parameter", "/fhir/$export", parametersBody("foo", `"valueString":"1"`), async, 400, []string{"foo", "not a parameter"}},
		{"unknown parameter, lenient", "/fhir/$export", parametersBody("foo", `"valueString":"1"`, "_type", `"valueString":"Patient"`), lenient, 202, nil},
		{"unsupported, lenient", "/fhir/$export", parametersBody("includeAssociatedData", `"valueCode":"LatestProvenanceResources"`), lenient, 202, nil},
		{"unsupported", "/fhir/$export", parametersBody("includeAssociatedData", `"valueCode":"LatestProvenanceResources"`), async, 400, []string{"includeAssociatedData", "not supported"}},
		{"no name", "/fhir/$export", `{"resourceType":"Parameters","parameter":[{"valueString":"Patient"}]}`, async, 400, []string{"parameter[0].name"}},
		{"a part", "/fhir/$export", parametersBody("_type", `"part":[]`), async, 400, []string{"part"}},
		{"two values", "/fhir/$export", parametersBody("_type", `"valueString":"Patient","valueCode":"Patient"`), async, 400, []string{"_type"}},
		{"not Parameters", "/fhir/$export", `{"resourceType":"Patient"}`, async, 400, []string{"resourceType"}},
		{"not JSON", "/fhir/$export", `{"resourceType":`, async, 400, []string{"Parameters"}},
		{"no body", "/fhir/$export", "", async, 415, []string{"Content-Type"}},
		{"parameters in the URL", "/fhir/$export?_type=Patient", parametersBody(), async, 400, []string{"Parameters body"}},
		{"too big", "/fhir/$export", big, async, 413, []string{"at most"}},
		{"no Prefer", "/fhir/$export", parametersBody(), nil, 400, []string{"respond-async"}},
		{"group absent", "/fhir/Group/nope/$export", parametersBody(), async, 404, []string{"not found"}},
		{"empty", "/fhir/Patient/$export", parametersBody(), async, 202, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := w.callBody("system", "POST", tt.uri, tt.body, tt.headers...)
			if code != tt.status {
				t.Errorf("%d %s, want %d", code, body, tt.status)
			}
			for _, want := range tt.want {
				if !strings.Contains(string(body), want) {
					t.Errorf("%s: no %q", body, want)
				}
			}
			if code >= 400 && !strings.Contains(string(body), `"resourceType":"OperationOutcome"`) {
				t.Errorf("not an OperationOutcome: %s", body)
			}
			if code == 202 { // done with it (the caller's bound on running exports)
				w.call("system", "DELETE", strings.TrimPrefix(string(h.Peek("Content-Location")), "http://test"))
			}
		})
	}
}

// TestExportPatientParameter: patient (POST only) limits a Patient or
// Group export to those patients; a patient the caller may not read gets
// exactly the answer of one that does not exist.
func TestExportPatientParameter(t *testing.T) {
	w := newExportWorld(t, bulk.Config{})
	mine := w.observation("system", w.patient, "mine")
	w.observation("system", w.other, "other's")
	foreign := w.create("other system", "Patient", `{"resourceType":"Patient","name":[{"family":"Ngata"}]}`)
	async := []string{"Prefer", "respond-async"}
	ref := func(r string) string { return `"valueReference":{"reference":"` + r + `"}` }

	status := w.kickoffPost("system", "/fhir/Patient/$export", "patient", ref(w.patient), "patient", ref("http://test/fhir/"+w.patient))
	got := refsOf(w.download("system", w.wait("system", status)))
	want := []string{mine, w.patient}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("patient=%s: %v, want %v", w.patient, got, want)
	}

	// The refusal of an absent patient, the id aside, is every other's.
	refusal := func(who, uri, patient string) string {
		t.Helper()
		code, _, body := w.callBody(who, "POST", uri, parametersBody("patient", ref(patient)), async...)
		if code != 400 {
			t.Fatalf("patient=%s as %s: %d %s, want 400", patient, who, code, body)
		}
		return strings.ReplaceAll(string(body), patient, "Patient/X")
	}
	absent := refusal("system", "/fhir/Patient/$export", "Patient/nope")
	if !strings.Contains(absent, `"patient"`) {
		t.Errorf("the refusal does not name the parameter: %s", absent)
	}
	group := w.create("system", "Group", `{"resourceType":"Group","type":"person","actual":true,"member":[{"entity":{"reference":"`+w.other+`"}}]}`)
	for _, c := range []struct{ who, uri, patient string }{
		{"system", "/fhir/Patient/$export", foreign},              // another client's, not granted
		{"doctor", "/fhir/Patient/$export", w.patient},            // no consent
		{"patient", "/fhir/Patient/$export", w.other},             // another patient
		{"system", "/fhir/" + group + "/$export", w.patient},      // not a member
		{"doctor", "/fhir/Patient/$export", "Patient/nope"},       // absent, for a practitioner
		{"patient", "/fhir/Patient/$export", "Patient/nope-nope"}, // absent, for a patient
	} {
		if got := refusal(c.who, c.uri, c.patient); got != absent {
			t.Errorf("patient=%s as %s at %s:\n%s\nwant the absent one's:\n%s", c.patient, c.who, c.uri, got, absent)
		}
	}

	// Allowed: their own for a patient, a consented one for a
	// practitioner, a member for a Group.
	w.grant(w.patient, w.tokSubject("doctor"), "*.rs")
	for _, c := range []struct{ who, uri, patient string }{
		{"patient", "/fhir/Patient/$export", w.patient},
		{"doctor", "/fhir/Patient/$export", w.patient},
		{"system", "/fhir/" + group + "/$export", w.other},
	} {
		m := w.wait(c.who, w.kickoffPost(c.who, c.uri, "patient", ref(c.patient)))
		for r, line := range w.download(c.who, m) {
			if r != c.patient && !strings.Contains(line, c.patient) {
				t.Errorf("patient=%s as %s: exported %s", c.patient, c.who, r)
			}
		}
	}

	// The consent mirror behind: a practitioner's kick-off cannot be
	// decided, for a patient that exists as for one that does not.
	w.decider.Health = func() error { return errors.New("behind the chain") }
	_, _, behind := w.callBody("doctor", "POST", "/fhir/Patient/$export", parametersBody("patient", ref("Patient/nope")), async...)
	for _, pat := range []string{w.other, w.patient} {
		code, _, body := w.callBody("doctor", "POST", "/fhir/Patient/$export", parametersBody("patient", ref(pat)), async...)
		if code != 503 || !bytes.Equal(body, behind) {
			t.Errorf("patient=%s with the consent mirror behind: %d %s, want 503 %s", pat, code, body, behind)
		}
	}
	w.decider.Health = nil

	many := make([]string, 0, 2*501)
	for i := range 501 {
		many = append(many, "patient", ref(fmt.Sprintf("Patient/p%d", i)))
	}
	for _, c := range []struct {
		name, method, uri, body string
		status                  int
		want                    string
	}{
		{"in a GET", "GET", "/fhir/Patient/$export?patient=" + w.patient, "", 400, "POST"},
		{"system level", "POST", "/fhir/$export", parametersBody("patient", ref(w.patient)), 400, "not to a system export"},
		{"not a patient", "POST", "/fhir/Patient/$export", parametersBody("patient", ref(mine)), 400, "not a reference Patient/<id>"},
		{"as a string", "POST", "/fhir/Patient/$export", parametersBody("patient", `"valueString":"`+w.patient+`"`), 400, "valueReference"},
		{"too many", "POST", "/fhir/Patient/$export", parametersBody(many...), 400, "more than 500 patients"},
	} {
		code, _, body := w.callBody("system", c.method, c.uri, c.body, async...)
		if code != c.status || !strings.Contains(string(body), c.want) || !strings.Contains(string(body), `patient`) {
			t.Errorf("%s: %d %s, want %d with %q naming patient", c.name, code, body, c.status, c.want)
		}
	}
}

// TestExportTypeFilter: _typeFilter keeps, of the types it names, the
// resources that match one of its searches (several for one type are
// OR-ed); it is checked as a search is, at the kick-off.
func TestExportTypeFilter(t *testing.T) {
	w := newExportWorld(t, bulk.Config{})
	a := w.observation("system", w.patient, "alpha")
	b := w.observation("system", w.other, "beta")
	w.observation("system", w.patient, "gamma")
	cond := w.create("system", "Condition", `{"resourceType":"Condition","subject":{"reference":"`+w.patient+`"},"code":{"text":"flu"}}`)
	enc := url.QueryEscape
	tests := []struct {
		name, uri string
		want      []string
	}{
		{"one filter", "/fhir/$export?_type=Observation&_typeFilter=" + enc("Observation?code:text=alpha"), []string{a}},
		{"OR-ed", "/fhir/$export?_type=Observation&_typeFilter=" + enc("Observation?code:text=alpha") + "&_typeFilter=" + enc("Observation?code:text=beta"), []string{a, b}},
		{"two parameters AND-ed", "/fhir/$export?_type=Observation&_typeFilter=" + enc("Observation?code:text=alpha,beta&subject="+w.other), []string{b}},
		{"an unfiltered type", "/fhir/$export?_type=Observation,Condition&_typeFilter=" + enc("Observation?code:text=beta"), []string{b, cond}},
		{"no _type", "/fhir/Patient/$export?_typeFilter=" + enc("Patient?_id="+strings.TrimPrefix(w.other, "Patient/")) + "&_typeFilter=" + enc("Observation?code:text=none") + "&_typeFilter=" + enc("Condition?code:text=none"), []string{w.other}},
		{"_lastUpdated", "/fhir/$export?_type=Condition&_typeFilter=" + enc("Condition?_lastUpdated=gt2000-01-01"), []string{cond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := refsOf(w.download("system", w.wait("system", w.kickoff("system", tt.uri))))
			slices.Sort(tt.want)
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: %v, want %v", tt.uri, got, tt.want)
			}
		})
	}
	t.Run("POST", func(t *testing.T) {
		m := w.wait("system", w.kickoffPost("system", "/fhir/$export", "_type", `"valueString":"Observation"`,
			"_typeFilter", `"valueString":"Observation?code:text=gamma,alpha"`, "_typeFilter", `"valueString":"Observation?code:text=beta"`))
		if got := w.download("system", m); len(got) != 3 {
			t.Errorf("POST _typeFilter: %v", refsOf(got))
		}
	})

	async := []string{"Prefer", "respond-async"}
	refusals := []struct {
		name, uri string
		headers   []string
		status    int
		want      string
	}{
		{"unknown parameter", "/fhir/$export?_typeFilter=" + enc("Observation?nonsense=1"), async, 400, "nonsense"},
		{"not in _type", "/fhir/$export?_type=Patient&_typeFilter=" + enc("Observation?status=final"), async, 400, "not one of the _type"},
		{"unknown type", "/fhir/$export?_typeFilter=" + enc("Nonsense?status=final"), async, 400, "unknown resource type"},
		{"no query", "/fhir/$export?_typeFilter=Observation", async, 400, "Type?search-parameters"},
		{"bad value", "/fhir/$export?_typeFilter=" + enc("Observation?date=yesterday"), async, 400, "date"},
		{"a result parameter", "/fhir/$export?_typeFilter=" + enc("Observation?_count=5"), async, 400, "_count"},
		{"chained", "/fhir/$export?_typeFilter=" + enc("Observation?subject:Patient.name=Rivera"), async, 400, "chained"},
		{"_has", "/fhir/$export?_typeFilter=" + enc("Patient?_has:Observation:subject:code=x"), async, 400, "_has"},
		{"audit trail", "/fhir/$export?_typeFilter=" + enc("AuditEvent?subtype=read"), async, 400, "not exported"},
		{"beyond scope", "/fhir/$export?_type=Observation&_typeFilter=" + enc("Patient?name=x"), async, 400, "not one of the _type"},
		{"too many", "/fhir/$export" + strings.Repeat("&_typeFilter="+enc("Patient?name=x"), 33), async, 400, "more than 32"},
		{"lenient: unknown search parameter ignored", "/fhir/$export?_type=Patient&_typeFilter=" + enc("Patient?nonsense=1"), []string{"Prefer", "respond-async, handling=lenient"}, 202, ""},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := w.call("system", "GET", strings.Replace(tt.uri, "$export&", "$export?", 1), tt.headers...)
			if code != tt.status || !strings.Contains(string(body), tt.want) {
				t.Errorf("%d %s, want %d with %q", code, body, tt.status, tt.want)
			}
			if code == 400 && !strings.Contains(string(body), `"expression":["_typeFilter"]`) {
				t.Errorf("the refusal does not name _typeFilter: %s", body)
			}
			if code == 202 {
				w.call("system", "DELETE", strings.TrimPrefix(string(h.Peek("Content-Location")), "http://test"))
			}
		})
	}
	if code, _, body := w.call("observer", "GET", "/fhir/$export?_typeFilter="+enc("Patient?name=x"), async...); code != 403 {
		t.Errorf("a _typeFilter beyond the caller's scopes: %d %s", code, body)
	}
}

// TestExportDeleted: an export with _since lists, in its deleted files
// (one transaction Bundle with one DELETE entry per line), the resources
// deleted after _since that the caller could have had; hashed like the
// output files, and each patient's trail records the export.
func TestExportDeleted(t *testing.T) {
	w := newExportWorld(t, bulk.Config{FileResources: 2})
	del := func(who, ref string) {
		t.Helper()
		if code, _, body := w.call(who, "DELETE", "/fhir/"+ref); code != 200 && code != 204 {
			t.Fatalf("delete %s as %s: %d %s", ref, who, code, body)
		}
	}
	before := w.observation("system", w.patient, "deleted before")
	del("system", before)
	var gone []string
	for i := range 3 {
		gone = append(gone, w.observation("system", w.patient, fmt.Sprint("gone", i)))
	}
	othersGone := w.observation("system", w.other, "other's, gone")
	foreign := w.observation("other system", w.patient, "another client's")
	kept := w.observation("system", w.patient, "kept")
	time.Sleep(5 * time.Millisecond)
	since := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(5 * time.Millisecond)
	for _, r := range append(slices.Clone(gone), othersGone) {
		del("system", r)
	}
	del("other system", foreign)
	late := w.observation("system", w.patient, "created and deleted after")
	del("system", late)

	deleted := func(who string, m exportManifest) []string {
		t.Helper()
		var out []string
		for _, f := range m.Deleted {
			code, _, body := w.call(who, "GET", strings.TrimPrefix(f.URL, "http://test"))
			if code != 200 || f.Type != "Bundle" {
				t.Fatalf("deleted file %s (%s): %d %s", f.URL, f.Type, code, body)
			}
			if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != f.Extension.SHA256 {
				t.Errorf("deleted file %s: sha256 differs from the manifest's", f.URL)
			}
			lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
			if len(lines) != f.Count {
				t.Errorf("deleted file %s: %d lines, count %d", f.URL, len(lines), f.Count)
			}
			for _, l := range lines {
				var b struct {
					ResourceType, Type string
					Entry              []struct{ Request struct{ Method, URL string } }
				}
				if err := json.Unmarshal([]byte(l), &b); err != nil || b.ResourceType != "Bundle" || b.Type != "transaction" ||
					len(b.Entry) != 1 || b.Entry[0].Request.Method != "DELETE" {
					t.Fatalf("deleted line %q (%v)", l, err)
				}
				out = append(out, b.Entry[0].Request.URL)
			}
		}
		slices.Sort(out)
		return out
	}

	m := w.wait("system", w.kickoff("system", "/fhir/$export?_type=Observation&_since="+since))
	want := append(slices.Clone(gone), othersGone, late)
	slices.Sort(want)
	if got := deleted("system", m); !slices.Equal(got, want) {
		t.Errorf("deleted: %v, want %v (not %s, deleted before _since, nor %s, not the caller's)", got, want, before, foreign)
	}
	if len(m.Deleted) != 3 { // at most 2 lines a file
		t.Errorf("deleted files: %s", m.raw)
	}
	if got := refsOf(w.download("system", m)); len(got) != 0 {
		t.Errorf("output after _since: %v (%s was written before)", got, kept)
	}
	sum := sha256.Sum256(m.raw)
	evs := auditEvents(t, w.s, "patient="+w.other)
	if !slices.ContainsFunc(evs, func(e map[string]any) bool {
		d, _ := e["outcomeDesc"].(string)
		return strings.Contains(d, hex.EncodeToString(sum[:]))
	}) {
		t.Errorf("the export of %s's deletion is not in their trail", w.other)
	}

	// A patient's own: their deletions, not the other patient's.
	m = w.wait("patient", w.kickoff("patient", "/fhir/Patient/$export?_type=Observation&_since="+url.QueryEscape(since)))
	want = append(slices.Clone(gone), late, foreign)
	slices.Sort(want)
	if got := deleted("patient", m); !slices.Equal(got, want) {
		t.Errorf("the patient's deleted: %v, want %v", got, want)
	}

	// Without _since: no deleted list, and nothing deleted exported.
	m = w.wait("system", w.kickoff("system", "/fhir/$export?_type=Observation"))
	if m.Deleted != nil || strings.Contains(string(m.raw), `"deleted"`) {
		t.Errorf("deleted without _since: %s", m.raw)
	}
	if got := refsOf(w.download("system", m)); !slices.Equal(got, []string{kept}) {
		t.Errorf("output without _since: %v, want %v", got, []string{kept})
	}
}

// TestExportCapabilityStatement: the CapabilityStatement instantiates the
// Bulk Data IG's and lists its three export operations only when the
// exporter is configured.
func TestExportCapabilityStatement(t *testing.T) {
	type op struct{ Name, Definition string }
	var cs struct {
		Instantiates []string
		Rest         []struct {
			Operation []op
			Resource  []struct {
				Type      string
				Operation []op
			}
		}
	}
	read := func(s *Server) {
		t.Helper()
		res := serveWith(s, "GET", "/fhir/metadata", "", "", nil)
		cs.Instantiates, cs.Rest = nil, nil
		if err := json.Unmarshal(res.Body(), &cs); err != nil || res.StatusCode() != 200 || len(cs.Rest) != 1 {
			t.Fatalf("metadata: %d %v %.300s", res.StatusCode(), err, res.Body())
		}
	}
	opsOf := func(typ string) []op {
		for _, r := range cs.Rest[0].Resource {
			if r.Type == typ {
				return r.Operation
			}
		}
		return nil
	}
	const ig = "http://hl7.org/fhir/uv/bulkdata"
	everything := op{"everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything"}

	read(newExportWorld(t, bulk.Config{}).s)
	if !slices.Equal(cs.Instantiates, []string{ig + "/CapabilityStatement/bulk-data"}) {
		t.Errorf("instantiates %v", cs.Instantiates)
	}
	if !slices.Equal(cs.Rest[0].Operation, []op{{"export", ig + "/OperationDefinition/export"}}) {
		t.Errorf("rest.operation %v", cs.Rest[0].Operation)
	}
	if got := opsOf("Patient"); !slices.Equal(got, []op{everything, {"export", ig + "/OperationDefinition/patient-export"}}) {
		t.Errorf("Patient operations %v", got)
	}
	if got := opsOf("Group"); !slices.Equal(got, []op{{"export", ig + "/OperationDefinition/group-export"}}) {
		t.Errorf("Group operations %v", got)
	}
	if got := opsOf("Observation"); got != nil {
		t.Errorf("Observation operations %v", got)
	}

	// Without an exporter: none of it (and the shared table is untouched).
	read(newAccessWorld(t).s)
	if cs.Instantiates != nil || cs.Rest[0].Operation != nil || opsOf("Group") != nil ||
		!slices.Equal(opsOf("Patient"), []op{everything}) {
		t.Errorf("without an exporter: instantiates %v, operation %v, Patient %v, Group %v",
			cs.Instantiates, cs.Rest[0].Operation, opsOf("Patient"), opsOf("Group"))
	}
}

// TestExportRoles: what each kind of principal may kick off, and what it
// gets: exactly what a search by it would return; and another
// principal's job (status, files, cancel) answers everyone but its owner
// and an administrator exactly as a job that does not exist.
func TestExportRoles(t *testing.T) {
	w := newExportWorld(t, bulk.Config{})
	obsP := w.observation("system", w.patient, "patient's")
	obsO := w.observation("system", w.other, "other's")
	group := w.create("system", "Group", `{"resourceType":"Group","type":"person","actual":true,"member":[{"entity":{"reference":"`+w.patient+`"}},{"entity":{"reference":"`+w.other+`"}}]}`)
	w.grant(w.patient, w.tokSubject("doctor"), "*.rs")
	sorted := func(refs ...string) []string { slices.Sort(refs); return refs }
	everyone := sorted(obsP, obsO, w.patient, w.other)
	patients := sorted(obsP, w.patient)
	others := sorted(obsO, w.other)
	const types = "?_type=Observation,Patient"
	levels := []string{"/fhir/$export" + types, "/fhir/Patient/$export" + types, "/fhir/" + group + "/$export" + types}
	tests := []struct {
		who    string
		status [3]int      // per level: system, Patient, Group
		want   [3][]string // the export when 202
	}{
		{"", [3]int{401, 401, 401}, [3][]string{}},
		{"system", [3]int{202, 202, 202}, [3][]string{everyone, everyone, everyone}},
		{"other system", [3]int{202, 202, 404}, [3][]string{nil, nil}},
		// A member may read the Group (it is in their compartment): their
		// own records only.
		{"patient", [3]int{202, 202, 202}, [3][]string{patients, patients, patients}},
		{"other patient", [3]int{202, 202, 202}, [3][]string{others, others, others}},
		{"doctor", [3]int{202, 202, 404}, [3][]string{patients, patients}},
		{"stranger", [3]int{202, 202, 404}, [3][]string{nil, nil}},
		{"admin", [3]int{403, 403, 403}, [3][]string{}},
		{"regulator", [3]int{403, 403, 403}, [3][]string{}},
	}
	async := []string{"Prefer", "respond-async"}
	for _, tt := range tests {
		for i, uri := range levels {
			name := tt.who
			if name == "" {
				name = "anonymous"
			}
			for _, method := range []string{"GET", "POST"} {
				t.Run(name+" "+method+" "+strings.TrimSuffix(uri, types), func(t *testing.T) {
					u, params := uri, ""
					if method == "POST" {
						u, params = strings.TrimSuffix(uri, types), parametersBody("_type", `"valueString":"Observation,Patient"`)
					}
					code, h, body := w.callBody(tt.who, method, u, params, async...)
					if code != tt.status[i] {
						t.Fatalf("%d %s, want %d", code, body, tt.status[i])
					}
					if code != 202 {
						if !strings.Contains(string(body), `"resourceType":"OperationOutcome"`) {
							t.Errorf("not an OperationOutcome: %s", body)
						}
						return
					}
					status := strings.TrimPrefix(string(h.Peek("Content-Location")), "http://test")
					if got := refsOf(w.download(tt.who, w.wait(tt.who, status))); !slices.Equal(got, tt.want[i]) {
						t.Errorf("exported %v, want %v", got, tt.want[i])
					}
				})
			}
		}
	}
	// The Group another principal may not read is the absent one.
	_, _, absentGroup := w.call("stranger", "GET", "/fhir/Group/nope/$export"+types, async...)
	if _, _, b := w.call("stranger", "GET", levels[2], async...); !bytes.Equal(b, absentGroup) {
		t.Errorf("a Group the practitioner may not read: %s, want %s", b, absentGroup)
	}
	// Without _type, a principal whose scopes reach no exported type gets
	// an empty export (the audit trail is searched, not exported).
	m := w.wait("regulator", w.kickoff("regulator", "/fhir/$export"))
	if len(m.Output) != 0 {
		t.Errorf("regulator's export: %s", m.raw)
	}

	// Someone else's job: the answers for one that does not exist.
	status := w.kickoff("system", "/fhir/$export?_type=Observation")
	m = w.wait("system", status)
	file := strings.TrimPrefix(m.Output[0].URL, "http://test")
	job := strings.TrimPrefix(status, "/fhir/$export-poll-status/")
	const nojob = "0123456789abcdef0123456789abcdef"
	for _, who := range []string{"other system", "patient", "other patient", "doctor", "stranger", "regulator"} {
		for _, c := range []struct{ method, uri, absent string }{
			{"GET", status, "/fhir/$export-poll-status/" + nojob},
			{"GET", file, strings.Replace(file, job, nojob, 1)},
			{"DELETE", status, "/fhir/$export-poll-status/" + nojob},
		} {
			code, _, body := w.call(who, c.method, c.uri)
			acode, _, abody := w.call(who, c.method, c.absent)
			if code != 404 || acode != 404 || !bytes.Equal(body, abody) {
				t.Errorf("%s %s as %s: %d %s; absent: %d %s", c.method, c.uri, who, code, body, acode, abody)
			}
		}
	}
	for _, c := range []struct{ method, uri string }{{"GET", status}, {"GET", file}, {"DELETE", status}} {
		if code, _, _ := w.call("", c.method, c.uri); code != 401 {
			t.Errorf("%s %s without a token: %d", c.method, c.uri, code)
		}
	}
	// An administrator sees every job (and may cancel it); the owner too.
	if code, _, _ := w.call("admin", "GET", status); code != 200 {
		t.Errorf("status as admin: %d", code)
	}
	if code, _, _ := w.call("system", "GET", file); code != 200 {
		t.Errorf("download as the owner: %d", code)
	}
	if code, _, body := w.call("admin", "DELETE", status); code != 202 {
		t.Errorf("cancel as admin: %d %s", code, body)
	}
	if code, _, _ := w.call("system", "GET", status); code != 404 {
		t.Errorf("status after the admin's cancel: %d", code)
	}
}

// TestExportDeletedResumes: a gateway stopped in the middle of an export
// with _since, after some deletions were kept, resumes it: every live
// resource in the output and every deletion in the deleted files, each
// exactly once.
func TestExportDeletedResumes(t *testing.T) {
	w := newExportWorld(t, bulk.Config{FileResources: 2, BlockBytes: 100})
	since := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(2 * time.Millisecond)
	var live, gone []string
	for i := range 12 {
		ref := w.observation("system", w.patient, fmt.Sprint("obs", i))
		if i%2 == 0 {
			live = append(live, ref)
			continue
		}
		if code, _, body := w.call("system", "DELETE", "/fhir/"+ref); code >= 300 {
			t.Fatalf("delete %s: %d %s", ref, code, body)
		}
		gone = append(gone, ref)
	}
	stopped := w.stopAtDecision(7)
	status := w.kickoff("system", "/fhir/$export?_type=Observation&_since="+since)
	<-stopped
	w.stop()
	w.decide = nil
	w.open()
	m := w.wait("system", status)
	slices.Sort(live)
	if got := refsOf(w.download("system", m)); !slices.Equal(got, live) {
		t.Errorf("output after restart: %v, want %v", got, live)
	}
	var deleted []string
	for _, f := range m.Deleted {
		_, _, body := w.call("system", "GET", strings.TrimPrefix(f.URL, "http://test"))
		for _, l := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
			var b struct {
				Entry []struct{ Request struct{ URL string } }
			}
			if err := json.Unmarshal([]byte(l), &b); err != nil || len(b.Entry) != 1 {
				t.Fatalf("deleted line %q: %v", l, err)
			}
			deleted = append(deleted, b.Entry[0].Request.URL)
		}
	}
	slices.Sort(deleted)
	slices.Sort(gone)
	if !slices.Equal(deleted, gone) {
		t.Errorf("deleted after restart: %v, want %v", deleted, gone)
	}
}
