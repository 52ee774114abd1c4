package registration

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

const (
	okPractitioner = `{"kind":"practitioner","name":{"prefix":"Dr.","given":"Maria","family":"Santos"},"qualification":"MD",
		"specialty":"Cardiology","licence":{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}}`
	okPatient = `{"kind":"patient","name":{"given":"Alex","family":"Rivera"},"birthDate":"1986-04-12",
		"email":"a@example.org","phone":"+44 20 7946 0000","clinicNumber":"MRN-40231"}`
)

func TestParseRequest(t *testing.T) {
	long := strings.Repeat("x", MaxField+1)
	for _, tc := range []struct {
		name, body string
		field      string // "" with ok: accepted
		ok         bool
	}{
		{"practitioner", okPractitioner, "", true},
		{"patient", okPatient, "", true},
		{"patient, phone only", `{"kind":"patient","name":{"family":"Rivera"},"birthDate":"1986","phone":"0123 456 789"}`, "", true},
		{"not json", `{"kind":`, "", false},
		{"two objects", okPatient + `{}`, "", false},
		{"array", `[]`, "", false},
		{"no kind", `{"name":{"family":"X"}}`, "kind", false},
		{"bad kind", `{"kind":"admin"}`, "kind", false},
		{"unknown field", `{"kind":"patient","role":"admin"}`, "role", false},
		{"unknown name field", `{"kind":"patient","name":{"family":"R","suffix":"Jr"}}`, "suffix", false},
		{"wrong type", `{"kind":"patient","birthDate":19860412}`, "birthDate", false},
		{"no family", `{"kind":"patient","name":{"given":"Alex"},"birthDate":"1986-04-12","email":"a@example.org"}`, "name.family", false},
		{"long family", `{"kind":"patient","name":{"family":"` + long + `"},"birthDate":"1986-04-12","email":"a@example.org"}`, "name.family", false},
		{"six given", `{"kind":"patient","name":{"given":"a b c d e f","family":"R"},"birthDate":"1986-04-12","email":"a@example.org"}`, "name.given", false},
		{"control char", `{"kind":"patient","name":{"family":"R\u0000"},"birthDate":"1986-04-12","email":"a@example.org"}`, "name.family", false},
		{"no birth date", `{"kind":"patient","name":{"family":"R"},"email":"a@example.org"}`, "birthDate", false},
		{"bad birth date", `{"kind":"patient","name":{"family":"R"},"birthDate":"1986-13-01","email":"a@example.org"}`, "birthDate", false},
		{"future birth date", `{"kind":"patient","name":{"family":"R"},"birthDate":"2030-01-01","email":"a@example.org"}`, "birthDate", false},
		{"no contact", `{"kind":"patient","name":{"family":"R"},"birthDate":"1986-04-12"}`, "email", false},
		{"bad email", `{"kind":"patient","name":{"family":"R"},"birthDate":"1986-04-12","email":"a@b"}`, "email", false},
		{"bad phone", `{"kind":"patient","name":{"family":"R"},"birthDate":"1986-04-12","phone":"call me"}`, "phone", false},
		{"patient with licence", `{"kind":"patient","name":{"family":"R"},"birthDate":"1986-04-12","email":"a@example.org","licence":{"system":"urn:x","value":"1"}}`, "licence", false},
		{"patient with qualification", `{"kind":"patient","name":{"family":"R"},"birthDate":"1986-04-12","email":"a@example.org","qualification":"MD"}`, "qualification", false},
		{"practitioner with birth date", `{"kind":"practitioner","name":{"family":"S"},"qualification":"MD","licence":{"system":"urn:x","value":"1"},"birthDate":"1970"}`, "birthDate", false},
		{"no qualification", `{"kind":"practitioner","name":{"family":"S"},"licence":{"system":"urn:x","value":"1"}}`, "qualification", false},
		{"no licence", `{"kind":"practitioner","name":{"family":"S"},"qualification":"MD"}`, "licence.value", false},
		{"licence system not a URI", `{"kind":"practitioner","name":{"family":"S"},"qualification":"MD","licence":{"system":"NPI","value":"1"}}`, "licence.system", false},
		{"long licence", `{"kind":"practitioner","name":{"family":"S"},"qualification":"MD","licence":{"system":"urn:x","value":"` + long + `"}}`, "licence.value", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, a, err := ParseRequest([]byte(tc.body), now)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if kind == "" || a.Name.Family == "" {
					t.Fatalf("parsed %q %+v", kind, a)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want a FieldError", err)
			}
			if fe.Field != tc.field {
				t.Errorf("field = %q (%v), want %q", fe.Field, err, tc.field)
			}
		})
	}
}

func TestParseVerify(t *testing.T) {
	for _, tc := range []struct {
		body  string
		kind  Kind
		field string
		ok    bool
	}{
		{``, Practitioner, "", true},
		{`{}`, Patient, "", true},
		{`{"record":"Practitioner/abc","replaceWallet":true}`, Practitioner, "", true},
		{`{"clinicNumber":"MRN-1","clinicSystem":"urn:example:mrn"}`, Patient, "", true},
		{`{"record":"Patient/abc"}`, Practitioner, "record", false},
		{`{"record":"Practitioner/a b"}`, Practitioner, "record", false},
		{`{"record":"Patient/abc"}`, Patient, "record", false},
		{`{"clinicNumber":"MRN-1"}`, Practitioner, "clinicNumber", false},
		{`{"clinicSystem":"urn:x"}`, Patient, "clinicNumber", false},
		{`{"replaceWallet":true}`, Patient, "replaceWallet", false},
		{`{"other":1}`, Patient, "other", false},
	} {
		_, err := ParseVerify([]byte(tc.body), tc.kind)
		var fe *FieldError
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: refused: %v", tc.body, err)
		case !tc.ok && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("%s: err = %v, want field %q", tc.body, err, tc.field)
		}
	}
}

func TestReasons(t *testing.T) {
	if _, err := ParseReject([]byte(`{"reason":"  "}`)); err == nil {
		t.Error("an empty reason was accepted")
	}
	if _, err := ParseReject(nil); err == nil {
		t.Error("no body was accepted")
	}
	if _, err := ParseReject([]byte(`{"reason":"` + strings.Repeat("é", MaxReason+1) + `"}`)); err == nil {
		t.Error("a long reason was accepted")
	}
	if r, err := ParseReject([]byte(`{"reason":" licence not found \n in the register"}`)); err != nil || r != "licence not found \n in the register" {
		t.Errorf("reason = %q, %v", r, err)
	}
	if _, err := ParseRecordBody([]byte(`{"record":"Practitioner/x"}`), true); err == nil {
		t.Error("deactivation without a reason accepted")
	}
	if _, err := ParseRecordBody([]byte(`{"record":"Practitioner/x"}`), false); err != nil {
		t.Errorf("reactivation without a reason: %v", err)
	}
}

// FuzzParseRequest: the parser never panics, and what it accepts is
// within the bounds.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{okPractitioner, okPatient, `{}`, `{"kind":"patient","name":{"family":"\u0000"}}`, `[`, `{"kind":"patient","birthDate":"0000-00-00"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kind, a, err := ParseRequest(data, now)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a FieldError: %v", err)
			}
			return
		}
		if kind != Patient && kind != Practitioner {
			t.Fatalf("kind %q accepted", kind)
		}
		for _, s := range []string{a.Name.Prefix, a.Name.Given, a.Name.Family, a.Qualification, a.Specialty, a.BirthDate, a.Email, a.Phone, a.ClinicNumber} {
			if utf8.RuneCountInString(s) > MaxField || !utf8.ValidString(s) {
				t.Fatalf("field out of bounds accepted: %q", s)
			}
		}
		if a.Name.Family == "" {
			t.Fatal("no family name accepted")
		}
		if len(strings.Fields(a.Name.Given)) > MaxNameParts {
			t.Fatal("too many given names accepted")
		}
	})
}
