package fhir

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

// Resource is a parsed, validated resource.
type Resource struct {
	Type string
	ID   string // "" when the body has no id
	Root fhirjson.Value
}

// Limits bound what one stored resource body may contain when it is read
// back: as lenient as any limit a body was ever accepted under, so that
// every stored version stays readable.
var Limits = fhirjson.Limits{MaxDepth: 100, MaxValues: 1 << 20}

// RequestLimits bound what a resource (or Bundle) sent to the gateway may
// contain (docs/limits.md). The largest HL7 R4 examples nest 16 levels
// deep, hold 15,785 values and 161 items in their longest array; a
// transaction Bundle holds up to 10,000 entries. A document over a limit
// is refused before it is built, with the path of the element at fault.
var RequestLimits = fhirjson.Limits{
	MaxDepth:  MaxDepth,
	MaxValues: 1 << 20,
	MaxItems:  MaxItems,
}

const (
	// MaxDepth bounds the nesting of arrays and objects in a request body.
	MaxDepth = 64
	// MaxItems bounds the items of any one array (Patient.name,
	// Bundle.entry, Group.member, ...) and the members of any one object.
	MaxItems = 10_000
)

var unmarshaller = func() *jsonformat.Unmarshaller {
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		panic(err)
	}
	return u
}()

// Parse parses and validates one resource: strict JSON (valid UTF-8, no
// duplicate keys, bounded depth and size), a known resourceType, the R4
// structure and datatypes (jsonformat, which vouch spares the resources
// whose acceptance it decides exactly), and the core JSON rules jsonformat
// does not check (no empty or null values, safe narrative, Bundle entry
// rules). Errors are *Error values naming the element at fault.
func Parse(body []byte) (*Resource, error) {
	root, err := fhirjson.Parse(body, RequestLimits)
	if err != nil {
		return nil, jsonError(err)
	}
	return FromTree(root, body)
}

// jsonError turns a fhirjson error into an *Error.
func jsonError(err error) error {
	je, ok := err.(*fhirjson.Error)
	if !ok {
		return Errorf(ErrInvalid, "structure", "", "%v", err)
	}
	kind := ErrInvalid
	if je.TooLarge && strings.Contains(je.Msg, "values") {
		kind = ErrTooLarge
	}
	if je.TooLarge {
		// "more than 10000 items", "nested deeper than 64 levels".
		return Errorf(kind, "too-costly", je.Path, "%s: over the gateway's limit (docs/limits.md)", je.Msg)
	}
	return Errorf(kind, "structure", je.Path, "invalid JSON at byte %d: %s", je.Offset, je.Msg)
}

// FromTree is Parse for a body already parsed into root (strictly, with
// Limits): it skips parsing body again.
func FromTree(root fhirjson.Value, body []byte) (*Resource, error) {
	if root.Kind != fhirjson.Object {
		return nil, Errorf(ErrInvalid, "structure", "", "a resource must be a JSON object, not %s", root.Kind)
	}
	rt := root.Get("resourceType")
	if rt == nil {
		return nil, Errorf(ErrInvalid, "required", "resourceType", "missing resourceType")
	}
	if rt.Kind != fhirjson.String || !IsResourceType(rt.Str) {
		return nil, Errorf(ErrInvalid, "not-supported", "resourceType", "resourceType is not an R4 resource type")
	}
	r := &Resource{Type: rt.Str, Root: root}
	if id := root.Get("id"); id != nil && id.Kind == fhirjson.String {
		r.ID = id.Str
	}
	if issues := checkRules(&r.Root, r.Type); len(issues) > 0 {
		return nil, &Error{Kind: ErrInvalid, Issues: issues}
	}
	if vouch(&r.Root, r.Type, body) {
		return r, nil
	}
	if err := validate(body, &r.Root); err != nil {
		return nil, err
	}
	return r, nil
}

// validate runs jsonformat over body, whose tree is root.
func validate(body []byte, root *fhirjson.Value) error {
	if _, err := unmarshaller.Unmarshal(body); err != nil {
		return validationError(err)
	}
	return nil
}

var errorAt = regexp.MustCompile(`^error at "([^"]*)": (.*)$`)

// typeMarker matches the resource type jsonformat inserts in paths of
// contained resources ("Bundle.entry[0].resource.Patient.gender").
var typeMarker = regexp.MustCompile(`\.([A-Z][A-Za-z]+)(\.|$)`)

// validationError maps jsonformat's error text (one "error at PATH: what"
// line per problem; the values themselves are never echoed) to issues.
func validationError(err error) *Error {
	e := &Error{Kind: ErrInvalid}
	for _, line := range strings.Split(err.Error(), "\n") {
		iss := Issue{Severity: "error", Code: "structure", Diagnostics: line}
		if m := errorAt.FindStringSubmatch(line); m != nil {
			path := typeMarker.ReplaceAllStringFunc(m[1], func(s string) string {
				if strings.HasSuffix(s, ".") {
					return "."
				}
				return ""
			})
			iss.Expression = []string{path}
			iss.Diagnostics = m[2]
			switch {
			case strings.Contains(m[2], "missing required field"):
				iss.Code = "required"
			case strings.Contains(m[2], "unknown field"):
				iss.Code = "structure"
				iss.Diagnostics = "unknown element"
			default:
				iss.Code = "value"
			}
		}
		e.Issues = append(e.Issues, iss)
	}
	return e
}

// FormatInstant renders t as a FHIR instant with microsecond precision,
// always in UTC, so that instants sort as strings.
func FormatInstant(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
}

// Stamp sets the server-assigned id, meta.versionId and meta.lastUpdated
// (keeping the client's other meta elements) and returns the canonical
// bytes to store. It may be called again with new values (a retried
// update).
func (r *Resource) Stamp(id string, vid uint64, lastUpdated time.Time) []byte {
	r.ID = id
	r.Root.Set("id", fhirjson.Str(id))
	meta := r.Root.Get("meta")
	if meta == nil || meta.Kind != fhirjson.Object {
		r.Root.Set("meta", fhirjson.Value{Kind: fhirjson.Object})
		meta = r.Root.Get("meta")
	}
	meta.Set("versionId", fhirjson.Str(strconv.FormatUint(vid, 10)))
	meta.Set("lastUpdated", fhirjson.Str(FormatInstant(lastUpdated)))
	return fhirjson.Canonical(&r.Root)
}
