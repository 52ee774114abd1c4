package siwe

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/chain/ethsig"
)

// ErrInvalidMessage: the text is not an EIP-4361 message. The wrapped error
// names the line and the rule broken, never the offending text.
var ErrInvalidMessage = errors.New("siwe: invalid message")

// MaxMessageLen bounds the message accepted by Parse (an implementation
// limit; the ABNF has none).
const MaxMessageLen = 16 << 10

const headerSuffix = " wants you to sign in with your Ethereum account:"

// Message is an EIP-4361 Sign-In With Ethereum message. Parse keeps every
// field exactly as written, so String reproduces the parsed text byte for
// byte.
//
// Optional fields: Scheme, ExpirationTime and NotBefore are "" when
// absent (they cannot be empty when present). Statement and RequestID may
// be present but empty, so they are pointers (nil when absent). Resources
// is nil when there is no "Resources:" section and non-nil (possibly
// empty) when there is one.
type Message struct {
	Scheme         string // RFC 3986 scheme before "://" on the first line
	Domain         string // RFC 3986 authority requesting the sign-in
	Address        string // EIP-55 checksum address, as written
	Statement      *string
	URI            string // RFC 3986 URI the sign-in is for
	Version        string // always "1"
	ChainID        uint64 // EIP-155 chain id
	Nonce          string // at least 8 ASCII letters and digits
	IssuedAt       string // RFC 3339 date-time, as written
	ExpirationTime string // RFC 3339 date-time, as written, or ""
	NotBefore      string // RFC 3339 date-time, as written, or ""
	RequestID      *string
	Resources      []string // RFC 3986 URIs
}

// Account returns the signing account.
func (m *Message) Account() (ethsig.Address, error) {
	return ethsig.ParseChecksumAddress(m.Address)
}

// IssuedAtTime, ExpirationTimeTime and NotBeforeTime parse the timestamps
// (the zero time for an absent optional one).
func (m *Message) IssuedAtTime() (time.Time, error) { return parseDateTime(m.IssuedAt) }

// ExpirationTimeTime: see IssuedAtTime.
func (m *Message) ExpirationTimeTime() (time.Time, error) { return optTime(m.ExpirationTime) }

// NotBeforeTime: see IssuedAtTime.
func (m *Message) NotBeforeTime() (time.Time, error) { return optTime(m.NotBefore) }

func optTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return parseDateTime(s)
}

// String renders the message in EIP-4361 form. It does not validate: use
// Parse(m.String()) for that.
func (m *Message) String() string {
	var b strings.Builder
	if m.Scheme != "" {
		b.WriteString(m.Scheme)
		b.WriteString("://")
	}
	b.WriteString(m.Domain)
	b.WriteString(headerSuffix)
	b.WriteString("\n")
	b.WriteString(m.Address)
	b.WriteString("\n\n")
	if m.Statement != nil {
		b.WriteString(*m.Statement)
		b.WriteString("\n")
	}
	b.WriteString("\nURI: ")
	b.WriteString(m.URI)
	b.WriteString("\nVersion: ")
	b.WriteString(m.Version)
	b.WriteString("\nChain ID: ")
	b.WriteString(strconv.FormatUint(m.ChainID, 10))
	b.WriteString("\nNonce: ")
	b.WriteString(m.Nonce)
	b.WriteString("\nIssued At: ")
	b.WriteString(m.IssuedAt)
	if m.ExpirationTime != "" {
		b.WriteString("\nExpiration Time: ")
		b.WriteString(m.ExpirationTime)
	}
	if m.NotBefore != "" {
		b.WriteString("\nNot Before: ")
		b.WriteString(m.NotBefore)
	}
	if m.RequestID != nil {
		b.WriteString("\nRequest ID: ")
		b.WriteString(*m.RequestID)
	}
	if m.Resources != nil {
		b.WriteString("\nResources:")
		for _, r := range m.Resources {
			b.WriteString("\n- ")
			b.WriteString(r)
		}
	}
	return b.String()
}

// Parse parses an EIP-4361 message strictly by the EIP's ABNF:
//
//	[ scheme "://" ] domain " wants you to sign in with your Ethereum account:" LF
//	address LF
//	LF
//	[ statement LF ]
//	LF
//	"URI: " uri LF
//	"Version: 1" LF
//	"Chain ID: " chain-id LF
//	"Nonce: " nonce LF
//	"Issued At: " issued-at
//	[ LF "Expiration Time: " expiration-time ]
//	[ LF "Not Before: " not-before ]
//	[ LF "Request ID: " request-id ]
//	[ LF "Resources:" *( LF "- " uri ) ]
//
// Lines end in LF alone and there is no final LF. The address must be in
// EIP-55 checksum form. Where the ABNF is looser than a safe reading, Parse
// is stricter, so that every accepted message has one canonical text:
//
//   - the domain must have a host;
//   - the chain id has no leading zeros and fits in 64 bits;
//   - date-times use an uppercase "T" and "Z", at most 9 fractional digits,
//     and no leap second (":60");
//   - the whole message is at most MaxMessageLen bytes (all of it ASCII:
//     the ABNF admits nothing else).
func Parse(text string) (*Message, error) {
	if len(text) > MaxMessageLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidMessage, MaxMessageLen)
	}
	for i := 0; i < len(text); i++ {
		if c := text[i]; c >= 0x80 || (c < 0x20 && c != '\n') || c == 0x7f {
			return nil, fmt.Errorf("%w: byte %d: only printable ASCII and LF are allowed", ErrInvalidMessage, i)
		}
	}
	lines := strings.Split(text, "\n")
	p := parser{lines: lines}
	m := &Message{}

	// Line 1: [ scheme "://" ] domain " wants you to sign in ...:"
	head, ok := strings.CutSuffix(p.next(), headerSuffix)
	if !ok {
		return nil, p.errf("want \"<domain> wants you to sign in with your Ethereum account:\"")
	}
	if s, d, ok := strings.Cut(head, "://"); ok {
		if !validScheme(s) {
			return nil, p.errf("invalid scheme")
		}
		m.Scheme, head = s, d
	}
	if !validAuthority(head) || hostOf(head) == "" {
		return nil, p.errf("invalid domain (want an RFC 3986 authority with a host)")
	}
	m.Domain = head

	// Line 2: address.
	m.Address = p.next()
	if _, err := ethsig.ParseChecksumAddress(m.Address); err != nil {
		return nil, p.errf("address must be 0x and 40 hex digits in EIP-55 checksum form")
	}
	if p.next() != "" {
		return nil, p.errf("want an empty line after the address")
	}
	// [ statement LF ] LF: a statement line is followed by an empty line;
	// without one, the empty line comes straight away.
	if p.peek(1) == "" && p.has(1) {
		st := p.next()
		if !validStatement(st) {
			return nil, p.errf("statement may hold only RFC 3986 reserved and unreserved characters and spaces")
		}
		m.Statement = &st
		p.next()
	} else if p.next() != "" {
		return nil, p.errf("want an empty line, or a statement and an empty line, after the address")
	}

	var err error
	if m.URI, err = p.field("URI: "); err != nil {
		return nil, err
	}
	if !validURI(m.URI) {
		return nil, p.errf("URI is not an RFC 3986 URI")
	}
	if m.Version, err = p.field("Version: "); err != nil {
		return nil, err
	}
	if m.Version != "1" {
		return nil, p.errf("version must be 1")
	}
	chain, err := p.field("Chain ID: ")
	if err != nil {
		return nil, err
	}
	if m.ChainID, err = parseChainID(chain); err != nil {
		return nil, p.errf("chain id must be a decimal number without leading zeros")
	}
	if m.Nonce, err = p.field("Nonce: "); err != nil {
		return nil, err
	}
	if !validNonce(m.Nonce) {
		return nil, p.errf("nonce must be at least 8 letters and digits")
	}
	if m.IssuedAt, err = p.field("Issued At: "); err != nil {
		return nil, err
	}
	if _, err := parseDateTime(m.IssuedAt); err != nil {
		return nil, p.errf("issued-at is not an RFC 3339 date-time")
	}
	if v, ok := p.optional("Expiration Time: "); ok {
		if _, err := parseDateTime(v); err != nil {
			return nil, p.errf("expiration time is not an RFC 3339 date-time")
		}
		m.ExpirationTime = v
	}
	if v, ok := p.optional("Not Before: "); ok {
		if _, err := parseDateTime(v); err != nil {
			return nil, p.errf("not-before is not an RFC 3339 date-time")
		}
		m.NotBefore = v
	}
	if v, ok := p.optional("Request ID: "); ok {
		if !validPchars(v) {
			return nil, p.errf("request id may hold only RFC 3986 pchar characters")
		}
		m.RequestID = &v
	}
	if p.has(0) && p.peek(0) == "Resources:" {
		p.next()
		m.Resources = []string{}
		for p.has(0) {
			r, ok := strings.CutPrefix(p.next(), "- ")
			if !ok || !validURI(r) {
				return nil, p.errf("want \"- <URI>\" in the resources list")
			}
			m.Resources = append(m.Resources, r)
		}
	}
	if p.has(0) {
		p.next()
		return nil, p.errf("unexpected line (fields out of order, repeated, unknown, or a trailing newline)")
	}
	return m, nil
}

type parser struct {
	lines []string
	i     int // index of the next line
}

// has reports whether the line k after the next one exists.
func (p *parser) has(k int) bool { return p.i+k < len(p.lines) }

func (p *parser) peek(k int) string {
	if !p.has(k) {
		return ""
	}
	return p.lines[p.i+k]
}

// next returns the next line ("" past the end, which the callers' checks
// then reject).
func (p *parser) next() string {
	if !p.has(0) {
		p.i++
		return ""
	}
	l := p.lines[p.i]
	p.i++
	return l
}

// errf reports a fault on the line last returned by next.
func (p *parser) errf(format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrInvalidMessage, p.i, fmt.Sprintf(format, args...))
}

func (p *parser) field(prefix string) (string, error) {
	if !p.has(0) {
		p.i++
		return "", p.errf("missing %q", strings.TrimSuffix(prefix, " "))
	}
	v, ok := strings.CutPrefix(p.next(), prefix)
	if !ok {
		return "", p.errf("want %q", strings.TrimSuffix(prefix, " "))
	}
	return v, nil
}

func (p *parser) optional(prefix string) (string, bool) {
	if !p.has(0) {
		return "", false
	}
	v, ok := strings.CutPrefix(p.peek(0), prefix)
	if ok {
		p.i++
	}
	return v, ok
}

func parseChainID(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("bad chain id")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("bad chain id")
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

func validNonce(s string) bool {
	if len(s) < 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlpha(s[i]) && !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// validStatement: *( reserved / unreserved / " " ).
func validStatement(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isUnreserved(c) && !isGenDelim(c) && !isSubDelim(c) && c != ' ' {
			return false
		}
	}
	return true
}

// parseDateTime parses an RFC 3339 date-time:
//
//	YYYY-MM-DD "T" hh:mm:ss [ "." 1*DIGIT ] ( "Z" / ("+"/"-") hh:mm )
//
// with the restrictions Parse documents.
func parseDateTime(s string) (time.Time, error) {
	bad := errors.New("not an RFC 3339 date-time")
	if len(s) < 20 {
		return time.Time{}, bad
	}
	digits := func(from, n int, max int) bool {
		v := 0
		for i := from; i < from+n; i++ {
			if !isDigit(s[i]) {
				return false
			}
			v = v*10 + int(s[i]-'0')
		}
		return v <= max
	}
	if !digits(0, 4, 9999) || s[4] != '-' || !digits(5, 2, 12) || s[7] != '-' || !digits(8, 2, 31) ||
		s[10] != 'T' || !digits(11, 2, 23) || s[13] != ':' || !digits(14, 2, 59) || s[16] != ':' || !digits(17, 2, 59) {
		return time.Time{}, bad
	}
	rest := s[19:]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n == 1 || n > 10 {
			return time.Time{}, bad
		}
		rest = rest[n:]
	}
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		off := len(s) - 6
		if !digits(off+1, 2, 23) || !digits(off+4, 2, 59) {
			return time.Time{}, bad
		}
	default:
		return time.Time{}, bad
	}
	// The shape is right; time.Parse checks the calendar (no February 30).
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, bad
	}
	return t, nil
}
