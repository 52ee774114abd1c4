package pebble

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// BenchmarkSearchCompound: searches of two clauses over 20,000 Patients,
// as the store's planner meets them: a narrow clause with a broad one
// (identifier=x&gender=female: 1 and 10,000 ids), and two clauses of a
// few hundred each (family prefix and given name, 250 and 400 ids, 50 in both).
//
//	go test -run XXX -bench SearchCompound -count 6 ./store/pebble
func BenchmarkSearchCompound(b *testing.B) {
	ctx := context.Background()
	db, err := New(ctx, Config{Dir: b.TempDir(), CacheBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := store.New(db, store.Options{})
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const n = 20_000
	for start := 0; start < n; start += 1000 {
		var ws []store.Write
		for i := start; i < start+1000; i++ {
			id := fmt.Sprintf("p%05d", i)
			gender := "female"
			if i%2 == 1 {
				gender = "male"
			}
			ws = append(ws, store.Write{
				New: store.Version{Type: "Patient", ID: id, VID: 1, LastUpdated: at, Method: store.MethodCreate,
					Author: "client/bench", Compartments: []string{"Patient/" + id}, Body: []byte(`{"resourceType":"Patient"}`)},
				Index: []store.IndexValue{
					{Param: "identifier", Kind: store.IndexToken, System: "urn:mrn", Code: fmt.Sprintf("MRN%05d", i)},
					{Param: "gender", Kind: store.IndexToken, Code: gender},
					{Param: "family", Kind: store.IndexString, Text: fmt.Sprintf("Family%02d", i%80)},
					{Param: "given", Kind: store.IndexString, Text: fmt.Sprintf("Given%02d", i%50)},
				},
			})
		}
		if err := s.Commit(ctx, ws); err != nil {
			b.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		clauses []store.Clause
		want    int
	}{
		{"narrow+broad", []store.Clause{
			{Preds: []store.Pred{{Op: store.OpTokenSystemCode, Param: "identifier", System: "urn:mrn", Code: "MRN01234"}}},
			{Preds: []store.Pred{{Op: store.OpTokenCode, Param: "gender", Code: "female"}}},
		}, 1},
		{"mid+mid", []store.Clause{
			{Preds: []store.Pred{{Op: store.OpStringStarts, Param: "family", Text: "family07"}}},
			{Preds: []store.Pred{{Op: store.OpStringStarts, Param: "given", Text: "given07"}}},
		}, 50},
	} {
		b.Run(tc.name, func(b *testing.B) {
			q := store.Query{Type: "Patient", Count: 10, Total: true, Clauses: tc.clauses}
			for b.Loop() {
				page, err := s.Search(ctx, &q)
				if err != nil || page.Total != tc.want {
					b.Fatalf("%d matches, %v; want %d", page.Total, err, tc.want)
				}
			}
		})
	}
}
