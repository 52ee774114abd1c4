package fhirpath

import "strings"

// ParseReference reads a literal reference (Reference.reference, or a
// canonical/uri pointing at a resource) and returns the target type and id
// when the reference names them, and the form a search index keeps: "Type/id"
// for a relative reference, the URL without "/_history/v" (and without a
// canonical's "|version") for an absolute one. Local ("#id") and urn:
// references name no type and have no index form. An unrecognised
// relative string is returned as written, with no type.
func ParseReference(ref string) (typ, id, norm string) {
	if ref == "" || ref[0] == '#' || strings.HasPrefix(ref, "urn:") {
		return "", "", ""
	}
	if i := strings.IndexByte(ref, '|'); i >= 0 {
		ref = ref[:i]
	}
	base := ref
	if i := strings.Index(base, "/_history/"); i >= 0 {
		base = base[:i]
	}
	absolute := strings.Contains(base, "://")
	j := strings.LastIndexByte(base, '/')
	if j <= 0 {
		return "", "", ref
	}
	id = base[j+1:]
	k := strings.LastIndexByte(base[:j], '/')
	typ = base[k+1 : j]
	if !isTypeName(typ) || id == "" || absolute && k <= strings.Index(base, "://")+2 {
		if absolute {
			return "", "", base
		}
		return "", "", ref
	}
	if absolute {
		return typ, id, base
	}
	if k >= 0 {
		// "a/Patient/1": relative, but not in the Type/id form FHIR defines.
		return "", "", ref
	}
	return typ, id, base
}

// isTypeName reports whether s looks like a resource type name.
func isTypeName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
