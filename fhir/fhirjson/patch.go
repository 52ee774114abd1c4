package fhirjson

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PatchError says why a JSON Patch (RFC 6902) could not be applied. Op is
// the index of the failing operation; Bad marks a malformed patch document
// rather than one that does not apply to this target.
type PatchError struct {
	Op  int
	Msg string
	Bad bool
}

func (e *PatchError) Error() string { return fmt.Sprintf("patch operation %d: %s", e.Op, e.Msg) }

type patchOp struct {
	op, path, from string
	value          *Value
}

// ApplyPatch applies an RFC 6902 JSON Patch document to doc in place. On
// error doc may be partly changed: callers patch a clone.
func ApplyPatch(doc *Value, patch *Value) error {
	ops, err := parsePatch(patch)
	if err != nil {
		return err
	}
	for i, op := range ops {
		if err := applyOp(doc, op); err != nil {
			return &PatchError{Op: i, Msg: err.Error()}
		}
	}
	return nil
}

func parsePatch(patch *Value) ([]patchOp, error) {
	if patch.Kind != Array {
		return nil, &PatchError{Op: -1, Msg: "a JSON Patch document is an array of operations", Bad: true}
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
