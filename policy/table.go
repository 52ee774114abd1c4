package policy

import (
	"slices"
	"strings"
)

// The access table (docs/security.md): every request is decided from
// these rows and nothing else. A row says that a principal of a role,
// standing in a relation to a record of a class, may use some
// permissions on it. What no row allows is refused (default deny), and
// SMART scopes are a ceiling checked before the table.

// Class is what kind of data a record is.
type Class uint8

// The classes.
const (
	// ClassPatient is a patient's data: a record in the Patient
	// compartment of a patient, or tied to one by another reference
	// (Binary.securityContext, Task.for, a Bundle's entries, ...).
	ClassPatient Class = iota + 1
	// ClassDirectory is the care directory: who delivers care, where.
	ClassDirectory
	// ClassAudit is the audit trail.
	ClassAudit
	// ClassOther is everything tied to no patient.
	ClassOther
)

func (c Class) String() string {
	switch c {
	case ClassPatient:
		return "a patient's data"
	case ClassDirectory:
		return "care directory"
	case ClassAudit:
		return "audit trail"
	case ClassOther:
		return "not tied to a patient"
	}
	return "?"
}

// DirectoryTypes are the care directory's resource types.
var DirectoryTypes = []string{"Practitioner", "PractitionerRole", "Organization", "Location", "HealthcareService", "Endpoint"}

// ClassOf returns the class of a record.
func ClassOf(t *Target) Class {
	switch {
	case t.Type == "AuditEvent":
		return ClassAudit
	case len(t.Patients) > 0:
		return ClassPatient
	case slices.Contains(DirectoryTypes, t.Type):
		return ClassDirectory
	}
	return ClassOther
}

// Relation is how a principal stands to a record.
type Relation uint8

// The relations.
const (
	// Anyone: every principal of the role.
	Anyone Relation = iota + 1
	// Subject: the patient is one of the record's patients.
	Subject
	// SoleSubject: the patient is every one of the record's patients (a
	// patient writes only records about themselves alone).
	SoleSubject
	// Author: the principal created the record.
	Author
	// Granted: every patient of the record has granted the principal the
	// permission on the record's type, on chain, and the grant is live.
	Granted
	// Participant: a practitioner taking part in an Appointment.
	Participant
	// Grantee: a practitioner or system client a Consent grants access
	// to, for the Consents the gateway projects from the chain (a
	// client's Consent resource naming them proves nothing): so that a
	// doctor or an EHR sees the Consents that concern it.
	Grantee
	// BreakGlass: a practitioner's emergency access to one patient,
	// with a reason; never writes.
	BreakGlass
	// IdentityOnly: a write that changes nothing but identity fields
	// (wallet identifiers, a practitioner's active flag) of a Patient or
	// Practitioner record, by an administrator or an identity-linking
	// system client.
	IdentityOnly
)

func (r Relation) String() string {
	switch r {
	case Anyone:
		return "any"
	case Subject:
		return "the patient it is about"
	case SoleSubject:
		return "the only patient it is about"
	case Author:
		return "its author"
	case Granted:
		return "granted on chain by every patient it is about"
	case Participant:
		return "a participant (Appointment)"
	case Grantee:
		return "the grantee (a Consent projected from the chain)"
	case BreakGlass:
		return "break-glass, one patient, with a reason"
	case IdentityOnly:
		return "identity fields only"
	}
	return "?"
}

// Rule is one row of the access table.
type Rule struct {
	Class Class
	Role  Role
	Rel   Relation
	// Perms are the permissions the row gives; for Granted, at most
	// these and only those the patients granted.
	Perms Perm
}

const (
	permRS  = PermRead | PermSearch
	permRUS = PermRead | PermUpdate | PermSearch
)

// Table is the access table, in the order rows are tried.
var Table = []Rule{
	// A patient's data.
	{ClassPatient, RolePatient, Subject, permRS},
	{ClassPatient, RolePatient, SoleSubject, permAll},
	{ClassPatient, RolePractitioner, Author, permAll &^ PermCreate},
	{ClassPatient, RolePractitioner, Granted, permAll},
	{ClassPatient, RolePractitioner, Participant, permRUS},
	{ClassPatient, RolePractitioner, Grantee, permRS},
	{ClassPatient, RolePractitioner, BreakGlass, permRS},
	{ClassPatient, RoleSystem, Anyone, PermCreate},
	{ClassPatient, RoleSystem, Author, permAll &^ PermCreate},
	{ClassPatient, RoleSystem, Granted, permAll},
	{ClassPatient, RoleSystem, Grantee, permRS},
	{ClassPatient, RoleSystem, IdentityOnly, PermUpdate},
	{ClassPatient, RoleAdmin, IdentityOnly, PermUpdate},
	// The care directory.
	{ClassDirectory, RolePatient, Anyone, permRS},
	{ClassDirectory, RolePractitioner, Anyone, permRS},
	{ClassDirectory, RoleRegulator, Anyone, permRS},
	{ClassDirectory, RoleSystem, Anyone, permRS | PermCreate},
	{ClassDirectory, RoleSystem, Author, PermUpdate | PermDelete},
	{ClassDirectory, RoleSystem, IdentityOnly, PermUpdate},
	{ClassDirectory, RoleAdmin, Anyone, permAll},
	// The audit trail: the gateway's own events, written by the gateway
	// only, and those system clients record (the audit record repository:
	// each client reads back its own). None is ever changed or deleted:
	// no row gives update or delete.
	{ClassAudit, RolePatient, Subject, permRS},
	{ClassAudit, RoleSystem, Anyone, PermCreate},
	{ClassAudit, RoleSystem, Author, permRS},
	{ClassAudit, RoleAdmin, Anyone, permRS},
	{ClassAudit, RoleRegulator, Anyone, permRS},
	// Everything else.
	{ClassOther, RoleSystem, Anyone, permAll},
	{ClassOther, RoleAdmin, Anyone, permAll},
}

// Gateway is the subject the gateway writes its own records as (projected
// Consents, AuditEvents).
const Gateway = "fhirgate"

// Roles lists every role, in the order the table is documented.
var Roles = []Role{RolePatient, RolePractitioner, RoleSystem, RoleAdmin, RoleRegulator, RoleApplicant}

// ScopeIdentityLinking is the scope a system client needs to write
// identity fields: registered clients get it only when their registry
// entry lists it (an EHR's patient-registration or identity service).
const ScopeIdentityLinking = "fhirgate/identity-linking"

// The registration scopes: an applicant's token carries ScopeRegistration
// (it may ask to be registered, nothing else); an administrator's wallet
// sign-in adds ScopeRegistrationAdmin (it may decide requests).
const (
	ScopeRegistration      = "fhirgate/registration"
	ScopeRegistrationAdmin = "fhirgate/registration.admin"
)

// IdentityLinker reports whether p may write identity fields.
func IdentityLinker(p *Principal) bool {
	switch p.Role {
	case RoleAdmin:
		return true
	case RoleSystem:
		return slices.Contains(p.Scopes.Other, ScopeIdentityLinking)
	}
	return false
}

// Markdown renders the table for docs/security.md (a test keeps the
// document and the code the same).
func Markdown() string {
	var b strings.Builder
	b.WriteString("| class | role | relation | permissions |\n|---|---|---|---|\n")
	for _, r := range Table {
		rel := r.Rel.String()
		if r.Rel == IdentityOnly && r.Role == RoleSystem {
			rel += " (with the " + ScopeIdentityLinking + " scope)"
		}
		b.WriteString("| " + r.Class.String() + " | " + string(r.Role) + " | " + rel + " | " + r.Perms.String() + " |\n")
	}
	return b.String()
}
