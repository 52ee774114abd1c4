package synth

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/testgateway"
)

// TestAcceptedByGateway creates a small data set on the real gateway
// binary, one POST per resource with the server's ids in the references,
// then the same kind of data as a transaction Bundle: every create must
// answer 201, the Bundle 200 with a transaction-response.
func TestAcceptedByGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the gateway binary")
	}
	gw := testgateway.Start(t, "")
	tok := gw.Token(t, "system/*.cruds")
	post := func(url string, body []byte) (int, *http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/fhir+json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res, b
	}
	create := func(typ string, body []byte) string {
		t.Helper()
		status, res, b := post(gw.Base+"/"+typ, body)
		if status != 201 {
			t.Fatalf("POST %s: %d %s\nbody: %s", typ, status, b, body)
		}
		loc := res.Header.Get("Location")
		_, rest, _ := strings.Cut(loc, "/"+typ+"/")
		id, _, _ := strings.Cut(rest, "/")
		if id == "" {
			t.Fatalf("POST %s: Location %q", typ, loc)
		}
		return id
	}

	p := NewPlan(11, 2000)
	g := p.Gen
	prac := make([]string, p.Practitioners)
	for k := range prac {
		prac[k] = create("Practitioner", g.Practitioner(k))
	}
	pracRef := func(k int) Ref { return g.PractitionerRef(k, "Practitioner/"+prac[k]) }
	counts := map[string]int{}
	patients := 60
	for i := range patients {
		id := create("Patient", g.Patient(i, pracRef(p.GP(i))))
		counts["Patient"]++
		pat := g.PatientRef(i, "Patient/"+id)
		for j := range p.Appointments(i) {
			create("Appointment", g.Appointment(i, j, pat, pracRef(p.AppointmentPractitioner(i, j))))
			counts["Appointment"]++
		}
		for j := range p.Reports(i) {
			create("DiagnosticReport", g.DiagnosticReport(i, j, pat, pracRef(p.ReportPractitioner(i, j))))
			counts["DiagnosticReport"]++
		}
	}
	t.Logf("created %d Practitioners and %v", len(prac), counts)

	// The generated MRNs find their patients.
	req, _ := http.NewRequest("GET", gw.Base+"/Patient?identifier="+MRNSystem+"%7C"+g.MRN(7), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || bytes.Count(b, []byte(`"mode":"match"`)) != 1 {
		t.Errorf("search by MRN: %d, want one match: %.500s", res.StatusCode, b)
	}

	// A transaction Bundle of patient groups with urn:uuid references.
	var entries []Entry
	for i := patients; len(entries) < 90; i++ {
		full := "urn:uuid:" + g.UUID(1, i, 0)
		entries = append(entries, Entry{FullURL: full, Type: "Patient", Resource: g.Patient(i, pracRef(p.GP(i)))})
		pat := g.PatientRef(i, full)
		for j := range p.Appointments(i) {
			entries = append(entries, Entry{FullURL: "urn:uuid:" + g.UUID(2, i, j), Type: "Appointment",
				Resource: g.Appointment(i, j, pat, pracRef(p.AppointmentPractitioner(i, j)))})
		}
		for j := range p.Reports(i) {
			entries = append(entries, Entry{FullURL: "urn:uuid:" + g.UUID(3, i, j), Type: "DiagnosticReport",
				Resource: g.DiagnosticReport(i, j, pat, pracRef(p.ReportPractitioner(i, j)))})
		}
	}
	status, _, body := post(gw.Base, TransactionBundle(entries))
	if status != 200 {
		t.Fatalf("transaction: %d %.2000s", status, body)
	}
	var tr struct {
		Type  string
		Entry []struct {
			Response struct{ Status, Location string }
		}
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.Type != "transaction-response" || len(tr.Entry) != len(entries) {
		t.Fatalf("transaction: type %q with %d entries for %d", tr.Type, len(tr.Entry), len(entries))
	}
	for k, e := range tr.Entry {
		if !strings.HasPrefix(e.Response.Status, "201") || !strings.HasPrefix(e.Response.Location, entries[k].Type+"/") {
			t.Errorf("entry %d (%s): response %+v", k, entries[k].Type, e.Response)
		}
	}
	// The server rewrote the urn:uuid references to the new Patient ids:
	// read the first non-Patient entry and look for its Patient's id.
	k := 1
	for entries[k].Type == "Patient" {
		k++
	}
	patID := strings.Split(tr.Entry[k-1].Response.Location, "/")[1]
	loc, _, _ := strings.Cut(tr.Entry[k].Response.Location, "/_history")
	req, _ = http.NewRequest("GET", gw.Base+"/"+loc, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Contains(b, []byte(`"Patient/`+patID+`"`)) {
		t.Errorf("%s: %d, does not reference Patient/%s: %.600s", loc, res.StatusCode, patID, b)
	}
}
