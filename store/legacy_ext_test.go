package store_test

import (
	"context"
	"testing"

	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
	"github.com/fhirgate/fhirgate/store/storetest"
)

// TestLegacyIndexLayout runs the whole store suite over stores whose
// index entries are laid out as before references and narrow dates got
// one key each: a store written by an earlier version answers every search
// the same way without a reindex.
func TestLegacyIndexLayout(t *testing.T) {
	var engines []*store.LegacyEngine
	storetest.Run(t, func(t *testing.T) store.Engine {
		db, err := pebble.New(context.Background(), pebble.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		e := store.LegacyLayout(db)
		engines = append(engines, e)
		return e
	})
	var added int64
	for _, e := range engines {
		added += e.Added()
	}
	if added == 0 {
		t.Fatal("no legacy key was written: the suite did not exercise the layout")
	}
	t.Logf("%d legacy keys written", added)
}
