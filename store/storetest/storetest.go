// Package storetest is the behaviour every store engine must show. A
// backend's tests call Run with a constructor for a fresh, empty engine.
package storetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// NewEngine returns a fresh, empty engine; Run closes it.
type NewEngine func(t *testing.T) store.Engine

// Run runs the whole suite.
func Run(t *testing.T, newEngine NewEngine) {
	t.Run("Engine", func(t *testing.T) { runEngine(t, newEngine) })
	t.Run("Versions", func(t *testing.T) { runVersions(t, newEngine) })
	t.Run("History", func(t *testing.T) { runHistory(t, newEngine) })
	t.Run("Concurrency", func(t *testing.T) { runConcurrency(t, newEngine) })
	t.Run("ReadsSeeCommits", func(t *testing.T) { runReadsSeeCommits(t, newEngine) })
	t.Run("Search", func(t *testing.T) { runSearch(t, newEngine) })
	t.Run("DateWindows", func(t *testing.T) { runDateWindows(t, newEngine) })
	t.Run("Claims", func(t *testing.T) { runClaims(t, newEngine) })
	t.Run("Unique", func(t *testing.T) { runUnique(t, newEngine) })
	t.Run("Reindex", func(t *testing.T) { runReindex(t, newEngine) })
	t.Run("Leaves", func(t *testing.T) { runLeaves(t, newEngine) })
	t.Run("GetMany", func(t *testing.T) { runGetMany(t, newEngine) })
	t.Run("Checks", func(t *testing.T) { runChecks(t, newEngine) })
}

func open(t *testing.T, newEngine NewEngine) (store.Engine, *store.Store) {
	t.Helper()
	e := newEngine(t)
	t.Cleanup(func() { e.Close() })
	return e, store.New(e, store.Options{Shared: sharedParams})
}

// sharedParams: Observation.patient is subject.where(resolve() is Patient)
// in R4, so the suite runs with its local Patient references kept as
// subject's keys only (store.SharedFunc), as the gateway does.
func sharedParams(typ, param string) (string, string, bool) {
	if typ == "Observation" && param == "patient" {
		return "subject", "Patient", true
	}
	return "", "", false
}

func runEngine(t *testing.T, newEngine NewEngine) {
	ctx := context.Background()
	e, _ := open(t, newEngine)
	var b store.Batch
	for _, k := range []string{"k/a", "k/b", "k/c", "k/d", "l/a"} {
		b.Set([]byte(k), []byte("v"+k))
	}
	if err := e.Apply(ctx, &b); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	scan := func(r store.Range) string {
		var out []string
		if err := e.Scan(ctx, r, func(k, v []byte) bool {
			if string(v) != "v"+string(k) {
				t.Errorf("value of %s = %q", k, v)
			}
			out = append(out, string(k))
			return true
		}); err != nil {
			t.Fatalf("Scan: %v", err)
		}
		return fmt.Sprint(out)
	}
	for _, tc := range []struct {
		name string
		r    store.Range
		want string
	}{
		{"prefix", store.PrefixRange([]byte("k/")), "[k/a k/b k/c k/d]"},
		{"reverse", store.Range{Start: []byte("k/"), End: []byte("k/d"), Reverse: true}, "[k/c k/b k/a]"},
		{"limit", store.Range{Start: []byte("k/b"), End: nil, Limit: 2}, "[k/b k/c]"},
		{"reverse limit", store.Range{Start: []byte("k/"), End: []byte("l"), Reverse: true, Limit: 2}, "[k/d k/c]"},
		{"empty", store.PrefixRange([]byte("z")), "[]"},
	} {
		if got := scan(tc.r); got != tc.want {
			t.Errorf("%s: scan = %s, want %s", tc.name, got, tc.want)
		}
	}

	if _, err := e.Get(ctx, []byte("k/zz")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get missing = %v, want ErrNotFound", err)
	}

	// A failing condition writes nothing, not even the ops before it.
	var bad store.Batch
	bad.Set([]byte("k/new"), []byte("vk/new"))
	bad.Delete([]byte("k/a"))
	bad.Require([]byte("k/b"), []byte("vk/b"))
	bad.Require([]byte("k/c"), []byte("wrong"))
	bad.Appends = []store.Append{{Data: []byte("leaf")}}
	if err := e.Apply(ctx, &bad); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Apply with failing condition = %v, want ErrConflict", err)
	}
	if got := scan(store.PrefixRange([]byte("k/"))); got != "[k/a k/b k/c k/d]" {
		t.Errorf("after failed Apply: %s", got)
	}
	if n := logSize(t, e); n != 0 {
		t.Errorf("failed Apply appended to the log: size %d", n)
	}
	var absent store.Batch
	absent.Require([]byte("k/a"), nil)
	absent.Set([]byte("k/x"), []byte("vk/x"))
	if err := e.Apply(ctx, &absent); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Absent condition on existing key = %v, want ErrConflict", err)
	}
	var ok store.Batch
	ok.Require([]byte("k/x"), nil)
	ok.Require([]byte("k/a"), []byte("vk/a"))
	ok.Set([]byte("k/x"), []byte("vk/x"))
	ok.Delete([]byte("k/a"))
	if err := e.Apply(ctx, &ok); err != nil {
		t.Fatalf("Apply with holding conditions: %v", err)
	}
	if got := scan(store.PrefixRange([]byte("k/"))); got != "[k/b k/c k/d k/x]" {
		t.Errorf("after conditional Apply: %s", got)
	}

	// Log appends from many goroutines get contiguous indexes, each
	// recorded under its IndexKey.
	const writers, each = 16, 25
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				var b store.Batch
				name := fmt.Sprintf("leaf-%d-%d", w, i)
				b.Require([]byte("idx/"+name), nil)
				b.Appends = []store.Append{{Data: []byte(name), IndexKey: []byte("idx/" + name)}}
				if err := e.Apply(ctx, &b); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if n := logSize(t, e); n != writers*each {
		t.Fatalf("log size %d, want %d", n, writers*each)
	}
	seen := map[string]bool{}
	for i := uint64(0); i < writers*each; i++ {
		data, err := e.Get(ctx, store.LogKey(i))
		if err != nil {
			t.Fatalf("log entry %d: %v", i, err)
		}
		if seen[string(data)] {
			t.Fatalf("log entry %q twice", data)
		}
		seen[string(data)] = true
		idx, err := e.Get(ctx, []byte("idx/"+string(data)))
		if err != nil || binary.BigEndian.Uint64(idx) != i {
			t.Fatalf("index key of %q = %x, %v; want %d", data, idx, err, i)
		}
	}
}

func logSize(t *testing.T, e store.Engine) uint64 {
	t.Helper()
	v, err := e.Get(context.Background(), store.LogSizeKey)
	if errors.Is(err, store.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("log size: %v", err)
	}
	return binary.BigEndian.Uint64(v)
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func version(typ, id string, vid uint64, at time.Time, body string) store.Version {
	v := store.Version{Type: typ, ID: id, VID: vid, LastUpdated: at, Method: store.MethodUpdate, Author: "client/test"}
	if body == "" {
		v.Deleted, v.Method = true, store.MethodDelete
	} else {
		v.Body = []byte(body)
	}
	return v
}

func runVersions(t *testing.T, newEngine NewEngine) {
	ctx := context.Background()
	_, s := open(t, newEngine)
	if _, err := s.Read(ctx, "Patient", "p1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Read of nothing = %v", err)
	}
	v1 := version("Patient", "p1", 1, t0, `{"v":1}`)
	if err := s.Commit(ctx, []store.Write{{New: v1}}); err != nil {
		t.Fatalf("create: %v", err)
	}
	// Creating again must conflict.
	if err := s.Commit(ctx, []store.Write{{New: v1}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create = %v, want ErrConflict", err)
	}
	cur, err := s.Current(ctx, "Patient", "p1")
	if err != nil || cur.VID != 1 || cur.Deleted || !cur.LastUpdated.Equal(t0) {
		t.Fatalf("Current = %+v, %v", cur, err)
	}
	v2 := version("Patient", "p1", 2, t0.Add(time.Second), `{"v":2}`)
	if err := s.Commit(ctx, []store.Write{{Prev: &cur, New: v2}}); err != nil {
		t.Fatalf("update: %v", err)
	}
	// A writer that read version 1 loses.
	stale := version("Patient", "p1", 2, t0.Add(2*time.Second), `{"v":"stale"}`)
	if err := s.Commit(ctx, []store.Write{{Prev: &cur, New: stale}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update = %v, want ErrConflict", err)
	}
	got, err := s.Read(ctx, "Patient", "p1")
	if err != nil || string(got.Body) != `{"v":2}` || got.VID != 2 || got.Author != "client/test" || got.Method != store.MethodUpdate {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	old, err := s.Version(ctx, "Patient", "p1", 1)
	if err != nil || string(old.Body) != `{"v":1}` {
		t.Fatalf("Version 1 = %+v, %v", old, err)
	}
	if _, err := s.Version(ctx, "Patient", "p1", 3); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Version 3 = %v", err)
	}
	cur2, _ := s.Current(ctx, "Patient", "p1")
	del := version("Patient", "p1", 3, t0.Add(3*time.Second), "")
	if err := s.Commit(ctx, []store.Write{{Prev: &cur2, New: del}}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	got, err = s.Read(ctx, "Patient", "p1")
	if err != nil || !got.Deleted || got.Body != nil || got.VID != 3 {
		t.Fatalf("Read deleted = %+v, %v", got, err)
	}
	// The creator is carried from the first version; compartments are kept
	// per version and in the current record.
	c1 := version("Observation", "c", 1, t0, `{"v":1}`)
	c1.Author, c1.Compartments = "client/a", []string{"Patient/x", "Practitioner/y"}
	if err := s.Commit(ctx, []store.Write{{New: c1}}); err != nil {
		t.Fatal(err)
	}
	cc, _ := s.Current(ctx, "Observation", "c")
	c2 := version("Observation", "c", 2, t0.Add(time.Second), `{"v":2}`)
	c2.Author, c2.Compartments = "client/b", []string{"Patient/z"}
	if err := s.Commit(ctx, []store.Write{{Prev: &cc, New: c2}}); err != nil {
		t.Fatal(err)
	}
	for _, get := range []func() (store.Version, error){
		func() (store.Version, error) { return s.Current(ctx, "Observation", "c") },
		func() (store.Version, error) { return s.Read(ctx, "Observation", "c") },
	} {
		got, err := get()
		if err != nil || got.Creator != "client/a" || fmt.Sprint(got.Compartments) != "[Patient/z]" {
			t.Fatalf("creator %q compartments %v (%v)", got.Creator, got.Compartments, err)
		}
	}
	if old, _ := s.Version(ctx, "Observation", "c", 1); fmt.Sprint(old.Compartments) != "[Patient/x Practitioner/y]" || old.Author != "client/a" {
		t.Fatalf("version 1: %+v", old)
	}

	// Bad writes are refused before touching the engine.
	skip := version("Patient", "p1", 9, t0, `{}`)
	if err := s.Commit(ctx, []store.Write{{Prev: &got, New: skip}}); err == nil {
		t.Fatal("a version that skips numbers was accepted")
	}

	// A multi-resource commit is all or nothing.
	a := version("Patient", "a", 1, t0, `{"a":1}`)
	staleB := version("Patient", "p1", 3, t0.Add(4*time.Second), `{"stale":1}`)
	b := version("Patient", "p1", 4, t0.Add(4*time.Second), `{"resurrected":1}`)
	if err := s.Commit(ctx, []store.Write{{New: a}, {Prev: &cur2, New: staleB}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("commit with one stale write = %v, want ErrConflict", err)
	}
	if _, err := s.Read(ctx, "Patient", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("half of a failed commit is visible: %v", err)
	}
	if err := s.Commit(ctx, []store.Write{{New: a}, {Prev: &got, New: b}}); err != nil {
		t.Fatalf("commit of two: %v", err)
	}
	if got, _ := s.Read(ctx, "Patient", "p1"); string(got.Body) != `{"resurrected":1}` || got.VID != 4 {
		t.Fatalf("after resurrect: %+v", got)
	}
}

func runHistory(t *testing.T, newEngine NewEngine) {
	ctx := context.Background()
	_, s := open(t, newEngine)
	// Three resources of two types, interleaved in time.
	type step struct {
		typ, id string
		body    string
	}
	steps := []step{
		{"Patient", "a", "a1"}, {"Observation", "o", "o1"}, {"Patient", "b", "b1"},
		{"Patient", "a", "a2"}, {"Patient", "a", ""}, {"Observation", "o", "o2"}, {"Patient", "b", "b2"},
	}
	cur := map[string]*store.Version{}
	for i, st := range steps {
		k := st.typ + "/" + st.id
		var vid uint64 = 1
		if p := cur[k]; p != nil {
			vid = p.VID + 1
		}
		body := ""
		if st.body != "" {
			body = `"` + st.body + `"`
		}
		v := version(st.typ, st.id, vid, t0.Add(time.Duration(i)*time.Second), body)
		if err := s.Commit(ctx, []store.Write{{Prev: cur[k], New: v}}); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		c, _ := s.Current(ctx, st.typ, st.id)
		cur[k] = &c
	}
	names := func(vs []store.Version) string {
		var out []string
		for _, v := range vs {
			b := string(v.Body)
			if v.Deleted {
				b = "DEL"
			}
			out = append(out, fmt.Sprintf("%s/%s/%d:%s", v.Type, v.ID, v.VID, b))
		}
		return fmt.Sprint(out)
	}
	all := func(q store.HistoryQuery) string {
		var vs []store.Version
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatal("paging does not end")
			}
			p, err := s.History(ctx, q)
			if err != nil {
				t.Fatalf("History(%+v): %v", q, err)
			}
			vs = append(vs, p.Versions...)
			if p.Next == nil {
				return names(vs)
			}
			q.Cursor = p.Next
		}
	}
	for _, tc := range []struct {
		name string
		q    store.HistoryQuery
		want string
	}{
		{"instance", store.HistoryQuery{Type: "Patient", ID: "a", Count: 10},
			`[Patient/a/3:DEL Patient/a/2:"a2" Patient/a/1:"a1"]`},
		{"instance paged", store.HistoryQuery{Type: "Patient", ID: "a", Count: 1},
			`[Patient/a/3:DEL Patient/a/2:"a2" Patient/a/1:"a1"]`},
		{"instance since", store.HistoryQuery{Type: "Patient", ID: "a", Count: 10, Since: t0.Add(3 * time.Second)},
			`[Patient/a/3:DEL Patient/a/2:"a2"]`},
		{"type", store.HistoryQuery{Type: "Patient", Count: 2},
			`[Patient/b/2:"b2" Patient/a/3:DEL Patient/a/2:"a2" Patient/b/1:"b1" Patient/a/1:"a1"]`},
		{"type since", store.HistoryQuery{Type: "Observation", Count: 5, Since: t0.Add(2 * time.Second)},
			`[Observation/o/2:"o2"]`},
		{"system", store.HistoryQuery{Count: 3},
			`[Patient/b/2:"b2" Observation/o/2:"o2" Patient/a/3:DEL Patient/a/2:"a2" Patient/b/1:"b1" Observation/o/1:"o1" Patient/a/1:"a1"]`},
		{"system since", store.HistoryQuery{Count: 3, Since: t0.Add(5 * time.Second)},
			`[Patient/b/2:"b2" Observation/o/2:"o2"]`},
	} {
		if got := all(tc.q); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	// A page cursor stays valid while new versions arrive: they are newer,
	// so they never shift later pages.
	p1, err := s.History(ctx, store.HistoryQuery{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	v := version("Patient", "c", 1, t0.Add(time.Hour), `"c1"`)
	if err := s.Commit(ctx, []store.Write{{New: v}}); err != nil {
		t.Fatal(err)
	}
	p2, err := s.History(ctx, store.HistoryQuery{Count: 2, Cursor: p1.Next})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(p2.Versions); got != `[Patient/a/3:DEL Patient/a/2:"a2"]` {
		t.Errorf("second page after a new write = %s", got)
	}
	if _, err := s.History(ctx, store.HistoryQuery{Type: "Patient", ID: "a", Count: 2, Cursor: p1.Next}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("cursor of another query = %v, want ErrBadCursor", err)
	}
}

// runConcurrency: concurrent updates of one resource with compare-and-set
// retries produce one linear history with no lost update.
func runConcurrency(t *testing.T, newEngine NewEngine) {
	ctx := context.Background()
	_, s := open(t, newEngine)
	if err := s.Commit(ctx, []store.Write{{New: version("Patient", "hot", 1, t0, `0`)}}); err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	wrote := map[string]uint64{}
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				body := fmt.Sprintf(`"w%d-%d"`, w, i)
				for {
					cur, err := s.Current(ctx, "Patient", "hot")
					if err != nil {
						t.Error(err)
						return
					}
					v := version("Patient", "hot", cur.VID+1, cur.LastUpdated.Add(time.Microsecond), body)
					err = s.Commit(ctx, []store.Write{{Prev: &cur, New: v}})
					if errors.Is(err, store.ErrConflict) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					wrote[body] = v.VID
					mu.Unlock()
					break
				}
			}
		}(w)
	}
	wg.Wait()
	cur, err := s.Current(ctx, "Patient", "hot")
	if err != nil || cur.VID != writers*each+1 {
		t.Fatalf("final version %d (%v), want %d", cur.VID, err, writers*each+1)
	}
	for body, vid := range wrote {
		v, err := s.Version(ctx, "Patient", "hot", vid)
		if err != nil || !bytes.Equal(v.Body, []byte(body)) {
			t.Fatalf("version %d = %q (%v), want the acknowledged %s", vid, v.Body, err, body)
		}
	}
	if len(wrote) != writers*each {
		t.Fatalf("%d acknowledged writes, want %d", len(wrote), writers*each)
	}
}

// runReadsSeeCommits: Read (answered from the store's cache when it can)
// never goes back in time and shows every acknowledged write to whoever
// reads after it, while writers that take their Prev from Read (as the
// REST layer does) race on a few resources and readers read them.
func runReadsSeeCommits(t *testing.T, newEngine NewEngine) {
	ctx := context.Background()
	_, s := open(t, newEngine)
	ids := []string{"a", "b", "c", "d"}
	for _, id := range ids {
		if err := s.Commit(ctx, []store.Write{{New: version("Patient", id, 1, t0, `"`+id+`-1"`)}}); err != nil {
			t.Fatal(err)
		}
	}
	var acked [4]atomic.Uint64 // the newest acknowledged version of each
	done := make(chan struct{})
	var readers, writers sync.WaitGroup
	for r := 0; r < 4; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var seen [4]uint64
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				i := n % len(ids)
				floor := acked[i].Load()
				v, err := s.Read(ctx, "Patient", ids[i])
				if err != nil {
					t.Error(err)
					return
				}
				if v.VID < seen[i] || v.VID < floor {
					t.Errorf("read %s version %d after seeing %d and the ack of %d", ids[i], v.VID, seen[i], floor)
					return
				}
				if want := fmt.Sprintf(`"%s-%d"`, ids[i], v.VID); string(v.Body) != want {
					t.Errorf("read %s version %d with body %s", ids[i], v.VID, v.Body)
					return
				}
				seen[i] = v.VID
			}
		}()
	}
	for w := 0; w < 8; w++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for n := 0; n < 40; n++ {
				i := (w + n) % len(ids)
				for try := 0; ; try++ {
					if try == 10_000 {
						t.Errorf("%s: 10,000 conflicts in a row: Read keeps answering an old version", ids[i])
						return
					}
					cur, err := s.Read(ctx, "Patient", ids[i])
					if err != nil {
						t.Error(err)
						return
					}
					prev := cur
					prev.Body = nil
					v := version("Patient", ids[i], cur.VID+1, cur.LastUpdated.Add(time.Microsecond), fmt.Sprintf(`"%s-%d"`, ids[i], cur.VID+1))
					err = s.Commit(ctx, []store.Write{{Prev: &prev, New: v}})
					if errors.Is(err, store.ErrConflict) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					for { // acked only ever rises
						old := acked[i].Load()
						if old >= v.VID || acked[i].CompareAndSwap(old, v.VID) {
							break
						}
					}
					if got, err := s.Read(ctx, "Patient", ids[i]); err != nil || got.VID < v.VID {
						t.Errorf("read after the ack of %s version %d: version %d (%v)", ids[i], v.VID, got.VID, err)
						return
					}
					break
				}
			}
		}()
	}
	writers.Wait()
	close(done)
	readers.Wait()
	total := uint64(0)
	for _, id := range ids {
		cur, err := s.Current(ctx, "Patient", id)
		got, err2 := s.Read(ctx, "Patient", id)
		if err != nil || err2 != nil || got.VID != cur.VID {
			t.Fatalf("%s: Read gives version %d, the engine %d (%v, %v)", id, got.VID, cur.VID, err, err2)
		}
		total += cur.VID - 1
	}
	if total != 8*40 {
		t.Fatalf("%d versions written, want %d", total, 8*40)
	}
}

// runClaims: a unique claim is taken by one resource at a time.
func runClaims(t *testing.T, newEngine NewEngine) {
	ctx := context.Background()
	_, s := open(t, newEngine)
	name := "identifier=urn:x|1"
	a := version("Patient", "a", 1, t0, `"a"`)
	if err := s.Commit(ctx, []store.Write{{New: a, Claim: &store.Claim{Name: name}}}); err != nil {
		t.Fatal(err)
	}
	b := version("Patient", "b", 1, t0, `"b"`)
	if err := s.Commit(ctx, []store.Write{{New: b, Claim: &store.Claim{Name: name}}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second claim of an owned name = %v, want ErrConflict", err)
	}
	if _, err := s.Read(ctx, "Patient", "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the losing write is visible: %v", err)
	}
	if err := s.Commit(ctx, []store.Write{{New: b, Claim: &store.Claim{Name: name, Owner: "zzz"}}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("transfer from the wrong owner = %v, want ErrConflict", err)
	}
	if err := s.Commit(ctx, []store.Write{{New: b, Claim: &store.Claim{Name: name, Owner: "a"}}}); err != nil {
		t.Fatalf("transfer from the owner: %v", err)
	}
	if owner, err := s.ClaimOwner(ctx, "Patient", name); err != nil || owner != "b" {
		t.Fatalf("owner = %q, %v", owner, err)
	}
	if owner, err := s.ClaimOwner(ctx, "Observation", name); err != nil || owner != "" {
		t.Fatalf("claims are per type: owner = %q, %v", owner, err)
	}
}

// runUnique: a unique name (a wallet) is held by one resource of any
// type at a time; updates keep, add and release names; a delete releases
// them all; of concurrent takers exactly one wins.
func runUnique(t *testing.T, newEngine NewEngine) {
	ctx := context.Background()
	_, s := open(t, newEngine)
	cur := func(typ, id string) *store.Version {
		t.Helper()
		v, err := s.Current(ctx, typ, id)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	commit := func(prev *store.Version, v store.Version, names ...string) error {
		return s.Commit(ctx, []store.Write{{Prev: prev, New: v, Unique: names, HoldsUnique: true}})
	}
	holder := func(name, want string) {
		t.Helper()
		if got, err := s.UniqueHolder(ctx, name); err != nil || got != want {
			t.Fatalf("holder of %s = %q, %v; want %q", name, got, err, want)
		}
	}
	pa := version("Patient", "a", 1, t0, `"a"`)
	if err := commit(nil, pa, "wallet:0x1", "wallet:0x2"); err != nil {
		t.Fatal(err)
	}
	holder("wallet:0x1", "Patient/a")
	// Another type may not take it either.
	dr := version("Practitioner", "d", 1, t0, `"d"`)
	var taken *store.TakenError
	if err := commit(nil, dr, "wallet:0x2"); !errors.As(err, &taken) || taken.Holder != "Patient/a" || !errors.Is(err, store.ErrTaken) {
		t.Fatalf("second holder = %v, want a TakenError naming Patient/a", err)
	}
	if _, err := s.Read(ctx, "Practitioner", "d"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused write is visible: %v", err)
	}
	// An update without HoldsUnique leaves the names alone; with it, the
	// dropped name is released and can be taken.
	pa2 := version("Patient", "a", 2, t0.Add(time.Second), `"a2"`)
	if err := s.Commit(ctx, []store.Write{{Prev: cur("Patient", "a"), New: pa2}}); err != nil {
		t.Fatal(err)
	}
	holder("wallet:0x2", "Patient/a")
	pa3 := version("Patient", "a", 3, t0.Add(2*time.Second), `"a3"`)
	if err := commit(cur("Patient", "a"), pa3, "wallet:0x1"); err != nil {
		t.Fatal(err)
	}
	holder("wallet:0x2", "")
	if err := commit(nil, dr, "wallet:0x2"); err != nil {
		t.Fatal(err)
	}
	holder("wallet:0x2", "Practitioner/d")
	// A delete releases everything.
	del := version("Patient", "a", 4, t0.Add(3*time.Second), "")
	if err := commit(cur("Patient", "a"), del); err != nil {
		t.Fatal(err)
	}
	holder("wallet:0x1", "")
	// Concurrent takers of one free name: one wins, the others conflict
	// (and, retried, find it taken).
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- commit(nil, version("Patient", fmt.Sprintf("r%d", i), 1, t0, `"r"`), "wallet:0x9")
		}()
	}
	won := 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			won++
		case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrTaken):
		default:
			t.Fatalf("racing taker: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d racing takers won, want 1", won)
	}
}

// runReindex: replacing a resource's index entries changes what finds it.
func runReindex(t *testing.T, newEngine NewEngine) {
	ctx := context.Background()
	_, s := open(t, newEngine)
	v := version("Patient", "r", 1, t0, `"r"`)
	old := []store.IndexValue{{Param: "family", Kind: store.IndexString, Text: "Old"}}
	if err := s.Commit(ctx, []store.Write{{New: v, Index: old}}); err != nil {
		t.Fatal(err)
	}
	gone := version("Patient", "gone", 1, t0, `"g"`)
	if err := s.Commit(ctx, []store.Write{{New: gone}}); err != nil {
		t.Fatal(err)
	}
	cur, _ := s.Current(ctx, "Patient", "gone")
	if err := s.Commit(ctx, []store.Write{{Prev: &cur, New: version("Patient", "gone", 2, t0.Add(time.Second), "")}}); err != nil {
		t.Fatal(err)
	}
	var seen []string
	err := s.EachCurrent(ctx, "Patient", func(v store.Version) error {
		seen = append(seen, v.ID+":"+string(v.Body))
		return s.Reindex(ctx, v, []store.IndexValue{{Param: "family", Kind: store.IndexString, Text: "New"}})
	})
	if err != nil || fmt.Sprint(seen) != `[r:"r"]` {
		t.Fatalf("EachCurrent visited %v (%v), want only the live resource", seen, err)
	}
	find := func(text string) string {
		return collect(t, s, store.Query{Type: "Patient", Clauses: one(store.Pred{Op: store.OpStringStarts, Param: "family", Text: text})}, 10)
	}
	if got := find("old"); got != "[]" {
		t.Errorf("old entry still found: %s", got)
	}
	if got := find("new"); got != "[r]" {
		t.Errorf("new entry not found: %s", got)
	}
	stale := version("Patient", "r", 7, t0, `"x"`)
	if err := s.Reindex(ctx, stale, nil); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Reindex of a stale version = %v, want ErrConflict", err)
	}
}

// runLeaves: a version's leaf is appended in the same commit and found by
// its version; a failed commit appends nothing.
func runLeaves(t *testing.T, newEngine NewEngine) {
	ctx := context.Background()
	_, s := open(t, newEngine)
	a := version("Patient", "a", 1, t0, `"a"`)
	b := version("Patient", "b", 1, t0, `"b"`)
	if err := s.Commit(ctx, []store.Write{{New: a, Leaf: []byte("leaf-a")}, {New: b, Leaf: []byte("leaf-b")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, []store.Write{{New: a, Leaf: []byte("leaf-dup")}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("conflicting commit = %v", err)
	}
	n, err := s.LogSize(ctx)
	if err != nil || n != 2 {
		t.Fatalf("log size %d (%v), want 2: a failed commit must append nothing", n, err)
	}
	for id, want := range map[string]string{"a": "leaf-a", "b": "leaf-b"} {
		i, err := s.LeafIndex(ctx, "Patient", id, 1)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		s.Leaves(ctx, i, func(_ uint64, data []byte) bool { got = string(data); return false })
		if got != want {
			t.Fatalf("leaf of %s = %q, want %q", id, got, want)
		}
	}
	var all []string
	if err := s.Leaves(ctx, 0, func(n uint64, data []byte) bool { all = append(all, fmt.Sprintf("%d %s", n, data)); return true }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(all, ",") != "0 leaf-a,1 leaf-b" {
		t.Fatalf("leaves %v", all)
	}
	if _, err := s.LeafIndex(ctx, "Patient", "a", 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LeafIndex of a missing version = %v", err)
	}
}

// runGetMany: store.GetMany (the engine's MultiGetter, or Gets one at a
// time) answers in the order asked, nil for absent keys and a non-nil
// slice for a present empty value, and nothing for nothing; more keys
// than one request carries (store/redis sends 1,024 per MGET). ReadMany
// reads like Read: tombstones included, ids that never existed left out.
func runGetMany(t *testing.T, newEngine NewEngine) {
	ctx := context.Background()
	e, s := open(t, newEngine)
	var b store.Batch
	b.Set([]byte("g/a"), []byte("1"))
	b.Set([]byte("g/empty"), nil)
	b.Set([]byte("g/\xff\x00bin"), []byte{0, 0xff})
	for i := range 2500 {
		b.Set(fmt.Appendf(nil, "g/n/%05d", i), fmt.Appendf(nil, "v%d", i))
	}
	if err := e.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	for _, keys := range [][][]byte{nil, {}} {
		got, err := store.GetMany(ctx, e, keys)
		if err != nil || len(got) != 0 {
			t.Fatalf("GetMany(%v) = %q, %v", keys, got, err)
		}
	}
	keys := [][]byte{[]byte("g/none"), []byte("g/a"), []byte("g/empty"), []byte("g/\xff\x00bin"), []byte("g/a"), []byte("h")}
	got, err := store.GetMany(ctx, e, keys)
	if err != nil || len(got) != len(keys) {
		t.Fatalf("GetMany = %q, %v", got, err)
	}
	want := [][]byte{nil, []byte("1"), {}, {0, 0xff}, []byte("1"), nil}
	for i := range want {
		if (got[i] == nil) != (want[i] == nil) || !bytes.Equal(got[i], want[i]) {
			t.Errorf("GetMany[%d] (%q) = %q, want %q", i, keys[i], got[i], want[i])
		}
	}
	got[1][0] = 'x' // the caller owns the slices
	if v, err := e.Get(ctx, []byte("g/a")); err != nil || string(v) != "1" {
		t.Fatalf("Get after changing GetMany's answer = %q, %v", v, err)
	}
	keys = keys[:0]
	for i := 2499; i >= -1; i-- { // descending, with one absent at each end
		keys = append(keys, fmt.Appendf(nil, "g/n/%05d", i))
	}
	keys = append(keys, []byte("g/n/99999"))
	got, err = store.GetMany(ctx, e, keys)
	if err != nil || len(got) != len(keys) {
		t.Fatalf("GetMany of %d keys: %d values, %v", len(keys), len(got), err)
	}
	for i, k := range keys {
		var n int
		if _, err := fmt.Sscanf(string(k), "g/n/%05d", &n); err != nil || n < 0 || n >= 2500 {
			if got[i] != nil {
				t.Fatalf("absent %q = %q", k, got[i])
			}
			continue
		}
		if string(got[i]) != fmt.Sprintf("v%d", n) {
			t.Fatalf("GetMany %q = %q", k, got[i])
		}
	}

	// ReadMany.
	p1 := version("Patient", "p1", 1, t0, `{"v":1}`)
	p2 := version("Patient", "p2", 1, t0, `{"v":"p2"}`)
	if err := s.Commit(ctx, []store.Write{{New: p1}, {New: p2}}); err != nil {
		t.Fatal(err)
	}
	cur, _ := s.Current(ctx, "Patient", "p1")
	if err := s.Commit(ctx, []store.Write{{Prev: &cur, New: version("Patient", "p1", 2, t0.Add(time.Second), `{"v":2}`)}}); err != nil {
		t.Fatal(err)
	}
	cur, _ = s.Current(ctx, "Patient", "p2")
	if err := s.Commit(ctx, []store.Write{{Prev: &cur, New: version("Patient", "p2", 2, t0.Add(time.Second), "")}}); err != nil {
		t.Fatal(err)
	}
	for _, ids := range [][]string{nil, {"nobody"}} {
		if vs, err := s.ReadMany(ctx, "Patient", ids); err != nil || len(vs) != 0 {
			t.Fatalf("ReadMany(%q) = %v, %v", ids, vs, err)
		}
	}
	for range 2 { // the second time from the cache
		vs, err := s.ReadMany(ctx, "Patient", []string{"p2", "nobody", "p1", "p1"})
		if err != nil || len(vs) != 3 {
			t.Fatalf("ReadMany = %+v, %v", vs, err)
		}
		if vs[0].ID != "p2" || vs[0].VID != 2 || !vs[0].Deleted {
			t.Errorf("ReadMany[0] = %+v, want p2's tombstone", vs[0])
		}
		for _, v := range vs[1:] {
			if v.ID != "p1" || v.VID != 2 || string(v.Body) != `{"v":2}` || v.Author != "client/test" {
				t.Errorf("ReadMany p1 = %+v, want version 2", v)
			}
			if r, err := s.Read(ctx, "Patient", "p1"); err != nil || r.VID != v.VID || string(r.Body) != string(v.Body) || !r.LastUpdated.Equal(v.LastUpdated) {
				t.Errorf("Read = %+v, %v; ReadMany %+v", r, err, v)
			}
		}
	}
}

// runChecks: a batch's checks are read with the commit and never make it
// fail; Stale names exactly those that did not hold (values, empty values,
// absence), and a failed condition still fails the whole batch.
func runChecks(t *testing.T, newEngine NewEngine) {
	ctx := context.Background()
	e, _ := open(t, newEngine)
	var b store.Batch
	b.Set([]byte("k/a"), []byte("1"))
	b.Set([]byte("k/empty"), nil)
	b.Set([]byte("k/b"), []byte("2"))
	if err := e.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		checks []store.Cond
		stale  []int
	}{
		{"none", nil, nil},
		{"all hold", []store.Cond{{Key: []byte("k/a"), Value: []byte("1")}, {Key: []byte("k/empty"), Value: []byte{}},
			{Key: []byte("k/none"), Absent: true}}, nil},
		{"some do not", []store.Cond{
			{Key: []byte("k/a"), Value: []byte("2")},     // other value
			{Key: []byte("k/b"), Value: []byte("2")},     // holds
			{Key: []byte("k/none"), Value: []byte("1")},  // absent
			{Key: []byte("k/a"), Absent: true},           // present
			{Key: []byte("k/empty"), Value: []byte("x")}, // empty
			{Key: []byte("k/empty"), Value: nil},         // holds (empty)
		}, []int{0, 2, 3, 4}},
		{"read before the writes", []store.Cond{{Key: []byte("k/w/read before the writes"), Absent: true}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := store.Batch{Checks: tc.checks, Stale: []int{99}}
			b.Set([]byte("k/w/"+tc.name), []byte(tc.name))
			b.Appends = []store.Append{{Data: []byte(tc.name)}}
			if err := e.Apply(ctx, &b); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(b.Stale) != fmt.Sprint(tc.stale) && !(len(b.Stale) == 0 && len(tc.stale) == 0) {
				t.Errorf("Stale = %v, want %v", b.Stale, tc.stale)
			}
			if v, err := e.Get(ctx, []byte("k/w/"+tc.name)); err != nil || string(v) != tc.name {
				t.Errorf("the batch did not apply: %q, %v", v, err)
			}
			if err := e.Apply(ctx, &store.Batch{Checks: tc.checks}); err != nil {
				t.Fatal(err) // a batch of checks alone
			}
		})
	}
	// A failed condition fails the batch, checks or not.
	b = store.Batch{Checks: []store.Cond{{Key: []byte("k/a"), Value: []byte("9")}}}
	b.Require([]byte("k/a"), []byte("9"))
	b.Set([]byte("k/x"), []byte("x"))
	if err := e.Apply(ctx, &b); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a failed condition with checks: %v", err)
	}
	if _, err := e.Get(ctx, []byte("k/x")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a conflicting batch wrote: %v", err)
	}
}
