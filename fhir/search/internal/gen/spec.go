package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// searchParameter is the part of an R4 SearchParameter the tables need.
type searchParameter struct {
	ID           string   `json:"id"`
	URL          string   `json:"url"`
	Code         string   `json:"code"`
	Base         []string `json:"base"`
	Type         string   `json:"type"`
	Expression   string   `json:"expression"`
	XPathUsage   string   `json:"xpathUsage"`
	Target       []string `json:"target"`
	Experimental bool     `json:"experimental"`
	Component    []struct {
		Definition string `json:"definition"`
		Expression string `json:"expression"`
	} `json:"component"`
}

type compartmentDefinition struct {
	Code     string `json:"code"`
	Resource []struct {
		Code  string   `json:"code"`
		Param []string `json:"param"`
	} `json:"resource"`
}

// param is one parameter as it applies to one base type.
type param struct {
	searchParameter
	expr string // the branches of Expression for this base
}

// spec is everything read from the definitions, checked.
type spec struct {
	params       map[string][]param // by base type, sorted by code
	types        []string           // every R4 resource type, sorted
	compartments map[string]map[string][]string
}

// notInCompartments lists the R4 resource types that neither compartment
// definition names: Parameters is an operation payload, never stored, so
// no compartment lists it, but it is one of R4's 146 resource types.
var notInCompartments = []string{"Parameters"}

// r4TypeCount is the number of concrete resource types in R4 (4.0.1).
const r4TypeCount = 146

func readSpec(dir string) (*spec, error) {
	var bundle struct {
		Entry []struct {
			Resource searchParameter `json:"resource"`
		} `json:"entry"`
	}
	if err := readJSON(filepath.Join(dir, "search-parameters.json"), &bundle); err != nil {
		return nil, err
	}
	s := &spec{params: map[string][]param{}, compartments: map[string]map[string][]string{}}
	byURL := map[string]searchParameter{}
	for _, e := range bundle.Entry {
		sp := e.Resource
		// Experimental definitions come from extension packages and the
		// SearchParameter example resource, not the core resources (several
		// have expressions for another type, or none); servers do not
		// support them by default.
		if sp.Experimental || len(sp.Base) == 0 {
			continue
		}
		byURL[sp.URL] = sp
		for _, base := range sp.Base {
			expr, err := branchesFor(sp.Expression, base, sp.Base)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sp.ID, err)
			}
			s.params[base] = append(s.params[base], param{sp, expr})
		}
	}
	for base, ps := range s.params {
		slices.SortFunc(ps, func(a, b param) int { return strings.Compare(a.Code, b.Code) })
		for i := 1; i < len(ps); i++ {
			if ps[i].Code == ps[i-1].Code {
				return nil, fmt.Errorf("%s has two parameters %q (%s, %s)", base, ps[i].Code, ps[i-1].ID, ps[i].ID)
			}
		}
	}
	for _, ps := range s.params {
		for _, p := range ps {
			for _, c := range p.Component {
				if _, ok := byURL[c.Definition]; !ok {
					return nil, fmt.Errorf("%s: component %s is not defined", p.ID, c.Definition)
				}
			}
		}
	}

	types := map[string]bool{}
	for base := range s.params {
		if base != "Resource" && base != "DomainResource" {
			types[base] = true
		}
	}
	for _, t := range notInCompartments {
		types[t] = true
	}
	for _, name := range []string{"patient", "practitioner"} {
		var cd compartmentDefinition
		if err := readJSON(filepath.Join(dir, "CompartmentDefinition-"+name+".json"), &cd); err != nil {
			return nil, err
		}
		members := map[string][]string{}
		for _, r := range cd.Resource {
			types[r.Code] = true
			var ps []string
			for _, code := range r.Param {
				// "{def}": the resource defining the compartment is in it
				// by identity, not through a parameter.
				if code == "{def}" {
					continue
				}
				if !s.hasParam(r.Code, code) {
					return nil, fmt.Errorf("compartment %s: %s has no parameter %q", cd.Code, r.Code, code)
				}
				ps = append(ps, code)
			}
			if len(ps) > 0 {
				members[r.Code] = ps
			}
		}
		s.compartments[cd.Code] = members
	}
	for t := range types {
		s.types = append(s.types, t)
	}
	slices.Sort(s.types)
	if len(s.types) != r4TypeCount {
		return nil, fmt.Errorf("found %d resource types, R4 has %d", len(s.types), r4TypeCount)
	}
	for base := range s.params {
		if _, ok := types[base]; !ok && base != "Resource" && base != "DomainResource" {
			return nil, fmt.Errorf("parameters for unknown type %s", base)
		}
	}
	return s, nil
}

func (s *spec) hasParam(typ, code string) bool {
	for _, base := range []string{typ, "Resource", "DomainResource"} {
		for _, p := range s.params[base] {
			if p.Code == code {
				return true
			}
		}
	}
	return false
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// branchesFor keeps the union branches of expr that start at base. A
// definition shared by several types ("AllergyIntolerance.patient |
// CarePlan.subject.where(resolve() is Patient) | ...") thus becomes the
// expression for one type. A branch without a type ("name | alias" in
// InsurancePlan-name) is relative to the resource, so it belongs to the
// only base there is. A branch rooted elsewhere than one of the
// definition's bases is an error: it would be silently dropped otherwise.
func branchesFor(expr, base string, bases []string) (string, error) {
	if expr == "" {
		return "", nil
	}
	var keep []string
	for _, b := range splitUnion(expr) {
		root := rootName(b)
		switch {
		case root == base, len(bases) == 1 && root != "" && root[0] >= 'a' && root[0] <= 'z':
			keep = append(keep, b)
		case !slices.Contains(bases, root):
			return "", fmt.Errorf("branch %q is rooted at %q, not at a base %v", b, root, bases)
		}
	}
	if len(keep) == 0 {
		return "", fmt.Errorf("no branch of %q applies to %s", expr, base)
	}
	return strings.Join(keep, " | "), nil
}

// splitUnion splits expr at the "|" operators outside parentheses and
// string literals.
func splitUnion(expr string) []string {
	var parts []string
	depth, start := 0, 0
	quote := byte(0)
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '`':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			parts = append(parts, strings.TrimSpace(expr[start:i]))
			start = i + 1
		}
	}
	return append(parts, strings.TrimSpace(expr[start:]))
}

// rootName is the first name of a branch: "(Observation.value as X).y"
// -> "Observation".
func rootName(b string) string {
	b = strings.TrimLeft(b, "( ")
	end := strings.IndexFunc(b, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
	if end < 0 {
		return b
	}
	return b[:end]
}
