package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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
// Layout, under store.ExtensionPrefix("audit"), times in µs big-endian:
//
//	'S' t              -> segment of the events of one commit, from time t
//	'L' t              -> log index of the first event of segment t
//	'p' ref 0x00 t     -> "" (the event at t concerns patient ref)
//	'a' ref 0x00 t     -> "" (its requesting agent is ref)
//	'e' ref 0x00 t     -> "" (it names entity ref, without version)
//
// Each event has a distinct time (the trail's clock never repeats or goes
// back), which is also its id: "ae-" and 16 hex digits. Its AuditEvent is
// rendered from the segment record on read (JSON), exactly the bytes whose
// hash its log leaf holds.
type Trail struct {
	e     store.Engine
	now   func() time.Time
	mu    sync.Mutex
	last  int64 // time of the last event given out
	cache segmentCache
}

const (
	// maxSegment bounds the events of one segment, so that reading one
	// event decodes little.
	maxSegment = 128
	idPrefix   = "ae-"
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

func timeKey(p []byte, t int64) []byte {
	return binary.BigEndian.AppendUint64(slices.Clip(p), uint64(t))
}

func famPrefix(fam byte, ref string) []byte {
	k := make([]byte, 0, len(trailPrefix)+len(ref)+2+8) // room for the time
	k = append(append(k, trailPrefix...), fam)
	k = append(k, ref...)
	return append(k, 0)
}

// ID returns the id of the event at time t (µs).
func ID(t int64) string {
	var b [len(idPrefix) + 16]byte
	copy(b[:], idPrefix)
	for i, u := len(b)-1, uint64(t); i >= len(idPrefix); i, u = i-1, u>>4 {
		b[i] = "0123456789abcdef"[u&0xf]
	}
	return string(b[:])
}

// parseID returns the time of an event id.
func parseID(id string) (int64, bool) {
	h, ok := strings.CutPrefix(id, idPrefix)
	if !ok || len(h) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(h, 16, 64)
	if err != nil || n > 1<<62 {
		return 0, false
	}
	return int64(n), true
}

// OpenTrail opens the trail kept in e.
func OpenTrail(ctx context.Context, e store.Engine) (*Trail, error) {
	t := &Trail{e: e, now: time.Now}
	var last *segment
	var derr error
	err := e.Scan(ctx, store.Range{Start: segPrefix, End: store.PrefixEnd(segPrefix), Reverse: true, Limit: 1}, func(k, v []byte) bool {
		last, derr = decodeSegment(int64(binary.BigEndian.Uint64(k[len(segPrefix):])), v)
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

// times gives out n event times: now, or just after the last one given.
func (t *Trail) times(n int) []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := make([]int64, n)
	for i := range ts {
		t.last = max(t.now().UnixMicro(), t.last+1)
		ts[i] = t.last
	}
	return ts
}

// write stores events in one durable commit, each with its log leaf
// unless noLog.
func (t *Trail) write(ctx context.Context, events []Event, noLog bool) error {
	if len(events) == 0 {
		return nil
	}
	ts := t.times(len(events))
	b := store.Batch{Ops: make([]store.Op, 0, 4*len(events)+2)}
	if !noLog {
		b.Appends = make([]store.Append, 0, len(events))
	}
	// The index keys of all the events, back to back in one buffer (the
	// engine copies them at Apply).
	keys := make([]byte, 0, 96*len(events))
	var buf []byte // each event's JSON, only to be hashed into its leaf
	for start := 0; start < len(events); start += maxSegment {
		end := min(start+maxSegment, len(events))
		chunk, cts := events[start:end], ts[start:end]
		b.Set(timeKey(segPrefix, cts[0]), encodeSegment(chunk, cts))
		for i := range chunk {
			e := &chunk[i]
			id, at := ID(cts[i]), time.UnixMicro(cts[i]).UTC()
			ents := e.entityList()
			if !noLog {
				buf = e.appendJSON(buf[:0], id, at, ents)
				a := store.Append{Data: anchor.NewLeaf("AuditEvent", id, 1, buf).Data()}
				if i == 0 {
					a.IndexKey = timeKey(leafPrefix, cts[0])
				}
				b.Appends = append(b.Appends, a)
			}
			add := func(fam byte, ref string) {
				if ref == "" || strings.ContainsRune(ref, 0) {
					return
				}
				k := len(keys)
				keys = append(append(append(append(keys, trailPrefix...), fam), ref...), 0)
				keys = binary.BigEndian.AppendUint64(keys, uint64(cts[i]))
				b.Set(keys[k:len(keys):len(keys)], nil)
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

// unversioned drops "/_history/<vid>" from a reference: references index
// without their version.
func unversioned(ref string) string {
	r, _, _ := strings.Cut(ref, "/_history/")
	return r
}

// segmentCache keeps recently read segments (they never change).
type segmentCache struct {
	mu   sync.Mutex
	segs map[int64]*segment
}

const cachedSegments = 256

func (c *segmentCache) get(start int64) *segment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.segs[start]
}

func (c *segmentCache) put(s *segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.segs == nil || len(c.segs) >= cachedSegments {
		c.segs = make(map[int64]*segment, cachedSegments)
	}
	c.segs[s.start] = s
}

// locate returns the segment holding the event at time ts and its
// position there, or ErrNotFound.
func (t *Trail) locate(ctx context.Context, ts int64) (*segment, int, error) {
	var seg *segment
	var derr error
	err := t.e.Scan(ctx, store.Range{Start: segPrefix, End: timeKey(segPrefix, ts+1), Reverse: true, Limit: 1}, func(k, v []byte) bool {
		start := int64(binary.BigEndian.Uint64(k[len(segPrefix):]))
		if seg = t.cache.get(start); seg == nil {
			seg, derr = decodeSegment(start, bytes.Clone(v))
			if derr == nil {
				t.cache.put(seg)
			}
		}
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
	i := seg.find(ts)
	if i < 0 {
		return nil, 0, store.ErrNotFound
	}
	return seg, i, nil
}

// found is one event of the trail with what the store needs of it.
type found struct {
	ts    int64
	event Event
}

func (f *found) id() string                { return ID(f.ts) }
func (f *found) at() time.Time             { return time.UnixMicro(f.ts).UTC() }
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
	ts, ok := parseID(id)
	if !ok {
		return nil, store.ErrNotFound
	}
	seg, i, err := t.locate(ctx, ts)
	if err != nil {
		return nil, err
	}
	e, err := seg.event(i)
	if err != nil {
		return nil, err
	}
	return &found{ts: ts, event: e}, nil
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
	ts, ok := parseID(id)
	if !ok || vid != 1 {
		return 0, store.ErrNotFound
	}
	seg, i, err := t.locate(ctx, ts)
	if err != nil {
		return 0, err
	}
	b, err := t.e.Get(ctx, timeKey(leafPrefix, seg.start))
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

// span is a time range, both ends inclusive.
type span struct{ lo, hi int64 }

var everything = span{0, 1<<62 - 1}

// scan calls fn with the events in sp, in time order (reversed when
// desc), until fn returns false. With a driver it walks that index
// family's keys; otherwise the segments.
func (t *Trail) scan(ctx context.Context, sp span, desc bool, drv *driver, fn func(*found) (bool, error)) error {
	if sp.lo > sp.hi {
		return nil
	}
	if drv != nil {
		return drv.walk(ctx, t.e, sp, desc, func(ts int64) (bool, error) {
			seg, i, err := t.locate(ctx, ts)
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
			return fn(&found{ts: ts, event: e})
		})
	}
	// The segment holding sp.lo may start before it.
	from := sp.lo
	if st, ok, err := t.segmentAtOrBefore(ctx, sp.lo); err != nil {
		return err
	} else if ok {
		from = st
	}
	r := store.Range{Start: timeKey(segPrefix, from), End: timeKey(segPrefix, sp.hi+1), Reverse: desc, Limit: 16}
	for {
		// Decode outside the engine's callback, a few segments at a time.
		var segs []*segment
		var derr error
		err := t.e.Scan(ctx, r, func(k, v []byte) bool {
			st := int64(binary.BigEndian.Uint64(k[len(segPrefix):]))
			seg := t.cache.get(st)
			if seg == nil {
				if seg, derr = decodeSegment(st, bytes.Clone(v)); derr != nil {
					return false
				}
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
			n := len(seg.times)
			for j := range n {
				i := j
				if desc {
					i = n - 1 - j
				}
				if ts := seg.times[i]; ts >= sp.lo && ts <= sp.hi {
					e, err := seg.event(i)
					if err != nil {
						return err
					}
					if more, err := fn(&found{ts: ts, event: e}); err != nil || !more {
						return err
					}
				}
			}
		}
		if len(segs) < r.Limit {
			return nil
		}
		last := timeKey(segPrefix, segs[len(segs)-1].start)
		if desc {
			r.End = last
		} else {
			r.Start = store.PrefixEnd(last)
		}
	}
}

// segmentAtOrBefore returns the start of the last segment starting at or
// before ts.
func (t *Trail) segmentAtOrBefore(ctx context.Context, ts int64) (int64, bool, error) {
	var st int64
	var ok bool
	err := t.e.Scan(ctx, store.Range{Start: segPrefix, End: timeKey(segPrefix, ts+1), Reverse: true, Limit: 1}, func(k, _ []byte) bool {
		st, ok = int64(binary.BigEndian.Uint64(k[len(segPrefix):])), true
		return false
	})
	return st, ok, err
}

// driver yields a search's candidates: the events that name one of refs
// in an index family, or the events listed (_id).
type driver struct {
	fam    byte
	refs   []string
	listed []int64
}

// walk calls fn with the times of the driver's keys in sp, in order,
// until fn returns false. One reference streams page by page; several are
// merged in memory (bounded by maxConsidered).
func (d *driver) walk(ctx context.Context, e store.Engine, sp span, desc bool, fn func(int64) (bool, error)) error {
	keys := func(ref string, r store.Range, out []int64) ([]int64, []byte, error) {
		p := famPrefix(d.fam, ref)
		n := len(out)
		err := e.Scan(ctx, r, func(k, _ []byte) bool {
			out = append(out, int64(binary.BigEndian.Uint64(k[len(p):])))
			return true
		})
		if err != nil || len(out) == n {
			return out, nil, err
		}
		// The engine reuses its key buffers: rebuild the last key.
		return out, timeKey(p, out[len(out)-1]), nil
	}
	if d.listed != nil || d.refs == nil {
		tss := slices.Clone(d.listed)
		slices.Sort(tss)
		tss = slices.Compact(tss)
		if desc {
			slices.Reverse(tss)
		}
		for _, ts := range tss {
			if ts < sp.lo || ts > sp.hi {
				continue
			}
			if more, err := fn(ts); err != nil || !more {
				return err
			}
		}
		return nil
	}
	rangeOf := func(ref string) store.Range {
		p := famPrefix(d.fam, ref)
		return store.Range{Start: timeKey(p, sp.lo), End: timeKey(p, sp.hi+1), Reverse: desc}
	}
	if len(d.refs) == 1 {
		r := rangeOf(d.refs[0])
		r.Limit = 256
		for {
			tss, last, err := keys(d.refs[0], r, nil)
			if err != nil {
				return err
			}
			for _, ts := range tss {
				if more, err := fn(ts); err != nil || !more {
					return err
				}
			}
			if len(tss) < r.Limit {
				return nil
			}
			if desc {
				r.End = last
			} else {
				r.Start = store.PrefixEnd(last)
			}
		}
	}
	var all []int64
	for _, ref := range d.refs {
		var err error
		if all, _, err = keys(ref, rangeOf(ref), all); err != nil {
			return err
		}
		if len(all) > maxConsidered {
			return store.ErrTooCostly
		}
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if desc {
		slices.Reverse(all)
	}
	for _, ts := range all {
		if more, err := fn(ts); err != nil || !more {
			return err
		}
	}
	return nil
}
