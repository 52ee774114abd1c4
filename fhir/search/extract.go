package search

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search/internal/fhirpath"
	"github.com/fhirgate/fhirgate/store"
)

var (
	// ErrUnknownType is returned for a name that is no R4 resource type.
	ErrUnknownType = errors.New("search: unknown resource type")
	// ErrNotIndexed marks a parameter that extraction does not index.
	ErrNotIndexed = errors.New("search: parameter not indexed")
)

// compiledParam is a parameter ready to extract, or the reason it is not.
type compiledParam struct {
	*Param
	expr *fhirpath.Expr
	err  error
}

// typeIndex holds a type's compiled parameters, compiled on first use so
// that start-up does not pay for 146 types when a server sees a dozen.
type typeIndex struct {
	once   sync.Once
	typ    string
	params []compiledParam
	hint   atomic.Int32 // values in the last extraction
}

var typeIndexes = func() map[string]*typeIndex {
	m := make(map[string]*typeIndex, len(resourceTypes))
	for _, t := range resourceTypes {
		m[t] = &typeIndex{typ: t}
	}
	return m
}()

func (ti *typeIndex) compiled() []compiledParam {
	ti.once.Do(func() {
		ps := params[ti.typ]
		ti.params = make([]compiledParam, len(ps))
		for i := range ps {
			ti.params[i] = compileParam(&ps[i])
		}
	})
	return ti.params
}

func compileParam(p *Param) compiledParam {
	c := compiledParam{Param: p}
	switch {
	case p.Expression == "":
		c.err = fmt.Errorf("%w: %s has no expression (served by the query layer, if at all)", ErrNotIndexed, p.Code)
	case p.Type == TypeComposite:
		c.err = fmt.Errorf("%w: composite %s (store.IndexValue has no tuple form)", ErrNotIndexed, p.Code)
	case p.Type == TypeSpecial:
		c.err = fmt.Errorf("%w: special %s needs its own index", ErrNotIndexed, p.Code)
	default:
		x, err := fhirpath.Compile(p.Expression)
		if err != nil {
			c.err = fmt.Errorf("%w: %s: %w", ErrNotIndexed, p.Code, err)
		}
		c.expr = x
	}
	return c
}

// Indexed returns nil when Extract indexes parameter code of resourceType,
// else an error (wrapping ErrNotIndexed or ErrUnknownType) saying why, so
// the query layer can refuse a search it cannot answer instead of
// returning nothing.
func Indexed(resourceType, code string) error {
	ti := typeIndexes[resourceType]
	if ti == nil {
		return fmt.Errorf("%w: %q", ErrUnknownType, resourceType)
	}
	for _, c := range ti.compiled() {
		if c.Code == code {
			return c.err
		}
	}
	return fmt.Errorf("%w: %s has no parameter %q", ErrNotIndexed, resourceType, code)
}

var contexts = sync.Pool{New: func() any { return new(fhirpath.Context) }}

// Extract returns the index values of every indexed search parameter of
// res, a resource of type resourceType, each value once per parameter.
// Values that do not parse (a malformed date) are skipped: validation is
// the parser's job, and one bad element must not block a write's other
// index entries.
func Extract(resourceType string, res *fhirjson.Value) ([]store.IndexValue, error) {
	ti := typeIndexes[resourceType]
	if ti == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, resourceType)
	}
	if res == nil || res.Kind != fhirjson.Object {
		return nil, fmt.Errorf("search: %s is not a JSON object", resourceType)
	}
	if rt := res.GetString("resourceType"); rt != resourceType {
		return nil, fmt.Errorf("search: resourceType %q, want %q", rt, resourceType)
	}
	ctx := contexts.Get().(*fhirpath.Context)
	// Size the result from the type's recent writes: one allocation, no
	// copy, in the common case.
	hint := int(ti.hint.Load())
	e := emitter{out: make([]store.IndexValue, 0, hint+hint/4+4)}
	for _, c := range ti.compiled() {
		if c.err != nil || c.Code == "_id" {
			// _id is answered from the resource keys themselves (ParseQuery
			// turns it into Query.IDs): an index entry would only cost writes.
			continue
		}
		e.begin(c.Code)
		for _, it := range ctx.Eval(c.expr, resourceType, res) {
			e.item(c.Param, it)
		}
	}
	ti.hint.Store(int32(min(len(e.out), 1<<12)))
	ctx.Reset() // pooled, it must pin no document in memory
	contexts.Put(ctx)
	return e.out, nil
}
