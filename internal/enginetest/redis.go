package enginetest

import (
	"context"
	"os/exec"
	"sync"
	"testing"

	"github.com/fhirgate/fhirgate/internal/redistest"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/redis"
)

func init() { newRedis = redisBackend }

// redisBackend starts its redis-server at the first Open (the calling
// subtest is skipped where there is no redis-server) and gives every Open
// a client of its own under one key prefix.
func redisBackend(parent testing.TB) Backend {
	var mu sync.Mutex
	var srv *redistest.Server
	prefix := redistest.Prefix(parent)
	return Backend{Name: "redis", Open: func(t testing.TB) store.Engine {
		t.Helper()
		mu.Lock()
		if srv == nil {
			if _, err := exec.LookPath("redis-server"); err != nil {
				mu.Unlock()
				redistest.Start(t) // skips this subtest (fails it in CI)
				return nil
			}
			// The server lives as long as the backend, not the first
			// subtest (a benchmark runs its function several times).
			srv = redistest.Start(parent)
		}
		url := srv.URL()
		mu.Unlock()
		db, err := redis.Open(context.Background(), redis.Config{URL: url, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}}
}
