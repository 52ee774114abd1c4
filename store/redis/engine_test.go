package redis

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fhirgate/fhirgate/internal/redistest"
	"github.com/fhirgate/fhirgate/store"
)

func set(k, v string) *store.Batch {
	b := &store.Batch{}
	b.Set([]byte(k), []byte(v))
	return b
}

// TestOutage: with Redis down, reads and commits fail with ErrUnavailable
// at once (never hang); once it is back on the same directory, the same
// handle works again, with what was committed before.
func TestOutage(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	db := open(t, srv, redistest.Prefix(t))
	defer db.Close()
	if err := db.Apply(ctx, set("a", "1")); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for _, op := range []struct {
		name string
		f    func() error
	}{
		{"Get", func() error { _, err := db.Get(ctx, []byte("a")); return err }},
		{"Apply", func() error { return db.Apply(ctx, set("b", "2")) }},
		{"Scan", func() error { return db.Scan(ctx, store.Range{}, func(k, v []byte) bool { return true }) }},
	} {
		start := time.Now()
		err := op.f()
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s took %v with Redis down", op.name, took)
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", op.name, err)
		}
	}
	srv.Restart()
	if v, err := db.Get(ctx, []byte("a")); err != nil || string(v) != "1" {
		t.Fatalf("after restart Get = %q, %v", v, err)
	}
	if err := db.Apply(ctx, set("b", "2")); err != nil {
		t.Fatalf("after restart Apply: %v", err)
	}
}

// TestUnknownOutcome: a commit sent to a Redis that then stops answering
// (hung, partitioned) may have applied: ErrUnknownOutcome, after the
// configured timeout, never a hang; a read gets ErrUnavailable.
func TestUnknownOutcome(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	db, err := Open(ctx, Config{URL: srv.URL(), Prefix: redistest.Prefix(t), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv.Pause()
	defer srv.Resume()
	start := time.Now()
	err = db.Apply(ctx, set("a", "1"))
	if !errors.Is(err, store.ErrUnknownOutcome) {
		t.Errorf("commit to a hung Redis: %v, want ErrUnknownOutcome", err)
	}
	if _, err := db.Get(ctx, []byte("a")); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("read from a hung Redis: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v", took)
	}
}

// TestRefusesVolatileRedis: Open names the setting and the fix; with
// AllowVolatile it opens.
func TestRefusesVolatileRedis(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--appendfsync", "everysec"}, "appendfsync"},
		{[]string{"--appendonly", "no"}, "appendonly"},
		{[]string{"--maxmemory-policy", "allkeys-lru"}, "maxmemory-policy"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			srv := redistest.Start(t, tc.args...)
			_, err := Open(ctx, Config{URL: srv.URL(), Prefix: redistest.Prefix(t)})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--allow-volatile") {
				t.Fatalf("Open on %v: %v", tc.args, err)
			}
			db, err := Open(ctx, Config{URL: srv.URL(), Prefix: redistest.Prefix(t), AllowVolatile: true})
			if err != nil {
				t.Fatalf("Open with AllowVolatile: %v", err)
			}
			db.Close()
		})
	}
}

// TestKillLosesNothingAcknowledged: redis-server killed with SIGKILL while
// 16 goroutines commit (each a value and a log append); after a restart
// on the same directory every acknowledged commit is there and the log
// has no gap.
func TestKillLosesNothingAcknowledged(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	db := open(t, srv, prefix)
	var (
		mu    sync.Mutex
		acked []string
		n     atomic.Int64
		wg    sync.WaitGroup
	)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				k := fmt.Sprintf("w%02d/%06d", g, i)
				b := set(k, k)
				b.Appends = []store.Append{{Data: []byte(k), IndexKey: []byte("ix/" + k)}}
				if err := db.Apply(ctx, b); err != nil {
					if !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, store.ErrUnknownOutcome) {
						t.Errorf("commit during the kill: %v", err)
					}
					return
				}
				mu.Lock()
				acked = append(acked, k)
				mu.Unlock()
				n.Add(1)
			}
		}()
	}
	for n.Load() < 300 {
		time.Sleep(5 * time.Millisecond)
	}
	srv.Kill()
	wg.Wait()
	db.Close()
	srv.Restart()
	db = open(t, srv, prefix)
	defer db.Close()
	t.Logf("%d commits acknowledged before the kill", len(acked))
	for _, k := range acked {
		v, err := db.Get(ctx, []byte(k))
		if err != nil || string(v) != k {
			t.Fatalf("acknowledged %s lost: %q %v", k, v, err)
		}
		ix, err := db.Get(ctx, []byte("ix/"+k))
		if err != nil || len(ix) != 8 {
			t.Fatalf("index of %s: %v", k, err)
		}
		leaf, err := db.Get(ctx, store.LogKey(binary.BigEndian.Uint64(ix)))
		if err != nil || string(leaf) != k {
			t.Fatalf("leaf of %s: %q %v", k, leaf, err)
		}
	}
	sz, err := db.Get(ctx, store.LogSizeKey)
	if err != nil {
		t.Fatal(err)
	}
	size := binary.BigEndian.Uint64(sz)
	if size < uint64(len(acked)) {
		t.Fatalf("log size %d < %d acknowledged", size, len(acked))
	}
	var i uint64
	err = db.Scan(ctx, store.PrefixRange(store.LogPrefix), func(k, v []byte) bool {
		if !bytes.Equal(k, store.LogKey(i)) {
			t.Fatalf("log entry %d is at %x", i, k)
		}
		i++
		return true
	})
	if err != nil || i != size {
		t.Fatalf("log holds %d entries, size says %d (%v)", i, size, err)
	}
}

// TestTTL: a key written with a TTL goes away after it (Get and Scan),
// and later commits drop it from the order set too.
func TestTTL(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	db := open(t, srv, prefix)
	defer db.Close()
	// A TTL long enough for the read before expiry on a loaded machine
	// (50 ms was not), short enough for the test.
	b := &store.Batch{Ops: []store.Op{{Key: []byte("n/1"), Value: []byte("x"), TTL: time.Second}, {Key: []byte("n/2"), Value: []byte("y")}}}
	if err := db.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get(ctx, []byte("n/1")); err != nil || string(v) != "x" {
		t.Fatalf("before expiry: %q %v", v, err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := db.Get(ctx, []byte("n/1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after expiry: %v", err)
	}
	var keys []string
	db.Scan(ctx, store.PrefixRange([]byte("n/")), func(k, v []byte) bool { keys = append(keys, string(k)); return true })
	if fmt.Sprint(keys) != "[n/2]" {
		t.Fatalf("scan after expiry: %v", keys)
	}
	// The next commit with a TTL collects the expired member.
	if err := db.Apply(ctx, &store.Batch{Ops: []store.Op{{Key: []byte("n/3"), Value: []byte("z"), TTL: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.c.ZScore(ctx, prefix+"o", "n/1").Result(); !errors.Is(err, goredis.Nil) {
		t.Fatalf("expired key still in the order set (%v)", err)
	}
	if _, err := db.c.ZScore(ctx, prefix+"o", "n/2").Result(); err != nil {
		t.Fatalf("n/2 not in the order set P \"o\": %v", err)
	}
}

// TestLimits: a batch beyond the limits is refused before it is sent.
func TestLimits(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	db, err := Open(ctx, Config{URL: srv.URL(), Prefix: redistest.Prefix(t), Limits: store.Limits{MaxOps: 10, MaxBytes: 100}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b store.Batch
	for i := range 11 {
		b.Set([]byte{byte(i)}, nil)
	}
	if err := db.Apply(ctx, &b); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("11 ops: %v", err)
	}
	if err := db.Apply(ctx, set("k", strings.Repeat("x", 100))); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("101 bytes: %v", err)
	}
	if _, err := db.Get(ctx, []byte("k")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused batch wrote: %v", err)
	}
}

// TestFormatVersion: a keyspace written by a newer format is refused at
// open with a message naming both versions; other prefixes are not
// concerned.
func TestFormatVersion(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	db := open(t, srv, prefix)
	if err := db.Apply(ctx, set("Mformat", "99")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(ctx, Config{URL: srv.URL(), Prefix: prefix})
	if !errors.Is(err, store.ErrFormat) || !strings.Contains(err.Error(), "99") {
		t.Fatalf("Open of a format 99 keyspace: %v", err)
	}
	open(t, srv, redistest.Prefix(t)).Close()
}

// TestPrefixesAreDisjoint: two keyspaces in one Redis never see each
// other's keys, in Get or Scan.
func TestPrefixesAreDisjoint(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	a, b := open(t, srv, "a:"), open(t, srv, "b:")
	defer a.Close()
	defer b.Close()
	if err := a.Apply(ctx, set("k", "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, []byte("k")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("b sees a's key: %v", err)
	}
	n := 0
	b.Scan(ctx, store.Range{}, func(k, v []byte) bool { n++; return true })
	if n != 1 { // its own format version
		t.Fatalf("b scans %d keys", n)
	}
}

// TestEmptyValues: a key whose value is empty has no string (layout 2),
// and reads the same as any other through Get, GetMany, Scan and a
// commit's conditions, across every transition between empty, not
// empty, TTL, expired and deleted.
func TestEmptyValues(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	db := open(t, srv, prefix)
	defer db.Close()
	apply := func(b *store.Batch) {
		t.Helper()
		if err := db.Apply(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// want checks every read path of the keys e/a..e/d against want
	// ("-" for absent).
	want := func(step string, want map[string]string) {
		t.Helper()
		keys := []string{"e/a", "e/b", "e/c", "e/d"}
		var bs [][]byte
		for _, k := range keys {
			bs = append(bs, []byte(k))
		}
		many, err := db.GetMany(ctx, bs)
		if err != nil {
			t.Fatalf("%s: GetMany: %v", step, err)
		}
		var scanned []string
		if err := db.Scan(ctx, store.PrefixRange([]byte("e/")), func(k, v []byte) bool {
			scanned = append(scanned, string(k)+"="+string(v))
			return true
		}); err != nil {
			t.Fatalf("%s: Scan: %v", step, err)
		}
		var wantScan []string
		for i, k := range keys {
			w := want[k]
			v, err := db.Get(ctx, []byte(k))
			switch {
			case w == "-" && !errors.Is(err, store.ErrNotFound):
				t.Errorf("%s: Get %s = %q, %v, want absent", step, k, v, err)
			case w != "-" && (err != nil || string(v) != w || v == nil):
				t.Errorf("%s: Get %s = %q, %v, want %q", step, k, v, err, w)
			}
			if (w == "-") != (many[i] == nil) || (w != "-" && string(many[i]) != w) {
				t.Errorf("%s: GetMany %s = %q (nil %v), want %q", step, k, many[i], many[i] == nil, w)
			}
			if w != "-" {
				wantScan = append(wantScan, k+"="+w)
			}
			// A condition sees what Get sees.
			c := &store.Batch{}
			if w == "-" {
				c.Require([]byte(k), nil)
			} else {
				c.Require([]byte(k), []byte(w))
			}
			if err := db.Apply(ctx, c); err != nil {
				t.Errorf("%s: condition on %s = %q: %v", step, k, w, err)
			}
			c = &store.Batch{}
			c.Require([]byte(k), []byte(w+"?"))
			if err := db.Apply(ctx, c); !errors.Is(err, store.ErrConflict) {
				t.Errorf("%s: condition on %s = %q?: %v, want a conflict", step, k, w, err)
			}
		}
		if fmt.Sprint(scanned) != fmt.Sprint(wantScan) {
			t.Errorf("%s: scan %v, want %v", step, scanned, wantScan)
		}
	}
	hasString := func(k string) int64 {
		n, _ := db.c.Exists(ctx, prefix+"k"+k).Result()
		return n
	}
	b := &store.Batch{}
	b.Set([]byte("e/a"), nil)
	b.Set([]byte("e/b"), []byte("x"))
	b.Ops = append(b.Ops, store.Op{Key: []byte("e/c"), Value: nil, TTL: time.Hour})
	apply(b)
	want("written", map[string]string{"e/a": "", "e/b": "x", "e/c": "", "e/d": "-"})
	if hasString("e/a") != 0 || hasString("e/b") != 1 || hasString("e/c") != 1 {
		t.Errorf("strings: e/a %d (want none), e/b %d, e/c %d (TTL keys keep theirs)", hasString("e/a"), hasString("e/b"), hasString("e/c"))
	}
	b = &store.Batch{}
	b.Set([]byte("e/a"), []byte("y")) // empty -> not empty
	b.Set([]byte("e/b"), nil)         // not empty -> empty: its string goes
	b.Set([]byte("e/c"), nil)         // TTL -> empty, no TTL
	apply(b)
	want("swapped", map[string]string{"e/a": "y", "e/b": "", "e/c": "", "e/d": "-"})
	if hasString("e/b") != 0 || hasString("e/c") != 0 {
		t.Errorf("strings after emptying: e/b %d, e/c %d", hasString("e/b"), hasString("e/c"))
	}
	b = &store.Batch{}
	b.Delete([]byte("e/a"))
	b.Delete([]byte("e/b"))
	apply(b)
	want("deleted", map[string]string{"e/a": "-", "e/b": "-", "e/c": "", "e/d": "-"})
	// (TestTTL reads a TTL key before it expires; here only after.)
	apply(&store.Batch{Ops: []store.Op{{Key: []byte("e/d"), Value: []byte("z"), TTL: 20 * time.Millisecond}}})
	time.Sleep(100 * time.Millisecond)
	want("expired", map[string]string{"e/a": "-", "e/b": "-", "e/c": "", "e/d": "-"})
	b = &store.Batch{}
	b.Set([]byte("e/d"), nil) // an expired TTL key written again, empty
	b.Set([]byte("e/b"), nil) // a deleted key written again, empty
	apply(b)
	want("rewritten", map[string]string{"e/a": "-", "e/b": "", "e/c": "", "e/d": ""})
	n, _ := db.c.Exists(ctx, prefix+"k"+"e/b", prefix+"k"+"e/d").Result()
	if n != 0 {
		t.Errorf("%d strings for empty values", n)
	}
}

// TestScanModel: scans over keys shaped as the store's (table tags,
// terminated string parts) and others, with values empty or not, give
// what a sorted list gives, for random ranges, directions and limits,
// after random writes and deletes.
func TestScanModel(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	db := open(t, srv, redistest.Prefix(t))
	defer db.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	term := "\x00\x01"
	var universe []string
	for _, tag := range []string{"c", "i", "v", "h", "L", "M", "X", "k", "c\x00", "i\x00\x02"} {
		universe = append(universe, tag)
		for _, typ := range []string{"", "A", "Ab", "B"} {
			universe = append(universe, tag+typ, tag+typ+term)
			for _, rest := range []string{"", "a", "a" + term, "a" + term + "x" + term, "b\x00\xff" + term, "\xff"} {
				universe = append(universe, tag+typ+term+rest)
			}
		}
	}
	model := map[string]string{"Mformat": strconv.Itoa(store.FormatVersion)}
	for round := range 6 {
		var b store.Batch
		for range 40 {
			k := universe[rng.IntN(len(universe))]
			switch rng.IntN(3) {
			case 0:
				b.Delete([]byte(k))
				delete(model, k)
			case 1:
				b.Set([]byte(k), nil)
				model[k] = ""
			default:
				v := fmt.Sprint(rng.IntN(100))
				b.Set([]byte(k), []byte(v))
				model[k] = v
			}
		}
		if err := db.Apply(ctx, &b); err != nil {
			t.Fatal(err)
		}
		sorted := make([]string, 0, len(model))
		for k := range model {
			sorted = append(sorted, k)
		}
		slices.Sort(sorted)
		bound := func() []byte {
			switch rng.IntN(4) {
			case 0:
				return nil
			case 1:
				return []byte(sorted[rng.IntN(len(sorted))])
			default:
				return []byte(universe[rng.IntN(len(universe))])
			}
		}
		for range 60 {
			r := store.Range{Start: bound(), End: bound(), Reverse: rng.IntN(2) == 0, Limit: rng.IntN(4) * rng.IntN(10)}
			var want []string
			for _, k := range sorted {
				if (r.Start == nil || k >= string(r.Start)) && (r.End == nil || k < string(r.End)) {
					want = append(want, fmt.Sprintf("%q=%s", k, model[k]))
				}
			}
			if r.Reverse {
				slices.Reverse(want)
			}
			if r.Limit > 0 && len(want) > r.Limit {
				want = want[:r.Limit]
			}
			var got []string
			if err := db.Scan(ctx, r, func(k, v []byte) bool {
				got = append(got, fmt.Sprintf("%q=%s", k, v))
				return true
			}); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("round %d: scan [%q, %q) reverse %v limit %d:\n got %v\nwant %v", round, r.Start, r.End, r.Reverse, r.Limit, got, want)
			}
		}
	}
}

// TestLayout: a new keyspace is stamped with layout 2 and opens again;
// one of an unknown layout is refused at open, naming the layout.
func TestLayout(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	db := open(t, srv, prefix)
	if v, err := db.c.Get(ctx, prefix+"f").Result(); err != nil || v != "2" {
		t.Fatalf("layout of a new keyspace: %q %v", v, err)
	}
	db.Close()
	open(t, srv, prefix).Close()
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer c.Close()
	odd := redistest.Prefix(t) + "odd:"
	c.Set(ctx, odd+"f", "7", 0)
	_, err := Open(ctx, Config{URL: srv.URL(), Prefix: odd})
	if !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), `"7"`) {
		t.Fatalf("Open of a layout-7 keyspace: %v", err)
	}
}

// TestMigrateLayout1: a keyspace as layout 1 wrote it (a string for every
// key, every key in P "z", TTL keys in P "e"), larger than a migration
// step, opened by two replicas at once, reads the same after the
// migration through Get, GetMany and Scan, keeps no string for empty
// values, and takes commits (with TTLs) as a new one does.
func TestMigrateLayout1(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer c.Close()
	model := map[string]string{}
	pipe := c.Pipeline()
	put := func(k, v string, ttl time.Duration) {
		pipe.Set(ctx, prefix+"k"+k, v, ttl)
		pipe.ZAdd(ctx, prefix+"z", goredis.Z{Member: k})
		if ttl > 0 {
			pipe.ZAdd(ctx, prefix+"e", goredis.Z{Score: float64(time.Now().Add(ttl).UnixMilli()), Member: k})
		}
	}
	put("Mformat", "2", 0) // a layout-1 keyspace of the previous release
	model["Mformat"] = strconv.Itoa(store.FormatVersion)
	for i := range 2*migratePage + 500 {
		k := fmt.Sprintf("iT\x00\x01p\x00\x01%05d", i)
		v := ""
		if i%3 == 0 {
			v = k
		}
		put(k, v, 0)
		model[k] = v
	}
	put("n/live", "x", time.Hour)
	put("n/live-empty", "", time.Hour)
	put("n/gone", "y", 20*time.Millisecond)
	model["n/live"], model["n/live-empty"] = "x", ""
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)

	var wg sync.WaitGroup
	dbs := make([]*DB, 2)
	errs := make([]error, 2)
	for i := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = Open(ctx, Config{URL: srv.URL(), Prefix: prefix})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: Open of a layout-1 keyspace: %v", i, err)
		}
		defer dbs[i].Close()
	}
	db := dbs[0]
	if v, _ := c.Get(ctx, prefix+"f").Result(); v != "2" {
		t.Fatalf("layout after the migration: %q", v)
	}
	if n, _ := c.Exists(ctx, prefix+"z").Result(); n != 0 {
		t.Fatal("P z left after the migration")
	}
	if n, _ := c.Exists(ctx, prefix+"k"+"iT\x00\x01p\x00\x0100001").Result(); n != 0 {
		t.Error("an empty value kept its string")
	}
	check := func(step string) {
		t.Helper()
		scanIsModel(t, db, model, step)
		keys := slices.Sorted(maps.Keys(model))
		bs := [][]byte{[]byte("n/gone")}
		for _, k := range keys {
			bs = append(bs, []byte(k))
		}
		vs, err := db.GetMany(ctx, bs)
		if err != nil {
			t.Fatal(err)
		}
		if vs[0] != nil {
			t.Errorf("%s: an expired key reads %q", step, vs[0])
		}
		for i, k := range keys {
			if vs[i+1] == nil || string(vs[i+1]) != model[k] {
				t.Fatalf("%s: GetMany %q = %q, want %q", step, k, vs[i+1], model[k])
			}
		}
		if _, err := db.Get(ctx, []byte("n/gone")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: Get of an expired key: %v", step, err)
		}
	}
	check("migrated")
	b := &store.Batch{}
	b.Set([]byte("iT\x00\x01p\x00\x0100000"), nil) // had a value
	b.Set([]byte("iT\x00\x01p\x00\x0100001"), []byte("v"))
	b.Set([]byte("n/live-empty"), nil)
	b.Ops = append(b.Ops, store.Op{Key: []byte("n/next"), Value: []byte("z"), TTL: time.Hour})
	if err := db.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	model["iT\x00\x01p\x00\x0100000"], model["iT\x00\x01p\x00\x0100001"], model["n/live-empty"], model["n/next"] = "", "v", "", "z"
	check("written after")
	if _, err := c.ZScore(ctx, prefix+"o", "n/gone").Result(); !errors.Is(err, goredis.Nil) {
		t.Errorf("the expired key is still a member after a commit with a TTL (%v)", err)
	}
	open(t, srv, prefix).Close() // a third open finds layout 2
}

// TestBatchShapes: the commit script writes a batch's final state with
// few commands (one MSET, one ZADD, chunks of 512): a key
// written several times in one batch ends as its last op says, an
// append's index key overrides an op on it, and batches larger than a
// chunk, mixing values, empty values and deletes, read back whole.
func TestBatchShapes(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	db := open(t, srv, redistest.Prefix(t))
	defer db.Close()
	model := map[string]string{"Mformat": strconv.Itoa(store.FormatVersion)}
	check := func(step string) {
		t.Helper()
		scanIsModel(t, db, model, step)
		for k, w := range model {
			if v, err := db.Get(ctx, []byte(k)); err != nil || string(v) != w {
				t.Fatalf("%s: Get %q = %q, %v, want %q", step, k, v, err, w)
			}
		}
	}
	b := &store.Batch{}
	b.Set([]byte("a"), []byte("1"))
	b.Delete([]byte("a"))
	b.Set([]byte("b"), nil)
	b.Set([]byte("b"), []byte("2"))
	b.Set([]byte("c"), []byte("3"))
	b.Set([]byte("c"), nil)
	b.Delete([]byte("d"))
	b.Set([]byte("d"), nil)
	b.Set([]byte("ix"), []byte("op"))
	b.Appends = []store.Append{{Data: []byte("leaf0"), IndexKey: []byte("ix")}, {Data: nil}}
	if err := db.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	model["b"], model["c"], model["d"] = "2", "", ""
	model["ix"] = string(binary.BigEndian.AppendUint64(nil, 0))
	model[string(store.LogKey(0))] = "leaf0"
	model[string(store.LogKey(1))] = ""
	model[string(store.LogSizeKey)] = string(binary.BigEndian.AppendUint64(nil, 2))
	check("repeated keys")
	for round := range 3 {
		b := &store.Batch{}
		for i := range 1300 {
			k := fmt.Sprintf("iT\x00\x01p\x00\x01%05d", i)
			switch (i + round) % 3 {
			case 0:
				b.Set([]byte(k), nil)
				model[k] = ""
			case 1:
				b.Set([]byte(k), []byte(k))
				model[k] = k
			default:
				b.Delete([]byte(k))
				delete(model, k)
			}
		}
		if err := db.Apply(ctx, b); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("round %d of 1,300 keys", round))
	}
	b = &store.Batch{}
	for i := range 1300 {
		k := fmt.Sprintf("iT\x00\x01p\x00\x01%05d", i)
		b.Delete([]byte(k))
		delete(model, k)
	}
	if err := db.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	check("all deleted")
}

// scanIsModel fails t unless a scan of the whole keyspace reads exactly
// model's keys and values, in key order.
func scanIsModel(t *testing.T, db *DB, model map[string]string, step string) {
	t.Helper()
	var got []string
	if err := db.Scan(context.Background(), store.Range{}, func(k, v []byte) bool {
		got = append(got, fmt.Sprintf("%q=%q", k, v))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, k := range slices.Sorted(maps.Keys(model)) {
		want = append(want, fmt.Sprintf("%q=%q", k, model[k]))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: scan\n got %.600v\nwant %.600v", step, got, want)
	}
}
