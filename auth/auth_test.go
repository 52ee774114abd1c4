package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/policy"
)

func TestKeyCreatedOnceAcrossConcurrentCallers(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			k, err := LoadOrCreateKey(dir)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = k.ID
		}(i)
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Fatalf("callers got different keys: %v", ids)
		}
	}
	again, err := LoadOrCreateKey(dir)
	if err != nil || again.ID != ids[0] {
		t.Fatalf("reload: %v %v", again, err)
	}
}

func TestVerify(t *testing.T) {
	key, err := LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	otherPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := newKey(otherPriv)
	now := time.Now()
	mint := func(k *Key, g Grant, at time.Time) string {
		tok, err := k.Mint(g, at)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := Grant{Scope: "system/*.cruds", TTL: time.Hour}
	forged := mint(other, good, now)
	renamed := *key
	renamed.Issuer = "urn:fhirgate:someone-else"
	otherIssuer := mint(&renamed, good, now)
	// Same claims, our issuer, other key: a forgery.
	other.Issuer = key.Issuer
	forgedSameIssuer := mint(other, good, now)
	valid := mint(key, good, now)
	tampered := valid[:len(valid)-4] + "AAAA"
	tests := []struct {
		name, token, reason string
	}{
		{"valid", valid, ""},
		{"expired", mint(key, Grant{Scope: "system/*.rs", TTL: time.Minute}, now.Add(-2*time.Hour)), "expired"},
		{"other key", forged, "signature is invalid"},
		{"other issuer", otherIssuer, "issued by someone else"},
		{"forged signature", forgedSameIssuer, "signature is invalid"},
		{"tampered", tampered, "signature is invalid"},
		{"wrong audience", mint(key, Grant{Scope: "system/*.rs", TTL: time.Hour, Audience: "https://other.example/fhir"}, now), "another audience"},
		{"garbage", "not-a-token", "malformed"},
		{"alg none", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.", "invalid"},
	}
	v := NewVerifier(key, "http://127.0.0.1:8080/fhir")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(tt.token)
			if tt.reason == "" {
				if err != nil || p.Subject != DefaultSubject || p.Role != policy.RoleSystem || p.Scopes.String() != "system/*.cruds" {
					t.Fatalf("Verify = %+v, %v", p, err)
				}
				return
			}
			if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Verify = %v, want ErrUnauthenticated: %s", err, tt.reason)
			}
			if strings.Contains(err.Error(), tt.token) {
				t.Fatal("error echoes the token")
			}
		})
	}
	// The base URL is an accepted audience too.
	if _, err := v.Verify(mint(key, Grant{Scope: "system/*.rs", TTL: time.Hour, Audience: "http://127.0.0.1:8080/fhir"}, now)); err != nil {
		t.Fatalf("base URL audience: %v", err)
	}
	// A cached token still expires.
	short := mint(key, Grant{Scope: "system/*.rs", TTL: 2 * time.Minute}, now)
	if _, err := v.Verify(short); err != nil {
		t.Fatal(err)
	}
	v.now = func() time.Time { return now.Add(3 * time.Minute) }
	if _, err := v.Verify(short); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("cached expired token accepted: %v", err)
	}
}

func TestMintRefusesBadScopes(t *testing.T) {
	key, _ := LoadOrCreateKey(t.TempDir())
	if _, err := key.Mint(Grant{Scope: "system/Patient.xyz", TTL: time.Hour}, time.Now()); err == nil {
		t.Fatal("minted a token with an invalid scope")
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	key, _ := LoadOrCreateKey(b.TempDir())
	tok, _ := key.Mint(Grant{Scope: "system/*.cruds", TTL: time.Hour}, time.Now())
	v := NewVerifier(key)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
