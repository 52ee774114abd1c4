package fhir

import (
	"errors"
	"fmt"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

// Sentinel errors for the kinds of failure the model edge reports. The REST
// layer maps them to status codes.
var (
	// ErrInvalid: the content cannot be parsed or breaks a core FHIR rule
	// (400).
	ErrInvalid = errors.New("invalid resource")
	// ErrTooLarge: the content exceeds a size limit (413).
	ErrTooLarge = errors.New("content too large")
	// ErrBusinessRule: valid FHIR the server will not accept (422).
	ErrBusinessRule = errors.New("business rule violated")
)

// Issue is one OperationOutcome issue. Code is from the R4 IssueType value
// set (invalid, structure, required, value, invariant, security, login,
// forbidden, not-found, deleted, not-supported, conflict, duplicate,
// too-long, too-costly, processing, exception, ...).
type Issue struct {
	Severity    string // fatal | error | warning | information
	Code        string
	Diagnostics string
	// Expression holds FHIRPath expressions of the elements at fault.
	Expression []string
}

// Error is a failure with the OperationOutcome issues that explain it.
type Error struct {
	Kind   error // one of the sentinels above
	Issues []Issue
}

func (e *Error) Error() string {
	if len(e.Issues) == 0 {
		return e.Kind.Error()
	}
	i := e.Issues[0]
	if len(i.Expression) > 0 {
		return fmt.Sprintf("%s: %s: %s", e.Kind, i.Expression[0], i.Diagnostics)
	}
	return fmt.Sprintf("%s: %s", e.Kind, i.Diagnostics)
}

func (e *Error) Unwrap() error { return e.Kind }

// Errorf returns an *Error of kind with one error issue.
func Errorf(kind error, code, expression, format string, args ...any) *Error {
	iss := Issue{Severity: "error", Code: code, Diagnostics: fmt.Sprintf(format, args...)}
	if expression != "" {
		iss.Expression = []string{expression}
	}
	return &Error{Kind: kind, Issues: []Issue{iss}}
}

// OperationOutcome returns the JSON of an OperationOutcome with issues.
func OperationOutcome(issues ...Issue) []byte {
	return fhirjson.Canonical(OutcomeValue(issues...))
}

// OutcomeValue returns an OperationOutcome as a JSON tree.
func OutcomeValue(issues ...Issue) *fhirjson.Value {
	oo := &fhirjson.Value{Kind: fhirjson.Object}
	oo.Set("resourceType", fhirjson.Str("OperationOutcome"))
	list := fhirjson.Value{Kind: fhirjson.Array}
	for _, is := range issues {
		v := fhirjson.Value{Kind: fhirjson.Object}
		v.Set("severity", fhirjson.Str(is.Severity))
		v.Set("code", fhirjson.Str(is.Code))
		if is.Diagnostics != "" {
			v.Set("diagnostics", fhirjson.Str(is.Diagnostics))
		}
		if len(is.Expression) > 0 {
			ex := fhirjson.Value{Kind: fhirjson.Array}
			for _, e := range is.Expression {
				ex.Items = append(ex.Items, fhirjson.Str(e))
			}
			v.Set("expression", ex)
		}
		list.Items = append(list.Items, v)
	}
	if len(list.Items) == 0 {
		v := fhirjson.Value{Kind: fhirjson.Object}
		v.Set("severity", fhirjson.Str("information"))
		v.Set("code", fhirjson.Str("informational"))
		v.Set("diagnostics", fhirjson.Str("ok"))
		list.Items = append(list.Items, v)
	}
	oo.Set("issue", list)
	return oo
}
