package rest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// The NPI system holds "://": a conditional reference is told from an
// absolute URL by what precedes its "?", not by the criteria.
const npi = "http://hl7.org/fhir/sid/us-npi"

func txBundle(typ string, entries ...string) []byte {
	return []byte(`{"resourceType":"Bundle","type":"` + typ + `","entry":[` + strings.Join(entries, ",") + `]}`)
}

// txAnswer is a transaction or batch response: each entry's status and
// location, or the OperationOutcome of a failed transaction.
type txAnswer struct {
	Entry []struct {
		Response struct {
			Status, Location string
			Outcome          struct{ Issue []txIssue }
		}
	}
	Issue []txIssue
}

type txIssue struct {
	Code, Diagnostics string
	Expression        []string
}

func postBundle(t *testing.T, s *Server, tok string, body []byte) (int, txAnswer) {
	t.Helper()
	res := serve(s, "POST", "/fhir", mimeFHIRJSON, tok, body)
	var a txAnswer
	if err := json.Unmarshal(res.Body(), &a); err != nil {
		t.Fatalf("%d %s: %v", res.StatusCode(), res.Body(), err)
	}
	return res.StatusCode(), a
}

// read returns the stored body of Type/id[/_history/n].
func read(t *testing.T, s *Server, tok, loc string) string {
	t.Helper()
	loc, _, _ = strings.Cut(loc, "/_history")
	res := serve(s, "GET", "/fhir/"+loc, "", tok, nil)
	if res.StatusCode() != 200 {
		t.Fatalf("GET %s: %d %s", loc, res.StatusCode(), res.Body())
	}
	return string(res.Body())
}

func createAt(t *testing.T, s *Server, tok, typ, body string) string {
	t.Helper()
	res := serve(s, "POST", "/fhir/"+typ, mimeFHIRJSON, tok, []byte(body))
	if res.StatusCode() != 201 {
		t.Fatalf("POST %s: %d %s", typ, res.StatusCode(), res.Body())
	}
	loc := string(res.Header.Peek("Location"))
	return typ + "/" + strings.Split(strings.SplitN(loc, "/"+typ+"/", 2)[1], "/")[0]
}

func practitioner(value string) string {
	return `{"resourceType":"Practitioner","identifier":[{"system":"` + npi + `","value":"` + value + `"}],"name":[{"family":"Nurse"}]}`
}

func TestConditionalReferencesInTransaction(t *testing.T) {
	s, tok := newTestServer(t)
	stored := createAt(t, s, tok, "Practitioner", practitioner("9999955949"))
	createAt(t, s, tok, "Organization", `{"resourceType":"Organization","identifier":[{"system":"urn:x","value":"twin"}],"name":"A"}`)
	createAt(t, s, tok, "Organization", `{"resourceType":"Organization","identifier":[{"system":"urn:x","value":"twin"}],"name":"B"}`)
	gone := createAt(t, s, tok, "Location", `{"resourceType":"Location","identifier":[{"system":"urn:x","value":"gone"}],"name":"Old wing"}`)
	prac := "Practitioner?identifier=" + npi + "|9999955949"

	// encounter refers at every depth: participant[].individual, an
	// extension's valueReference, a contained resource's reference.
	encounter := func(refs ...string) string {
		return `{"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},` +
			`"contained":[{"resourceType":"Provenance","id":"p1","target":[{"reference":"Encounter/x"}],"recorded":"2020-01-01T00:00:00Z","agent":[{"who":{"reference":"` + refs[0] + `"}}]}],` +
			`"extension":[{"url":"http://example.org/by","valueReference":{"reference":"` + refs[0] + `"}}],` +
			`"participant":[{"individual":{"reference":"` + refs[0] + `"}}],"serviceProvider":{"reference":"` + refs[1] + `"}}`
	}
	entry := func(full, method, url, res string, extra ...string) string {
		req := `"method":"` + method + `","url":"` + url + `"`
		for i := 0; i+1 < len(extra); i += 2 {
			req += `,"` + extra[i] + `":"` + extra[i+1] + `"`
		}
		e := `{"request":{` + req + `}`
		if full != "" {
			e += `,"fullUrl":"` + full + `"`
		}
		if res != "" {
			e += `,"resource":` + res
		}
		return e + "}"
	}
	org := func(v string) string {
		return `{"resourceType":"Organization","identifier":[{"system":"urn:x","value":"` + v + `"}],"name":"Hospital ` + v + `"}`
	}

	t.Run("a resolved reference to a type the element does not allow is refused", func(t *testing.T) {
		// serviceProvider is Reference(Organization): the search URL
		// passed validation, the Practitioner it names must not.
		code, a := postBundle(t, s, tok, txBundle("transaction",
			entry("urn:uuid:e1", "POST", "Encounter", encounter(prac, prac))))
		if code != 400 || len(a.Issue) == 0 || !strings.Contains(a.Issue[0].Diagnostics+strings.Join(a.Issue[0].Expression, " "), "serviceProvider") {
			t.Fatalf("%d %+v, want 400 naming serviceProvider", code, a)
		}
	})

	t.Run("resolved against stored resources and the transaction's own", func(t *testing.T) {
		code, a := postBundle(t, s, tok, txBundle("transaction",
			entry("urn:uuid:e1", "POST", "Encounter", encounter(prac, "Organization?identifier=urn:x|new-1")),
			// Created by this transaction, conditionally (as Synthea's
			// hospital bundle does) and by a PUT with a urn:uuid fullUrl.
			entry("urn:uuid:o1", "POST", "Organization", org("new-1"), "ifNoneExist", "identifier=urn:x|new-1"),
			entry("urn:uuid:e2", "POST", "Encounter", encounter("Practitioner?identifier=urn:x|p2", "Organization?identifier=urn:x|new-1")),
			entry("urn:uuid:p2", "PUT", "Practitioner/p2", `{"resourceType":"Practitioner","id":"p2","identifier":[{"system":"urn:x","value":"p2"}]}`),
		))
		if code != 200 {
			t.Fatalf("%d %+v", code, a)
		}
		orgID := a.Entry[1].Response.Location
		orgID = orgID[:strings.Index(orgID, "/_history")]
		for i, want := range map[int][]string{0: {stored, orgID}, 2: {"Practitioner/p2", orgID}} {
			body := read(t, s, tok, a.Entry[i].Response.Location)
			if strings.Contains(body, "?") {
				t.Errorf("entry %d stored a search URL: %s", i, body)
			}
			if n := strings.Count(body, `"reference":"`+want[0]+`"`); n != 3 {
				t.Errorf("entry %d: %d references to %s, want 3 (nested, extension, contained): %s", i, n, want[0], body)
			}
			if !strings.Contains(body, `"serviceProvider":{"reference":"`+orgID+`"}`) {
				t.Errorf("entry %d: serviceProvider not %s: %s", i, orgID, body)
			}
		}
		// The conditional create matches the stored one now: the same
		// bundle again creates no second Organization.
		code, a = postBundle(t, s, tok, txBundle("transaction",
			entry("urn:uuid:o1", "POST", "Organization", org("new-1"), "ifNoneExist", "identifier=urn:x|new-1"),
			entry("urn:uuid:e1", "POST", "Encounter", encounter(prac, "Organization?identifier=urn:x|new-1")),
		))
		if code != 200 || !strings.HasPrefix(a.Entry[0].Response.Status, "200") {
			t.Fatalf("again: %d %+v", code, a)
		}
		if body := read(t, s, tok, a.Entry[1].Response.Location); !strings.Contains(body, `"serviceProvider":{"reference":"`+orgID+`"}`) {
			t.Errorf("again: %s", body)
		}
	})

	failures := []struct {
		name    string
		entries []string
		status  int
		code    string
		expr    string
		says    []string
	}{
		{"no match", []string{
			entry("urn:uuid:ok", "POST", "Organization", org("fresh")),
			entry("urn:uuid:bad", "POST", "Encounter", encounter("Practitioner?identifier="+npi+"|0000000000", "Organization?identifier=urn:x|fresh")),
		}, 404, "not-found", "Bundle.entry[1].resource.contained[0].agent[0].who.reference",
			[]string{"urn:uuid:bad", "Practitioner?identifier=" + npi + "|0000000000", "matches no resource"}},
		{"several matches", []string{
			entry("urn:uuid:bad", "POST", "Encounter", encounter(prac, "Organization?identifier=urn:x|twin")),
		}, 412, "multiple-matches", "Bundle.entry[0].resource.serviceProvider.reference",
			[]string{"urn:uuid:bad", "Organization?identifier=urn:x|twin", "more than one"}},
		{"stored and created by the transaction", []string{
			entry("", "POST", "Practitioner", practitioner("9999955949")),
			entry("urn:uuid:bad", "POST", "Encounter", encounter(prac, "Organization?identifier=urn:x|new-1")),
		}, 412, "multiple-matches", "Bundle.entry[1].resource.contained[0].agent[0].who.reference", []string{"more than one"}},
		{"deleted by the transaction", []string{
			entry("", "DELETE", gone, ""),
			entry("urn:uuid:bad", "POST", "Encounter", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"location":[{"location":{"reference":"Location?identifier=urn:x|gone"}}]}`),
		}, 404, "not-found", "Bundle.entry[1].resource.location[0].location.reference", []string{"matches no resource"}},
		{"unknown type", []string{
			entry("", "POST", "Encounter", encounter("Doctor?identifier=x", "Organization?identifier=urn:x|new-1")),
		}, 400, "invalid", "Bundle.entry[0].resource.contained[0].agent[0].who.reference", []string{"unknown resource type"}},
		{"criteria the server does not know", []string{
			entry("", "POST", "Encounter", encounter("Practitioner?shoe-size=44", "Organization?identifier=urn:x|new-1")),
		}, 400, "invalid", "Bundle.entry[0].resource.contained[0].agent[0].who.reference", []string{"shoe-size"}},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			code, a := postBundle(t, s, tok, txBundle("transaction", tt.entries...))
			if code != tt.status || len(a.Issue) != 1 {
				t.Fatalf("%d %+v, want %d", code, a, tt.status)
			}
			is := a.Issue[0]
			if is.Code != tt.code || len(is.Expression) != 1 || is.Expression[0] != tt.expr {
				t.Errorf("issue %+v, want code %s at %s", is, tt.code, tt.expr)
			}
			for _, w := range tt.says {
				if !strings.Contains(is.Diagnostics, w) {
					t.Errorf("diagnostics %q do not say %q", is.Diagnostics, w)
				}
			}
		})
	}
	// Nothing of a failed transaction is stored.
	if got := serve(s, "GET", "/fhir/Organization?identifier=urn:x|fresh", "", tok, nil); strings.Contains(string(got.Body()), `"mode":"match"`) {
		t.Errorf("a failed transaction stored its Organization: %s", got.Body())
	}
	if got := serve(s, "GET", "/fhir/"+gone, "", tok, nil); got.StatusCode() != 200 {
		t.Errorf("a failed transaction deleted %s: %d", gone, got.StatusCode())
	}
}

// In a batch each entry resolves on its own: one that matches nothing
// fails alone.
func TestConditionalReferencesInBatch(t *testing.T) {
	s, tok := newTestServer(t)
	stored := createAt(t, s, tok, "Practitioner", practitioner("1234567893"))
	obs := func(ref string) string {
		return `{"request":{"method":"POST","url":"Observation"},"fullUrl":"urn:uuid:obs","resource":{"resourceType":"Observation","status":"final","code":{"text":"hr"},"performer":[{"reference":"` + ref + `"}]}}`
	}
	code, a := postBundle(t, s, tok, txBundle("batch",
		obs("Practitioner?identifier="+npi+"|1234567893"),
		strings.Replace(obs("Practitioner?identifier="+npi+"|0000000000"), "urn:uuid:obs", "urn:uuid:bad", 1),
		strings.Replace(obs("http://test/fhir/Practitioner?identifier="+npi+"|1234567893"), "urn:uuid:obs", "urn:uuid:abs", 1),
	))
	if code != 200 || len(a.Entry) != 3 {
		t.Fatalf("%d %+v", code, a)
	}
	for _, i := range []int{0, 2} {
		if !strings.HasPrefix(a.Entry[i].Response.Status, "201") {
			t.Fatalf("entry %d: %+v", i, a.Entry[i].Response)
		}
		if body := read(t, s, tok, a.Entry[i].Response.Location); !strings.Contains(body, `"performer":[{"reference":"`+stored+`"}]`) {
			t.Errorf("entry %d stored %s", i, body)
		}
	}
	r := a.Entry[1].Response
	if !strings.HasPrefix(r.Status, "404") || len(r.Outcome.Issue) != 1 {
		t.Fatalf("entry 1: %+v", r)
	}
	if is := r.Outcome.Issue[0]; is.Expression[0] != "Bundle.entry[1].resource.performer[0].reference" || !strings.Contains(is.Diagnostics, "urn:uuid:bad") {
		t.Errorf("entry 1: %+v", is)
	}
}

// A resource the caller may not see matches as if absent: the answer
// does not tell an existing patient from none.
func TestConditionalReferenceNoOracle(t *testing.T) {
	w := newAccessWorld(t)
	mrn := func(v string) string {
		return `{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"` + v + `"}],"name":[{"family":"Hidden"}]}`
	}
	w.create("system", "Patient", mrn("present"))
	tx := func(who, v string) *fasthttp.Response {
		return w.do(who, "POST", "/fhir", string(txBundle("transaction",
			`{"request":{"method":"POST","url":"Observation"},"resource":{"resourceType":"Observation","status":"final","code":{"text":"hr"},"subject":{"reference":"Patient?identifier=urn:mrn|`+v+`"}}}`)))
	}
	for _, who := range []string{"stranger", "other system", "other patient"} {
		a, b := tx(who, "present"), tx(who, "absent!")
		same := strings.ReplaceAll(string(a.Body()), "present", "absent!")
		if a.StatusCode() != b.StatusCode() || same != string(b.Body()) {
			t.Errorf("%s tells existing from absent: %d %s / %d %s", who, a.StatusCode(), a.Body(), b.StatusCode(), b.Body())
		}
	}
	if res := tx("system", "present"); res.StatusCode() != 200 {
		t.Errorf("the author: %d %s", res.StatusCode(), res.Body())
	}
}
