package fhir

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, body string
		kind       error
		expr, msg  string
	}{
		{"not an object", `[1]`, ErrInvalid, "", "must be a JSON object"},
		{"no resourceType", `{"id":"x"}`, ErrInvalid, "resourceType", "missing resourceType"},
		{"unknown type", `{"resourceType":"Patient1"}`, ErrInvalid, "resourceType", "not an R4 resource type"},
		{"unknown element", `{"resourceType":"Patient","nmae":[{"family":"x"}]}`, ErrInvalid, "Patient.nmae", "unknown element 'nmae'"},
		{"nested unknown", `{"resourceType":"Patient","name":[{"famly":"x"}]}`, ErrInvalid, "Patient.name[0].famly", "unknown element 'famly'"},
		{"empty array", `{"resourceType":"Patient","name":[]}`, ErrInvalid, "Patient.name", "empty array"},
		{"empty object", `{"resourceType":"Patient","name":[{}]}`, ErrInvalid, "Patient.name[0]", "empty object"},
		{"empty string", `{"resourceType":"Patient","name":[{"family":""}]}`, ErrInvalid, "Patient.name[0].family", "empty string"},
		{"null", `{"resourceType":"Patient","gender":null}`, ErrInvalid, "Patient.gender", "null"},
		{"array for single", `{"resourceType":"Patient","gender":["male"]}`, ErrInvalid, "Patient.gender", "an array is not allowed"},
		{"single for array", `{"resourceType":"Patient","name":{"family":"x"}}`, ErrInvalid, "Patient.name", "an array is required"},
		{"uri with space", `{"resourceType":"Patient","implicitRules":"a b"}`, ErrInvalid, "Patient.implicitRules", "white space"},
		{"script narrative", `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>x</script></div>"}}`, ErrInvalid, "Patient.text.div", "<script>"},
		{"onclick narrative", `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\" onclick=\"x()\">hi</div>"}}`, ErrInvalid, "Patient.text.div", "event attribute"},
		{"html entity", `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">&reg;</div>"}}`, ErrInvalid, "Patient.text.div", "not well-formed"},
		{"bad date (jsonformat)", `{"resourceType":"Patient","birthDate":"1970-02-30"}`, ErrInvalid, "Patient.birthDate", "expected date"},
		{"bad code (jsonformat)", `{"resourceType":"Patient","gender":"x"}`, ErrInvalid, "Patient.gender", "code type mismatch"},
		{"contained unknown", `{"resourceType":"Patient","contained":[{"resourceType":"Practitioner","id":"p","bogus":1}]}`, ErrInvalid, "Patient.contained[0].bogus", "unknown element"},
		{"choice", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueFoo":1}`, ErrInvalid, "Observation.valueFoo", "unknown element"},
		{"primitive ext on complex", `{"resourceType":"Patient","_name":[{"id":"x"}]}`, ErrInvalid, "Patient._name", "only allowed for primitive"},
		{"duplicate key", `{"resourceType":"Patient","active":true,"active":false}`, ErrInvalid, "active", "duplicate key"},
		{"empty key (found by fuzzing)", `{"resourceType":"Patient","":1}`, ErrInvalid, "Patient.", "unknown element ''"},
		{"versioned extension", `{"resourceType":"Patient","extension":[{"url":"http://x/y|1.0","valueString":"v"}]}`, ErrInvalid, "Patient.extension[0].url", "version"},
		{"too many values", `{"resourceType":"Patient","name":[` + strings.Repeat(`{"given":[`+strings.Repeat(`"a",`, 9999)+`"a"]},`, 105) + `{"text":"a"}]}`, ErrTooLarge, "name[104].given[8363]", "more than 1048576 values"},
		// Finding 8: a Patient with 200,000 names (4 MB) was accepted.
		{"too many items", `{"resourceType":"Patient","name":[` + strings.Repeat(`{"text":"a"},`, 200000) + `{"text":"a"}]}`, ErrInvalid, "name", "more than 10000 items"},
		{"too deep", `{"resourceType":"Patient","extension":[` + strings.Repeat(`{"url":"http://x","extension":[`, 32) + `{"url":"http://x","valueString":"x"}` + strings.Repeat(`]}`, 32) + `]}`, ErrInvalid,
			strings.Repeat("extension[0].", 15) + "extension...", "nested deeper than 64 levels"},
		// Finding 14: a decimal the index cannot hold was stored and never
		// found.
		{"decimal overflow", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1e999999999}}`, ErrInvalid, "Observation.valueQuantity.value", "outside the range"},
		{"decimal negative overflow", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"component":[{"code":{"text":"x"},"valueQuantity":{"value":-2e308}}]}`, ErrInvalid, "Observation.component[0].valueQuantity.value", "outside the range"},
		{"decimal underflow", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1e-400}}`, ErrInvalid, "Observation.valueQuantity.value", "outside the range"},
		{"duplicate fullUrl", `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"}},{"fullUrl":"urn:uuid:2","resource":{"resourceType":"Patient"}},{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"}}]}`,
			ErrInvalid, "Bundle.entry[2].fullUrl", "entry 0 again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body))
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Parse = %v, want *Error", err)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("kind = %v, want %v", fe.Kind, tt.kind)
			}
			iss := fe.Issues[0]
			expr := ""
			if len(iss.Expression) > 0 {
				expr = iss.Expression[0]
			}
			if expr != tt.expr || !strings.Contains(iss.Diagnostics, tt.msg) {
				t.Errorf("issue = %q at %q; want %q at %q", iss.Diagnostics, expr, tt.msg, tt.expr)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	for _, body := range []string{
		`{"resourceType":"Patient","name":[{"given":["a","b"],"_given":[null,{"id":"x"}]}]}`,
		`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.000000000000000000001}}`,
		`{"resourceType":"Encounter","status":"planned","class":{"code":"AMB"}}`,
		`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.7976931348623157e308}}`,
		`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":-5e-324}}`,
		`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":0.000e-999}}`,
		`{"resourceType":"Bundle","type":"history","entry":[{"fullUrl":"urn:uuid:1","request":{"method":"POST","url":"Patient"},"response":{"status":"201"}},{"fullUrl":"urn:uuid:1","request":{"method":"PUT","url":"Patient/1"},"response":{"status":"200"}}]}`,
		`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","meta":{"versionId":"1"}}},{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","meta":{"versionId":"2"}}}]}`,
		`{"resourceType":"Patient","name":[` + strings.Repeat(`{"text":"a"},`, 9999) + `{"text":"a"}]}`,
		`{"resourceType":"Patient","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}}`,
	} {
		if _, err := Parse([]byte(body)); err != nil {
			t.Errorf("Parse(%s) = %v", body, err)
		}
	}
}

func TestStampKeepsDecimalsAndMeta(t *testing.T) {
	r, err := Parse([]byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50},"meta":{"tag":[{"code":"t"}],"versionId":"99"}}`))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 21, 8, 0, 0, 123456000, time.UTC)
	got := string(r.Stamp("abc", 3, at))
	want := `{"code":{"text":"x"},"id":"abc","meta":{"lastUpdated":"2026-11-21T08:00:00.123456Z","tag":[{"code":"t"}],"versionId":"3"},"resourceType":"Observation","status":"final","valueQuantity":{"value":1.50}}`
	if got != want {
		t.Fatalf("Stamp =\n%s\nwant\n%s", got, want)
	}
	// The stamped bytes are themselves valid.
	if _, err := Parse([]byte(got)); err != nil {
		t.Fatal(err)
	}
	v, _ := fhirjson.Parse([]byte(got), fhirjson.Limits{})
	if string(fhirjson.Canonical(&v)) != got {
		t.Fatal("stamped bytes are not canonical")
	}
}

func BenchmarkParsePatient(b *testing.B) {
	body := []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.36.146.595.217.0.1","value":"12345"}],"active":true,"name":[{"use":"official","family":"Chalmers","given":["Peter","James"]}],"telecom":[{"system":"phone","value":"(03) 5555 6473","use":"work"}],"gender":"male","birthDate":"1974-12-25","address":[{"use":"home","line":["534 Erewhon St"],"city":"PleasantVille","state":"Vic","postalCode":"3999"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParse: any body either parses into a resource whose stamped bytes
// are canonical and parse again, or is refused with issues naming the
// fault. It never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Patient","name":[{"family":"x","given":["a"]}],"birthDate":"1970"}`))
	f.Add([]byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50}}`))
	f.Add([]byte(`{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","request":{"method":"POST","url":"Patient"},"resource":{"resourceType":"Patient"}}]}`))
	f.Add([]byte(`{"resourceType":"Patient","_birthDate":{"extension":[{"url":"u","valueCode":"x"}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Parse(body)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) || len(fe.Issues) == 0 {
				t.Fatalf("error without issues: %v", err)
			}
			return
		}
		out := r.Stamp("x", 1, time.Unix(0, 0))
		if _, err := Parse(out); err != nil {
			t.Fatalf("stamped resource does not parse: %v\n%s", err, out)
		}
	})
}
