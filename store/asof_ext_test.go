package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// EachAsOf visits each resource as it stood at an instant (later versions,
// later resources and later deletes are not seen; earlier deletes are
// tombstones), in id order, across engine batches, and resumes after an
// id.
func TestEachAsOf(t *testing.T) {
	ctx := context.Background()
	db, err := pebble.New(ctx, pebble.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(db, store.Options{})
	defer s.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(id string, vid uint64, at time.Time, deleted bool) {
		t.Helper()
		w := store.Write{New: store.Version{Type: "Basic", ID: id, VID: vid, LastUpdated: at, Deleted: deleted, Method: store.MethodUpdate}}
		if !deleted {
			w.New.Body = []byte(fmt.Sprintf(`{"v":%d}`, vid))
		}
		if vid > 1 {
			prev, err := s.Current(ctx, "Basic", id)
			if err != nil {
				t.Fatal(err)
			}
			w.Prev = &prev
		}
		if err := s.Commit(ctx, []store.Write{w}); err != nil {
			t.Fatal(err)
		}
	}
	// 3000 resources (several engine batches): r0000 .. r2999, version 1
	// at t0; r0001 changed after the instant, r0002 deleted before it,
	// r0003 deleted after it; r9999 created after it.
	for i := range 3000 {
		write(fmt.Sprintf("r%04d", i), 1, t0, false)
	}
	asOf := t0.Add(time.Minute)
	write("r0001", 2, asOf.Add(time.Second), false)
	write("r0002", 2, asOf.Add(-time.Second), true)
	write("r0003", 2, asOf.Add(time.Second), true)
	write("r9999", 1, asOf.Add(time.Second), false)

	visit := func(after string) (ids []string, vids map[string]uint64, dead map[string]bool) {
		vids, dead = map[string]uint64{}, map[string]bool{}
		err := s.EachAsOf(ctx, "Basic", after, asOf, func(v *store.Version) error {
			ids = append(ids, v.ID)
			vids[v.ID], dead[v.ID] = v.VID, v.Deleted
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	ids, vids, dead := visit("")
	if len(ids) != 3000 || ids[0] != "r0000" || ids[2999] != "r2999" {
		t.Fatalf("visited %d ids (%v ... )", len(ids), ids[:3])
	}
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			t.Fatalf("out of order: %s then %s", ids[i-1], ids[i])
		}
	}
	if vids["r0001"] != 1 || !dead["r0002"] || dead["r0003"] || vids["r0003"] != 1 {
		t.Errorf("as of: r0001 v%d, r0002 deleted %v, r0003 deleted %v v%d", vids["r0001"], dead["r0002"], dead["r0003"], vids["r0003"])
	}
	ids, _, _ = visit("r1499")
	if len(ids) != 1500 || ids[0] != "r1500" {
		t.Errorf("after r1499: %d ids from %v", len(ids), ids[:1])
	}
}
