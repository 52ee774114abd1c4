package bulk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// Defaults of Config.
const (
	DefaultFileResources = 10_000 // as the SMART reference server's page size
	DefaultBlockBytes    = 4 << 20
	DefaultExpiry        = 24 * time.Hour
	DefaultWorkers       = 2
	DefaultMaxJobs       = 3
)

// Config wires an Exporter.
type Config struct {
	Store *store.Store
	// Types are the resource types an export without _type reads, in
	// order (search.ResourceTypes()).
	Types []string
	// Decide says whether p may have v: the decision a search makes for
	// each match (fhir/rest.ExportDecider).
	Decide func(p *policy.Principal, v *store.Version) policy.Decision
	// Audit records the AuditEvents of each completed export; nil: none
	// (tests of the export alone).
	Audit *audit.Recorder
	// Holder names this replica in job leases (store.NewHolderID).
	Holder string
	// FileResources splits files at this many resources; BlockBytes is
	// the size of the blocks a file is kept in (one commit each).
	FileResources int
	BlockBytes    int
	// Expiry is how long a job and its files are kept after it ends.
	Expiry time.Duration
	// Workers bounds the jobs this replica runs at once; more wait.
	Workers int
	// MaxJobs bounds the exports one principal may have running (queued
	// included) across all replicas: a kick-off beyond it is refused
	// (ErrBusy), so that no caller can fill the store with jobs.
	MaxJobs int
	// LeaseTTL is each job's lease time (store.DefaultLeaseTTL).
	LeaseTTL time.Duration
	// Poll is how often Run looks for jobs to take over and to expire
	// (default 1 s).
	Poll   time.Duration
	Logger *slog.Logger
	Now    func() time.Time
}

// Exporter runs and serves bulk exports.
type Exporter struct {
	cfg  Config
	st   *store.Store
	e    store.Engine
	slot chan struct{}

	mu      sync.Mutex
	leases  map[string]*store.Lease // jobs this replica contends for
	running map[string]bool         // jobs this replica runs now
	wg      sync.WaitGroup
	ctx     context.Context // Run's: ends the runners
}

// New returns an Exporter; Run starts its background work.
func New(cfg Config) *Exporter {
	if cfg.FileResources <= 0 {
		cfg.FileResources = DefaultFileResources
	}
	if cfg.BlockBytes <= 0 {
		cfg.BlockBytes = DefaultBlockBytes
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = DefaultExpiry
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = DefaultMaxJobs
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Holder == "" {
		cfg.Holder = store.NewHolderID("export-")
	}
	if cfg.Decide == nil {
		cfg.Decide = func(*policy.Principal, *store.Version) policy.Decision { return policy.Decision{} }
	}
	return &Exporter{cfg: cfg, st: cfg.Store, e: cfg.Store.Engine(), slot: make(chan struct{}, cfg.Workers),
		leases: map[string]*store.Lease{}, running: map[string]bool{}, ctx: context.Background()}
}

// Run takes over the jobs nobody runs (their replica died, or this
// gateway restarted), deletes expired and cancelled ones, until ctx ends;
// then it waits for this replica's runners to stop (their jobs stay in
// the store, for a takeover).
func (x *Exporter) Run(ctx context.Context) {
	x.mu.Lock()
	x.ctx = ctx
	x.mu.Unlock()
	t := time.NewTicker(x.cfg.Poll)
	defer t.Stop()
	for {
		if err := x.sweep(ctx); err != nil && ctx.Err() == nil {
			x.cfg.Logger.Warn("bulk export: sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			x.wg.Wait()
			return
		case <-t.C:
		}
	}
}

// Kickoff records a new job for p and starts it on this replica (when a
// worker is free; otherwise a replica with one takes it). It returns the
// job's id.
func (x *Exporter) Kickoff(ctx context.Context, p *policy.Principal, req Request) (string, error) {
	switch n, err := x.runningOf(ctx, p); {
	case err != nil:
		return "", err
	case n >= x.cfg.MaxJobs:
		return "", ErrBusy
	}
	var raw [16]byte
	rand.Read(raw[:])
	now := x.cfg.Now().UTC().Truncate(time.Microsecond)
	j := &job{ID: hex.EncodeToString(raw[:]), Principal: *p, Req: req, State: stateRunning,
		Created: now, TxTime: now, Expires: now.Add(x.cfg.Expiry)}
	types := req.Types
	if len(types) == 0 {
		types = x.cfg.Types
	}
	for _, typ := range types {
		if x.st.IsVirtual(typ) || policy.CheckScope(p, policy.SearchType, typ) != nil {
			continue // kept elsewhere (the audit trail), or beyond the scopes
		}
		j.Types = append(j.Types, typ)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return "", err
	}
	var batch store.Batch
	batch.Require(jobKey(j.ID), nil)
	batch.Set(jobKey(j.ID), b)
	if err := x.e.Apply(ctx, &batch); err != nil {
		return "", err
	}
	x.tryStart(j.ID)
	return j.ID, nil
}

// Status is what a status poll answers.
type Status struct {
	Done bool
	// Progress is the X-Progress text while running.
	Progress string
	// Manifest is the completion manifest (Done).
	Manifest []byte
}

// Status returns job id's status for p. ErrNotFound for a job that does
// not exist or is not p's; an error wrapping ErrFailed for a failed one.
func (x *Exporter) Status(ctx context.Context, p *policy.Principal, id string) (Status, error) {
	j, _, err := x.load(ctx, id)
	if err != nil {
		return Status{}, err
	}
	if !j.owns(p) || j.State == stateDeleting || x.expired(j) {
		return Status{}, ErrNotFound
	}
	switch j.State {
	case stateComplete:
		return Status{Done: true, Manifest: j.Manifest}, nil
	case stateFailed:
		return Status{}, fmt.Errorf("%w: %s", ErrFailed, j.Error)
	}
	typ := "starting"
	if j.TypeIdx < len(j.Types) {
		typ = j.Types[j.TypeIdx]
	} else if !j.Req.Since.IsZero() && !j.DelDone {
		typ = "listing deletions"
	} else if len(j.Types) > 0 {
		typ = "auditing"
	}
	pct := 0
	if len(j.Types) > 0 {
		pct = min(99, 100*j.TypeIdx/len(j.Types))
	}
	return Status{Progress: fmt.Sprintf("%d%% of types read: %d resources written in %d files; now %s",
		pct, j.Written, len(j.Files)+btoi(j.Cur != nil), typ)}, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// FileInfo describes one output file.
type FileInfo struct {
	Type  string
	Count int
	Bytes int64
}

// File returns output file n of job id for p and a function that writes
// its content to w, block by block. ErrNotFound for anything p may not
// have (no such job, not p's, no such file); ErrNotReady before the job
// completed.
func (x *Exporter) File(ctx context.Context, p *policy.Principal, id string, n int) (FileInfo, func(w io.Writer) error, error) {
	j, _, err := x.load(ctx, id)
	if err != nil {
		return FileInfo{}, nil, err
	}
	if !j.owns(p) || j.State == stateDeleting || x.expired(j) || n < 1 || n > len(j.Files) && j.State == stateComplete {
		return FileInfo{}, nil, ErrNotFound
	}
	if j.State != stateComplete {
		return FileInfo{}, nil, ErrNotReady
	}
	f := j.Files[n-1]
	write := func(w io.Writer) error {
		var out []byte
		for blk := range f.Blocks {
			b, err := x.e.Get(ctx, blockKey(id, f.N, blk))
			if err != nil {
				return err // deleted meanwhile (cancelled or expired)
			}
			if out, err = decompress(f.Enc, out[:0], b); err != nil {
				return err
			}
			if _, err := w.Write(out); err != nil {
				return err
			}
		}
		return nil
	}
	return FileInfo{Type: f.Type, Count: f.Count, Bytes: f.Bytes}, write, nil
}

// Cancel deletes job id (running or done) and its files, for p.
func (x *Exporter) Cancel(ctx context.Context, p *policy.Principal, id string) error {
	for {
		j, raw, err := x.load(ctx, id)
		if err != nil {
			return err
		}
		if !j.owns(p) || j.State == stateDeleting || x.expired(j) {
			return ErrNotFound
		}
		j.State = stateDeleting
		_, err = x.replace(ctx, raw, j, nil)
		if errors.Is(err, store.ErrConflict) {
			continue // the runner committed a block: read it again
		}
		if err != nil {
			return err
		}
		return x.purge(ctx, j)
	}
}

func (x *Exporter) expired(j *job) bool { return x.cfg.Now().After(j.Expires) }

func (x *Exporter) load(ctx context.Context, id string) (*job, []byte, error) {
	if len(id) != 32 {
		return nil, nil, ErrNotFound
	}
	if _, err := hex.DecodeString(id); err != nil {
		return nil, nil, ErrNotFound
	}
	raw, err := x.e.Get(ctx, jobKey(id))
	if err != nil {
		return nil, nil, err
	}
	var j job
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, nil, fmt.Errorf("bulk: job %s: corrupt record: %w", id, err)
	}
	return &j, raw, nil
}

// replace commits j over the record raw (ErrConflict if it changed),
// with more's operations, fenced by lease when set. It returns the
// record's new bytes.
func (x *Exporter) replace(ctx context.Context, raw []byte, j *job, lease *store.Lease, more ...store.Op) ([]byte, error) {
	b, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	var batch store.Batch
	batch.Require(jobKey(j.ID), raw)
	if lease != nil {
		lease.Fence(&batch)
	}
	batch.Ops = append(batch.Ops, more...)
	batch.Set(jobKey(j.ID), b)
	return b, x.e.Apply(ctx, &batch)
}

// purge deletes a job's blocks, patients and deletions, then its record (a job in
// state deleting; any replica may finish what another began).
func (x *Exporter) purge(ctx context.Context, j *job) error {
	var keys [][]byte
	files := j.Files
	if j.Cur != nil {
		files = append(slices.Clone(files), *j.Cur)
	}
	for _, f := range files {
		for blk := range f.Blocks {
			keys = append(keys, blockKey(j.ID, f.N, blk))
		}
	}
	if err := x.deleteKeys(ctx, keys); err != nil {
		return err
	}
	for _, tag := range []byte{'p', 'd'} {
		p := store.PrefixRange(dataPrefix(tag, j.ID))
		for {
			keys = keys[:0]
			p.Limit = 1000
			if err := x.e.Scan(ctx, p, func(k, _ []byte) bool { keys = append(keys, bytes.Clone(k)); return true }); err != nil {
				return err
			}
			if len(keys) == 0 {
				break
			}
			if err := x.deleteKeys(ctx, keys); err != nil {
				return err
			}
		}
	}
	var b store.Batch
	b.Delete(jobKey(j.ID))
	return x.e.Apply(ctx, &b)
}

func (x *Exporter) deleteKeys(ctx context.Context, keys [][]byte) error {
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		var b store.Batch
		for _, k := range keys[:n] {
			b.Delete(k)
		}
		if err := x.e.Apply(ctx, &b); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// sweep looks at every job: deletes the expired and cancelled ones, and
// takes over the unfinished ones whose lease nobody renews.
func (x *Exporter) sweep(ctx context.Context) error {
	var ids []string
	pre := jobsPrefix()
	if err := x.e.Scan(ctx, store.PrefixRange(pre), func(k, _ []byte) bool {
		ids = append(ids, string(k[len(pre):]))
		return true
	}); err != nil {
		return err
	}
	for _, id := range ids {
		j, raw, err := x.load(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		switch {
		case j.State == stateDeleting:
			err = x.purge(ctx, j)
		case x.expired(j):
			j.State = stateDeleting
			if _, err = x.replace(ctx, raw, j, nil); err == nil {
				err = x.purge(ctx, j)
			} else if errors.Is(err, store.ErrConflict) {
				err = nil // next round
			}
		case j.State == stateRunning:
			x.tryStart(id)
		}
		if err != nil {
			return err
		}
	}
	x.mu.Lock()
	for id := range x.leases {
		if !slices.Contains(ids, id) && !x.running[id] {
			delete(x.leases, id)
		}
	}
	x.mu.Unlock()
	return nil
}

// tryStart runs job id here if a worker is free and its lease can be
// taken (free, or abandoned for a lease time).
func (x *Exporter) tryStart(id string) {
	x.mu.Lock()
	if x.running[id] {
		x.mu.Unlock()
		return
	}
	lease := x.leases[id]
	if lease == nil {
		lease = store.NewLease(x.e, "bulk/"+id, x.cfg.Holder, store.LeaseOptions{TTL: x.cfg.LeaseTTL, Sole: !store.IsShared(x.e)})
		x.leases[id] = lease
	}
	select {
	case x.slot <- struct{}{}:
	default:
		x.mu.Unlock()
		return // busy: a later sweep (here or elsewhere) takes it
	}
	ctx := x.ctx
	x.mu.Unlock()
	held, err := lease.Acquire(ctx)
	if err != nil || !held {
		<-x.slot
		return
	}
	x.mu.Lock()
	x.running[id] = true
	x.mu.Unlock()
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		rctx, stop := context.WithCancel(ctx)
		keep := make(chan struct{})
		go func() { defer close(keep); lease.Keep(rctx, nil) }()
		err := x.run(rctx, id, lease)
		stop()
		<-keep
		x.mu.Lock()
		delete(x.running, id)
		x.mu.Unlock()
		<-x.slot
		if err != nil && rctx.Err() == nil {
			x.cfg.Logger.Warn("bulk export: job stopped", "job", id, "err", err)
		}
	}()
}

// fileURL is the download URL of file n of job id.
func fileURL(base, id string, n int) string {
	return base + "/$export-file/" + id + "/" + strconv.Itoa(n) + ".ndjson"
}

// runningOf counts the exports p has running or queued. Two kick-offs at
// the same moment on two replicas may both pass: the bound holds to
// within the caller's concurrency, which is what it is for.
func (x *Exporter) runningOf(ctx context.Context, p *policy.Principal) (int, error) {
	n := 0
	var derr error
	err := x.e.Scan(ctx, store.PrefixRange(jobsPrefix()), func(_, v []byte) bool {
		var j struct {
			Principal policy.Principal `json:"principal"`
			State     string           `json:"state"`
		}
		if derr = json.Unmarshal(v, &j); derr != nil {
			return false
		}
		if j.State == stateRunning && j.Principal.Subject == p.Subject && j.Principal.Role == p.Role {
			n++
		}
		return true
	})
	if err == nil {
		err = derr
	}
	return n, err
}
