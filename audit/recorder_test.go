package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// slowEngine observes the recorder's commits: how many run at once, how
// long each takes (delay), whether they fail (broken), and it can hold
// them until released (gate).
type slowEngine struct {
	store.Engine
	delay       time.Duration
	broken      atomic.Bool
	gate        chan struct{} // nil: no gate
	inflight    atomic.Int32
	maxInflight atomic.Int32
	applied     atomic.Int64
	entered     atomic.Int64 // when the last Apply began (UnixNano)
}

func (f *slowEngine) Apply(ctx context.Context, b *store.Batch) error {
	f.entered.Store(time.Now().UnixNano())
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		m := f.maxInflight.Load()
		if n <= m || f.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	if f.gate != nil {
		<-f.gate
	}
	time.Sleep(f.delay)
	if f.broken.Load() {
		return errors.New("disk full")
	}
	err := f.Engine.Apply(ctx, b)
	if err == nil {
		f.applied.Add(1)
	}
	return err
}

func newSlowEngine(t testing.TB, delay time.Duration) *slowEngine {
	t.Helper()
	db, err := pebble.New(context.Background(), pebble.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return &slowEngine{Engine: db, delay: delay}
}

// run starts r and closes it when the test ends.
func run(t testing.TB, r *Recorder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := r.Close(cctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		cancel()
	})
}

func gathering(r *Recorder) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cur.events)
}

func readEvent(i int) Event {
	return Event{Time: time.Now(), Principal: doctor, Interaction: "read", Outcome: Success,
		Entities: []string{fmt.Sprintf("DiagnosticReport/r%d/_history/1", i)}, Patients: []string{fmt.Sprintf("Patient/p%d", i%5)}}
}

// count returns the number of AuditEvents matching the query.
func count(t testing.TB, st *store.Store, query string) int {
	t.Helper()
	vals, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	q, err := search.ParseQuery("AuditEvent", vals, search.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sq := q.Store
	sq.Count, sq.Total = 0, true
	page, err := st.Search(context.Background(), &sq)
	if err != nil {
		t.Fatal(err)
	}
	return page.Total
}

// TestRecordReturnsOnceDurable: Record returns only after the commit that
// holds its event returned (the engine's Apply is synced), and the event
// is then searchable with its log leaf (finding 6).
func TestRecordReturnsOnceDurable(t *testing.T) {
	se := newSlowEngine(t, 0)
	se.gate = make(chan struct{})
	st, tr := openTrail(t, se)
	r := NewRecorder(tr, Options{})
	run(t, r)
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- r.Record(ctx, readEvent(3)) }()
	select {
	case err := <-done:
		t.Fatalf("Record returned (%v) before its commit", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(se.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if se.applied.Load() != 1 || r.Written() != 1 {
		t.Fatalf("applied %d, written %d", se.applied.Load(), r.Written())
	}
	if n := count(t, st, "patient=Patient/p3"); n != 1 {
		t.Fatalf("AuditEvent?patient=Patient/p3: %d", n)
	}
	if n, _ := st.LogSize(ctx); n != 1 {
		t.Fatalf("log size %d: the event has its leaf", n)
	}
}

func TestRecorderWritesSearchableEvents(t *testing.T) {
	st, tr := openTrail(t, nil)
	r := NewRecorder(tr, Options{BatchSize: 7})
	ctx := context.Background()
	go r.Run(ctx)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Record(ctx, readEvent(i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// Durable on return: no Close needed to see them.
	if r.Written() != 50 {
		t.Fatalf("written %d", r.Written())
	}
	if n := count(t, st, "patient=Patient/p3"); n != 10 {
		t.Fatalf("AuditEvent?patient=Patient/p3: %d", n)
	}
	if n, _ := st.LogSize(ctx); n != 50 {
		t.Fatalf("log size %d: every event is a leaf", n)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Record(ctx, readEvent(1)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Record after Close = %v", err)
	}
}

// TestRecorderGroupCommits: concurrent requests share commits (the events
// arriving during one commit all ride the next), and a lone event on an
// idle recorder is committed at once, without a fixed linger.
func TestRecorderGroupCommits(t *testing.T) {
	const commit = 20 * time.Millisecond
	se := newSlowEngine(t, commit)
	_, tr := openTrail(t, se)
	r := NewRecorder(tr, Options{Writers: 2})
	run(t, r)
	ctx := context.Background()

	// A lone event's commit begins at once (the median of a few, so that
	// a loaded machine's scheduling does not decide).
	var gaps []time.Duration
	for i := range 7 {
		start := time.Now()
		if err := r.Record(ctx, readEvent(i)); err != nil {
			t.Fatal(err)
		}
		gaps = append(gaps, time.Duration(se.entered.Load()-start.UnixNano()))
	}
	slices.Sort(gaps)
	if gaps[3] > 5*time.Millisecond {
		t.Errorf("a lone event's commit began %s after Record (median): it should wait for nothing", gaps[3])
	}

	const requests = 200
	before := r.Batches()
	var wg sync.WaitGroup
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Record(ctx, readEvent(i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if b := r.Batches() - before; b > 20 {
		t.Errorf("%d concurrent requests took %d commits; they should share a few", requests, b)
	}
	if m := se.maxInflight.Load(); m != 1 {
		t.Errorf("%d commits in flight at once with partial batches; a partial batch waits for the commit in flight", m)
	}
}

// limitEngine refuses a batch of more than max operations, as an engine
// with Limits does.
type limitEngine struct {
	store.Engine
	max     int
	largest atomic.Int64
}

func (l *limitEngine) Apply(ctx context.Context, b *store.Batch) error {
	n := len(b.Conds) + len(b.Ops) + len(b.Appends) + len(b.Checks)
	if n > l.max {
		return store.ErrTooLarge
	}
	for {
		m := l.largest.Load()
		if int64(n) <= m || l.largest.CompareAndSwap(m, int64(n)) {
			break
		}
	}
	return l.Engine.Apply(ctx, b)
}

// TestRecorderBoundsEachCommit: the events that gathered behind a commit
// in flight are written in commits of at most CommitEvents, so that no
// commit exceeds the engine's limits; without the bound the same gathering
// is refused whole (every request of it failing closed).
func TestRecorderBoundsEachCommit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bound   int
		refused bool
	}{{"bounded", 8, false}, {"unbounded", 1 << 20, true}} {
		t.Run(tc.name, func(t *testing.T) {
			se := newSlowEngine(t, 0)
			se.gate = make(chan struct{})
			le := &limitEngine{Engine: se, max: 60}
			_, tr := openTrail(t, le)
			r := NewRecorder(tr, Options{CommitEvents: tc.bound})
			run(t, r)
			ctx := context.Background()
			first := make(chan error, 1)
			go func() { first <- r.Record(ctx, readEvent(0)) }()
			for se.inflight.Load() == 0 { // the first commit holds the engine
				time.Sleep(time.Millisecond)
			}
			const requests = 200
			var failed atomic.Int32
			var wg sync.WaitGroup
			for i := range requests {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := r.Record(ctx, readEvent(i+1)); err != nil {
						failed.Add(1)
					}
				}()
			}
			for {
				r.mu.Lock()
				n := len(r.cur.events)
				r.mu.Unlock()
				if n == requests {
					break
				}
				time.Sleep(time.Millisecond)
			}
			close(se.gate)
			wg.Wait()
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			if got := failed.Load() > 0; got != tc.refused {
				t.Fatalf("%d of %d requests failed; refused %v, want %v", failed.Load(), requests, got, tc.refused)
			}
			if !tc.refused && le.largest.Load() > int64(le.max) {
				t.Fatalf("a commit of %d operations", le.largest.Load())
			}
		})
	}
}

// TestRecorderPipelinesFullBatches: while a commit is in flight, a
// second writer commits as soon as a full batch gathered, and never more
// than Writers commits run at once.
func TestRecorderPipelinesFullBatches(t *testing.T) {
	se := newSlowEngine(t, 0)
	se.gate = make(chan struct{})
	_, tr := openTrail(t, se)
	r := NewRecorder(tr, Options{Writers: 2, BatchSize: 8})
	run(t, r)
	ctx := context.Background()
	var wg sync.WaitGroup
	record := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Record(ctx, readEvent(i)); err != nil {
				t.Error(err)
			}
		}()
	}
	waitInflight := func(n int32) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); se.inflight.Load() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d commits in flight, want %d", se.inflight.Load(), n)
			}
		}
	}
	record(0)
	waitInflight(1) // held at the gate
	for i := range 7 {
		record(1 + i)
	}
	time.Sleep(50 * time.Millisecond)
	if n := se.inflight.Load(); n != 1 {
		t.Fatalf("%d commits in flight with 7 events gathered (a partial batch waits)", n)
	}
	record(8) // the batch is full: the second writer takes it
	waitInflight(2)
	for i := range 100 {
		record(9 + i)
	}
	time.Sleep(50 * time.Millisecond)
	close(se.gate)
	wg.Wait()
	if m := se.maxInflight.Load(); m != 2 {
		t.Errorf("max commits in flight %d, want 2 (Writers)", m)
	}
	if r.Written() != 109 || r.Batches() != 3 {
		t.Errorf("written %d in %d commits, want 109 in 3 (1, 8, then the 100 that gathered)", r.Written(), r.Batches())
	}
}

func TestRecorderFailsClosedWhenFull(t *testing.T) {
	_, tr := openTrail(t, nil)
	r := NewRecorder(tr, Options{QueueSize: 2}) // never Run: the queue fills
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Record(ctx, readEvent(i)); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
				t.Errorf("Record whose context ended = %v", err)
			}
		}()
	}
	for gathering(r) < 2 {
		time.Sleep(time.Millisecond)
	}
	if err := r.Record(ctx, readEvent(3)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("third event into a queue of two = %v", err)
	}
	cancel() // the two waiting give up with their context
	wg.Wait()
}

func TestRecorderFailsClosedWhenTheStoreFails(t *testing.T) {
	se := newSlowEngine(t, 0)
	st, tr := openTrail(t, se)
	r := NewRecorder(tr, Options{})
	run(t, r)
	ctx := context.Background()
	se.broken.Store(true)
	if err := r.Record(ctx, readEvent(1)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Record while the store fails = %v", err)
	}
	if r.Healthy() == nil {
		t.Fatal("healthy while the store fails")
	}
	se.broken.Store(false)
	if err := r.Record(ctx, readEvent(2)); err != nil {
		t.Fatalf("Record after the store recovered = %v", err)
	}
	if r.Healthy() != nil || r.Written() != 1 {
		t.Fatalf("after recovery: healthy %v, written %d", r.Healthy(), r.Written())
	}
	// The refused request's event was not kept: its answer was a 503,
	// and nothing it did was served.
	if n := count(t, st, "patient=Patient/p1"); n != 0 {
		t.Fatalf("the refused request's event exists (%d)", n)
	}
}

// TestRecorderShutdown: Close while requests are recording: every Record
// returns (nil: its event is stored; an error: refused), Close returns,
// nothing hangs; cancelling Run's context does the same.
func TestRecorderShutdown(t *testing.T) {
	for _, how := range []string{"close", "cancel"} {
		t.Run(how, func(t *testing.T) {
			se := newSlowEngine(t, 2*time.Millisecond)
			st, tr := openTrail(t, se)
			r := NewRecorder(tr, Options{Writers: 2, BatchSize: 16})
			runCtx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go r.Run(runCtx)
			var ok, refused atomic.Int64
			var wg sync.WaitGroup
			for c := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						e := readEvent(i)
						e.Patients = []string{fmt.Sprintf("Patient/c%d", c)}
						err := r.Record(context.Background(), e)
						if err != nil {
							if !errors.Is(err, ErrUnavailable) {
								t.Errorf("Record = %v", err)
							}
							refused.Add(1)
							return
						}
						ok.Add(1)
					}
				}()
			}
			time.Sleep(50 * time.Millisecond)
			ctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer ccancel()
			if how == "close" {
				if err := r.Close(ctx); err != nil {
					t.Fatalf("Close: %v", err)
				}
			} else {
				cancel()
			}
			finished := make(chan struct{})
			go func() { wg.Wait(); close(finished) }()
			select {
			case <-finished:
			case <-time.After(10 * time.Second):
				t.Fatal("Record calls still waiting after shutdown")
			}
			if err := r.Close(ctx); err != nil {
				t.Fatalf("Close after shutdown: %v", err)
			}
			if refused.Load() != 64 || ok.Load() == 0 {
				t.Fatalf("%d recorded, %d refused", ok.Load(), refused.Load())
			}
			if n := int64(count(t, st, "")); n < ok.Load() {
				t.Fatalf("%d events stored, %d Records returned nil", n, ok.Load())
			}
		})
	}
}

// TestEventNamesEveryPatient (finding 9): a request that touched 250
// patients' reports is recorded as events naming every one of them, each
// event at most 200 entities, all written in one commit.
func TestEventNamesEveryPatient(t *testing.T) {
	st, tr := openTrail(t, nil)
	r := NewRecorder(tr, Options{})
	run(t, r)
	const patients = 250
	e := Event{Principal: doctor, Interaction: "search-type", Outcome: Success, Reason: "break-glass",
		BreakGlass: "mass casualty", Query: "DiagnosticReport?code=1234"}
	for i := range patients {
		e.Patients = append(e.Patients, fmt.Sprintf("Patient/bg%d", i))
		e.Entities = append(e.Entities, fmt.Sprintf("DiagnosticReport/r%d/_history/1", i))
	}
	parts := e.Parts()
	if len(parts) != 3 {
		t.Fatalf("%d parts for 250 patients and 250 reports (200 named), want 3", len(parts))
	}
	named := map[string]bool{}
	resources := 0
	for i, p := range parts {
		ents := p.entityList()
		if len(ents) > maxEntities || len(p.Patients)+len(p.Entities) != len(ents) {
			t.Fatalf("part %d names %d entities (%d patients, %d resources)", i, len(ents), len(p.Patients), len(p.Entities))
		}
		if want := fmt.Sprintf("break-glass [part %d of 3]", i+1); p.Reason != want || p.Query != e.Query || p.BreakGlass != e.BreakGlass {
			t.Fatalf("part %d: reason %q (want %q), query %q, break-glass %q", i, p.Reason, want, p.Query, p.BreakGlass)
		}
		for _, p := range p.Patients {
			named[p] = true
		}
		resources += len(p.Entities)
	}
	if len(named) != patients || resources != maxResources {
		t.Fatalf("%d patients and %d resources named", len(named), resources)
	}

	if err := r.Record(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if r.Written() != 3 || r.Batches() != 1 {
		t.Fatalf("written %d in %d commits, want 3 in 1", r.Written(), r.Batches())
	}
	for i := range patients {
		if n := count(t, st, fmt.Sprintf("patient=Patient/bg%d", i)); n != 1 {
			t.Fatalf("AuditEvent?patient=Patient/bg%d: %d events", i, n)
		}
	}
	if n := count(t, st, "type=http://dicom.nema.org/resources/ontology/DCM|110113"); n != 3 {
		t.Fatalf("%d break-glass alerts, want 3 (every part)", n)
	}
}

// TestEventsAreBounded (finding 14): a 5 MB query, long reasons and
// references are cut so that an event stays small, with a marker saying
// how long the text was; the event is still a valid AuditEvent.
func TestEventsAreBounded(t *testing.T) {
	st, tr := openTrail(t, nil)
	r := NewRecorder(tr, Options{})
	run(t, r)
	query := "Patient?" + strings.Repeat("name:contains=é&", 5<<20/17)
	e := Event{Principal: doctor, Interaction: "search-type", Outcome: MinorFailure,
		Reason: strings.Repeat("why ", 10_000), BreakGlass: strings.Repeat("ER ", 10_000), Query: query,
		Source: strings.Repeat("1", 1000), Patients: []string{"Patient/p1", "Patient/" + strings.Repeat("x", 10_000)}}
	if err := r.Record(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if n := count(t, st, "patient=Patient/p1"); n != 1 {
		t.Fatalf("%d events", n)
	}
	body := allEvents(t, st)[0].Body
	if len(body) > 16<<10 {
		t.Fatalf("the event is %d bytes", len(body))
	}
	if _, err := fhir.Parse(body); err != nil {
		t.Fatalf("not a valid AuditEvent: %v", err)
	}
	var ae struct {
		Entity []struct {
			Query string `json:"query"`
		} `json:"entity"`
		OutcomeDesc    string `json:"outcomeDesc"`
		PurposeOfEvent []struct {
			Text string `json:"text"`
		} `json:"purposeOfEvent"`
	}
	if err := json.Unmarshal(body, &ae); err != nil {
		t.Fatal(err)
	}
	if len(ae.Entity) != 2 {
		t.Fatalf("%d entities: the 10 KB reference is not a record and is left out, the query is kept", len(ae.Entity))
	}
	q, _ := base64.StdEncoding.DecodeString(ae.Entity[1].Query)
	marker := fmt.Sprintf("…[truncated: %d bytes]", len(query))
	if len(q) > MaxQuery || !strings.HasSuffix(string(q), marker) || !strings.HasPrefix(query, strings.TrimSuffix(string(q), marker)) {
		t.Fatalf("stored query: %d bytes, ends %q", len(q), q[max(len(q)-60, 0):])
	}
	if len(ae.OutcomeDesc) > MaxText || !strings.HasSuffix(ae.OutcomeDesc, "…[truncated: 40000 bytes]") {
		t.Fatalf("reason: %d bytes, ends %q", len(ae.OutcomeDesc), ae.OutcomeDesc[max(len(ae.OutcomeDesc)-40, 0):])
	}
	if len(ae.PurposeOfEvent) != 1 || len(ae.PurposeOfEvent[0].Text) > MaxText {
		t.Fatalf("break-glass reason not bounded: %+v", ae.PurposeOfEvent)
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		s     string
		limit int
		want  string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{strings.Repeat("a", 40), 30, "aaaaaa…[truncated: 40 bytes]"},
		{strings.Repeat("é", 20), 30, "ééé…[truncated: 40 bytes]"}, // never cuts a character
		{strings.Repeat("é", 20), 31, "ééé…[truncated: 40 bytes]"},
		{strings.Repeat("a", 40), 5, "…[truncated: 40 bytes]"},
	} {
		if got := Truncate(tc.s, tc.limit); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.s, tc.limit, got, tc.want)
		}
	}
}

// TestRecordAllocations bounds what recording costs per event, in the
// request (Record: no allocation once warm) and in the writer (the trail's
// commit of a batch, per event).
func TestRecordAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	_, tr := openTrail(t, nil)
	r := NewRecorder(tr, Options{})
	run(t, r)
	ctx := context.Background()
	e := readEvent(1)
	// The whole path, one request at a time: Record, its commit (one
	// event), the store's synced Apply.
	whole := testing.AllocsPerRun(200, func() {
		if err := r.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	})
	// The trail's commit per event, in batches of 64.
	batch := make([]Event, 64)
	for i := range batch {
		batch[i] = readEvent(i)
	}
	perBatch := testing.AllocsPerRun(20, func() {
		if err := tr.write(ctx, batch, false); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations: %.0f per lone Record (commit included), %.1f per event in a commit of 64", whole, perBatch/64)
	if whole > 30 {
		t.Errorf("a lone Record allocates %.0f times, budget 30", whole)
	}
	if perBatch/64 > 6 {
		t.Errorf("a commit allocates %.1f times per event, budget 6", perBatch/64)
	}
}

// BenchmarkRecord: events per second from many concurrent requests, each
// waiting for its synced commit.
func BenchmarkRecord(b *testing.B) {
	for _, w := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("writers=%d", w), func(b *testing.B) {
			db, err := pebble.New(context.Background(), pebble.Config{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			_, tr := openTrail(b, db)
			r := NewRecorder(tr, Options{Writers: w})
			run(b, r)
			ctx := context.Background()
			e := readEvent(1)
			b.SetParallelism(64)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := r.Record(ctx, e); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(r.Written())/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(r.Written())/float64(max(r.Batches(), 1)), "events/commit")
		})
	}
}
