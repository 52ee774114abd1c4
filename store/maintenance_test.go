package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/fhirgate/fhirgate/internal/enginetest"
	"github.com/fhirgate/fhirgate/store"
)

// A reindex and serving replicas exclude each other through the store
// (two handles: two processes).
func TestMaintenanceExcludesServing(t *testing.T) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			a, m := b.Open(t), b.Open(t)

			leave, err := store.Serve(ctx, a, "replica-a")
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := store.Maintain(ctx, m, "reindex"); !errors.Is(err, store.ErrServing) {
				t.Fatalf("maintenance while a replica serves: %v, want ErrServing", err)
			}
			leave()
			_, end, err := store.Maintain(ctx, m, "reindex")
			if err != nil {
				t.Fatalf("maintenance after the replica left: %v", err)
			}
			if _, err := store.Serve(ctx, a, "replica-b"); !errors.Is(err, store.ErrMaintenance) {
				t.Fatalf("serving during maintenance: %v, want ErrMaintenance", err)
			}
			if _, _, err := store.Maintain(ctx, a, "another"); !errors.Is(err, store.ErrMaintenance) {
				t.Fatalf("a second maintenance: %v, want ErrMaintenance", err)
			}
			end()
			leave, err = store.Serve(ctx, a, "replica-b")
			if err != nil {
				t.Fatalf("serving after maintenance: %v", err)
			}
			leave()

			// Started at the same moment, never both.
			for i := range 20 {
				var wg sync.WaitGroup
				var serveErr, maintErr error
				var leave, end func()
				wg.Add(2)
				go func() { defer wg.Done(); leave, serveErr = store.Serve(ctx, a, "racer") }()
				go func() { defer wg.Done(); _, end, maintErr = store.Maintain(ctx, m, "reindex") }()
				wg.Wait()
				if serveErr == nil && maintErr == nil {
					t.Fatalf("round %d: a replica serves during maintenance", i)
				}
				if leave != nil {
					leave()
				}
				if end != nil {
					end()
				}
			}
		})
	}
}
