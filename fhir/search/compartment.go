package search

import (
	"slices"
	"strings"

	"github.com/fhirgate/fhirgate/store"
)

// CompartmentParams returns the parameters of resourceType whose values
// put a resource in the compartment of the given type ("Patient" or
// "Practitioner"): a resource is in Patient/123's compartment when one of
// them references Patient/123. A resource is also in its own compartment
// (Patient/123 in Patient/123's), which the definitions leave implicit.
// Nil when resources of that type are never in such a compartment. The
// slice is shared: do not modify it.
func CompartmentParams(compartment, resourceType string) []string {
	return compartments[compartment][resourceType]
}

// Compartments returns the compartment types with definitions.
func Compartments() []string { return []string{"Patient", "Practitioner"} }

// Members returns the compartments a resource belongs to, from its index
// values: "Patient/<id>" for every patient its patient-compartment
// parameters reference (and the Patient itself), likewise
// "Practitioner/<id>".
func Members(resourceType, id string, idx []store.IndexValue) []string {
	var out []string
	add := func(ref string) {
		if !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	}
	for _, comp := range Compartments() {
		if resourceType == comp && id != "" {
			add(comp + "/" + id)
		}
		params := compartments[comp][resourceType]
		if len(params) == 0 {
			continue
		}
		for i := range idx {
			iv := &idx[i]
			if iv.Kind == store.IndexReference && strings.HasPrefix(iv.Ref, comp+"/") && slices.Contains(params, iv.Param) {
				add(iv.Ref)
			}
		}
	}
	return out
}
