package search

import "github.com/fhirgate/fhirgate/store"

// Phonetic returns the American Soundex code of one word ("Smith" and
// "Smyth" -> "S530"), after folding accents and case as string search
// does; "" when the word has no Latin letter. Phonetic parameters
// (Patient?phonetic=) index these codes, so the query layer matches
// Phonetic(query word) against them exactly.
func Phonetic(word string) string {
	w := word
	for i := 0; i < len(w); i++ {
		if w[i] >= 0x80 { // accents: fold them; ASCII needs no copy
			w = store.Normalize(w)
			break
		}
	}
	var code [4]byte
	n := 0
	var last byte
	for i := 0; i < len(w) && n < 4; i++ {
		c := w[i] | 0x20 // ASCII lower case
		if c < 'a' || c > 'z' {
			continue
		}
		d := soundexDigit[c-'a']
		if n == 0 {
			code[0] = c - 'a' + 'A'
			n, last = 1, d
			continue
		}
		switch d {
		case 0: // vowel: a repeated digit after it counts again
			last = 0
		case '-': // h, w: do not separate equal digits
		default:
			if d != last {
				code[n] = d
				n++
			}
			last = d
		}
	}
	if n == 0 {
		return ""
	}
	for ; n < 4; n++ {
		code[n] = '0'
	}
	return string(code[:])
}

// soundexDigit codes a-z: 0 for vowels (and y), '-' for h and w.
var soundexDigit = [26]byte{
	0, '1', '2', '3', 0, '1', '2', '-', 0, '2', '2', '4', '5',
	'5', 0, '1', '2', '6', '2', '3', 0, '1', '-', '2', 0, '2',
}

// forEachWord calls fn with each word of s (split at white space and
// hyphens).
func forEachWord(s string, fn func(string)) {
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' || s[i] == '-' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' {
			if start >= 0 {
				fn(s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
}
