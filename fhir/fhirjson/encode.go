package fhirjson

import "unicode/utf8"

// AppendCanonical appends the canonical encoding of v to dst: members in
// key order, no insignificant whitespace, strings escaped as RFC 8785
// (ECMAScript JSON.stringify) does, numbers as they were written.
func AppendCanonical(dst []byte, v *Value) []byte {
	switch v.Kind {
	case Null:
		return append(dst, "null"...)
	case Bool, Number, Raw:
		return append(dst, v.Str...)
	case String:
		return AppendString(dst, v.Str)
	case Array:
		dst = append(dst, '[')
		for i := range v.Items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendCanonical(dst, &v.Items[i])
		}
		return append(dst, ']')
	case Object:
		dst = append(dst, '{')
		for i := range v.Members {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, v.Members[i].Key)
			dst = append(dst, ':')
			dst = AppendCanonical(dst, &v.Members[i].Value)
		}
		return append(dst, '}')
	}
	return dst
}

// Canonical returns the canonical encoding of v, in a buffer sized for it
// up front (a search result Bundle splices kilobytes of stored resources:
// growing the buffer by doubling was a third of a search's allocations).
func Canonical(v *Value) []byte {
	return AppendCanonical(make([]byte, 0, encodedSize(v)), v)
}

// encodedSize is the size of v's encoding when no string needs escapes.
func encodedSize(v *Value) int {
	switch v.Kind {
	case Null:
		return 4
	case String:
		return len(v.Str) + 2
	case Array:
		n := 2 + max(len(v.Items)-1, 0) // brackets, commas
		for i := range v.Items {
			n += encodedSize(&v.Items[i])
		}
		return n
	case Object:
		n := 2 + max(len(v.Members)-1, 0)
		for i := range v.Members {
			n += len(v.Members[i].Key) + 3 + encodedSize(&v.Members[i].Value)
		}
		return n
	}
	return len(v.Str)
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string literal escaped per RFC 8785:
// only '"', '\\' and control characters are escaped, with the short forms
// where JSON has them. s must be valid UTF-8 (the parser guarantees it);
// invalid bytes are replaced by U+FFFD rather than emitted.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < 0x80 {
			i++
			continue
		}
		if c >= 0x80 {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, "\ufffd"...)
				i++
				start = i
				continue
			}
			i += n
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
