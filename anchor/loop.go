package anchor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// chainRound is one reconciliation of the anchor queue with the chain,
// followed by sending what can be sent. The chain is the truth: a
// checkpoint is anchored when an Anchored event for its (size, root) sits
// in a canonical block with enough confirmations, whatever transaction
// put it there; it stops being anchored when that block leaves the chain.
func (l *Log) chainRound(ctx context.Context) error {
	l.confirming = false
	cs, err := l.a.State(ctx)
	if err != nil {
		return err
	}
	if alarm := l.checkChain(ctx, cs); alarm != "" {
		l.statMu.Lock()
		first := l.stat.Alarm != alarm
		l.stat.Alarm, l.stat.ChainError = alarm, ""
		l.statMu.Unlock()
		if first {
			l.log.Error("anchor: contract and log disagree; anchoring stopped", "alarm", alarm)
		}
		return nil
	}
	recs := l.snapshot()
	var anchs map[uint64]Anchoring
	from := uint64(0)
	if cs.Head > l.cfg.ReorgDepth {
		from = cs.Head - l.cfg.ReorgDepth
	}
	if len(recs) > 0 || cs.TreeSize > 0 {
		list, err := l.a.Anchorings(ctx, from, cs.Head)
		if err != nil {
			return fmt.Errorf("reading Anchored events: %w", err)
		}
		anchs = make(map[uint64]Anchoring, len(list))
		for _, a := range list {
			anchs[a.TreeSize] = a
		}
	}
	if recs, err = l.adopt(ctx, cs, anchs, recs); err != nil {
		return err
	}
	if err := l.reconcile(ctx, cs, from, anchs, recs); err != nil {
		return err
	}
	toSend := false
	for _, r := range recs {
		toSend = toSend || (r.State == StatePending && r.TreeSize > cs.TreeSize)
	}
	canSend, err := l.preflight(ctx, toSend)
	if err != nil {
		return err
	}
	if canSend {
		if err := l.send(ctx, cs, recs); err != nil {
			return err
		}
	}
	l.prune()
	queued, inflight := 0, 0
	var waiting time.Time
	for _, r := range l.snapshot() {
		switch r.State {
		case StatePending:
			queued++
		case StateSubmitted:
			queued++
			inflight++
		default:
			continue
		}
		if waiting.IsZero() || r.Cut.Before(waiting) {
			waiting = r.Cut
		}
	}
	l.statMu.Lock()
	l.waitingSince = waiting
	wasDown := l.stat.ChainError != ""
	l.stat.ChainError, l.stat.Alarm, l.stat.LastChain = "", "", l.cfg.Now()
	l.stat.Queued, l.stat.InFlight = queued, inflight
	l.statMu.Unlock()
	if wasDown {
		l.log.Info("anchor: chain reachable again", "head", cs.Head, "onChain", cs.TreeSize)
	}
	return nil
}

// checkChain compares the contract's latest checkpoint with the log. A
// non-empty result is an alarm: every anchor would revert, and someone
// must look.
func (l *Log) checkChain(ctx context.Context, cs ChainState) string {
	if cs.TreeSize == 0 {
		return ""
	}
	if cs.TreeSize > l.Size() {
		if _, err := l.Sync(ctx); err != nil {
			return ""
		}
	}
	if cs.TreeSize > l.Size() {
		return fmt.Sprintf("the contract holds a checkpoint of %d leaves but the log has %d: leaves were lost from the store, or another writer anchors to this contract", cs.TreeSize, l.Size())
	}
	root, err := l.Root(ctx, cs.TreeSize)
	if err != nil {
		return ""
	}
	if root != cs.Root {
		return fmt.Sprintf("the contract's root for tree size %d is %s, the log's is %s: the log was rewritten, or another writer anchors to this contract", cs.TreeSize, cs.Root, root)
	}
	return ""
}

// adopt makes sure the contract's latest checkpoint has a confirmed record
// (it has none if the record was lost, or the checkpoint was anchored by
// an earlier installation on the same store).
func (l *Log) adopt(ctx context.Context, cs ChainState, anchs map[uint64]Anchoring, recs []*Checkpoint) ([]*Checkpoint, error) {
	if cs.TreeSize == 0 {
		return recs, nil
	}
	for _, r := range recs {
		if r.TreeSize == cs.TreeSize {
			return recs, nil
		}
	}
	rec, err := l.checkpointAt(ctx, cs.TreeSize)
	if err != nil {
		return recs, err
	}
	if rec != nil && rec.Anchored() {
		return recs, nil
	}
	a, ok := anchs[cs.TreeSize]
	if !ok {
		if a, ok, err = l.a.Find(ctx, cs.TreeSize); err != nil {
			return recs, err
		}
	}
	if !ok {
		a = Anchoring{TreeSize: cs.TreeSize, Root: cs.Root}
	}
	if rec == nil {
		rec = &Checkpoint{TreeSize: cs.TreeSize, Root: cs.Root, ChainID: l.ref.ChainID, Contract: l.ref.Contract, Cut: l.cfg.Now()}
	}
	l.log.Warn("anchor: adopting the contract's latest checkpoint, which the queue did not know", "treeSize", cs.TreeSize, "tx", a.TxHash)
	if err := l.confirm(ctx, rec, a, false); err != nil {
		return recs, err
	}
	l.qMu.Lock()
	l.open = insertSorted(l.open, rec)
	l.qMu.Unlock()
	return insertSorted(recs, rec), nil
}

func insertSorted(s []*Checkpoint, c *Checkpoint) []*Checkpoint {
	i := sort.Search(len(s), func(i int) bool { return s[i].TreeSize >= c.TreeSize })
	s = append(s, nil)
	copy(s[i+1:], s[i:])
	s[i] = c
	return s
}

// reconcile updates each record from what the chain shows.
func (l *Log) reconcile(ctx context.Context, cs ChainState, from uint64, anchs map[uint64]Anchoring, recs []*Checkpoint) error {
	confs := func(a Anchoring) uint64 {
		if cs.Head+1 < a.BlockNumber {
			return 0
		}
		return cs.Head + 1 - a.BlockNumber
	}
	done := l.takeDone()
	for _, r := range recs {
		a, found := anchs[r.TreeSize]
		if found && a.Root != r.Root {
			// Cannot happen while checkChain passes (same log, same size);
			// leave the record alone rather than guess.
			l.log.Error("anchor: an Anchored event disagrees with the queue", "treeSize", r.TreeSize, "event", a.Root, "queue", r.Root)
			continue
		}
		switch r.State {
		case StateConfirmed:
			switch {
			case found:
				changed := a.BlockHash != r.BlockHash || a.TxHash != r.TxHash
				if changed {
					l.log.Warn("anchor: checkpoint now anchored in another block", "treeSize", r.TreeSize, "block", a.BlockNumber, "tx", a.TxHash)
					r.TxHash, r.BlockNumber, r.BlockHash = a.TxHash, a.BlockNumber, a.BlockHash
					r.Reorgs++
				}
				if confs(a) >= l.cfg.ReorgDepth {
					r.Final, changed = true, true
				}
				if changed {
					if err := l.putCheckpoint(ctx, r); err != nil {
						return err
					}
				}
			case r.BlockNumber >= from && r.TreeSize > cs.TreeSize:
				// Its block left the canonical chain and the contract no
				// longer holds it: anchor it again.
				l.log.Warn("anchor: reorg removed an anchored checkpoint; anchoring it again", "treeSize", r.TreeSize, "block", r.BlockNumber, "tx", r.TxHash)
				r.State, r.Reorgs = StatePending, r.Reorgs+1
				if err := l.putCheckpoint(ctx, r); err != nil {
					return err
				}
				l.setStat(func(s *Status) {
					if s.Anchored >= r.TreeSize {
						s.Anchored = cs.TreeSize
					}
				})
			case r.BlockNumber >= from:
				// The contract is past it but the event is not in its
				// block any more: it was anchored again elsewhere.
				fa, ok, err := l.a.Find(ctx, r.TreeSize)
				if err != nil {
					return err
				}
				if ok {
					r.TxHash, r.BlockNumber, r.BlockHash = fa.TxHash, fa.BlockNumber, fa.BlockHash
				} else {
					l.log.Warn("anchor: the contract is past an anchored checkpoint whose event is gone", "treeSize", r.TreeSize)
					r.Final = true
				}
				if err := l.putCheckpoint(ctx, r); err != nil {
					return err
				}
			default:
				r.Final = true
				if err := l.putCheckpoint(ctx, r); err != nil {
					return err
				}
			}
		case StatePending, StateSubmitted:
			if found {
				if confs(a) >= l.cfg.Confirmations {
					if err := l.confirm(ctx, r, a, true); err != nil {
						return err
					}
					continue
				}
				l.confirming = true
				if r.State == StatePending {
					// Mined from an earlier attempt: wait, do not resend.
					r.State, r.TxHash = StateSubmitted, a.TxHash
					if r.Submitted.IsZero() {
						r.Submitted = l.cfg.Now()
					}
				}
				continue
			}
			if r.TreeSize <= cs.TreeSize {
				// The contract is past it: anchored before the window we
				// read, or skipped.
				fa, ok, err := l.a.Find(ctx, r.TreeSize)
				if err != nil {
					return err
				}
				if ok {
					if err := l.confirm(ctx, r, fa, true); err != nil {
						return err
					}
				} else {
					l.log.Warn("anchor: checkpoint superseded: the contract moved past it", "treeSize", r.TreeSize, "onChain", cs.TreeSize)
					r.State = StateSuperseded
					if err := l.putCheckpoint(ctx, r); err != nil {
						return err
					}
				}
				continue
			}
			if r.State != StateSubmitted {
				continue
			}
			if d, ok := done[r.TreeSize]; ok && d.attempt == r.Attempts && d.err != nil {
				l.log.Warn("anchor: anchoring transaction failed; sending again", "treeSize", r.TreeSize, "tx", d.tx.Hash, "err", d.err)
				l.failed(r.TreeSize, d.err)
				r.State = StatePending
			} else if l.cfg.Now().Sub(r.Submitted) > l.cfg.ResubmitAfter {
				l.log.Warn("anchor: anchoring transaction not mined; sending again", "treeSize", r.TreeSize, "tx", r.TxHash, "after", l.cfg.ResubmitAfter)
				r.State = StatePending
			}
			if r.State == StatePending {
				if err := l.putCheckpoint(ctx, r); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// confirm records r as anchored by a.
func (l *Log) confirm(ctx context.Context, r *Checkpoint, a Anchoring, notify bool) error {
	now := l.cfg.Now()
	r.State, r.TxHash, r.BlockNumber, r.BlockHash, r.Confirmed = StateConfirmed, a.TxHash, a.BlockNumber, a.BlockHash, now
	if err := l.putCheckpoint(ctx, r); err != nil {
		return err
	}
	lat := now.Sub(r.Cut)
	l.statMu.Lock()
	l.stat.Anchored = max(l.stat.Anchored, r.TreeSize)
	if lat > 0 {
		if l.latency == 0 {
			l.latency = lat
		} else {
			l.latency = (4*l.latency + lat) / 5
		}
	}
	l.statMu.Unlock()
	if notify {
		l.setStat(func(s *Status) { s.Failures, s.LastFailure = 0, "" })
	}
	if notify && l.cfg.OnConfirmed != nil {
		l.cfg.OnConfirmed(*r)
	}
	return nil
}

// send submits pending checkpoints in order, each proven from the
// checkpoint the contract will hold when it runs: the contract's latest,
// or the checkpoint submitted just before it (transactions from one
// account are mined in nonce order).
func (l *Log) send(ctx context.Context, cs ChainState, recs []*Checkpoint) error {
	base := cs.TreeSize
	inflight := 0
	for _, r := range recs {
		if r.TreeSize <= cs.TreeSize || r.State == StateSuperseded {
			continue
		}
		switch r.State {
		case StateSubmitted:
			inflight++
			base = r.TreeSize
			continue
		case StateConfirmed:
			base = r.TreeSize
			continue
		}
		if inflight >= l.cfg.MaxInFlight {
			return nil
		}
		if r.Attempts > 0 && base != cs.TreeSize {
			// A retry (after a revert, a lost transaction or a reorg) goes
			// out only once everything before it is on chain: a proof
			// from a checkpoint still in flight would revert again if
			// that one was lost too.
			return nil
		}
		proof, err := l.ConsistencyProof(ctx, base, r.TreeSize)
		if err != nil {
			return err
		}
		attempt := r.Attempts + 1
		size := r.TreeSize
		tx, err := l.a.Submit(ctx, AnchorRequest{
			TreeSize: r.TreeSize, Root: r.Root, PrevSize: base, Proof: proof,
			Done: func(tx TxRef, err error) { l.reportDone(size, attempt, tx, err) },
		})
		if err != nil {
			if errors.Is(err, ErrCannotAnchor) {
				l.failed(r.TreeSize, err)
			}
			return fmt.Errorf("submitting checkpoint %d: %w", r.TreeSize, err)
		}
		r.State, r.TxHash, r.Nonce, r.PrevSize = StateSubmitted, tx.Hash, tx.Nonce, base
		r.Submitted, r.Attempts = l.cfg.Now(), attempt
		if err := l.putCheckpoint(ctx, r); err != nil {
			return err
		}
		l.log.Debug("anchor: checkpoint submitted", "treeSize", r.TreeSize, "prev", base, "tx", tx.Hash, "nonce", tx.Nonce, "attempt", attempt)
		inflight++
		base = r.TreeSize
	}
	return nil
}

func (l *Log) reportDone(size uint64, attempt int, tx TxRef, err error) {
	l.doneMu.Lock()
	if d, ok := l.done[size]; !ok || d.attempt <= attempt {
		l.done[size] = doneReport{attempt: attempt, tx: tx, err: err}
	}
	l.doneMu.Unlock()
	l.poke()
}

func (l *Log) takeDone() map[uint64]doneReport {
	l.doneMu.Lock()
	defer l.doneMu.Unlock()
	d := l.done
	l.done = map[uint64]doneReport{}
	return d
}

// prune drops final and superseded records from the in-memory queue.
func (l *Log) prune() {
	l.qMu.Lock()
	defer l.qMu.Unlock()
	keep := l.open[:0]
	for _, r := range l.open {
		if (r.Anchored() && r.Final) || r.State == StateSuperseded {
			continue
		}
		keep = append(keep, r)
	}
	for i := len(keep); i < len(l.open); i++ {
		l.open[i] = nil
	}
	l.open = keep
}
