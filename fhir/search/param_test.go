package search

import (
	"errors"
	"slices"
	"testing"

	"github.com/fhirgate/fhirgate/fhir/search/internal/fhirpath"
)

func TestResourceTypes(t *testing.T) {
	types := ResourceTypes()
	if len(types) != 146 {
		t.Errorf("%d resource types, R4 has 146", len(types))
	}
	if !slices.IsSorted(types) {
		t.Error("ResourceTypes not sorted")
	}
	for _, name := range []string{"Patient", "Parameters", "Binary", "Bundle", "VisionPrescription", "MedicinalProductUndesirableEffect"} {
		if !IsResourceType(name) {
			t.Errorf("IsResourceType(%q) = false", name)
		}
	}
	for _, name := range []string{"", "Resource", "DomainResource", "patient", "MedicinalProductDefinition", "Quantity"} {
		if IsResourceType(name) {
			t.Errorf("IsResourceType(%q) = true", name)
		}
	}
	types[0] = "changed"
	if ResourceTypes()[0] == "changed" {
		t.Error("ResourceTypes returns the shared slice")
	}
}

func TestParams(t *testing.T) {
	for _, typ := range ResourceTypes() {
		ps := Params(typ)
		if !slices.IsSortedFunc(ps, func(a, b Param) int { return cmpString(a.Code, b.Code) }) {
			t.Errorf("%s params not sorted", typ)
		}
		for _, common := range []string{"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_content", "_query", "_filter"} {
			if _, ok := Lookup(typ, common); !ok {
				t.Errorf("%s lacks %s", typ, common)
			}
		}
		_, hasText := Lookup(typ, "_text")
		if want := !slices.Contains(nonDomainTypes, typ); hasText != want {
			t.Errorf("%s has _text: %v, want %v", typ, hasText, want)
		}
	}
	p, ok := Lookup("Patient", "patient")
	if ok {
		t.Errorf("Patient has a patient parameter: %+v", p)
	}
	// A shared definition keeps only its own type's branches.
	p, ok = Lookup("DiagnosticReport", "patient")
	if !ok || p.Expression != "DiagnosticReport.subject.where(resolve() is Patient)" || p.Type != TypeReference ||
		!slices.Equal(p.Targets, []string{"Patient", "Group"}) || p.URL != "http://hl7.org/fhir/SearchParameter/clinical-patient" {
		t.Errorf("DiagnosticReport patient = %+v", p)
	}
	p, ok = Lookup("Observation", "code-value-quantity")
	if !ok || p.Type != TypeComposite || len(p.Components) != 2 || p.Components[1].Type != TypeQuantity ||
		p.Components[1].Expression != "value.as(Quantity)" || p.Expression != "Observation" {
		t.Errorf("Observation code-value-quantity = %+v", p)
	}
	if p, _ := Lookup("Patient", "phonetic"); !p.Phonetic {
		t.Error("Patient phonetic is not Phonetic")
	}
	if Params("Nope") != nil {
		t.Error("Params of an unknown type")
	}
	if TypeQuantity.String() != "quantity" || TypeSpecial.String() != "special" {
		t.Error("ParamType.String")
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestCompartments(t *testing.T) {
	tests := []struct {
		comp, typ string
		want      []string
	}{
		{"Patient", "Observation", []string{"subject", "performer"}},
		{"Patient", "Appointment", []string{"actor"}},
		{"Patient", "DiagnosticReport", []string{"subject"}},
		{"Patient", "Consent", []string{"patient"}},
		{"Patient", "AuditEvent", []string{"patient"}},
		{"Patient", "Patient", []string{"link"}},
		{"Patient", "Practitioner", nil},
		{"Practitioner", "DiagnosticReport", []string{"performer"}},
		{"Practitioner", "Practitioner", nil}, // by identity ({def})
		{"Practitioner", "Patient", []string{"general-practitioner"}},
		{"Device", "Patient", nil},
	}
	for _, tt := range tests {
		if got := CompartmentParams(tt.comp, tt.typ); !slices.Equal(got, tt.want) {
			t.Errorf("CompartmentParams(%s, %s) = %q, want %q", tt.comp, tt.typ, got, tt.want)
		}
	}
	// Compartment membership is decided on index values: each parameter
	// must be a reference parameter that Extract indexes.
	for _, comp := range Compartments() {
		for _, typ := range ResourceTypes() {
			for _, code := range CompartmentParams(comp, typ) {
				p, ok := Lookup(typ, code)
				if !ok || p.Type != TypeReference {
					t.Errorf("%s compartment: %s.%s is not a reference parameter", comp, typ, code)
				}
				if err := Indexed(typ, code); err != nil {
					t.Errorf("%s compartment: %s.%s: %v", comp, typ, code, err)
				}
			}
		}
	}
}

// queryLayer are the parameters without an expression: full-text search
// (_content, _text), named queries (_query) and the filter language
// (_filter). They cannot be indexed from an expression.
var queryLayer = []string{"_content", "_filter", "_query", "_text"}

// TestNotIndexed lists every parameter Extract does not index, by reason,
// so that nothing is skipped silently: a new unsupported expression fails
// here until it is implemented or listed.
func TestNotIndexed(t *testing.T) {
	// Expressions outside the FHIRPath subset: none in R4 core.
	var wantUnsupported []string
	var unsupported, composite, special []string
	for _, typ := range ResourceTypes() {
		for _, p := range Params(typ) {
			err := Indexed(typ, p.Code)
			switch {
			case err == nil:
			case !errors.Is(err, ErrNotIndexed):
				t.Errorf("%s.%s: %v", typ, p.Code, err)
			case p.Expression == "":
				if !slices.Contains(queryLayer, p.Code) {
					t.Errorf("%s.%s has no expression", typ, p.Code)
				}
			case p.Type == TypeComposite:
				composite = append(composite, typ+"."+p.Code)
				// Its parts must compile, for the day the store indexes tuples.
				for _, c := range p.Components {
					if _, err := fhirpath.Compile(c.Expression); err != nil {
						t.Errorf("%s.%s component %s: %v", typ, p.Code, c.Expression, err)
					}
				}
			case p.Type == TypeSpecial:
				special = append(special, typ+"."+p.Code)
			default:
				t.Logf("%s.%s: %v", typ, p.Code, err)
				unsupported = append(unsupported, typ+"."+p.Code)
			}
		}
	}
	if !slices.Equal(unsupported, wantUnsupported) {
		t.Errorf("unsupported expressions %q, want %q", unsupported, wantUnsupported)
	}
	if want := []string{"Location.near"}; !slices.Equal(special, want) {
		t.Errorf("special parameters %q, want %q", special, want)
	}
	if len(composite) != 72 {
		t.Errorf("%d composite parameters, want 72: %q", len(composite), composite)
	}
	if err := Indexed("Nope", "x"); !errors.Is(err, ErrUnknownType) {
		t.Errorf("Indexed(Nope) = %v", err)
	}
	if err := Indexed("Patient", "nope"); !errors.Is(err, ErrNotIndexed) {
		t.Errorf("Indexed(Patient, nope) = %v", err)
	}
}
