package audit

import (
	"context"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/store"
)

// Repository is the audit record repository (IHE ATNA / BALP "record
// audit event"): the AuditEvents that clients (an EHR's own audit
// sources) post, kept as they posted them.
//
// It is a journal of its own (keyspace "audit-recorded", ids "ar-..."),
// apart from the trail (ids "ae-..."): the trail is exactly what the
// gateway observed, each event rendered from the record the gateway wrote;
// a client's event is a claim by that client, kept as its canonical JSON
// with the client as author. Neither can pass for the other: the id names
// the journal, the trail's journal has no writer but the gateway's
// recorder, and an event naming the gateway as its observer is refused
// (GatewayClaim). A journal, not the general versioned layout: events
// never change (one version, no current pointer to move), and the store
// serves both journals as the one AuditEvent type (store.Journals),
// searched and paged together.
type Repository struct {
	*store.Journal
}

// RecordedPrefix starts the ids of recorded events.
const RecordedPrefix = "ar-"

// The tag every recorded event carries in meta.tag, so that a search can
// tell the events clients recorded (_tag=urn:fhirgate:audit|recorded)
// from the gateway's own, which carry no tag.
const (
	OriginSystem   = "urn:fhirgate:audit"
	OriginRecorded = "recorded"
)

// Index families of the repository: each reference parameter that drives
// searches has its own, as a patient may be an agent or an entity.
const (
	famRecAgent   = 'a'
	famRecEntity  = 'e'
	famRecPatient = 'p'
)

var recordedFamilies = map[string]byte{"agent": famRecAgent, "entity": famRecEntity, "patient": famRecPatient}

var repositoryConfig = store.JournalConfig{
	Name: "audit-recorded", Type: "AuditEvent", Author: Author, IDPrefix: RecordedPrefix,
	Decode: func(rec []byte) (store.JournalRecord, error) { return decodeRecorded(rec) },
	Compartments: func(id string, idx []store.IndexValue) []string {
		return search.Members("AuditEvent", id, idx)
	},
	Families: recordedFamilies,
	Targets:  map[string]string{"patient": "Patient"},
	// An event's date is its recorded element (when the client saw it
	// happen), not when it was posted here.
	OwnDates: true,
}

// OpenRepository opens the repository kept in e, as a new writer.
func OpenRepository(ctx context.Context, e store.Engine) (*Repository, error) {
	j, err := store.OpenJournal(ctx, e, repositoryConfig)
	if err != nil {
		return nil, err
	}
	return &Repository{j}, nil
}

// Journals serves the trail and the repository as the one AuditEvent
// type of the store (Options.Virtual).
func Journals(t *Trail, r *Repository) store.Journals {
	if r == nil {
		return store.Journals{t.Journal}
	}
	return store.Journals{t.Journal, r.Journal}
}

// Pending is an event ready to be recorded: checked, not yet stored.
type Pending struct {
	r *Repository
	e recordedEntry
	// Compartments are the compartments the event will be in (its
	// patients'), for the decision on recording it.
	Compartments []string
}

// Prepare readies res, an AuditEvent a client posted and the parser
// validated, to be recorded: meta.tag gains the recorded tag, and its
// index values are computed. The id, meta.versionId and meta.lastUpdated
// will be the repository's; the rest is kept as posted. Prepare does not
// judge the event (GatewayClaim does).
func (r *Repository) Prepare(res *fhir.Resource) (*Pending, error) {
	tagRecorded(&res.Root)
	meta := res.Root.Get("meta")
	meta.Delete("versionId")
	meta.Delete("lastUpdated")
	idx, err := search.Extract("AuditEvent", &res.Root)
	if err != nil {
		return nil, err
	}
	p := &Pending{r: r, e: recordedEntry{res: res}}
	for _, iv := range idx {
		if iv.Param != "_lastUpdated" { // the entry's time (recorded.Index)
			p.e.idx = append(p.e.idx, iv)
		}
	}
	p.Compartments = repositoryConfig.Compartments("", p.e.idx)
	return p, nil
}

// Commit stores the event as posted by author, with its log leaf unless
// noLog, in one durable commit, and returns its version. It is never
// retried (store.Journal.Append).
func (p *Pending) Commit(ctx context.Context, author string, noLog bool) (store.Version, error) {
	e := &p.e
	e.author, e.noLog = author, noLog
	if err := p.r.Append(ctx, e); err != nil {
		return store.Version{}, err
	}
	rec := recorded{author: author, idx: e.idx, body: e.body}
	return store.Version{
		Type: "AuditEvent", ID: e.id, VID: 1, LastUpdated: e.at, Method: store.MethodCreate,
		Author: author, Creator: author, Body: e.body,
		Compartments: repositoryConfig.Compartments(e.id, rec.Index(e.at)),
	}, nil
}

// tagRecorded sets the recorded tag in meta.tag, replacing any tag of
// its system a client sent (an event read back and posted again).
func tagRecorded(root *fhirjson.Value) {
	meta := root.Get("meta")
	if meta == nil || meta.Kind != fhirjson.Object {
		root.Set("meta", fhirjson.Value{Kind: fhirjson.Object})
		meta = root.Get("meta")
	}
	var tags []fhirjson.Value
	if t := meta.Get("tag"); t != nil && t.Kind == fhirjson.Array {
		for _, c := range t.Items {
			if c.GetString("system") != OriginSystem {
				tags = append(tags, c)
			}
		}
	}
	tags = append(tags, fhirjson.Obj(fhirjson.KV("system", fhirjson.Str(OriginSystem)), fhirjson.KV("code", fhirjson.Str(OriginRecorded)),
		fhirjson.KV("display", fhirjson.Str("recorded by a client (audit record repository)"))))
	meta.Set("tag", fhirjson.Arr(tags...))
}

// recordedEntry is one event to append; Entry stamps it with its id and
// time, which Record then returns.
type recordedEntry struct {
	author string
	res    *fhir.Resource
	idx    []store.IndexValue
	noLog  bool
	id     string
	at     time.Time
	body   []byte
}

func (e *recordedEntry) Len() int { return 1 }

func (e *recordedEntry) Entry(_ int, id string, at time.Time, rec []byte, ref func(fam byte, ref string)) ([]byte, []byte) {
	e.id, e.at = id, at
	e.body = e.res.Stamp(id, 1, at)
	for _, iv := range e.idx {
		if fam, ok := recordedFamilies[iv.Param]; ok && iv.Kind == store.IndexReference {
			ref(fam, unversioned(iv.Ref))
		}
	}
	rec = appendRecorded(rec, e.author, e.idx, e.body)
	if e.noLog {
		return rec, nil
	}
	return rec, anchor.NewLeaf("AuditEvent", id, 1, e.body).Data()
}

// recorded is a decoded entry of the repository: its author, its index
// values (but _lastUpdated, its time) and its canonical JSON as stored.
type recorded struct {
	author string
	idx    []store.IndexValue
	body   []byte
}

func (r *recorded) Author() string { return r.author }

// JSON is the event as stored: its id and time are already in it.
func (r *recorded) JSON(string, time.Time) []byte { return r.body }

// Index returns the index values, with the entry's time as _lastUpdated.
func (r *recorded) Index(at time.Time) []store.IndexValue {
	us := at.UTC().Truncate(time.Microsecond).UnixMicro()
	out := make([]store.IndexValue, 0, len(r.idx)+1)
	out = append(out, r.idx...)
	return append(out, store.IndexValue{Param: "_lastUpdated", Kind: store.IndexDate, Lo: us, Hi: us})
}

// A recorded entry's record: a format byte, the author, the number of
// index values and each (param, kind, text, system, code, ref, lo, hi,
// num), then the body to the end.
const recordedV1 = 1

func appendRecorded(b []byte, author string, idx []store.IndexValue, body []byte) []byte {
	b = append(b, recordedV1)
	b = appendStr(b, author)
	b = binary.AppendUvarint(b, uint64(len(idx)))
	for i := range idx {
		iv := &idx[i]
		b = appendStr(b, iv.Param)
		b = append(b, byte(iv.Kind))
		for _, s := range []string{iv.Text, iv.System, iv.Code, iv.Ref} {
			b = appendStr(b, s)
		}
		b = binary.AppendVarint(b, iv.Lo)
		b = binary.AppendVarint(b, iv.Hi)
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(iv.Num))
	}
	return append(b, body...)
}

func decodeRecorded(b []byte) (*recorded, error) {
	if len(b) == 0 || b[0] != recordedV1 {
		return nil, errCorruptRecord
	}
	r := &reader{b: b[1:]}
	out := &recorded{author: r.str()}
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return nil, errCorruptRecord
	}
	out.idx = make([]store.IndexValue, 0, n)
	for range n {
		var iv store.IndexValue
		iv.Param = r.str()
		if len(r.b) == 0 {
			return nil, errCorruptRecord
		}
		iv.Kind = store.IndexKind(r.b[0])
		r.b = r.b[1:]
		iv.Text, iv.System, iv.Code, iv.Ref = r.str(), r.str(), r.str(), r.str()
		iv.Lo, iv.Hi = r.varint(), r.varint()
		if len(r.b) < 8 {
			return nil, errCorruptRecord
		}
		iv.Num = math.Float64frombits(binary.BigEndian.Uint64(r.b))
		r.b = r.b[8:]
		if r.err {
			return nil, errCorruptRecord
		}
		out.idx = append(out.idx, iv)
	}
	if r.err || len(r.b) == 0 {
		return nil, errCorruptRecord
	}
	out.body = r.b
	return out, nil
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// GatewayClaim returns the FHIRPath of the element by which an AuditEvent
// posted by a client claims to come from the gateway: a source.observer
// or an agent's who naming it (by display, identifier or reference, as
// the trail's events name it), or "" when none does. The gateway's trail
// holds what the gateway observed; a client's event says it observed
// something itself.
func GatewayClaim(root *fhirjson.Value) string {
	if namesGateway(root.Get("source").Get("observer")) {
		return "AuditEvent.source.observer"
	}
	if agents := root.Get("agent"); agents != nil && agents.Kind == fhirjson.Array {
		for i := range agents.Items {
			if namesGateway(agents.Items[i].Get("who")) {
				return "AuditEvent.agent[" + strconv.Itoa(i) + "].who"
			}
		}
	}
	return ""
}

// namesGateway reports whether a Reference names the gateway.
func namesGateway(ref *fhirjson.Value) bool {
	if ref == nil || ref.Kind != fhirjson.Object {
		return false
	}
	is := func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), Author) }
	id := ref.Get("identifier")
	r := ref.GetString("reference")
	return is(ref.GetString("display")) || is(id.GetString("value")) || is(r[strings.LastIndexByte(r, '/')+1:])
}
