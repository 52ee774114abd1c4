package conformance

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCapabilities(t *testing.T) {
	spec(t, "http.html#capabilities: metadata without a token returns a CapabilityStatement", func(t *testing.T) {
		r := do(t, srv.anon, "GET", "metadata", nil)
		wantStatus(t, r, 200)
		m := r.JSON()
		if m["resourceType"] != "CapabilityStatement" || m["fhirVersion"] != "4.0.1" || m["kind"] != "instance" {
			t.Fatalf("not an R4 instance CapabilityStatement: %.300s", r.Body)
		}
		rest := m["rest"].([]any)[0].(map[string]any)
		found := false
		for _, res := range rest["resource"].([]any) {
			res := res.(map[string]any)
			if res["type"] == "Patient" {
				found = true
				var codes []string
				for _, in := range res["interaction"].([]any) {
					codes = append(codes, in.(map[string]any)["code"].(string))
				}
				for _, want := range []string{"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create"} {
					if !strings.Contains(strings.Join(codes, " "), want) {
						t.Errorf("Patient lacks interaction %s", want)
					}
				}
			}
			if res["type"] == "AuditEvent" { // recorded (created), never changed
				var codes []string
				for _, in := range res["interaction"].([]any) {
					codes = append(codes, in.(map[string]any)["code"].(string))
				}
				if got := strings.Join(codes, " "); got != "read vread history-instance history-type create search-type" {
					t.Errorf("AuditEvent interactions = %s, want read, history, create and search only (no update, patch or delete)", got)
				}
			}
		}
		if !found {
			t.Fatal("Patient not listed")
		}
	})
	spec(t, "http.html#general: the base URL works with a trailing slash", func(t *testing.T) {
		wantStatus(t, do(t, srv.anon, "GET", "metadata/", nil), 200)
	})
}

func TestAuthentication(t *testing.T) {
	spec(t, "security: no token is 401 with an OperationOutcome", func(t *testing.T) {
		r := do(t, srv.anon, "GET", "Patient/any", nil)
		wantOutcome(t, r, 401, "login")
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
		}
	})
	spec(t, "security: a forged token is 401", func(t *testing.T) {
		parts := strings.Split(srv.full.Token, ".")
		if len(parts) != 3 {
			t.Skip("token is not a JWT")
		}
		forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
		wantOutcome(t, do(t, NewClient(srv.base, forged), "GET", "Patient/any", nil), 401, "login")
		wantOutcome(t, do(t, NewClient(srv.base, "garbage"), "GET", "Patient/any", nil), 401, "login")
	})
	spec(t, "smart-app-launch scopes: a read-only token may read but not write (403)", func(t *testing.T) {
		if srv.read == nil {
			t.Skip("no -read-token given")
		}
		id := createPatient(t, "Scope", unique("scope"))
		wantStatus(t, do(t, srv.read, "GET", "Patient/"+id, nil), 200)
		wantOutcome(t, do(t, srv.read, "POST", "Patient", patientJSON("X", unique("x"))), 403, "forbidden")
		wantOutcome(t, do(t, srv.read, "DELETE", "Patient/"+id, nil), 403, "forbidden")
	})
}

func TestCreateRead(t *testing.T) {
	var id, loc string
	spec(t, "http.html#create: 201 with Location, ETag and Last-Modified; the server assigns id and meta", func(t *testing.T) {
		body := []byte(`{"resourceType":"Patient","id":"client-chosen","name":[{"family":"Chalmers","given":["Peter","James"]}],"birthDate":"1974-12-25","multipleBirthInteger":2,"extension":[{"url":"http://example.org/weight","valueDecimal":70.50}]}`)
		r := do(t, srv.full, "POST", "Patient", body)
		wantStatus(t, r, 201)
		m := r.JSON()
		id, _ = m["id"].(string)
		if id == "" || id == "client-chosen" {
			t.Fatalf("id %q: the server must assign the id on create", id)
		}
		vid, lu := meta(r)
		if vid != "1" || lu == "" {
			t.Fatalf("meta.versionId %q lastUpdated %q", vid, lu)
		}
		loc = r.Header.Get("Location")
		if !regexp.MustCompile(`/Patient/` + regexp.QuoteMeta(id) + `/_history/1$`).MatchString(loc) {
			t.Errorf("Location %q", loc)
		}
		if r.Header.Get("ETag") != `W/"1"` {
			t.Errorf("ETag %q", r.Header.Get("ETag"))
		}
		if _, err := http.ParseTime(r.Header.Get("Last-Modified")); err != nil {
			t.Errorf("Last-Modified %q", r.Header.Get("Last-Modified"))
		}
		if !bytes.Contains(r.Body, []byte(`70.50`)) {
			t.Errorf("decimal precision lost: %s", r.Body)
		}
	})
	spec(t, "http.html#read: 200 with the resource, ETag and Last-Modified", func(t *testing.T) {
		r := do(t, srv.full, "GET", "Patient/"+id, nil)
		wantStatus(t, r, 200)
		if r.JSON()["id"] != id || r.Header.Get("ETag") != `W/"1"` || r.Header.Get("Last-Modified") == "" {
			t.Fatalf("read: %v %s", r.Header, r.Body)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
			t.Errorf("Content-Type %q", ct)
		}
	})
	spec(t, "http.html#read: the Location of a create can be read (vread)", func(t *testing.T) {
		wantStatus(t, do(t, srv.full, "GET", loc, nil), 200)
	})
	spec(t, "http.html#cread: If-None-Match with the current ETag is 304", func(t *testing.T) {
		wantStatus(t, do(t, srv.full, "GET", "Patient/"+id, nil, "If-None-Match", `W/"1"`), 304)
	})
	spec(t, "http.html#read: an unknown id is 404 with an OperationOutcome", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "GET", "Patient/"+unique("missing"), nil), 404, "not-found")
	})
	spec(t, "http.html#vread: an unknown version is 404", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "GET", "Patient/"+id+"/_history/99", nil), 404, "")
	})
	spec(t, "http.html#general: an unknown resource type is 404", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "GET", "Patientt/1", nil), 404, "")
		wantOutcome(t, do(t, srv.full, "POST", "Patientt", []byte(`{"resourceType":"Patientt"}`)), 404, "")
	})
	spec(t, "http.html#general: the base URL works with a trailing slash", func(t *testing.T) {
		wantStatus(t, do(t, srv.full, "GET", "Patient/"+id+"/", nil), 200)
		wantStatus(t, do(t, srv.full, "POST", "Patient/", patientJSON("Slash", unique("slash"))), 201)
	})
}

func TestMediaTypes(t *testing.T) {
	id := createPatient(t, "Media", unique("media"))
	spec(t, "http.html#mime-type: application/json is accepted as application/fhir+json", func(t *testing.T) {
		r := do(t, srv.full, "POST", "Patient", patientJSON("Json", unique("json")), "Content-Type", "application/json")
		wantStatus(t, r, 201)
		r = do(t, srv.full, "GET", "Patient/"+id, nil, "Accept", "application/json")
		wantStatus(t, r, 200)
	})
	spec(t, "http.html#mime-type: XML is 406 (not acceptable) and 415 (unsupported media type)", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "GET", "Patient/"+id, nil, "Accept", "application/fhir+xml"), 406, "")
		wantOutcome(t, do(t, srv.full, "POST", "Patient", []byte(`<Patient xmlns="http://hl7.org/fhir"/>`), "Content-Type", "application/fhir+xml"), 415, "")
		wantOutcome(t, do(t, srv.full, "POST", "Patient", patientJSON("Text", "t"), "Content-Type", "text/plain"), 415, "")
	})
	spec(t, "http.html#parameters: _format overrides Accept", func(t *testing.T) {
		wantStatus(t, do(t, srv.full, "GET", "Patient/"+id+"?_format=json", nil, "Accept", "application/fhir+xml"), 200)
		wantOutcome(t, do(t, srv.full, "GET", "Patient/"+id+"?_format=xml", nil), 406, "")
	})
}

func TestUpdate(t *testing.T) {
	id := createPatient(t, "Before", unique("upd"))
	upd := func(family string) []byte {
		return []byte(`{"resourceType":"Patient","id":"` + id + `","name":[{"family":"` + family + `"}]}`)
	}
	spec(t, "http.html#update: 200 with the new version's ETag", func(t *testing.T) {
		r := do(t, srv.full, "PUT", "Patient/"+id, upd("After"))
		wantStatus(t, r, 200)
		if vid, _ := meta(r); vid != "2" || r.Header.Get("ETag") != `W/"2"` {
			t.Fatalf("version %q ETag %q", vid, r.Header.Get("ETag"))
		}
		if r := do(t, srv.full, "GET", "Patient/"+id+"/_history/1", nil); !bytes.Contains(r.Body, []byte("Before")) {
			t.Errorf("version 1 changed: %s", r.Body)
		}
	})
	spec(t, "http.html#update: an id in the body that differs from the URL is 400", func(t *testing.T) {
		body := []byte(`{"resourceType":"Patient","id":"other","name":[{"family":"X"}]}`)
		wantOutcome(t, do(t, srv.full, "PUT", "Patient/"+id, body), 400, "")
	})
	spec(t, "http.html#update: a body without id is 400", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "PUT", "Patient/"+id, []byte(`{"resourceType":"Patient"}`)), 400, "")
	})
	spec(t, "http.html#upsert: update of a new id creates it (201, version 1)", func(t *testing.T) {
		nid := unique("client-id")
		r := do(t, srv.full, "PUT", "Patient/"+nid, []byte(`{"resourceType":"Patient","id":"`+nid+`"}`))
		wantStatus(t, r, 201)
		if vid, _ := meta(r); vid != "1" || !strings.HasSuffix(r.Header.Get("Location"), "/Patient/"+nid+"/_history/1") {
			t.Fatalf("version %q Location %q", vid, r.Header.Get("Location"))
		}
	})
	spec(t, "http.html#concurrency: If-Match with a stale version is 412; with the current one it succeeds", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "PUT", "Patient/"+id, upd("Stale"), "If-Match", `W/"1"`), 412, "")
		r := do(t, srv.full, "PUT", "Patient/"+id, upd("Fresh"), "If-Match", `W/"2"`)
		wantStatus(t, r, 200)
		if vid, _ := meta(r); vid != "3" {
			t.Fatalf("version %q", vid)
		}
	})
	spec(t, "http.html#ops: a resource type in the body that differs from the URL is 400", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "PUT", "Patient/"+id, []byte(`{"resourceType":"Practitioner","id":"`+id+`"}`)), 400, "")
	})
}

func TestPrefer(t *testing.T) {
	spec(t, "http.html#ops: Prefer return=minimal has no body", func(t *testing.T) {
		r := do(t, srv.full, "POST", "Patient", patientJSON("Minimal", unique("min")), "Prefer", "return=minimal")
		wantStatus(t, r, 201)
		if len(r.Body) != 0 || r.Header.Get("Location") == "" {
			t.Fatalf("body %q, Location %q", r.Body, r.Header.Get("Location"))
		}
	})
	spec(t, "http.html#ops: Prefer return=OperationOutcome returns an OperationOutcome", func(t *testing.T) {
		r := do(t, srv.full, "POST", "Patient", patientJSON("Outcome", unique("oo")), "Prefer", "return=OperationOutcome")
		wantStatus(t, r, 201)
		if r.JSON()["resourceType"] != "OperationOutcome" {
			t.Fatalf("body %s", r.Body)
		}
	})
	spec(t, "http.html#ops: Prefer return=representation returns the resource", func(t *testing.T) {
		r := do(t, srv.full, "POST", "Patient", patientJSON("Repr", unique("repr")), "Prefer", "return=representation")
		wantStatus(t, r, 201)
		if r.JSON()["resourceType"] != "Patient" {
			t.Fatalf("body %s", r.Body)
		}
	})
}

func TestDelete(t *testing.T) {
	id := createPatient(t, "Doomed", unique("del"))
	spec(t, "http.html#delete: 204, then read is 410 Gone", func(t *testing.T) {
		wantStatus(t, do(t, srv.full, "DELETE", "Patient/"+id, nil), 204)
		wantOutcome(t, do(t, srv.full, "GET", "Patient/"+id, nil), 410, "deleted")
	})
	spec(t, "http.html#delete: earlier versions stay readable", func(t *testing.T) {
		wantStatus(t, do(t, srv.full, "GET", "Patient/"+id+"/_history/1", nil), 200)
		wantOutcome(t, do(t, srv.full, "GET", "Patient/"+id+"/_history/2", nil), 410, "")
	})
	spec(t, "http.html#delete: deleting again, or deleting what never existed, succeeds", func(t *testing.T) {
		wantStatus(t, do(t, srv.full, "DELETE", "Patient/"+id, nil), 204)
		wantStatus(t, do(t, srv.full, "DELETE", "Patient/"+unique("never"), nil), 204)
	})
	spec(t, "http.html#history: the delete is in the history, newest first", func(t *testing.T) {
		r := do(t, srv.full, "GET", "Patient/"+id+"/_history", nil)
		wantStatus(t, r, 200)
		entries := r.JSON()["entry"].([]any)
		if len(entries) != 2 {
			t.Fatalf("%d entries: %s", len(entries), r.Body)
		}
		first := entries[0].(map[string]any)
		if first["request"].(map[string]any)["method"] != "DELETE" || first["resource"] != nil {
			t.Errorf("newest entry is not the delete: %v", first)
		}
	})
	spec(t, "http.html#update: updating a deleted resource brings it back as a new version (201)", func(t *testing.T) {
		r := do(t, srv.full, "PUT", "Patient/"+id, []byte(`{"resourceType":"Patient","id":"`+id+`"}`))
		wantStatus(t, r, 201)
		if vid, _ := meta(r); vid != "3" {
			t.Fatalf("version %q, want 3", vid)
		}
	})
	spec(t, "http.html#delete: If-Match with a stale version is 412", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "DELETE", "Patient/"+id, nil, "If-Match", `W/"1"`), 412, "")
	})
}

func TestHistory(t *testing.T) {
	id := createPatient(t, "H1", unique("hist"))
	start := time.Now().UTC().Add(-time.Second).Format(time.RFC3339)
	for _, f := range []string{"H2", "H3", "H4"} {
		wantStatus(t, do(t, srv.full, "PUT", "Patient/"+id, []byte(`{"resourceType":"Patient","id":"`+id+`","name":[{"family":"`+f+`"}]}`)), 200)
	}
	spec(t, "http.html#history: instance history is a history Bundle, newest first", func(t *testing.T) {
		r := do(t, srv.full, "GET", "Patient/"+id+"/_history", nil)
		wantStatus(t, r, 200)
		b := r.JSON()
		if b["resourceType"] != "Bundle" || b["type"] != "history" {
			t.Fatalf("not a history bundle: %.200s", r.Body)
		}
		var vids []string
		for _, e := range b["entry"].([]any) {
			vids = append(vids, e.(map[string]any)["resource"].(map[string]any)["meta"].(map[string]any)["versionId"].(string))
		}
		if strings.Join(vids, ",") != "4,3,2,1" {
			t.Fatalf("versions %v", vids)
		}
		if b["total"] != float64(4) {
			t.Errorf("total %v", b["total"])
		}
	})
	spec(t, "http.html#history: _count pages through every version with next links", func(t *testing.T) {
		var vids []string
		next := "Patient/" + id + "/_history?_count=3"
		for i := 0; next != ""; i++ {
			if i > 5 {
				t.Fatal("paging does not end")
			}
			r := do(t, srv.full, "GET", next, nil)
			wantStatus(t, r, 200)
			b := r.JSON()
			for _, e := range b["entry"].([]any) {
				vids = append(vids, e.(map[string]any)["resource"].(map[string]any)["meta"].(map[string]any)["versionId"].(string))
			}
			next = ""
			for _, l := range b["link"].([]any) {
				if l := l.(map[string]any); l["relation"] == "next" {
					next = l["url"].(string)
				}
			}
		}
		if strings.Join(vids, ",") != "4,3,2,1" {
			t.Fatalf("versions across pages %v", vids)
		}
	})
	spec(t, "http.html#history: type and system history include the versions; _since filters", func(t *testing.T) {
		for _, path := range []string{"Patient/_history?_since=" + start, "_history?_since=" + start} {
			r := do(t, srv.full, "GET", path+"&_count=1000", nil)
			wantStatus(t, r, 200)
			if n := bytes.Count(r.Body, []byte(`"id":"`+id+`"`)); n != 4 {
				t.Errorf("%s: %d versions of the resource, want 4", path, n)
			}
		}
		r := do(t, srv.full, "GET", "Patient/_history?_since=2999-01-01T00:00:00Z", nil)
		wantStatus(t, r, 200)
		if r.JSON()["entry"] != nil {
			t.Errorf("_since in the future returned entries")
		}
	})
	spec(t, "http.html#history: a malformed _since is 400", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "GET", "Patient/_history?_since=yesterday", nil), 400, "")
	})
}

func TestPatch(t *testing.T) {
	id := createPatient(t, "Patchy", unique("patch"))
	patch := func(ops string, headers ...string) *Response {
		h := append([]string{"Content-Type", "application/json-patch+json"}, headers...)
		return do(t, srv.full, "PATCH", "Patient/"+id, []byte(ops), h...)
	}
	spec(t, "http.html#patch: a JSON Patch makes a new version", func(t *testing.T) {
		r := patch(`[{"op":"replace","path":"/name/0/family","value":"Patched"},{"op":"add","path":"/active","value":true}]`)
		wantStatus(t, r, 200)
		m := r.JSON()
		if vid, _ := meta(r); vid != "2" || m["active"] != true {
			t.Fatalf("patched: %s", r.Body)
		}
	})
	spec(t, "http.html#patch: a failing test operation is 422; a malformed patch is 400", func(t *testing.T) {
		wantOutcome(t, patch(`[{"op":"test","path":"/name/0/family","value":"Nope"}]`), 422, "")
		wantOutcome(t, patch(`{"op":"replace"}`), 400, "")
	})
	spec(t, "http.html#patch: a patch that leaves an invalid resource is refused (422)", func(t *testing.T) {
		wantOutcome(t, patch(`[{"op":"add","path":"/gender","value":"robot"}]`), 422, "")
	})
	spec(t, "http.html#patch: If-Match with a stale version is 412", func(t *testing.T) {
		wantOutcome(t, patch(`[{"op":"add","path":"/active","value":false}]`, "If-Match", `W/"1"`), 412, "")
	})
	spec(t, "http.html#patch: a FHIR body on PATCH is 415 (only JSON Patch is supported)", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "PATCH", "Patient/"+id, []byte(`{"resourceType":"Parameters"}`)), 415, "")
	})
}

func TestMethodNotAllowed(t *testing.T) {
	spec(t, "http.html#general: an interaction the URL does not allow is 405", func(t *testing.T) {
		id := createPatient(t, "Method", unique("m"))
		wantOutcome(t, do(t, srv.full, "POST", "Patient/"+id, patientJSON("X", "y")), 405, "")
		wantOutcome(t, do(t, srv.full, "DELETE", "Patient/"+id+"/_history/1", nil), 405, "")
	})
}
