package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"iter"
	"maps"
	"slices"
	"strings"
)

// Page is one page of search results.
type Page struct {
	IDs []string
	// Total is the number of matches, or -1 when it was not computed.
	Total int
	// Next continues after this page; nil on the last page.
	Next []byte
	// HasPrev says a page comes before this one; Prev is its cursor (nil
	// when that page is the first).
	HasPrev bool
	Prev    []byte
}

const (
	// probeLimit is how many ids a clause may yield before it counts as
	// broad: a broad clause is checked against the candidates of the
	// narrowest one instead of being scanned in full.
	probeLimit = 4096
	// firstProbe is the limit of the first round of probes (see
	// candidates): most selective clauses complete within it.
	firstProbe = 64
	// maxMatches bounds how many resources one search may consider.
	maxMatches = 2_000_000
	// maxLinked bounds the resources a chain or _has may expand to.
	maxLinked = 100_000
)

type clausePlan struct {
	plans []*plan
	not   bool
	// dateParam names the parameter of a clause that is one date bound.
	dateParam string
}

// Search runs q and returns one page of matching ids.
func (s *Store) Search(ctx context.Context, q *Query) (Page, error) {
	return s.search(ctx, q, 0)
}

func (s *Store) search(ctx context.Context, q *Query, depth int) (Page, error) {
	if q.Type == "" {
		return Page{}, errors.New("store: search needs a type")
	}
	cps, err := s.compileClauses(ctx, q, depth)
	if err != nil {
		return Page{}, err
	}
	if v := s.virtual(q.Type); v != nil {
		return v.Search(ctx, q, &Matcher{typ: q.Type, cps: cps})
	}
	ev := &evaluator{s: s, ctx: ctx, typ: q.Type, lists: map[string][][]byte{}}

	var positives, negatives []clausePlan
	for _, cp := range cps {
		if cp.not {
			negatives = append(negatives, cp)
		} else {
			positives = append(positives, cp)
		}
	}
	streamable := q.IDs == nil && len(positives) == 0 && sortsByID(q.Sort) && !q.Total
	if streamable {
		return ev.stream(q, negatives)
	}

	cand, err := ev.candidates(q, positives)
	if err != nil {
		return Page{}, err
	}
	ids := make([]string, 0, len(cand))
	err = ev.chunked(maps.Keys(cand), len(negatives) > 0, q.Filter != nil, func(id string) error {
		if err := ev.tick(); err != nil {
			return err
		}
		ok, err := ev.matchesAll(id, negatives, true)
		if err == nil && ok && q.Filter != nil {
			ok, err = ev.accepts(q.Filter, id)
		}
		if err != nil {
			return err
		}
		if ok {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return Page{}, err
	}
	rows, err := ev.sortRows(ids, q.Sort)
	if err != nil {
		return Page{}, err
	}
	return pageOf(rows, q)
}

// compileClauses compiles q's clauses to key ranges (chains and _has run
// their inner searches here).
func (s *Store) compileClauses(ctx context.Context, q *Query, depth int) ([]clausePlan, error) {
	var cps []clausePlan
	for _, cl := range q.Clauses {
		cp := clausePlan{not: cl.Not}
		if p, ok := dateBound(cl); ok {
			cp.dateParam = p.Param
		}
		for i := range cl.Preds {
			p := cl.Preds[i]
			if p.Op == OpMissing && p.Missing {
				// ":missing=true" is "not present"; only valid alone.
				if len(cl.Preds) != 1 {
					return nil, errors.New("store: :missing=true cannot be combined with other values")
				}
				cp.not = !cp.not
			}
			pl, err := s.compile(ctx, q, &p, depth)
			if err != nil {
				return nil, err
			}
			cp.plans = append(cp.plans, pl)
		}
		cps = append(cps, cp)
	}
	return cps, nil
}

type evaluator struct {
	s     *Store
	ctx   context.Context
	typ   string
	lists map[string][][]byte // index keys per candidate, read once
	// curs holds current pointers read ahead by chunked (nil entry: no
	// such resource), for the chunk being evaluated.
	curs  map[string]*Version
	ticks int
}

// prefetchChunk is how many candidates chunked reads ahead at once.
const prefetchChunk = 1024

// chunked calls fn for each id. On an engine that reads many keys in one
// step (MultiGetter: one round trip instead of one per key on Redis) it
// first reads, a chunk of ids at a time, their index lists (lists) and
// current pointers (curs) that fn will ask for; on other engines fn reads
// them itself, one Get at a time (and from the read cache), as before.
func (ev *evaluator) chunked(ids iter.Seq[string], lists, curs bool, fn func(id string) error) error {
	_, multi := ev.s.e.(MultiGetter)
	if !multi || (!lists && !curs) {
		for id := range ids {
			if err := fn(id); err != nil {
				return err
			}
		}
		return nil
	}
	defer func() { ev.curs = nil }()
	// Collected before fn runs: fn may delete from the map ids ranges over.
	part := make([]string, 0, prefetchChunk)
	flush := func() error {
		if err := ev.prefetch(part, lists, curs); err != nil {
			return err
		}
		for _, id := range part {
			if err := fn(id); err != nil {
				return err
			}
		}
		part = part[:0]
		return nil
	}
	for id := range ids {
		if part = append(part, id); len(part) == prefetchChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// prefetch reads the index lists (those not read yet) and the current
// pointers of ids with one GetMany.
func (ev *evaluator) prefetch(ids []string, lists, curs bool) error {
	var keys [][]byte
	var listIDs []string
	if lists {
		for _, id := range ids {
			if _, ok := ev.lists[id]; !ok {
				keys = append(keys, indexListKey(ev.typ, id))
				listIDs = append(listIDs, id)
			}
		}
	}
	nl := len(keys)
	if curs {
		for _, id := range ids {
			keys = append(keys, currentKey(ev.typ, id))
		}
	}
	if len(keys) == 0 {
		return nil
	}
	vals, err := GetMany(ev.ctx, ev.s.e, keys)
	if err != nil {
		return err
	}
	for i, id := range listIDs {
		if err := ev.putList(id, vals[i]); err != nil {
			return err
		}
	}
	if !curs {
		return nil
	}
	ev.curs = make(map[string]*Version, len(ids))
	for i, id := range ids {
		b := vals[nl+i]
		if b == nil {
			ev.curs[id] = nil
			continue
		}
		cur, err := decodeCurrent(ev.typ, id, b)
		if err != nil {
			return err
		}
		ev.curs[id] = &cur
	}
	return nil
}

// ctxCheckEvery is how many keys or candidates a search handles between
// two looks at its context: a search stops within that many of its
// deadline (the REST layer's time budget).
const ctxCheckEvery = 256

// tick counts one candidate and returns the context's error every
// ctxCheckEvery of them.
func (ev *evaluator) tick() error {
	if ev.ticks++; ev.ticks%ctxCheckEvery == 0 {
		return ev.ctx.Err()
	}
	return nil
}

// scanCtx is e.Scan stopping with ctx's error once ctx is done (looked at
// every ctxCheckEvery keys): no engine need check it while scanning.
func scanCtx(ctx context.Context, e Engine, r Range, fn func(k, v []byte) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := 0
	var cerr error
	err := e.Scan(ctx, r, func(k, v []byte) bool {
		if n++; n%ctxCheckEvery == 0 {
			if cerr = ctx.Err(); cerr != nil {
				return false
			}
		}
		return fn(k, v)
	})
	if err == nil {
		err = cerr
	}
	return err
}

// candidates returns the ids satisfying every positive clause (and q.IDs).
func (ev *evaluator) candidates(q *Query, positives []clausePlan) (map[string]bool, error) {
	var cand map[string]bool
	rest := positives
	if q.IDs != nil {
		cand = map[string]bool{}
		err := ev.chunked(slices.Values(q.IDs), false, true, func(id string) error {
			if err := ev.tick(); err != nil {
				return err
			}
			cur, err := ev.current(id)
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if !cur.Deleted {
				cand[id] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	} else if len(positives) == 0 {
		all, err := ev.allIDs()
		if err != nil {
			return nil, err
		}
		cand = all
	} else {
		// Probe every clause; drive from the narrowest that completes.
		// Date bounds on both sides (date=ge..&date=lt..) are each broad,
		// but together a bounded window holding all their matches: a
		// window that completes is probed instead of its clauses, which
		// are then checked on each candidate.
		type probe struct {
			ids      map[string]bool
			complete bool
		}
		var windowed map[string]bool // params whose window completed
		var windows []probe
		for _, w := range dateWindows(q.Type, q.Clauses) {
			ids, complete, err := ev.scanClause(w.plan, probeLimit)
			if err != nil {
				return nil, err
			}
			if complete {
				if windowed == nil {
					windowed = map[string]bool{}
				}
				windows = append(windows, probe{ids, true})
				windowed[w.param] = true
			}
		}
		// Clauses are probed with a limit that grows (64, 512, 4096)
		// until one completes: then it drives, and the others, broader,
		// are checked on each of its few candidates rather than scanned
		// up to probeLimit each (two broad clauses, family=Smit&given=Jo,
		// cost two scans of thousands of keys where one of a few dozen
		// does).
		probes := make([]probe, len(positives), len(positives)+len(windows))
		scans := make([]clauseScan, len(positives))
		found := len(windows) > 0
		for limit := min(firstProbe, probeLimit); ; limit = min(limit*8, probeLimit) {
			for i, cp := range positives {
				if cp.dateParam != "" && windowed[cp.dateParam] || scans[i].complete {
					continue // within a window: checked per candidate
				}
				if err := ev.scanMore(cp, &scans[i], limit); err != nil {
					return nil, err
				}
				probes[i] = probe{scans[i].ids, scans[i].complete}
				found = found || scans[i].complete
			}
			if found || limit >= probeLimit {
				break
			}
		}
		probes = append(probes, windows...)
		best := -1
		for i, pr := range probes {
			if pr.complete && (best < 0 || len(pr.ids) < len(probes[best].ids)) {
				best = i
			}
		}
		if best < 0 {
			// Every clause is broad: materialize the first.
			ids, complete, err := ev.scanClause(positives[0], maxMatches)
			if err != nil {
				return nil, err
			}
			if !complete {
				return nil, ErrTooCostly
			}
			probes[0] = probe{ids, true}
			best = 0
		}
		cand = probes[best].ids
		rest = nil
		for i, pr := range probes {
			if i == best {
				continue
			}
			if pr.complete {
				if err := ev.tick(); err != nil {
					return nil, err
				}
				for id := range cand {
					if !pr.ids[id] {
						delete(cand, id)
					}
				}
				continue
			}
			if i < len(positives) {
				rest = append(rest, positives[i])
			}
		}
	}
	return ev.keepMatching(cand, rest)
}

// keepMatching removes from cand the ids that fail one of the clauses.
func (ev *evaluator) keepMatching(cand map[string]bool, clauses []clausePlan) (map[string]bool, error) {
	if len(clauses) == 0 {
		return cand, nil
	}
	err := ev.chunked(maps.Keys(cand), true, false, func(id string) error {
		if err := ev.tick(); err != nil {
			return err
		}
		ok, err := ev.matchesAll(id, clauses, false)
		if err != nil {
			return err
		}
		if !ok {
			delete(cand, id)
		}
		return nil
	})
	return cand, err
}

// scanClause collects the ids of a clause's ranges, stopping (incomplete)
// once it has more than limit.
func (ev *evaluator) scanClause(cp clausePlan, limit int) (map[string]bool, bool, error) {
	var sc clauseScan
	err := ev.scanMore(cp, &sc, limit)
	return sc.ids, sc.complete, err
}

// clauseScan is a scan of a clause's ranges that can go on where it
// stopped (a probe whose limit grows rescans nothing).
type clauseScan struct {
	ids      map[string]bool
	pi, ri   int    // the plan and range to go on with
	after    []byte // the last key taken in that range; nil: none yet
	complete bool
}

// scanMore goes on with sc until it holds more than limit ids or the
// clause's ranges end (complete).
func (ev *evaluator) scanMore(cp clausePlan, sc *clauseScan, limit int) error {
	if sc.ids == nil {
		sc.ids = map[string]bool{}
	}
	ids := sc.ids
	for ; sc.pi < len(cp.plans); sc.pi, sc.ri, sc.after = sc.pi+1, 0, nil {
		pl := cp.plans[sc.pi]
		if pl.ids != nil {
			for id := range pl.ids {
				ids[id] = true
			}
			if len(ids) > limit {
				sc.pi++
				return nil
			}
			continue
		}
		for ; sc.ri < len(pl.ranges); sc.ri, sc.after = sc.ri+1, nil {
			r := pl.ranges[sc.ri]
			if sc.after != nil {
				r.Start = append(sc.after, 0) // the next key after it
			}
			over := false
			err := scanCtx(ev.ctx, ev.s.e, r, func(k, _ []byte) bool {
				if pl.filter != nil && !pl.filter(k) {
					return true
				}
				id, ok := keyID(k)
				if !ok {
					return true
				}
				ids[id] = true
				if len(ids) > limit {
					over = true
					sc.after = append(sc.after[:0:0], k...)
					return false
				}
				return true
			})
			if err != nil {
				return err
			}
			if over {
				return nil
			}
		}
	}
	sc.complete = true
	return nil
}

// matchesAll reports whether id satisfies every clause (want=false) or
// none of them (want=true, for negated clauses), checked against the
// resource's own index keys.
func (ev *evaluator) matchesAll(id string, cps []clausePlan, negated bool) (bool, error) {
	if len(cps) == 0 {
		return true, nil
	}
	keys, err := ev.list(id)
	if err != nil {
		return false, err
	}
	for _, cp := range cps {
		if clauseHolds(cp, id, keys) == negated {
			return false, nil
		}
	}
	return true, nil
}

func clauseHolds(cp clausePlan, id string, keys [][]byte) bool {
	for _, pl := range cp.plans {
		if pl.ids != nil {
			if pl.ids[id] {
				return true
			}
			continue
		}
		for _, k := range keys {
			for _, r := range pl.ranges {
				if bytes.Compare(k, r.Start) >= 0 && (r.End == nil || bytes.Compare(k, r.End) < 0) &&
					(pl.filter == nil || pl.filter(k)) {
					return true
				}
			}
		}
	}
	return false
}

// current is Current of id, from what chunked read ahead when it did.
func (ev *evaluator) current(id string) (Version, error) {
	if c, ok := ev.curs[id]; ok {
		if c == nil {
			return Version{}, ErrNotFound
		}
		return *c, nil
	}
	return ev.s.Current(ev.ctx, ev.typ, id)
}

// accepts applies a query filter to the current record of id.
func (ev *evaluator) accepts(filter func(*Version) bool, id string) (bool, error) {
	if c, ok := ev.curs[id]; ok {
		return c != nil && !c.Deleted && filter(c), nil
	}
	cur, err := ev.s.current(ev.ctx, ev.typ, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !cur.Deleted && filter(&cur), nil
}

// list returns the index keys of the current version of id.
func (ev *evaluator) list(id string) ([][]byte, error) {
	if keys, ok := ev.lists[id]; ok {
		return keys, nil
	}
	raw, err := ev.s.e.Get(ev.ctx, indexListKey(ev.typ, id))
	if errors.Is(err, ErrNotFound) {
		raw, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := ev.putList(id, raw); err != nil {
		return nil, err
	}
	return ev.lists[id], nil
}

// putList keeps the index keys of id decoded from its list raw (nil: no
// list).
func (ev *evaluator) putList(id string, raw []byte) error {
	if raw == nil {
		ev.lists[id] = nil
		return nil
	}
	var keys [][]byte
	if err := eachIndexKey(raw, ev.typ, id, func(k []byte) { keys = append(keys, k) }); err != nil {
		return err
	}
	ev.lists[id] = keys
	return nil
}

// allIDs returns every live resource id of the type.
func (ev *evaluator) allIDs() (map[string]bool, error) {
	ids := map[string]bool{}
	p := newKey(tagCurrent, len(ev.typ)+2).str(ev.typ)
	var ferr error
	err := scanCtx(ev.ctx, ev.s.e, PrefixRange(p), func(k, v []byte) bool {
		id, _, ok := readStr(k[len(p):])
		cur, err := decodeCurrent(ev.typ, id, v)
		if !ok || err != nil {
			ferr = errCorrupt
			return false
		}
		if !cur.Deleted {
			ids[id] = true
		}
		if len(ids) > maxMatches {
			ferr = ErrTooCostly
			return false
		}
		return true
	})
	if err == nil {
		err = ferr
	}
	return ids, err
}

// stream pages through every live resource of the type in id order,
// without materializing the result (a search with no positive clause).
func (ev *evaluator) stream(q *Query, negatives []clausePlan) (Page, error) {
	p := newKey(tagCurrent, len(ev.typ)+2).str(ev.typ)
	r := PrefixRange(p)
	if q.Cursor != nil {
		id, err := cursorID(q.Cursor)
		if err != nil {
			return Page{}, err
		}
		r.Start = PrefixEnd(keyBuf(slices.Clone(p)).str(id))
	}
	page := Page{Total: -1}
	var last string
	var ferr error
	err := scanCtx(ev.ctx, ev.s.e, r, func(k, v []byte) bool {
		id, _, ok := readStr(k[len(p):])
		cur, err := decodeCurrent(ev.typ, id, v)
		if !ok || err != nil {
			ferr = errCorrupt
			return false
		}
		if cur.Deleted || (q.Filter != nil && !q.Filter(&cur)) {
			return true
		}
		match, err := ev.matchesAll(id, negatives, true)
		if err != nil {
			ferr = err
			return false
		}
		if !match {
			return true
		}
		if len(page.IDs) == q.Count {
			page.Next = encodeCursor(nil, last)
			return false
		}
		page.IDs = append(page.IDs, id)
		last = id
		return true
	})
	if err == nil {
		err = ferr
	}
	if err != nil || q.Cursor == nil || q.Count == 0 {
		return page, err
	}
	// The previous page: up to Count matches before the cursor, read
	// backwards; its cursor is the match before those.
	page.HasPrev = true
	back := Range{Start: p, End: r.Start, Reverse: true}
	n := 0
	err = scanCtx(ev.ctx, ev.s.e, back, func(k, v []byte) bool {
		id, _, ok := readStr(k[len(p):])
		cur, err := decodeCurrent(ev.typ, id, v)
		if !ok || err != nil || cur.Deleted || (q.Filter != nil && !q.Filter(&cur)) {
			return true
		}
		if match, err := ev.matchesAll(id, negatives, true); err != nil || !match {
			return err == nil
		}
		if n == q.Count {
			page.Prev = encodeCursor(nil, id)
			return false
		}
		n++
		return true
	})
	return page, err
}

func sortsByID(ss []Sort) bool {
	return len(ss) == 0 || (len(ss) == 1 && ss[0].Param == "_id" && !ss[0].Desc)
}

// row is one result with its sort key.
type row struct {
	id   string
	keys [][]byte // one per Sort; nil when the resource has no value
}

func (ev *evaluator) sortRows(ids []string, sorts []Sort) ([]row, error) {
	rows := make([]row, len(ids))
	var lists, curs bool
	for _, so := range sorts {
		switch so.Param {
		case "_id":
		case "_lastUpdated":
			curs = true
		default:
			lists = true
		}
	}
	i := 0
	err := ev.chunked(slices.Values(ids), lists, curs, func(id string) error {
		if err := ev.tick(); err != nil {
			return err
		}
		r := &rows[i]
		i++
		r.id = id
		if len(sorts) == 0 {
			return nil
		}
		r.keys = make([][]byte, len(sorts))
		for j, so := range sorts {
			k, err := ev.sortKey(id, so)
			if err != nil {
				return err
			}
			r.keys[j] = k
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b row) int { return compareRows(a, b, sorts) })
	return rows, nil
}

// sortKey is the bytes a resource sorts by for so: its lowest value
// (ascending) or highest (descending) among its index keys.
func (ev *evaluator) sortKey(id string, so Sort) ([]byte, error) {
	switch so.Param {
	case "_id":
		return []byte(id), nil
	case "_lastUpdated":
		cur, err := ev.current(id)
		if err != nil {
			return nil, err
		}
		return binary.BigEndian.AppendUint64(nil, uint64(cur.LastUpdated.UnixMicro())), nil
	}
	// The parameter's keys; a shared parameter's references to its target
	// type are its base parameter's keys (see SharedFunc).
	sk := ev.s.keysOf(ev.typ, so.Param)
	var base int
	// value returns the bytes key k sorts by, if it is a key of the kind.
	var value func(k []byte) ([]byte, bool)
	simple := func(sub byte) func(k []byte) ([]byte, bool) {
		return func(k []byte) ([]byte, bool) { return keyBody(k)[base+1:], k[base] == sub }
	}
	switch so.Kind {
	case IndexString:
		value = simple(subString)
	case IndexToken:
		value = simple(subToken)
	case IndexReference:
		value = func(k []byte) ([]byte, bool) {
			ref, ok := keyRef(k, base)
			return []byte(ref), ok
		}
	case IndexDate:
		// Every value has a 'd' key (lo hi); descending sorts by hi.
		value = func(k []byte) ([]byte, bool) {
			v := keyBody(k)[base+1:]
			if k[base] != subDateLo || len(v) != 16 {
				return nil, false
			}
			if so.Desc {
				return append(slices.Clone(v[8:]), v[:8]...), true
			}
			return v, true
		}
	case IndexNumber:
		value = simple(subNumber)
	case IndexQuantity:
		value = simple(subQuantity)
	case IndexURI:
		value = simple(subURI)
	default:
		return nil, nil
	}
	keys, err := ev.list(id)
	if err != nil {
		return nil, err
	}
	var best []byte
	for _, k := range keys {
		var ok bool
		if base, ok = sk.match(k); !ok || len(k) <= base {
			continue
		}
		v, ok := value(k)
		if !ok {
			continue
		}
		if best == nil || (!so.Desc && bytes.Compare(v, best) < 0) || (so.Desc && bytes.Compare(v, best) > 0) {
			best = v
		}
	}
	return best, nil
}

func compareRows(a, b row, sorts []Sort) int {
	for j, so := range sorts {
		ka, kb := a.keys[j], b.keys[j]
		switch {
		case ka == nil && kb == nil:
			continue
		case ka == nil: // resources without a value sort last either way
			return 1
		case kb == nil:
			return -1
		}
		c := bytes.Compare(ka, kb)
		if so.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return strings.Compare(a.id, b.id)
}

// pageOf cuts the page after q.Cursor out of sorted rows.
func pageOf(rows []row, q *Query) (Page, error) {
	page := Page{Total: len(rows)}
	start := 0
	if q.Cursor != nil {
		after, err := decodeCursorRow(q.Cursor, len(q.Sort))
		if err != nil {
			return Page{}, err
		}
		start, _ = slices.BinarySearchFunc(rows, after, func(r, t row) int {
			if c := compareRows(r, t, q.Sort); c != 0 {
				return c
			}
			return 0
		})
		// Skip the cursor row itself when it is still a match.
		if start < len(rows) && rows[start].id == after.id {
			start++
		}
	}
	end := min(start+q.Count, len(rows))
	for _, r := range rows[start:end] {
		page.IDs = append(page.IDs, r.id)
	}
	if end < len(rows) && end > start {
		page.Next = encodeCursor(rows[end-1].keys, rows[end-1].id)
	}
	if start > 0 && q.Count > 0 {
		page.HasPrev = true
		if prev := start - q.Count; prev > 0 {
			page.Prev = encodeCursor(rows[prev-1].keys, rows[prev-1].id)
		}
	}
	return page, nil
}

// A cursor is the sort keys and id of the last row served: each key is
// written as a presence byte and a length-prefixed value.
func encodeCursor(keys [][]byte, id string) []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		if k == nil {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	return append(b, id...)
}

func decodeCursorRow(c []byte, nsorts int) (row, error) {
	n, k := binary.Uvarint(c)
	if k <= 0 || int(n) != nsorts {
		return row{}, ErrBadCursor
	}
	c = c[k:]
	r := row{keys: make([][]byte, n)}
	for i := range r.keys {
		if len(c) == 0 {
			return row{}, ErrBadCursor
		}
		present := c[0]
		c = c[1:]
		if present == 0 {
			continue
		}
		l, k := binary.Uvarint(c)
		if k <= 0 || uint64(len(c)-k) < l {
			return row{}, ErrBadCursor
		}
		r.keys[i] = c[k : k+int(l)]
		c = c[k+int(l):]
	}
	r.id = string(c)
	return r, nil
}

func cursorID(c []byte) (string, error) {
	r, err := decodeCursorRow(c, 0)
	return r.id, err
}

// linkPlan resolves a chained parameter or _has into the set of ids of
// this type it stands for.
func (s *Store) linkPlan(ctx context.Context, q *Query, p *Pred, depth int) (*plan, error) {
	inner := *p.Inner
	inner.Filter = q.Filter // what the searcher may not see cannot decide a match
	inner.Count = maxLinked + 1
	inner.Cursor = nil
	inner.Sort = nil
	page, err := s.search(ctx, &inner, depth+1)
	if err != nil {
		return nil, err
	}
	if len(page.IDs) > maxLinked {
		return nil, ErrTooCostly
	}
	if p.Op == OpChain {
		refs := make([]string, len(page.IDs))
		for i, id := range page.IDs {
			refs[i] = inner.Type + "/" + id
		}
		base := paramPrefix(q.Type, s.refParam(q.Type, p.Param, inner.Type))
		pl := &plan{}
		for _, r := range refs {
			pl.ranges = append(pl.ranges, PrefixRange(refPrefix(base, r)))
		}
		return pl, nil
	}
	// _has: the ids of q.Type that the matching resources reference
	// through HasParam.
	if v := s.virtual(inner.Type); v != nil {
		refs, err := virtualRefs(ctx, v, page.IDs, p.HasParam)
		if err != nil {
			return nil, err
		}
		ids := map[string]bool{}
		for _, rs := range refs {
			for _, ref := range rs {
				if t, rid, found := strings.Cut(ref, "/"); found && t == q.Type {
					ids[rid] = true
				}
			}
		}
		return &plan{ids: ids}, nil
	}
	ev := &evaluator{s: s, ctx: ctx, typ: inner.Type, lists: map[string][][]byte{}}
	pre := paramPrefix(inner.Type, s.refParam(inner.Type, p.HasParam, q.Type))
	ids := map[string]bool{}
	err = ev.chunked(slices.Values(page.IDs), true, false, func(id string) error {
		if err := ev.tick(); err != nil {
			return err
		}
		keys, err := ev.list(id)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if !bytes.HasPrefix(k, pre) {
				continue
			}
			ref, ok := keyRef(k, len(pre))
			if t, rid, found := strings.Cut(ref, "/"); ok && found && t == q.Type {
				ids[rid] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &plan{ids: ids}, nil
}

// References returns the reference values (Type/id or URLs) the current
// version of typ/id holds for param, for _include.
func (s *Store) References(ctx context.Context, typ, id, param string) ([]string, error) {
	if v := s.virtual(typ); v != nil {
		return v.References(ctx, id, param)
	}
	ev := &evaluator{s: s, ctx: ctx, typ: typ, lists: map[string][][]byte{}}
	keys, err := ev.list(id)
	if err != nil {
		return nil, err
	}
	// Keys are in key order; a store written before references were
	// indexed once may hold a local reference twice ('r' and 'j').
	var out []string
	seen := map[string]bool{}
	typPrefix := newKey(tagIndex, len(typ)+2).str(typ)
	sk := s.keysOf(typ, param)
	for _, k := range keys {
		var base int
		if param == "*" {
			if !bytes.HasPrefix(k, typPrefix) {
				continue
			}
			_, rest, ok := readStr(k[len(typPrefix):])
			if !ok {
				continue
			}
			base = len(k) - len(rest)
		} else if b, ok := sk.match(k); ok {
			base = b
		} else {
			continue
		}
		if ref, ok := keyRef(k, base); ok && !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	return out, nil
}
