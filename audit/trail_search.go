package audit

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/fhirgate/fhirgate/store"
)

// Search runs an AuditEvent search over the trail: candidates come from
// the patient, agent or entity keys when the query names one, else from
// the segments, within the time bounds of its date clauses; each is
// checked against every clause by m (the meaning of an indexed search)
// and against q.Filter, before paging and counting. Results are in the
// trail's order (time, then writer), which is also id order; _sort accepts
// date, _lastUpdated and _id, and events of the same time (from several
// writers) come in id order under a date sort either way, as an indexed
// search orders ties.
func (t *Trail) Search(ctx context.Context, q *store.Query, m *store.Matcher) (store.Page, error) {
	o, err := sortOrder(q.Sort)
	if err != nil {
		return store.Page{}, err
	}
	sp, drv := plan(q)
	var after *pos
	if q.Cursor != nil {
		p, err := decodeCursor(q.Cursor)
		if err != nil {
			return store.Page{}, err
		}
		after = &p
	}
	page := store.Page{Total: -1}
	considered := 0
	// keep reports whether an event is a match.
	keep := func(f *found) (bool, error) {
		if considered++; considered > maxConsidered {
			return false, store.ErrTooCostly
		}
		idx := f.index()
		if !m.Match(f.id(), idx) {
			return false, nil
		}
		if q.Filter != nil {
			v := f.version(idx, false)
			if !q.Filter(&v) {
				return false, nil
			}
		}
		return true, nil
	}
	if q.IDs != nil {
		// _id: exactly these events (the other clauses still apply).
		drv = &driver{listed: []pos{}}
		for _, id := range q.IDs {
			if p, ok := parseID(id); ok {
				drv.listed = append(drv.listed, p)
			}
		}
	}
	wantTotal := q.Total || q.Count == 0
	total := 0
	// Without a total only the page is read (from the cursor's time on;
	// the events of that time up to the cursor are passed over); with one,
	// everything, the matches before the page counted only.
	scanSp := sp
	if after != nil && !wantTotal {
		scanSp = o.from(sp, *after)
	}
	err = t.scanIn(ctx, scanSp, o, drv, func(f *found) (bool, error) {
		ok, err := keep(f)
		if err != nil || !ok {
			return true, err
		}
		total++
		if after != nil && o.cmp(f.p, *after) <= 0 {
			return true, nil
		}
		if len(page.IDs) < q.Count {
			page.IDs = append(page.IDs, f.id())
			return true, nil
		}
		if page.Next == nil && q.Count > 0 {
			page.Next = encodeCursor(posOf(page.IDs[len(page.IDs)-1]))
		}
		return wantTotal, nil
	})
	if err != nil {
		return store.Page{}, err
	}
	if wantTotal {
		page.Total = total
	}
	if after != nil {
		page.HasPrev = true
		prev, err := t.prevCursor(ctx, sp, o, drv, *after, q.Count, keep)
		if err != nil {
			return store.Page{}, err
		}
		page.Prev = prev
	}
	return page, nil
}

// prevCursor returns the cursor of the page before the one that follows
// after: walking back from after (inclusive), the count matches of that
// page, then the match before them if any (nil: that page is the first).
func (t *Trail) prevCursor(ctx context.Context, sp span, o order, drv *driver, after pos, count int,
	keep func(*found) (bool, error)) ([]byte, error) {
	back := o.reverse()
	seen := 0
	var prev []byte
	err := t.scanIn(ctx, back.from(sp, after), back, drv, func(f *found) (bool, error) {
		if back.cmp(f.p, after) < 0 {
			return true, nil // after after, in the search's order
		}
		ok, err := keep(f)
		if err != nil || !ok {
			return true, err
		}
		if seen++; seen > count {
			prev = encodeCursor(f.p)
			return false, nil
		}
		return true, nil
	})
	return prev, err
}

func posOf(id string) pos {
	p, _ := parseID(id)
	return p
}

// order is an order of results: by time (descending when desc), then by
// writer (descending when tieDesc), which is id order when both agree.
type order struct{ desc, tieDesc bool }

func (o order) cmp(a, b pos) int {
	if c := cmp.Compare(a.t, b.t); c != 0 {
		if o.desc {
			return -c
		}
		return c
	}
	c := cmp.Compare(a.w, b.w)
	if o.tieDesc {
		return -c
	}
	return c
}

func (o order) reverse() order { return order{!o.desc, !o.tieDesc} }

// from narrows sp to the times at or after p's, in order o.
func (o order) from(sp span, p pos) span {
	if o.desc {
		sp.hi = minPos(sp.hi, pos{p.t, math.MaxUint64})
	} else {
		sp.lo = maxPos(sp.lo, pos{t: p.t})
	}
	return sp
}

// sortOrder accepts the sorts that follow the trail's time order. Ties
// in time are in id order under a date sort either way, as the store's
// indexed search breaks ties (by id, ascending).
func sortOrder(sorts []store.Sort) (order, error) {
	switch len(sorts) {
	case 0:
		return order{}, nil // id order, which is time order
	case 1:
		switch d := sorts[0].Desc; sorts[0].Param {
		case "date", "_lastUpdated":
			return order{desc: d}, nil
		case "_id":
			return order{desc: d, tieDesc: d}, nil
		}
	}
	return order{}, fmt.Errorf("%w: AuditEvent results sort by date, _lastUpdated or _id only", store.ErrUnsupported)
}

// scanIn is scan in order o: the events of one time are gathered and
// turned round when o orders writers against its time order.
func (t *Trail) scanIn(ctx context.Context, sp span, o order, drv *driver, fn func(*found) (bool, error)) error {
	if o.desc == o.tieDesc {
		return t.scan(ctx, sp, o.desc, drv, fn)
	}
	var run []*found
	flush := func() (bool, error) {
		for i := len(run) - 1; i >= 0; i-- {
			if more, err := fn(run[i]); err != nil || !more {
				return false, err
			}
		}
		run = run[:0]
		return true, nil
	}
	stopped := false
	err := t.scan(ctx, sp, o.desc, drv, func(f *found) (bool, error) {
		if len(run) > 0 && run[0].p.t != f.p.t {
			more, err := flush()
			if err != nil || !more {
				stopped = true
				return false, err
			}
		}
		run = append(run, f)
		return true, nil
	})
	if err != nil || stopped {
		return err
	}
	_, err = flush()
	return err
}

// plan derives from q's clauses the time bounds of the matches (from its
// date and _lastUpdated clauses of one value) and, when a clause asks for
// given patients, agents or entities by reference, the index family that
// yields the candidates. The matcher still checks every clause: the plan
// only narrows what is read.
func plan(q *store.Query) (span, *driver) {
	sp := everything
	var drv *driver
	for _, cl := range q.Clauses {
		if cl.Not || len(cl.Preds) == 0 {
			continue
		}
		if len(cl.Preds) == 1 {
			p := cl.Preds[0]
			if p.Op == store.OpDate && (p.Param == "date" || p.Param == "_lastUpdated") {
				ts := timeSpan(p.Lo, p.Hi)
				switch p.Cmp {
				case store.Eq:
					sp.lo, sp.hi = maxPos(sp.lo, ts.lo), minPos(sp.hi, ts.hi)
				case store.Ge, store.Gt:
					sp.lo = maxPos(sp.lo, ts.lo)
				case store.Le, store.Lt:
					sp.hi = minPos(sp.hi, ts.hi)
				}
				continue
			}
		}
		if drv != nil {
			continue
		}
		fam, ok := families[cl.Preds[0].Param]
		if !ok {
			continue
		}
		var refs []string
		for _, p := range cl.Preds {
			r, ok := refOf(p)
			if !ok || p.Param != cl.Preds[0].Param {
				refs = nil
				break
			}
			refs = append(refs, r...)
		}
		if refs != nil {
			drv = &driver{fam: fam, refs: refs}
		}
	}
	return sp, drv
}

// refOf returns the local references a reference predicate asks for.
func refOf(p store.Pred) ([]string, bool) {
	switch p.Op {
	case store.OpRef:
		return []string{p.Ref}, strings.Contains(p.Ref, "/") && !strings.Contains(p.Ref, "://")
	case store.OpRefIn:
		return p.Refs, len(p.Refs) > 0
	case store.OpRefID:
		switch {
		case p.System != "":
			return []string{p.System + "/" + p.Code}, true
		case p.Param == "patient":
			return []string{"Patient/" + p.Code}, true
		}
	}
	return nil, false
}

// History pages the trail newest first: one event (q.ID) or all of them.
func (t *Trail) History(ctx context.Context, q store.HistoryQuery) (store.HistoryPage, error) {
	var out store.HistoryPage
	sp := everything
	if !q.Since.IsZero() {
		sp.lo = pos{t: q.Since.UnixMicro()}
	}
	if q.Cursor != nil {
		p, err := decodeCursor(q.Cursor)
		if err != nil {
			return out, err
		}
		sp.hi = p.prev()
	}
	if q.ID != "" {
		p, ok := parseID(q.ID)
		if !ok {
			return out, nil
		}
		sp.lo, sp.hi = maxPos(sp.lo, p), minPos(sp.hi, p)
	}
	var last pos
	err := t.scan(ctx, sp, true, nil, func(f *found) (bool, error) {
		v := f.version(f.index(), true)
		if q.Filter != nil && !q.Filter(&v) {
			return true, nil
		}
		if len(out.Versions) == q.Count {
			out.Next = encodeCursor(last)
			return false, nil
		}
		out.Versions = append(out.Versions, v)
		last = f.p
		return true, nil
	})
	return out, err
}

// A cursor is 'b' and the position of the last event served (t, w);
// cursors of one process's trails were 'a' and t.
func encodeCursor(p pos) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 1, 17), uint64(p.t))
	b[0] = 'b'
	return binary.BigEndian.AppendUint64(b, p.w)
}

func decodeCursor(c []byte) (pos, error) {
	switch {
	case len(c) == 9 && c[0] == 'a':
		return pos{t: int64(binary.BigEndian.Uint64(c[1:]))}, nil
	case len(c) == 17 && c[0] == 'b':
		return pos{int64(binary.BigEndian.Uint64(c[1:])), binary.BigEndian.Uint64(c[9:])}, nil
	}
	return pos{}, store.ErrBadCursor
}
