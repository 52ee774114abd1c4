package rest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// Sessions end at once. A wallet token is good for an hour, but what it
// stands for can change sooner: an administrator deactivates a
// practitioner, a clinic replaces a patient's lost wallet, an applicant is
// verified. So every request with a wallet token is checked against the
// store: the wallet must still be linked to the token's record (not
// deleted; a Practitioner still active), an applicant's wallet still to
// nothing, and an operator's wallet still named by the operator. The
// store is read at most twice a second per record (or applicant wallet)
// on each replica: what one replica writes counts on the others within
// sessionTTL, and at once on the replica that wrote it (afterCommit
// forgets what it knew of the records written).

const (
	// sessionTTL is how long a replica trusts what it read of a record.
	// Half a second, so that a change made on one replica counts on
	// every other within a second, request and polling included.
	sessionTTL = 500 * time.Millisecond
	// sessionCacheMax bounds the entries kept (records and applicant
	// wallets): half a second's worth of distinct signed-in people.
	sessionCacheMax = 8192
)

// sessionFacts is what the session check needs of a record, or of a
// wallet's link.
type sessionFacts struct {
	at      time.Time
	gone    bool     // the record is deleted or absent
	wallets []string // the wallet identifiers (CAIP-10, chain and address), lower case
	active  bool     // Practitioner.active is true
	holder  string   // applicant wallets: the record holding the wallet, "" for none
}

type sessionCache struct {
	mu    sync.Mutex
	epoch uint64 // bumped by every forget: a read begun before does not fill the cache
	m     map[string]sessionFacts
}

func (c *sessionCache) get(key string, now time.Time) (sessionFacts, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.m[key]
	if ok && now.Sub(f.at) < sessionTTL && !now.Before(f.at) {
		return f, c.epoch, true
	}
	return sessionFacts{}, c.epoch, false
}

func (c *sessionCache) put(key string, f sessionFacts, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return // something was written meanwhile: f may predate it
	}
	if c.m == nil {
		c.m = map[string]sessionFacts{}
	}
	if len(c.m) >= sessionCacheMax {
		for k, old := range c.m {
			if f.at.Sub(old.at) >= sessionTTL {
				delete(c.m, k)
			}
		}
		if len(c.m) >= sessionCacheMax {
			clear(c.m) // more people than the cap within sessionTTL: start over
		}
	}
	c.m[key] = f
}

// forget drops what the cache knows of keys, and makes the reads in
// flight leave their results out.
func (c *sessionCache) forget(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for _, k := range keys {
		delete(c.m, k)
	}
}

// forgetWritten is afterCommit's part: the records written (and the
// wallets they now hold, whose applicants' sessions end) are read afresh.
func (c *sessionCache) forgetWritten(ws []store.Write) {
	var keys []string
	for i := range ws {
		if w := &ws[i]; holdsIdentity(w.New.Type) {
			keys = append(keys, w.New.Type+"/"+w.New.ID)
			keys = append(keys, w.Unique...)
		}
	}
	if len(keys) > 0 {
		c.forget(keys...)
	}
}

// sessionEnded is the answer to a token that no longer stands for anyone:
// the person signs in again and gets what they are now.
func sessionEnded(reason string) error {
	return &httpError{
		status: 401,
		issue:  fhir.Issue{Severity: "error", Code: "login", Diagnostics: "Your session has ended: " + reason + ". Sign in again."},
		header: [2]string{"WWW-Authenticate", `Bearer realm="fhirgate", error="invalid_token", error_description="the session has ended; sign in again"`},
	}
}

// checkSession is the per-request check of a wallet token (see above).
// Tokens without a wallet (EHR systems, gateway token) are not checked.
func (s *Server) checkSession(ctx context.Context, p *policy.Principal) error {
	if p.Wallet == "" {
		return nil
	}
	if (p.Role == policy.RoleAdmin || p.Role == policy.RoleRegulator) && s.cfg.SIWE != nil {
		// The operator's list is configuration every replica is given
		// alike: a wallet taken off it at a restart loses its sessions.
		if s.cfg.SIWE.Operator(p.Wallet) != p.Role {
			return sessionEnded("this wallet is no longer named as " + map[policy.Role]string{policy.RoleAdmin: "an administrator", policy.RoleRegulator: "a regulator"}[p.Role])
		}
	}
	if p.Resource == "" {
		if p.Role != policy.RoleApplicant {
			return nil
		}
		// One wallet, one record, on any chain (holdWallets' unique name).
		wallet := walletName(p.Wallet)
		f, err := s.sessionFacts(ctx, wallet, func() (sessionFacts, error) {
			h, err := s.store.UniqueHolder(ctx, wallet)
			return sessionFacts{holder: h}, err
		})
		if err != nil {
			return err
		}
		if f.holder != "" {
			// Verified (or linked by the clinic): the new sign-in says as whom.
			return sessionEnded("this wallet is now linked to a record")
		}
		return nil
	}
	typ, id, _ := strings.Cut(p.Resource, "/")
	f, err := s.sessionFacts(ctx, p.Resource, func() (sessionFacts, error) { return s.recordFacts(ctx, typ, id) })
	if err != nil {
		return err
	}
	switch {
	case f.gone:
		return sessionEnded("your record was removed")
	case !slices.Contains(f.wallets, strings.ToLower(p.Wallet)):
		return sessionEnded("this wallet is no longer linked to your record")
	case typ == "Practitioner" && !f.active:
		return sessionEnded("your practitioner account was deactivated by an administrator")
	}
	return nil
}

// sessionFacts returns the cached facts under key, or reads them.
func (s *Server) sessionFacts(ctx context.Context, key string, read func() (sessionFacts, error)) (sessionFacts, error) {
	now := s.now()
	f, epoch, ok := s.sessions.get(key, now)
	if ok {
		return f, nil
	}
	f, err := read()
	if err != nil {
		return sessionFacts{}, err
	}
	f.at = now
	s.sessions.put(key, f, epoch)
	return f, nil
}

// recordFacts reads the current version of a Patient or Practitioner.
func (s *Server) recordFacts(ctx context.Context, typ, id string) (sessionFacts, error) {
	v, err := s.store.Read(ctx, typ, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && v.Deleted {
		return sessionFacts{gone: true}, nil
	}
	if err != nil {
		return sessionFacts{}, err
	}
	root, err := fhirjson.Parse(v.Body, fhir.Limits)
	if err != nil {
		return sessionFacts{}, err
	}
	// The token's CAIP-10 id as a sign-in resolved it (resolveWallet): the
	// same chain, the address in any case.
	f := sessionFacts{active: identityOf(&root).active}
	if ids := root.Get("identifier"); ids != nil && ids.Kind == fhirjson.Array {
		for i := range ids.Items {
			if ids.Items[i].GetString("system") == siwe.CAIP10System {
				f.wallets = append(f.wallets, strings.ToLower(strings.TrimSpace(ids.Items[i].GetString("value"))))
			}
		}
	}
	return f, nil
}
