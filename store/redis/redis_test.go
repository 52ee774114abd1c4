package redis

import (
	"context"
	"testing"

	"github.com/fhirgate/fhirgate/internal/redistest"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/storetest"
)

func open(t *testing.T, srv *redistest.Server, prefix string) *DB {
	t.Helper()
	db, err := Open(context.Background(), Config{URL: srv.URL(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestStore(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) store.Engine {
		return open(t, srv, redistest.Prefix(t))
	})
}

// TestShared: two handles on one keyspace, as two replicas open it.
func TestShared(t *testing.T) {
	srv := redistest.Start(t)
	storetest.RunShared(t, func(t *testing.T) (store.Engine, store.Engine) {
		p := redistest.Prefix(t)
		return open(t, srv, p), open(t, srv, p)
	})
}
