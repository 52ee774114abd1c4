package enginetest

import (
	"context"
	"sync"
	"testing"

	"github.com/fhirgate/fhirgate/internal/redistest"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/redis"
)

func init() { newRedis = redisBackend }

// redisBackend starts its redis-server at the first Open (in the calling
// subtest, which is skipped where there is none) and gives every Open a
// client of its own under one key prefix.
func redisBackend(parent testing.TB) Backend {
	var mu sync.Mutex
	var srv *redistest.Server
	prefix := redistest.Prefix(parent)
	return Backend{Name: "redis", Open: func(t testing.TB) store.Engine {
		t.Helper()
		mu.Lock()
		if srv == nil {
			srv = redistest.Start(t)
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
