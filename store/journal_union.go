package store

import (
	"context"
	"iter"
	"strings"
)

// Journals serve several journals of one resource type as one Virtual
// type: AuditEvent is the gateway's own trail and the events clients
// record, each in a journal (keyspace) of its own. An id names its
// journal by its IDPrefix (no prefix may start another); searches and
// histories merge the journals' entries in one order (time, then writer:
// positions do not repeat across journals, whose writer ids are drawn
// apart), so one cursor, a position, pages them all.
type Journals []*Journal

var _ Virtual = Journals(nil)

// of returns the journal whose ids start like id, or nil.
func (js Journals) of(id string) *Journal {
	for _, j := range js {
		if strings.HasPrefix(id, j.cfg.IDPrefix) {
			return j
		}
	}
	return nil
}

// Read returns the entry id of the journal it names.
func (js Journals) Read(ctx context.Context, id string) (Version, error) {
	j := js.of(id)
	if j == nil {
		return Version{}, ErrNotFound
	}
	return j.Read(ctx, id)
}

// LeafIndex returns the log position of the entry's leaf.
func (js Journals) LeafIndex(ctx context.Context, id string, vid uint64) (uint64, error) {
	j := js.of(id)
	if j == nil {
		return 0, ErrNotFound
	}
	return j.LeafIndex(ctx, id, vid)
}

// References returns the entry's values of a reference parameter.
func (js Journals) References(ctx context.Context, id, param string) ([]string, error) {
	j := js.of(id)
	if j == nil {
		return nil, ErrNotFound
	}
	return j.References(ctx, id, param)
}

// jplan is what a search reads of one journal: a span, and the index
// family that yields its candidates (nil: the segments).
type jplan struct {
	j   *Journal
	sp  span
	drv *driver
}

// plans plans q over every journal (Journal.plan); _id lists the entries
// of each journal its ids name.
func (js Journals) plans(q *Query) []jplan {
	ps := make([]jplan, len(js))
	for i, j := range js {
		ps[i].j = j
		ps[i].sp, ps[i].drv = j.plan(q)
		if q.IDs != nil {
			// _id: exactly these entries (the other clauses still apply).
			drv := &driver{listed: []jpos{}}
			for _, id := range q.IDs {
				if p, ok := j.parseID(id); ok {
					drv.listed = append(drv.listed, p)
				}
			}
			ps[i].drv = drv
		}
	}
	return ps
}

// scanIn calls fn with the entries of every plan in order o, merged,
// until fn returns false.
func scanIn(ctx context.Context, ps []jplan, o order, fn func(*jfound) (bool, error)) error {
	if len(ps) == 1 {
		return ps[0].j.scanIn(ctx, ps[0].sp, o, ps[0].drv, fn)
	}
	type head struct {
		f    *jfound
		next func() (*jfound, error, bool)
	}
	heads := make([]head, 0, len(ps))
	for _, p := range ps {
		if p.sp.empty() {
			continue
		}
		next, stop := iter.Pull2(iter.Seq2[*jfound, error](func(yield func(*jfound, error) bool) {
			stopped := false
			err := p.j.scanIn(ctx, p.sp, o, p.drv, func(f *jfound) (bool, error) {
				if !yield(f, nil) {
					stopped = true
					return false, nil
				}
				return true, nil
			})
			if err != nil && !stopped {
				yield(nil, err)
			}
		}))
		defer stop()
		f, err, ok := next()
		if err != nil {
			return err
		}
		if ok {
			heads = append(heads, head{f, next})
		}
	}
	for len(heads) > 0 {
		// The first head in order o; of equal positions (never expected),
		// the first journal's.
		k := 0
		for i := 1; i < len(heads); i++ {
			if o.cmp(heads[i].f.p, heads[k].f.p) < 0 {
				k = i
			}
		}
		if more, err := fn(heads[k].f); err != nil || !more {
			return err
		}
		f, err, ok := heads[k].next()
		switch {
		case err != nil:
			return err
		case ok:
			heads[k].f = f
		default:
			heads = append(heads[:k], heads[k+1:]...)
		}
	}
	return nil
}
