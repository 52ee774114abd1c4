package rest

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/store"
)

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
