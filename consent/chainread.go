// The follower's chain reader: the Run loop, and reading blocks and
// registry logs near the head (block by block) or far behind (ranges).

package consent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/fhirgate/fhirgate/chain"
)

// liveWindow: within this many blocks of the safe head the follower reads
// block by block (header, then logs by block hash: each block is read
// consistently and linked to its parent); further behind it reads logs by
// ranges.
const liveWindow = 64

// Run follows the chain until ctx ends (it then saves its cursor and
// returns ctx.Err()). Run it once, in its own goroutine.
func (f *Follower) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("consent: follower already running")
	}
	defer f.running.Store(false)
	if f.cfg.Directory != nil {
		dctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); f.followDirectory(dctx) }()
		defer func() { stop(); <-done }()
	}
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
		f.takeOver(ctx)
		f.beat(ctx)
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
	f.stopBeat(sctx)
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
