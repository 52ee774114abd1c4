package fhirjson

import (
	"errors"
	"strings"
)

// sizer is the parser's first pass: it walks the document as the parser
// will, counting the entries of each array and object (in the order they
// open) and the values, without building anything. It refuses a document
// over a limit with the error the parser would give (same path, same
// offset). On a syntax error it stops quietly: the parser, which explains
// syntax errors, will stop at the same place, and the counts gathered so
// far still fit the containers it meets before.
type sizer struct {
	src    string
	pos    int
	lim    Limits
	values int
	path   []pathSeg
	sizes  []int32
}

// errSyntax stops the sizer at a syntax error (the parser reports it).
var errSyntax = errors.New("syntax")

func (s *sizer) run() error {
	s.skipSpace()
	err := s.value(0)
	if err == errSyntax {
		return nil
	}
	return err
}

func (s *sizer) fail(format string, args ...any) *Error {
	p := parser{src: s.src, pos: s.pos}
	e := p.fail(format, args...)
	e.Path = pathString(s.path)
	e.TooLarge = true
	return e
}

func (s *sizer) skipSpace() { s.pos = skipSpace(s.src, s.pos) }

func (s *sizer) value(depth int) error {
	s.values++
	if s.values > s.lim.MaxValues {
		return s.fail("more than %d values", s.lim.MaxValues)
	}
	if s.pos >= len(s.src) {
		return errSyntax
	}
	switch c := s.src[s.pos]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		start := s.pos
		for s.pos < len(s.src) && strings.IndexByte("+-.eE0123456789", s.src[s.pos]) >= 0 {
			s.pos++
		}
		if s.pos == start {
			return errSyntax
		}
		return nil
	case strings.HasPrefix(s.src[s.pos:], "true"), strings.HasPrefix(s.src[s.pos:], "null"):
		s.pos += 4
		return nil
	case strings.HasPrefix(s.src[s.pos:], "false"):
		s.pos += 5
		return nil
	}
	return errSyntax
}

// str skips a string literal and returns its raw text (escapes intact).
func (s *sizer) str() (string, error) {
	start := s.pos + 1
	i := start
	for {
		j := strings.IndexByte(s.src[i:], '"')
		if j < 0 {
			return "", errSyntax
		}
		i += j
		// The quote is escaped when an odd run of backslashes precedes it.
		k := i
		for k > start && s.src[k-1] == '\\' {
			k--
		}
		if (i-k)%2 == 0 {
			s.pos = i + 1
			return s.src[start:i], nil
		}
		i++
	}
}

func (s *sizer) checkDepth(depth int) error {
	if depth > s.lim.MaxDepth {
		return s.fail("nested deeper than %d levels", s.lim.MaxDepth)
	}
	return nil
}

// open reserves the count of the container opening now.
func (s *sizer) open() int {
	s.sizes = append(s.sizes, 0)
	return len(s.sizes) - 1
}

func (s *sizer) object(depth int) error {
	if err := s.checkDepth(depth); err != nil {
		return err
	}
	slot := s.open()
	n, err := s.members(depth)
	s.sizes[slot] = int32(n)
	return err
}

func (s *sizer) members(depth int) (int, error) {
	s.pos++ // {
	s.skipSpace()
	if s.pos < len(s.src) && s.src[s.pos] == '}' {
		s.pos++
		return 0, nil
	}
	for n := 0; ; n++ {
		s.skipSpace()
		if s.pos >= len(s.src) || s.src[s.pos] != '"' {
			return n, errSyntax
		}
		key, err := s.str()
		if err != nil {
			return n, err
		}
		if strings.IndexByte(key, '\\') >= 0 {
			// Paths name keys as the parser decodes them.
			p := parser{src: s.src, pos: s.pos - len(key) - 2}
			if key, err = p.str(); err != nil {
				return n, errSyntax
			}
		}
		s.skipSpace()
		if s.pos >= len(s.src) || s.src[s.pos] != ':' {
			return n, errSyntax
		}
		s.pos++
		s.skipSpace()
		if n == s.lim.MaxItems {
			return n, s.fail("more than %d members", s.lim.MaxItems)
		}
		s.path = append(s.path, pathSeg{key: key, idx: -1})
		if err := s.value(depth); err != nil {
			return n + 1, err
		}
		s.path = s.path[:len(s.path)-1]
		s.skipSpace()
		if s.pos >= len(s.src) {
			return n + 1, errSyntax
		}
		switch s.src[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return n + 1, nil
		default:
			return n + 1, errSyntax
		}
	}
}

func (s *sizer) array(depth int) error {
	if err := s.checkDepth(depth); err != nil {
		return err
	}
	slot := s.open()
	n, err := s.items(depth)
	s.sizes[slot] = int32(n)
	return err
}

func (s *sizer) items(depth int) (int, error) {
	s.pos++ // [
	s.skipSpace()
	if s.pos < len(s.src) && s.src[s.pos] == ']' {
		s.pos++
		return 0, nil
	}
	for i := 0; ; i++ {
		s.skipSpace()
		if i == s.lim.MaxItems {
			return i, s.fail("more than %d items", s.lim.MaxItems)
		}
		s.path = append(s.path, pathSeg{idx: i})
		if err := s.value(depth); err != nil {
			return i + 1, err
		}
		s.path = s.path[:len(s.path)-1]
		s.skipSpace()
		if s.pos >= len(s.src) {
			return i + 1, errSyntax
		}
		switch s.src[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return i + 1, nil
		default:
			return i + 1, errSyntax
		}
	}
}
