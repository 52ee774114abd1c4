package audit

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// Events are written straight to canonical JSON (keys in sorted order at
// every level) and their index values built from the event itself: an
// audited read pays for its event, so the event must be cheap. The tests
// check both against the general path (parse, canonical encoding,
// search.Extract) on a range of events.

// Code systems of the event's codings.
const (
	sysEventType   = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	sysDCM         = "http://dicom.nema.org/resources/ontology/DCM"
	sysInteraction = "http://hl7.org/fhir/restful-interaction"
	sysSourceType  = "http://terminology.hl7.org/CodeSystem/security-source-type"
	sysActReason   = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	sysPartType    = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	sysProvenance  = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
	sysEntityType  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	sysObjectRole  = "http://terminology.hl7.org/CodeSystem/object-role"

	principalSystem = "urn:fhirgate:principal"
	clientSystem    = "urn:fhirgate:client"
)

// entity is one resource the event names, with its object role (1
// patient, 4 domain resource).
type entity struct{ ref, role string }

// entityList is the named resources: patients first, no repeats. Events
// the recorder writes hold at most maxEntities of them (Parts splits the
// rest into further events); the cap here only shapes events written
// before parts existed, whose rendering must stay the bytes their leaves
// hashed.
func (e *Event) entityList() []entity {
	out := make([]entity, 0, len(e.Patients)+len(e.Entities))
	var seen map[string]bool // a few entities (a read's two) are compared in place
	if cap(out) > 16 {
		seen = make(map[string]bool, cap(out))
	}
	add := func(ref, role string) {
		if ref == "" || len(out) >= maxEntities {
			return
		}
		if seen != nil {
			if seen[ref] {
				return
			}
			seen[ref] = true
		} else {
			for _, en := range out {
				if en.ref == ref {
					return
				}
			}
		}
		out = append(out, entity{ref, role})
	}
	for _, p := range e.Patients {
		add(p, "1")
	}
	for _, r := range e.Entities {
		add(r, "4")
	}
	return out
}

func (e *Event) eventType() (system, code string) {
	if e.BreakGlass != "" {
		return sysDCM, "110113" // Security Alert
	}
	return sysEventType, "rest"
}

// byReference reports whether the requester is named by reference. A
// patient requester is named by identifier: a reference would put the
// event in the requester's own compartment, showing them whose record they
// tried to reach. The event belongs to the compartments of the patients
// whose records it concerns (its entities).
func byReference(p *policy.Principal) bool { return strings.HasPrefix(p.Resource, "Practitioner/") }

// JSON returns the event as the canonical JSON of an R4 AuditEvent with
// id, meta.versionId 1 and meta.lastUpdated at: the bytes the store keeps
// and the log hashes.
func (e *Event) JSON(id string, at time.Time) []byte {
	return e.AppendJSON(make([]byte, 0, 2048), id, at)
}

// AppendJSON appends JSON(id, at) to b (the trail hashes events into
// log leaves through one reused buffer per batch).
func (e *Event) AppendJSON(b []byte, id string, at time.Time) []byte {
	return e.appendJSON(b, id, at, e.entityList())
}

// appendJSON is AppendJSON with the event's entityList.
func (e *Event) appendJSON(b []byte, id string, at time.Time, ents []entity) []byte {
	str := fhirjson.AppendString
	coding := func(b []byte, system, code string) []byte {
		b = append(b, `{"code":`...)
		b = str(b, code)
		b = append(b, `,"system":`...)
		b = str(b, system)
		return append(b, '}')
	}
	concept := func(b []byte, system, code string) []byte {
		b = append(b, `{"coding":[`...)
		return append(coding(b, system, code), "]}"...)
	}
	b = append(b, '{')
	if a := actions[e.Interaction]; a != "" {
		b = append(b, `"action":`...)
		b = str(b, a)
		b = append(b, ',')
	}

	// agent: the user, the client app (for people), the gateway.
	b = append(b, `"agent":[`...)
	if p := e.Principal; p != nil {
		b = append(b, '{')
		if p.Wallet != "" {
			b = append(b, `"altId":`...)
			b = str(b, p.Wallet)
			b = append(b, ',')
		}
		if e.Source != "" {
			b = append(b, `"network":{"address":`...)
			b = str(b, e.Source)
			b = append(b, `,"type":"2"},`...)
		}
		b = append(b, `"requestor":true,"role":[{"text":`...)
		b = str(b, string(p.Role))
		b = append(b, `}],"type":`...)
		b = concept(b, sysPartType, "IRCP")
		b = append(b, `,"who":`...)
		if byReference(p) {
			b = append(b, `{"reference":`...)
			b = str(b, p.Resource)
		} else {
			b = append(b, `{"identifier":{"system":`...)
			b = str(b, principalSystem)
			b = append(b, `,"value":`...)
			b = str(b, p.Subject)
			b = append(b, '}')
		}
		b = append(b, "}},"...)
		if p.ClientID != "" && p.Role != policy.RoleSystem {
			b = append(b, `{"requestor":false,"type":`...)
			b = concept(b, sysDCM, "110150") // Application
			b = append(b, `,"who":{"identifier":{"system":`...)
			b = str(b, clientSystem)
			b = append(b, `,"value":`...)
			b = str(b, p.ClientID)
			b = append(b, "}}},"...)
		}
	}
	b = append(b, `{"requestor":false,"type":`...)
	b = concept(b, sysProvenance, "custodian")
	b = append(b, `,"who":{"display":"fhirgate"}}]`...)

	// entity: the patients, the resources, the query.
	if len(ents) > 0 || e.Query != "" {
		b = append(b, `,"entity":[`...)
		for i, en := range ents {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"role":`...)
			b = coding(b, sysObjectRole, en.role)
			b = append(b, `,"type":`...)
			b = coding(b, sysEntityType, "2") // System Object
			b = append(b, `,"what":{"reference":`...)
			b = str(b, en.ref)
			b = append(b, "}}"...)
		}
		if e.Query != "" {
			if len(ents) > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"query":`...)
			b = str(b, base64.StdEncoding.EncodeToString([]byte(e.Query)))
			b = append(b, `,"role":`...)
			b = coding(b, sysObjectRole, "24") // Query
			b = append(b, `,"type":`...)
			b = coding(b, sysEntityType, "2")
			b = append(b, '}')
		}
		b = append(b, ']')
	}

	instant := fhir.FormatInstant(at)
	b = append(b, `,"id":`...)
	b = str(b, id)
	b = append(b, `,"meta":{"lastUpdated":`...)
	b = str(b, instant)
	b = append(b, `,"versionId":"1"},"outcome":`...)
	b = str(b, string(e.Outcome))
	if e.Reason != "" {
		b = append(b, `,"outcomeDesc":`...)
		b = str(b, e.Reason)
	}
	if e.BreakGlass != "" {
		b = append(b, `,"purposeOfEvent":[{"coding":[`...)
		b = coding(b, sysActReason, "BTG")
		b = append(b, `],"text":`...)
		b = str(b, e.BreakGlass)
		b = append(b, "}]"...)
	}
	b = append(b, `,"recorded":`...)
	b = str(b, instant)
	b = append(b, `,"resourceType":"AuditEvent","source":{"observer":{"display":"fhirgate"},"type":[`...)
	b = coding(b, sysSourceType, "4") // Application Server
	b = append(b, `]},"subtype":[`...)
	b = coding(b, sysInteraction, subtype(e.Interaction))
	b = append(b, `],"type":`...)
	typeSystem, typeCode := e.eventType()
	b = coding(b, typeSystem, typeCode)
	return append(b, '}')
}

// Index returns the search index values of the event's AuditEvent, as
// search.Extract would find them in JSON(id, at).
func (e *Event) Index(at time.Time) []store.IndexValue {
	us := at.UTC().Truncate(time.Microsecond).UnixMicro()
	tok := func(param, system, code string) store.IndexValue {
		return store.IndexValue{Param: param, Kind: store.IndexToken, System: system, Code: code}
	}
	ref := func(param, r string) store.IndexValue {
		return store.IndexValue{Param: param, Kind: store.IndexReference, Ref: r}
	}
	typeSystem, typeCode := e.eventType()
	out := make([]store.IndexValue, 0, 24)
	out = append(out,
		store.IndexValue{Param: "_lastUpdated", Kind: store.IndexDate, Lo: us, Hi: us},
		store.IndexValue{Param: "date", Kind: store.IndexDate, Lo: us, Hi: us},
		tok("outcome", "", string(e.Outcome)),
		tok("subtype", sysInteraction, subtype(e.Interaction)),
		tok("type", typeSystem, typeCode),
	)
	if a := actions[e.Interaction]; a != "" {
		out = append(out, tok("action", "", a))
	}
	if p := e.Principal; p != nil {
		out = append(out, store.IndexValue{Param: "agent-role", Kind: store.IndexToken, Text: string(p.Role)})
		if p.Wallet != "" {
			out = append(out, tok("altid", "", p.Wallet))
		}
		if e.Source != "" {
			out = append(out, store.IndexValue{Param: "address", Kind: store.IndexString, Text: e.Source})
		}
		if byReference(p) {
			out = append(out, ref("agent", p.Resource))
		}
	}
	ents := e.entityList()
	roles := map[string]bool{}
	for _, en := range ents {
		r, _, _ := strings.Cut(en.ref, "/_history/") // references index without their version
		out = append(out, ref("entity", r))
		if strings.HasPrefix(r, "Patient/") {
			out = append(out, ref("patient", r))
		}
		roles[en.role] = true
	}
	if e.Query != "" {
		roles["24"] = true
	}
	for _, r := range []string{"1", "24", "4"} {
		if roles[r] {
			out = append(out, tok("entity-role", sysObjectRole, r))
		}
	}
	if len(ents) > 0 || e.Query != "" {
		out = append(out, tok("entity-type", sysEntityType, "2"))
	}
	return out
}
