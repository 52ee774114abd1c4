package store

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
)

// Journal keeps an append-only resource type (AuditEvent: every audited
// interaction writes one) in a compact layout of the store's own, and
// serves it as a Virtual type: each entry costs a few keys, not the few
// dozen of a general resource, and is one version that never changes.
// What an entry holds is its owner's business (JournalConfig.Decode
// renders it); where it is kept, how it is found and how searches over it
// are paged is the store's.
//
// Several journals (one per gateway replica, or per process start) may
// append to one engine at once. Each gives its entries positions (t, w):
// t is its clock in µs, which never repeats or goes back within the
// journal, and w its writer id, 64 random bits drawn at open (never 0),
// so that no two journals give out the same position without
// coordinating; times may repeat across writers, and the journal's order
// is (t, w). Every key below ends in a position, so no writer overwrites
// another's.
//
// Layout, under ExtensionPrefix(cfg.Name), numbers big-endian:
//
//	'S' t w            -> segment of the entries of one commit, from (t, w)
//	'L' t w            -> log index of the first entry of segment (t, w)
//	fam ref 0x00 t w   -> i (the entry at (t, w), the i-th of its segment,
//	                         is indexed under ref in family fam; one byte)
//
// A segment's entries have consecutive times t, t+1, ... (at most
// journalSegment of them), so a segment spans at most journalSpan µs: the
// segment holding (t, w) is writer w's one starting in [t-journalSpan, t],
// and a time scan merges the few segments that overlap. Journals written
// before writer ids (w = 0: keys without w, index values empty) came from
// one process: their segments never overlap and precede every segment
// with a writer id.
//
// An entry's id is cfg.IDPrefix, 16 hex digits of t, then 16 of w
// (without them when w is 0), so ids sort as positions do.
type Journal struct {
	e      Engine
	cfg    JournalConfig
	prefix []byte
	seg    []byte // prefix 'S'
	leaf   []byte // prefix 'L'
	// Now is the clock (tests); default time.Now.
	Now   func() time.Time
	w     uint64 // this journal's writer id
	mu    sync.Mutex
	last  int64 // time of the last entry given out
	cache segmentCache
}

// JournalConfig describes a journal's resource type.
type JournalConfig struct {
	// Name names the journal's keys (ExtensionPrefix(Name)).
	Name string
	// Type is the resource type served; Author its versions' author and
	// creator; IDPrefix starts every id.
	Type, Author, IDPrefix string
	// Decode decodes an entry's record, as JournalEntries encoded it.
	Decode func(rec []byte) (JournalRecord, error)
	// Compartments returns the compartments of the entry id with index
	// values idx.
	Compartments func(id string, idx []IndexValue) []string
	// Families maps reference search parameters to the index family
	// whose keys hold their values; Targets the type a bare id of such a
	// parameter names ("patient": "Patient"). An entry's time is its
	// _lastUpdated, and its date unless OwnDates.
	Families map[string]byte
	Targets  map[string]string
	// OwnDates: an entry's date is its own (a recorded AuditEvent's
	// recorded element), not its time in the journal, so date clauses do
	// not narrow the scan (the matcher still checks them).
	OwnDates bool
}

// JournalAuthored is a record with an author of its own (the client that
// posted it), which its version names as author and creator instead of
// JournalConfig.Author.
type JournalAuthored interface {
	Author() string
}

// JournalRecord is a decoded entry.
type JournalRecord interface {
	// Index returns the entry's search index values.
	Index(at time.Time) []IndexValue
	// JSON renders the entry as its resource.
	JSON(id string, at time.Time) []byte
}

// JournalEntries are entries to append.
type JournalEntries interface {
	Len() int
	// Entry appends entry i's record to rec, calls ref for each reference
	// it is indexed under, and returns the record and the entry's log
	// leaf, made for its id and time (nil: no leaf; then for no entry).
	Entry(i int, id string, at time.Time, rec []byte, ref func(fam byte, ref string)) ([]byte, []byte)
}

// JournalChecked is implemented by entries that carry checks to read
// atomically with their append (Batch.Checks): those of the requests
// whose reads a ReadSet answered. Stale is told, after the append is
// durable, the indexes of the checks that did not hold.
type JournalChecked interface {
	Checks() []Cond
	Stale(idx []int)
}

const (
	// journalSegment bounds the entries of one segment, so that reading
	// one entry decodes little.
	journalSegment = 128
	// journalSpan bounds t(last) - t(first) of a segment with a writer id.
	journalSpan = journalSegment - 1
	// journalConsidered bounds the entries one search may look at.
	journalConsidered = 2_000_000
)

// jpos is an entry's place in the journal's order: its time (µs) and its
// writer (0: written before writers had ids).
type jpos struct {
	t int64
	w uint64
}

func (p jpos) cmp(q jpos) int {
	if c := cmp.Compare(p.t, q.t); c != 0 {
		return c
	}
	return cmp.Compare(p.w, q.w)
}

// next is the position right after p, prev the one right before.
func (p jpos) next() jpos {
	if p.w == math.MaxUint64 {
		return jpos{p.t + 1, 0}
	}
	return jpos{p.t, p.w + 1}
}

func (p jpos) prev() jpos {
	if p.w == 0 {
		return jpos{p.t - 1, math.MaxUint64}
	}
	return jpos{p.t, p.w - 1}
}

func minPos(a, b jpos) jpos {
	if a.cmp(b) <= 0 {
		return a
	}
	return b
}

func maxPos(a, b jpos) jpos {
	if a.cmp(b) >= 0 {
		return a
	}
	return b
}

// appendPos appends p's key form: t, then w unless it is 0 (the keys of
// legacy entries). Keys sort as positions do, and the key of (t, 0) is
// the smallest of time t.
func appendPos(b []byte, p jpos) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(p.t))
	if p.w != 0 {
		b = binary.BigEndian.AppendUint64(b, p.w)
	}
	return b
}

// decodePos is the inverse of appendPos on a key's tail.
func decodePos(b []byte) (jpos, bool) {
	switch len(b) {
	case 8:
		return jpos{t: int64(binary.BigEndian.Uint64(b))}, true
	case 16:
		w := binary.BigEndian.Uint64(b[8:])
		return jpos{int64(binary.BigEndian.Uint64(b)), w}, w != 0
	}
	return jpos{}, false
}

// keyAfter is the smallest key after k (a legacy key is a prefix of the
// keys of its time with writer ids).
func keyAfter(k []byte) []byte { return append(slices.Clip(k), 0) }

// posKey is prefix followed by p's key form.
func posKey(prefix []byte, p jpos) []byte {
	return appendPos(append(make([]byte, 0, len(prefix)+16), prefix...), p)
}

func (j *Journal) famPrefix(fam byte, ref string) []byte {
	k := make([]byte, 0, len(j.prefix)+len(ref)+2+16) // room for the position
	k = append(append(k, j.prefix...), fam)
	k = append(k, ref...)
	return append(k, 0)
}

// id returns the id of the entry at p.
func (j *Journal) id(p jpos) string {
	var b [64]byte
	n := copy(b[:], j.cfg.IDPrefix)
	putHex(b[n:n+16], uint64(p.t))
	n += 16
	if p.w != 0 {
		putHex(b[n:n+16], p.w)
		n += 16
	}
	return string(b[:n])
}

func putHex(b []byte, u uint64) {
	for i := len(b) - 1; i >= 0; i, u = i-1, u>>4 {
		b[i] = "0123456789abcdef"[u&0xf]
	}
}

// parseID returns the position of an entry id.
func (j *Journal) parseID(id string) (jpos, bool) {
	h, ok := strings.CutPrefix(id, j.cfg.IDPrefix)
	if !ok || (len(h) != 16 && len(h) != 32) {
		return jpos{}, false
	}
	n, err := strconv.ParseUint(h[:16], 16, 64)
	if err != nil || n > 1<<62 {
		return jpos{}, false
	}
	p := jpos{t: int64(n)}
	if len(h) == 32 {
		if p.w, err = strconv.ParseUint(h[16:], 16, 64); err != nil || p.w == 0 {
			return jpos{}, false
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

// OpenJournal opens the journal kept in e, as a new writer.
func OpenJournal(ctx context.Context, e Engine, cfg JournalConfig) (*Journal, error) {
	w, err := newWriterID()
	if err != nil {
		return nil, fmt.Errorf("store: open journal %s: %w", cfg.Name, err)
	}
	p := ExtensionPrefix(cfg.Name)
	j := &Journal{e: e, cfg: cfg, prefix: p, seg: append(slices.Clip(p), 'S'), leaf: append(slices.Clip(p), 'L'), Now: time.Now, w: w}
	// Start the clock after the newest segment's start (this journal's
	// own, or another writer's): times keep following the journal's
	// order when this host's clock went back. Ids are unique whatever
	// the clock does.
	var last *segment
	var derr error
	err = e.Scan(ctx, Range{Start: j.seg, End: PrefixEnd(j.seg), Reverse: true, Limit: 1}, func(k, v []byte) bool {
		start, ok := decodePos(k[len(j.seg):])
		if !ok {
			derr = errCorruptJournal
			return false
		}
		last, derr = decodeSegment(start, bytes.Clone(v))
		return false
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("store: open journal %s: %w", cfg.Name, err)
	}
	if last != nil {
		j.last = last.times[len(last.times)-1]
	}
	return j, nil
}

// SetWriter sets the journal's writer id (tests: 0 writes entries as a
// journal before writer ids did).
func (j *Journal) SetWriter(w uint64) { j.w = w }

// times gives out the times of n entries: t0, t0+1, ..., t0+n-1, where t0
// is now or just after the last time given out.
func (j *Journal) times(n int) int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	t0 := max(j.Now().UnixMicro(), j.last+1)
	j.last = t0 + int64(n) - 1
	return t0
}

// Append writes es in one durable commit, each a new resource with its
// log leaf if es gives them. It is never retried: a commit whose outcome
// is unknown (ErrUnknownOutcome) may have applied, and a second one would
// write every entry twice.
func (j *Journal) Append(ctx context.Context, es JournalEntries) error {
	n := es.Len()
	if n == 0 {
		return nil
	}
	return j.appendAt(ctx, es, j.times(n), nil)
}

// AppendAt is Append at times ts (increasing), as writer w of SetWriter
// (tests write journals of before writer ids with it).
func (j *Journal) AppendAt(ctx context.Context, es JournalEntries, ts []int64) error {
	return j.appendAt(ctx, es, 0, ts)
}

// AddTo adds es to b, to be written by the caller's commit of b exactly
// as Append would write them (the same keys and log leaves), atomically
// with whatever else b holds: an interaction's event in the commit of the
// version it wrote. b must be applied to this journal's engine.
func (j *Journal) AddTo(b *Batch, es JournalEntries) error {
	n := es.Len()
	if n == 0 {
		return nil
	}
	return j.fill(b, es, entryTimes{t0: j.times(n)})
}

// Engine returns the engine the journal is kept in.
func (j *Journal) Engine() Engine { return j.e }

// appendAt appends es at times ts, or t0, t0+1, ... when ts is nil.
func (j *Journal) appendAt(ctx context.Context, es JournalEntries, t0 int64, ts []int64) error {
	n := es.Len()
	b := Batch{Ops: make([]Op, 0, 4*n+2), Appends: make([]Append, 0, n)}
	if err := j.fill(&b, es, entryTimes{t0, ts}); err != nil {
		return err
	}
	ck, _ := es.(JournalChecked)
	if ck != nil {
		b.Checks = ck.Checks()
	}
	if err := j.e.Apply(ctx, &b); err != nil {
		return err
	}
	if ck != nil && len(b.Stale) > 0 {
		ck.Stale(b.Stale)
	}
	return nil
}

// fill adds the keys and log appends of es at times tt to b.
func (j *Journal) fill(b *Batch, es JournalEntries, tt entryTimes) error {
	n := es.Len()
	a := &appender{j: j, b: b, keys: make([]byte, 0, 104*n)}
	a.ends = a.endsBuf[:0]
	ref := a.ref
	recs := make([]byte, 0, 256*min(n, journalSegment))
	leaves := 0 // entries with a leaf
	for start := 0; start < n; start += journalSegment {
		end := min(start+journalSegment, n)
		first := jpos{tt.at(start), j.w}
		recs, a.ends = recs[:0], a.ends[:0]
		for i := start; i < end; i++ {
			a.at, a.off = jpos{tt.at(i), j.w}, i-start
			var leaf []byte
			recs, leaf = es.Entry(i, j.id(a.at), unixMicro(a.at.t), recs, ref)
			a.ends = append(a.ends, len(recs))
			if leaf != nil && leaves != i || leaf == nil && leaves != 0 {
				return errors.New("store: journal entries with and without log leaves in one append")
			}
			if leaf != nil {
				leaves++
				ap := Append{Data: leaf}
				if i == start {
					ap.IndexKey = posKey(j.leaf, first)
				}
				b.Appends = append(b.Appends, ap)
			}
		}
		b.Set(posKey(j.seg, first), encodeSegment(recs, a.ends, tt, start))
	}
	return nil
}

// appender builds the batch of an append.
type appender struct {
	j *Journal
	b *Batch
	// The index keys of all the entries, back to back in one buffer (the
	// engine copies them at Apply).
	keys    []byte
	at      jpos // the entry being appended
	off     int  // its place in its segment
	ends    []int
	endsBuf [journalSegment]int
}

func unixMicro(t int64) time.Time { return time.UnixMicro(t).UTC() }

// entryTimes are the times of an append's entries: ts, or t0, t0+1, ...
// when ts is nil.
type entryTimes struct {
	t0 int64
	ts []int64
}

func (tt entryTimes) at(i int) int64 {
	if tt.ts == nil {
		return tt.t0 + int64(i)
	}
	return tt.ts[i]
}

// ref indexes the entry being appended under ref in family fam.
func (a *appender) ref(fam byte, ref string) {
	if ref == "" || strings.IndexByte(ref, 0) >= 0 {
		return
	}
	k := len(a.keys)
	a.keys = append(append(append(append(a.keys, a.j.prefix...), fam), ref...), 0)
	a.keys = appendPos(a.keys, a.at)
	a.b.Set(a.keys[k:len(a.keys):len(a.keys)], offsets[a.off:a.off+1:a.off+1])
}

// offsets holds the values of index keys: an entry's place in its
// segment (shared, so that writing them allocates nothing).
var offsets = func() (b [journalSegment]byte) {
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// segmentCache keeps recently read segments (they never change).
type segmentCache struct {
	mu   sync.Mutex
	segs map[jpos]*segment
}

const cachedSegments = 256

func (c *segmentCache) get(start jpos) *segment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.segs[start]
}

func (c *segmentCache) put(s *segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.segs == nil || len(c.segs) >= cachedSegments {
		c.segs = make(map[jpos]*segment, cachedSegments)
	}
	c.segs[s.first()] = s
}

// segment returns the segment stored under key k with value v (valid
// only during the engine's callback), from the cache or decoded.
func (j *Journal) segment(k, v []byte) (*segment, error) {
	start, ok := decodePos(k[len(j.seg):])
	if !ok {
		return nil, errCorruptJournal
	}
	if seg := j.cache.get(start); seg != nil {
		return seg, nil
	}
	seg, err := decodeSegment(start, bytes.Clone(v))
	if err == nil {
		j.cache.put(seg)
	}
	return seg, err
}

// locate returns the segment holding the entry at p and its position
// there, or ErrNotFound.
func (j *Journal) locate(ctx context.Context, p jpos) (*segment, int, error) {
	// Legacy (w = 0): the last segment starting at or before p, as
	// legacy segments never overlap. Otherwise writer w's segment
	// starting in [p.t-journalSpan, p]: other writers' segments may start
	// in between, and are passed over without being decoded.
	r := Range{Start: j.seg, End: posKey(j.seg, p.next()), Reverse: true, Limit: 1}
	if p.w != 0 {
		r.Start, r.Limit = posKey(j.seg, jpos{t: max(0, p.t-journalSpan)}), 0
	}
	var seg *segment
	var derr error
	err := j.e.Scan(ctx, r, func(k, v []byte) bool {
		start, ok := decodePos(k[len(j.seg):])
		if !ok {
			derr = errCorruptJournal
			return false
		}
		if start.w != p.w {
			return p.w != 0
		}
		seg, derr = j.segment(k, v)
		return false
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, 0, err
	}
	if seg == nil {
		return nil, 0, ErrNotFound
	}
	i := seg.find(p.t)
	if i < 0 {
		return nil, 0, ErrNotFound
	}
	return seg, i, nil
}

// at returns the segment holding the entry at p and its position there,
// given by an index key (-1: unknown, located).
func (j *Journal) at(ctx context.Context, p jpos, i int) (*segment, int, error) {
	if i < 0 || p.w == 0 {
		return j.locate(ctx, p)
	}
	start := jpos{p.t - int64(i), p.w}
	seg := j.cache.get(start)
	if seg == nil {
		v, err := j.e.Get(ctx, posKey(j.seg, start))
		if err != nil {
			return nil, 0, err
		}
		if seg, err = decodeSegment(start, v); err != nil {
			return nil, 0, err
		}
		j.cache.put(seg)
	}
	if i >= len(seg.times) || seg.times[i] != p.t {
		return nil, 0, errCorruptJournal
	}
	return seg, i, nil
}

// jfound is one entry of the journal with what the store needs of it.
type jfound struct {
	j   *Journal // the journal holding it (Journals merge several)
	p   jpos
	rec JournalRecord
}

func (j *Journal) found(p jpos, seg *segment, i int) (*jfound, error) {
	rec, err := j.cfg.Decode(seg.recs[i])
	if err != nil {
		return nil, err
	}
	return &jfound{j: j, p: p, rec: rec}, nil
}

func (f *jfound) at() time.Time { return time.UnixMicro(f.p.t).UTC() }

// version is the entry as the store's one version of it; body only when
// asked (rendering costs).
func (j *Journal) version(f *jfound, idx []IndexValue, body bool) Version {
	id := j.id(f.p)
	v := Version{
		Type: j.cfg.Type, ID: id, VID: 1, LastUpdated: f.at(), Method: MethodCreate,
		Author: j.cfg.Author, Creator: j.cfg.Author, Compartments: j.cfg.Compartments(id, idx),
	}
	if a, ok := f.rec.(JournalAuthored); ok {
		v.Author, v.Creator = a.Author(), a.Author()
	}
	if body {
		v.Body = f.rec.JSON(id, v.LastUpdated)
	}
	return v
}

func (j *Journal) entry(ctx context.Context, id string) (*jfound, error) {
	p, ok := j.parseID(id)
	if !ok {
		return nil, ErrNotFound
	}
	seg, i, err := j.locate(ctx, p)
	if err != nil {
		return nil, err
	}
	return j.found(p, seg, i)
}

// Read returns the entry id.
func (j *Journal) Read(ctx context.Context, id string) (Version, error) {
	f, err := j.entry(ctx, id)
	if err != nil {
		return Version{}, err
	}
	return j.version(f, f.rec.Index(f.at()), true), nil
}

// LeafIndex returns the log position of the entry's leaf.
func (j *Journal) LeafIndex(ctx context.Context, id string, vid uint64) (uint64, error) {
	p, ok := j.parseID(id)
	if !ok || vid != 1 {
		return 0, ErrNotFound
	}
	seg, i, err := j.locate(ctx, p)
	if err != nil {
		return 0, err
	}
	b, err := j.e.Get(ctx, posKey(j.leaf, seg.first()))
	if err != nil {
		return 0, err // ErrNotFound: written without leaves
	}
	if len(b) != 8 {
		return 0, errCorruptJournal
	}
	return binary.BigEndian.Uint64(b) + uint64(i), nil
}

// References returns the entry's values of a reference parameter.
func (j *Journal) References(ctx context.Context, id, param string) ([]string, error) {
	f, err := j.entry(ctx, id)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, iv := range f.rec.Index(f.at()) {
		if iv.Param == param && iv.Kind == IndexReference && !slices.Contains(refs, iv.Ref) {
			refs = append(refs, iv.Ref)
		}
	}
	return refs, nil
}

// span is a range of positions, both ends inclusive.
type span struct{ lo, hi jpos }

var everything = span{jpos{}, jpos{1<<62 - 1, math.MaxUint64}}

func (sp span) empty() bool { return sp.lo.cmp(sp.hi) > 0 }

// timeSpan is the span of the times lo..hi (µs), both inclusive.
func timeSpan(lo, hi int64) span { return span{jpos{t: lo}, jpos{hi, math.MaxUint64}} }

// scan calls fn with the entries in sp, in the journal's order (reversed
// when desc), until fn returns false. With a driver it walks that index
// family's keys; otherwise it merges the segments.
func (j *Journal) scan(ctx context.Context, sp span, desc bool, drv *driver, fn func(*jfound) (bool, error)) error {
	if sp.empty() {
		return nil
	}
	if drv != nil {
		return drv.walk(ctx, j, sp, desc, func(p jpos, at int) (bool, error) {
			seg, i, err := j.at(ctx, p, at)
			if errors.Is(err, ErrNotFound) {
				return true, nil // a key is written with its segment; never expected
			}
			if err != nil {
				return false, err
			}
			f, err := j.found(p, seg, i)
			if err != nil {
				return false, err
			}
			return fn(f)
		})
	}
	// The segments that may hold entries of sp start at most journalSpan
	// before it, or (legacy) with the last one starting at or before it.
	from := jpos{t: max(0, sp.lo.t-journalSpan)}
	if st, ok, err := j.segmentAtOrBefore(ctx, sp.lo); err != nil {
		return err
	} else if ok && st.w == 0 {
		from = minPos(from, st)
	}
	r := Range{Start: posKey(j.seg, from), End: posKey(j.seg, sp.hi.next()), Reverse: desc, Limit: 16}
	m := &merge{desc: desc}
	// emit passes on the merged entries while ready says no segment still
	// unread can hold an entry before them (in scan order).
	emit := func(ready func(jpos) bool) (bool, error) {
		for len(m.cs) > 0 {
			c := m.cs[0]
			p := c.pos()
			if !ready(p) {
				return true, nil
			}
			seg, i := c.seg, c.i
			m.advance()
			if p.cmp(sp.lo) < 0 || p.cmp(sp.hi) > 0 {
				// Outside sp: skip it, or stop past its end.
				if (p.cmp(sp.lo) < 0) == desc {
					return false, nil
				}
				continue
			}
			f, err := j.found(p, seg, i)
			if err != nil {
				return false, err
			}
			if more, err := fn(f); err != nil || !more {
				return false, err
			}
		}
		return true, nil
	}
	for {
		// Decode outside the engine's callback, a few segments at a time.
		var segs []*segment
		var derr error
		err := j.e.Scan(ctx, r, func(k, v []byte) bool {
			var seg *segment
			if seg, derr = j.segment(k, v); derr != nil {
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
			var ready func(jpos) bool
			switch {
			case !desc:
				// Every unread segment starts at or after this one.
				ready = func(p jpos) bool { return p.cmp(first) < 0 }
			case seg.w == 0:
				// Unread segments are legacy: they end before every
				// segment read.
				ready = func(jpos) bool { return true }
			default:
				// Unread segments start at or before this one, and end
				// at most journalSpan after it.
				bound := seg.start + journalSpan
				ready = func(p jpos) bool { return p.t > bound }
			}
			if more, err := emit(ready); err != nil || !more {
				return err
			}
			m.push(seg, sp)
		}
		if len(segs) < r.Limit {
			break
		}
		last := posKey(j.seg, segs[len(segs)-1].first())
		if desc {
			r.End = last
		} else {
			r.Start = keyAfter(last)
		}
	}
	_, err := emit(func(jpos) bool { return true })
	return err
}

// segmentAtOrBefore returns the start of the last segment starting at or
// before p.
func (j *Journal) segmentAtOrBefore(ctx context.Context, p jpos) (jpos, bool, error) {
	var st jpos
	var ok bool
	err := j.e.Scan(ctx, Range{Start: j.seg, End: posKey(j.seg, p.next()), Reverse: true, Limit: 1}, func(k, _ []byte) bool {
		st, ok = decodePos(k[len(j.seg):])
		return false
	})
	return st, ok, err
}

// merge yields the entries of overlapping segments in the journal's
// order (a heap of each segment's next entry; few segments overlap at
// once).
type merge struct {
	desc bool
	cs   []*cursor
}

// cursor is a segment being merged and its next entry.
type cursor struct {
	seg *segment
	i   int
}

func (c *cursor) pos() jpos { return jpos{c.seg.times[c.i], c.seg.w} }

// push adds seg, from its first entry in sp in scan order.
func (m *merge) push(seg *segment, sp span) {
	n := len(seg.times)
	c := &cursor{seg: seg}
	if m.desc {
		// The last entry at or before sp.hi.
		c.i = sort.Search(n, func(i int) bool { return jpos{seg.times[i], seg.w}.cmp(sp.hi) > 0 }) - 1
		if c.i < 0 {
			return
		}
	} else {
		c.i = sort.Search(n, func(i int) bool { return jpos{seg.times[i], seg.w}.cmp(sp.lo) >= 0 })
		if c.i == n {
			return
		}
	}
	m.cs = append(m.cs, c)
	m.up(len(m.cs) - 1)
}

// before reports whether cursor a's entry comes before b's in scan order.
func (m *merge) before(a, b *cursor) bool {
	c := a.pos().cmp(b.pos())
	if m.desc {
		return c > 0
	}
	return c < 0
}

// advance moves the first cursor to its segment's next entry.
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

// driver yields a search's candidates: the entries that name one of refs
// in an index family, or the entries listed (_id).
type driver struct {
	fam    byte
	refs   []string
	listed []jpos
}

// hit is an entry a driver yields: its position, and its place in its
// segment when the index key says (-1: unknown).
type hit struct {
	p jpos
	i int
}

// walk calls fn with the positions of the driver's keys in sp, in order,
// and their places in their segments (-1: unknown), until fn returns
// false. One reference streams page by page; several are merged in memory
// (bounded by journalConsidered).
func (d *driver) walk(ctx context.Context, j *Journal, sp span, desc bool, fn func(jpos, int) (bool, error)) error {
	keys := func(ref string, r Range, out []hit) ([]hit, []byte, error) {
		p := j.famPrefix(d.fam, ref)
		n := len(out)
		bad := false
		err := j.e.Scan(ctx, r, func(k, v []byte) bool {
			at, ok := decodePos(k[len(p):])
			if !ok || len(v) > 1 || len(v) == 1 && int(v[0]) >= journalSegment {
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
			err = errCorruptJournal
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
	rangeOf := func(ref string) Range {
		p := j.famPrefix(d.fam, ref)
		return Range{Start: posKey(p, sp.lo), End: posKey(p, sp.hi.next()), Reverse: desc}
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
		if len(all) > journalConsidered {
			return ErrTooCostly
		}
	}
	for _, h := range sorted(all) {
		if more, err := fn(h.p, h.i); err != nil || !more {
			return err
		}
	}
	return nil
}
