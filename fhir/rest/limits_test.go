package rest

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"errors"
	"fmt"
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

// seedPatients writes n Patients (each family name holds an "a") in
// transactions of up to 1,000.
func seedPatients(t *testing.T, s *Server, tok string, n int) {
	t.Helper()
	for done := 0; done < n; done += minTransactionEntries {
		var b strings.Builder
		b.WriteString(`{"resourceType":"Bundle","type":"transaction","entry":[`)
		for i := done; i < min(n, done+minTransactionEntries); i++ {
			if i > done {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"resource":{"resourceType":"Patient","name":[{"family":"Fam%05d","given":["Ann"]}]},"request":{"method":"POST","url":"Patient"}}`, i)
		}
		b.WriteString(`]}`)
		if res := serve(s, "POST", "/fhir", mimeFHIRJSON, tok, []byte(b.String())); res.StatusCode() != 200 {
			t.Fatalf("seeding: HTTP %d %.300s", res.StatusCode(), res.Body())
		}
	}
}

// TestSearchBoundsREST: searches over a bound answer 400 with a
// too-costly OperationOutcome naming it, at once (finding 8: 900
// name:contains=a took 22 s, 2,000 clauses by POST 68 s, 5,000 _sort keys
// 17 s).
func TestSearchBoundsREST(t *testing.T) {
	s, tok := newTestServer(t)
	seedPatients(t, s, tok, 200)
	repeat := func(pair string, n int) string { return strings.TrimSuffix(strings.Repeat(pair+"&", n), "&") }
	tests := []struct {
		name, method, query, form string
		status                    int
		expr, msg                 string
	}{
		{"900 name:contains", "GET", repeat("name:contains=a", 900), "", 400, "", "at most 50 per search"},
		{"2,000 clauses by POST", "POST", "", repeat("family=a", 2000), 400, "", "at most 16384"},
		{"1,000 clauses by POST", "POST", "", repeat("family=a", 1000), 400, "", "at most 50 per search"},
		{"5,000 sort keys", "GET", "_sort=" + strings.TrimSuffix(strings.Repeat("_id,", 5000), ","), "", 400, "", "at most 16384"},
		{"9 sort keys", "GET", "_sort=" + strings.TrimSuffix(strings.Repeat("_id,", 9), ","), "", 400, "_sort", "at most 8"},
		{"includes", "GET", repeat("_revinclude=Observation:subject", 17), "", 400, "_include", "at most 16"},
		{"values", "GET", "_id=" + strings.TrimSuffix(strings.Repeat("x,", 101), ","), "", 400, "_id", "at most 100 per parameter"},
		{"long value", "POST", "", "family=" + strings.Repeat("a", 2000), 400, "family", "at most 1024"},
		{"within the bounds", "GET", repeat("name:contains=a", 3) + "&_sort=family,-_id&_count=5", "", 200, "", ""},
		{"within the bounds by POST", "POST", "", repeat("name:contains=a", 3), 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			var res *fasthttp.Response
			if tt.method == "GET" {
				res = serve(s, "GET", "/fhir/Patient?"+tt.query, "", tok, nil)
			} else {
				res = serve(s, "POST", "/fhir/Patient/_search", "application/x-www-form-urlencoded", tok, []byte(tt.form))
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("answered in %v", d)
			}
			if res.StatusCode() != tt.status {
				t.Fatalf("HTTP %d, want %d: %.300s", res.StatusCode(), tt.status, res.Body())
			}
			if tt.status == 200 {
				return
			}
			code, diag, expr := outcome(t, res)
			if code != "too-costly" || expr != tt.expr || !strings.Contains(diag, tt.msg) {
				t.Fatalf("issue %s at %q: %q; want too-costly at %q naming %q", code, expr, diag, tt.expr, tt.msg)
			}
		})
	}
}

// TestRequestBudget: searches, history, $everything and bundles stop at
// the time budget with a too-costly OperationOutcome (finding 8: a
// 10,000-entry batch of searches had no overall budget).
func TestRequestBudget(t *testing.T) {
	s, tok := newTestServer(t)
	seedPatients(t, s, tok, 2000)
	if res := serve(s, "PUT", "/fhir/Patient/e1", mimeFHIRJSON, tok, []byte(`{"resourceType":"Patient","id":"e1"}`)); res.StatusCode() != 201 {
		t.Fatalf("PUT: HTTP %d", res.StatusCode())
	}
	t.Run("a 10,000-entry batch of searches", func(t *testing.T) {
		s.cfg.RequestBudget = 200 * time.Millisecond
		entry := `{"request":{"method":"GET","url":"Patient?name:contains=a&_total=accurate&_count=1"}}`
		body := `{"resourceType":"Bundle","type":"batch","entry":[` + strings.TrimSuffix(strings.Repeat(entry+",", 10000), ",") + `]}`
		start := time.Now()
		res := serve(s, "POST", "/fhir", mimeFHIRJSON, tok, []byte(body))
		took := time.Since(start)
		if res.StatusCode() != 200 {
			t.Fatalf("HTTP %d %.300s", res.StatusCode(), res.Body())
		}
		var b struct {
			Type  string
			Entry []struct {
				Response struct {
					Status  string
					Outcome struct{ Issue []struct{ Code string } }
				}
			}
		}
		if err := json.Unmarshal(res.Body(), &b); err != nil || b.Type != "batch-response" || len(b.Entry) != 10000 {
			t.Fatalf("not a batch-response of 10,000 entries (%v)", err)
		}
		stopped := 0
		for _, e := range b.Entry {
			if strings.HasPrefix(e.Response.Status, "400") && len(e.Response.Outcome.Issue) > 0 && e.Response.Outcome.Issue[0].Code == "too-costly" {
				stopped++
			}
		}
		last := b.Entry[len(b.Entry)-1].Response
		if stopped == 0 || !strings.HasPrefix(last.Status, "400") {
			t.Fatalf("no entry was stopped at the budget (last: %s)", last.Status)
		}
		t.Logf("%d entries answered, %d stopped at the budget, in %v", 10000-stopped, stopped, took)
		if took > 3*time.Second {
			t.Errorf("the batch took %v with a budget of 200ms", took)
		}
	})
	s.cfg.RequestBudget = time.Nanosecond // spent before any work
	tests := []struct{ name, method, uri, body string }{
		{"search", "GET", "/fhir/Patient?name:contains=a", ""},
		{"search by POST", "POST", "/fhir/Patient/_search", ""},
		{"system history", "GET", "/fhir/_history", ""},
		{"type history", "GET", "/fhir/Patient/_history", ""},
		{"$everything", "GET", "/fhir/Patient/e1/$everything", ""},
		{"transaction", "POST", "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","active":true},"request":{"method":"POST","url":"Patient","ifNoneExist":"name=zzz"}}]}`},
		{"conditional update", "PUT", "/fhir/Patient?name:contains=a", `{"resourceType":"Patient","active":true}`},
		{"conditional delete", "DELETE", "/fhir/Patient?name:contains=a", ""},
		{"conditional create", "POST", "/fhir/Patient", `{"resourceType":"Patient","active":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctype := ""
			if tt.body != "" {
				ctype = mimeFHIRJSON
			}
			var hdr []string
			if tt.name == "conditional create" {
				hdr = []string{"If-None-Exist", "name:contains=a"}
			}
			res := serveWith(s, tt.method, tt.uri, ctype, tok, []byte(tt.body), hdr...)
			if res.StatusCode() != budgetStatus {
				t.Fatalf("HTTP %d, want %d: %.300s", res.StatusCode(), budgetStatus, res.Body())
			}
			if code, diag, _ := outcome(t, res); code != "too-costly" || !strings.Contains(diag, "time budget of 1ns") {
				t.Fatalf("issue %s %q", code, diag)
			}
		})
	}
	// The transaction stopped before its commit: nothing was written.
	s.cfg.RequestBudget = 0
	res := serve(s, "GET", "/fhir/Patient?active=true&_summary=count", "", tok, nil)
	if !strings.Contains(string(res.Body()), `"total":0`) {
		t.Errorf("a transaction stopped at its budget wrote: %s", res.Body())
	}
}

// TestBundleRules: batches and transactions do not nest (finding 8: nested
// batches recursed to JSON depth 100), a fullUrl names one entry (finding
// 14: duplicates were accepted), and a Bundle holds at most 10,000
// entries.
func TestBundleRules(t *testing.T) {
	s, tok := newTestServer(t)
	patient := `{"resourceType":"Patient","active":true}`
	inner := `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient"}}]}`
	bundle := func(typ string, entries ...string) string {
		return `{"resourceType":"Bundle","type":"` + typ + `","entry":[` + strings.Join(entries, ",") + `]}`
	}
	tests := []struct {
		name, body string
		expr, msg  string
	}{
		{"batch in a batch", bundle("batch", `{"resource":`+inner+`,"request":{"method":"POST","url":"/"}}`), "Bundle.entry[0].resource", "do not nest"},
		{"transaction in a batch", bundle("batch", `{"request":{"method":"GET","url":"Patient"}}`, `{"resource":`+strings.Replace(inner, "batch", "transaction", 1)+`,"request":{"method":"POST","url":"/"}}`), "Bundle.entry[1].resource", "do not nest"},
		{"batch in a transaction", bundle("transaction", `{"resource":`+inner+`,"request":{"method":"POST","url":"Bundle"}}`), "Bundle.entry[0].resource", "do not nest"},
		{"POST to the base", bundle("batch", `{"resource":`+patient+`,"request":{"method":"POST","url":"/"}}`), "Bundle.entry[0].request.url", "cannot address the base"},
		{"GET the base", bundle("batch", `{"request":{"method":"GET","url":"?_type=Patient"}}`), "Bundle.entry[0].request.url", "cannot address the base"},
		{"POST to the absolute base", bundle("batch", `{"resource":`+patient+`,"request":{"method":"POST","url":"http://test/fhir"}}`), "Bundle.entry[0].request.url", "cannot address the base"},
		{"duplicate fullUrl in a batch", bundle("batch",
			`{"fullUrl":"urn:uuid:1","resource":`+patient+`,"request":{"method":"POST","url":"Patient"}}`,
			`{"fullUrl":"urn:uuid:1","resource":`+patient+`,"request":{"method":"POST","url":"Patient"}}`), "Bundle.entry[1].fullUrl", "entry 0 again"},
		{"duplicate fullUrl in a transaction", bundle("transaction",
			`{"fullUrl":"urn:uuid:1","resource":`+patient+`,"request":{"method":"POST","url":"Patient"}}`,
			`{"fullUrl":"urn:uuid:2","resource":`+patient+`,"request":{"method":"POST","url":"Patient"}}`,
			`{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","meta":{"versionId":"2"}},"request":{"method":"POST","url":"Patient"}}`), "Bundle.entry[2].fullUrl", "entry 0 again"},
		{"10,001 entries", bundle("batch", strings.TrimSuffix(strings.Repeat(`{"request":{"method":"GET","url":"Patient"}},`, 10001), ",")), "entry", "more than 10000 items"},
		{"1,001 entries in a transaction", bundle("transaction", strings.TrimSuffix(strings.Repeat(`{"request":{"method":"GET","url":"Patient"}},`, 1001), ",")), "Bundle.entry", "at most 1000 entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(s, "POST", "/fhir", mimeFHIRJSON, tok, []byte(tt.body))
			if res.StatusCode() != 400 {
				t.Fatalf("HTTP %d, want 400: %.300s", res.StatusCode(), res.Body())
			}
			if _, diag, expr := outcome(t, res); expr != tt.expr || !strings.Contains(diag, tt.msg) {
				t.Fatalf("issue at %q: %q; want %q naming %q", expr, diag, tt.expr, tt.msg)
			}
		})
	}
	// Nothing of a refused Bundle was written.
	res := serve(s, "GET", "/fhir/Patient?_summary=count", "", tok, nil)
	if !strings.Contains(string(res.Body()), `"total":0`) {
		t.Errorf("a refused Bundle wrote: %s", res.Body())
	}
}

// FuzzDecodeBody: no body or list of codings makes the decoder panic or
// return more than the limit.
func FuzzDecodeBody(f *testing.F) {
	f.Add(encode(f, "gzip", []byte(`{"a":1}`)), "gzip", 100)
	f.Add(encode(f, "deflate", bytes.Repeat([]byte("x"), 300)), "deflate", 200)
	f.Add(encode(f, "br", []byte(`{}`)), "br", 10)
	f.Add(encode(f, "gzip", encode(f, "raw-deflate", []byte("abc"))), "deflate,gzip", 10)
	f.Fuzz(func(t *testing.T, body []byte, codings string, limit int) {
		limit = max(0, limit%4096)
		list := strings.Split(codings, ",")
		for _, cd := range list {
			switch cd {
			case "gzip", "x-gzip", "deflate", "br":
			default:
				return // refused before decoding
			}
		}
		if len(list) > maxContentCodings {
			return
		}
		out, err := decodeBody(body, list, limit)
		if err == nil && len(out) > limit {
			t.Fatalf("decoded %d bytes past the limit %d", len(out), limit)
		}
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) || (he.status != 400 && he.status != 413) {
				t.Fatalf("error %v", err)
			}
		}
	})
}

// TestResourceBoundsREST: resources over the size bounds, and decimals the
// index cannot hold, are refused with 400 naming the element (findings 8
// and 14: a Patient with 200,000 names was accepted; an Observation of
// 1e999999999 was stored and never found).
func TestResourceBoundsREST(t *testing.T) {
	s, tok := newTestServer(t)
	obs := func(v string) string {
		return `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":` + v + `}}`
	}
	tests := []struct {
		name, typ, body string
		status          int
		code, expr, msg string
	}{
		{"200,000 names", "Patient", `{"resourceType":"Patient","name":[` + strings.TrimSuffix(strings.Repeat(`{"text":"a"},`, 200000), ",") + `]}`, 400, "too-costly", "name", "more than 10000 items"},
		{"10,000 names", "Patient", `{"resourceType":"Patient","name":[` + strings.TrimSuffix(strings.Repeat(`{"text":"a"},`, 10000), ",") + `]}`, 201, "", "", ""},
		{"nested 65 deep", "Patient", `{"resourceType":"Patient","extension":[` + strings.Repeat(`{"url":"http://x","extension":[`, 32) + `{"url":"http://x","valueString":"x"}` + strings.Repeat(`]}`, 32) + `]}`, 400, "too-costly", "", "nested deeper than 64"},
		{"1e999999999", "Observation", obs("1e999999999"), 400, "value", "Observation.valueQuantity.value", "outside the range"},
		{"1e-400", "Observation", obs("1e-400"), 400, "value", "Observation.valueQuantity.value", "outside the range"},
		{"1.7976931348623157e308", "Observation", obs("1.7976931348623157e308"), 201, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(s, "POST", "/fhir/"+tt.typ, mimeFHIRJSON, tok, []byte(tt.body))
			if res.StatusCode() != tt.status {
				t.Fatalf("HTTP %d, want %d: %.300s", res.StatusCode(), tt.status, res.Body())
			}
			if tt.code == "" {
				return
			}
			code, diag, expr := outcome(t, res)
			if code != tt.code || (tt.expr != "" && expr != tt.expr) || !strings.Contains(diag, tt.msg) {
				t.Fatalf("issue %s at %q: %q; want %s at %q naming %q", code, expr, diag, tt.code, tt.expr, tt.msg)
			}
		})
	}
	// The largest decimal the index holds is found by search.
	res := serve(s, "GET", "/fhir/Observation?value-quantity=ge1e308&_summary=count", "", tok, nil)
	if !strings.Contains(string(res.Body()), `"total":1`) {
		t.Errorf("search for the stored decimal: %s", res.Body())
	}
}
