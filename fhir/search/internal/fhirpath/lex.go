package fhirpath

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokKind uint8

const (
	tokEOF    tokKind = iota
	tokIdent          // name, keyword or `delimited name`
	tokString         // 'text' (decoded)
	tokNumber         // 12 or 1.5
	tokOp             // punctuation and operators
	tokVar            // %name or $this
)

type token struct {
	kind tokKind
	text string
	pos  int
	// quoted marks a `delimited` identifier, which is never a keyword.
	quoted bool
}

// lex splits src into tokens. It knows the whole FHIRPath lexical grammar,
// so an expression outside the supported subset fails in the parser with
// a clear message rather than as garbage here.
func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '/' && strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("offset %d: unterminated comment", i)
			}
			i += end + 4
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: src[i:j], pos: i})
			i = j
		case c == '`':
			s, n, err := unquote(src[i:], '`')
			if err != nil {
				return nil, fmt.Errorf("offset %d: %w", i, err)
			}
			toks = append(toks, token{kind: tokIdent, text: s, pos: i, quoted: true})
			i += n
		case c == '\'':
			s, n, err := unquote(src[i:], '\'')
			if err != nil {
				return nil, fmt.Errorf("offset %d: %w", i, err)
			}
			toks = append(toks, token{kind: tokString, text: s, pos: i})
			i += n
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			if j+1 < len(src) && src[j] == '.' && src[j+1] >= '0' && src[j+1] <= '9' {
				j += 2
				for j < len(src) && src[j] >= '0' && src[j] <= '9' {
					j++
				}
			}
			toks = append(toks, token{kind: tokNumber, text: src[i:j], pos: i})
			i = j
		case c == '%' || c == '$':
			j := i + 1
			if j < len(src) && (src[j] == '`' || src[j] == '\'') && c == '%' {
				s, n, err := unquote(src[j:], src[j])
				if err != nil {
					return nil, fmt.Errorf("offset %d: %w", i, err)
				}
				toks = append(toks, token{kind: tokVar, text: "%" + s, pos: i})
				i = j + n
				continue
			}
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("offset %d: %q without a name", i, c)
			}
			toks = append(toks, token{kind: tokVar, text: src[i:j], pos: i})
			i = j
		default:
			op := ""
			for _, o := range [...]string{"!=", "!~", "<=", ">=", ".", "(", ")", "[", "]", "{", "}", "|", "=", "~", "<", ">", ",", "+", "-", "*", "/", "&"} {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(src[i:])
				return nil, fmt.Errorf("offset %d: unexpected character %q", i, r)
			}
			toks = append(toks, token{kind: tokOp, text: op, pos: i})
			i += len(op)
		}
	}
	return append(toks, token{kind: tokEOF, pos: len(src)}), nil
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// unquote decodes a quoted string or delimited identifier at the start of
// s and returns it with the number of bytes consumed.
func unquote(s string, q byte) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); {
		c := s[i]
		switch {
		case c == q:
			return b.String(), i + 1, nil
		case c == '\\':
			if i+1 >= len(s) {
				return "", 0, fmt.Errorf("unterminated escape")
			}
			i++
			switch e := s[i]; e {
			case '\'', '"', '`', '\\', '/':
				b.WriteByte(e)
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if i+5 > len(s) {
					return "", 0, fmt.Errorf("short \\u escape")
				}
				n, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
				if err != nil {
					return "", 0, fmt.Errorf("invalid \\u escape")
				}
				b.WriteRune(rune(n))
				i += 4
			default:
				return "", 0, fmt.Errorf("invalid escape \\%c", e)
			}
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	return "", 0, fmt.Errorf("unterminated %c", q)
}
