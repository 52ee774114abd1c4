package fhir

import (
	"fmt"
	"testing"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/internal/synth"
)

// benchObservation is a blood-pressure Observation shaped like the ones EHRs
// send (synth does not generate Observations).
const benchObservation = `{"resourceType":"Observation","meta":{"profile":["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},` +
	`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Blood pressure 107/60 mmHg</p></div>"},` +
	`"identifier":[{"system":"urn:ietf:rfc:3986","value":"urn:uuid:187e0c12-8dd2-67e2-99b2-bf273c878281"}],` +
	`"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs","display":"Vital Signs"}]}],` +
	`"code":{"coding":[{"system":"http://loinc.org","code":"85354-9","display":"Blood pressure panel with all children optional"}],"text":"Blood pressure systolic & diastolic"},` +
	`"subject":{"reference":"Patient/example","display":"Peter Chalmers"},"effectiveDateTime":"2012-09-17T10:21:00+02:00",` +
	`"performer":[{"reference":"Practitioner/example","display":"Dr. Adam Careful"}],` +
	`"interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"L","display":"low"}],"text":"Below low normal"}],` +
	`"bodySite":{"coding":[{"system":"http://snomed.info/sct","code":"368209003","display":"Right arm"}]},` +
	`"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6","display":"Systolic blood pressure"}]},` +
	`"valueQuantity":{"value":107,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"},` +
	`"interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"N","display":"normal"}],"text":"Normal"}]},` +
	`{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4","display":"Diastolic blood pressure"}]},` +
	`"valueQuantity":{"value":60.0,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"},` +
	`"interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"L","display":"low"}],"text":"Below low normal"}]}]}`

// benchBodies returns realistic request bodies: one of each kind a create
// receives, and a 100-entry transaction Bundle built the way
// `fhirbench load -mode transaction` builds them (Patients, each with its
// Appointments and DiagnosticReports, referenced by urn:uuid).
func benchBodies() []struct {
	name string
	body []byte
} {
	plan := synth.NewPlan(1, 100_000)
	g := plan.Gen
	pr := g.PractitionerRef(0, "Practitioner/p0")
	pat := g.PatientRef(0, "Patient/0")
	var entries []synth.Entry
	for i := 0; len(entries) < 100; i++ {
		full := "urn:uuid:" + g.UUID(1, i, 0)
		ref := g.PatientRef(i, full)
		entries = append(entries, synth.Entry{FullURL: full, Type: "Patient", Resource: g.Patient(i, pr)})
		for j := range plan.Appointments(i) {
			entries = append(entries, synth.Entry{FullURL: "urn:uuid:" + g.UUID(2, i, j), Type: "Appointment", Resource: g.Appointment(i, j, ref, pr)})
		}
		for j := range plan.Reports(i) {
			entries = append(entries, synth.Entry{FullURL: "urn:uuid:" + g.UUID(3, i, j), Type: "DiagnosticReport", Resource: g.DiagnosticReport(i, j, ref, pr)})
		}
	}
	return []struct {
		name string
		body []byte
	}{
		{"Patient", g.Patient(0, pr)},
		{"Practitioner", g.Practitioner(0)},
		{"Appointment", g.Appointment(0, 0, pat, pr)},
		{"DiagnosticReport", g.DiagnosticReport(0, 0, pat, pr)},
		{"Observation", []byte(benchObservation)},
		{"Bundle100", synth.TransactionBundle(entries[:100])},
	}
}

// BenchmarkParse measures Parse on each body and, as sub-benchmarks, the
// three stages it is made of: the strict JSON tree, our rules and
// jsonformat's validation.
func BenchmarkParse(b *testing.B) {
	for _, tc := range benchBodies() {
		root, err := fhirjson.Parse(tc.body, Limits)
		if err != nil {
			b.Fatal(err)
		}
		typ := root.GetString("resourceType")
		stages := []struct {
			name string
			run  func() error
		}{
			{"all", func() error { _, err := Parse(tc.body); return err }},
			{"tree", func() error { _, err := fhirjson.Parse(tc.body, Limits); return err }},
			{"rules", func() error {
				if iss := checkRules(&root, typ); len(iss) > 0 {
					return &Error{Kind: ErrInvalid, Issues: iss}
				}
				return nil
			}},
			{"jsonformat", func() error { return validate(tc.body, &root) }},
		}
		for _, st := range stages {
			b.Run(fmt.Sprintf("%s/%s", tc.name, st.name), func(b *testing.B) {
				b.SetBytes(int64(len(tc.body)))
				b.ReportAllocs()
				for b.Loop() {
					if err := st.run(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
