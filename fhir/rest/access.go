package rest

import (
	"errors"
	"net/url"
	"slices"
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

// targetOf is what policy needs to know about a stored version.
func targetOf(v *store.Version) policy.Target {
	t := policy.Target{Type: v.Type, ID: v.ID, Creator: v.Creator}
	for _, c := range v.Compartments {
		switch {
		case strings.HasPrefix(c, "Patient/"):
			t.Patients = append(t.Patients, c)
		case strings.HasPrefix(c, "Practitioner/"):
			t.Practitioners = append(t.Practitioners, c)
		case strings.HasPrefix(c, "client/"):
			t.Clients = append(t.Clients, c)
		}
	}
	return t
}

// glassKey holds a request's break-glass pin (see pinGlass).
type glassKey struct{}

// glassPin is the one patient a break-glass search may open.
type glassPin struct {
	patient string // "Patient/<id>"; "" until the first match (firstMatch)
	// firstMatch: a Patient search by demographics (the person in front
	// of the practitioner): the first patient found is the one opened.
	firstMatch bool
}

// glass returns the request's break-glass: the reason and, for a search,
// its pinned patient.
func glass(c *fiber.Ctx) (policy.Glass, *glassPin) {
	g := policy.Glass{Reason: c.Get(HeaderBreakGlass)}
	pin, _ := c.Locals(glassKey{}).(*glassPin)
	if pin != nil {
		g.Patient = pin.patient
	}
	return g, pin
}

// pinGlass sets the one patient a break-glass search opens: the patient
// its patient or subject parameter names (or, on Patient, its _id); a
// search of Patient by demographics (the person in front of the
// practitioner) opens the first patient it finds. A break-glass search
// that names no patient is refused: it would range over everyone.
func pinGlass(c *fiber.Ctx, typ string, params url.Values) error {
	if c.Get(HeaderBreakGlass) == "" || principal(c).Role != policy.RolePractitioner {
		return nil
	}
	one := func(name string) string {
		if vs := params[name]; len(vs) == 1 && !strings.Contains(vs[0], ",") {
			return vs[0]
		}
		return ""
	}
	var ref string
	switch {
	case typ == "Patient" && one("_id") != "":
		ref = "Patient/" + one("_id")
	case one("patient") != "":
		ref = one("patient")
		if !strings.HasPrefix(ref, "Patient/") {
			ref = "Patient/" + ref
		}
	case strings.HasPrefix(one("subject"), "Patient/"):
		ref = one("subject")
	}
	if ref != "" {
		if !fhir.ValidID(strings.TrimPrefix(ref, "Patient/")) {
			return errorAt(fiber.StatusBadRequest, "invalid", "patient", "a break-glass search names one patient: patient=Patient/<id>")
		}
		c.Locals(glassKey{}, &glassPin{patient: ref})
		return nil
	}
	if typ == "Patient" {
		for _, p := range []string{"identifier", "name", "family", "given", "birthdate", "telecom", "phone", "email"} {
			if len(params[p]) > 0 {
				c.Locals(glassKey{}, &glassPin{firstMatch: true})
				return nil
			}
		}
	}
	return errorf(fiber.StatusBadRequest, "invalid",
		"a break-glass search must name one patient (patient=Patient/<id>, or on Patient: _id, identifier or name)")
}

// decide asks policy about in on t for the request's principal, with its
// break-glass.
func (s *Server) decide(c *fiber.Ctx, in policy.Interaction, t policy.Target) policy.Decision {
	g, _ := glass(c)
	return s.decider.Decide(principal(c), in, t, g)
}

// authorize decides whether the principal may perform in on t, records
// the decision for the audit trail, and answers 403 when it may not.
func (s *Server) authorize(c *fiber.Ctx, in policy.Interaction, t policy.Target) error {
	return s.note(c, in, t, s.decide(c, in, t)).Err()
}

// note records a decision on t for the audit trail and returns it.
func (s *Server) note(c *fiber.Ctx, in policy.Interaction, t policy.Target, d policy.Decision) policy.Decision {
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
		n.owners = append(n.owners, t.Patients)
	}
	return d
}

// errHidden answers a principal that may not learn whether a record
// exists exactly as if it did not: same status, same body.
var errHidden = store.ErrNotFound

// reveal decides in on an existing version v. A principal that may
// neither read v nor perform in on it gets errHidden, the answer for an
// absent record; one that may see v but not do in gets the denial (403);
// a decision that could not be made (the consent mirror is behind) gets
// 503. The decision is recorded for the audit trail either way.
func (s *Server) reveal(c *fiber.Ctx, in policy.Interaction, t policy.Target) error {
	d := s.note(c, in, t, s.decide(c, in, t))
	if d.Allow {
		return nil
	}
	if d.Unavailable {
		return errConsentUnavailable
	}
	// May the principal know of the record? Read it, or do in to it were
	// it not for the identity fields the write changes.
	plain := t
	plain.IdentityChange, plain.IdentityOnly = false, false
	if s.decide(c, policy.Read, plain).Allow || (in.Perm() != policy.PermRead && s.decide(c, in, plain).Allow) {
		return d.Err()
	}
	noteOf(c).hidden = true
	return errHidden
}

// identityWriter: the principal may write identity fields of typ, which
// only the written version shows: the decision waits for it (permitWrite).
func (s *Server) identityWriter(c *fiber.Ctx, typ string) bool {
	return holdsIdentity(typ) && policy.IdentityLinker(principal(c))
}

var errConsentUnavailable = errorf(fiber.StatusServiceUnavailable, "transient",
	"access to this record depends on patients' consents, which cannot be checked now; retry later")

// permitWrite authorizes a write: on the version it replaces (if any) and
// on the version it makes, so that nobody moves a record into or out of a
// patient's compartment without rights on both sides. Identity fields
// (wallet identifiers, a practitioner's active flag) are compared between
// the two, so that only those allowed to change them do.
func (s *Server) permitWrite(c *fiber.Ctx, in policy.Interaction, prev *store.Version, w *store.Write) error {
	live := prev != nil && !prev.Deleted
	ident, err := s.identityDiff(c, prev, w)
	if err != nil {
		return err
	}
	var before policy.Target
	if live {
		before = targetOf(prev)
		before.IdentityChange, before.IdentityOnly = ident.change, ident.only
		if err := s.reveal(c, in, before); err != nil {
			if errors.Is(err, errHidden) && in == policy.Update {
				return s.hiddenUpdate(c, w)
			}
			return err
		}
		if prev.Creator == audit.Author {
			return errGatewayRecord
		}
	}
	if w.New.Deleted {
		return nil
	}
	next := in
	t := targetOf(&w.New)
	t.IdentityChange, t.IdentityOnly = ident.change, ident.only
	t.Creator = principal(c).Subject
	switch {
	case !live:
		next = policy.Create
	case !subset(t.Patients, before.Patients):
		// Moving a record to another patient is creating it there: the
		// author's rights on the old one do not follow.
		next, t.Creator, t.IdentityOnly = policy.Create, "", false
	default:
		t.Creator = prev.Creator
	}
	return s.authorize(c, next, t)
}

// hiddenUpdate answers an update of a record the principal may not know
// of as an update of an absent one would be answered (an update that
// creates), as far as that can be done: refused alike when the principal
// may not create such a record, and otherwise told the id is not
// available (update-as-create with a chosen id cannot hide that an id is
// in use from a principal allowed to create; ids are not secrets).
func (s *Server) hiddenUpdate(c *fiber.Ctx, w *store.Write) error {
	t := targetOf(&w.New)
	t.Creator = principal(c).Subject
	if err := policy.CheckScope(principal(c), policy.Create, t.Type); err != nil {
		return err
	}
	if err := s.authorize(c, policy.Create, t); err != nil {
		return err
	}
	return errIDTaken
}

var errIDTaken = errorf(fiber.StatusConflict, "conflict",
	"this id is not available; create the resource with POST to get an id assigned by the server")

func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// visible returns the filter that keeps a search or history to what the
// principal may see with interaction in: applied before paging, so counts
// and links never reveal the rest. A break-glass search opens one
// patient: the one it names, or the first it finds (glassPin).
func (s *Server) visible(c *fiber.Ctx, in policy.Interaction) func(*store.Version) bool {
	p := principal(c)
	g, pin := glass(c)
	n := noteOf(c)
	return func(v *store.Version) bool {
		t := targetOf(v)
		if pin != nil && pin.firstMatch && pin.patient == "" && len(t.Patients) > 0 {
			g.Patient = t.Patients[0]
		}
		d := s.decider.Decide(p, in, t, g)
		if d.BreakGlass {
			n.breakGlass = g.Reason
			if pin != nil && pin.patient == "" {
				pin.patient = g.Patient
			}
		}
		return d.Allow
	}
}
