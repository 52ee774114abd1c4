package rest

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/valyala/fasthttp"
)

// outcome decodes an OperationOutcome answer: its first issue's code,
// diagnostics and expression.
func outcome(t *testing.T, res *fasthttp.Response) (code, diag, expr string) {
	t.Helper()
	var oo struct {
		ResourceType string
		Issue        []struct {
			Code        string
			Diagnostics string
			Expression  []string
		}
	}
	if err := json.Unmarshal(res.Body(), &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		t.Fatalf("HTTP %d: not an OperationOutcome: %.300s", res.StatusCode(), res.Body())
	}
	i := oo.Issue[0]
	return i.Code, i.Diagnostics, strings.Join(i.Expression, ",")
}

func encode(t testing.TB, coding string, data []byte) []byte {
	var b bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w, _ = gzip.NewWriterLevel(&b, gzip.BestSpeed)
	case "deflate":
		w, _ = zlib.NewWriterLevel(&b, zlib.BestCompression)
	case "raw-deflate":
		w, _ = flate.NewWriter(&b, flate.BestCompression)
	case "br":
		w = brotli.NewWriterLevel(&b, brotli.BestSpeed)
	default:
		t.Fatalf("coding %s", coding)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.Bytes()
}

// TestInflateBounded: a compressed body is decoded within the body limit
// (finding 5: fiber inflated without a bound, 204 KB became 1.4 GB): a
// bomb is refused with 413 without holding its decoded bytes, unknown
// codings with 415, and well-formed compressed bodies are served.
func TestInflateBounded(t *testing.T) {
	s, tok := newTestServer(t)
	patient := []byte(`{"resourceType":"Patient","active":true}`)
	// 64 MiB of JSON white space after a valid document: only the limit
	// refuses it.
	bomb := encode(t, "gzip", append(bytes.Clone(patient), bytes.Repeat([]byte(" "), 64<<20)...))
	tests := []struct {
		name, coding string
		body         []byte
		status       int
		code         string
	}{
		{"gzip", "gzip", encode(t, "gzip", patient), 201, ""},
		{"x-gzip", "x-gzip", encode(t, "gzip", patient), 201, ""},
		{"deflate (zlib)", "deflate", encode(t, "deflate", patient), 201, ""},
		{"deflate (raw)", "deflate", encode(t, "raw-deflate", patient), 201, ""},
		{"br", "br", encode(t, "br", patient), 201, ""},
		{"identity", "identity", patient, 201, ""},
		{"two codings", "deflate, gzip", encode(t, "gzip", encode(t, "deflate", patient)), 201, ""},
		{"case and spaces", " GZIP ", encode(t, "gzip", patient), 201, ""},
		{"bomb", "gzip", bomb, 413, "too-long"},
		{"bomb under br", "br", encode(t, "br", make([]byte, 17<<20)), 413, "too-long"},
		{"unknown coding", "zstd", patient, 415, "not-supported"},
		{"three codings", "gzip, gzip, gzip", encode(t, "gzip", encode(t, "gzip", encode(t, "gzip", patient))), 415, "not-supported"},
		{"corrupt gzip", "gzip", []byte("not gzip at all"), 400, "invalid"},
		{"truncated gzip", "gzip", encode(t, "gzip", patient)[:20], 400, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			res := serveWith(s, "POST", "/fhir/Patient", mimeFHIRJSON, tok, tt.body, "Content-Encoding", tt.coding)
			runtime.ReadMemStats(&after)
			if res.StatusCode() != tt.status {
				t.Fatalf("HTTP %d, want %d: %.300s", res.StatusCode(), tt.status, res.Body())
			}
			if tt.code != "" {
				if code, diag, _ := outcome(t, res); code != tt.code {
					t.Fatalf("issue code %s (%s), want %s", code, diag, tt.code)
				}
			}
			// A brotli decoder holds a window of up to 16 MiB (4 MiB here).
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 12<<20 {
				t.Errorf("the request allocated %d MB", alloc>>20)
			}
		})
	}
	// A refused coding says which ones are accepted.
	res := serveWith(s, "POST", "/fhir/Patient", mimeFHIRJSON, tok, patient, "Content-Encoding", "compress")
	if got := string(res.Header.Peek("Accept-Encoding")); !strings.Contains(got, "gzip") {
		t.Errorf("415 without Accept-Encoding: %q", got)
	}
}

// TestPatchBomb: 40 "copy /extension -> /extension/-" operations double
// an Appointment 40 times (finding 4: 20 took 3.6 s and 470 MB, 40 grew the
// gateway past 8.8 GB). The patch is refused at the growth limit within
// milliseconds; an operation count over the limit is refused unread.
func TestPatchBomb(t *testing.T) {
	s, tok := newTestServer(t)
	appt := `{"resourceType":"Appointment","id":"a1","status":"proposed","participant":[{"status":"needs-action","actor":{"display":"Dr X"}}],` +
		`"extension":[{"url":"http://example.org/x","valueString":"0123456789abcdefghijklmnopqrstuvwxyz"}]}`
	if res := serve(s, "PUT", "/fhir/Appointment/a1", mimeFHIRJSON, tok, []byte(appt)); res.StatusCode() != 201 {
		t.Fatalf("PUT: %d %s", res.StatusCode(), res.Body())
	}
	op := `{"op":"copy","from":"/extension","path":"/extension/-"}`
	tests := []struct {
		name   string
		ops    int
		status int
		code   string
		msg    string
	}{
		{"doubling", 40, 422, "too-long", "1048576 bytes larger"},
		{"too many operations", 1001, 400, "too-costly", "at most 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte("[" + strings.TrimSuffix(strings.Repeat(op+",", tt.ops), ",") + "]")
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			res := serve(s, "PATCH", "/fhir/Appointment/a1", mimeJSONPatch, tok, body)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if res.StatusCode() != tt.status {
				t.Fatalf("HTTP %d, want %d: %.300s", res.StatusCode(), tt.status, res.Body())
			}
			if code, diag, _ := outcome(t, res); code != tt.code || !strings.Contains(diag, tt.msg) {
				t.Fatalf("issue %s %q, want %s naming %q", code, diag, tt.code, tt.msg)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; took > time.Second || alloc > 64<<20 {
				t.Errorf("the refusal took %v and %d MB", took, alloc>>20)
			}
		})
	}
	// A patch within the limits still applies.
	res := serve(s, "PATCH", "/fhir/Appointment/a1", mimeJSONPatch, tok, []byte(`[{"op":"copy","from":"/extension/0","path":"/extension/-"}]`))
	if res.StatusCode() != 200 {
		t.Fatalf("a small copy: HTTP %d %s", res.StatusCode(), res.Body())
	}
}
