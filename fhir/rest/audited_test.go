package rest

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// newAuditedServer is newTestServer with the audit trail wired as the
// gateway wires it: the recorder running, AuditEvents served by the
// trail.
func newAuditedServer(t testing.TB, bodyLimit int) (*Server, string) {
	t.Helper()
	s, key := auditedServer(t, Config{BodyLimit: bodyLimit})
	tok, err := key.Mint(auth.Grant{Scope: "system/*.cruds", TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s, tok
}

// auditedServer builds a server from cfg on a real Pebble store with the
// audit trail and a running recorder, and returns its token key.
func auditedServer(t testing.TB, cfg Config) (*Server, *auth.Key) {
	t.Helper()
	a := newAuditedParts(t)
	s := New(a.config(cfg))
	s.SetReady(true)
	return s, a.key
}

// auditedParts are what an audited server is built on (two servers on
// the same parts are two replicas of one gateway).
type auditedParts struct {
	db   *pebble.DB
	st   *store.Store
	rec  *audit.Recorder
	repo *audit.Repository
	key  *auth.Key
}

func newAuditedParts(t testing.TB) *auditedParts { return newAuditedPartsOver(t, nil) }

// newAuditedPartsOver is newAuditedParts with the trail and the store
// over wrap(the Pebble engine) when wrap is not nil.
func newAuditedPartsOver(t testing.TB, wrap func(store.Engine) store.Engine) *auditedParts {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := pebble.New(ctx, pebble.Config{Dir: dir + "/store", CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var e store.Engine = db
	if wrap != nil {
		e = wrap(db)
	}
	trail, err := audit.OpenTrail(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := audit.OpenRepository(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(e, store.Options{Shared: search.Shared, Virtual: map[string]store.Virtual{"AuditEvent": audit.Journals(trail, repo)}})
	t.Cleanup(func() { st.Close() })
	rec := audit.NewRecorder(trail, audit.Options{})
	go rec.Run(ctx)
	t.Cleanup(func() { rec.Close(ctx) }) // before the store closes
	key, err := auth.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &auditedParts{db: db, st: st, rec: rec, repo: repo, key: key}
}

// config completes cfg with the parts.
func (a *auditedParts) config(cfg Config) Config {
	cfg.Store, cfg.Verifier, cfg.BaseURL, cfg.Indexer, cfg.Audit, cfg.Recorded = a.st, auth.NewVerifier(a.key), "http://test/fhir", search.Extract, a.rec, a.repo
	return cfg
}

// auditEvents returns the AuditEvents matching query, as the trail serves
// them.
func auditEvents(t *testing.T, s *Server, query string) []map[string]any {
	t.Helper()
	ctx := context.Background()
	vals, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	q, err := search.ParseQuery("AuditEvent", vals, search.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sq := q.Store
	sq.Count = 1000
	page, err := s.store.Search(ctx, &sq)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, id := range page.IDs {
		v, err := s.store.Read(ctx, "AuditEvent", id)
		if err != nil {
			t.Fatal(err)
		}
		var ae map[string]any
		if err := json.Unmarshal(v.Body, &ae); err != nil {
			t.Fatal(err)
		}
		out = append(out, ae)
	}
	return out
}

// TestNotAcceptableIsAudited (finding 14): a signed-in principal's 406 is
// an audited refusal; a request without a token is refused 401 and names
// nobody.
func TestNotAcceptableIsAudited(t *testing.T) {
	s, tok := newAuditedServer(t, 0)
	res := serveWith(s, "GET", "/fhir/Patient/p406", "", tok, nil, "Accept", "application/fhir+xml")
	if res.StatusCode() != 406 {
		t.Fatalf("XML asked: %d %s", res.StatusCode(), res.Body())
	}
	res = serveWith(s, "GET", "/fhir/Patient/p406?_format=xml", "", tok, nil)
	if res.StatusCode() != 406 {
		t.Fatalf("_format=xml: %d %s", res.StatusCode(), res.Body())
	}
	events := auditEvents(t, s, "outcome=4")
	if len(events) != 2 {
		t.Fatalf("%d events for two 406s", len(events))
	}
	for _, ae := range events {
		if d, _ := ae["outcomeDesc"].(string); !strings.Contains(d, "GET /fhir/Patient/p406") {
			t.Fatalf("406 event says %q", d)
		}
	}
	res = serveWith(s, "GET", "/fhir/Patient/p406", "", "", nil, "Accept", "application/fhir+xml")
	if res.StatusCode() != 401 {
		t.Fatalf("no token: %d", res.StatusCode())
	}
	if n := len(auditEvents(t, s, "")); n != 2 {
		t.Fatalf("%d events after an unauthenticated request, want still 2", n)
	}
	// The capability statement needs no token and is still negotiated.
	if res := serveWith(s, "GET", "/fhir/metadata", "", "", nil, "Accept", "application/fhir+xml"); res.StatusCode() != 406 {
		t.Fatalf("metadata as XML: %d", res.StatusCode())
	}
}

// TestTooLargeIsAudited (finding 14): fasthttp refuses a body over the
// limit before any route runs; with a valid token the 413 is audited.
func TestTooLargeIsAudited(t *testing.T) {
	s, tok := newAuditedServer(t, 1024)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	post := func(tok string) int {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		auth := ""
		if tok != "" {
			auth = "Authorization: Bearer " + tok + "\r\n"
		}
		// The header alone: the body is refused from its Content-Length.
		fmt.Fprintf(c, "POST /fhir/Patient HTTP/1.1\r\nHost: test\r\nContent-Type: application/fhir+json\r\n%sContent-Length: 4096\r\n\r\n", auth)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if status := post(tok); status != 413 {
		t.Fatalf("4 KB body over a 1 KB limit: %d", status)
	}
	events := auditEvents(t, s, "")
	if len(events) != 1 {
		t.Fatalf("%d events for a signed-in 413", len(events))
	}
	if d, _ := events[0]["outcomeDesc"].(string); !strings.Contains(d, "POST /fhir/Patient") || events[0]["outcome"] != "4" {
		t.Fatalf("413 event: %v", events[0])
	}
	if status := post(""); status != 413 {
		t.Fatalf("without a token: %d", status)
	}
	if status := post("not-a-token"); status != 413 {
		t.Fatalf("with a bad token: %d", status)
	}
	if n := len(auditEvents(t, s, "")); n != 1 {
		t.Fatalf("%d events: a 413 without a valid token names nobody", n)
	}
}

// TestSearchAuditsEveryPatient (finding 9): a search returning 250
// patients' reports is audited so that each of the 250 finds an event
// about it.
func TestSearchAuditsEveryPatient(t *testing.T) {
	s, tok := newAuditedServer(t, 0)
	const patients = 250
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range patients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			id := fmt.Sprintf("many%d", i)
			if res := serve(s, "PUT", "/fhir/Patient/"+id, mimeFHIRJSON, tok, []byte(`{"resourceType":"Patient","id":"`+id+`"}`)); res.StatusCode() != 201 {
				t.Errorf("PUT Patient/%s: %d %s", id, res.StatusCode(), res.Body())
			}
			body := `{"resourceType":"DiagnosticReport","id":"r` + id + `","status":"final","code":{"text":"mass"},"subject":{"reference":"Patient/` + id + `"}}`
			if res := serve(s, "PUT", "/fhir/DiagnosticReport/r"+id, mimeFHIRJSON, tok, []byte(body)); res.StatusCode() != 201 {
				t.Errorf("PUT DiagnosticReport/r%s: %d %s", id, res.StatusCode(), res.Body())
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	res := serve(s, "GET", "/fhir/DiagnosticReport?code:text=mass&_count=300", "", tok, nil)
	if res.StatusCode() != 200 || strings.Count(string(res.Body()), `"resourceType":"DiagnosticReport"`) != patients {
		t.Fatalf("search: %d, %d reports", res.StatusCode(), strings.Count(string(res.Body()), `"resourceType":"DiagnosticReport"`))
	}
	// One event per patient (IHE BALP), each naming that patient and their
	// report only: no patient sees another's.
	events := auditEvents(t, s, "subtype=http://hl7.org/fhir/restful-interaction|search-type")
	if len(events) != patients {
		t.Fatalf("%d search events for %d patients, want one each", len(events), patients)
	}
	for i := range patients {
		mine := auditEvents(t, s, fmt.Sprintf("subtype=search-type&patient=Patient/many%d", i))
		if len(mine) != 1 {
			t.Fatalf("Patient/many%d: %d search events name it", i, len(mine))
		}
		b, _ := json.Marshal(mine[0])
		if strings.Count(string(b), `"Patient/`) != 1 || !strings.Contains(string(b), fmt.Sprintf(`DiagnosticReport/rmany%d/`, i)) {
			t.Fatalf("Patient/many%d's event names others or misses their report: %s", i, b)
		}
	}
}

// TestAuditedQueryIsBounded (finding 14): a huge _search body is stored
// cut to audit.MaxQuery bytes with a marker, however the search ends.
func TestAuditedQueryIsBounded(t *testing.T) {
	s, tok := newAuditedServer(t, 0)
	body := "name=" + strings.Repeat("a", 5<<20)
	res := serve(s, "POST", "/fhir/Patient/_search", "application/x-www-form-urlencoded", tok, []byte(body))
	if res.StatusCode() == 503 {
		t.Fatalf("search: %d %s", res.StatusCode(), res.Body())
	}
	events := auditEvents(t, s, "")
	if len(events) != 1 {
		t.Fatalf("%d events", len(events))
	}
	b, _ := json.Marshal(events[0])
	if len(b) > 16<<10 {
		t.Fatalf("the event is %d bytes", len(b))
	}
	var query string
	for _, en := range events[0]["entity"].([]any) {
		if q, ok := en.(map[string]any)["query"].(string); ok {
			raw, _ := base64.StdEncoding.DecodeString(q)
			query = string(raw)
		}
	}
	if len(query) > audit.MaxQuery || !strings.Contains(query, "…[truncated: ") || !strings.HasPrefix(query, "Patient?name=aaaa") {
		t.Fatalf("stored query (%d bytes): %.80q…", len(query), query)
	}
}
