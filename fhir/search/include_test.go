package search

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// TestIncludeCommaJoined: @medplum/core joins several _revinclude values
// with commas; the answer says to repeat the parameter, not that
// "subject" is an unknown target type.
func TestIncludeCommaJoined(t *testing.T) {
	tests := []struct {
		typ, query   string
		param        string
		says, notSay string
	}{
		{"Patient", "_revinclude=Appointment:patient,DiagnosticReport:subject", "_revinclude",
			"repeat the parameter instead of joining values with commas: _revinclude=Appointment:patient&_revinclude=DiagnosticReport:subject", "target type"},
		{"Observation", "_include=Observation:subject,Observation:performer,Observation:encounter", "_include",
			"_include=Observation:subject&_include=Observation:performer&...", "target type"},
		{"Patient", "_include:iterate=Patient:general-practitioner,Patient:organization", "_include",
			"repeat the parameter", "target type"},
		{"Patient", "_revinclude=Appointment:patient,", "_revinclude", "repeat the parameter", "target type"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			params, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseQuery(tt.typ, params, Options{})
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *search.Error", err)
			}
			if !strings.HasPrefix(se.Param, tt.param) || !strings.Contains(se.Msg, tt.says) || strings.Contains(se.Msg, tt.notSay) {
				t.Errorf("param %q msg %q; want %q saying %q", se.Param, se.Msg, tt.param, tt.says)
			}
		})
	}
	// One value per parameter, repeated, is what works.
	params, _ := url.ParseQuery("_revinclude=Appointment:patient&_revinclude=DiagnosticReport:subject")
	q, err := ParseQuery("Patient", params, Options{})
	if err != nil || len(q.RevInclude) != 2 {
		t.Fatalf("repeated: %v %+v", err, q)
	}
}
