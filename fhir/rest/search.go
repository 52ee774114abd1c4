package rest

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

const (
	defaultSearchCount = 50
	maxSearchCount     = 1000
	// maxIncludes bounds the resources _include and _revinclude may add
	// to one page.
	maxIncludes = 1000
)

// searchType is GET [type]?params (search.html).
func (s *Server) searchType(c *fiber.Ctx) error {
	typ, err := typeParam(c)
	if err != nil {
		return err
	}
	raw := c.Request().URI().QueryString()
	if err := checkQueryLength(c, typ, raw, nil); err != nil {
		return err
	}
	params, err := url.ParseQuery(string(raw))
	if err != nil {
		return errorf(fiber.StatusBadRequest, "invalid", "the query string is malformed")
	}
	return s.search(c, typ, params)
}

// checkQueryLength refuses a search whose query string and form body
// together are longer than search.MaxQueryLength, before they are parsed.
// The refused search is still recorded (the audit trail bounds the text).
func checkQueryLength(c *fiber.Ctx, typ string, query, form []byte) error {
	n := len(query) + len(form)
	if n <= search.MaxQueryLength {
		return nil
	}
	q := typ + "?" + string(query)
	if len(query) > 0 && len(form) > 0 {
		q += "&"
	}
	note := noteOf(c)
	note.interaction, note.query = string(policy.SearchType), q+string(form)
	return errorf(fiber.StatusBadRequest, "too-costly", "the search is "+strconv.Itoa(n)+
		" bytes long; at most "+strconv.Itoa(search.MaxQueryLength)+" are allowed (query string and form body together)")
}

// searchPost is POST [type]/_search with form-encoded parameters, which
// combine with any in the URL (http.html#search).
func (s *Server) searchPost(c *fiber.Ctx) error {
	typ, err := typeParam(c)
	if err != nil {
		return err
	}
	if err := requireBody(c, "application/x-www-form-urlencoded"); err != nil && len(c.Body()) > 0 {
		return err
	}
	params, err := url.ParseQuery(string(c.Request().URI().QueryString()))
	if err != nil {
		return errorf(fiber.StatusBadRequest, "invalid", "the query string is malformed")
	}
	if err := checkQueryLength(c, typ, c.Request().URI().QueryString(), c.Request().Body()); err != nil {
		return err
	}
	form, err := url.ParseQuery(string(c.Body()))
	if err != nil {
		return errorf(fiber.StatusBadRequest, "invalid", "the form body is malformed")
	}
	for k, vs := range form {
		params[k] = append(params[k], vs...)
	}
	return s.search(c, typ, params)
}

// parseSearch parses params for a search on typ, mapping errors to 400.
func (s *Server) parseSearch(c *fiber.Ctx, typ string, params url.Values) (*search.Query, error) {
	q, err := search.ParseQuery(typ, params, search.Options{
		Base: s.base(c), Strict: prefer(c, "handling") == "strict", Now: s.now(),
	})
	var se *search.Error
	switch {
	case errors.As(err, &se) && se.Limit && se.Param == "":
		return nil, errorf(fiber.StatusBadRequest, "too-costly", "search: "+se.Msg)
	case errors.As(err, &se) && se.Limit:
		return nil, errorAt(fiber.StatusBadRequest, "too-costly", se.Param, se.Error())
	case errors.As(err, &se):
		return nil, errorAt(fiber.StatusBadRequest, "invalid", se.Param, se.Error())
	}
	return q, err
}

// search runs a search within the time budget.
func (s *Server) search(c *fiber.Ctx, typ string, params url.Values) error {
	return s.withBudget(c, func() error { return s.searchWithin(c, typ, params) })
}

func (s *Server) searchWithin(c *fiber.Ctx, typ string, params url.Values) error {
	n := noteOf(c)
	n.interaction = string(policy.SearchType)
	n.query = typ + "?" + params.Encode()
	if err := policy.CheckScope(principal(c), policy.SearchType, typ); err != nil {
		return err
	}
	q, err := s.parseSearch(c, typ, params)
	if err != nil {
		return err
	}
	count := defaultSearchCount
	if q.Count >= 0 {
		count = min(q.Count, maxSearchCount)
	}
	sq := q.Store
	sq.Count = count
	sq.Total = q.Total == "accurate"
	if err := pinGlass(c, typ, params); err != nil {
		return err
	}
	// Consent and roles filter the matches before paging and counting.
	sq.Filter = s.visible(c, policy.SearchType)
	if q.Summary == "count" {
		sq.Count, sq.Total = 0, true
	}
	binding := queryBinding(typ, params)
	if tok := params.Get("_page"); tok != "" {
		if sq.Cursor, err = decodePageToken(tok, binding); err != nil {
			return err
		}
	}
	page, err := s.store.Search(c.UserContext(), &sq)
	if errors.Is(err, store.ErrTooCostly) {
		return errorf(fiber.StatusBadRequest, "too-costly", "the search matches too many resources; add criteria")
	}
	if err != nil {
		return err
	}

	b := newBundle("searchset")
	if page.Total >= 0 && q.Total != "none" {
		b.total = page.Total
	}
	self := s.base(c) + "/" + typ
	link := func(rel string, cursor []byte, first bool) {
		u := self + "?" + encodeParams(params, count)
		if !first {
			u += "&_page=" + encodePageToken(cursor, binding)
		}
		b.link(rel, u)
	}
	link("self", sq.Cursor, sq.Cursor == nil)
	if page.Next != nil {
		link("next", page.Next, false)
	}
	if page.HasPrev {
		link("previous", page.Prev, page.Prev == nil)
	}

	// One read for the page on a network store (store.MultiGetter).
	read, err := s.store.ReadMany(c.UserContext(), typ, page.IDs)
	if err != nil {
		return err
	}
	matches := make([]store.Version, 0, len(read))
	for _, v := range read {
		if !v.Deleted { // else deleted between the search and the read
			matches = append(matches, v)
		}
	}
	for i := range matches {
		n.touch(&matches[i])
		e, err := s.searchEntry(c, &matches[i], "match", q)
		if err != nil {
			return err
		}
		b.add(e)
	}
	included, err := s.includes(c, q, matches)
	if err != nil {
		return err
	}
	for i := range included {
		n.touch(&included[i])
		e, err := s.searchEntry(c, &included[i], "include", q)
		if err != nil {
			return err
		}
		b.add(e)
	}
	if len(q.Ignored) > 0 {
		var issues []fhir.Issue
		for _, msg := range q.Ignored {
			issues = append(issues, issue("warning", "not-supported", msg+": ignored"))
		}
		b.add(fhirjson.Obj(
			fhirjson.KV("resource", *fhir.OutcomeValue(issues...)),
			fhirjson.KV("search", fhirjson.Obj(fhirjson.KV("mode", fhirjson.Str("outcome")))),
		))
	}
	return s.sendBundle(c, fiber.StatusOK, b)
}

func (s *Server) searchEntry(c *fiber.Ctx, v *store.Version, mode string, q *search.Query) (fhirjson.Value, error) {
	body, err := fhir.Subset(v.Body, v.Type, q.Summary, q.Elements)
	if err != nil {
		return fhirjson.Value{}, err
	}
	return fhirjson.Obj(
		fhirjson.KV("fullUrl", fhirjson.Str(s.base(c)+"/"+v.Type+"/"+v.ID)),
		fhirjson.KV("resource", fhirjson.RawJSON(body)),
		fhirjson.KV("search", fhirjson.Obj(fhirjson.KV("mode", fhirjson.Str(mode)))),
	), nil
}

// includes resolves _include and _revinclude for the matches of a page;
// :iterate applies the includes once more to what they added.
func (s *Server) includes(c *fiber.Ctx, q *search.Query, matches []store.Version) ([]store.Version, error) {
	if len(q.Include) == 0 && len(q.RevInclude) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	for _, m := range matches {
		seen[m.Type+"/"+m.ID] = true
	}
	readable, searchable := s.visible(c, policy.Read), s.visible(c, policy.SearchType)
	var out []store.Version
	add := func(v store.Version) {
		if k := v.Type + "/" + v.ID; !seen[k] && len(out) < maxIncludes {
			seen[k] = true
			out = append(out, v)
		}
	}
	round := func(from []store.Version, iterate bool) error {
		for _, inc := range q.Include {
			if inc.Iterate != iterate {
				continue
			}
			for _, m := range from {
				if m.Type != inc.Source {
					continue
				}
				refs, err := s.store.References(c.UserContext(), m.Type, m.ID, inc.Param)
				if err != nil {
					return err
				}
				for _, r := range refs {
					t, id, ok := strings.Cut(r, "/")
					if !ok || strings.Contains(id, "/") || (inc.Target != "" && t != inc.Target) || !fhir.IsResourceType(t) {
						continue // external or of another type
					}
					v, err := s.store.Read(c.UserContext(), t, id)
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
					// Included only when the client may read it.
					if err == nil && !v.Deleted && readable(&v) {
						add(v)
					}
				}
			}
		}
		for _, inc := range q.RevInclude {
			if inc.Iterate != iterate {
				continue
			}
			var refs []string
			for _, m := range from {
				refs = append(refs, m.Type+"/"+m.ID)
			}
			if len(refs) == 0 {
				continue
			}
			page, err := s.store.Search(c.UserContext(), &store.Query{Type: inc.Source, Count: maxIncludes,
				Filter:  searchable,
				Clauses: []store.Clause{{Preds: []store.Pred{{Op: store.OpRefIn, Param: inc.Param, Refs: refs}}}}})
			if err != nil {
				return err
			}
			vs, err := s.store.ReadMany(c.UserContext(), inc.Source, page.IDs)
			if err != nil {
				return err
			}
			for _, v := range vs {
				if !v.Deleted {
					add(v)
				}
			}
		}
		return nil
	}
	if err := round(matches, false); err != nil {
		return nil, err
	}
	if err := round(slices.Concat(matches, out), true); err != nil {
		return nil, err
	}
	return out, nil
}

// encodeParams re-encodes the search parameters for links, without the
// paging and format ones, with the effective _count.
func encodeParams(params url.Values, count int) string {
	p := url.Values{}
	for k, vs := range params {
		if k != "_page" && k != "_count" && k != "_format" {
			p[k] = vs
		}
	}
	p.Set("_count", strconv.Itoa(count))
	return p.Encode()
}

// queryBinding identifies a search so that a page token is only accepted
// for the search that produced it.
func queryBinding(typ string, params url.Values) []byte {
	h := sha256.New()
	h.Write([]byte(typ + "?" + encodeParams(params, 0)))
	return h.Sum(nil)[:8]
}

// A page token is base64url(version, 8-byte query binding, cursor).
func encodePageToken(cursor, binding []byte) string {
	return base64.RawURLEncoding.EncodeToString(slices.Concat([]byte{1}, binding, cursor))
}

func decodePageToken(tok string, binding []byte) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) < 9 || raw[0] != 1 || string(raw[1:9]) != string(binding) {
		return nil, store.ErrBadCursor
	}
	return raw[9:], nil
}
