package rest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// TestStoreErrorsMap: the errors of a network store answer 503 (or 413)
// with an OperationOutcome in plain words, never 500, and never the
// engine's own text.
func TestStoreErrorsMap(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
		retry  bool
	}{
		{fmt.Errorf("redis: commit: read tcp 10.0.0.7:6379: i/o timeout: %w", store.ErrUnknownOutcome), 503, "timeout", true},
		{fmt.Errorf("%w: %w", store.ErrUnknownOutcome, store.ErrConflict), 503, "timeout", true},
		{fmt.Errorf("store: read Patient/p1: redis: dial tcp 10.0.0.7:6379: connection refused: %w", store.ErrUnavailable), 503, "no-store", true},
		{fmt.Errorf("store: commit: 5000 ops: %w", store.ErrTooLarge), 413, "too-long", false},
		{store.ErrConflict, 409, "conflict", false},
	} {
		status, issues, hdr := statusOf(tc.err)
		if status != tc.status || len(issues) != 1 || issues[0].Code != tc.code {
			t.Errorf("%v: %d %+v, want %d %s", tc.err, status, issues, tc.status, tc.code)
			continue
		}
		if d := issues[0].Diagnostics; strings.Contains(d, "redis") || strings.Contains(d, "10.0.0.7") || strings.Contains(d, "Patient/p1") {
			t.Errorf("%v: diagnostics tell the engine's error: %q", tc.err, d)
		}
		if got := hdr == retryAfter; got != tc.retry {
			t.Errorf("%v: Retry-After %v, want %v", tc.err, got, tc.retry)
		}
	}
}

// faultyEngine is a real engine whose commits and reads fail on demand as
// a network store's do.
type faultyEngine struct {
	store.Engine
	// lose, when set, applies the batches it picks and then reports
	// their outcome unknown (the answer lost after the commit).
	mu   sync.Mutex
	lose func(b *store.Batch) bool
	// down makes every call fail with ErrUnavailable, writing nothing.
	down    atomic.Bool
	applies atomic.Int64 // commits applied
}

func (f *faultyEngine) Get(ctx context.Context, key []byte) ([]byte, error) {
	if f.down.Load() {
		return nil, fmt.Errorf("dial tcp 127.0.0.1:1: connection refused: %w", store.ErrUnavailable)
	}
	return f.Engine.Get(ctx, key)
}

func (f *faultyEngine) Scan(ctx context.Context, r store.Range, fn func(k, v []byte) bool) error {
	if f.down.Load() {
		return fmt.Errorf("dial tcp 127.0.0.1:1: connection refused: %w", store.ErrUnavailable)
	}
	return f.Engine.Scan(ctx, r, fn)
}

func (f *faultyEngine) Apply(ctx context.Context, b *store.Batch) error {
	if f.down.Load() {
		return fmt.Errorf("dial tcp 127.0.0.1:1: connection refused: %w", store.ErrUnavailable)
	}
	if err := f.Engine.Apply(ctx, b); err != nil {
		return err
	}
	f.applies.Add(1)
	f.mu.Lock()
	lose := f.lose != nil && f.lose(b)
	f.mu.Unlock()
	if lose {
		return fmt.Errorf("read tcp: i/o timeout: %w", store.ErrUnknownOutcome)
	}
	return nil
}

func (f *faultyEngine) setLose(fn func(b *store.Batch) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lose = fn
}

// isAudit reports whether b is an audit trail commit.
func isAudit(b *store.Batch) bool {
	return len(b.Ops) > 0 && bytes.HasPrefix(b.Ops[0].Key, store.ExtensionPrefix("audit"))
}

// faultyServer is a server on a faultyEngine over Pebble, audited when
// asked, and a token with every system scope.
func faultyServer(t *testing.T, audited bool) (*Server, *faultyEngine, string) {
	return faultyServerWith(t, audited, Config{})
}

// faultyServerWith is faultyServer with cfg's other fields.
func faultyServerWith(t *testing.T, audited bool, cfg Config) (*Server, *faultyEngine, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := pebble.New(ctx, pebble.Config{Dir: dir + "/store", CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	fe := &faultyEngine{Engine: db}
	opts := store.Options{Shared: search.Shared}
	var rec *audit.Recorder
	if audited {
		trail, err := audit.OpenTrail(ctx, fe)
		if err != nil {
			t.Fatal(err)
		}
		opts.Virtual = map[string]store.Virtual{"AuditEvent": trail}
		rec = audit.NewRecorder(trail, audit.Options{})
		go rec.Run(ctx)
	}
	st := store.New(fe, opts)
	t.Cleanup(func() { st.Close() })
	if rec != nil {
		t.Cleanup(func() { rec.Close(ctx) }) // before the store closes
	}
	key, err := auth.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := key.Mint(auth.Grant{Scope: "system/*.cruds", TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Verifier, cfg.BaseURL, cfg.Indexer, cfg.Audit = st, auth.NewVerifier(key), "http://test/fhir", search.Extract, rec
	s := New(cfg)
	s.SetReady(true)
	return s, fe, tok
}

func isOutcome(body []byte, code string) bool {
	return bytes.Contains(body, []byte(`"resourceType":"OperationOutcome"`)) && bytes.Contains(body, []byte(`"code":"`+code+`"`))
}

// TestUnknownOutcomeIsNotRetried: a write whose commit applied but whose
// answer was lost answers 503 (not 500, not a retry that would write a
// second version), and the version it wrote is there to be read.
func TestUnknownOutcomeIsNotRetried(t *testing.T) {
	s, fe, tok := faultyServer(t, false)
	fe.setLose(func(*store.Batch) bool { return true })
	before := fe.applies.Load()
	res := serve(s, "PUT", "/fhir/Patient/u1", mimeFHIRJSON, tok, []byte(`{"resourceType":"Patient","id":"u1"}`))
	if res.StatusCode() != 503 || !isOutcome(res.Body(), "timeout") || string(res.Header.Peek("Retry-After")) != "1" {
		t.Fatalf("PUT with a lost answer: %d %s", res.StatusCode(), res.Body())
	}
	if n := fe.applies.Load() - before; n != 1 {
		t.Fatalf("the write was committed %d times, want once", n)
	}
	fe.setLose(nil)
	res = serve(s, "GET", "/fhir/Patient/u1/_history", "", tok, nil)
	if res.StatusCode() != 200 || !bytes.Contains(res.Body(), []byte(`"total":1`)) {
		t.Fatalf("history after the lost answer: %d %s", res.StatusCode(), res.Body())
	}
}

// TestAuditUnknownOutcomeIsNotDuplicated: when the audit commit of a
// request applies but its answer is lost, the request answers 503 and its
// event is kept once: the recorder does not write it again.
func TestAuditUnknownOutcomeIsNotDuplicated(t *testing.T) {
	s, fe, tok := faultyServer(t, true)
	fe.setLose(isAudit)
	res := serve(s, "GET", "/fhir/Patient/nobody", "", tok, nil)
	if res.StatusCode() != 503 || !isOutcome(res.Body(), "transient") {
		t.Fatalf("read whose audit answer was lost: %d %s", res.StatusCode(), res.Body())
	}
	fe.setLose(nil)
	if evs := auditEvents(t, s, "entity=Patient/nobody"); len(evs) > 1 {
		t.Fatalf("%d events for one request", len(evs))
	}
	if evs := auditEvents(t, s, ""); len(evs) != 1 {
		t.Fatalf("the trail holds %d events, want the one request's", len(evs))
	}
	if res := serve(s, "GET", "/fhir/Patient/nobody", "", tok, nil); res.StatusCode() != 404 {
		t.Fatalf("after the store answers again: %d %s", res.StatusCode(), res.Body())
	}
}

// TestStoreUnavailableAnswers503: while the store is down every request
// answers 503 with an OperationOutcome (never 500), writes nothing, and
// /readyz says so; all resumes when it is back.
func TestStoreUnavailableAnswers503(t *testing.T) {
	for _, audited := range []bool{false, true} {
		t.Run(fmt.Sprint("audited=", audited), func(t *testing.T) {
			s, fe, tok := faultyServer(t, audited)
			if res := serve(s, "PUT", "/fhir/Patient/d1", mimeFHIRJSON, tok, []byte(`{"resourceType":"Patient","id":"d1"}`)); res.StatusCode() != 201 {
				t.Fatalf("PUT: %d %s", res.StatusCode(), res.Body())
			}
			fe.down.Store(true)
			code := "no-store"
			if audited {
				code = "transient" // the request could not be audited
			}
			for _, r := range []struct{ method, uri, body string }{
				{"GET", "/fhir/Patient/d1", ""},
				{"GET", "/fhir/Patient?name=x", ""},
				{"PUT", "/fhir/Patient/d1", `{"resourceType":"Patient","id":"d1","active":true}`},
				{"POST", "/fhir/Patient", `{"resourceType":"Patient"}`},
				{"DELETE", "/fhir/Patient/d1", ""},
			} {
				res := serve(s, r.method, r.uri, mimeFHIRJSON, tok, []byte(r.body))
				if res.StatusCode() != 503 || !isOutcome(res.Body(), code) {
					t.Errorf("%s %s with the store down: %d %s", r.method, r.uri, res.StatusCode(), res.Body())
				}
				if !generatedID.Match(res.Header.Peek(HeaderRequestID)) {
					t.Errorf("%s %s with the store down: no request id in the answer", r.method, r.uri)
				}
			}
			if res := serve(s, "GET", "/readyz", "", "", nil); res.StatusCode() != 503 {
				t.Errorf("/readyz with the store down: %d", res.StatusCode())
			}
			fe.down.Store(false)
			res := serve(s, "GET", "/fhir/Patient/d1", "", tok, nil)
			if res.StatusCode() != 200 || bytes.Contains(res.Body(), []byte(`"active"`)) {
				t.Fatalf("after the store is back: %d %s", res.StatusCode(), res.Body())
			}
		})
	}
}
