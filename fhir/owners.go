package fhir

import (
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	apb "github.com/google/fhir/go/proto/google/fhir/proto/annotations_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

// Which records are a patient's data beyond the Patient compartment
// (docs/security.md): a record is tied to a patient when an element of
// its own definition (or of its backbone elements) whose type is a
// Reference that may point to a Patient (Reference(Patient) or
// Reference(Any)) names one, or when a resource it holds (contained,
// Bundle.entry.resource, Parameters.parameter.resource) is tied to one.
// The elements come from the R4 definitions (google/fhir's protos and
// their valid_reference_type annotations), not from a list kept by hand:
// Binary.securityContext, Task.for, Device.patient, Person.link.target,
// Schedule.actor, ... Elements of general datatypes (Annotation.author,
// Extension.valueReference, Signature.who) are not followed: they say who
// wrote or signed, not whom the record is about.

// PatientPath is an element path (JSON names from the resource's root)
// whose Reference may name a Patient.
type PatientPath []string

func (p PatientPath) String() string { return strings.Join(p, ".") }

var patientPaths = sync.OnceValue(func() map[string][]PatientPath {
	out := map[string][]PatientPath{}
	for typ, md := range resourceMsgs() {
		var paths []PatientPath
		collectPatientPaths(md, md, nil, nil, &paths)
		slices.SortFunc(paths, func(a, b PatientPath) int { return strings.Compare(a.String(), b.String()) })
		out[typ] = paths
	}
	return out
})

var referenceName = (&dpb.Reference{}).ProtoReflect().Descriptor().FullName()

// collectPatientPaths adds the paths below md (a resource or one of its
// backbone elements) that may reference a Patient.
// A backbone element that holds itself (Questionnaire.item.item) is
// followed once: its paths below repeat the ones already found.
func collectPatientPaths(root, md protoreflect.MessageDescriptor, at []string, seen []protoreflect.FullName, out *[]PatientPath) {
	if slices.Contains(seen, md.FullName()) {
		return
	}
	seen = append(slices.Clip(seen), md.FullName())
	for key, el := range elements(md) {
		if el.msg == nil || el.resource || key == "extension" || key == "modifierExtension" {
			continue
		}
		path := append(slices.Clip(at), key)
		switch {
		case el.msg.FullName() == referenceName:
			if mayNamePatient(el.field) {
				*out = append(*out, PatientPath(path))
			}
		case ownElement(root, el.msg):
			collectPatientPaths(root, el.msg, path, seen, out)
		}
	}
}

// mayNamePatient: the Reference element allows Patient targets.
func mayNamePatient(f protoreflect.FieldDescriptor) bool {
	if f == nil {
		return false
	}
	allowed, _ := proto.GetExtension(f.Options(), apb.E_ValidReferenceType).([]string)
	return slices.Contains(allowed, "Patient") || slices.Contains(allowed, "Resource")
}

// ownElement: md is a backbone element declared inside the resource
// root (not a general datatype).
func ownElement(root, md protoreflect.MessageDescriptor) bool {
	return strings.HasPrefix(string(md.FullName()), string(root.FullName())+".")
}

// PatientPaths returns the element paths of typ that may name a Patient.
func PatientPaths(typ string) []PatientPath { return patientPaths()[typ] }

// maxNesting bounds how deep held resources are followed (a Bundle of
// Bundles); the parser's depth limit bounds it too.
const maxNesting = 8

// PatientRefs returns the patients ("Patient/<id>", sorted, once each) a
// resource of type typ is tied to through the elements of PatientPaths
// and the resources it holds. Only relative references name a patient of
// this server; absolute URLs, urn:uuid: and #fragments name none.
func PatientRefs(typ string, root *fhirjson.Value) []string {
	var out []string
	patientRefs(typ, root, &out, 0)
	slices.Sort(out)
	return slices.Compact(out)
}

func patientRefs(typ string, root *fhirjson.Value, out *[]string, depth int) {
	if depth > maxNesting || root == nil || root.Kind != fhirjson.Object {
		return
	}
	for _, p := range PatientPaths(typ) {
		walkPath(root, p, func(ref *fhirjson.Value) {
			if r := patientRef(ref.GetString("reference")); r != "" {
				*out = append(*out, r)
			}
		})
	}
	// Held resources: contained ones, and a Bundle's or Parameters'.
	eachHeld(root, func(res *fhirjson.Value) {
		patientRefs(res.GetString("resourceType"), res, out, depth+1)
	})
}

// patientRef returns "Patient/<id>" for a relative reference to a Patient
// (with or without a version), else "".
func patientRef(ref string) string {
	rest, ok := strings.CutPrefix(ref, "Patient/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/_history/")
	if !ValidID(id) {
		return ""
	}
	return "Patient/" + id
}

// walkPath calls fn with every value at path below v (arrays fan out).
func walkPath(v *fhirjson.Value, path []string, fn func(*fhirjson.Value)) {
	switch v.Kind {
	case fhirjson.Array:
		for i := range v.Items {
			walkPath(&v.Items[i], path, fn)
		}
		return
	case fhirjson.Object:
	default:
		return
	}
	if len(path) == 0 {
		fn(v)
		return
	}
	if next := v.Get(path[0]); next != nil {
		walkPath(next, path[1:], fn)
	}
}

// eachHeld calls fn with each resource held by root: contained[],
// Bundle.entry[].resource, Parameters.parameter[].resource (and parts).
func eachHeld(root *fhirjson.Value, fn func(*fhirjson.Value)) {
	each := func(arr *fhirjson.Value, key string) {
		if arr == nil || arr.Kind != fhirjson.Array {
			return
		}
		for i := range arr.Items {
			it := &arr.Items[i]
			if key == "" {
				fn(it)
			} else if r := it.Get(key); r != nil && r.Kind == fhirjson.Object {
				fn(r)
			}
		}
	}
	each(root.Get("contained"), "")
	each(root.Get("entry"), "resource")
	var params func(*fhirjson.Value)
	params = func(arr *fhirjson.Value) {
		each(arr, "resource")
		if arr == nil || arr.Kind != fhirjson.Array {
			return
		}
		for i := range arr.Items {
			if part := arr.Items[i].Get("part"); part != nil {
				params(part)
			}
		}
	}
	if root.GetString("resourceType") == "Parameters" {
		params(root.Get("parameter"))
	}
}
