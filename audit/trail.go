package audit

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/store"
)

// Trail is the audit trail: a store.Journal of AuditEvents, which the
// store keeps, finds and pages (a compact layout of a few keys per event,
// correct with several replicas appending at once); the trail says what
// an event holds, how it is indexed and rendered. It serves the store as
// the AuditEvent type (a store.Virtual).
//
// An event's id is "ae-", 16 hex digits of its time (µs), then 16 of the
// writer (the replica's trail) that wrote it; its AuditEvent is rendered
// from its record on read (JSON), exactly the bytes whose hash its log
// leaf holds.
type Trail struct {
	*store.Journal
}

const idPrefix = "ae-"

// Index families of the trail, and the search parameters they serve. A
// patient search reads the entity family: the events naming a Patient are
// the events with that Patient as an entity, so a key of their own would
// repeat those keys. (Trails written before kept them, under 'p'; they
// are not read.)
const (
	famAgent  = 'a'
	famEntity = 'e'
)

var trailConfig = store.JournalConfig{
	Name: "audit", Type: "AuditEvent", Author: Author, IDPrefix: idPrefix,
	Decode: func(rec []byte) (store.JournalRecord, error) {
		e, err := decodeRecord(rec)
		if err != nil {
			return nil, err
		}
		return &e, nil
	},
	Compartments: func(id string, idx []store.IndexValue) []string { return search.Members("AuditEvent", id, idx) },
	Families:     map[string]byte{"patient": famEntity, "agent": famAgent, "entity": famEntity},
	Targets:      map[string]string{"patient": "Patient"},
}

// OpenTrail opens the trail kept in e, as a new writer.
func OpenTrail(ctx context.Context, e store.Engine) (*Trail, error) {
	j, err := store.OpenJournal(ctx, e, trailConfig)
	if err != nil {
		return nil, err
	}
	return &Trail{j}, nil
}

// write stores events in one durable commit, each with its log leaf
// unless noLog. It is never retried (store.Journal.Append).
func (t *Trail) write(ctx context.Context, events []Event, noLog bool) error {
	es, done := newEntries(events, noLog)
	defer done()
	return t.Append(ctx, es)
}

// addTo adds events to b (Recorder.Ride).
func (t *Trail) addTo(b *store.Batch, events []Event, noLog bool) error {
	es, done := newEntries(events, noLog)
	defer done()
	return t.AddTo(b, es)
}

// newEntries returns events as journal entries, with a buffer from
// jsonBufs unless noLog; done returns it once the batch is built.
func newEntries(events []Event, noLog bool) (*entries, func()) {
	es := &entries{events: events, noLog: noLog}
	if noLog {
		return es, func() {}
	}
	bp := jsonBufs.Get().(*[]byte)
	es.buf = (*bp)[:0]
	return es, func() { *bp = es.buf[:0]; jsonBufs.Put(bp) }
}

// jsonBufs holds the buffers events' JSON is written into to be hashed:
// a search's event (its query, its entities) outgrows any fixed size, and
// a buffer per commit was a tenth of the gateway's allocations under a
// search load. Nothing keeps the bytes: the leaf is a copy.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// entries are events to append.
type entries struct {
	events []Event
	noLog  bool
	buf    []byte // an event's JSON, only to be hashed into its leaf
}

func (es *entries) Len() int { return len(es.events) }

// Checks implements store.JournalChecked: the events' checks, one after
// another.
func (es *entries) Checks() []store.Cond {
	var cs []store.Cond
	for i := range es.events {
		cs = append(cs, es.events[i].Checks...)
	}
	return cs
}

// Stale implements store.JournalChecked: it marks the events whose
// checks failed.
func (es *entries) Stale(idx []int) {
	k, start := 0, 0 // idx[k] the next failed check; start event i's first
	for i := range es.events {
		n := len(es.events[i].Checks)
		for k < len(idx) && idx[k] < start+n {
			if p := es.events[i].Stale; p != nil {
				*p = true
			}
			k++
		}
		start += n
	}
}

func (es *entries) Entry(i int, id string, at time.Time, rec []byte, ref func(fam byte, ref string)) ([]byte, []byte) {
	e := &es.events[i]
	if e.Assigned != nil {
		*e.Assigned = id
	}
	rec = appendRecord(rec, e)
	ents := e.entityList()
	if p := e.Principal; p != nil && byReference(p) {
		ref(famAgent, p.Resource)
	}
	for _, en := range ents {
		ref(famEntity, unversioned(en.ref))
	}
	if es.noLog {
		return rec, nil
	}
	es.buf = e.appendJSON(es.buf[:0], id, at, ents)
	return rec, anchor.NewLeaf("AuditEvent", id, 1, es.buf).Data()
}

// unversioned drops "/_history/<vid>" from a reference: references index
// without their version.
func unversioned(ref string) string {
	r, _, _ := strings.Cut(ref, "/_history/")
	return r
}
