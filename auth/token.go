package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirgate/fhirgate/policy"
)

// ErrUnauthenticated: no usable credentials. Wrapped errors say why.
var ErrUnauthenticated = errors.New("unauthenticated")

// DefaultSubject is the subject of tokens minted without one: tokens minted
// one after another then act as the same client.
const DefaultSubject = "client/fhirgate-cli"

// claims are the JWT claims of an access token.
type claims struct {
	jwt.RegisteredClaims
	Scope    string      `json:"scope"`
	Role     policy.Role `json:"role"`
	ClientID string      `json:"client_id,omitempty"`
	// FHIRUser is the person's resource, "Patient/<id>" or
	// "Practitioner/<id>" (SMART's fhirUser claim).
	FHIRUser string `json:"fhirUser,omitempty"`
	// Patient is SMART's patient launch context: the bare id of the
	// Patient a patient token is bound to.
	Patient string `json:"patient,omitempty"`
	// Wallet is the signed-in account as a CAIP-10 account id,
	// "eip155:<chainId>:<EIP-55 address>".
	Wallet string `json:"wallet,omitempty"`
}

// Grant describes a token to mint.
type Grant struct {
	// Subject defaults to FHIRUser when that is set, else DefaultSubject.
	Subject  string
	Role     policy.Role
	ClientID string
	Scope    string
	TTL      time.Duration
	// Audience defaults to the key's Issuer.
	Audience string
	// FHIRUser binds a person's token to their resource: "Patient/<id>"
	// for the patient role, "Practitioner/<id>" for practitioners (and
	// optionally admins and regulators). Patient tokens also carry the
	// bare id as SMART's patient launch context.
	FHIRUser string
	// Wallet is the CAIP-10 account id of a wallet sign-in.
	Wallet string
}

// Identity is what a token says about the person behind it beyond
// policy.Principal: the resource binding and the wallet. All empty for
// backend clients.
type Identity struct {
	// FHIRUser is "Patient/<id>", "Practitioner/<id>" or "".
	FHIRUser string
	// Patient is the id (without "Patient/") a patient token is bound to.
	Patient string
	// Wallet is "eip155:<chainId>:<address>" or "".
	Wallet string
}

// Mint signs an access token.
func (k *Key) Mint(g Grant, now time.Time) (string, error) {
	if g.Subject == "" {
		g.Subject = g.FHIRUser
	}
	if g.Subject == "" {
		g.Subject = DefaultSubject
	}
	if g.Role == "" {
		g.Role = policy.RoleSystem
	}
	if g.ClientID == "" && g.Role == policy.RoleSystem {
		g.ClientID = g.Subject
	}
	if g.TTL <= 0 {
		return "", fmt.Errorf("auth: token lifetime must be positive")
	}
	if !validRole(g.Role) {
		return "", fmt.Errorf("auth: unknown role %q", g.Role)
	}
	if _, err := policy.ParseScopes(g.Scope); err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	id, err := bindIdentity(g.Role, g.FHIRUser, g.Wallet)
	if err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	if g.Audience == "" {
		g.Audience = k.Issuer
	}
	var jti [16]byte
	rand.Read(jti[:])
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    k.Issuer,
			Subject:   g.Subject,
			Audience:  jwt.ClaimStrings{g.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(g.TTL)),
			ID:        hex.EncodeToString(jti[:]),
		},
		Scope:    g.Scope,
		Role:     g.Role,
		ClientID: g.ClientID,
		FHIRUser: id.FHIRUser,
		Patient:  id.Patient,
		Wallet:   id.Wallet,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = k.ID
	return t.SignedString(k.priv)
}

// Verifier checks access tokens. Verified tokens are cached by their exact
// text so that a client reusing a token pays for the signature check once;
// expiry is checked on every use.
type Verifier struct {
	key       *Key
	audiences []string
	parser    *jwt.Parser
	now       func() time.Time

	cache     sync.Map // token string -> *cached
	cacheSize atomic.Int64
}

type cached struct {
	p   *policy.Principal
	exp time.Time
}

const maxCachedTokens = 100_000

// NewVerifier accepts tokens signed by key whose audience is the key's
// Issuer or one of extraAudiences (the gateway's public base URL).
func NewVerifier(key *Key, extraAudiences ...string) *Verifier {
	v := &Verifier{
		key:       key,
		audiences: append([]string{key.Issuer}, extraAudiences...),
		now:       time.Now,
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(key.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v
}

// Verify returns the principal of a valid token, or an error wrapping
// ErrUnauthenticated that says what is wrong (never the token itself). The
// principal is shared by every request presenting the same token: it must
// not be modified.
func (v *Verifier) Verify(token string) (*policy.Principal, error) {
	c, err := v.verify(token)
	if err != nil {
		return nil, err
	}
	return c.p, nil
}

func (v *Verifier) verify(token string) (*cached, error) {
	now := v.now()
	if c, ok := v.cache.Load(token); ok {
		c := c.(*cached)
		if now.Before(c.exp) {
			return c, nil
		}
		v.cache.Delete(token)
		v.cacheSize.Add(-1)
		return nil, fmt.Errorf("%w: token expired", ErrUnauthenticated)
	}
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		return &v.key.priv.PublicKey, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnauthenticated, reason(err))
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(v.audiences, a) }) {
		return nil, fmt.Errorf("%w: token is for another audience", ErrUnauthenticated)
	}
	scopes, err := policy.ParseScopes(c.Scope)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	if !validRole(c.Role) {
		return nil, fmt.Errorf("%w: unknown role", ErrUnauthenticated)
	}
	// The claims are ours (the signature checked out), but a token whose
	// binding contradicts its role is refused rather than interpreted.
	id, err := bindIdentity(c.Role, c.FHIRUser, c.Wallet)
	if err != nil || id.Patient != c.Patient {
		return nil, fmt.Errorf("%w: token identity claims are inconsistent", ErrUnauthenticated)
	}
	entry := &cached{
		p: &policy.Principal{Subject: c.Subject, Role: c.Role, ClientID: c.ClientID, Scopes: scopes,
			Resource: id.FHIRUser, Wallet: id.Wallet},
		exp: c.ExpiresAt.Time,
	}
	if v.cacheSize.Load() >= maxCachedTokens {
		v.cache.Clear()
		v.cacheSize.Store(0)
	}
	// The caller's string may live in a reused request buffer: store a copy.
	if _, loaded := v.cache.LoadOrStore(strings.Clone(token), entry); !loaded {
		v.cacheSize.Add(1)
	}
	return entry, nil
}

func validRole(r policy.Role) bool {
	switch r {
	case policy.RoleSystem, policy.RolePatient, policy.RolePractitioner, policy.RoleAdmin, policy.RoleRegulator, policy.RoleApplicant:
		return true
	}
	return false
}

// reason turns a jwt error into a short message with no token content.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "token signature is invalid"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token is malformed"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "token was issued by someone else"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token is not valid yet"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token cannot be verified"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token lacks a required claim"
	}
	return "token is invalid"
}
