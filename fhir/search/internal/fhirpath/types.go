package fhirpath

import (
	"strings"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

// choiceTypes maps the suffix a choice element value[x] takes in JSON
// (valueQuantity, valueDateTime, ...) to the FHIR type name. Only these
// suffixes make a key a choice match, so "valueSet" is never read as
// value[x] of a type "Set".
var choiceTypes = map[string]string{
	"Base64Binary": "base64Binary", "Boolean": "boolean", "Canonical": "canonical",
	"Code": "code", "Date": "date", "DateTime": "dateTime", "Decimal": "decimal",
	"Id": "id", "Instant": "instant", "Integer": "integer", "Markdown": "markdown",
	"Oid": "oid", "PositiveInt": "positiveInt", "String": "string", "Time": "time",
	"UnsignedInt": "unsignedInt", "Uri": "uri", "Url": "url", "Uuid": "uuid",
	"Address": "Address", "Age": "Age", "Annotation": "Annotation", "Attachment": "Attachment",
	"CodeableConcept": "CodeableConcept", "Coding": "Coding", "ContactPoint": "ContactPoint",
	"Count": "Count", "Distance": "Distance", "Duration": "Duration", "HumanName": "HumanName",
	"Identifier": "Identifier", "Money": "Money", "Period": "Period", "Quantity": "Quantity",
	"Range": "Range", "Ratio": "Ratio", "Reference": "Reference", "SampledData": "SampledData",
	"Signature": "Signature", "Timing": "Timing", "ContactDetail": "ContactDetail",
	"Contributor": "Contributor", "DataRequirement": "DataRequirement", "Expression": "Expression",
	"ParameterDefinition": "ParameterDefinition", "RelatedArtifact": "RelatedArtifact",
	"TriggerDefinition": "TriggerDefinition", "UsageContext": "UsageContext", "Dosage": "Dosage",
	"Meta": "Meta",
}

// parentType is the FHIR type hierarchy below the types a search
// expression names, so "as Quantity" accepts an Age and "as string" a code.
var parentType = map[string]string{
	"Age": "Quantity", "Count": "Quantity", "Distance": "Quantity", "Duration": "Quantity",
	"MoneyQuantity": "Quantity", "SimpleQuantity": "Quantity",
	"code": "string", "id": "string", "markdown": "string",
	"canonical": "uri", "url": "uri", "uuid": "uri", "oid": "uri",
	"positiveInt": "integer", "unsignedInt": "integer",
}

// normType strips a FHIR. or System. namespace and fixes the case of the
// first letter for primitive names written capitalised (R4 has
// "value.as(DateTime)"); System.String is FHIR string for our purposes.
func normType(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	if t, ok := choiceTypes[name]; ok {
		return t
	}
	return name
}

// isType reports whether a value of FHIR type have is a want.
func isType(have, want string) bool {
	for have != "" {
		if have == want {
			return true
		}
		have = parentType[have]
	}
	return false
}

// itemIs reports whether it is of type want. Without a known type it
// judges by the JSON shape: primitives by JSON kind; a complex type cannot
// be told from the shape alone, so any object passes (lenient: a search
// index may hold an extra value, never miss one).
func itemIs(it Item, want string) bool {
	if it.Type != "" {
		if it.Resource {
			return it.Type == want || want == "Resource" || want == "DomainResource"
		}
		return isType(it.Type, want)
	}
	if it.V == nil {
		return false
	}
	switch it.V.Kind {
	case fhirjson.String:
		switch want {
		case "string", "code", "id", "markdown", "uri", "url", "canonical", "oid", "uuid",
			"date", "dateTime", "instant", "time", "base64Binary":
			return true
		}
	case fhirjson.Bool:
		return want == "boolean"
	case fhirjson.Number:
		switch want {
		case "integer", "decimal", "positiveInt", "unsignedInt":
			return true
		}
	case fhirjson.Object:
		if rt := it.V.GetString("resourceType"); rt != "" {
			return rt == want || want == "Resource" || want == "DomainResource"
		}
		return want != "" && want[0] >= 'A' && want[0] <= 'Z'
	}
	return false
}
