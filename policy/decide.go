package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Target is what an interaction touches, as far as policy cares.
type Target struct {
	Type string
	ID   string // "" for a resource not yet created or a type-level check
	// Patients are the patients whose compartment holds the resource
	// ("Patient/<id>"); empty for resources in no patient's compartment.
	Patients []string
	// Practitioners are the practitioners whose compartment holds it
	// (an Appointment's participants, for example).
	Practitioners []string
	// Creator is the subject of the principal that created the resource.
	Creator string
}

// Decision is the answer to one request, with the reason recorded in the
// audit trail (and, on denial, sent to the client).
type Decision struct {
	Allow  bool
	Reason string
	// BreakGlass marks an access allowed only by a practitioner's
	// emergency override: audited as a security alert, shown to the patient.
	BreakGlass bool
	// Consent marks a decision that depended on a patient's grant.
	Consent bool
}

// Err returns nil for an allowed decision and an error wrapping ErrDenied
// otherwise.
func (d Decision) Err() error {
	if d.Allow {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrDenied, d.Reason)
}

// Decider applies the gateway's access rules: SMART scopes first, then
// who the principal is, then the patients' consent.
type Decider struct {
	Consent *Consent
	// Health reports whether the consent mirror is current; when it is
	// not, access that depends on consent fails closed.
	Health func() error
}

func allow(reason string) Decision { return Decision{Allow: true, Reason: reason} }
func deny(reason string) Decision  { return Decision{Reason: reason} }

// regulatorTypes are what regulators read: the audit trail, no clinical
// content.
var regulatorTypes = []string{"AuditEvent"}

// adminTypes are what admins manage: the people and organizations that
// deliver care, no clinical content.
var adminTypes = []string{"Practitioner", "PractitionerRole", "Organization", "Location", "HealthcareService", "Endpoint"}

// Decide says whether p may perform in on t. breakGlass is a
// practitioner's emergency reason ("" when none).
func (d *Decider) Decide(p *Principal, in Interaction, t Target, breakGlass string) Decision {
	if err := CheckScope(p, in, t.Type); err != nil {
		return deny(strings.TrimPrefix(err.Error(), ErrDenied.Error()+": "))
	}
	perm := in.Perm()
	switch p.Role {
	case RoleRegulator:
		if slices.Contains(regulatorTypes, t.Type) {
			return allow("regulator reads the audit trail")
		}
		return deny("regulators read audit events and proofs only")
	case RoleAdmin:
		if slices.Contains(adminTypes, t.Type) && len(t.Patients) == 0 {
			return allow("admin manages the care directory")
		}
		return deny("admins manage practitioners and organizations, not clinical records")
	case RolePatient:
		if p.Resource == "" {
			return deny("this wallet is linked to no patient record")
		}
		if slices.Contains(t.Patients, p.Resource) {
			return allow("the patient's own record")
		}
		if len(t.Patients) == 0 && (perm == PermRead || perm == PermSearch) {
			return allow("a directory resource outside any patient's record")
		}
		return deny("patients reach their own records only")
	case RolePractitioner:
		if p.Resource == "" {
			return deny("this wallet is linked to no practitioner record")
		}
		if t.Type == "Practitioner" && t.ID != "" && "Practitioner/"+t.ID == p.Resource && perm != PermDelete {
			return allow("the practitioner's own record")
		}
		if t.Type == "Appointment" && slices.Contains(t.Practitioners, p.Resource) && perm != PermDelete {
			return allow("an appointment the practitioner takes part in")
		}
		if t.Type == "Consent" && slices.Contains(t.Practitioners, p.Resource) && (perm == PermRead || perm == PermSearch) {
			return allow("a consent that grants the practitioner access")
		}
		if len(t.Patients) == 0 {
			return allow("a resource outside any patient's record")
		}
		dec := d.byConsent(p.Resource, t, perm)
		if !dec.Allow && breakGlass != "" {
			return Decision{Allow: true, BreakGlass: true, Consent: true, Reason: "break-glass: " + breakGlass}
		}
		return dec
	case RoleSystem:
		if len(t.Patients) == 0 {
			return allow("within the client's scopes")
		}
		if in == Create {
			return allow("a client creates within its scopes")
		}
		if t.Creator != "" && t.Creator == p.Subject {
			return allow("the client's own record")
		}
		return d.byConsent("client/"+strings.TrimPrefix(p.ClientID, "client/"), t, perm)
	}
	return deny("unknown role")
}

// byConsent allows when any patient of t has granted grantee perm on t's
// type, and fails closed when the consent mirror is behind.
func (d *Decider) byConsent(grantee string, t Target, perm Perm) Decision {
	if d.Health != nil {
		if err := d.Health(); err != nil {
			return Decision{Consent: true, Reason: "consent cannot be checked now: " + err.Error()}
		}
	}
	if d.Consent != nil {
		for _, pat := range t.Patients {
			if d.Consent.Allowed(grantee, pat, t.Type, perm) {
				return Decision{Allow: true, Consent: true, Reason: "granted by " + pat}
			}
		}
	}
	return Decision{Consent: true, Reason: "no live consent from the patient for " + grantee + " to " + permVerb(perm) + " " + t.Type}
}

func permVerb(p Perm) string {
	switch p {
	case PermCreate:
		return "create"
	case PermRead:
		return "read"
	case PermUpdate:
		return "update"
	case PermDelete:
		return "delete"
	}
	return "search"
}
