package bulk

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/store"
)

// typeFilter is one _typeFilter compiled for the runner: the store's
// search matcher, which checks a resource's index values with the meaning
// an indexed search gives its parameters.
type typeFilter struct {
	ids []string // _id, when given
	m   *store.Matcher
}

// filtersOf compiles the job's _typeFilter values for typ (nil: none, the
// type is not filtered). The kick-off checked them; they are parsed again
// here, as of the job's transaction time (a takeover parses the same).
func (r *runner) filtersOf(ctx context.Context, typ string) ([]typeFilter, error) {
	var out []typeFilter
	for _, f := range r.j.Req.TypeFilters {
		t, query, _ := strings.Cut(f, "?")
		if t != typ {
			continue
		}
		params, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("bulk: _typeFilter %q: %w", f, err)
		}
		q, err := search.ParseQuery(typ, params, search.Options{Base: r.j.Req.Base, Now: r.j.TxTime})
		if err != nil {
			return nil, fmt.Errorf("bulk: _typeFilter %q: %w", f, err)
		}
		m, err := r.x.st.NewMatcher(ctx, &q.Store)
		if err != nil {
			return nil, fmt.Errorf("bulk: _typeFilter %q: %w", f, err)
		}
		out = append(out, typeFilter{ids: q.Store.IDs, m: m})
	}
	return out, nil
}

// matches reports whether v matches one of the filters (they are OR-ed:
// export.html#_typefilter). Its index values are extracted from its body,
// as a write extracts them: one resource in memory at a time, whatever
// the size of the type.
func matches(filters []typeFilter, v *store.Version) (bool, error) {
	res, err := fhirjson.Parse(v.Body, fhirjson.Limits{})
	if err != nil {
		return false, fmt.Errorf("bulk: %s/%s: %w", v.Type, v.ID, err)
	}
	idx, err := search.Extract(v.Type, &res)
	if err != nil {
		return false, fmt.Errorf("bulk: %s/%s: %w", v.Type, v.ID, err)
	}
	for _, f := range filters {
		if (f.ids == nil || slices.Contains(f.ids, v.ID)) && f.m.Match(v.ID, idx) {
			return true, nil
		}
	}
	return false, nil
}
