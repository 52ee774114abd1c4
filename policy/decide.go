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
	// Patients are the patients the record is about ("Patient/<id>"):
	// those whose compartment holds it, and those it is tied to by
	// another reference (Binary.securityContext, Task.for, ...). Empty
	// for records about no patient.
	Patients []string
	// Practitioners are the practitioners whose compartment holds it
	// (an Appointment's participants, a Consent's grantees).
	Practitioners []string
	// Clients are the registered system clients a Consent grants access
	// to ("client/<id>": clients are not FHIR resources, so a Consent
	// names them by identifier, system ClientSystem).
	Clients []string
	// Creator is the subject of the principal that created the resource.
	Creator string
	// IdentityChange marks a write that changes identity fields: the
	// wallet identifiers of a Patient or Practitioner, or the active
	// flag of a Practitioner linked to a wallet.
	IdentityChange bool
	// IdentityOnly marks a write that changes identity fields and
	// nothing else.
	IdentityOnly bool
}

// ClientSystem is the identifier system a Consent names a registered
// system client by (the grantee of a "client/<id>" grant).
const ClientSystem = "urn:fhirgate:client"

// Glass is a practitioner's break-glass request: the emergency reason
// and, for a search, the one patient it is about.
type Glass struct {
	Reason string
	// Patient pins a break-glass search to one patient ("Patient/<id>");
	// empty for a read, where the record names its patient.
	Patient string
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
	// Unavailable marks a refusal because consent could not be checked
	// (the mirror is behind the chain): fail closed, but say so.
	Unavailable bool
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

// Decide says whether p may perform in on t, from the access table
// (table.go): SMART scopes first, then the first row that allows.
func (d *Decider) Decide(p *Principal, in Interaction, t Target, glass Glass) Decision {
	if err := CheckScope(p, in, t.Type); err != nil {
		return deny(strings.TrimPrefix(err.Error(), ErrDenied.Error()+": "))
	}
	switch {
	case p.Role == RolePatient && p.Resource == "":
		return deny("this wallet is linked to no patient record")
	case p.Role == RolePractitioner && p.Resource == "":
		return deny("this wallet is linked to no practitioner record")
	case t.IdentityChange && !IdentityLinker(p):
		return deny("identity fields (wallet identifiers, a practitioner's active flag) are written by administrators and identity-linking systems only")
	}
	perm := in.Perm()
	class := ClassOf(&t)
	// The consent check's answer, for the reason (by value: a pointer to
	// it would move every consent decision to the heap).
	var refused Decision
	consentRefused := false
	for i := range Table {
		r := &Table[i]
		if r.Class != class || r.Role != p.Role || r.Perms&perm == 0 {
			continue
		}
		switch r.Rel {
		case Anyone:
			return allow(anyoneReason(class, p.Role, perm))
		case Subject:
			if slices.Contains(t.Patients, p.Resource) {
				return allow("the patient's own record")
			}
		case SoleSubject:
			if soleSubject(t.Patients, p.Resource) {
				return allow("the patient's own record")
			}
		case Author:
			if t.Creator != "" && t.Creator == p.Subject {
				return allow("the principal's own record (its author)")
			}
		case Granted:
			dec := d.byConsent(grantee(p), t, perm)
			if dec.Allow {
				return dec
			}
			refused, consentRefused = dec, true
		case Participant:
			if t.Type == "Appointment" && slices.Contains(t.Practitioners, p.Resource) {
				return allow("an appointment the practitioner takes part in")
			}
		case Grantee:
			if t.Type == "Consent" && t.Creator == Gateway &&
				(p.Role == RolePractitioner && slices.Contains(t.Practitioners, p.Resource) ||
					p.Role == RoleSystem && slices.Contains(t.Clients, grantee(p))) {
				return allow("a consent that grants the principal access")
			}
		case BreakGlass:
			if dec, ok := d.breakGlass(p, in, t, glass); ok {
				return dec
			}
		case IdentityOnly:
			if t.IdentityOnly && IdentityLinker(p) && (t.Type == "Patient" || t.Type == "Practitioner") {
				return allow("an identity change by " + string(p.Role))
			}
		}
	}
	if consentRefused {
		return refused
	}
	return deny(denyReason(class, p.Role, perm))
}

func soleSubject(patients []string, me string) bool {
	if len(patients) == 0 {
		return false
	}
	for _, pt := range patients {
		if pt != me {
			return false
		}
	}
	return true
}

// grantee is the name grants to p are recorded under.
func grantee(p *Principal) string {
	if p.Role == RoleSystem {
		return "client/" + strings.TrimPrefix(p.ClientID, "client/")
	}
	return p.Resource
}

// breakGlass allows a practitioner's emergency read or search of one
// patient's records: never a write, a history of a type or the system,
// or a search across patients. Every other patient of the record must
// have granted access.
func (d *Decider) breakGlass(p *Principal, in Interaction, t Target, g Glass) (Decision, bool) {
	if g.Reason == "" || (in != Read && in != VRead && in != SearchType) {
		return Decision{}, false
	}
	if in == SearchType && g.Patient == "" {
		return Decision{}, false
	}
	opened := g.Patient
	for _, pt := range t.Patients {
		if pt == opened {
			continue
		}
		if (d.Health == nil || d.Health() == nil) && d.consented(grantee(p), pt, t.Type, in.Perm()) {
			continue
		}
		if opened != "" || in == SearchType {
			return Decision{}, false // a second ungranted patient
		}
		opened = pt // a read opens the record's one ungranted patient
	}
	if opened == "" || !slices.Contains(t.Patients, opened) {
		return Decision{}, false
	}
	return Decision{Allow: true, BreakGlass: true, Consent: true, Reason: "break-glass: " + g.Reason}, true
}

func anyoneReason(c Class, r Role, perm Perm) string {
	switch c {
	case ClassPatient:
		return "a client creates within its scopes"
	case ClassDirectory:
		return "the care directory is open to the signed-in; " + string(r) + " may " + permVerb(perm) + " it"
	case ClassAudit:
		if perm == PermCreate {
			return "a system client records its own audit events"
		}
		return string(r) + " reads the audit trail"
	}
	return "a record about no patient, within the " + string(r) + "'s scopes"
}

func denyReason(c Class, r Role, perm Perm) string {
	switch c {
	case ClassPatient:
		switch r {
		case RolePatient:
			if perm == PermRead || perm == PermSearch {
				return "patients reach their own records only"
			}
			return "patients write records about themselves only"
		case RoleAdmin, RoleRegulator:
			return string(r) + "s do not reach clinical records"
		}
		return "no access to this patient's record"
	case ClassDirectory:
		return "the care directory is written by administrators (and the systems that authored a record)"
	case ClassAudit:
		switch perm {
		case PermRead, PermSearch:
			return "audit events are seen by the patients they are about, administrators, regulators and the client that recorded them"
		case PermCreate:
			return "audit events are recorded by system clients (and the gateway)"
		}
		return "audit events are never changed or deleted"
	}
	return "records about no patient are for system clients and administrators"
}

// byConsent allows when every patient of t has granted grantee perm on
// t's type, and fails closed when the consent mirror is behind.
func (d *Decider) byConsent(grantee string, t Target, perm Perm) Decision {
	if d.Health != nil {
		if err := d.Health(); err != nil {
			return Decision{Consent: true, Unavailable: true, Reason: "consent cannot be checked now: " + err.Error()}
		}
	}
	for _, pat := range t.Patients {
		if !d.consented(grantee, pat, t.Type, perm) {
			return Decision{Consent: true, Reason: "no live consent from " + pat + " for " + grantee + " to " + permVerb(perm) + " " + t.Type}
		}
	}
	// Constant reasons: the decision runs for every record a search finds,
	// and the audit event names the patients already.
	if len(t.Patients) == 1 {
		return Decision{Allow: true, Consent: true, Reason: "granted on chain by the record's patient"}
	}
	return Decision{Allow: true, Consent: true, Reason: "granted on chain by every patient of the record"}
}

func (d *Decider) consented(grantee, patient, typ string, perm Perm) bool {
	return d.Consent != nil && d.Consent.Allowed(grantee, patient, typ, perm)
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
