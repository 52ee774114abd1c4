package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// Every key a version costs is paid again at every compaction level, so
// the layout keeps them few: a version's log position rides in its system
// history key ('h') instead of a key of its own ('l', as earlier stores
// hold it; TestLegacyLayout covers reading those).
func TestLeafPositionNeedsNoKeyOfItsOwn(t *testing.T) {
	ctx := context.Background()
	db, err := pebble.New(ctx, pebble.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(db, store.Options{})
	defer s.Close()
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var ws []store.Write
	for i, id := range []string{"a", "b", "c"} {
		v := store.Version{Type: "Patient", ID: id, VID: 1, LastUpdated: at.Add(time.Duration(i) * time.Second), Method: store.MethodCreate, Body: []byte(`{"resourceType":"Patient"}`)}
		ws = append(ws, store.Write{New: v, Leaf: []byte("leaf-" + id)})
	}
	// One version without a leaf: LeafIndex must say so.
	ws = append(ws, store.Write{New: store.Version{Type: "Patient", ID: "d", VID: 1, LastUpdated: at, Method: store.MethodCreate, Body: []byte(`{}`)}})
	if err := s.Commit(ctx, ws); err != nil {
		t.Fatal(err)
	}
	for want, id := range []string{"a", "b", "c"} {
		got, err := s.LeafIndex(ctx, "Patient", id, 1)
		if err != nil || got != uint64(want) {
			t.Fatalf("LeafIndex(%s) = %d, %v; want %d", id, got, err, want)
		}
	}
	if _, err := s.LeafIndex(ctx, "Patient", "d", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LeafIndex of a version written without a leaf = %v, want ErrNotFound", err)
	}
	var keys []string
	err = db.Scan(ctx, store.PrefixRange([]byte{'l'}), func(k, _ []byte) bool {
		keys = append(keys, string(k))
		return true
	})
	if err != nil || len(keys) != 0 {
		t.Fatalf("leaf position keys %q (%v): want none", keys, err)
	}
	// History still lists all four.
	page, err := s.History(ctx, store.HistoryQuery{Count: 10})
	if err != nil || len(page.Versions) != 4 {
		t.Fatalf("history: %d versions, %v", len(page.Versions), err)
	}
	// A history entry removed behind the store's back: no leaf to name
	// (a verifier reports the version as unlogged, not an outage).
	var h []byte
	db.Scan(ctx, store.PrefixRange([]byte{'h'}), func(k, _ []byte) bool { h = append([]byte(nil), k...); return false })
	var b store.Batch
	b.Delete(h)
	if err := db.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LeafIndex(ctx, "Patient", "a", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LeafIndex without its history entry = %v, want ErrNotFound", err)
	}
}
