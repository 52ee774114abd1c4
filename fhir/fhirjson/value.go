// Package fhirjson is the gateway's JSON layer: a strict parser (RFC 8259
// plus the I-JSON rules FHIR needs: valid UTF-8, no duplicate keys, bounded
// depth and size) into a small tree, and the canonical encoding of that tree
// (sorted keys, no whitespace, RFC 8785 string escaping, numbers exactly as
// written). The canonical bytes are what the store keeps, what reads serve
// and what the audit log hashes.
package fhirjson

import (
	"strconv"
	"unsafe"
)

// Kind is the JSON type of a Value.
type Kind uint8

// The JSON kinds.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
	// Raw is pre-encoded JSON (Str) written out verbatim; the parser never
	// produces it. It splices stored resource bytes into bundles.
	Raw
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "boolean"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	case Raw:
		return "raw"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one JSON value. For String it holds the decoded text; for Number
// the literal exactly as written (FHIR decimals keep their precision); for
// Bool "true" or "false". Object members are kept sorted by key (the
// canonical order), so lookups are binary searches and encoding needs no
// sort.
type Value struct {
	Kind    Kind
	Str     string
	Items   []Value
	Members []Member
}

// Member is one key of an object.
type Member struct {
	Key   string
	Value Value
}

// Str returns a string value.
func Str(s string) Value { return Value{Kind: String, Str: s} }

// RawJSON returns a value that encodes as b, which must be valid JSON. b
// must not change while the value is in use.
func RawJSON(b []byte) Value {
	return Value{Kind: Raw, Str: unsafe.String(unsafe.SliceData(b), len(b))}
}

// Int returns a number value.
func Int(n int) Value { return Value{Kind: Number, Str: strconv.Itoa(n)} }

// Obj returns an object with the given members (in any order).
func Obj(ms ...Member) Value {
	o := Value{Kind: Object, Members: make([]Member, 0, len(ms))}
	for _, m := range ms {
		o.Set(m.Key, m.Value)
	}
	return o
}

// KV returns a member.
func KV(key string, v Value) Member { return Member{Key: key, Value: v} }

// Arr returns an array of vs.
func Arr(vs ...Value) Value { return Value{Kind: Array, Items: vs} }

// Get returns the member value for key, or nil when the value is not an
// object or has no such key.
func (v *Value) Get(key string) *Value {
	if v == nil || v.Kind != Object {
		return nil
	}
	i, ok := v.find(key)
	if !ok {
		return nil
	}
	return &v.Members[i].Value
}

// GetString returns the string member key, or "" if absent or not a string.
func (v *Value) GetString(key string) string {
	m := v.Get(key)
	if m == nil || m.Kind != String {
		return ""
	}
	return m.Str
}

// Set adds or replaces member key, keeping canonical order. v must be an
// object.
func (v *Value) Set(key string, val Value) {
	i, ok := v.find(key)
	if ok {
		v.Members[i].Value = val
		return
	}
	v.Members = append(v.Members, Member{})
	copy(v.Members[i+1:], v.Members[i:])
	v.Members[i] = Member{Key: key, Value: val}
}

// Delete removes member key if present and reports whether it was.
func (v *Value) Delete(key string) bool {
	if v.Kind != Object {
		return false
	}
	i, ok := v.find(key)
	if !ok {
		return false
	}
	v.Members = append(v.Members[:i], v.Members[i+1:]...)
	return true
}

// find returns the index of key, or where it would be inserted.
func (v *Value) find(key string) (int, bool) {
	lo, hi := 0, len(v.Members)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if keyLess(v.Members[m].Key, key) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(v.Members) && v.Members[lo].Key == key
}

// Clone returns a deep copy.
func (v Value) Clone() Value {
	switch v.Kind {
	case Array:
		items := make([]Value, len(v.Items))
		for i := range v.Items {
			items[i] = v.Items[i].Clone()
		}
		v.Items = items
	case Object:
		ms := make([]Member, len(v.Members))
		for i := range v.Members {
			ms[i] = Member{Key: v.Members[i].Key, Value: v.Members[i].Value.Clone()}
		}
		v.Members = ms
	}
	return v
}

// Equal reports whether a and b are the same JSON value. Numbers compare by
// their literal text, which is what canonical equality means here.
func Equal(a, b *Value) bool {
	return equal(a, b, func(x, y string) bool { return x == y })
}

// equal compares two values, numbers with numEq.
func equal(a, b *Value, numEq func(x, y string) bool) bool {
	if a.Kind == Number && b.Kind == Number {
		return numEq(a.Str, b.Str)
	}
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case Array:
		if len(a.Items) != len(b.Items) {
			return false
		}
		for i := range a.Items {
			if !equal(&a.Items[i], &b.Items[i], numEq) {
				return false
			}
		}
		return true
	case Object:
		if len(a.Members) != len(b.Members) {
			return false
		}
		for i := range a.Members {
			if a.Members[i].Key != b.Members[i].Key || !equal(&a.Members[i].Value, &b.Members[i].Value, numEq) {
				return false
			}
		}
		return true
	}
	return a.Str == b.Str
}

// keyLess orders keys as RFC 8785 does: by UTF-16 code units. For keys
// without characters above U+FFFF (every FHIR element name) that is plain
// byte order, which the fast path uses.
func keyLess(a, b string) bool {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			if a[i] < 0x80 && b[i] < 0x80 {
				return a[i] < b[i]
			}
			return utf16Less(a[i:], b[i:])
		}
	}
	return len(a) < len(b)
}
