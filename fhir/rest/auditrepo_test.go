package rest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/fhirgate/fhirgate/audit"
)

// The audit record repository (auditrepo.go, docs/audit.md): system
// clients record AuditEvents of their own; they are kept apart from the
// gateway's trail, logged, searchable by those the access table allows,
// and never changed.

// recordedID returns the id of the event a 201 answer created.
func recordedID(t *testing.T, res *fasthttp.Response) string {
	t.Helper()
	if res.StatusCode() != 201 {
		t.Fatalf("record: %d %s", res.StatusCode(), res.Body())
	}
	loc := string(res.Header.Peek("Location"))
	id, ok := strings.CutPrefix(loc, "http://test/fhir/AuditEvent/")
	id, _, _ = strings.Cut(id, "/")
	if !ok || !strings.HasPrefix(id, audit.RecordedPrefix) {
		t.Fatalf("Location %q: not a recorded event", loc)
	}
	return id
}

// eventAbout is an EHR's AuditEvent: a user of the EHR read patient's
// record.
func eventAbout(patient string) string {
	return `{"resourceType":"AuditEvent","type":{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest"},` +
		`"subtype":[{"system":"http://hl7.org/fhir/restful-interaction","code":"read"}],"action":"R","recorded":"2026-03-01T10:00:00Z","outcome":"0",` +
		`"agent":[{"who":{"identifier":{"system":"urn:ehr:users","value":"nurse-7"}},"requestor":true,"name":"Nurse Seven"}],` +
		`"source":{"site":"Ward 3","observer":{"display":"EHR audit source"}},` +
		`"entity":[{"what":{"reference":"` + patient + `"},"role":{"system":"http://terminology.hl7.org/CodeSystem/object-role","code":"1"}}]}`
}

// TestRecordedAuditEventsByRole: who may record, read, search, change and
// delete a recorded event, per the access table; and the same refusal of
// changes for the gateway's own events.
func TestRecordedAuditEventsByRole(t *testing.T) {
	w := newAccessWorld(t)
	id := recordedID(t, w.do("system", "POST", "/fhir/AuditEvent", eventAbout(w.patient)))
	otherID := recordedID(t, w.do("other system", "POST", "/fhir/AuditEvent", eventAbout(w.other)))
	// A gateway event: the trail's record of the first POST.
	trail := auditEvents(t, w.s, "entity=AuditEvent/"+id)
	if len(trail) != 1 || !strings.HasPrefix(trail[0]["id"].(string), "ae-") || trail[0]["action"] != "C" {
		t.Fatalf("the gateway's trail of the POST: %v", trail)
	}
	gwID := trail[0]["id"].(string)

	roles := []string{"", "patient", "other patient", "doctor", "system", "other system", "admin", "regulator"}
	post := map[string]int{"": 401, "patient": 403, "other patient": 403, "doctor": 403, "system": 201, "other system": 201, "admin": 403, "regulator": 403}
	read := map[string]int{"": 401, "patient": 200, "other patient": 404, "doctor": 404, "system": 200, "other system": 404, "admin": 200, "regulator": 200}
	// seen: which of the two recorded events each role finds by search.
	seen := map[string][]string{"patient": {id}, "other patient": {otherID}, "system": {id}, "other system": {otherID}, "admin": {id, otherID}, "regulator": {id, otherID}}
	for _, who := range roles {
		name := who
		if name == "" {
			name = "anonymous"
		}
		t.Run(name, func(t *testing.T) {
			res := w.do(who, "POST", "/fhir/AuditEvent", eventAbout(w.patient))
			w.status(post[who], res, name+" records an event")
			if res.StatusCode() >= 400 && !bytes.Contains(res.Body(), []byte("OperationOutcome")) {
				t.Errorf("refusal without an OperationOutcome: %s", res.Body())
			}
			w.status(read[who], w.do(who, "GET", "/fhir/AuditEvent/"+id, ""), name+" reads the recorded event")
			w.status(read[who], w.do(who, "GET", "/fhir/AuditEvent/"+id+"/_history/1", ""), name+" vreads the recorded event")
			if who != "" {
				got := w.searchIDs(who, "/fhir/AuditEvent?_tag=urn:fhirgate:audit|recorded&_id="+id+","+otherID)
				var want []string
				for _, x := range seen[who] {
					want = append(want, "AuditEvent/"+x)
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s searches the recorded events: %v, want %v", name, got, want)
				}
			}
			// Nobody changes or deletes an event: the gateway's own or a
			// recorded one, existing or not.
			for _, target := range []string{id, gwID, "ar-0000000000000001"} {
				body := strings.Replace(eventAbout(w.patient), `{"resourceType":"AuditEvent",`, `{"resourceType":"AuditEvent","id":"`+target+`",`, 1)
				want := 405
				if who == "" {
					want = 401
				}
				for _, m := range []struct{ method, body string }{
					{"PUT", body}, {"PATCH", `[{"op":"replace","path":"/outcome","value":"8"}]`}, {"DELETE", ""},
				} {
					res := w.do(who, m.method, "/fhir/AuditEvent/"+target, m.body)
					w.status(want, res, name+" "+m.method+" AuditEvent/"+target)
					if want == 405 && (!bytes.Contains(res.Body(), []byte(`"not-supported"`)) || len(res.Header.Peek("Allow")) == 0) {
						t.Errorf("%s %s: no Allow header or outcome: %s", name, m.method, res.Body())
					}
				}
			}
			w.status(map[bool]int{true: 401, false: 405}[who == ""], w.do(who, "DELETE", "/fhir/AuditEvent?_id="+id, ""), name+" deletes conditionally")
		})
	}
	// Nothing changed.
	res := w.do("admin", "GET", "/fhir/AuditEvent/"+id, "")
	if string(res.Header.Peek("ETag")) != `W/"1"` || !bytes.Contains(res.Body(), []byte(`"outcome":"0"`)) {
		t.Fatalf("the recorded event changed: %s", res.Body())
	}
}

// TestRecordedAuditEventsExamples: the nine HL7 R4 AuditEvent examples
// are recorded (201) and read back as posted but for id and meta; each is
// a leaf of the log holding the served bytes' hash; they are found by the
// standard search parameters, next to the gateway's own events.
func TestRecordedAuditEventsExamples(t *testing.T) {
	files := auditExamples(t)
	w := newAccessWorld(t)
	ctx := context.Background()
	ids := map[string]string{} // example id -> recorded id
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		id := recordedID(t, w.do("system", "POST", "/fhir/AuditEvent", string(body)))
		res := w.do("system", "GET", "/fhir/AuditEvent/"+id, "")
		if res.StatusCode() != 200 {
			t.Fatalf("read %s: %d %s", id, res.StatusCode(), res.Body())
		}
		orig, got := withoutIDMeta(t, body), withoutIDMeta(t, res.Body())
		if !reflect.DeepEqual(orig, got) {
			t.Fatalf("%s read back differs:\n%s\n%s", filepath.Base(f), mustMarshal(orig), mustMarshal(got))
		}
		var meta struct {
			Meta struct {
				VersionID string `json:"versionId"`
				Tag       []struct{ System, Code string }
			}
		}
		json.Unmarshal(res.Body(), &meta)
		if meta.Meta.VersionID != "1" || len(meta.Meta.Tag) == 0 || meta.Meta.Tag[len(meta.Meta.Tag)-1].Code != audit.OriginRecorded {
			t.Fatalf("%s: meta %+v", id, meta.Meta)
		}
		// Its leaf holds the hash of the bytes served.
		i, err := w.s.store.LeafIndex(ctx, "AuditEvent", id, 1)
		if err != nil {
			t.Fatalf("leaf of %s: %v", id, err)
		}
		var data string
		w.s.store.Leaves(ctx, i, func(_ uint64, d []byte) bool { data = string(d); return false })
		sum := sha256.Sum256(res.Body())
		if lines := strings.Split(data, "\n"); len(lines) != 4 || lines[1] != "AuditEvent/"+id+"/_history/1" || lines[3] != hex.EncodeToString(sum[:]) {
			t.Fatalf("leaf of %s: %q", id, data)
		}
		var ex struct{ ID string }
		json.Unmarshal(body, &ex)
		ids[ex.ID] = "AuditEvent/" + id
	}
	// The standard parameters, as the regulator searches.
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"date=2013-06-20", []string{"example-login", "example-rest", "example-logout"}},
		{"date=ge2015-08-22&date=lt2015-08-27", []string{"example-search", "example-pixQuery"}},
		{"action=R", []string{"example-disclosure", "example-media", "example-rest"}},
		{"outcome=8", []string{"example-error"}},
		{"type=http://dicom.nema.org/resources/ontology/DCM|110114", []string{"example-login", "example-logout"}},
		{"subtype=vread", []string{"example-rest"}},
		{"site=Cloud", []string{"example-error", "example-login", "example-logout", "example-rest", "example-search"}},
		{"address=127.0.0.1", []string{"example-login", "example-logout", "example"}},
		{"policy=http://consent.com/yes", []string{"example-disclosure"}},
		{"altid=notMe", []string{"example-disclosure"}},
		{"agent-name=Grahame", []string{"example-error", "example-login", "example-logout", "example-media", "example-pixQuery", "example-rest", "example-search"}},
		{"agent-role:text=service user", []string{"example"}},
		{"agent=Practitioner/example", []string{"example-disclosure"}},
		{"entity=Patient/example", []string{"example-disclosure", "example-rest"}},
		{"patient=example", []string{"example-disclosure", "example-rest"}},
		{"entity-type=OperationOutcome", []string{"example-error"}},
		{"entity-role=24", []string{"example-pixQuery", "example-search"}},
	} {
		got := w.searchIDs("regulator", "/fhir/AuditEvent?_tag=urn:fhirgate:audit|recorded&_count=100&"+tc.query)
		var want []string
		for _, x := range tc.want {
			want = append(want, ids[x])
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", tc.query, got, want)
		}
	}
	// One search returns both kinds, told apart by the tag.
	all := w.searchIDs("regulator", "/fhir/AuditEvent?_count=1000&_sort=-date")
	own := w.searchIDs("regulator", "/fhir/AuditEvent?_count=1000&_tag:not=urn:fhirgate:audit|recorded")
	recorded := 0
	for _, ref := range all {
		switch {
		case strings.HasPrefix(ref, "AuditEvent/"+audit.RecordedPrefix):
			recorded++
		case !slices.Contains(own, ref): // own ran later: it holds more
			t.Errorf("%s is not found without the recorded tag", ref)
		}
	}
	if recorded != len(files) || recorded == len(all) {
		t.Fatalf("%d events, %d recorded, want %d and the gateway's", len(all), recorded, len(files))
	}
	for _, ref := range own {
		if !strings.HasPrefix(ref, "AuditEvent/ae-") {
			t.Fatalf("_tag:not found %s", ref)
		}
	}
}

// TestRecordedAuditEventPosingAsGateway: an event naming the gateway as
// its observer or as an agent is refused with an outcome pointing at the
// element, and nothing is stored.
func TestRecordedAuditEventPosingAsGateway(t *testing.T) {
	w := newAccessWorld(t)
	base := eventAbout(w.patient)
	for name, body := range map[string]string{
		"observer display":    strings.Replace(base, `"observer":{"display":"EHR audit source"}`, `"observer":{"display":"fhirgate"}`, 1),
		"observer identifier": strings.Replace(base, `"observer":{"display":"EHR audit source"}`, `"observer":{"identifier":{"system":"urn:fhirgate:principal","value":"FHIRGATE"}}`, 1),
		"observer reference":  strings.Replace(base, `"observer":{"display":"EHR audit source"}`, `"observer":{"reference":"Device/fhirgate"}`, 1),
		"agent":               strings.Replace(base, `"agent":[`, `"agent":[{"who":{"display":"fhirgate"},"requestor":false},`, 1),
	} {
		res := w.do("system", "POST", "/fhir/AuditEvent", body)
		if res.StatusCode() != 422 || !bytes.Contains(res.Body(), []byte(`"business-rule"`)) || !bytes.Contains(res.Body(), []byte(`AuditEvent.`)) {
			t.Errorf("%s: %d %s", name, res.StatusCode(), res.Body())
		}
	}
	if got := w.searchIDs("admin", "/fhir/AuditEvent?_tag=urn:fhirgate:audit|recorded"); len(got) != 0 {
		t.Fatalf("refused events stored: %v", got)
	}
	// Invalid events are refused by the parser, like any resource.
	res := w.do("system", "POST", "/fhir/AuditEvent", `{"resourceType":"AuditEvent","recorded":"yesterday"}`)
	if res.StatusCode() != 400 && res.StatusCode() != 422 {
		t.Fatalf("an invalid event: %d %s", res.StatusCode(), res.Body())
	}
}

// auditExamples returns the nine HL7 R4 AuditEvent examples of the shared
// corpus (read in place, never copied into the repo).
func auditExamples(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "corpus", "examples", "AuditEvent")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		if os.Getenv("FHIRGATE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("the AuditEvent examples are missing at %s", dir)
		}
		t.Skipf("SKIPPED: the shared corpus's AuditEvent examples are not at %s", dir)
	}
	if len(files) != 9 {
		t.Fatalf("%d AuditEvent examples, want the nine of R4", len(files))
	}
	return files
}

func withoutIDMeta(t *testing.T, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	delete(m, "id")
	delete(m, "meta")
	return m
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestRecordedAuditEventsInBundles: a batch records an AuditEvent entry
// as a POST would; a transaction refuses it (docs/audit.md §7: an event is
// a commit of its own, which cannot join the transaction's).
func TestRecordedAuditEventsInBundles(t *testing.T) {
	w := newAccessWorld(t)
	ev := eventAbout(w.patient)
	for _, kind := range []string{"batch", "transaction"} {
		res := w.do("system", "POST", "/fhir", `{"resourceType":"Bundle","type":"`+kind+`","entry":[{"resource":`+ev+`,"request":{"method":"POST","url":"AuditEvent"}}]}`)
		body := string(res.Body())
		switch kind {
		case "batch":
			if res.StatusCode() != 200 || !strings.Contains(body, `"status":"201 Created"`) || !strings.Contains(body, `"location":"AuditEvent/ar-`) {
				t.Errorf("batch: %d %s", res.StatusCode(), body)
			}
		default:
			if res.StatusCode() != 403 || !strings.Contains(body, "OperationOutcome") {
				t.Errorf("transaction: %d %s", res.StatusCode(), body)
			}
			t.Logf("transaction: %d %s", res.StatusCode(), body)
		}
	}
	if got := w.searchIDs("admin", "/fhir/AuditEvent?_tag=urn:fhirgate:audit|recorded"); len(got) != 1 {
		t.Fatalf("events stored from bundles: %v, want the batch's", got)
	}
}
