package store_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// heldGets counts the engine reads of held-name lists ('u' "#held" keys).
type heldGets struct {
	store.Engine
	n atomic.Int32
}

func (e *heldGets) Get(ctx context.Context, key []byte) ([]byte, error) {
	if bytes.HasPrefix(key, []byte("u#held\x00")) {
		e.n.Add(1)
	}
	return e.Engine.Get(ctx, key)
}

// A resource's first version holds nothing yet, and neither does one whose
// current version holds no name, so their writes do not read the held
// list (one round trip less per create or such update on Redis); writes
// after a version that holds names do, names are still taken and
// released, and the absence assumed is still a condition of the commit.
func TestHoldUniqueFirstVersionReadsNoHeldList(t *testing.T) {
	ctx := context.Background()
	db, err := pebble.New(ctx, pebble.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e := &heldGets{Engine: db}
	s := store.New(e, store.Options{})
	write := func(id string, prev *store.Version, names ...string) error {
		vid := uint64(1)
		if prev != nil {
			vid = prev.VID + 1
		}
		v := store.Version{Type: "Patient", ID: id, VID: vid, LastUpdated: time.Now(), Method: store.MethodUpdate, Body: []byte(`{"resourceType":"Patient"}`)}
		return s.Commit(ctx, []store.Write{{Prev: prev, New: v, HoldsUnique: true, Unique: names}})
	}
	current := func(id string) *store.Version {
		cur, err := s.Current(ctx, "Patient", id)
		if err != nil {
			t.Fatal(err)
		}
		return &cur
	}

	steps := []struct {
		name      string
		do        func() error
		wantErr   error
		wantReads int32
	}{
		{"create holding a name", func() error { return write("p1", nil, "wallet:0xa") }, nil, 0},
		{"create holding nothing", func() error { return write("p2", nil) }, nil, 0},
		{"create taking a held name", func() error { return write("p3", nil, "wallet:0xa") }, store.ErrTaken, 0},
		{"update releasing it", func() error { return write("p1", current("p1")) }, nil, 1},
		{"update taking it, after a version holding none", func() error { return write("p2", current("p2"), "wallet:0xa") }, nil, 0},
		{"update after a version holding it", func() error { return write("p2", current("p2"), "wallet:0xa") }, nil, 1},
	}
	for _, st := range steps {
		before := e.n.Load()
		if err := st.do(); !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: %v, want %v", st.name, err, st.wantErr)
		}
		if got := e.n.Load() - before; got != st.wantReads {
			t.Errorf("%s: %d reads of held lists, want %d", st.name, got, st.wantReads)
		}
	}

	// A held list left for an id that has no version (not something the
	// store writes) makes that id's first write conflict, never adopt it.
	var b store.Batch
	b.Set([]byte("u#held\x00\x01Patient/p4\x00\x01"), []byte("wallet:0xb"))
	if err := db.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if err := write("p4", nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("first write over a stray held list: %v, want ErrConflict", err)
	}
	// So does the write after a version holding none (p1 released its name).
	b = store.Batch{}
	b.Set([]byte("u#held\x00\x01Patient/p1\x00\x01"), []byte("wallet:0xb"))
	if err := db.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if err := write("p1", current("p1")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update over a stray held list: %v, want ErrConflict", err)
	}
}

// MayChangeUnique is false exactly for writes that leave every unique
// name where it was: no names set, or none named over a version that
// held none.
func TestMayChangeUnique(t *testing.T) {
	none := &store.Version{VID: 1, Holds: store.HoldsNone}
	some := &store.Version{VID: 1, Holds: store.HoldsSome}
	unknown := &store.Version{VID: 1, Holds: store.HoldsUnknown}
	for _, tc := range []struct {
		name string
		w    store.Write
		want bool
	}{
		{"names left alone", store.Write{Prev: some}, false},
		{"first version, no names", store.Write{HoldsUnique: true}, false},
		{"first version with a name", store.Write{HoldsUnique: true, Unique: []string{"wallet:0xa"}}, true},
		{"none over none", store.Write{Prev: none, HoldsUnique: true}, false},
		{"a name over none", store.Write{Prev: none, HoldsUnique: true, Unique: []string{"wallet:0xa"}}, true},
		{"none over some: released", store.Write{Prev: some, HoldsUnique: true}, true},
		{"none over a version of before the flag", store.Write{Prev: unknown, HoldsUnique: true}, true},
	} {
		if got := tc.w.MayChangeUnique(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
