package fhirpath

import (
	"errors"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/google/go-cmp/cmp"
)

const observation = `{
  "resourceType": "Observation",
  "id": "o1",
  "contained": [{"resourceType": "Practitioner", "id": "pr"}],
  "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "1"}], "text": "one"},
  "valueQuantity": {"value": 5.0, "unit": "mg"},
  "effectivePeriod": {"start": "2020"},
  "valueSet": "not a choice",
  "subject": {"reference": "Patient/p1"},
  "performer": [
    {"reference": "Practitioner/a"},
    {"reference": "http://other.org/fhir/Organization/b/_history/2"},
    {"reference": "#pr"},
    {"type": "Patient", "identifier": {"value": "x"}},
    {"display": "nobody"}
  ],
  "component": [
    {"code": {"text": "c1"}, "valueString": "s"},
    {"code": {"text": "c2"}, "valueQuantity": {"value": 7}},
    {"code": {"text": "c3"}, "valueBoolean": false}
  ],
  "extension": [
    {"url": "http://x/a", "valueString": "ea"},
    {"url": "http://x/b", "valueInteger": 2}
  ],
  "telecom": [{"system": "email", "value": "a@b"}, {"system": "phone", "value": "123"}]
}`

// render shows a result compactly: JSON scalars as text, objects by their
// canonical JSON, resolve() targets as ->Type; a known type is appended.
func render(items []Item) []string {
	out := []string{}
	for _, it := range items {
		var s string
		switch {
		case it.V == nil:
			s = "->" + it.Type
		case it.V.Kind == fhirjson.Object || it.V.Kind == fhirjson.Array:
			s = string(fhirjson.Canonical(it.V))
		default:
			s = it.V.Str
		}
		if it.Type != "" && it.V != nil && it.V.Kind == fhirjson.Object {
			s += ":" + it.Type
		}
		out = append(out, s)
	}
	return out
}

func TestEval(t *testing.T) {
	res, err := fhirjson.Parse([]byte(observation), fhirjson.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr string
		want []string
	}{
		{"Observation.status", []string{"final"}},
		{"status", []string{"final"}},
		{"Resource.id", []string{"o1"}},
		{"DomainResource.id", []string{"o1"}},
		{"Patient.id", []string{}},
		{"Observation.code.coding.code", []string{"1"}},
		{"Observation.code.text | Observation.status", []string{"one", "final"}},
		// Choice elements: a plain name matches the typed key; as/ofType filter.
		{"Observation.value", []string{`{"unit":"mg","value":5.0}:Quantity`}},
		{"Observation.value as Quantity", []string{`{"unit":"mg","value":5.0}:Quantity`}},
		{"Observation.value.as(Quantity).unit", []string{"mg"}},
		{"Observation.value as string", []string{}},
		{"Observation.effective", []string{`{"start":"2020"}:Period`}},
		{"(Observation.effective as dateTime) | (Observation.effective as Period).start", []string{"2020"}},
		{"Observation.component.value.ofType(Quantity).value", []string{"7"}},
		{"Observation.component.value as string", []string{"s"}},
		{"(Observation.component.value as boolean)", []string{"false"}},
		{"Observation.component.code.text[1]", []string{"c2"}},
		{"Observation.component.code.text.first()", []string{"c1"}},
		{"Observation.component.code.text.last()", []string{"c3"}},
		// where with equality, resolve() is X.
		{"Observation.telecom.where(system='email').value", []string{"a@b"}},
		{"Observation.telecom.where(system = 'phone' or system = 'fax').value", []string{"123"}},
		{"Observation.telecom.where(system!='email').value", []string{"123"}},
		{"Observation.subject.where(resolve() is Patient).reference", []string{"Patient/p1"}},
		{"Observation.subject.where(resolve() is Group)", []string{}},
		{"Observation.performer.resolve()", []string{"->Practitioner", "->Organization", "->Practitioner", "->Patient"}},
		{"Observation.performer.where(resolve() is Organization).reference", []string{"http://other.org/fhir/Organization/b/_history/2"}},
		{"Observation.performer.where(resolve() is Practitioner).reference", []string{"Practitioner/a", "#pr"}},
		{"Observation.performer.where(resolve() is Patient).identifier.value", []string{"x"}},
		// exists, empty, not, booleans.
		{"Observation.status.exists()", []string{"true"}},
		{"Observation.nothing.exists()", []string{"false"}},
		{"Observation.nothing.empty()", []string{"true"}},
		{"Observation.status.exists() and Observation.status != 'final'", []string{"false"}},
		{"Observation.status.exists().not()", []string{"false"}},
		{"Observation.performer.exists(display = 'nobody')", []string{"true"}},
		{"Observation.component.value.where($this = false).exists()", []string{"true"}},
		{"Observation.component.where(value.value = 7.0).code.text", []string{"c2"}},
		{"Observation.component.where(value = 7).code.text", []string{}},
		{"Observation.nothing = 'x'", []string{}},
		{"true and {}", []string{}},
		{"false and {}", []string{"false"}},
		{"true or {}", []string{"true"}},
		// extension(url), %resource.
		{"Observation.extension('http://x/b').value", []string{"2"}},
		{"extension('http://x/a').value as string", []string{"ea"}},
		{"Observation.component.code.where(text = %resource.component.code.text.first()).text", []string{"c1"}},
		// "valueSet" is not value[x] of a type "Set"; an exact key wins.
		{"Observation.valueSet", []string{"not a choice"}},
		{"Observation.contained.id", []string{"pr"}},
	}
	var c Context
	for _, tt := range tests {
		x, err := Compile(tt.expr)
		if err != nil {
			t.Errorf("Compile(%q): %v", tt.expr, err)
			continue
		}
		if diff := cmp.Diff(tt.want, render(c.Eval(x, "Observation", &res))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.expr, diff)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		expr        string
		unsupported bool
	}{
		{"Patient.name.count()", true},
		{"Patient.name.given.join(',')", true},
		{"Patient.a + 1", true},
		{"Patient.a > 1", true},
		{"Patient.a implies Patient.b", true},
		{"%ucum", true},
		{"Patient.name.where()", false},
		{"Patient.", false},
		{"Patient.name)", false},
		{"(Patient.name", false},
		{"Patient.name.where(system='x", false},
		{"Patient..name", false},
		{"Patient @", false},
		{"", false},
		{"extension(url)", true},
		{strings.Repeat("(", 100) + "a" + strings.Repeat(")", 100), false},
	}
	for _, tt := range tests {
		_, err := Compile(tt.expr)
		if err == nil {
			t.Errorf("Compile(%q) succeeded", tt.expr)
			continue
		}
		if got := errors.Is(err, ErrUnsupported); got != tt.unsupported {
			t.Errorf("Compile(%q) = %v; unsupported %v, want %v", tt.expr, err, got, tt.unsupported)
		}
	}
}

func TestParseReference(t *testing.T) {
	tests := []struct{ ref, typ, id, norm string }{
		{"Patient/123", "Patient", "123", "Patient/123"},
		{"Patient/123/_history/4", "Patient", "123", "Patient/123"},
		{"http://x.org/fhir/Patient/123", "Patient", "123", "http://x.org/fhir/Patient/123"},
		{"http://x.org/fhir/Patient/123/_history/1", "Patient", "123", "http://x.org/fhir/Patient/123"},
		{"http://hl7.org/fhir/ValueSet/abc|4.0.1", "ValueSet", "abc", "http://hl7.org/fhir/ValueSet/abc"},
		{"http://Patient/1", "", "", "http://Patient/1"},
		{"http://x.org", "", "", "http://x.org"},
		{"#p1", "", "", ""},
		{"urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0", "", "", ""},
		{"a/Patient/1", "", "", "a/Patient/1"},
		{"patient/1", "", "", "patient/1"},
		{"Patient", "", "", "Patient"},
		{"Patient/", "", "", "Patient/"},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		typ, id, norm := ParseReference(tt.ref)
		if typ != tt.typ || id != tt.id || norm != tt.norm {
			t.Errorf("ParseReference(%q) = %q, %q, %q; want %q, %q, %q", tt.ref, typ, id, norm, tt.typ, tt.id, tt.norm)
		}
	}
}

// FuzzCompile checks that no input crashes the parser, and that whatever
// compiles evaluates without crashing.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"Patient.name.where(use='official').given",
		"(Observation.value as Quantity) | (Observation.value as SampledData)",
		"Observation.subject.where(resolve() is Patient)",
		"Patient.deceased.exists() and Patient.deceased != false",
		"Bundle.entry[0].resource",
		"Observation.extension('http://x/a').value.ofType(string)",
		"'a\\u0041' = `b`", "%resource.id", "$this", "{}", "1.5 = 1.50",
	} {
		f.Add(s)
	}
	res, err := fhirjson.Parse([]byte(observation), fhirjson.Limits{})
	if err != nil {
		f.Fatal(err)
	}
	var c Context
	f.Fuzz(func(t *testing.T, src string) {
		x, err := Compile(src)
		if err != nil {
			return
		}
		c.Eval(x, "Observation", &res)
	})
}
