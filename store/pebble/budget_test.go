package pebble

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// cancellingEngine cancels a context once a search has read after keys.
type cancellingEngine struct {
	store.Engine
	keys, after int
	cancel      context.CancelFunc
}

func (c *cancellingEngine) read() {
	if c.keys++; c.keys == c.after {
		c.cancel()
	}
}

func (c *cancellingEngine) Get(ctx context.Context, k []byte) ([]byte, error) {
	c.read()
	return c.Engine.Get(ctx, k)
}

func (c *cancellingEngine) Scan(ctx context.Context, r store.Range, fn func(k, v []byte) bool) error {
	return c.Engine.Scan(ctx, r, func(k, v []byte) bool {
		c.read()
		return fn(k, v)
	})
}

// TestSearchStopsAtItsDeadline: every way a search goes through its
// candidates (index scans, per-candidate checks, sorting, the type's full
// list, history) looks at its context, so a search whose deadline passes
// stops within a few hundred keys of it instead of running to the end
// (finding 8: searches of 22 to 68 s; the REST layer's time budget is a
// context deadline).
func TestSearchStopsAtItsDeadline(t *testing.T) {
	ctx := context.Background()
	db, err := New(ctx, Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ce := &cancellingEngine{Engine: db}
	s := store.New(ce, store.Options{})
	defer s.Close()
	const n = 6000
	var ws []store.Write
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("p%05d", i)
		ws = append(ws, store.Write{
			New: store.Version{Type: "Patient", ID: id, VID: 1, LastUpdated: time.UnixMicro(int64(i)), Method: store.MethodCreate, Body: []byte(`{}`)},
			Index: []store.IndexValue{
				{Param: "name", Kind: store.IndexString, Text: fmt.Sprintf("name %d", i)},
				{Param: "gender", Kind: store.IndexToken, Code: []string{"male", "female"}[i%2]},
			},
		})
		if len(ws) == 1000 {
			if err := s.Commit(ctx, ws); err != nil {
				t.Fatal(err)
			}
			ws = ws[:0]
		}
	}
	contains := store.Clause{Preds: []store.Pred{{Op: store.OpStringContains, Param: "name", Text: "a"}}}
	notMale := store.Clause{Not: true, Preds: []store.Pred{{Op: store.OpTokenCode, Param: "gender", Code: "male"}}}
	tests := []struct {
		name string
		q    store.Query
		hist *store.HistoryQuery
	}{
		{"contains scan", store.Query{Type: "Patient", Clauses: []store.Clause{contains}, Count: 10}, nil},
		{"repeated broad clauses", store.Query{Type: "Patient", Clauses: []store.Clause{contains, contains, contains, contains}, Count: 10}, nil},
		{"sorted", store.Query{Type: "Patient", Clauses: []store.Clause{contains}, Sort: []store.Sort{{Param: "name", Kind: store.IndexString}}, Count: 10}, nil},
		{"every resource, negated", store.Query{Type: "Patient", Clauses: []store.Clause{notMale}, Count: n}, nil},
		{"every resource, total", store.Query{Type: "Patient", Count: 10, Total: true}, nil},
		{"filtered", store.Query{Type: "Patient", Clauses: []store.Clause{contains}, Count: 10, Filter: func(*store.Version) bool { return false }}, nil},
		{"history", store.Query{}, &store.HistoryQuery{Type: "Patient", Count: 10, Filter: func(*store.Version) bool { return false }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// How many keys the whole search reads, then the same search
			// cancelled after a tenth of them.
			run := func(ctx context.Context) error {
				if tt.hist != nil {
					_, err := s.History(ctx, *tt.hist)
					return err
				}
				q := tt.q
				_, err := s.Search(ctx, &q)
				return err
			}
			ce.keys, ce.after, ce.cancel = 0, -1, func() {}
			if err := run(ctx); err != nil {
				t.Fatal(err)
			}
			full := ce.keys
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			ce.keys, ce.after, ce.cancel = 0, full/10, cancel
			err := run(cctx)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v after %d of %d keys, want context.Canceled", err, ce.keys, full)
			}
			if ce.keys > full/10+600 {
				t.Errorf("went on for %d keys after its deadline (%d in all)", ce.keys-full/10, full)
			}
		})
	}
}
