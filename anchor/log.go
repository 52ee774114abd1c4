package anchor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/compact"

	"github.com/fhirgate/fhirgate/store"
)

// restartGrace is how long a transaction sent before a restart has to
// show up on chain before its checkpoint is sent again.
const restartGrace = 10 * time.Second

// Config configures a Log. Zero values select the defaults.
type Config struct {
	// Store holds the leaves (appended by the store in each version's own
	// commit) and, under store.ExtensionPrefix("anchor"), the tree and the
	// anchor queue.
	Store *store.Store
	// Anchorer anchors checkpoints on chain; nil runs the log without
	// anchoring (the tree is kept, proofs answer ErrAnchoringDisabled).
	Anchorer Anchorer
	// Lease, when several gateway replicas share the store, makes this Log
	// integrate, cut and anchor only while this process holds it (the
	// caller keeps it: Lease.Keep); every write of the tree and the
	// anchor queue is fenced by it. Other replicas serve proofs,
	// checkpoints and health from the store, and the next holder continues
	// from the stored state. Nil: this Log is the only one (one process).
	Lease *store.Lease

	// Interval: a checkpoint is cut this often when the log grew
	// (--anchor-interval, default 5s) ...
	Interval time.Duration
	// MaxLeaves: ... or as soon as this many leaves arrived since the
	// last checkpoint, whichever comes first (default 10,000).
	MaxLeaves uint64
	// Confirmations: blocks (the anchoring block included) before a
	// checkpoint counts as anchored and proofs use it (default 1).
	Confirmations uint64
	// ReorgDepth: confirmed checkpoints are watched for reorgs until their
	// block is this deep (default 64, two epochs on Ethereum mainnet).
	ReorgDepth uint64
	// MaxInFlight bounds anchoring transactions sent and not yet mined
	// (default 16); a backlog after an outage goes out in such batches,
	// oldest first, each proven from the one before.
	MaxInFlight int
	// ResubmitAfter: a submitted checkpoint not seen on chain after this
	// long is sent again (default 90s). The Anchorer bumps fees of a
	// stuck transaction well before that; this is the fallback.
	ResubmitAfter time.Duration
	// PollInterval is the period of integration and checkpoint cutting
	// (default 200ms).
	PollInterval time.Duration
	// ChainPollInterval is the period of chain reads (confirmations, the
	// reorg watch; 3 RPC calls a round) and of retries while the chain is
	// unreachable (default 1s). A cut checkpoint and the Anchorer's report
	// of a mined transaction trigger a round at once, so this bounds the
	// lag only when the Anchorer's confirmations are fewer than
	// Confirmations.
	ChainPollInterval time.Duration
	// ChainTimeout bounds one round of chain reads and sends (default 15s).
	ChainTimeout time.Duration
	// PreflightInterval: an Anchorer that is a Preflighter is asked
	// whether it can anchor before each send and at least this often
	// (default 15s), so that a lost role shows while the log is idle.
	PreflightInterval time.Duration
	// MaxFailures: Health fails once this many anchoring transactions
	// failed in a row (default 3).
	MaxFailures int
	// StallAfter: Health fails once a checkpoint has waited this long to
	// be anchored (default 10 minutes).
	StallAfter time.Duration

	// OnConfirmed, if set, is called (from the anchoring goroutine, after
	// the record is durable) each time a checkpoint becomes anchored.
	OnConfirmed func(Checkpoint)
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.MaxLeaves == 0 {
		c.MaxLeaves = 10_000
	}
	if c.Confirmations == 0 {
		c.Confirmations = 1
	}
	if c.ReorgDepth == 0 {
		c.ReorgDepth = 64
	}
	if c.ReorgDepth < c.Confirmations {
		c.ReorgDepth = c.Confirmations
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 16
	}
	if c.ResubmitAfter <= 0 {
		c.ResubmitAfter = 90 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 200 * time.Millisecond
	}
	if c.ChainPollInterval <= 0 {
		c.ChainPollInterval = time.Second
	}
	if c.ChainTimeout <= 0 {
		c.ChainTimeout = 15 * time.Second
	}
	if c.PreflightInterval <= 0 {
		c.PreflightInterval = 15 * time.Second
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = 3
	}
	if c.StallAfter <= 0 {
		c.StallAfter = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Log is the gateway's Merkle log over the store's leaves, its durable
// anchor queue and the loop that anchors checkpoints. Open it once per
// process; Run it in the background. Reads (Root, proofs, checkpoints,
// verification) are safe from any goroutine, and read the store, so every
// gateway replica on a shared store serves them; with Config.Lease only
// the lease's holder integrates and anchors.
type Log struct {
	cfg Config
	st  *store.Store
	e   store.Engine
	k   keyspace
	a   Anchorer
	ref ChainRef
	log *slog.Logger

	treeMu     sync.Mutex // integration
	rng        *compact.Range
	size       atomic.Uint64
	sizeStored bool
	backlog    uint64 // log size at Open

	runMu sync.Mutex // one Run at a time

	// lease: see Config.Lease (nil: always the anchorer). epochMu guards
	// epoch, the lease token the in-memory tree and queue were loaded
	// under; standby caches the store's view for a replica that is not
	// the anchorer.
	lease   *store.Lease
	epochMu sync.Mutex
	epoch   uint64
	standby standbyCache

	qMu       sync.Mutex // guards open, lastCut, lastCutAt
	open      []*Checkpoint
	lastCut   uint64
	lastCutAt time.Time

	wake chan struct{}
	// confirming: an anchor is mined but short of Confirmations (chain
	// loop only): poll at PollInterval until it has them.
	confirming bool

	doneMu sync.Mutex
	done   map[uint64]doneReport

	statMu sync.Mutex
	stat   Status
	// blocked: the last Preflight's refusal (nil: none); lastPreflight:
	// when it was asked.
	blocked       error
	lastPreflight time.Time
	opened        time.Time // when Open ran (stall times start there)
	// waitingSince: when the oldest checkpoint not yet anchored was cut
	// (zero: none waits).
	waitingSince time.Time
	// latency estimates cut → confirmed (EWMA), for retry hints.
	latency time.Duration
}

type doneReport struct {
	attempt int
	tx      TxRef
	err     error
}

// Open opens the log over cfg.Store: it reads the integrated tree and the
// anchor queue left by the previous run. Leaves appended while the
// gateway was down (or between a commit and a crash) are integrated by
// Sync / Run.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if cfg.Store == nil {
		return nil, errors.New("anchor: no store")
	}
	cfg = cfg.withDefaults()
	l := &Log{
		cfg:   cfg,
		st:    cfg.Store,
		e:     cfg.Store.Engine(),
		k:     keyspace{p: store.ExtensionPrefix("anchor")},
		a:     cfg.Anchorer,
		lease: cfg.Lease,
		log:   cfg.Logger.With("component", "anchor"),
		wake:  make(chan struct{}, 1),
		done:  map[uint64]doneReport{},
	}
	l.opened = cfg.Now()
	if err := l.loadTree(ctx); err != nil {
		return nil, err
	}
	var err error
	if l.backlog, err = l.st.LogSize(ctx); err != nil {
		return nil, err
	}
	if l.a != nil {
		l.ref = l.a.Chain()
		if err := l.loadQueue(ctx); err != nil {
			return nil, err
		}
	}
	l.stat.Integrated = l.Size()
	return l, nil
}

// loadQueue reads the records after the last final one.
func (l *Log) loadQueue(ctx context.Context) error {
	var recs []*Checkpoint
	first := true
	err := l.scanCheckpoints(ctx, ^uint64(0), true, func(c *Checkpoint) bool {
		if first {
			l.lastCut, l.lastCutAt, first = c.TreeSize, c.Cut, false
		}
		if c.Anchored() {
			l.setStat(func(s *Status) { s.Anchored = max(s.Anchored, c.TreeSize) })
		}
		if c.Anchored() && c.Final {
			return false
		}
		if c.State == StateSubmitted {
			// Sent by the previous run: it may still be in the node's
			// pool, or lost with it; give it a few seconds to show up.
			c.Submitted = l.cfg.Now().Add(-l.cfg.ResubmitAfter + min(l.cfg.ResubmitAfter, restartGrace))
		}
		if c.State != StateSuperseded {
			recs = append(recs, c)
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("anchor: reading the anchor queue: %w", err)
	}
	if first { // nothing cut yet: the first checkpoint after one interval
		l.lastCutAt = l.cfg.Now()
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	l.open = recs
	for _, r := range recs {
		if r.State == StatePending || r.State == StateSubmitted {
			l.noteWaiting(r.Cut)
		}
	}
	return nil
}

// Chain returns the chain and contract checkpoints are anchored to (zero
// without an Anchorer).
func (l *Log) Chain() ChainRef { return l.ref }

// Status is a snapshot of the log and its anchoring, for health checks
// and metrics.
type Status struct {
	Integrated uint64 `json:"integrated"` // leaves in the tree
	LastCut    uint64 `json:"lastCut"`    // tree size of the newest checkpoint
	Anchored   uint64 `json:"anchored"`   // tree size of the newest anchored checkpoint
	// Queued: checkpoints pending or submitted, InFlight: of which
	// submitted (as of the last chain round).
	Queued   int `json:"queued"`
	InFlight int `json:"inFlight"`
	// ChainError is the last chain failure while the chain is
	// unreachable ("" when the last round succeeded).
	ChainError string    `json:"chainError,omitzero"`
	LastChain  time.Time `json:"lastChain,omitzero"` // last successful chain round
	// Alarm reports a disagreement between the contract and the log
	// (anchoring stops until it is resolved): it means the log was
	// rewritten or something else anchors to the contract.
	Alarm string `json:"alarm,omitzero"`
	// Blocked says why the Anchorer cannot anchor now (the account lost
	// the anchorer role, or its funds): nothing is sent until it can.
	Blocked string `json:"blocked,omitzero"`
	// Failures counts anchoring transactions that failed in a row
	// (reverted, given up, refused by the node); LastFailure is the last.
	Failures    int    `json:"failures,omitzero"`
	LastFailure string `json:"lastFailure,omitzero"`
	// Standby: another replica holds the anchoring lease; the figures are
	// the store's (the anchorer's own chain state is not known here).
	Standby bool `json:"standby,omitzero"`
}

// Status returns the current status.
func (l *Log) Status() Status {
	if l.a != nil && !l.IsAnchorer() {
		s := l.standbyStatus()
		s.Standby = true
		return s
	}
	l.statMu.Lock()
	s := l.stat
	l.statMu.Unlock()
	s.Integrated = l.Size()
	l.qMu.Lock()
	s.LastCut = l.lastCut
	l.qMu.Unlock()
	return s
}

func (l *Log) setStat(f func(*Status)) {
	l.statMu.Lock()
	f(&l.stat)
	l.statMu.Unlock()
}

func (l *Log) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Run integrates leaves, cuts checkpoints and anchors them until ctx ends.
// It returns nil when ctx is cancelled; failures along the way are logged
// and retried (see Status), never returned, so that writes go on while the
// chain is away.
func (l *Log) Run(ctx context.Context) error {
	if !l.runMu.TryLock() {
		return errors.New("anchor: Run is already running")
	}
	defer l.runMu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.cutLoop(ctx)
	}()
	if l.a != nil {
		l.chainLoop(ctx)
	}
	wg.Wait()
	return nil
}

// cutLoop integrates leaves and cuts checkpoints. Under load it
// integrates one chunk at a time, stopping exactly at MaxLeaves past the
// last checkpoint, so that checkpoints hold at most MaxLeaves leaves and
// are cut as soon as they are full. (Before the first checkpoint it
// integrates the whole backlog first: one checkpoint covers history.)
func (l *Log) cutLoop(ctx context.Context) {
	t := time.NewTicker(l.cfg.PollInterval)
	defer t.Stop()
	var lastErr string
	for {
		for ctx.Err() == nil && l.active(ctx) {
			limit := uint64(integrateChunk)
			l.qMu.Lock()
			first := l.lastCut == 0 && l.Size() < l.backlog
			if l.a != nil && !first {
				limit = l.lastCut + l.cfg.MaxLeaves - min(l.Size(), l.lastCut+l.cfg.MaxLeaves)
			}
			l.qMu.Unlock()
			n, err := l.integrateStep(ctx, limit)
			if err != nil {
				if ctx.Err() == nil && err.Error() != lastErr {
					l.log.Error("anchor: integrating leaves", "err", err)
				}
				lastErr = err.Error()
				break
			}
			lastErr = ""
			if l.a != nil && (!first || n == 0) {
				if _, err := l.maybeCut(ctx, false); err != nil && ctx.Err() == nil {
					l.log.Error("anchor: cutting a checkpoint", "err", err)
					break
				}
			}
			if n == 0 && limit > 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Cut takes a checkpoint of everything integrated now (after a Sync), if
// the log grew since the last one, and queues it for anchoring. The loop
// does this on its own every Interval or MaxLeaves; Cut is for tests and
// for flushing before a planned shutdown. It returns the checkpoint's
// tree size (the previous one if nothing was cut).
func (l *Log) Cut(ctx context.Context) (uint64, error) {
	if l.a == nil {
		return 0, ErrAnchoringDisabled
	}
	if _, err := l.Sync(ctx); err != nil {
		return 0, err
	}
	if !l.active(ctx) {
		return 0, ErrNotAnchorer
	}
	return l.maybeCut(ctx, true)
}

func (l *Log) maybeCut(ctx context.Context, force bool) (uint64, error) {
	l.qMu.Lock()
	defer l.qMu.Unlock()
	size := l.Size()
	now := l.cfg.Now()
	if size <= l.lastCut {
		return l.lastCut, nil
	}
	if !force && size-l.lastCut < l.cfg.MaxLeaves && now.Sub(l.lastCutAt) < l.cfg.Interval {
		return l.lastCut, nil
	}
	root, err := l.Root(ctx, size)
	if err != nil {
		return l.lastCut, err
	}
	c := &Checkpoint{
		TreeSize: size, Root: root, ChainID: l.ref.ChainID, Contract: l.ref.Contract,
		State: StatePending, Cut: now,
	}
	if err := l.putCheckpoint(ctx, c); err != nil {
		return l.lastCut, err
	}
	l.open = append(l.open, c)
	l.lastCut, l.lastCutAt = size, now
	l.setStat(func(s *Status) { s.Queued++ })
	l.noteWaiting(now)
	l.poke()
	return size, nil
}

// chainLoop reconciles the queue with the chain and sends anchors: every
// ChainPollInterval, and at once when a checkpoint is cut or the Anchorer
// reports a transaction's outcome.
func (l *Log) chainLoop(ctx context.Context) {
	t := time.NewTicker(l.cfg.ChainPollInterval)
	defer t.Stop()
	for {
		if !l.active(ctx) {
			// Another replica anchors: wait for the lease.
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-l.lease.Changed():
			}
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, l.cfg.ChainTimeout)
		err := l.chainRound(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.chainFailed(err)
			// Unreachable: retry at the poll pace, not at every cut.
			select {
			case <-ctx.Done():
				return
			case <-time.After(l.cfg.ChainPollInterval):
			}
			continue
		}
		next := t.C
		if l.confirming {
			next = time.After(l.cfg.PollInterval)
		}
		select {
		case <-ctx.Done():
			return
		case <-next:
		case <-l.wake:
		}
	}
}

func (l *Log) chainFailed(err error) {
	l.statMu.Lock()
	first := l.stat.ChainError == ""
	l.stat.ChainError = err.Error()
	l.statMu.Unlock()
	switch {
	case !first:
	case errors.Is(err, ErrCannotAnchor):
		l.log.Warn("anchor: the chain refused an anchoring transaction; checkpoints stay queued", "err", err)
	default:
		l.log.Warn("anchor: chain unreachable; checkpoints stay queued", "err", err)
	}
}

func (l *Log) snapshot() []*Checkpoint {
	l.qMu.Lock()
	defer l.qMu.Unlock()
	return append([]*Checkpoint(nil), l.open...)
}

// Flush makes the anchoring loop look at the chain now (for example
// after Cut).
func (l *Log) Flush() { l.poke() }
