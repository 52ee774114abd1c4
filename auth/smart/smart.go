// Package smart is the gateway's SMART Backend Services authorization
// server (SMART App Launch v2, "Backend Services" with the
// client-confidential-asymmetric profile): a registry of backend clients
// and their public keys, the client_credentials token exchange with a
// signed JWT client assertion (RFC 7523), and the
// .well-known/smart-configuration document.
//
// The HTTP layer calls Server.Exchange for POST /auth/token with the
// parsed application/x-www-form-urlencoded body, answers
// {"error", "error_description"} with (*Error).Status for an *Error, and
// serves Server.Configuration as GET /.well-known/smart-configuration.
package smart

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/policy"
)

// Error is an OAuth 2.0 error response (RFC 6749 section 5.2). Its
// fields marshal to the response body; Status gives the HTTP status.
// Descriptions never repeat the assertion or other request content.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *Error) Error() string {
	if e.Description == "" {
		return "oauth: " + e.Code
	}
	return "oauth: " + e.Code + ": " + e.Description
}

// Is matches the sentinel of the same code (errors.Is(err, ErrInvalidScope)).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Description == "" && t.Code == e.Code
}

// Status is the HTTP status of the error response: 401 for
// invalid_client, 400 otherwise.
func (e *Error) Status() int {
	if e.Code == "invalid_client" {
		return 401
	}
	return 400
}

// The OAuth error codes, as sentinels for errors.Is.
var (
	// ErrInvalidRequest: a parameter is missing or repeated.
	ErrInvalidRequest = &Error{Code: "invalid_request"}
	// ErrInvalidClient: client authentication failed (no or a bad client
	// assertion, unknown or disabled client, replayed jti).
	ErrInvalidClient = &Error{Code: "invalid_client"}
	// ErrInvalidGrant: defined for completeness; the client_credentials
	// grant carries no grant to be invalid, and assertion failures are
	// invalid_client as RFC 7523 section 3.2 requires.
	ErrInvalidGrant = &Error{Code: "invalid_grant"}
	// ErrUnsupportedGrantType: grant_type is not client_credentials.
	ErrUnsupportedGrantType = &Error{Code: "unsupported_grant_type"}
	// ErrInvalidScope: no scope, a malformed one, or one the client may
	// not have.
	ErrInvalidScope = &Error{Code: "invalid_scope"}
)

func oauthErr(code *Error, format string, args ...any) *Error {
	return &Error{Code: code.Code, Description: fmt.Sprintf(format, args...)}
}

// Protocol constants.
const (
	GrantClientCredentials = "client_credentials"
	AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// TokenPath is where the HTTP layer serves the token endpoint, below
	// the base URL given to TokenEndpoint and SmartConfiguration.
	TokenPath = "/auth/token"
	// MaxAssertionLifetime: a client assertion's exp may be at most this
	// far ahead (SMART: "no more than five minutes in the future").
	MaxAssertionLifetime = 5 * time.Minute
	// MaxAssertionLen bounds the client_assertion parameter.
	MaxAssertionLen = 16 << 10
	maxJTILen       = 255

	DefaultTokenTTL = 5 * time.Minute // SMART: expires_in SHOULD NOT exceed 300
	DefaultLeeway   = 30 * time.Second
)

// TokenEndpoint is the token endpoint URL below a base URL.
func TokenEndpoint(baseURL string) string { return strings.TrimRight(baseURL, "/") + TokenPath }

// Config configures a Server.
type Config struct {
	// Key signs the access tokens.
	Key *auth.Key
	// Registry holds the clients.
	Registry *Registry
	// TokenURL is the absolute URL of the token endpoint as clients reach
	// it (TokenEndpoint(publicBaseURL)): the required aud of every client
	// assertion, and the token_endpoint advertised.
	TokenURL string
	// Audience of the access tokens (default: the key's issuer).
	Audience string
	// TokenTTL is the access token lifetime (DefaultTokenTTL).
	TokenTTL time.Duration
	// Leeway is the clock skew tolerated for the assertion's exp, nbf and
	// iat, and on top of its five-minute maximum lifetime (DefaultLeeway).
	Leeway time.Duration
	// Replay remembers the assertions' jtis. Default:
	// NewMemoryReplayCache(DefaultMaxReplayEntries), which a restart
	// empties (an assertion is then accepted again within its lifetime):
	// a gateway passes a StoreReplayCache on its store.
	Replay ReplayCache
}

// Server exchanges client assertions for access tokens. It is safe for
// concurrent use.
type Server struct {
	cfg      Config
	registry atomic.Pointer[Registry]
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Key == nil || cfg.Registry == nil {
		return nil, errors.New("smart: Key and Registry are required")
	}
	u, err := url.Parse(cfg.TokenURL)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("smart: TokenURL %q is not an absolute URL", cfg.TokenURL)
	}
	if cfg.TokenTTL < 0 || cfg.Leeway < 0 {
		return nil, errors.New("smart: durations must not be negative")
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Replay == nil {
		cfg.Replay = NewMemoryReplayCache(DefaultMaxReplayEntries)
	}
	s := &Server{cfg: cfg}
	s.registry.Store(cfg.Registry)
	return s, nil
}

// SetRegistry replaces the client registry (e.g. on reload). Requests in
// flight finish with the registry they started with.
func (s *Server) SetRegistry(r *Registry) { s.registry.Store(r) }

// TokenResponse is the body of a successful token response.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"` // "bearer"
	ExpiresIn   int64  `json:"expires_in"` // seconds
	Scope       string `json:"scope"`
}

// Exchange handles a token request (the form parameters of POST
// /auth/token) made at now. Failures are *Error (the OAuth error to send)
// except for infrastructure failures (the replay cache), which the HTTP
// layer answers with a 5xx. Checks, in order:
//
//   - no parameter repeated (invalid_request);
//   - grant_type is client_credentials (invalid_request if absent,
//     unsupported_grant_type otherwise);
//   - client_assertion_type is the JWT bearer type and client_assertion is
//     present (invalid_client: no or unsupported client authentication);
//   - the assertion: alg RS384 or ES384; typ, if present, JWT; no crit
//     header; kid present and naming exactly one registered key of the
//     client whose kty fits alg; iss a registered, enabled client (and
//     equal to the client_id parameter, if sent); jku, if present, the
//     client's registered jwks_uri; valid signature; aud the token
//     endpoint URL; exp present, not past and at most five minutes ahead;
//     nbf and iat, if present, not in the future; sub == iss; jti present
//     and never accepted before for this client (invalid_client);
//   - scope: present, well-formed, and every requested scope within the
//     client's registered scopes (invalid_scope). Nothing is silently
//     dropped: a request for a scope not allowed fails as a whole.
func (s *Server) Exchange(ctx context.Context, form url.Values, now time.Time) (*TokenResponse, error) {
	for _, p := range []string{"grant_type", "client_assertion_type", "client_assertion", "scope", "client_id"} {
		if len(form[p]) > 1 {
			return nil, oauthErr(ErrInvalidRequest, "parameter %s is repeated", p)
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case GrantClientCredentials:
	case "":
		return nil, oauthErr(ErrInvalidRequest, "grant_type is required")
	default:
		return nil, oauthErr(ErrUnsupportedGrantType, "grant_type must be client_credentials")
	}
	if form.Get("client_assertion_type") != AssertionTypeJWTBearer {
		return nil, oauthErr(ErrInvalidClient, "client authentication required: client_assertion_type must be %s", AssertionTypeJWTBearer)
	}
	assertion := form.Get("client_assertion")
	if assertion == "" {
		return nil, oauthErr(ErrInvalidClient, "client authentication required: client_assertion is missing")
	}
	if len(assertion) > MaxAssertionLen {
		return nil, oauthErr(ErrInvalidClient, "client_assertion is too long")
	}
	client, err := s.authenticate(ctx, assertion, form.Get("client_id"), now)
	if err != nil {
		return nil, err
	}
	granted, err := grant(client, form.Get("scope"))
	if err != nil {
		return nil, err
	}
	tok, err := s.cfg.Key.Mint(auth.Grant{
		Subject:  "client/" + client.ID,
		Role:     client.Role,
		ClientID: client.ID,
		Scope:    granted,
		TTL:      s.cfg.TokenTTL,
		Audience: s.cfg.Audience,
	}, now)
	if err != nil {
		return nil, fmt.Errorf("smart: mint: %w", err)
	}
	return &TokenResponse{
		AccessToken: tok,
		TokenType:   "bearer",
		ExpiresIn:   int64(s.cfg.TokenTTL / time.Second),
		Scope:       granted,
	}, nil
}

// authenticate verifies a client assertion and records its jti.
func (s *Server) authenticate(ctx context.Context, assertion, formClientID string, now time.Time) (*Client, error) {
	reg := s.registry.Load()
	var client *Client
	parser := jwt.NewParser(
		jwt.WithValidMethods(SigningAlgs),
		jwt.WithAudience(s.cfg.TokenURL),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(s.cfg.Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithStrictDecoding(),
	)
	var claims jwt.RegisteredClaims
	tok, err := parser.ParseWithClaims(assertion, &claims, func(t *jwt.Token) (any, error) {
		if typ, ok := t.Header["typ"]; ok {
			if v, _ := typ.(string); !strings.EqualFold(v, "JWT") {
				return nil, oauthErr(ErrInvalidClient, "client_assertion typ header must be JWT")
			}
		}
		if _, ok := t.Header["crit"]; ok {
			return nil, oauthErr(ErrInvalidClient, "client_assertion crit header is not supported")
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, oauthErr(ErrInvalidClient, "client_assertion kid header is required")
		}
		if claims.Issuer == "" {
			return nil, oauthErr(ErrInvalidClient, "client_assertion iss (the client_id) is required")
		}
		c, ok := reg.Client(claims.Issuer)
		if !ok {
			return nil, oauthErr(ErrInvalidClient, "unknown client")
		}
		if c.Disabled {
			return nil, oauthErr(ErrInvalidClient, "client is disabled")
		}
		if formClientID != "" && formClientID != claims.Issuer {
			return nil, oauthErr(ErrInvalidClient, "client_id does not match the assertion's iss")
		}
		if jku, ok := t.Header["jku"]; ok {
			if v, _ := jku.(string); c.JWKSURI == "" || v != c.JWKSURI {
				return nil, oauthErr(ErrInvalidClient, "client_assertion jku is not the client's registered JWKS URL")
			}
		}
		key, ok := c.key(kid, t.Method.Alg())
		if !ok {
			return nil, oauthErr(ErrInvalidClient, "no registered %s key with this kid", t.Method.Alg())
		}
		client = c
		return key, nil
	})
	if err != nil {
		return nil, assertionError(tok, err)
	}
	if claims.Subject != claims.Issuer {
		return nil, oauthErr(ErrInvalidClient, "client_assertion sub must equal iss (the client_id)")
	}
	if claims.ID == "" {
		return nil, oauthErr(ErrInvalidClient, "client_assertion jti is required")
	}
	if len(claims.ID) > maxJTILen {
		return nil, oauthErr(ErrInvalidClient, "client_assertion jti is longer than %d characters", maxJTILen)
	}
	exp := claims.ExpiresAt.Time
	if exp.After(now.Add(MaxAssertionLifetime + s.cfg.Leeway)) {
		return nil, oauthErr(ErrInvalidClient, "client_assertion exp must be at most five minutes ahead")
	}
	fresh, err := s.cfg.Replay.Add(ctx, client.ID+"\x00"+claims.ID, exp.Add(s.cfg.Leeway), now)
	if err != nil {
		return nil, fmt.Errorf("smart: replay cache: %w", err)
	}
	if !fresh {
		return nil, oauthErr(ErrInvalidClient, "client_assertion was already used (jti replay)")
	}
	return client, nil
}

// assertionError turns a jwt error into the invalid_client to send.
func assertionError(tok *jwt.Token, err error) error {
	var oe *Error
	switch {
	case errors.As(err, &oe):
		return oe
	case errors.Is(err, jwt.ErrTokenMalformed):
		return oauthErr(ErrInvalidClient, "client_assertion is not a well-formed JWT")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok != nil && tok.Method != nil && !slices.Contains(SigningAlgs, tok.Method.Alg()) {
			return oauthErr(ErrInvalidClient, "client_assertion alg must be RS384 or ES384")
		}
		return oauthErr(ErrInvalidClient, "client_assertion signature is invalid")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return oauthErr(ErrInvalidClient, "client_assertion cannot be verified (alg must be RS384 or ES384)")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return oauthErr(ErrInvalidClient, "client_assertion must have exp and aud")
	case errors.Is(err, jwt.ErrTokenExpired):
		return oauthErr(ErrInvalidClient, "client_assertion has expired")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return oauthErr(ErrInvalidClient, "client_assertion aud must be the token endpoint URL")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return oauthErr(ErrInvalidClient, "client_assertion is not valid yet")
	}
	return oauthErr(ErrInvalidClient, "client_assertion is invalid")
}

// grant checks the requested scope against the client's and returns the
// granted scope string (SMART v2 syntax).
func grant(c *Client, scope string) (string, error) {
	if strings.TrimSpace(scope) == "" {
		return "", oauthErr(ErrInvalidScope, "scope is required")
	}
	req, err := policy.ParseScopes(scope)
	if err != nil {
		return "", oauthErr(ErrInvalidScope, "scope is malformed: want SMART scopes such as system/Patient.rs (query-restricted scopes are not supported)")
	}
	var out policy.Scopes
	seen := map[string]bool{}
	for _, r := range req.Clinical {
		if !covered(c.Scopes, r) {
			if printableScope(r) {
				return "", oauthErr(ErrInvalidScope, "scope %s is not allowed for this client", r)
			}
			return "", oauthErr(ErrInvalidScope, "a requested scope is not allowed for this client")
		}
		if k := r.String(); !seen[k] {
			seen[k] = true
			out.Clinical = append(out.Clinical, r)
		}
	}
	for _, o := range req.Other {
		if !slices.Contains(c.Scopes.Other, o) {
			return "", oauthErr(ErrInvalidScope, "a requested scope is not allowed for this client")
		}
		if !seen[o] {
			seen[o] = true
			out.Other = append(out.Other, o)
		}
	}
	return out.String(), nil
}

// covered reports whether the allowed scopes, together, grant every
// permission of r on its type: a wildcard type covers every type, and
// permissions add up across scopes (system/Patient.rs and
// system/Patient.cud cover system/Patient.cruds).
func covered(allowed policy.Scopes, r policy.Scope) bool {
	var perms policy.Perm
	for _, a := range allowed.Clinical {
		if a.Context == r.Context && (a.Type == "*" || a.Type == r.Type) {
			perms |= a.Perms
		}
	}
	return perms&r.Perms == r.Perms
}

// printableScope: a scope safe to repeat in an error (a resource type
// name or "*").
func printableScope(s policy.Scope) bool {
	if s.Type == "*" {
		return true
	}
	if len(s.Type) > 64 || s.Type[0] < 'A' || s.Type[0] > 'Z' {
		return false
	}
	for i := 0; i < len(s.Type); i++ {
		c := s.Type[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// Configuration is the .well-known/smart-configuration document (SMART
// App Launch v2, "Conformance"). Without a client registry the token
// endpoint grants nothing: grant_types_supported is empty and
// BackendServices says why.
type Configuration struct {
	TokenEndpoint                              string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	ScopesSupported                            []string `json:"scopes_supported"`
	// CodeChallengeMethodsSupported is REQUIRED by SMART v2 even for a
	// server without an authorization endpoint; it lists S256 only.
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported"`
	Capabilities                  []string `json:"capabilities"`
	// BackendServices, set when client_credentials is not offered, says
	// so in words (an extension field; SMART allows others).
	BackendServices string `json:"backend_services,omitempty"`
	// SignInWithEthereum tells wallets where and how to sign in (an
	// extension field); nil when the gateway offers no wallet sign-in.
	SignInWithEthereum *WalletSignIn `json:"sign_in_with_ethereum,omitempty"`
}

// WalletSignIn is the sign_in_with_ethereum extension of the
// configuration: the EIP-4361 endpoints and what a message must say.
type WalletSignIn struct {
	// NonceEndpoint answers GET with {"nonce": "..."}, single-use.
	NonceEndpoint string `json:"nonce_endpoint"`
	// SignInEndpoint takes POST {"message", "signature"} and answers the
	// token.
	SignInEndpoint string `json:"sign_in_endpoint"`
	// Domain the message must name; its URI must be on URIOrigin.
	Domain    string `json:"domain"`
	URIOrigin string `json:"uri_origin"`
	ChainID   uint64 `json:"chain_id"`
	// Lifetimes in seconds: of a nonce, of a message (from its Issued
	// At), the clock skew tolerated, and of the token.
	NonceLifetime int64 `json:"nonce_lifetime_seconds"`
	MessageMaxAge int64 `json:"message_max_age_seconds"`
	ClockSkew     int64 `json:"clock_skew_seconds"`
	TokenLifetime int64 `json:"token_lifetime_seconds"`
	// Scopes granted by role (patient, practitioner, ...).
	Scopes map[string]string `json:"scopes_by_role"`
	// Specification is EIP-4361's URL.
	Specification string `json:"specification"`
}

// NotOffered is the configuration of a gateway without a client registry:
// its token endpoint (tokenURL) answers every request with an error.
func NotOffered(tokenURL string) Configuration {
	return Configuration{
		TokenEndpoint:                              tokenURL,
		TokenEndpointAuthMethodsSupported:          []string{},
		TokenEndpointAuthSigningAlgValuesSupported: []string{},
		GrantTypesSupported:                        []string{},
		ScopesSupported:                            []string{},
		CodeChallengeMethodsSupported:              []string{"S256"},
		Capabilities:                               []string{"permission-v1", "permission-v2"},
		BackendServices:                            ErrNotOffered.Description,
	}
}

// ErrNotOffered is the token endpoint's answer on a gateway without a
// client registry.
var ErrNotOffered = &Error{Code: "unsupported_grant_type", Description: "SMART Backend Services are not offered: this gateway was started without a client registry (--clients), so no client can obtain a token here; people sign in with their wallet (sign_in_with_ethereum)"}

// SmartConfiguration is the configuration document for a gateway whose
// token endpoint is TokenEndpoint(baseURL). No authorization_endpoint
// (the gateway has no SMART App Launch), no issuer or jwks_uri (no
// sso-openid-connect).
func SmartConfiguration(baseURL string) Configuration {
	return configuration(TokenEndpoint(baseURL), []string{"system/*.cruds", "system/*.rs", "system/*.read", "system/*.write"})
}

// Configuration is the configuration document of this server: its token
// endpoint, and as scopes_supported the scopes its clients may be granted.
func (s *Server) Configuration() Configuration {
	var scopes []string
	for _, c := range s.registry.Load().Clients() {
		for _, sc := range c.Scopes.Clinical {
			scopes = append(scopes, sc.String())
		}
		scopes = append(scopes, c.Scopes.Other...)
	}
	slices.Sort(scopes)
	return configuration(s.cfg.TokenURL, slices.Compact(scopes))
}

func configuration(tokenURL string, scopes []string) Configuration {
	if scopes == nil {
		scopes = []string{}
	}
	return Configuration{
		TokenEndpoint:                              tokenURL,
		TokenEndpointAuthMethodsSupported:          []string{"private_key_jwt"},
		TokenEndpointAuthSigningAlgValuesSupported: slices.Clone(SigningAlgs),
		GrantTypesSupported:                        []string{GrantClientCredentials},
		ScopesSupported:                            scopes,
		CodeChallengeMethodsSupported:              []string{"S256"},
		Capabilities:                               []string{"client-confidential-asymmetric", "permission-v1", "permission-v2"},
	}
}
