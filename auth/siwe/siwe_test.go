package siwe_test

import (
	"context"
	"encoding/hex"
	"errors"
	"maps"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/chain/ethsig"
	"github.com/fhirgate/fhirgate/chain/ethsig/ethsigtest"
	"github.com/fhirgate/fhirgate/policy"
)

const chainID = 1337

type fixture struct {
	t        *testing.T
	svc      *siwe.Service
	key      *auth.Key
	verifier *auth.Verifier
	now      time.Time
	links    map[ethsig.Address]siwe.Link
}

func newFixture(t *testing.T, mod func(*siwe.Config)) *fixture {
	t.Helper()
	key, err := auth.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, key: key, verifier: auth.NewVerifier(key), links: map[ethsig.Address]siwe.Link{},
		now: time.Now().UTC().Truncate(time.Second)}
	cfg := siwe.Config{
		Domain:  "portal.example.org",
		Origin:  "https://portal.example.org",
		ChainID: chainID,
		Key:     key,
		Resolve: f.resolver(),
	}
	if mod != nil {
		mod(&cfg)
	}
	f.svc, err = siwe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// resolver finds wallets in f.links.
func (f *fixture) resolver() siwe.Resolver {
	t := f.t
	return func(ctx context.Context, chain uint64, address string) (siwe.Link, error) {
		if chain != chainID {
			t.Errorf("resolver got chain %d", chain)
		}
		a, err := ethsig.ParseChecksumAddress(address)
		if err != nil {
			t.Errorf("resolver got a non-EIP-55 address: %v", err)
		}
		l, ok := f.links[a]
		if !ok {
			return siwe.Link{}, siwe.ErrNotLinked
		}
		return l, nil
	}
}

func (f *fixture) nonce() string {
	n, err := f.svc.NewNonce(context.Background(), f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	return n.Nonce
}

// message returns a valid message for the key, with a fresh nonce.
func (f *fixture) message(k *ethsigtest.Key) *siwe.Message {
	return &siwe.Message{
		Domain:    "portal.example.org",
		Address:   k.Address.Hex(),
		Statement: ptr("Sign in to the fhirgate patient portal."),
		URI:       "https://portal.example.org/login",
		Version:   "1",
		ChainID:   chainID,
		Nonce:     f.nonce(),
		IssuedAt:  f.now.Add(-30 * time.Second).Format(time.RFC3339),
	}
}

func ptr(s string) *string { return &s }

func newKey(t *testing.T) *ethsigtest.Key {
	k, err := ethsigtest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLoginPatientAndPractitioner(t *testing.T) {
	f := newFixture(t, nil)
	pat, doc := newKey(t), newKey(t)
	f.links[pat.Address] = siwe.Link{Resource: "Patient/pat-1"}
	f.links[doc.Address] = siwe.Link{Resource: "Practitioner/doc-1"}
	ctx := context.Background()

	m := f.message(pat)
	resp, err := f.svc.Login(ctx, m.String(), pat.SignPersonalHex([]byte(m.String())), f.now)
	if err != nil {
		t.Fatal(err)
	}
	if resp.TokenType != "Bearer" || resp.Patient != "Patient/pat-1" || resp.Practitioner != "" ||
		resp.Scope != siwe.DefaultScopes[policy.RolePatient] || resp.ExpiresIn != int64(siwe.DefaultTokenTTL/time.Second) {
		t.Fatalf("patient response %+v", resp)
	}
	p, err := f.verifier.Verify(resp.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	wantWallet := "eip155:1337:" + pat.Address.Hex()
	if p.Role != policy.RolePatient || p.Subject != "Patient/pat-1" || p.Scopes.String() != "patient/*.rs patient/Appointment.cu" ||
		p.Resource != "Patient/pat-1" || p.Wallet != wantWallet {
		t.Fatalf("patient principal %+v", p)
	}

	m = f.message(doc)
	m.Scheme = "https"
	m.Statement = nil
	resp, err = f.svc.Login(ctx, m.String(), doc.SignPersonalHex([]byte(m.String())), f.now)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Practitioner != "Practitioner/doc-1" || resp.Patient != "" || resp.Scope != "user/*.cruds" {
		t.Fatalf("practitioner response %+v", resp)
	}
	p, err = f.verifier.Verify(resp.AccessToken)
	if err != nil || p.Role != policy.RolePractitioner || p.Subject != "Practitioner/doc-1" || p.Resource != "Practitioner/doc-1" {
		t.Fatalf("practitioner principal %+v, %v", p, err)
	}
}

// TestLoginRoles: what each kind of wallet signs in as, and what its token
// carries.
func TestLoginRoles(t *testing.T) {
	admin, reg, linkedAdmin := newKey(t), newKey(t), newKey(t)
	ops, err := siwe.ParseOperators(admin.Address.Hex()+", "+strings.ToLower(linkedAdmin.Address.Hex()), reg.Address.Hex())
	if err != nil {
		t.Fatal(err)
	}
	withOps := func(c *siwe.Config) { c.Operators = ops }
	noApplicants := func(c *siwe.Config) {
		c.Scopes = map[policy.Role]string{policy.RolePatient: siwe.DefaultScopes[policy.RolePatient]}
	}
	tests := []struct {
		name     string
		mod      func(*siwe.Config)
		key      *ethsigtest.Key
		link     *siwe.Link // what the resolver knows; nil: nothing
		role     policy.Role
		scope    string
		resource string // the token's fhirUser; "" also means subject did:pkh
		deny     error  // the sign-in is refused with this (and policy.ErrDenied)
	}{
		{name: "unlinked wallet: applicant", key: newKey(t), role: policy.RoleApplicant, scope: policy.ScopeRegistration},
		{name: "unlinked wallet, no applicant scopes: refused", mod: noApplicants, key: newKey(t), deny: siwe.ErrNotLinked},
		{name: "patient", key: newKey(t), link: &siwe.Link{Resource: "Patient/p1"}, role: policy.RolePatient,
			scope: siwe.DefaultScopes[policy.RolePatient], resource: "Patient/p1"},
		{name: "administrator named by the operator", mod: withOps, key: admin, role: policy.RoleAdmin, scope: siwe.DefaultScopes[policy.RoleAdmin]},
		{name: "regulator named by the operator", mod: withOps, key: reg, role: policy.RoleRegulator, scope: siwe.DefaultScopes[policy.RoleRegulator]},
		// The operator's naming wins over a record that names the wallet
		// (the resolver is not asked, so an inactive record does not
		// lock an administrator out either).
		{name: "administrator whose wallet a record names", mod: withOps, key: linkedAdmin,
			link: &siwe.Link{Resource: "Practitioner/d1"}, role: policy.RoleAdmin, scope: siwe.DefaultScopes[policy.RoleAdmin]},
		{name: "operators unset: the same wallet is an applicant", key: admin, role: policy.RoleApplicant, scope: policy.ScopeRegistration},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.mod)
			if tt.link != nil {
				f.links[tt.key.Address] = *tt.link
			}
			m := f.message(tt.key)
			resp, err := f.svc.Login(context.Background(), m.String(), tt.key.SignPersonalHex([]byte(m.String())), f.now)
			if tt.deny != nil {
				if !errors.Is(err, tt.deny) || !errors.Is(err, policy.ErrDenied) || errors.Is(err, auth.ErrUnauthenticated) {
					t.Fatalf("Login: %v, want %v", err, tt.deny)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, err := f.verifier.Verify(resp.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			account := "eip155:1337:" + tt.key.Address.Hex()
			subject := tt.resource
			if subject == "" {
				subject = "did:pkh:" + account
			}
			if resp.Role != tt.role || resp.Scope != tt.scope || p.Role != tt.role || p.Scopes.String() != tt.scope ||
				p.Resource != tt.resource || p.Subject != subject || p.Wallet != account {
				t.Fatalf("response %+v, principal %+v", resp, p)
			}
			if tt.role == policy.RoleApplicant {
				if resp.Patient != "" || resp.Practitioner != "" || len(p.Scopes.Clinical) != 0 {
					t.Fatalf("applicant token: %+v %+v", resp, p)
				}
				// No clinical access at all.
				if err := policy.CheckScope(p, policy.Read, "Patient"); !errors.Is(err, policy.ErrDenied) {
					t.Fatalf("applicant may read: %v", err)
				}
			}
			if got := f.svc.Operator(account); (tt.role == policy.RoleAdmin || tt.role == policy.RoleRegulator) != (got == tt.role) {
				t.Fatalf("Operator(%s) = %q", account, got)
			}
		})
	}
}

func TestParseOperators(t *testing.T) {
	const a, b = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
	tests := []struct {
		admins, regulators string
		want               map[string]policy.Role // EIP-55 address -> role
		err                string
	}{
		{"", "", map[string]policy.Role{}, ""},
		{a + "," + b, "", map[string]policy.Role{a: policy.RoleAdmin, b: policy.RoleAdmin}, ""},
		{" " + strings.ToLower(a) + " , ", b, map[string]policy.Role{a: policy.RoleAdmin, b: policy.RoleRegulator}, ""},
		{a + "," + a, "", map[string]policy.Role{a: policy.RoleAdmin}, ""},
		{"0x1234", "", nil, `administrator wallet "0x1234": invalid Ethereum address`},
		{"", "alice", nil, `regulator wallet "alice": invalid Ethereum address`},
		// A mistyped mixed-case address fails its EIP-55 checksum.
		{"0x70997970c51812dc3A010C7d01b50e0d17dc79C8", "", nil, "checksum"},
		{a, strings.ToLower(a), nil, "both administrator and regulator"},
	}
	for _, tt := range tests {
		got, err := siwe.ParseOperators(tt.admins, tt.regulators)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseOperators(%q, %q) error %v, want %q", tt.admins, tt.regulators, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseOperators(%q, %q): %v", tt.admins, tt.regulators, err)
			continue
		}
		named := map[string]policy.Role{}
		for addr, r := range got {
			named[addr.Hex()] = r
		}
		if !maps.Equal(named, tt.want) {
			t.Errorf("ParseOperators(%q, %q) = %v, want %v", tt.admins, tt.regulators, named, tt.want)
		}
	}
}

func TestVerify(t *testing.T) {
	key := newKey(t)
	other := newKey(t)
	type tc struct {
		name    string
		mod     func(f *fixture, m *siwe.Message) // edit the message before signing
		sign    func(f *fixture, text string) string
		at      time.Duration // verification time after f.now
		want    error         // nil: success
		subject string        // error text must contain this
	}
	sign := func(f *fixture, text string) string { return key.SignPersonalHex([]byte(text)) }
	tests := []tc{
		{name: "valid"},
		{name: "v 0/1", sign: func(f *fixture, text string) string {
			sig := key.SignPersonal([]byte(text))
			sig[64] -= 27
			return hexSig(sig)
		}},
		{name: "uppercase hex signature", sign: func(f *fixture, text string) string {
			return "0x" + strings.ToUpper(key.SignPersonalHex([]byte(text))[2:])
		}},
		{name: "domain case-insensitive", mod: func(f *fixture, m *siwe.Message) { m.Domain = "Portal.Example.ORG" }},
		{name: "URI default port", mod: func(f *fixture, m *siwe.Message) { m.URI = "https://PORTAL.example.org:443/other/path?x#y" }},
		{name: "expiration ahead", mod: func(f *fixture, m *siwe.Message) { m.ExpirationTime = f.now.Add(time.Minute).Format(time.RFC3339) }},
		{name: "not-before within skew", mod: func(f *fixture, m *siwe.Message) { m.NotBefore = f.now.Add(30 * time.Second).Format(time.RFC3339) }},
		{name: "issued-at within skew", mod: func(f *fixture, m *siwe.Message) { m.IssuedAt = f.now.Add(30 * time.Second).Format(time.RFC3339) }},
		{name: "issued-at with offset", mod: func(f *fixture, m *siwe.Message) {
			m.IssuedAt = f.now.In(time.FixedZone("", 5*3600+1800)).Format(time.RFC3339Nano)
		}},

		{name: "other domain", mod: func(f *fixture, m *siwe.Message) { m.Domain = "evil.example" }, want: siwe.ErrDomainMismatch},
		{name: "domain with port", mod: func(f *fixture, m *siwe.Message) { m.Domain = "portal.example.org:8443" }, want: siwe.ErrDomainMismatch},
		{name: "scheme http", mod: func(f *fixture, m *siwe.Message) { m.Scheme = "http" }, want: siwe.ErrDomainMismatch},
		{name: "URI other host", mod: func(f *fixture, m *siwe.Message) { m.URI = "https://evil.example/login" }, want: siwe.ErrURIMismatch},
		{name: "URI http", mod: func(f *fixture, m *siwe.Message) { m.URI = "http://portal.example.org/login" }, want: siwe.ErrURIMismatch},
		{name: "URI other port", mod: func(f *fixture, m *siwe.Message) { m.URI = "https://portal.example.org:8443/login" }, want: siwe.ErrURIMismatch},
		{name: "URI userinfo", mod: func(f *fixture, m *siwe.Message) { m.URI = "https://portal.example.org@evil.example/" }, want: siwe.ErrURIMismatch},
		{name: "URI userinfo on our host", mod: func(f *fixture, m *siwe.Message) { m.URI = "https://x@portal.example.org/" }, want: siwe.ErrURIMismatch},
		{name: "URI without authority", mod: func(f *fixture, m *siwe.Message) { m.URI = "urn:portal.example.org" }, want: siwe.ErrURIMismatch},
		{name: "other chain", mod: func(f *fixture, m *siwe.Message) { m.ChainID = 1 }, want: siwe.ErrChainMismatch},
		{name: "issued in the future", mod: func(f *fixture, m *siwe.Message) { m.IssuedAt = f.now.Add(2 * time.Minute).Format(time.RFC3339) }, want: siwe.ErrNotYetValid},
		{name: "issued too long ago", mod: func(f *fixture, m *siwe.Message) { m.IssuedAt = f.now.Add(-11 * time.Minute).Format(time.RFC3339) }, want: siwe.ErrExpired},
		{name: "expired", mod: func(f *fixture, m *siwe.Message) { m.ExpirationTime = f.now.Add(-time.Second).Format(time.RFC3339) }, want: siwe.ErrExpired},
		{name: "expires exactly now", mod: func(f *fixture, m *siwe.Message) { m.ExpirationTime = f.now.Format(time.RFC3339) }, want: siwe.ErrExpired},
		{name: "not yet valid", mod: func(f *fixture, m *siwe.Message) { m.NotBefore = f.now.Add(2 * time.Minute).Format(time.RFC3339) }, want: siwe.ErrNotYetValid},
		{name: "nonce never issued", mod: func(f *fixture, m *siwe.Message) { m.Nonce = "abcdefgh12345678" }, want: siwe.ErrNonce},
		{name: "nonce expired", at: siwe.DefaultNonceTTL + time.Second, mod: func(f *fixture, m *siwe.Message) {
			m.IssuedAt = f.now.Add(siwe.DefaultNonceTTL).Format(time.RFC3339)
		}, want: siwe.ErrNonce},
		{name: "signed by another key", sign: func(f *fixture, text string) string { return other.SignPersonalHex([]byte(text)) }, want: siwe.ErrInvalidSignature, subject: "message's address"},
		{name: "signature of another message", sign: func(f *fixture, text string) string { return key.SignPersonalHex([]byte(text + " ")) }, want: siwe.ErrInvalidSignature},
		{name: "signature over the digest, not personal_sign", sign: func(f *fixture, text string) string {
			return hexSig(key.SignDigest(ethsig.PersonalHash([]byte("x"))))
		}, want: siwe.ErrInvalidSignature},
		{name: "high s", sign: func(f *fixture, text string) string { return hexSig(highS(key.SignPersonal([]byte(text)))) }, want: siwe.ErrInvalidSignature, subject: "malleable"},
		{name: "short signature", sign: func(f *fixture, text string) string { return key.SignPersonalHex([]byte(text))[:130] }, want: siwe.ErrInvalidSignature},
		{name: "no 0x", sign: func(f *fixture, text string) string { return key.SignPersonalHex([]byte(text))[2:] }, want: siwe.ErrInvalidSignature},
		{name: "empty signature", sign: func(f *fixture, text string) string { return "" }, want: siwe.ErrInvalidSignature},
		{name: "lowercase address", mod: func(f *fixture, m *siwe.Message) { m.Address = strings.ToLower(m.Address) }, want: siwe.ErrInvalidMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			m := f.message(key)
			if tt.mod != nil {
				tt.mod(f, m)
			}
			text := m.String()
			s := sign
			if tt.sign != nil {
				s = tt.sign
			}
			got, err := f.svc.Verify(context.Background(), text, s(f, text), f.now.Add(tt.at))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.Address != key.Address.Hex() || got.Nonce != m.Nonce {
					t.Fatalf("Verify = %+v", got)
				}
				return
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, auth.ErrUnauthenticated) || !strings.Contains(err.Error(), tt.subject) {
				t.Fatalf("Verify = %v, want %v (and ErrUnauthenticated) mentioning %q", err, tt.want, tt.subject)
			}
		})
	}
}

func TestNonceSingleUse(t *testing.T) {
	f := newFixture(t, nil)
	k := newKey(t)
	f.links[k.Address] = siwe.Link{Resource: "Patient/p"}
	ctx := context.Background()
	m := f.message(k)
	text := m.String()
	good := k.SignPersonalHex([]byte(text))

	// A failed attempt (bad signature) does not burn the nonce.
	if _, err := f.svc.Login(ctx, text, newKey(t).SignPersonalHex([]byte(text)), f.now); !errors.Is(err, siwe.ErrInvalidSignature) {
		t.Fatalf("forged: %v", err)
	}
	if _, err := f.svc.Login(ctx, text, good, f.now); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := f.svc.Login(ctx, text, good, f.now); !errors.Is(err, siwe.ErrNonce) {
		t.Fatalf("replay: %v", err)
	}

	// Concurrent replays: exactly one wins.
	m = f.message(k)
	text = m.String()
	good = k.SignPersonalHex([]byte(text))
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.svc.Login(ctx, text, good, f.now); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, siwe.ErrNonce) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent logins succeeded with one nonce", wins.Load())
	}
}

func TestTokenLifetimeCappedByExpiration(t *testing.T) {
	f := newFixture(t, nil)
	k := newKey(t)
	f.links[k.Address] = siwe.Link{Resource: "Patient/p"}
	m := f.message(k)
	m.ExpirationTime = f.now.Add(90 * time.Second).Format(time.RFC3339)
	resp, err := f.svc.Login(context.Background(), m.String(), k.SignPersonalHex([]byte(m.String())), f.now)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ExpiresIn != 90 {
		t.Fatalf("expires_in = %d, want 90", resp.ExpiresIn)
	}
}

func TestLoginRolesAndScopes(t *testing.T) {
	f := newFixture(t, func(c *siwe.Config) {
		c.Scopes = map[policy.Role]string{
			policy.RolePatient:   "patient/*.rs",
			policy.RoleRegulator: "system/AuditEvent.rs",
		}
	})
	ctx := context.Background()
	login := func(l siwe.Link) (*siwe.TokenResponse, error) {
		k := newKey(t)
		f.links[k.Address] = l
		m := f.message(k)
		return f.svc.Login(ctx, m.String(), k.SignPersonalHex([]byte(m.String())), f.now)
	}
	// Configured scopes apply.
	if r, err := login(siwe.Link{Resource: "Patient/a"}); err != nil || r.Scope != "patient/*.rs" {
		t.Fatalf("patient: %+v %v", r, err)
	}
	// A role without configured scopes cannot sign in.
	if _, err := login(siwe.Link{Resource: "Practitioner/b"}); !errors.Is(err, policy.ErrDenied) {
		t.Fatalf("practitioner without scopes: %v", err)
	}
	// A regulator wallet known to the resolver, no resource.
	r, err := login(siwe.Link{Role: policy.RoleRegulator})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.verifier.Verify(r.AccessToken)
	if err != nil || p.Role != policy.RoleRegulator || !strings.HasPrefix(p.Subject, "did:pkh:eip155:1337:0x") || p.Resource != "" {
		t.Fatalf("regulator: %+v %v", p, err)
	}
	// A resolver answer that contradicts its role is an error, not a token.
	if _, err := login(siwe.Link{Resource: "Patient/a", Role: policy.RoleRegulator}); err == nil || errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("Patient as regulator: %v", err)
	}
	// A patient or practitioner role without its resource would be
	// unbounded: refused.
	f.svc, _ = siwe.New(siwe.Config{Domain: "portal.example.org", Origin: "https://portal.example.org", ChainID: chainID,
		Key: f.key, Resolve: func(context.Context, uint64, string) (siwe.Link, error) {
			return siwe.Link{Role: policy.RolePatient}, nil
		}})
	if r, err := login(siwe.Link{}); err == nil || errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("patient role without resource: %+v %v", r, err)
	}
	f.svc, _ = siwe.New(siwe.Config{Domain: "portal.example.org", Origin: "https://portal.example.org", ChainID: chainID,
		Key: f.key, Resolve: func(context.Context, uint64, string) (siwe.Link, error) {
			return siwe.Link{Resource: "Observation/o"}, nil
		}})
	if r, err := login(siwe.Link{}); err == nil {
		t.Fatalf("Observation link: %+v", r)
	}
	f.svc, _ = siwe.New(siwe.Config{Domain: "portal.example.org", Origin: "https://portal.example.org", ChainID: chainID,
		Key: f.key, Resolve: func(context.Context, uint64, string) (siwe.Link, error) {
			return siwe.Link{Resource: "Patient/bad id"}, nil
		}})
	if _, err := login(siwe.Link{}); err == nil {
		t.Fatal("malformed resource id accepted")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	key, _ := auth.LoadOrCreateKey(t.TempDir())
	res := func(context.Context, uint64, string) (siwe.Link, error) { return siwe.Link{}, nil }
	good := siwe.Config{Domain: "a.example", Origin: "https://a.example", ChainID: 1, Key: key, Resolve: res}
	if _, err := siwe.New(good); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*siwe.Config){
		"no domain":        func(c *siwe.Config) { c.Domain = "" },
		"domain with path": func(c *siwe.Config) { c.Domain = "a.example/x" },
		"domain userinfo":  func(c *siwe.Config) { c.Domain = "u@a.example" },
		"origin with path": func(c *siwe.Config) { c.Origin = "https://a.example/login" },
		"origin no scheme": func(c *siwe.Config) { c.Origin = "a.example" },
		"no chain":         func(c *siwe.Config) { c.ChainID = 0 },
		"no key":           func(c *siwe.Config) { c.Key = nil },
		"no resolver":      func(c *siwe.Config) { c.Resolve = nil },
		"scope context":    func(c *siwe.Config) { c.Scopes = map[policy.Role]string{policy.RolePatient: "user/*.rs"} },
		"system role":      func(c *siwe.Config) { c.Scopes = map[policy.Role]string{policy.RoleSystem: "system/*.rs"} },
		"bad scope":        func(c *siwe.Config) { c.Scopes = map[policy.Role]string{policy.RolePatient: "patient/*.x"} },
		"negative TTL":     func(c *siwe.Config) { c.TokenTTL = -time.Second },
		"clinical applicant": func(c *siwe.Config) {
			c.Scopes = map[policy.Role]string{policy.RoleApplicant: "fhirgate/registration patient/*.rs"}
		},
		"operator as patient": func(c *siwe.Config) {
			c.Operators = map[ethsig.Address]policy.Role{{1}: policy.RolePatient}
		},
	} {
		c := good
		mod(&c)
		if _, err := siwe.New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := good
	c.Origin = "https://a.example/"
	if _, err := siwe.New(c); err != nil {
		t.Errorf("trailing slash: %v", err)
	}
}

func TestAccountID(t *testing.T) {
	const a = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	if got := siwe.AccountID(1337, a); got != "eip155:1337:"+a {
		t.Fatal(got)
	}
	want, _ := ethsig.ParseAddress(a)
	for _, s := range []string{"eip155:1337:" + a, "eip155:1337:" + strings.ToLower(a), "eip155:1337:0x" + strings.ToUpper(a[2:])} {
		c, got, err := siwe.ParseAccountID(s)
		if err != nil || c != 1337 || got != want {
			t.Errorf("ParseAccountID(%s) = %d %s %v", s, c, got, err)
		}
	}
	for _, s := range []string{"", "eip155:1337", "eip155::" + a, "eip155:01:" + a, "cosmos:1:" + a, "eip155:1:" + a[:41]} {
		if _, _, err := siwe.ParseAccountID(s); err == nil {
			t.Errorf("ParseAccountID(%q) accepted", s)
		}
	}
}

func hexSig(b []byte) string { return "0x" + hex.EncodeToString(b) }

// highS returns the malleable twin of a low-s signature (s' = N - s, the
// recovery id flipped): the same signer, refused all the same.
func highS(sig []byte) []byte {
	n, _ := new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	out := append([]byte(nil), sig...)
	new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:64])).FillBytes(out[32:64])
	out[64] = 27 + 28 - out[64] // 27 <-> 28
	return out
}
