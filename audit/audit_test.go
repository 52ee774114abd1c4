package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// openTrail returns a store on a real Pebble engine whose AuditEvents are
// the trail's, as the gateway wires them.
func openTrail(t testing.TB, e store.Engine) (*store.Store, *Trail) {
	t.Helper()
	if e == nil {
		db, err := pebble.New(context.Background(), pebble.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		e = db
	}
	tr, err := OpenTrail(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(e, store.Options{Virtual: map[string]store.Virtual{"AuditEvent": tr}})
	t.Cleanup(func() { s.Close() })
	return s, tr
}

var doctor = &policy.Principal{Subject: "Practitioner/doc", Role: policy.RolePractitioner, Resource: "Practitioner/doc",
	Wallet: "eip155:1337:0x70997970C51812dc3A010C7d01b50e0d17dc79C8", ClientID: "portal"}

// TestEventsAreValidAuditEvents checks the direct rendering against the
// general path: each event is a valid R4 AuditEvent, its bytes are
// canonical, its index values are what search.Extract finds, and it lands
// in the compartments of the patients it concerns.
func TestEventsAreValidAuditEvents(t *testing.T) {
	patient := &policy.Principal{Subject: "did:pkh:eip155:1337:0xabc", Role: policy.RolePatient, Resource: "Patient/p9",
		Wallet: "eip155:1337:0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", ClientID: "portal"}
	system := &policy.Principal{Subject: "client/ehr", Role: policy.RoleSystem, ClientID: "client/ehr"}
	at := time.Date(2026, 11, 21, 10, 15, 22, 117339_123, time.UTC)
	events := []Event{
		{Principal: doctor, Interaction: "read", Outcome: Success, Reason: "granted by Patient/p1",
			Entities: []string{"DiagnosticReport/r1/_history/2"}, Patients: []string{"Patient/p1"}, Source: "127.0.0.1"},
		{Principal: doctor, Interaction: "read", Outcome: Success, BreakGlass: "patient unconscious \"ER\"\n",
			Entities: []string{"DiagnosticReport/r2"}, Patients: []string{"Patient/p2"}},
		{Principal: system, Interaction: "search-type", Outcome: Success, Query: "DiagnosticReport?subject=Patient/p1&code=1234",
			Entities: []string{"DiagnosticReport/r1/_history/1", "Patient/p1/_history/3"}, Patients: []string{"Patient/p1", "Patient/p3"}},
		{Principal: doctor, Interaction: "update", Outcome: MinorFailure, Reason: "no live consent"},
		{Principal: patient, Interaction: "read", Outcome: MinorFailure, Reason: "patients reach their own records only",
			Entities: []string{"Observation/o1"}, Patients: []string{"Patient/p1", "Patient/p1"}, Source: "::1"},
		{Principal: system, Interaction: "", Outcome: SeriousFailure, Reason: "ünïcode <&> \u2028"},
		{Principal: nil, Interaction: "transaction", Outcome: Success, Query: "x"},
	}
	for i, e := range events {
		body := e.JSON("01a1fd9a-7b05-762c-a992-ce9a00a49eb7", at)
		r, err := fhir.Parse(body)
		if err != nil {
			t.Fatalf("event %d is not a valid AuditEvent: %v\n%s", i, err, body)
		}
		if c := fhirjson.Canonical(&r.Root); !bytes.Equal(c, body) {
			t.Fatalf("event %d is not canonical:\n got %s\nwant %s", i, body, c)
		}
		want, err := search.Extract("AuditEvent", &r.Root)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Index(at); !sameIndex(got, want) {
			t.Fatalf("event %d index values differ from search.Extract:\n got %+v\nwant %+v", i, got, want)
		}
		members := search.Members("AuditEvent", "x", want)
		for _, p := range e.Patients {
			if !slices.Contains(members, p) {
				t.Errorf("event %d is not in %s's compartment: %v", i, p, members)
			}
		}
		if e.Principal == patient && slices.Contains(members, patient.Resource) {
			t.Errorf("event %d puts a patient's attempt in their own compartment", i)
		}
	}
	if s := string(events[1].JSON("x", at)); !strings.Contains(s, "110113") || !strings.Contains(s, `"BTG"`) {
		t.Errorf("break-glass event is not a security alert: %s", s)
	}
}

// sameIndex compares index values as sets (the store writes each key
// once).
func sameIndex(a, b []store.IndexValue) bool {
	set := func(vs []store.IndexValue) map[string]bool {
		m := map[string]bool{}
		for _, v := range vs {
			m[fmt.Sprintf("%+v", v)] = true
		}
		return m
	}
	return maps.Equal(set(a), set(b))
}

func TestRecorderWritesSearchableEvents(t *testing.T) {
	st, tr := openTrail(t, nil)
	r := NewRecorder(tr, Options{BatchSize: 7})
	ctx := context.Background()
	go r.Run(ctx)
	for i := 0; i < 50; i++ {
		p := fmt.Sprintf("Patient/p%d", i%5)
		if err := r.Record(Event{Time: time.Now(), Principal: doctor, Interaction: "read", Outcome: Success,
			Entities: []string{"DiagnosticReport/r" + fmt.Sprint(i)}, Patients: []string{p}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if r.Written() != 50 {
		t.Fatalf("written %d", r.Written())
	}
	q, err := search.ParseQuery("AuditEvent", url.Values{"patient": {"Patient/p3"}}, search.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sq := q.Store
	sq.Count, sq.Total = 100, true
	page, err := st.Search(ctx, &sq)
	if err != nil || page.Total != 10 {
		t.Fatalf("AuditEvent?patient=Patient/p3: %d (%v)", page.Total, err)
	}
	v, _ := st.Read(ctx, "AuditEvent", page.IDs[0])
	if v.Author != Author || !strings.Contains(fmt.Sprint(v.Compartments), "Patient/p3") {
		t.Fatalf("stored event %+v", v)
	}
	if n, _ := st.LogSize(ctx); n != 50 {
		t.Fatalf("log size %d: every event is a leaf", n)
	}
	if err := r.Record(Event{Time: time.Now(), Principal: doctor}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Record after Close = %v", err)
	}
}

func TestRecorderFailsClosedWhenFull(t *testing.T) {
	_, tr := openTrail(t, nil)
	r := NewRecorder(tr, Options{QueueSize: 2})
	for i := 0; i < 2; i++ {
		if err := r.Record(Event{Time: time.Now(), Principal: doctor}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Record(Event{Time: time.Now(), Principal: doctor}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("third event into a queue of two = %v", err)
	}
}

// failingEngine fails commits while broken is set.
type failingEngine struct {
	store.Engine
	broken atomic.Bool
}

func (f *failingEngine) Apply(ctx context.Context, b *store.Batch) error {
	if f.broken.Load() {
		return errors.New("disk full")
	}
	return f.Engine.Apply(ctx, b)
}

func TestRecorderFailsClosedWhenTheStoreFails(t *testing.T) {
	db, err := pebble.New(context.Background(), pebble.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	fe := &failingEngine{Engine: db}
	_, tr := openTrail(t, fe)
	r := NewRecorder(tr, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	fe.broken.Store(true)
	if err := r.Record(Event{Time: time.Now(), Principal: doctor, Interaction: "read"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.Healthy() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.Record(Event{Time: time.Now(), Principal: doctor}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Record while the store fails = %v", err)
	}
	fe.broken.Store(false)
	for r.Healthy() != nil && time.Now().Before(deadline.Add(5*time.Second)) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.Healthy() != nil || r.Written() != 1 {
		t.Fatalf("after recovery: healthy %v, written %d (the accepted event must not be lost)", r.Healthy(), r.Written())
	}
}

func BenchmarkRecord(b *testing.B) {
	for _, w := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("writers=%d", w), func(b *testing.B) { benchmarkRecord(b, w) })
	}
}

func benchmarkRecord(b *testing.B, writers int) {
	db, _ := pebble.New(context.Background(), pebble.Config{Dir: b.TempDir()})
	_, tr := openTrail(b, db)
	r := NewRecorder(tr, Options{Writers: writers})
	ctx := context.Background()
	go r.Run(ctx)
	e := Event{Time: time.Now(), Principal: doctor, Interaction: "read", Outcome: Success,
		Entities: []string{"DiagnosticReport/r1/_history/2"}, Patients: []string{"Patient/p1"}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for r.Record(e) != nil {
			time.Sleep(time.Microsecond) // queue full: wait for the writer
		}
	}
	r.Close(ctx)
	b.ReportMetric(float64(r.Written())/b.Elapsed().Seconds(), "events/s")
}

func TestIDRoundTrip(t *testing.T) {
	for _, ts := range []int64{0, 1, 0xabcdef, 1_763_700_000_000_000, 1 << 62} {
		id := ID(ts)
		if want := idPrefix + fmt.Sprintf("%016x", uint64(ts)); id != want {
			t.Fatalf("ID(%d) = %s, want %s", ts, id, want)
		}
		if got, ok := parseID(id); !ok || got != ts {
			t.Fatalf("parseID(%s) = %d, %v", id, got, ok)
		}
	}
}

// TestRecorderLingers: events arriving a few milliseconds apart share a
// commit when the writer lingers, and each get their own when it does
// not; either way every one is written.
func TestRecorderLingers(t *testing.T) {
	tests := []struct {
		name       string
		linger     time.Duration
		minBatches int64
		maxBatches int64
	}{
		{"lingers", 500 * time.Millisecond, 1, 1},
		{"at once", -1, 15, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, tr := openTrail(t, nil)
			r := NewRecorder(tr, Options{Writers: 1, Linger: tc.linger})
			ctx := context.Background()
			go r.Run(ctx)
			for i := range 20 {
				if err := r.Record(Event{Time: time.Now(), Principal: doctor, Interaction: "read", Outcome: Success,
					Entities: []string{"DiagnosticReport/r" + fmt.Sprint(i)}}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			deadline := time.Now().Add(5 * time.Second)
			for r.Written() < 20 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if err := r.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if r.Written() != 20 {
				t.Fatalf("written %d of 20", r.Written())
			}
			if b := r.Batches(); b < tc.minBatches || b > tc.maxBatches {
				t.Errorf("%d commits for 20 events 5 ms apart, want %d..%d", b, tc.minBatches, tc.maxBatches)
			}
		})
	}
}
