// Package enginetest gives the tests of components built on store.Engine
// (sign-in nonces, replay caches, keys, deployment books) the engines to
// run on, each as a shared backend that a test opens several times, once
// per simulated replica: Pebble (one handle, shared: it admits one process)
// and, where redis-server is installed, Redis (a new client each time, so
// nothing a handle keeps in memory can make a test pass).
package enginetest

import (
	"context"
	"sync"
	"testing"

	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// Backend is one shared store. Open returns a handle on it for the
// calling test; handles are closed when the test that made the backend
// ends. Call Open inside the subtest (t.Run) of the backend: a Redis
// backend skips that subtest where it cannot start redis-server.
type Backend struct {
	Name string
	Open func(t testing.TB) store.Engine
}

// Backends returns a fresh Pebble backend and, with store/redis, a fresh
// Redis backend.
func Backends(t testing.TB) []Backend {
	bs := []Backend{pebbleBackend(t)}
	if newRedis != nil {
		bs = append(bs, newRedis(t))
	}
	return bs
}

// newRedis makes a Redis backend (set in redis.go).
var newRedis func(t testing.TB) Backend

func pebbleBackend(parent testing.TB) Backend {
	dir := parent.TempDir()
	var once sync.Once
	var db *pebble.DB
	return Backend{Name: "pebble", Open: func(t testing.TB) store.Engine {
		t.Helper()
		once.Do(func() {
			var err error
			if db, err = pebble.New(context.Background(), pebble.Config{Dir: dir, CacheBytes: 1 << 20}); err != nil {
				t.Fatal(err)
			}
			parent.Cleanup(func() { db.Close() })
		})
		if db == nil {
			t.Fatal("enginetest: pebble did not open")
		}
		return db
	}}
}
