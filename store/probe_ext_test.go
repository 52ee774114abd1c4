package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/enginetest"
	"github.com/fhirgate/fhirgate/store"
)

// TestSearchProbeRounds: conjunctions whose clauses complete in different
// rounds of the planner's growing probes (64, 512, 4096 ids), some over
// several ranges (a clause of two values), give exactly the records a
// brute-force check finds — a probe that goes on where it stopped must
// lose no id at a range's end and take none twice.
func TestSearchProbeRounds(t *testing.T) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := store.New(b.Open(t), store.Options{})
			at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			const n = 3000
			type rec struct{ a, bb, c int }
			recs := make([]rec, n)
			var ws []store.Write
			for i := range n {
				id := fmt.Sprintf("p%05d", i)
				// a: 1 in 1000 share a value (3 each); b: 1 in 7; c: 1 in 2.
				r := rec{i % 1000, i % 7, i % 2}
				recs[i] = r
				ws = append(ws, store.Write{
					New: store.Version{Type: "Patient", ID: id, VID: 1, LastUpdated: at, Method: store.MethodCreate,
						Author: "client/t", Body: []byte(`{"resourceType":"Patient"}`)},
					Index: []store.IndexValue{
						{Param: "identifier", Kind: store.IndexToken, Code: fmt.Sprintf("a%04d", r.a)},
						{Param: "family", Kind: store.IndexString, Text: fmt.Sprintf("B%d", r.bb)},
						{Param: "gender", Kind: store.IndexToken, Code: fmt.Sprintf("c%d", r.c)},
					},
				})
				if len(ws) == 500 {
					if err := s.Commit(ctx, ws); err != nil {
						t.Fatal(err)
					}
					ws = nil
				}
			}
			token := func(param string, codes ...string) store.Clause {
				var cl store.Clause
				for _, c := range codes {
					cl.Preds = append(cl.Preds, store.Pred{Op: store.OpTokenCode, Param: param, Code: c})
				}
				return cl
			}
			family := func(texts ...string) store.Clause {
				var cl store.Clause
				for _, x := range texts {
					cl.Preds = append(cl.Preds, store.Pred{Op: store.OpStringExact, Param: "family", Text: x})
				}
				return cl
			}
			for _, tc := range []struct {
				name    string
				clauses []store.Clause
				match   func(r rec) bool
			}{
				{"narrow and broad", []store.Clause{token("identifier", "a0012"), token("gender", "c0")},
					func(r rec) bool { return r.a == 12 && r.c == 0 }},
				{"two mid clauses (complete in the second round)", []store.Clause{family("B3"), token("gender", "c1")},
					func(r rec) bool { return r.bb == 3 && r.c == 1 }},
				{"a clause of two values over two ranges", []store.Clause{family("B2", "B5"), token("gender", "c0", "c1")},
					func(r rec) bool { return (r.bb == 2 || r.bb == 5) }},
				{"three clauses", []store.Clause{family("B1", "B6"), token("gender", "c1"), token("identifier", "a0001", "a0006", "a0013", "a0020")},
					func(r rec) bool {
						return (r.bb == 1 || r.bb == 6) && r.c == 1 && slices.Contains([]int{1, 6, 13, 20}, r.a)
					}},
				{"every clause broad", []store.Clause{token("gender", "c0"), family("B0", "B1", "B2", "B3", "B4", "B5")},
					func(r rec) bool { return r.c == 0 && r.bb != 6 }},
			} {
				t.Run(tc.name, func(t *testing.T) {
					var want []string
					for i, r := range recs {
						if tc.match(r) {
							want = append(want, fmt.Sprintf("p%05d", i))
						}
					}
					var got []string
					q := store.Query{Type: "Patient", Count: 1000, Clauses: tc.clauses}
					for {
						page, err := s.Search(ctx, &q)
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, page.IDs...)
						if page.Next == nil {
							break
						}
						q.Cursor = page.Next
					}
					slices.Sort(got)
					if !slices.Equal(got, want) {
						t.Fatalf("%d ids, want %d", len(got), len(want))
					}
				})
			}
		})
	}
}
