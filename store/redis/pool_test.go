package redis

import (
	"context"
	"testing"

	"github.com/fhirgate/fhirgate/internal/redistest"
)

// The pool is large enough for every request in flight to have its
// command in the same fsynced event-loop iteration, unless configured.
func TestPoolSize(t *testing.T) {
	srv := redistest.Start(t)
	for _, tc := range []struct{ cfg, want int }{{0, DefaultPoolSize}, {7, 7}} {
		db, err := Open(context.Background(), Config{URL: srv.URL(), Prefix: redistest.Prefix(t), PoolSize: tc.cfg})
		if err != nil {
			t.Fatal(err)
		}
		if got := db.Client().Options().PoolSize; got != tc.want {
			t.Errorf("PoolSize %d: pool of %d, want %d", tc.cfg, got, tc.want)
		}
		db.Close()
	}
}
