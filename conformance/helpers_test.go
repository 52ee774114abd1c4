package conformance

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// spec names the specification section a check enforces; it is the test
// name, so failures cite the rule.
func spec(t *testing.T, section string, fn func(t *testing.T)) {
	t.Helper()
	t.Run(section, fn)
}

func do(t *testing.T, c *Client, method, path string, body []byte, headers ...string) *Response {
	t.Helper()
	r, err := c.Do(method, path, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func wantStatus(t *testing.T, r *Response, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d; body: %.300s", r.Status, want, r.Body)
	}
}

// wantOutcome checks an error answer: the status, an OperationOutcome body
// with the FHIR media type, and optionally the issue code.
func wantOutcome(t *testing.T, r *Response, status int, code string) map[string]any {
	t.Helper()
	wantStatus(t, r, status)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") && !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q on an error", ct)
	}
	is, err := r.OutcomeIssue()
	if err != nil {
		t.Fatal(err)
	}
	if code != "" && is["code"] != code {
		t.Errorf("issue code %v, want %s (%v)", is["code"], code, is["diagnostics"])
	}
	return is
}

// unique returns a value no other run of the suite uses, so the suite can
// run repeatedly against one server.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, rand.Uint64())
}

func patientJSON(family, identifier string) []byte {
	return []byte(fmt.Sprintf(`{"resourceType":"Patient","identifier":[{"system":"urn:fhirgate:conformance","value":%q}],"name":[{"family":%q,"given":["Test"]}],"gender":"female","birthDate":"1980-02-29"}`, identifier, family))
}

// createPatient creates a patient and returns its id.
func createPatient(t *testing.T, family, identifier string) string {
	t.Helper()
	r := do(t, srv.full, "POST", "Patient", patientJSON(family, identifier))
	wantStatus(t, r, 201)
	id, _ := r.JSON()["id"].(string)
	if id == "" {
		t.Fatalf("created resource has no id: %s", r.Body)
	}
	return id
}

func meta(r *Response) (vid, lastUpdated string) {
	m, _ := r.JSON()["meta"].(map[string]any)
	vid, _ = m["versionId"].(string)
	lastUpdated, _ = m["lastUpdated"].(string)
	return
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
