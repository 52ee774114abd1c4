package search

import (
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search/internal/fhirpath"
	"github.com/fhirgate/fhirgate/store"
)

// iso4217 is the system of Money currencies.
const iso4217 = "urn:iso:std:iso:4217"

// quantity indexes a Quantity (or Age, Duration, SimpleQuantity, ...), a
// Money, or each end of a Range. A Range is really an interval: with one
// Num per value the index keeps its two ends, which answers gt/lt/ge/le
// about the ends but not "eq a value inside" (see the IndexValue note in
// the package report).
func (e *emitter) quantity(it fhirpath.Item) {
	v := it.V
	switch {
	case v.Kind == fhirjson.Number:
		if n, ok := parseNumber(v); ok {
			e.add(store.IndexValue{Kind: store.IndexQuantity, Num: n})
		}
	case v.Kind != fhirjson.Object, it.Type == "SampledData":
	case it.Type == "Range" || it.Type == "" && (v.Get("low") != nil || v.Get("high") != nil):
		for _, k := range [...]string{"low", "high"} {
			if q := v.Get(k); q != nil {
				e.quantityValue(q)
			}
		}
	default:
		e.quantityValue(v)
	}
}

// quantityValue indexes value with system|code; when the unit differs
// from the code it is indexed too, without system, because a search
// "5||mg" matches the code or the unit.
func (e *emitter) quantityValue(q *fhirjson.Value) {
	n, ok := parseNumber(q.Get("value"))
	if !ok {
		return
	}
	if cur := q.GetString("currency"); cur != "" {
		e.add(store.IndexValue{Kind: store.IndexQuantity, Num: n, System: iso4217, Code: cur})
		return
	}
	code, unit := q.GetString("code"), q.GetString("unit")
	if code == "" {
		e.add(store.IndexValue{Kind: store.IndexQuantity, Num: n, Code: unit})
		return
	}
	e.add(store.IndexValue{Kind: store.IndexQuantity, Num: n, System: q.GetString("system"), Code: code})
	if unit != "" && unit != code {
		e.add(store.IndexValue{Kind: store.IndexQuantity, Num: n, Code: unit})
	}
}
