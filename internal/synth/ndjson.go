package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Bulk Data NDJSON (one resource a line, one file per type) of the same
// data sets, for `gateway import` and its benchmark.

// NDJSON writes the plan's resources as Bulk Data lines: Practitioners,
// then each Patient with its Appointments and DiagnosticReports, every
// resource with its id (the uuid its transaction fullUrl has in fhirbench's
// load) and literal references (Patient/<id>, Practitioner/<id>).
func (p *Plan) NDJSON(write func(typ string, line []byte) error) error {
	return p.NDJSONWithIDs(p.Gen.UUID, write)
}

// NDJSONWithIDs is NDJSON with the ids id(kind, i, j) gives: kind 4 a
// Practitioner (i), 1 a Patient (i), 2 and 3 patient i's Appointment and
// DiagnosticReport j. OrderedID gives ids in the order they are written,
// as a server's time-ordered ids are (UUID v7).
func (p *Plan) NDJSONWithIDs(id func(kind, i, j int) string, write func(typ string, line []byte) error) error {
	g := p.Gen
	pracID := func(k int) string { return id(4, k, 0) }
	pracRef := func(k int) Ref { return g.PractitionerRef(k, "Practitioner/"+pracID(k)) }
	for k := range p.Practitioners {
		if err := write("Practitioner", withID(g.Practitioner(k), pracID(k))); err != nil {
			return err
		}
	}
	for i := range p.Patients {
		pid := id(1, i, 0)
		if err := write("Patient", withID(g.Patient(i, pracRef(p.GP(i))), pid)); err != nil {
			return err
		}
		pat := g.PatientRef(i, "Patient/"+pid)
		for j := range p.Appointments(i) {
			if err := write("Appointment", withID(g.Appointment(i, j, pat, pracRef(p.AppointmentPractitioner(i, j))), id(2, i, j))); err != nil {
				return err
			}
		}
		for j := range p.Reports(i) {
			if err := write("DiagnosticReport", withID(g.DiagnosticReport(i, j, pat, pracRef(p.ReportPractitioner(i, j))), id(3, i, j))); err != nil {
				return err
			}
		}
	}
	return nil
}

// OrderedID is an id that sorts, within each type, in the order NDJSON
// writes resources.
func OrderedID(kind, i, j int) string { return fmt.Sprintf("%d-%09d-%d", kind, i, j) }

// withID puts "id" first in a generated resource (which has none).
func withID(res []byte, id string) []byte {
	out := make([]byte, 0, len(res)+len(id)+8)
	out = append(out, `{"id":"`...)
	out = append(out, id...)
	out = append(out, `",`...)
	return append(out, res[1:]...)
}

// NDJSON writes the Synthea data set (the hospital and practitioner
// bundles, then patients 0..patients-1) as Synthea's exporter does with
// exporter.fhir.bulk_data=true: one line per resource, with its id, and
// every reference literal (a fullUrl's urn:uuid and a conditional
// reference to the directory both become Type/id).
func (s *Synthea) NDJSON(patients int, write func(typ string, line []byte) error) error {
	f := &flattener{byIdentifier: map[string]string{}}
	if err := f.bundle(s.HospitalBundle(), write); err != nil {
		return err
	}
	if err := f.bundle(s.PractitionerBundle(), write); err != nil {
		return err
	}
	for i := range patients {
		if err := f.bundle(s.PatientBundle(i, s.Encounters(i)), write); err != nil {
			return err
		}
	}
	return nil
}

// flattener turns transaction Bundles into NDJSON lines, remembering
// each resource's identifiers to resolve later conditional references.
type flattener struct {
	byIdentifier map[string]string // "Type?identifier=system|value" -> Type/id
}

func (f *flattener) bundle(b []byte, write func(typ string, line []byte) error) error {
	var bundle struct {
		Entry []struct {
			FullURL  string         `json:"fullUrl"`
			Resource map[string]any `json:"resource"`
		} `json:"entry"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&bundle); err != nil {
		return err
	}
	byURL := map[string]string{}
	for _, e := range bundle.Entry {
		typ, _ := e.Resource["resourceType"].(string)
		id, _ := e.Resource["id"].(string)
		lit := typ + "/" + id
		byURL[e.FullURL] = lit
		ids, _ := e.Resource["identifier"].([]any)
		for _, x := range ids {
			m, _ := x.(map[string]any)
			sys, _ := m["system"].(string)
			val, _ := m["value"].(string)
			if k := typ + "?identifier=" + sys + "|" + val; f.byIdentifier[k] == "" {
				f.byIdentifier[k] = lit
			}
		}
	}
	var unresolved error
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "reference" {
					if lit, ok := byURL[s]; ok {
						v[k] = lit
					} else if lit, ok := f.byIdentifier[s]; ok {
						v[k] = lit
					} else if strings.Contains(s, "?") && unresolved == nil {
						unresolved = fmt.Errorf("synth: reference %q matches nothing", s)
					}
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	for _, e := range bundle.Entry {
		if e.Resource["resourceType"] == "ExplanationOfBenefit" {
			// Synthea's EOB.referral names the Practitioner; R4 wants a
			// ServiceRequest there, and the gateway refuses it (literal,
			// or conditional once resolved). The generator leaves it out
			// already; kept for bundles written by older generators.
			delete(e.Resource, "referral")
		}
		walk(e.Resource)
		if unresolved != nil {
			return unresolved
		}
		line, err := json.Marshal(e.Resource)
		if err != nil {
			return err
		}
		if err := write(e.Resource["resourceType"].(string), line); err != nil {
			return err
		}
	}
	return nil
}
