package siwe

import (
	"maps"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/policy"
)

// Rules are what a sign-in message must say to be accepted and what the
// token it earns carries: the service's configuration as a wallet or an
// integrator needs to know it (the discovery document publishes them).
type Rules struct {
	Domain   string // the message's domain (host[:port], any case)
	Origin   string // scheme://host[:port] its URI must start with
	ChainID  uint64
	NonceTTL time.Duration // a nonce is usable this long after it is issued
	MaxAge   time.Duration // how old Issued At may be
	Skew     time.Duration // how far in the future Issued At and Not Before may be
	TokenTTL time.Duration // the token's lifetime, cut short by Expiration Time
	// Scopes a sign-in grants, by role (a role absent cannot sign in).
	Scopes map[policy.Role]string
}

// Rules returns the service's rules.
func (s *Service) Rules() Rules {
	return Rules{
		Domain:   s.cfg.Domain,
		Origin:   strings.TrimSuffix(s.cfg.Origin, "/"),
		ChainID:  s.cfg.ChainID,
		NonceTTL: s.cfg.NonceTTL,
		MaxAge:   s.cfg.MaxAge,
		Skew:     s.cfg.Skew,
		TokenTTL: s.cfg.TokenTTL,
		Scopes:   maps.Clone(s.scopes),
	}
}
