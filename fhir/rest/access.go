package rest

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// HeaderBreakGlass carries a practitioner's reason for an emergency
// access: allowed without consent, audited as a security alert.
const HeaderBreakGlass = "X-Break-Glass"

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
