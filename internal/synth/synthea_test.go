package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/testgateway"
)

// TestSyntheaLoads loads Synthea-shaped data into the real gateway binary
// as Synthea's users do (the hospital bundle, the practitioner bundle,
// then one transaction per patient) and checks that every conditional
// reference was stored as a literal one: no stored reference holds a "?",
// and Encounter?practitioner=Practitioner/<id> finds the encounters.
func TestSyntheaLoads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the gateway binary")
	}
	// A chronic patient's transaction takes seconds on a loaded 2-core
	// machine: more than the default budget leaves (docs/limits.md).
	gw := testgateway.Start(t, "", "--request-budget", "60s")
	c := &fhirClient{t: t, base: gw.Base, tok: gw.Token(t, "system/*.cruds")}
	s := NewSynthea(16, 3, 4)

	for _, b := range []struct {
		name string
		body []byte
	}{{"hospitals", s.HospitalBundle()}, {"practitioners", s.PractitionerBundle()}} {
		tr := c.transaction(b.name, b.body)
		for k, e := range tr.Entry {
			if !strings.HasPrefix(e.Response.Status, "201") {
				t.Fatalf("%s entry %d: %s", b.name, k, e.Response.Status)
			}
		}
		// Loaded again (as every Synthea run's directory is), nothing is
		// created twice: ifNoneExist finds each one.
		for k, e := range c.transaction(b.name+" again", b.body).Entry {
			if !strings.HasPrefix(e.Response.Status, "200") {
				t.Errorf("%s again, entry %d: %s", b.name, k, e.Response.Status)
			}
		}
	}

	// A median patient (~70 encounters, ~950 entries) and a chronic one
	// (~2,500 entries: more than the 1,000 of issue 14's cap).
	want := map[string]int{} // Practitioner?identifier=... -> encounters naming it
	for i, n := range []int{70, 180} {
		body := s.PatientBundle(i, n)
		var sent struct {
			Entry []struct {
				Resource struct {
					ResourceType string
					Participant  []struct{ Individual struct{ Reference string } }
				}
			}
		}
		if err := json.Unmarshal(body, &sent); err != nil {
			t.Fatal(err)
		}
		for _, e := range sent.Entry {
			for _, p := range e.Resource.Participant {
				want[p.Individual.Reference]++
			}
		}
		start := time.Now()
		tr := c.transaction(fmt.Sprintf("patient %d", i), body)
		t.Logf("patient %d: %d encounters, %d entries, %d KB: %v", i, n, len(tr.Entry), len(body)>>10, time.Since(start).Round(time.Millisecond))
	}

	// No stored reference is a search URL.
	conditional := regexp.MustCompile(`"reference":"[^"]*\?[^"]*"`)
	for _, typ := range []string{"Location", "PractitionerRole", "Encounter", "Condition", "Observation", "Procedure", "MedicationRequest",
		"Immunization", "DiagnosticReport", "DocumentReference", "Claim", "ExplanationOfBenefit", "Provenance"} {
		n := 0
		for page := gw.Base + "/" + typ + "?_count=1000"; page != ""; {
			body := c.get(page)
			if m := conditional.Find(body); m != nil {
				t.Errorf("a stored %s holds %s", typ, m)
			}
			var b struct {
				Entry []json.RawMessage
				Link  []struct{ Relation, URL string }
			}
			if err := json.Unmarshal(body, &b); err != nil {
				t.Fatal(err)
			}
			n += len(b.Entry)
			page = ""
			for _, l := range b.Link {
				if l.Relation == "next" {
					page = l.URL
				}
			}
		}
		if n == 0 {
			t.Errorf("no %s stored", typ)
		}
	}

	// Encounter?practitioner=Practitioner/<id> finds each practitioner's
	// encounters.
	for prac, n := range want {
		crit, _ := strings.CutPrefix(prac, "Practitioner?")
		var found struct {
			Entry []struct{ Resource struct{ ID string } }
		}
		if err := json.Unmarshal(c.get(gw.Base+"/Practitioner?"+strings.ReplaceAll(crit, "|", "%7C")), &found); err != nil || len(found.Entry) != 1 {
			t.Fatalf("%s: %v %+v", prac, err, found)
		}
		id := found.Entry[0].Resource.ID
		var encs struct{ Total int }
		if err := json.Unmarshal(c.get(gw.Base+"/Encounter?_total=accurate&_count=0&practitioner="+url.QueryEscape("Practitioner/"+id)), &encs); err != nil {
			t.Fatal(err)
		}
		if encs.Total != n {
			t.Errorf("Encounter?practitioner=Practitioner/%s: %d, want %d", id, encs.Total, n)
		}
	}
	if len(want) == 0 {
		t.Fatal("no encounter names a practitioner")
	}
}

// fhirClient is a bearer-token client of the gateway under test.
type fhirClient struct {
	t         *testing.T
	base, tok string
}

func (c *fhirClient) do(method, u string, body []byte) (int, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	res, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func (c *fhirClient) get(u string) []byte {
	c.t.Helper()
	status, b := c.do("GET", u, nil)
	if status != 200 {
		c.t.Fatalf("GET %s: %d %.500s", u, status, b)
	}
	return b
}

type txResponse struct {
	Entry []struct {
		Response struct{ Status, Location string }
	}
}

func (c *fhirClient) transaction(what string, body []byte) txResponse {
	c.t.Helper()
	status, b := c.do("POST", c.base, body)
	if status != 200 {
		c.t.Fatalf("%s: %d %.1000s", what, status, b)
	}
	var tr txResponse
	if err := json.Unmarshal(b, &tr); err != nil {
		c.t.Fatal(err)
	}
	return tr
}

// TestSyntheaShape: the bundles have the shape of Synthea's transaction
// export, and are the same for the same seed.
func TestSyntheaShape(t *testing.T) {
	s := NewSynthea(16, 3, 4)
	if !bytes.Equal(s.PatientBundle(2, 30), NewSynthea(16, 3, 4).PatientBundle(2, 30)) {
		t.Fatal("not deterministic")
	}
	type bundle struct {
		Type  string
		Entry []struct {
			FullURL  string
			Resource map[string]any
			Request  struct{ Method, URL, IfNoneExist string }
		}
	}
	parse := func(b []byte) bundle {
		var out bundle
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if out.Type != "transaction" {
			t.Fatalf("type %q", out.Type)
		}
		return out
	}
	for _, b := range [][]byte{s.HospitalBundle(), s.PractitionerBundle()} {
		for _, e := range parse(b).Entry {
			if e.Request.Method != "POST" || !strings.HasPrefix(e.Request.IfNoneExist, "identifier=") || !strings.HasPrefix(e.FullURL, "urn:uuid:") {
				t.Errorf("directory entry %+v", e.Request)
			}
		}
	}
	body := s.PatientBundle(2, 30)
	for _, want := range []string{`"reference":"Practitioner?identifier=` + NPISystem + `|`, `"reference":"Organization?identifier=` + SyntheaSystem + `|`,
		`"reference":"Location?identifier=` + SyntheaSystem + `|`, `"reference":"urn:uuid:`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("no %s in a patient bundle", want)
		}
	}
	types := map[string]int{}
	for _, e := range parse(body).Entry {
		types[e.Resource["resourceType"].(string)]++
		if e.Request.Method != "POST" || !strings.HasPrefix(e.FullURL, "urn:uuid:") || e.Request.URL != e.Resource["resourceType"] {
			t.Errorf("patient entry %s %+v", e.FullURL, e.Request)
		}
	}
	if types["Patient"] != 1 || types["Encounter"] != 30 || types["ExplanationOfBenefit"] != 30 || types["Provenance"] != 1 || types["Observation"] < 60 {
		t.Errorf("composition %v", types)
	}
}
