package store

import (
	"encoding/binary"
	"errors"
	"slices"
)

// A journal segment holds the entries one commit wrote, in time order: a
// version byte, the number of entries, their times (µs, as differences
// from the segment key's time), their record lengths, then the records
// (the journal's owner encodes them).
const segmentV1 = 1

var errCorruptJournal = errors.New("store: corrupt journal segment")

// encodeSegment encodes records recs (back to back, record i ending at
// ends[i]) written at times tt.at(from), tt.at(from+1), ... (increasing,
// the first one the key's time).
func encodeSegment(recs []byte, ends []int, tt entryTimes, from int) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64*(1+2*len(ends))+len(recs))
	b = append(b, segmentV1)
	b = binary.AppendUvarint(b, uint64(len(ends)))
	prev := tt.at(from)
	for i := range ends {
		t := tt.at(from + i)
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
	times []int64 // each entry's time, increasing
	recs  [][]byte
}

// first is the position of the segment's first entry (its key).
func (s *segment) first() jpos { return jpos{s.start, s.w} }

// decodeSegment decodes the segment stored under key position start. A
// segment with a writer id spans at most journalSpan µs.
func decodeSegment(start jpos, b []byte) (*segment, error) {
	if len(b) == 0 || b[0] != segmentV1 {
		return nil, errCorruptJournal
	}
	b = b[1:]
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	n, ok := uvarint()
	if !ok || n == 0 || n > uint64(len(b)) {
		return nil, errCorruptJournal
	}
	s := &segment{start: start.t, w: start.w, times: make([]int64, n), recs: make([][]byte, n)}
	t := start.t
	for i := range s.times {
		d, ok := uvarint()
		if !ok || i > 0 && d == 0 || d > journalSpan && start.w != 0 {
			return nil, errCorruptJournal
		}
		t += int64(d)
		s.times[i] = t
	}
	if s.times[0] != start.t || start.w != 0 && t-start.t > journalSpan {
		return nil, errCorruptJournal
	}
	lens := make([]uint64, n)
	for i := range lens {
		if lens[i], ok = uvarint(); !ok {
			return nil, errCorruptJournal
		}
	}
	for i, l := range lens {
		if l > uint64(len(b)) {
			return nil, errCorruptJournal
		}
		s.recs[i], b = b[:l], b[l:]
	}
	if len(b) != 0 {
		return nil, errCorruptJournal
	}
	return s, nil
}

// find returns the position of the entry at time t, or -1.
func (s *segment) find(t int64) int {
	i, ok := slices.BinarySearch(s.times, t)
	if !ok {
		return -1
	}
	return i
}
