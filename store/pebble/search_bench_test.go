package pebble

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// BenchmarkSearchPage is a search as the gateway makes it on Pebble (an
// access filter over every match, 275 of 2,000 match, a page of 10 and
// its resources read), to check that MultiGetter, which Pebble does not
// implement, leaves its path as fast as before (BENCHMARKS.md §8).
//
//	go test -run XXX -bench SearchPage -count 6 ./store/pebble
func BenchmarkSearchPage(b *testing.B) {
	ctx := context.Background()
	db, err := New(ctx, Config{Dir: b.TempDir(), CacheBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := store.New(db, store.Options{})
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var ws []store.Write
	for i := range 2000 {
		id := fmt.Sprintf("p%05d", i)
		ws = append(ws, store.Write{
			New: store.Version{Type: "Patient", ID: id, VID: 1, LastUpdated: at, Method: store.MethodCreate,
				Author: "client/bench", Compartments: []string{"Patient/" + id}, Body: []byte(`{"resourceType":"Patient"}`)},
			Index: []store.IndexValue{{Param: "family", Kind: store.IndexString, Text: fmt.Sprintf("Family%d", i%80)}},
		})
	}
	if err := s.Commit(ctx, ws); err != nil {
		b.Fatal(err)
	}
	q := store.Query{Type: "Patient", Count: 10, Total: true,
		Filter:  func(v *store.Version) bool { return len(v.Compartments) == 1 },
		Clauses: []store.Clause{{Preds: []store.Pred{{Op: store.OpStringStarts, Param: "family", Text: "family7"}}}}}
	b.ResetTimer()
	for b.Loop() {
		page, err := s.Search(ctx, &q)
		if err != nil || page.Total != 275 {
			b.Fatalf("%d matches, %v", page.Total, err)
		}
		for _, id := range page.IDs {
			if _, err := s.Read(ctx, "Patient", id); err != nil {
				b.Fatal(err)
			}
		}
	}
}
