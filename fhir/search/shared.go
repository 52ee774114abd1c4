package search

import "strings"

// sharedRef is a reference parameter that is another one restricted to a
// target type: patient = subject.where(resolve() is Patient).
type sharedRef struct{ base, target string }

// sharedRefs holds, per type, the parameters whose expression is exactly
// another reference parameter's followed by .where(resolve() is T).
var sharedRefs = func() map[string]map[string]sharedRef {
	m := map[string]map[string]sharedRef{}
	for typ, ps := range params {
		byExpr := map[string]string{}
		for _, p := range ps {
			if p.Type == TypeReference && p.Expression != "" {
				if _, dup := byExpr[p.Expression]; !dup {
					byExpr[p.Expression] = p.Code
				}
			}
		}
		for _, p := range ps {
			if p.Type != TypeReference {
				continue
			}
			rest, ok := strings.CutSuffix(p.Expression, ")")
			if !ok {
				continue
			}
			i := strings.LastIndex(rest, ".where(resolve() is ")
			if i < 0 {
				continue
			}
			target := rest[i+len(".where(resolve() is "):]
			base, ok := byExpr[rest[:i]]
			if !ok || !IsResourceType(target) {
				continue
			}
			if m[typ] == nil {
				m[typ] = map[string]sharedRef{}
			}
			m[typ][p.Code] = sharedRef{base, target}
		}
	}
	return m
}()

// Shared is the store.SharedFunc of the R4 parameter table: a parameter
// such as DiagnosticReport's patient (subject.where(resolve() is Patient))
// holds exactly the base parameter's references to the target type, so
// the store keeps those as the base parameter's keys only.
func Shared(typ, param string) (base, target string, ok bool) {
	s, ok := sharedRefs[typ][param]
	return s.base, s.target, ok
}
