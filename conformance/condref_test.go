package conformance

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
)

// Conditional references (http.html#trules, "Transaction Processing
// Rules"): a reference "Type?criteria" inside a transaction is replaced by
// the literal reference of the one resource the criteria match, before
// the entry is stored; no match or several fail the transaction. Synthea
// writes its practitioners and hospitals this way, with identifier
// systems that hold "://".

const npiSystem = "http://hl7.org/fhir/sid/us-npi"

func npiValue() string { return fmt.Sprintf("%010d", rand.Uint64N(1e10)) }

func encounterJSON(practitioner, organization string) string {
	return `{"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},` +
		`"participant":[{"individual":{"reference":"` + practitioner + `"}}],"serviceProvider":{"reference":"` + organization + `"}}`
}

// entryAt returns entry i of a Bundle answer.
func entryAt(t *testing.T, r *Response, i int) map[string]any {
	t.Helper()
	entries, _ := r.JSON()["entry"].([]any)
	if len(entries) <= i {
		t.Fatalf("%d entries, want more than %d: %.500s", len(entries), i, r.Body)
	}
	return entries[i].(map[string]any)
}

func entryStatus(t *testing.T, r *Response, i int) (string, string) {
	t.Helper()
	resp := entryAt(t, r, i)["response"].(map[string]any)
	loc, _ := resp["location"].(string)
	loc, _, _ = strings.Cut(loc, "/_history")
	return resp["status"].(string), loc
}

func TestConditionalReferences(t *testing.T) {
	orgID := unique("org")
	org := createResource(t, "Organization", `{"resourceType":"Organization","identifier":[{"system":"https://github.com/synthetichealth/synthea","value":"`+orgID+`"}],"name":"General Hospital"}`)
	orgRef := "Organization?identifier=https://github.com/synthetichealth/synthea|" + orgID

	spec(t, "http.html#trules: conditional references resolve to the matching resource, also one the same transaction creates", func(t *testing.T) {
		npi := npiValue()
		r := do(t, srv.full, "POST", "", bundle("transaction",
			`{"fullUrl":"urn:uuid:`+newUUID()+`","resource":`+encounterJSON("Practitioner?identifier="+npiSystem+"|"+npi, orgRef)+`,"request":{"method":"POST","url":"Encounter"}}`,
			`{"fullUrl":"urn:uuid:`+newUUID()+`","resource":{"resourceType":"Practitioner","identifier":[{"system":"`+npiSystem+`","value":"`+npi+`"}],"name":[{"family":"Lind"}]},"request":{"method":"POST","url":"Practitioner","ifNoneExist":"identifier=`+npiSystem+`|`+npi+`"}}`,
		))
		wantStatus(t, r, 200)
		status, enc := entryStatus(t, r, 0)
		_, prac := entryStatus(t, r, 1)
		if !strings.HasPrefix(status, "201") || !strings.HasPrefix(prac, "Practitioner/") {
			t.Fatalf("entries: %s %s / %s", status, enc, prac)
		}
		got := do(t, srv.full, "GET", enc, nil)
		wantStatus(t, got, 200)
		body := string(got.Body)
		if strings.Contains(body, `?identifier`) {
			t.Fatalf("a conditional reference was stored as sent: %s", body)
		}
		for _, want := range []string{`"individual":{"reference":"` + prac + `"}`, `"serviceProvider":{"reference":"Organization/` + org + `"}`} {
			if !strings.Contains(body, want) {
				t.Errorf("stored Encounter lacks %s: %s", want, body)
			}
		}
		// The literal reference is what search finds.
		s := do(t, srv.full, "GET", "Encounter?practitioner="+url.QueryEscape(prac), nil)
		wantStatus(t, s, 200)
		if !strings.Contains(string(s.Body), `"id":"`+strings.TrimPrefix(enc, "Encounter/")+`"`) {
			t.Errorf("Encounter?practitioner=%s does not find %s: %.500s", prac, enc, s.Body)
		}
	})

	spec(t, "http.html#trules: a conditional reference matching nothing fails the whole transaction, naming the entry", func(t *testing.T) {
		other := unique("org-never")
		full := "urn:uuid:" + newUUID()
		r := do(t, srv.full, "POST", "", bundle("transaction",
			`{"resource":{"resourceType":"Organization","identifier":[{"system":"urn:fhirgate:conformance","value":"`+other+`"}]},"request":{"method":"POST","url":"Organization"}}`,
			`{"fullUrl":"`+full+`","resource":`+encounterJSON("Practitioner?identifier="+npiSystem+"|"+npiValue(), orgRef)+`,"request":{"method":"POST","url":"Encounter"}}`,
		))
		if r.Status < 400 || r.Status >= 500 {
			t.Fatalf("status %d, want 4xx: %.300s", r.Status, r.Body)
		}
		is, err := r.OutcomeIssue()
		if err != nil {
			t.Fatal(err)
		}
		if where := fmt.Sprint(is["expression"], is["diagnostics"]); !strings.Contains(where, "Bundle.entry[1]") && !strings.Contains(where, full) {
			t.Errorf("the issue does not name the entry (Bundle.entry[1] or %s): %v", full, is)
		}
		s := do(t, srv.full, "GET", "Organization?identifier="+url.QueryEscape("urn:fhirgate:conformance|"+other), nil)
		if strings.Contains(string(s.Body), `"mode":"match"`) {
			t.Fatalf("the failed transaction stored its Organization: %.300s", s.Body)
		}
	})

	spec(t, "http.html#trules: a conditional reference matching several resources fails the transaction", func(t *testing.T) {
		npi := npiValue()
		for range 2 {
			createResource(t, "Practitioner", `{"resourceType":"Practitioner","identifier":[{"system":"`+npiSystem+`","value":"`+npi+`"}]}`)
		}
		r := do(t, srv.full, "POST", "", bundle("transaction",
			`{"resource":`+encounterJSON("Practitioner?identifier="+npiSystem+"|"+npi, orgRef)+`,"request":{"method":"POST","url":"Encounter"}}`,
		))
		if r.Status < 400 || r.Status >= 500 {
			t.Fatalf("status %d, want 4xx (412 on this server): %.300s", r.Status, r.Body)
		}
		if _, err := r.OutcomeIssue(); err != nil {
			t.Fatal(err)
		}
	})

	spec(t, "http.html#trules: in a batch, an entry whose conditional reference matches nothing fails alone", func(t *testing.T) {
		r := do(t, srv.full, "POST", "", bundle("batch",
			`{"resource":`+encounterJSON("Practitioner?identifier="+npiSystem+"|"+npiValue(), orgRef)+`,"request":{"method":"POST","url":"Encounter"}}`,
			`{"resource":{"resourceType":"Encounter","status":"planned","class":{"code":"AMB"},"serviceProvider":{"reference":"`+orgRef+`"}},"request":{"method":"POST","url":"Encounter"}}`,
		))
		wantStatus(t, r, 200)
		bad, _ := entryStatus(t, r, 0)
		good, loc := entryStatus(t, r, 1)
		if !strings.HasPrefix(bad, "4") || !strings.HasPrefix(good, "201") {
			t.Fatalf("statuses %s, %s; want 4xx, 201", bad, good)
		}
		got := do(t, srv.full, "GET", loc, nil)
		if !strings.Contains(string(got.Body), `"serviceProvider":{"reference":"Organization/`+org+`"}`) {
			t.Errorf("the batch entry's reference was not resolved: %s", got.Body)
		}
	})
}

func TestIncludeCommaJoined(t *testing.T) {
	spec(t, "search.html#revinclude: comma-joined _revinclude values are refused with advice to repeat the parameter, or served as repeated", func(t *testing.T) {
		p := createPatient(t, "Joined", unique("joined"))
		r := do(t, srv.full, "GET", "Patient?_id="+p+"&_revinclude=Appointment:patient,DiagnosticReport:subject", nil)
		if r.Status == 200 {
			return // a server that takes the list as two parameters
		}
		is := wantOutcome(t, r, 400, "")
		d := fmt.Sprint(is["diagnostics"])
		if strings.Contains(d, "target type") || !strings.Contains(d, "repeat") {
			t.Errorf("the message does not tell to repeat _revinclude: %q", d)
		}
	})
	spec(t, "search.html#include: comma-joined _include values get the same advice", func(t *testing.T) {
		r := do(t, srv.full, "GET", "Observation?_include=Observation:subject,Observation:performer", nil)
		if r.Status == 200 {
			return
		}
		is := wantOutcome(t, r, 400, "")
		if d := fmt.Sprint(is["diagnostics"]); !strings.Contains(d, "repeat") {
			t.Errorf("the message does not tell to repeat _include: %q", d)
		}
	})
}

// createResource creates a resource and returns its id.
func createResource(t *testing.T, typ, body string) string {
	t.Helper()
	r := do(t, srv.full, "POST", typ, []byte(body))
	wantStatus(t, r, 201)
	id, _ := r.JSON()["id"].(string)
	if id == "" {
		t.Fatalf("created %s has no id: %s", typ, r.Body)
	}
	return id
}

func newUUID() string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rand.Uint32(), rand.Uint32()&0xffff, rand.Uint32()&0xfff, rand.Uint32()&0xfff, rand.Uint64()&0xffffffffffff)
}
