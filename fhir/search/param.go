package search

import (
	"slices"
	"strings"
)

// ParamType is a search parameter type.
type ParamType uint8

// The R4 search parameter types.
const (
	TypeNumber ParamType = iota + 1
	TypeDate
	TypeString
	TypeToken
	TypeReference
	TypeComposite
	TypeQuantity
	TypeURI
	TypeSpecial
)

var typeNames = [...]string{"", "number", "date", "string", "token", "reference", "composite", "quantity", "uri", "special"}

func (t ParamType) String() string {
	if int(t) < len(typeNames) && t != 0 {
		return typeNames[t]
	}
	return "ParamType(" + string(rune('0'+t)) + ")"
}

// Param is one search parameter as it applies to one resource type.
type Param struct {
	Code string
	Type ParamType
	// Expression is the FHIRPath selecting the values, for this resource
	// type only. Empty for _content, _text, _query and _filter, which the
	// query layer implements (or refuses) without an index.
	Expression string
	// Targets are the resource types a reference parameter may point to.
	Targets []string
	// Components are the parts of a composite parameter.
	Components []Component
	// Phonetic marks a string parameter matched by sound (xpathUsage
	// "phonetic"); its index values are Phonetic codes.
	Phonetic bool
	// URL is the canonical URL of the SearchParameter definition.
	URL string
}

// Component is one part of a composite parameter.
type Component struct {
	Definition string    // URL of the component's SearchParameter
	Type       ParamType // that parameter's type
	Expression string    // FHIRPath relative to each composite value
}

// nonDomainTypes are the resource types that are not DomainResources, so
// do not inherit DomainResource's parameters (_text).
var nonDomainTypes = []string{"Binary", "Bundle", "Parameters"}

// params holds every type's parameters, its own and inherited, by code.
var params = func() map[string][]Param {
	m := make(map[string][]Param, len(resourceTypes))
	for _, t := range resourceTypes {
		ps := slices.Concat(definitions[t], definitions["Resource"])
		if !slices.Contains(nonDomainTypes, t) {
			ps = append(ps, definitions["DomainResource"]...)
		}
		slices.SortFunc(ps, func(a, b Param) int { return strings.Compare(a.Code, b.Code) })
		m[t] = ps
	}
	return m
}()

// Params returns the search parameters of resourceType sorted by code, nil
// for an unknown type. The slice is shared: do not modify it.
func Params(resourceType string) []Param { return params[resourceType] }

// Lookup returns parameter code of resourceType.
func Lookup(resourceType, code string) (*Param, bool) {
	ps := params[resourceType]
	i, ok := slices.BinarySearchFunc(ps, code, func(p Param, c string) int { return strings.Compare(p.Code, c) })
	if !ok {
		return nil, false
	}
	return &ps[i], true
}

// ResourceTypes returns every R4 resource type, sorted.
func ResourceTypes() []string { return slices.Clone(resourceTypes) }

// IsResourceType reports whether name is an R4 resource type.
func IsResourceType(name string) bool {
	_, ok := slices.BinarySearch(resourceTypes, name)
	return ok
}
