package fhirpath

import (
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

// where(criteria) keeps the items for which criteria is true.
type whereFn struct{ crit node }

func (n *whereFn) eval(c *Context, focus []Item) []Item {
	start := len(c.scratch)
	for i := range focus {
		it := focus[i]
		mark := len(c.scratch)
		// The criteria's temporaries are dropped before the item is kept,
		// so kept items stay contiguous from start.
		keep := truth(n.crit.eval(c, focus[i:i+1])) == 1
		c.scratch = c.scratch[:mark]
		if keep {
			c.scratch = append(c.scratch, it)
		}
	}
	return c.scratch[start:]
}

// exists([criteria]) and empty().
type existsFn struct {
	where *whereFn // nil for exists()
	empty bool
}

func (n *existsFn) eval(c *Context, focus []Item) []Item {
	if n.where != nil {
		focus = n.where.eval(c, focus)
	}
	c.scratch = append(c.scratch, boolItem((len(focus) > 0) != n.empty))
	return c.scratch[len(c.scratch)-1:]
}

type notFn struct{}

func (notFn) eval(c *Context, focus []Item) []Item {
	t := truth(focus)
	if t < 0 {
		return nil
	}
	c.scratch = append(c.scratch, boolItem(t == 0))
	return c.scratch[len(c.scratch)-1:]
}

// firstFn is first() (last false) or last().
type firstFn struct{ last bool }

func (n firstFn) eval(_ *Context, focus []Item) []Item {
	if len(focus) == 0 {
		return nil
	}
	if n.last {
		return focus[len(focus)-1:]
	}
	return focus[:1]
}

// indexFn is the indexer [n].
type indexFn struct{ idx node }

func (n *indexFn) eval(c *Context, focus []Item) []Item {
	r := n.idx.eval(c, focus)
	if len(r) != 1 || r[0].V == nil || r[0].V.Kind != fhirjson.Number {
		return nil
	}
	i, err := strconv.Atoi(r[0].V.Str)
	if err != nil || i < 0 || i >= len(focus) {
		return nil
	}
	return focus[i : i+1]
}

// ofTypeFn is ofType(T), as(T) and the operator "as T": the items of type T.
type ofTypeFn string

func (n ofTypeFn) eval(c *Context, focus []Item) []Item {
	start := len(c.scratch)
	for _, it := range focus {
		if itemIs(it, string(n)) {
			if it.Type == "" && it.V != nil && it.V.Kind != fhirjson.Object {
				it.Type = string(n)
			}
			c.scratch = append(c.scratch, it)
		}
	}
	return c.scratch[start:]
}

// isFn is is(T) and the operator "is T", on a single item.
type isFn string

func (n isFn) eval(c *Context, focus []Item) []Item {
	if len(focus) == 0 {
		return nil
	}
	c.scratch = append(c.scratch, boolItem(len(focus) == 1 && itemIs(focus[0], string(n))))
	return c.scratch[len(c.scratch)-1:]
}

// resolveFn stands for the targets of references. Index extraction loads
// no other resource, so a target is only its type: what
// "where(resolve() is Patient)" needs. The type comes from the reference
// ("Patient/1", ".../Patient/1"), a contained resource ("#id"), or
// Reference.type; unknown targets are dropped, as unresolvable ones are.
type resolveFn struct{}

func (resolveFn) eval(c *Context, focus []Item) []Item {
	start := len(c.scratch)
	for _, it := range focus {
		if t := c.targetType(it.V); t != "" {
			c.scratch = append(c.scratch, Item{Type: t, Resource: true})
		}
	}
	return c.scratch[start:]
}

func (c *Context) targetType(v *fhirjson.Value) string {
	var ref string
	switch {
	case v == nil:
		return ""
	case v.Kind == fhirjson.String:
		ref = v.Str
	case v.Kind == fhirjson.Object:
		if rt := v.GetString("resourceType"); rt != "" {
			return rt // an inline resource (Bundle.entry.resource)
		}
		ref = v.GetString("reference")
	default:
		return ""
	}
	if t, _, _ := ParseReference(ref); t != "" {
		return t
	}
	if strings.HasPrefix(ref, "#") {
		if cs := c.root[0].V.Get("contained"); cs != nil {
			for i := range cs.Items {
				if cs.Items[i].GetString("id") == ref[1:] {
					return cs.Items[i].GetString("resourceType")
				}
			}
		}
		return ""
	}
	// Reference.type: a type name, or a StructureDefinition URL for one.
	t := v.GetString("type")
	if i := strings.LastIndexByte(t, '/'); i >= 0 {
		t = t[i+1:]
	}
	if isTypeName(t) {
		return t
	}
	return ""
}

// extensionFn is extension(url): the extensions with that url.
type extensionFn string

func (n extensionFn) eval(c *Context, focus []Item) []Item {
	exts := member("extension").eval(c, focus)
	start := len(c.scratch)
	for _, e := range exts {
		if e.V.GetString("url") == string(n) {
			c.scratch = append(c.scratch, e)
		}
	}
	return c.scratch[start:]
}
