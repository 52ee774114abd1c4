package audit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/internal/enginetest"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// TestInterleavedWritersMatchIndexedSearch: a trail written first by one
// process (legacy keys without writer ids, segments spanning minutes),
// then by three writers at once whose clocks give the same times (two
// in step, one a little behind), so that their segments overlap. Every
// event is found once, reads back from any writer, proves at a leaf of
// its own, and every search answers what the general indexed search
// answers over the same events. (store's journal tests check the merge
// of overlapping segments over any span.)
func TestInterleavedWritersMatchIndexedSearch(t *testing.T) {
	ctx := context.Background()
	db, err := pebble.New(ctx, pebble.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rng := rand.New(rand.NewPCG(11, 7))
	next := eventSource(rng)

	// The legacy trail: one writer, w = 0, times spread within segments.
	legacy, err := OpenTrail(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	legacy.SetWriter(0)
	clock := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC).UnixMicro()
	for written := 0; written < 300; {
		n := min(300-written, 1+rng.IntN(200))
		events, ts := make([]Event, n), make([]int64, n)
		for i := range events {
			clock += 1 + rng.Int64N(3)*rng.Int64N(90)*int64(time.Minute/time.Microsecond)
			events[i], ts[i] = next(), clock
		}
		if err := legacy.AppendAt(ctx, &entries{events: events}, ts); err != nil {
			t.Fatal(err)
		}
		written += n
	}

	// Three writers over the same engine, in interleaved commits.
	var trails []*Trail
	var stores []*store.Store
	for i := range 3 {
		tr, err := OpenTrail(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		lag := time.Duration(i/2) * 50 * time.Microsecond // the third is behind
		tr.Now = func() time.Time { return time.UnixMicro(clock).Add(-lag) }
		trails = append(trails, tr)
		stores = append(stores, store.New(db, store.Options{Virtual: map[string]store.Virtual{"AuditEvent": tr}}))
	}
	for written := 0; written < 600; {
		if rng.IntN(3) == 0 {
			clock += rng.Int64N(3) * rng.Int64N(40) * int64(time.Minute/time.Microsecond)
		}
		batch := make([]Event, min(600-written, 1+rng.IntN(200)))
		for i := range batch {
			batch[i] = next()
		}
		if err := trails[rng.IntN(3)].write(ctx, batch, false); err != nil {
			t.Fatal(err)
		}
		written += len(batch)
	}

	all := allEvents(t, stores[1])
	if len(all) != 900 {
		t.Fatalf("the trail holds %d events, wrote 900", len(all))
	}
	ties := 0
	for i := 1; i < len(all); i++ {
		if all[i-1].ID >= all[i].ID {
			t.Fatalf("events %d, %d out of order: %s, %s", i-1, i, all[i-1].ID, all[i].ID)
		}
		if all[i-1].LastUpdated.Equal(all[i].LastUpdated) {
			ties++
		}
	}
	if ties < 100 {
		t.Fatalf("only %d events share their time with another writer's: the test does not interleave", ties)
	}
	t.Logf("%d events share their time with another writer's", ties)

	// Each event reads back from every writer's view and proves at a leaf
	// of its own.
	leafOf := leafNames(t, stores[0])
	seen := map[uint64]bool{}
	for i, v := range all {
		got, err := stores[i%3].Read(ctx, "AuditEvent", v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Body) != string(v.Body) {
			t.Fatalf("%s reads back different bytes", v.ID)
		}
		n, err := stores[(i+1)%3].LeafIndex(ctx, "AuditEvent", v.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if seen[n] || leafOf[n] != "AuditEvent/"+v.ID+"/_history/1" {
			t.Fatalf("%s: leaf %d names %q (seen before: %v)", v.ID, n, leafOf[n], seen[n])
		}
		seen[n] = true
	}
	// The searches whose order and paging ties across writers decide.
	matchesIndexedSearch(t, stores[2], all, func(q string) bool {
		return q == "" || strings.Contains(q, "_sort") || strings.Contains(q, "date=") || strings.Contains(q, "_id=") ||
			strings.HasPrefix(q, "patient=p2")
	})
}

// leafNames returns what each leaf of the log names.
func leafNames(t *testing.T, st *store.Store) map[uint64]string {
	t.Helper()
	out := map[uint64]string{}
	if err := st.Leaves(context.Background(), 0, func(n uint64, d []byte) bool {
		lines := strings.Split(string(d), "\n")
		if len(lines) > 1 {
			out[n] = lines[1]
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRecordersShareOneEngine: two recorders (two replicas) over one
// shared engine record at once, their clocks giving the same times.
// Every event is kept once, under an id of its own, in the log once;
// searches by patient and date find every one, in order, page by page,
// from either replica.
func TestRecordersShareOneEngine(t *testing.T) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
			var stores []*store.Store
			var recs []*Recorder
			for range 2 {
				e := b.Open(t)
				tr, err := OpenTrail(ctx, e)
				if err != nil {
					t.Fatal(err)
				}
				// Both clocks stand still at the same instant.
				tr.Now = func() time.Time { return base }
				stores = append(stores, store.New(e, store.Options{Virtual: map[string]store.Virtual{"AuditEvent": tr}}))
				r := NewRecorder(tr, Options{})
				run(t, r)
				recs = append(recs, r)
			}
			const workers, each = 6, 40
			var wg sync.WaitGroup
			errs := make(chan error, 2*workers)
			for ri, r := range recs {
				for w := range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range each {
							p := fmt.Sprintf("Patient/p%d", (w+i)%4)
							e := Event{Interaction: "read", Outcome: Success, Reason: fmt.Sprintf("r%d-%d-%d", ri, w, i),
								Patients: []string{p}, Entities: []string{p + "/_history/1"}, Source: "127.0.0.1"}
							if err := r.Record(ctx, e); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			const total = 2 * workers * each

			search := func(st *store.Store, raw string, count int) []string {
				t.Helper()
				params, err := url.ParseQuery(raw)
				if err != nil {
					t.Fatal(err)
				}
				q, err := search.ParseQuery("AuditEvent", params, search.Options{Strict: true})
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, page := range pages(t, ctx, "trail", st, q.Store, count) {
					if len(page) > 0 && strings.HasPrefix(page[0], "total ") {
						continue
					}
					ids = append(ids, page...)
				}
				return ids
			}
			all := search(stores[0], "", 17)
			if len(all) != total {
				t.Fatalf("%d events found, recorded %d", len(all), total)
			}
			if !slices.IsSorted(all) || len(slices.Compact(slices.Clone(all))) != total {
				t.Fatal("ids not unique or not in order")
			}
			// Every event once, with its own content, read on either side.
			reasons := map[string]bool{}
			times := map[string]int{}
			for i, id := range all {
				v, err := stores[i%2].Read(ctx, "AuditEvent", id)
				if err != nil {
					t.Fatal(err)
				}
				r := between(string(v.Body), `"outcomeDesc":"`, `"`)
				if reasons[r] {
					t.Fatalf("event %s recorded twice", r)
				}
				reasons[r] = true
				times[id[:len(idPrefix)+16]]++
			}
			if len(reasons) != total {
				t.Fatalf("%d distinct events, want %d", len(reasons), total)
			}
			shared := 0
			for _, n := range times {
				if n > 1 {
					shared += n
				}
			}
			if shared == 0 {
				t.Fatal("no two events share a time: the replicas' clocks did not collide")
			}
			// By patient, forward and back, and by date, on either side.
			for p := range 4 {
				ref := fmt.Sprintf("Patient/p%d", p)
				asc := search(stores[p%2], "patient="+ref, 7)
				if len(asc) != total/4 || !slices.IsSorted(asc) {
					t.Fatalf("%s: %d events (sorted %v), want %d", ref, len(asc), slices.IsSorted(asc), total/4)
				}
				desc := search(stores[(p+1)%2], "patient="+ref+"&_sort=-_id", 5)
				slices.Reverse(desc)
				if !slices.Equal(asc, desc) {
					t.Fatalf("%s: _sort=-_id pages are not the ascending ones reversed", ref)
				}
				// Newest first; events of one time in id order (as an
				// indexed search breaks ties).
				want := slices.Clone(asc)
				slices.SortStableFunc(want, func(a, b string) int { return strings.Compare(b[:len(idPrefix)+16], a[:len(idPrefix)+16]) })
				if got := search(stores[p%2], "patient="+ref+"&_sort=-date", 6); !slices.Equal(got, want) {
					t.Fatalf("%s: _sort=-date pages out of order", ref)
				}
			}
			day := base.Format("2006-01-02")
			if got := search(stores[1], "date="+day+"&_count=3", 11); !slices.Equal(got, all) {
				t.Fatalf("date=%s: %d events, want %d", day, len(got), total)
			}
			// In the log once each.
			names := map[string]int{}
			for _, name := range leafNames(t, stores[0]) {
				names[name]++
			}
			for _, id := range all {
				if n := names["AuditEvent/"+id+"/_history/1"]; n != 1 {
					t.Fatalf("%s is in the log %d times", id, n)
				}
			}
		})
	}
}

// between returns the text of s between the first after and the next end.
func between(s, after, end string) string {
	_, rest, _ := strings.Cut(s, after)
	v, _, _ := strings.Cut(rest, end)
	return v
}
