package store

import (
	"context"
	"errors"
	"fmt"
)

// Virtual is a resource type kept in a layout of its own and written by
// one component: AuditEvents live in a Journal (compact segments), because
// every audited read writes one and the general layout (a current record,
// history keys, an index list and a key per index value) costs many times
// more. The store answers reads, searches,
// history and leaf lookups of the type from it, and refuses writes of it
// (ErrReadOnly). Its resources have one version each.
type Virtual interface {
	// Read returns the resource's version with its body, or ErrNotFound.
	Read(ctx context.Context, id string) (Version, error)
	// Search runs q, whose clauses m checks against a resource's index
	// values with the same meaning as an indexed search. It may refuse what
	// it cannot do with ErrUnsupported.
	Search(ctx context.Context, q *Query, m *Matcher) (Page, error)
	// History pages the type's versions (ID empty) or one resource's.
	History(ctx context.Context, q HistoryQuery) (HistoryPage, error)
	// LeafIndex is the log position of the version's leaf, or ErrNotFound.
	LeafIndex(ctx context.Context, id string, vid uint64) (uint64, error)
	// References returns the resource's values of a reference parameter.
	References(ctx context.Context, id, param string) ([]string, error)
}

var (
	// ErrReadOnly refuses a write of a type the gateway alone writes.
	ErrReadOnly = errors.New("store: this resource type is written by the gateway only")
	// ErrUnsupported refuses a search a virtual type cannot run.
	ErrUnsupported = errors.New("store: search not supported")
)

// virtual returns the component keeping typ, or nil.
func (s *Store) virtual(typ string) Virtual {
	return s.opts.Virtual[typ]
}

// Matcher checks a resource's index values against a query's clauses,
// with the meaning an indexed search gives them (chained parameters and
// _has are resolved once, when the matcher is made).
type Matcher struct {
	typ string
	cps []clausePlan
}

// NewMatcher compiles q's clauses.
func (s *Store) NewMatcher(ctx context.Context, q *Query) (*Matcher, error) {
	cps, err := s.compileClauses(ctx, q, 0)
	if err != nil {
		return nil, err
	}
	return &Matcher{typ: q.Type, cps: cps}, nil
}

// Match reports whether the resource id with index values idx satisfies
// every clause.
func (m *Matcher) Match(id string, idx []IndexValue) bool {
	if len(m.cps) == 0 {
		return true
	}
	keys := resourceKeys(m.typ, id, idx, nil) // virtual types share no keys
	for _, cp := range m.cps {
		if clauseHolds(cp, id, keys) == cp.not {
			return false
		}
	}
	return true
}

// virtualRefs returns the references a virtual resource holds for param,
// for _has.
func virtualRefs(ctx context.Context, v Virtual, ids []string, param string) (map[string][]string, error) {
	out := make(map[string][]string, len(ids))
	for _, id := range ids {
		refs, err := v.References(ctx, id, param)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		out[id] = refs
	}
	return out, nil
}

func readOnly(typ string) error { return fmt.Errorf("%w: %s", ErrReadOnly, typ) }
