package siwe

import (
	"net/netip"
	"strings"
)

// RFC 3986 syntax checks, character by character as in its Appendix A.
// net/url is deliberately not used: it accepts much that the grammar does
// not (spaces, raw non-ASCII, bare "%"), and a strict message parser must
// not.

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
func isUnreserved(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

// gen-delims = ":" / "/" / "?" / "#" / "[" / "]" / "@"
func isGenDelim(c byte) bool { return strings.IndexByte(":/?#[]@", c) >= 0 }

// sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
func isSubDelim(c byte) bool { return strings.IndexByte("!$&'()*+,;=", c) >= 0 }

// validChars reports whether s consists of pct-encoded triplets and bytes
// for which ok is true.
func validChars(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
			continue
		}
		if !ok(c) {
			return false
		}
	}
	return true
}

// pchar = unreserved / pct-encoded / sub-delims / ":" / "@"
func isPchar(c byte) bool { return isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' }

func validPchars(s string) bool { return validChars(s, isPchar) }

// scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
func validScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// validURI: URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ]
func validURI(s string) bool {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !validScheme(scheme) {
		return false
	}
	// query and fragment = *( pchar / "/" / "?" ); the first "#" starts
	// the fragment, the first "?" before it the query.
	queryChar := func(c byte) bool { return isPchar(c) || c == '/' || c == '?' }
	if h, frag, ok := strings.Cut(rest, "#"); ok {
		if !validChars(frag, queryChar) {
			return false
		}
		rest = h
	}
	if h, q, ok := strings.Cut(rest, "?"); ok {
		if !validChars(q, queryChar) {
			return false
		}
		rest = h
	}
	// hier-part = "//" authority path-abempty / path-absolute / path-rootless / path-empty
	pathChar := func(c byte) bool { return isPchar(c) || c == '/' }
	if after, ok := strings.CutPrefix(rest, "//"); ok {
		auth, path := after, ""
		if i := strings.IndexByte(after, '/'); i >= 0 {
			auth, path = after[:i], after[i:]
		}
		return validAuthority(auth) && validChars(path, pathChar)
	}
	// path-absolute ("/" not followed by "/", handled above), path-rootless
	// (a first segment that is not empty, as it then starts with a pchar)
	// and path-empty are all pchar and "/".
	return validChars(rest, pathChar)
}

// validAuthority: authority = [ userinfo "@" ] host [ ":" port ]
func validAuthority(a string) bool {
	if i := strings.IndexByte(a, '@'); i >= 0 {
		// userinfo = *( unreserved / pct-encoded / sub-delims / ":" )
		if !validChars(a[:i], func(c byte) bool { return isUnreserved(c) || isSubDelim(c) || c == ':' }) {
			return false
		}
		a = a[i+1:]
	}
	var port string
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 || !validIPLiteral(a[1:end]) {
			return false
		}
		rest := a[end+1:]
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return false
			}
			port = p
		}
	} else {
		host, p, hasPort := strings.Cut(a, ":")
		// reg-name = *( unreserved / pct-encoded / sub-delims ); an
		// IPv4address is a reg-name as far as characters go.
		if !validChars(host, func(c byte) bool { return isUnreserved(c) || isSubDelim(c) }) {
			return false
		}
		if hasPort {
			port = p
		}
	}
	// port = *DIGIT
	for i := 0; i < len(port); i++ {
		if !isDigit(port[i]) {
			return false
		}
	}
	return true
}

// validIPLiteral: IPv6address / IPvFuture (inside the brackets).
func validIPLiteral(s string) bool {
	if len(s) > 0 && (s[0] == 'v' || s[0] == 'V') {
		// IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
		ver, rest, ok := strings.Cut(s[1:], ".")
		if !ok || ver == "" || rest == "" {
			return false
		}
		for i := 0; i < len(ver); i++ {
			if !isHex(ver[i]) {
				return false
			}
		}
		for i := 0; i < len(rest); i++ {
			if c := rest[i]; !isUnreserved(c) && !isSubDelim(c) && c != ':' {
				return false
			}
		}
		return true
	}
	if strings.IndexByte(s, '%') >= 0 { // zones are RFC 6874, not RFC 3986
		return false
	}
	ip, err := netip.ParseAddr(s)
	return err == nil && ip.Is6()
}

// hostOf returns the host of a valid authority, without userinfo and port.
func hostOf(a string) string {
	if i := strings.IndexByte(a, '@'); i >= 0 {
		a = a[i+1:]
	}
	if strings.HasPrefix(a, "[") {
		return a[:strings.IndexByte(a, ']')+1]
	}
	h, _, _ := strings.Cut(a, ":")
	return h
}

// origin is a URI's scheme and authority, normalized for comparison.
type origin struct {
	scheme, host, port string
}

// originOf returns the origin of an RFC 3986-valid URI that has an
// authority without userinfo; ok is false otherwise. Scheme and host are
// lowercased; the scheme's default port (80 for http, 443 for https) is
// dropped.
func originOf(uri string) (origin, bool) {
	scheme, rest, _ := strings.Cut(uri, ":")
	rest, ok := strings.CutPrefix(rest, "//")
	if !ok {
		return origin{}, false
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if strings.IndexByte(rest, '@') >= 0 {
		return origin{}, false
	}
	o := origin{scheme: strings.ToLower(scheme), host: strings.ToLower(hostOf(rest))}
	if o.host == "" {
		return origin{}, false
	}
	if p, ok := strings.CutPrefix(rest[len(o.host):], ":"); ok {
		o.port = strings.TrimLeft(p, "0")
		if o.port == "" && p != "" {
			o.port = "0"
		}
	}
	if (o.scheme == "https" && o.port == "443") || (o.scheme == "http" && o.port == "80") {
		o.port = ""
	}
	return o, true
}

// parseOrigin parses a configured origin: scheme "://" host [":" port],
// optionally with a trailing "/", nothing else.
func parseOrigin(s string) (origin, bool) {
	t := strings.TrimSuffix(s, "/")
	scheme, rest, ok := strings.Cut(t, "://")
	if !ok || !validScheme(scheme) || !validAuthority(rest) || strings.ContainsAny(rest, "/?#@") {
		return origin{}, false
	}
	return originOf(t)
}
