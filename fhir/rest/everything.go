package rest

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// maxCompartment bounds how many resources one patient's $everything may
// gather before paging.
const maxCompartment = 100_000

// everything is Patient/[id]/$everything (patient-operation-everything):
// the patient and every resource in its compartment (the R4 patient
// CompartmentDefinition) that the client may read, paged, optionally only
// those changed since _since.
func (s *Server) everything(c *fiber.Ctx) error {
	return s.withBudget(c, func() error { return s.everythingWithin(c) })
}

func (s *Server) everythingWithin(c *fiber.Ctx) error {
	id := c.Params("id")
	p := principal(c)
	noteOf(c).interaction = "operation"
	if err := policy.CheckScope(p, policy.Read, "Patient"); err != nil {
		return err
	}
	params, err := url.ParseQuery(string(c.Request().URI().QueryString()))
	if err != nil {
		return errorf(fiber.StatusBadRequest, "invalid", "the query string is malformed")
	}
	if c.Method() == fiber.MethodPost && len(c.Body()) > 0 {
		return errorf(fiber.StatusUnsupportedMediaType, "not-supported", "pass $everything parameters in the URL")
	}
	patient, err := s.store.Read(c.UserContext(), "Patient", id)
	if err != nil {
		return err
	}
	if err := s.reveal(c, policy.Read, targetOf(&patient)); err != nil {
		return err
	}
	if patient.Deleted {
		return gone(patient)
	}
	// A break-glass $everything opens this one patient.
	c.Locals(glassKey{}, &glassPin{patient: "Patient/" + id})
	readable := s.visible(c, policy.Read)
	var since time.Time
	if v := params.Get("_since"); v != "" {
		if since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return errorAt(fiber.StatusBadRequest, "invalid", "_since", "_since must be an instant such as 2026-01-02T03:04:05Z")
		}
	}
	var only []string
	if v := params.Get("_type"); v != "" {
		only = strings.Split(v, ",")
	}
	count := defaultSearchCount
	if v := params.Get("_count"); v != "" {
		if count, err = pageSize(c); err != nil {
			return err
		}
	}

	// Every member, ordered by type then id; the patient itself first.
	refs := []string{"Patient/" + id}
	ref := "Patient/" + id
	for _, typ := range search.ResourceTypes() {
		codes := search.CompartmentParams("Patient", typ)
		if len(codes) == 0 || (only != nil && !slices.Contains(only, typ)) {
			continue
		}
		if policy.CheckScope(p, policy.Read, typ) != nil {
			continue // members the client may not read are left out
		}
		var cl store.Clause
		for _, code := range codes {
			cl.Preds = append(cl.Preds, store.Pred{Op: store.OpRef, Param: code, Ref: ref})
		}
		q := store.Query{Type: typ, Clauses: []store.Clause{cl}, Count: maxCompartment, Filter: readable}
		if !since.IsZero() {
			q.Clauses = append(q.Clauses, store.Clause{Preds: []store.Pred{{Op: store.OpDate, Param: "_lastUpdated",
				Cmp: store.Ge, Lo: since.UnixMicro(), Hi: since.UnixMicro()}}})
		}
		page, err := s.store.Search(c.UserContext(), &q)
		if err != nil {
			return err
		}
		for _, mid := range page.IDs {
			if typ != "Patient" || mid != id {
				refs = append(refs, typ+"/"+mid)
			}
		}
	}
	if !since.IsZero() && patient.LastUpdated.Before(since) {
		refs = refs[1:]
	}

	binding := queryBinding("Patient/"+id+"/$everything", params)
	start := 0
	if tok := params.Get("_page"); tok != "" {
		cur, err := decodePageToken(tok, binding)
		if err != nil {
			return err
		}
		// refs[0] is the patient; the members after it are sorted.
		if len(refs) > 0 && refs[0] == string(cur) {
			start = 1
		} else {
			start, _ = slices.BinarySearchFunc(refs[min(1, len(refs)):], string(cur), strings.Compare)
			start++
			if start < len(refs) && refs[start] == string(cur) {
				start++
			}
		}
	}
	end := min(start+count, len(refs))
	b := newBundle("searchset")
	b.total = len(refs)
	self := s.base(c) + "/Patient/" + id + "/$everything?" + encodeParams(params, count)
	if start == 0 {
		b.link("self", self)
	} else {
		b.link("self", self+"&_page="+encodePageToken([]byte(refs[start-1]), binding))
		prev := max(0, start-count)
		if prev == 0 {
			b.link("previous", self)
		} else {
			b.link("previous", self+"&_page="+encodePageToken([]byte(refs[prev-1]), binding))
		}
	}
	if end < len(refs) {
		b.link("next", self+"&_page="+encodePageToken([]byte(refs[end-1]), binding))
	}
	for _, r := range refs[start:end] {
		typ, rid, _ := strings.Cut(r, "/")
		v, err := s.store.Read(c.UserContext(), typ, rid)
		if err != nil || v.Deleted {
			continue
		}
		noteOf(c).touch(&v)
		e, err := s.searchEntry(c, &v, "match", &search.Query{})
		if err != nil {
			return err
		}
		b.add(e)
	}
	return s.sendBundle(c, fiber.StatusOK, b)
}
