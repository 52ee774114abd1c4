package audit

import (
	"strconv"
	"unicode/utf8"

	"github.com/fhirgate/fhirgate/policy"
)

// The bounds of what one request's events hold (docs/audit.md, section 6).
// Without them one request could write an event of any size: a 5 MB
// _search made a 6.6 MB event.
const (
	// maxEntities bounds the entities (patients and resources) one
	// AuditEvent names. A request that touched more is recorded as
	// several events (parts).
	maxEntities = 200
	// maxResources bounds the resources other than Patients that one
	// request's events name: a large search page names its first 200.
	// Patients are never capped: every patient whose record a request
	// touched is named, in as many parts as it takes.
	maxResources = 200
	// MaxQuery is the most bytes of a search query an event keeps.
	MaxQuery = 4096
	// MaxText is the most bytes of a reason or a break-glass reason.
	MaxText = 1024
	// maxField bounds the other strings (the source address, the
	// principal's subject, wallet, client, record). They come from the
	// network layer and from tokens the gateway signed, so they are short;
	// the bound only makes it certain.
	maxField = 256
	// maxRef is the longest reference an event names: a FHIR type and id
	// (64 characters each) and a version fit; anything longer cannot name
	// a record, and is left out.
	maxRef = 256
)

// Truncated text ends with this marker and the length of the whole text:
// "…[truncated: 5242880 bytes]".
const (
	truncatedPrefix = "…[truncated: "
	truncatedSuffix = " bytes]"
)

// Truncate returns s if it has at most limit bytes; otherwise its longest
// prefix (cut between UTF-8 characters) that, followed by the marker
// "…[truncated: N bytes]" (N: the length of s), makes at most limit bytes.
func Truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	marker := truncatedPrefix + strconv.Itoa(len(s)) + truncatedSuffix
	cut := max(limit-len(marker), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + marker
}

// fits reports whether e is within every bound as it is (the common case:
// nothing to copy).
func (e *Event) fits() bool {
	if len(e.Patients)+len(e.Entities) > maxEntities || len(e.Query) > MaxQuery ||
		len(e.Reason) > MaxText || len(e.BreakGlass) > MaxText || len(e.Source) > maxField {
		return false
	}
	for _, r := range e.Patients {
		if len(r) > maxRef {
			return false
		}
	}
	for _, r := range e.Entities {
		if len(r) > maxRef {
			return false
		}
	}
	if p := e.Principal; p != nil && (len(p.Subject) > maxField || len(p.Role) > maxField ||
		len(p.Resource) > maxField || len(p.Wallet) > maxField || len(p.ClientID) > maxField) {
		return false
	}
	return true
}

// Parts returns the events that record e: e itself when it is within the
// bounds; otherwise its text fields truncated (Truncate) and its entities
// (every patient, then at most 200 other resources; references longer
// than a FHIR reference can be left out) spread over as many events as it
// takes, at most 200 entities each, identical but for their entities and
// a "[part i of n]" at the end of their reason. The recorder writes the
// parts of one event in one commit, at consecutive times.
func (e *Event) Parts() []Event { return e.appendParts(nil) }

func (e *Event) appendParts(dst []Event) []Event {
	if e.fits() {
		return append(dst, *e)
	}
	b := *e
	b.Query = Truncate(b.Query, MaxQuery)
	b.Reason = Truncate(b.Reason, MaxText)
	b.BreakGlass = Truncate(b.BreakGlass, MaxText)
	b.Source = Truncate(b.Source, maxField)
	if p := b.Principal; p != nil {
		q := *p
		q.Subject, q.Resource = Truncate(q.Subject, maxField), Truncate(q.Resource, maxField)
		q.Wallet, q.ClientID = Truncate(q.Wallet, maxField), Truncate(q.ClientID, maxField)
		q.Role = policy.Role(Truncate(string(q.Role), maxField))
		b.Principal = &q
	}
	// The entities as rendering names them (entityList): patients first,
	// no repeats; then cut into parts.
	seen := make(map[string]bool, len(e.Patients)+min(len(e.Entities), maxResources))
	var patients, resources []string
	for _, r := range e.Patients {
		if r != "" && len(r) <= maxRef && !seen[r] {
			seen[r] = true
			patients = append(patients, r)
		}
	}
	for _, r := range e.Entities {
		if len(resources) == maxResources {
			break
		}
		if r != "" && len(r) <= maxRef && !seen[r] {
			seen[r] = true
			resources = append(resources, r)
		}
	}
	total := len(patients) + len(resources)
	if total <= maxEntities {
		b.Patients, b.Entities = patients, resources
		return append(dst, b)
	}
	n := (total + maxEntities - 1) / maxEntities
	reason := b.Reason
	if reason != "" {
		reason += " "
	}
	for i := range n {
		lo, hi := i*maxEntities, min((i+1)*maxEntities, total)
		part := b
		part.Reason = reason + "[part " + strconv.Itoa(i+1) + " of " + strconv.Itoa(n) + "]"
		part.Patients = patients[min(lo, len(patients)):min(hi, len(patients))]
		part.Entities = resources[max(lo, len(patients))-len(patients) : max(hi, len(patients))-len(patients)]
		dst = append(dst, part)
	}
	return dst
}
