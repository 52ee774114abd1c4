package store_test

import (
	"context"
	"testing"

	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
	"github.com/fhirgate/fhirgate/store/storetest"
)

// TestLegacyLayout runs the whole store suite over stores laid out as
// earlier versions wrote them (index entries before references and narrow
// dates got one key each, log positions under keys of their own): such a
// store answers every search and finds every leaf without a reindex.
func TestLegacyLayout(t *testing.T) {
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
	var added, leaves int64
	for _, e := range engines {
		added += e.Added()
		leaves += e.LeafKeys()
	}
	if added == 0 || leaves == 0 {
		t.Fatalf("%d legacy index keys and %d leaf keys written: the suite did not exercise the layout", added, leaves)
	}
	t.Logf("%d legacy index keys and %d leaf keys written", added, leaves)
}
