// Package policy decides whether a principal may perform an interaction.
// This file: SMART on FHIR scopes (v2 syntax, v1 accepted).
package policy

import (
	"fmt"
	"strings"
)

// Perm is a set of SMART v2 permissions: c r u d s.
type Perm uint8

// The SMART v2 permissions.
const (
	PermCreate Perm = 1 << iota
	PermRead
	PermUpdate
	PermDelete
	PermSearch
)

const permAll = PermCreate | PermRead | PermUpdate | PermDelete | PermSearch

func (p Perm) String() string {
	var b strings.Builder
	for i, c := range "cruds" {
		if p&(1<<i) != 0 {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// Scope is one clinical scope: context/type.perms.
type Scope struct {
	Context string // "patient", "user" or "system"
	Type    string // a resource type or "*"
	Perms   Perm
}

func (s Scope) String() string { return s.Context + "/" + s.Type + "." + s.Perms.String() }

// Scopes is a granted set of scopes plus the non-clinical ones (openid,
// fhirUser, launch/patient, offline_access ...), which are kept verbatim.
type Scopes struct {
	Clinical []Scope
	Other    []string
}

// ParseScopes parses a space-separated scope string. Clinical scopes in
// SMART v2 form (system/Patient.rs, patient/*.cruds) or v1 form
// (system/*.read, user/Observation.write, patient/*.*) are accepted.
// Scopes with v2 query restrictions ("?category=...") are refused rather
// than widened, as are malformed ones.
func ParseScopes(s string) (Scopes, error) {
	var out Scopes
	for _, f := range strings.Fields(s) {
		ctx, rest, ok := strings.Cut(f, "/")
		if !ok || (ctx != "patient" && ctx != "user" && ctx != "system") {
			// The gateway's own scopes (fhirgate/registration.admin) are
			// not clinical: kept verbatim like launch/ and openid.
			if strings.Contains(f, "/") && (strings.Contains(f, ".") || strings.Contains(f, "*")) && !strings.HasPrefix(f, "launch/") && ctx != Gateway {
				return Scopes{}, fmt.Errorf("scope %q: unknown context", f)
			}
			out.Other = append(out.Other, f)
			continue
		}
		typ, perms, ok := strings.Cut(rest, ".")
		if !ok || typ == "" {
			return Scopes{}, fmt.Errorf("scope %q: want context/Type.permissions", f)
		}
		if strings.Contains(perms, "?") {
			return Scopes{}, fmt.Errorf("scope %q: query-restricted scopes are not supported", f)
		}
		p, err := parsePerms(perms)
		if err != nil {
			return Scopes{}, fmt.Errorf("scope %q: %w", f, err)
		}
		out.Clinical = append(out.Clinical, Scope{Context: ctx, Type: typ, Perms: p})
	}
	return out, nil
}

func parsePerms(s string) (Perm, error) {
	switch s {
	case "read":
		return PermRead | PermSearch, nil
	case "write":
		return PermCreate | PermUpdate | PermDelete, nil
	case "*":
		return permAll, nil
	}
	if s == "" {
		return 0, fmt.Errorf("no permissions")
	}
	var p Perm
	last := -1
	for _, c := range s {
		i := strings.IndexRune("cruds", c)
		if i < 0 {
			return 0, fmt.Errorf("unknown permission %q", c)
		}
		// SMART v2 requires the order c r u d s, each at most once.
		if i <= last {
			return 0, fmt.Errorf("permissions must be in the order cruds")
		}
		last = i
		p |= 1 << i
	}
	return p, nil
}

// Allows reports whether any scope of the given context grants perm on typ.
func (s Scopes) Allows(context, typ string, perm Perm) bool {
	for _, sc := range s.Clinical {
		if sc.Context == context && (sc.Type == "*" || sc.Type == typ) && sc.Perms&perm == perm {
			return true
		}
	}
	return false
}

// String renders the scopes in SMART v2 syntax.
func (s Scopes) String() string {
	parts := make([]string, 0, len(s.Clinical)+len(s.Other))
	for _, sc := range s.Clinical {
		parts = append(parts, sc.String())
	}
	parts = append(parts, s.Other...)
	return strings.Join(parts, " ")
}
