package consent

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/store"
)

// The relay's requests live in the store, so that every replica accepts
// them, counts them (the patient's next nonce, MaxPending) and answers
// their status, while only the holder of the sending lease sends them.
// Keys under store.ExtensionPrefix("relay"):
//
//	'r' patient(20) nonce(8) -> relayRecord (JSON)
//	'w' patient(20) nonce(8) -> ""  (work: queued or sent, not final)
//	'i' requestID(32)        -> patient(20) nonce(8)
//	'h' txHash(32)           -> patient(20) nonce(8)
//
// A patient's nonce is taken by one request only: the record's key is the
// patient and nonce, created under the condition that it is absent (or
// holds a failed request), so two replicas accepting the same nonce at
// once commit one of them. A request is accepted only at the patient's
// next nonce past those in flight, so the in-flight count (MaxPending)
// holds across replicas too.

// Request states.
const (
	stateQueued    = "queued"
	statePending   = "pending"
	stateConfirmed = "confirmed"
	stateFailed    = "failed"
)

type relayRecord struct {
	ID       common.Hash    `json:"id"`
	Kind     string         `json:"kind"`
	Patient  common.Address `json:"patient"`
	Nonce    uint64         `json:"nonce"`
	Grantee  common.Hash    `json:"grantee,omitzero"` // revocations
	Scope    common.Hash    `json:"scope,omitzero"`
	Data     hexutil.Bytes  `json:"data"`
	Gas      uint64         `json:"gas"`
	Deadline uint64         `json:"deadline"`
	State    string         `json:"state"`
	// Tx is the signed transaction as first sent; Hashes every version
	// broadcast (fee bumps), oldest first.
	Tx       hexutil.Bytes `json:"tx,omitempty"`
	Hashes   []common.Hash `json:"hashes,omitempty"`
	Block    uint64        `json:"block,omitzero"`
	Error    string        `json:"error,omitzero"`
	Accepted time.Time     `json:"accepted"`
	Done     time.Time     `json:"done,omitzero"`
}

func (rec *relayRecord) inFlight() bool { return rec.State == stateQueued || rec.State == statePending }

func (rec *relayRecord) hash() common.Hash {
	if len(rec.Hashes) == 0 {
		return common.Hash{}
	}
	return rec.Hashes[len(rec.Hashes)-1]
}

var relayPrefix = store.ExtensionPrefix("relay")

func relayKey(tag byte, parts ...[]byte) []byte {
	k := append(bytes.Clone(relayPrefix), tag)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func slot(patient common.Address, nonce uint64) []byte {
	return binary.BigEndian.AppendUint64(bytes.Clone(patient.Bytes()), nonce)
}

func recKey(patient common.Address, nonce uint64) []byte {
	return relayKey('r', slot(patient, nonce))
}

func workKey(patient common.Address, nonce uint64) []byte {
	return relayKey('w', slot(patient, nonce))
}

func idKey(id common.Hash) []byte  { return relayKey('i', id.Bytes()) }
func hashKey(h common.Hash) []byte { return relayKey('h', h.Bytes()) }
func mustJSON(rec *relayRecord) []byte {
	b, err := json.Marshal(rec)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return b
}

type storedRecord struct {
	rec *relayRecord
	raw []byte
}

// patientRecords returns the patient's records by nonce.
func (r *Relay) patientRecords(ctx context.Context, patient common.Address) (map[uint64]storedRecord, error) {
	out := map[uint64]storedRecord{}
	var derr error
	err := r.e.Scan(ctx, store.PrefixRange(relayKey('r', patient.Bytes())), func(_, v []byte) bool {
		var rec relayRecord
		if derr = json.Unmarshal(v, &rec); derr != nil {
			return false
		}
		out[rec.Nonce] = storedRecord{rec: &rec, raw: bytes.Clone(v)}
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading relay requests: %w", ErrRelayUnavailable, err)
	}
	return out, nil
}

// nextNonce is the nonce the patient's next signature must carry: the
// on-chain nonce, past the requests in flight on every replica.
func nextNonce(recs map[uint64]storedRecord, onChain uint64) uint64 {
	n := onChain
	for {
		sr, ok := recs[n]
		if !ok || !sr.rec.inFlight() {
			return n
		}
		n++
	}
}

// enqueue checks rec's nonce against the chain and every replica's
// requests and stores it, queued.
func (r *Relay) enqueue(ctx context.Context, rec *relayRecord) error {
	onChain, err := r.chainNonce(ctx, rec.Patient)
	if err != nil {
		return err
	}
	recs, err := r.patientRecords(ctx, rec.Patient)
	if err != nil {
		return err
	}
	n := rec.Nonce
	if n < onChain {
		return refuse(CodeNonce, "nonce %d was already used (the patient's next nonce is %d): a replay", n, onChain)
	}
	if sr, ok := recs[n]; ok && sr.rec.inFlight() {
		if h := sr.rec.hash(); h != (common.Hash{}) {
			return refuse(CodeNonce, "nonce %d was already submitted in %s", n, h.Hex())
		}
		return refuse(CodeNonce, "nonce %d was already submitted (request %s)", n, sr.rec.ID.Hex())
	}
	pending := 0
	for nonce, sr := range recs {
		if nonce >= onChain && sr.rec.inFlight() {
			pending++
		}
	}
	if pending >= r.cfg.MaxPending {
		return refuse(CodeBusy, "%d of the patient's transactions are still in flight; retry when they are mined", pending)
	}
	if want := nextNonce(recs, onChain); n != want {
		return refuse(CodeNonce, "nonce %d is not the patient's next nonce %d", n, want)
	}
	if rec.Kind == "revoke" && pending == 0 {
		exp, err := bind.Call(r.contract, &bind.CallOpts{Context: ctx}, r.abi.PackExpiryOf(rec.Patient, rec.Grantee, rec.Scope), r.abi.UnpackExpiryOf)
		if err != nil {
			return fmt.Errorf("%w: reading the grant: %v", ErrRelayUnavailable, err)
		}
		if exp == 0 {
			return refuse(CodeNoSuchGrant, "there is no such grant to revoke")
		}
	}
	var b store.Batch
	k := recKey(rec.Patient, n)
	if old, ok := recs[n]; ok {
		b.Require(k, old.raw) // a failed request's nonce, used again
	} else {
		b.Require(k, nil)
	}
	if n > onChain {
		// The request before it must still be in flight as read.
		b.Require(recKey(rec.Patient, n-1), recs[n-1].raw)
	}
	s := slot(rec.Patient, n)
	b.Set(k, mustJSON(rec))
	b.Set(workKey(rec.Patient, n), nil)
	b.Set(idKey(rec.ID), s)
	switch err := r.e.Apply(ctx, &b); {
	case errors.Is(err, store.ErrConflict):
		return refuse(CodeNonce, "nonce %d was submitted at the same time by another request", n)
	case err != nil:
		return fmt.Errorf("%w: storing the request: %w", ErrRelayUnavailable, err)
	}
	r.poke()
	return nil
}

func (r *Relay) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// answer waits up to AnswerWait for rec to be sent and says where it is.
func (r *Relay) answer(ctx context.Context, rec *relayRecord) Accepted {
	acc := Accepted{RequestID: rec.ID, State: stateQueued}
	deadline := time.Now().Add(r.cfg.AnswerWait)
	for {
		cur, _, err := r.record(ctx, rec.Patient, rec.Nonce)
		if err == nil && cur.ID == rec.ID && cur.State != stateQueued {
			acc.State = cur.State
			if len(cur.Hashes) > 0 {
				acc.TxHash, acc.State = cur.Hashes[0], statePending
			}
			return acc
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return acc
		}
		select {
		case <-ctx.Done():
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (r *Relay) record(ctx context.Context, patient common.Address, nonce uint64) (*relayRecord, []byte, error) {
	v, err := r.e.Get(ctx, recKey(patient, nonce))
	if err != nil {
		return nil, nil, err
	}
	var rec relayRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, nil, fmt.Errorf("consent relay: corrupt record: %w", err)
	}
	return &rec, v, nil
}

// run is the sender loop. It works only while this replica holds the
// sending lease: it sends queued requests (accepted by any replica),
// follows the transactions sent (also those of a previous holder) to
// their end, and forgets finished requests after Keep.
func (r *Relay) run() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	var (
		held    bool
		changed = r.lease.Changed()
	)
	for {
		select {
		case <-r.ctx.Done():
			r.stopDrivers()
			return
		case <-t.C:
		case <-r.wake:
		case <-changed:
			changed = r.lease.Changed()
		}
		if !r.lease.Held() {
			if held {
				r.log.Info("consent: another replica sends relayed transactions now")
				r.stopDrivers()
			}
			held = false
			continue
		}
		if !held {
			// Just became the sender: what the previous holder recorded
			// and the node lacks goes out again now.
			if err := r.s.Resume(r.ctx); err != nil && r.ctx.Err() == nil {
				r.log.Warn("consent: resuming the gateway's transactions", "err", err)
			}
		}
		held = true
		if err := r.work(r.ctx); err != nil && r.ctx.Err() == nil {
			r.log.Warn("consent: relay sender round failed", "err", err)
		}
	}
}

func (r *Relay) stopDrivers() {
	r.dmu.Lock()
	for k, cancel := range r.drivers {
		cancel()
		delete(r.drivers, k)
	}
	r.dmu.Unlock()
}

// work is one round of the sender.
func (r *Relay) work(ctx context.Context) error {
	var slots [][]byte
	p := relayKey('w')
	err := r.e.Scan(ctx, store.PrefixRange(p), func(k, _ []byte) bool {
		slots = append(slots, bytes.Clone(k[len(p):]))
		return true
	})
	if err != nil {
		return err
	}
	blocked := map[common.Address]bool{} // a patient whose earlier request could not be sent
	for _, s := range slots {
		if len(s) != 28 {
			continue
		}
		patient, nonce := common.BytesToAddress(s[:20]), binary.BigEndian.Uint64(s[20:])
		rec, raw, err := r.record(ctx, patient, nonce)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		switch rec.State {
		case stateQueued:
			if blocked[patient] {
				continue
			}
			if err := r.send(ctx, rec, raw); err != nil {
				blocked[patient] = true
				if !errors.Is(err, store.ErrNotHeld) && !errors.Is(err, store.ErrConflict) && err.Error() != r.lastErr {
					r.log.Warn("consent: sending a relayed transaction failed; retrying", "id", rec.ID, "err", err)
				}
				r.lastErr = err.Error()
			} else {
				r.lastErr = ""
			}
		case statePending:
			r.drive(rec)
		default:
			var b store.Batch
			r.lease.Fence(&b)
			b.Delete(workKey(patient, nonce))
			_ = r.e.Apply(ctx, &b)
		}
	}
	if time.Since(r.lastGC) > min(r.cfg.Keep/4, time.Minute) {
		r.lastGC = time.Now()
		return r.gc(ctx)
	}
	return nil
}

// send sends a queued request. With the Sender's outbox Gate, the
// record turns pending in the same fenced commit that records the signed
// transaction, before its broadcast; without one (one process), right
// after the broadcast.
func (r *Relay) send(ctx context.Context, rec *relayRecord, raw []byte) error {
	if rec.Deadline < uint64(r.cfg.Now().Unix())+1 {
		rec.State, rec.Error, rec.Done = stateFailed, "its deadline passed before it could be sent", r.cfg.Now().UTC()
		return r.update(ctx, rec, raw, nil)
	}
	k := recKey(rec.Patient, rec.Nonce)
	var noted bool
	pendingRec := func(tx *types.Transaction) (*relayRecord, []byte) {
		bin, _ := tx.MarshalBinary()
		nr := *rec
		nr.State, nr.Tx, nr.Hashes = statePending, bin, []common.Hash{tx.Hash()}
		return &nr, mustJSON(&nr)
	}
	to := r.cfg.Registry
	p, err := r.s.Send(ctx, chain.TxRequest{To: &to, Data: rec.Data, Gas: rec.Gas, Note: func(tx *types.Transaction) any {
		noted = true
		nr, v := pendingRec(tx)
		return func(b *store.Batch) {
			b.Require(k, raw)
			b.Set(k, v)
			b.Set(hashKey(tx.Hash()), slot(nr.Patient, nr.Nonce))
		}
	}})
	if err != nil {
		if noted {
			// Recorded as pending but maybe not broadcast: put it back
			// in the queue (the outbox's record of its nonce is replaced
			// by whatever is sent next with that nonce).
			cur, curRaw, gerr := r.record(ctx, rec.Patient, rec.Nonce)
			if gerr == nil && cur.ID == rec.ID && cur.State == statePending {
				_ = r.update(ctx, rec, curRaw, nil)
			}
		}
		return err
	}
	nr, v := pendingRec(p.Tx())
	if !noted {
		var b store.Batch
		r.lease.Fence(&b)
		b.Require(k, raw)
		b.Set(k, v)
		b.Set(hashKey(p.Hash()), slot(nr.Patient, nr.Nonce))
		if err := r.e.Apply(ctx, &b); err != nil {
			r.log.Error("consent: a relayed transaction was sent but not recorded", "tx", p.Hash(), "err", err)
		}
	}
	r.log.Info("consent: relayed", "kind", rec.Kind, "tx", p.Hash())
	r.startDriver(nr, p)
	return nil
}

// update replaces the record raw with rec (fenced), adding index keys for
// hashes.
func (r *Relay) update(ctx context.Context, rec *relayRecord, raw []byte, hashes []common.Hash) error {
	var b store.Batch
	r.lease.Fence(&b)
	k := recKey(rec.Patient, rec.Nonce)
	b.Require(k, raw)
	b.Set(k, mustJSON(rec))
	for _, h := range hashes {
		b.Set(hashKey(h), slot(rec.Patient, rec.Nonce))
	}
	if !rec.inFlight() {
		b.Delete(workKey(rec.Patient, rec.Nonce))
	}
	return r.e.Apply(ctx, &b)
}

// drive follows a pending request's transaction, sent by this replica or
// by a previous holder of the lease.
func (r *Relay) drive(rec *relayRecord) {
	key := string(slot(rec.Patient, rec.Nonce))
	r.dmu.Lock()
	_, ok := r.drivers[key]
	r.dmu.Unlock()
	if ok || len(rec.Tx) == 0 {
		return
	}
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(rec.Tx); err != nil {
		r.log.Error("consent: a relayed transaction's record is unreadable", "id", rec.ID, "err", err)
		return
	}
	r.startDriver(rec, r.s.Adopt(tx))
}

func (r *Relay) startDriver(rec *relayRecord, p *chain.Pending) {
	key := string(slot(rec.Patient, rec.Nonce))
	r.dmu.Lock()
	defer r.dmu.Unlock()
	if _, ok := r.drivers[key]; ok || r.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	r.drivers[key] = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.dmu.Lock()
			delete(r.drivers, key)
			r.dmu.Unlock()
			cancel()
		}()
		r.follow(ctx, rec, p)
	}()
}

// follow waits for p to its end and records the outcome.
func (r *Relay) follow(ctx context.Context, rec *relayRecord, p *chain.Pending) {
	var (
		rcpt *types.Receipt
		err  error
	)
	for tries := 0; ; tries++ {
		rcpt, err = r.s.Wait(ctx, p)
		var re *chain.ReorgError
		if !errors.As(err, &re) || tries >= 8 {
			break
		}
		// Reorged out: it normally returns to the pool; make sure.
		if serr := r.c.SendTransaction(ctx, p.Tx()); serr != nil {
			r.log.Debug("consent: rebroadcast after reorg", "tx", re.TxHash, "err", serr)
		}
	}
	if ctx.Err() != nil {
		return // closing or lease lost: the next holder follows it
	}
	cur, raw, gerr := r.record(ctx, rec.Patient, rec.Nonce)
	if gerr != nil || cur.ID != rec.ID || cur.State != statePending {
		return
	}
	cur.Hashes, cur.Done = p.Hashes(), r.cfg.Now().UTC()
	switch {
	case err == nil:
		cur.State, cur.Block = stateConfirmed, rcpt.BlockNumber.Uint64()
	case errors.Is(err, chain.ErrReverted):
		cur.State, cur.Error = stateFailed, "the registry rejected the transaction"
		if rcpt != nil {
			cur.Block = rcpt.BlockNumber.Uint64()
		}
	default:
		cur.State, cur.Error = stateFailed, "not mined: "+err.Error()
	}
	if err := r.update(ctx, cur, raw, cur.Hashes); err != nil && ctx.Err() == nil {
		r.log.Warn("consent: recording a relayed transaction's outcome", "tx", p.Hash(), "err", err)
	}
}

// gc forgets finished requests older than Keep.
func (r *Relay) gc(ctx context.Context) error {
	cut := r.cfg.Now().Add(-r.cfg.Keep)
	var old []*relayRecord
	err := r.e.Scan(ctx, store.PrefixRange(relayKey('r')), func(_, v []byte) bool {
		var rec relayRecord
		if json.Unmarshal(v, &rec) == nil && !rec.inFlight() && !rec.Done.IsZero() && rec.Done.Before(cut) {
			old = append(old, &rec)
		}
		return len(old) < 1000
	})
	if err != nil || len(old) == 0 {
		return err
	}
	var b store.Batch
	r.lease.Fence(&b)
	for _, rec := range old {
		b.Delete(recKey(rec.Patient, rec.Nonce))
		b.Delete(idKey(rec.ID))
		for _, h := range rec.Hashes {
			b.Delete(hashKey(h))
		}
	}
	return r.e.Apply(ctx, &b)
}

// lookup finds the request named by a transaction hash or a request id.
func (r *Relay) lookup(ctx context.Context, h common.Hash) (*relayRecord, error) {
	for _, k := range [][]byte{hashKey(h), idKey(h)} {
		s, err := r.e.Get(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(s) != 28 {
			continue
		}
		rec, _, err := r.record(ctx, common.BytesToAddress(s[:20]), binary.BigEndian.Uint64(s[20:]))
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if rec.ID == h {
			return rec, nil
		}
		for _, x := range rec.Hashes {
			if x == h {
				return rec, nil
			}
		}
	}
	return nil, nil
}

// Status reports a relayed request by its transaction hash (any version)
// or its request id, as accepted by any replica, or any transaction the
// node knows. ErrUnknownTx if neither.
func (r *Relay) Status(ctx context.Context, h common.Hash) (TxStatus, error) {
	rec, err := r.lookup(ctx, h)
	if err != nil {
		return TxStatus{}, fmt.Errorf("%w: %w", ErrRelayUnavailable, err)
	}
	hashes := []common.Hash{h}
	st := TxStatus{TxHash: h, State: statePending}
	if rec != nil {
		st.RequestID, st.Kind, st.TxHash = rec.ID, rec.Kind, rec.hash()
		if len(rec.Hashes) > 1 {
			st.TxHashes = rec.Hashes
		}
		switch {
		case rec.State == stateQueued:
			st.State = stateQueued
			return st, nil
		case rec.State == stateFailed && rec.Block == 0:
			st.State, st.Error = stateFailed, rec.Error
			return st, nil
		}
		hashes = rec.Hashes
	}
	rc, err := chain.FindReceipt(ctx, r.c, hashes)
	if err != nil {
		return TxStatus{}, fmt.Errorf("%w: %v", ErrRelayUnavailable, err)
	}
	if rc != nil {
		head, err := r.c.BlockNumber(ctx)
		if err != nil {
			return TxStatus{}, fmt.Errorf("%w: %v", ErrRelayUnavailable, err)
		}
		st.TxHash, st.Block = rc.TxHash, rc.BlockNumber.Uint64()
		if head >= st.Block {
			st.Confirmations = head - st.Block + 1
		}
		switch {
		case rc.Status != types.ReceiptStatusSuccessful:
			st.State, st.Error = stateFailed, "the registry rejected the transaction"
		case st.Confirmations >= r.cfg.Confirmations:
			st.State = stateConfirmed
		default:
			st.State = "mined"
		}
		return st, nil
	}
	if rec != nil {
		return st, nil
	}
	if _, _, err := r.c.TransactionByHash(ctx, h); err == nil {
		return st, nil
	} else if !errors.Is(err, ethereum.NotFound) {
		return TxStatus{}, fmt.Errorf("%w: %v", ErrRelayUnavailable, err)
	}
	return TxStatus{}, fmt.Errorf("%w: %s", ErrUnknownTx, h.Hex())
}
