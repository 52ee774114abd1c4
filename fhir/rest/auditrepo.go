package rest

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/policy"
)

// The audit record repository (IHE BALP / ATNA "record audit event",
// docs/audit.md): system clients POST the AuditEvents of their own audit
// sources; the gateway keeps them apart from its own trail
// (audit.Repository), logs each like a version, and serves both through
// AuditEvent reads and searches. No AuditEvent is ever changed or
// deleted, by anyone.

// auditRoutes are registered before the generic routes, which they
// shadow for AuditEvent.
func (s *Server) auditRoutes(f fiber.Router) {
	f.Post("/AuditEvent", s.recordEvent)
	for _, path := range []string{"/AuditEvent", "/AuditEvent/:id"} {
		f.Put(path, s.immutableEvent)
		f.Patch(path, s.immutableEvent)
		f.Delete(path, s.immutableEvent)
	}
}

// immutableEvent refuses every change of an AuditEvent, whoever asks and
// whether or not the event exists (the answer tells nothing of it).
func (s *Server) immutableEvent(c *fiber.Ctx) error {
	n := noteOf(c)
	switch c.Method() {
	case fiber.MethodPut:
		n.interaction = string(policy.Update)
	case fiber.MethodPatch:
		n.interaction = string(policy.Patch)
	default:
		n.interaction = string(policy.Delete)
	}
	n.reason = "audit events are never changed or deleted"
	allow := fiber.MethodGet + ", " + fiber.MethodHead
	if c.Params("id") == "" {
		allow += ", " + fiber.MethodPost
	}
	e := errorf(fiber.StatusMethodNotAllowed, "not-supported",
		"audit events are never changed or deleted, by anyone: the gateway's own and those clients recorded stay as they were written (they are in the tamper-evident log)")
	e.header = [2]string{fiber.HeaderAllow, allow}
	return e
}

// errAuditCommit answers a write of an AuditEvent among other versions
// (a transaction entry): the store keeps AuditEvents apart (store.Virtual)
// and a recorded event is a commit of its own.
var errAuditCommit = errorf(fiber.StatusForbidden, "forbidden",
	"an AuditEvent cannot be written in a transaction (its commit is its own) and is never changed: record it with POST [base]/AuditEvent, alone or as a batch entry")

// errNotRecording answers a POST of an AuditEvent on a gateway without a
// repository (tests of the REST rules alone).
var errNotRecording = errorf(fiber.StatusForbidden, "forbidden",
	"this gateway records no client audit events: its audit trail is written by the gateway only")

// recordEvent is POST [base]/AuditEvent: a system client records an
// event of its own audit source. The event is validated like any
// resource, may not claim the gateway as its observer, and is stored
// with its log leaf in one commit; the gateway's own trail records the
// interaction (who recorded which event).
func (s *Server) recordEvent(c *fiber.Ctx) error {
	noteOf(c).interaction = string(policy.Create)
	const typ = "AuditEvent"
	p := principal(c)
	if err := policy.CheckScope(p, policy.Create, typ); err != nil {
		return err
	}
	if s.cfg.Recorded == nil {
		return errNotRecording
	}
	if c.Get("If-None-Exist") != "" {
		return errorf(fiber.StatusBadRequest, "not-supported", "conditional create (If-None-Exist) is not supported for AuditEvent: every posted event is recorded")
	}
	res, err := s.parseResource(c, typ)
	if err != nil {
		return err
	}
	pending, err := s.cfg.Recorded.Prepare(res)
	if err != nil {
		return err
	}
	t := policy.Target{Type: typ, Creator: p.Subject}
	for _, m := range pending.Compartments {
		if strings.HasPrefix(m, "Patient/") {
			t.Patients = append(t.Patients, m)
		}
	}
	if err := s.authorize(c, policy.Create, t); err != nil {
		return err
	}
	if path := audit.GatewayClaim(&res.Root); path != "" {
		return errorAt(fiber.StatusUnprocessableEntity, "business-rule", path,
			"this event names the gateway (fhirgate) as its observer or an agent: a client records what its own audit source observed; the gateway's events are written by the gateway alone")
	}
	v, err := pending.Commit(c.UserContext(), p.Subject, s.cfg.NoLog)
	if err != nil {
		return err
	}
	noteOf(c).touch(&v)
	return s.respondWrite(c, fiber.StatusCreated, v)
}
