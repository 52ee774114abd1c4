package rest

import (
	"context"
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/chain/ethsig"
	"github.com/fhirgate/fhirgate/chain/ethsig/ethsigtest"
	"github.com/fhirgate/fhirgate/policy"
)

// Sign-in of applicants and operators, and sessions that end at once
// (session.go): in-process replicas over one real Pebble store, people
// signing in through POST /auth/siwe with real signatures.

// sessionWorld is two replicas (a, b) of one gateway over one store, with
// Sign-In With Ethereum and an administrator's wallet named by the
// operator.
type sessionWorld struct {
	t      *testing.T
	a, b   *Server
	key    *auth.Key
	ehr    string // system client that links wallets (no wallet: never checked)
	admin  *ethsigtest.Key
	frozen atomic.Pointer[time.Time] // the replicas' clock when set
}

func newSessionWorld(t *testing.T) *sessionWorld {
	t.Helper()
	w := &sessionWorld{t: t, admin: newEthKey(t)}
	s, key := auditedServer(t, Config{})
	w.key = key
	scopes := maps.Clone(siwe.DefaultScopes)
	scopes[policy.RoleAdmin] += " " + policy.ScopeRegistrationAdmin
	svc, err := siwe.New(siwe.Config{Domain: "test", Origin: "http://test", ChainID: 1337, Key: key,
		Resolve: WalletResolver(s.store), Scopes: scopes,
		Operators: map[ethsig.Address]policy.Role{w.admin.Address: policy.RoleAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.cfg
	cfg.SIWE = svc
	cfg.Now = func() time.Time {
		if f := w.frozen.Load(); f != nil {
			return *f
		}
		return time.Now()
	}
	cfg.Registry = nil // each replica its own metrics
	w.a, w.b = New(cfg), New(cfg)
	w.a.SetReady(true)
	w.b.SetReady(true)
	w.ehr, err = key.Mint(auth.Grant{Subject: "client/ehr", Scope: "system/*.cruds " + policy.ScopeIdentityLinking, TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func newEthKey(t *testing.T) *ethsigtest.Key {
	t.Helper()
	k, err := ethsigtest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signIn signs in with k's wallet through srv and returns the status and
// the JSON answer.
func (w *sessionWorld) signIn(srv *Server, k *ethsigtest.Key) (int, map[string]any) {
	w.t.Helper()
	var n struct{ Nonce string }
	if err := json.Unmarshal(serve(srv, "GET", "/auth/siwe/nonce", "", "", nil).Body(), &n); err != nil || n.Nonce == "" {
		w.t.Fatalf("nonce: %v", err)
	}
	m := siwe.Message{Domain: "test", Address: k.Address.Hex(), URI: "http://test/", Version: "1", ChainID: 1337,
		Nonce: n.Nonce, IssuedAt: time.Now().UTC().Format(time.RFC3339)}
	body, _ := json.Marshal(map[string]string{"message": m.String(), "signature": k.SignPersonalHex([]byte(m.String()))})
	res := serve(srv, "POST", "/auth/siwe", "application/json", "", body)
	var out map[string]any
	if err := json.Unmarshal(res.Body(), &out); err != nil {
		w.t.Fatalf("sign-in answer %d %s: %v", res.StatusCode(), res.Body(), err)
	}
	return res.StatusCode(), out
}

// token signs in and returns the access token, failing unless the role is want.
func (w *sessionWorld) token(srv *Server, k *ethsigtest.Key, want policy.Role) string {
	w.t.Helper()
	status, out := w.signIn(srv, k)
	if status != 200 || out["role"] != string(want) {
		w.t.Fatalf("sign-in as %s: %d %v", want, status, out)
	}
	return out["access_token"].(string)
}

func walletOf(k *ethsigtest.Key) string {
	return `{"system":"` + siwe.CAIP10System + `","value":"eip155:1337:` + k.Address.Hex() + `"}`
}

// create writes a resource through replica a as the EHR and returns "Type/id".
func (w *sessionWorld) create(body string) string {
	w.t.Helper()
	var r struct{ ResourceType, ID string }
	json.Unmarshal([]byte(body), &r)
	res := serve(w.a, "POST", "/fhir/"+r.ResourceType, mimeFHIRJSON, w.ehr, []byte(body))
	if res.StatusCode() != 201 {
		w.t.Fatalf("create %s: %d %s", r.ResourceType, res.StatusCode(), res.Body())
	}
	if err := json.Unmarshal(res.Body(), &r); err != nil {
		w.t.Fatal(err)
	}
	return r.ResourceType + "/" + r.ID
}

// TestSignInRoles: what each kind of wallet signs in as through POST
// /auth/siwe: a wallet linked to nothing is an applicant (before: 403),
// the operator's wallets are administrators whatever records name them.
func TestSignInRoles(t *testing.T) {
	w := newSessionWorld(t)
	pat, doc, unverified, stranger := newEthKey(t), newEthKey(t), newEthKey(t), newEthKey(t)
	patient := w.create(`{"resourceType":"Patient","identifier":[` + walletOf(pat) + `]}`)
	doctor := w.create(`{"resourceType":"Practitioner","active":true,"identifier":[` + walletOf(doc) + `]}`)
	w.create(`{"resourceType":"Practitioner","active":false,"identifier":[` + walletOf(unverified) + `]}`)
	// The administrator's wallet is also on a Practitioner record not
	// (yet) active: the operator's naming wins.
	w.create(`{"resourceType":"Practitioner","identifier":[` + walletOf(w.admin) + `]}`)

	tests := []struct {
		name   string
		key    *ethsigtest.Key
		status int
		role   policy.Role
		field  string // "patient" or "practitioner": the record the answer names
		record string
		scope  string // the answer's scope must contain this
		refuse string // the refusal must say this
	}{
		{name: "wallet linked to nothing", key: stranger, status: 200, role: policy.RoleApplicant, scope: policy.ScopeRegistration},
		{name: "patient", key: pat, status: 200, role: policy.RolePatient, field: "patient", record: patient, scope: "patient/"},
		{name: "verified practitioner", key: doc, status: 200, role: policy.RolePractitioner, field: "practitioner", record: doctor, scope: "user/"},
		{name: "practitioner not verified", key: unverified, status: 403, refuse: "the practitioner account of this wallet is not active: an administrator has not verified it yet, or has deactivated it"},
		{name: "administrator named by the operator", key: w.admin, status: 200, role: policy.RoleAdmin,
			scope: siwe.DefaultScopes[policy.RoleAdmin] + " " + policy.ScopeRegistrationAdmin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := w.signIn(w.a, tt.key)
			if status != tt.status {
				t.Fatalf("status %d %v, want %d", status, out, tt.status)
			}
			if tt.refuse != "" {
				if d, _ := out["issue"].([]any)[0].(map[string]any)["diagnostics"].(string); !strings.Contains(d, tt.refuse) {
					t.Fatalf("refusal %v, want %q", out, tt.refuse)
				}
				return
			}
			if out["role"] != string(tt.role) || !strings.Contains(out["scope"].(string), tt.scope) {
				t.Fatalf("answer %v", out)
			}
			for _, f := range []string{"patient", "practitioner"} {
				want := ""
				if f == tt.field {
					want = tt.record
				}
				if got, _ := out[f].(string); got != want {
					t.Fatalf("%s = %q, want %q", f, got, want)
				}
			}
			p, err := auth.NewVerifier(w.key).Verify(out["access_token"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if p.Wallet != "eip155:1337:"+tt.key.Address.Hex() || p.Resource != tt.record {
				t.Fatalf("principal %+v", p)
			}
		})
	}
}

// TestApplicantRefusedEveryRoute: an applicant's token opens no FHIR
// route, whatever exists.
func TestApplicantRefusedEveryRoute(t *testing.T) {
	w := newSessionWorld(t)
	patient := w.create(`{"resourceType":"Patient","name":[{"family":"Rivera"}]}`)
	doctor := w.create(`{"resourceType":"Practitioner","active":true,"name":[{"family":"Santos"}]}`)
	obs := w.create(`{"resourceType":"Observation","status":"final","code":{"text":"HbA1c"},"subject":{"reference":"` + patient + `"}}`)
	tok := w.token(w.a, newEthKey(t), policy.RoleApplicant)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/fhir/" + patient, ""},
		{"GET", "/fhir/" + patient + "/_history/1", ""},
		{"GET", "/fhir/" + patient + "/_history", ""},
		{"GET", "/fhir/" + patient + "/$everything", ""},
		{"GET", "/fhir/Patient", ""},
		{"GET", "/fhir/Patient?name=Rivera", ""},
		{"GET", "/fhir/" + doctor, ""},
		{"GET", "/fhir/Practitioner", ""},
		{"GET", "/fhir/" + obs, ""},
		{"GET", "/fhir/Observation?patient=" + patient, ""},
		{"GET", "/fhir/AuditEvent", ""},
		{"GET", "/fhir/_history", ""},
		{"GET", "/fhir/Patient/_history", ""},
		{"POST", "/fhir/Patient", `{"resourceType":"Patient"}`},
		{"POST", "/fhir/Practitioner", `{"resourceType":"Practitioner","active":true}`},
		{"PUT", "/fhir/" + patient, `{"resourceType":"Patient","id":"` + strings.TrimPrefix(patient, "Patient/") + `"}`},
		{"DELETE", "/fhir/" + obs, ""},
		{"POST", "/fhir/", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}`},
	} {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			ctype := ""
			if r.body != "" {
				ctype = mimeFHIRJSON
			}
			res := serveWith(w.a, r.method, r.path, ctype, tok, []byte(r.body), "Prefer", "respond-async")
			if res.StatusCode() != 403 || diagnostics(t, res) == "" {
				t.Fatalf("%d %s, want 403 with an OperationOutcome", res.StatusCode(), res.Body())
			}
		})
	}
}

// TestSessionsEnd: a token stops working as soon as what it stands for
// changes: at once on the replica that wrote the change, within a second
// on the other.
func TestSessionsEnd(t *testing.T) {
	w := newSessionWorld(t)
	adminTok := w.token(w.a, w.admin, policy.RoleAdmin)
	type person struct {
		key    *ethsigtest.Key
		record string // "" for an applicant
	}
	tests := []struct {
		name  string
		setup func() person
		// probe is a request the person may make before (want before)
		probe  func(p person) (method, path string)
		before int
		change func(p person)
		reason string
		// after, if set, checks what the person (or their new wallet) can do then
		after func(t *testing.T, p person)
	}{
		{
			name: "practitioner deactivated by an administrator",
			setup: func() person {
				k := newEthKey(t)
				return person{k, w.create(`{"resourceType":"Practitioner","active":true,"identifier":[` + walletOf(k) + `]}`)}
			},
			probe:  func(p person) (string, string) { return "GET", "/fhir/" + p.record },
			before: 200,
			change: func(p person) {
				id := strings.TrimPrefix(p.record, "Practitioner/")
				res := serve(w.a, "PUT", "/fhir/"+p.record, mimeFHIRJSON, adminTok,
					[]byte(`{"resourceType":"Practitioner","id":"`+id+`","active":false,"identifier":[`+walletOf(p.key)+`]}`))
				if res.StatusCode() != 200 {
					t.Fatalf("deactivate: %d %s", res.StatusCode(), res.Body())
				}
			},
			reason: "your practitioner account was deactivated by an administrator",
			after: func(t *testing.T, p person) {
				if status, out := w.signIn(w.b, p.key); status != 403 {
					t.Fatalf("a deactivated practitioner signed in: %d %v", status, out)
				}
			},
		},
		{
			name: "patient whose wallet is replaced",
			setup: func() person {
				k := newEthKey(t)
				return person{k, w.create(`{"resourceType":"Patient","identifier":[` + walletOf(k) + `]}`)}
			},
			probe:  func(p person) (string, string) { return "GET", "/fhir/" + p.record },
			before: 200,
			change: func(p person) {
				next := newEthKey(t)
				id := strings.TrimPrefix(p.record, "Patient/")
				res := serve(w.a, "PUT", "/fhir/"+p.record, mimeFHIRJSON, w.ehr,
					[]byte(`{"resourceType":"Patient","id":"`+id+`","identifier":[`+walletOf(next)+`]}`))
				if res.StatusCode() != 200 {
					t.Fatalf("replace the wallet: %d %s", res.StatusCode(), res.Body())
				}
				*p.key = *next // after: the new wallet
			},
			reason: "this wallet is no longer linked to your record",
			after: func(t *testing.T, p person) {
				// The new wallet signs in as the patient, on either replica.
				tok := w.token(w.b, p.key, policy.RolePatient)
				if res := serve(w.b, "GET", "/fhir/"+p.record, "", tok, nil); res.StatusCode() != 200 {
					t.Fatalf("the new wallet reads its record: %d %s", res.StatusCode(), res.Body())
				}
			},
		},
		{
			// The same address on another chain is another account (the
			// sign-in resolved this chain's).
			name: "patient whose wallet identifier names another chain",
			setup: func() person {
				k := newEthKey(t)
				return person{k, w.create(`{"resourceType":"Patient","identifier":[` + walletOf(k) + `]}`)}
			},
			probe:  func(p person) (string, string) { return "GET", "/fhir/" + p.record },
			before: 200,
			change: func(p person) {
				id := strings.TrimPrefix(p.record, "Patient/")
				res := serve(w.a, "PUT", "/fhir/"+p.record, mimeFHIRJSON, w.ehr,
					[]byte(`{"resourceType":"Patient","id":"`+id+`","identifier":[{"system":"`+siwe.CAIP10System+`","value":"eip155:1:`+strings.ToLower(p.key.Address.Hex())+`"}]}`))
				if res.StatusCode() != 200 {
					t.Fatalf("change the chain: %d %s", res.StatusCode(), res.Body())
				}
			},
			reason: "this wallet is no longer linked to your record",
		},
		{
			name: "patient whose record is deleted",
			setup: func() person {
				k := newEthKey(t)
				return person{k, w.create(`{"resourceType":"Patient","identifier":[` + walletOf(k) + `]}`)}
			},
			probe:  func(p person) (string, string) { return "GET", "/fhir/" + p.record },
			before: 200,
			change: func(p person) {
				if res := serve(w.a, "DELETE", "/fhir/"+p.record, "", w.ehr, nil); res.StatusCode()/100 != 2 {
					t.Fatalf("delete: %d %s", res.StatusCode(), res.Body())
				}
			},
			reason: "your record was removed",
		},
		{
			name:   "applicant whose wallet is linked to a record",
			setup:  func() person { return person{key: newEthKey(t)} },
			probe:  func(p person) (string, string) { return "GET", "/fhir/Practitioner" },
			before: 403, // the table refuses an applicant everything
			change: func(p person) {
				w.create(`{"resourceType":"Patient","identifier":[` + walletOf(p.key) + `]}`)
			},
			reason: "this wallet is now linked to a record",
			after: func(t *testing.T, p person) {
				w.token(w.b, p.key, policy.RolePatient) // signs in again as the patient
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.setup()
			role := policy.RoleApplicant
			if strings.HasPrefix(p.record, "Patient/") {
				role = policy.RolePatient
			} else if p.record != "" {
				role = policy.RolePractitioner
			}
			tok := w.token(w.a, p.key, role)
			method, path := tt.probe(p)
			for name, srv := range map[string]*Server{"a": w.a, "b": w.b} {
				if res := serve(srv, method, path, "", tok, nil); res.StatusCode() != tt.before {
					t.Fatalf("before, on %s: %d %s", name, res.StatusCode(), res.Body())
				}
			}
			tt.change(p)
			changed := time.Now()
			// The replica that wrote: at once.
			res := serve(w.a, method, path, "", tok, nil)
			want := "Your session has ended: " + tt.reason + ". Sign in again."
			if res.StatusCode() != 401 || diagnostics(t, res) != want || !strings.Contains(string(res.Header.Peek("WWW-Authenticate")), "Bearer") {
				t.Fatalf("on the writing replica: %d %s %q, want 401 %q", res.StatusCode(), res.Body(), res.Header.Peek("WWW-Authenticate"), want)
			}
			// The other: within a second (it read the record just before).
			for {
				res = serve(w.b, method, path, "", tok, nil)
				if res.StatusCode() == 401 {
					break
				}
				if time.Since(changed) > 1500*time.Millisecond {
					t.Fatalf("the other replica still answers %d after %s", res.StatusCode(), time.Since(changed))
				}
				time.Sleep(20 * time.Millisecond)
			}
			// The bar, a second: the cache's half second, plus the poll
			// and the request on a loaded machine.
			if d := time.Since(changed); d > time.Second {
				t.Errorf("the other replica ended the session after %s (bar 1 s)", d)
			}
			if diagnostics(t, res) != want {
				t.Fatalf("on the other replica: %s", res.Body())
			}
			if tt.after != nil {
				tt.after(t, p)
			}
		})
	}

	// Tokens without a wallet are not checked, and a change to anything but
	// the identity fields ends nobody's session.
	t.Run("unrelated changes", func(t *testing.T) {
		k := newEthKey(t)
		rec := w.create(`{"resourceType":"Patient","identifier":[` + walletOf(k) + `],"name":[{"family":"Rivera"}]}`)
		tok := w.token(w.a, k, policy.RolePatient)
		id := strings.TrimPrefix(rec, "Patient/")
		// A new name, and the address rewritten in upper case: the same wallet.
		upper := `{"system":"` + siwe.CAIP10System + `","value":"eip155:1337:0x` + strings.ToUpper(k.Address.Hex()[2:]) + `"}`
		if res := serve(w.a, "PUT", "/fhir/"+rec, mimeFHIRJSON, w.ehr, []byte(`{"resourceType":"Patient","id":"`+id+`","identifier":[`+upper+`],"name":[{"family":"Rivera-Diaz"}]}`)); res.StatusCode() != 200 {
			t.Fatalf("update: %d %s", res.StatusCode(), res.Body())
		}
		for _, tok := range []string{tok, w.ehr} {
			if res := serve(w.a, "GET", "/fhir/"+rec, "", tok, nil); res.StatusCode() != 200 {
				t.Fatalf("after a name change: %d %s", res.StatusCode(), res.Body())
			}
		}
		if res := serve(w.a, "GET", "/fhir/Practitioner", "", adminTok, nil); res.StatusCode() != 200 {
			t.Fatalf("the administrator: %d %s", res.StatusCode(), res.Body())
		}
	})
}

// TestSessionReadOncePerSecond: a replica reads a record for the session
// check at most once a second (it serves what it read meanwhile), and
// reads afresh once that second is over; an operator's wallet no longer
// named loses its session.
func TestSessionReadOncePerSecond(t *testing.T) {
	w := newSessionWorld(t)
	k := newEthKey(t)
	doctor := w.create(`{"resourceType":"Practitioner","active":true,"identifier":[` + walletOf(k) + `]}`)
	tok := w.token(w.a, k, policy.RolePractitioner)
	t0 := time.Now()
	w.frozen.Store(&t0)
	if res := serve(w.a, "GET", "/fhir/"+doctor, "", tok, nil); res.StatusCode() != 200 {
		t.Fatalf("before: %d %s", res.StatusCode(), res.Body())
	}
	// Replica b deactivates; a's clock stands still, so a still trusts
	// what it read: the read was not repeated.
	id := strings.TrimPrefix(doctor, "Practitioner/")
	if res := serve(w.b, "PUT", "/fhir/"+doctor, mimeFHIRJSON, w.ehr, []byte(`{"resourceType":"Practitioner","id":"`+id+`","active":false,"identifier":[`+walletOf(k)+`]}`)); res.StatusCode() != 200 {
		t.Fatalf("deactivate: %d %s", res.StatusCode(), res.Body())
	}
	if res := serve(w.a, "GET", "/fhir/Practitioner?_count=1", "", tok, nil); res.StatusCode() != 200 {
		t.Fatalf("within the second, replica a read the record again: %d %s", res.StatusCode(), res.Body())
	}
	t1 := t0.Add(sessionTTL)
	w.frozen.Store(&t1)
	if res := serve(w.a, "GET", "/fhir/Practitioner?_count=1", "", tok, nil); res.StatusCode() != 401 {
		t.Fatalf("a second later: %d %s", res.StatusCode(), res.Body())
	}
	w.frozen.Store(nil)

	// An administrator's token whose wallet the operator no longer names
	// (a replica restarted with another --admins).
	other := newEthKey(t)
	stale, err := w.key.Mint(auth.Grant{Role: policy.RoleAdmin, Wallet: "eip155:1337:" + other.Address.Hex(),
		Subject: "did:pkh:eip155:1337:" + other.Address.Hex(), Scope: siwe.DefaultScopes[policy.RoleAdmin], TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res := serve(w.a, "GET", "/fhir/Practitioner", "", stale, nil)
	if want := "Your session has ended: this wallet is no longer named as an administrator. Sign in again."; res.StatusCode() != 401 || diagnostics(t, res) != want {
		t.Fatalf("admin no longer named: %d %s", res.StatusCode(), res.Body())
	}
}

// TestSessionCacheBounded: the cache never holds more than its cap.
func TestSessionCacheBounded(t *testing.T) {
	var c sessionCache
	now := time.Now()
	for i := range sessionCacheMax + 10 {
		_, epoch, _ := c.get("k", now)
		c.put("Patient/"+strconv.Itoa(i), sessionFacts{at: now}, epoch)
	}
	if n := len(c.m); n > sessionCacheMax {
		t.Fatalf("%d entries, cap %d", n, sessionCacheMax)
	}
	// A read begun before a write does not fill the cache.
	_, epoch, _ := c.get("Patient/1", now)
	c.forget("Patient/1")
	c.put("Patient/1", sessionFacts{at: now}, epoch)
	if _, _, ok := c.get("Patient/1", now); ok {
		t.Fatal("a read that predates a write was cached")
	}
}

// diagnostics is the text of the OperationOutcome answered.
func diagnostics(t *testing.T, res *fasthttp.Response) string {
	t.Helper()
	_, d, _ := outcome(t, res)
	return d
}

// BenchmarkSessionCheck is the session check's cost per request: served
// from the cache (every request but one a second per record), and with
// the store read (the first in a second, or after a write).
func BenchmarkSessionCheck(b *testing.B) {
	s, key := auditedServer(b, Config{})
	k, err := ethsigtest.NewKey()
	if err != nil {
		b.Fatal(err)
	}
	ehr, _ := key.Mint(auth.Grant{Scope: "system/*.cruds " + policy.ScopeIdentityLinking, TTL: time.Hour}, time.Now())
	res := serve(s, "POST", "/fhir/Practitioner", mimeFHIRJSON, ehr, []byte(`{"resourceType":"Practitioner","active":true,"identifier":[`+walletOf(k)+`],"name":[{"family":"Santos"}]}`))
	var r struct{ ID string }
	if err := json.Unmarshal(res.Body(), &r); err != nil || res.StatusCode() != 201 {
		b.Fatalf("%d %s", res.StatusCode(), res.Body())
	}
	p := &policy.Principal{Role: policy.RolePractitioner, Resource: "Practitioner/" + r.ID, Wallet: "eip155:1337:" + k.Address.Hex()}
	ctx := context.Background()
	for _, bc := range []struct {
		name   string
		forget bool
	}{{"cached", false}, {"store read", true}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if bc.forget {
					s.sessions.forget(p.Resource)
				}
				if err := s.checkSession(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
