package rest

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// match returns the ids of typ matching search criteria (at most two: a
// conditional interaction only needs to know none, one or several).
func (s *Server) match(c *fiber.Ctx, typ, crit string) ([]string, error) {
	q, err := s.criteriaQuery(c, typ, crit)
	if err != nil {
		return nil, err
	}
	return s.matchQuery(c, &q, 2)
}

// criteriaQuery parses the criteria of a conditional interaction or
// reference into a store query; criteria the server does not understand
// are refused.
func (s *Server) criteriaQuery(c *fiber.Ctx, typ, crit string) (store.Query, error) {
	params, err := url.ParseQuery(crit)
	if err != nil {
		return store.Query{}, errorf(fiber.StatusBadRequest, "invalid", "the search criteria are malformed")
	}
	for k := range params {
		if strings.HasPrefix(k, "_") && k != "_id" && k != "_lastUpdated" && k != "_tag" && k != "_profile" && k != "_security" && k != "_source" && !strings.HasPrefix(k, "_has") {
			delete(params, k) // result parameters do not select
		}
	}
	if len(params) == 0 {
		return store.Query{}, errorf(fiber.StatusBadRequest, "invalid", "conditional interactions need search criteria")
	}
	// Criteria the server does not understand must not be ignored here: a
	// conditional write would hit the wrong resource.
	q, err := search.ParseQuery(typ, params, search.Options{Base: s.base(c), Strict: true, Now: s.now()})
	var se *search.Error
	if errors.As(err, &se) {
		return store.Query{}, errorAt(fiber.StatusBadRequest, "invalid", se.Param, se.Error())
	}
	if err != nil {
		return store.Query{}, err
	}
	return q.Store, nil
}

// matchQuery returns up to n ids of resources matching q that the client
// may see.
func (s *Server) matchQuery(c *fiber.Ctx, q *store.Query, n int) ([]string, error) {
	sq := *q
	sq.Count = n
	// What the client may not see does not match: a conditional
	// interaction must not reveal that it exists.
	sq.Filter = s.visible(c, policy.SearchType)
	// The search runs within the time budget; the write after it does not
	// (a commit is never cut short).
	ctx, cancel := context.WithTimeoutCause(c.UserContext(), s.requestBudget(), errBudget)
	defer cancel()
	page, err := s.store.Search(ctx, &sq)
	if err != nil && overBudget(ctx) {
		return nil, s.errTooCostly()
	}
	if errors.Is(err, store.ErrTooCostly) {
		return nil, errorf(fiber.StatusPreconditionFailed, "multiple-matches", "the criteria match too many resources")
	}
	return page.IDs, err
}

// matchForCreate returns the matches of an If-None-Exist and the claim a
// create must take: the normalized criteria as a unique name, so that of
// two concurrent creates with the same criteria only one succeeds.
func (s *Server) matchForCreate(c *fiber.Ctx, typ, crit string) ([]string, *store.Claim, error) {
	claim := &store.Claim{Name: normalizeCriteria(crit)}
	// Read the owner before searching: an owner that still matches was
	// committed (claim, resource and index at once) before the search
	// looks, so the search finds it. Read after, a create landing between
	// the two would be missed by the search and its claim taken over.
	owner, err := s.store.ClaimOwner(c.UserContext(), typ, claim.Name)
	if err != nil {
		return nil, nil, err
	}
	ids, err := s.match(c, typ, crit)
	if err != nil || len(ids) > 0 {
		return ids, nil, err
	}
	// No match: a previous owner no longer matches (changed or deleted) and
	// gives the claim up to this create; if the claim moved since we read
	// it, the commit fails and the create starts over.
	claim.Owner = owner
	return nil, claim, nil
}

// normalizeCriteria sorts parameters so equal criteria name one claim.
func normalizeCriteria(crit string) string {
	vals, err := url.ParseQuery(crit)
	if err != nil {
		return crit
	}
	keys := make([]string, 0, len(vals))
	for k, vs := range vals {
		slices.Sort(vs)
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range vals[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k) + "=" + url.QueryEscape(v))
		}
	}
	return b.String()
}
