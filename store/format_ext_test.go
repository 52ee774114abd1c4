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
// accept it; format 1 is upgraded; a newer or unreadable version is
// refused with a message naming it.
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
	if v, err := db.Get(ctx, []byte("Mformat")); err != nil || string(v) != "3" {
		t.Fatalf("format key %q, %v", v, err)
	}
	// A format-1 store (its records lack the holds flags, which format 2
	// reads as unknown) and a format-2 one (format 3 marks Redis's layout
	// 2 only) are upgraded in place.
	for _, old := range []string{"1", "2"} {
		var up store.Batch
		up.Set([]byte("Mformat"), []byte(old))
		if err := db.Apply(ctx, &up); err != nil {
			t.Fatal(err)
		}
		if err := store.CheckFormat(ctx, db); err != nil {
			t.Fatalf("format %s: %v", old, err)
		}
		if v, err := db.Get(ctx, []byte("Mformat")); err != nil || string(v) != "3" {
			t.Fatalf("format %s upgraded to %q, %v", old, v, err)
		}
	}
	for _, tc := range []struct{ stored, want string }{{"4", "newer"}, {"0", "is this a fhirgate store"}, {"x", "is this a fhirgate store"}} {
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
