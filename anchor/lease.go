package anchor

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// ErrNotAnchorer: this replica does not hold the anchoring lease now
// (another one integrates and anchors; Config.Lease).
var ErrNotAnchorer = errors.New("anchor: another replica is the anchorer")

// active reports whether this Log is the anchorer now. When it becomes
// the anchorer (a new lease token) it first reloads the tree and the
// anchor queue from the store: the previous holder moved them on.
func (l *Log) active(ctx context.Context) bool {
	if l.lease == nil {
		return true
	}
	tok := l.lease.Token()
	if tok == 0 {
		return false
	}
	l.epochMu.Lock()
	defer l.epochMu.Unlock()
	if tok == l.epoch {
		return true
	}
	if err := l.reload(ctx); err != nil {
		if ctx.Err() == nil {
			l.log.Error("anchor: taking over anchoring: reading the stored state", "err", err)
		}
		return false
	}
	l.epoch = tok
	l.log.Info("anchor: this replica is the anchorer now", "token", tok, "integrated", l.Size(), "lastCut", l.Status().LastCut)
	return true
}

// reload reads the tree and the queue as the store holds them.
func (l *Log) reload(ctx context.Context) error {
	l.treeMu.Lock()
	err := l.loadTree(ctx)
	l.treeMu.Unlock()
	if err != nil || l.a == nil {
		return err
	}
	l.qMu.Lock()
	defer l.qMu.Unlock()
	l.open, l.lastCut = nil, 0
	l.statMu.Lock()
	l.waitingSince = time.Time{}
	l.stat = Status{Integrated: l.Size()}
	l.blocked, l.lastPreflight = nil, time.Time{}
	l.statMu.Unlock()
	return l.loadQueue(ctx)
}

// fence makes b commit only while this Log holds the lease with the token
// its state was loaded under.
func (l *Log) fence(b *store.Batch) {
	if l.lease != nil {
		l.lease.Fence(b)
	}
}

// apply commits a fenced batch; a lost lease is ErrNotAnchorer.
func (l *Log) apply(ctx context.Context, b *store.Batch) error {
	err := l.e.Apply(ctx, b)
	if err != nil && l.lease != nil && errors.Is(err, store.ErrConflict) {
		return errors.Join(ErrNotAnchorer, err)
	}
	return err
}

// IsAnchorer reports whether this replica integrates and anchors now.
func (l *Log) IsAnchorer() bool { return l.lease == nil || l.lease.Held() }

// standbyCache is a non-anchoring replica's view of the queue, read from
// the store at most once a second.
type standbyCache struct {
	mu   sync.Mutex
	at   time.Time
	stat Status
}

// standbyStatus is Status for a replica that is not the anchorer: sizes
// and queue as the store holds them (the anchorer's chain errors and
// failures are its own, and its health is its own too).
func (l *Log) standbyStatus() Status {
	c := &l.standby
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if now.Sub(c.at) < time.Second {
		return c.stat
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l.have(ctx, ^uint64(0))
	s := Status{Integrated: l.Size()}
	n := 0
	_ = l.scanCheckpoints(ctx, ^uint64(0), true, func(cp *Checkpoint) bool {
		if s.LastCut == 0 {
			s.LastCut = cp.TreeSize
		}
		switch {
		case cp.Anchored():
			s.Anchored = cp.TreeSize
			return false
		case cp.State == StatePending:
			s.Queued++
		case cp.State == StateSubmitted:
			s.Queued++
			s.InFlight++
		}
		n++
		return n < 1000
	})
	c.stat, c.at = s, now
	return s
}
