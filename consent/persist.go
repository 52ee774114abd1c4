// The follower's persistence: loading its state from the store, and
// committing blocks, reorgs and resets to it in conditional batches.

package consent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/store"
)

// cursorSaveEvery bounds how long the cursor may move over blocks without
// events before it is written (blocks with events are written at once).
const cursorSaveEvery = 5 * time.Second

// load reads the persisted state (resetting it if it belongs to another
// chain or registry) and rebuilds the policy mirror.
func (f *Follower) load(ctx context.Context) error {
	eng := f.cfg.Engine
	want := f.meta()
	mb, err := eng.Get(ctx, f.ks.meta())
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("consent: read state: %w", err)
	default:
		var have meta
		if jerr := jsonUnmarshal(mb, &have); jerr != nil || have != want {
			if err := f.inUse(ctx, have); err != nil {
				return err
			}
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
				f.mapWalletLocked(a, string(v))
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

// inUse refuses to take over state of another chain or registry that a
// follower still keeps current (its heartbeat is recent): another
// deployment, or a replica configured with another registry, shares this
// keyspace. Each gateway deployment needs its own store (or Keyspace),
// and the replicas of one deployment must follow the same registry.
func (f *Follower) inUse(ctx context.Context, have meta) error {
	hb, err := f.cfg.Engine.Get(ctx, f.ks.heartbeat())
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("consent: read state: %w", err)
	}
	var h heartbeat
	if jsonUnmarshal(hb, &h) != nil || h.Meta != have {
		return nil
	}
	if age := f.now().Sub(time.Unix(h.At, 0)); age < heartbeatFresh {
		return fmt.Errorf("%w: keyspace %q holds the consent state of registry %s on chain %d, kept current %s ago by another gateway; "+
			"every replica must follow the same registry, and another deployment needs its own store or Keyspace",
			ErrKeyspaceInUse, f.cfg.Keyspace, have.Registry, have.ChainID, age.Round(time.Second))
	}
	return nil
}

// heartbeat records that a follower keeps the keyspace's state current.
type heartbeat struct {
	Meta meta  `json:"meta"`
	At   int64 `json:"at"` // unix seconds
}

// heartbeatEvery is how often a running follower writes its heartbeat;
// heartbeatFresh is how recent one must be to keep another follower from
// taking the keyspace over.
const (
	heartbeatEvery = 10 * time.Second
	heartbeatFresh = 3 * heartbeatEvery
)

// beat writes the heartbeat when due.
func (f *Follower) beat(ctx context.Context) {
	now := f.now()
	if now.Sub(f.beatAt) < heartbeatEvery {
		return
	}
	var b store.Batch
	b.Set(f.ks.heartbeat(), jsonMarshal(heartbeat{Meta: f.meta(), At: now.Unix()}))
	if err := f.cfg.Engine.Apply(ctx, &b); err != nil {
		f.log.Warn("consent: writing the heartbeat", "err", err)
		return
	}
	f.beatAt = now
}

// stopBeat withdraws this follower's heartbeat when it stops (another
// replica keeping the state current writes its own again).
func (f *Follower) stopBeat(ctx context.Context) {
	if f.beatAt.IsZero() {
		return
	}
	var b store.Batch
	b.Require(f.ks.heartbeat(), jsonMarshal(heartbeat{Meta: f.meta(), At: f.beatAt.Unix()}))
	b.Delete(f.ks.heartbeat())
	if err := f.cfg.Engine.Apply(ctx, &b); err != nil && !errors.Is(err, store.ErrConflict) {
		f.log.Warn("consent: withdrawing the heartbeat", "err", err)
	}
}

func (f *Follower) meta() meta {
	return meta{ChainID: f.chainID, Genesis: f.genesis, Registry: f.cfg.Registry, StartBlock: f.cfg.StartBlock}
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

// stage is a set of row changes not yet committed.
type stage struct {
	f       *Follower
	rows    map[gkey]*row // new values; nil = deleted
	order   []gkey
	undo    []*undoRec
	dropped []*undoRec // undo records to delete
	cur     cursor
	changes []Change
	floor   blockRef   // the floor after it
	keep    []*undoRec // the undo records kept after it
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

// commit applies blocks: stage, persist (one atomic Apply, conditional
// on the cursor this follower last saw stored), then update memory, the
// policy mirror and the projections.
//
// Several replicas follow the chain into one keyspace. The conditional
// cursor makes each block's state written once, by the first replica to
// commit it (the claim of its chain events: that replica projects them).
// A replica that loses the race reads the stored cursor and adopts what
// the winner wrote, in memory only: the state is a function of the chain,
// so it is what it would have written. It never writes while the stored
// cursor is ahead of its memory (it would move shared state back).
func (f *Follower) commit(ctx context.Context, blocks []blockData) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(blocks) > 0 {
		if ahead := f.storedAheadLocked(); ahead != nil {
			// Another replica has stored blocks this one has not applied:
			// apply those in memory, up to the stored cursor.
			i := 0
			for i < len(blocks) && blocks[i].ref.Number <= ahead.Number {
				i++
			}
			if i == 0 {
				return f.conflictLocked(ctx)
			}
			f.applyStageLocked(f.stage(blocks[:i]), blocks[:i], false)
			blocks = blocks[i:]
			if f.cur.Number == ahead.Number && string(f.cur.encode()) != string(f.saved) {
				return f.conflictLocked(ctx) // the same height, another state: a fork
			}
			continue
		}
		s := f.stage(blocks)
		if len(s.order) == 0 && len(s.dropped) == 0 {
			f.applyStageLocked(s, blocks, true)
			if f.now().Sub(f.savedAt) >= cursorSaveEvery {
				return f.saveCursorLocked(ctx)
			}
			return nil
		}
		b := f.stageBatch(s)
		err := f.cfg.Engine.Apply(ctx, b)
		if err == nil {
			f.saved, f.savedAt = s.cur.encode(), f.now()
			f.applyStageLocked(s, blocks, true)
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return storeError{fmt.Errorf("consent: saving block %d: %w", s.cur.Number, err)}
		}
		// Another replica moved the cursor: see where it is, and go on
		// from there.
		if err := f.readSavedLocked(ctx); err != nil {
			return err
		}
		if string(f.saved) == string(s.cur.encode()) {
			f.applyStageLocked(s, blocks, false) // it wrote exactly this
			return nil
		}
		if !f.rebaseLocked() {
			return f.conflictLocked(ctx)
		}
	}
	return nil
}

// stage stages blocks over the memory state.
func (f *Follower) stage(blocks []blockData) *stage {
	s := &stage{f: f, rows: map[gkey]*row{}, cur: f.cur}
	for _, b := range blocks {
		s.apply(b)
	}
	// Undo records older than the window are dropped; the newest dropped
	// becomes the floor.
	s.floor = f.floor
	for _, u := range append(slices.Clone(f.undo), s.undo...) {
		if u.Number+f.cfg.ReorgWindow <= s.cur.Number {
			s.dropped = append(s.dropped, u)
			if u.Number > s.floor.Number {
				s.floor = u.blockRef
			}
		} else {
			s.keep = append(s.keep, u)
		}
	}
	return s
}

// stageBatch is the conditional batch that persists s.
func (f *Follower) stageBatch(s *stage) *store.Batch {
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
	if s.floor != f.floor {
		b.Set(f.ks.floor(), s.floor.encode())
	}
	b.Set(f.ks.cursor(), s.cur.encode())
	return &b
}

// applyStageLocked makes s the memory state. claim: this follower wrote
// it (or it has no events), so it projects its changes; otherwise another
// replica did, and projects them (see takeOverLocked).
func (f *Follower) applyStageLocked(s *stage, blocks []blockData, claim bool) {
	f.cur = s.cur
	f.floor = s.floor
	if len(s.order) > 0 || len(s.dropped) > 0 {
		f.undo = s.keep
	}
	for _, k := range s.order {
		f.setRowLocked(k, s.rows[k])
		if claim {
			if _, ok := f.grantees[k.Grantee]; ok {
				f.preSaved[k.Grantee] = true
			}
			if ref, ok := f.patients[k.Patient]; ok {
				f.walSaved[k.Patient] = ref
			}
		}
	}
	now := f.now().Unix()
	f.adopting = !claim
	for _, k := range s.order {
		f.reconcileLocked(k, now)
		if !claim {
			f.adopted[k] = f.now().Add(projTakeOver)
		}
	}
	f.adopting = false
	f.noteRecentLocked(blocks)
	if f.cfg.OnChange != nil {
		at := f.now()
		for _, c := range s.changes {
			c.At = at
			f.cfg.OnChange(c)
		}
	}
}

// storedAheadLocked returns the stored cursor when it is known to be
// ahead of the memory state (f.saved is what this follower last read or
// wrote), nil otherwise.
func (f *Follower) storedAheadLocked() *cursor {
	if f.saved == nil {
		return nil
	}
	sc, err := decodeCursor(f.saved)
	if err != nil || sc.Number <= f.cur.Number {
		return nil
	}
	return &sc
}

// readSavedLocked reads the stored cursor into f.saved.
func (f *Follower) readSavedLocked(ctx context.Context) error {
	b, err := f.cfg.Engine.Get(ctx, f.ks.cursor())
	switch {
	case errors.Is(err, store.ErrNotFound):
		f.saved = nil
	case err != nil:
		return storeError{fmt.Errorf("consent: reading the cursor: %w", err)}
	default:
		f.saved = b
	}
	f.savedAt = f.now()
	return nil
}

// rebaseLocked checks, after a lost race, whether the stored cursor
// (f.saved) lets this follower go on: it is ahead (commit then applies in
// memory up to it), or it is a block this follower applied with no
// events since (another replica saved its cursor over empty blocks: the
// rows stored are the memory's, and the next write moves it forward).
// false: the states differ (a reorg handled elsewhere, or a reset) and the
// memory must be reloaded.
func (f *Follower) rebaseLocked() bool {
	if f.saved == nil {
		return false
	}
	sc, err := decodeCursor(f.saved)
	if err != nil {
		return false
	}
	if sc.Number > f.cur.Number {
		return true
	}
	if sc.Events != f.cur.Events {
		return false
	}
	if sc.blockRef == f.cur.blockRef {
		return true
	}
	for _, r := range f.recent {
		if r == sc.blockRef {
			return true
		}
	}
	return false
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

// saveCursorLocked persists the in-memory cursor if it moved, unless the
// stored one is ahead (another replica saved further).
func (f *Follower) saveCursorLocked(ctx context.Context) error {
	enc := f.cur.encode()
	if string(enc) == string(f.saved) || f.storedAheadLocked() != nil {
		f.savedAt = f.now()
		return nil
	}
	var b store.Batch
	b.Require(f.ks.cursor(), f.saved)
	b.Set(f.ks.cursor(), enc)
	if err := f.cfg.Engine.Apply(ctx, &b); err != nil {
		if errors.Is(err, store.ErrConflict) {
			if err := f.readSavedLocked(ctx); err != nil {
				return err
			}
			if f.rebaseLocked() {
				return nil // saved by another replica; the next write goes on from it
			}
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
	f.log.Info("consent: another replica changed the follower state differently (a reorg or a reset); reloading it")
	f.mu.Unlock()
	err := f.reload(ctx)
	f.mu.Lock()
	if err != nil {
		return err
	}
	return nil
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
