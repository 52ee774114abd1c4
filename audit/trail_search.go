package audit

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/fhirgate/fhirgate/store"
)

// Search runs an AuditEvent search over the trail: candidates come from
// the patient, agent or entity keys when the query names one, else from
// the segments, within the time bounds of its date clauses; each is
// checked against every clause by m (the meaning of an indexed search)
// and against q.Filter, before paging and counting. Results are in time
// order, which is also id order; _sort accepts date, _lastUpdated and _id.
func (t *Trail) Search(ctx context.Context, q *store.Query, m *store.Matcher) (store.Page, error) {
	desc, err := sortOrder(q.Sort)
	if err != nil {
		return store.Page{}, err
	}
	sp, drv := plan(q)
	var after *int64
	if q.Cursor != nil {
		ts, err := decodeCursor(q.Cursor)
		if err != nil {
			return store.Page{}, err
		}
		after = &ts
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
		drv = &driver{}
		for _, id := range q.IDs {
			if ts, ok := parseID(id); ok {
				drv.listed = append(drv.listed, ts)
			}
		}
	}
	wantTotal := q.Total || q.Count == 0
	total := 0
	pageSp := sp
	if after != nil {
		if desc {
			pageSp.hi = min(pageSp.hi, *after-1)
		} else {
			pageSp.lo = max(pageSp.lo, *after+1)
		}
	}
	// Without a total only the page is read; with one, everything, the
	// matches before the page counted only.
	scanSp := pageSp
	if wantTotal {
		scanSp = sp
	}
	err = t.scan(ctx, scanSp, desc, drv, func(f *found) (bool, error) {
		ok, err := keep(f)
		if err != nil || !ok {
			return true, err
		}
		total++
		if f.ts < pageSp.lo || f.ts > pageSp.hi {
			return true, nil
		}
		if len(page.IDs) < q.Count {
			page.IDs = append(page.IDs, f.id())
			return true, nil
		}
		if page.Next == nil && q.Count > 0 {
			page.Next = encodeCursor(timeOf(page.IDs[len(page.IDs)-1]))
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
		prev, err := t.prevCursor(ctx, sp, desc, drv, *after, q.Count, keep)
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
func (t *Trail) prevCursor(ctx context.Context, sp span, desc bool, drv *driver, after int64, count int,
	keep func(*found) (bool, error)) ([]byte, error) {
	back := sp
	if desc {
		back.lo = max(back.lo, after)
	} else {
		back.hi = min(back.hi, after)
	}
	seen := 0
	var prev []byte
	err := t.scan(ctx, back, !desc, drv, func(f *found) (bool, error) {
		ok, err := keep(f)
		if err != nil || !ok {
			return true, err
		}
		if seen++; seen > count {
			prev = encodeCursor(f.ts)
			return false, nil
		}
		return true, nil
	})
	return prev, err
}

func timeOf(id string) int64 {
	ts, _ := parseID(id)
	return ts
}

// sortOrder accepts the sorts that follow the trail's time order.
func sortOrder(sorts []store.Sort) (desc bool, err error) {
	switch len(sorts) {
	case 0:
		return false, nil // id order, which is time order
	case 1:
		switch sorts[0].Param {
		case "date", "_lastUpdated", "_id":
			return sorts[0].Desc, nil
		}
	}
	return false, fmt.Errorf("%w: AuditEvent results sort by date, _lastUpdated or _id only", store.ErrUnsupported)
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
				switch p.Cmp {
				case store.Eq:
					sp.lo, sp.hi = max(sp.lo, p.Lo), min(sp.hi, p.Hi)
				case store.Ge, store.Gt:
					sp.lo = max(sp.lo, p.Lo)
				case store.Le, store.Lt:
					sp.hi = min(sp.hi, p.Hi)
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
		sp.lo = q.Since.UnixMicro()
	}
	if q.Cursor != nil {
		ts, err := decodeCursor(q.Cursor)
		if err != nil {
			return out, err
		}
		sp.hi = ts - 1
	}
	if q.ID != "" {
		ts, ok := parseID(q.ID)
		if !ok {
			return out, nil
		}
		sp.lo, sp.hi = max(sp.lo, ts), min(sp.hi, ts)
	}
	err := t.scan(ctx, sp, true, nil, func(f *found) (bool, error) {
		v := f.version(f.index(), true)
		if q.Filter != nil && !q.Filter(&v) {
			return true, nil
		}
		if len(out.Versions) == q.Count {
			out.Next = encodeCursor(out.Versions[len(out.Versions)-1].LastUpdated.UnixMicro())
			return false, nil
		}
		out.Versions = append(out.Versions, v)
		return true, nil
	})
	return out, err
}

// A cursor is 'a' and the time of the last event served.
func encodeCursor(ts int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{'a'}, uint64(ts))
}

func decodeCursor(c []byte) (int64, error) {
	if len(c) != 9 || c[0] != 'a' {
		return 0, store.ErrBadCursor
	}
	return int64(binary.BigEndian.Uint64(c[1:])), nil
}
