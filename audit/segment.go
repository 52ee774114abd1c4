package audit

import (
	"encoding/binary"
	"errors"
	"slices"

	"github.com/fhirgate/fhirgate/policy"
)

// A segment holds the events one commit wrote, in time order, in a compact
// binary form: a version byte, the number of events, their times (µs, as
// differences from the segment key's time), their record lengths, then the
// records. A record holds exactly the fields JSON renders from, so that
// the AuditEvent served and hashed is rebuilt byte for byte; the golden
// test pins the rendering, which is part of the stored format.
const segmentV1 = 1

var errCorruptSegment = errors.New("audit: corrupt segment")

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
		return Event{}, errCorruptSegment
	}
	hasPrincipal := r.b[0]
	r.b = r.b[1:]
	if hasPrincipal == 1 {
		e.Principal = &policy.Principal{Subject: r.str(), Role: policy.Role(r.str()), Resource: r.str(), Wallet: r.str(), ClientID: r.str()}
	}
	e.Entities, e.Patients = r.list(), r.list()
	if r.err || len(r.b) != 0 || hasPrincipal > 1 {
		return Event{}, errCorruptSegment
	}
	return e, nil
}

// encodeSegment encodes events whose times are ts (increasing, ts[0] the
// segment key's time).
func encodeSegment(events []Event, ts []int64) []byte {
	// The records back to back first (their lengths precede them).
	recs := make([]byte, 0, 256*len(events))
	ends := make([]int, len(events))
	for i := range events {
		recs = appendRecord(recs, &events[i])
		ends[i] = len(recs)
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64*(1+2*len(events))+len(recs))
	b = append(b, segmentV1)
	b = binary.AppendUvarint(b, uint64(len(events)))
	prev := ts[0]
	for _, t := range ts {
		b = binary.AppendUvarint(b, uint64(t-prev))
		prev = t
	}
	prev2 := 0
	for _, end := range ends {
		b = binary.AppendUvarint(b, uint64(end-prev2))
		prev2 = end
	}
	return append(b, recs...)
}

// segment is a decoded segment header over its raw records.
type segment struct {
	start int64   // the key's time
	w     uint64  // the key's writer (0: legacy)
	times []int64 // each event's time, increasing
	recs  [][]byte
}

// first is the position of the segment's first event (its key).
func (s *segment) first() pos { return pos{s.start, s.w} }

// decodeSegment decodes the segment stored under key position start. A
// segment with a writer id spans at most maxSpan µs.
func decodeSegment(start pos, b []byte) (*segment, error) {
	if len(b) == 0 || b[0] != segmentV1 {
		return nil, errCorruptSegment
	}
	r := &reader{b: b[1:]}
	n := r.uvarint()
	if n == 0 || n > uint64(len(r.b)) {
		return nil, errCorruptSegment
	}
	s := &segment{start: start.t, w: start.w, times: make([]int64, n), recs: make([][]byte, n)}
	t := start.t
	for i := range s.times {
		d := r.uvarint()
		if i > 0 && d == 0 || d > maxSpan && start.w != 0 {
			return nil, errCorruptSegment
		}
		t += int64(d)
		s.times[i] = t
	}
	if start.w != 0 && t-start.t > maxSpan {
		return nil, errCorruptSegment
	}
	lens := make([]uint64, n)
	for i := range lens {
		lens[i] = r.uvarint()
	}
	for i, l := range lens {
		if r.err || l > uint64(len(r.b)) {
			return nil, errCorruptSegment
		}
		s.recs[i], r.b = r.b[:l], r.b[l:]
	}
	if r.err || len(r.b) != 0 || s.times[0] != start.t {
		return nil, errCorruptSegment
	}
	return s, nil
}

// find returns the position of the event at time t, or -1.
func (s *segment) find(t int64) int {
	i, ok := slices.BinarySearch(s.times, t)
	if !ok {
		return -1
	}
	return i
}

func (s *segment) event(i int) (Event, error) { return decodeRecord(s.recs[i]) }
