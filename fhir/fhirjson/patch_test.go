package fhirjson

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
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
			err = ApplyPatch(&doc, &patch, PatchLimits{})
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
	f.Add([]byte(`{"a":[1,{"b":2}]}`), []byte(`[{"op":"move","from":"/a/1/b","path":"/c"},{"op":"add","path":"/a/-","value":3}]`), uint16(1000))
	f.Add([]byte(`{"x":1}`), []byte(`[{"op":"copy","from":"/x","path":"/y"},{"op":"test","path":"/y","value":1}]`), uint16(100))
	f.Add([]byte(`{"e":[{"u":"x"}]}`), []byte(`[{"op":"copy","from":"/e","path":"/e/-"},{"op":"copy","from":"/e","path":"/e/-"},{"op":"move","from":"/e/0","path":"/f"},{"op":"remove","path":"/e/1"}]`), uint16(40))
	f.Fuzz(func(t *testing.T, docSrc, patchSrc []byte, growth uint16) {
		doc, err := Parse(docSrc, Limits{})
		if err != nil {
			return
		}
		patch, err := Parse(patchSrc, Limits{})
		if err != nil {
			return
		}
		// The tracked size never falls below the real one, so that a
		// patch within its limits is a document within them.
		start := encodedSize(&doc)
		st, err := applyPatch(&doc, &patch, PatchLimits{MaxGrowth: int(growth) + 1})
		if err != nil {
			return
		}
		if real := encodedSize(&doc); st.size < real || real > start+int(growth)+1 {
			t.Fatalf("tracked size %d, real %d, start %d, growth limit %d", st.size, real, start, int(growth)+1)
		}
		// A patched document is still a valid canonical tree.
		c := Canonical(&doc)
		again, err := Parse(c, Limits{})
		if err != nil || string(Canonical(&again)) != string(c) {
			t.Fatalf("patched document does not round-trip: %s (%v)", c, err)
		}
	})
}

// TestPatchBomb: each copy of /extension into itself doubles the document
// (finding 4: 40 such operations grew the gateway past 8.8 GB). The growth
// limit stops it, having built nothing past the limit, in milliseconds.
func TestPatchBomb(t *testing.T) {
	doc, _ := Parse([]byte(`{"resourceType":"Appointment","extension":[{"url":"http://example.org/x","valueString":"abcdefghijklmnopqrstuvwxyz"}]}`), Limits{})
	ops := strings.TrimSuffix(strings.Repeat(`{"op":"copy","from":"/extension","path":"/extension/-"},`, 20), ",")
	patch, _ := Parse([]byte("["+ops+"]"), Limits{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	err := ApplyPatch(&doc, &patch, PatchLimits{MaxSize: 16 << 20, MaxGrowth: 1 << 20})
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	var pe *PatchError
	if !errors.As(err, &pe) || !pe.TooLarge || pe.Bad || !strings.Contains(pe.Msg, "1048576 bytes larger") {
		t.Fatalf("err = %v, want a TooLarge PatchError naming the limit", err)
	}
	if size := encodedSize(&doc); size > 1<<20+200 {
		t.Errorf("the document reached %d bytes", size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 || took > time.Second {
		t.Errorf("refusing the bomb took %v and %d MB", took, alloc>>20)
	}
}

func TestPatchLimits(t *testing.T) {
	many := "[" + strings.TrimSuffix(strings.Repeat(`{"op":"test","path":"/a","value":1},`, 1001), ",") + "]"
	tests := []struct {
		name, doc, patch string
		lim              PatchLimits
		bad, tooLarge    bool
	}{
		{"ops over the default", `{"a":1}`, many, PatchLimits{}, true, true},
		{"ops at a limit", `{"a":1}`, `[{"op":"test","path":"/a","value":1},{"op":"test","path":"/a","value":1}]`, PatchLimits{MaxOps: 2}, false, false},
		{"ops over a limit", `{"a":1}`, `[{"op":"test","path":"/a","value":1},{"op":"test","path":"/a","value":1}]`, PatchLimits{MaxOps: 1}, true, true},
		{"add over the size", `{"a":1}`, `[{"op":"add","path":"/b","value":"0123456789"}]`, PatchLimits{MaxSize: 20}, false, true},
		{"add within the size", `{"a":1}`, `[{"op":"add","path":"/b","value":"0123456789"}]`, PatchLimits{MaxSize: 26}, false, false},
		{"replace shrinking", `{"a":"0123456789"}`, `[{"op":"replace","path":"/a","value":1}]`, PatchLimits{MaxSize: 10}, false, false},
		{"remove then add", `{"a":"0123456789"}`, `[{"op":"remove","path":"/a"},{"op":"add","path":"/b","value":"012345678"}]`, PatchLimits{MaxGrowth: 1}, false, false},
		{"copy over the growth", `{"a":"0123456789"}`, `[{"op":"copy","from":"/a","path":"/b"}]`, PatchLimits{MaxGrowth: 16}, false, true},
		{"move within", `{"a":{"b":"0123456789"}}`, `[{"op":"move","from":"/a/b","path":"/c"}]`, PatchLimits{MaxGrowth: 1}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, _ := Parse([]byte(tt.doc), Limits{})
			patch, err := Parse([]byte(tt.patch), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			err = ApplyPatch(&doc, &patch, tt.lim)
			var pe *PatchError
			if errors.As(err, &pe) {
				if pe.Bad != tt.bad || pe.TooLarge != tt.tooLarge {
					t.Fatalf("err = %v (bad %v, tooLarge %v)", err, pe.Bad, pe.TooLarge)
				}
			} else if err != nil || tt.bad || tt.tooLarge {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
