// Package fhir is the gateway's edge to the FHIR R4 model: it parses and
// validates incoming resources (strict JSON, then github.com/google/fhir/go
// jsonformat, then the core rules jsonformat leaves out), stamps server
// metadata, produces the canonical bytes that are stored and served, and
// builds OperationOutcome, Bundle and CapabilityStatement bodies.
package fhir

import (
	"slices"
	"sync"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

var resourceTypes = sync.OnceValue(func() []string {
	// The ContainedResource oneof lists every R4 resource type, exactly the
	// set the validator accepts.
	o := (&rpb.ContainedResource{}).ProtoReflect().Descriptor().Oneofs().Get(0)
	types := make([]string, 0, o.Fields().Len())
	for i := 0; i < o.Fields().Len(); i++ {
		types = append(types, string(o.Fields().Get(i).Message().Name()))
	}
	slices.Sort(types)
	return types
})

// ResourceTypes returns the names of all R4 resource types, sorted.
func ResourceTypes() []string { return resourceTypes() }

// IsResourceType reports whether name is an R4 resource type.
func IsResourceType(name string) bool {
	_, ok := slices.BinarySearch(resourceTypes(), name)
	return ok
}

// ValidID reports whether id matches the R4 id rule [A-Za-z0-9\-\.]{1,64}.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
