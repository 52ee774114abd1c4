package consent

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/bindings"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// Errors. Test with errors.Is.
var (
	// ErrBehind: the consent mirror may be stale (the follower is further
	// behind the chain than Config.MaxLag, has not caught up since it
	// started, or cannot reach the node). Access that depends on consent
	// must fail closed; the wrapped message says why, without PHI.
	ErrBehind = errors.New("consent mirror is behind the chain")
	// ErrOtherChain: a wallet identifier names another chain than the one
	// the follower reads.
	ErrOtherChain = errors.New("consent: wallet is on another chain")
	// ErrInvalid: a bad argument (reference, wallet).
	ErrInvalid = errors.New("consent: invalid argument")
)

// Defaults of Config.
const (
	DefaultKeyspace      = "consent"
	DefaultConfirmations = 1
	DefaultMaxLag        = 30 * time.Second
	DefaultPollInterval  = time.Second
	DefaultReorgWindow   = 256
	DefaultRangeSize     = 2000
)

// liveWindow: within this many blocks of the safe head the follower reads
// block by block (header, then logs by block hash: each block is read
// consistently and linked to its parent); further behind it reads logs by
// ranges.
const liveWindow = 64

// cursorSaveEvery bounds how long the cursor may move over blocks without
// events before it is written (blocks with events are written at once).
const cursorSaveEvery = 5 * time.Second

// PatientResolver finds the patient a wallet belongs to. The gateway
// implements it over the FHIR store: the Patient whose identifier is the
// CAIP-10 wallet ("eip155:<chainId>:<address>").
type PatientResolver interface {
	// PatientByWallet returns "Patient/<id>", or "" when no patient has
	// that wallet.
	PatientByWallet(ctx context.Context, wallet string) (string, error)
}

// Config configures a Follower.
type Config struct {
	// Client reads the chain. Subscriptions (in-process, WebSocket, IPC)
	// wake the follower on each new head; over HTTP it polls.
	Client *chain.Client
	// Registry is the ConsentRegistry's address.
	Registry common.Address
	// StartBlock is the block the registry was deployed in (its first
	// possible event); 0 reads from genesis.
	StartBlock uint64
	// Engine holds the follower's state, under
	// store.ExtensionPrefix(Keyspace) (default "consent").
	Engine   store.Engine
	Keyspace string
	// Grants is the policy mirror the follower writes
	// (policy.Consent.Grants()).
	Grants *policy.Grants
	// Confirmations: an event is applied once its block is this deep
	// (1: as soon as it is mined). --consent-confirmations.
	Confirmations uint64
	// MaxLag: Health fails when the follower has not been caught up with
	// the chain for longer than this. --consent-max-lag.
	MaxLag time.Duration
	// PollInterval is how often the head is polled (it is also the wake-up
	// without subscriptions). Default 1s.
	PollInterval time.Duration
	// ReorgWindow is how many blocks below the cursor undo records are
	// kept. A reorg deeper than that makes the follower rebuild its state
	// from StartBlock. Default 256.
	ReorgWindow uint64
	// RangeSize is the largest block range of one eth_getLogs while
	// catching up (halved when a node refuses it). Default 2000.
	RangeSize uint64
	// Project, if set, receives Consent resources to store whenever a
	// grant's projection changes (at least once: it must be idempotent).
	// An error is retried later.
	Project func(ctx context.Context, ps []Projection) error
	// Patients, if set, is asked for wallets seen on chain that no
	// SetPatient call has mapped.
	Patients PatientResolver
	// OnChange, if set, is called after each block's events reach the
	// policy mirror, and after each block undone by a reorg. It runs on
	// the follower's goroutine: keep it short.
	OnChange func(Change)
	// Logger (default slog.Default()); Now (default time.Now) is the wall
	// clock for lag and for expiry of projected Consents.
	Logger *slog.Logger
	Now    func() time.Time
}

// Event is one ConsentGranted or ConsentRevoked log.
type Event struct {
	Revoked   bool
	Patient   common.Address
	Grantee   common.Hash
	Scope     common.Hash
	Expiry    uint64 // ConsentGranted only
	Block     uint64
	BlockHash common.Hash
	Time      uint64 // block timestamp
	Tx        common.Hash
	Index     uint // log index in the block
}

// Change reports a block whose events were applied, or a block undone by
// a reorg.
type Change struct {
	Undone bool
	Block  uint64
	Hash   common.Hash
	Events []Event   // applied events (nil when Undone)
	At     time.Time // when the policy mirror reflected it
}

// Follower mirrors ConsentRegistry into policy.Grants. See the package
// documentation.
type Follower struct {
	cfg     Config
	c       *chain.Client
	ks      keyspace
	log     *slog.Logger
	now     func() time.Time
	chainID uint64
	genesis common.Hash
	abi     *bindings.ConsentRegistry
	topics  []common.Hash // ConsentGranted, ConsentRevoked
	initial blockRef      // the block before StartBlock
	running atomic.Bool

	mu        sync.Mutex
	rows      map[gkey]*row
	cur       cursor // applied (memory)
	saved     []byte // cursor as persisted; the condition of the next Apply
	savedAt   time.Time
	floor     blockRef
	undo      []*undoRec // ascending
	recent    []blockRef // recently applied blocks, ascending (memory)
	rangeSize uint64

	patients  map[common.Address]string
	walSaved  map[common.Address]string // patients as persisted (wallets with grants only)
	grantees  map[common.Hash]string
	preSaved  map[common.Hash]bool
	byPatient map[common.Address]map[gkey]struct{}
	byGrantee map[common.Hash]map[gkey]struct{}
	unknown   map[common.Address]time.Time // wallets to ask Patients about, and when

	applied map[gkey]triple
	triples map[triple][]keyExpiry // the live grants behind each policy entry (usually one)
	exp     expHeap
	expAt   map[gkey]int64 // the expiry scheduled in exp for each key

	dirty     map[gkey]struct{}
	projected map[gkey]projRec
	projRetry time.Time

	reorgs, rebuilds int

	caughtUp atomic.Int64 // unix nanos: when the follower last had every safe block applied
	headNum  atomic.Uint64
	safeNum  atomic.Uint64
	lastErr  atomic.Pointer[error]
	wake     chan struct{}
	ready    chan struct{}
	readyOne sync.Once
}

type triple struct{ patient, grantee, scope string }

type keyExpiry struct {
	k   gkey
	exp uint64
}

type projRec struct {
	hash    [16]byte
	patient string
}

// NewFollower opens the follower's state in cfg.Engine, checks it belongs
// to this chain and registry (state of another chain or registry is
// discarded and rebuilt from the chain), and loads every grant into
// cfg.Grants. Run then follows the chain.
func NewFollower(ctx context.Context, cfg Config) (*Follower, error) {
	if cfg.Client == nil || cfg.Engine == nil || cfg.Grants == nil {
		return nil, fmt.Errorf("%w: follower needs Client, Engine and Grants", ErrInvalid)
	}
	if cfg.Registry == (common.Address{}) {
		return nil, fmt.Errorf("%w: follower needs the registry address", ErrInvalid)
	}
	if cfg.Keyspace == "" {
		cfg.Keyspace = DefaultKeyspace
	}
	if cfg.Confirmations == 0 {
		cfg.Confirmations = DefaultConfirmations
	}
	if cfg.MaxLag <= 0 {
		cfg.MaxLag = DefaultMaxLag
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.ReorgWindow == 0 {
		cfg.ReorgWindow = DefaultReorgWindow
	}
	if cfg.RangeSize == 0 {
		cfg.RangeSize = DefaultRangeSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	abi := bindings.NewConsentRegistry()
	evs := abi.GetABI().Events
	f := &Follower{
		cfg:       cfg,
		c:         cfg.Client,
		ks:        keyspace{pfx: store.ExtensionPrefix(cfg.Keyspace)},
		log:       cfg.Logger.With("component", "consent"),
		now:       cfg.Now,
		abi:       abi,
		topics:    []common.Hash{evs["ConsentGranted"].ID, evs["ConsentRevoked"].ID},
		rangeSize: cfg.RangeSize,
		patients:  map[common.Address]string{},
		walSaved:  map[common.Address]string{},
		grantees:  map[common.Hash]string{},
		preSaved:  map[common.Hash]bool{},
		wake:      make(chan struct{}, 1),
		ready:     make(chan struct{}),
	}
	f.resetMemory()
	f.projected = map[gkey]projRec{}
	id, err := f.c.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("consent: eth_chainId: %w", err)
	}
	f.chainID = id.Uint64()
	g, err := f.c.HeaderByNumber(ctx, common.Big0)
	if err != nil {
		return nil, fmt.Errorf("consent: genesis header: %w", err)
	}
	f.genesis = g.Hash()
	first := cfg.StartBlock
	if first > 0 {
		first--
	}
	h, err := f.c.HeaderByNumber(ctx, new(bigInt).SetUint64(first))
	if err != nil {
		return nil, fmt.Errorf("consent: header of block %d (before the registry's start block): %w", first, err)
	}
	f.initial = blockRef{Number: first, Hash: h.Hash(), Time: h.Time}
	if err := f.load(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// resetMemory empties the grant state held in memory (not the directory,
// the policy mirror bookkeeping or the projection record).
func (f *Follower) resetMemory() {
	f.rows = map[gkey]*row{}
	f.byPatient = map[common.Address]map[gkey]struct{}{}
	f.byGrantee = map[common.Hash]map[gkey]struct{}{}
	f.unknown = map[common.Address]time.Time{}
	f.undo = nil
	f.recent = nil
	if f.applied == nil {
		f.applied = map[gkey]triple{}
		f.triples = map[triple][]keyExpiry{}
		f.expAt = map[gkey]int64{}
		f.dirty = map[gkey]struct{}{}
	}
}

// ChainID returns the chain id the follower reads.
func (f *Follower) ChainID() uint64 { return f.chainID }

// Registry returns the registry address.
func (f *Follower) Registry() common.Address { return f.cfg.Registry }

// load reads the persisted state (resetting it if it belongs to another
// chain or registry) and rebuilds the policy mirror.
func (f *Follower) load(ctx context.Context) error {
	eng := f.cfg.Engine
	want := meta{ChainID: f.chainID, Genesis: f.genesis, Registry: f.cfg.Registry, StartBlock: f.cfg.StartBlock}
	mb, err := eng.Get(ctx, f.ks.meta())
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("consent: read state: %w", err)
	default:
		var have meta
		if jerr := jsonUnmarshal(mb, &have); jerr != nil || have != want {
			f.log.Warn("consent: stored follower state belongs to another chain or registry; rebuilding it from the chain",
				"storedChainId", have.ChainID, "storedRegistry", have.Registry, "chainId", f.chainID, "registry", f.cfg.Registry)
			if err := f.wipe(ctx, have.ChainID != want.ChainID); err != nil {
				return err
			}
		}
	}
	var b store.Batch
	b.Set(f.ks.meta(), jsonMarshal(want))
	if err := eng.Apply(ctx, &b); err != nil {
		return fmt.Errorf("consent: write state: %w", err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur = cursor{blockRef: f.initial}
	f.floor = f.initial
	f.saved = nil
	cb, err := eng.Get(ctx, f.ks.cursor())
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("consent: read cursor: %w", err)
	default:
		if f.cur, err = decodeCursor(cb); err != nil {
			return err
		}
		f.saved = cb
	}
	f.savedAt = f.now()
	if fb, err := eng.Get(ctx, f.ks.floor()); err == nil {
		if f.floor, err = decodeBlockRef(fb); err != nil {
			return err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("consent: read floor: %w", err)
	}
	var scanErr error
	err = eng.Scan(ctx, store.PrefixRange(f.ks.tagPrefix(kUndo)), func(_, v []byte) bool {
		u, err := decodeUndo(v)
		if err != nil {
			scanErr = err
			return false
		}
		f.undo = append(f.undo, u)
		return true
	})
	if err = errors.Join(err, scanErr); err != nil {
		return fmt.Errorf("consent: read undo records: %w", err)
	}
	err = eng.Scan(ctx, store.PrefixRange(f.ks.tagPrefix(kPreimage)), func(k, v []byte) bool {
		h := common.BytesToHash(k[len(k)-32:])
		ref := string(v)
		if consentsig.Grantee(ref) == h {
			f.grantees[h] = ref
			f.preSaved[h] = true
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("consent: read grantees: %w", err)
	}
	wl := len(f.ks.tagPrefix(kWallet))
	err = eng.Scan(ctx, store.PrefixRange(f.ks.tagPrefix(kWallet)), func(k, v []byte) bool {
		if len(k) == wl+common.AddressLength {
			a := common.BytesToAddress(k[wl:])
			if _, pushed := f.patients[a]; !pushed { // SetPatient before a reload wins
				f.patients[a] = string(v)
			}
			f.walSaved[a] = string(v)
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("consent: read wallets: %w", err)
	}
	pl := len(f.ks.tagPrefix(kProj))
	err = eng.Scan(ctx, store.PrefixRange(f.ks.tagPrefix(kProj)), func(k, v []byte) bool {
		key, ok := gkeyFrom(k[pl:])
		if ok && len(v) > 16 {
			var rec projRec
			copy(rec.hash[:], v[:16])
			rec.patient = string(v[16:])
			f.projected[key] = rec
			f.dirty[key] = struct{}{}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("consent: read projections: %w", err)
	}
	rl := len(f.ks.tagPrefix(kRow))
	err = eng.Scan(ctx, store.PrefixRange(f.ks.tagPrefix(kRow)), func(k, v []byte) bool {
		key, ok := gkeyFrom(k[rl:])
		if !ok {
			scanErr = fmt.Errorf("%w: row key", errCorrupt)
			return false
		}
		r, err := decodeRow(v)
		if err != nil {
			scanErr = err
			return false
		}
		f.setRowLocked(key, r)
		return true
	})
	if err = errors.Join(err, scanErr); err != nil {
		return fmt.Errorf("consent: read grants: %w", err)
	}
	now := f.now().Unix()
	for k := range f.rows {
		f.reconcileLocked(k, now)
	}
	return nil
}

// wipe deletes the chain-derived state (rows, undo records, floor,
// cursor; wallet mappings too when the chain id changed: they are CAIP-10
// identifiers of one chain). Grantee preimages (facts independent of any
// chain) and the record of projected Consents (so they can be deleted)
// stay.
func (f *Follower) wipe(ctx context.Context, wallets bool) error {
	var b store.Batch
	tags := []byte{kRow, kUndo}
	if wallets {
		tags = append(tags, kWallet)
	}
	for _, tag := range tags {
		err := f.cfg.Engine.Scan(ctx, store.PrefixRange(f.ks.tagPrefix(tag)), func(k, _ []byte) bool {
			b.Delete(append([]byte(nil), k...))
			return true
		})
		if err != nil {
			return fmt.Errorf("consent: wipe state: %w", err)
		}
	}
	b.Delete(f.ks.floor())
	b.Delete(f.ks.cursor())
	b.Delete(f.ks.meta())
	if err := f.cfg.Engine.Apply(ctx, &b); err != nil {
		return fmt.Errorf("consent: wipe state: %w", err)
	}
	return nil
}

// setRowLocked stores r (nil: deletes) in memory and the indexes.
func (f *Follower) setRowLocked(k gkey, r *row) {
	if r == nil {
		delete(f.rows, k)
		if m := f.byPatient[k.Patient]; m != nil {
			delete(m, k)
			if len(m) == 0 {
				delete(f.byPatient, k.Patient)
				delete(f.unknown, k.Patient)
			}
		}
		if m := f.byGrantee[k.Grantee]; m != nil {
			delete(m, k)
			if len(m) == 0 {
				delete(f.byGrantee, k.Grantee)
			}
		}
		return
	}
	f.rows[k] = r
	m := f.byPatient[k.Patient]
	if m == nil {
		m = map[gkey]struct{}{}
		f.byPatient[k.Patient] = m
	}
	m[k] = struct{}{}
	m = f.byGrantee[k.Grantee]
	if m == nil {
		m = map[gkey]struct{}{}
		f.byGrantee[k.Grantee] = m
	}
	m[k] = struct{}{}
}

// reconcileLocked makes the policy mirror agree with the row of k, the
// directory and the clock, and marks k's projection for review.
func (f *Follower) reconcileLocked(k gkey, now int64) {
	f.dirty[k] = struct{}{}
	r := f.rows[k]
	var want triple
	ok := false
	if r.active(now) {
		p, okp := f.patients[k.Patient]
		g, okg := f.grantees[k.Grantee]
		s, oks := ScopeName(k.Scope)
		if !okp {
			if _, seen := f.unknown[k.Patient]; !seen {
				f.unknown[k.Patient] = time.Time{}
			}
		}
		if okp && okg && oks {
			want, ok = triple{p, g, s}, true
		}
	}
	old, had := f.applied[k]
	if had && (!ok || old != want) {
		delete(f.applied, k)
		f.triples[old] = slices.DeleteFunc(f.triples[old], func(x keyExpiry) bool { return x.k == k })
		f.syncTripleLocked(old)
	}
	if ok {
		f.applied[k] = want
		list := f.triples[want]
		i := slices.IndexFunc(list, func(x keyExpiry) bool { return x.k == k })
		if i < 0 {
			list = append(list, keyExpiry{k: k, exp: r.Expiry})
		} else {
			list[i].exp = r.Expiry
		}
		f.triples[want] = list
		f.syncTripleLocked(want)
		if r.Expiry <= math.MaxInt64 && f.expAt[k] != int64(r.Expiry) {
			f.expAt[k] = int64(r.Expiry)
			heap.Push(&f.exp, expEntry{at: int64(r.Expiry), k: k})
		}
	}
}

// syncTripleLocked writes one (patient, grantee, scope) to the policy
// mirror: several wallets of one patient may grant the same thing, so the
// latest expiry among the live grants counts.
func (f *Follower) syncTripleLocked(t triple) {
	m := f.triples[t]
	if len(m) == 0 {
		delete(f.triples, t)
		f.cfg.Grants.Remove(t.patient, t.grantee, t.scope)
		return
	}
	var latest uint64
	for _, e := range m {
		latest = max(latest, e.exp)
	}
	if err := f.cfg.Grants.Set(policy.Grant{Patient: t.patient, Grantee: t.grantee, Scope: t.scope, Expiry: expiryTime(latest)}); err != nil {
		f.log.Error("consent: policy refused a grant", "scope", t.scope, "err", err)
	}
}

// Ready is closed the first time the follower has caught up with the chain.
func (f *Follower) Ready() <-chan struct{} { return f.ready }

func (f *Follower) markCaughtUp(asOf time.Time) {
	n := asOf.UnixNano()
	for {
		old := f.caughtUp.Load()
		if old >= n || f.caughtUp.CompareAndSwap(old, n) {
			break
		}
	}
	f.readyOne.Do(func() { close(f.ready) })
}

func (f *Follower) setErr(err error) {
	if err == nil {
		f.lastErr.Store(nil)
		return
	}
	f.lastErr.Store(&err)
}

// Health returns nil while the policy mirror is current: the follower had
// applied every block up to the chain's safe head (head − confirmations +
// 1) at some moment within the last MaxLag. Otherwise it returns an error
// wrapping ErrBehind whose message says why (safe to show to clients: no
// PHI, no node URL). Plug it into policy.Decider.Health.
func (f *Follower) Health() error {
	last := f.caughtUp.Load()
	if last == 0 {
		return fmt.Errorf("%w: the consent follower has not caught up with the chain since the gateway started", ErrBehind)
	}
	lag := f.now().Sub(time.Unix(0, last))
	if lag <= f.cfg.MaxLag {
		return nil
	}
	why := ""
	if e := f.lastErr.Load(); e != nil {
		var se storeError
		if errors.As(*e, &se) {
			why = "; the follower cannot write its state"
		} else {
			why = "; the chain node is not answering"
		}
	} else if safe, cur := f.safeNum.Load(), f.appliedBlock(); safe > cur {
		why = fmt.Sprintf("; %d blocks still to apply", safe-cur)
	}
	return fmt.Errorf("%w: consent was last in step with the chain %s ago (limit %s)%s",
		ErrBehind, lag.Round(time.Millisecond), f.cfg.MaxLag, why)
}

func (f *Follower) appliedBlock() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur.Number
}

// Status describes the follower, for monitoring.
type Status struct {
	Block      uint64      `json:"block"` // last applied block
	BlockHash  common.Hash `json:"blockHash"`
	Head       uint64      `json:"head"`     // chain head at the last poll
	SafeHead   uint64      `json:"safeHead"` // head − confirmations + 1
	CaughtUpAt time.Time   `json:"caughtUpAt"`
	Lag        string      `json:"lag"`
	Healthy    bool        `json:"healthy"`
	Events     uint64      `json:"events"`    // events applied on the canonical chain
	Grants     int         `json:"grants"`    // grants known on chain (any status)
	InForce    int         `json:"inForce"`   // grants in the policy mirror
	Unmapped   int         `json:"unmapped"`  // live grants not applied: unknown patient wallet, grantee or scope
	UndoDepth  int         `json:"undoDepth"` // blocks that can be undone
	Reorgs     int         `json:"reorgs"`    // reorgs handled since start
	Rebuilds   int         `json:"rebuilds"`  // rebuilds from StartBlock since start (deeper reorgs)
	LastError  string      `json:"lastError,omitempty"`
	Projecting int         `json:"projecting"` // Consent projections waiting
}

// Status returns the follower's state.
func (f *Follower) Status() Status {
	f.mu.Lock()
	s := Status{
		Block: f.cur.Number, BlockHash: f.cur.Hash, Events: f.cur.Events,
		Grants: len(f.rows), InForce: len(f.applied), UndoDepth: len(f.undo), Projecting: len(f.dirty),
		Reorgs: f.reorgs, Rebuilds: f.rebuilds,
	}
	now := f.now().Unix()
	for k, r := range f.rows {
		if _, ok := f.applied[k]; !ok && r.active(now) {
			s.Unmapped++
		}
	}
	f.mu.Unlock()
	s.Head, s.SafeHead = f.headNum.Load(), f.safeNum.Load()
	if t := f.caughtUp.Load(); t != 0 {
		s.CaughtUpAt = time.Unix(0, t)
		s.Lag = f.now().Sub(s.CaughtUpAt).Round(time.Millisecond).String()
	}
	s.Healthy = f.Health() == nil
	if e := f.lastErr.Load(); e != nil {
		s.LastError = (*e).Error()
	}
	return s
}

// SetPatient maps a wallet (CAIP-10, "eip155:<chainId>:<address>") to the
// patient it belongs to ("Patient/<id>"; "" removes the mapping). Grants
// made from that wallet take effect, or stop, at once. The gateway calls
// it for every Patient with a wallet identifier at start and on every
// Patient write. The mapping of wallets that hold grants is kept in the
// follower's keyspace (so a restart applies grants before the gateway
// has fed it again); calls that change nothing write nothing. A wallet
// of another chain returns ErrOtherChain.
func (f *Follower) SetPatient(ctx context.Context, wallet, ref string) error {
	return f.SetPatients(ctx, []WalletPatient{{Wallet: wallet, Patient: ref}})
}

// WalletPatient maps a CAIP-10 wallet to "Patient/<id>" ("" unmaps).
type WalletPatient struct {
	Wallet, Patient string
}

// SetPatients is SetPatient for many wallets, with one write (for the
// gateway's start). A wallet of another chain fails the call with
// ErrOtherChain before anything changes; skip those first (ParseCAIP10).
func (f *Follower) SetPatients(ctx context.Context, ms []WalletPatient) error {
	addrs := make([]common.Address, len(ms))
	for i, m := range ms {
		id, addr, err := ParseCAIP10(m.Wallet)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if id != f.chainID {
			return fmt.Errorf("%w: %s (following chain %d)", ErrOtherChain, m.Wallet, f.chainID)
		}
		if m.Patient != "" {
			if pid, ok := strings.CutPrefix(m.Patient, "Patient/"); !ok || !fhir.ValidID(pid) {
				return fmt.Errorf("%w: patient reference %q", ErrInvalid, m.Patient)
			}
		}
		addrs[i] = addr
	}
	var b store.Batch
	saved := map[common.Address]string{}
	f.mu.Lock()
	now := f.now().Unix()
	for i, m := range ms {
		addr := addrs[i]
		if m.Patient == "" {
			delete(f.patients, addr)
		} else {
			f.patients[addr] = m.Patient
		}
		delete(f.unknown, addr)
		for k := range f.byPatient[addr] {
			f.reconcileLocked(k, now)
		}
		if len(f.byPatient[addr]) > 0 && f.walSaved[addr] != m.Patient {
			if m.Patient == "" {
				b.Delete(f.ks.wallet(addr))
			} else {
				b.Set(f.ks.wallet(addr), []byte(m.Patient))
			}
			saved[addr] = m.Patient
		}
	}
	f.mu.Unlock()
	f.poke()
	if len(b.Ops) == 0 {
		return nil
	}
	if err := f.cfg.Engine.Apply(ctx, &b); err != nil {
		return fmt.Errorf("consent: save wallet mapping: %w", err)
	}
	f.mu.Lock()
	for a, ref := range saved {
		if f.patients[a] == ref {
			if ref == "" {
				delete(f.walSaved, a)
			} else {
				f.walSaved[a] = ref
			}
		}
	}
	f.mu.Unlock()
	return nil
}

// AddGrantees tells the follower the references grants may name
// ("Practitioner/<id>", "Organization/<id>", "client/<id>"): the chain
// holds only their hashes. Grants to a grantee not yet known wait, and
// take effect as soon as it is added. The gateway calls it for every
// Practitioner, Organization and registered client at start and on each
// new one. Preimages of hashes seen on chain are kept in the follower's
// keyspace.
func (f *Follower) AddGrantees(ctx context.Context, refs ...string) error {
	for _, ref := range refs {
		if err := ValidGrantee(ref); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	var b store.Batch
	var saved []common.Hash
	f.mu.Lock()
	now := f.now().Unix()
	for _, ref := range refs {
		h := consentsig.Grantee(ref)
		if f.grantees[h] == ref {
			continue
		}
		f.grantees[h] = ref
		keys := f.byGrantee[h]
		for k := range keys {
			f.reconcileLocked(k, now)
		}
		if len(keys) > 0 && !f.preSaved[h] {
			b.Set(f.ks.preimage(h), []byte(ref))
			saved = append(saved, h)
		}
	}
	f.mu.Unlock()
	f.poke()
	if len(b.Ops) == 0 {
		return nil
	}
	if err := f.cfg.Engine.Apply(ctx, &b); err != nil {
		return fmt.Errorf("consent: save grantees: %w", err)
	}
	f.mu.Lock()
	for _, h := range saved {
		f.preSaved[h] = true
	}
	f.mu.Unlock()
	return nil
}

// KnowsGrantee reports whether the grantee hash's reference is known.
func (f *Follower) KnowsGrantee(h common.Hash) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.grantees[h]
	return ok
}

// KnowsWallet reports whether the wallet is mapped to a patient.
func (f *Follower) KnowsWallet(a common.Address) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.patients[a]
	return ok
}

// PatientOf returns the patient a CAIP-10 wallet is mapped to, or "".
func (f *Follower) PatientOf(wallet string) string {
	id, addr, err := ParseCAIP10(wallet)
	if err != nil || id != f.chainID {
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.patients[addr]
}

// Wallets lists every wallet mapped to a patient (CAIP-10, for the
// gateway's start to drop mappings its records no longer hold).
func (f *Follower) Wallets() []WalletPatient {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]WalletPatient, 0, len(f.patients))
	for a, p := range f.patients {
		out = append(out, WalletPatient{Wallet: CAIP10(f.chainID, a), Patient: p})
	}
	return out
}

// UnmappedWallets lists the wallets (CAIP-10) that hold grants on chain
// but are mapped to no patient: the gateway may look them up and call
// SetPatient.
func (f *Follower) UnmappedWallets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for a := range f.byPatient {
		if _, ok := f.patients[a]; !ok {
			out = append(out, CAIP10(f.chainID, a))
		}
	}
	slices.Sort(out)
	return out
}

func (f *Follower) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run follows the chain until ctx ends (it then saves its cursor and
// returns ctx.Err()). Run it once, in its own goroutine.
func (f *Follower) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("consent: follower already running")
	}
	defer f.running.Store(false)
	var heads chan *types.Header
	var sub ethereum.Subscription
	subscribe := func() {
		if sub != nil || !f.c.SupportsSubscriptions() {
			return
		}
		ch := make(chan *types.Header, 16)
		s, err := f.c.SubscribeNewHead(ctx, ch)
		if err != nil {
			return
		}
		sub, heads = s, ch
	}
	defer func() {
		if sub != nil {
			sub.Unsubscribe()
		}
	}()
	tick := time.NewTicker(f.cfg.PollInterval)
	defer tick.Stop()
	expTimer := time.NewTimer(time.Hour)
	defer expTimer.Stop()
	var lastLogged time.Time
	for {
		subscribe()
		caught, err := f.step(ctx)
		if ctx.Err() != nil {
			break
		}
		f.setErr(err)
		if err != nil {
			if time.Since(lastLogged) > 10*time.Second {
				f.log.Warn("consent: following the chain", "err", err)
				lastLogged = time.Now()
			}
			caught = true // wait for the next tick before retrying
		}
		f.expire()
		f.resolvePatients(ctx)
		f.flush(ctx)
		if !caught {
			continue
		}
		var subErr <-chan error
		if sub != nil {
			subErr = sub.Err()
		}
		expTimer.Reset(f.nextExpiry())
		select {
		case <-ctx.Done():
		case <-heads:
		case <-tick.C:
		case <-f.wake:
		case <-expTimer.C:
		case <-subErr:
			sub, heads = nil, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	f.mu.Lock()
	if err := f.saveCursorLocked(sctx); err != nil {
		f.log.Warn("consent: saving cursor on stop", "err", err)
	}
	f.mu.Unlock()
	return ctx.Err()
}

// step moves the follower forward (or back, on a reorg) by a bounded
// amount of work, and reports whether it has caught up.
func (f *Follower) step(ctx context.Context) (bool, error) {
	asOf := f.now()
	head, err := f.c.HeaderByNumber(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("consent: chain head: %w", err)
	}
	hn := head.Number.Uint64()
	f.headNum.Store(hn)
	var safe uint64
	if hn+1 >= f.cfg.Confirmations {
		safe = hn + 1 - f.cfg.Confirmations
	}
	f.safeNum.Store(safe)
	f.mu.Lock()
	cur := f.cur
	f.mu.Unlock()
	if cur.Number >= safe {
		ok, err := f.canonical(ctx, cur.blockRef)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, f.reorg(ctx)
		}
		f.markCaughtUp(asOf)
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.now().Sub(f.savedAt) >= cursorSaveEvery {
			if err := f.saveCursorLocked(ctx); err != nil {
				return true, err
			}
		}
		return true, nil
	}
	if safe-cur.Number > liveWindow {
		f.mu.Lock()
		n := f.rangeSize
		f.mu.Unlock()
		err = f.backfill(ctx, cur, min(cur.Number+n, safe-liveWindow))
	} else {
		err = f.live(ctx, cur, min(safe, cur.Number+256))
	}
	if err != nil {
		return false, err
	}
	f.mu.Lock()
	done := f.cur.Number >= safe
	f.mu.Unlock()
	if done {
		f.markCaughtUp(asOf)
	}
	return done, nil
}

// canonical reports whether b is still the chain's block at its height.
func (f *Follower) canonical(ctx context.Context, b blockRef) (bool, error) {
	h, err := f.c.HeaderByNumber(ctx, new(bigInt).SetUint64(b.Number))
	if errors.Is(err, ethereum.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("consent: header %d: %w", b.Number, err)
	}
	return h.Hash() == b.Hash, nil
}

// blockData is one block to apply.
type blockData struct {
	ref  blockRef
	logs []types.Log
}

// live reads blocks cur+1 … to one by one: header, parent check, logs of
// that exact block (by hash, and only when its bloom filter mentions the
// registry).
func (f *Follower) live(ctx context.Context, cur cursor, to uint64) error {
	var blocks []blockData
	prev := cur.blockRef
	for n := cur.Number + 1; n <= to; n++ {
		h, err := f.c.HeaderByNumber(ctx, new(bigInt).SetUint64(n))
		if errors.Is(err, ethereum.NotFound) {
			break // the chain got shorter meanwhile: the next step sees it
		}
		if err != nil {
			if len(blocks) > 0 {
				break
			}
			return fmt.Errorf("consent: header %d: %w", n, err)
		}
		if h.ParentHash != prev.Hash {
			if len(blocks) == 0 {
				return f.reorg(ctx)
			}
			break
		}
		ref := blockRef{Number: n, Hash: h.Hash(), Time: h.Time}
		var logs []types.Log
		if types.BloomLookup(h.Bloom, f.cfg.Registry) {
			bh := ref.Hash
			logs, err = f.c.FilterLogs(ctx, ethereum.FilterQuery{BlockHash: &bh, Addresses: []common.Address{f.cfg.Registry}, Topics: [][]common.Hash{f.topics}})
			if err != nil {
				if len(blocks) > 0 {
					break
				}
				return fmt.Errorf("consent: logs of block %d: %w", n, err)
			}
		}
		blocks = append(blocks, blockData{ref: ref, logs: logs})
		prev = ref
	}
	return f.commit(ctx, blocks)
}

// errChainMoved: the chain changed while a range was read; it is read again.
var errChainMoved = errors.New("consent: the chain changed while reading; retrying")

// backfill reads blocks cur+1 … to with one eth_getLogs, checking that the
// range hangs off the cursor and that every block with events, and the
// last one, are still canonical after the logs were read.
func (f *Follower) backfill(ctx context.Context, cur cursor, to uint64) error {
	from := cur.Number + 1
	hFrom, err := f.c.HeaderByNumber(ctx, new(bigInt).SetUint64(from))
	if err != nil {
		return fmt.Errorf("consent: header %d: %w", from, err)
	}
	if hFrom.ParentHash != cur.Hash {
		return f.reorg(ctx)
	}
	hTo, err := f.c.HeaderByNumber(ctx, new(bigInt).SetUint64(to))
	if err != nil {
		return fmt.Errorf("consent: header %d: %w", to, err)
	}
	logs, err := f.c.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: new(bigInt).SetUint64(from), ToBlock: new(bigInt).SetUint64(to),
		Addresses: []common.Address{f.cfg.Registry}, Topics: [][]common.Hash{f.topics},
	})
	if err != nil {
		if !chain.IsTransient(err) && to > from {
			f.mu.Lock()
			f.rangeSize = max(1, (to-from+1)/2)
			f.mu.Unlock()
		}
		return fmt.Errorf("consent: logs of blocks %d-%d: %w", from, to, err)
	}
	slices.SortFunc(logs, func(a, b types.Log) int {
		if a.BlockNumber != b.BlockNumber {
			return cmpU64(a.BlockNumber, b.BlockNumber)
		}
		return cmpU64(uint64(a.Index), uint64(b.Index))
	})
	var blocks []blockData
	for i := 0; i < len(logs); {
		j := i
		for j < len(logs) && logs[j].BlockNumber == logs[i].BlockNumber {
			j++
		}
		n := logs[i].BlockNumber
		h := hTo
		if n != to {
			if h, err = f.c.HeaderByNumber(ctx, new(bigInt).SetUint64(n)); err != nil {
				return fmt.Errorf("consent: header %d: %w", n, err)
			}
		}
		for _, l := range logs[i:j] {
			if l.BlockHash != h.Hash() {
				return errChainMoved
			}
		}
		blocks = append(blocks, blockData{ref: blockRef{Number: n, Hash: h.Hash(), Time: h.Time}, logs: logs[i:j]})
		i = j
	}
	hTo2, err := f.c.HeaderByNumber(ctx, new(bigInt).SetUint64(to))
	if err != nil {
		return fmt.Errorf("consent: header %d: %w", to, err)
	}
	if hTo2.Hash() != hTo.Hash() {
		return errChainMoved
	}
	if len(blocks) == 0 || blocks[len(blocks)-1].ref.Number != to {
		blocks = append(blocks, blockData{ref: blockRef{Number: to, Hash: hTo.Hash(), Time: hTo.Time}})
	}
	f.mu.Lock()
	if f.rangeSize < f.cfg.RangeSize {
		f.rangeSize = min(f.cfg.RangeSize, f.rangeSize*2)
	}
	f.mu.Unlock()
	return f.commit(ctx, blocks)
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// stage is a set of row changes not yet committed.
type stage struct {
	f       *Follower
	rows    map[gkey]*row // new values; nil = deleted
	order   []gkey
	undo    []*undoRec
	dropped []*undoRec // undo records to delete
	cur     cursor
	changes []Change
}

func (s *stage) get(k gkey) *row {
	if r, ok := s.rows[k]; ok {
		return r
	}
	return s.f.rows[k]
}

func (s *stage) set(k gkey, r *row) {
	if _, ok := s.rows[k]; !ok {
		s.order = append(s.order, k)
	}
	s.rows[k] = r
}

// decode turns a registry log into an Event.
func (f *Follower) decode(l *types.Log, ref blockRef) (Event, bool) {
	if l.Removed || l.Address != f.cfg.Registry || len(l.Topics) == 0 {
		return Event{}, false
	}
	ev := Event{Block: ref.Number, BlockHash: ref.Hash, Time: ref.Time, Tx: l.TxHash, Index: l.Index}
	switch l.Topics[0] {
	case f.topics[0]:
		g, err := f.abi.UnpackConsentGrantedEvent(l)
		if err != nil {
			f.log.Error("consent: undecodable ConsentGranted log", "block", ref.Number, "index", l.Index, "err", err)
			return Event{}, false
		}
		ev.Patient, ev.Grantee, ev.Scope, ev.Expiry = g.Patient, g.Grantee, g.Scope, g.Expiry
	case f.topics[1]:
		r, err := f.abi.UnpackConsentRevokedEvent(l)
		if err != nil {
			f.log.Error("consent: undecodable ConsentRevoked log", "block", ref.Number, "index", l.Index, "err", err)
			return Event{}, false
		}
		ev.Revoked, ev.Patient, ev.Grantee, ev.Scope = true, r.Patient, r.Grantee, r.Scope
	default:
		return Event{}, false
	}
	return ev, true
}

// apply stages one block's events, in log order.
func (s *stage) apply(b blockData) {
	logs := slices.Clone(b.logs)
	slices.SortFunc(logs, func(x, y types.Log) int { return cmpU64(uint64(x.Index), uint64(y.Index)) })
	rec := &undoRec{blockRef: b.ref}
	touched := map[gkey]bool{}
	var evs []Event
	for i := range logs {
		ev, ok := s.f.decode(&logs[i], b.ref)
		if !ok {
			continue
		}
		k := gkey{Patient: ev.Patient, Grantee: ev.Grantee, Scope: ev.Scope}
		old := s.get(k)
		if !touched[k] {
			touched[k] = true
			rec.Keys = append(rec.Keys, k)
			if old != nil {
				c := *old
				rec.Prev = append(rec.Prev, &c)
			} else {
				rec.Prev = append(rec.Prev, nil)
			}
		}
		p := pos{Block: ev.Block, Time: ev.Time, Tx: ev.Tx, Index: uint32(ev.Index)}
		var nr row
		if old != nil {
			nr = *old
		}
		if ev.Revoked {
			nr.Expiry, nr.Revoked, nr.Changed = 0, true, p
		} else {
			nr.Expiry, nr.Revoked, nr.Granted, nr.Changed = ev.Expiry, false, p, p
		}
		s.set(k, &nr)
		evs = append(evs, ev)
	}
	s.cur.blockRef = b.ref
	if len(evs) == 0 {
		return
	}
	rec.Events = uint32(len(evs))
	s.cur.Events += uint64(len(evs))
	s.undo = append(s.undo, rec)
	s.changes = append(s.changes, Change{Block: b.ref.Number, Hash: b.ref.Hash, Events: evs})
}

// commit applies blocks: stage, persist (one atomic Apply), then update
// memory, the policy mirror and the projections.
func (f *Follower) commit(ctx context.Context, blocks []blockData) error {
	if len(blocks) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &stage{f: f, rows: map[gkey]*row{}, cur: f.cur}
	for _, b := range blocks {
		s.apply(b)
	}
	// Undo records older than the window are dropped; the newest dropped
	// becomes the floor.
	newFloor := f.floor
	keep := s.undo[:0:0]
	for _, u := range append(slices.Clone(f.undo), s.undo...) {
		if u.Number+f.cfg.ReorgWindow <= s.cur.Number {
			s.dropped = append(s.dropped, u)
			if u.Number > newFloor.Number {
				newFloor = u.blockRef
			}
		} else {
			keep = append(keep, u)
		}
	}
	if len(s.order) == 0 && len(s.dropped) == 0 {
		f.cur = s.cur
		f.noteRecentLocked(blocks)
		if f.now().Sub(f.savedAt) >= cursorSaveEvery {
			return f.saveCursorLocked(ctx)
		}
		return nil
	}
	var b store.Batch
	b.Require(f.ks.cursor(), f.saved)
	for _, k := range s.order {
		if r := s.rows[k]; r != nil {
			b.Set(f.ks.row(k), r.encode())
		} else {
			b.Delete(f.ks.row(k))
		}
		if ref, ok := f.grantees[k.Grantee]; ok && !f.preSaved[k.Grantee] {
			b.Set(f.ks.preimage(k.Grantee), []byte(ref))
		}
		if ref, ok := f.patients[k.Patient]; ok && f.walSaved[k.Patient] != ref {
			b.Set(f.ks.wallet(k.Patient), []byte(ref))
		}
	}
	for _, u := range s.undo {
		if u.Number+f.cfg.ReorgWindow > s.cur.Number {
			b.Set(f.ks.undo(u.Number), u.encode())
		}
	}
	for _, u := range s.dropped {
		b.Delete(f.ks.undo(u.Number))
	}
	if newFloor != f.floor {
		b.Set(f.ks.floor(), newFloor.encode())
	}
	enc := s.cur.encode()
	b.Set(f.ks.cursor(), enc)
	if err := f.cfg.Engine.Apply(ctx, &b); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return f.conflictLocked(ctx)
		}
		return storeError{fmt.Errorf("consent: saving block %d: %w", s.cur.Number, err)}
	}
	f.saved, f.savedAt = enc, f.now()
	f.cur = s.cur
	f.floor = newFloor
	f.undo = keep
	for _, k := range s.order {
		f.setRowLocked(k, s.rows[k])
		if _, ok := f.grantees[k.Grantee]; ok {
			f.preSaved[k.Grantee] = true
		}
		if ref, ok := f.patients[k.Patient]; ok {
			f.walSaved[k.Patient] = ref
		}
	}
	now := f.now().Unix()
	for _, k := range s.order {
		f.reconcileLocked(k, now)
	}
	f.noteRecentLocked(blocks)
	if f.cfg.OnChange != nil {
		at := f.now()
		for _, c := range s.changes {
			c.At = at
			f.cfg.OnChange(c)
		}
	}
	return nil
}

// noteRecentLocked remembers applied blocks for finding fork points.
func (f *Follower) noteRecentLocked(blocks []blockData) {
	for _, b := range blocks {
		f.recent = append(f.recent, b.ref)
	}
	if n := len(f.recent) - int(f.cfg.ReorgWindow); n > 0 {
		f.recent = slices.Delete(f.recent, 0, n)
	}
}

// saveCursorLocked persists the in-memory cursor if it moved.
func (f *Follower) saveCursorLocked(ctx context.Context) error {
	enc := f.cur.encode()
	if string(enc) == string(f.saved) {
		f.savedAt = f.now()
		return nil
	}
	var b store.Batch
	b.Require(f.ks.cursor(), f.saved)
	b.Set(f.ks.cursor(), enc)
	if err := f.cfg.Engine.Apply(ctx, &b); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return f.conflictLocked(ctx)
		}
		return storeError{fmt.Errorf("consent: saving cursor: %w", err)}
	}
	f.saved, f.savedAt = enc, f.now()
	return nil
}

// conflictLocked handles a failed cursor condition: another follower
// writes the same keyspace. The state is reloaded from the store.
func (f *Follower) conflictLocked(ctx context.Context) error {
	f.log.Warn("consent: another follower changed the state in this keyspace; reloading it (give each follower its own Keyspace)")
	f.mu.Unlock()
	err := f.reload(ctx)
	f.mu.Lock()
	if err != nil {
		return err
	}
	return storeError{errors.New("consent: state changed by another follower; reloaded")}
}

// storeError marks a failure of the follower's own store (not of the
// chain node), for Health's message.
type storeError struct{ error }

func (e storeError) Unwrap() error { return e.error }

// reload rebuilds the memory state from the store and reconciles the
// policy mirror with it.
func (f *Follower) reload(ctx context.Context) error {
	f.mu.Lock()
	old := make([]gkey, 0, len(f.rows))
	for k := range f.rows {
		old = append(old, k)
	}
	f.rows = map[gkey]*row{}
	f.byPatient = map[common.Address]map[gkey]struct{}{}
	f.byGrantee = map[common.Hash]map[gkey]struct{}{}
	f.undo, f.recent = nil, nil
	f.mu.Unlock()
	if err := f.load(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now().Unix()
	for _, k := range old {
		if _, ok := f.rows[k]; !ok {
			f.reconcileLocked(k, now)
		}
	}
	return nil
}

// reorg finds the newest block the follower applied that is still
// canonical and undoes every applied block above it. With no such block
// within the kept history, it rebuilds the state from StartBlock.
func (f *Follower) reorg(ctx context.Context) error {
	f.mu.Lock()
	cands := []blockRef{f.cur.blockRef, f.floor}
	cands = append(cands, f.recent...)
	for _, u := range f.undo {
		cands = append(cands, u.blockRef)
	}
	f.mu.Unlock()
	slices.SortFunc(cands, func(a, b blockRef) int { return cmpU64(b.Number, a.Number) })
	var fork *blockRef
	checked := map[blockRef]bool{}
	for i := range cands {
		c := cands[i]
		if checked[c] {
			continue
		}
		checked[c] = true
		ok, err := f.canonical(ctx, c)
		if err != nil {
			return err
		}
		if ok {
			fork = &c
			break
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fork == nil {
		f.log.Warn("consent: reorg deeper than the kept history; rebuilding consent state from the registry's start block",
			"block", f.cur.Number, "startBlock", f.cfg.StartBlock)
		f.rebuilds++
		return f.resetLocked(ctx)
	}
	f.reorgs++
	s := &stage{f: f, rows: map[gkey]*row{}, cur: f.cur}
	var keep []*undoRec
	for i := len(f.undo) - 1; i >= 0; i-- {
		u := f.undo[i]
		if u.Number <= fork.Number {
			keep = append([]*undoRec{u}, keep...)
			continue
		}
		for j := len(u.Keys) - 1; j >= 0; j-- {
			s.set(u.Keys[j], u.Prev[j])
		}
		s.cur.Events -= uint64(u.Events)
		s.dropped = append(s.dropped, u)
	}
	s.cur.blockRef = *fork
	var b store.Batch
	b.Require(f.ks.cursor(), f.saved)
	for _, k := range s.order {
		if r := s.rows[k]; r != nil {
			b.Set(f.ks.row(k), r.encode())
		} else {
			b.Delete(f.ks.row(k))
		}
	}
	for _, u := range s.dropped {
		b.Delete(f.ks.undo(u.Number))
	}
	if f.floor.Number > fork.Number {
		// Only possible when the fork is the floor itself.
		b.Set(f.ks.floor(), fork.encode())
	}
	enc := s.cur.encode()
	b.Set(f.ks.cursor(), enc)
	if err := f.cfg.Engine.Apply(ctx, &b); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return f.conflictLocked(ctx)
		}
		return storeError{fmt.Errorf("consent: saving reorg to block %d: %w", fork.Number, err)}
	}
	f.log.Warn("consent: chain reorganization; undid blocks", "from", f.cur.Number, "backTo", fork.Number, "blocksWithEvents", len(s.dropped))
	f.saved, f.savedAt = enc, f.now()
	f.cur = s.cur
	f.undo = keep
	if f.floor.Number > fork.Number {
		f.floor = *fork
	}
	i := 0
	for i < len(f.recent) && f.recent[i].Number <= fork.Number {
		i++
	}
	f.recent = f.recent[:i]
	for _, k := range s.order {
		f.setRowLocked(k, s.rows[k])
	}
	now := f.now().Unix()
	for _, k := range s.order {
		f.reconcileLocked(k, now)
	}
	if f.cfg.OnChange != nil {
		at := f.now()
		for _, u := range s.dropped {
			f.cfg.OnChange(Change{Undone: true, Block: u.Number, Hash: u.Hash, At: at})
		}
	}
	return nil
}

// resetLocked discards the chain-derived state and starts again from
// StartBlock (a reorg deeper than the kept history).
func (f *Follower) resetLocked(ctx context.Context) error {
	init, err := f.c.HeaderByNumber(ctx, new(bigInt).SetUint64(f.initial.Number))
	if err != nil {
		return fmt.Errorf("consent: header %d: %w", f.initial.Number, err)
	}
	f.initial = blockRef{Number: f.initial.Number, Hash: init.Hash(), Time: init.Time}
	var b store.Batch
	b.Require(f.ks.cursor(), f.saved)
	for k := range f.rows {
		b.Delete(f.ks.row(k))
	}
	for _, u := range f.undo {
		b.Delete(f.ks.undo(u.Number))
	}
	b.Delete(f.ks.floor())
	b.Delete(f.ks.cursor())
	if err := f.cfg.Engine.Apply(ctx, &b); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return f.conflictLocked(ctx)
		}
		return storeError{fmt.Errorf("consent: resetting state: %w", err)}
	}
	old := f.rows
	f.resetMemory()
	now := f.now().Unix()
	for k := range old {
		f.reconcileLocked(k, now)
	}
	f.cur = cursor{blockRef: f.initial}
	f.floor = f.initial
	f.saved, f.savedAt = nil, f.now()
	return nil
}

// expEntry is a grant's expiry, when the follower re-checks it.
type expEntry struct {
	at int64
	k  gkey
}

type expHeap []expEntry

func (h expHeap) Len() int           { return len(h) }
func (h expHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expHeap) Push(x any)        { *h = append(*h, x.(expEntry)) }
func (h *expHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// expire takes grants whose expiry has passed out of the policy mirror
// (which already refuses them: it compares expiries with the clock) and
// updates their projection to inactive.
func (f *Follower) expire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now().Unix()
	for len(f.exp) > 0 && f.exp[0].at <= now {
		e := heap.Pop(&f.exp).(expEntry)
		if f.expAt[e.k] != e.at {
			continue // superseded by a later schedule
		}
		delete(f.expAt, e.k)
		f.reconcileLocked(e.k, now)
	}
}

// nextExpiry is how long until the next grant expires (capped).
func (f *Follower) nextExpiry() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.exp) == 0 {
		return time.Hour
	}
	d := time.Unix(f.exp[0].at, 0).Sub(f.now())
	return min(max(d, time.Millisecond), time.Hour)
}

// resolvePatients asks cfg.Patients about unmapped wallets.
func (f *Follower) resolvePatients(ctx context.Context) {
	if f.cfg.Patients == nil {
		return
	}
	f.mu.Lock()
	now := f.now()
	var todo []common.Address
	for a, at := range f.unknown {
		if !at.After(now) {
			todo = append(todo, a)
			if len(todo) == 100 {
				break
			}
		}
	}
	f.mu.Unlock()
	for _, a := range todo {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ref, err := f.cfg.Patients.PatientByWallet(rctx, CAIP10(f.chainID, a))
		cancel()
		switch {
		case err != nil:
			f.log.Warn("consent: resolving a wallet to a patient", "err", err)
			f.mu.Lock()
			if _, ok := f.unknown[a]; ok {
				f.unknown[a] = now.Add(30 * time.Second)
			}
			f.mu.Unlock()
		case ref == "":
			f.mu.Lock()
			if _, ok := f.unknown[a]; ok {
				f.unknown[a] = now.Add(5 * time.Minute)
			}
			f.mu.Unlock()
		default:
			if err := f.SetPatient(ctx, CAIP10(f.chainID, a), ref); err != nil {
				f.log.Warn("consent: resolver returned a bad patient reference", "err", err)
				f.mu.Lock()
				f.unknown[a] = now.Add(5 * time.Minute)
				f.mu.Unlock()
			}
		}
	}
}
