package fhirjson

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

// TestParseLimits: the depth, value and entry limits refuse a document
// with its path, before it is built.
func TestParseLimits(t *testing.T) {
	lim := Limits{MaxDepth: 4, MaxValues: 40, MaxItems: 5}
	tests := []struct {
		name, in, wantPath, wantMsg string
	}{
		{"array items", `{"name":[{"given":["a","b","c","d","e","f"]}]}`, "name[0].given", "more than 5 items"},
		{"object members", `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}`, "", "more than 5 members"},
		{"depth", `{"a":{"b":{"c":{"d":{}}}}}`, "a.b.c.d", "nested deeper than 4"},
		{"values", "[" + strings.Repeat("[[1,1,1,1,1],[1,1,1,1,1],[1,1,1,1,1],[1,1,1,1,1]],", 2) + "1]", "[1][2][0]", "more than 40 values"},
		{"escaped key named as decoded", `{"n\u0061me":[1,2,3,4,5,6]}`, "name", "more than 5 items"},
		{"limit before a later syntax error", `[1,2,3,4,5,6,`, "", "more than 5 items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, sized := range []bool{true, false} {
				_, err := parse([]byte(tt.in), lim, sized)
				e, ok := err.(*Error)
				if !ok {
					t.Fatalf("sized=%v: error %v, want *Error", sized, err)
				}
				if e.Path != tt.wantPath || !strings.Contains(e.Msg, tt.wantMsg) || !e.TooLarge {
					t.Errorf("sized=%v: path %q msg %q tooLarge %v; want %q, %q", sized, e.Path, e.Msg, e.TooLarge, tt.wantPath, tt.wantMsg)
				}
			}
		})
	}
	if _, err := Parse([]byte(`{"a":[1,2,3,4,5],"b":2,"c":3,"d":4,"e":5}`), lim); err != nil {
		t.Errorf("at the limits: %v", err)
	}
}

// TestParseMemory: a 1 MB array of zeros is built with slices of the
// right size: it cost 191 MB of allocations when they grew by doubling.
func TestParseMemory(t *testing.T) {
	doc := []byte("[" + strings.Repeat("0,", 500_000) + "0]")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v, err := Parse(doc, Limits{})
	runtime.ReadMemStats(&after)
	if err != nil || len(v.Items) != 500_001 {
		t.Fatalf("parse: %v", err)
	}
	// 500,001 values of 72 bytes (36 MB), a copy of the input and the
	// first pass's counts.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 40<<20 {
		t.Errorf("parsing 1 MB allocated %d MB", alloc>>20)
	}
}

// FuzzParseSized checks the first pass against the parser alone: the same
// documents are accepted, into the same trees with every slice exactly
// sized, and a document refused by one is refused by the other.
func FuzzParseSized(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.50,{"b":null}]}`, `[[1,2],[3,[4,5,6,7,8,9]]]`, `{"a\"b":1,"c":"\\"}`, `[1,2,`, `{"a":01}`, `"\u00"`} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxDepth: 6, MaxValues: 50, MaxItems: 6}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parse(data, lim, true)
		ref, rerr := parse(data, lim, false)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("%q: sized %v, reference %v", data, err, rerr)
		}
		if err != nil {
			if rerr.(*Error).TooLarge && *err.(*Error) != *rerr.(*Error) {
				t.Fatalf("%q: sized %v, reference %v", data, err, rerr)
			}
			return
		}
		if !Equal(&v, &ref) {
			t.Fatalf("%q: different trees", data)
		}
		if !exact(&v) {
			t.Fatalf("%q: a slice was not sized exactly", data)
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
	})
}

func exact(v *Value) bool {
	if cap(v.Items) != len(v.Items) || cap(v.Members) != len(v.Members) {
		return false
	}
	for i := range v.Items {
		if !exact(&v.Items[i]) {
			return false
		}
	}
	for i := range v.Members {
		if !exact(&v.Members[i].Value) {
			return false
		}
	}
	return true
}
