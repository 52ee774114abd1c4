package rest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// newTestServer returns an in-process server on a real Pebble store and a
// token with every system scope.
func newTestServer(t testing.TB) (*Server, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := pebble.New(context.Background(), pebble.Config{Dir: dir + "/store", CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db, store.Options{Shared: search.Shared})
	t.Cleanup(func() { st.Close() })
	key, err := auth.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The client also links wallets (tests of the sign-in resolver);
	// access_test.go tests who may, with a token per kind of principal.
	tok, err := key.Mint(auth.Grant{Scope: "system/*.cruds " + policy.ScopeIdentityLinking, TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Store: st, Verifier: auth.NewVerifier(key), BaseURL: "http://test/fhir", Indexer: search.Extract})
	s.SetReady(true)
	return s, tok
}

// serve runs one request through the whole handler stack.
func serve(s *Server, method, uri, ctype, tok string, body []byte) *fasthttp.Response {
	return serveWith(s, method, uri, ctype, tok, body)
}

// serveWith is serve with extra headers (name, value pairs).
func serveWith(s *Server, method, uri, ctype, tok string, body []byte, headers ...string) *fasthttp.Response {
	var req fasthttp.Request
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.Header.SetHost("test")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if ctype != "" {
		req.Header.SetContentType(ctype)
	}
	req.SetBody(body)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	s.app.Handler()(&ctx)
	var res fasthttp.Response
	ctx.Response.CopyTo(&res)
	return &res
}

func TestAcceptJSON(t *testing.T) {
	tests := []struct {
		accept, want string
		ok           bool
	}{
		{"application/fhir+json", mimeFHIRJSON, true},
		{"application/json", mimeJSON, true},
		{"*/*", mimeFHIRJSON, true},
		{"application/fhir+xml", "", false},
		{"application/fhir+xml;q=1, application/json;q=0.5", mimeJSON, true},
		{"application/json;q=0.2, application/fhir+json", mimeFHIRJSON, true},
		{"text/html, application/xhtml+xml", "", false},
		{"application/fhir+json;q=0", "", false},
		{"garbage;;;", "", false},
	}
	for _, tt := range tests {
		got, ok := acceptJSON(tt.accept)
		if got != tt.want || ok != tt.ok {
			t.Errorf("acceptJSON(%q) = %q %v, want %q %v", tt.accept, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseETag(t *testing.T) {
	for in, want := range map[string]uint64{`W/"3"`: 3, `"12"`: 12, `7`: 7, ` W/"1" `: 1, `W/"x"`: 0, `W/"0"`: 0, ``: 0} {
		got, ok := parseETag(in)
		if got != want || ok != (want != 0) {
			t.Errorf("parseETag(%q) = %d %v, want %d", in, got, ok, want)
		}
	}
}

func TestNormalizeCriteria(t *testing.T) {
	a := normalizeCriteria("identifier=urn:x|1&name=b&name=a")
	b := normalizeCriteria("name=a&identifier=urn%3Ax%7C1&name=b")
	if a != b {
		t.Fatalf("%q != %q", a, b)
	}
}

func TestPageToken(t *testing.T) {
	bind := []byte("12345678")
	tok := encodePageToken([]byte("cursor"), bind)
	if c, err := decodePageToken(tok, bind); err != nil || string(c) != "cursor" {
		t.Fatalf("round trip: %q %v", c, err)
	}
	if _, err := decodePageToken(tok, []byte("87654321")); err == nil {
		t.Fatal("a token of another search was accepted")
	}
	if _, err := decodePageToken("!!!", bind); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestObserveRecordsRoutePatterns(t *testing.T) {
	s, tok := newTestServer(t)
	serve(s, "GET", "/fhir/Patient/abc", "", tok, nil)
	serve(s, "GET", "/nowhere", "", "", nil)
	res := serve(s, "GET", "/metrics", "", "", nil)
	body := string(res.Body())
	for _, want := range []string{`route="/fhir/:type/:id"`, `route="unmatched"`, "fhirgate_http_request_duration_seconds_bucket"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "abc") {
		t.Error("metrics carry a resource id")
	}
}

// FuzzRequest throws arbitrary requests at the whole stack: the server
// must never fail (5xx), and every error is an OperationOutcome.
func FuzzRequest(f *testing.F) {
	s, tok := newTestServer(f)
	seeds := []struct{ method, uri, ctype, body string }{
		{"POST", "/fhir/Patient", "application/fhir+json", `{"resourceType":"Patient","name":[{"family":"x"}]}`},
		{"PUT", "/fhir/Patient/a", "application/fhir+json", `{"resourceType":"Patient","id":"a"}`},
		{"PATCH", "/fhir/Patient/a", "application/json-patch+json", `[{"op":"add","path":"/active","value":true}]`},
		{"GET", "/fhir/Patient?name=x&_sort=-birthdate&_count=2&_include=Patient:link", "", ""},
		{"POST", "/fhir", "application/fhir+json", `{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}`},
		{"DELETE", "/fhir/Patient?identifier=x|y", "", ""},
		{"GET", "/fhir/Patient/a/_history?_count=1&_page=AQ", "", ""},
		{"GET", "/fhir/Patient/a/$everything?_since=2020-01-01T00:00:00Z", "", ""},
		{"POST", "/fhir/Patient/_search", "application/x-www-form-urlencoded", "name=x&gender:not=male"},
	}
	for _, sd := range seeds {
		f.Add(sd.method, sd.uri, sd.ctype, []byte(sd.body))
	}
	f.Fuzz(func(t *testing.T, method, uri, ctype string, body []byte) {
		switch method {
		case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD":
		default:
			return
		}
		if !strings.HasPrefix(uri, "/fhir") {
			uri = "/fhir/" + uri
		}
		res := serve(s, method, uri, ctype, tok, body)
		code := res.StatusCode()
		if code >= 500 {
			t.Fatalf("%s %s (%s): %d %s", method, uri, ctype, code, res.Body())
		}
		if code >= 400 && method != "HEAD" {
			var oo struct {
				ResourceType string           `json:"resourceType"`
				Issue        []map[string]any `json:"issue"`
			}
			if err := json.Unmarshal(res.Body(), &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
				t.Fatalf("%s %s: %d without an OperationOutcome: %s", method, uri, code, res.Body())
			}
		}
	})
}

// TestEveryVersionHasALeaf: each write appends one leaf in its own commit,
// committing to the exact bytes a plain GET of the version returns.
func TestEveryVersionHasALeaf(t *testing.T) {
	s, tok := newTestServer(t)
	ctx := context.Background()
	res := serve(s, "PUT", "/fhir/Patient/leafy", mimeFHIRJSON, tok, []byte(`{"resourceType":"Patient","id":"leafy"}`))
	if res.StatusCode() != 201 {
		t.Fatalf("create: %d %s", res.StatusCode(), res.Body())
	}
	serve(s, "PUT", "/fhir/Patient/leafy", mimeFHIRJSON, tok, []byte(`{"resourceType":"Patient","id":"leafy","active":true}`))
	serve(s, "DELETE", "/fhir/Patient/leafy", "", tok, nil)
	serve(s, "POST", "/fhir", mimeFHIRJSON, tok, []byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}`))
	n, err := s.store.LogSize(ctx)
	if err != nil || n != 4 {
		t.Fatalf("log size %d (%v), want 4", n, err)
	}
	for vid := uint64(1); vid <= 3; vid++ {
		i, err := s.store.LeafIndex(ctx, "Patient", "leafy", vid)
		if err != nil {
			t.Fatal(err)
		}
		var data string
		s.store.Leaves(ctx, i, func(_ uint64, d []byte) bool { data = string(d); return false })
		body := serve(s, "GET", "/fhir/Patient/leafy/_history/"+itoa(vid), "", tok, nil)
		served := body.Body()
		if body.StatusCode() == 410 {
			served = nil // a deleted version serves no resource
		}
		sum := sha256.Sum256(served)
		lines := strings.Split(data, "\n")
		if len(lines) != 4 || lines[0] != "fhirgate-leaf-v1" || lines[1] != "Patient/leafy/_history/"+itoa(vid) || lines[3] != hex.EncodeToString(sum[:]) {
			t.Fatalf("leaf of version %d = %q", vid, data)
		}
	}
}

// TestAuditFailsClosed: when the audit trail cannot take the event, the
// request fails with 503 and serves nothing.
func TestAuditFailsClosed(t *testing.T) {
	s, tok := newTestServer(t)
	trail, err := audit.OpenTrail(context.Background(), s.store.Engine())
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.NewRecorder(trail, audit.Options{})
	go rec.Run(context.Background())
	s.cfg.Audit = rec
	res := serve(s, "PUT", "/fhir/Patient/a1", mimeFHIRJSON, tok, []byte(`{"resourceType":"Patient","id":"a1"}`))
	if res.StatusCode() != 201 {
		t.Fatalf("first request: %d %s", res.StatusCode(), res.Body())
	}
	rec.Close(context.Background()) // from now on the trail refuses events
	res = serve(s, "GET", "/fhir/Patient/a1", "", tok, nil)
	if res.StatusCode() != 503 || strings.Contains(string(res.Body()), `"resourceType":"Patient"`) || len(res.Header.Peek("ETag")) > 0 {
		t.Fatalf("unaudited read served: %d %s", res.StatusCode(), res.Body())
	}
}

// TestConcurrentConditionalCreates: many concurrent creates with the same
// If-None-Exist make exactly one resource (regression: reading the claim
// owner after the search let a create landing in between be duplicated).
func TestConcurrentConditionalCreates(t *testing.T) {
	s, tok := newTestServer(t)
	for round := 0; round < 20; round++ {
		ident := "race-" + itoa(uint64(round))
		body := []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"` + ident + `"}]}`)
		var wg sync.WaitGroup
		created := atomic.Int32{}
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := serveWith(s, "POST", "/fhir/Patient", mimeFHIRJSON, tok, body, "If-None-Exist", "identifier=urn:x|"+ident)
				switch res.StatusCode() {
				case 201:
					created.Add(1)
				case 200:
				default:
					t.Errorf("status %d: %s", res.StatusCode(), res.Body())
				}
			}()
		}
		wg.Wait()
		if created.Load() != 1 {
			t.Fatalf("round %d: %d creates", round, created.Load())
		}
	}
}

// TestMetricsAfterWrites: /metrics keeps answering after every method,
// over a real kept-alive connection (label values once aliased fasthttp's
// reused request buffer, so a stored label changed under Prometheus).
func TestMetricsAfterWrites(t *testing.T) {
	s, tok := newTestServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	base := "http://" + ln.Addr().String()
	do := func(method, path, ctype string, body []byte) int {
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	do("PUT", "/fhir/Patient/m1", "application/fhir+json", []byte(`{"resourceType":"Patient","id":"m1"}`))
	for range 3 {
		for _, m := range []string{"PUT", "PATCH", "GET", "DELETE", "OPTIONS", "BREW", "POST"} {
			body, ctype := []byte(`{"resourceType":"Patient","id":"m1"}`), "application/fhir+json"
			if m == "PATCH" {
				body, ctype = []byte(`[{"op":"add","path":"/active","value":true}]`), "application/json-patch+json"
			}
			do(m, "/fhir/Patient/m1", ctype, body)
			if status := do("GET", "/metrics", "", nil); status != 200 {
				t.Fatalf("/metrics after %s: %d", m, status)
			}
		}
	}
}
