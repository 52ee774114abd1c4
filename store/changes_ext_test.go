package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// linkWrite makes version vid of Patient/id hold names (nil: none).
func linkWrite(t *testing.T, s *store.Store, id string, names []string) error {
	t.Helper()
	ctx := context.Background()
	var prev *store.Version
	vid := uint64(1)
	if cur, err := s.Current(ctx, "Patient", id); err == nil {
		prev, vid = &cur, cur.VID+1
	}
	v := store.Version{Type: "Patient", ID: id, VID: vid, LastUpdated: time.Now(), Method: store.MethodUpdate, Body: []byte(`{"resourceType":"Patient"}`)}
	return s.Commit(ctx, []store.Write{{Prev: prev, New: v, HoldsUnique: true, Unique: names}})
}

// The unique-name feed: one entry per commit that changes names, gap-free
// and in commit order, read through a second Store over the same engine;
// commits that change no names add nothing; racing linkers through two
// Stores all succeed (a lost race for the feed's number is retried) and
// leave every number used once.
func TestUniqueFeed(t *testing.T) {
	ctx := context.Background()
	db, err := pebble.New(ctx, pebble.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	a, b := store.New(db, store.Options{}), store.New(db, store.Options{})
	defer db.Close()

	steps := []struct {
		id    string
		names []string
		want  []string // names noted; nil: no entry
	}{
		{"p1", []string{"wallet:0xa"}, []string{"wallet:0xa"}},
		{"p1", []string{"wallet:0xa"}, nil},
		{"p1", []string{"wallet:0xb"}, []string{"wallet:0xa", "wallet:0xb"}},
		{"p2", nil, nil},
		{"p1", nil, []string{"wallet:0xb"}},
	}
	var seq uint64
	for i, st := range steps {
		if err := linkWrite(t, a, st.id, st.names); err != nil {
			t.Fatal(err)
		}
		n, err := b.UniqueSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.want == nil {
			if n != seq {
				t.Fatalf("step %d: a write changing no names moved the feed to %d", i, n)
			}
			continue
		}
		if n != seq+1 {
			t.Fatalf("step %d: feed at %d, want %d", i, n, seq+1)
		}
		es, err := b.UniqueChanges(ctx, seq, 10)
		if err != nil || len(es) != 1 || es[0].Seq != n || len(es[0].Changes) != 1 {
			t.Fatalf("step %d: entries %+v, %v", i, es, err)
		}
		c := es[0].Changes[0]
		if c.Ref != "Patient/"+st.id || fmt.Sprint(c.Names) != fmt.Sprint(st.want) {
			t.Fatalf("step %d: change %+v, want %v", i, c, st.want)
		}
		seq = n
	}

	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if w%2 == 1 {
				s = b
			}
			for i := range each {
				name := fmt.Sprintf("wallet:0x%d-%d", w, i)
				if err := linkWrite(t, s, fmt.Sprintf("r%d", w), []string{name}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a linker failed: %v", err)
	}
	es, err := a.UniqueChanges(ctx, seq, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != writers*each {
		t.Fatalf("%d entries after racing linkers, want %d", len(es), writers*each)
	}
	for i, e := range es {
		if e.Seq != seq+uint64(i)+1 {
			t.Fatalf("entry %d numbered %d: the feed has a gap", i, e.Seq)
		}
	}
}
