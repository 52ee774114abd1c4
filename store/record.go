package store

import (
	"encoding/binary"
	"errors"
	"time"
)

// Method records which interaction made a version, for history bundles.
type Method uint8

// The interactions that write versions.
const (
	MethodCreate Method = iota + 1 // POST
	MethodUpdate                   // PUT
	MethodPatch                    // PATCH
	MethodDelete                   // DELETE
)

// HTTP returns the HTTP method of the interaction.
func (m Method) HTTP() string {
	switch m {
	case MethodCreate:
		return "POST"
	case MethodUpdate:
		return "PUT"
	case MethodPatch:
		return "PATCH"
	case MethodDelete:
		return "DELETE"
	}
	return ""
}

// Version is one stored version of a resource.
type Version struct {
	Type, ID    string
	VID         uint64    // 1, 2, 3, ...
	LastUpdated time.Time // UTC, microsecond precision
	Deleted     bool      // a delete tombstone: no Body
	Method      Method
	// Author identifies the principal that wrote this version (for example
	// "client/ehr-a"); policy uses it, it is never served.
	Author string
	// Creator is the Author of the resource's first version; the store
	// carries it from version to version.
	Creator string
	// Compartments are the compartments the version belongs to, as
	// "Patient/<id>" or "Practitioner/<id>": whose records it is part of.
	Compartments []string
	// Holds says whether the version holds unique names (wallets), when
	// the write that made it said (Write.HoldsUnique): a reader may then
	// know a record links no wallet without reading its body. Versions
	// written before the store kept it are HoldsUnknown.
	Holds Holds
	// Body is the canonical JSON served for this version.
	Body []byte
}

const recordFormat = 2

const (
	flagDeleted = 1
	// flagHoldsKnown: the write said which unique names the version
	// holds; flagHoldsSome: it holds at least one. (Readers of the store
	// before these flags ignore them: only flagDeleted was ever tested.)
	flagHoldsKnown = 2
	flagHoldsSome  = 4
)

// Holds is what a version's writer said of its unique names.
type Holds uint8

// The values of Holds.
const (
	HoldsUnknown Holds = iota // written before the store kept it, or by a write that left names alone
	HoldsNone                 // holds no unique name
	HoldsSome                 // holds at least one
)

func holdsOf(f byte) Holds {
	switch {
	case f&flagHoldsKnown == 0:
		return HoldsUnknown
	case f&flagHoldsSome != 0:
		return HoldsSome
	}
	return HoldsNone
}

var errCorrupt = errors.New("store: corrupt record")

func flags(v *Version) byte {
	var f byte
	if v.Deleted {
		f |= flagDeleted
	}
	switch v.Holds {
	case HoldsNone:
		f |= flagHoldsKnown
	case HoldsSome:
		f |= flagHoldsKnown | flagHoldsSome
	}
	return f
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readString(b []byte) (string, []byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return "", nil, false
	}
	return string(b[k : k+int(n)]), b[k+int(n):], true
}

// appendMeta writes what policy needs about a version: creator and
// compartments.
func appendMeta(b []byte, v *Version) []byte {
	b = appendString(b, v.Creator)
	b = binary.AppendUvarint(b, uint64(len(v.Compartments)))
	for _, c := range v.Compartments {
		b = appendString(b, c)
	}
	return b
}

func readMeta(b []byte, v *Version) ([]byte, bool) {
	var ok bool
	if v.Creator, b, ok = readString(b); !ok {
		return nil, false
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, false
	}
	b = b[k:]
	if n > 0 {
		v.Compartments = make([]string, n)
		for i := range v.Compartments {
			if v.Compartments[i], b, ok = readString(b); !ok {
				return nil, false
			}
		}
	}
	return b, true
}

// encodeCurrent is the current-pointer record. Its bytes change with every
// version, so a condition on them is a compare-and-set on the version.
func encodeCurrent(v *Version) []byte {
	b := make([]byte, 0, 32)
	b = append(b, recordFormat)
	b = binary.AppendUvarint(b, v.VID)
	b = append(b, flags(v))
	b = binary.BigEndian.AppendUint64(b, uint64(v.LastUpdated.UnixMicro()))
	return appendMeta(b, v)
}

func decodeCurrent(typ, id string, b []byte) (Version, error) {
	if len(b) < 1 || b[0] != recordFormat {
		return Version{}, errCorrupt
	}
	vid, n := binary.Uvarint(b[1:])
	if n <= 0 || len(b) < 1+n+9 {
		return Version{}, errCorrupt
	}
	rest := b[1+n:]
	v := Version{
		Type: typ, ID: id, VID: vid,
		Deleted:     rest[0]&flagDeleted != 0,
		Holds:       holdsOf(rest[0]),
		LastUpdated: time.UnixMicro(int64(binary.BigEndian.Uint64(rest[1:9]))).UTC(),
	}
	if _, ok := readMeta(rest[9:], &v); !ok {
		return Version{}, errCorrupt
	}
	return v, nil
}

// encodeVersion is the version record: header then body.
func encodeVersion(v *Version) []byte {
	b := make([]byte, 0, 48+len(v.Author)+len(v.Body))
	b = append(b, recordFormat, flags(v), byte(v.Method))
	b = binary.BigEndian.AppendUint64(b, uint64(v.LastUpdated.UnixMicro()))
	b = appendString(b, v.Author)
	b = appendMeta(b, v)
	return append(b, v.Body...)
}

// versionMicros returns the LastUpdated of a version record, in Unix
// microseconds: the time its history keys start with.
func versionMicros(b []byte) (int64, error) {
	if len(b) < 12 || b[0] != recordFormat {
		return 0, errCorrupt
	}
	return int64(binary.BigEndian.Uint64(b[3:11])), nil
}

func decodeVersion(typ, id string, vid uint64, b []byte) (Version, error) {
	ts, err := versionMicros(b)
	if err != nil {
		return Version{}, err
	}
	v := Version{
		Type: typ, ID: id, VID: vid,
		Deleted:     b[1]&flagDeleted != 0,
		Holds:       holdsOf(b[1]),
		Method:      Method(b[2]),
		LastUpdated: time.UnixMicro(ts).UTC(),
	}
	rest, ok := b[11:], false
	if v.Author, rest, ok = readString(rest); !ok {
		return Version{}, errCorrupt
	}
	if rest, ok = readMeta(rest, &v); !ok {
		return Version{}, errCorrupt
	}
	if len(rest) > 0 {
		v.Body = rest // Engine.Get hands over ownership of b
	}
	return v, nil
}
