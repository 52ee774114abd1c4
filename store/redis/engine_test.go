package redis

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	b := &store.Batch{Ops: []store.Op{{Key: []byte("n/1"), Value: []byte("x"), TTL: 50 * time.Millisecond}, {Key: []byte("n/2"), Value: []byte("y")}}}
	if err := db.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get(ctx, []byte("n/1")); err != nil || string(v) != "x" {
		t.Fatalf("before expiry: %q %v", v, err)
	}
	time.Sleep(120 * time.Millisecond)
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
	if _, err := db.c.ZScore(ctx, prefix+"z", "n/1").Result(); err == nil {
		t.Fatal("expired key still in the order set")
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
