package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirgate/fhirgate/policy"
)

const wallet = "eip155:1337:0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"

func TestMintAndVerifyIdentity(t *testing.T) {
	key, err := LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(key)
	now := time.Now()
	tests := []struct {
		name    string
		g       Grant
		subject string
		id      Identity
	}{
		{"patient", Grant{Role: policy.RolePatient, FHIRUser: "Patient/p-1", Wallet: wallet, Scope: "patient/*.rs"},
			"Patient/p-1", Identity{FHIRUser: "Patient/p-1", Patient: "p-1", Wallet: wallet}},
		{"practitioner", Grant{Role: policy.RolePractitioner, FHIRUser: "Practitioner/d.2", Scope: "user/*.rs"},
			"Practitioner/d.2", Identity{FHIRUser: "Practitioner/d.2"}},
		{"regulator who is a practitioner", Grant{Role: policy.RoleRegulator, FHIRUser: "Practitioner/r", Scope: "system/AuditEvent.rs"},
			"Practitioner/r", Identity{FHIRUser: "Practitioner/r"}},
		{"unlinked wallet", Grant{Role: policy.RolePatient, Subject: "did:pkh:" + wallet, Wallet: wallet},
			"did:pkh:" + wallet, Identity{Wallet: wallet}},
		{"system", Grant{Scope: "system/*.rs"}, DefaultSubject, Identity{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.g.TTL = time.Hour
			tok, err := key.Mint(tt.g, now)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // uncached, then cached
				p, err := v.Verify(tok)
				if err != nil {
					t.Fatal(err)
				}
				if p.Subject != tt.subject || p.Role != tt.g.Role && tt.g.Role != "" || p.Resource != tt.id.FHIRUser || p.Wallet != tt.id.Wallet {
					t.Fatalf("Verify = %+v", p)
				}
			}
		})
	}
}

func TestMintRefusesInconsistentIdentity(t *testing.T) {
	key, _ := LoadOrCreateKey(t.TempDir())
	for name, g := range map[string]Grant{
		"patient as practitioner": {Role: policy.RolePractitioner, FHIRUser: "Patient/p"},
		"practitioner as patient": {Role: policy.RolePatient, FHIRUser: "Practitioner/p"},
		"system with a person":    {Role: policy.RoleSystem, FHIRUser: "Practitioner/p"},
		"admin as a patient":      {Role: policy.RoleAdmin, FHIRUser: "Patient/p"},
		"other resource type":     {Role: policy.RolePatient, FHIRUser: "Observation/p"},
		"no id":                   {Role: policy.RolePatient, FHIRUser: "Patient/"},
		"bad id":                  {Role: policy.RolePatient, FHIRUser: "Patient/a b"},
		"long id":                 {Role: policy.RolePatient, FHIRUser: "Patient/" + string(make([]byte, 65))},
		"no type":                 {Role: policy.RolePatient, FHIRUser: "p"},
		"bad wallet":              {Role: policy.RolePatient, FHIRUser: "Patient/p", Wallet: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"},
		"wallet leading zero":     {Role: policy.RolePatient, Wallet: "eip155:01:0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"},
	} {
		g.TTL = time.Hour
		if _, err := key.Mint(g, time.Now()); err == nil {
			t.Errorf("%s: minted", name)
		}
	}
}

// A token we signed whose claims contradict each other is refused, not
// interpreted (defense in depth against a minting bug).
func TestVerifyRefusesInconsistentClaims(t *testing.T) {
	key, _ := LoadOrCreateKey(t.TempDir())
	v := NewVerifier(key)
	now := time.Now()
	for name, c := range map[string]claims{
		"patient context without fhirUser": {Role: policy.RolePatient, Patient: "p"},
		"patient context of another":       {Role: policy.RolePatient, FHIRUser: "Patient/p", Patient: "q"},
		"missing patient context":          {Role: policy.RolePatient, FHIRUser: "Patient/p"},
		"practitioner with patient":        {Role: policy.RolePractitioner, FHIRUser: "Practitioner/d", Patient: "d"},
		"system with fhirUser":             {Role: policy.RoleSystem, FHIRUser: "Patient/p"},
	} {
		c.RegisteredClaims = jwt.RegisteredClaims{
			Issuer: key.Issuer, Subject: "x", Audience: jwt.ClaimStrings{key.Issuer},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, c).SignedString(key.priv)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(tok); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func BenchmarkVerifyPersonCached(b *testing.B) {
	key, _ := LoadOrCreateKey(b.TempDir())
	tok, _ := key.Mint(Grant{Role: policy.RolePatient, FHIRUser: "Patient/p", Wallet: wallet, Scope: "patient/*.rs", TTL: time.Hour}, time.Now())
	v := NewVerifier(key)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func TestVerifyCachedAllocationFree(t *testing.T) {
	key, _ := LoadOrCreateKey(t.TempDir())
	tok, _ := key.Mint(Grant{Role: policy.RolePatient, FHIRUser: "Patient/p", Wallet: wallet, Scope: "patient/*.rs", TTL: time.Hour}, time.Now())
	v := NewVerifier(key)
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { v.Verify(tok) }); n != 0 {
		t.Fatalf("cached Verify allocates %v times", n)
	}
}
