package conformance

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// mint returns a client with a token of the in-process gateway.
func mint(t *testing.T, scope string, args ...string) *Client {
	t.Helper()
	if srv.gw == nil {
		t.Skip("consent checks mint tokens: run without -base-url")
	}
	tok, err := srv.gw.MintToken(scope, args...)
	if err != nil {
		t.Fatal(err)
	}
	return NewClient(srv.base, tok)
}

// TestNoAccessWithoutConsent tries every route a record can be reached
// through, as principals the patient has not consented to, and expects to
// learn nothing: the consent issue's bypass test.
func TestNoAccessWithoutConsent(t *testing.T) {
	if srv.gw == nil {
		t.Skip("consent checks mint tokens: run without -base-url")
	}
	secret := unique("secret")
	ehr := srv.full
	doc := createPractitioner(t, "Careful")

	pid := createPatient(t, "Hidden"+secret, secret)
	mk := func(typ, body string) string {
		r := do(t, ehr, "POST", typ, []byte(body))
		wantStatus(t, r, 201)
		return r.JSON()["id"].(string)
	}
	rid := mk("DiagnosticReport", `{"resourceType":"DiagnosticReport","status":"final","code":{"coding":[{"system":"urn:secret","code":"`+secret+`"}]},"subject":{"reference":"Patient/`+pid+`"},"performer":[{"reference":"Practitioner/`+doc+`"}]}`)
	mk("Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/`+pid+`"},"valueString":"`+secret+`"}`)

	doctor := mint(t, "user/*.cruds", "--role", "practitioner", "--fhir-user", "Practitioner/"+doc)
	otherEHR := mint(t, "system/*.cruds", "--sub", "client/other-ehr")
	otherPatient := mint(t, "patient/*.rs patient/Appointment.cu patient/DiagnosticReport.c", "--role", "patient", "--fhir-user", "Patient/"+createPatient(t, "Someone", unique("else")))

	// Positive controls: the test is not vacuous.
	wantStatus(t, do(t, ehr, "GET", "DiagnosticReport/"+rid, nil), 200)
	self := mint(t, "patient/*.rs", "--role", "patient", "--fhir-user", "Patient/"+pid)
	wantStatus(t, do(t, self, "GET", "DiagnosticReport/"+rid, nil), 200)

	// leaks looks at what a server answers, not at what it echoes of the
	// client's own query (the self link). An EHR may see the patient's id
	// in what it created itself, never the hidden report.
	var current *Client
	asEHR := func() bool { return current == otherEHR }
	leaks := func(t *testing.T, r *Response) {
		t.Helper()
		b := r.JSON()
		delete(b, "link")
		if entries, ok := b["entry"].([]any); ok {
			for _, e := range entries {
				if res, ok := e.(map[string]any)["resource"].(map[string]any); ok {
					delete(res, "link")
				}
			}
		}
		out, _ := json.Marshal(b)
		if strings.Contains(string(out), secret) || strings.Contains(string(out), rid) || (!asEHR() && strings.Contains(string(out), pid)) {
			t.Fatalf("status %d reveals the hidden record: %.400s", r.Status, out)
		}
	}
	empty := func(t *testing.T, r *Response) {
		t.Helper()
		wantStatus(t, r, 200)
		leaks(t, r)
		b := r.JSON()
		if tot, ok := b["total"]; ok && tot != float64(0) {
			t.Fatalf("total %v", tot)
		}
	}
	refused := func(t *testing.T, r *Response) {
		t.Helper()
		wantOutcome(t, r, 403, "forbidden")
		if strings.Contains(string(r.Body), secret) {
			t.Fatal("the refusal carries content")
		}
	}
	// absent: a record the client may not know of is answered as an
	// absent one is (docs/security.md: no existence oracle).
	absent := func(t *testing.T, r *Response) {
		t.Helper()
		wantOutcome(t, r, 404, "not-found")
		if strings.Contains(string(r.Body), secret) || strings.Contains(string(r.Body), rid) {
			t.Fatal("the answer carries content")
		}
	}
	// outOfScope: a refusal for want of a scope on the type, whatever the
	// record (no oracle: the same for every id).
	outOfScope := func(r *Response) bool {
		return r.Status == 403 && strings.Contains(string(r.Body), "needs scope")
	}
	untouched := func(t *testing.T) {
		t.Helper()
		if v := do(t, ehr, "GET", "DiagnosticReport/"+rid, nil); v.Status != 200 || !strings.Contains(string(v.Body), `"versionId":"1"`) {
			t.Fatalf("the hidden report changed: %d", v.Status)
		}
	}
	q := url.QueryEscape
	for name, c := range map[string]*Client{"practitioner": doctor, "another EHR": otherEHR, "another patient": otherPatient} {
		system := c == otherEHR
		// An EHR may create within its scopes, even in a patient's record;
		// people may not without consent. Either way no hidden match shows.
		createRefused := func(t *testing.T, r *Response) {
			t.Helper()
			if system {
				wantStatus(t, r, 201)
				leaks(t, r)
				return
			}
			refused(t, r)
		}
		t.Run(name, func(t *testing.T) {
			current = c
			checks := []struct {
				route string
				fn    func(t *testing.T)
			}{
				{"read", func(t *testing.T) { absent(t, do(t, c, "GET", "DiagnosticReport/"+rid, nil)) }},
				{"vread", func(t *testing.T) { absent(t, do(t, c, "GET", "DiagnosticReport/"+rid+"/_history/1", nil)) }},
				{"instance history", func(t *testing.T) { absent(t, do(t, c, "GET", "DiagnosticReport/"+rid+"/_history", nil)) }},
				{"type history", func(t *testing.T) {
					r := do(t, c, "GET", "DiagnosticReport/_history?_count=1000", nil)
					if r.Status == 200 {
						leaks(t, r)
					}
				}},
				{"system history", func(t *testing.T) {
					r := do(t, c, "GET", "_history?_count=1000", nil)
					if r.Status == 200 {
						leaks(t, r)
					}
				}},
				{"search", func(t *testing.T) {
					empty(t, do(t, c, "GET", "DiagnosticReport?subject=Patient/"+pid+"&_total=accurate", nil))
				}},
				{"search by _id", func(t *testing.T) { empty(t, do(t, c, "GET", "DiagnosticReport?_id="+rid+"&_total=accurate", nil)) }},
				{"search by token", func(t *testing.T) {
					empty(t, do(t, c, "GET", "DiagnosticReport?code="+q("urn:secret|"+secret)+"&_total=accurate", nil))
				}},
				{"_summary=count", func(t *testing.T) {
					empty(t, do(t, c, "GET", "Observation?subject=Patient/"+pid+"&_summary=count", nil))
				}},
				{"patient search", func(t *testing.T) {
					empty(t, do(t, c, "GET", "Patient?identifier="+q("urn:fhirgate:conformance|"+secret)+"&_total=accurate", nil))
				}},
				{"_include", func(t *testing.T) {
					r := do(t, c, "GET", "Practitioner?_id="+doc+"&_revinclude=DiagnosticReport:performer", nil)
					wantStatus(t, r, 200)
					leaks(t, r)
				}},
				{"_revinclude from the patient", func(t *testing.T) {
					empty(t, do(t, c, "GET", "Patient?_id="+pid+"&_revinclude=DiagnosticReport:subject&_total=accurate", nil))
				}},
				{"chained parameter", func(t *testing.T) {
					empty(t, do(t, c, "GET", "DiagnosticReport?subject:Patient.family="+q("Hidden"+secret)+"&_total=accurate", nil))
				}},
				{"_has", func(t *testing.T) {
					r := do(t, c, "GET", "Practitioner?_has:DiagnosticReport:performer:code="+q(secret)+"&_total=accurate", nil)
					wantStatus(t, r, 200)
					if r.JSON()["total"] != float64(0) {
						t.Fatalf("_has reveals a hidden report: total %v", r.JSON()["total"])
					}
				}},
				{"$everything", func(t *testing.T) { absent(t, do(t, c, "GET", "Patient/"+pid+"/$everything", nil)) }},
				{"$proof", func(t *testing.T) { absent(t, do(t, c, "GET", "DiagnosticReport/"+rid+"/_history/1/$proof", nil)) }},
				{"$verify", func(t *testing.T) { absent(t, do(t, c, "GET", "DiagnosticReport/"+rid+"/$verify", nil)) }},
				{"update", func(t *testing.T) {
					r := do(t, c, "PUT", "DiagnosticReport/"+rid, []byte(`{"resourceType":"DiagnosticReport","id":"`+rid+`","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/`+pid+`"}}`))
					if system {
						// It may create such a record: it learns that the id
						// is taken, nothing more.
						wantOutcome(t, r, 409, "conflict")
						leaks(t, r)
					} else {
						refused(t, r) // as an update that creates would be
					}
					untouched(t)
				}},
				{"patch", func(t *testing.T) {
					if r := do(t, c, "PATCH", "DiagnosticReport/"+rid, []byte(`[{"op":"replace","path":"/status","value":"amended"}]`), "Content-Type", "application/json-patch+json"); !outOfScope(r) {
						absent(t, r)
					}
					untouched(t)
				}},
				{"delete", func(t *testing.T) {
					if r := do(t, c, "DELETE", "DiagnosticReport/"+rid, nil); !outOfScope(r) {
						wantStatus(t, r, 204) // as deleting what does not exist
					}
					untouched(t)
				}},
				{"create in the patient's record", func(t *testing.T) {
					createRefused(t, do(t, c, "POST", "Observation", []byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/`+pid+`"}}`)))
				}},
				{"conditional delete", func(t *testing.T) {
					r := do(t, c, "DELETE", "DiagnosticReport?code="+q("urn:secret|"+secret), nil)
					if r.Status >= 500 {
						t.Fatalf("status %d", r.Status)
					}
					leaks(t, r)
					wantStatus(t, do(t, ehr, "GET", "DiagnosticReport/"+rid, nil), 200) // still there
				}},
				{"conditional update", func(t *testing.T) {
					r := do(t, c, "PUT", "DiagnosticReport?code="+q("urn:secret|"+secret), []byte(`{"resourceType":"DiagnosticReport","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/`+pid+`"}}`))
					createRefused(t, r) // the hidden match is not updated: it does not match for this client
					if v := do(t, ehr, "GET", "DiagnosticReport/"+rid, nil); !strings.Contains(string(v.Body), `"versionId":"1"`) {
						t.Fatal("the hidden report changed")
					}
				}},
				{"conditional create", func(t *testing.T) {
					r := do(t, c, "POST", "DiagnosticReport", []byte(`{"resourceType":"DiagnosticReport","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/`+pid+`"}}`),
						"If-None-Exist", "code="+q("urn:secret|"+secret))
					createRefused(t, r) // never 200 with the hidden match
				}},
				{"transaction", func(t *testing.T) {
					r := do(t, c, "POST", "", bundle("transaction", `{"request":{"method":"GET","url":"DiagnosticReport/`+rid+`"}}`))
					leaks(t, r)
					if r.Status == 200 && !strings.Contains(string(r.Body), `"404 Not Found"`) {
						t.Fatalf("transaction GET not answered as absent: %.300s", r.Body)
					}
					r = do(t, c, "POST", "", bundle("transaction", `{"request":{"method":"DELETE","url":"DiagnosticReport/`+rid+`"}}`))
					if !outOfScope(r) {
						wantStatus(t, r, 200) // as deleting what does not exist
						leaks(t, r)
					}
					untouched(t)
				}},
				{"batch", func(t *testing.T) {
					r := do(t, c, "POST", "", bundle("batch", `{"request":{"method":"GET","url":"DiagnosticReport/`+rid+`"}}`,
						`{"request":{"method":"GET","url":"DiagnosticReport?subject=Patient/`+pid+`"}}`))
					wantStatus(t, r, 200)
					leaks(t, r)
					var b struct {
						Entry []struct {
							Response struct{ Status string } `json:"response"`
						} `json:"entry"`
					}
					json.Unmarshal(r.Body, &b)
					if len(b.Entry) != 2 || !strings.HasPrefix(b.Entry[0].Response.Status, "404") {
						t.Fatalf("batch entries %+v", b.Entry)
					}
				}},
			}
			for _, ck := range checks {
				spec(t, ck.route, ck.fn)
			}
		})
	}
	// Still untouched after every attempt.
	r := do(t, ehr, "GET", "DiagnosticReport/"+rid, nil)
	if !strings.Contains(string(r.Body), `"versionId":"1"`) {
		t.Fatalf("the record changed: %s", r.Body)
	}

}

func createPractitioner(t *testing.T, family string) string {
	t.Helper()
	r := do(t, srv.full, "POST", "Practitioner", []byte(`{"resourceType":"Practitioner","name":[{"family":"`+family+`"}]}`))
	wantStatus(t, r, 201)
	return r.JSON()["id"].(string)
}
