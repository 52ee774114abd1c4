package fhirjson

import (
	"errors"
	"testing"
)

func TestApplyPatch(t *testing.T) {
	tests := []struct {
		name, doc, patch, want string
		bad, fail              bool
	}{
		// Examples from RFC 6902 appendix A.
		{"add member", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux"}]`, `{"baz":"qux","foo":"bar"}`, false, false},
		{"add array element", `{"foo":["bar","baz"]}`, `[{"op":"add","path":"/foo/1","value":"qux"}]`, `{"foo":["bar","qux","baz"]}`, false, false},
		{"remove member", `{"baz":"qux","foo":"bar"}`, `[{"op":"remove","path":"/baz"}]`, `{"foo":"bar"}`, false, false},
		{"remove element", `{"foo":["bar","qux","baz"]}`, `[{"op":"remove","path":"/foo/1"}]`, `{"foo":["bar","baz"]}`, false, false},
		{"replace", `{"baz":"qux","foo":"bar"}`, `[{"op":"replace","path":"/baz","value":"boo"}]`, `{"baz":"boo","foo":"bar"}`, false, false},
		{"move", `{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}`, `[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]`, `{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}`, false, false},
		{"move element", `{"foo":["all","grass","cows","eat"]}`, `[{"op":"move","from":"/foo/1","path":"/foo/3"}]`, `{"foo":["all","cows","eat","grass"]}`, false, false},
		{"test ok", `{"baz":"qux","foo":["a",2,"c"]}`, `[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]`, `{"baz":"qux","foo":["a",2,"c"]}`, false, false},
		{"test fails", `{"baz":"qux"}`, `[{"op":"test","path":"/baz","value":"bar"}]`, "", false, true},
		{"add nested object", `{"foo":"bar"}`, `[{"op":"add","path":"/child","value":{"grandchild":{}}}]`, `{"child":{"grandchild":{}},"foo":"bar"}`, false, false},
		{"missing target", `{"foo":"bar"}`, `[{"op":"add","path":"/baz/bat","value":"qux"}]`, "", false, true},
		{"escapes", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":10},{"op":"remove","path":"/~1"}]`, `{"~1":10}`, false, false},
		{"append", `{"foo":["bar"]}`, `[{"op":"add","path":"/foo/-","value":["abc","def"]}]`, `{"foo":["bar",["abc","def"]]}`, false, false},
		{"copy", `{"a":{"b":1}}`, `[{"op":"copy","from":"/a","path":"/c"}]`, `{"a":{"b":1},"c":{"b":1}}`, false, false},
		{"numbers compare by value", `{"a":1.0}`, `[{"op":"test","path":"/a","value":1}]`, `{"a":1.0}`, false, false},
		{"index out of range", `{"a":[1]}`, `[{"op":"replace","path":"/a/1","value":2}]`, "", false, true},
		{"leading zero index", `{"a":[1,2]}`, `[{"op":"remove","path":"/a/01"}]`, "", false, true},
		{"move into itself", `{"a":{"b":{}}}`, `[{"op":"move","from":"/a","path":"/a/b/c"}]`, "", false, true},
		{"not an array", `{"op":"add"}`, ``, "", true, false},
		{"unknown op", `{}`, `[{"op":"frob","path":"/a"}]`, "", true, false},
		{"no value", `{}`, `[{"op":"add","path":"/a"}]`, "", true, false},
		{"bad pointer", `{}`, `[{"op":"remove","path":"a"}]`, "", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse([]byte(tt.doc), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			src := tt.patch
			if src == "" {
				src = tt.doc
			}
			patch, err := Parse([]byte(src), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			err = ApplyPatch(&doc, &patch)
			var pe *PatchError
			switch {
			case tt.bad || tt.fail:
				if !errors.As(err, &pe) || pe.Bad != tt.bad {
					t.Fatalf("err = %v, want PatchError bad=%v", err, tt.bad)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if got := string(Canonical(&doc)); got != tt.want {
					t.Fatalf("got %s want %s", got, tt.want)
				}
			}
		})
	}
}

func FuzzApplyPatch(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":2}]}`), []byte(`[{"op":"move","from":"/a/1/b","path":"/c"},{"op":"add","path":"/a/-","value":3}]`))
	f.Add([]byte(`{"x":1}`), []byte(`[{"op":"copy","from":"/x","path":"/y"},{"op":"test","path":"/y","value":1}]`))
	f.Fuzz(func(t *testing.T, docSrc, patchSrc []byte) {
		doc, err := Parse(docSrc, Limits{})
		if err != nil {
			return
		}
		patch, err := Parse(patchSrc, Limits{})
		if err != nil {
			return
		}
		if err := ApplyPatch(&doc, &patch); err != nil {
			return
		}
		// A patched document is still a valid canonical tree.
		c := Canonical(&doc)
		again, err := Parse(c, Limits{})
		if err != nil || string(Canonical(&again)) != string(c) {
			t.Fatalf("patched document does not round-trip: %s (%v)", c, err)
		}
	})
}
