package fhir

import (
	"strings"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// The element schema comes from google/fhir's R4 protos, the same
// definitions jsonformat validates against: a message per datatype and
// resource, a field per element, a oneof "choice" message per choice
// element (value[x]).

// element is what one JSON key of a message may hold.
type element struct {
	msg      protoreflect.MessageDescriptor // nil for resources held in Any
	repeated bool
	resource bool                         // a nested resource (contained, Bundle.entry.resource)
	field    protoreflect.FieldDescriptor // the proto field (of a choice: the option's)
	choice   protoreflect.FieldDescriptor // the choice element (value[x]) the key is one type of
}

var (
	resourceMsgs = sync.OnceValue(func() map[string]protoreflect.MessageDescriptor {
		o := (&rpb.ContainedResource{}).ProtoReflect().Descriptor().Oneofs().Get(0)
		m := make(map[string]protoreflect.MessageDescriptor, o.Fields().Len())
		for i := 0; i < o.Fields().Len(); i++ {
			md := o.Fields().Get(i).Message()
			m[string(md.Name())] = md
		}
		return m
	})
	elementCache sync.Map // protoreflect.FullName -> map[string]element
)

// elements returns the JSON keys a message accepts.
func elements(md protoreflect.MessageDescriptor) map[string]element {
	if m, ok := elementCache.Load(md.FullName()); ok {
		return m.(map[string]element)
	}
	m := map[string]element{}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		fm := f.Message()
		switch {
		case fm == nil:
		case fm.FullName() == "google.protobuf.Any" || fm.Name() == "ContainedResource":
			m[f.JSONName()] = element{repeated: f.IsList(), resource: true, field: f}
		case isChoice(fm):
			opts := fm.Oneofs().Get(0).Fields()
			for j := 0; j < opts.Len(); j++ {
				o := opts.Get(j)
				m[f.JSONName()+upperFirst(o.JSONName())] = element{msg: o.Message(), repeated: f.IsList(), field: o, choice: f}
			}
		default:
			m[f.JSONName()] = element{msg: fm, repeated: f.IsList(), field: f}
		}
	}
	if md.Name() == "Reference" {
		// jsonformat maps Reference.reference onto typed id fields; in JSON
		// it is one string.
		m["reference"] = element{msg: (&rpb.Bundle{}).ProtoReflect().Descriptor().Fields().ByName("id").Message()}
	}
	elementCache.Store(md.FullName(), m)
	return m
}

func isChoice(md protoreflect.MessageDescriptor) bool {
	return md.Oneofs().Len() == 1 && md.Oneofs().Get(0).Name() == "choice" && md.Fields().Len() == md.Oneofs().Get(0).Fields().Len()
}

// isPrimitive: FHIR primitives are the messages whose fields, apart from
// id and extension, are all scalars (value; or value_us, timezone and
// precision for dates and times).
func isPrimitive(md protoreflect.MessageDescriptor) bool {
	if v, ok := primitiveCache.Load(md.FullName()); ok {
		return v.(bool)
	}
	scalars, prim := 0, true
	for i := 0; i < md.Fields().Len(); i++ {
		f := md.Fields().Get(i)
		switch {
		case f.Name() == "id" || f.Name() == "extension":
		case f.Message() != nil:
			prim = false
		default:
			scalars++
		}
	}
	prim = prim && scalars > 0
	primitiveCache.Store(md.FullName(), prim)
	return prim
}

var primitiveCache sync.Map

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// uriTypes may not contain white space (R4 datatypes: uri is \S*).
var uriTypes = map[protoreflect.Name]bool{"Uri": true, "Url": true, "Canonical": true, "Oid": true, "Uuid": true}
