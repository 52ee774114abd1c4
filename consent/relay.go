package consent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/bindings"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
)

// Relay errors. A refusal (the client's fault, nothing sent) wraps
// ErrRefused and is a *RefusedError with a machine-readable Code; a chain
// failure wraps ErrRelayUnavailable.
var (
	ErrRefused          = errors.New("consent relay: refused")
	ErrRelayUnavailable = errors.New("consent relay: chain unavailable")
	// ErrUnknownTx: Status knows nothing of the transaction.
	ErrUnknownTx = errors.New("consent relay: unknown transaction")
)

// Refusal codes (RefusedError.Code).
const (
	CodeMalformed      = "malformed"       // unreadable request
	CodeWrongChain     = "wrong-chain"     // domain names another chain id
	CodeWrongRegistry  = "wrong-registry"  // domain names another contract, name or version
	CodeBadSignature   = "bad-signature"   // not 65 bytes, v not 27/28, high s, unrecoverable
	CodeWrongSigner    = "wrong-signer"    // valid signature, but not by the patient over this message and domain
	CodeDeadline       = "deadline"        // deadline passed, or too close to be mined in time
	CodeExpiry         = "expiry"          // grant expiry not in the future
	CodeNonce          = "nonce"           // not the patient's next nonce (replay, or out of order)
	CodeZero           = "zero"            // zero patient, grantee or scope
	CodeUnknownScope   = "unknown-scope"   // scope hash is no "<Type>.<perms>" the gateway knows
	CodeUnknownGrantee = "unknown-grantee" // grantee hash is no practitioner, organization or client the gateway knows
	CodeNoSuchGrant    = "no-such-grant"   // revoke of a grant that does not exist
	CodeUnknownPatient = "unknown-patient" // the wallet belongs to no patient the gateway knows
	CodeBusy           = "busy"            // too many of the patient's transactions in flight
)

// RefusedError is a refused relay request.
type RefusedError struct {
	Code   string
	Reason string
}

func (e *RefusedError) Error() string { return "consent relay: " + e.Code + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Unwrap() error { return ErrRefused }

func refuse(code, format string, args ...any) *RefusedError {
	return &RefusedError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Default gas limits of relayed transactions: measured 76,606 for a
// patient's first grantBySig and 37,149 for revokeBySig (contracts/README.md),
// with room for other fork rules. Set explicitly: estimates race with
// transactions queued in the same block.
const (
	DefaultGrantGas  = 150_000
	DefaultRevokeGas = 100_000
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Sender sends from the gateway's key (the one Sender of that key in
	// the process).
	Sender *chain.Sender
	// Registry is the ConsentRegistry's address.
	Registry common.Address
	// Confirmations after which Status reports "confirmed" (default 1;
	// use --consent-confirmations).
	Confirmations uint64
	// KnownGrantee, if set, refuses grants whose grantee hash it does not
	// know (Follower.KnowsGrantee), so patients do not sign away to
	// nobody. Revocations are never refused for this.
	KnownGrantee func(common.Hash) bool
	// KnownPatient, if set, refuses grants from wallets it does not know
	// (Follower.KnowsWallet): the gateway pays only for its patients.
	// Revocations are never refused for this.
	KnownPatient func(common.Address) bool
	// MaxPending bounds a patient's relayed transactions in flight
	// (default 4): a wallet cannot make the gateway queue unbounded gas.
	MaxPending int
	// GrantGas and RevokeGas are the gas limits (defaults above).
	GrantGas, RevokeGas uint64
	// MinDeadline refuses signatures whose deadline is closer than this
	// (default 10s): the transaction could be mined after it and revert.
	MinDeadline time.Duration
	// DefaultDeadline is the deadline Prepare proposes (default 10 min).
	DefaultDeadline time.Duration
	// Keep is how long Status remembers finished submissions (default 1h).
	Keep   time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Relay checks and submits patients' signed grants and revocations
// (grantBySig, revokeBySig) from the gateway's key: patients need no
// ether. It is safe for concurrent use.
type Relay struct {
	cfg      RelayConfig
	s        *chain.Sender
	c        *chain.Client
	domain   consentsig.Domain
	abi      *bindings.ConsentRegistry
	contract *bind.BoundContract
	log      *slog.Logger

	mu       sync.Mutex // one check-and-send at a time (nonces)
	inflight map[common.Address]map[uint64]*submission
	byHash   map[common.Hash]*submission

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type submission struct {
	kind    string // "grant" or "revoke"
	patient common.Address
	nonce   uint64
	p       *chain.Pending

	mu      sync.Mutex
	done    bool
	state   string
	block   uint64
	errText string
	doneAt  time.Time
}

// NewRelay returns a Relay. Close stops its background waiters.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.Sender == nil || cfg.Registry == (common.Address{}) {
		return nil, fmt.Errorf("%w: relay needs a Sender and the registry address", ErrInvalid)
	}
	if cfg.Confirmations == 0 {
		cfg.Confirmations = 1
	}
	if cfg.GrantGas == 0 {
		cfg.GrantGas = DefaultGrantGas
	}
	if cfg.RevokeGas == 0 {
		cfg.RevokeGas = DefaultRevokeGas
	}
	if cfg.MinDeadline <= 0 {
		cfg.MinDeadline = 10 * time.Second
	}
	if cfg.DefaultDeadline <= 0 {
		cfg.DefaultDeadline = 10 * time.Minute
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 4
	}
	if cfg.Keep <= 0 {
		cfg.Keep = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	abi := bindings.NewConsentRegistry()
	c := cfg.Sender.Client()
	ctx, cancel := context.WithCancel(context.Background())
	return &Relay{
		cfg:      cfg,
		s:        cfg.Sender,
		c:        c,
		domain:   consentsig.Domain{ChainID: cfg.Sender.ChainID(), Registry: cfg.Registry},
		abi:      abi,
		contract: abi.Instance(c, cfg.Registry),
		log:      cfg.Logger.With("component", "consent-relay"),
		inflight: map[common.Address]map[uint64]*submission{},
		byHash:   map[common.Hash]*submission{},
		ctx:      ctx,
		cancel:   cancel,
	}, nil
}

// Close stops waiting for submitted transactions (they stay in the pool).
func (r *Relay) Close() {
	r.cancel()
	r.wg.Wait()
}

// Domain returns the EIP-712 domain patients sign for.
func (r *Relay) Domain() consentsig.Domain { return r.domain }

// Submit checks a signed grant or revocation offline (domain, fields,
// deadline, expiry, signature by the patient, known scope and grantee) and
// against the chain (the patient's next nonce; for a revocation, that the
// grant exists), then sends grantBySig or revokeBySig from the gateway's
// key with a fixed gas limit and returns the transaction hash without
// waiting for it to be mined (Status follows it). Refusals are
// *RefusedError (wrapping ErrRefused); nothing was sent.
func (r *Relay) Submit(ctx context.Context, sg Signed) (common.Hash, error) {
	var (
		kind              string
		patient           common.Address
		grantee, scope    common.Hash
		nonce, deadline   *big.Int
		sig               []byte
		claimed           *consentsig.Domain
		digest            common.Hash
		derr              error
		data              []byte
		gas               uint64
		expiry            uint64
		now               = r.cfg.Now()
		isGrant, isRevoke bool
	)
	switch v := sg.(type) {
	case SignedGrant:
		isGrant = true
		kind, patient, grantee, scope, nonce, deadline, sig, claimed = "grant", v.Patient, v.Grantee, v.Scope, v.Nonce, v.Deadline, v.Signature, v.Domain
		expiry = v.Expiry
	case *SignedGrant:
		return r.Submit(ctx, *v)
	case SignedRevoke:
		isRevoke = true
		kind, patient, grantee, scope, nonce, deadline, sig, claimed = "revoke", v.Patient, v.Grantee, v.Scope, v.Nonce, v.Deadline, v.Signature, v.Domain
	case *SignedRevoke:
		return r.Submit(ctx, *v)
	default:
		return common.Hash{}, refuse(CodeMalformed, "not a signed Grant or Revoke")
	}
	if claimed != nil {
		if claimed.ChainID != nil && claimed.ChainID.Cmp(r.domain.ChainID) != 0 {
			return common.Hash{}, refuse(CodeWrongChain, "signed for chain %s; this gateway relays to chain %s", claimed.ChainID, r.domain.ChainID)
		}
		if claimed.Registry != (common.Address{}) && claimed.Registry != r.domain.Registry {
			return common.Hash{}, refuse(CodeWrongRegistry, "signed for registry %s; this gateway relays to %s", claimed.Registry.Hex(), r.domain.Registry.Hex())
		}
	}
	if patient == (common.Address{}) || grantee == (common.Hash{}) || scope == (common.Hash{}) {
		return common.Hash{}, refuse(CodeZero, "patient, grantee and scope must not be zero")
	}
	if nonce == nil || deadline == nil || nonce.Sign() < 0 || deadline.Sign() < 0 || nonce.BitLen() > 256 || deadline.BitLen() > 256 {
		return common.Hash{}, refuse(CodeMalformed, "nonce and deadline must be uint256")
	}
	if isGrant && r.cfg.KnownPatient != nil && !r.cfg.KnownPatient(patient) {
		return common.Hash{}, refuse(CodeUnknownPatient, "wallet %s belongs to no patient of this gateway", patient.Hex())
	}
	if _, ok := ScopeName(scope); !ok {
		return common.Hash{}, refuse(CodeUnknownScope, "scope %s is not the hash of a <Type>.<perms> consent scope", scope.Hex())
	}
	if isGrant && r.cfg.KnownGrantee != nil && !r.cfg.KnownGrantee(grantee) {
		return common.Hash{}, refuse(CodeUnknownGrantee, "grantee %s is no practitioner, organization or client this gateway knows", grantee.Hex())
	}
	if deadline.IsInt64() { // larger deadlines are decades away
		switch d := deadline.Int64(); {
		case d < now.Unix():
			return common.Hash{}, refuse(CodeDeadline, "the signature's deadline has passed")
		case d < now.Add(r.cfg.MinDeadline).Unix():
			return common.Hash{}, refuse(CodeDeadline, "the signature's deadline is less than %s away; sign again with a later deadline", r.cfg.MinDeadline)
		}
	}
	if isGrant && expiry <= uint64(now.Unix())+1 {
		return common.Hash{}, refuse(CodeExpiry, "the grant's expiry must be in the future")
	}
	if isGrant {
		g := consentsig.Grant{Patient: patient, Grantee: grantee, Scope: scope, Expiry: expiry, Nonce: nonce, Deadline: deadline}
		digest, derr = g.Digest(r.domain)
		data, gas = r.abi.PackGrantBySig(patient, grantee, scope, expiry, deadline, sig), r.cfg.GrantGas
	} else {
		rv := consentsig.Revoke{Patient: patient, Grantee: grantee, Scope: scope, Nonce: nonce, Deadline: deadline}
		digest, derr = rv.Digest(r.domain)
		data, gas = r.abi.PackRevokeBySig(patient, grantee, scope, deadline, sig), r.cfg.RevokeGas
	}
	if derr != nil {
		return common.Hash{}, refuse(CodeMalformed, "cannot hash the message")
	}
	if err := consentsig.Verify(digest, sig, patient); err != nil {
		if errors.Is(err, consentsig.ErrWrongSigner) {
			return common.Hash{}, refuse(CodeWrongSigner, "the signature is not the patient's over this message for chain %s and registry %s (altered field, another chain or registry, or a stale nonce)", r.domain.ChainID, r.domain.Registry.Hex())
		}
		return common.Hash{}, refuse(CodeBadSignature, "%s", strings.TrimPrefix(err.Error(), "consentsig: "))
	}
	if !nonce.IsUint64() {
		return common.Hash{}, refuse(CodeNonce, "nonce too large")
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	onChain, err := r.chainNonce(ctx, patient)
	if err != nil {
		return common.Hash{}, err
	}
	n := nonce.Uint64()
	if n < onChain {
		return common.Hash{}, refuse(CodeNonce, "nonce %d was already used (the patient's next nonce is %d): a replay", n, onChain)
	}
	if sub := r.inflight[patient][n]; sub != nil {
		return common.Hash{}, refuse(CodeNonce, "nonce %d was already submitted in %s", n, sub.p.Hash().Hex())
	}
	pending := r.pendingLocked(patient, onChain)
	if pending >= r.cfg.MaxPending {
		return common.Hash{}, refuse(CodeBusy, "%d of the patient's transactions are still in flight; retry when they are mined", pending)
	}
	if want := r.nextNonceLocked(patient, onChain); n != want {
		return common.Hash{}, refuse(CodeNonce, "nonce %d is not the patient's next nonce %d", n, want)
	}
	if isRevoke && pending == 0 {
		exp, err := bind.Call(r.contract, &bind.CallOpts{Context: ctx}, r.abi.PackExpiryOf(patient, grantee, scope), r.abi.UnpackExpiryOf)
		if err != nil {
			return common.Hash{}, fmt.Errorf("%w: reading the grant: %v", ErrRelayUnavailable, err)
		}
		if exp == 0 {
			return common.Hash{}, refuse(CodeNoSuchGrant, "there is no such grant to revoke")
		}
	}
	to := r.cfg.Registry
	p, err := r.s.Send(ctx, chain.TxRequest{To: &to, Data: data, Gas: gas})
	if err != nil {
		return common.Hash{}, fmt.Errorf("%w: %v", ErrRelayUnavailable, err)
	}
	sub := &submission{kind: kind, patient: patient, nonce: n, p: p, state: "pending"}
	if r.inflight[patient] == nil {
		r.inflight[patient] = map[uint64]*submission{}
	}
	r.inflight[patient][n] = sub
	r.byHash[p.Hash()] = sub
	r.gcLocked()
	r.wg.Add(1)
	go r.wait(sub)
	r.log.Info("consent: relayed", "kind", kind, "tx", p.Hash())
	return p.Hash(), nil
}

// SignerOf returns the patient wallet that signed s (the message's
// patient field): the HTTP handler may require it to be the signed-in
// patient's wallet.
func SignerOf(s Signed) common.Address {
	switch v := s.(type) {
	case SignedGrant:
		return v.Patient
	case *SignedGrant:
		return v.Patient
	case SignedRevoke:
		return v.Patient
	case *SignedRevoke:
		return v.Patient
	}
	return common.Address{}
}

// chainNonce reads nonces(patient) at the latest block.
func (r *Relay) chainNonce(ctx context.Context, patient common.Address) (uint64, error) {
	n, err := bind.Call(r.contract, &bind.CallOpts{Context: ctx}, r.abi.PackNonces(patient), r.abi.UnpackNonces)
	if err != nil {
		return 0, fmt.Errorf("%w: reading the patient's nonce: %v", ErrRelayUnavailable, err)
	}
	if !n.IsUint64() {
		return 0, fmt.Errorf("%w: nonce out of range", ErrRelayUnavailable)
	}
	return n.Uint64(), nil
}

// nextNonceLocked is the nonce the patient's next signature must carry:
// the on-chain nonce, past the relay's own submissions still in flight.
func (r *Relay) nextNonceLocked(patient common.Address, onChain uint64) uint64 {
	n := onChain
	for r.inflight[patient][n] != nil {
		n++
	}
	return n
}

// pendingLocked counts the patient's relayed transactions not yet mined
// (nonces at or past the on-chain nonce).
func (r *Relay) pendingLocked(patient common.Address, onChain uint64) int {
	n := 0
	for nonce := range r.inflight[patient] {
		if nonce >= onChain {
			n++
		}
	}
	return n
}

// wait follows a submission to its end: confirmed, failed, or dropped.
func (r *Relay) wait(sub *submission) {
	defer r.wg.Done()
	var (
		rcpt *types.Receipt
		err  error
	)
	for tries := 0; ; tries++ {
		rcpt, err = r.s.Wait(r.ctx, sub.p)
		var re *chain.ReorgError
		if !errors.As(err, &re) || tries >= 8 {
			break
		}
		// Reorged out: it normally returns to the pool; make sure.
		if serr := r.c.SendTransaction(r.ctx, sub.p.Tx()); serr != nil {
			r.log.Debug("consent: rebroadcast after reorg", "tx", re.TxHash, "err", serr)
		}
	}
	if r.ctx.Err() != nil {
		return // closing: the outcome is unknown, Status asks the chain
	}
	sub.mu.Lock()
	sub.done, sub.doneAt = true, r.cfg.Now()
	switch {
	case err == nil:
		sub.state, sub.block = "confirmed", rcpt.BlockNumber.Uint64()
	case errors.Is(err, chain.ErrReverted):
		sub.state, sub.errText = "failed", "the registry rejected the transaction"
		if rcpt != nil {
			sub.block = rcpt.BlockNumber.Uint64()
		}
	default:
		sub.state, sub.errText = "failed", "not mined: "+err.Error()
	}
	sub.mu.Unlock()
	r.mu.Lock()
	if m := r.inflight[sub.patient]; m[sub.nonce] == sub {
		delete(m, sub.nonce)
		if len(m) == 0 {
			delete(r.inflight, sub.patient)
		}
	}
	for _, h := range sub.p.Hashes() {
		r.byHash[h] = sub
	}
	r.mu.Unlock()
}

// gcLocked forgets finished submissions older than Keep.
func (r *Relay) gcLocked() {
	cut := r.cfg.Now().Add(-r.cfg.Keep)
	for h, sub := range r.byHash {
		sub.mu.Lock()
		old := sub.done && sub.doneAt.Before(cut)
		sub.mu.Unlock()
		if old {
			delete(r.byHash, h)
		}
	}
}

// TxStatus is the state of a relayed transaction, for the portal
// (GET /consent/relay/{txHash}).
type TxStatus struct {
	// TxHash is the transaction's current hash (a fee bump replaces it;
	// TxHashes lists every version).
	TxHash   common.Hash   `json:"txHash"`
	TxHashes []common.Hash `json:"txHashes,omitempty"`
	Kind     string        `json:"kind,omitempty"` // "grant" or "revoke"
	// State: "pending" (sent, not mined), "mined" (in a block, fewer than
	// the configured confirmations), "confirmed" (in force for the
	// gateway's follower), "failed" (reverted or never mined: Error says
	// which).
	State         string `json:"state"`
	Block         uint64 `json:"block,omitempty"`
	Confirmations uint64 `json:"confirmations,omitempty"`
	Error         string `json:"error,omitempty"`
}

// Status reports a transaction the relay sent (by any of its hashes), or
// any transaction the node knows. ErrUnknownTx if neither.
func (r *Relay) Status(ctx context.Context, h common.Hash) (TxStatus, error) {
	r.mu.Lock()
	sub := r.byHash[h]
	if sub == nil {
		for _, m := range r.inflight {
			for _, s := range m {
				for _, x := range s.p.Hashes() {
					if x == h {
						sub = s
					}
				}
			}
		}
	}
	r.mu.Unlock()
	hashes := []common.Hash{h}
	st := TxStatus{TxHash: h, State: "pending"}
	if sub != nil {
		hashes = sub.p.Hashes()
		st.TxHash, st.Kind = sub.p.Hash(), sub.kind
		if len(hashes) > 1 {
			st.TxHashes = hashes
		}
		sub.mu.Lock()
		done, state, block, errText := sub.done, sub.state, sub.block, sub.errText
		sub.mu.Unlock()
		if done && state == "failed" && block == 0 {
			st.State, st.Error = state, errText
			return st, nil
		}
	}
	rc, err := chain.FindReceipt(ctx, r.c, hashes)
	if err != nil {
		return TxStatus{}, fmt.Errorf("%w: %v", ErrRelayUnavailable, err)
	}
	if rc != nil {
		head, err := r.c.BlockNumber(ctx)
		if err != nil {
			return TxStatus{}, fmt.Errorf("%w: %v", ErrRelayUnavailable, err)
		}
		st.TxHash, st.Block = rc.TxHash, rc.BlockNumber.Uint64()
		if head >= st.Block {
			st.Confirmations = head - st.Block + 1
		}
		switch {
		case rc.Status != types.ReceiptStatusSuccessful:
			st.State, st.Error = "failed", "the registry rejected the transaction"
		case st.Confirmations >= r.cfg.Confirmations:
			st.State = "confirmed"
		default:
			st.State = "mined"
		}
		return st, nil
	}
	if sub != nil {
		return st, nil
	}
	if _, _, err := r.c.TransactionByHash(ctx, h); err == nil {
		return st, nil
	} else if !errors.Is(err, ethereum.NotFound) {
		return TxStatus{}, fmt.Errorf("%w: %v", ErrRelayUnavailable, err)
	}
	return TxStatus{}, fmt.Errorf("%w: %s", ErrUnknownTx, h.Hex())
}

// PrepareRequest asks for the typed data a patient's wallet should sign
// (GET or POST /consent/relay/prepare in the portal). Grantee and Scope
// are readable ("Practitioner/123", "DiagnosticReport.rs").
type PrepareRequest struct {
	PrimaryType string `json:"primaryType"` // "Grant" or "Revoke"
	Patient     string `json:"patient"`     // wallet address, 0x…
	Grantee     string `json:"grantee"`
	Scope       string `json:"scope"`
	// Expiry (grants): unix seconds; "" or "until-revoked" for
	// type(uint64).max.
	Expiry string `json:"expiry,omitempty"`
	// Deadline: unix seconds; "" for now + DefaultDeadline.
	Deadline string `json:"deadline,omitempty"`
}

// Prepare returns the EIP-712 typed data for eth_signTypedData_v4, with
// the patient's next nonce (counting the relay's own submissions in
// flight). POST it back to Submit with the signature added.
func (r *Relay) Prepare(ctx context.Context, req PrepareRequest) (apitypes.TypedData, error) {
	patient, err := parseAddress(req.Patient)
	if err != nil {
		return apitypes.TypedData{}, refuse(CodeMalformed, "patient: %v", err)
	}
	if err := ValidGrantee(req.Grantee); err != nil {
		return apitypes.TypedData{}, refuse(CodeMalformed, "%s", strings.TrimPrefix(err.Error(), "consent: "))
	}
	if _, _, err := parseScopeName(req.Scope); err != nil {
		return apitypes.TypedData{}, refuse(CodeUnknownScope, "%v", err)
	}
	now := r.cfg.Now()
	deadline := big.NewInt(now.Add(r.cfg.DefaultDeadline).Unix())
	if req.Deadline != "" {
		d, err := strconv.ParseUint(req.Deadline, 10, 63)
		if err != nil {
			return apitypes.TypedData{}, refuse(CodeMalformed, "deadline: want unix seconds")
		}
		deadline = new(big.Int).SetUint64(d)
	}
	r.mu.Lock()
	onChain, err := r.chainNonce(ctx, patient)
	var next uint64
	if err == nil {
		next = r.nextNonceLocked(patient, onChain)
	}
	r.mu.Unlock()
	if err != nil {
		return apitypes.TypedData{}, err
	}
	nonce := new(big.Int).SetUint64(next)
	g, s := consentsig.Grantee(req.Grantee), consentsig.Scope(req.Scope)
	switch req.PrimaryType {
	case "Grant":
		exp := uint64(1<<64 - 1)
		if req.Expiry != "" && req.Expiry != "until-revoked" {
			if exp, err = strconv.ParseUint(req.Expiry, 10, 64); err != nil {
				return apitypes.TypedData{}, refuse(CodeMalformed, "expiry: want unix seconds")
			}
		}
		return consentsig.Grant{Patient: patient, Grantee: g, Scope: s, Expiry: exp, Nonce: nonce, Deadline: deadline}.TypedData(r.domain), nil
	case "Revoke":
		return consentsig.Revoke{Patient: patient, Grantee: g, Scope: s, Nonce: nonce, Deadline: deadline}.TypedData(r.domain), nil
	}
	return apitypes.TypedData{}, refuse(CodeMalformed, "primaryType must be Grant or Revoke")
}

// parseScopeName checks a readable consent scope against the scope table.
func parseScopeName(s string) (string, string, error) {
	h := consentsig.Scope(s)
	name, ok := ScopeName(h)
	if !ok || name != s {
		return "", "", fmt.Errorf("scope %q: want <Type>.<perms> with an R4 type or *, and SMART v2 permissions in the order cruds", s)
	}
	typ, perms, _ := strings.Cut(s, ".")
	return typ, perms, nil
}
