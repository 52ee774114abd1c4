package fhirjson

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits bound what one document may cost to parse. Zero fields take the
// defaults.
type Limits struct {
	MaxDepth  int // nesting of arrays and objects; default 100
	MaxValues int // values in the whole document; default 1<<20
	// MaxItems bounds the items of one array and the members of one
	// object; 0: only MaxValues bounds them.
	MaxItems int
}

const (
	defaultMaxDepth  = 100
	defaultMaxValues = 1 << 20
)

// Error is a parse failure: what is wrong, where (a FHIRPath-like path from
// the document root, such as "name[0].given[1]"), and the byte offset.
type Error struct {
	Path   string
	Offset int
	Msg    string
	// TooLarge marks a document refused for its size (depth or value
	// count) rather than its syntax.
	TooLarge bool
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("invalid JSON at offset %d: %s", e.Offset, e.Msg)
	}
	return fmt.Sprintf("invalid JSON at %s (offset %d): %s", e.Path, e.Offset, e.Msg)
}

// Parse parses one JSON document strictly.
func Parse(data []byte, lim Limits) (Value, error) {
	return parse(data, lim, true)
}

// parse is Parse; without sized it skips the first pass (the tests'
// reference).
func parse(data []byte, lim Limits, sized bool) (Value, error) {
	if lim.MaxDepth <= 0 {
		lim.MaxDepth = defaultMaxDepth
	}
	if lim.MaxValues <= 0 {
		lim.MaxValues = defaultMaxValues
	}
	if lim.MaxItems <= 0 {
		lim.MaxItems = lim.MaxValues
	}
	// One copy of the input as a string lets every unescaped string value
	// be a substring of it instead of its own allocation.
	p := parser{src: string(data), lim: lim}
	// A first pass counts the entries of every array and object without
	// building anything: a document over a limit is refused before any of
	// it is allocated, and the tree is then built with slices of exactly
	// the right size (growing them by doubling cost five times the
	// document's final size in a 1 MB array of zeros).
	if sized {
		sz := sizer{src: p.src, lim: lim}
		if err := sz.run(); err != nil {
			return Value{}, err
		}
		p.sizes = sz.sizes
	}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.skipSpace()
	if p.pos < len(p.src) {
		return Value{}, p.fail("unexpected data after the top-level value")
	}
	return v, nil
}

type pathSeg struct {
	key string
	idx int // -1 for an object key
}

type parser struct {
	src    string
	pos    int
	lim    Limits
	values int
	path   []pathSeg
	// sizes are the entry counts of the arrays and objects in the order
	// they open (the sizer's pass); next is the next one's.
	sizes []int32
	next  int
}

// capacity returns the entry count the sizer found for the container
// opening now, bounded by what the rest of the input could hold.
func (p *parser) capacity() int {
	if p.next >= len(p.sizes) {
		return 0
	}
	n := int(p.sizes[p.next])
	p.next++
	return min(n, (len(p.src)-p.pos)/2+1)
}

func (p *parser) pathString() string {
	return pathString(p.path)
}

func pathString(path []pathSeg) string {
	var b strings.Builder
	for i, s := range path {
		if b.Len() > 200 {
			b.WriteString("...")
			break
		}
		if s.idx >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.idx))
			b.WriteByte(']')
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}

func (p *parser) fail(format string, args ...any) *Error {
	return &Error{Path: p.pathString(), Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) skipSpace() { p.pos = skipSpace(p.src, p.pos) }

// skipSpace returns the position of the first non-whitespace byte of src
// at or after pos (the parser's and the sizer's).
func skipSpace(src string, pos int) int {
	for pos < len(src) {
		switch src[pos] {
		case ' ', '\t', '\n', '\r':
			pos++
		default:
			return pos
		}
	}
	return pos
}

func (p *parser) value(depth int) (Value, error) {
	p.values++
	if p.values > p.lim.MaxValues {
		e := p.fail("more than %d values", p.lim.MaxValues)
		e.TooLarge = true
		return Value{}, e
	}
	if p.pos >= len(p.src) {
		return Value{}, p.fail("unexpected end of input")
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.str()
		return Value{Kind: String, Str: s}, err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case strings.HasPrefix(p.src[p.pos:], "true"):
		p.pos += 4
		return Value{Kind: Bool, Str: "true"}, nil
	case strings.HasPrefix(p.src[p.pos:], "false"):
		p.pos += 5
		return Value{Kind: Bool, Str: "false"}, nil
	case strings.HasPrefix(p.src[p.pos:], "null"):
		p.pos += 4
		return Value{Kind: Null}, nil
	default:
		return Value{}, p.fail("unexpected character %q", rune(c))
	}
}

// tooMany refuses the array or object being parsed for its size.
func (p *parser) tooMany(what string, limit int) *Error {
	e := p.fail("more than %d %s", limit, what)
	e.TooLarge = true
	return e
}

func (p *parser) checkDepth(depth int) error {
	if depth > p.lim.MaxDepth {
		e := p.fail("nested deeper than %d levels", p.lim.MaxDepth)
		e.TooLarge = true
		return e
	}
	return nil
}

func (p *parser) object(depth int) (Value, error) {
	if err := p.checkDepth(depth); err != nil {
		return Value{}, err
	}
	p.pos++ // {
	v := Value{Kind: Object}
	if n := p.capacity(); n > 0 {
		v.Members = make([]Member, 0, n)
	}
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return Value{}, p.fail("expected a string key")
		}
		key, err := p.str()
		if err != nil {
			return Value{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return Value{}, p.fail("expected ':' after key %q", key)
		}
		p.pos++
		p.skipSpace()
		if len(v.Members) == p.lim.MaxItems {
			return Value{}, p.tooMany("members", p.lim.MaxItems)
		}
		p.path = append(p.path, pathSeg{key: key, idx: -1})
		mv, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		p.path = p.path[:len(p.path)-1]
		v.Members = append(v.Members, Member{Key: key, Value: mv})
		p.skipSpace()
		if p.pos >= len(p.src) {
			return Value{}, p.fail("unterminated object")
		}
		if p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.src[p.pos] == '}' {
			p.pos++
			break
		}
		return Value{}, p.fail("expected ',' or '}' in object")
	}
	if err := p.sortMembers(v.Members); err != nil {
		return Value{}, err
	}
	return v, nil
}

// sortMembers puts members in canonical order and refuses duplicate keys,
// which RFC 8259 leaves undefined and FHIR forbids.
func (p *parser) sortMembers(ms []Member) error {
	sorted := true
	for i := 1; i < len(ms); i++ {
		if !keyLess(ms[i-1].Key, ms[i].Key) {
			sorted = false
			break
		}
	}
	if !sorted {
		slices.SortStableFunc(ms, func(a, b Member) int {
			switch {
			case a.Key == b.Key:
				return 0
			case keyLess(a.Key, b.Key):
				return -1
			}
			return 1
		})
		for i := 1; i < len(ms); i++ {
			if ms[i-1].Key == ms[i].Key {
				p.path = append(p.path, pathSeg{key: ms[i].Key, idx: -1})
				e := p.fail("duplicate key %q", ms[i].Key)
				p.path = p.path[:len(p.path)-1]
				return e
			}
		}
	}
	return nil
}

func (p *parser) array(depth int) (Value, error) {
	if err := p.checkDepth(depth); err != nil {
		return Value{}, err
	}
	p.pos++ // [
	v := Value{Kind: Array}
	if n := p.capacity(); n > 0 {
		v.Items = make([]Value, 0, n)
	}
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for i := 0; ; i++ {
		p.skipSpace()
		if i == p.lim.MaxItems {
			return Value{}, p.tooMany("items", p.lim.MaxItems)
		}
		p.path = append(p.path, pathSeg{idx: i})
		item, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		p.path = p.path[:len(p.path)-1]
		v.Items = append(v.Items, item)
		p.skipSpace()
		if p.pos >= len(p.src) {
			return Value{}, p.fail("unterminated array")
		}
		if p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.src[p.pos] == ']' {
			p.pos++
			return v, nil
		}
		return Value{}, p.fail("expected ',' or ']' in array")
	}
}

func (p *parser) number() (Value, error) {
	start := p.pos
	s := p.src
	i := p.pos
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		p.pos = i
		return Value{}, p.fail("invalid number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			p.pos = i
			return Value{}, p.fail("invalid number: no digits after '.'")
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			p.pos = i
			return Value{}, p.fail("invalid number: no digits in exponent")
		}
	}
	p.pos = i
	return Value{Kind: Number, Str: s[start:i]}, nil
}

// str parses a string literal starting at the opening quote.
func (p *parser) str() (string, error) {
	s := p.src
	start := p.pos + 1
	i := start
	// Fast path: plain ASCII without escapes is a substring of the input.
	for i < len(s) {
		c := s[i]
		if c == '"' {
			p.pos = i + 1
			return s[start:i], nil
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			break
		}
		i++
	}
	var b []byte
	plain := true // no escapes seen yet: the result may still be a substring
	for {
		if i >= len(s) {
			p.pos = i
			return "", p.fail("unterminated string")
		}
		c := s[i]
		switch {
		case c == '"':
			p.pos = i + 1
			if plain {
				return s[start:i], nil
			}
			return string(b), nil
		case c < 0x20:
			p.pos = i
			return "", p.fail("control character U+%04X in string must be escaped", c)
		case c == '\\':
			if plain {
				plain = false
				b = append(make([]byte, 0, i-start+16), s[start:i]...)
			}
			r, n, err := p.escape(i)
			if err != nil {
				return "", err
			}
			b = utf8.AppendRune(b, r)
			i += n
		case c < 0x80:
			if !plain {
				b = append(b, c)
			}
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n <= 1 {
				p.pos = i
				return "", p.fail("invalid UTF-8 in string")
			}
			if !plain {
				b = append(b, s[i:i+n]...)
			}
			i += n
		}
	}
}

// escape decodes the escape sequence at s[i] (a backslash) and returns the
// rune and the number of bytes consumed.
func (p *parser) escape(i int) (rune, int, error) {
	s := p.src
	if i+1 >= len(s) {
		p.pos = i
		return 0, 0, p.fail("unterminated escape")
	}
	switch s[i+1] {
	case '"':
		return '"', 2, nil
	case '\\':
		return '\\', 2, nil
	case '/':
		return '/', 2, nil
	case 'b':
		return '\b', 2, nil
	case 'f':
		return '\f', 2, nil
	case 'n':
		return '\n', 2, nil
	case 'r':
		return '\r', 2, nil
	case 't':
		return '\t', 2, nil
	case 'u':
		r1, ok := hex4(s, i+2)
		if !ok {
			p.pos = i
			return 0, 0, p.fail("invalid \\u escape")
		}
		if !utf16.IsSurrogate(r1) {
			return r1, 6, nil
		}
		// A surrogate must be a high one followed by a low one (I-JSON).
		if r1 < 0xDC00 && i+7 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
			if r2, ok := hex4(s, i+8); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
				return utf16.DecodeRune(r1, r2), 12, nil
			}
		}
		p.pos = i
		return 0, 0, p.fail("unpaired surrogate in \\u escape")
	}
	p.pos = i
	return 0, 0, p.fail("invalid escape \\%c", s[i+1])
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

func utf16Less(a, b string) bool {
	ua := utf16.Encode([]rune(a))
	ub := utf16.Encode([]rune(b))
	return slices.Compare(ua, ub) < 0
}
