package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Search runs a search over the journal: candidates come from the index
// family of a reference parameter when the query names one, else from
// the segments, within the time bounds of its date clauses; each is
// checked against every clause by m (the meaning of an indexed search)
// and against q.Filter, before paging and counting. Results are in the
// journal's order (time, then writer), which is also id order; _sort accepts
// date, _lastUpdated and _id, and entries of the same time (from several
// writers) come in id order under a date sort either way, as an indexed
// search orders ties.
func (j *Journal) Search(ctx context.Context, q *Query, m *Matcher) (Page, error) {
	return Journals{j}.Search(ctx, q, m)
}

// Search is Journal.Search over the merged entries of every journal.
func (js Journals) Search(ctx context.Context, q *Query, m *Matcher) (Page, error) {
	o, err := sortOrder(q.Sort)
	if err != nil {
		return Page{}, err
	}
	ps := js.plans(q)
	var after *jpos
	if q.Cursor != nil {
		p, err := decodeJournalCursor(q.Cursor)
		if err != nil {
			return Page{}, err
		}
		after = &p
	}
	page := Page{Total: -1}
	considered := 0
	// keep reports whether an entry is a match.
	keep := func(f *jfound) (bool, error) {
		if considered++; considered > journalConsidered {
			return false, ErrTooCostly
		}
		idx := f.rec.Index(f.at())
		if !m.Match(f.j.id(f.p), idx) {
			return false, nil
		}
		if q.Filter != nil {
			v := f.j.version(f, idx, false)
			if !q.Filter(&v) {
				return false, nil
			}
		}
		return true, nil
	}
	wantTotal := q.Total || q.Count == 0
	total := 0
	var last jpos // of the page
	// Without a total only the page is read (from the cursor's time on;
	// the entries of that time up to the cursor are passed over); with one,
	// everything, the matches before the page counted only.
	scanPs := ps
	if after != nil && !wantTotal {
		scanPs = o.fromAll(ps, *after)
	}
	err = scanIn(ctx, scanPs, o, func(f *jfound) (bool, error) {
		ok, err := keep(f)
		if err != nil || !ok {
			return true, err
		}
		total++
		if after != nil && o.cmp(f.p, *after) <= 0 {
			return true, nil
		}
		if len(page.IDs) < q.Count {
			page.IDs = append(page.IDs, f.j.id(f.p))
			last = f.p
			return true, nil
		}
		if page.Next == nil && q.Count > 0 {
			page.Next = encodeJournalCursor(last)
		}
		return wantTotal, nil
	})
	if err != nil {
		return Page{}, err
	}
	if wantTotal {
		page.Total = total
	}
	if after != nil {
		page.HasPrev = true
		prev, err := prevCursor(ctx, ps, o, *after, q.Count, keep)
		if err != nil {
			return Page{}, err
		}
		page.Prev = prev
	}
	return page, nil
}

// prevCursor returns the cursor of the page before the one that follows
// after: walking back from after (inclusive), the count matches of that
// page, then the match before them if any (nil: that page is the first).
func prevCursor(ctx context.Context, ps []jplan, o order, after jpos, count int,
	keep func(*jfound) (bool, error)) ([]byte, error) {
	back := o.reverse()
	seen := 0
	var prev []byte
	err := scanIn(ctx, back.fromAll(ps, after), back, func(f *jfound) (bool, error) {
		if back.cmp(f.p, after) < 0 {
			return true, nil // after after, in the search's order
		}
		ok, err := keep(f)
		if err != nil || !ok {
			return true, err
		}
		if seen++; seen > count {
			prev = encodeJournalCursor(f.p)
			return false, nil
		}
		return true, nil
	})
	return prev, err
}

// order is an order of results: by time (descending when desc), then by
// writer (descending when tieDesc), which is id order when both agree.
type order struct{ desc, tieDesc bool }

func (o order) cmp(a, b jpos) int {
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
func (o order) from(sp span, p jpos) span {
	if o.desc {
		sp.hi = minPos(sp.hi, jpos{p.t, math.MaxUint64})
	} else {
		sp.lo = maxPos(sp.lo, jpos{t: p.t})
	}
	return sp
}

// fromAll is from on the span of every plan.
func (o order) fromAll(ps []jplan, p jpos) []jplan {
	out := slices.Clone(ps)
	for i := range out {
		out[i].sp = o.from(out[i].sp, p)
	}
	return out
}

// sortOrder accepts the sorts that follow the journal's time order. Ties
// in time are in id order under a date sort either way, as the store's
// indexed search breaks ties (by id, ascending).
func sortOrder(sorts []Sort) (order, error) {
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
	return order{}, fmt.Errorf("%w: these results sort by date, _lastUpdated or _id only", ErrUnsupported)
}

// scanIn is scan in order o: the entries of one time are gathered and
// turned round when o orders writers against its time order.
func (j *Journal) scanIn(ctx context.Context, sp span, o order, drv *driver, fn func(*jfound) (bool, error)) error {
	if sp.empty() {
		return nil
	}
	if o.desc == o.tieDesc {
		return j.scan(ctx, sp, o.desc, drv, fn)
	}
	var run []*jfound
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
	err := j.scan(ctx, sp, o.desc, drv, func(f *jfound) (bool, error) {
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
func (j *Journal) plan(q *Query) (span, *driver) {
	sp := everything
	var drv *driver
	for _, cl := range q.Clauses {
		if cl.Not || len(cl.Preds) == 0 {
			continue
		}
		if len(cl.Preds) == 1 {
			p := cl.Preds[0]
			if p.Op == OpDate && (p.Param == "date" && !j.cfg.OwnDates || p.Param == "_lastUpdated") {
				ts := timeSpan(p.Lo, p.Hi)
				switch p.Cmp {
				case Eq:
					sp.lo, sp.hi = maxPos(sp.lo, ts.lo), minPos(sp.hi, ts.hi)
				case Ge, Gt:
					sp.lo = maxPos(sp.lo, ts.lo)
				case Le, Lt:
					sp.hi = minPos(sp.hi, ts.hi)
				}
				continue
			}
		}
		if drv != nil {
			continue
		}
		fam, ok := j.cfg.Families[cl.Preds[0].Param]
		if !ok {
			continue
		}
		var refs []string
		for _, p := range cl.Preds {
			r, ok := j.refOf(p)
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
func (j *Journal) refOf(p Pred) ([]string, bool) {
	switch p.Op {
	case OpRef:
		return []string{p.Ref}, strings.Contains(p.Ref, "/") && !strings.Contains(p.Ref, "://")
	case OpRefIn:
		return p.Refs, len(p.Refs) > 0
	case OpRefID:
		switch {
		case p.System != "":
			return []string{p.System + "/" + p.Code}, true
		case j.cfg.Targets[p.Param] != "":
			return []string{j.cfg.Targets[p.Param] + "/" + p.Code}, true
		}
	}
	return nil, false
}

// History pages the journal newest first: one entry (q.ID) or all of them.
func (j *Journal) History(ctx context.Context, q HistoryQuery) (HistoryPage, error) {
	return Journals{j}.History(ctx, q)
}

// History is Journal.History over the merged entries of every journal.
func (js Journals) History(ctx context.Context, q HistoryQuery) (HistoryPage, error) {
	var out HistoryPage
	sp := everything
	if !q.Since.IsZero() {
		sp.lo = jpos{t: q.Since.UnixMicro()}
	}
	if q.Cursor != nil {
		p, err := decodeJournalCursor(q.Cursor)
		if err != nil {
			return out, err
		}
		sp.hi = p.prev()
	}
	ps := make([]jplan, 0, len(js))
	for _, j := range js {
		jsp := sp
		if q.ID != "" {
			p, ok := j.parseID(q.ID)
			if !ok {
				continue
			}
			jsp.lo, jsp.hi = maxPos(jsp.lo, p), minPos(jsp.hi, p)
		}
		ps = append(ps, jplan{j: j, sp: jsp})
	}
	var last jpos
	err := scanIn(ctx, ps, order{desc: true, tieDesc: true}, func(f *jfound) (bool, error) {
		v := f.j.version(f, f.rec.Index(f.at()), true)
		if q.Filter != nil && !q.Filter(&v) {
			return true, nil
		}
		if len(out.Versions) == q.Count {
			out.Next = encodeJournalCursor(last)
			return false, nil
		}
		out.Versions = append(out.Versions, v)
		last = f.p
		return true, nil
	})
	return out, err
}

// A cursor is 'b' and the position of the last entry served (t, w);
// cursors of journals of before writer ids were 'a' and t.
func encodeJournalCursor(p jpos) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 1, 17), uint64(p.t))
	b[0] = 'b'
	return binary.BigEndian.AppendUint64(b, p.w)
}

func decodeJournalCursor(c []byte) (jpos, error) {
	switch {
	case len(c) == 9 && c[0] == 'a':
		return jpos{t: int64(binary.BigEndian.Uint64(c[1:]))}, nil
	case len(c) == 17 && c[0] == 'b':
		return jpos{int64(binary.BigEndian.Uint64(c[1:])), binary.BigEndian.Uint64(c[9:])}, nil
	}
	return jpos{}, ErrBadCursor
}
