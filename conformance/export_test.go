package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Bulk Data Access IG v2 (export.html): kick-off, status, manifest,
// download, cancel, and the parameters' refusals.
func TestBulkExport(t *testing.T) {
	family := unique("Export")
	pid := createPatient(t, family, unique("exp"))
	async := []string{"Prefer", "respond-async", "Accept", "application/fhir+json"}

	kickoff := func(t *testing.T, path string) string {
		t.Helper()
		r := do(t, srv.full, "GET", path, nil, async...)
		wantStatus(t, r, 202)
		loc := r.Header.Get("Content-Location")
		if loc == "" {
			t.Fatal("202 without Content-Location")
		}
		return loc
	}
	poll := func(t *testing.T, loc string) map[string]any {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
			r := do(t, srv.full, "GET", loc, nil)
			switch r.Status {
			case 202:
				if r.Header.Get("Retry-After") == "" && r.Header.Get("X-Progress") == "" {
					t.Errorf("202 with neither Retry-After nor X-Progress")
				}
				time.Sleep(200 * time.Millisecond)
				continue
			case 200:
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("manifest Content-Type %q", ct)
				}
				return r.JSON()
			}
			t.Fatalf("status: %d %.300s", r.Status, r.Body)
		}
		t.Fatal("the export did not complete in 2 minutes")
		return nil
	}

	spec(t, "export.html#bulk-data-kick-off-request: without Prefer: respond-async, 400", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "GET", "$export", nil), 400, "")
	})
	spec(t, "export.html#query-parameters: an unsupported _outputFormat is 400", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "GET", "$export?_outputFormat=text/csv", nil, async...), 400, "")
	})
	spec(t, "export.html#query-parameters: an unknown _type is 400", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "GET", "$export?_type=NoSuchType", nil, async...), 400, "")
	})
	spec(t, "export.html#query-parameters: a malformed _since is 400", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "GET", "Patient/$export?_since=yesterday", nil, async...), 400, "")
	})
	spec(t, "export.html#bulk-data-kick-off-request: a token is required", func(t *testing.T) {
		wantStatus(t, do(t, srv.anon, "GET", "$export", nil, async...), 401)
	})

	spec(t, "export.html: Patient/$export runs to a manifest whose files hold the resources, one per line", func(t *testing.T) {
		m := poll(t, kickoff(t, "Patient/$export?_type=Patient&_outputFormat=application/fhir%2Bndjson"))
		if m["requiresAccessToken"] != true || m["transactionTime"] == nil || m["request"] == nil {
			t.Errorf("manifest fields: %v", m)
		}
		if _, ok := m["error"].([]any); !ok {
			t.Errorf("manifest error is not an array: %v", m["error"])
		}
		out, _ := m["output"].([]any)
		found := false
		for _, o := range out {
			f := o.(map[string]any)
			if f["type"] != "Patient" {
				t.Errorf("file of type %v for _type=Patient", f["type"])
			}
			r := do(t, srv.full, "GET", f["url"].(string), nil, "Accept", "application/fhir+ndjson")
			wantStatus(t, r, 200)
			n := 0
			sc := bufio.NewScanner(bytes.NewReader(r.Body))
			sc.Buffer(nil, 16<<20)
			for sc.Scan() {
				var res struct{ ResourceType, ID string }
				if err := json.Unmarshal(sc.Bytes(), &res); err != nil || res.ResourceType != "Patient" {
					t.Fatalf("line %d of %v: %v %.200s", n, f["url"], err, sc.Bytes())
				}
				found = found || res.ID == pid
				n++
			}
			if c, ok := f["count"].(float64); ok && int(c) != n {
				t.Errorf("%v: %d lines, count %v", f["url"], n, c)
			}
			if do(t, srv.anon, "GET", f["url"].(string), nil).Status == 200 {
				t.Errorf("a file was served without a token (requiresAccessToken)")
			}
		}
		if !found {
			t.Errorf("the patient created for the check is not in the export")
		}
	})

	spec(t, "export.html#bulk-data-delete-request: DELETE on the status URL cancels (202), then the status is 404", func(t *testing.T) {
		loc := kickoff(t, "$export?_type=Patient")
		wantStatus(t, do(t, srv.full, "DELETE", loc, nil), 202)
		r := do(t, srv.full, "GET", loc, nil)
		if r.Status != 404 && r.Status != 410 {
			t.Errorf("status after cancel: %d", r.Status)
		}
	})

	if srv.gw != nil {
		spec(t, "export files and status are the kick-off client's: another client gets 404", func(t *testing.T) {
			loc := kickoff(t, "$export?_type=Patient")
			m := poll(t, loc)
			tok, err := srv.gw.MintToken("system/*.rs", "--sub", "client/"+unique("other"))
			if err != nil {
				t.Skip("cannot mint another client's token:", err)
			}
			other := NewClient(srv.base, tok)
			wantOutcome(t, do(t, other, "GET", loc, nil), 404, "")
			if out, _ := m["output"].([]any); len(out) > 0 {
				wantOutcome(t, do(t, other, "GET", out[0].(map[string]any)["url"].(string), nil), 404, "")
			}
			do(t, srv.full, "DELETE", loc, nil)
		})
	}
}
