package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// authoredRecord is an entry of the second journal: its label is its
// author.
type authoredRecord struct{ testRecord }

func (r authoredRecord) Author() string { return "client/" + string(r.testRecord) }

var testJournalB = JournalConfig{
	Name: "test-journal-b", Type: "AuditEvent", Author: "test", IDPrefix: "ar-", OwnDates: true,
	Decode:       func(rec []byte) (JournalRecord, error) { return authoredRecord{testRecord(rec)}, nil },
	Compartments: func(string, []IndexValue) []string { return nil },
	Families:     map[string]byte{"entity": 'x'},
}

// JournalUnionTest: two journals (the gateway's trail and recorded
// events, in keyspaces of their own) appended to in turns, at times that
// interleave and tie, are served by Journals as one type: every page of a
// search either way, by the segments, by an index family and by _id, in
// one merged order with next and previous cursors; the history newest
// first; reads, leaves and authors from the journal an id names; date
// clauses narrow only the journal whose dates are its times. (Exported
// for the external test that runs it on real engines.)
func JournalUnionTest(t *testing.T, db Engine) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 11))
	a, err := OpenJournal(ctx, db, testJournal)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenJournal(ctx, db, testJournalB)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC).UnixMicro()
	a.Now = func() time.Time { return time.UnixMicro(clock) }
	b.Now = a.Now
	n := 0
	for range 40 {
		if rng.IntN(3) > 0 {
			clock += rng.Int64N(40)
		}
		es := make(testEntries, 1+rng.IntN(9))
		for i := range es {
			n++
			es[i] = fmt.Sprint("e", n)
		}
		j := a
		if rng.IntN(2) == 0 {
			j = b
		}
		if err := j.Append(ctx, es); err != nil {
			t.Fatal(err)
		}
	}
	js := Journals{a, b}
	// The merged order, from each journal's own scan.
	var all []jfound
	for _, j := range js {
		if err := j.scan(ctx, everything, false, nil, func(f *jfound) (bool, error) {
			all = append(all, *f)
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(all, func(x, y jfound) int { return x.p.cmp(y.p) })
	if len(all) != n {
		t.Fatalf("%d entries, wrote %d", len(all), n)
	}
	ids := make([]string, n)
	ties, fromB := 0, 0
	for i, f := range all {
		ids[i] = f.j.id(f.p)
		if i > 0 && all[i-1].p.t == f.p.t && all[i-1].j != f.j {
			ties++
		}
		if f.j == b {
			fromB++
		}
	}
	if ties == 0 || fromB == 0 || fromB == n {
		t.Fatalf("the journals do not interleave: %d ties across them, %d of %d from the second", ties, fromB, n)
	}
	m := &Matcher{typ: "AuditEvent"}
	// pages runs q page by page to the end, checking each page's previous
	// cursor against the page before it.
	pages := func(q Query) []string {
		t.Helper()
		var got []string
		var pageStarts [][]byte // the cursor each page was asked with
		for {
			page, err := js.Search(ctx, &q, m)
			if err != nil {
				t.Fatal(err)
			}
			if k := len(pageStarts); k > 0 {
				var want []byte
				if k > 1 {
					want = pageStarts[k-2]
				}
				if !page.HasPrev || string(page.Prev) != string(want) {
					t.Fatalf("page %d: previous cursor %x (has %v), want %x", k, page.Prev, page.HasPrev, want)
				}
			}
			got = append(got, page.IDs...)
			if page.Next == nil {
				return got
			}
			pageStarts = append(pageStarts, page.Next)
			q.Cursor = page.Next
		}
	}
	asc, desc := slices.Clone(ids), slices.Clone(ids)
	slices.Reverse(desc)
	for _, count := range []int{1, 7, 1000} {
		for _, tc := range []struct {
			name string
			q    Query
			want []string
		}{
			{"segments", Query{Count: count}, asc},
			{"segments, -_id", Query{Count: count, Sort: []Sort{{Param: "_id", Desc: true}}}, desc},
			{"family", Query{Count: count, Clauses: []Clause{{Preds: []Pred{{Op: OpRefIn, Param: "entity", Refs: []string{"all"}}}}}}, asc},
			{"_id", Query{Count: count, IDs: []string{ids[3], ids[n-1], ids[n/2], "ar-zz"}}, []string{ids[3], ids[n/2], ids[n-1]}},
		} {
			got := pages(tc.q)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("%s, %d a page: %d ids, want %d\n%v\n%v", tc.name, count, len(got), len(tc.want), got, tc.want)
			}
		}
	}
	// Totals count both journals.
	if page, err := js.Search(ctx, &Query{Count: 3, Total: true}, m); err != nil || page.Total != n {
		t.Fatalf("total %d (%v), want %d", page.Total, err, n)
	}
	// The history, newest first, paged.
	var hist []string
	hq := HistoryQuery{Count: 5}
	for {
		hp, err := js.History(ctx, hq)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range hp.Versions {
			hist = append(hist, v.ID)
		}
		if hp.Next == nil {
			break
		}
		hq.Cursor = hp.Next
	}
	if !slices.Equal(hist, desc) {
		t.Fatalf("history: %d versions, want %d", len(hist), n)
	}
	if hp, err := js.History(ctx, HistoryQuery{Count: 5, ID: ids[n/2]}); err != nil || len(hp.Versions) != 1 || hp.Versions[0].ID != ids[n/2] {
		t.Fatalf("history of %s: %v %v", ids[n/2], hp.Versions, err)
	}
	// Reads, leaves and authors come from the journal the id names.
	seen := map[uint64]bool{}
	for i, f := range all {
		v, err := js.Read(ctx, ids[i])
		if err != nil || v.ID != ids[i] {
			t.Fatalf("read %s: %v %v", ids[i], v.ID, err)
		}
		wantAuthor := "test"
		if f.j == b {
			wantAuthor = "client/" + string(f.rec.(authoredRecord).testRecord)
		}
		if v.Author != wantAuthor || v.Creator != wantAuthor {
			t.Fatalf("%s: author %q creator %q, want %q", ids[i], v.Author, v.Creator, wantAuthor)
		}
		leaf, err := js.LeafIndex(ctx, ids[i], 1)
		if err != nil || seen[leaf] {
			t.Fatalf("leaf of %s: %d %v", ids[i], leaf, err)
		}
		seen[leaf] = true
	}
	if _, err := js.Read(ctx, "zz-0000000000000001"); err != ErrNotFound {
		t.Fatalf("read of an id of no journal: %v", err)
	}
	// A date clause narrows the trail's span, not the recorded events'.
	day := Query{Clauses: []Clause{{Preds: []Pred{{Op: OpDate, Param: "date", Cmp: Eq, Lo: clock, Hi: clock + 10}}}}}
	ps := js.plans(&day)
	if ps[0].sp == everything || ps[1].sp != everything {
		t.Fatalf("date plans: trail %v, recorded %v", ps[0].sp, ps[1].sp)
	}
	upd := Query{Clauses: []Clause{{Preds: []Pred{{Op: OpDate, Param: "_lastUpdated", Cmp: Ge, Lo: clock, Hi: clock}}}}}
	if ps := js.plans(&upd); ps[0].sp == everything || ps[1].sp == everything {
		t.Fatalf("_lastUpdated plans: %v, %v", ps[0].sp, ps[1].sp)
	}
}
