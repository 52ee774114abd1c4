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

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/bindings"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/store"
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
	// the process). With several replicas, give it a chain/outbox Gate
	// over Lease: then only the lease's holder ever sends.
	Sender *chain.Sender
	// Registry is the ConsentRegistry's address.
	Registry common.Address
	// Engine keeps the relayed requests, their transactions and their
	// outcomes, shared by every replica: any replica accepts a request and
	// answers its status and the patient's next nonce.
	Engine store.Engine
	// Lease is the right to send the gateway's transactions (the same one
	// the anchor Log holds, and the Sender's Gate checks): only its holder
	// sends queued requests and follows them to their end. The caller
	// keeps it (Lease.Keep). Nil: the Relay takes a lease of its own and
	// keeps it (one process).
	Lease *store.Lease
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
	// MaxPending bounds a patient's relayed transactions in flight, on
	// all replicas together (default 4): a wallet cannot make the gateway
	// queue unbounded gas.
	MaxPending int
	// GrantGas and RevokeGas are the gas limits (defaults above).
	GrantGas, RevokeGas uint64
	// MinDeadline refuses signatures whose deadline is closer than this
	// (default 10s): the transaction could be mined after it and revert.
	MinDeadline time.Duration
	// DefaultDeadline is the deadline Prepare proposes (default 10 min).
	DefaultDeadline time.Duration
	// Keep is how long Status remembers finished submissions (default 1h).
	Keep time.Duration
	// PollInterval: how often the sender looks for requests accepted by
	// other replicas and for its transactions' outcomes (default 200ms).
	PollInterval time.Duration
	// AnswerWait: how long Submit waits for the request's transaction to
	// be sent (by this replica or the lease holder) before it answers
	// with the request id and state "queued" (default 3s).
	AnswerWait time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
}

// Relay checks patients' signed grants and revocations (grantBySig,
// revokeBySig) on any replica, queues them in the store, and has the
// holder of the sending lease submit them from the gateway's key:
// patients need no ether. It is safe for concurrent use.
type Relay struct {
	cfg      RelayConfig
	s        *chain.Sender
	c        *chain.Client
	e        store.Engine
	lease    *store.Lease
	ownLease bool
	domain   consentsig.Domain
	abi      *bindings.ConsentRegistry
	contract *bind.BoundContract
	log      *slog.Logger

	wake chan struct{}

	dmu     sync.Mutex // guards drivers
	drivers map[string]context.CancelFunc
	lastGC  time.Time // sender loop only
	lastErr string    // the last send failure logged (sender loop only)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewRelay returns a Relay and starts its sender loop. Close stops it.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.Sender == nil || cfg.Registry == (common.Address{}) || cfg.Engine == nil {
		return nil, fmt.Errorf("%w: relay needs a Sender, the registry address and a store engine", ErrInvalid)
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
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.AnswerWait <= 0 {
		cfg.AnswerWait = 3 * time.Second
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
	r := &Relay{
		cfg:      cfg,
		s:        cfg.Sender,
		c:        c,
		e:        cfg.Engine,
		lease:    cfg.Lease,
		domain:   consentsig.Domain{ChainID: cfg.Sender.ChainID(), Registry: cfg.Registry},
		abi:      abi,
		contract: abi.Instance(c, cfg.Registry),
		log:      cfg.Logger.With("component", "consent-relay"),
		wake:     make(chan struct{}, 1),
		drivers:  map[string]context.CancelFunc{},
		ctx:      ctx,
		cancel:   cancel,
	}
	if r.lease == nil {
		r.lease, r.ownLease = store.NewLease(cfg.Engine, "sender", store.NewHolderID("relay-"), store.LeaseOptions{}), true
		if _, err := r.lease.Acquire(ctx); err != nil {
			cancel()
			return nil, err
		}
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.lease.Keep(ctx, nil) }()
	}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// Close stops sending and following transactions (those sent stay in the
// pool; the next holder of the lease follows them).
func (r *Relay) Close() {
	r.cancel()
	r.wg.Wait()
}

// Domain returns the EIP-712 domain patients sign for.
func (r *Relay) Domain() consentsig.Domain { return r.domain }

// Accepted is the answer to an accepted request.
type Accepted struct {
	// RequestID names the request on every replica (the EIP-712 digest
	// of the signed message): Status answers it as it answers TxHash.
	RequestID common.Hash
	// TxHash is the transaction's hash once sent (zero while queued).
	TxHash common.Hash
	// State: "pending" (sent) or "queued" (accepted, to be sent by the
	// replica holding the sending lease).
	State string
}

// Submit checks a signed grant or revocation offline (domain, fields,
// deadline, expiry, signature by the patient, known scope and grantee) and
// against the chain and the store (the patient's next nonce counting the
// requests in flight on every replica; for a revocation, that the grant
// exists), then queues it in the store. The holder of the sending lease
// (this replica or another) sends grantBySig or revokeBySig from the
// gateway's key with a fixed gas limit; Submit waits up to AnswerWait
// for that and returns the transaction hash without waiting for it to be
// mined (Status follows it), or the request id, state "queued". Refusals
// are *RefusedError (wrapping ErrRefused); nothing was queued.
func (r *Relay) Submit(ctx context.Context, sg Signed) (Accepted, error) {
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
		if v == nil {
			return Accepted{}, refuse(CodeMalformed, "not a signed Grant or Revoke")
		}
		return r.Submit(ctx, *v)
	case SignedRevoke:
		isRevoke = true
		kind, patient, grantee, scope, nonce, deadline, sig, claimed = "revoke", v.Patient, v.Grantee, v.Scope, v.Nonce, v.Deadline, v.Signature, v.Domain
	case *SignedRevoke:
		if v == nil {
			return Accepted{}, refuse(CodeMalformed, "not a signed Grant or Revoke")
		}
		return r.Submit(ctx, *v)
	default:
		return Accepted{}, refuse(CodeMalformed, "not a signed Grant or Revoke")
	}
	if claimed != nil {
		if claimed.ChainID != nil && claimed.ChainID.Cmp(r.domain.ChainID) != 0 {
			return Accepted{}, refuse(CodeWrongChain, "signed for chain %s; this gateway relays to chain %s", claimed.ChainID, r.domain.ChainID)
		}
		if claimed.Registry != (common.Address{}) && claimed.Registry != r.domain.Registry {
			return Accepted{}, refuse(CodeWrongRegistry, "signed for registry %s; this gateway relays to %s", claimed.Registry.Hex(), r.domain.Registry.Hex())
		}
	}
	if patient == (common.Address{}) || grantee == (common.Hash{}) || scope == (common.Hash{}) {
		return Accepted{}, refuse(CodeZero, "patient, grantee and scope must not be zero")
	}
	if nonce == nil || deadline == nil || nonce.Sign() < 0 || deadline.Sign() < 0 || nonce.BitLen() > 256 || deadline.BitLen() > 256 {
		return Accepted{}, refuse(CodeMalformed, "nonce and deadline must be uint256")
	}
	if isGrant && r.cfg.KnownPatient != nil && !r.cfg.KnownPatient(patient) {
		return Accepted{}, refuse(CodeUnknownPatient, "wallet %s belongs to no patient of this gateway", patient.Hex())
	}
	if _, ok := ScopeName(scope); !ok {
		return Accepted{}, refuse(CodeUnknownScope, "scope %s is not the hash of a <Type>.<perms> consent scope", scope.Hex())
	}
	if isGrant && r.cfg.KnownGrantee != nil && !r.cfg.KnownGrantee(grantee) {
		return Accepted{}, refuse(CodeUnknownGrantee, "grantee %s is no practitioner, organization or client this gateway knows", grantee.Hex())
	}
	if deadline.IsInt64() { // larger deadlines are decades away
		switch d := deadline.Int64(); {
		case d < now.Unix():
			return Accepted{}, refuse(CodeDeadline, "the signature's deadline has passed")
		case d < now.Add(r.cfg.MinDeadline).Unix():
			return Accepted{}, refuse(CodeDeadline, "the signature's deadline is less than %s away; sign again with a later deadline", r.cfg.MinDeadline)
		}
	}
	if isGrant && expiry <= uint64(now.Unix())+1 {
		return Accepted{}, refuse(CodeExpiry, "the grant's expiry must be in the future")
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
		return Accepted{}, refuse(CodeMalformed, "cannot hash the message")
	}
	if err := consentsig.Verify(digest, sig, patient); err != nil {
		if errors.Is(err, consentsig.ErrWrongSigner) {
			return Accepted{}, refuse(CodeWrongSigner, "the signature is not the patient's over this message for chain %s and registry %s (altered field, another chain or registry, or a stale nonce)", r.domain.ChainID, r.domain.Registry.Hex())
		}
		return Accepted{}, refuse(CodeBadSignature, "%s", strings.TrimPrefix(err.Error(), "consentsig: "))
	}
	if !nonce.IsUint64() {
		return Accepted{}, refuse(CodeNonce, "nonce too large")
	}

	var deadlineU uint64 = 1<<64 - 1
	if deadline.IsUint64() {
		deadlineU = deadline.Uint64()
	}
	rec := &relayRecord{ID: digest, Kind: kind, Patient: patient, Nonce: nonce.Uint64(), Data: data, Gas: gas,
		Deadline: deadlineU, State: stateQueued, Accepted: now.UTC()}
	if isRevoke {
		rec.Grantee, rec.Scope = grantee, scope
	}
	if err := r.enqueue(ctx, rec); err != nil {
		return Accepted{}, err
	}
	r.log.Info("consent: relay request accepted", "kind", kind, "id", digest)
	return r.answer(ctx, rec), nil
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

// TxStatus is the state of a relayed transaction, for the portal
// (GET /consent/relay/{txHash}).
type TxStatus struct {
	// TxHash is the transaction's current hash (a fee bump replaces it;
	// TxHashes lists every version).
	TxHash   common.Hash   `json:"txHash,omitzero"`
	TxHashes []common.Hash `json:"txHashes,omitempty"`
	// RequestID names the relay request (see Accepted).
	RequestID common.Hash `json:"requestId,omitzero"`
	Kind      string      `json:"kind,omitempty"` // "grant" or "revoke"
	// State: "queued" (accepted, not sent yet), "pending" (sent, not
	// mined), "mined" (in a block, fewer than the configured
	// confirmations), "confirmed" (in force for the gateway's follower),
	// "failed" (reverted, never mined, or its deadline passed before it
	// could be sent: Error says which).
	State         string `json:"state"`
	Block         uint64 `json:"block,omitempty"`
	Confirmations uint64 `json:"confirmations,omitempty"`
	Error         string `json:"error,omitempty"`
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
// the patient's next nonce (counting the requests in flight accepted by
// every replica). POST it back to Submit with the signature added.
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
	onChain, err := r.chainNonce(ctx, patient)
	if err != nil {
		return apitypes.TypedData{}, err
	}
	recs, err := r.patientRecords(ctx, patient)
	if err != nil {
		return apitypes.TypedData{}, err
	}
	next := nextNonce(recs, onChain)
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
