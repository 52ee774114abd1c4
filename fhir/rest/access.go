package rest

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// HeaderBreakGlass carries a practitioner's reason for an emergency
// access: allowed without consent, audited as a security alert.
const HeaderBreakGlass = "X-Break-Glass"

// note is what the audit trail records about one request.
type note struct {
	interaction string
	reason      string
	breakGlass  string
	entities    []string
	patients    []string
	query       string
	skip        bool // audited elsewhere (batch entries are sub-requests)
}

type noteKey struct{}

func noteOf(c *fiber.Ctx) *note {
	if n, ok := c.Locals(noteKey{}).(*note); ok {
		return n
	}
	return &note{} // unaudited route: notes go nowhere
}

// touch records a resource version the request read or wrote.
func (n *note) touch(v *store.Version) {
	if len(n.entities) < 2*maxAuditEntities {
		n.entities = append(n.entities, v.Type+"/"+v.ID+"/_history/"+itoa(v.VID))
	}
	for _, c := range v.Compartments {
		if strings.HasPrefix(c, "Patient/") && !contains(n.patients, c) {
			n.patients = append(n.patients, c)
		}
	}
}

const maxAuditEntities = 200

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// audited records one AuditEvent for every FHIR interaction of an
// authenticated principal, allowed or denied. If the audit trail cannot
// take the event, the request fails: nothing is served unaudited.
func (s *Server) audited(c *fiber.Ctx) error {
	n := &note{}
	c.Locals(noteKey{}, n)
	err := c.Next()
	if s.cfg.Audit == nil || n.skip {
		return err
	}
	status, reason := c.Response().StatusCode(), n.reason
	if err != nil {
		var issues []fhir.Issue
		status, issues, _ = statusOf(err)
		if len(issues) > 0 {
			reason = issues[0].Diagnostics
		}
	}
	interaction := n.interaction
	if interaction == "" {
		interaction = "operation"
	}
	ev := audit.Event{
		Time: s.now(), Principal: principal(c), Interaction: interaction,
		Outcome: audit.OutcomeOf(status), Reason: reason,
		Entities: n.entities, Patients: n.patients, Query: n.query,
		BreakGlass: n.breakGlass, Source: c.IP(),
	}
	if aerr := s.cfg.Audit.Record(ev); aerr != nil {
		c.Response().Header.Reset()
		return errorf(fiber.StatusServiceUnavailable, "transient", "the request was not completed because it could not be audited; retry later")
	}
	return err
}

// targetOf is what policy needs to know about a stored version.
func targetOf(v *store.Version) policy.Target {
	t := policy.Target{Type: v.Type, ID: v.ID, Creator: v.Creator}
	for _, c := range v.Compartments {
		switch {
		case strings.HasPrefix(c, "Patient/"):
			t.Patients = append(t.Patients, c)
		case strings.HasPrefix(c, "Practitioner/"):
			t.Practitioners = append(t.Practitioners, c)
		}
	}
	return t
}

// authorize decides whether the principal may perform in on t, records
// the decision for the audit trail, and answers 403 when it may not.
func (s *Server) authorize(c *fiber.Ctx, in policy.Interaction, t policy.Target) error {
	d := s.decider.Decide(principal(c), in, t, c.Get(HeaderBreakGlass))
	n := noteOf(c)
	if n.interaction == "" {
		n.interaction = string(in)
	}
	if d.BreakGlass {
		n.breakGlass = c.Get(HeaderBreakGlass)
	}
	if !d.Allow || n.reason == "" {
		n.reason = d.Reason
	}
	for _, p := range t.Patients {
		if !contains(n.patients, p) {
			n.patients = append(n.patients, p)
		}
	}
	// A refusal names the record that was tried, so the patient sees what
	// someone attempted (the event is in that patient's compartment only).
	if !d.Allow && t.ID != "" && len(n.entities) < 2*maxAuditEntities {
		n.entities = append(n.entities, t.Type+"/"+t.ID)
	}
	return d.Err()
}

// permitWrite authorizes a write: on the version it replaces (if any) and
// on the version it makes, so that nobody moves a record into or out of a
// patient's compartment without rights on both sides.
func (s *Server) permitWrite(c *fiber.Ctx, in policy.Interaction, prev *store.Version, w *store.Write) error {
	if prev != nil && prev.Creator == audit.Author {
		return errGatewayRecord
	}
	live := prev != nil && !prev.Deleted
	if live {
		if err := s.authorize(c, in, targetOf(prev)); err != nil {
			return err
		}
	}
	next := in
	if !live && in != policy.Delete {
		next = policy.Create
	}
	if !w.New.Deleted {
		t := targetOf(&w.New)
		if t.Creator == "" {
			t.Creator = principal(c).Subject
		}
		if err := s.authorize(c, next, t); err != nil {
			return err
		}
	}
	return nil
}

// visible returns the filter that keeps a search or history to what the
// principal may see with interaction in: applied before paging, so counts
// and links never reveal the rest.
func (s *Server) visible(c *fiber.Ctx, in policy.Interaction) func(*store.Version) bool {
	p := principal(c)
	glass := c.Get(HeaderBreakGlass)
	n := noteOf(c)
	return func(v *store.Version) bool {
		d := s.decider.Decide(p, in, targetOf(v), glass)
		if d.BreakGlass {
			n.breakGlass = glass
		}
		return d.Allow
	}
}
