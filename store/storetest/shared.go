package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// NewPair returns two handles on one fresh, empty backend, as two
// processes (gateway replicas) would open it; RunShared closes both.
type NewPair func(t *testing.T) (store.Engine, store.Engine)

// RunShared is the part of the suite about several processes on one
// backend (ory/keto's IsolationTest idea): each handle gets its own
// Store, with its own read cache (on, as the gateway runs it), and what
// one commits the other must see and must not undo.
func RunShared(t *testing.T, newPair NewPair) {
	t.Run("ReadYourWrites", func(t *testing.T) { runReadYourWrites(t, newPair) })
	t.Run("ConditionalCreateRace", func(t *testing.T) { runCreateRace(t, newPair) })
	t.Run("IfMatchRace", func(t *testing.T) { runIfMatchRace(t, newPair) })
	t.Run("LogAppends", func(t *testing.T) { runSharedLog(t, newPair) })
	t.Run("UniqueRace", func(t *testing.T) { runUniqueRace(t, newPair) })
	t.Run("ReadSetProof", func(t *testing.T) { runReadSetProof(t, newPair) })
}

func openPair(t *testing.T, newPair NewPair) [2]*store.Store {
	t.Helper()
	a, b := newPair(t)
	t.Cleanup(func() { a.Close(); b.Close() })
	return [2]*store.Store{store.New(a, store.Options{Shared: sharedParams}), store.New(b, store.Options{Shared: sharedParams})}
}

// SharedView lets a test pass one engine that a single process opens
// (Pebble: a directory admits one) as both handles of a pair: it reports
// itself shared, so each Store over it behaves as it must when another
// process commits too (its cache keeps immutable versions only), and its
// Close does nothing (the test closes the engine once).
func SharedView(e store.Engine) store.Engine { return sharedView{e} }

type sharedView struct{ store.Engine }

func (sharedView) Shared() bool { return true }
func (sharedView) Close() error { return nil }
func (v sharedView) Limits() store.Limits {
	if l, ok := v.Engine.(store.Limited); ok {
		return l.Limits()
	}
	return store.Limits{}
}

// runReadYourWrites: hundreds of alternating write-here/read-there pairs
// on a few resources, each side having read the resource (so its cache
// holds the old version) just before the other writes: zero stale reads.
func runReadYourWrites(t *testing.T, newPair NewPair) {
	ctx := context.Background()
	s := openPair(t, newPair)
	ids := []string{"a", "b", "c"}
	for _, id := range ids {
		if err := s[0].Commit(ctx, []store.Write{{New: version("Patient", id, 1, t0, `"1"`)}}); err != nil {
			t.Fatal(err)
		}
	}
	stale := 0
	for i := range 300 {
		w, r := s[i%2], s[(i+1)%2]
		id := ids[i%len(ids)]
		before, err := r.Read(ctx, "Patient", id) // warm r's cache
		if err != nil {
			t.Fatal(err)
		}
		cur, body := writePair(t, w, id, i, before.VID)
		got, err := r.Read(ctx, "Patient", id)
		if err != nil {
			t.Fatal(err)
		}
		if got.VID != cur.VID+1 || string(got.Body) != body {
			stale++
			t.Errorf("pair %d: read %s/%d %s on the other handle after version %d was acknowledged", i, id, got.VID, got.Body, cur.VID+1)
		}
		if stale > 5 {
			t.FailNow()
		}
	}
	// A delete on one side is a tombstone on the other at once.
	cur, _ := s[0].Current(ctx, "Patient", "a")
	s[1].Read(ctx, "Patient", "a")
	if err := s[0].Commit(ctx, []store.Write{{Prev: &cur, New: version("Patient", "a", cur.VID+1, t0.Add(time.Hour), "")}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s[1].Read(ctx, "Patient", "a"); err != nil || !got.Deleted {
		t.Fatalf("after a delete on the other handle: %+v, %v", got, err)
	}
}

// writePair writes the next version of Patient id through w, for pair i
// of a write-here/read-there test, after checking that w sees the version
// the reader saw (seen); it returns what w replaced and the new body.
func writePair(t *testing.T, w *store.Store, id string, i int, seen uint64) (store.Version, string) {
	t.Helper()
	ctx := context.Background()
	cur, err := w.Current(ctx, "Patient", id)
	if err != nil {
		t.Fatal(err)
	}
	if cur.VID != seen {
		t.Fatalf("pair %d: the writer sees version %d, the reader %d", i, cur.VID, seen)
	}
	body := fmt.Sprintf(`"%d"`, cur.VID+1)
	if err := w.Commit(ctx, []store.Write{{Prev: &cur, New: version("Patient", id, cur.VID+1, t0.Add(time.Duration(i+1)*time.Second), body)}}); err != nil {
		t.Fatal(err)
	}
	return cur, body
}

// runCreateRace: conditional creates with the same criteria on both
// handles (a claim on the criteria, as the REST layer does) make exactly
// one resource; every racer ends up naming it.
func runCreateRace(t *testing.T, newPair NewPair) {
	ctx := context.Background()
	s := openPair(t, newPair)
	const racers = 16
	name := "identifier=urn:mrn|42"
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, found := map[string]bool{}, map[string]bool{}
	for r := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s[r%2]
			for attempt := 0; attempt < 50; attempt++ {
				owner, err := st.ClaimOwner(ctx, "Patient", name)
				if err != nil {
					t.Error(err)
					return
				}
				if owner != "" {
					mu.Lock()
					found[owner] = true
					mu.Unlock()
					return
				}
				id := fmt.Sprintf("r%d", r)
				err = st.Commit(ctx, []store.Write{{New: version("Patient", id, 1, t0, `"x"`), Claim: &store.Claim{Name: name}}})
				if errors.Is(err, store.ErrConflict) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				created[id] = true
				mu.Unlock()
				return
			}
			t.Error("no outcome after 50 attempts")
		}()
	}
	wg.Wait()
	if len(created) != 1 {
		t.Fatalf("%d resources created by %d racers on two handles: %v", len(created), racers, created)
	}
	for id := range found {
		if !created[id] {
			t.Fatalf("a racer found %s, not the one created (%v)", id, created)
		}
	}
	n := 0
	if err := s[1].EachCurrent(ctx, "Patient", func(store.Version) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("%d Patients stored (%v), want 1", n, err)
	}
}

// runIfMatchRace: updates with If-Match (Prev) racing through both
// handles leave a linear history: versions 1..N, each one acknowledged
// write, none lost or doubled.
func runIfMatchRace(t *testing.T, newPair NewPair) {
	ctx := context.Background()
	s := openPair(t, newPair)
	if err := s[0].Commit(ctx, []store.Write{{New: version("Patient", "hot", 1, t0, `"0"`)}}); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	wrote := map[uint64]string{}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s[w%2]
			for i := range each {
				body := fmt.Sprintf(`"w%d-%d"`, w, i)
				for {
					cur, err := st.Read(ctx, "Patient", "hot") // through the cache, as REST does
					if err != nil {
						t.Error(err)
						return
					}
					v := version("Patient", "hot", cur.VID+1, cur.LastUpdated.Add(time.Microsecond), body)
					err = st.Commit(ctx, []store.Write{{Prev: &cur, New: v}})
					if errors.Is(err, store.ErrConflict) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if old, dup := wrote[v.VID]; dup {
						t.Errorf("version %d acknowledged twice: %s and %s", v.VID, old, body)
					}
					wrote[v.VID] = body
					mu.Unlock()
					break
				}
			}
		}()
	}
	wg.Wait()
	const total = writers*each + 1
	for i, st := range s {
		cur, err := st.Read(ctx, "Patient", "hot")
		if err != nil || cur.VID != total {
			t.Fatalf("handle %d reads version %d (%v), want %d", i, cur.VID, err, total)
		}
	}
	for vid := uint64(2); vid <= total; vid++ {
		v, err := s[int(vid)%2].Version(ctx, "Patient", "hot", vid)
		if err != nil || string(v.Body) != wrote[vid] {
			t.Fatalf("version %d = %q (%v), acknowledged %q", vid, v.Body, err, wrote[vid])
		}
	}
}

// runSharedLog: leaves appended through both handles at once get
// positions 0..n-1, each once, each holding its own leaf.
func runSharedLog(t *testing.T, newPair NewPair) {
	ctx := context.Background()
	s := openPair(t, newPair)
	const writers, each = 8, 12
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := s[(w+i)%2].Commit(ctx, []store.Write{{New: version("Patient", id, 1, t0, `"x"`), Leaf: []byte(id)}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	const total = writers * each
	for i, st := range s {
		if n, err := st.LogSize(ctx); err != nil || n != total {
			t.Fatalf("handle %d: log size %d (%v), want %d", i, n, err, total)
		}
	}
	at := map[uint64]string{}
	for w := range writers {
		for i := range each {
			id := fmt.Sprintf("w%d-%d", w, i)
			n, err := s[(w+i+1)%2].LeafIndex(ctx, "Patient", id, 1)
			if err != nil {
				t.Fatal(err)
			}
			if other, dup := at[n]; dup {
				t.Fatalf("position %d holds %s and %s", n, other, id)
			}
			at[n] = id
		}
	}
	var got []uint64
	if err := s[1].Leaves(ctx, 0, func(n uint64, data []byte) bool {
		if at[n] != string(data) {
			t.Errorf("leaf %d = %q, want %q", n, data, at[n])
		}
		got = append(got, n)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	for i, n := range got {
		if n != uint64(i) {
			t.Fatalf("log positions have a gap at %d", i)
		}
	}
	if len(got) != total {
		t.Fatalf("%d leaves, want %d", len(got), total)
	}
}

// runUniqueRace: resources created through both handles at once, each
// claiming one unique name (a wallet): exactly one holds it.
func runUniqueRace(t *testing.T, newPair NewPair) {
	ctx := context.Background()
	s := openPair(t, newPair)
	const racers = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []string
	for r := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("r%d", r)
			for {
				err := s[r%2].Commit(ctx, []store.Write{{New: version("Patient", id, 1, t0, `"x"`), Unique: []string{"wallet:0xabc"}, HoldsUnique: true}})
				if errors.Is(err, store.ErrConflict) {
					continue // raced the condition: look again
				}
				if errors.Is(err, store.ErrTaken) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				won = append(won, id)
				mu.Unlock()
				return
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d resources hold the name: %v", len(won), won)
	}
	for i, st := range s {
		if h, err := st.UniqueHolder(ctx, "wallet:0xabc"); err != nil || h != "Patient/"+won[0] {
			t.Fatalf("handle %d: holder %q (%v), want Patient/%s", i, h, err, won[0])
		}
	}
}

// runReadSetProof: reads through a ReadSet answer from what the handle
// last saw, and the commit that carries their checks (the request's
// audit event) proves them current or reports them stale; following the
// protocol (stale: Forget, read again without the set), hundreds of
// alternating write-here/read-there pairs give zero stale answers, and
// the check fails exactly when the other handle wrote in between.
func runReadSetProof(t *testing.T, newPair NewPair) {
	ctx := context.Background()
	s := openPair(t, newPair)
	if s[0].NewReadSet() == nil {
		t.Fatal("a Store over a shared engine has no ReadSet")
	}
	ids := []string{"a", "b", "c"}
	for _, id := range ids {
		if err := s[0].Commit(ctx, []store.Write{{New: version("Patient", id, 1, t0, `"1"`)}}); err != nil {
			t.Fatal(err)
		}
	}
	// read answers as a request does: through a ReadSet, proved by a
	// commit of its checks (with a log append, as an audit event has).
	read := func(st *store.Store, id string) (store.Version, bool) {
		t.Helper()
		rs := st.NewReadSet()
		v, err := st.Read(store.WithReadSet(ctx, rs), "Patient", id)
		if err != nil {
			t.Fatal(err)
		}
		b := store.Batch{Checks: rs.Checks(), Appends: []store.Append{{Data: []byte("event")}}}
		if err := st.Engine().Apply(ctx, &b); err != nil {
			t.Fatal(err)
		}
		if len(b.Stale) == 0 {
			return v, false
		}
		rs.Forget()
		v, err = st.Read(ctx, "Patient", id)
		if err != nil {
			t.Fatal(err)
		}
		return v, true
	}
	stale, rereads, optimistic := 0, 0, 0
	for i := range 300 {
		w, r := s[i%2], s[(i+1)%2]
		id := ids[i%len(ids)]
		before, _ := read(r, id) // r now holds the pointer it saw
		cur, body := writePair(t, w, id, i, before.VID)
		got, reread := read(r, id)
		if reread {
			rereads++
		}
		if got.VID != cur.VID+1 || string(got.Body) != body {
			stale++
			t.Errorf("pair %d: answered %s/%d %s after version %d was acknowledged on the other handle", i, id, got.VID, got.Body, cur.VID+1)
		}
		if stale > 5 {
			t.FailNow()
		}
		// Unchanged since: answered from memory, proved current.
		rs := r.NewReadSet()
		again, err := r.Read(store.WithReadSet(ctx, rs), "Patient", id)
		if err != nil || again.VID != got.VID {
			t.Fatalf("pair %d: read again %d, %v", i, again.VID, err)
		}
		if len(rs.Checks()) == 1 {
			optimistic++
		}
		b := store.Batch{Checks: rs.Checks()}
		if err := r.Engine().Apply(ctx, &b); err != nil || len(b.Stale) != 0 {
			t.Fatalf("pair %d: an unchanged resource's check: stale %v, %v", i, b.Stale, err)
		}
	}
	// Every pair's second read found the other handle's write: each must
	// have been caught by its check, and the reads after it answered from
	// memory.
	if rereads != 300 || optimistic != 300 {
		t.Fatalf("%d of 300 stale reads caught by their check, %d of 300 unchanged reads answered from memory", rereads, optimistic)
	}
	// A handle's own commit is its freshest hint: read after it, no reread.
	cur, _ := s[0].Current(ctx, "Patient", "a")
	if err := s[0].Commit(ctx, []store.Write{{Prev: &cur, New: version("Patient", "a", cur.VID+1, t0.Add(time.Hour), `"own"`)}}); err != nil {
		t.Fatal(err)
	}
	if got, reread := read(s[0], "a"); reread || string(got.Body) != `"own"` {
		t.Fatalf("read after its own commit: %s, reread %v", got.Body, reread)
	}
	// A delete on one side: the other's stale hint is caught, the tombstone
	// answered.
	read(s[1], "a")
	cur, _ = s[0].Current(ctx, "Patient", "a")
	if err := s[0].Commit(ctx, []store.Write{{Prev: &cur, New: version("Patient", "a", cur.VID+1, t0.Add(2*time.Hour), "")}}); err != nil {
		t.Fatal(err)
	}
	if got, reread := read(s[1], "a"); !reread || !got.Deleted {
		t.Fatalf("after a delete on the other handle: %+v, reread %v", got, reread)
	}
}
