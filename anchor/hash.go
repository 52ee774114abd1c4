package anchor

import (
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Hash is a 32-byte hash written as 0x-prefixed lowercase hex in JSON, the
// way Ethereum tools show roots and transaction hashes. Parsing accepts
// the 0x prefix or not, in either case.
type Hash [32]byte

// String returns the 0x-prefixed hex form.
func (h Hash) String() string { return "0x" + hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zeros.
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText implements encoding.TextMarshaler.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := parse32(string(b), true)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHash parses 64 hex digits, with or without a 0x prefix.
func ParseHash(s string) (Hash, error) { return parse32(s, true) }

// Hex32 is 32 bytes written as 64 lowercase hex digits without prefix: the
// form the salt and the content hash take inside the leaf data, so that a
// proof's leaf fields can be pasted into the leaf text as they are.
type Hex32 [32]byte

// String returns the 64 hex digits.
func (h Hex32) String() string { return hex.EncodeToString(h[:]) }

// MarshalText implements encoding.TextMarshaler.
func (h Hex32) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (64 hex digits, no
// prefix).
func (h *Hex32) UnmarshalText(b []byte) error {
	v, err := parse32(string(b), false)
	if err != nil {
		return err
	}
	*h = Hex32(v)
	return nil
}

func parse32(s string, allow0x bool) ([32]byte, error) {
	var out [32]byte
	if allow0x && (strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X")) {
		s = s[2:]
	}
	if len(s) != 64 {
		return out, fmt.Errorf("want 64 hex digits, got %d characters", len(s))
	}
	if _, err := hex.Decode(out[:], []byte(s)); err != nil {
		return out, errors.New("not hexadecimal")
	}
	return out, nil
}

// FHIR R4 syntax of resource types, ids and version ids. The leaf text is
// unambiguous only for names of this shape (no '/', no newline), so both
// the gateway and verifiers insist on it.
var (
	typeRE = regexp.MustCompile(`^[A-Z][A-Za-z]{0,63}$`)
	idRE   = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
)

// ValidLeafName reports whether typ and id may appear in a leaf.
func ValidLeafName(typ, id string) error {
	if !typeRE.MatchString(typ) {
		return fmt.Errorf("resource type %q is not a FHIR type name", typ)
	}
	if !idRE.MatchString(id) {
		return fmt.Errorf("id %q is not a FHIR id", id)
	}
	return nil
}

// parseVID parses a version id: a decimal number >= 1 without leading zeros.
func parseVID(s string) (uint64, error) {
	if s == "" || s[0] == '0' || len(s) > 20 {
		return 0, fmt.Errorf("version id %q is not a positive decimal number", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("version id %q is not a positive decimal number", s)
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("version id %q is out of range", s)
	}
	return v, nil
}

// ParseLeaf parses leaf data (the inverse of Leaf.Data). It refuses
// anything Data would not produce.
func ParseLeaf(data []byte) (Leaf, error) {
	var l Leaf
	s := string(data)
	if !strings.HasPrefix(s, LeafPrefix) {
		return l, errors.New("anchor: leaf data does not start with " + strconv.Quote(LeafPrefix))
	}
	parts := strings.Split(s[len(LeafPrefix):], "\n")
	if len(parts) != 3 {
		return l, errors.New("anchor: leaf data does not have 4 lines")
	}
	ref := strings.Split(parts[0], "/")
	if len(ref) != 4 || ref[2] != "_history" {
		return l, errors.New("anchor: leaf reference is not <type>/<id>/_history/<vid>")
	}
	if err := ValidLeafName(ref[0], ref[1]); err != nil {
		return l, fmt.Errorf("anchor: leaf: %w", err)
	}
	vid, err := parseVID(ref[3])
	if err != nil {
		return l, fmt.Errorf("anchor: leaf: %w", err)
	}
	salt, err := parse32(parts[1], false)
	if err != nil {
		return l, fmt.Errorf("anchor: leaf salt: %w", err)
	}
	sum, err := parse32(parts[2], false)
	if err != nil {
		return l, fmt.Errorf("anchor: leaf sha256: %w", err)
	}
	l.Type, l.ID, l.VID, l.Salt, l.SHA256 = ref[0], ref[1], vid, salt, sum
	if string(l.Data()) != s { // uppercase hex, for one
		return l, errors.New("anchor: leaf data is not in canonical form")
	}
	return l, nil
}
