package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
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

	// ids downloads every output file of m and returns its Type/id lines.
	ids := func(t *testing.T, m map[string]any) map[string]bool {
		t.Helper()
		out := map[string]bool{}
		files, _ := m["output"].([]any)
		for _, o := range files {
			f := o.(map[string]any)
			r := do(t, srv.full, "GET", f["url"].(string), nil, "Accept", "application/fhir+ndjson")
			wantStatus(t, r, 200)
			sc := bufio.NewScanner(bytes.NewReader(r.Body))
			sc.Buffer(nil, 16<<20)
			for sc.Scan() {
				var res struct{ ResourceType, ID string }
				if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
					t.Fatalf("a line of %v: %v", f["url"], err)
				}
				out[res.ResourceType+"/"+res.ID] = true
			}
		}
		return out
	}
	parameters := func(params ...string) []byte {
		var ps []string
		for i := 0; i+1 < len(params); i += 2 {
			ps = append(ps, `{"name":"`+params[i]+`",`+params[i+1]+`}`)
		}
		return []byte(`{"resourceType":"Parameters","parameter":[` + strings.Join(ps, ",") + `]}`)
	}

	spec(t, "export.html#bulk-data-kick-off-request: a POST of a Parameters body kicks off as a GET does", func(t *testing.T) {
		r := do(t, srv.full, "POST", "Patient/$export", parameters("_type", `"valueString":"Patient"`), async...)
		if r.Status == 404 || r.Status == 405 {
			t.Skipf("SKIPPED: the server does not take a POST kick-off (%d)", r.Status)
		}
		wantStatus(t, r, 202)
		m := poll(t, r.Header.Get("Content-Location"))
		if !ids(t, m)["Patient/"+pid] {
			t.Errorf("the patient created for the check is not in the POST export")
		}
		wantOutcome(t, do(t, srv.full, "POST", "$export", parameters("_since", `"valueString":"yesterday"`), async...), 400, "")
		wantOutcome(t, do(t, srv.full, "POST", "$export", parameters("noSuchParameter", `"valueString":"1"`), async...), 400, "")
	})

	spec(t, "export.html#_typefilter-experimental-query-parameter: only the resources of a filtered type that match a filter", func(t *testing.T) {
		other := createPatient(t, unique("ExportOther"), unique("exp"))
		filter := "Patient?family=" + family
		r := do(t, srv.full, "GET", "$export?_type=Patient&_typeFilter="+url.QueryEscape(filter), nil, async...)
		if r.Status == 400 {
			if is, _ := r.OutcomeIssue(); is["code"] == "not-supported" {
				t.Skip("SKIPPED: the server does not support _typeFilter")
			}
		}
		wantStatus(t, r, 202)
		got := ids(t, poll(t, r.Header.Get("Content-Location")))
		if !got["Patient/"+pid] || got["Patient/"+other] || len(got) != 1 {
			t.Errorf("_typeFilter=%s exported %v, want Patient/%s only", filter, got, pid)
		}
		// Several filters of one type are OR-ed; a POST takes them too.
		r = do(t, srv.full, "POST", "$export", parameters("_type", `"valueString":"Patient"`,
			"_typeFilter", `"valueString":"Patient?_id=`+pid+`"`, "_typeFilter", `"valueString":"Patient?_id=`+other+`"`), async...)
		if r.Status == 202 {
			got = ids(t, poll(t, r.Header.Get("Content-Location")))
			if len(got) != 2 || !got["Patient/"+pid] || !got["Patient/"+other] {
				t.Errorf("two _typeFilter of Patient exported %v, want both patients", got)
			}
		}
		wantOutcome(t, do(t, srv.full, "GET", "$export?_typeFilter="+url.QueryEscape("Patient?noSuchParameter=1"), nil, async...), 400, "")
	})

	spec(t, "export.html#server-capability-documentation: the CapabilityStatement instantiates bulk-data and lists the export operations", func(t *testing.T) {
		var cs struct {
			Instantiates []string
			Rest         []struct {
				Operation []struct{ Name, Definition string }
				Resource  []struct {
					Type      string
					Operation []struct{ Name, Definition string }
				}
			}
		}
		r := do(t, srv.anon, "GET", "metadata", nil, "Accept", "application/fhir+json")
		wantStatus(t, r, 200)
		if err := json.Unmarshal(r.Body, &cs); err != nil || len(cs.Rest) == 0 {
			t.Fatalf("CapabilityStatement: %v %.200s", err, r.Body)
		}
		const ig = "http://hl7.org/fhir/uv/bulkdata"
		if !slices.Contains(cs.Instantiates, ig+"/CapabilityStatement/bulk-data") {
			t.Skipf("SKIPPED: the CapabilityStatement does not instantiate bulk-data (%v)", cs.Instantiates)
		}
		has := func(ops []struct{ Name, Definition string }, def string) bool {
			return slices.ContainsFunc(ops, func(o struct{ Name, Definition string }) bool {
				return o.Name == "export" && o.Definition == ig+"/OperationDefinition/"+def
			})
		}
		if !has(cs.Rest[0].Operation, "export") {
			t.Errorf("rest.operation has no export: %v", cs.Rest[0].Operation)
		}
		for _, res := range cs.Rest[0].Resource {
			switch {
			case res.Type == "Patient" && !has(res.Operation, "patient-export"):
				t.Errorf("Patient operations have no patient-export: %v", res.Operation)
			case res.Type == "Group" && !has(res.Operation, "group-export"):
				t.Errorf("Group operations have no group-export: %v", res.Operation)
			}
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
