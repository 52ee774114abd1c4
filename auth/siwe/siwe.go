// Package siwe is Sign-In With Ethereum (EIP-4361) for the gateway:
// single-use nonces, a strict message parser, verification of the signed
// message (EIP-191 personal_sign) against the gateway's domain, origin and
// chain, and the exchange of a verified sign-in for an access token: bound
// to the Patient or Practitioner the wallet is linked to, an operator's
// (administrator, regulator) for the wallets the operator names, or an
// applicant's (no record, registration only) for a wallet linked to
// nothing.
//
// The HTTP layer calls Service.NewNonce for GET /auth/siwe/nonce and
// Service.Login for POST /auth/siwe; every error wraps a sentinel of this
// package and either auth.ErrUnauthenticated (401) or policy.ErrDenied
// (403: the resolver refuses the wallet, or its role may not sign in).
package siwe

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/chain/ethsig"
	"github.com/fhirgate/fhirgate/policy"
)

// Sentinel errors. Verify and Login wrap one of these together with
// auth.ErrUnauthenticated, except ErrNotLinked, which wraps
// policy.ErrDenied (a wallet linked to nothing, when the applicant role
// has no scopes); ErrInvalidMessage comes from Parse.
var (
	ErrInvalidSignature = errors.New("siwe: invalid signature")
	ErrDomainMismatch   = errors.New("siwe: message is for another domain")
	ErrURIMismatch      = errors.New("siwe: message is for another URI")
	ErrChainMismatch    = errors.New("siwe: message is for another chain")
	ErrNonce            = errors.New("siwe: nonce is unknown, used or expired")
	ErrExpired          = errors.New("siwe: message has expired")
	ErrNotYetValid      = errors.New("siwe: message is not valid yet")
	ErrNotLinked        = errors.New("siwe: wallet is not linked to a Patient or Practitioner")
)

// CAIP10System is the identifier system linking a Patient or Practitioner
// to a wallet; the identifier value is a CAIP-10 account id
// "eip155:<chainId>:<address>" (see AccountID, ParseAccountID).
const CAIP10System = "https://chainagnostic.org/CAIPs/caip-10"

// Link is what a wallet is linked to.
type Link struct {
	// Resource is "Patient/<id>" or "Practitioner/<id>"; "" if the wallet
	// is linked to nothing.
	Resource string
	// Role defaults to patient for a Patient, practitioner for a
	// Practitioner and applicant for no resource. A resolver may return
	// admin or regulator for a Practitioner (or no resource) whose wallet
	// it knows to be an operator's.
	Role policy.Role
}

// Resolver finds what a wallet is linked to: typically a search for
// Patient and Practitioner resources with the identifier
// {system: CAIP10System, value: AccountID(chainID, address)}, comparing
// values with ParseAccountID so that the address's case does not matter.
// address is in EIP-55 form. A wallet linked to nothing returns
// ErrNotLinked (or a zero Link): it signs in as an applicant. A wallet linked to several resources is
// the resolver's to decide (or refuse with an error). An error wrapping
// policy.ErrDenied refuses the sign-in with the resolver's reason (for
// example a practitioner record not yet verified).
type Resolver func(ctx context.Context, chainID uint64, address string) (Link, error)

// DefaultScopes are the scopes a sign-in grants, by role. Practitioner
// access is further limited by the patients' consents, and patient access
// by the patient's compartment: the scopes are the ceiling.
var DefaultScopes = map[policy.Role]string{
	policy.RolePatient:      "patient/*.rs patient/Appointment.cu",
	policy.RolePractitioner: "user/*.cruds",
	// Administrators keep the care directory, link wallets to Patient
	// records (identity fields only: docs/security.md) and read the audit
	// trail.
	policy.RoleAdmin:     "system/Practitioner.cruds system/PractitionerRole.cruds system/Organization.cruds system/Location.cruds system/HealthcareService.cruds system/Endpoint.cruds system/Patient.u system/AuditEvent.rs",
	policy.RoleRegulator: "system/AuditEvent.rs",
	// A wallet linked to nothing may ask to be registered, and nothing
	// else: no clinical scope (the access table names no applicant).
	policy.RoleApplicant: policy.ScopeRegistration,
}

// Defaults for Config.
const (
	DefaultTokenTTL = time.Hour
	DefaultMaxAge   = 10 * time.Minute
	DefaultSkew     = time.Minute
)

// Config configures a Service.
type Config struct {
	// Domain is the RFC 3986 authority the message must name, e.g.
	// "gateway.example.org" or "localhost:8080" (host compared without
	// regard to case).
	Domain string
	// Origin is the scheme and authority the message's URI must have,
	// e.g. "https://gateway.example.org". A message that names a scheme
	// before its domain must name this one.
	Origin string
	// ChainID is the EIP-155 chain the message must name.
	ChainID uint64

	// Key signs the access tokens.
	Key *auth.Key
	// Audience of the tokens (default: the key's issuer).
	Audience string
	// Resolve finds what a wallet is linked to.
	Resolve Resolver
	// Scopes by role; nil means DefaultScopes. A role missing from the map
	// cannot sign in (without RoleApplicant, a wallet linked to nothing
	// is refused with ErrNotLinked).
	Scopes map[policy.Role]string
	// Operators are the wallets the operator names as administrators or
	// regulators (ParseOperators): they sign in with that role, no record
	// and no patient context, whatever records name them (the resolver
	// is not asked).
	Operators map[ethsig.Address]policy.Role

	// Nonces defaults to NewMemoryNonceStore(DefaultMaxNonces): one
	// process's. Replicas need NewStoreNonceStore on their shared store.
	Nonces NonceStore
	// NonceTTL is how long an issued nonce stays usable (DefaultNonceTTL).
	NonceTTL time.Duration
	// TokenTTL is the access token lifetime (DefaultTokenTTL), cut short
	// by the message's expiration time.
	TokenTTL time.Duration
	// MaxAge is how old the message's issued-at may be (DefaultMaxAge).
	MaxAge time.Duration
	// Skew is the clock difference tolerated for issued-at and not-before
	// in the future (DefaultSkew). Expiration is applied exactly.
	Skew time.Duration
}

// Service issues nonces, verifies sign-ins and mints their tokens. It is
// safe for concurrent use.
type Service struct {
	cfg    Config
	origin origin
	scopes map[policy.Role]string
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if !validAuthority(cfg.Domain) || hostOf(cfg.Domain) == "" || strings.IndexByte(cfg.Domain, '@') >= 0 {
		return nil, fmt.Errorf("siwe: Domain %q is not a host[:port]", cfg.Domain)
	}
	o, ok := parseOrigin(cfg.Origin)
	if !ok {
		return nil, fmt.Errorf("siwe: Origin %q is not scheme://host[:port]", cfg.Origin)
	}
	if cfg.ChainID == 0 {
		return nil, errors.New("siwe: ChainID is required")
	}
	if cfg.Key == nil || cfg.Resolve == nil {
		return nil, errors.New("siwe: Key and Resolve are required")
	}
	for a, r := range cfg.Operators {
		if r != policy.RoleAdmin && r != policy.RoleRegulator {
			return nil, fmt.Errorf("siwe: operator %s: role %q is not admin or regulator", a.Hex(), r)
		}
	}
	s := &Service{cfg: cfg, origin: o, scopes: cfg.Scopes}
	if s.scopes == nil {
		s.scopes = DefaultScopes
	}
	for role, sc := range s.scopes {
		if err := checkRoleScopes(role, sc); err != nil {
			return nil, err
		}
	}
	if s.cfg.Nonces == nil {
		s.cfg.Nonces = NewMemoryNonceStore(DefaultMaxNonces)
	}
	for _, d := range []*time.Duration{&s.cfg.NonceTTL, &s.cfg.TokenTTL, &s.cfg.MaxAge, &s.cfg.Skew} {
		if *d < 0 {
			return nil, errors.New("siwe: durations must not be negative")
		}
	}
	if s.cfg.NonceTTL == 0 {
		s.cfg.NonceTTL = DefaultNonceTTL
	}
	if s.cfg.TokenTTL == 0 {
		s.cfg.TokenTTL = DefaultTokenTTL
	}
	if s.cfg.MaxAge == 0 {
		s.cfg.MaxAge = DefaultMaxAge
	}
	if s.cfg.Skew == 0 {
		s.cfg.Skew = DefaultSkew
	}
	return s, nil
}

// checkRoleScopes: the scopes must parse and use the context the role's
// tokens are checked against (policy.CheckScope), else they would grant
// nothing, silently; an applicant's grant no clinical access at all.
func checkRoleScopes(role policy.Role, scope string) error {
	want, ok := map[policy.Role]string{
		policy.RolePatient: "patient", policy.RolePractitioner: "user",
		policy.RoleAdmin: "system", policy.RoleRegulator: "system",
		policy.RoleApplicant: "",
	}[role]
	if !ok {
		return fmt.Errorf("siwe: role %q cannot sign in with a wallet", role)
	}
	sc, err := policy.ParseScopes(scope)
	if err != nil {
		return fmt.Errorf("siwe: scopes for %s: %w", role, err)
	}
	for _, c := range sc.Clinical {
		if want == "" {
			return fmt.Errorf("siwe: scopes for %s must not be clinical scopes (%s)", role, c)
		}
		if c.Context != want {
			return fmt.Errorf("siwe: scopes for %s must be %s/ scopes, not %s", role, want, c)
		}
	}
	return nil
}

// ParseOperators parses the operator's lists of administrator and
// regulator wallets: comma-separated addresses ("0x" and 40 hex digits;
// mixed case must be EIP-55). A wallet in both lists is refused: it would
// be unclear which role it signs in with.
func ParseOperators(admins, regulators string) (map[ethsig.Address]policy.Role, error) {
	out := map[ethsig.Address]policy.Role{}
	for _, l := range []struct {
		role       policy.Role
		name, list string
	}{{policy.RoleAdmin, "administrator", admins}, {policy.RoleRegulator, "regulator", regulators}} {
		for _, f := range strings.Split(l.list, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			a, err := ethsig.ParseAddress(f)
			if err != nil {
				return nil, fmt.Errorf("%s wallet %q: %w", l.name, f, err)
			}
			if r, ok := out[a]; ok && r != l.role {
				return nil, fmt.Errorf("wallet %s is named both administrator and regulator: name it once", a.Hex())
			}
			out[a] = l.role
		}
	}
	return out, nil
}

// Operator returns the role the operator names a wallet for (admin or
// regulator), "" for none. wallet is a CAIP-10 account id; the chain is
// not compared (the operator names addresses).
func (s *Service) Operator(wallet string) policy.Role {
	_, a, err := ParseAccountID(wallet)
	if err != nil {
		return ""
	}
	return s.cfg.Operators[a]
}

// NonceResponse is the body of GET /auth/siwe/nonce.
type NonceResponse struct {
	Nonce string `json:"nonce"`
}

// NewNonce issues a single-use nonce, valid for NonceTTL from now.
func (s *Service) NewNonce(ctx context.Context, now time.Time) (NonceResponse, error) {
	n := newNonce()
	if err := s.cfg.Nonces.Put(ctx, n, now.Add(s.cfg.NonceTTL)); err != nil {
		return NonceResponse{}, fmt.Errorf("siwe: store nonce: %w", err)
	}
	return NonceResponse{Nonce: n}, nil
}

func unauth(sentinel error, format string, args ...any) error {
	if format == "" {
		return fmt.Errorf("%w: %w", auth.ErrUnauthenticated, sentinel)
	}
	return fmt.Errorf("%w: %w: %s", auth.ErrUnauthenticated, sentinel, fmt.Sprintf(format, args...))
}

// Verify checks a signed sign-in message and consumes its nonce. It
// returns the parsed message; its Address is the signer. In order:
// the message parses strictly; names the configured domain (and scheme,
// if it has one), a URI with the configured origin, and the configured
// chain; was issued no more than Skew in the future and no more than
// MaxAge ago; has not expired; is past its not-before; carries a valid
// personal_sign signature (v 27/28 or 0/1, low s) by the message's
// address; and its nonce was issued by this service, is unexpired and
// unused. The nonce is consumed only when everything else holds, so a
// failed attempt does not burn it, and of two concurrent uses of one
// message at most one succeeds.
func (s *Service) Verify(ctx context.Context, message, signature string, now time.Time) (*Message, error) {
	m, err := Parse(message)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", auth.ErrUnauthenticated, err)
	}
	if !strings.EqualFold(m.Domain, s.cfg.Domain) {
		return nil, unauth(ErrDomainMismatch, "")
	}
	if m.Scheme != "" && !strings.EqualFold(m.Scheme, s.origin.scheme) {
		return nil, unauth(ErrDomainMismatch, "scheme differs")
	}
	if o, ok := originOf(m.URI); !ok || o != s.origin {
		return nil, unauth(ErrURIMismatch, "")
	}
	if m.ChainID != s.cfg.ChainID {
		return nil, unauth(ErrChainMismatch, "")
	}
	iat, _ := m.IssuedAtTime() // Parse checked them all
	exp, _ := m.ExpirationTimeTime()
	nbf, _ := m.NotBeforeTime()
	switch {
	case iat.After(now.Add(s.cfg.Skew)):
		return nil, unauth(ErrNotYetValid, "issued in the future")
	case now.Sub(iat) > s.cfg.MaxAge:
		return nil, unauth(ErrExpired, "issued more than %s ago", s.cfg.MaxAge)
	case !exp.IsZero() && !now.Before(exp):
		return nil, unauth(ErrExpired, "")
	case !nbf.IsZero() && nbf.After(now.Add(s.cfg.Skew)):
		return nil, unauth(ErrNotYetValid, "")
	}
	sig, err := ethsig.ParseSignature(signature)
	if err != nil {
		return nil, unauth(ErrInvalidSignature, "want 0x and 130 hex digits")
	}
	signer, err := ethsig.RecoverPersonal([]byte(message), sig)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %w", auth.ErrUnauthenticated, ErrInvalidSignature, err)
	}
	addr, _ := m.Account()
	if signer != addr {
		return nil, unauth(ErrInvalidSignature, "not signed by the message's address")
	}
	ok, err := s.cfg.Nonces.Consume(ctx, m.Nonce, now)
	if err != nil {
		return nil, fmt.Errorf("siwe: nonce store: %w", err)
	}
	if !ok {
		return nil, unauth(ErrNonce, "")
	}
	return m, nil
}

// TokenResponse is the body of a successful POST /auth/siwe.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"` // "Bearer"
	ExpiresIn   int64  `json:"expires_in"` // seconds
	Scope       string `json:"scope"`
	// Patient or Practitioner is the linked resource, "Patient/<id>" or
	// "Practitioner/<id>", by the link's resource type.
	Patient      string `json:"patient,omitempty"`
	Practitioner string `json:"practitioner,omitempty"`
	// Role is the token's role: patient, practitioner, admin, regulator or
	// applicant (a wallet linked to nothing: it may ask to be registered).
	Role policy.Role `json:"role"`
}

// Login verifies a sign-in (see Verify), finds what the wallet is (an
// operator's wallet, else what the resolver links it to, else an
// applicant's), and mints an access token: role and scopes from that,
// fhirUser the linked resource, subject the resource or
// "did:pkh:<account id>", wallet the CAIP-10 account id.
func (s *Service) Login(ctx context.Context, message, signature string, now time.Time) (*TokenResponse, error) {
	m, err := s.Verify(ctx, message, signature, now)
	if err != nil {
		return nil, err
	}
	account := AccountID(m.ChainID, m.Address)
	link, err := s.link(ctx, m)
	if err != nil {
		return nil, err
	}
	typ, _, _ := strings.Cut(link.Resource, "/")
	role := link.Role
	if role == "" {
		role = map[string]policy.Role{"Patient": policy.RolePatient, "Practitioner": policy.RolePractitioner, "": policy.RoleApplicant}[typ]
	}
	// A person's clinical scopes without the resource that bounds them
	// would be scopes over everyone's records: never issue them.
	if role == "" || (role == policy.RolePatient || role == policy.RolePractitioner) && link.Resource == "" {
		return nil, errors.New("siwe: resolver returned a link without a Patient or Practitioner resource")
	}
	scope, ok := s.scopes[role]
	if !ok {
		if role == policy.RoleApplicant {
			return nil, fmt.Errorf("%w: %w", policy.ErrDenied, ErrNotLinked)
		}
		return nil, fmt.Errorf("%w: role %s cannot sign in with a wallet", policy.ErrDenied, role)
	}
	grant := auth.Grant{Wallet: account, Audience: s.cfg.Audience, TTL: s.cfg.TokenTTL,
		Role: role, FHIRUser: link.Resource, Scope: scope}
	if link.Resource == "" {
		grant.Subject = "did:pkh:" + account
	}
	resp := &TokenResponse{TokenType: "Bearer", Role: role}
	switch typ {
	case "Patient":
		resp.Patient = link.Resource
	case "Practitioner":
		resp.Practitioner = link.Resource
	}
	if e, _ := m.ExpirationTimeTime(); !e.IsZero() && e.Sub(now) < grant.TTL {
		grant.TTL = e.Sub(now)
	}
	grant.TTL = grant.TTL.Truncate(time.Second)
	if grant.TTL <= 0 {
		return nil, unauth(ErrExpired, "")
	}
	tok, err := s.cfg.Key.Mint(grant, now)
	if err != nil {
		// A resolver result that does not fit the role (Patient/x as a
		// practitioner, a malformed id): the resolver's fault, not the
		// caller's.
		return nil, fmt.Errorf("siwe: link of this wallet: %w", err)
	}
	resp.AccessToken = tok
	resp.ExpiresIn = int64(grant.TTL / time.Second)
	resp.Scope = grant.Scope
	return resp, nil
}

// link is what the signer's wallet is: an operator's, else what the
// resolver says; a wallet linked to nothing is a zero Link (an applicant).
func (s *Service) link(ctx context.Context, m *Message) (Link, error) {
	addr, _ := m.Account()
	if role := s.cfg.Operators[addr]; role != "" {
		return Link{Role: role}, nil
	}
	link, err := s.cfg.Resolve(ctx, m.ChainID, m.Address)
	switch {
	case errors.Is(err, policy.ErrDenied):
		return Link{}, err // the resolver refuses the wallet, and says why
	case errors.Is(err, ErrNotLinked):
		return Link{}, nil
	case err != nil:
		return Link{}, fmt.Errorf("siwe: resolve wallet: %w", err)
	}
	return link, nil
}

// AccountID returns the CAIP-10 account id "eip155:<chainId>:<address>" of
// an address (in the form given).
func AccountID(chainID uint64, address string) string {
	return "eip155:" + strconv.FormatUint(chainID, 10) + ":" + address
}

// ParseAccountID parses a CAIP-10 eip155 account id. The address may be
// in any case (identifiers are compared case-insensitively): compare the
// returned values, not the strings.
func ParseAccountID(s string) (chainID uint64, address ethsig.Address, err error) {
	rest, ok := strings.CutPrefix(s, "eip155:")
	if !ok {
		return 0, ethsig.Address{}, errors.New("siwe: not an eip155 CAIP-10 account id")
	}
	chain, addr, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, ethsig.Address{}, errors.New("siwe: not an eip155 CAIP-10 account id")
	}
	if chainID, err = parseChainID(chain); err != nil {
		return 0, ethsig.Address{}, errors.New("siwe: CAIP-10 chain id is not a decimal number")
	}
	if address, err = ethsig.ParseHexAddress(addr); err != nil {
		return 0, ethsig.Address{}, fmt.Errorf("siwe: CAIP-10 account: %w", err)
	}
	return chainID, address, nil
}
