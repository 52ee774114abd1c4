package policy

import (
	"errors"
	"fmt"
)

// ErrDenied: the principal may not perform the interaction. Wrapped errors
// carry the reason.
var ErrDenied = errors.New("access denied")

// Role is what kind of party a principal is.
type Role string

// The roles.
const (
	RoleSystem       Role = "system"       // an EHR or other backend client
	RolePatient      Role = "patient"      // a person, signed in with a wallet
	RolePractitioner Role = "practitioner" // a clinician, signed in with a wallet
	RoleAdmin        Role = "admin"        // manages practitioners and clients
	RoleRegulator    Role = "regulator"    // reads audit events and proofs
	// RoleApplicant is a wallet linked to no record yet: it may ask to be
	// registered (the registration routes) and nothing else. No row of
	// the access table names it, so every FHIR interaction is refused.
	RoleApplicant Role = "applicant"
)

// Principal is an authenticated caller.
type Principal struct {
	// Subject names the caller: "client/<id>" for systems,
	// "Patient/<id>" or "Practitioner/<id>" for people.
	Subject string
	Role    Role
	// ClientID is the registered client the token was issued to.
	ClientID string
	Scopes   Scopes
	// Resource binds a person to their record: "Patient/<id>" or
	// "Practitioner/<id>"; empty for systems and unlinked wallets (which
	// match no compartment: an empty value never matches).
	Resource string
	// Wallet is the signed-in account, "eip155:<chainId>:<address>".
	Wallet string
}

// Interaction is a FHIR RESTful interaction.
type Interaction string

// The interactions.
const (
	Read            Interaction = "read"
	VRead           Interaction = "vread"
	Create          Interaction = "create"
	Update          Interaction = "update"
	Patch           Interaction = "patch"
	Delete          Interaction = "delete"
	SearchType      Interaction = "search-type"
	SearchSystem    Interaction = "search-system"
	HistoryInstance Interaction = "history-instance"
	HistoryType     Interaction = "history-type"
	HistorySystem   Interaction = "history-system"
)

// Perm returns the SMART permission an interaction needs.
func (i Interaction) Perm() Perm {
	switch i {
	case Read, VRead, HistoryInstance:
		return PermRead
	case Create:
		return PermCreate
	case Update, Patch:
		return PermUpdate
	case Delete:
		return PermDelete
	}
	return PermSearch
}

// scopeContext is the SMART context a role's scopes use.
func (r Role) scopeContext() string {
	switch r {
	case RolePatient:
		return "patient"
	case RolePractitioner:
		return "user"
	}
	return "system"
}

// CheckScope returns nil if p's scopes allow interaction on typ ("" or "*"
// for system-level interactions, which need the wildcard type), or an
// error wrapping ErrDenied that says which scope is missing.
func CheckScope(p *Principal, in Interaction, typ string) error {
	if typ == "" {
		typ = "*"
	}
	perm := in.Perm()
	ctx := p.Role.scopeContext()
	// For typ "*" only wildcard scopes match: a system-wide search or
	// history may return any type.
	if p.Scopes.Allows(ctx, typ, perm) {
		return nil
	}
	return fmt.Errorf("%w: %s on %s needs scope %s/%s.%s", ErrDenied, in, typ, ctx, typ, perm)
}
