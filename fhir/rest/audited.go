package rest

import (
	"context"
	"slices"
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
	// owners[i] holds the compartments of entities[i] (its patients
	// among them), so that each patient's event names only what is about
	// them.
	owners   [][]string
	patients []string
	query    string
	skip     bool // audited elsewhere (batch entries are sub-requests)
	// hidden: the request was refused but answered as if the record did
	// not exist (no existence oracle); the event records the refusal.
	hidden bool
	// optimistic: the request's reads may answer from what this replica
	// last saw (store.ReadSet), proved current by the event's commit;
	// reads holds what they took.
	optimistic bool
	reads      *store.ReadSet
	// audited: the audited middleware runs for this request; rode: the
	// event of its one write was written in that write's commit (s.ride).
	audited bool
	rode    bool
	// Room for the one entity of a read, an update or a create, so the
	// common request appends without allocating.
	entBuf [1]string
	ownBuf [1][]string
}

func newNote() *note {
	n := &note{}
	n.entities, n.owners = n.entBuf[:0], n.ownBuf[:0]
	return n
}

type noteKey struct{}

func noteOf(c *fiber.Ctx) *note {
	if n, ok := c.Locals(noteKey{}).(*note); ok {
		return n
	}
	return newNote() // unaudited route: notes go nowhere
}

// touch records a resource version the request read or wrote.
func (n *note) touch(v *store.Version) {
	if len(n.entities) < 2*maxAuditEntities {
		n.entities = append(n.entities, v.Type+"/"+v.ID+"/_history/"+itoa(v.VID))
		n.owners = append(n.owners, v.Compartments)
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
// authenticated principal, allowed or refused (a 406 too: it runs before
// the format is negotiated), and answers only once the event and its log
// leaf are on disk: Record waits for the synced commit that holds them,
// shared with the other requests of the moment (audit.Recorder). If the
// trail cannot keep the event, the request fails with 503 and serves
// nothing: nothing is answered unaudited. A crash after the commit and
// before the answer leaves an event whose answer never left; never the
// other way round.
func (s *Server) audited(c *fiber.Ctx) error {
	n := newNote()
	n.audited = s.cfg.Audit != nil
	n.optimistic = n.audited && c.Locals(rereadKey{}) == nil
	c.Locals(noteKey{}, n)
	err := c.Next()
	if s.cfg.Audit == nil || n.skip {
		return err
	}
	status, reason := c.Response().StatusCode(), n.reason
	if err != nil {
		var issues []fhir.Issue
		status, issues, _ = statusOf(err)
		if len(issues) > 0 && !n.hidden {
			reason = issues[0].Diagnostics
		}
	}
	if n.hidden {
		// Answered as if absent (404, or 204 for a delete), but refused:
		// the patient's trail says so, with the decision's reason.
		status = fiber.StatusForbidden
	}
	if n.rode && len(n.entities) == 1 && status < 300 {
		return err // its event was written with the write (ride)
	}
	ev := s.event(c, n, status, reason)
	var stale bool
	if cs := n.reads.Checks(); len(cs) > 0 {
		ev.Checks, ev.Stale = cs, &stale
	}
	var aerr error
	if len(n.patients) <= 1 {
		aerr = s.record(c, ev)
	} else {
		aerr = s.cfg.Audit.RecordAll(context.WithoutCancel(c.UserContext()), n.perPatient(ev)) // one commit
	}
	if aerr != nil {
		c.Response().Header.Reset()
		return errAuditUnavailable
	}
	if stale {
		return s.reread(c, n)
	}
	return err
}

// rereadKey marks the second pass of a request (reread).
type rereadKey struct{}

// reread answers a request again, from the store, after its audit commit
// found that a version it read from this replica's memory was no longer
// current (store.ReadSet): another replica had written a newer one, which
// may have been acknowledged before this request began. Nothing of the
// first pass is sent. The second pass runs the whole route again (its
// authentication, its decision, its own AuditEvent) with every read asking
// the store. The first pass's event stays in the trail: it names a
// version the principal was allowed to read at the commit but was not
// sent (the trail may hold events of answers that never left, never an
// answer without its event). Only requests that write nothing read
// optimistically, so running one twice changes nothing.
func (s *Server) reread(c *fiber.Ctx, n *note) error {
	n.reads.Forget()
	s.metrics.rereads.Inc()
	c.Locals(rereadKey{}, true)
	// What the first pass's handlers kept for the request goes with it
	// (the principal, the note and the format are set again by the
	// second pass's middleware; a break-glass pin only by its handler).
	c.Locals(glassKey{}, nil)
	c.Response().Reset()
	return c.RestartRouting()
}

// readContext is the context a request's store reads use: with a
// store.ReadSet for a request that may read optimistically (see note).
func (s *Server) readContext(c *fiber.Ctx) context.Context {
	ctx := c.UserContext()
	n := noteOf(c)
	if !n.optimistic || n.skip {
		return ctx
	}
	if n.reads == nil {
		n.reads = s.store.NewReadSet()
	}
	return store.WithReadSet(ctx, n.reads)
}

// event is the AuditEvent of the request n notes, answered with status.
func (s *Server) event(c *fiber.Ctx, n *note, status int, reason string) audit.Event {
	interaction := n.interaction
	if interaction == "" {
		// Refused before a handler named the interaction (406, no such
		// endpoint): the request line says what was tried.
		interaction = "operation"
		reason = requestLine(c, reason)
	}
	return audit.Event{
		Time: s.now(), Principal: principal(c), Interaction: interaction,
		Outcome: audit.OutcomeOf(status), Reason: reason,
		Entities: n.entities, Patients: n.patients, Query: n.query,
		BreakGlass: n.breakGlass, Source: c.IP(),
	}
}

// ride returns the AuditEvent of a request whose one write is v, ready to
// be written in v's own commit (audit.Recorder.Ride): one durable commit
// for the write and its event instead of two in a row, and neither kept
// without the other. The event is the one the audited middleware would
// write after a successful answer (a 2xx outcome: once the write is
// committed the interaction succeeded). nil when the request is not
// audited here, or has touched a record already (its event is written by
// the middleware as before). After the commit, call rodeWith.
func (s *Server) ride(c *fiber.Ctx, v *store.Version) *audit.Riding {
	n := noteOf(c)
	if !n.audited || n.skip || n.hidden || len(n.entities) > 0 || n.interaction == "" {
		return nil
	}
	tmp := newNote()
	tmp.interaction, tmp.reason, tmp.breakGlass, tmp.query = n.interaction, n.reason, n.breakGlass, n.query
	tmp.touch(v)
	ev := s.event(c, tmp, fiber.StatusOK, tmp.reason)
	evs := []audit.Event{ev}
	if len(tmp.patients) > 1 {
		evs = tmp.perPatient(ev)
	}
	return s.cfg.Audit.Ride(s.store.Engine(), evs)
}

// rodeWith notes that rd's event, naming v, was written by v's commit.
func rodeWith(c *fiber.Ctx, rd *audit.Riding) {
	if rd == nil {
		return
	}
	rd.Done()
	noteOf(c).rode = true
}

var errAuditUnavailable = errorf(fiber.StatusServiceUnavailable, "transient", "the request was not completed because it could not be audited; retry later")

// record writes ev durably. The wait keeps the request's context values
// but not its deadline: a request that ran out of its time budget is still
// audited, and the recorder's own bounds (a full queue, a failing store,
// shutdown) end the wait.
func (s *Server) record(c *fiber.Ctx, ev audit.Event) error {
	return s.cfg.Audit.Record(context.WithoutCancel(c.UserContext()), ev)
}

// perPatient splits the event of a request that touched several
// patients' records into one event per patient, naming that patient and
// the records about them (IHE BALP: one patient per AuditEvent), plus one
// for the records about no patient, if any. Each patient sees their own
// event; an event naming several patients would show each of them the
// others. The events are written in one commit.
func (n *note) perPatient(ev audit.Event) []audit.Event {
	evs := make([]audit.Event, 0, len(n.patients)+1)
	var rest []string
	for i, ref := range n.entities {
		if !slices.ContainsFunc(n.owners[i], isPatientRef) {
			rest = append(rest, ref)
		}
	}
	for _, p := range n.patients {
		e := ev
		e.Patients = []string{p}
		e.Entities = nil
		for i, ref := range n.entities {
			if slices.Contains(n.owners[i], p) {
				e.Entities = append(e.Entities, ref)
			}
		}
		evs = append(evs, e)
	}
	if len(rest) > 0 {
		e := ev
		e.Patients, e.Entities = nil, rest
		evs = append(evs, e)
	}
	return evs
}

func isPatientRef(c string) bool { return strings.HasPrefix(c, "Patient/") }

// requestLine appends the method and path (not the query) to reason.
func requestLine(c *fiber.Ctx, reason string) string {
	line := c.Method() + " " + c.Path()
	if reason == "" {
		return line
	}
	return reason + " (" + line + ")"
}

// auditRefusal records the AuditEvent of a request refused before the
// audited middleware ran, such as a body fasthttp refused as too large
// (413) before any route, when the request carries a valid bearer token:
// an authenticated principal's refusal is audited. A request without one
// names nobody, and is not. A non-nil error means the event could not be
// kept (the caller answers 503 instead).
func (s *Server) auditRefusal(c *fiber.Ctx, status int, issues []fhir.Issue) error {
	if s.cfg.Audit == nil {
		return nil
	}
	if _, audited := c.Locals(noteKey{}).(*note); audited {
		return nil
	}
	p, err := s.bearer(c)
	if err != nil {
		return nil
	}
	reason := ""
	if len(issues) > 0 {
		reason = issues[0].Diagnostics
	}
	return s.record(c, audit.Event{Time: s.now(), Principal: p, Interaction: "operation",
		Outcome: audit.OutcomeOf(status), Reason: requestLine(c, reason), Source: c.IP()})
}
