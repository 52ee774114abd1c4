package search

import (
	"testing"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

// FuzzExtract runs extraction on arbitrary JSON as a resource of its own
// type (or as a Patient, an Observation and a Bundle when it names none):
// it must never panic, and every value must carry its parameter.
func FuzzExtract(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"Patient","name":[{"family":"X","given":["a",1]}],"birthDate":"2020-02-30"}`,
		`{"resourceType":"Observation","valueQuantity":{"value":1e400},"effectiveTiming":{"event":["2020",null]}}`,
		`{"resourceType":"DiagnosticReport","subject":{"reference":"http://x/Patient/1/_history/"},"result":[{"reference":"#"}]}`,
		`{"resourceType":"Appointment","participant":[{"actor":{"reference":"Patient/"}}],"start":"2020-01-01T10:00:00+99:99"}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"}}]}`,
		`{"telecom":[{"system":"email","value":{}}],"deceasedDateTime":"9999-12-31T23:59:60Z"}`,
		`[]`, `null`, `{"resourceType":7}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := fhirjson.Parse(data, fhirjson.Limits{MaxDepth: 32, MaxValues: 1 << 12})
		if err != nil {
			return
		}
		typ := v.GetString("resourceType")
		types := []string{typ}
		if !IsResourceType(typ) {
			if v.Kind != fhirjson.Object {
				Extract("Patient", &v) // must fail cleanly
				return
			}
			types = []string{"Patient", "Observation", "Bundle"}
		}
		for _, typ := range types {
			v.Set("resourceType", fhirjson.Str(typ))
			vals, err := Extract(typ, &v)
			if err != nil {
				t.Fatalf("Extract(%s): %v", typ, err)
			}
			for _, iv := range vals {
				if iv.Param == "" || iv.Kind == 0 {
					t.Fatalf("value without param or kind: %+v", iv)
				}
				if iv.Kind == 4 && iv.Lo > iv.Hi {
					t.Fatalf("date range inverted: %+v", iv)
				}
			}
		}
	})
}
