package rest

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

func (s *Server) historySystem(c *fiber.Ctx) error {
	noteOf(c).interaction = string(policy.HistorySystem)
	if err := policy.CheckScope(principal(c), policy.HistorySystem, ""); err != nil {
		return err
	}
	return s.history(c, store.HistoryQuery{Filter: s.visible(c, policy.HistorySystem)}, "/_history")
}

func (s *Server) historyType(c *fiber.Ctx) error {
	typ, err := typeParam(c)
	if err != nil {
		return err
	}
	noteOf(c).interaction = string(policy.HistoryType)
	if err := policy.CheckScope(principal(c), policy.HistoryType, typ); err != nil {
		return err
	}
	return s.history(c, store.HistoryQuery{Type: typ, Filter: s.visible(c, policy.HistoryType)}, "/"+typ+"/_history")
}

func (s *Server) historyInstance(c *fiber.Ctx) error {
	typ, id, err := instanceParams(c)
	if err != nil {
		return err
	}
	noteOf(c).interaction = string(policy.HistoryInstance)
	if err := policy.CheckScope(principal(c), policy.HistoryInstance, typ); err != nil {
		return err
	}
	cur, err := s.store.Current(c.UserContext(), typ, id)
	if err != nil {
		return err
	}
	if err := s.reveal(c, policy.HistoryInstance, targetOf(&cur)); err != nil {
		return err
	}
	// Each version is judged on its own compartments too.
	b, err := s.historyPage(c, store.HistoryQuery{Type: typ, ID: id, Filter: s.visible(c, policy.HistoryInstance)}, "/"+typ+"/"+id+"/_history")
	if err != nil {
		return err
	}
	if c.Query("_since") == "" && len(b.entries) == int(cur.VID) {
		b.total = int(cur.VID) // every version of the resource
	}
	return s.sendBundle(c, fiber.StatusOK, b)
}

func (s *Server) history(c *fiber.Ctx, q store.HistoryQuery, path string) error {
	b, err := s.historyPage(c, q, path)
	if err != nil {
		return err
	}
	return s.sendBundle(c, fiber.StatusOK, b)
}

// historyPage reads one page of history, newest first, with self and next
// links. _count and _since are supported; the paging cursor (_page) is
// opaque to clients.
func (s *Server) historyPage(c *fiber.Ctx, q store.HistoryQuery, path string) (b *bundle, err error) {
	err = s.withBudget(c, func() error {
		b, err = s.historyPageWithin(c, q, path)
		return err
	})
	return b, err
}

func (s *Server) historyPageWithin(c *fiber.Ctx, q store.HistoryQuery, path string) (*bundle, error) {
	var err error
	if q.Count, err = pageSize(c); err != nil {
		return nil, err
	}
	if since := c.Query("_since"); since != "" {
		t, err := time.Parse(time.RFC3339Nano, since)
		if err != nil {
			return nil, errorAt(fiber.StatusBadRequest, "invalid", "_since", "_since must be an instant such as 2026-01-02T03:04:05Z")
		}
		q.Since = t
	}
	if c.Query("_at") != "" || c.Query("_list") != "" {
		return nil, errorf(fiber.StatusBadRequest, "not-supported", "_at and _list are not supported on history")
	}
	if p := c.Query("_page"); p != "" {
		if q.Cursor, err = base64.RawURLEncoding.DecodeString(p); err != nil {
			return nil, store.ErrBadCursor
		}
	}
	var page store.HistoryPage
	if q.Count > 0 { // _count=0 asks for no entries
		if page, err = s.store.History(c.UserContext(), q); err != nil {
			return nil, err
		}
	}
	b := newBundle("history")
	params := url.Values{}
	params.Set("_count", strconv.Itoa(q.Count))
	if since := c.Query("_since"); since != "" {
		params.Set("_since", since)
	}
	self := s.base(c) + path + "?" + params.Encode()
	if q.Cursor != nil {
		self += "&_page=" + base64.RawURLEncoding.EncodeToString(q.Cursor)
	}
	b.link("self", self)
	if page.Next != nil {
		params.Set("_page", base64.RawURLEncoding.EncodeToString(page.Next))
		b.link("next", s.base(c)+path+"?"+params.Encode())
	}
	for i := range page.Versions {
		noteOf(c).touch(&page.Versions[i])
		b.add(s.historyEntry(c, &page.Versions[i]))
	}
	return b, nil
}

func pageSize(c *fiber.Ctx) (int, error) {
	cs := c.Query("_count")
	if cs == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(cs)
	if err != nil || n < 0 {
		return 0, errorAt(fiber.StatusBadRequest, "invalid", "_count", "_count must be a non-negative integer")
	}
	return min(n, maxPageSize), nil
}
