package search

import (
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search/internal/fhirpath"
	"github.com/fhirgate/fhirgate/store"
)

// token indexes an element for a token parameter, following the R4
// datatype rules (search.html, token): a primitive (code, string, id, uri,
// boolean) is a code without system; Coding is system|code with its display
// as text; CodeableConcept is each of its codings plus its text; Identifier
// is system|value with its type's text; ContactPoint is its value (the
// ContactPoint system is not a token system).
func (e *emitter) token(it fhirpath.Item) {
	v := it.V
	switch v.Kind {
	case fhirjson.String, fhirjson.Bool, fhirjson.Number:
		if v.Str != "" {
			e.add(store.IndexValue{Kind: store.IndexToken, Code: v.Str})
		}
		return
	case fhirjson.Object:
	default:
		return
	}
	switch tokenShape(it) {
	case "CodeableConcept":
		if cs := v.Get("coding"); cs != nil {
			for i := range cs.Items {
				e.coding(&cs.Items[i])
			}
		}
		if t := v.GetString("text"); t != "" {
			e.add(store.IndexValue{Kind: store.IndexToken, Text: t})
		}
	case "Coding":
		e.coding(v)
	case "Identifier":
		if val := v.GetString("value"); val != "" {
			e.add(store.IndexValue{Kind: store.IndexToken, System: v.GetString("system"), Code: val,
				Text: v.Get("type").GetString("text")})
		}
	case "ContactPoint":
		if val := v.GetString("value"); val != "" {
			e.add(store.IndexValue{Kind: store.IndexToken, Code: val})
		}
	}
}

func (e *emitter) coding(c *fhirjson.Value) {
	code, display := c.GetString("code"), c.GetString("display")
	if code == "" && display == "" {
		return
	}
	e.add(store.IndexValue{Kind: store.IndexToken, System: c.GetString("system"), Code: code, Text: display})
}

// contactPointSystems are the ContactPoint.system codes; an Identifier's
// system is a URI, never one of these.
var contactPointSystems = map[string]bool{
	"phone": true, "fax": true, "email": true, "pager": true, "url": true, "sms": true, "other": true,
}

// tokenShape is the datatype of a token element: its type when the path
// told it (a choice element), else judged by the keys present.
func tokenShape(it fhirpath.Item) string {
	switch it.Type {
	case "CodeableConcept", "Coding", "Identifier", "ContactPoint":
		return it.Type
	}
	v := it.V
	switch {
	case v.Get("coding") != nil:
		return "CodeableConcept"
	case v.Get("value") != nil:
		if v.Get("rank") != nil ||
			contactPointSystems[v.GetString("system")] && v.Get("type") == nil && v.Get("assigner") == nil {
			return "ContactPoint"
		}
		return "Identifier"
	case v.Get("code") != nil || v.Get("system") != nil || v.Get("display") != nil:
		return "Coding"
	case v.Get("text") != nil:
		return "CodeableConcept"
	}
	return ""
}
