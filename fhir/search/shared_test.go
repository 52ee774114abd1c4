package search

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

func TestShared(t *testing.T) {
	tests := []struct {
		typ, param   string
		base, target string // "" when not shared
	}{
		{"DiagnosticReport", "patient", "subject", "Patient"},
		{"Appointment", "patient", "actor", "Patient"},
		{"Appointment", "practitioner", "actor", "Practitioner"},
		{"Appointment", "location", "actor", "Location"},
		{"Observation", "patient", "subject", "Patient"},
		{"AuditEvent", "patient", "", ""}, // agent.who or entity.what: a union, no single base
		{"DiagnosticReport", "subject", "", ""},
		{"Patient", "general-practitioner", "", ""},
		{"AllergyIntolerance", "patient", "", ""}, // AllergyIntolerance.patient: an element of its own
		{"Nope", "patient", "", ""},
	}
	for _, tt := range tests {
		base, target, ok := Shared(tt.typ, tt.param)
		if ok != (tt.base != "") || base != tt.base || target != tt.target {
			t.Errorf("Shared(%s, %s) = %q, %q, %v; want %q, %q", tt.typ, tt.param, base, target, ok, tt.base, tt.target)
		}
	}
	// Every base is indexed, and a reference parameter of the same type.
	n := 0
	for typ, m := range sharedRefs {
		for code, s := range m {
			n++
			if err := Indexed(typ, s.base); err != nil {
				t.Errorf("%s.%s shares %s, which is not indexed: %v", typ, code, s.base, err)
			}
			if p, ok := Lookup(typ, s.base); !ok || p.Type != TypeReference {
				t.Errorf("%s.%s shares %s, no reference parameter", typ, code, s.base)
			}
		}
	}
	t.Logf("%d shared parameters in R4", n)
}

// TestSharedValuesAreTheBases: on every official example (and every
// resource in the example Bundles), each value a shared parameter yields
// that is a reference on this server to its target type is also a value of
// its base parameter: the store may keep it under the base's key alone.
func TestSharedValuesAreTheBases(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*", "*.json"))
	if len(files) == 0 {
		t.Skip("SKIP: official examples unavailable (../shared is absent; CI always has it)")
	}
	var resources []*fhirjson.Value
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := fhirjson.Parse(b, fhirjson.Limits{})
		if err != nil {
			continue // the invalid examples are the parser's business
		}
		resources = append(resources, &v)
		if v.GetString("resourceType") == "Bundle" {
			if es := v.Get("entry"); es != nil {
				for i := range es.Items {
					if r := es.Items[i].Get("resource"); r != nil {
						resources = append(resources, r)
					}
				}
			}
		}
	}
	checked := 0
	for _, r := range resources {
		typ := r.GetString("resourceType")
		if len(sharedRefs[typ]) == 0 {
			continue
		}
		idx, err := Extract(typ, r)
		if err != nil {
			t.Fatalf("%s/%s: %v", typ, r.GetString("id"), err)
		}
		have := map[string]bool{}
		for _, iv := range idx {
			have[iv.Param+" "+iv.Ref] = true
		}
		for _, iv := range idx {
			s, ok := sharedRefs[typ][iv.Param]
			if !ok || !strings.HasPrefix(iv.Ref, s.target+"/") || strings.Contains(iv.Ref[len(s.target)+1:], "/") {
				continue
			}
			checked++
			if !have[s.base+" "+iv.Ref] {
				t.Errorf("%s/%s: %s holds %s, %s does not", typ, r.GetString("id"), iv.Param, iv.Ref, s.base)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no shared value in the examples: the test checks nothing")
	}
	t.Logf("%d shared values checked in %d resources", checked, len(resources))
}
