package smart

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/internal/enginetest"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

func openEngine(t *testing.T, dir string) *pebble.DB {
	t.Helper()
	db, err := pebble.New(context.Background(), pebble.Config{Dir: dir, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// Issue 14: the jti replay cache was lost on restart, so an assertion
// could be exchanged again within its lifetime. With the cache in the
// store, the server restarted on the same data refuses it.
func TestAssertionReplayAfterRestart(t *testing.T) {
	keys(t)
	ctx := context.Background()
	keyDir, storeDir := t.TempDir(), t.TempDir()
	reg := testRegistry(t)
	now := time.Now()
	assertion := sign(t, "ES384", ecKey, map[string]any{"kid": "ec-1"}, claims("ehr-1", now))

	start := func(replay ReplayCache) *Server {
		key, err := auth.LoadOrCreateKey(keyDir)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Config{Key: key, Registry: reg, TokenURL: tokenURL, Replay: replay})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	db := openEngine(t, storeDir)
	cache, err := NewStoreReplayCache(ctx, db, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := start(cache).Exchange(ctx, form(assertion, "system/*.rs"), now); err != nil {
		t.Fatal(err)
	}
	db.Close() // the gateway stops

	db = openEngine(t, storeDir)
	defer db.Close()
	cache, err = NewStoreReplayCache(ctx, db, 0)
	if err != nil {
		t.Fatal(err)
	}
	later := now.Add(10 * time.Second)
	if _, err := start(cache).Exchange(ctx, form(assertion, "system/*.rs"), later); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("the same assertion after a restart: %v, want invalid_client", err)
	}
	// What the in-memory cache did: accept it again.
	if _, err := start(NewMemoryReplayCache(0)).Exchange(ctx, form(assertion, "system/*.rs"), later); err != nil {
		t.Fatalf("control (memory cache): %v", err)
	}
}

// The store cache means what the memory one does: refuse a replay until
// expiry, refuse to forget when full, sweep expired entries off disk.
func TestStoreReplayCache(t *testing.T) {
	ctx := context.Background()
	db := openEngine(t, t.TempDir())
	defer db.Close()
	c, err := NewStoreReplayCache(ctx, db, 2)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	add := func(k string, exp, at time.Time) (bool, error) { return c.Add(ctx, k, exp, at) }
	if ok, err := add("a", now.Add(time.Minute), now); !ok || err != nil {
		t.Fatalf("a not fresh: %v", err)
	}
	if ok, _ := add("a", now.Add(time.Minute), now); ok {
		t.Fatal("a replayed")
	}
	if ok, _ := add("b", now.Add(2*time.Minute), now); !ok {
		t.Fatal("b not fresh")
	}
	if _, err := add("c", now.Add(time.Minute), now); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full cache: %v", err)
	}
	later := now.Add(90 * time.Second) // a expired
	if ok, err := add("c", later.Add(time.Minute), later); !ok || err != nil {
		t.Fatalf("after expiry: %v %v", ok, err)
	}
	if ok, _ := add("b", later.Add(time.Minute), later); ok {
		t.Fatal("b forgotten")
	}
	// The sweep that made room deleted a from the store.
	if _, err := db.Get(ctx, append(store.ExtensionPrefix(ReplayExtension), "a"...)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired a still stored: %v", err)
	}
	// Everything expired: a sweep leaves no key behind.
	end := later.Add(10 * time.Minute)
	c.mu.Lock()
	err = c.sweep(ctx, end)
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	db.Scan(ctx, store.PrefixRange(store.ExtensionPrefix(ReplayExtension)), func(k, v []byte) bool { n++; return true })
	if n != 0 || c.Len() != 0 {
		t.Fatalf("%d keys left after the sweep (Len %d)", n, c.Len())
	}
}

// Two caches on one shared store (two replicas, each with its own handle
// on Redis): of concurrent Adds of one key, exactly one is fresh, also
// when the key holds an expired entry both read; the key carries a TTL.
func TestStoreReplayCacheReplicas(t *testing.T) {
	for _, be := range enginetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			ctx := context.Background()
			e1 := &ttlEngine{Engine: be.Open(t)}
			c1, err := NewStoreReplayCache(ctx, e1, 0)
			if err != nil {
				t.Fatal(err)
			}
			c2, err := NewStoreReplayCache(ctx, be.Open(t), 0)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			race := func(key string, exp, at time.Time) {
				t.Helper()
				var fresh atomic.Int32
				var wg sync.WaitGroup
				for j := range 8 {
					c := c1
					if j%2 == 1 {
						c = c2
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						ok, err := c.Add(ctx, key, exp, at)
						if err != nil {
							t.Error(err)
						}
						if ok {
							fresh.Add(1)
						}
					}()
				}
				wg.Wait()
				if fresh.Load() != 1 {
					t.Fatalf("%q: %d fresh adds, want 1", key, fresh.Load())
				}
			}
			for i := range 20 {
				key := "client\x00jti-" + string(rune('a'+i))
				race(key, now.Add(time.Minute), now)
				// The entry expired: re-added once, by one replica.
				race(key, now.Add(3*time.Minute), now.Add(2*time.Minute))
			}
			e1.mu.Lock()
			defer e1.mu.Unlock()
			for _, d := range e1.ttls {
				if d < time.Minute || d > 2*time.Minute {
					t.Fatalf("TTL hint %v for an entry expiring a minute ahead", d)
				}
			}
			if len(e1.ttls) == 0 {
				t.Fatal("no write through the first cache")
			}
		})
	}
}

// ttlEngine notes the TTL hints of the writes through it.
type ttlEngine struct {
	store.Engine
	mu   sync.Mutex
	ttls []time.Duration
}

func (e *ttlEngine) Apply(ctx context.Context, b *store.Batch) error {
	e.mu.Lock()
	for _, op := range b.Ops {
		if !op.Delete {
			e.ttls = append(e.ttls, op.TTL)
		}
	}
	e.mu.Unlock()
	return e.Engine.Apply(ctx, b)
}

// BenchmarkStoreReplayCacheAdd: one token exchange's cost of the durable
// cache (a read and a synced conditional commit on Pebble).
func BenchmarkStoreReplayCacheAdd(b *testing.B) {
	ctx := context.Background()
	db, err := pebble.New(ctx, pebble.Config{Dir: b.TempDir(), CacheBytes: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	c, _ := NewStoreReplayCache(ctx, db, 1<<30)
	now := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var buf [16]byte
		for pb.Next() {
			rand.Read(buf[:])
			if ok, err := c.Add(ctx, "client\x00"+string(buf[:]), now.Add(time.Minute), now); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}
