package consent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/bindings"
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
	// ErrKeyspaceInUse: the keyspace holds the state of another chain or
	// registry that a running follower keeps current.
	ErrKeyspaceInUse = errors.New("consent: keyspace in use by another registry")
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
	// Directory, if set, is the FHIR store every replica shares, which
	// the follower learns identities from: SeedIdentities reads every
	// Patient's wallets and every Practitioner and Organization; then Run
	// follows the store's unique-name feed (store.UniqueChanges) every
	// IdentityPoll, so a wallet linked or unlinked through any replica
	// takes effect here within IdentityPoll. WalletsOf returns the CAIP-10
	// wallet identifiers a Patient body lists (rest.WalletIdentifiers).
	Directory *store.Store
	WalletsOf func(body []byte) []string
	// IdentityPoll (default 200ms) is how often the feed is read;
	// IdentityMaxLag (default 3s): Health fails when it has not been read
	// for longer than this.
	IdentityPoll   time.Duration
	IdentityMaxLag time.Duration
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
	walletsOf map[string]map[common.Address]struct{} // patient -> its wallets in patients
	walSaved  map[common.Address]string              // patients as persisted (wallets with grants only)
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
	// adopting: the changes being applied were written by another
	// replica, which projects them; adopted holds when to check that it
	// did (takeOver).
	adopting bool
	adopted  map[gkey]time.Time

	reorgs, rebuilds int
	beatAt           time.Time // the last heartbeat written

	identMu    sync.Mutex // serializes reading the unique-name feed
	identSeq   uint64     // the last feed entry applied
	identAt    atomic.Int64
	identWake  chan struct{}
	prePending map[common.Hash]string // preimages of grantees created here, to save
	unknownG   map[common.Hash]unknownGrantee

	caughtUp atomic.Int64 // unix nanos: when the follower last had every safe block applied
	headNum  atomic.Uint64
	safeNum  atomic.Uint64
	lastErr  atomic.Pointer[error]
	wake     chan struct{}
	ready    chan struct{}
	readyOne sync.Once
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
	if cfg.IdentityPoll <= 0 {
		cfg.IdentityPoll = DefaultIdentityPoll
	}
	if cfg.IdentityMaxLag <= 0 {
		cfg.IdentityMaxLag = DefaultIdentityMaxLag
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	abi := bindings.NewConsentRegistry()
	evs := abi.GetABI().Events
	f := &Follower{
		cfg:        cfg,
		c:          cfg.Client,
		ks:         keyspace{pfx: store.ExtensionPrefix(cfg.Keyspace)},
		log:        cfg.Logger.With("component", "consent"),
		now:        cfg.Now,
		abi:        abi,
		topics:     []common.Hash{evs["ConsentGranted"].ID, evs["ConsentRevoked"].ID},
		rangeSize:  cfg.RangeSize,
		patients:   map[common.Address]string{},
		walletsOf:  map[string]map[common.Address]struct{}{},
		walSaved:   map[common.Address]string{},
		grantees:   map[common.Hash]string{},
		preSaved:   map[common.Hash]bool{},
		wake:       make(chan struct{}, 1),
		identWake:  make(chan struct{}, 1),
		prePending: map[common.Hash]string{},
		unknownG:   map[common.Hash]unknownGrantee{},
		ready:      make(chan struct{}),
	}
	f.resetMemory()
	f.projected = map[gkey]projRec{}
	f.adopted = map[gkey]time.Time{}
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
		return f.identityHealth()
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

func (f *Follower) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}
