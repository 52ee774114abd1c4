package storetest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// runDateWindows checks searches bounded on both sides of a date
// (date=ge..&date=lt..), which the store answers from a window of the
// date index, against the clauses' plain meaning (store.Matcher) on every
// resource: instants, days, months, years, long and open periods, and
// resources with several values, where one bound may hold through one
// value and the other through another. There are more resources than a
// clause may yield before it counts as broad, so the window drives.
func runDateWindows(t *testing.T, newEngine NewEngine) {
	ctx := context.Background()
	_, s := open(t, newEngine)
	rng := rand.New(rand.NewPCG(11, 12))
	const (
		hour = int64(3600 * 1_000_000)
		dayµ = 24 * hour
	)
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	span := 10 * 365 * dayµ
	value := func() store.IndexValue {
		lo := start + rng.Int64N(span)
		var hi int64
		switch rng.IntN(10) {
		case 0, 1, 2: // instant
			hi = lo
		case 3, 4, 5: // a day
			lo -= (lo - start) % dayµ
			hi = lo + dayµ - 1
		case 6: // a month, roughly
			hi = lo + 30*dayµ - 1
		case 7: // a year
			hi = lo + 365*dayµ - 1
		case 8: // a period of hours
			hi = lo + rng.Int64N(48*hour)
		default: // long or open periods
			if rng.IntN(3) == 0 {
				hi = math.MaxInt64
			} else {
				hi = lo + rng.Int64N(3*365*dayµ)
			}
		}
		return store.IndexValue{Param: "date", Kind: store.IndexDate, Lo: lo, Hi: hi}
	}
	const n = 6000
	index := map[string][]store.IndexValue{}
	var ids []string
	var ws []store.Write
	for i := range n {
		id := fmt.Sprintf("a%05d", i)
		idx := []store.IndexValue{value()}
		if rng.IntN(20) == 0 {
			for range 1 + rng.IntN(2) {
				idx = append(idx, value())
			}
		}
		index[id] = idx
		ids = append(ids, id)
		ws = append(ws, store.Write{New: store.Version{Type: "Encounter", ID: id, VID: 1, LastUpdated: time.UnixMicro(start),
			Method: store.MethodCreate, Body: []byte(`{}`)}, Index: idx})
		if len(ws) == 500 {
			if err := s.Commit(ctx, ws); err != nil {
				t.Fatal(err)
			}
			ws = ws[:0]
		}
	}

	units := []int64{1, 1_000_000, hour, dayµ, 30 * dayµ, 365 * dayµ}
	bound := func(cmps []store.Cmp) store.Pred {
		u := units[rng.IntN(len(units))]
		lo := start - 365*dayµ + rng.Int64N(span+2*365*dayµ)
		lo -= (lo - start) % u
		if rng.IntN(2) == 0 { // on or next to a value's edge, where > and >= differ
			v := index[ids[rng.IntN(len(ids))]][0]
			if e := []int64{v.Lo, v.Hi, v.Lo + 1, v.Hi + 1, v.Lo - 1, v.Hi - u + 1}[rng.IntN(6)]; v.Hi < start+2*span {
				lo = e
			}
		}
		return store.Pred{Op: store.OpDate, Param: "date", Cmp: cmps[rng.IntN(len(cmps))], Lo: lo, Hi: lo + u - 1}
	}
	lowers := []store.Cmp{store.Ge, store.Gt, store.Sa, store.Eq, store.Ap}
	uppers := []store.Cmp{store.Le, store.Lt, store.Eb, store.Eq, store.Ap}
	for i := range 400 {
		q := store.Query{Type: "Encounter", Count: n, Total: true}
		preds := []store.Pred{bound(lowers), bound(uppers)}
		if i%2 == 0 { // mostly narrow windows: the upper bound near the lower
			preds[1].Lo = preds[0].Lo + rng.Int64N(30*dayµ)
			preds[1].Hi = preds[1].Lo + units[rng.IntN(4)] - 1
		}
		if i%10 == 0 {
			preds = append(preds, bound(lowers)) // a third bound
		}
		for _, p := range preds {
			q.Clauses = append(q.Clauses, store.Clause{Preds: []store.Pred{p}})
		}
		if i >= 80 { // one bound alone, any comparator
			all := []store.Cmp{store.Eq, store.Ne, store.Gt, store.Lt, store.Ge, store.Le, store.Sa, store.Eb, store.Ap}
			p := bound(all)
			q.Clauses = []store.Clause{{Preds: []store.Pred{p}}}
			preds = []store.Pred{p}
		}
		m, err := s.NewMatcher(ctx, &q)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, id := range ids {
			if m.Match(id, index[id]) {
				want = append(want, id)
			}
		}
		// The matcher runs the same plans as the search: check both
		// against the comparators as search.html defines them too.
		var model []string
		for _, id := range ids {
			if allHold(preds, index[id]) {
				model = append(model, id)
			}
		}
		if !slices.Equal(want, model) {
			t.Fatalf("query %d %+v: the matcher finds %d, the definition %d\n got %v\nwant %v", i, preds, len(want), len(model), want, model)
		}
		page, err := s.Search(ctx, &q)
		if err != nil {
			t.Fatalf("query %d %+v: %v", i, preds, err)
		}
		got := slices.Sorted(slices.Values(page.IDs))
		if !slices.Equal(got, want) || page.Total != len(want) {
			t.Fatalf("query %d %+v: %d matches (total %d), want %d\n got %v\nwant %v", i, preds, len(got), page.Total, len(want), got, want)
		}
	}
}

// allHold says whether values satisfy every date predicate, each by some
// value: the prefixes of search.html#prefix, a value [lo, hi] against the
// query range [Lo, Hi] (ap as the store takes it: already widened, any
// overlap).
func allHold(preds []store.Pred, values []store.IndexValue) bool {
	for _, p := range preds {
		held := false
		for _, v := range values {
			lo, hi := v.Lo, v.Hi
			switch p.Cmp {
			case store.Eq:
				held = lo >= p.Lo && hi <= p.Hi
			case store.Ne:
				held = !(lo >= p.Lo && hi <= p.Hi)
			case store.Gt:
				held = hi > p.Hi
			case store.Lt:
				held = lo < p.Lo
			case store.Ge:
				held = hi >= p.Lo
			case store.Le:
				held = lo <= p.Hi
			case store.Sa:
				held = lo > p.Hi
			case store.Eb:
				held = hi < p.Lo
			case store.Ap:
				held = lo <= p.Hi && hi >= p.Lo
			}
			if held {
				break
			}
		}
		if !held {
			return false
		}
	}
	return true
}
