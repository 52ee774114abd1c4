package fhirjson

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"sorted keys, no space", `{ "b" : 1, "a" : [ true , false, null ] }`, `{"a":[true,false,null],"b":1}`},
		{"numbers as written", `{"x":1.50,"y":-0.0e+10,"z":100}`, `{"x":1.50,"y":-0.0e+10,"z":100}`},
		{"escapes", `{"s":"\u0041\/\"\\\b\f\n\r\t\u0001\u001f"}`, `{"s":"A/\"\\\b\f\n\r\t\u0001\u001f"}`},
		{"non-ASCII literal", `{"s":"\u00e9\u2028\ud83d\ude00 é"}`, "{\"s\":\"é\u2028😀 é\"}"},
		{"nested sort", `{"z":{"b":2,"a":1},"a":{}}`, `{"a":{},"z":{"a":1,"b":2}}`},
		// RFC 8785 §3.2.3: keys sorted by UTF-16 code units, so U+1F600
		// (surrogates D83D DE00) sorts before U+FB33.
		{"utf16 key order", "{\"\ufb33\":1,\"\U0001f600\":2}", "{\"\U0001f600\":2,\"\ufb33\":1}"},
		{"top-level scalar", ` "x" `, `"x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Parse([]byte(tt.in), Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := string(Canonical(&v))
			if got != tt.want {
				t.Errorf("Canonical = %s, want %s", got, tt.want)
			}
			if n := encodedSize(&v); n > len(got) || !strings.Contains(got, `\\`) && n != len(got) {
				t.Errorf("size estimate %d for %d bytes", n, len(got))
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	tests := []struct {
		name, in, wantPath, wantMsg string
		tooLarge                    bool
	}{
		{"duplicate key", `{"a":1,"name":[{"given":["x"],"given":["y"]}]}`, "name[0].given", "duplicate key", false},
		{"invalid utf8", "{\"a\":\"\xff\"}", "a", "invalid UTF-8", false},
		{"raw control char", "{\"a\":\"x\ty\"}", "a", "control character", false},
		{"lone surrogate", `{"a":"\ud800"}`, "a", "unpaired surrogate", false},
		{"trailing data", `{"a":1} {}`, "", "after the top-level value", false},
		{"trailing comma", `{"a":1,}`, "", "expected a string key", false},
		{"leading zero", `{"a":01}`, "", "expected ','", false},
		{"bad exponent", `{"a":1e}`, "a", "no digits in exponent", false},
		{"unterminated", `{"a":"x`, "a", "unterminated string", false},
		{"empty", ``, "", "unexpected end", false},
		{"deep nesting", deep, strings.Repeat("[0]", 67) + "...", "nested deeper than 100", true},
		{"bad escape", `{"a":"\x"}`, "a", "invalid escape", false},
		{"single quotes", `{'a':1}`, "", "expected a string key", false},
		{"NaN", `{"a":NaN}`, "a", "unexpected character", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in), Limits{})
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("Parse error = %v, want *Error", err)
			}
			if e.Path != tt.wantPath || !strings.Contains(e.Msg, tt.wantMsg) || e.TooLarge != tt.tooLarge {
				t.Errorf("got path %q msg %q tooLarge %v; want path %q msg containing %q tooLarge %v",
					e.Path, e.Msg, e.TooLarge, tt.wantPath, tt.wantMsg, tt.tooLarge)
			}
		})
	}
}

func TestMaxValues(t *testing.T) {
	big := "[" + strings.Repeat("0,", 999) + "0]"
	if _, err := Parse([]byte(big), Limits{MaxValues: 500}); err == nil || !err.(*Error).TooLarge {
		t.Fatalf("want TooLarge error, got %v", err)
	}
	if _, err := Parse([]byte(big), Limits{MaxValues: 1001}); err != nil {
		t.Fatalf("1001 values within limit: %v", err)
	}
}

func TestSetDeleteGet(t *testing.T) {
	v, _ := Parse([]byte(`{"b":1,"d":2}`), Limits{})
	v.Set("c", Str("x"))
	v.Set("a", Str("y"))
	v.Set("d", Str("z"))
	if got := string(Canonical(&v)); got != `{"a":"y","b":1,"c":"x","d":"z"}` {
		t.Fatalf("after Set: %s", got)
	}
	if !v.Delete("b") || v.Delete("nope") {
		t.Fatal("Delete results wrong")
	}
	if v.GetString("c") != "x" || v.Get("b") != nil {
		t.Fatal("Get after Delete wrong")
	}
}

// FuzzParse checks that the parser never panics, accepts exactly the
// documents encoding/json accepts (minus duplicate keys and invalid
// UTF-8, which it must refuse), and that canonical output is a fixed point.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.50,{"b":null}]}`, `"\ud83d\ude00"`, `{"a":1,"a":2}`, "[\"\xff\"]", `-0.0e-7`, `{"é":"\u00e9"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data, Limits{})
		stdOK := json.Valid(data)
		if err != nil {
			if stdOK && !strings.Contains(err.Error(), "duplicate key") && !strings.Contains(err.Error(), "UTF-8") &&
				!strings.Contains(err.Error(), "surrogate") && !err.(*Error).TooLarge {
				t.Fatalf("refused valid JSON %q: %v", data, err)
			}
			return
		}
		if !stdOK {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		c1 := Canonical(&v)
		v2, err := Parse(c1, Limits{})
		if err != nil {
			t.Fatalf("canonical output %q does not parse: %v", c1, err)
		}
		if c2 := Canonical(&v2); !bytes.Equal(c1, c2) {
			t.Fatalf("canonical not a fixed point: %q then %q", c1, c2)
		}
		if !Equal(&v, &v2) {
			t.Fatalf("round trip changed the value")
		}
		// The buffer Canonical sizes up front is exact unless strings
		// needed escapes, and never too large.
		if n := encodedSize(&v2); n > len(c1) || !bytes.ContainsRune(c1, '\\') && n != len(c1) {
			t.Fatalf("size estimate %d for %d bytes of %q", n, len(c1), c1)
		}
	})
}
