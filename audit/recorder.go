package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnavailable: the audit trail cannot take the event, so the request
// must fail (fail closed).
var ErrUnavailable = errors.New("audit trail unavailable")

// Author is the principal the gateway writes its own records as.
const Author = "fhirgate"

// Options tune a Recorder.
type Options struct {
	// QueueSize bounds the events waiting to be written; when it is full,
	// Record refuses. Default 65,536.
	QueueSize int
	// BatchSize is the most events one store commit holds. Default 1,024.
	BatchSize int
	// Writers is how many batches are built and committed at once, so that
	// one batch is prepared while another waits for its fsync. Default 2.
	Writers int
	// Linger is how long a writer waits for more events after the first
	// before committing. Requests do not wait for the commit, so this
	// costs them nothing, while at a few thousand reads a second it turns
	// a synced commit per event or two into one per few dozen (the fsyncs
	// and memtable work were the noise in search tail latency). Default
	// 2 ms; negative: commit at once.
	Linger time.Duration
	// NoLog leaves audit events out of the anchored log (benchmarking).
	NoLog  bool
	Logger *slog.Logger
}

// Recorder writes audit events in batches: a request hands its event to
// the queue and goes on; one writer commits many events per durable
// commit. A request fails when the queue is full or the store is failing.
type Recorder struct {
	trail   *Trail
	opts    Options
	queue   chan Event
	failing atomic.Pointer[error]
	written atomic.Int64
	batches atomic.Int64
	closing chan struct{}
	done    chan struct{}
	once    sync.Once
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
	if opts.Linger == 0 {
		opts.Linger = 2 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Recorder{trail: trail, opts: opts, queue: make(chan Event, opts.QueueSize),
		closing: make(chan struct{}), done: make(chan struct{})}
}

// Record queues e. An error means the event cannot be kept: the caller
// must fail the request.
func (r *Recorder) Record(e Event) error {
	if err := r.Healthy(); err != nil {
		return err
	}
	select {
	case <-r.closing:
		return fmt.Errorf("%w: shutting down", ErrUnavailable)
	default:
	}
	select {
	case r.queue <- e:
		return nil
	default:
		return fmt.Errorf("%w: the audit queue is full", ErrUnavailable)
	}
}

// Healthy returns nil while events are being written.
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

// Run writes queued events until Close; it returns when the queue is
// drained.
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

// writer takes batches off the queue and commits them.
func (r *Recorder) writer(ctx context.Context) {
	batch := make([]Event, 0, r.opts.BatchSize)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		batch = batch[:0]
		select {
		case e := <-r.queue:
			batch = append(batch, e)
		case <-r.closing:
			// Drain what was accepted before closing.
			for {
				select {
				case e := <-r.queue:
					batch = append(batch, e)
					if len(batch) == r.opts.BatchSize {
						r.write(ctx, batch)
						batch = batch[:0]
					}
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				r.write(ctx, batch)
			}
			return
		}
		if r.opts.Linger > 0 {
			linger.Reset(r.opts.Linger)
		}
	fill:
		for len(batch) < r.opts.BatchSize {
			if r.opts.Linger <= 0 {
				select {
				case e := <-r.queue:
					batch = append(batch, e)
					continue
				default:
					break fill
				}
			}
			select {
			case e := <-r.queue:
				batch = append(batch, e)
			case <-linger.C:
				break fill
			case <-r.closing:
				break fill // the outer loop drains the rest
			}
		}
		linger.Stop()
		r.write(ctx, batch)
	}
}

// write commits a batch, retrying until it succeeds: accepted events are
// never dropped. While it fails, Record refuses new events.
func (r *Recorder) write(ctx context.Context, batch []Event) {
	for attempt := 0; ; attempt++ {
		err := r.trail.write(ctx, batch, r.opts.NoLog)
		if err == nil {
			r.failing.Store(nil)
			r.written.Add(int64(len(batch)))
			r.batches.Add(1)
			return
		}
		e := fmt.Errorf("%w: %v", ErrUnavailable, err)
		r.failing.Store(&e)
		r.opts.Logger.Error("audit write failed; refusing requests until it succeeds", "err", err, "attempt", attempt)
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, 5*time.Second)):
		}
	}
}

// Close stops accepting events and waits until the accepted ones are
// written (or ctx ends).
func (r *Recorder) Close(ctx context.Context) error {
	r.once.Do(func() { close(r.closing) })
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
