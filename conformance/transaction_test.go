package conformance

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func bundle(typ string, entries ...string) []byte {
	return []byte(`{"resourceType":"Bundle","type":"` + typ + `","entry":[` + strings.Join(entries, ",") + `]}`)
}

func countIdentifier(t *testing.T, system, value string) int {
	t.Helper()
	r := do(t, srv.full, "GET", "Patient?identifier="+url.QueryEscape(system+"|"+value)+"&_total=accurate", nil)
	wantStatus(t, r, 200)
	n, _ := r.JSON()["total"].(float64)
	return int(n)
}

func TestTransaction(t *testing.T) {
	ident := unique("tx")
	spec(t, "http.html#transaction: entries resolve urn:uuid references; the response lists entries in request order", func(t *testing.T) {
		r := do(t, srv.full, "POST", "", bundle("transaction",
			`{"request":{"method":"GET","url":"Patient?identifier=urn:fhirgate:conformance|`+ident+`"}}`,
			`{"fullUrl":"urn:uuid:3f1c6f7e-0a7b-4e52-9a4e-6a4a2b2d7f01","resource":{"resourceType":"Observation","status":"final","code":{"text":"hr"},"subject":{"reference":"urn:uuid:3f1c6f7e-0a7b-4e52-9a4e-6a4a2b2d7f00"}},"request":{"method":"POST","url":"Observation"}}`,
			`{"fullUrl":"urn:uuid:3f1c6f7e-0a7b-4e52-9a4e-6a4a2b2d7f00","resource":`+string(patientJSON("Tx", ident))+`,"request":{"method":"POST","url":"Patient"}}`,
		))
		wantStatus(t, r, 200)
		b := r.JSON()
		if b["type"] != "transaction-response" {
			t.Fatalf("type %v", b["type"])
		}
		entries := b["entry"].([]any)
		if len(entries) != 3 {
			t.Fatalf("%d entries", len(entries))
		}
		status := func(i int) string { return entries[i].(map[string]any)["response"].(map[string]any)["status"].(string) }
		if !strings.HasPrefix(status(1), "201") || !strings.HasPrefix(status(2), "201") || !strings.HasPrefix(status(0), "200") {
			t.Fatalf("statuses %s %s %s", status(0), status(1), status(2))
		}
		// The GET ran after the writes (DELETE, POST, PUT, then GET): it
		// finds the Patient the same transaction created.
		found := entries[0].(map[string]any)["resource"].(map[string]any)
		if found["total"] != float64(1) {
			t.Fatalf("the GET did not see the POSTed patient: %v", found)
		}
		loc := entries[2].(map[string]any)["response"].(map[string]any)["location"].(string)
		patientID := strings.Split(loc, "/")[1]
		obsLoc := entries[1].(map[string]any)["response"].(map[string]any)["location"].(string)
		obs := do(t, srv.full, "GET", strings.Split(obsLoc, "/_history")[0], nil)
		if !bytes.Contains(obs.Body, []byte(`"reference":"Patient/`+patientID+`"`)) {
			t.Fatalf("reference not rewritten: %s", obs.Body)
		}
	})
	spec(t, "http.html#transaction: conditional references and ifNoneExist resolve against existing resources", func(t *testing.T) {
		r := do(t, srv.full, "POST", "", bundle("transaction",
			`{"resource":`+string(patientJSON("Tx", ident))+`,"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:fhirgate:conformance|`+ident+`"}}`,
			`{"resource":{"resourceType":"Observation","status":"final","code":{"text":"bp"},"subject":{"reference":"Patient?identifier=urn:fhirgate:conformance|`+ident+`"}},"request":{"method":"POST","url":"Observation"}}`,
		))
		wantStatus(t, r, 200)
		entries := r.JSON()["entry"].([]any)
		if s := entries[0].(map[string]any)["response"].(map[string]any)["status"]; !strings.HasPrefix(s.(string), "200") {
			t.Fatalf("ifNoneExist created again: %v", s)
		}
		if n := countIdentifier(t, "urn:fhirgate:conformance", ident); n != 1 {
			t.Fatalf("%d patients", n)
		}
	})
	spec(t, "http.html#transaction: a failing entry fails the whole transaction and nothing persists", func(t *testing.T) {
		other, pid := unique("tx-fail"), unique("p")
		r := do(t, srv.full, "POST", "", bundle("transaction",
			`{"resource":`+string(patientJSON("Fail", other))+`,"request":{"method":"POST","url":"Patient"}}`,
			`{"resource":{"resourceType":"Patient","id":"`+pid+`","name":[{"family":"Y"}]},"request":{"method":"PUT","url":"Patient/`+pid+`","ifMatch":"W/\"7\""}}`,
		))
		is := wantOutcome(t, r, 412, "")
		if !strings.Contains(fmt.Sprint(is["expression"]), "Bundle.entry[1]") {
			t.Errorf("the issue does not point at the failing entry: %v", is)
		}
		if n := countIdentifier(t, "urn:fhirgate:conformance", other); n != 0 {
			t.Fatalf("%d patients persisted from a failed transaction", n)
		}
	})
	spec(t, "http.html#transaction: the official example cannot succeed on this server and leaves no trace", func(t *testing.T) {
		path := filepath.Join("..", "..", "shared", "corpus", "examples", "Bundle", "Bundle-bundle-transaction.json")
		body, err := os.ReadFile(path)
		if err != nil {
			t.Skipf("SKIPPED: %v", err)
		}
		r := do(t, srv.full, "POST", "", body)
		if r.Status < 400 || r.Status >= 500 {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		if _, err := r.OutcomeIssue(); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"234234", "456456"} {
			if n := countIdentifier(t, "http:/example.org/fhir/ids", id); n != 0 {
				t.Fatalf("identifier %s: %d patients persisted", id, n)
			}
		}
		if r := do(t, srv.full, "GET", "Patient/123", nil); r.Status == 200 && bytes.Contains(r.Body, []byte("example.org")) {
			t.Fatal("Patient/123 from the example persisted")
		}
	})
	spec(t, "http.html#transaction: the same resource twice in one transaction is 400", func(t *testing.T) {
		id := unique("dup")
		body := `{"resourceType":"Patient","id":"` + id + `"}`
		r := do(t, srv.full, "POST", "", bundle("transaction",
			`{"resource":`+body+`,"request":{"method":"PUT","url":"Patient/`+id+`"}}`,
			`{"resource":`+body+`,"request":{"method":"PUT","url":"Patient/`+id+`"}}`,
		))
		wantOutcome(t, r, 400, "")
	})
	spec(t, "http.html#transaction: DELETE, PUT and PATCH entries", func(t *testing.T) {
		a := createPatient(t, "A", unique("a"))
		b := createPatient(t, "B", unique("b"))
		patch := `[{"op":"replace","path":"/name/0/family","value":"Patched"}]`
		r := do(t, srv.full, "POST", "", bundle("transaction",
			`{"request":{"method":"DELETE","url":"Patient/`+a+`"}}`,
			`{"resource":{"resourceType":"Patient","id":"`+b+`","name":[{"family":"Put"}]},"request":{"method":"PUT","url":"Patient/`+b+`","ifMatch":"W/\"1\""}}`,
		))
		wantStatus(t, r, 200)
		wantStatus(t, do(t, srv.full, "GET", "Patient/"+a, nil), 410)
		r = do(t, srv.full, "POST", "", bundle("transaction",
			`{"resource":{"resourceType":"Binary","contentType":"application/json-patch+json","data":"`+b64(patch)+`"},"request":{"method":"PATCH","url":"Patient/`+b+`"}}`,
		))
		wantStatus(t, r, 200)
		got := do(t, srv.full, "GET", "Patient/"+b, nil)
		if !bytes.Contains(got.Body, []byte("Patched")) {
			t.Fatalf("patch not applied: %s", got.Body)
		}
	})
	spec(t, "http.html#transaction: a transaction of 1,000 entries works; one of 1,001 is refused whole (docs/limits.md)", func(t *testing.T) {
		big := unique("big")
		var entries []string
		for i := 0; i < 1001; i++ {
			entries = append(entries, fmt.Sprintf(`{"fullUrl":"urn:uuid:00000000-0000-4000-8000-%012d","resource":{"resourceType":"Patient","identifier":[{"system":"urn:fhirgate:big","value":%q}],"name":[{"family":"Big%d"}]},"request":{"method":"POST","url":"Patient"}}`, i, big, i))
		}
		wantOutcome(t, do(t, srv.full, "POST", "", bundle("transaction", entries...)), 400, "too-costly")
		if n := countIdentifier(t, "urn:fhirgate:big", big); n != 0 {
			t.Fatalf("%d patients stored by a refused transaction", n)
		}
		r := do(t, srv.full, "POST", "", bundle("transaction", entries[:1000]...))
		wantStatus(t, r, 200)
		if n := len(r.JSON()["entry"].([]any)); n != 1000 {
			t.Fatalf("%d response entries", n)
		}
		if n := countIdentifier(t, "urn:fhirgate:big", big); n != 1000 {
			t.Fatalf("%d patients stored", n)
		}
	})
}

func TestBatch(t *testing.T) {
	spec(t, "http.html#transaction: batch entries succeed or fail independently", func(t *testing.T) {
		ident := unique("batch")
		r := do(t, srv.full, "POST", "", bundle("batch",
			`{"resource":`+string(patientJSON("Batch", ident))+`,"request":{"method":"POST","url":"Patient"}}`,
			`{"request":{"method":"GET","url":"Patient/`+unique("missing")+`"}}`,
			`{"resource":{"resourceType":"Patient","name":[{"family":"X"}],"gender":"robot"},"request":{"method":"POST","url":"Patient"}}`,
		))
		wantStatus(t, r, 200)
		b := r.JSON()
		if b["type"] != "batch-response" {
			t.Fatalf("type %v", b["type"])
		}
		var statuses []string
		for _, e := range b["entry"].([]any) {
			resp := e.(map[string]any)["response"].(map[string]any)
			statuses = append(statuses, strings.Fields(resp["status"].(string))[0])
			if strings.HasPrefix(resp["status"].(string), "4") && resp["outcome"] == nil {
				t.Errorf("failed entry without an outcome: %v", resp)
			}
		}
		if strings.Join(statuses, ",") != "201,404,400" {
			t.Fatalf("statuses %v", statuses)
		}
		if n := countIdentifier(t, "urn:fhirgate:conformance", ident); n != 1 {
			t.Fatalf("%d patients", n)
		}
	})
	spec(t, "http.html#transaction: a Bundle of another type is 400", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "POST", "", bundle("collection")), 400, "")
		wantOutcome(t, do(t, srv.full, "POST", "", patientJSON("Not", "a-bundle")), 400, "")
	})
}
