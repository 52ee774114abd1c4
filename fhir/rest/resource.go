package rest

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// maxCommitAttempts bounds retries of an update that loses a race with a
// concurrent writer of the same resource (no If-Match: last writer wins,
// but every write gets its own version).
const maxCommitAttempts = 64

// typeParam returns the resource type of the URL, or 404.
func typeParam(c *fiber.Ctx) (string, error) {
	typ := c.Params("type")
	if !fhir.IsResourceType(typ) {
		return "", errorf(fiber.StatusNotFound, "not-supported", "unknown resource type '"+truncate(typ, 64)+"'")
	}
	return typ, nil
}

// instanceParams returns the resource type and id of the URL.
func instanceParams(c *fiber.Ctx) (string, string, error) {
	typ, err := typeParam(c)
	if err != nil {
		return "", "", err
	}
	id := c.Params("id")
	if strings.HasPrefix(id, "$") {
		return "", "", errorf(fiber.StatusNotFound, "not-supported", "operation "+truncate(id, 64)+" is not supported")
	}
	if !fhir.ValidID(id) {
		return "", "", errorAt(fiber.StatusBadRequest, "invalid", "id", "invalid resource id: ids are 1-64 of A-Z a-z 0-9 - .")
	}
	return typ, id, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func etag(vid uint64) string { return `W/"` + strconv.FormatUint(vid, 10) + `"` }

// parseETag reads If-Match / If-None-Match values: W/"3", "3" or 3.
func parseETag(h string) (uint64, bool) {
	h = strings.TrimSpace(h)
	h = strings.TrimPrefix(h, "W/")
	h = strings.Trim(h, `"`)
	n, err := strconv.ParseUint(h, 10, 64)
	return n, err == nil && n > 0
}

// ifMatch returns the version the client requires (0: none).
func ifMatch(c *fiber.Ctx) (uint64, error) {
	h := c.Get(fiber.HeaderIfMatch)
	if h == "" {
		return 0, nil
	}
	n, ok := parseETag(h)
	if !ok {
		return 0, errorf(fiber.StatusBadRequest, "invalid", "If-Match must be a version ETag such as W/\"3\"")
	}
	return n, nil
}

func versionMismatch(want uint64, cur *store.Version) error {
	have := "no current version"
	if cur != nil {
		have = "the current version is " + strconv.FormatUint(cur.VID, 10)
	}
	return errorf(fiber.StatusPreconditionFailed, "conflict", "If-Match requires version "+strconv.FormatUint(want, 10)+", but "+have)
}

func (s *Server) read(c *fiber.Ctx) error {
	typ, id, err := instanceParams(c)
	if err != nil {
		return err
	}
	noteOf(c).interaction = string(policy.Read)
	// The scope ceiling does not depend on the record: checked first. The
	// decision on the record runs once it is known, so that a refusal is
	// recorded against the patient it concerns, and is answered as an
	// absent record would be (reveal).
	if err := policy.CheckScope(principal(c), policy.Read, typ); err != nil {
		return err
	}
	v, err := s.store.Read(s.readContext(c), typ, id)
	if err != nil {
		return err
	}
	if err := s.reveal(c, policy.Read, targetOf(&v)); err != nil {
		return err
	}
	if v.Deleted {
		return gone(v)
	}
	noteOf(c).touch(&v)
	return s.sendVersion(c, v)
}

func (s *Server) vread(c *fiber.Ctx) error {
	typ, id, err := instanceParams(c)
	if err != nil {
		return err
	}
	noteOf(c).interaction = string(policy.VRead)
	if err := policy.CheckScope(principal(c), policy.VRead, typ); err != nil {
		return err
	}
	vid, err := strconv.ParseUint(c.Params("vid"), 10, 64)
	if err != nil || vid == 0 {
		return errHidden
	}
	v, err := s.store.Version(c.UserContext(), typ, id, vid)
	if err != nil {
		return err
	}
	if err := s.reveal(c, policy.VRead, targetOf(&v)); err != nil {
		return err
	}
	if v.Deleted {
		return gone(v)
	}
	noteOf(c).touch(&v)
	return s.sendVersion(c, v)
}

func gone(v store.Version) error {
	e := errorf(fiber.StatusGone, "deleted", "resource deleted")
	e.header = [2]string{fiber.HeaderETag, etag(v.VID)}
	return e
}

// sendVersion serves stored bytes as they are, with the version headers,
// or 304 when the client's copy is current.
func (s *Server) sendVersion(c *fiber.Ctx, v store.Version) error {
	c.Set(fiber.HeaderETag, etag(v.VID))
	c.Set(fiber.HeaderLastModified, v.LastUpdated.Format(http.TimeFormat))
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" {
		if n, ok := parseETag(inm); ok && n == v.VID {
			return c.SendStatus(fiber.StatusNotModified)
		}
	} else if ims := c.Get(fiber.HeaderIfModifiedSince); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !v.LastUpdated.Truncate(time.Second).After(t) {
			return c.SendStatus(fiber.StatusNotModified)
		}
	}
	c.Set(fiber.HeaderContentType, s.contentType(c))
	return c.Send(v.Body)
}

// parseResource reads and validates a request body for typ.
func (s *Server) parseResource(c *fiber.Ctx, typ string) (*fhir.Resource, error) {
	if err := requireBody(c, mimeFHIRJSON, mimeJSON); err != nil {
		return nil, err
	}
	body := c.Body()
	if len(body) == 0 {
		return nil, errorf(fiber.StatusBadRequest, "required", "the request has no body")
	}
	res, err := fhir.Parse(body)
	if err != nil {
		return nil, err
	}
	if res.Type != typ {
		return nil, errorAt(fiber.StatusBadRequest, "invalid", "resourceType", "the body is a "+res.Type+", but the URL is for "+typ)
	}
	return res, nil
}

// commit stamps res as the version after prev (nil: the first) and writes
// it, taking claim if one is given.
func (s *Server) commit(c *fiber.Ctx, res *fhir.Resource, id string, prev *store.Version, m store.Method, claim *store.Claim) (store.Version, error) {
	w, err := s.newVersion(principal(c), res, id, prev, m)
	if err != nil {
		return store.Version{}, err
	}
	if err := s.permitWrite(c, interactionOf(m), prev, &w); err != nil {
		return store.Version{}, err
	}
	w.Claim = claim
	var add func(*store.Batch) error
	rd := s.ride(c, &w.New)
	if rd != nil {
		add = rd.Add
	}
	if err := s.store.CommitWith(c.UserContext(), []store.Write{w}, add); err != nil {
		return store.Version{}, err
	}
	rodeWith(c, rd)
	s.afterCommit([]store.Write{w})
	noteOf(c).touch(&w.New)
	return w.New, nil
}

func interactionOf(m store.Method) policy.Interaction {
	switch m {
	case store.MethodCreate:
		return policy.Create
	case store.MethodPatch:
		return policy.Patch
	case store.MethodDelete:
		return policy.Delete
	}
	return policy.Update
}

// newVersion stamps res as the version of id after prev (nil: the first)
// and computes its index values. The time never goes backwards within one
// resource.
func (s *Server) newVersion(p *policy.Principal, res *fhir.Resource, id string, prev *store.Version, m store.Method) (store.Write, error) {
	vid := uint64(1)
	at := s.clock()
	if prev != nil {
		vid = prev.VID + 1
		if !at.After(prev.LastUpdated) {
			at = prev.LastUpdated.Add(time.Microsecond)
		}
	}
	v := store.Version{
		Type: res.Type, ID: id, VID: vid, LastUpdated: at, Method: m,
		Author: p.Subject,
		Body:   res.Stamp(id, vid, at),
	}
	// The creator rides from version to version (the store sets it the
	// same way); the decisions on this write and its answer need it now.
	if prev != nil {
		v.Creator = prev.Creator
	}
	if v.Creator == "" {
		v.Creator = v.Author
	}
	idx, err := s.index(res)
	if err != nil {
		return store.Write{}, err
	}
	v.Compartments = parties(res, id, idx)
	w := store.Write{Prev: prev, New: v, Index: idx, Leaf: s.leaf(&v)}
	holdWallets(&w, &res.Root)
	return w, nil
}

// parties are the people a version concerns, for policy: its compartments;
// for a type outside the Patient compartment, the patients it is tied to
// by another reference (Binary.securityContext, Task.for, a Bundle's
// entries: fhir.PatientRefs); and for a Consent, the practitioners it
// grants to (R4 leaves Consent out of the Practitioner compartment, yet a
// doctor must be able to see what was shared with them).
func parties(res *fhir.Resource, id string, idx []store.IndexValue) []string {
	typ := res.Type
	ps := search.Members(typ, id, idx)
	if typ != "Patient" && search.CompartmentParams("Patient", typ) == nil {
		for _, p := range fhir.PatientRefs(typ, &res.Root) {
			if !slices.Contains(ps, p) {
				ps = append(ps, p)
			}
		}
	}
	if typ != "Consent" {
		return ps
	}
	for _, iv := range idx {
		if iv.Param == "actor" && strings.HasPrefix(iv.Ref, "Practitioner/") && !slices.Contains(ps, iv.Ref) {
			ps = append(ps, iv.Ref)
		}
	}
	// A client grantee is named by identifier (clients are not resources).
	var actors func(prov *fhirjson.Value)
	actors = func(prov *fhirjson.Value) {
		if prov == nil {
			return
		}
		if a := prov.Get("actor"); a != nil && a.Kind == fhirjson.Array {
			for i := range a.Items {
				id := a.Items[i].Get("reference").Get("identifier")
				if id.GetString("system") == policy.ClientSystem && id.GetString("value") != "" {
					if c := "client/" + id.GetString("value"); !slices.Contains(ps, c) {
						ps = append(ps, c)
					}
				}
			}
		}
		if nested := prov.Get("provision"); nested != nil && nested.Kind == fhirjson.Array {
			for i := range nested.Items {
				actors(&nested.Items[i])
			}
		}
	}
	actors(res.Root.Get("provision"))
	return ps
}

// leaf is the log entry of a version, appended in the version's own
// commit (nil when the log is switched off for benchmarking).
func (s *Server) leaf(v *store.Version) []byte {
	if s.cfg.NoLog {
		return nil
	}
	return anchor.NewLeaf(v.Type, v.ID, v.VID, v.Body).Data()
}

// tombstone is the delete version of id after prev.
func (s *Server) tombstone(p *policy.Principal, typ, id string, prev *store.Version) store.Write {
	v := store.Version{
		Type: typ, ID: id, VID: prev.VID + 1, Deleted: true, Method: store.MethodDelete,
		Author: p.Subject, LastUpdated: s.clock(),
		// A tombstone stays in its compartments: who could not see the
		// resource cannot learn that it was deleted.
		Creator: prev.Creator, Compartments: prev.Compartments,
	}
	if !v.LastUpdated.After(prev.LastUpdated) {
		v.LastUpdated = prev.LastUpdated.Add(time.Microsecond)
	}
	w := store.Write{Prev: prev, New: v, Leaf: s.leaf(&v)}
	holdWallets(&w, nil)
	return w
}

func (s *Server) index(res *fhir.Resource) ([]store.IndexValue, error) {
	if s.cfg.Indexer == nil {
		return nil, nil
	}
	return s.cfg.Indexer(res.Type, &res.Root)
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func (s *Server) create(c *fiber.Ctx) error {
	noteOf(c).interaction = string(policy.Create)
	typ, err := typeParam(c)
	if err != nil {
		return err
	}
	if err := policy.CheckScope(principal(c), policy.Create, typ); err != nil {
		return err
	}
	res, err := s.parseResource(c, typ)
	if err != nil {
		return err
	}
	if crit := c.Get("If-None-Exist"); crit != "" {
		return s.conditionalCreate(c, res, crit)
	}
	// The server assigns the id; one in the body is ignored (http.html#create).
	v, err := s.commit(c, res, newID(), nil, store.MethodCreate, nil)
	if err != nil {
		return err
	}
	return s.respondWrite(c, fiber.StatusCreated, v)
}

func (s *Server) update(c *fiber.Ctx) error {
	noteOf(c).interaction = string(policy.Update)
	typ, id, err := instanceParams(c)
	if err != nil {
		return err
	}
	p := principal(c)
	if err := policy.CheckScope(p, policy.Update, typ); err != nil {
		return err
	}
	res, err := s.parseResource(c, typ)
	if err != nil {
		return err
	}
	if res.ID == "" {
		return errorAt(fiber.StatusBadRequest, "required", typ+".id", "the resource must have an id matching the URL")
	}
	if res.ID != id {
		return errorAt(fiber.StatusBadRequest, "invalid", typ+".id", "the resource id '"+res.ID+"' does not match the URL id '"+id+"'")
	}
	want, err := ifMatch(c)
	if err != nil {
		return err
	}
	return s.updateResource(c, res, id, want)
}

// updateResource writes res as the next version of typ/id, creating it if
// needed, retrying on races unless the client pinned a version.
func (s *Server) updateResource(c *fiber.Ctx, res *fhir.Resource, id string, want uint64) error {
	return store.Retry(c.UserContext(), maxCommitAttempts, func() error {
		prev, err := s.current(c, res.Type, id)
		if err != nil {
			return err
		}
		if prev != nil && !prev.Deleted && !s.identityWriter(c, res.Type) {
			// Whether the record exists is decided before anything
			// about it is told (If-Match's answer included).
			switch err := s.reveal(c, policy.Update, targetOf(prev)); {
			case errors.Is(err, errHidden):
				if want != 0 {
					return versionMismatch(want, nil)
				}
				w, err := s.newVersion(principal(c), res, id, nil, store.MethodUpdate)
				if err != nil {
					return err
				}
				return s.hiddenUpdate(c, &w)
			case err != nil:
				return err
			}
		}
		if want != 0 && (prev == nil || prev.VID != want) {
			return versionMismatch(want, prev)
		}
		creating := prev == nil || prev.Deleted
		if creating {
			// Update as create needs create permission too.
			if err := policy.CheckScope(principal(c), policy.Create, res.Type); err != nil {
				return err
			}
		}
		v, err := s.commit(c, res, id, prev, store.MethodUpdate, nil)
		if err != nil {
			return pinned(err, want)
		}
		status := fiber.StatusOK
		if creating {
			status = fiber.StatusCreated
		}
		return s.respondWrite(c, status, v)
	})
}

// pinned turns a lost race into a version mismatch when the client pinned
// the version it changes (If-Match): then it is not retried.
func pinned(err error, want uint64) error {
	if want != 0 && errors.Is(err, store.ErrConflict) {
		return versionMismatch(want, nil)
	}
	return err
}

// current returns the current version of typ/id, or nil if it never
// existed.
func (s *Server) current(c *fiber.Ctx, typ, id string) (*store.Version, error) {
	cur, err := s.store.Current(c.UserContext(), typ, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &cur, nil
}

func (s *Server) delete(c *fiber.Ctx) error {
	noteOf(c).interaction = string(policy.Delete)
	typ, id, err := instanceParams(c)
	if err != nil {
		return err
	}
	if err := policy.CheckScope(principal(c), policy.Delete, typ); err != nil {
		return err
	}
	want, err := ifMatch(c)
	if err != nil {
		return err
	}
	return s.deleteResource(c, typ, id, want)
}

func (s *Server) deleteResource(c *fiber.Ctx, typ, id string, want uint64) error {
	return store.Retry(c.UserContext(), maxCommitAttempts, func() error {
		prev, err := s.current(c, typ, id)
		if err != nil {
			return err
		}
		if prev != nil {
			// A record the principal may not know of is absent to them.
			switch err := s.reveal(c, policy.Delete, targetOf(prev)); {
			case errors.Is(err, errHidden):
				prev = nil
			case err != nil:
				return err
			}
		}
		if want != 0 && (prev == nil || prev.VID != want) {
			return versionMismatch(want, prev)
		}
		if prev == nil || prev.Deleted {
			// Nothing to delete: deleting is idempotent (http.html#delete).
			return s.respondDeleted(c, prev, "nothing to delete")
		}
		w := s.tombstone(principal(c), typ, id, prev)
		if err := s.permitWrite(c, policy.Delete, prev, &w); err != nil {
			return err
		}
		v := w.New
		if err := s.store.Commit(c.UserContext(), []store.Write{w}); err != nil {
			return pinned(err, want)
		}
		s.afterCommit([]store.Write{w})
		return s.respondDeleted(c, &v, "deleted")
	})
}

func (s *Server) respondDeleted(c *fiber.Ctx, v *store.Version, msg string) error {
	if v != nil {
		c.Set(fiber.HeaderETag, etag(v.VID))
	}
	if prefer(c, "return") == "OperationOutcome" {
		c.Set(fiber.HeaderContentType, s.contentType(c))
		return c.Status(fiber.StatusOK).Send(fhir.OperationOutcome(issue("information", "informational", msg)))
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) patch(c *fiber.Ctx) error {
	noteOf(c).interaction = string(policy.Patch)
	typ, id, err := instanceParams(c)
	if err != nil {
		return err
	}
	if err := policy.CheckScope(principal(c), policy.Patch, typ); err != nil {
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
	return s.patchResource(c, typ, id, ops, want)
}

func parsePatchBody(c *fiber.Ctx) (*fhirjson.Value, error) {
	if err := requireBody(c, mimeJSONPatch); err != nil {
		return nil, err
	}
	ops, err := fhirjson.Parse(c.Body(), fhir.Limits)
	if err != nil {
		return nil, errorf(fiber.StatusBadRequest, "structure", "the patch is not valid JSON: "+err.Error())
	}
	return &ops, nil
}

func (s *Server) patchResource(c *fiber.Ctx, typ, id string, ops *fhirjson.Value, want uint64) error {
	return store.Retry(c.UserContext(), maxCommitAttempts, func() error {
		cur, err := s.store.Read(c.UserContext(), typ, id)
		if err != nil {
			return err
		}
		if !s.identityWriter(c, typ) || cur.Deleted {
			if err := s.reveal(c, policy.Patch, targetOf(&cur)); err != nil {
				return err
			}
		}
		if cur.Deleted {
			return gone(cur)
		}
		if want != 0 && cur.VID != want {
			return versionMismatch(want, &cur)
		}
		res, err := s.patched(cur, ops)
		if err != nil {
			return err
		}
		prev := cur
		prev.Body = nil
		v, err := s.commit(c, res, id, &prev, store.MethodPatch, nil)
		if err != nil {
			return pinned(err, want)
		}
		return s.respondWrite(c, fiber.StatusOK, v)
	})
}

// prefer returns the value of a Prefer header preference ("return",
// "handling").
func prefer(c *fiber.Ctx, name string) string {
	for _, p := range strings.Split(c.Get("Prefer"), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// respondWrite answers a create or update as the client preferred.
func (s *Server) respondWrite(c *fiber.Ctx, status int, v store.Version) error {
	c.Set(fiber.HeaderETag, etag(v.VID))
	c.Set(fiber.HeaderLastModified, v.LastUpdated.Format(http.TimeFormat))
	loc := s.base(c) + "/" + v.Type + "/" + v.ID + "/_history/" + strconv.FormatUint(v.VID, 10)
	if status == fiber.StatusCreated {
		c.Set(fiber.HeaderLocation, loc)
	} else {
		c.Set(fiber.HeaderContentLocation, loc)
	}
	c.Status(status)
	ret := prefer(c, "return")
	if !s.decide(c, policy.Read, targetOf(&v)).Allow {
		// A write the principal may make but not read back (an
		// administrator linking a wallet to a Patient record).
		ret = "minimal"
	}
	switch ret {
	case "minimal":
		return nil
	case "OperationOutcome":
		c.Set(fiber.HeaderContentType, s.contentType(c))
		msg := "updated"
		if status == fiber.StatusCreated {
			msg = "created"
		}
		return c.Send(fhir.OperationOutcome(issue("information", "informational", msg+" "+v.Type+"/"+v.ID+" version "+strconv.FormatUint(v.VID, 10))))
	}
	c.Set(fiber.HeaderContentType, s.contentType(c))
	return c.Send(v.Body)
}
