package bulk

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// errStop: the job was cancelled, or its lease lost (another replica runs
// it now): the runner stops without touching it.
var errStop = errors.New("bulk: job no longer ours")

// runner is the state of one job run on this replica.
type runner struct {
	x     *Exporter
	lease *store.Lease
	j     *job
	raw   []byte // the job record as last committed
	h     hash.Hash
	buf   []byte // the open block
	spare []byte // the block of the commit in flight
	z     []byte // the compressed block of the commit in flight (or the last)
	// inflight ends with the result of the commit in flight.
	inflight chan error
	pats     map[string]bool // patients of the open block
	count    int             // resources in buf
	mem      map[string]bool // group members
	only     map[string]bool // the patient parameter's patients; nil: all
	filters  []typeFilter    // the _typeFilter of the type being read; nil: none
	dels     []string        // deletions of the open block ("Type/id"; _since)
}

// run exports job id from where its record says it stands, then audits
// and completes it. It holds the job's lease (fenced commits).
func (x *Exporter) run(ctx context.Context, id string, lease *store.Lease) error {
	j, raw, err := x.load(ctx, id)
	if err != nil {
		return err
	}
	if j.State != stateRunning {
		return nil
	}
	r := &runner{x: x, lease: lease, j: j, raw: raw, pats: map[string]bool{}}
	if j.Req.Level == Group {
		r.mem = make(map[string]bool, len(j.Req.Members))
		for _, m := range j.Req.Members {
			r.mem[m] = true
		}
	}
	if len(j.Req.Patients) > 0 {
		r.only = make(map[string]bool, len(j.Req.Patients))
		for _, p := range j.Req.Patients {
			r.only[p] = true
		}
	}
	start := time.Now()
	err = r.export(ctx)
	if werr := r.wait(); err == nil {
		err = werr
	}
	read := time.Since(start)
	if err == nil {
		err = r.complete(ctx)
	}
	if werr := r.wait(); err == nil {
		err = werr
	}
	if err == nil {
		x.cfg.Logger.Info("bulk export complete", "job", id, "resources", r.j.Written, "files", len(r.j.Files),
			"patients", r.j.Patients, "read", read.Round(time.Millisecond), "audit", (time.Since(start) - read).Round(time.Millisecond))
	}
	switch {
	case err == nil, errors.Is(err, errStop), ctx.Err() != nil:
		return err
	}
	// Failed for good (the store or the audit trail refused, consents
	// could not be checked): the status answers why, from the job as the
	// store holds it (the last commit may not have applied); its files
	// go when it expires.
	x.cfg.Logger.Warn("bulk export failed", "job", id, "err", err)
	j, raw, ferr := x.load(ctx, id)
	if ferr == nil {
		j.State, j.Error = stateFailed, err.Error()
		j.Expires = x.cfg.Now().Add(x.cfg.Expiry)
		_, ferr = x.replace(ctx, raw, j, lease)
	}
	if ferr != nil {
		return ferr
	}
	return err
}

// export reads every remaining type and writes its files.
func (r *runner) export(ctx context.Context) error {
	j := r.j
	if j.Cur != nil {
		r.h = sha256.New()
		if err := r.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(j.Cur.Hash); err != nil {
			return fmt.Errorf("bulk: job %s: hash state: %w", j.ID, err)
		}
	}
	for j.TypeIdx < len(j.Types) {
		typ := j.Types[j.TypeIdx]
		var err error
		if r.filters, err = r.filtersOf(ctx, typ); err != nil {
			return err
		}
		err = r.x.st.EachAsOf(ctx, typ, j.After, j.TxTime, func(v *store.Version) error { return r.add(ctx, v) })
		if err != nil {
			return err
		}
		// The type is done: its last file closes with the type.
		j.TypeIdx++
		j.After = ""
		if err := r.flush(ctx, true); err != nil {
			return err
		}
	}
	return r.exportDeleted(ctx)
}

// deletedBatch is how many deletions one scan of exportDeleted reads, and
// how many a block of the types' scan holds before it is committed.
const deletedBatch = 1000

// exportDeleted writes the deletions the types' scan kept (export with
// _since) into the deleted files: one transaction Bundle per line, its
// entry the DELETE of one resource (export.html#response---complete-status,
// "deleted"). The files follow the output ones (from DelFrom); a resumed
// run goes on after the last deletion committed (After).
func (r *runner) exportDeleted(ctx context.Context) error {
	j := r.j
	if j.Req.Since.IsZero() || j.DelDone {
		return nil
	}
	if err := r.wait(); err != nil { // the types' last block holds deletions
		return err
	}
	if j.DelFrom == 0 {
		j.DelFrom = len(j.Files) + 1
	}
	pre := dataPrefix('d', j.ID)
	for {
		rg := store.PrefixRange(pre)
		if j.After != "" {
			rg.Start = append(append(slices.Clone(pre), j.After...), 0)
		}
		rg.Limit = deletedBatch
		var refs []string
		if err := r.x.e.Scan(ctx, rg, func(k, _ []byte) bool {
			refs = append(refs, string(k[len(pre):]))
			return true
		}); err != nil {
			return err
		}
		for _, ref := range refs {
			if err := ctx.Err(); err != nil {
				return err // stopping: the job stays for a takeover
			}
			line := `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":` +
				strconv.Quote(ref) + `}}]}`
			if err := r.put(ctx, &store.Version{Type: "Bundle", ID: ref, Body: []byte(line)}, nil); err != nil {
				return err
			}
		}
		if len(refs) < deletedBatch {
			break
		}
	}
	j.DelDone, j.After = true, ""
	return r.flush(ctx, true)
}

// add writes v to the open block if the caller may have it.
func (r *runner) add(ctx context.Context, v *store.Version) error {
	j := r.j
	if err := ctx.Err(); err != nil {
		return err // stopping: the job stays for a takeover
	}
	// A deletion is listed for an export with _since only (one after it).
	if (v.Deleted && j.Req.Since.IsZero()) || (!j.Req.Since.IsZero() && v.LastUpdated.Before(j.Req.Since)) {
		return nil
	}
	var pats []string
	inScope := j.Req.Level == System
	for _, c := range v.Compartments {
		if strings.HasPrefix(c, "Patient/") {
			pats = append(pats, c)
			if (j.Req.Level == Patient || r.mem[c]) && (r.only == nil || r.only[c]) {
				inScope = true
			}
		}
	}
	if !inScope {
		return nil
	}
	d := r.x.cfg.Decide(&j.Principal, v)
	if d.Unavailable {
		return errors.New("patients' consents cannot be checked now (the consent mirror is behind the chain); start the export again later")
	}
	if !d.Allow {
		return nil
	}
	if v.Deleted {
		// Listed if the caller could have had it: in scope and allowed
		// (a tombstone keeps its compartments and creator); a _typeFilter
		// cannot be checked on it (it has no body) and does not narrow it.
		r.dels = append(r.dels, v.Type+"/"+v.ID)
		for _, p := range pats {
			r.pats[p] = true
		}
		j.After = v.ID
		if len(r.dels) >= deletedBatch {
			return r.flush(ctx, false)
		}
		return nil
	}
	if r.filters != nil {
		if ok, err := matches(r.filters, v); !ok || err != nil {
			return err
		}
	}
	return r.put(ctx, v, pats)
}

// put appends v's body as a line of the open file (opening one) and
// commits the block when it is full.
func (r *runner) put(ctx context.Context, v *store.Version, pats []string) error {
	j := r.j
	if j.Cur == nil {
		j.Cur = &file{N: len(j.Files) + 1, Type: v.Type, Enc: encZstd}
		r.h = sha256.New()
	}
	r.buf = append(r.buf, v.Body...)
	r.buf = append(r.buf, '\n')
	r.h.Write(v.Body)
	r.h.Write([]byte{'\n'})
	for _, p := range pats {
		r.pats[p] = true
	}
	r.count++
	// Committed with the block: a resumed run continues after v.
	j.After = v.ID
	switch {
	case j.Cur.Count+r.count >= r.x.cfg.FileResources:
		return r.flush(ctx, true)
	case len(r.buf) >= r.x.cfg.BlockBytes:
		return r.flush(ctx, false)
	}
	return nil
}

// flush commits the open block with the job's progress (closing the file
// when closeFile): one fenced commit, conditional on the job record (a
// cancel or a takeover in between stops the runner).
func (r *runner) flush(ctx context.Context, closeFile bool) error {
	j := r.j
	var ops []store.Op
	zip := false
	if r.count > 0 {
		// ops[0]: compressed by commit, off the reading goroutine.
		zip = j.Cur.Enc == encZstd
		ops = append(ops, store.Op{Key: blockKey(j.ID, j.Cur.N, j.Cur.Blocks), Value: r.buf})
		for p := range r.pats {
			ops = append(ops, store.Op{Key: patientKey(j.ID, p), Value: []byte{}})
		}
		j.Cur.Blocks++
		j.Cur.Count += r.count
		j.Cur.Bytes += int64(len(r.buf))
		j.Written += int64(r.count)
	}
	if r.count == 0 {
		for p := range r.pats { // of deletions only
			ops = append(ops, store.Op{Key: patientKey(j.ID, p), Value: []byte{}})
		}
	}
	for _, ref := range r.dels {
		ops = append(ops, store.Op{Key: deletedKey(j.ID, ref), Value: []byte{}})
	}
	if j.Cur != nil {
		if closeFile {
			j.Cur.SHA256 = hex.EncodeToString(r.h.Sum(nil))
			j.Cur.Hash = nil
			j.Files = append(j.Files, *j.Cur)
			j.Cur = nil
		} else {
			st, err := r.h.(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				return err
			}
			j.Cur.Hash = st
		}
	}
	if len(ops) == 0 && !closeFile {
		return nil
	}
	if err := r.commit(ctx, ops, zip); err != nil {
		return err
	}
	r.count = 0
	clear(r.pats)
	r.dels = r.dels[:0]
	return nil
}

// commit writes the job record (and ops) over the last one committed,
// in the background: the next block is read while this one is synced.
// One commit is in flight at a time, each conditional on the record the
// one before wrote, so they apply in order or not at all. The block
// buffer in ops is not touched until the commit ended (two buffers take
// turns). With zip, ops[0]'s value is compressed before it is written.
func (r *runner) commit(ctx context.Context, ops []store.Op, zip bool) error {
	if err := r.wait(); err != nil {
		return err
	}
	b, err := json.Marshal(r.j)
	if err != nil {
		return err
	}
	var batch store.Batch
	batch.Require(jobKey(r.j.ID), r.raw)
	r.lease.Fence(&batch)
	batch.Ops = append(ops, store.Op{Key: jobKey(r.j.ID), Value: b})
	r.raw = b // the condition of the next commit
	done := make(chan error, 1)
	r.inflight = done
	z := r.z[:0]
	go func() {
		if zip {
			z = compress(z, batch.Ops[0].Value)
			batch.Ops[0].Value = z
			r.z = z // read by the next commit, after wait
		}
		done <- r.x.e.Apply(ctx, &batch)
	}()
	r.buf, r.spare = r.spare[:0], r.buf
	return nil
}

// wait waits for the commit in flight, if any.
func (r *runner) wait() error {
	if r.inflight == nil {
		return nil
	}
	err := <-r.inflight
	r.inflight = nil
	if errors.Is(err, store.ErrConflict) {
		return errStop // cancelled, or taken over after our lease lapsed
	}
	return err
}

// patients streams the patients whose data the job holds, in order.
func (x *Exporter) patients(ctx context.Context, id string, fn func(batch []string) error) error {
	p := dataPrefix('p', id)
	rg := store.PrefixRange(p)
	for {
		var batch []string
		var last []byte
		rg.Limit = 1000
		if err := x.e.Scan(ctx, rg, func(k, _ []byte) bool {
			batch = append(batch, string(k[len(p):]))
			last = append(last[:0], k...)
			return true
		}); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		if err := fn(batch); err != nil {
			return err
		}
		if len(batch) < rg.Limit {
			return nil
		}
		rg.Start = append(slices.Clone(last), 0)
	}
}
