package rest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/auth/smart"
	"github.com/fhirgate/fhirgate/chain/ethsig"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// Sign-in routes: Sign-In With Ethereum for people, SMART Backend Services
// for EHR systems. They answer JSON (OAuth errors on the token endpoint,
// as clients expect; OperationOutcomes on the SIWE routes).

func (s *Server) authRoutes() {
	if s.cfg.SIWE != nil {
		s.app.Get("/auth/siwe/nonce", s.siweNonce)
		s.app.Post("/auth/siwe", s.siweLogin)
	}
	// Discovery is public and always served, at the root (as before) and
	// below the FHIR base, where SMART clients look ([base]/.well-known):
	// registered before the /fhir group's authentication, so it needs no
	// token. Without a client registry it says what is not offered, and
	// the token endpoint answers so, rather than 404.
	s.app.Get("/.well-known/smart-configuration", s.smartConfiguration)
	s.app.Get("/fhir/.well-known/smart-configuration", s.smartConfiguration)
	s.app.Post(smart.TokenPath, s.smartToken)
}

// tokenURL is the token endpoint's URL: beside the FHIR base (as
// cmd/gateway configures the SMART server).
func (s *Server) tokenURL(c *fiber.Ctx) string {
	if s.cfg.SMART != nil {
		return s.cfg.SMART.Configuration().TokenEndpoint
	}
	return smart.TokenEndpoint(s.rootURL(c))
}

// rootURL is the gateway's URL without the FHIR base's /fhir: where the
// sign-in routes are.
func (s *Server) rootURL(c *fiber.Ctx) string { return strings.TrimSuffix(s.base(c), "/fhir") }

func (s *Server) siweNonce(c *fiber.Ctx) error {
	n, err := s.cfg.SIWE.NewNonce(c.UserContext(), s.now())
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(n)
}

func (s *Server) siweLogin(c *fiber.Ctx) error {
	var req struct {
		Message   string `json:"message"`
		Signature string `json:"signature"`
	}
	if err := c.BodyParser(&req); err != nil || req.Message == "" || req.Signature == "" {
		return errorf(fiber.StatusBadRequest, "invalid", `send {"message": "<EIP-4361 message>", "signature": "0x..."} as JSON`)
	}
	res, err := s.cfg.SIWE.Login(c.UserContext(), req.Message, req.Signature, s.now())
	switch {
	case errors.Is(err, siwe.ErrInvalidMessage):
		return errorf(fiber.StatusBadRequest, "invalid", err.Error())
	case err != nil:
		return err // 401 for a failed sign-in, 403 for a wallet refused (a practitioner not verified)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(res)
}

// smartConfiguration is GET [base]/.well-known/smart-configuration.
func (s *Server) smartConfiguration(c *fiber.Ctx) error {
	var doc smart.Configuration
	if s.cfg.SMART != nil {
		doc = s.cfg.SMART.Configuration()
	} else {
		doc = smart.NotOffered(s.tokenURL(c))
	}
	if s.cfg.SIWE != nil {
		r := s.cfg.SIWE.Rules()
		scopes := map[string]string{}
		for role, sc := range r.Scopes {
			scopes[string(role)] = sc
		}
		root := s.rootURL(c)
		doc.SignInWithEthereum = &smart.WalletSignIn{
			NonceEndpoint:  root + "/auth/siwe/nonce",
			SignInEndpoint: root + "/auth/siwe",
			Domain:         r.Domain,
			URIOrigin:      r.Origin,
			ChainID:        r.ChainID,
			NonceLifetime:  int64(r.NonceTTL / time.Second),
			MessageMaxAge:  int64(r.MaxAge / time.Second),
			ClockSkew:      int64(r.Skew / time.Second),
			TokenLifetime:  int64(r.TokenTTL / time.Second),
			Scopes:         scopes,
			Specification:  "https://eips.ethereum.org/EIPS/eip-4361",
		}
	}
	return c.JSON(doc)
}

// smartToken is the OAuth token endpoint: client_credentials with a
// private_key_jwt assertion, answered as RFC 6749 says.
func (s *Server) smartToken(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	if s.cfg.SMART == nil {
		return c.Status(smart.ErrNotOffered.Status()).JSON(smart.ErrNotOffered)
	}
	if mt := strings.TrimSpace(strings.SplitN(c.Get(fiber.HeaderContentType), ";", 2)[0]); mt != fiber.MIMEApplicationForm {
		return c.Status(http.StatusBadRequest).JSON(fiber.Map{"error": "invalid_request", "error_description": "the token request must be application/x-www-form-urlencoded"})
	}
	form, err := parseForm(c.Body())
	if err != nil {
		return c.Status(http.StatusBadRequest).JSON(fiber.Map{"error": "invalid_request", "error_description": "malformed form body"})
	}
	res, err := s.cfg.SMART.Exchange(c.UserContext(), form, s.now())
	var oe *smart.Error
	switch {
	case errors.As(err, &oe):
		if oe.Status() == http.StatusUnauthorized {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="fhirgate"`)
		}
		return c.Status(oe.Status()).JSON(oe)
	case err != nil:
		s.log.ErrorContext(c.UserContext(), "token endpoint failed", "err", err)
		return c.Status(http.StatusServiceUnavailable).JSON(fiber.Map{"error": "temporarily_unavailable"})
	}
	return c.JSON(res)
}

// WalletResolver finds the Patient or Practitioner a wallet is linked to,
// by the CAIP-10 identifier {system CAIP10System, value
// "eip155:<chainId>:<address>"}, whatever the case of the stored address.
// A wallet linked to both is a practitioner's (their own patient record
// remains theirs through their patient sign-in with another wallet).
func WalletResolver(st *store.Store) siwe.Resolver {
	return func(ctx context.Context, chainID uint64, address string) (siwe.Link, error) {
		return resolveWallet(ctx, st, chainID, address)
	}
}

func resolveWallet(ctx context.Context, st *store.Store, chainID uint64, address string) (siwe.Link, error) {
	addr, err := ethsig.ParseAddress(address)
	if err != nil {
		return siwe.Link{}, err
	}
	// EIP-55, lower and upper case: the forms a wallet address is written in.
	values := []string{
		siwe.AccountID(chainID, addr.Hex()),
		siwe.AccountID(chainID, strings.ToLower(addr.Hex())),
		siwe.AccountID(chainID, "0x"+strings.ToUpper(addr.Hex()[2:])),
	}
	var found []string
	for _, typ := range []string{"Practitioner", "Patient"} {
		var cl store.Clause
		for _, v := range values {
			cl.Preds = append(cl.Preds, store.Pred{Op: store.OpTokenSystemCode, Param: "identifier", System: siwe.CAIP10System, Code: v})
		}
		page, err := st.Search(ctx, &store.Query{Type: typ, Clauses: []store.Clause{cl}, Count: 2})
		if err != nil {
			return siwe.Link{}, err
		}
		for _, id := range page.IDs {
			found = append(found, typ+"/"+id)
		}
	}
	switch len(found) {
	case 0:
		return siwe.Link{}, siwe.ErrNotLinked
	case 1:
	default:
		// Linked before wallets were unique (the gateway refuses a second
		// link since): nobody can tell whom the wallet speaks for.
		return siwe.Link{}, ErrAmbiguousWallet
	}
	if typ, id, _ := strings.Cut(found[0], "/"); typ == "Practitioner" {
		if err := verified(ctx, st, id); err != nil {
			return siwe.Link{}, err
		}
	}
	return siwe.Link{Resource: found[0]}, nil
}

// ErrAmbiguousWallet refuses the sign-in of a wallet that several records
// name.
var ErrAmbiguousWallet = fmt.Errorf("%w: this wallet is linked to more than one record; an administrator must remove the extra links before it can sign in", policy.ErrDenied)

// ErrNotVerified refuses the sign-in of a practitioner whose record an
// administrator has not marked active: registering a wallet is not
// enough to act as a doctor.
var ErrNotVerified = fmt.Errorf("%w: the practitioner account of this wallet is not active: an administrator has not verified it yet, or has deactivated it", policy.ErrDenied)

func verified(ctx context.Context, st *store.Store, id string) error {
	v, err := st.Read(ctx, "Practitioner", id)
	if err != nil {
		return err
	}
	if v.Deleted {
		return siwe.ErrNotLinked
	}
	root, err := fhirjson.Parse(v.Body, fhir.Limits)
	if err != nil {
		return err
	}
	if a := root.Get("active"); a == nil || a.Kind != fhirjson.Bool || a.Str != "true" {
		return ErrNotVerified
	}
	return nil
}

func parseForm(b []byte) (url.Values, error) { return url.ParseQuery(string(b)) }

// Identity fields (docs/security.md): the wallet identifiers of a Patient
// or Practitioner, which make a wallet speak for the record, and the
// active flag of a Practitioner linked to a wallet, which an
// administrator sets when verifying them. Only administrators and
// identity-linking system clients change them.

// identity is what a Patient or Practitioner version says of who signs in
// as it.
type identity struct {
	wallets []string // unique names, "wallet:" + lower-case address, sorted
	active  bool     // Practitioner.active = true
}

// holdsIdentity: the types whose records wallets link to.
func holdsIdentity(typ string) bool { return typ == "Patient" || typ == "Practitioner" }

// walletName is the unique name of a wallet identifier value: the address
// (the same key on every chain), or the whole value when it is not a
// CAIP-10 account id.
func walletName(value string) string {
	v := strings.ToLower(strings.TrimSpace(value))
	if rest, ok := strings.CutPrefix(v, "eip155:"); ok {
		if _, addr, ok := strings.Cut(rest, ":"); ok {
			v = addr
		}
	}
	return "wallet:" + v
}

func identityOf(root *fhirjson.Value) identity {
	var id identity
	if ids := root.Get("identifier"); ids != nil && ids.Kind == fhirjson.Array {
		for i := range ids.Items {
			if ids.Items[i].GetString("system") == siwe.CAIP10System {
				id.wallets = append(id.wallets, walletName(ids.Items[i].GetString("value")))
			}
		}
	}
	slices.Sort(id.wallets)
	id.wallets = slices.Compact(id.wallets)
	if a := root.Get("active"); a != nil && a.Kind == fhirjson.Bool && a.Str == "true" {
		id.active = true
	}
	return id
}

// withoutIdentity is root without its identity fields and meta: two
// versions equal this way differ only in who signs in as them.
func withoutIdentity(typ string, root fhirjson.Value) fhirjson.Value {
	v := root.Clone()
	v.Delete("meta")
	if typ == "Practitioner" {
		v.Delete("active")
	}
	if ids := v.Get("identifier"); ids != nil && ids.Kind == fhirjson.Array {
		kept := ids.Items[:0]
		for _, it := range ids.Items {
			if it.GetString("system") != siwe.CAIP10System {
				kept = append(kept, it)
			}
		}
		ids.Items = kept
		if len(kept) == 0 {
			v.Delete("identifier")
		}
	}
	return v
}

// identityChange says whether a write changes identity fields and whether
// it changes nothing else.
type identityChange struct{ change, only bool }

// identityDiff compares the identity fields of prev (nil: none) and the
// version w makes.
func (s *Server) identityDiff(c *fiber.Ctx, prev *store.Version, w *store.Write) (identityChange, error) {
	typ := w.New.Type
	if !holdsIdentity(typ) {
		return identityChange{}, nil
	}
	live := prev != nil && !prev.Deleted
	if !live {
		// A creation changes identity fields exactly when it links a
		// wallet (newVersion put them in w.Unique); no parse needed.
		return identityChange{change: len(w.Unique) > 0}, nil
	}
	if prev.Holds == store.HoldsNone && len(w.Unique) == 0 {
		// Neither version links a wallet (the store knows it of the
		// previous one), so no identity field changes (a Practitioner's
		// active flag is one only when a wallet is linked): no read of
		// the previous body, no parse of either.
		return identityChange{}, nil
	}
	body := prev.Body
	if body == nil {
		v, err := s.store.Version(c.UserContext(), prev.Type, prev.ID, prev.VID)
		if err != nil {
			return identityChange{}, err
		}
		body = v.Body
	}
	before, err := fhirjson.Parse(body, fhir.Limits)
	if err != nil {
		return identityChange{}, err
	}
	old := identityOf(&before)
	var after fhirjson.Value
	var next identity
	if !w.New.Deleted {
		if after, err = fhirjson.Parse(w.New.Body, fhir.Limits); err != nil {
			return identityChange{}, err
		}
		next = identityOf(&after)
	}
	linked := len(old.wallets) > 0 || len(next.wallets) > 0
	change := !slices.Equal(old.wallets, next.wallets) || (typ == "Practitioner" && linked && old.active != next.active)
	if !change {
		return identityChange{}, nil
	}
	only := false
	if !w.New.Deleted {
		a, b := withoutIdentity(typ, before), withoutIdentity(typ, after)
		only = fhirjson.Equal(&a, &b)
	}
	return identityChange{change: true, only: only}, nil
}

// WalletNames returns the unique names of the wallets a Patient or
// Practitioner body links (none for other types): what its record holds
// in the store (gateway reindex holds them for records written before).
func WalletNames(typ string, body []byte) ([]string, error) {
	if !holdsIdentity(typ) || body == nil {
		return nil, nil
	}
	root, err := fhirjson.Parse(body, fhir.Limits)
	if err != nil {
		return nil, err
	}
	return identityOf(&root).wallets, nil
}

// holdWallets makes w hold the wallets of its version (none once
// deleted), so that one wallet is linked to one record across Patient and
// Practitioner.
func holdWallets(w *store.Write, root *fhirjson.Value) {
	if !holdsIdentity(w.New.Type) {
		return
	}
	w.HoldsUnique = true
	if root != nil && !w.New.Deleted {
		w.Unique = identityOf(root).wallets
	}
}

// WalletIdentifiers returns the wallet identifier values (CAIP-10,
// "eip155:<chainId>:<address>") a stored Patient or Practitioner body
// lists, as written. Stored bodies are canonical JSON, which writes the
// system's URI as is, so a body without it has none (no parse).
func WalletIdentifiers(body []byte) []string {
	if !bytes.Contains(body, []byte(siwe.CAIP10System)) {
		return nil
	}
	root, err := fhirjson.Parse(body, fhir.Limits)
	if err != nil {
		return nil
	}
	var out []string
	if ids := root.Get("identifier"); ids != nil {
		for i := range ids.Items {
			if ids.Items[i].GetString("system") == siwe.CAIP10System {
				if v := ids.Items[i].GetString("value"); v != "" {
					out = append(out, v)
				}
			}
		}
	}
	return out
}
