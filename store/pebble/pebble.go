// Package pebble is the embedded store engine: a Pebble database in a
// directory, every commit synced to disk before it is acknowledged.
package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/fhirgate/fhirgate/store"
)

var _ store.Engine = (*DB)(nil)

// Config says where and how to open the database.
type Config struct {
	Dir string
	// CacheBytes is the block cache size; default DefaultCacheBytes.
	CacheBytes int64

	fs vfs.FS // tests: a filesystem that observes syncs
}

// DB is a store.Engine on Pebble.
type DB struct {
	db *pebble.DB

	// mu orders commits that carry conditions or log appends: conditions
	// are checked and the batch is queued for the WAL under mu, and the
	// fsync is awaited outside it, so concurrent commits still share one
	// fsync (group commit) while log indexes stay contiguous in WAL order.
	//
	// An in-process mutex is enough because only one process ever opens
	// the directory: Pebble holds an exclusive lock on it (a second
	// gateway or `gateway reindex` is refused at open), so every writer
	// of this store goes through this mu. Several processes share a
	// store only through store/redis, whose commit script is atomic in
	// Redis itself (storetest.RunShared runs both).
	mu      sync.Mutex
	logSize uint64
}

// DefaultCacheBytes is the block cache size when the Config sets none.
// Blocks are cached as they are read, so a small store never fills it; at
// a million resources it doubles reference searches (BENCHMARKS.md §3).
const DefaultCacheBytes = 1 << 30

// New opens (creating if needed) the database in cfg.Dir.
func New(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Dir == "" {
		return nil, errors.New("pebble: no directory")
	}
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	cache := pebble.NewCache(cfg.CacheBytes)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache:        cache,
		MemTableSize: 64 << 20,
		Logger:       slogLogger{},
		// One compaction at a time (Pebble's default) fell behind a
		// sustained load: writes stalled on L0 for seconds while a core
		// sat idle. A second one runs when compactions are owed, and a
		// further memtable may queue behind a flush (BENCHMARKS.md §3).
		CompactionConcurrencyRange:  func() (int, int) { return 1, 2 },
		MemTableStopWritesThreshold: 4,
	}
	opts.FS = privateFS{vfs.Default}
	if cfg.fs != nil {
		opts.FS = cfg.fs
	}
	// Blocks are compressed only in the last level, where most data ends
	// up: compressing every level cost a tenth of the gateway's CPU under
	// a sustained load (each index entry is rewritten at every level it
	// passes), for a third less disk (BENCHMARKS.md §3).
	lastLevel := pebble.DBCompressionSettings{Name: "last-level"}
	for i := range lastLevel.Levels {
		lastLevel.Levels[i] = sstable.NoCompression
	}
	lastLevel.Levels[len(lastLevel.Levels)-1] = sstable.SnappyCompression
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return lastLevel })
	opts.EnsureDefaults()
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	pdb, err := pebble.Open(cfg.Dir, opts)
	if err != nil {
		return nil, fmt.Errorf("pebble: open %s: %w", cfg.Dir, err)
	}
	d := &DB{db: pdb}
	v, closer, err := pdb.Get(store.LogSizeKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		pdb.Close()
		return nil, fmt.Errorf("pebble: read log size: %w", err)
	default:
		if len(v) == 8 {
			d.logSize = binary.BigEndian.Uint64(v)
		}
		closer.Close()
	}
	return d, nil
}

// Get implements store.Engine.
func (d *DB) Get(_ context.Context, key []byte) ([]byte, error) {
	v, closer, err := d.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(v)
	closer.Close()
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// Scan implements store.Engine.
func (d *DB) Scan(ctx context.Context, r store.Range, fn func(k, v []byte) bool) error {
	it, err := d.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: r.Start, UpperBound: r.End})
	if err != nil {
		return err
	}
	n := 0
	var ok bool
	if r.Reverse {
		ok = it.Last()
	} else {
		ok = it.First()
	}
	for ; ok; n++ {
		if r.Limit > 0 && n >= r.Limit {
			break
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if !fn(it.Key(), v) {
			break
		}
		if r.Reverse {
			ok = it.Prev()
		} else {
			ok = it.Next()
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// holds reports whether c holds now.
func (d *DB) holds(c store.Cond) (bool, error) {
	v, closer, err := d.db.Get(c.Key)
	if errors.Is(err, pebble.ErrNotFound) {
		return c.Absent, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	return !c.Absent && bytes.Equal(v, c.Value), nil
}

// Apply implements store.Engine.
func (d *DB) Apply(ctx context.Context, b *store.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pb := d.db.NewBatch()
	defer pb.Close()
	for _, op := range b.Ops {
		var err error
		if op.Delete {
			err = pb.Delete(op.Key, nil)
		} else {
			err = pb.Set(op.Key, op.Value, nil)
		}
		if err != nil {
			return err
		}
	}
	b.Stale = b.Stale[:0]
	if len(b.Conds) == 0 && len(b.Appends) == 0 && len(b.Checks) == 0 {
		return pb.Commit(pebble.Sync)
	}

	d.mu.Lock()
	for _, c := range b.Conds {
		ok, err := d.holds(c)
		if err != nil || !ok {
			d.mu.Unlock()
			if err == nil {
				err = store.ErrConflict
			}
			return err
		}
	}
	// Under d.mu no conditional commit applies, and every write of a key
	// a check reads (a current pointer) is conditional.
	for i, c := range b.Checks {
		ok, err := d.holds(c)
		if err != nil {
			d.mu.Unlock()
			return err
		}
		if !ok {
			b.Stale = append(b.Stale, i)
		}
	}
	size := d.logSize
	for _, a := range b.Appends {
		pb.Set(store.LogKey(size), a.Data, nil)
		if a.IndexKey != nil {
			pb.Set(a.IndexKey, binary.BigEndian.AppendUint64(nil, size), nil)
		}
		size++
	}
	if len(b.Appends) > 0 {
		pb.Set(store.LogSizeKey, binary.BigEndian.AppendUint64(nil, size), nil)
	}
	if err := d.db.ApplyNoSyncWait(pb, pebble.Sync); err != nil {
		d.mu.Unlock()
		return err
	}
	d.logSize = size
	d.mu.Unlock()
	return pb.SyncWait()
}

// Close implements store.Engine.
func (d *DB) Close() error { return d.db.Close() }

// Metrics exposes Pebble's own metrics (for operators).
func (d *DB) Metrics() *pebble.Metrics { return d.db.Metrics() }

// slogLogger routes Pebble's messages (file names and sizes, never
// values) to slog.
type slogLogger struct{}

func (slogLogger) Infof(format string, args ...any) {
	slog.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (slogLogger) Errorf(format string, args ...any) {
	slog.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (slogLogger) Fatalf(format string, args ...any) {
	slog.Error(fmt.Sprintf(format, args...), "component", "pebble")
	panic(fmt.Sprintf(format, args...))
}
