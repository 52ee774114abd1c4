package rest

import (
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// References inside a batch or transaction entry (http.html#trules):
// a fullUrl of another entry ("urn:uuid:...") becomes the id that entry
// resolved to, and a conditional reference ("Practitioner?identifier=
// http://hl7.org/fhir/sid/us-npi|9999955949", as Synthea writes them)
// becomes the literal reference of the one resource its criteria match,
// before the entry is stored: no stored reference is a search URL.
//
// A conditional reference is resolved as the caller: what the caller may
// not see does not match (the answer is the same as for no resource at
// all), and the searches run within the request's budget. In a
// transaction, the resources its own entries create or replace match too
// (with their content as sent), and the stored versions of those it
// replaces or deletes no longer do.

// refResolver rewrites the references of one entry at a time.
type refResolver struct {
	s  *Server
	c  *fiber.Ctx
	rw *rewrites
	// ids maps the fullUrls of the transaction's entries to Type/id.
	ids map[string]string
	// entries are the transaction's entries (nil for a batch entry).
	entries []*txEntry
	// The entries' own index values, made when a conditional reference to
	// their type first needs them.
	pending map[*txEntry][]store.IndexValue
	indexed map[string]bool // types whose entries are in pending
	// memo holds the answer for each conditional reference already met:
	// a patient bundle names the same practitioner hundreds of times.
	memo map[string]refAnswer
	path []string // where the walk is, for the error's expression
	// resolved counts the conditional references rewritten so far.
	resolved int
}

type refAnswer struct {
	to  string
	err error
}

func (s *Server) newRefResolver(c *fiber.Ctx, ids map[string]string, entries []*txEntry, rw *rewrites) *refResolver {
	return &refResolver{s: s, c: c, rw: rw, ids: ids, entries: entries,
		pending: map[*txEntry][]store.IndexValue{}, indexed: map[string]bool{}, memo: map[string]refAnswer{}}
}

// rewrite resolves every Reference.reference in v, the entry's resource:
// nested at any depth, in extensions and in contained resources too ("#x",
// a reference to a contained resource, is left as it is).
func (r *refResolver) rewrite(v *fhirjson.Value) error {
	r.path = append(r.path[:0], "resource")
	before := r.resolved
	if err := r.walk(v); err != nil {
		return err
	}
	if r.resolved > before {
		// The entry was validated while its conditional references were
		// search URLs, which name no target type: validate it again now
		// that they are literal, so that a reference to a type the
		// element does not allow (a Practitioner as an Encounter's
		// serviceProvider) is refused as it would be if sent literally.
		if _, err := fhir.Parse(fhirjson.Canonical(v)); err != nil {
			return err
		}
	}
	return nil
}

func (r *refResolver) walk(v *fhirjson.Value) error {
	switch v.Kind {
	case fhirjson.Array:
		last := len(r.path) - 1
		key := r.path[last]
		for i := range v.Items {
			r.path[last] = key + "[" + strconv.Itoa(i) + "]"
			if err := r.walk(&v.Items[i]); err != nil {
				return err
			}
		}
		r.path[last] = key
	case fhirjson.Object:
		for i := range v.Members {
			m := &v.Members[i]
			if m.Value.Kind != fhirjson.Array && m.Value.Kind != fhirjson.Object && (m.Key != "reference" || m.Value.Kind != fhirjson.String) {
				continue
			}
			r.path = append(r.path, m.Key)
			var err error
			if m.Key == "reference" && m.Value.Kind == fhirjson.String {
				err = r.reference(&m.Value.Str)
			} else {
				err = r.walk(&m.Value)
			}
			if err != nil {
				return err
			}
			r.path = r.path[:len(r.path)-1]
		}
	}
	return nil
}

func (r *refResolver) reference(at *string) error {
	ref := *at
	if to, ok := r.ids[ref]; ok {
		r.rw.set(at, to)
		return nil
	}
	if strings.HasPrefix(ref, "urn:uuid:") || strings.HasPrefix(ref, "urn:oid:") {
		if r.entries == nil {
			return nil // a batch's entries do not refer to one another
		}
		return r.fail(fiber.StatusBadRequest, "invalid", "the reference "+truncate(ref, 100)+" is to no entry of the transaction")
	}
	typ, crit, ok := r.conditional(ref)
	if !ok {
		return nil
	}
	if !fhir.IsResourceType(typ) {
		return r.fail(fiber.StatusBadRequest, "invalid", "the conditional reference "+truncate(ref, 100)+" is to an unknown resource type")
	}
	a, seen := r.memo[ref]
	if !seen {
		a.to, a.err = r.resolve(typ, crit)
		r.memo[ref] = a
	}
	if a.err != nil {
		return r.failWith(a.err, ref)
	}
	r.rw.set(at, a.to)
	r.resolved++
	return nil
}

// conditional splits "Type?criteria", also written as an absolute URL
// under this server's base, into type and criteria.
func (r *refResolver) conditional(ref string) (typ, crit string, ok bool) {
	path, crit, ok := strings.Cut(ref, "?")
	if !ok {
		return "", "", false
	}
	if rel, abs := strings.CutPrefix(path, r.s.base(r.c)+"/"); abs {
		path = rel
	}
	if path == "" || strings.ContainsAny(path, "/:#") {
		return "", "", false // a URL elsewhere, or not a search
	}
	return path, crit, true
}

// errNoMatch and errSeveral are the failures of a conditional reference
// (as HAPI FHIR answers them: 404 and 412).
var (
	errNoMatch = errorf(fiber.StatusNotFound, "not-found", "matches no resource")
	errSeveral = errorf(fiber.StatusPreconditionFailed, "multiple-matches", "matches more than one resource; make the criteria select one")
)

// resolve finds the one resource of typ matching crit.
func (r *refResolver) resolve(typ, crit string) (string, error) {
	if overBudget(r.c.UserContext()) {
		return "", r.s.errTooCostly()
	}
	if err := policy.CheckScope(principal(r.c), policy.SearchType, typ); err != nil {
		return "", err
	}
	q, err := r.s.criteriaQuery(r.c, typ, crit)
	if err != nil {
		return "", err
	}
	// The stored versions the transaction replaces or deletes are not
	// the ones that count: ask for enough to see past them.
	var changed []string
	for _, e := range r.entries {
		if e.typ == typ && e.id != "" && e.existing == nil && e.method != "GET" && e.method != "HEAD" && e.method != "PATCH" {
			changed = append(changed, e.id)
		}
	}
	stored, err := r.s.matchQuery(r.c, &q, 2+len(changed))
	if err != nil {
		return "", err
	}
	var found []string
	for _, id := range stored {
		if !slices.Contains(changed, id) {
			found = append(found, id)
		}
	}
	more, err := r.pendingMatches(&q)
	if err != nil {
		return "", err
	}
	for _, id := range more {
		if !slices.Contains(found, id) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return "", errNoMatch
	case 1:
		return typ + "/" + found[0], nil
	}
	return "", errSeveral
}

// pendingMatches returns the ids of the resources the transaction creates
// or replaces that match q.
func (r *refResolver) pendingMatches(q *store.Query) ([]string, error) {
	var of []*txEntry
	for _, e := range r.entries {
		if e.typ == q.Type && e.id != "" && e.existing == nil && (e.method == "POST" || e.method == "PUT") {
			of = append(of, e)
		}
	}
	if len(of) == 0 {
		return nil, nil
	}
	if !r.indexed[q.Type] {
		for _, e := range of {
			idx, err := r.s.index(e.res)
			if err != nil {
				return nil, err
			}
			r.pending[e] = idx
		}
		r.indexed[q.Type] = true
	}
	m, err := r.s.store.NewMatcher(r.c.UserContext(), q)
	if err != nil {
		if overBudget(r.c.UserContext()) {
			return nil, r.s.errTooCostly()
		}
		return nil, err
	}
	var ids []string
	for _, e := range of {
		if (q.IDs == nil || slices.Contains(q.IDs, e.id)) && m.Match(e.id, r.pending[e]) {
			ids = append(ids, e.id)
		}
	}
	return ids, nil
}

// fail is an error at the element the walk is on.
func (r *refResolver) fail(status int, code, msg string) error {
	return errorAt(status, code, strings.Join(r.path, "."), msg)
}

// failWith names the reference and the element in err's issue.
func (r *refResolver) failWith(err error, ref string) error {
	status, issues, _ := statusOf(err)
	is := issues[0]
	return r.fail(status, is.Code, "the conditional reference "+truncate(ref, 200)+": "+is.Diagnostics)
}
