package fhir

import (
	"slices"
	"strings"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

// Subset returns body reduced as _summary (true, text, data) and
// _elements ask (search.html#summary, #elements). A reduced resource is
// marked with the SUBSETTED tag so nobody mistakes it for the whole.
// summary "" or "false" with no elements returns body unchanged.
func Subset(body []byte, typ, summary string, elements []string) ([]byte, error) {
	if (summary == "" || summary == "false") && len(elements) == 0 {
		return body, nil
	}
	root, err := fhirjson.Parse(body, Limits)
	if err != nil {
		return nil, err
	}
	keep := func(string) bool { return true }
	switch {
	case summary == "true":
		keep = matcher(summaryElements[typ], nil)
	case summary == "text":
		keep = matcher(mandatoryElements[typ], []string{"text", "id", "meta"})
	case summary == "data":
		keep = func(k string) bool { return k != "text" }
	case len(elements) > 0:
		keep = matcher(mandatoryElements[typ], append([]string{"id", "meta"}, elements...))
	}
	out := fhirjson.Value{Kind: fhirjson.Object}
	for _, m := range root.Members {
		if m.Key == "resourceType" || keep(m.Key) {
			out.Members = append(out.Members, m) // already in canonical order
		}
	}
	markSubsetted(&out)
	return fhirjson.Canonical(&out), nil
}

// matcher accepts JSON keys naming one of the elements: "name", a choice
// "value[x]" (valueQuantity, valueString...), or a primitive's "_name".
func matcher(lists ...[]string) func(string) bool {
	var exact, prefixes []string
	for _, l := range lists {
		for _, e := range l {
			if p, ok := strings.CutSuffix(e, "[x]"); ok {
				prefixes = append(prefixes, p)
			} else {
				exact = append(exact, e)
			}
		}
	}
	return func(key string) bool {
		key = strings.TrimPrefix(key, "_")
		if slices.Contains(exact, key) {
			return true
		}
		for _, p := range prefixes {
			if rest, ok := strings.CutPrefix(key, p); ok && rest != "" && rest[0] >= 'A' && rest[0] <= 'Z' {
				return true
			}
		}
		return false
	}
}

const subsettedSystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"

func markSubsetted(r *fhirjson.Value) {
	meta := r.Get("meta")
	if meta == nil {
		r.Set("meta", fhirjson.Value{Kind: fhirjson.Object})
		meta = r.Get("meta")
	}
	tag := fhirjson.Obj(fhirjson.KV("system", fhirjson.Str(subsettedSystem)), fhirjson.KV("code", fhirjson.Str("SUBSETTED")))
	if tags := meta.Get("tag"); tags != nil && tags.Kind == fhirjson.Array {
		tags.Items = append(slices.Clone(tags.Items), tag)
		return
	}
	meta.Set("tag", fhirjson.Arr(tag))
}
