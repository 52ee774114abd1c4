package audit

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/store"
)

// Trail keeps the audit trail in the store's engine, in its own compact
// layout, and serves it to the store as the AuditEvent type (a
// store.Virtual): every audited interaction writes an event, so an event
// must cost a few keys, not the few dozen of a general resource.
//
// Several trails (one per gateway replica, or per process start) may write
// into one engine at once. Each gives its events positions (t, w): t is
// its clock in µs, which never repeats or goes back within the trail, and
// w its writer id, 64 random bits drawn at open (never 0), so that no two
// trails give out the same position without coordinating; times may
// repeat across writers, and the trail's order is (t, w). Every key
// below ends in a position, so no writer overwrites another's.
//
// Layout, under store.ExtensionPrefix("audit"), numbers big-endian:
//
//	'S' t w            -> segment of the events of one commit, from (t, w)
//	'L' t w            -> log index of the first event of segment (t, w)
//	'a' ref 0x00 t w   -> i (the event at (t, w), the i-th of its segment,
//	                         has requesting agent ref; one byte)
//	'e' ref 0x00 t w   -> i (it names entity ref, without version)
//	'p' ref 0x00 t     -> (legacy) it concerns patient ref; not read
//
// (Legacy index keys, without w, have empty values.)
//
// A segment's events have consecutive times t, t+1, ... (at most
// maxSegment of them), so a segment spans at most maxSpan µs: the segment
// holding (t, w) is writer w's one starting in [t-maxSpan, t], and a time
// scan merges the few segments that overlap. Trails written before writer
// ids (w = 0, keys without w) came from one process: their segments never
// overlap and precede every segment with a writer id.
//
// An event's id is "ae-", 16 hex digits of t, then 16 of w ("ae-" and t
// alone when w is 0), so ids sort as positions do. Its AuditEvent is
// rendered from the segment record on read (JSON), exactly the bytes
// whose hash its log leaf holds.
type Trail struct {
	e     store.Engine
	now   func() time.Time
	w     uint64 // this trail's writer id
	mu    sync.Mutex
	last  int64 // time of the last event given out
	cache segmentCache
}

const (
	// maxSegment bounds the events of one segment, so that reading one
	// event decodes little.
	maxSegment = 128
	// maxSpan bounds t(last) - t(first) of a segment with a writer id.
	maxSpan  = maxSegment - 1
	idPrefix = "ae-"
	// maxConsidered bounds the events one search may look at.
	maxConsidered = 2_000_000
)

var (
	trailPrefix = store.ExtensionPrefix("audit")
	segPrefix   = append(slices.Clip(trailPrefix), 'S')
	leafPrefix  = append(slices.Clip(trailPrefix), 'L')
)

// Index families of the trail, and the search parameters they serve. A
// patient search reads the entity family: the events naming a Patient are
// the events with that Patient as an entity, so a key of their own would
// repeat those keys. (Trails written before kept them, under 'p'; they
// are not read.)
const (
	famAgent  = 'a'
	famEntity = 'e'
)

var families = map[string]byte{"patient": famEntity, "agent": famAgent, "entity": famEntity}

// pos is an event's place in the trail's order: its time (µs) and its
// writer (0: written before writers had ids).
type pos struct {
	t int64
	w uint64
}

func (p pos) cmp(q pos) int {
	if c := cmp.Compare(p.t, q.t); c != 0 {
		return c
	}
	return cmp.Compare(p.w, q.w)
}

// next is the position right after p, prev the one right before.
func (p pos) next() pos {
	if p.w == math.MaxUint64 {
		return pos{p.t + 1, 0}
	}
	return pos{p.t, p.w + 1}
}

func (p pos) prev() pos {
	if p.w == 0 {
		return pos{p.t - 1, math.MaxUint64}
	}
	return pos{p.t, p.w - 1}
}

func minPos(a, b pos) pos {
	if a.cmp(b) <= 0 {
		return a
	}
	return b
}

func maxPos(a, b pos) pos {
	if a.cmp(b) >= 0 {
		return a
	}
	return b
}

// appendPos appends p's key form: t, then w unless it is 0 (the keys of
// legacy events). Keys sort as positions do, and the key of (t, 0) is the
// smallest of time t.
func appendPos(b []byte, p pos) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(p.t))
	if p.w != 0 {
		b = binary.BigEndian.AppendUint64(b, p.w)
	}
	return b
}

// decodePos is the inverse of appendPos on a key's tail.
func decodePos(b []byte) (pos, bool) {
	switch len(b) {
	case 8:
		return pos{t: int64(binary.BigEndian.Uint64(b))}, true
	case 16:
		w := binary.BigEndian.Uint64(b[8:])
		return pos{int64(binary.BigEndian.Uint64(b)), w}, w != 0
	}
	return pos{}, false
}

// keyAfter is the smallest key after k (a legacy key is a prefix of the
// keys of its time with writer ids).
func keyAfter(k []byte) []byte { return append(slices.Clip(k), 0) }

// posKey is prefix followed by p's key form.
func posKey(prefix []byte, p pos) []byte { return appendPos(slices.Clip(prefix), p) }

func famPrefix(fam byte, ref string) []byte {
	k := make([]byte, 0, len(trailPrefix)+len(ref)+2+16) // room for the position
	k = append(append(k, trailPrefix...), fam)
	k = append(k, ref...)
	return append(k, 0)
}

// eventID returns the id of the event at p.
func eventID(p pos) string {
	var b [len(idPrefix) + 32]byte
	n := len(idPrefix) + 16
	copy(b[:], idPrefix)
	putHex(b[len(idPrefix):n], uint64(p.t))
	if p.w != 0 {
		putHex(b[n:], p.w)
		n += 16
	}
	return string(b[:n])
}

func putHex(b []byte, u uint64) {
	for i := len(b) - 1; i >= 0; i, u = i-1, u>>4 {
		b[i] = "0123456789abcdef"[u&0xf]
	}
}

// parseID returns the position of an event id.
func parseID(id string) (pos, bool) {
	h, ok := strings.CutPrefix(id, idPrefix)
	if !ok || (len(h) != 16 && len(h) != 32) {
		return pos{}, false
	}
	n, err := strconv.ParseUint(h[:16], 16, 64)
	if err != nil || n > 1<<62 {
		return pos{}, false
	}
	p := pos{t: int64(n)}
	if len(h) == 32 {
		if p.w, err = strconv.ParseUint(h[16:], 16, 64); err != nil || p.w == 0 {
			return pos{}, false
		}
	}
	return p, true
}

// newWriterID draws a writer id: 64 random bits, not 0.
func newWriterID() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		if w := binary.BigEndian.Uint64(b[:]); w != 0 {
			return w, nil
		}
	}
}

// OpenTrail opens the trail kept in e, as a new writer.
func OpenTrail(ctx context.Context, e store.Engine) (*Trail, error) {
	w, err := newWriterID()
	if err != nil {
		return nil, fmt.Errorf("audit: open trail: %w", err)
	}
	t := &Trail{e: e, now: time.Now, w: w}
	// Start the clock after the newest segment's start (the trail's own,
	// or another writer's): times keep following the trail's order when
	// this host's clock went back. Ids are unique whatever the clock does.
	var last *segment
	var derr error
	err = e.Scan(ctx, store.Range{Start: segPrefix, End: store.PrefixEnd(segPrefix), Reverse: true, Limit: 1}, func(k, v []byte) bool {
		last, derr = decodeSegmentKey(k, bytes.Clone(v))
		return false
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("audit: open trail: %w", err)
	}
	if last != nil {
		t.last = last.times[len(last.times)-1]
	}
	return t, nil
}

// times gives out the times of n events: t0, t0+1, ..., t0+n-1, where t0
// is now or just after the last time given out.
func (t *Trail) times(n int) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t0 := max(t.now().UnixMicro(), t.last+1)
	t.last = t0 + int64(n) - 1
	return t0
}

// write stores events in one durable commit, each with its log leaf
// unless noLog. It is never retried: a commit whose outcome is unknown
// (store.ErrUnknownOutcome) may have applied, and a second one would
// write every event twice.
func (t *Trail) write(ctx context.Context, events []Event, noLog bool) error {
	if len(events) == 0 {
		return nil
	}
	t0 := t.times(len(events))
	ts := make([]int64, len(events))
	for i := range ts {
		ts[i] = t0 + int64(i)
	}
	return t.writeAt(ctx, events, ts, noLog)
}

// writeAt writes events at times ts (increasing) as writer t.w, in
// segments of at most maxSegment events.
func (t *Trail) writeAt(ctx context.Context, events []Event, ts []int64, noLog bool) error {
	b := store.Batch{Ops: make([]store.Op, 0, 4*len(events)+2)}
	if !noLog {
		b.Appends = make([]store.Append, 0, len(events))
	}
	// The index keys of all the events, back to back in one buffer (the
	// engine copies them at Apply).
	keys := make([]byte, 0, 104*len(events))
	var buf []byte // each event's JSON, only to be hashed into its leaf
	for start := 0; start < len(events); start += maxSegment {
		end := min(start+maxSegment, len(events))
		chunk, cts := events[start:end], ts[start:end]
		first := pos{cts[0], t.w}
		b.Set(appendPos(slices.Clip(segPrefix), first), encodeSegment(chunk, cts))
		for i := range chunk {
			e := &chunk[i]
			p := pos{cts[i], t.w}
			id, at := eventID(p), time.UnixMicro(p.t).UTC()
			ents := e.entityList()
			if !noLog {
				buf = e.appendJSON(buf[:0], id, at, ents)
				a := store.Append{Data: anchor.NewLeaf("AuditEvent", id, 1, buf).Data()}
				if i == 0 {
					a.IndexKey = appendPos(slices.Clip(leafPrefix), first)
				}
				b.Appends = append(b.Appends, a)
			}
			add := func(fam byte, ref string) {
				if ref == "" || strings.ContainsRune(ref, 0) {
					return
				}
				k := len(keys)
				keys = append(append(append(append(keys, trailPrefix...), fam), ref...), 0)
				keys = appendPos(keys, p)
				b.Set(keys[k:len(keys):len(keys)], offsets[i:i+1:i+1])
			}
			if p := e.Principal; p != nil && byReference(p) {
				add(famAgent, p.Resource)
			}
			for _, en := range ents {
				add(famEntity, unversioned(en.ref))
			}
		}
	}
	return t.e.Apply(ctx, &b)
}

// offsets holds the values of index keys: an event's place in its
// segment (shared, so that writing them allocates nothing).
var offsets = func() (b [maxSegment]byte) {
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// unversioned drops "/_history/<vid>" from a reference: references index
// without their version.
func unversioned(ref string) string {
	r, _, _ := strings.Cut(ref, "/_history/")
	return r
}

// segmentCache keeps recently read segments (they never change).
type segmentCache struct {
	mu   sync.Mutex
	segs map[pos]*segment
}

const cachedSegments = 256

func (c *segmentCache) get(start pos) *segment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.segs[start]
}

func (c *segmentCache) put(s *segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.segs == nil || len(c.segs) >= cachedSegments {
		c.segs = make(map[pos]*segment, cachedSegments)
	}
	c.segs[s.first()] = s
}

// segment returns the segment stored under key k with value v (valid
// only during the engine's callback), from the cache or decoded.
func (t *Trail) segment(k, v []byte) (*segment, error) {
	start, ok := decodePos(k[len(segPrefix):])
	if !ok {
		return nil, errCorruptSegment
	}
	if seg := t.cache.get(start); seg != nil {
		return seg, nil
	}
	seg, err := decodeSegment(start, bytes.Clone(v))
	if err == nil {
		t.cache.put(seg)
	}
	return seg, err
}

// decodeSegmentKey decodes the segment stored under key k.
func decodeSegmentKey(k, v []byte) (*segment, error) {
	start, ok := decodePos(k[len(segPrefix):])
	if !ok {
		return nil, errCorruptSegment
	}
	return decodeSegment(start, v)
}

// locate returns the segment holding the event at p and its position
// there, or ErrNotFound.
func (t *Trail) locate(ctx context.Context, p pos) (*segment, int, error) {
	// Legacy (w = 0): the last segment starting at or before p, as
	// legacy segments never overlap. Otherwise writer w's segment
	// starting in [p.t-maxSpan, p]: other writers' segments may start in
	// between, and are passed over without being decoded.
	r := store.Range{Start: segPrefix, End: posKey(segPrefix, p.next()), Reverse: true, Limit: 1}
	if p.w != 0 {
		r.Start, r.Limit = posKey(segPrefix, pos{t: max(0, p.t-maxSpan)}), 0
	}
	var seg *segment
	var derr error
	err := t.e.Scan(ctx, r, func(k, v []byte) bool {
		start, ok := decodePos(k[len(segPrefix):])
		if !ok {
			derr = errCorruptSegment
			return false
		}
		if start.w != p.w {
			return p.w != 0
		}
		seg, derr = t.segment(k, v)
		return false
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, 0, err
	}
	if seg == nil {
		return nil, 0, store.ErrNotFound
	}
	i := seg.find(p.t)
	if i < 0 {
		return nil, 0, store.ErrNotFound
	}
	return seg, i, nil
}

// at returns the segment holding the event at p and its position there,
// given by an index key (-1: unknown, located).
func (t *Trail) at(ctx context.Context, p pos, i int) (*segment, int, error) {
	if i < 0 || p.w == 0 {
		return t.locate(ctx, p)
	}
	start := pos{p.t - int64(i), p.w}
	seg := t.cache.get(start)
	if seg == nil {
		v, err := t.e.Get(ctx, posKey(segPrefix, start))
		if err != nil {
			return nil, 0, err
		}
		if seg, err = decodeSegment(start, v); err != nil {
			return nil, 0, err
		}
		t.cache.put(seg)
	}
	if i >= len(seg.times) || seg.times[i] != p.t {
		return nil, 0, errCorruptSegment
	}
	return seg, i, nil
}

// found is one event of the trail with what the store needs of it.
type found struct {
	p     pos
	event Event
}

func (f *found) id() string                { return eventID(f.p) }
func (f *found) at() time.Time             { return time.UnixMicro(f.p.t).UTC() }
func (f *found) index() []store.IndexValue { return f.event.Index(f.at()) }

// version is the event as the store's one version of it; body only when
// asked (rendering costs).
func (f *found) version(idx []store.IndexValue, body bool) store.Version {
	id := f.id()
	v := store.Version{
		Type: "AuditEvent", ID: id, VID: 1, LastUpdated: f.at(), Method: store.MethodCreate,
		Author: Author, Creator: Author, Compartments: search.Members("AuditEvent", id, idx),
	}
	if body {
		v.Body = f.event.JSON(id, v.LastUpdated)
	}
	return v
}

func (t *Trail) event(ctx context.Context, id string) (*found, error) {
	p, ok := parseID(id)
	if !ok {
		return nil, store.ErrNotFound
	}
	seg, i, err := t.locate(ctx, p)
	if err != nil {
		return nil, err
	}
	e, err := seg.event(i)
	if err != nil {
		return nil, err
	}
	return &found{p: p, event: e}, nil
}

// Read returns the AuditEvent id.
func (t *Trail) Read(ctx context.Context, id string) (store.Version, error) {
	f, err := t.event(ctx, id)
	if err != nil {
		return store.Version{}, err
	}
	return f.version(f.index(), true), nil
}

// LeafIndex returns the log position of the event's leaf.
func (t *Trail) LeafIndex(ctx context.Context, id string, vid uint64) (uint64, error) {
	p, ok := parseID(id)
	if !ok || vid != 1 {
		return 0, store.ErrNotFound
	}
	seg, i, err := t.locate(ctx, p)
	if err != nil {
		return 0, err
	}
	b, err := t.e.Get(ctx, posKey(leafPrefix, seg.first()))
	if err != nil {
		return 0, err // ErrNotFound: written with the log off
	}
	if len(b) != 8 {
		return 0, errCorruptSegment
	}
	return binary.BigEndian.Uint64(b) + uint64(i), nil
}

// References returns the event's values of a reference parameter.
func (t *Trail) References(ctx context.Context, id, param string) ([]string, error) {
	f, err := t.event(ctx, id)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, iv := range f.index() {
		if iv.Param == param && iv.Kind == store.IndexReference && !slices.Contains(refs, iv.Ref) {
			refs = append(refs, iv.Ref)
		}
	}
	return refs, nil
}

// span is a range of positions, both ends inclusive.
type span struct{ lo, hi pos }

var everything = span{pos{}, pos{1<<62 - 1, math.MaxUint64}}

func (sp span) empty() bool { return sp.lo.cmp(sp.hi) > 0 }

// timeSpan is the span of the times lo..hi (µs), both inclusive.
func timeSpan(lo, hi int64) span { return span{pos{t: lo}, pos{hi, math.MaxUint64}} }

// scan calls fn with the events in sp, in the trail's order (reversed
// when desc), until fn returns false. With a driver it walks that index
// family's keys; otherwise it merges the segments.
func (t *Trail) scan(ctx context.Context, sp span, desc bool, drv *driver, fn func(*found) (bool, error)) error {
	if sp.empty() {
		return nil
	}
	if drv != nil {
		return drv.walk(ctx, t.e, sp, desc, func(p pos, at int) (bool, error) {
			seg, i, err := t.at(ctx, p, at)
			if errors.Is(err, store.ErrNotFound) {
				return true, nil // a key is written with its segment; never expected
			}
			if err != nil {
				return false, err
			}
			e, err := seg.event(i)
			if err != nil {
				return false, err
			}
			return fn(&found{p: p, event: e})
		})
	}
	// The segments that may hold events of sp start at most maxSpan
	// before it, or (legacy) with the last one starting at or before it.
	from := pos{t: max(0, sp.lo.t-maxSpan)}
	if st, ok, err := t.segmentAtOrBefore(ctx, sp.lo); err != nil {
		return err
	} else if ok && st.w == 0 {
		from = minPos(from, st)
	}
	r := store.Range{Start: posKey(segPrefix, from), End: posKey(segPrefix, sp.hi.next()), Reverse: desc, Limit: 16}
	m := &merge{desc: desc}
	// emit passes on the merged events while ready says no segment still
	// unread can hold an event before them (in scan order).
	emit := func(ready func(pos) bool) (bool, error) {
		for len(m.cs) > 0 {
			c := m.cs[0]
			p := c.pos()
			if !ready(p) {
				return true, nil
			}
			i := c.i
			m.advance()
			if p.cmp(sp.lo) < 0 || p.cmp(sp.hi) > 0 {
				// Outside sp: skip it, or stop past its end.
				if (p.cmp(sp.lo) < 0) == desc {
					return false, nil
				}
				continue
			}
			e, err := c.seg.event(i)
			if err != nil {
				return false, err
			}
			if more, err := fn(&found{p: p, event: e}); err != nil || !more {
				return false, err
			}
		}
		return true, nil
	}
	for {
		// Decode outside the engine's callback, a few segments at a time.
		var segs []*segment
		var derr error
		var last []byte
		err := t.e.Scan(ctx, r, func(k, v []byte) bool {
			var seg *segment
			if seg, derr = t.segment(k, v); derr != nil {
				return false
			}
			segs = append(segs, seg)
			return true
		})
		if err == nil {
			err = derr
		}
		if err != nil {
			return err
		}
		for _, seg := range segs {
			first := seg.first()
			var ready func(pos) bool
			switch {
			case !desc:
				// Every unread segment starts at or after this one.
				ready = func(p pos) bool { return p.cmp(first) < 0 }
			case seg.w == 0:
				// Unread segments are legacy: they end before every
				// segment read.
				ready = func(pos) bool { return true }
			default:
				// Unread segments start at or before this one, and end
				// at most maxSpan after it.
				bound := seg.start + maxSpan
				ready = func(p pos) bool { return p.t > bound }
			}
			if more, err := emit(ready); err != nil || !more {
				return err
			}
			m.push(seg, sp)
		}
		if len(segs) < r.Limit {
			break
		}
		last = posKey(segPrefix, segs[len(segs)-1].first())
		if desc {
			r.End = last
		} else {
			r.Start = keyAfter(last)
		}
	}
	_, err := emit(func(pos) bool { return true })
	return err
}

// segmentAtOrBefore returns the start of the last segment starting at or
// before p.
func (t *Trail) segmentAtOrBefore(ctx context.Context, p pos) (pos, bool, error) {
	var st pos
	var ok bool
	err := t.e.Scan(ctx, store.Range{Start: segPrefix, End: posKey(segPrefix, p.next()), Reverse: true, Limit: 1}, func(k, _ []byte) bool {
		st, ok = decodePos(k[len(segPrefix):])
		return false
	})
	return st, ok, err
}

// merge yields the events of overlapping segments in the trail's order (a
// heap of each segment's next event; few segments overlap at once).
type merge struct {
	desc bool
	cs   []*cursor
}

// cursor is a segment being merged and its next event.
type cursor struct {
	seg *segment
	i   int
}

func (c *cursor) pos() pos { return pos{c.seg.times[c.i], c.seg.w} }

// push adds seg, from its first event in sp in scan order.
func (m *merge) push(seg *segment, sp span) {
	n := len(seg.times)
	c := &cursor{seg: seg}
	if m.desc {
		// The last event at or before sp.hi.
		c.i = sort.Search(n, func(i int) bool { return pos{seg.times[i], seg.w}.cmp(sp.hi) > 0 }) - 1
		if c.i < 0 {
			return
		}
	} else {
		c.i = sort.Search(n, func(i int) bool { return pos{seg.times[i], seg.w}.cmp(sp.lo) >= 0 })
		if c.i == n {
			return
		}
	}
	m.cs = append(m.cs, c)
	m.up(len(m.cs) - 1)
}

// before reports whether cursor a's event comes before b's in scan order.
func (m *merge) before(a, b *cursor) bool {
	c := a.pos().cmp(b.pos())
	if m.desc {
		return c > 0
	}
	return c < 0
}

// advance moves the first cursor to its segment's next event.
func (m *merge) advance() {
	c := m.cs[0]
	if m.desc {
		c.i--
	} else {
		c.i++
	}
	if c.i < 0 || c.i >= len(c.seg.times) {
		last := len(m.cs) - 1
		m.cs[0] = m.cs[last]
		m.cs = m.cs[:last]
	}
	m.down(0)
}

func (m *merge) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !m.before(m.cs[i], m.cs[parent]) {
			return
		}
		m.cs[i], m.cs[parent] = m.cs[parent], m.cs[i]
		i = parent
	}
}

func (m *merge) down(i int) {
	for {
		least := i
		for _, c := range []int{2*i + 1, 2*i + 2} {
			if c < len(m.cs) && m.before(m.cs[c], m.cs[least]) {
				least = c
			}
		}
		if least == i {
			return
		}
		m.cs[i], m.cs[least] = m.cs[least], m.cs[i]
		i = least
	}
}

// driver yields a search's candidates: the events that name one of refs
// in an index family, or the events listed (_id).
type driver struct {
	fam    byte
	refs   []string
	listed []pos
}

// hit is an event a driver yields: its position, and its place in its
// segment when the index key says (-1: unknown).
type hit struct {
	p pos
	i int
}

// walk calls fn with the positions of the driver's keys in sp, in order,
// and their places in their segments (-1: unknown), until fn returns
// false. One reference streams page by page; several are merged in memory
// (bounded by maxConsidered).
func (d *driver) walk(ctx context.Context, e store.Engine, sp span, desc bool, fn func(pos, int) (bool, error)) error {
	keys := func(ref string, r store.Range, out []hit) ([]hit, []byte, error) {
		p := famPrefix(d.fam, ref)
		n := len(out)
		bad := false
		err := e.Scan(ctx, r, func(k, v []byte) bool {
			at, ok := decodePos(k[len(p):])
			if !ok || len(v) > 1 || len(v) == 1 && int(v[0]) >= maxSegment {
				bad = true
				return false
			}
			h := hit{at, -1}
			if len(v) == 1 {
				h.i = int(v[0])
			}
			out = append(out, h)
			return true
		})
		if err == nil && bad {
			err = errCorruptSegment
		}
		if err != nil || len(out) == n {
			return out, nil, err
		}
		// The engine reuses its key buffers: rebuild the last key.
		return out, posKey(p, out[len(out)-1].p), nil
	}
	sorted := func(all []hit) []hit {
		slices.SortFunc(all, func(a, b hit) int { return a.p.cmp(b.p) })
		all = slices.CompactFunc(all, func(a, b hit) bool { return a.p == b.p })
		if desc {
			slices.Reverse(all)
		}
		return all
	}
	if d.listed != nil || d.refs == nil {
		hits := make([]hit, len(d.listed))
		for i, p := range d.listed {
			hits[i] = hit{p, -1}
		}
		for _, h := range sorted(hits) {
			if h.p.cmp(sp.lo) < 0 || h.p.cmp(sp.hi) > 0 {
				continue
			}
			if more, err := fn(h.p, h.i); err != nil || !more {
				return err
			}
		}
		return nil
	}
	rangeOf := func(ref string) store.Range {
		p := famPrefix(d.fam, ref)
		return store.Range{Start: posKey(p, sp.lo), End: posKey(p, sp.hi.next()), Reverse: desc}
	}
	if len(d.refs) == 1 {
		r := rangeOf(d.refs[0])
		r.Limit = 256
		for {
			hs, last, err := keys(d.refs[0], r, nil)
			if err != nil {
				return err
			}
			for _, h := range hs {
				if more, err := fn(h.p, h.i); err != nil || !more {
					return err
				}
			}
			if len(hs) < r.Limit {
				return nil
			}
			if desc {
				r.End = last
			} else {
				r.Start = keyAfter(last)
			}
		}
	}
	var all []hit
	for _, ref := range d.refs {
		var err error
		if all, _, err = keys(ref, rangeOf(ref), all); err != nil {
			return err
		}
		if len(all) > maxConsidered {
			return store.ErrTooCostly
		}
	}
	for _, h := range sorted(all) {
		if more, err := fn(h.p, h.i); err != nil || !more {
			return err
		}
	}
	return nil
}
