package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/synth"
)

// An update of one field: the record's own body with its first phone
// number changed, still valid JSON, the rest byte for byte the same.
func TestAppendNewPhone(t *testing.T) {
	body := synth.New(1).Patient(3, synth.Ref{})
	for _, n := range []int{0, 7, 123_4567, 63_000_001} {
		got := appendNewPhone(nil, body, n)
		var v struct {
			Telecom []struct{ System, Value string }
		}
		if err := json.Unmarshal(got, &v); err != nil {
			t.Fatalf("n=%d: %v\n%s", n, err, got)
		}
		if len(v.Telecom) == 0 || v.Telecom[0].System != "phone" || !strings.HasPrefix(v.Telecom[0].Value, "+1 206-") {
			t.Fatalf("n=%d: telecom %+v", n, v.Telecom)
		}
		if d := len(got) - len(body); d < -3 || d > 3 {
			t.Fatalf("n=%d: the body changed by %d bytes, not one field", n, d)
		}
	}
	if a, b := appendNewPhone(nil, body, 1), appendNewPhone(nil, body, 2); string(a) == string(b) {
		t.Fatal("two updates send the same body")
	}
	if got := appendNewPhone(nil, []byte(`{"active":true}`), 5); string(got) != `{"active":true}` {
		t.Fatalf("a body without a phone changed: %s", got)
	}
}
