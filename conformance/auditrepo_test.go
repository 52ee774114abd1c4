package conformance

import (
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestAuditRecordRepository: IHE BALP / ATNA "record audit event" over
// FHIR: a system client POSTs an AuditEvent (an HL7 R4 example), reads it
// back as posted but for id and meta, finds it with the standard search
// parameters, cannot change or delete it, and (on a gateway that serves
// $proof) gets its proof of inclusion once anchored.
func TestAuditRecordRepository(t *testing.T) {
	file := filepath.Join(corpus(t), "examples", "AuditEvent", "AuditEvent-example-rest.json")
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	spec(t, "http.html#create: an AuditEvent is recorded (201, Location) and reads back as posted (IHE BALP record audit event)", func(t *testing.T) {
		r := do(t, srv.full, "POST", "AuditEvent", body)
		wantStatus(t, r, 201)
		loc := r.Header.Get("Location")
		i := strings.Index(loc, "/AuditEvent/")
		if i < 0 {
			t.Fatalf("Location %q", loc)
		}
		id, _, _ = strings.Cut(loc[i+len("/AuditEvent/"):], "/")
		r = do(t, srv.full, "GET", "AuditEvent/"+id, nil)
		wantStatus(t, r, 200)
		orig, err := decodeNumbers(body)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeNumbers(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		if got["id"] != id {
			t.Fatalf("id %v, want %s", got["id"], id)
		}
		for _, m := range []map[string]any{orig, got} {
			delete(m, "id")
			delete(m, "meta")
		}
		if !reflect.DeepEqual(orig, got) {
			t.Fatalf("read back differs:\n%s\n%s", mustJSON(orig), mustJSON(got))
		}
	})
	if id == "" {
		t.Fatal("nothing recorded")
	}
	spec(t, "search.html: the recorded AuditEvent is found by its standard search parameters", func(t *testing.T) {
		for _, q := range []string{"_id=" + id, "date=2013-06-20", "entity=Patient/example", "subtype=vread", "action=R",
			"site=Cloud", "agent-name=Grahame", "altid=601847123", "entity-type=2", "outcome=0"} {
			r := do(t, srv.full, "GET", "AuditEvent?_count=100&_id="+url.QueryEscape(id)+"&"+q, nil)
			wantStatus(t, r, 200)
			if !strings.Contains(string(r.Body), `"id":"`+id+`"`) {
				t.Errorf("AuditEvent?%s does not find %s: %.300s", q, id, r.Body)
			}
		}
		r := do(t, srv.full, "GET", "AuditEvent?_id="+id+"&outcome=8", nil)
		wantStatus(t, r, 200)
		if strings.Contains(string(r.Body), `"id":"`+id+`"`) {
			t.Errorf("outcome=8 finds an event of outcome 0")
		}
	})
	spec(t, "http.html: a recorded AuditEvent is never changed or deleted (4xx with an OperationOutcome)", func(t *testing.T) {
		put := strings.Replace(string(body), `"id": "example-rest"`, `"id": "`+id+`"`, 1)
		for _, m := range []struct {
			method, body, ctype string
		}{{"PUT", put, ""}, {"PATCH", `[{"op":"replace","path":"/outcome","value":"8"}]`, "application/json-patch+json"}, {"DELETE", "", ""}} {
			var headers []string
			if m.ctype != "" {
				headers = []string{"Content-Type", m.ctype}
			}
			var b []byte
			if m.body != "" {
				b = []byte(m.body)
			}
			r := do(t, srv.full, m.method, "AuditEvent/"+id, b, headers...)
			if r.Status != 403 && r.Status != 405 {
				t.Errorf("%s: %d %.300s", m.method, r.Status, r.Body)
			}
			wantOutcome(t, r, r.Status, "")
		}
		r := do(t, srv.full, "GET", "AuditEvent/"+id, nil)
		wantStatus(t, r, 200)
		if vid, _ := meta(r); vid != "1" {
			t.Fatalf("version %s after the refused changes", vid)
		}
	})
	spec(t, "fhirgate $proof: a recorded AuditEvent is a leaf of the log, provable once anchored", func(t *testing.T) {
		start := time.Now()
		for {
			r := do(t, srv.full, "GET", "AuditEvent/"+id+"/_history/1/$proof", nil)
			switch {
			case r.Status == 200:
				p := r.JSON()
				if p["leafIndex"] == nil || p["checkpoint"] == nil {
					t.Fatalf("a proof without leafIndex or checkpoint: %.300s", r.Body)
				}
				return
			case r.Status == 404 || r.Status == 400:
				t.Skipf("SKIPPED: the server does not serve $proof (%d)", r.Status)
			case r.Status != 202 && r.Status != 503 || time.Since(start) > 60*time.Second:
				t.Fatalf("$proof: %d %.300s after %s", r.Status, r.Body, time.Since(start))
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
}
