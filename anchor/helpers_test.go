package anchor

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"

	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var (
	closersMu sync.Mutex
	closers   = map[*store.Store]func(){}
)

// openStore opens a Pebble store in dir, closed at the end of the test
// unless closed before with closeStore.
func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	db, err := pebble.New(context.Background(), pebble.Config{Dir: dir, CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db, store.Options{})
	var once sync.Once
	c := func() { once.Do(func() { st.Close() }) }
	closersMu.Lock()
	closers[st] = c
	closersMu.Unlock()
	t.Cleanup(c)
	return st
}

func closeStore(st *store.Store) {
	closersMu.Lock()
	c := closers[st]
	closersMu.Unlock()
	c()
}

// writer writes resource versions with their leaves, as fhir/rest does.
type writer struct {
	st  *store.Store
	mu  sync.Mutex
	cur map[string]*store.Version
	n   int
}

func newWriter(st *store.Store) *writer { return &writer{st: st, cur: map[string]*store.Version{}} }

func body(typ, id string, vid uint64, extra string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"meta":{"versionId":"%d"},"resourceType":%q,"text":%q}`, id, vid, typ, extra)
}

// put writes the next version of typ/id (deleted: a tombstone).
func (w *writer) put(ctx context.Context, typ, id string, deleted bool) (store.Version, error) {
	w.mu.Lock()
	prev := w.cur[typ+"/"+id]
	w.n++
	n := w.n
	w.mu.Unlock()
	vid := uint64(1)
	if prev != nil {
		vid = prev.VID + 1
	}
	v := store.Version{Type: typ, ID: id, VID: vid, LastUpdated: time.Now().UTC().Truncate(time.Microsecond), Method: store.MethodCreate}
	if prev != nil && !v.LastUpdated.After(prev.LastUpdated) {
		v.LastUpdated = prev.LastUpdated.Add(time.Microsecond)
	}
	if deleted {
		v.Deleted, v.Method = true, store.MethodDelete
	} else {
		v.Body = body(typ, id, vid, fmt.Sprint("write ", n))
	}
	var p *store.Version
	if prev != nil {
		c := *prev
		c.Body = nil
		p = &c
	}
	err := w.st.Commit(ctx, []store.Write{{Prev: p, New: v, Leaf: NewLeaf(typ, id, vid, v.Body).Data()}})
	if err != nil {
		return v, err
	}
	w.mu.Lock()
	c := v
	w.cur[typ+"/"+id] = &c
	w.mu.Unlock()
	return v, nil
}

func (w *writer) create(t testing.TB, ctx context.Context, n int) []store.Version {
	t.Helper()
	var out []store.Version
	for i := 0; i < n; i++ {
		w.mu.Lock()
		id := fmt.Sprintf("p%d", len(w.cur))
		w.mu.Unlock()
		v, err := w.put(ctx, "Patient", id, false)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// createMany creates n resources, up to 500 per commit (fast: one fsync
// per commit).
func (w *writer) createMany(t testing.TB, ctx context.Context, n int) {
	t.Helper()
	for n > 0 {
		k := min(n, 500)
		ws := make([]store.Write, 0, k)
		w.mu.Lock()
		for i := 0; i < k; i++ {
			id := fmt.Sprintf("p%d", len(w.cur))
			v := store.Version{Type: "Patient", ID: id, VID: 1, LastUpdated: time.Now().UTC().Truncate(time.Microsecond), Method: store.MethodCreate}
			v.Body = body("Patient", id, 1, "bulk")
			ws = append(ws, store.Write{New: v, Leaf: NewLeaf("Patient", id, 1, v.Body).Data()})
			c := v
			w.cur["Patient/"+id] = &c
		}
		w.mu.Unlock()
		if err := w.st.Commit(ctx, ws); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
}

// currentKey mirrors store/keys.go's current-record key: 'c' type 0x00
// 0x01 id 0x00 0x01.
func currentKey(typ, id string) []byte {
	k := append([]byte{'c'}, typ...)
	k = append(k, 0, 1)
	k = append(k, id...)
	return append(k, 0, 1)
}

// versionKey mirrors store/keys.go's version key: 'v' type 0x00 0x01 id
// 0x00 0x01 vid(8 BE), for tampering with records behind the store's back.
func versionKey(typ, id string, vid uint64) []byte {
	k := append([]byte{'v'}, typ...)
	k = append(k, 0, 1)
	k = append(k, id...)
	k = append(k, 0, 1)
	return binary.BigEndian.AppendUint64(k, vid)
}

// fakeChain is an in-memory chain with an AuditAnchor that checks
// consistency proofs exactly as the contract does (transparency-dev's
// VerifyConsistency, which the contract ports), blocks made by Mine,
// reorgs, and outages.
type fakeChain struct {
	mu       sync.Mutex
	ref      ChainRef
	down     bool
	blocks   []*fakeBlock // canonical, blocks[i].number == i+1
	pool     []*fakeTx
	nextTx   uint64
	forks    uint64
	failNext int // revert the next n transactions
	reverts  int
	// contract state (recomputed from blocks)
	size  uint64
	roots map[uint64]Hash
	order []uint64 // checkpoint sizes in anchoring order
}

type fakeTx struct {
	ref  TxRef
	req  AnchorRequest
	fail bool
}

type fakeBlock struct {
	number uint64
	hash   Hash
	txs    []*fakeTx
	ok     []bool
}

var errDown = errors.New("fake chain: connection refused")

func newFakeChain() *fakeChain {
	return &fakeChain{ref: ChainRef{ChainID: 31337, Contract: "0xfake"}, roots: map[uint64]Hash{}}
}

func (f *fakeChain) Chain() ChainRef { return f.ref }

func (f *fakeChain) setDown(d bool) {
	f.mu.Lock()
	f.down = d
	f.mu.Unlock()
}

func (f *fakeChain) State(ctx context.Context) (ChainState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return ChainState{}, errDown
	}
	return ChainState{Head: uint64(len(f.blocks)), TreeSize: f.size, Root: f.roots[f.size]}, nil
}

func (f *fakeChain) Submit(ctx context.Context, req AnchorRequest) (TxRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return TxRef{}, errDown
	}
	f.nextTx++
	tx := &fakeTx{ref: TxRef{Hash: sha256.Sum256(fmt.Appendf(nil, "tx %d", f.nextTx)), Nonce: f.nextTx}, req: req}
	if f.failNext > 0 {
		f.failNext--
		tx.fail = true
	}
	f.pool = append(f.pool, tx)
	return tx.ref, nil
}

// execute runs tx against the contract state; it reports success.
func (f *fakeChain) execute(tx *fakeTx) bool {
	r := tx.req
	if tx.fail || r.TreeSize <= f.size || r.Root.IsZero() {
		return false
	}
	if f.size == 0 {
		if len(r.Proof) != 0 {
			return false
		}
	} else {
		prev := f.roots[f.size]
		if err := proof.VerifyConsistency(hasher, f.size, r.TreeSize, toBytes(r.Proof), prev[:], r.Root[:]); err != nil {
			return false
		}
	}
	f.size = r.TreeSize
	f.roots[r.TreeSize] = r.Root
	f.order = append(f.order, r.TreeSize)
	return true
}

// Mine makes one block with every pooled transaction.
func (f *fakeChain) Mine() {
	f.mu.Lock()
	b := &fakeBlock{number: uint64(len(f.blocks)) + 1}
	f.forks++
	b.hash = sha256.Sum256(fmt.Appendf(nil, "block %d fork %d", b.number, f.forks))
	var calls []func()
	for _, tx := range f.pool {
		ok := f.execute(tx)
		if !ok {
			f.reverts++
		}
		b.txs, b.ok = append(b.txs, tx), append(b.ok, ok)
		if d := tx.req.Done; d != nil {
			ref, ok := tx.ref, ok
			calls = append(calls, func() {
				if ok {
					d(ref, nil)
				} else {
					d(ref, ErrReverted)
				}
			})
		}
	}
	f.pool = nil
	f.blocks = append(f.blocks, b)
	f.mu.Unlock()
	for _, c := range calls {
		c()
	}
}

// dropPool loses every pooled transaction (a node restart).
func (f *fakeChain) dropPool() {
	f.mu.Lock()
	f.pool = nil
	f.mu.Unlock()
}

// Reorg removes the last depth blocks; their transactions go back to the
// pool when reinject is set (as geth does), else they are lost.
func (f *fakeChain) Reorg(depth int, reinject bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	gone := f.blocks[len(f.blocks)-depth:]
	f.blocks = f.blocks[:len(f.blocks)-depth]
	if reinject {
		var txs []*fakeTx
		for _, b := range gone {
			txs = append(txs, b.txs...)
		}
		f.pool = append(txs, f.pool...)
	}
	f.size, f.roots, f.order = 0, map[uint64]Hash{}, nil
	for _, b := range f.blocks {
		for i, tx := range b.txs {
			if b.ok[i] {
				f.size = tx.req.TreeSize
				f.roots[f.size] = tx.req.Root
				f.order = append(f.order, f.size)
			}
		}
	}
}

func (f *fakeChain) Anchorings(ctx context.Context, from, to uint64) ([]Anchoring, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errDown
	}
	var out []Anchoring
	for _, b := range f.blocks {
		if b.number < from || b.number > to {
			continue
		}
		for i, tx := range b.txs {
			if b.ok[i] {
				out = append(out, Anchoring{TreeSize: tx.req.TreeSize, Root: tx.req.Root, TxHash: tx.ref.Hash, BlockNumber: b.number, BlockHash: b.hash})
			}
		}
	}
	return out, nil
}

func (f *fakeChain) Find(ctx context.Context, size uint64) (Anchoring, bool, error) {
	all, err := f.Anchorings(ctx, 0, ^uint64(0))
	if err != nil {
		return Anchoring{}, false, err
	}
	for _, a := range all {
		if a.TreeSize == size {
			return a, true, nil
		}
	}
	return Anchoring{}, false, nil
}

func (f *fakeChain) RootAt(ctx context.Context, size uint64) (Hash, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return Hash{}, false, errDown
	}
	r, ok := f.roots[size]
	return r, ok, nil
}

func (f *fakeChain) latest() (uint64, []uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size, append([]uint64(nil), f.order...)
}

func (f *fakeChain) rootAt() RootAtFunc {
	return func(size uint64) (Hash, bool, error) { return f.RootAt(context.Background(), size) }
}

// miner mines a block every period until stopped (paused while paused is
// set).
type miner struct {
	stop   chan struct{}
	done   chan struct{}
	paused sync.Mutex
}

func startMiner(f *fakeChain, period time.Duration) *miner {
	m := &miner{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.paused.Lock()
				f.Mine()
				m.paused.Unlock()
			}
		}
	}()
	return m
}

func (m *miner) Stop() {
	close(m.stop)
	<-m.done
}

// runLog opens a Log and runs it until the test ends or stop is called.
func runLog(t testing.TB, cfg Config) (l *Log, stop func()) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	l, err := Open(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return l, stop
}

// testLogger sends log records to t.Log while the test runs.
func testLogger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, nil))
}

type tWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fastConfig(st *store.Store, a Anchorer) Config {
	return Config{
		Store: st, Anchorer: a,
		Interval: 50 * time.Millisecond, PollInterval: 5 * time.Millisecond,
		ChainPollInterval: 20 * time.Millisecond, ResubmitAfter: 2 * time.Second,
		ReorgDepth: 8,
	}
}
