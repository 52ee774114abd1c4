package store

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// IndexKind is the FHIR search parameter type an index value serves.
type IndexKind uint8

// The kinds of index values.
const (
	IndexString    IndexKind = iota + 1 // Text
	IndexToken                          // System, Code; Text: display text for :text
	IndexReference                      // Ref
	IndexDate                           // Lo, Hi
	IndexNumber                         // Num
	IndexQuantity                       // Num, System, Code
	IndexURI                            // Text
)

// IndexValue is one value a resource version holds for a search parameter.
// fhir/search extracts them; the store turns them into index keys.
type IndexValue struct {
	Param string
	Kind  IndexKind
	// Text: string value as written (string), URI (uri), or display text
	// (token, for :text).
	Text string
	// System and Code: token system and code; quantity system and unit code.
	System, Code string
	// Ref: a reference target, "Type/id" for a resource on this server or
	// the absolute URL otherwise.
	Ref string
	// Lo and Hi: the instant range a date covers, in Unix microseconds,
	// both inclusive (a day is [00:00:00, 23:59:59.999999]).
	Lo, Hi int64
	// Num: number or quantity value.
	Num float64
}

// Index keys carry everything a search predicate tests, so a predicate
// can run either as a range scan over the keys of a parameter or as a
// check against one resource's own key list (the 'x' record):
//
//	'i' type param sub <parts> id 0x00 0x01 len(id)
//
// The trailing length byte finds the id from the end of the key.
const (
	subString   = 's' // norm(text) text
	subToken    = 'c' // code system norm(display text)
	subTokenTxt = 'x' // norm(text), for a text without a code
	subRef      = 'r' // ref, for references that are not Type/id
	subRefID    = 'j' // id of the target (any type), target type
	subDateLo   = 'd' // lo hi
	subDateHi   = 'e' // hi lo, only for values wider than narrowDate
	subDateWide = 'w' // lo hi, only for values wider than narrowDate
	subDateMany = 'm' // (nothing): the resource has several values
	subNumber   = 'n' // num
	subQuantity = 'q' // system code num
	subURI      = 'u' // uri
)

// paramPrefix is the start of every key of one parameter, whatever its
// kind: a resource has a value for the parameter (:missing=false) exactly
// when one of its keys starts with it.
func paramPrefix(typ, param string) keyBuf {
	return newKey(tagIndex, len(typ)+len(param)+8).str(typ).str(param).frozen()
}

// indexPrefix is a base that callers extend more than once: its capacity is
// capped so that every extension gets its own array.
func indexPrefix(typ, param string, sub byte) keyBuf {
	return append(newKey(tagIndex, len(typ)+len(param)+8).str(typ).str(param), sub).frozen()
}

func (k keyBuf) id(id string) keyBuf { return append(k.str(id), byte(len(id))) }

// keyID returns the resource id at the end of an index key.
func keyID(k []byte) (string, bool) {
	if len(k) < 4 {
		return "", false
	}
	n := int(k[len(k)-1])
	end := len(k) - 3
	if n > end || k[end] != 0 || k[end+1] != 1 {
		return "", false
	}
	return string(k[end-n : end]), true
}

// keyBody returns an index key without its id suffix (nil for a key too
// short to have one: a corrupt key must not panic a reader).
func keyBody(k []byte) []byte {
	if len(k) < 4 || int(k[len(k)-1])+3 > len(k) {
		return nil
	}
	n := int(k[len(k)-1])
	return k[:len(k)-3-n]
}

// narrowDate is the widest date value (µs) kept out of the wide-value
// keys: a day, so that instants and dates are narrow, and months, years
// and long periods wide. A bounded date window (see dateWindow) finds the
// narrow values that span it by a bounded scan, the wide ones in their
// own, usually small, family.
const narrowDate = uint64(24 * 3600 * 1_000_000)

// resourceKeys returns the index keys of resource typ/id with index
// values idx, each once and in key order: every value's entries, plus a
// marker per date parameter with several distinct values (a bounded date
// window must consider those resources whole: each bound may hold through
// a different value). The keys share one array, sized up front: a
// resource has tens of keys and they are written on every version.
func resourceKeys(typ, id string, idx []IndexValue, shared func(param string) (string, string, bool)) [][]byte {
	n := 0
	for i := range idx {
		iv := &idx[i]
		n += 3 * (len(typ) + len(iv.Param) + len(id) + 32 + 2*len(iv.Text) + len(iv.System) + len(iv.Code) + 2*len(iv.Ref))
	}
	kb := keyBuilder{arena: make([]byte, 0, n), keys: make([][]byte, 0, 2*len(idx)), idx: idx}
	for i := range idx {
		iv := &idx[i]
		if skipShared(shared, iv) {
			continue
		}
		iv.entries(&kb, typ, id)
		if iv.Kind != IndexDate {
			continue
		}
		// Another value of the same parameter before this one?
		for j := range i {
			if p := &idx[j]; p.Kind == IndexDate && p.Param == iv.Param && (p.Lo != iv.Lo || p.Hi != iv.Hi) {
				kb.add(kb.prefix(typ, iv.Param, subDateMany).id(id))
				break
			}
		}
	}
	slices.SortFunc(kb.keys, bytes.Compare)
	return slices.CompactFunc(kb.keys, bytes.Equal)
}

// keyBuilder builds keys in one shared array: prefix starts a key at the
// end of the arena, add ends it there.
type keyBuilder struct {
	arena []byte
	keys  [][]byte
	idx   []IndexValue // the values the keys are built from
}

// codedText reports whether a coded token value of param carries text as
// its display (a CodeableConcept's text is often its coding's display):
// that key already answers :text for it.
func (kb *keyBuilder) codedText(param, text string) bool {
	var norm string
	for i := range kb.idx {
		iv := &kb.idx[i]
		if iv.Kind != IndexToken || iv.Param != param || iv.Code == "" || iv.Text == "" {
			continue
		}
		if iv.Text == text {
			return true
		}
		if norm == "" {
			norm = Normalize(text)
		}
		if Normalize(iv.Text) == norm {
			return true
		}
	}
	return false
}

func (kb *keyBuilder) prefix(typ, param string, sub byte) keyBuf {
	k := append(keyBuf(kb.arena[len(kb.arena):]), tagIndex)
	return append(k.str(typ).str(param), sub)
}

// add records k, built from prefix. If k outgrew the arena it has an
// array of its own and the arena is left as it was.
func (kb *keyBuilder) add(k keyBuf) {
	if free := kb.arena[len(kb.arena):cap(kb.arena)]; len(k) <= len(free) && &free[0] == &k[0] {
		kb.arena = kb.arena[:len(kb.arena)+len(k)]
	}
	kb.keys = append(kb.keys, k[:len(k):len(k)])
}

// entries adds the index keys of one value of resource typ/id. Each
// value costs one or two keys: writes are the price of every index entry.
func (iv *IndexValue) entries(kb *keyBuilder, typ, id string) {
	p := func(sub byte) keyBuf { return kb.prefix(typ, iv.Param, sub) }
	switch iv.Kind {
	case IndexString:
		kb.add(p(subString).str(Normalize(iv.Text)).str(iv.Text).id(id))
	case IndexURI:
		kb.add(p(subURI).str(iv.Text).id(id))
	case IndexToken:
		if iv.Code != "" {
			// Code first: "code", "system|code" and "|code" are all
			// prefixes of one key. The display text rides in the same key
			// (:text scans the parameter's keys, as :contains does): a
			// key of its own for it cost a random index key per coded
			// value on every write. (Stores written before this hold
			// 'c' code system keys and 'x' text keys; searches read both.)
			kb.add(p(subToken).str(iv.Code).str(iv.System).str(Normalize(iv.Text)).id(id))
		} else if iv.Text != "" && !kb.codedText(iv.Param, iv.Text) {
			kb.add(p(subTokenTxt).str(Normalize(iv.Text)).id(id))
		}
	case IndexReference:
		// Type/id once, id first: it serves Type/id, id and :Type
		// searches. (Stores written before this also hold an 'r' key for
		// it; searches read the 'j' key, so both forms answer alike.)
		if t, rid, ok := localRef(iv.Ref); ok {
			kb.add(p(subRefID).str(rid).str(t).id(id))
		} else {
			kb.add(p(subRef).str(iv.Ref).id(id))
		}
	case IndexDate:
		lo, hi := orderedInt(iv.Lo), orderedInt(iv.Hi)
		// A narrow value's end is within narrowDate of its start, so
		// searches on ends find narrow values among the starts: only
		// wide ones need keys ordered by their ends. (Stores written
		// before this hold end keys for narrow values too; searches take
		// both.)
		kb.add(p(subDateLo).u64(lo).u64(hi).id(id))
		if hi-lo > narrowDate {
			kb.add(p(subDateHi).u64(hi).u64(lo).id(id))
			kb.add(p(subDateWide).u64(lo).u64(hi).id(id))
		}
	case IndexNumber:
		kb.add(p(subNumber).u64(orderedFloat(iv.Num)).id(id))
	case IndexQuantity:
		n := orderedFloat(iv.Num)
		kb.add(p(subQuantity).str(iv.System).str(iv.Code).u64(n).id(id))
		kb.add(p(subQuantity).str("").str("").u64(n).id(id))
		if iv.System != "" && iv.Code != "" {
			kb.add(p(subQuantity).str("").str(iv.Code).u64(n).id(id))
		}
	}
}

// tokenText returns the normalized display text a code key holds ('c'
// code system text id), given the length of its prefix up to the sub
// tag; ok is false for keys without one (written before it rode there).
func tokenText(k []byte, base int) (string, bool) {
	body := keyBody(k)
	if base > len(body) {
		return "", false // the id suffix overlaps the prefix: corrupt
	}
	_, rest, ok := readStr(body[base:])
	if !ok {
		return "", false
	}
	if _, rest, ok = readStr(rest); !ok {
		return "", false
	}
	text, _, ok := readStr(rest)
	return text, ok
}

// localRef splits a reference of the form Type/id (no URL, no version).
func localRef(ref string) (typ, id string, ok bool) {
	typ, id, ok = strings.Cut(ref, "/")
	return typ, id, ok && !strings.Contains(id, "/") && !strings.Contains(typ, ":")
}

// refPrefix is the start of the index keys that hold reference ref for
// a parameter whose keys start with base ('i' type param).
func refPrefix(base keyBuf, ref string) keyBuf {
	if t, rid, ok := localRef(ref); ok {
		return append(base, subRefID).str(rid).str(t)
	}
	return append(base, subRef).str(ref)
}

// keyRef decodes the reference an index key holds, given the length of
// its parameter's prefix ('i' type param): ok is false for keys of other
// kinds.
func keyRef(k []byte, base int) (string, bool) {
	if len(k) <= base {
		return "", false
	}
	switch k[base] {
	case subRef:
		ref, _, ok := readStr(k[base+1:])
		return ref, ok
	case subRefID:
		rid, rest, ok := readStr(k[base+1:])
		if !ok {
			return "", false
		}
		t, _, ok := readStr(rest)
		return t + "/" + rid, ok
	}
	return "", false
}

// orderedInt maps int64 to uint64 preserving order.
func orderedInt(n int64) uint64 { return uint64(n) ^ (1 << 63) }

func unorderedInt(u uint64) int64 { return int64(u ^ (1 << 63)) }

// orderedFloat maps float64 to uint64 preserving order.
func orderedFloat(f float64) uint64 {
	b := math.Float64bits(f)
	if b&(1<<63) != 0 {
		return ^b
	}
	return b | (1 << 63)
}

func unorderedFloat(u uint64) float64 {
	if u&(1<<63) != 0 {
		return math.Float64frombits(u &^ (1 << 63))
	}
	return math.Float64frombits(^u)
}

// Normalize is the form string search compares: accents removed, case
// folded, runs of white space collapsed to one space, none at the ends.
// "  Évelyne  O'Brien" -> "evelyne o'brien".
func Normalize(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			s = norm.NFD.String(s) // ASCII is its own decomposition
			plain = false
			break
		}
		if c >= 'A' && c <= 'Z' || c >= '\t' && c <= '\r' || // \t \n \v \f \r
			c == ' ' && (i == 0 || i == len(s)-1 || s[i+1] == ' ') {
			plain = false
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case r >= 0x80 && unicode.Is(unicode.Mn, r):
			continue
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if r < 0x80 {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			b.WriteByte(byte(r))
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// An index list record ('x' type id) holds the index keys of a current
// version. Every one of them starts with 'i' type and ends with the id, which
// the record's own key already names, so only the middle of each key is
// kept: the marker listCompact, then length-prefixed middles. (Records
// written before the marker existed hold whole keys, length-prefixed; their
// first byte is never 0 since no key is empty.)
const listCompact = 0

// indexKeyEnds returns the shared start and end of typ/id's index keys.
func indexKeyEnds(typ, id string) (prefix, suffix []byte) {
	return newKey(tagIndex, len(typ)+2).str(typ), keyBuf(nil).id(id)
}

// appendIndexKey adds key, one of typ/id's index keys, to a list record.
func appendIndexKey(list, key []byte, prefixLen, suffixLen int) []byte {
	if len(list) == 0 {
		list = append(list, listCompact)
	}
	mid := key[prefixLen : len(key)-suffixLen]
	list = binary.AppendUvarint(list, uint64(len(mid)))
	return append(list, mid...)
}

// eachIndexKey calls fn with each key of typ/id's index list record. The
// key passed to fn is fn's to keep.
func eachIndexKey(list []byte, typ, id string, fn func([]byte)) error {
	var prefix, suffix []byte
	compact := len(list) > 0 && list[0] == listCompact
	if compact {
		prefix, suffix = indexKeyEnds(typ, id)
		list = list[1:]
	}
	for len(list) > 0 {
		n, k := binary.Uvarint(list)
		if k <= 0 || uint64(len(list)-k) < n {
			return errCorrupt
		}
		part := list[k : k+int(n)]
		list = list[k+int(n):]
		if !compact {
			fn(part)
			continue
		}
		key := make([]byte, 0, len(prefix)+len(part)+len(suffix))
		fn(append(append(append(key, prefix...), part...), suffix...))
	}
	return nil
}
