package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/google/uuid"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/internal/synth"
	"github.com/fhirgate/fhirgate/store"
	storepebble "github.com/fhirgate/fhirgate/store/pebble"
)

// shape is the write of one create as a template: every key and value
// split around the resource id, so that each commit writes the same
// bytes with a fresh id.
type shape struct {
	name    string
	conds   [][][]byte // keys that must be absent
	keys    [][][]byte
	vals    [][][]byte
	appends []shapeAppend // log entries (the version's leaf)
	bytes   int           // keys + values of one commit
}

// shapeAppend is a log append: the entry, and the key that records its
// position.
type shapeAppend struct{ data, indexKey [][]byte }

func splitTemplate(b, id []byte) [][]byte {
	if b == nil {
		return nil
	}
	return bytes.Split(b, id)
}

// createShape returns the exact batch the gateway's store commits for a
// create of a synthetic Patient: version record, current pointer,
// history keys, index list, every search index key and the version's log
// leaf, produced by the store, search and anchor packages themselves.
func createShape(seed int64) (*shape, error) {
	res, err := fhir.Parse(synth.New(seed).Patient(0, synth.Ref{}))
	if err != nil {
		return nil, err
	}
	id := uuid.Must(uuid.NewV7()).String()
	at := time.Now().UTC().Truncate(time.Microsecond)
	body := res.Stamp(id, 1, at)
	idx, err := search.Extract("Patient", &res.Root)
	if err != nil {
		return nil, err
	}
	var ce captureEngine
	st := store.New(&ce, store.Options{})
	err = st.Commit(context.Background(), []store.Write{{
		New:   store.Version{Type: "Patient", ID: id, VID: 1, LastUpdated: at, Method: store.MethodCreate, Author: "client/fhirbench", Body: body},
		Index: idx,
		Leaf:  anchor.NewLeaf("Patient", id, 1, body).Data(),
	}})
	if err != nil {
		return nil, err
	}
	sh := &shape{name: "create"}
	idb := []byte(id)
	for _, c := range ce.b.Conds {
		sh.conds = append(sh.conds, splitTemplate(c.Key, idb))
	}
	for _, op := range ce.b.Ops {
		if op.Delete {
			continue
		}
		sh.keys = append(sh.keys, splitTemplate(op.Key, idb))
		sh.vals = append(sh.vals, splitTemplate(op.Value, idb))
		sh.bytes += len(op.Key) + len(op.Value)
	}
	nkeys := len(sh.keys)
	for _, a := range ce.b.Appends {
		sh.appends = append(sh.appends, shapeAppend{data: splitTemplate(a.Data, idb), indexKey: splitTemplate(a.IndexKey, idb)})
		// The engine writes the entry, its position under IndexKey and
		// the log size.
		sh.bytes += len(store.LogKey(0)) + len(a.Data) + len(a.IndexKey) + 8 + len(store.LogSizeKey) + 8
		nkeys += 3
	}
	sh.name = fmt.Sprintf("create of a Patient: %d keys, %d B", nkeys, sh.bytes)
	return sh, nil
}

// simpleShape is one value of valueBytes and n index keys of about 40
// bytes.
func simpleShape(valueBytes, n int) *shape {
	id := []byte("ID")
	sh := &shape{}
	sh.keys = append(sh.keys, [][]byte{[]byte("vPatient\x00\x01"), []byte("\x00\x01")})
	v := bytes.Repeat([]byte("x"), valueBytes)
	sh.vals = append(sh.vals, [][]byte{v})
	sh.bytes = len(v) + 12 + 36
	for i := range n {
		k := fmt.Appendf(nil, "iPatient\x00\x01param%02d\x00\x01tvalue-%02d\x00\x01ID", i, i)
		sh.keys = append(sh.keys, splitTemplate(k, id))
		sh.vals = append(sh.vals, nil)
		sh.bytes += len(k) + 34
	}
	sh.name = fmt.Sprintf("simple: 1 value of %d B + %d index keys, %d B", valueBytes, n, sh.bytes)
	return sh
}

// join writes parts joined by id at the end of buf and returns the result
// (which aliases buf).
func join(buf *[]byte, parts [][]byte, id []byte) []byte {
	if parts == nil {
		return nil
	}
	start := len(*buf)
	for i, p := range parts {
		if i > 0 {
			*buf = append(*buf, id...)
		}
		*buf = append(*buf, p...)
	}
	return (*buf)[start:len(*buf):len(*buf)]
}

// captureEngine records the batch a store commit would apply.
type captureEngine struct{ b store.Batch }

func (c *captureEngine) Get(context.Context, []byte) ([]byte, error) { return nil, store.ErrNotFound }
func (c *captureEngine) Scan(context.Context, store.Range, func(k, v []byte) bool) error {
	return nil
}
func (c *captureEngine) Apply(_ context.Context, b *store.Batch) error { c.b = *b; return nil }
func (c *captureEngine) Close() error                                  { return nil }

// openPebble opens dir with the options store/pebble uses (block cache
// 256 MiB, 64 MiB memtables, bloom filters of 10 bits on every level,
// Pebble's defaults otherwise).
func openPebble(dir string) (*pebble.DB, error) {
	cache := pebble.NewCache(256 << 20)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache:        cache,
		MemTableSize: 64 << 20,
		Logger:       quietLogger{},
	}
	opts.EnsureDefaults()
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return pebble.Open(dir, opts)
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

type rawPebbleConfig struct {
	dir      string
	clients  int
	warmup   time.Duration
	duration time.Duration
	engine   string // "raw": pebble batches; "store": store/pebble's Apply
	sh       *shape
}

// runRawPebble commits synced batches of cfg.sh from cfg.clients
// goroutines into a new database under cfg.dir.
func runRawPebble(cfg rawPebbleConfig) (*Result, error) {
	if err := os.MkdirAll(cfg.dir, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cfg.dir, "raw-pebble-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sh := cfg.sh
	// The gateway's ids are UUIDv7 strings.
	newID := func() []byte { return []byte(uuid.Must(uuid.NewV7()).String()) }
	var op opFunc
	var closeDB func() error
	var logSize atomic.Uint64
	switch cfg.engine {
	case "raw":
		db, err := openPebble(dir)
		if err != nil {
			return nil, err
		}
		closeDB = db.Close
		op = func(w *worker) (int, error) {
			id := newID()
			scratch := w.buf[:0]
			b := db.NewBatch()
			for i := range sh.keys {
				k := join(&scratch, sh.keys[i], id)
				v := join(&scratch, sh.vals[i], id)
				if err := b.Set(k, v, nil); err != nil {
					b.Close()
					return 0, err
				}
			}
			for _, a := range sh.appends {
				// As store/pebble does, minus its mutex: the entry, its
				// position, the log size.
				n := logSize.Add(1) - 1
				pos := binary.BigEndian.AppendUint64(nil, n)
				b.Set(store.LogKey(n), join(&scratch, a.data, id), nil)
				b.Set(join(&scratch, a.indexKey, id), pos, nil)
				b.Set(store.LogSizeKey, binary.BigEndian.AppendUint64(nil, n+1), nil)
			}
			err := b.Commit(pebble.Sync)
			b.Close()
			w.buf = scratch[:0]
			if err != nil {
				return 0, err
			}
			return 200, nil
		}
	case "store":
		db, err := storepebble.New(context.Background(), storepebble.Config{Dir: dir})
		if err != nil {
			return nil, err
		}
		closeDB = db.Close
		ctx := context.Background()
		op = func(w *worker) (int, error) {
			id := newID()
			scratch := w.buf[:0]
			b := &store.Batch{}
			for _, c := range sh.conds {
				b.Require(join(&scratch, c, id), nil)
			}
			for i := range sh.keys {
				b.Set(join(&scratch, sh.keys[i], id), join(&scratch, sh.vals[i], id))
			}
			for _, a := range sh.appends {
				b.Appends = append(b.Appends, store.Append{Data: join(&scratch, a.data, id), IndexKey: join(&scratch, a.indexKey, id)})
			}
			err := db.Apply(ctx, b)
			w.buf = scratch[:0]
			if err != nil {
				return 0, err
			}
			return 200, nil
		}
	default:
		return nil, fmt.Errorf("raw-pebble: -engine must be raw or store, not %q", cfg.engine)
	}
	name := "raw-pebble"
	if cfg.engine == "store" {
		name = "engine"
	}
	r := drive(driveConfig{Name: name, Clients: cfg.clients, Warmup: cfg.warmup, Duration: cfg.duration, InProcess: true}, nil, op)
	r.Note = "(" + sh.name + ")"
	if err := closeDB(); err != nil {
		return r, err
	}
	return r, nil
}
