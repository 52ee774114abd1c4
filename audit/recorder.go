package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// ErrUnavailable: the audit trail cannot keep the event, so the request
// must fail (fail closed).
var ErrUnavailable = errors.New("audit trail unavailable")

// Author is the principal the gateway writes its own records as.
const Author = "fhirgate"

// Options tune a Recorder.
type Options struct {
	// QueueSize bounds the events gathering for the next commit; when it
	// is reached, Record refuses. Default 65,536.
	QueueSize int
	// BatchSize is the number of gathered events at which a further
	// commit starts while one is in flight (at most Writers at once).
	// Default 1,024.
	BatchSize int
	// Writers bounds the commits in flight at once. A second commit
	// starts while one is in flight only with a full batch (BatchSize
	// events): the store syncs commits one after another, so a partial
	// batch sent early would take the next sync with a few events and
	// leave the events arriving behind it for the one after. Default 2.
	Writers int
	// CommitEvents bounds the events of one engine commit: a larger
	// group is written in several commits, one after another. An event is
	// a few engine operations (its index keys, its log leaf, a read's
	// check), and an engine refuses a batch beyond its limits (store/redis:
	// 50,000 operations), which would fail every request of the group.
	// Default 2,048.
	CommitEvents int
	// NoLog leaves audit events out of the anchored log (benchmarking).
	NoLog  bool
	Logger *slog.Logger
}

// Recorder writes each request's AuditEvent durably before the request
// answers, group-committed: Record adds the event to the group gathering
// for the next commit and waits; while one commit is being synced, the
// events that arrive gather, and the next commit takes them all the moment
// it ends. There is no fixed wait: an event alone on an idle gateway is
// committed at once, and under load one synced commit carries every event
// that arrived during the previous one.
//
// Record is bounded: it refuses when QueueSize events are already
// gathering, when the recorder is closing, and when the commit holding its
// event fails; it gives up when its context ends (a Recorder that is not
// Run commits nothing). Every refusal is ErrUnavailable, and the caller
// must then fail the request (fail closed). A refusal after the event was
// taken may still leave the event on disk (the commit may succeed after
// the caller stopped waiting, or the process may die after the commit and
// before the answer): there may be events of requests whose answer never
// left, never an answer without its event.
type Recorder struct {
	trail *Trail
	opts  Options

	mu       sync.Mutex
	cur      *group // gathering for the next commit
	inflight int    // commits in flight
	closed   bool   // Record refuses
	kick     chan struct{}
	closing  chan struct{}
	done     chan struct{}

	failing atomic.Pointer[error]
	metrics metrics
}

// group is the events of one commit and how it went.
type group struct {
	events []Event
	err    error         // set before done is closed
	done   chan struct{} // closed when the commit ended
}

func newGroup(capacity int) *group {
	return &group{events: make([]Event, 0, capacity), done: make(chan struct{})}
}

// NewRecorder returns a recorder writing to trail; call Run to start
// writing.
func NewRecorder(trail *Trail, opts Options) *Recorder {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1 << 16
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1024
	}
	if opts.Writers <= 0 {
		opts.Writers = 2
	}
	if opts.CommitEvents <= 0 {
		opts.CommitEvents = 2048
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Recorder{trail: trail, opts: opts, cur: newGroup(16), kick: make(chan struct{}, opts.Writers),
		closing: make(chan struct{}), done: make(chan struct{})}
	r.metrics.init()
	return r
}

var (
	errShuttingDown = fmt.Errorf("%w: shutting down", ErrUnavailable)
	errQueueFull    = fmt.Errorf("%w: the audit queue is full", ErrUnavailable)
)

// Record writes e durably (its AuditEvent and its log leaf, in a synced
// commit) and returns nil once it is on disk. An event that names more
// entities than one AuditEvent holds is written as several events in the
// same commit (Parts), and its free-text fields are bounded. Any error
// wraps ErrUnavailable: the event may not be kept, and the caller must
// fail the request.
func (r *Recorder) Record(ctx context.Context, e Event) error {
	var parts []Event // nil: e as it is (the common case)
	if !e.fits() {
		parts = e.appendParts(nil)
	}
	return r.record(ctx, e, parts)
}

// RecordAll writes the events of one request durably in one commit, as
// Record writes one (a request that touched several patients' records is
// recorded as one event per patient).
func (r *Recorder) RecordAll(ctx context.Context, es []Event) error {
	var parts []Event
	for i := range es {
		parts = es[i].appendParts(parts)
	}
	if len(parts) == 0 {
		return nil
	}
	return r.record(ctx, Event{}, parts)
}

// record adds e (parts, if not nil) to the gathering group and waits for
// its commit.
func (r *Recorder) record(ctx context.Context, e Event, parts []Event) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.metrics.refused[refusedShutdown].Add(1)
		return errShuttingDown
	}
	g := r.cur
	if len(g.events) >= r.opts.QueueSize {
		r.mu.Unlock()
		r.metrics.refused[refusedFull].Add(1)
		return errQueueFull
	}
	if parts == nil {
		g.events = append(g.events, e)
	} else {
		g.events = append(g.events, parts...)
	}
	wake := r.inflight == 0 || (len(g.events) >= r.opts.BatchSize && r.inflight < r.opts.Writers)
	r.mu.Unlock()
	if wake {
		select {
		case r.kick <- struct{}{}:
		default: // a writer is already woken
		}
	}
	select {
	case <-g.done:
		if g.err != nil {
			r.metrics.refused[refusedFailed].Add(1)
		}
		return g.err
	case <-ctx.Done():
		r.metrics.refused[refusedGaveUp].Add(1)
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}

// Ride returns the events es of one interaction (as Record or RecordAll
// would write them) to be added to a commit the caller makes of engine e:
// store.Store.CommitWith(ctx, ws, riding.Add), where a write and its
// AuditEvents are then one atomic, durable commit instead of two in a row
// (neither can be kept without the other). It returns nil when the trail
// is not kept in e, or the recorder is closing; the caller then records as
// usual. Call Done once that commit succeeded.
func (r *Recorder) Ride(e store.Engine, es []Event) *Riding {
	if r.trail.Engine() != e {
		return nil
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil
	}
	var parts []Event
	for i := range es {
		parts = es[i].appendParts(parts)
	}
	return &Riding{r: r, parts: parts}
}

// Riding is events on their way into another commit (Ride).
type Riding struct {
	r     *Recorder
	parts []Event
}

// Add adds the events to b.
func (rd *Riding) Add(b *store.Batch) error { return rd.r.trail.addTo(b, rd.parts, rd.r.opts.NoLog) }

// Done counts the events written, once the commit succeeded.
func (rd *Riding) Done() { rd.r.metrics.rode.Add(int64(len(rd.parts))) }

// Healthy returns nil unless the last commit failed.
func (r *Recorder) Healthy() error {
	if p := r.failing.Load(); p != nil {
		return *p
	}
	return nil
}

// Written is the number of events stored so far.
func (r *Recorder) Written() int64 { return r.metrics.events.Load() }

// Batches is the number of commits that stored them.
func (r *Recorder) Batches() int64 { return r.metrics.commits.Load() }

// Run writes events until Close (then it writes every event taken before
// Close and returns) or until ctx ends (then the events not yet being
// committed are refused, and it returns when the commits in flight end).
func (r *Recorder) Run(ctx context.Context) {
	defer close(r.done)
	var wg sync.WaitGroup
	for range r.opts.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.writer(ctx)
		}()
	}
	wg.Wait()
}

// writer commits the gathered group when it may: when no commit is in
// flight, or when the group is full and fewer than Writers are. After
// each commit it looks again, so the group that gathered during the
// commit leaves the moment it ends.
func (r *Recorder) writer(ctx context.Context) {
	for {
		select {
		case <-r.kick:
		case <-r.closing:
		case <-ctx.Done():
		}
		r.mu.Lock()
		for {
			if ctx.Err() != nil {
				g := r.shutLocked()
				r.mu.Unlock()
				if len(g.events) > 0 {
					g.err = errShuttingDown
					close(g.done)
				}
				return
			}
			g := r.cur
			n := len(g.events)
			if n == 0 || r.inflight >= r.opts.Writers || (r.inflight > 0 && n < r.opts.BatchSize) {
				closed := r.closed
				r.mu.Unlock()
				if closed {
					// Nothing more can gather: what is left is taken by
					// the writer in flight when it ends.
					return
				}
				break
			}
			r.cur = newGroup(n)
			r.inflight++
			r.mu.Unlock()

			r.commit(ctx, g)

			r.mu.Lock()
			r.inflight--
		}
	}
}

// commit writes a group in one synced commit and tells its requests.
func (r *Recorder) commit(ctx context.Context, g *group) {
	start := time.Now()
	var err error
	commits := 0
	for lo := 0; lo < len(g.events) && err == nil; lo += r.opts.CommitEvents {
		err = r.trail.write(ctx, g.events[lo:min(lo+r.opts.CommitEvents, len(g.events))], r.opts.NoLog)
		commits++
	}
	r.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		e := fmt.Errorf("%w: %v", ErrUnavailable, err)
		r.failing.Store(&e)
		r.metrics.failedCommits.Add(1)
		r.opts.Logger.Error("audit write failed; the requests waiting for it fail", "err", err, "events", len(g.events))
		g.err = e
	} else {
		if r.failing.Load() != nil {
			r.failing.Store(nil)
		}
		r.metrics.events.Add(int64(len(g.events)))
		r.metrics.commits.Add(int64(commits))
	}
	close(g.done)
}

// shutLocked stops Record from adding events and returns the group
// gathering (replaced by an empty one). r.mu is held.
func (r *Recorder) shutLocked() *group {
	if !r.closed {
		r.closed = true
		close(r.closing)
	}
	g := r.cur
	r.cur = newGroup(0)
	return g
}

// Close stops accepting events and waits until the events already taken
// are written (or ctx ends). Records waiting when Close is called get
// their answer; later ones are refused.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.closing)
	}
	r.mu.Unlock()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
