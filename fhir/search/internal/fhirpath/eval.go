package fhirpath

import (
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

// Item is one element of a FHIRPath collection.
type Item struct {
	// V is the JSON value; nil for the target of resolve(), whose content
	// is not loaded (only its type is known).
	V *fhirjson.Value
	// Type is the FHIR type when known: from a choice element's key
	// (valueQuantity -> "Quantity"), a literal, or a resource's type.
	// Empty when only the JSON shape is known.
	Type string
	// Resource marks Type as a resource type (the root, or resolve()).
	Resource bool
}

var (
	trueValue  = fhirjson.Value{Kind: fhirjson.Bool, Str: "true"}
	falseValue = fhirjson.Value{Kind: fhirjson.Bool, Str: "false"}
	trueItem   = Item{V: &trueValue, Type: "boolean"}
	falseItem  = Item{V: &falseValue, Type: "boolean"}
)

func boolItem(b bool) Item {
	if b {
		return trueItem
	}
	return falseItem
}

// Context evaluates expressions, reusing its scratch space across calls.
// The zero value is ready; a Context is not safe for concurrent use.
type Context struct {
	scratch []Item
	root    [1]Item
}

// Eval evaluates x against resource res of type resourceType. The result
// is valid until the next call on c.
func (c *Context) Eval(x *Expr, resourceType string, res *fhirjson.Value) []Item {
	c.scratch = c.scratch[:0]
	c.root[0] = Item{V: res, Type: resourceType, Resource: true}
	return x.root.eval(c, c.root[:])
}

// Reset drops every reference c holds into evaluated documents.
func (c *Context) Reset() {
	clear(c.scratch[:cap(c.scratch)])
	c.scratch = c.scratch[:0]
	c.root = [1]Item{}
}

// node is a compiled expression: it maps the focus collection to a result
// appended at the end of c.scratch. Scratch is only appended to while one
// Eval runs, so every slice a node returns stays valid until the next Eval.
type node interface {
	eval(c *Context, focus []Item) []Item
}

// chain applies steps left to right: a.b.where(...).c
type chain []node

func (n chain) eval(c *Context, focus []Item) []Item {
	for _, s := range n {
		// No early exit on empty: exists() and empty() must still run.
		focus = s.eval(c, focus)
	}
	return focus
}

// member reads a child element of each item, flattening arrays. When the
// key is absent it matches a choice element name[x] by its typed key.
type member string

func (n member) eval(c *Context, focus []Item) []Item {
	name := string(n)
	start := len(c.scratch)
	for _, it := range focus {
		v := it.V
		if v == nil || v.Kind != fhirjson.Object {
			continue
		}
		ms := v.Members
		i := lowerBound(ms, name)
		if i < len(ms) && ms[i].Key == name {
			c.scratch = appendValue(c.scratch, &ms[i].Value, "")
			continue
		}
		for ; i < len(ms) && strings.HasPrefix(ms[i].Key, name); i++ {
			if t, ok := choiceTypes[ms[i].Key[len(name):]]; ok {
				c.scratch = appendValue(c.scratch, &ms[i].Value, t)
			}
		}
	}
	return c.scratch[start:]
}

func appendValue(dst []Item, v *fhirjson.Value, typ string) []Item {
	switch v.Kind {
	case fhirjson.Array:
		for i := range v.Items {
			if v.Items[i].Kind != fhirjson.Null {
				dst = append(dst, Item{V: &v.Items[i], Type: typ})
			}
		}
	case fhirjson.Null:
	default:
		dst = append(dst, Item{V: v, Type: typ})
	}
	return dst
}

// lowerBound returns the index of the first member whose key is not below
// name. Members are in UTF-16 order, which for the ASCII names FHIR uses
// agrees with byte order at the first difference.
func lowerBound(ms []fhirjson.Member, name string) int {
	lo, hi := 0, len(ms)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ms[m].Key < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// typeStep is an identifier naming a type at the start of a path
// ("Patient.name"): it keeps the items of that type.
type typeStep string

func (n typeStep) eval(c *Context, focus []Item) []Item {
	start := len(c.scratch)
	for _, it := range focus {
		if it.Resource && itemIs(it, string(n)) {
			c.scratch = append(c.scratch, it)
		}
	}
	return c.scratch[start:]
}

type thisNode struct{}

func (thisNode) eval(c *Context, focus []Item) []Item { return focus }

// rootNode is %resource, %rootResource and %context: the resource being
// indexed.
type rootNode struct{}

func (rootNode) eval(c *Context, _ []Item) []Item { return c.root[:] }

type literal struct{ val fhirjson.Value }

func (n *literal) eval(c *Context, _ []Item) []Item {
	typ := "string"
	switch n.val.Kind {
	case fhirjson.Bool:
		typ = "boolean"
	case fhirjson.Number:
		typ = "decimal"
		if !strings.Contains(n.val.Str, ".") {
			typ = "integer"
		}
	}
	c.scratch = append(c.scratch, Item{V: &n.val, Type: typ})
	return c.scratch[len(c.scratch)-1:]
}

type emptyNode struct{}

func (emptyNode) eval(*Context, []Item) []Item { return nil }

// union is a | b. Duplicates are kept: the extractor deduplicates index
// values, which is cheaper than comparing JSON subtrees here.
type union []node

func (n union) eval(c *Context, focus []Item) []Item {
	var parts [8][]Item
	ps := parts[:0]
	total := 0
	for _, b := range n {
		r := b.eval(c, focus)
		ps = append(ps, r)
		total += len(r)
	}
	start := len(c.scratch)
	for _, r := range ps {
		c.scratch = append(c.scratch, r...)
	}
	return c.scratch[start : start+total]
}

// equality is a = b or a != b with FHIRPath's rules: empty if either side
// is empty, false when the collections differ in size or any pair differs.
type equality struct {
	l, r node
	neg  bool
}

func (n *equality) eval(c *Context, focus []Item) []Item {
	a := n.l.eval(c, focus)
	b := n.r.eval(c, focus)
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	eq := len(a) == len(b)
	for i := 0; eq && i < len(a); i++ {
		eq = itemEqual(a[i], b[i])
	}
	c.scratch = append(c.scratch, boolItem(eq != n.neg))
	return c.scratch[len(c.scratch)-1:]
}

func itemEqual(a, b Item) bool {
	if a.V == nil || b.V == nil {
		return a.V == nil && b.V == nil && a.Type == b.Type
	}
	if a.V.Kind != b.V.Kind {
		return false
	}
	if a.V.Kind == fhirjson.Number {
		x, err1 := strconv.ParseFloat(a.V.Str, 64)
		y, err2 := strconv.ParseFloat(b.V.Str, 64)
		return err1 == nil && err2 == nil && x == y
	}
	return fhirjson.Equal(a.V, b.V)
}

// logic is a and b, a or b with three-valued logic (empty is unknown).
type logic struct {
	l, r node
	or   bool
}

func (n *logic) eval(c *Context, focus []Item) []Item {
	a := truth(n.l.eval(c, focus))
	b := truth(n.r.eval(c, focus))
	var res int8
	if n.or {
		switch {
		case a == 1 || b == 1:
			res = 1
		case a == 0 && b == 0:
			res = 0
		default:
			return nil
		}
	} else {
		switch {
		case a == 0 || b == 0:
			res = 0
		case a == 1 && b == 1:
			res = 1
		default:
			return nil
		}
	}
	c.scratch = append(c.scratch, boolItem(res == 1))
	return c.scratch[len(c.scratch)-1:]
}

// truth is the singleton evaluation of a collection as a boolean:
// -1 for empty, 0 false, 1 true (one non-boolean item counts as true).
func truth(r []Item) int8 {
	if len(r) == 0 {
		return -1
	}
	if len(r) == 1 && r[0].V != nil && r[0].V.Kind == fhirjson.Bool {
		if r[0].V.Str == "true" {
			return 1
		}
		return 0
	}
	return 1
}
