package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// trailEvents writes n varied events to tr through a clock that advances
// by random steps (often none), in commits of random sizes (some larger
// than a segment), and returns them as st serves them, in the trail's
// order.
func trailEvents(t *testing.T, st *store.Store, tr *Trail, n int, seed uint64) []store.Version {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	clock := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	tr.Now = func() time.Time {
		clock = clock.Add(time.Duration(rng.IntN(3)) * time.Duration(rng.IntN(90)) * time.Minute)
		return clock
	}
	next := eventSource(rng)
	written := 0
	for written < n {
		batch := make([]Event, min(n-written, 1+rng.IntN(200)))
		for i := range batch {
			batch[i] = next()
		}
		if err := tr.write(context.Background(), batch, false); err != nil {
			t.Fatal(err)
		}
		written += len(batch)
	}
	all := allEvents(t, st)
	if len(all) != n {
		t.Fatalf("trail holds %d events, wrote %d", len(all), n)
	}
	return all
}

// allEvents returns every AuditEvent st serves, with its body, in the
// trail's order (its history, newest first, turned round).
func allEvents(t *testing.T, st *store.Store) []store.Version {
	t.Helper()
	var all []store.Version
	q := store.HistoryQuery{Type: "AuditEvent", Count: 100}
	for {
		h, err := st.History(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, h.Versions...)
		if h.Next == nil {
			break
		}
		q.Cursor = h.Next
	}
	slices.Reverse(all)
	return all
}

// eventSource returns a source of varied events drawn from rng.
func eventSource(rng *rand.Rand) func() Event {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	principal := func() *policy.Principal {
		switch rng.IntN(5) {
		case 0, 1:
			d := pick("d0", "d1", "d2")
			return &policy.Principal{Subject: "Practitioner/" + d, Role: policy.RolePractitioner, Resource: "Practitioner/" + d, ClientID: "portal"}
		case 2:
			p := pick("p0", "p1", "p2", "p3")
			return &policy.Principal{Subject: "did:pkh:eip155:1337:0x" + p, Role: policy.RolePatient, Resource: "Patient/" + p, ClientID: "portal"}
		case 3:
			return &policy.Principal{Subject: "client/ehr", Role: policy.RoleSystem, ClientID: "client/ehr"}
		}
		return nil
	}
	interactions := slices.Sorted(func(yield func(string) bool) {
		for k := range actions {
			if !yield(k) {
				return
			}
		}
	})
	return func() Event {
		e := Event{Principal: principal(), Interaction: interactions[rng.IntN(len(interactions))],
			Outcome: []Outcome{Success, Success, MinorFailure, SeriousFailure}[rng.IntN(4)], Reason: "r", Source: "127.0.0.1"}
		for range rng.IntN(4) {
			p := pick("p0", "p1", "p2", "p3", "p4")
			e.Patients = append(e.Patients, "Patient/"+p)
			e.Entities = append(e.Entities, pick("DiagnosticReport/r-"+p, "Appointment/a-"+p+"/_history/2", "Patient/"+p+"/_history/1"))
		}
		if rng.IntN(10) == 0 {
			e.BreakGlass = "emergency"
		}
		if rng.IntN(4) == 0 {
			e.Query = "DiagnosticReport?subject=Patient/p1"
		}
		return e
	}
}

// plainStore stores the events as ordinary resources: the same ids and
// bytes, indexed by the general extractor from the parsed body.
func plainStore(t *testing.T, events []store.Version) *store.Store {
	t.Helper()
	ctx := context.Background()
	db, err := pebble.New(ctx, pebble.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db, store.Options{})
	t.Cleanup(func() { st.Close() })
	var ws []store.Write
	for i, v := range events {
		r, err := fhir.Parse(v.Body)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := search.Extract("AuditEvent", &r.Root)
		if err != nil {
			t.Fatal(err)
		}
		v.Compartments = search.Members("AuditEvent", v.ID, idx)
		ws = append(ws, store.Write{New: v, Index: idx})
		if len(ws) == 200 || i == len(events)-1 {
			if err := st.Commit(ctx, ws); err != nil {
				t.Fatal(err)
			}
			ws = nil
		}
	}
	return st
}

// TestTrailSearchMatchesIndexedSearch: every AuditEvent search answers
// from the trail exactly what the general indexed search answers over the
// same events stored as ordinary resources: matches, order, totals, and
// every page forward and back.
func TestTrailSearchMatchesIndexedSearch(t *testing.T) {
	trailStore, tr := openTrail(t, nil)
	events := trailEvents(t, trailStore, tr, 800, 1)
	matchesIndexedSearch(t, trailStore, events, nil)
}

// matchesIndexedSearch runs a range of AuditEvent searches on st (whose
// AuditEvents are a trail's) and on the same events stored as ordinary
// resources, and requires the same pages from both: matches, order,
// totals, and every page forward and back.
// Only the queries keep accepts run (nil: all).
func matchesIndexedSearch(t *testing.T, st *store.Store, events []store.Version, keep func(query string) bool) {
	t.Helper()
	ctx := context.Background()
	plain := plainStore(t, events)
	mid := events[len(events)/2].LastUpdated
	day := mid.Format("2006-01-02")
	now := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	queries := []string{
		"",
		"_count=7",
		"patient=Patient/p1",
		"patient=p2&_count=5",
		"patient=Patient/p1,Patient/p3",
		"patient=Patient/p1&patient=Patient/p3",
		"patient:missing=true",
		"agent=Practitioner/d1",
		"agent=Practitioner/d1,Practitioner/d2&outcome=4",
		"agent=d0",
		"agent:Practitioner=d2",
		"agent-role=practitioner",
		"entity=DiagnosticReport/r-p2",
		"entity=Appointment/a-p4&_sort=-date",
		"entity:missing=false&_count=50",
		"date=" + day,
		"date=ge" + day + "&date=lt" + mid.AddDate(0, 0, 2).Format("2006-01-02"),
		"date=gt" + mid.Format(time.RFC3339Nano),
		"date=le" + mid.Format(time.RFC3339Nano) + "&_sort=-date",
		"date=sa" + day + "&patient=Patient/p0",
		"date=eb" + day + "&agent=Practitioner/d0&_count=3",
		"date=ne" + day + "&_count=40",
		"date=ap" + day,
		"_lastUpdated=gt" + day + "&_sort=_lastUpdated",
		"_lastUpdated=lt" + day + "&_sort=-_lastUpdated",
		"outcome=0&_sort=_id",
		"outcome:not=0&_sort=-_id",
		"subtype=read,vread",
		"subtype=http://hl7.org/fhir/restful-interaction|search-type",
		"action=E",
		"action=C,U,D&patient=Patient/p2",
		"type=http://terminology.hl7.org/CodeSystem/audit-event-type|rest",
		"agent-role:text=practitioner&_sort=-date&_count=11",
		"policy:missing=false",
		"source=Device/fhirgate",
		"_id=" + events[3].ID + "," + events[700].ID + ",ae-nosuch",
		"_id=" + events[3].ID + "&outcome=0",
		"_has:Provenance:target:agent=Practitioner/d0",
		"agent=Practitioner/d2&patient=Patient/p1&date=ge" + day,
		"entity=Patient/p3&outcome=4,8&_sort=-date&_count=2",
	}
	for _, raw := range queries {
		if keep != nil && !keep(raw) {
			continue
		}
		t.Run(raw, func(t *testing.T) {
			params, err := url.ParseQuery(raw)
			if err != nil {
				t.Fatal(err)
			}
			q, err := search.ParseQuery("AuditEvent", params, search.Options{Now: now, Strict: true})
			if err != nil {
				t.Fatal(err)
			}
			count := 20
			if q.Count >= 0 {
				count = q.Count
			}
			want := pages(t, ctx, "indexed", plain, q.Store, count)
			got := pages(t, ctx, "trail", st, q.Store, count)
			if !slices.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("trail pages differ from indexed search:\n got %v\nwant %v", got, want)
			}
			if len(want) == 0 || len(want[0]) == 0 {
				t.Logf("no matches") // some criteria match nothing on purpose
			}
		})
	}
}

// pages runs q page by page to the end, then back from the last page by
// its previous links, checks both walks agree, and returns the pages.
func pages(t *testing.T, ctx context.Context, name string, st *store.Store, q store.Query, count int) [][]string {
	t.Helper()
	q.Count, q.Total = count, true
	var out [][]string
	var prevs [][]byte
	var hasPrev []bool
	total := -1
	for {
		p, err := st.Search(ctx, &q)
		if err != nil {
			t.Fatal(err)
		}
		if total >= 0 && p.Total != total {
			t.Fatalf("total changed between pages: %d then %d", total, p.Total)
		}
		total = p.Total
		out = append(out, p.IDs)
		prevs, hasPrev = append(prevs, p.Prev), append(hasPrev, p.HasPrev)
		if p.Next == nil {
			break
		}
		q.Cursor = p.Next
	}
	n := 0
	for _, p := range out {
		n += len(p)
	}
	if n != total {
		t.Fatalf("%s: pages hold %d ids, total says %d", name, n, total)
	}
	// Back: page i's previous link leads to page i-1.
	for i := len(out) - 1; i > 0; i-- {
		if !hasPrev[i] {
			t.Fatalf("%s: page %d has no previous link", name, i)
		}
		q.Cursor = prevs[i]
		p, err := st.Search(ctx, &q)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p.IDs, out[i-1]) {
			t.Fatalf("%s: previous of page %d = %v, want %v", name, i, p.IDs, out[i-1])
		}
	}
	if hasPrev[0] {
		t.Fatal("the first page has a previous link")
	}
	return append(out, []string{fmt.Sprint("total ", total)})
}

// TestTrailUnsupportedSorts: a sort the trail's order cannot give is
// refused, not answered in the wrong order.
func TestTrailUnsupportedSorts(t *testing.T) {
	st, tr := openTrail(t, nil)
	trailEvents(t, st, tr, 3, 2)
	for _, s := range []string{"outcome", "date,_id", "-entity"} {
		q, err := search.ParseQuery("AuditEvent", url.Values{"_sort": {s}}, search.Options{Strict: true})
		if err != nil {
			t.Fatal(err)
		}
		q.Store.Count = 10
		if _, err := st.Search(context.Background(), &q.Store); !errors.Is(err, store.ErrUnsupported) {
			t.Errorf("_sort=%s: err = %v, want ErrUnsupported", s, err)
		}
	}
}

// TestTrailReopens: after a restart the trail keeps its events, their
// leaves and its clock (no id is given out twice even if the wall clock
// went back), and the store serves its reads, versions and history.
func TestTrailReopens(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := pebble.New(ctx, pebble.Config{Dir: dir, CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := OpenTrail(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	st1 := store.New(db, store.Options{Virtual: map[string]store.Virtual{"AuditEvent": tr}})
	events := trailEvents(t, st1, tr, 300, 3)
	last := events[len(events)-1]
	db.Close()

	st, tr2 := openTrail(t, reopen(t, dir))
	tr2.Now = func() time.Time { return last.LastUpdated.Add(-time.Hour) } // the clock went back
	if err := tr2.write(ctx, []Event{{Interaction: "read", Outcome: Success}}, false); err != nil {
		t.Fatal(err)
	}
	h, err := st.History(ctx, store.HistoryQuery{Type: "AuditEvent", Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Versions) != 2 || h.Versions[1].ID != last.ID || h.Versions[0].ID <= last.ID {
		t.Fatalf("history after reopen: %+v", h.Versions)
	}

	// Every event reads back with its bytes and proves at its own leaf.
	size, err := st.LogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if size != uint64(len(events))+1 {
		t.Fatalf("log size %d, want %d", size, len(events)+1)
	}
	leaves := map[uint64]string{}
	if err := st.Leaves(ctx, 0, func(n uint64, d []byte) bool { leaves[n] = string(d); return true }); err != nil {
		t.Fatal(err)
	}
	for _, f := range events {
		v, err := st.Read(ctx, "AuditEvent", f.ID)
		if err != nil {
			t.Fatal(err)
		}
		if vv, err := st.Version(ctx, "AuditEvent", f.ID, 1); err != nil || string(vv.Body) != string(v.Body) {
			t.Fatalf("vread %s: %v", f.ID, err)
		}
		n, err := st.LeafIndex(ctx, "AuditEvent", f.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		// The leaf names the version and holds its bytes' hash (after a
		// random salt).
		lines := strings.Split(leaves[n], "\n")
		sum := sha256.Sum256(v.Body)
		if len(lines) != 4 || lines[0]+"\n" != anchor.LeafPrefix || lines[1] != "AuditEvent/"+f.ID+"/_history/1" || lines[3] != hex.EncodeToString(sum[:]) {
			t.Fatalf("leaf %d of %s = %q, body %s", n, f.ID, leaves[n], v.Body)
		}
	}
	if _, err := st.Read(ctx, "AuditEvent", "ae-0000000000000001"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown event: %v", err)
	}
	err = st.Commit(ctx, []store.Write{{New: store.Version{Type: "AuditEvent", ID: "x", VID: 1, Body: []byte("{}")}}})
	if !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("client write of an AuditEvent: %v, want ErrReadOnly", err)
	}
}

func reopen(t *testing.T, dir string) store.Engine {
	t.Helper()
	db, err := pebble.New(context.Background(), pebble.Config{Dir: dir, CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return db
}
