package store

import (
	"encoding/binary"
	"strings"
)

// Key layout. Every key starts with a one-byte table tag; string parts are
// escaped (0x00 -> 0x00 0xFF) and terminated by 0x00 0x01, so that a prefix
// of parts is a prefix of keys and order is preserved. Integers are 8 bytes
// big-endian.
//
//	'c' type id                    -> current record (version, flags, time)
//	'v' type id vid                -> version record (header + body)
//	'h' ts type id vid             -> log position of the version's leaf
//	                                  (8 bytes), or "" if it has none
//	                                  (system history, time order)
//	't' type ts id vid             -> ""  (type history, time order)
//	'x' type id                    -> index keys held by the current version
//	'i' type param value... id     -> index payload (see index.go)
//	'u' type name                  -> id owning a unique claim
//	'l' type id vid                -> log position of the version's leaf,
//	                                  in stores written before 'h' held it
//	'X' name 0x00 ...              -> a component's own keys (ExtensionPrefix)
//	'L' n                          -> log leaf n (Engine.Apply assigns n)
//	'M' name                       -> store metadata (log size, schema)
const (
	tagCurrent     = 'c'
	tagVersion     = 'v'
	tagSysHistory  = 'h'
	tagTypeHistory = 't'
	tagIndexList   = 'x'
	tagIndex       = 'i'
	tagClaim       = 'u'
	tagLeafIndex   = 'l'
	tagExtension   = 'X'
	tagLog         = 'L'
	tagMeta        = 'M'
)

// LogSizeKey holds the number of log entries, 8 bytes big-endian. Engines
// read it at open and keep it in step with the entries they append.
var LogSizeKey = []byte{tagMeta, 'l', 'o', 'g', 's', 'i', 'z', 'e'}

// LogKey is the key of log entry n.
func LogKey(n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{tagLog}, n)
}

// LogPrefix is the prefix of every log entry key.
var LogPrefix = []byte{tagLog}

type keyBuf []byte

func newKey(tag byte, n int) keyBuf {
	k := make(keyBuf, 1, n+1)
	k[0] = tag
	return k
}

// str appends an escaped, terminated string part.
func (k keyBuf) str(s string) keyBuf {
	if strings.IndexByte(s, 0) < 0 {
		k = append(k, s...)
	} else {
		for i := 0; i < len(s); i++ {
			k = append(k, s[i])
			if s[i] == 0 {
				k = append(k, 0xff)
			}
		}
	}
	return append(k, 0, 1)
}

func (k keyBuf) u64(n uint64) keyBuf { return binary.BigEndian.AppendUint64(k, n) }

// frozen caps k's capacity, so that every append to it copies: a base that
// is extended more than once must be frozen first.
func (k keyBuf) frozen() keyBuf { return k[:len(k):len(k)] }

// readStr decodes a string part from the front of b and returns the rest.
func readStr(b []byte) (string, []byte, bool) {
	var out []byte
	for i := 0; i+1 < len(b); i++ {
		if b[i] != 0 {
			continue
		}
		switch b[i+1] {
		case 1:
			if out == nil {
				return string(b[:i]), b[i+2:], true
			}
			out = append(out, b[:i]...)
			return string(out), b[i+2:], true
		case 0xff:
			out = append(out, b[:i+1]...)
			b = b[i+2:]
			i = -1
		default:
			return "", nil, false
		}
	}
	return "", nil, false
}

func readU64(b []byte) (uint64, []byte, bool) {
	if len(b) < 8 {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(b), b[8:], true
}

func currentKey(typ, id string) []byte {
	return newKey(tagCurrent, len(typ)+len(id)+4).str(typ).str(id)
}

func versionPrefix(typ, id string) keyBuf {
	return newKey(tagVersion, len(typ)+len(id)+12).str(typ).str(id)
}

func versionKey(typ, id string, vid uint64) []byte {
	return versionPrefix(typ, id).u64(vid)
}

func sysHistoryKey(ts int64, typ, id string, vid uint64) []byte {
	return newKey(tagSysHistory, len(typ)+len(id)+20).u64(uint64(ts)).str(typ).str(id).u64(vid)
}

func typeHistoryPrefix(typ string) keyBuf {
	return newKey(tagTypeHistory, len(typ)+28).str(typ).frozen()
}

func typeHistoryKey(typ string, ts int64, id string, vid uint64) []byte {
	return typeHistoryPrefix(typ).u64(uint64(ts)).str(id).u64(vid)
}

func indexListKey(typ, id string) []byte {
	return newKey(tagIndexList, len(typ)+len(id)+4).str(typ).str(id)
}

func claimKey(typ, name string) []byte {
	return newKey(tagClaim, len(typ)+len(name)+4).str(typ).str(name)
}

// Unique names live in the claim table under a pseudo-type no resource
// type can have: '#unique' name -> holder "Type/id", and '#held' "Type/id"
// -> the names it holds, one per line.
func uniqueKey(name string) []byte { return claimKey("#unique", name) }

func heldKey(ref string) []byte { return claimKey("#held", ref) }

func leafIndexKey(typ, id string, vid uint64) []byte {
	return newKey(tagLeafIndex, len(typ)+len(id)+12).str(typ).str(id).u64(vid)
}

// ExtensionPrefix is the start of the keys a component built on the store
// keeps in the same engine (the anchor's tree nodes and checkpoints), so
// that they commit with the same guarantees and never collide with the
// store's own keys.
func ExtensionPrefix(name string) []byte {
	return append(append([]byte{tagExtension}, name...), 0)
}

// VersionKey is the engine key of one version's record, for tools that
// look at the raw store (and tests that alter it behind the store's back).
func VersionKey(typ, id string, vid uint64) []byte { return versionKey(typ, id, vid) }
