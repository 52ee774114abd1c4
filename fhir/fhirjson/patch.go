package fhirjson

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// PatchError says why a JSON Patch (RFC 6902) could not be applied. Op is
// the index of the failing operation; Bad marks a malformed patch document
// rather than one that does not apply to this target; TooLarge marks a
// patch refused for a limit (its operation count, or the size the document
// would reach).
type PatchError struct {
	Op       int
	Msg      string
	Bad      bool
	TooLarge bool
}

// PatchLimits bound the work of one patch. Zero fields take the defaults.
type PatchLimits struct {
	// MaxOps bounds the operations of one patch; default DefaultPatchOps.
	MaxOps int
	// MaxSize bounds the document's canonical size (bytes, before string
	// escapes) after every operation; 0: no bound.
	MaxSize int
	// MaxGrowth bounds how much larger than before the patch the document
	// may become, after any operation; 0: no bound.
	MaxGrowth int
}

// DefaultPatchOps is the default operation count limit.
const DefaultPatchOps = 1000

func (e *PatchError) Error() string { return fmt.Sprintf("patch operation %d: %s", e.Op, e.Msg) }

type patchOp struct {
	op, path, from string
	value          *Value
}

// ApplyPatch applies an RFC 6902 JSON Patch document to doc in place,
// within lim. The document's size is tracked operation by operation, and
// what an operation would add is measured before it is copied: a patch
// that doubles an element forty times is refused when it passes the bound,
// having built nothing larger. On error doc may be partly changed: callers
// patch a clone.
func ApplyPatch(doc *Value, patch *Value, lim PatchLimits) error {
	_, err := applyPatch(doc, patch, lim)
	return err
}

func applyPatch(doc *Value, patch *Value, lim PatchLimits) (*patchState, error) {
	if lim.MaxOps <= 0 {
		lim.MaxOps = DefaultPatchOps
	}
	ops, err := parsePatch(patch, lim.MaxOps)
	if err != nil {
		return nil, err
	}
	st := &patchState{lim: lim, size: encodedSize(doc)}
	st.start = st.size
	for i, op := range ops {
		if err := st.apply(doc, op); err != nil {
			_, tooLarge := err.(*limitError)
			return st, &PatchError{Op: i, Msg: err.Error(), TooLarge: tooLarge}
		}
	}
	return st, nil
}

// limitError is an operation refused for the size it would reach.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

// patchState tracks the document's canonical size (as encodedSize counts
// it) through the operations.
type patchState struct {
	lim         PatchLimits
	start, size int
}

// room returns how many bytes the document may still grow by.
func (st *patchState) room() int {
	r := math.MaxInt
	if st.lim.MaxSize > 0 {
		r = st.lim.MaxSize - st.size
	}
	if st.lim.MaxGrowth > 0 {
		r = min(r, st.start+st.lim.MaxGrowth-st.size)
	}
	return r
}

// grow accounts for delta more bytes, refusing to pass the limits.
func (st *patchState) grow(delta int) error {
	if delta > 0 && delta > st.room() {
		if st.lim.MaxSize > 0 && st.size+delta > st.lim.MaxSize {
			return &limitError{fmt.Sprintf("the resource would exceed %d bytes (the request body limit)", st.lim.MaxSize)}
		}
		return &limitError{fmt.Sprintf("the patch would make the resource more than %d bytes larger (the limit of one patch; send larger changes with PUT)", st.lim.MaxGrowth)}
	}
	st.size += delta
	return nil
}

// sizeWithin is encodedSize(v), or a number over limit as soon as it is
// clear v is larger than limit (measuring stops there).
func sizeWithin(v *Value, limit int) int {
	switch v.Kind {
	case Array:
		n := 2 + max(len(v.Items)-1, 0)
		for i := range v.Items {
			if n > limit {
				return n
			}
			n += sizeWithin(&v.Items[i], limit-n)
		}
		return n
	case Object:
		n := 2 + max(len(v.Members)-1, 0)
		for i := range v.Members {
			if n > limit {
				return n
			}
			n += len(v.Members[i].Key) + 3 + sizeWithin(&v.Members[i].Value, limit-n)
		}
		return n
	}
	return encodedSize(v)
}

// slot is what a member or item costs besides its value: key, quotes,
// colon, and the comma it adds to a container of n entries.
func slot(parent *Value, tok string, n int) int {
	c := 0
	if n > 0 {
		c = 1
	}
	if parent.Kind == Object {
		return c + len(tok) + 3
	}
	return c
}

func (st *patchState) apply(doc *Value, op patchOp) error {
	switch op.op {
	case "add", "copy":
		src := op.value
		if op.op == "copy" {
			v, err := get(doc, op.from)
			if err != nil {
				return err
			}
			src = v
		}
		parent, tok, err := resolve(doc, op.path)
		if err != nil {
			return err
		}
		if parent != nil && parent.Kind != Object && parent.Kind != Array {
			return applyOp(doc, op) // the error, as the op reports it
		}
		// What the document gains: the value, and its slot unless it
		// replaces a member (whose own size it loses) or the document.
		var delta, old int
		switch {
		case parent == nil:
			old = st.size
		case parent.Kind == Object && parent.Get(tok) != nil:
			old = encodedSize(parent.Get(tok))
		case parent.Kind == Object || parent.Kind == Array:
			delta = slot(parent, tok, len(parent.Items)+len(parent.Members))
		}
		n := sizeWithin(src, satAdd(st.room(), old-delta))
		if err := st.grow(delta + n - old); err != nil {
			return err
		}
		if err := applyOp(doc, patchOp{op: "add", path: op.path, value: src}); err != nil {
			st.size -= delta + n - old
			return err
		}
		return nil
	case "replace":
		old, err := get(doc, op.path)
		if err != nil {
			return err
		}
		was := encodedSize(old)
		n := sizeWithin(op.value, satAdd(st.room(), was))
		if err := st.grow(n - was); err != nil {
			return err
		}
		return applyOp(doc, op)
	case "remove":
		parent, tok, err := resolve(doc, op.path)
		if err != nil {
			return err
		}
		v, err := remove(doc, op.path)
		if err != nil {
			return err
		}
		st.size -= encodedSize(&v) + slot(parent, tok, len(parent.Items)+len(parent.Members))
		return nil
	case "move":
		// The value keeps its size: only its slot changes.
		if op.path == op.from {
			return nil
		}
		from, ftok, err := resolve(doc, op.from)
		if err != nil {
			return err
		}
		to, ttok, err := resolve(doc, op.path)
		if err != nil || from == nil {
			return applyOp(doc, op) // the error, as the op reports it
		}
		if to == nil { // the value becomes the document
			if err := applyOp(doc, op); err != nil {
				return err
			}
			st.size = encodedSize(doc)
			return nil
		}
		lost := slot(from, ftok, len(from.Items)+len(from.Members)-1)
		gained := 0
		if to.Kind == Array || to.Kind == Object && to.Get(ttok) == nil {
			n := len(to.Items) + len(to.Members)
			if to == from {
				n--
			}
			gained = slot(to, ttok, n)
		}
		if err := st.grow(gained - lost); err != nil {
			return err
		}
		if err := applyOp(doc, op); err != nil {
			st.size -= gained - lost
			return err
		}
		return nil
	}
	return applyOp(doc, op)
}

// satAdd is a+b, saturated at math.MaxInt.
func satAdd(a, b int) int {
	if b > 0 && a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

func parsePatch(patch *Value, maxOps int) ([]patchOp, error) {
	if patch.Kind != Array {
		return nil, &PatchError{Op: -1, Msg: "a JSON Patch document is an array of operations", Bad: true}
	}
	if len(patch.Items) > maxOps {
		return nil, &PatchError{Op: -1, Bad: true, TooLarge: true,
			Msg: fmt.Sprintf("the patch has %d operations; at most %d are allowed", len(patch.Items), maxOps)}
	}
	ops := make([]patchOp, 0, len(patch.Items))
	for i := range patch.Items {
		it := &patch.Items[i]
		bad := func(msg string) error { return &PatchError{Op: i, Msg: msg, Bad: true} }
		if it.Kind != Object {
			return nil, bad("an operation is an object")
		}
		op := patchOp{op: it.GetString("op")}
		p := it.Get("path")
		if p == nil || p.Kind != String {
			return nil, bad("missing \"path\"")
		}
		op.path = p.Str
		switch op.op {
		case "add", "replace", "test":
			op.value = it.Get("value")
			if op.value == nil {
				return nil, bad("missing \"value\"")
			}
		case "move", "copy":
			f := it.Get("from")
			if f == nil || f.Kind != String {
				return nil, bad("missing \"from\"")
			}
			op.from = f.Str
		case "remove":
		default:
			return nil, bad(fmt.Sprintf("unknown op %q", op.op))
		}
		if _, err := splitPointer(op.path); err != nil {
			return nil, bad(err.Error())
		}
		if op.from != "" {
			if _, err := splitPointer(op.from); err != nil {
				return nil, bad(err.Error())
			}
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// splitPointer decodes an RFC 6901 JSON Pointer into reference tokens.
func splitPointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("JSON Pointer %q must start with '/'", p)
	}
	parts := strings.Split(p[1:], "/")
	for i, s := range parts {
		if strings.Contains(s, "~") {
			for j := 0; j < len(s); j++ {
				if s[j] == '~' && (j+1 >= len(s) || (s[j+1] != '0' && s[j+1] != '1')) {
					return nil, fmt.Errorf("JSON Pointer %q has an invalid escape", p)
				}
			}
			s = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
		}
		parts[i] = s
	}
	return parts, nil
}

var errNoPath = errors.New("path does not exist")

// resolve returns the container of the last token and the token.
func resolve(doc *Value, path string) (*Value, string, error) {
	toks, err := splitPointer(path)
	if err != nil {
		return nil, "", err
	}
	if len(toks) == 0 {
		return nil, "", nil
	}
	cur := doc
	for _, t := range toks[:len(toks)-1] {
		if cur, err = child(cur, t); err != nil {
			return nil, "", err
		}
	}
	return cur, toks[len(toks)-1], nil
}

func child(v *Value, tok string) (*Value, error) {
	switch v.Kind {
	case Object:
		c := v.Get(tok)
		if c == nil {
			return nil, fmt.Errorf("%w: no member %q", errNoPath, tok)
		}
		return c, nil
	case Array:
		i, err := arrayIndex(tok, len(v.Items), false)
		if err != nil {
			return nil, err
		}
		return &v.Items[i], nil
	}
	return nil, fmt.Errorf("%w: %q is inside a %s", errNoPath, tok, v.Kind)
}

func arrayIndex(tok string, n int, forAdd bool) (int, error) {
	if forAdd && tok == "-" {
		return n, nil
	}
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, fmt.Errorf("invalid array index %q", tok)
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i < 0 {
		return 0, fmt.Errorf("invalid array index %q", tok)
	}
	if i > n || (!forAdd && i == n) {
		return 0, fmt.Errorf("%w: index %d out of range", errNoPath, i)
	}
	return i, nil
}

func get(doc *Value, path string) (*Value, error) {
	parent, tok, err := resolve(doc, path)
	if err != nil {
		return nil, err
	}
	if parent == nil {
		return doc, nil
	}
	return child(parent, tok)
}

func applyOp(doc *Value, op patchOp) error {
	switch op.op {
	case "test":
		v, err := get(doc, op.path)
		if err != nil {
			return err
		}
		if !equalJSON(v, op.value) {
			return fmt.Errorf("test failed at %s", op.path)
		}
		return nil
	case "remove":
		_, err := remove(doc, op.path)
		return err
	case "add":
		return add(doc, op.path, op.value.Clone())
	case "replace":
		if _, err := get(doc, op.path); err != nil {
			return err
		}
		if op.path == "" {
			*doc = op.value.Clone()
			return nil
		}
		parent, tok, _ := resolve(doc, op.path)
		if parent.Kind == Object {
			parent.Set(tok, op.value.Clone())
		} else {
			i, _ := arrayIndex(tok, len(parent.Items), false)
			parent.Items[i] = op.value.Clone()
		}
		return nil
	case "move":
		if op.path == op.from || strings.HasPrefix(op.path, op.from+"/") {
			if op.path == op.from {
				return nil
			}
			return fmt.Errorf("cannot move %s into itself", op.from)
		}
		v, err := remove(doc, op.from)
		if err != nil {
			return err
		}
		return add(doc, op.path, v)
	case "copy":
		v, err := get(doc, op.from)
		if err != nil {
			return err
		}
		return add(doc, op.path, v.Clone())
	}
	return fmt.Errorf("unknown op %q", op.op)
}

func add(doc *Value, path string, v Value) error {
	parent, tok, err := resolve(doc, path)
	if err != nil {
		return err
	}
	if parent == nil {
		*doc = v
		return nil
	}
	switch parent.Kind {
	case Object:
		parent.Set(tok, v)
		return nil
	case Array:
		i, err := arrayIndex(tok, len(parent.Items), true)
		if err != nil {
			return err
		}
		parent.Items = append(parent.Items, Value{})
		copy(parent.Items[i+1:], parent.Items[i:])
		parent.Items[i] = v
		return nil
	}
	return fmt.Errorf("%w: cannot add inside a %s", errNoPath, parent.Kind)
}

func remove(doc *Value, path string) (Value, error) {
	parent, tok, err := resolve(doc, path)
	if err != nil {
		return Value{}, err
	}
	if parent == nil {
		return Value{}, fmt.Errorf("cannot remove the whole document")
	}
	switch parent.Kind {
	case Object:
		c := parent.Get(tok)
		if c == nil {
			return Value{}, fmt.Errorf("%w: no member %q", errNoPath, tok)
		}
		v := *c
		parent.Delete(tok)
		return v, nil
	case Array:
		i, err := arrayIndex(tok, len(parent.Items), false)
		if err != nil {
			return Value{}, err
		}
		v := parent.Items[i]
		parent.Items = append(parent.Items[:i], parent.Items[i+1:]...)
		return v, nil
	}
	return Value{}, fmt.Errorf("%w: cannot remove inside a %s", errNoPath, parent.Kind)
}

// equalJSON compares as RFC 6902 "test" does: numbers by value.
func equalJSON(a, b *Value) bool {
	return equal(a, b, func(x, y string) bool {
		if x == y {
			return true
		}
		fx, err1 := strconv.ParseFloat(x, 64)
		fy, err2 := strconv.ParseFloat(y, 64)
		return err1 == nil && err2 == nil && fx == fy
	})
}
