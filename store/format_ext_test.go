package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// TestCheckFormat: the first open stamps the format version; later opens
// accept it; a newer or unreadable version is refused with a message
// naming it.
func TestCheckFormat(t *testing.T) {
	ctx := context.Background()
	db, err := pebble.New(ctx, pebble.Config{Dir: t.TempDir(), CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 2 {
		if err := store.CheckFormat(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := db.Get(ctx, []byte("Mformat")); err != nil || string(v) != "1" {
		t.Fatalf("format key %q, %v", v, err)
	}
	for _, tc := range []struct{ stored, want string }{{"2", "newer"}, {"0", "is this a fhirgate store"}, {"x", "is this a fhirgate store"}} {
		var b store.Batch
		b.Set([]byte("Mformat"), []byte(tc.stored))
		if err := db.Apply(ctx, &b); err != nil {
			t.Fatal(err)
		}
		err := store.CheckFormat(ctx, db)
		if !errors.Is(err, store.ErrFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("format %q: %v", tc.stored, err)
		}
	}
}
