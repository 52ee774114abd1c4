package search

import (
	"strings"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search/internal/fhirpath"
	"github.com/fhirgate/fhirgate/store"
)

// reference indexes a Reference as "Type/id" (relative; any
// "/_history/v" dropped, since a search matches the resource, not the
// version) or as its absolute URL. Local references ("#id", to contained
// resources that are not searchable on their own) and urn:uuid references
// (which a transaction rewrites before extraction) are skipped, as are
// logical references holding only an identifier: IndexValue has no place
// for them (see the :identifier note in the package report).
//
// A canonical or uri element under a reference parameter is indexed as
// its URL; a versioned canonical ("url|1.2") also as written, so that a
// search with or without the version finds it.
func (e *emitter) reference(v *fhirjson.Value) {
	switch v.Kind {
	case fhirjson.Object:
		ref := v.GetString("reference")
		if ref == "" || ref[0] == '#' || strings.HasPrefix(ref, "urn:uuid:") {
			return
		}
		if strings.HasPrefix(ref, "urn:") {
			e.add(store.IndexValue{Kind: store.IndexReference, Ref: ref})
			return
		}
		if _, _, norm := fhirpath.ParseReference(ref); norm != "" {
			e.add(store.IndexValue{Kind: store.IndexReference, Ref: norm})
		}
	case fhirjson.String:
		s := v.Str
		if s == "" || s[0] == '#' {
			return
		}
		url, _, versioned := strings.Cut(s, "|")
		if url != "" {
			e.add(store.IndexValue{Kind: store.IndexReference, Ref: url})
		}
		if versioned {
			e.add(store.IndexValue{Kind: store.IndexReference, Ref: s})
		}
	}
}
