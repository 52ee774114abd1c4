package search

import (
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search/internal/fhirpath"
	"github.com/fhirgate/fhirgate/store"
)

// emitter collects index values, one parameter at a time.
type emitter struct {
	out   []store.IndexValue
	start int // first value of the current parameter
	param string
	seen  map[store.IndexValue]struct{} // the parameter's values, once it has many
}

// scanLimit is how many values of one parameter are deduplicated by a
// scan; beyond it a map keeps a huge array (Group.member) linear.
const scanLimit = 32

func (e *emitter) begin(code string) {
	e.start = len(e.out)
	e.param = code
	clear(e.seen)
}

// add appends v unless the parameter already has it.
func (e *emitter) add(v store.IndexValue) {
	v.Param = e.param
	if n := len(e.out) - e.start; n < scanLimit {
		for i := e.start; i < len(e.out); i++ {
			if e.out[i] == v {
				return
			}
		}
	} else {
		if len(e.seen) == 0 {
			if e.seen == nil {
				e.seen = make(map[store.IndexValue]struct{}, 2*scanLimit)
			}
			for _, w := range e.out[e.start:] {
				e.seen[w] = struct{}{}
			}
		}
		if _, dup := e.seen[v]; dup {
			return
		}
		e.seen[v] = struct{}{}
	}
	e.out = append(e.out, v)
}

// item turns one selected element into index values by parameter type,
// reading the element's datatype from its known type or its JSON shape.
func (e *emitter) item(p *Param, it fhirpath.Item) {
	v := it.V
	if v == nil {
		return
	}
	switch p.Type {
	case TypeString:
		if p.Phonetic {
			e.phonetic(v)
		} else {
			e.str(v)
		}
	case TypeToken:
		e.token(it)
	case TypeReference:
		e.reference(v)
	case TypeDate:
		e.date(it)
	case TypeNumber:
		e.number(v)
	case TypeQuantity:
		e.quantity(it)
	case TypeURI:
		e.uri(v)
	}
}

// nameParts are the string elements of HumanName and Address that string
// search matches (R4 search.html, string): family, given, prefix, suffix,
// text; line, city, district, state, postalCode, country, text.
var nameParts = [...]string{"city", "country", "district", "family", "given", "line", "postalCode", "prefix", "state", "suffix", "text"}

// str indexes a string, or the parts of a HumanName or Address.
func (e *emitter) str(v *fhirjson.Value) {
	switch v.Kind {
	case fhirjson.String:
		if v.Str != "" {
			e.add(store.IndexValue{Kind: store.IndexString, Text: v.Str})
		}
	case fhirjson.Object:
		for _, k := range nameParts {
			eachString(v.Get(k), func(s string) {
				e.add(store.IndexValue{Kind: store.IndexString, Text: s})
			})
		}
	}
}

// phonetic indexes the Phonetic code of each name part (and each word of
// a name's text), so that "phonetic=Smyth" finds "Smith".
func (e *emitter) phonetic(v *fhirjson.Value) {
	add := func(s string) {
		forEachWord(s, func(w string) {
			if c := Phonetic(w); c != "" {
				e.add(store.IndexValue{Kind: store.IndexString, Text: c})
			}
		})
	}
	switch v.Kind {
	case fhirjson.String:
		add(v.Str)
	case fhirjson.Object:
		for _, k := range [...]string{"family", "given", "text"} {
			eachString(v.Get(k), add)
		}
	}
}

// eachString calls fn with v if it is a non-empty string, or with each
// non-empty string of the array v.
func eachString(v *fhirjson.Value, fn func(string)) {
	if v == nil {
		return
	}
	if v.Kind == fhirjson.String && v.Str != "" {
		fn(v.Str)
		return
	}
	for i := range v.Items {
		if s := &v.Items[i]; s.Kind == fhirjson.String && s.Str != "" {
			fn(s.Str)
		}
	}
}

// number indexes an integer or decimal.
func (e *emitter) number(v *fhirjson.Value) {
	if v.Kind == fhirjson.Object {
		v = v.Get("value") // a Quantity where a number is searched
		if v == nil {
			return
		}
	}
	if n, ok := parseNumber(v); ok {
		e.add(store.IndexValue{Kind: store.IndexNumber, Num: n})
	}
}

func parseNumber(v *fhirjson.Value) (float64, bool) {
	if v == nil || v.Kind != fhirjson.Number {
		return 0, false
	}
	n, err := strconv.ParseFloat(v.Str, 64)
	return n, err == nil
}

// uri indexes a uri, url or canonical. '|' cannot appear in a URI, so one
// that has it is a versioned canonical ("url|1.2", as in meta.profile):
// it is indexed with and without the version, as for references.
func (e *emitter) uri(v *fhirjson.Value) {
	if v.Kind != fhirjson.String || v.Str == "" {
		return
	}
	if url, _, ok := strings.Cut(v.Str, "|"); ok && url != "" {
		e.add(store.IndexValue{Kind: store.IndexURI, Text: url})
	}
	e.add(store.IndexValue{Kind: store.IndexURI, Text: v.Str})
}
