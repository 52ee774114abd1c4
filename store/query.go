package store

import (
	"context"
	"errors"
	"math"
	"strings"
)

// Query is a search over one resource type: the resources that satisfy
// every clause, in sort order, one page at a time.
type Query struct {
	Type string
	// IDs, when not nil, restricts results to these ids (_id).
	IDs     []string
	Clauses []Clause
	Sort    []Sort
	// Count is the page size; 0 asks only for the total.
	Count int
	// Cursor continues after the last row of a previous page (Page.Next).
	Cursor []byte
	// Total asks for the number of matches even where it costs a scan.
	Total bool
	// Filter, if set, keeps only the resources it accepts (given their
	// current record: type, id, compartments, creator). It applies before
	// paging and counting, and to the resources behind chained parameters
	// and _has, so that nothing it refuses can show through a search.
	Filter func(*Version) bool
}

// Clause holds when any of its predicates holds (a comma-separated list
// of values). Not negates the whole clause (token :not).
type Clause struct {
	Preds []Pred
	Not   bool
}

// PredOp says what a predicate tests.
type PredOp uint8

// Predicate operations.
const (
	OpStringStarts    PredOp = iota + 1 // normalized text starts with Text
	OpStringExact                       // text equals Text exactly
	OpStringContains                    // normalized text contains Text
	OpTokenCode                         // code equals Code, any system
	OpTokenSystemCode                   // system equals System ("" = no system) and code equals Code
	OpTokenSystem                       // system equals System, any code
	OpTokenText                         // normalized display text starts with Text
	OpRef                               // reference equals Ref ("Type/id" or URL)
	OpRefID                             // reference to id Code of any type (or of type System if set)
	OpRefIn                             // reference equals one of Refs
	OpDate                              // date range comparison (Cmp, Lo, Hi)
	OpNumber                            // number comparison (Cmp, NumLo, NumHi)
	OpQuantity                          // quantity comparison (Cmp, NumLo, NumHi, System, Code)
	OpURI                               // uri equals Text
	OpURIBelow                          // uri starts with Text
	OpURIAbove                          // Text starts with the uri
	OpMissing                           // the parameter has no value (Missing true) or has one
	OpChain                             // reference to a Target resource matching Inner
	OpHas                               // referenced by a resource matching Inner through HasParam
)

// Cmp is a search prefix (search.html#prefix).
type Cmp uint8

// Comparison prefixes.
const (
	Eq Cmp = iota
	Ne
	Gt
	Lt
	Ge
	Le
	Sa
	Eb
	Ap
)

// Pred is one test on one search parameter's index.
type Pred struct {
	Op    PredOp
	Param string

	Text, System, Code string
	Ref                string
	Refs               []string

	Cmp          Cmp
	Lo, Hi       int64   // OpDate: the query value's instant range, inclusive
	NumLo, NumHi float64 // OpNumber, OpQuantity: the query value's range, [NumLo, NumHi)

	Missing bool

	// OpChain: Inner is a query on the referenced type; Param is the
	// reference parameter of this type.
	// OpHas: Inner is a query on another type whose reference parameter
	// HasParam points at this type.
	Inner    *Query
	HasParam string
}

// Sort orders results by a parameter's values (ascending: each
// resource's lowest value; descending: its highest).
type Sort struct {
	Param string
	Desc  bool
	// Kind is the parameter's index kind; "_id" and "_lastUpdated" are
	// built in.
	Kind IndexKind
}

// ErrTooCostly: the search would have to consider too many resources.
var ErrTooCostly = errors.New("search too costly")

// plan is a predicate compiled to key ranges and an optional filter on
// the key, or to a fixed set of ids.
type plan struct {
	ranges []Range
	filter func(key []byte) bool
	ids    map[string]bool // set for chain, _has and ref-in results
}

func (s *Store) compile(ctx context.Context, q *Query, p *Pred, depth int) (*plan, error) {
	pre := func(sub byte) keyBuf { return indexPrefix(q.Type, p.Param, sub) }
	prefix := func(k keyBuf) *plan { return &plan{ranges: []Range{PrefixRange(k)}} }
	switch p.Op {
	case OpStringStarts:
		// Unterminated: every normalized value that starts with Text.
		return prefix(append(pre(subString), Normalize(p.Text)...)), nil
	case OpStringExact:
		return prefix(pre(subString).str(Normalize(p.Text)).str(p.Text)), nil
	case OpStringContains:
		want := Normalize(p.Text)
		return &plan{ranges: []Range{PrefixRange(pre(subString))}, filter: func(k []byte) bool {
			norm, _, ok := readStr(k[len(pre(subString)):])
			return ok && strings.Contains(norm, want)
		}}, nil
	case OpTokenCode:
		return prefix(pre(subToken).str(p.Code)), nil
	case OpTokenSystemCode:
		return prefix(pre(subToken).str(p.Code).str(p.System)), nil
	case OpTokenSystem:
		// Every code of one system: a scan of the parameter's tokens.
		base := pre(subToken)
		want := p.System
		return &plan{ranges: []Range{PrefixRange(base)}, filter: func(k []byte) bool {
			_, rest, ok := readStr(k[len(base):])
			if !ok {
				return false
			}
			sys, _, ok := readStr(rest)
			return ok && sys == want
		}}, nil
	case OpTokenText:
		// Texts without a code have keys of their own; a coded value's
		// display rides in its code key, found by a scan of the
		// parameter's codes (as for :contains).
		want := Normalize(p.Text)
		codes := pre(subToken)
		return &plan{ranges: []Range{PrefixRange(append(pre(subTokenTxt), want...)), PrefixRange(codes)},
			filter: func(k []byte) bool {
				if k[len(codes)-1] != subToken {
					return true
				}
				text, ok := tokenText(k, len(codes))
				return ok && strings.HasPrefix(text, want)
			}}, nil
	case OpRef:
		return prefix(refPrefix(paramPrefix(q.Type, s.refOwner(q.Type, p.Param, p.Ref)), p.Ref)), nil
	case OpRefID:
		// A shared parameter's local references are all of its target
		// type, and held by its base parameter's keys.
		param, typ := p.Param, p.System
		if base, target, ok := s.shared(q.Type, p.Param); ok && (typ == "" || typ == target) {
			param, typ = base, target
		}
		k := indexPrefix(q.Type, param, subRefID).str(p.Code)
		if typ != "" {
			k = k.str(typ)
		}
		return prefix(k), nil
	case OpRefIn:
		pl := &plan{}
		for _, r := range p.Refs {
			base := paramPrefix(q.Type, s.refOwner(q.Type, p.Param, r))
			pl.ranges = append(pl.ranges, PrefixRange(refPrefix(base, r)))
		}
		return pl, nil
	case OpURI:
		return prefix(pre(subURI).str(p.Text)), nil
	case OpURIBelow:
		return prefix(append(pre(subURI), p.Text...)), nil
	case OpURIAbove:
		base := pre(subURI)
		return &plan{ranges: []Range{PrefixRange(base)}, filter: func(k []byte) bool {
			u, _, ok := readStr(k[len(base):])
			return ok && strings.HasPrefix(p.Text, u)
		}}, nil
	case OpMissing:
		// Missing=false: resources with any key of the parameter.
		// Missing=true is the complement, a negated clause.
		sk := s.keysOf(q.Type, p.Param)
		if sk.other == nil {
			return prefix(sk.own), nil
		}
		return &plan{ranges: []Range{PrefixRange(sk.own), PrefixRange(append(sk.other, subRefID))},
			filter: func(k []byte) bool { _, ok := sk.match(k); return ok }}, nil
	case OpDate:
		return datePlan(pre(subDateLo), pre(subDateHi), p), nil
	case OpNumber:
		return numberPlan(pre(subNumber), p), nil
	case OpQuantity:
		return numberPlan(pre(subQuantity).str(p.System).str(p.Code), p), nil
	case OpChain, OpHas:
		if depth > 2 {
			return nil, ErrTooCostly
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return s.linkPlan(ctx, q, p, depth)
	}
	return nil, errors.New("store: unknown predicate")
}

// datePlan compiles a date comparison. A resource value is the inclusive
// range [lo, hi]; the query value is [Lo, Hi] (search.html#date).
func datePlan(loKeys, hiKeys keyBuf, p *Pred) *plan {
	// Keys: loKeys lo hi id, hiKeys hi lo id. Each bound below extends a
	// base: freeze them so that no two extensions share an array.
	loKeys, hiKeys = loKeys.frozen(), hiKeys.frozen()
	at := func(k keyBuf, n int64) keyBuf { return k.u64(orderedInt(n)) }
	after := func(k keyBuf, n int64) []byte { return PrefixEnd(at(k, n)) }
	second := func(k []byte, base int) int64 { return unorderedInt(beU64(k[base+8:])) }
	lb := len(loKeys)
	// Only wide values have end keys (hiKeys: hi lo); a narrow value ends
	// within narrowDate of its start, so its end is found among the
	// starts, a bounded scan, and read from the start key.
	hiOf := func(k []byte) int64 {
		if k[lb-1] == subDateHi {
			return unorderedInt(beU64(k[lb:]))
		}
		return second(k, lb)
	}
	endsFrom := func(a int64) *plan { // values with hi >= a
		return &plan{ranges: []Range{
			{Start: at(hiKeys, a), End: PrefixEnd(hiKeys)},
			{Start: at(loKeys, satAdd(a, -int64(narrowDate))), End: PrefixEnd(loKeys)},
		}, filter: func(k []byte) bool { return hiOf(k) >= a }}
	}
	switch p.Cmp {
	case Eq: // the value lies within the query range
		return &plan{ranges: []Range{{Start: at(loKeys, p.Lo), End: after(loKeys, p.Hi)}},
			filter: func(k []byte) bool { return second(k, lb) <= p.Hi }}
	case Ne:
		return &plan{ranges: []Range{PrefixRange(loKeys)}, filter: func(k []byte) bool {
			lo, hi := unorderedInt(beU64(k[lb:])), second(k, lb)
			return !(lo >= p.Lo && hi <= p.Hi)
		}}
	case Gt: // some of the value is after the query range
		return endsFrom(satAdd(p.Hi, 1))
	case Lt:
		return &plan{ranges: []Range{{Start: loKeys, End: at(loKeys, p.Lo)}}}
	case Ge:
		return endsFrom(p.Lo)
	case Le:
		return &plan{ranges: []Range{{Start: loKeys, End: after(loKeys, p.Hi)}}}
	case Sa: // starts after the query range
		return &plan{ranges: []Range{{Start: after(loKeys, p.Hi), End: PrefixEnd(loKeys)}}}
	case Eb: // ends before it
		return &plan{ranges: []Range{{Start: hiKeys, End: at(hiKeys, p.Lo)}, {Start: loKeys, End: at(loKeys, p.Lo)}},
			filter: func(k []byte) bool { return hiOf(k) < p.Lo }}
	case Ap: // overlaps the query range (the caller widens it, search.html#prefix)
		return &plan{ranges: []Range{{Start: loKeys, End: after(loKeys, p.Hi)}},
			filter: func(k []byte) bool { return second(k, lb) >= p.Lo }}
	}
	return &plan{}
}

// numberPlan compiles a number or quantity comparison: the resource value
// is a point n, the query value a range [NumLo, NumHi) from its precision.
func numberPlan(keys keyBuf, p *Pred) *plan {
	keys = keys.frozen()
	at := func(f float64) []byte { return keys.u64(orderedFloat(f)) }
	end := PrefixEnd(keys)
	lo, hi := p.NumLo, p.NumHi
	switch p.Cmp {
	case Eq:
		return &plan{ranges: []Range{{Start: at(lo), End: at(hi)}}}
	case Ne:
		return &plan{ranges: []Range{{Start: keys, End: at(lo)}, {Start: at(hi), End: end}}}
	case Gt, Sa:
		return &plan{ranges: []Range{{Start: at(hi), End: end}}}
	case Lt, Eb:
		return &plan{ranges: []Range{{Start: keys, End: at(lo)}}}
	case Ge:
		return &plan{ranges: []Range{{Start: at(lo), End: end}}}
	case Le:
		return &plan{ranges: []Range{{Start: keys, End: at(hi)}}}
	case Ap:
		w := math.Abs((lo+hi)/2) * 0.1
		return &plan{ranges: []Range{{Start: at(lo - w), End: at(hi + w)}}}
	}
	return &plan{}
}

func beU64(b []byte) uint64 {
	v, _, _ := readU64(b)
	return v
}

// dateWindow is the candidate plan of one date parameter's window.
type dateWindow struct {
	param string
	plan  clausePlan
}

// dateWindows returns, for each date parameter that q's clauses bound
// from both sides, a clause plan whose matches include every resource
// matching all those clauses: a value with hi >= A (each lower bound
// implies it) and lo <= B (each upper bound implies it). It reads:
//
//   - values starting in [A-narrowDate, B] and ending at or after A (a
//     narrow value that overlaps the window starts there);
//   - values ending in [A, B] (only wide values have end keys);
//   - wide values spanning it, from their own family;
//   - resources with several values of the parameter (one bound may hold
//     through one value and the other through another).
//
// A window is a superset: the clauses are still checked.
func dateWindows(typ string, clauses []Clause) []dateWindow {
	type bounds struct {
		a, b       int64
		hasA, hasB bool
	}
	var params []string
	var win map[string]*bounds
	for _, cl := range clauses {
		p, ok := dateBound(cl)
		if !ok {
			continue
		}
		w := win[p.Param]
		if w == nil {
			if win == nil {
				win = map[string]*bounds{}
			}
			w = &bounds{a: math.MinInt64, b: math.MaxInt64}
			win[p.Param] = w
			params = append(params, p.Param)
		}
		lower := func(v int64) { w.a, w.hasA = max(w.a, v), true }
		upper := func(v int64) { w.b, w.hasB = min(w.b, v), true }
		switch p.Cmp {
		case Ge:
			lower(p.Lo)
		case Gt, Sa:
			lower(satAdd(p.Hi, 1))
		case Le:
			upper(p.Hi)
		case Lt, Eb:
			upper(satAdd(p.Lo, -1))
		case Eq, Ap:
			lower(p.Lo)
			upper(p.Hi)
		}
	}
	var out []dateWindow
	for _, param := range params {
		w := win[param]
		if !w.hasA || !w.hasB {
			continue
		}
		pre := func(sub byte) keyBuf { return indexPrefix(typ, param, sub).frozen() }
		loKeys, hiKeys, wide := pre(subDateLo), pre(subDateHi), pre(subDateWide)
		at := func(k keyBuf, n int64) []byte { return k.u64(orderedInt(n)) }
		hiAbove := func(base int) func(k []byte) bool {
			return func(k []byte) bool { return unorderedInt(beU64(k[base+8:])) > w.b }
		}
		var pls []*plan
		// Narrow values overlapping it start at most narrowDate before A.
		if from := satAdd(w.a, -int64(narrowDate)); from <= w.b {
			lb := len(loKeys)
			pls = append(pls, &plan{ranges: []Range{{Start: at(loKeys, from), End: PrefixEnd(at(loKeys, w.b))}},
				filter: func(k []byte) bool { return unorderedInt(beU64(k[lb+8:])) >= w.a }})
		}
		if w.a <= w.b { // wide values ending in it
			pls = append(pls, &plan{ranges: []Range{{Start: at(hiKeys, w.a), End: PrefixEnd(at(hiKeys, w.b))}}})
		}
		pls = append(pls,
			&plan{ranges: []Range{{Start: wide, End: at(wide, w.a)}}, filter: hiAbove(len(wide))},
			&plan{ranges: []Range{PrefixRange(pre(subDateMany))}})
		out = append(out, dateWindow{param: param, plan: clausePlan{plans: pls}})
	}
	return out
}

// dateBound returns the predicate of a clause that is one date
// comparison (not negated, one value).
func dateBound(cl Clause) (*Pred, bool) {
	if cl.Not || len(cl.Preds) != 1 || cl.Preds[0].Op != OpDate {
		return nil, false
	}
	return &cl.Preds[0], true
}

// satAdd is a+d, saturated at the int64 limits.
func satAdd(a, d int64) int64 {
	switch {
	case d > 0 && a > math.MaxInt64-d:
		return math.MaxInt64
	case d < 0 && a < math.MinInt64-d:
		return math.MinInt64
	}
	return a + d
}
