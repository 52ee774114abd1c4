package policy

import (
	"errors"
	"testing"
)

func TestParseScopes(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"system/Patient.rs", "system/Patient.rs", false},
		{"system/*.cruds openid fhirUser", "system/*.cruds openid fhirUser", false},
		{"system/*.read", "system/*.rs", false},
		{"user/Observation.write", "user/Observation.cud", false},
		{"patient/*.*", "patient/*.cruds", false},
		{"launch/patient offline_access", "launch/patient offline_access", false},
		// The gateway's own scopes are kept verbatim, not clinical.
		{"system/AuditEvent.rs fhirgate/registration.admin fhirgate/identity-linking", "system/AuditEvent.rs fhirgate/registration.admin fhirgate/identity-linking", false},
		{"system/Patient.sr", "", true}, // v2 order is cruds
		{"system/Patient.rr", "", true}, // repeated
		{"system/Patient.x", "", true},  // unknown permission
		{"system/Patient.", "", true},   // none
		{"system/.rs", "", true},        // no type
		{"admin/Patient.rs", "", true},  // unknown context
		{"system/Observation.rs?category=x", "", true},
	}
	for _, tt := range tests {
		got, err := ParseScopes(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("ParseScopes(%q) error = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if err == nil && got.String() != tt.want {
			t.Errorf("ParseScopes(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckScope(t *testing.T) {
	sys := func(s string) *Principal {
		sc, err := ParseScopes(s)
		if err != nil {
			t.Fatal(err)
		}
		return &Principal{Subject: "client/x", Role: RoleSystem, Scopes: sc}
	}
	tests := []struct {
		scopes string
		in     Interaction
		typ    string
		ok     bool
	}{
		{"system/Patient.rs", Read, "Patient", true},
		{"system/Patient.rs", VRead, "Patient", true},
		{"system/Patient.rs", HistoryInstance, "Patient", true},
		{"system/Patient.rs", SearchType, "Patient", true},
		{"system/Patient.rs", Create, "Patient", false},
		{"system/Patient.rs", Read, "Observation", false},
		{"system/Patient.rs", HistorySystem, "", false},
		{"system/*.rs", HistorySystem, "", true},
		{"system/*.c", Create, "Observation", true},
		{"system/*.c", Update, "Observation", false},
		{"system/Observation.u", Patch, "Observation", true},
		{"system/Observation.d", Delete, "Observation", true},
		{"system/*.write", Delete, "Observation", true},
		{"patient/*.rs", Read, "Patient", false}, // wrong context for a system
	}
	for _, tt := range tests {
		err := CheckScope(sys(tt.scopes), tt.in, tt.typ)
		if (err == nil) != tt.ok {
			t.Errorf("%s %s %s: %v, want ok=%v", tt.scopes, tt.in, tt.typ, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrDenied) {
			t.Errorf("error %v does not wrap ErrDenied", err)
		}
	}
}

func FuzzParseScopes(f *testing.F) {
	for _, s := range []string{"system/Patient.rs", "patient/*.read openid", "user/x.cruds?a=b", "a/b/c.d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScopes(s)
		if err != nil {
			return
		}
		// What parses must print back to something that parses the same.
		again, err := ParseScopes(sc.String())
		if err != nil || again.String() != sc.String() {
			t.Fatalf("%q -> %q -> %q, %v", s, sc, again, err)
		}
	})
}
