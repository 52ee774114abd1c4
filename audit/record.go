package audit

import (
	"encoding/binary"
	"errors"

	"github.com/fhirgate/fhirgate/policy"
)

// An event's record (the trail's journal keeps it in a segment with the
// other events of its commit) holds exactly the fields JSON renders from,
// so that the AuditEvent served and hashed is rebuilt byte for byte; the
// golden test pins the rendering, which is part of the stored format.

var errCorruptRecord = errors.New("audit: corrupt event record")

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendRecord encodes e (without its time, which the segment holds).
func appendRecord(b []byte, e *Event) []byte {
	for _, s := range []string{e.Interaction, string(e.Outcome), e.Reason, e.Query, e.BreakGlass, e.Source} {
		b = appendStr(b, s)
	}
	if p := e.Principal; p != nil {
		b = append(b, 1)
		for _, s := range []string{p.Subject, string(p.Role), p.Resource, p.Wallet, p.ClientID} {
			b = appendStr(b, s)
		}
	} else {
		b = append(b, 0)
	}
	for _, list := range [][]string{e.Entities, e.Patients} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, s := range list {
			b = appendStr(b, s)
		}
	}
	return b
}

type reader struct {
	b   []byte
	err bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err, r.b = true, nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) list() []string {
	n := r.uvarint()
	if n > uint64(len(r.b)) { // each entry takes at least a byte
		r.err, r.b = true, nil
		return nil
	}
	var out []string
	for range n {
		out = append(out, r.str())
	}
	return out
}

// decodeRecord is the inverse of appendRecord.
func decodeRecord(b []byte) (Event, error) {
	r := &reader{b: b}
	var e Event
	e.Interaction, e.Outcome, e.Reason = r.str(), Outcome(r.str()), r.str()
	e.Query, e.BreakGlass, e.Source = r.str(), r.str(), r.str()
	if len(r.b) == 0 {
		return Event{}, errCorruptRecord
	}
	hasPrincipal := r.b[0]
	r.b = r.b[1:]
	if hasPrincipal == 1 {
		e.Principal = &policy.Principal{Subject: r.str(), Role: policy.Role(r.str()), Resource: r.str(), Wallet: r.str(), ClientID: r.str()}
	}
	e.Entities, e.Patients = r.list(), r.list()
	if r.err || len(r.b) != 0 || hasPrincipal > 1 {
		return Event{}, errCorruptRecord
	}
	return e, nil
}
