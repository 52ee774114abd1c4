// Package redis is the shared store engine: one Redis primary that
// several gateway replicas open at once. Every commit is one Lua script
// (atomic, conditional, one round trip) acknowledged only once Redis has
// fsynced it to its append-only file, so Open refuses a Redis that does
// not run with appendonly yes and appendfsync always.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fhirgate/fhirgate/store"
)

var (
	_ store.Engine      = (*DB)(nil)
	_ store.Shared      = (*DB)(nil)
	_ store.Limited     = (*DB)(nil)
	_ store.MultiGetter = (*DB)(nil)
)

// Config says which Redis and which keyspace.
type Config struct {
	// URL is redis://[user:password@]host:port/db (rediss:// for TLS).
	URL string
	// Prefix starts every Redis key this engine writes, so that several
	// deployments (or test runs) share one Redis without meeting.
	Prefix string
	// AllowVolatile opens a Redis that may lose acknowledged writes (AOF
	// off, or not fsynced at every write): for speed tests only.
	AllowVolatile bool
	// Logger receives the volatile warning; default slog.Default().
	Logger *slog.Logger
	// DialTimeout bounds connecting (default 1s); Timeout bounds each
	// command's round trip, fsync included (default 2s). Both are short
	// so that a Redis that is down or hung turns into a quick 503, never
	// a request that hangs.
	DialTimeout, Timeout time.Duration
	// PoolSize is the number of connections (default DefaultPoolSize).
	PoolSize int
	// Limits bound one commit (default DefaultLimits).
	Limits store.Limits
}

// DefaultLimits bound one commit. A script blocks every other client
// while it runs (about 1 µs per key written): 50,000 ops is a
// transaction of 1,000 entries with their index keys, tens of ms.
var DefaultLimits = store.Limits{MaxOps: 50_000, MaxBytes: 64 << 20}

// DefaultPoolSize is the default number of connections. A connection is
// held for one round trip, and with appendfsync always Redis answers a
// round trip only after the fsync of its event-loop iteration: the
// commands that share an iteration share its fsync, so the pool must let
// every request in flight have its command in the same iteration.
// go-redis's default (10 per CPU, 20 on 2 cores) left a third of 64
// concurrent creates waiting for a connection (BENCHMARKS.md §8).
const DefaultPoolSize = 128

// DB is a store.Engine on Redis.
type DB struct {
	c      *goredis.Client
	prefix string
	limits store.Limits
}

// Open connects, checks durability and the keyspace's format version.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	opt, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redis: store URL: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	opt.DialTimeout = or(cfg.DialTimeout, time.Second)
	opt.ReadTimeout = or(cfg.Timeout, 2*time.Second)
	opt.WriteTimeout = opt.ReadTimeout
	opt.PoolTimeout = opt.ReadTimeout
	opt.ContextTimeoutEnabled = true
	// A command that was sent may have run: go-redis must never send it
	// again on its own (a commit retried after a lost answer could append
	// a second log leaf). Reads retry themselves (see get).
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.DisableIdentity = true
	opt.PoolSize = DefaultPoolSize
	if cfg.PoolSize > 0 {
		opt.PoolSize = cfg.PoolSize
	}
	d := &DB{c: goredis.NewClient(opt), prefix: cfg.Prefix, limits: cfg.Limits}
	if d.limits == (store.Limits{}) {
		d.limits = DefaultLimits
	}
	if err := d.checkDurable(ctx, cfg); err != nil {
		d.c.Close()
		return nil, err
	}
	if err := d.checkLayout(ctx, cfg.Logger); err != nil {
		d.c.Close()
		return nil, err
	}
	if err := store.CheckFormat(ctx, d); err != nil {
		d.c.Close()
		return nil, err
	}
	return d, nil
}

// layoutVersion is the version of this engine's own Redis layout (see
// scripts.go), kept in P "f": distinct from the store's format version
// (store.FormatVersion, an engine key like any other), which says how
// records are encoded whatever the engine.
const layoutVersion = "2"

// ErrLayout: the keyspace was written in a Redis layout this engine does
// not read.
var ErrLayout = errors.New("redis: unknown keyspace layout")

// migratePage is the number of keys one migration step moves: Redis
// serves nobody else during a step (about 14 ms on the shared 2-core
// test machine; 300,000 keys took 6 s). No replica of this release
// serves while a migration runs: each one's Open runs it too.
const migratePage = 1000

// checkLayout stamps a new keyspace with layoutVersion, migrates one in
// layout 1 (its order set P "z", no P "f") in place, and refuses one in
// any other layout. Layout 1 must not be written while it migrates: every
// replica of the earlier release must be stopped first (as for a store
// format upgrade, docs/operator-guide.md "Upgrading").
func (d *DB) checkLayout(ctx context.Context, log *slog.Logger) error {
	fk := d.prefix + "f"
	for range 3 {
		v, err := d.c.Get(ctx, fk).Result()
		if errors.Is(err, goredis.Nil) {
			n, err := d.c.Exists(ctx, d.prefix+"z").Result()
			if err != nil {
				return fmt.Errorf("redis: read the keyspace layout: %w", classify(err, false))
			}
			if n > 0 {
				return d.migrate(ctx, log)
			}
			ok, err := d.c.SetNX(ctx, fk, layoutVersion, 0).Result()
			if err != nil {
				return fmt.Errorf("redis: write the keyspace layout: %w", classify(err, false))
			}
			if !ok {
				continue // another replica stamped it first: read it
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("redis: read the keyspace layout: %w", classify(err, false))
		}
		if v != layoutVersion {
			return fmt.Errorf("%w: keyspace %q is in layout %q, this gateway reads layout %s: run a gateway release that reads it", ErrLayout, d.prefix, v, layoutVersion)
		}
		return nil
	}
	return fmt.Errorf("redis: the keyspace layout keeps changing under us")
}

// migrate moves a layout-1 keyspace to layout 2, one page per script.
func (d *DB) migrate(ctx context.Context, log *slog.Logger) error {
	log.Warn("redis: migrating the keyspace from layout 1 to layout 2 (every replica of the earlier release must be stopped)", "prefix", d.prefix)
	start, moved := time.Now(), int64(0)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := migrateScript.Run(ctx, d.c, nil, d.prefix, migratePage, layoutVersion).Int64Slice()
		if err != nil {
			return fmt.Errorf("redis: migrate the keyspace to layout %s (%d keys moved; opening again resumes): %w", layoutVersion, moved, classify(err, true))
		}
		if len(res) != 2 {
			return fmt.Errorf("redis: migrate the keyspace: malformed reply")
		}
		moved += res[0]
		if res[1] == 1 {
			log.Info("redis: keyspace migrated to layout 2", "prefix", d.prefix, "keys", moved, "took", time.Since(start).Round(time.Millisecond))
			return nil
		}
	}
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// checkDurable refuses a Redis that can lose an acknowledged commit: AOF
// off, fsync not at every write, or an eviction policy that may drop
// keys without a TTL.
func (d *DB) checkDurable(ctx context.Context, cfg Config) error {
	conf, err := d.c.ConfigGet(ctx, "*").Result()
	if err != nil {
		if e := classify(err, false); errors.Is(e, store.ErrUnavailable) {
			return fmt.Errorf("redis: %s: %w", redact(cfg.URL), e)
		}
		if !cfg.AllowVolatile {
			return fmt.Errorf("redis: cannot verify durability (CONFIG GET: %v); run Redis with appendonly yes and appendfsync always and allow CONFIG, or start with --allow-volatile for speed tests only", err)
		}
		conf = map[string]string{}
	}
	var problems []string
	if v := conf["appendonly"]; v != "yes" {
		problems = append(problems, fmt.Sprintf("appendonly is %q, want \"yes\" (redis-server --appendonly yes, or CONFIG SET appendonly yes)", v))
	}
	if v := conf["appendfsync"]; v != "always" {
		problems = append(problems, fmt.Sprintf("appendfsync is %q, want \"always\" (redis-server --appendfsync always, or CONFIG SET appendfsync always)", v))
	}
	if v := conf["maxmemory-policy"]; strings.HasPrefix(v, "allkeys-") {
		problems = append(problems, fmt.Sprintf("maxmemory-policy is %q: Redis may evict stored resources; use noeviction", v))
	}
	if len(problems) == 0 {
		return nil
	}
	msg := strings.Join(problems, "; ")
	if !cfg.AllowVolatile {
		return fmt.Errorf("redis: refusing a store that may lose acknowledged writes: %s (or start with --allow-volatile for speed tests only)", msg)
	}
	cfg.Logger.Warn("!!! VOLATILE STORE: acknowledged writes may be lost if Redis stops; for speed tests only !!!", "problems", msg)
	return nil
}

// redact drops the password from a URL for messages.
func redact(u string) string {
	if i, j := strings.Index(u, "://"), strings.LastIndex(u, "@"); i >= 0 && j > i {
		return u[:i+3] + "…@" + u[j+1:]
	}
	return u
}

// Shared implements store.Shared: other processes commit at any time.
func (d *DB) Shared() bool { return true }

// Limits implements store.Limited.
func (d *DB) Limits() store.Limits { return d.limits }

// Client is the underlying client (for metrics and for counting round
// trips in benchmarks).
func (d *DB) Client() *goredis.Client { return d.c }

// Close implements store.Engine.
func (d *DB) Close() error { return d.c.Close() }

func (d *DB) vkey(k []byte) string { return d.prefix + "k" + string(k) }

// Get implements store.Engine: one GET, and when it finds no string
// (the key is absent or its value empty: see the layout in scripts.go)
// one script that reads it again at one instant.
func (d *DB) Get(ctx context.Context, key []byte) ([]byte, error) {
	var b []byte
	err := read(ctx, func() error {
		var err error
		b, err = d.c.Get(ctx, d.vkey(key)).Bytes()
		return err
	})
	if errors.Is(err, goredis.Nil) {
		vs, err := d.getSlow(ctx, [][]byte{key})
		if err != nil {
			return nil, err
		}
		if vs[0] == nil {
			return nil, store.ErrNotFound
		}
		return vs[0], nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis: get: %w", classify(err, false))
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// getSlow reads keys at one instant with the get script: nil for an
// absent key.
func (d *DB) getSlow(ctx context.Context, keys [][]byte) ([][]byte, error) {
	args := make([]any, 0, 1+len(keys))
	args = append(args, d.prefix)
	for _, k := range keys {
		args = append(args, k)
	}
	var vals []any
	err := read(ctx, func() error {
		var err error
		vals, err = getScript.Run(ctx, d.c, nil, args...).Slice()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("redis: get: %w", classify(err, false))
	}
	if len(vals) != len(keys) {
		return nil, fmt.Errorf("redis: get: %d values for %d keys", len(vals), len(keys))
	}
	out := make([][]byte, len(keys))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[i] = append([]byte{}, s...)
		}
	}
	return out, nil
}

// mgetChunk bounds the keys of one MGET: Redis serves nobody else while
// it runs one (about 0.1 µs per key), and its reply is held whole.
const mgetChunk = 1024

// GetMany implements store.MultiGetter: one MGET per mgetChunk keys, and
// for a chunk where some key has no string (absent, or an empty value)
// the get script on the whole chunk instead. Each chunk is read at one
// instant (between two commits); keys in different chunks may be read
// across a commit, as separate Gets would.
func (d *DB) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for lo := 0; lo < len(keys); lo += mgetChunk {
		part := keys[lo:min(lo+mgetChunk, len(keys))]
		names := make([]string, len(part))
		for i, k := range part {
			names[i] = d.vkey(k)
		}
		var vals []any
		err := read(ctx, func() error {
			var err error
			vals, err = d.c.MGet(ctx, names...).Result()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("redis: mget: %w", classify(err, false))
		}
		if len(vals) != len(part) {
			return nil, fmt.Errorf("redis: mget: %d values for %d keys", len(vals), len(part))
		}
		if slices.Contains(vals, nil) {
			vs, err := d.getSlow(ctx, part)
			if err != nil {
				return nil, err
			}
			copy(out[lo:], vs)
			continue
		}
		for i, v := range vals {
			if s, ok := v.(string); ok {
				out[lo+i] = append([]byte{}, s...)
			}
		}
	}
	return out, nil
}

// read runs an idempotent read, once more if the first attempt failed on
// the network (a pooled connection Redis closed while restarting): a
// read has no outcome to lose.
func read(ctx context.Context, f func() error) error {
	err := f()
	if err != nil && isNetwork(err) && !isDial(err) && ctx.Err() == nil {
		err = f()
	}
	return err
}

// scanPage is the first page's size; pages double up to maxScanPage,
// so a scan stopped after a few keys reads few, and a long one takes
// few round trips.
const (
	scanPage    = 64
	maxScanPage = 1024
)

// Scan implements store.Engine. Each page is read by one script, so a
// page never shows part of a commit; a commit may land between pages (as
// it may between two reads of a scan on any shared store). fn is called
// with no connection held, so it may call back into the engine.
func (d *DB) Scan(ctx context.Context, r store.Range, fn func(k, v []byte) bool) error {
	lo, hi := "-", "+"
	if r.Start != nil {
		lo = "[" + string(r.Start)
	}
	if r.End != nil {
		hi = "(" + string(r.End)
	}
	dir := "f"
	if r.Reverse {
		dir = "r"
	}
	page, seen := scanPage, 0
	for {
		n := page
		if r.Limit > 0 && r.Limit-seen < n {
			n = r.Limit - seen
		}
		var res []any
		err := read(ctx, func() error {
			var err error
			res, err = scanScript.Run(ctx, d.c, nil, d.prefix, lo, hi, dir, n).Slice()
			return err
		})
		if err != nil {
			return fmt.Errorf("redis: scan: %w", classify(err, false))
		}
		if len(res) < 2 {
			return fmt.Errorf("redis: scan: malformed reply")
		}
		got, _ := res[0].(int64)
		for i := 2; i+1 < len(res); i += 2 {
			k, _ := res[i].(string)
			v, _ := res[i+1].(string)
			seen++
			if !fn([]byte(k), []byte(v)) {
				return nil
			}
		}
		if int(got) < n || (r.Limit > 0 && seen >= r.Limit) {
			return nil
		}
		last, _ := res[1].(string)
		if r.Reverse {
			hi = "(" + last
		} else {
			lo = "(" + last
		}
		page = min(2*page, maxScanPage)
	}
}

// Apply implements store.Engine: one EVALSHA of the commit script (EVAL
// once after Redis restarts and forgets it), answered after Redis has
// fsynced the append-only file.
func (d *DB) Apply(ctx context.Context, b *store.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.check(b); err != nil {
		return err
	}
	args := make([]any, 0, 6+3*len(b.Conds)+4*len(b.Ops)+3*len(b.Appends)+3*len(b.Checks))
	args = append(args, d.prefix, len(b.Conds), len(b.Ops), len(b.Appends), store.LogSizeKey, len(b.Checks))
	args = appendConds(args, b.Conds)
	for _, op := range b.Ops {
		if op.Delete {
			args = append(args, op.Key, "d", "", 0)
			continue
		}
		ttl := int64(0)
		if op.TTL > 0 {
			ttl = max(op.TTL.Milliseconds(), 1)
		}
		args = append(args, op.Key, "s", nonNil(op.Value), ttl)
	}
	for _, a := range b.Appends {
		if a.IndexKey != nil {
			args = append(args, nonNil(a.Data), "i", a.IndexKey)
		} else {
			args = append(args, nonNil(a.Data), "-", "")
		}
	}
	args = appendConds(args, b.Checks)
	b.Stale = b.Stale[:0]
	res, err := commitScript.Run(ctx, d.c, nil, args...).Result()
	if err != nil {
		return fmt.Errorf("redis: commit: %w", classify(err, true))
	}
	switch r := res.(type) {
	case int64:
		if r != 1 {
			return store.ErrConflict
		}
	case []any:
		for _, x := range r {
			j, ok := x.(int64)
			if !ok || j < 0 || int(j) >= len(b.Checks) {
				return fmt.Errorf("redis: commit: malformed reply: %w", store.ErrUnknownOutcome)
			}
			b.Stale = append(b.Stale, int(j))
		}
	default:
		return fmt.Errorf("redis: commit: malformed reply: %w", store.ErrUnknownOutcome)
	}
	return nil
}

// appendConds appends the script arguments of conditions or checks.
func appendConds(args []any, cs []store.Cond) []any {
	for _, c := range cs {
		if c.Absent {
			args = append(args, c.Key, "a", "")
		} else {
			args = append(args, c.Key, "v", nonNil(c.Value))
		}
	}
	return args
}

// check refuses a batch beyond the limits before anything is sent.
func (d *DB) check(b *store.Batch) error {
	n := len(b.Conds) + len(b.Ops) + len(b.Appends) + len(b.Checks)
	if d.limits.MaxOps > 0 && n > d.limits.MaxOps {
		return fmt.Errorf("redis: %d operations in one commit, at most %d: %w", n, d.limits.MaxOps, store.ErrTooLarge)
	}
	if d.limits.MaxBytes > 0 {
		size := 0
		for _, c := range b.Conds {
			size += len(c.Key) + len(c.Value)
		}
		for _, c := range b.Checks {
			size += len(c.Key) + len(c.Value)
		}
		for _, op := range b.Ops {
			size += len(op.Key) + len(op.Value)
		}
		for _, a := range b.Appends {
			size += len(a.Data) + len(a.IndexKey)
		}
		if size > d.limits.MaxBytes {
			return fmt.Errorf("redis: %d bytes in one commit, at most %d: %w", size, d.limits.MaxBytes, store.ErrTooLarge)
		}
	}
	return nil
}

// nonNil: go-redis writes a nil []byte as an empty string already, but
// say so.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// classify maps a client error to the store's: nothing sent (cannot
// connect, Redis loading or read-only, out of memory, busy) is
// ErrUnavailable; a command sent whose answer was lost (timeout, broken
// connection) is ErrUnknownOutcome for a commit and ErrUnavailable for a
// read.
func classify(err error, commit bool) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		if commit {
			return fmt.Errorf("%w: %w", store.ErrUnknownOutcome, err)
		}
		return err
	case isDial(err) || errors.Is(err, goredis.ErrPoolTimeout) || errors.Is(err, goredis.ErrClosed):
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	var re goredis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "BUSY", "OOM", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "MISCONF"} {
			if strings.HasPrefix(msg, p) {
				return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
			}
		}
		return err // a bug (a script error), not an outage
	}
	if isNetwork(err) || errors.Is(err, context.DeadlineExceeded) {
		if commit {
			return fmt.Errorf("%w: %w", store.ErrUnknownOutcome, err)
		}
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func isNetwork(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "EOF") || strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe")
}

// Info returns a field of INFO (tests, benchmarks).
func (d *DB) Info(ctx context.Context, section, field string) (string, error) {
	s, err := d.c.Info(ctx, section).Result()
	if err != nil {
		return "", classify(err, false)
	}
	for _, line := range strings.Split(s, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("redis: no %s in INFO %s", field, section)
}
