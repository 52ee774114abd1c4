// Package siwe is Sign-In With Ethereum (EIP-4361) for the gateway:
// single-use nonces, a strict message parser, verification of the signed
// message (EIP-191 personal_sign) against the gateway's domain, origin and
// chain, and the exchange of a verified sign-in for an access token bound
// to the Patient or Practitioner the wallet is linked to.
//
// The HTTP layer calls Service.NewNonce for GET /auth/siwe/nonce and
// Service.Login for POST /auth/siwe; every error wraps a sentinel of this
// package and either auth.ErrUnauthenticated (401) or policy.ErrDenied
// (403, for a wallet linked to nothing).
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
// policy.ErrDenied; ErrInvalidMessage comes from Parse.
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
	// Role defaults to patient for a Patient and practitioner for a
	// Practitioner. A resolver may return admin or regulator for a
	// Practitioner (or no resource) whose wallet it knows to be an
	// operator's.
	Role policy.Role
}

// Resolver finds what a wallet is linked to: typically a search for
// Patient and Practitioner resources with the identifier
// {system: CAIP10System, value: AccountID(chainID, address)}, comparing
// values with ParseAccountID so that the address's case does not matter.
// address is in EIP-55 form. A wallet linked to nothing returns
// ErrNotLinked (or a zero Link). A wallet linked to several resources is
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
	// cannot sign in.
	Scopes map[policy.Role]string
	// AllowUnlinked issues a wallet linked to nothing a token with no
	// clinical scopes and no resource (role patient, subject
	// "did:pkh:<account id>"), for a portal that wants to say so; by
	// default such a sign-in fails with ErrNotLinked.
	AllowUnlinked bool

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
// nothing, silently.
func checkRoleScopes(role policy.Role, scope string) error {
	want := map[policy.Role]string{
		policy.RolePatient: "patient", policy.RolePractitioner: "user",
		policy.RoleAdmin: "system", policy.RoleRegulator: "system",
	}[role]
	if want == "" {
		return fmt.Errorf("siwe: role %q cannot sign in with a wallet", role)
	}
	sc, err := policy.ParseScopes(scope)
	if err != nil {
		return fmt.Errorf("siwe: scopes for %s: %w", role, err)
	}
	for _, c := range sc.Clinical {
		if c.Context != want {
			return fmt.Errorf("siwe: scopes for %s must be %s/ scopes, not %s", role, want, c)
		}
	}
	return nil
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
}

// Login verifies a sign-in (see Verify), resolves the wallet, and mints an
// access token: role and scopes from the link, fhirUser and subject the
// linked resource, wallet the CAIP-10 account id.
func (s *Service) Login(ctx context.Context, message, signature string, now time.Time) (*TokenResponse, error) {
	m, err := s.Verify(ctx, message, signature, now)
	if err != nil {
		return nil, err
	}
	account := AccountID(m.ChainID, m.Address)
	link, err := s.cfg.Resolve(ctx, m.ChainID, m.Address)
	if errors.Is(err, policy.ErrDenied) {
		return nil, err // the resolver refuses the wallet, and says why
	}
	if err != nil && !errors.Is(err, ErrNotLinked) {
		return nil, fmt.Errorf("siwe: resolve wallet: %w", err)
	}
	grant := auth.Grant{Wallet: account, Audience: s.cfg.Audience, TTL: s.cfg.TokenTTL}
	resp := &TokenResponse{TokenType: "Bearer"}
	if errors.Is(err, ErrNotLinked) || link == (Link{}) {
		if !s.cfg.AllowUnlinked {
			return nil, fmt.Errorf("%w: %w", policy.ErrDenied, ErrNotLinked)
		}
		grant.Role, grant.Subject = policy.RolePatient, "did:pkh:"+account
	} else {
		typ, _, _ := strings.Cut(link.Resource, "/")
		role := link.Role
		if role == "" {
			role = map[string]policy.Role{"Patient": policy.RolePatient, "Practitioner": policy.RolePractitioner}[typ]
		}
		// A person's clinical scopes without the resource that bounds them
		// would be scopes over everyone's records: never issue them.
		if role == "" || (role == policy.RolePatient || role == policy.RolePractitioner) && link.Resource == "" {
			return nil, errors.New("siwe: resolver returned a link without a Patient or Practitioner resource")
		}
		scope, ok := s.scopes[role]
		if !ok {
			return nil, fmt.Errorf("%w: %w: role %s cannot sign in with a wallet", policy.ErrDenied, ErrNotLinked, role)
		}
		grant.Role, grant.FHIRUser, grant.Scope = role, link.Resource, scope
		if link.Resource == "" {
			grant.Subject = "did:pkh:" + account
		}
		switch typ {
		case "Patient":
			resp.Patient = link.Resource
		case "Practitioner":
			resp.Practitioner = link.Resource
		}
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
