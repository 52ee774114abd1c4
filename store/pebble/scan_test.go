package pebble

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// countingEngine counts the keys a search reads.
type countingEngine struct {
	store.Engine
	keys int
}

func (c *countingEngine) Get(ctx context.Context, k []byte) ([]byte, error) {
	c.keys++
	return c.Engine.Get(ctx, k)
}

func (c *countingEngine) Scan(ctx context.Context, r store.Range, fn func(k, v []byte) bool) error {
	return c.Engine.Scan(ctx, r, func(k, v []byte) bool {
		c.keys++
		return fn(k, v)
	})
}

// TestSearchesAreIndexScans: date-range (one- and two-sided), string-prefix, token and
// reference searches read keys in proportion to their matches, not to the
// number of resources: 20,000 resources or 2,000 make no difference.
func TestSearchesAreIndexScans(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 22,000 resources")
	}
	ctx := context.Background()
	touched := func(n int) map[string]int {
		db, err := New(ctx, Config{Dir: t.TempDir(), CacheBytes: 32 << 20})
		if err != nil {
			t.Fatal(err)
		}
		ce := &countingEngine{Engine: db}
		s := store.New(ce, store.Options{})
		defer s.Close()
		day := int64(24 * 3600 * 1_000_000)
		base := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
		var ws []store.Write
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("p%06d", i)
			// Names and dates spread evenly; the searched-for ones are a
			// fixed handful at any n.
			family := fmt.Sprintf("fam%06d", i)
			if i%(n/10) == 0 {
				family = "Zebra" + family
			}
			lo := base + int64(i%3650)*day
			if i < 5 {
				lo = time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
			}
			ws = append(ws, store.Write{
				New: store.Version{Type: "Patient", ID: id, VID: 1, LastUpdated: time.UnixMicro(base), Method: store.MethodCreate, Body: []byte(`{}`)},
				Index: []store.IndexValue{
					{Param: "family", Kind: store.IndexString, Text: family},
					{Param: "birthdate", Kind: store.IndexDate, Lo: lo, Hi: lo + day - 1},
					{Param: "identifier", Kind: store.IndexToken, System: "urn:mrn", Code: id},
					{Param: "general-practitioner", Kind: store.IndexReference, Ref: fmt.Sprintf("Practitioner/d%d", i%(n/10))},
				},
			})
			if len(ws) == 500 {
				if err := s.Commit(ctx, ws); err != nil {
					t.Fatal(err)
				}
				ws = ws[:0]
			}
		}
		if len(ws) > 0 {
			if err := s.Commit(ctx, ws); err != nil {
				t.Fatal(err)
			}
		}
		june := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
		mid := base + 1000*day
		queries := map[string]store.Query{
			"date range": {Type: "Patient", Clauses: []store.Clause{{Preds: []store.Pred{{Op: store.OpDate, Param: "birthdate", Cmp: store.Ge, Lo: june, Hi: june + day - 1}}}}},
			// Both bounds broad alone (every birthdate after, every one
			// before), one day together: answered from the window.
			"two-sided date range": {Type: "Patient", Clauses: []store.Clause{
				{Preds: []store.Pred{{Op: store.OpDate, Param: "birthdate", Cmp: store.Ge, Lo: mid, Hi: mid + day - 1}}},
				{Preds: []store.Pred{{Op: store.OpDate, Param: "birthdate", Cmp: store.Lt, Lo: mid + day, Hi: mid + 2*day - 1}}}}},
			"string prefix": {Type: "Patient", Clauses: []store.Clause{{Preds: []store.Pred{{Op: store.OpStringStarts, Param: "family", Text: "zebra"}}}}},
			"token":         {Type: "Patient", Clauses: []store.Clause{{Preds: []store.Pred{{Op: store.OpTokenSystemCode, Param: "identifier", System: "urn:mrn", Code: "p000042"}}}}},
			"reference":     {Type: "Patient", Clauses: []store.Clause{{Preds: []store.Pred{{Op: store.OpRef, Param: "general-practitioner", Ref: "Practitioner/d3"}}}}},
		}
		out := map[string]int{}
		for name, q := range queries {
			q.Count = 100
			ce.keys = 0
			page, err := s.Search(ctx, &q)
			if err != nil {
				t.Fatal(err)
			}
			out[name] = ce.keys
			out[name+" matches"] = len(page.IDs)
		}
		return out
	}
	small, large := touched(2000), touched(20000)
	for _, name := range []string{"date range", "two-sided date range", "string prefix", "token", "reference"} {
		t.Logf("%s: %d keys for %d matches at 2,000 resources; %d keys for %d matches at 20,000",
			name, small[name], small[name+" matches"], large[name], large[name+" matches"])
		if small[name+" matches"] == 0 || large[name+" matches"] == 0 {
			t.Fatalf("%s matches nothing", name)
		}
		// Keys read per match stay within a small constant; a full scan
		// would read at least one key per resource.
		if large[name] > 10*large[name+" matches"]+10 {
			t.Errorf("%s read %d keys for %d matches among 20,000 resources: not an index scan", name, large[name], large[name+" matches"])
		}
	}
}
