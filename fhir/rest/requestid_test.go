package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/fhirgate/fhirgate/policy"
)

// logLines is a JSON log sink that tests read back.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	l.buf.Reset()
	return out
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestRequestIDInEveryLogLine: every response carries the request's id
// (the client's when sane, else a new one), and every line logged while
// serving it carries the same id: the server's own lines (the access
// line, a failure), a batch's entries, and another component's lines
// logged with the request's context.
func TestRequestIDInEveryLogLine(t *testing.T) {
	sink := &logLines{}
	h := slog.NewJSONHandler(sink, &slog.HandlerOptions{Level: slog.LevelDebug})
	relayLog := slog.New(LogHandler(h)) // as the gateway wraps its one logger
	cfg := Config{
		Logger: slog.New(h),
		Relay: func(ctx context.Context, _ *policy.Principal, _ []byte) (int, any) {
			relayLog.InfoContext(ctx, "relay request accepted")
			return 202, map[string]string{"status": "accepted"}
		},
		RelayStatus: func(context.Context, *policy.Principal, string) (int, any) { return 404, nil },
	}
	s, fe, tok := faultyServerWith(t, false, cfg)

	// request runs one request and returns the id it was answered with,
	// after checking every line logged meanwhile carries it.
	request := func(t *testing.T, method, uri, sentID string, body []byte, wantLines int) string {
		t.Helper()
		var headers []string
		if sentID != "" {
			headers = []string{HeaderRequestID, sentID}
		}
		res := serveWith(s, method, uri, mimeFHIRJSON, tok, body, headers...)
		id := string(res.Header.Peek(HeaderRequestID))
		lines := sink.lines(t)
		if len(lines) < wantLines {
			t.Fatalf("%s %s: %d log lines, want at least %d", method, uri, len(lines), wantLines)
		}
		for _, l := range lines {
			if l["request_id"] != id {
				t.Fatalf("%s %s answered as %q logged %v", method, uri, id, l)
			}
		}
		return id
	}

	t.Run("client id kept", func(t *testing.T) {
		fe.down.Store(true)
		defer fe.down.Store(false)
		if id := request(t, "GET", "/fhir/Patient/x", "lb-7f3a/12:x=y@z", nil, 2); id != "lb-7f3a/12:x=y@z" {
			t.Fatalf("answered with id %q", id)
		}
	})
	t.Run("made when absent or not sane", func(t *testing.T) {
		seen := map[string]bool{}
		for _, sent := range []string{"", "has space", `quo"te`, "new\nline", strings.Repeat("a", 129), "naïve"} {
			id := request(t, "GET", "/fhir/Patient/x", sent, nil, 1)
			if !generatedID.MatchString(id) || seen[id] {
				t.Fatalf("sent %q, answered with %q", sent, id)
			}
			seen[id] = true
		}
	})
	t.Run("other routes", func(t *testing.T) {
		for _, uri := range []string{"/healthz", "/readyz", "/nowhere"} {
			if id := request(t, "GET", uri, "r-"+uri[1:], nil, 1); id != "r-"+uri[1:] {
				t.Fatalf("%s: answered with %q", uri, id)
			}
		}
	})
	t.Run("batch entries log under the batch's id", func(t *testing.T) {
		batch := []byte(`{"resourceType":"Bundle","type":"batch","entry":[
			{"request":{"method":"GET","url":"Patient/a"}},{"request":{"method":"GET","url":"Patient/b"}}]}`)
		request(t, "POST", "/fhir", "batch-1", batch, 3) // two entries and the batch
	})
	t.Run("another component with the request's context", func(t *testing.T) {
		request(t, "POST", "/consent/relay", "relay-1", []byte(`{}`), 2)
	})
	t.Run("concurrent requests", func(t *testing.T) {
		fe.down.Store(true)
		defer fe.down.Store(false)
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveWith(s, "GET", fmt.Sprintf("/fhir/Patient/c%d", i), "", tok, nil, HeaderRequestID, fmt.Sprint("c-", i))
			}()
		}
		wg.Wait()
		count := map[any]int{}
		for _, l := range sink.lines(t) {
			count[l["request_id"]]++
		}
		for i := range 16 {
			if n := count[fmt.Sprint("c-", i)]; n != 2 {
				t.Errorf("request c-%d: %d lines, want its failure and its access line", i, n)
			}
		}
		if len(count) != 16 {
			t.Errorf("lines under %d ids, want 16: %v", len(count), count)
		}
	})
}
