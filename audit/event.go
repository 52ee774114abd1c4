// Package audit records one AuditEvent per interaction, allowed or denied,
// shaped like IHE Basic Audit Log Patterns (BALP): who (client, user,
// server), what (the resources and patients touched, the search query),
// when, with which outcome and purpose. Events are FHIR AuditEvent
// resources appended to the anchored log like any version, so patients and
// regulators find them by search and prove them on chain; the store keeps
// them in a journal (store.Journal: a compact layout of a few keys per
// event, with several replicas appending at once) and serves them as a
// read-only type; the Trail says what an event holds and how it renders
// (docs/audit.md section 6).
package audit

import (
	"time"

	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// Outcome is the AuditEvent.outcome code.
type Outcome string

// The outcomes (http://hl7.org/fhir/audit-event-outcome).
const (
	Success        Outcome = "0"
	MinorFailure   Outcome = "4" // refused: bad request, denied, not found
	SeriousFailure Outcome = "8" // the server failed
)

// Event is one interaction to record.
type Event struct {
	Time        time.Time
	Principal   *policy.Principal
	Interaction string // read, vread, search-type, create, ... transaction
	Outcome     Outcome
	// Reason says why (the policy decision, or the error).
	Reason string
	// Entities are the resources touched, "Type/id" or "Type/id/_history/vid"
	// (the first 200 are named: bound.go).
	Entities []string
	// Patients are the patients whose records were touched ("Patient/<id>"),
	// every one of them named (in several events when there are many).
	Patients []string
	// Query is the search query string, for searches (at most MaxQuery
	// bytes are kept).
	Query string
	// BreakGlass is the practitioner's emergency reason, when the access
	// was allowed only by break-glass: the event is then a security alert.
	BreakGlass string
	// Source is the client's network address.
	Source string
	// Assigned, if set, receives the id of the event's AuditEvent when
	// it is written (the registration routes name it in a request's
	// history). Only events that fit one AuditEvent set it.
	Assigned *string
	// Checks, if any, are read atomically with the commit that writes
	// the event (store.Batch.Checks: a store.ReadSet's), and Stale is set
	// to true when one did not hold: the request read something that may
	// be older than a version already acknowledged, and must not answer
	// it (see store.ReadSet).
	Checks []store.Cond
	Stale  *bool
}

// actions maps interactions to AuditEvent.action (C R U D E).
var actions = map[string]string{
	"create": "C", "read": "R", "vread": "R", "search-type": "E", "search-system": "E",
	"history-instance": "R", "history-type": "R", "history-system": "R",
	"update": "U", "patch": "U", "delete": "D", "transaction": "E", "batch": "E", "operation": "E",
}

func subtype(in string) string {
	if in == "" {
		return "operation"
	}
	return in
}

// OutcomeOf maps an HTTP status to an audit outcome.
func OutcomeOf(status int) Outcome {
	switch {
	case status < 400:
		return Success
	case status < 500:
		return MinorFailure
	}
	return SeriousFailure
}
