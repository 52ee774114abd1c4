package smart

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/policy"
)

const tokenURL = "https://gateway.example.org/auth/token"

// Test keys are generated once per test binary: RSA generation is slow.
var (
	keysOnce         sync.Once
	rsaKey, rsaOther *rsa.PrivateKey
	ecKey, ecOther   *ecdsa.PrivateKey
	p256Key          *ecdsa.PrivateKey
	rsaSmall         *rsa.PrivateKey
	errKeys          error
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		gen := func() *rsa.PrivateKey {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				errKeys = err
			}
			return k
		}
		rsaKey, rsaOther = gen(), gen()
		ecKey, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		ecOther, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		p256Key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		// 1024-bit keys are refused by crypto/rsa's generator under its
		// default settings; a registry only needs the public numbers.
		rsaSmall = &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 1023), E: 65537}}
		rsaSmall.N.Add(rsaSmall.N, big.NewInt(1))
	})
	if errKeys != nil {
		t.Fatal(errKeys)
	}
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(k *rsa.PublicKey, kid string) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(k *ecdsa.PublicKey, kid string) map[string]any {
	raw, err := k.Bytes()
	if err != nil {
		panic(err)
	}
	size := (len(raw) - 1) / 2
	crv := map[int]string{32: "P-256", 48: "P-384"}[size]
	return map[string]any{"kty": "EC", "kid": kid, "crv": crv, "x": b64u(raw[1 : 1+size]), "y": b64u(raw[1+size:])}
}

type clientJSON = map[string]any

func registryJSON(t testing.TB, clients ...clientJSON) []byte {
	b, err := json.Marshal(map[string]any{"clients": clients})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testRegistry: ehr-1 (RSA and EC keys, system/*.cruds), lab (EC key,
// a few scopes), audit (regulator), old (disabled).
func testRegistry(t testing.TB) *Registry {
	keys(t)
	r, err := ParseRegistry(registryJSON(t,
		clientJSON{"client_id": "ehr-1", "scope": "system/*.cruds", "jwks_uri": "https://ehr-1.example/jwks",
			"jwks": map[string]any{"keys": []any{rsaJWK(&rsaKey.PublicKey, "rsa-1"), ecJWK(&ecKey.PublicKey, "ec-1")}}},
		clientJSON{"client_id": "lab", "scope": "system/Patient.rs system/DiagnosticReport.rs system/DiagnosticReport.cu system/Observation.read",
			"jwks": map[string]any{"keys": []any{ecJWK(&ecKey.PublicKey, "lab-ec")}}},
		clientJSON{"client_id": "audit", "role": "regulator", "scope": "system/AuditEvent.rs",
			"jwks": map[string]any{"keys": []any{rsaJWK(&rsaKey.PublicKey, "audit-rsa")}}},
		clientJSON{"client_id": "old", "scope": "system/*.rs", "disabled": true,
			"jwks": map[string]any{"keys": []any{rsaJWK(&rsaKey.PublicKey, "old-rsa")}}},
	), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newServer(t testing.TB) (*Server, *auth.Verifier) {
	key, err := auth.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Key: key, Registry: testRegistry(t), TokenURL: tokenURL})
	if err != nil {
		t.Fatal(err)
	}
	return s, auth.NewVerifier(key)
}

var jtiSeq atomic.Int64

// claims returns valid assertion claims for client at now.
func claims(client string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": client, "sub": client, "aud": tokenURL,
		"exp": now.Add(4 * time.Minute).Unix(),
		"jti": fmt.Sprintf("jti-%d", jtiSeq.Add(1)),
	}
}

func sign(t testing.TB, alg string, key any, hdr map[string]any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), c)
	tok.Header["typ"] = "JWT"
	for k, v := range hdr {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func form(assertion, scope string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {AssertionTypeJWTBearer},
		"client_assertion":      {assertion},
		"scope":                 {scope},
	}
}

func TestExchange(t *testing.T) {
	keys(t)
	now := time.Now().Truncate(time.Second)
	rs := func(kid string, c jwt.MapClaims) string {
		return sign(t, "RS384", rsaKey, map[string]any{"kid": kid}, c)
	}
	es := func(kid string, c jwt.MapClaims) string {
		return sign(t, "ES384", ecKey, map[string]any{"kid": kid}, c)
	}
	with := func(c jwt.MapClaims, k string, v any) jwt.MapClaims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	replayed := rs("rsa-1", claims("ehr-1", now))
	tests := []struct {
		name   string
		form   url.Values
		code   *Error // nil: success
		reason string // in the error description; for success, the granted scope
		role   policy.Role
	}{
		{"RS384", form(rs("rsa-1", claims("ehr-1", now)), "system/*.cruds"), nil, "system/*.cruds", policy.RoleSystem},
		{"ES384", form(es("ec-1", claims("ehr-1", now)), "system/Patient.rs"), nil, "system/Patient.rs", policy.RoleSystem},
		{"v1 scopes", form(es("lab-ec", claims("lab", now)), "system/Observation.read system/Patient.read"), nil, "system/Observation.rs system/Patient.rs", policy.RoleSystem},
		{"subset of a type's perms", form(es("lab-ec", claims("lab", now)), "system/DiagnosticReport.r"), nil, "system/DiagnosticReport.r", ""},
		{"perms add up across scopes", form(es("lab-ec", claims("lab", now)), "system/DiagnosticReport.crus"), nil, "system/DiagnosticReport.crus", ""},
		{"duplicates collapse", form(es("lab-ec", claims("lab", now)), "system/Patient.rs  system/Patient.rs"), nil, "system/Patient.rs", ""},
		{"regulator client", form(rs("audit-rsa", claims("audit", now)), "system/AuditEvent.rs"), nil, "system/AuditEvent.rs", policy.RoleRegulator},
		{"matching client_id", func() url.Values {
			f := form(rs("rsa-1", claims("ehr-1", now)), "system/*.rs")
			f.Set("client_id", "ehr-1")
			return f
		}(), nil, "system/*.rs", ""},
		{"registered jku", form(sign(t, "RS384", rsaKey, map[string]any{"kid": "rsa-1", "jku": "https://ehr-1.example/jwks"}, claims("ehr-1", now)), "system/*.rs"), nil, "system/*.rs", ""},
		{"no typ", form(sign(t, "RS384", rsaKey, map[string]any{"kid": "rsa-1", "typ": nil}, claims("ehr-1", now)), "system/*.rs"), nil, "system/*.rs", ""},
		{"aud as array", form(rs("rsa-1", with(claims("ehr-1", now), "aud", []string{tokenURL})), "system/*.rs"), nil, "system/*.rs", ""},
		{"exp 5 min ahead", form(rs("rsa-1", with(claims("ehr-1", now), "exp", now.Add(5*time.Minute).Unix())), "system/*.rs"), nil, "system/*.rs", ""},
		{"first use of a jti", form(replayed, "system/*.rs"), nil, "system/*.rs", ""},

		{"no grant_type", func() url.Values {
			f := form(rs("rsa-1", claims("ehr-1", now)), "system/*.rs")
			f.Del("grant_type")
			return f
		}(), ErrInvalidRequest, "grant_type", ""},
		{"authorization_code", func() url.Values {
			f := form(rs("rsa-1", claims("ehr-1", now)), "system/*.rs")
			f.Set("grant_type", "authorization_code")
			return f
		}(), ErrUnsupportedGrantType, "client_credentials", ""},
		{"repeated scope", func() url.Values {
			f := form(rs("rsa-1", claims("ehr-1", now)), "system/*.rs")
			f.Add("scope", "system/*.cruds")
			return f
		}(), ErrInvalidRequest, "repeated", ""},
		{"no assertion type", func() url.Values {
			f := form(rs("rsa-1", claims("ehr-1", now)), "system/*.rs")
			f.Del("client_assertion_type")
			return f
		}(), ErrInvalidClient, "client_assertion_type", ""},
		{"saml assertion type", func() url.Values {
			f := form(rs("rsa-1", claims("ehr-1", now)), "system/*.rs")
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			return f
		}(), ErrInvalidClient, "client_assertion_type", ""},
		{"no assertion", form("", "system/*.rs"), ErrInvalidClient, "missing", ""},
		{"huge assertion", form(strings.Repeat("a", MaxAssertionLen+1), "system/*.rs"), ErrInvalidClient, "too long", ""},
		{"garbage", form("not.a.jwt", "system/*.rs"), ErrInvalidClient, "well-formed", ""},
		{"RS256", form(sign(t, "RS256", rsaKey, map[string]any{"kid": "rsa-1"}, claims("ehr-1", now)), "system/*.rs"), ErrInvalidClient, "RS384 or ES384", ""},
		{"ES256", form(sign(t, "ES256", p256Key, map[string]any{"kid": "ec-1"}, claims("ehr-1", now)), "system/*.rs"), ErrInvalidClient, "RS384 or ES384", ""},
		{"PS384", form(sign(t, "PS384", rsaKey, map[string]any{"kid": "rsa-1"}, claims("ehr-1", now)), "system/*.rs"), ErrInvalidClient, "RS384 or ES384", ""},
		{"alg none", form(sign(t, "none", jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": "rsa-1"}, claims("ehr-1", now)), "system/*.rs"), ErrInvalidClient, "RS384 or ES384", ""},
		{"HS384 with the public key as secret", form(sign(t, "HS384", rsaKey.PublicKey.N.Bytes(), map[string]any{"kid": "rsa-1"}, claims("ehr-1", now)), "system/*.rs"), ErrInvalidClient, "RS384 or ES384", ""},
		{"no kid", form(sign(t, "RS384", rsaKey, map[string]any{}, claims("ehr-1", now)), "system/*.rs"), ErrInvalidClient, "kid", ""},
		{"unknown kid", form(rs("rsa-9", claims("ehr-1", now)), "system/*.rs"), ErrInvalidClient, "no registered RS384 key", ""},
		{"EC kid with RS384", form(rs("ec-1", claims("ehr-1", now)), "system/*.rs"), ErrInvalidClient, "no registered RS384 key", ""},
		{"another client's kid", form(rs("audit-rsa", claims("ehr-1", now)), "system/*.rs"), ErrInvalidClient, "no registered", ""},
		{"unregistered key under a registered kid", form(sign(t, "RS384", rsaOther, map[string]any{"kid": "rsa-1"}, claims("ehr-1", now)), "system/*.rs"), ErrInvalidClient, "signature is invalid", ""},
		{"other EC key", form(sign(t, "ES384", ecOther, map[string]any{"kid": "ec-1"}, claims("ehr-1", now)), "system/*.rs"), ErrInvalidClient, "signature is invalid", ""},
		{"tampered payload", form(tamper(rs("rsa-1", claims("ehr-1", now))), "system/*.rs"), ErrInvalidClient, "signature is invalid", ""},
		{"typ JWE", form(sign(t, "RS384", rsaKey, map[string]any{"kid": "rsa-1", "typ": "JWE"}, claims("ehr-1", now)), "system/*.rs"), ErrInvalidClient, "typ", ""},
		{"crit", form(sign(t, "RS384", rsaKey, map[string]any{"kid": "rsa-1", "crit": []string{"exp"}}, claims("ehr-1", now)), "system/*.rs"), ErrInvalidClient, "crit", ""},
		{"other jku", form(sign(t, "RS384", rsaKey, map[string]any{"kid": "rsa-1", "jku": "https://evil.example/jwks"}, claims("ehr-1", now)), "system/*.rs"), ErrInvalidClient, "jku", ""},
		{"jku without registered URI", form(sign(t, "RS384", rsaKey, map[string]any{"kid": "audit-rsa", "jku": ""}, claims("audit", now)), "system/AuditEvent.rs"), ErrInvalidClient, "jku", ""},
		{"unknown client", form(rs("rsa-1", claims("nobody", now)), "system/*.rs"), ErrInvalidClient, "unknown client", ""},
		{"no iss", form(rs("rsa-1", with(claims("ehr-1", now), "iss", nil)), "system/*.rs"), ErrInvalidClient, "iss", ""},
		{"disabled client", form(rs("old-rsa", claims("old", now)), "system/*.rs"), ErrInvalidClient, "disabled", ""},
		{"sub differs", form(rs("rsa-1", with(claims("ehr-1", now), "sub", "someone")), "system/*.rs"), ErrInvalidClient, "sub must equal iss", ""},
		{"no sub", form(rs("rsa-1", with(claims("ehr-1", now), "sub", nil)), "system/*.rs"), ErrInvalidClient, "sub must equal iss", ""},
		{"client_id differs", func() url.Values {
			f := form(rs("rsa-1", claims("ehr-1", now)), "system/*.rs")
			f.Set("client_id", "lab")
			return f
		}(), ErrInvalidClient, "client_id", ""},
		{"aud other", form(rs("rsa-1", with(claims("ehr-1", now), "aud", "https://gateway.example.org/fhir")), "system/*.rs"), ErrInvalidClient, "aud", ""},
		{"aud with slash", form(rs("rsa-1", with(claims("ehr-1", now), "aud", tokenURL+"/")), "system/*.rs"), ErrInvalidClient, "aud", ""},
		{"no aud", form(rs("rsa-1", with(claims("ehr-1", now), "aud", nil)), "system/*.rs"), ErrInvalidClient, "aud", ""},
		{"no exp", form(rs("rsa-1", with(claims("ehr-1", now), "exp", nil)), "system/*.rs"), ErrInvalidClient, "exp", ""},
		{"expired", form(rs("rsa-1", with(claims("ehr-1", now), "exp", now.Add(-time.Minute).Unix())), "system/*.rs"), ErrInvalidClient, "expired", ""},
		{"exp too far", form(rs("rsa-1", with(claims("ehr-1", now), "exp", now.Add(6*time.Minute).Unix())), "system/*.rs"), ErrInvalidClient, "five minutes", ""},
		{"nbf ahead", form(rs("rsa-1", with(claims("ehr-1", now), "nbf", now.Add(2*time.Minute).Unix())), "system/*.rs"), ErrInvalidClient, "not valid yet", ""},
		{"iat ahead", form(rs("rsa-1", with(claims("ehr-1", now), "iat", now.Add(2*time.Minute).Unix())), "system/*.rs"), ErrInvalidClient, "not valid yet", ""},
		{"no jti", form(rs("rsa-1", with(claims("ehr-1", now), "jti", nil)), "system/*.rs"), ErrInvalidClient, "jti", ""},
		{"long jti", form(rs("rsa-1", with(claims("ehr-1", now), "jti", strings.Repeat("j", 256))), "system/*.rs"), ErrInvalidClient, "jti", ""},
		{"replayed jti", form(replayed, "system/*.rs"), ErrInvalidClient, "already used", ""},

		{"no scope", form(rs("rsa-1", claims("ehr-1", now)), " "), ErrInvalidScope, "required", ""},
		{"scope not allowed", form(es("lab-ec", claims("lab", now)), "system/Patient.rs system/Observation.cruds"), ErrInvalidScope, "system/Observation.cruds is not allowed", ""},
		{"perm not allowed", form(es("lab-ec", claims("lab", now)), "system/DiagnosticReport.cruds"), ErrInvalidScope, "not allowed", ""},
		{"wildcard not allowed", form(es("lab-ec", claims("lab", now)), "system/*.rs"), ErrInvalidScope, "not allowed", ""},
		{"patient scope", form(rs("rsa-1", claims("ehr-1", now)), "patient/*.rs"), ErrInvalidScope, "not allowed", ""},
		{"user scope", form(rs("rsa-1", claims("ehr-1", now)), "user/Patient.rs"), ErrInvalidScope, "not allowed", ""},
		{"query-restricted scope", form(rs("rsa-1", claims("ehr-1", now)), "system/Observation.rs?category=vital-signs"), ErrInvalidScope, "malformed", ""},
		{"malformed scope", form(rs("rsa-1", claims("ehr-1", now)), "system/Patient.xyz"), ErrInvalidScope, "malformed", ""},
		{"unlisted other scope", form(rs("rsa-1", claims("ehr-1", now)), "system/*.rs offline_access"), ErrInvalidScope, "not allowed", ""},
		{"odd type not echoed", form(rs("rsa-1", claims("ehr-1", now)), "patient/<b>.rs"), ErrInvalidScope, "a requested scope", ""},
	}
	s, v := newServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := s.Exchange(context.Background(), tt.form, now)
			if tt.code == nil {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if resp.TokenType != "bearer" || resp.ExpiresIn != 300 || resp.Scope != tt.reason {
					t.Fatalf("response %+v, want scope %q", resp, tt.reason)
				}
				p, err := v.Verify(resp.AccessToken)
				if err != nil {
					t.Fatal(err)
				}
				if p.Scopes.String() != tt.reason || !strings.HasPrefix(p.Subject, "client/") || p.Subject != "client/"+p.ClientID {
					t.Fatalf("principal %+v", p)
				}
				if tt.role != "" && p.Role != tt.role {
					t.Fatalf("role %s, want %s", p.Role, tt.role)
				}
				return
			}
			var oe *Error
			if !errors.As(err, &oe) || !errors.Is(err, tt.code) || !strings.Contains(oe.Description, tt.reason) {
				t.Fatalf("Exchange = %v, want %s mentioning %q", err, tt.code.Code, tt.reason)
			}
			if a := tt.form.Get("client_assertion"); a != "" && strings.Contains(oe.Error(), a) {
				t.Fatal("error echoes the assertion")
			}
			wantStatus := 400
			if tt.code == ErrInvalidClient {
				wantStatus = 401
			}
			if oe.Status() != wantStatus {
				t.Fatalf("status %d", oe.Status())
			}
		})
	}
}

// tamper changes the payload of a signed JWT, keeping it well-formed.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	json.Unmarshal(payload, &c)
	c["sub"], c["iss"] = "ehr-1", "ehr-1"
	c["jti"] = "tampered"
	b, _ := json.Marshal(c)
	parts[1] = b64u(b)
	return strings.Join(parts, ".")
}

func TestJTIPerClientAndConcurrentReplay(t *testing.T) {
	keys(t)
	s, _ := newServer(t)
	now := time.Now()
	ctx := context.Background()
	// The same jti from two clients is two assertions.
	c1 := claims("ehr-1", now)
	c2 := claims("lab", now)
	c2["jti"] = c1["jti"]
	if _, err := s.Exchange(ctx, form(sign(t, "RS384", rsaKey, map[string]any{"kid": "rsa-1"}, c1), "system/*.rs"), now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exchange(ctx, form(sign(t, "ES384", ecKey, map[string]any{"kid": "lab-ec"}, c2), "system/Patient.rs"), now); err != nil {
		t.Fatal(err)
	}
	// A second, differently signed assertion with a used jti is a replay.
	c3 := claims("ehr-1", now)
	c3["jti"] = c1["jti"]
	if _, err := s.Exchange(ctx, form(sign(t, "ES384", ecKey, map[string]any{"kid": "ec-1"}, c3), "system/*.rs"), now); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("jti reuse: %v", err)
	}
	// Concurrent submissions of one assertion: one token.
	a := sign(t, "ES384", ecKey, map[string]any{"kid": "ec-1"}, claims("ehr-1", now))
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Exchange(ctx, form(a, "system/*.rs"), now); err == nil {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d tokens for one assertion", wins.Load())
	}
}

func TestMemoryReplayCache(t *testing.T) {
	c := NewMemoryReplayCache(2)
	ctx := context.Background()
	now := time.Now()
	add := func(k string, exp, at time.Time) (bool, error) { return c.Add(ctx, k, exp, at) }
	if ok, _ := add("a", now.Add(time.Minute), now); !ok {
		t.Fatal("a not fresh")
	}
	if ok, _ := add("a", now.Add(time.Minute), now); ok {
		t.Fatal("a replayed")
	}
	if ok, _ := add("b", now.Add(2*time.Minute), now); !ok {
		t.Fatal("b not fresh")
	}
	// Full of unexpired entries: refuse rather than forget.
	if _, err := add("c", now.Add(time.Minute), now); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full cache: %v", err)
	}
	// Once a expires, its slot is reused; b is still remembered.
	later := now.Add(90 * time.Second)
	if ok, err := add("c", later.Add(time.Minute), later); !ok || err != nil {
		t.Fatalf("after expiry: %v %v", ok, err)
	}
	if ok, _ := add("b", later.Add(time.Minute), later); ok {
		t.Fatal("b forgotten")
	}
	if c.Len() != 2 {
		t.Fatalf("len %d", c.Len())
	}
}

func TestExampleRegistry(t *testing.T) {
	r, err := LoadRegistry("testdata/clients.json")
	if err != nil {
		t.Fatal(err)
	}
	cs := r.Clients()
	if len(cs) != 4 {
		t.Fatalf("%d clients", len(cs))
	}
	west, _ := r.Client("ehr-west")
	if len(west.keys) != 1 || west.keys[0].alg != AlgES384 || west.JWKSURI == "" {
		t.Fatalf("ehr-west keys %+v (the P-256 key must be skipped)", west.keys)
	}
	audit, _ := r.Client("audit-tool")
	if audit.Role != policy.RoleRegulator {
		t.Fatalf("audit-tool role %s", audit.Role)
	}
	east, _ := r.Client("ehr-east")
	if east.Role != policy.RoleSystem || east.Scopes.String() != "system/*.cruds" || east.keys[0].alg != AlgRS384 {
		t.Fatalf("ehr-east %+v", east)
	}
	if old, _ := r.Client("ehr-retired"); !old.Disabled {
		t.Fatal("ehr-retired not disabled")
	}
}

func TestParseRegistryErrors(t *testing.T) {
	keys(t)
	rj := rsaJWK(&rsaKey.PublicKey, "k")
	ej := ecJWK(&ecKey.PublicKey, "e")
	jwks := func(ks ...any) map[string]any { return map[string]any{"keys": ks} }
	client := func(kv ...any) clientJSON {
		c := clientJSON{"client_id": "c", "scope": "system/*.rs", "jwks": jwks(rj)}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	merge := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	offCurve := merge(ej, "y", ej["x"])
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"keys": [`), 0o600)
	tests := []struct {
		name string
		data string
		want string
	}{
		{"not JSON", `{`, "clients"},
		{"unknown member", string(registryJSON(t, client("scopes", "system/*.rs"))), "unknown field"},
		{"trailing data", string(registryJSON(t, client())) + "{}", "trailing"},
		{"duplicate client", string(registryJSON(t, client(), client())), "twice"},
		{"empty client_id", string(registryJSON(t, client("client_id", ""))), "client_id"},
		{"client_id with space", string(registryJSON(t, client("client_id", "a b"))), "client_id"},
		{"patient role", string(registryJSON(t, client("role", "patient"))), "role"},
		{"unknown role", string(registryJSON(t, client("role", "root"))), "role"},
		{"no scope", string(registryJSON(t, client("scope", nil))), "scope"},
		{"bad scope", string(registryJSON(t, client("scope", "system/*.x"))), "scope"},
		{"patient scope", string(registryJSON(t, client("scope", "patient/*.rs"))), "system/ scopes only"},
		{"no keys", string(registryJSON(t, client("jwks", nil))), "no usable key"},
		{"empty keys", string(registryJSON(t, client("jwks", map[string]any{"keys": []any{}}))), "no usable key"},
		{"null keys", string(registryJSON(t, client("jwks", jwks()))), "keys"},
		{"jwks not a set", string(registryJSON(t, client("jwks", rj))), "keys"},
		{"only P-256", string(registryJSON(t, client("jwks", jwks(ecJWK(&p256Key.PublicKey, "p"))))), "no usable key"},
		{"only enc", string(registryJSON(t, client("jwks", jwks(merge(rj, "use", "enc"))))), "no usable key"},
		{"only RS256", string(registryJSON(t, client("jwks", jwks(merge(rj, "alg", "RS256"))))), "no usable key"},
		{"key_ops without verify", string(registryJSON(t, client("jwks", jwks(merge(rj, "key_ops", []string{"encrypt"}))))), "no usable key"},
		{"private RSA", string(registryJSON(t, client("jwks", jwks(merge(rj, "d", "AQAB"))))), "private"},
		{"private EC", string(registryJSON(t, client("jwks", jwks(merge(ej, "d", "AQAB"))))), "private"},
		{"symmetric", string(registryJSON(t, client("jwks", jwks(map[string]any{"kty": "oct", "kid": "s", "k": "c2VjcmV0"})))), "symmetric"},
		{"no kid", string(registryJSON(t, client("jwks", jwks(merge(rj, "kid", ""))))), "kid"},
		{"duplicate kid", string(registryJSON(t, client("jwks", jwks(rj, rj)))), "not unique"},
		{"small RSA", string(registryJSON(t, client("jwks", jwks(rsaJWK(&rsaSmall.PublicKey, "s"))))), "bits"},
		{"even exponent", string(registryJSON(t, client("jwks", jwks(merge(rj, "e", b64u([]byte{1, 0, 0})))))), "exponent"},
		{"bad n", string(registryJSON(t, client("jwks", jwks(merge(rj, "n", "!!"))))), "n is not"},
		{"padded base64", string(registryJSON(t, client("jwks", jwks(merge(rj, "e", "AQAB=="))))), "e is not"},
		{"EC off curve", string(registryJSON(t, client("jwks", jwks(offCurve)))), "not on P-384"},
		{"EC short coordinate", string(registryJSON(t, client("jwks", jwks(merge(ej, "x", b64u(make([]byte, 47))))))), "48-byte"},
		{"missing jwks_file", string(registryJSON(t, client("jwks_file", "nope.json"))), "jwks_file"},
		{"bad jwks_file", string(registryJSON(t, client("jwks_file", "bad.json"))), "jwks_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRegistry([]byte(tt.data), dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseRegistry = %v, want error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestConfiguration(t *testing.T) {
	b, err := json.Marshal(SmartConfiguration("https://gateway.example.org/"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(b, &got)
	if got["token_endpoint"] != tokenURL {
		t.Fatalf("token_endpoint %v", got["token_endpoint"])
	}
	for field, want := range map[string]string{
		"token_endpoint_auth_methods_supported":            "private_key_jwt",
		"token_endpoint_auth_signing_alg_values_supported": "RS384 ES384",
		"grant_types_supported":                            "client_credentials",
		"code_challenge_methods_supported":                 "S256",
		"capabilities":                                     "client-confidential-asymmetric permission-v1 permission-v2",
	} {
		var parts []string
		for _, v := range got[field].([]any) {
			parts = append(parts, v.(string))
		}
		if strings.Join(parts, " ") != want {
			t.Errorf("%s = %v, want %s", field, parts, want)
		}
	}
	if _, ok := got["authorization_endpoint"]; ok {
		t.Error("authorization_endpoint advertised without an authorization endpoint")
	}
	s, _ := newServer(t)
	c := s.Configuration()
	if c.TokenEndpoint != tokenURL || strings.Join(c.ScopesSupported, " ") !=
		"system/*.cruds system/*.rs system/AuditEvent.rs system/DiagnosticReport.cu system/DiagnosticReport.rs system/Observation.rs system/Patient.rs" {
		t.Fatalf("server configuration %+v", c)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	key, _ := auth.LoadOrCreateKey(t.TempDir())
	reg := testRegistry(t)
	for _, u := range []string{"", "/auth/token", "https://u:p@x.example/auth/token", "https://x.example/auth/token?x=1", "x.example/auth/token"} {
		if _, err := New(Config{Key: key, Registry: reg, TokenURL: u}); err == nil {
			t.Errorf("TokenURL %q accepted", u)
		}
	}
	if _, err := New(Config{Key: key, TokenURL: tokenURL}); err == nil {
		t.Error("no registry accepted")
	}
}

// FuzzClientAssertion feeds arbitrary client_assertion values (seeded
// with valid RS384 and ES384 assertions) to Exchange: it must never
// panic, only ever fail with an *Error or succeed, and succeed only for
// an assertion whose signed part (header and claims) is one we signed.
func FuzzClientAssertion(f *testing.F) {
	keys(f)
	now := time.Unix(1_800_000_000, 0)
	signed := map[string]bool{}
	seed := func(tok string) {
		signed[tok[:strings.LastIndexByte(tok, '.')]] = true
		f.Add(tok)
	}
	seed(sign(f, "RS384", rsaKey, map[string]any{"kid": "rsa-1"}, claims("ehr-1", now)))
	seed(sign(f, "ES384", ecKey, map[string]any{"kid": "ec-1"}, claims("ehr-1", now)))
	seed(sign(f, "ES384", ecKey, map[string]any{"kid": "lab-ec"}, claims("lab", now)))
	f.Add(sign(f, "RS256", rsaKey, map[string]any{"kid": "rsa-1"}, claims("ehr-1", now)))
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJlaHItMSJ9.")
	f.Add("")
	key, err := auth.LoadOrCreateKey(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	reg := testRegistry(f)
	f.Fuzz(func(t *testing.T, assertion string) {
		s, err := New(Config{Key: key, Registry: reg, TokenURL: tokenURL})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := s.Exchange(context.Background(), form(assertion, "system/Patient.rs"), now)
		if err != nil {
			var oe *Error
			if !errors.As(err, &oe) {
				t.Fatalf("non-OAuth error %v", err)
			}
			return
		}
		i := strings.LastIndexByte(assertion, '.')
		if i < 0 || !signed[assertion[:i]] {
			t.Fatalf("accepted an assertion we never signed: %q", assertion)
		}
		if resp.AccessToken == "" {
			t.Fatal("empty token")
		}
	})
}

// TestNotOffered: without a registry the document keeps the token
// endpoint (REQUIRED) but offers no grant, says why, and the endpoint's
// error is an OAuth error a client can show.
func TestNotOffered(t *testing.T) {
	c := NotOffered(tokenURL)
	if c.TokenEndpoint != tokenURL || len(c.GrantTypesSupported) != 0 || len(c.TokenEndpointAuthMethodsSupported) != 0 ||
		slices.Contains(c.Capabilities, "client-confidential-asymmetric") || !strings.Contains(c.BackendServices, "--clients") {
		t.Fatalf("NotOffered = %+v", c)
	}
	b, _ := json.Marshal(c)
	if !strings.Contains(string(b), `"grant_types_supported":[]`) || strings.Contains(string(b), `"sign_in_with_ethereum":`) {
		t.Fatalf("JSON %s", b)
	}
	if ErrNotOffered.Status() != 400 || ErrNotOffered.Code != "unsupported_grant_type" {
		t.Fatalf("ErrNotOffered %+v", ErrNotOffered)
	}
}
