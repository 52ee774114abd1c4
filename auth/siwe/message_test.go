package siwe

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The example message of EIP-4361 itself.
const eipExample = `service.invalid wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

I accept the ServiceOrg Terms of Service: https://service.invalid/tos

URI: https://service.invalid/login
Version: 1
Chain ID: 1
Nonce: 32891756
Issued At: 2021-09-30T16:25:24Z
Resources:
- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/
- https://example.com/my-web2-claim.json`

func ptr(s string) *string { return &s }

func TestParseEIPExample(t *testing.T) {
	m, err := Parse(eipExample)
	if err != nil {
		t.Fatal(err)
	}
	want := &Message{
		Domain:    "service.invalid",
		Address:   "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
		Statement: ptr("I accept the ServiceOrg Terms of Service: https://service.invalid/tos"),
		URI:       "https://service.invalid/login",
		Version:   "1",
		ChainID:   1,
		Nonce:     "32891756",
		IssuedAt:  "2021-09-30T16:25:24Z",
		Resources: []string{
			"ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
			"https://example.com/my-web2-claim.json",
		},
	}
	if d := cmp.Diff(want, m); d != "" {
		t.Fatalf("Parse (-want +got):\n%s", d)
	}
	if m.String() != eipExample {
		t.Fatal("String does not reproduce the message")
	}
	iat, err := m.IssuedAtTime()
	if err != nil || !iat.Equal(time.Date(2021, 9, 30, 16, 25, 24, 0, time.UTC)) {
		t.Fatalf("IssuedAtTime = %v, %v", iat, err)
	}
	// The EIP's variant with a scheme.
	withScheme := "https://" + eipExample
	m, err = Parse(withScheme)
	if err != nil || m.Scheme != "https" || m.Domain != "service.invalid" || m.String() != withScheme {
		t.Fatalf("with scheme: %+v, %v", m, err)
	}
}

const addr = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"

// base is a minimal valid message, as lines.
func base() []string {
	return []string{
		"localhost:8080 wants you to sign in with your Ethereum account:",
		addr,
		"",
		"",
		"URI: http://localhost:8080/login",
		"Version: 1",
		"Chain ID: 1337",
		"Nonce: abcdefgh12345678",
		"Issued At: 2026-01-02T03:04:05Z",
	}
}

func join(lines []string) string { return strings.Join(lines, "\n") }

func with(lines []string, i int, l string) []string {
	out := append([]string(nil), lines...)
	out[i] = l
	return out
}

func insert(lines []string, i int, ls ...string) []string {
	out := append([]string(nil), lines[:i]...)
	out = append(out, ls...)
	return append(out, lines[i:]...)
}

func TestParseValid(t *testing.T) {
	b := base()
	full := join(insert(with(b, 2, ""), 3, "Sign in to fhirgate.")) + "\n" + strings.Join([]string{
		"Expiration Time: 2026-01-02T03:14:05.123+01:00",
		"Not Before: 2026-01-02T03:04:05-00:00",
		"Request ID: req-1:@%20!$&'()*+,;=",
		"Resources:",
		"- https://gateway.example/fhir/Patient/123",
		"- urn:uuid:0b7e6f5c-1a2b-4c3d-8e9f-001122334455",
	}, "\n")
	tests := []struct {
		name string
		text string
		chk  func(*Message) bool
	}{
		{"minimal", join(b), func(m *Message) bool {
			return m.Statement == nil && m.RequestID == nil && m.Resources == nil && m.ChainID == 1337 && m.Domain == "localhost:8080"
		}},
		{"all fields", full, func(m *Message) bool {
			return *m.Statement == "Sign in to fhirgate." && m.ExpirationTime != "" && m.NotBefore != "" &&
				*m.RequestID == "req-1:@%20!$&'()*+,;=" && len(m.Resources) == 2
		}},
		{"empty statement", join(insert(b, 3, "")), func(m *Message) bool { return m.Statement != nil && *m.Statement == "" }},
		{"empty request id", join(append(b, "Request ID: ")), func(m *Message) bool { return m.RequestID != nil && *m.RequestID == "" }},
		{"empty resources", join(append(b, "Resources:")), func(m *Message) bool { return m.Resources != nil && len(m.Resources) == 0 }},
		{"scheme", join(with(b, 0, "http://localhost:8080 wants you to sign in with your Ethereum account:")), func(m *Message) bool { return m.Scheme == "http" }},
		{"userinfo and IPv6 domain", join(with(b, 0, "user:pw@[::1]:8080 wants you to sign in with your Ethereum account:")), nil},
		{"IPvFuture domain", join(with(b, 0, "[v1.fe80::a+en1] wants you to sign in with your Ethereum account:")), nil},
		{"statement with reserved characters", join(insert(b, 3, "I accept: https://x.example/tos?a=1#b [ok] (yes), it's fine!")), nil},
		{"chain id 1", join(with(b, 6, "Chain ID: 1")), nil},
		{"chain id max uint64", join(with(b, 6, "Chain ID: 18446744073709551615")), nil},
		{"long nonce", join(with(b, 7, "Nonce: "+strings.Repeat("aZ9", 40))), nil},
		{"9 fraction digits", join(with(b, 8, "Issued At: 2026-01-02T03:04:05.123456789Z")), nil},
		{"leap day", join(with(b, 8, "Issued At: 2024-02-29T00:00:00Z")), nil},
		{"urn URI", join(with(b, 4, "URI: urn:example:login")), nil},
		{"URI with query and fragment", join(with(b, 4, "URI: https://a.example/p/a%20b?x=1&y=/?#frag/?")), nil},
		{"all-lowercase checksum address", join(with(b, 1, "0xde709f2102306220921060314715629080e2fb77")), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.text)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.chk != nil && !tt.chk(m) {
				t.Fatalf("Parse = %+v", m)
			}
			if got := m.String(); got != tt.text {
				t.Fatalf("round trip:\n%q\n%q", got, tt.text)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	b := base()
	tests := []struct {
		name, text, reason string
	}{
		{"empty", "", "line 1"},
		{"no header suffix", join(with(b, 0, "localhost:8080 wants you to sign in with your account:")), "line 1"},
		{"empty domain", join(with(b, 0, " wants you to sign in with your Ethereum account:")), "domain"},
		{"domain with path", join(with(b, 0, "localhost/x wants you to sign in with your Ethereum account:")), "domain"},
		{"domain with space", join(with(b, 0, "local host wants you to sign in with your Ethereum account:")), "domain"},
		{"domain bad port", join(with(b, 0, "localhost:80a wants you to sign in with your Ethereum account:")), "domain"},
		{"domain userinfo only", join(with(b, 0, "user@ wants you to sign in with your Ethereum account:")), "domain"},
		{"domain bad IPv6", join(with(b, 0, "[::g] wants you to sign in with your Ethereum account:")), "domain"},
		{"domain IPv4 in brackets", join(with(b, 0, "[127.0.0.1] wants you to sign in with your Ethereum account:")), "domain"},
		{"domain zone", join(with(b, 0, "[fe80::1%25eth0] wants you to sign in with your Ethereum account:")), "domain"},
		{"bad scheme", join(with(b, 0, "1http://localhost wants you to sign in with your Ethereum account:")), "scheme"},
		{"lowercase mixed address", join(with(b, 1, strings.ToLower(addr))), "EIP-55"},
		{"bad checksum", join(with(b, 1, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")), "EIP-55"},
		{"short address", join(with(b, 1, addr[:41])), "EIP-55"},
		{"no empty line after address", join(b[:2]) + "\n" + join(b[4:]), "line 3"},
		{"one empty line only", join(b[:3]) + "\n" + join(b[4:]), "line 4"},
		{"statement without blank", join(with(b, 3, "Hello")), "line 4"},
		{"statement with quote", join(insert(b, 3, `say "hi"`)), "statement"},
		{"statement with percent", join(insert(b, 3, "100%")), "statement"},
		{"statement with tab", join(insert(b, 3, "a\tb")), "printable ASCII"},
		{"non-ASCII statement", join(insert(b, 3, "héllo")), "printable ASCII"},
		{"CRLF", strings.ReplaceAll(join(b), "\n", "\r\n"), "printable ASCII"},
		{"NUL", join(b) + "\x00", "printable ASCII"},
		{"two statement lines", join(insert(b, 3, "a", "b")), "line 4"},
		{"URI missing", join(append(b[:4:4], b[5:]...)), "URI"},
		{"URI lowercase label", join(with(b, 4, "uri: http://localhost:8080/login")), "URI"},
		{"URI relative", join(with(b, 4, "URI: /login")), "RFC 3986"},
		{"URI with space", join(with(b, 4, "URI: http://localhost:8080/a b")), "RFC 3986"},
		{"URI bad percent", join(with(b, 4, "URI: http://localhost:8080/%zz")), "RFC 3986"},
		{"URI two fragments", join(with(b, 4, "URI: http://localhost:8080/#a#b")), "RFC 3986"},
		{"URI bad host", join(with(b, 4, "URI: http://local^host/")), "RFC 3986"},
		{"URI empty", join(with(b, 4, "URI: ")), "RFC 3986"},
		{"version 2", join(with(b, 5, "Version: 2")), "version"},
		{"version 01", join(with(b, 5, "Version: 01")), "version"},
		{"chain id leading zero", join(with(b, 6, "Chain ID: 01337")), "chain id"},
		{"chain id hex", join(with(b, 6, "Chain ID: 0x539")), "chain id"},
		{"chain id empty", join(with(b, 6, "Chain ID: ")), "chain id"},
		{"chain id negative", join(with(b, 6, "Chain ID: -1")), "chain id"},
		{"chain id overflow", join(with(b, 6, "Chain ID: 18446744073709551616")), "chain id"},
		{"nonce short", join(with(b, 7, "Nonce: abc1234")), "nonce"},
		{"nonce symbol", join(with(b, 7, "Nonce: abcd-1234")), "nonce"},
		{"issued at missing", join(b[:8]), "Issued At"},
		{"issued at date only", join(with(b, 8, "Issued At: 2026-01-02")), "issued-at"},
		{"issued at lowercase t", join(with(b, 8, "Issued At: 2026-01-02t03:04:05Z")), "issued-at"},
		{"issued at no zone", join(with(b, 8, "Issued At: 2026-01-02T03:04:05")), "issued-at"},
		{"issued at Feb 30", join(with(b, 8, "Issued At: 2026-02-30T03:04:05Z")), "issued-at"},
		{"issued at hour 24", join(with(b, 8, "Issued At: 2026-01-02T24:00:00Z")), "issued-at"},
		{"issued at leap second", join(with(b, 8, "Issued At: 2026-12-31T23:59:60Z")), "issued-at"},
		{"issued at 10 fraction digits", join(with(b, 8, "Issued At: 2026-01-02T03:04:05.1234567890Z")), "issued-at"},
		{"issued at empty fraction", join(with(b, 8, "Issued At: 2026-01-02T03:04:05.Z")), "issued-at"},
		{"issued at bad offset", join(with(b, 8, "Issued At: 2026-01-02T03:04:05+0100")), "issued-at"},
		{"issued at offset hour 24", join(with(b, 8, "Issued At: 2026-01-02T03:04:05+24:00")), "issued-at"},
		{"bad expiration", join(append(b, "Expiration Time: tomorrow")), "expiration"},
		{"bad not before", join(append(b, "Not Before: 2026-13-01T00:00:00Z")), "not-before"},
		{"bad request id", join(append(b, "Request ID: a/b")), "request id"},
		{"fields out of order", join(append(b, "Not Before: 2026-01-02T03:04:05Z", "Expiration Time: 2026-01-02T03:04:05Z")), "unexpected line"},
		{"repeated field", join(append(b, "Not Before: 2026-01-02T03:04:05Z", "Not Before: 2026-01-02T03:04:05Z")), "unexpected line"},
		{"unknown field", join(append(b, "Foo: bar")), "unexpected line"},
		{"trailing newline", join(b) + "\n", "unexpected line"},
		{"trailing newline after resources", join(append(b, "Resources:", "- urn:a")) + "\n", "resources"},
		{"resource without dash", join(append(b, "Resources:", "urn:a")), "resources"},
		{"resource bad URI", join(append(b, "Resources:", "- not a uri")), "resources"},
		{"too long", join(insert(b, 3, strings.Repeat("a", MaxMessageLen), "")), "longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.text)
			if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Parse = %+v, %v; want ErrInvalidMessage mentioning %q", m, err, tt.reason)
			}
		})
	}
}

// FuzzParse: Parse never panics, and whatever it accepts, String
// reproduces byte for byte (so the signed bytes are exactly the fields the
// gateway checked), and parses again to the same message.
func FuzzParse(f *testing.F) {
	f.Add(eipExample)
	f.Add("https://" + eipExample)
	f.Add(join(base()))
	f.Add(join(append(insert(base(), 3, "statement", ""), "Expiration Time: 2026-01-02T03:04:05.5+02:00",
		"Not Before: 2026-01-02T03:04:05Z", "Request ID: 42", "Resources:", "- urn:x", "- https://[::1]:80/a?b#c")))
	f.Add(join(insert(base(), 3, "")))
	f.Fuzz(func(t *testing.T, text string) {
		m, err := Parse(text)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("error %v does not wrap ErrInvalidMessage", err)
			}
			return
		}
		if got := m.String(); got != text {
			t.Fatalf("round trip differs:\n%q\n%q", got, text)
		}
		again, err := Parse(m.String())
		if err != nil || !cmp.Equal(m, again) {
			t.Fatalf("reparse: %v", err)
		}
		if _, err := m.Account(); err != nil {
			t.Fatalf("accepted an address Account refuses: %v", err)
		}
	})
}
