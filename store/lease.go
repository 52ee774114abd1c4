package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ErrNotHeld: the lease is not held by this holder (never taken, lost to
// another holder, or released). A fenced commit of a holder that lost
// its lease fails with ErrConflict instead.
var ErrNotHeld = errors.New("lease not held")

// DefaultLeaseTTL is the lease time of NewLease with a zero TTL: a dead
// holder is replaced within TTL plus one renewal period (6 s).
const DefaultLeaseTTL = 5 * time.Second

// Lease is a named lease in the store: at most one holder at a time does
// a single-writer job (anchoring, sending the gateway's transactions),
// and every write of that job is fenced (Fence), so that a holder that
// lost the lease (paused, partitioned, taken over) cannot write any more.
//
// Two keys live under ExtensionPrefix("lease") + name:
//
//	'r' -> token(8) renewedAt(8, unix ns, for people) holder  (the record)
//	'f' -> token(8) holder                                    (the fence)
//
// The token increases at every change of holder; the record changes at
// every renewal, the fence only at a change of holder, so fenced commits
// do not race with the holder's own renewals.
//
// Clocks: no two replicas' clocks are compared. A contender takes over
// only after it has seen the same record, unchanged, for TTL on its own
// monotonic clock; the holder trusts its lease for TTL−TTL/10 from the
// moment it started its last successful renewal, on its own monotonic
// clock. Since the contender's wait starts after that renewal committed,
// the holder stops before a contender starts, as long as the two clocks'
// rates differ by less than a tenth (quartz drifts by millionths;
// wall-clock steps do not affect monotonic time). Should that fail (a
// process paused between its check and its commit), the fence refuses the
// stale holder's commit; only effects outside the store (a transaction
// broadcast) rely on the timing, and those are fenced by a store commit
// made just before them (see chain/outbox).
//
// A Lease is safe for concurrent use. Give every process its own holder
// id (NewHolderID).
type Lease struct {
	e      Engine
	rkey   []byte
	fkey   []byte
	holder string
	ttl    time.Duration
	now    func() time.Time
	sole   bool

	mu     sync.Mutex
	token  uint64    // ours while held, 0 otherwise
	last   uint64    // the last token we held (renewable while nobody took it)
	rec    []byte    // the record as we last wrote it
	until  time.Time // we trust the lease until then (monotonic)
	seen   []byte    // a contender's last observation of the record
	seenAt time.Time
	epoch  chan struct{} // closed and replaced at every change of token
}

// LeaseOptions tune a Lease.
type LeaseOptions struct {
	// TTL (default DefaultLeaseTTL). Keep renews every TTL/5.
	TTL time.Duration
	// Now is the clock (default time.Now; it must carry a monotonic
	// reading for the guarantee above).
	Now func() time.Time
	// Sole: this process is the only one with the engine open (Pebble's
	// directory lock; !IsShared) and the only user of the lease in it, so
	// a holder in the record is an earlier run, dead: taken at once
	// rather than after a TTL of watching.
	Sole bool
}

// NewLease returns the lease name as seen by holder (unique per process).
// Nothing is written until Acquire.
func NewLease(e Engine, name, holder string, o LeaseOptions) *Lease {
	if o.TTL <= 0 {
		o.TTL = DefaultLeaseTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := append(ExtensionPrefix("lease"), name...)
	p = append(p, 0)
	return &Lease{
		e: e, rkey: append(bytes.Clone(p), 'r'), fkey: append(bytes.Clone(p), 'f'),
		holder: holder, ttl: o.TTL, now: o.Now, sole: o.Sole, epoch: make(chan struct{}),
	}
}

// NewHolderID returns a holder id unique to this process: prefix, host,
// pid and a random part.
func NewHolderID(prefix string) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	host, _ := os.Hostname()
	return fmt.Sprintf("%s%s-%d-%x", prefix, host, os.Getpid(), r)
}

// Holder returns this lease's holder id.
func (l *Lease) Holder() string { return l.holder }

// TTL returns the lease time.
func (l *Lease) TTL() time.Duration { return l.ttl }

type leaseRecord struct {
	token     uint64
	renewedAt int64
	holder    string
}

func encodeLeaseRecord(r leaseRecord) []byte {
	b := binary.BigEndian.AppendUint64(nil, r.token)
	b = binary.BigEndian.AppendUint64(b, uint64(r.renewedAt))
	return append(b, r.holder...)
}

func decodeLeaseRecord(b []byte) (leaseRecord, error) {
	if len(b) < 16 {
		return leaseRecord{}, fmt.Errorf("store: corrupt lease record")
	}
	return leaseRecord{token: binary.BigEndian.Uint64(b), renewedAt: int64(binary.BigEndian.Uint64(b[8:])), holder: string(b[16:])}, nil
}

func fenceValue(token uint64, holder string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, token), holder...)
}

// Held reports whether this process holds the lease now (and may act as
// the single writer until the lease's local expiry).
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.heldLocked()
}

func (l *Lease) heldLocked() bool { return l.token != 0 && l.now().Before(l.until) }

// Token returns the fencing token while the lease is held, else 0.
func (l *Lease) Token() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.heldLocked() {
		return 0
	}
	return l.token
}

// Changed returns a channel closed at the next change of holding: the
// lease taken, lost or released by this process.
func (l *Lease) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

func (l *Lease) setTokenLocked(t uint64) {
	if t != l.token {
		l.token = t
		close(l.epoch)
		l.epoch = make(chan struct{})
	}
}

// Fence adds to b the condition that this process still holds the lease
// with its token: a commit by a holder whose lease was taken over fails
// with ErrConflict. Without the lease, b can never commit.
func (l *Lease) Fence(b *Batch) {
	l.mu.Lock()
	t := l.token
	l.mu.Unlock()
	// Token 0 is never written: an unheld lease fences every commit off.
	b.Require(l.fkey, fenceValue(t, l.holder))
}

// Acquire takes the lease if it is free (never taken, released, or its
// holder has not renewed it for TTL as this process saw it), or renews it
// if this process holds it. It reports whether this process holds it.
// Call it every TTL/5 (Keep does).
func (l *Lease) Acquire(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := l.now()
	cur, err := l.e.Get(ctx, l.rkey)
	switch {
	case errors.Is(err, ErrNotFound):
		cur = nil
	case err != nil:
		return l.heldLocked(), err
	}
	var rec leaseRecord
	if cur != nil {
		if rec, err = decodeLeaseRecord(cur); err != nil {
			return false, err
		}
	}
	var b Batch
	next := leaseRecord{token: rec.token, renewedAt: start.UnixNano(), holder: l.holder}
	switch {
	case cur != nil && l.last != 0 && rec.token == l.last && rec.holder == l.holder && bytes.Equal(cur, l.rec):
		// Ours: renew (also after a lapse, as long as nobody took it).
		b.Require(l.rkey, cur)
	case cur == nil || rec.holder == "" || l.sole || l.expiredLocked(cur, start):
		// Free, released, or abandoned: take it over with a new token.
		next.token++
		b.Require(l.rkey, cur)
		b.Set(l.fkey, fenceValue(next.token, l.holder))
	default:
		l.dropLocked()
		return false, nil
	}
	v := encodeLeaseRecord(next)
	b.Set(l.rkey, v)
	if err := l.e.Apply(ctx, &b); err != nil {
		if errors.Is(err, ErrConflict) {
			l.dropLocked()
			return false, nil
		}
		// ErrUnknownOutcome included: we do not count on it; the next
		// round sees the record and knows.
		return l.heldLocked(), err
	}
	l.rec, l.until, l.last = v, start.Add(l.ttl-l.ttl/10), next.token
	l.seen = nil
	l.setTokenLocked(next.token)
	return true, nil
}

// expiredLocked reports whether a contender has seen the record cur
// unchanged for TTL, starting the watch when it changed.
func (l *Lease) expiredLocked(cur []byte, now time.Time) bool {
	if !bytes.Equal(cur, l.seen) {
		l.seen, l.seenAt = bytes.Clone(cur), now
		return false
	}
	return now.Sub(l.seenAt) >= l.ttl
}

func (l *Lease) dropLocked() {
	l.rec, l.until, l.last = nil, time.Time{}, 0
	l.setTokenLocked(0)
}

// Release gives the lease up at once (a contender takes it at its next
// Acquire) and fences off this holder's later commits.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == 0 {
		return nil
	}
	var b Batch
	b.Require(l.rkey, l.rec)
	b.Set(l.rkey, encodeLeaseRecord(leaseRecord{token: l.last, renewedAt: l.now().UnixNano()}))
	b.Set(l.fkey, fenceValue(l.last, ""))
	err := l.e.Apply(ctx, &b)
	l.dropLocked()
	if errors.Is(err, ErrConflict) {
		return nil // taken over already
	}
	return err
}

// LeaseInfo is the lease as the store holds it.
type LeaseInfo struct {
	Holder    string    `json:"holder"` // "" when free
	Token     uint64    `json:"token"`
	RenewedAt time.Time `json:"renewedAt"` // by the holder's clock
}

// Info reads the lease's record.
func (l *Lease) Info(ctx context.Context) (LeaseInfo, error) {
	b, err := l.e.Get(ctx, l.rkey)
	if errors.Is(err, ErrNotFound) {
		return LeaseInfo{}, nil
	}
	if err != nil {
		return LeaseInfo{}, err
	}
	r, err := decodeLeaseRecord(b)
	if err != nil {
		return LeaseInfo{}, err
	}
	return LeaseInfo{Holder: r.holder, Token: r.token, RenewedAt: time.Unix(0, r.renewedAt).UTC()}, nil
}

// Keep campaigns for the lease and renews it every TTL/5 until ctx ends,
// then releases it. onErr, if set, hears store failures (the lease is
// lost by itself when renewals fail for TTL).
func (l *Lease) Keep(ctx context.Context, onErr func(error)) {
	t := time.NewTicker(l.ttl / 5)
	defer t.Stop()
	for {
		if _, err := l.Acquire(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.ttl)
			if err := l.Release(rctx); err != nil && onErr != nil {
				onErr(err)
			}
			cancel()
			return
		case <-t.C:
		}
		l.mu.Lock()
		if l.token != 0 && !l.heldLocked() {
			// Renewals failed for too long: stop trusting it now and
			// fence our commits off (the next Acquire takes it back if
			// nobody else did).
			l.setTokenLocked(0)
		}
		l.mu.Unlock()
	}
}
