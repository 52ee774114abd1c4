package rest

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// Conditional interactions (http.html#ccreate, #cond-update, #3.1.0.7.1):
// the target is found by search criteria instead of an id. They need
// search permission as well, so that they cannot be used to probe for
// resources the client may not search.

// criteria returns the search part of a conditional request: the query
// string of the URL, or the If-None-Exist header value.
func criteria(c *fiber.Ctx) string {
	return string(c.Request().URI().QueryString())
}

func (s *Server) conditionalCreate(c *fiber.Ctx, res *fhir.Resource, crit string) error {
	noteOf(c).query = res.Type + "?" + crit
	if err := policy.CheckScope(principal(c), policy.SearchType, res.Type); err != nil {
		return err
	}
	crit = strings.TrimPrefix(crit, res.Type+"?")
	crit = strings.TrimPrefix(crit, "?")
	return store.Retry(c.UserContext(), maxCommitAttempts, func() error {
		ids, claim, err := s.matchForCreate(c, res.Type, crit)
		if err != nil {
			return err
		}
		switch len(ids) {
		case 0:
		case 1:
			// Already there: answer with it, create nothing (200 OK).
			v, err := s.store.Read(c.UserContext(), res.Type, ids[0])
			if err != nil {
				return err
			}
			return s.respondWrite(c, fiber.StatusOK, v)
		default:
			return errorf(fiber.StatusPreconditionFailed, "multiple-matches", "If-None-Exist matched more than one resource; make the criteria more selective")
		}
		v, err := s.commit(c, res, newID(), nil, store.MethodCreate, claim)
		if err != nil {
			return err // ErrConflict: another conditional create with the same criteria won; look again
		}
		return s.respondWrite(c, fiber.StatusCreated, v)
	})
}

// conditional begins a conditional interaction on [type]?criteria: it
// returns the type and the criteria, once the scopes of the interaction
// and of the search it implies are checked.
func conditional(c *fiber.Ctx, in policy.Interaction, method string) (typ, crit string, err error) {
	noteOf(c).interaction = string(in)
	if typ, err = typeParam(c); err != nil {
		return "", "", err
	}
	for _, need := range []policy.Interaction{in, policy.SearchType} {
		if err := policy.CheckScope(principal(c), need, typ); err != nil {
			return "", "", err
		}
	}
	if crit = criteria(c); crit == "" {
		return "", "", errorf(fiber.StatusMethodNotAllowed, "not-supported", method+" on a type needs search criteria (conditional "+string(in)+")")
	}
	return typ, crit, nil
}

func (s *Server) conditionalUpdate(c *fiber.Ctx) error {
	typ, crit, err := conditional(c, policy.Update, "PUT")
	if err != nil {
		return err
	}
	p := principal(c)
	res, err := s.parseResource(c, typ)
	if err != nil {
		return err
	}
	want, err := ifMatch(c)
	if err != nil {
		return err
	}
	ids, err := s.match(c, typ, crit)
	if err != nil {
		return err
	}
	switch len(ids) {
	case 0:
		if res.ID != "" {
			return s.updateResource(c, res, res.ID, want)
		}
		if err := policy.CheckScope(p, policy.Create, typ); err != nil {
			return err
		}
		v, err := s.commit(c, res, newID(), nil, store.MethodUpdate, nil)
		if err != nil {
			return err
		}
		return s.respondWrite(c, fiber.StatusCreated, v)
	case 1:
		if res.ID != "" && res.ID != ids[0] {
			return errorAt(fiber.StatusBadRequest, "invalid", typ+".id", "the resource id does not match the resource the criteria found")
		}
		return s.updateResource(c, res, ids[0], want)
	}
	return errorf(fiber.StatusPreconditionFailed, "multiple-matches", "the criteria matched more than one resource; make them more selective")
}

func (s *Server) conditionalDelete(c *fiber.Ctx) error {
	typ, crit, err := conditional(c, policy.Delete, "DELETE")
	if err != nil {
		return err
	}
	ids, err := s.match(c, typ, crit)
	if err != nil {
		return err
	}
	switch len(ids) {
	case 0:
		return s.respondDeleted(c, nil, "no resource matched")
	case 1:
		want, err := ifMatch(c)
		if err != nil {
			return err
		}
		return s.deleteResource(c, typ, ids[0], want)
	}
	return errorf(fiber.StatusPreconditionFailed, "multiple-matches", "the criteria matched more than one resource; this server deletes one at a time")
}

func (s *Server) conditionalPatch(c *fiber.Ctx) error {
	typ, crit, err := conditional(c, policy.Patch, "PATCH")
	if err != nil {
		return err
	}
	ops, err := parsePatchBody(c)
	if err != nil {
		return err
	}
	want, err := ifMatch(c)
	if err != nil {
		return err
	}
	ids, err := s.match(c, typ, crit)
	if err != nil {
		return err
	}
	switch len(ids) {
	case 0:
		return errorf(fiber.StatusNotFound, "not-found", "no resource matched the criteria")
	case 1:
		return s.patchResource(c, typ, ids[0], ops, want)
	}
	return errorf(fiber.StatusPreconditionFailed, "multiple-matches", "the criteria matched more than one resource")
}
