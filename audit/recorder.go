package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// ErrUnavailable: the audit trail cannot keep the event, so the request
// must fail (fail closed).
var ErrUnavailable = errors.New("audit trail unavailable")

// Author is the principal the gateway writes its own records as.
const Author = "fhirgate"

// Options tune a Recorder.
type Options struct {
	// QueueSize bounds the requests waiting for a commit to take their
	// events; when it is full, Record refuses. Default 65,536.
	QueueSize int
	// BatchSize is the number of events above which a commit takes no
	// more (one request's events always share a commit). Default 1,024.
	BatchSize int
	// Writers bounds the commits in flight at once. A second commit
	// starts while one is in flight only with a full batch (BatchSize
	// events): the store syncs commits one after another, so a partial
	// batch sent early would take the next sync with a few events and
	// leave the events arriving behind it for the one after. Default 2.
	Writers int
	// NoLog leaves audit events out of the anchored log (benchmarking).
	NoLog  bool
	Logger *slog.Logger
}

// Recorder writes each request's AuditEvent durably before the request
// answers, group-committed: Record queues the event and waits; while one
// commit is being synced, the events that arrive gather, and the next
// commit takes them all as soon as it ends. There is no fixed wait: an
// event alone on an idle gateway is committed at once, and under load
// one synced commit carries every event that arrived during the previous
// one.
//
// Record is bounded: it refuses when the queue is full, when the recorder
// is closing, and when the commit holding its event fails; it gives up
// when its context ends (a Recorder that is not Run commits nothing). Every refusal is
// ErrUnavailable, and the caller must then fail the request (fail
// closed). A refusal after the event was queued may still leave the event
// on disk (the commit may succeed after the caller stopped waiting, or
// the process may die after the commit and before the answer): there may
// be events of requests whose answer never left, never an answer without
// its event.
type Recorder struct {
	trail   *Trail
	opts    Options
	queue   chan *pending
	failing atomic.Pointer[error]
	written atomic.Int64
	batches atomic.Int64

	// mu orders Record's check of closed and its send with Close, so
	// that nothing is queued after the writers drained the queue.
	mu      sync.RWMutex
	closed  bool
	closing chan struct{}
	done    chan struct{}
	pool    sync.Pool // *pending
}

// pending is one request's events waiting for their commit.
type pending struct {
	events []Event
	err    error
	done   chan struct{} // one send when the commit ended (cap 1)
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
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Recorder{trail: trail, opts: opts, queue: make(chan *pending, opts.QueueSize),
		closing: make(chan struct{}), done: make(chan struct{})}
	r.pool.New = func() any { return &pending{events: make([]Event, 0, 1), done: make(chan struct{}, 1)} }
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
	p := r.pool.Get().(*pending)
	p.events = e.appendParts(p.events[:0])
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		r.release(p)
		return errShuttingDown
	}
	select {
	case r.queue <- p:
		r.mu.RUnlock()
	default:
		r.mu.RUnlock()
		r.release(p)
		return errQueueFull
	}
	select {
	case <-p.done:
		err := p.err
		r.release(p)
		return err
	case <-ctx.Done():
		// The writer still holds p: it is not reused.
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}

func (r *Recorder) release(p *pending) {
	clear(p.events) // drop the references the events hold
	p.events, p.err = p.events[:0], nil
	r.pool.Put(p)
}

// Healthy returns nil unless the last commit failed.
func (r *Recorder) Healthy() error {
	if p := r.failing.Load(); p != nil {
		return *p
	}
	return nil
}

// Written is the number of events stored so far.
func (r *Recorder) Written() int64 { return r.written.Load() }

// Batches is the number of commits that stored them.
func (r *Recorder) Batches() int64 { return r.batches.Load() }

// Run writes events until Close (then it writes every event queued
// before Close and returns) or until ctx ends (then the events not yet
// committed are refused, and it returns when the commits in flight end).
func (r *Recorder) Run(ctx context.Context) {
	defer close(r.done)
	work := make(chan []*pending, r.opts.Writers)
	finished := make(chan []*pending, r.opts.Writers)
	var wg sync.WaitGroup
	for range r.opts.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var events []Event
			for b := range work {
				events = r.commit(ctx, b, events)
				finished <- b[:0]
			}
		}()
	}
	r.dispatch(ctx, work, finished)
	close(work)
	wg.Wait()
}

// dispatch gathers queued requests into batches and hands them to the
// writers: a batch leaves when no commit is in flight, or when it is full
// and a writer is free. So while one commit syncs, the next batch
// gathers, and it is committed the moment the sync ends.
func (r *Recorder) dispatch(ctx context.Context, work chan<- []*pending, finished <-chan []*pending) {
	var (
		batch    []*pending
		free     [][]*pending // batch slices back from the writers
		n        int          // events in batch
		inflight int
		closing  = r.closing
		draining bool
	)
	take := func(p *pending) {
		if batch == nil {
			if k := len(free); k > 0 {
				batch, free = free[k-1], free[:k-1]
			}
		}
		batch = append(batch, p)
		n += len(p.events)
	}
	for {
		if len(batch) > 0 && inflight < r.opts.Writers && (inflight == 0 || n >= r.opts.BatchSize) {
			work <- batch // never blocks: the channel holds Writers batches
			inflight++
			batch, n = nil, 0
			continue
		}
		if draining && len(batch) == 0 && inflight == 0 && len(r.queue) == 0 {
			return
		}
		queue := r.queue
		if n >= r.opts.BatchSize {
			queue = nil // full: wait for a writer
		}
		select {
		case p := <-queue:
			take(p)
			// Take what else is waiting without another round of select.
		fill:
			for n < r.opts.BatchSize {
				select {
				case p := <-r.queue:
					take(p)
				default:
					break fill
				}
			}
		case b := <-finished:
			inflight--
			free = append(free, b)
		case <-closing:
			// Record queues nothing after Close: write what is queued.
			closing, draining = nil, true
		case <-ctx.Done():
			r.shut()
			for _, p := range batch {
				r.finish(p, errShuttingDown)
			}
			for {
				select {
				case p := <-r.queue:
					r.finish(p, errShuttingDown)
					continue
				default:
				}
				break
			}
			for ; inflight > 0; inflight-- {
				<-finished
			}
			return
		}
	}
}

// commit writes the events of a batch in one synced commit and tells
// each request the outcome. events is a reusable buffer.
func (r *Recorder) commit(ctx context.Context, batch []*pending, events []Event) []Event {
	events = events[:0]
	for _, p := range batch {
		events = append(events, p.events...)
	}
	var res error
	if err := r.trail.write(ctx, events, r.opts.NoLog); err != nil {
		e := fmt.Errorf("%w: %v", ErrUnavailable, err)
		r.failing.Store(&e)
		r.opts.Logger.Error("audit write failed; the requests waiting for it fail", "err", err, "events", len(events))
		res = e
	} else {
		if r.failing.Load() != nil {
			r.failing.Store(nil)
		}
		r.written.Add(int64(len(events)))
		r.batches.Add(1)
	}
	for _, p := range batch {
		r.finish(p, res)
	}
	clear(events)
	clear(batch)
	return events
}

// finish tells a waiting Record how its commit went.
func (r *Recorder) finish(p *pending, err error) {
	p.err = err
	p.done <- struct{}{} // cap 1, one send: never blocks
}

// shut stops Record from queueing.
func (r *Recorder) shut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		close(r.closing)
	}
}

// Close stops accepting events and waits until the queued ones are
// written (or ctx ends). Records waiting when Close is called get their
// answer; later ones are refused.
func (r *Recorder) Close(ctx context.Context) error {
	r.shut()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
