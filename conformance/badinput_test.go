package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestBadInput: hostile or broken bodies get a clear 4xx OperationOutcome,
// the server keeps serving, and nothing is stored.
func TestBadInput(t *testing.T) {
	family := unique("Bad")
	tag := []byte(family)
	cases := []struct {
		name   string
		body   []byte
		ctype  string
		status int
		expr   string // expected issue expression, when there is one
	}{
		{"invalid UTF-8", []byte("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"" + family + "\xff\xfe\"}]}"), "", 400, "name[0].family"},
		{"duplicate keys", []byte(`{"resourceType":"Patient","name":[{"family":"` + family + `"}],"gender":"male","gender":"female"}`), "", 400, "gender"},
		{"10,000-deep nesting", []byte(`{"resourceType":"Patient","name":[{"family":"` + family + `","extension":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}]}`), "", 400, ""},
		{"huge array", []byte(`{"resourceType":"Patient","name":[{"family":"` + family + `"}],"identifier":[` + strings.Repeat(`{"value":"1"},`, 1_100_000) + `{"value":"1"}]}`), "", 400, "identifier"},
		{"over 2^20 values", []byte(`{"resourceType":"Patient","name":[{"family":"` + family + `"},` + strings.Repeat(`{"given":[`+strings.Repeat(`"a",`, 9999)+`"a"]},`, 105) + `{"text":"a"}]}`), "", 413, ""},
		{"unknown resource type", []byte(`{"resourceType":"Patient2","name":[{"family":"` + family + `"}]}`), "", 400, "resourceType"},
		{"not JSON", []byte(`resourceType=Patient&name=` + family), "", 400, ""},
		{"JSON with comments", []byte("{\"resourceType\":\"Patient\", // x\n\"name\":[{\"family\":\"" + family + "\"}]}"), "", 400, ""},
		{"trailing garbage", []byte(`{"resourceType":"Patient","name":[{"family":"` + family + `"}]} {}`), "", 400, ""},
		{"unknown element", []byte(`{"resourceType":"Patient","name":[{"family":"` + family + `"}],"favouriteColour":"blue"}`), "", 400, "Patient.favouriteColour"},
		{"wrong type of value", []byte(`{"resourceType":"Patient","name":[{"family":"` + family + `"}],"active":"yes"}`), "", 400, "Patient.active"},
		{"invalid date", []byte(`{"resourceType":"Patient","name":[{"family":"` + family + `"}],"birthDate":"1970-13-01"}`), "", 400, "Patient.birthDate"},
		{"script in narrative", []byte(`{"resourceType":"Patient","name":[{"family":"` + family + `"}],"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script></div>"}}`), "", 400, "Patient.text.div"},
		{"empty body", []byte{}, "", 400, ""},
		{"a JSON array", []byte(`[{"resourceType":"Patient"}]`), "", 400, ""},
		{"null element", []byte(`{"resourceType":"Patient","name":[{"family":"` + family + `"}],"gender":null}`), "", 400, "Patient.gender"},
	}
	for _, tc := range cases {
		spec(t, "http.html#create, json.html: "+tc.name+" is refused with an OperationOutcome", func(t *testing.T) {
			r := do(t, srv.full, "POST", "Patient", tc.body)
			is := wantOutcome(t, r, tc.status, "")
			if tc.expr != "" {
				exprs, _ := is["expression"].([]any)
				if len(exprs) == 0 || exprs[0] != tc.expr {
					t.Errorf("issue expression %v, want %s (%v)", exprs, tc.expr, is["diagnostics"])
				}
			}
			if d, _ := is["diagnostics"].(string); strings.Contains(d, family) {
				t.Errorf("the error echoes content: %s", d)
			}
			// The server keeps serving.
			wantStatus(t, do(t, srv.anon, "GET", "metadata", nil), 200)
		})
	}
	spec(t, "http.html#create: a body over the size limit is 413 before it is read", func(t *testing.T) {
		u, err := url.Parse(srv.base + "/Patient")
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Skipf("cannot dial %s directly: %v", u.Host, err)
		}
		defer conn.Close()
		// Announce 64 MiB, send a little, and read the answer: the server
		// must refuse from the header without waiting for the body.
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/fhir+json\r\nContent-Length: %d\r\n\r\n{\"resourceType\":\"Patient\"",
			u.Path, u.Host, srv.full.Token, 64<<20)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		wantOutcome(t, &Response{Status: res.StatusCode, Header: res.Header, Body: b}, 413, "too-long")
	})
	spec(t, "http.html#create: nothing of a refused request is stored", func(t *testing.T) {
		r := do(t, srv.full, "GET", "Patient/_history?_count=1000&_since=2000-01-01T00:00:00Z", nil)
		wantStatus(t, r, 200)
		if bytes.Contains(r.Body, tag) {
			t.Fatal("a refused resource is in the history")
		}
		var b map[string]any
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
	})
}
