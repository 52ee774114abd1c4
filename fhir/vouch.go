package fhir

import (
	"bytes"
	"encoding/base64"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	apb "github.com/google/fhir/go/proto/google/fhir/proto/annotations_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

// Validation has one authority: jsonformat, google/fhir's R4 unmarshaller
// and validator. It is also most of the cost of a write (~150 µs for a
// Patient: it decodes the body again, builds protos by reflection and
// walks them), 40 % of the gateway's CPU during a transaction load.
//
// vouch walks the tree the gateway has already parsed, against the same
// protos and their annotations (value regexes, required elements, bound
// codes, allowed reference targets), and vouches for a resource only when
// every element is of a shape whose acceptance by jsonformat it decides
// exactly: the shapes EHR data is made of. Anything else (extensions on
// primitives, nulls in arrays, a reference to an unknown type, base64 in a
// body with escapes, a code it does not know...) it leaves to jsonformat,
// which then decides and words the errors. vouch never rejects, so what is
// accepted and every error message are as before; only the cost changes.
// TestVouchOnlyWhatJsonformatAccepts and FuzzVouch hold it to that.
func vouch(root *fhirjson.Value, typ string, body []byte) bool {
	ok, _ := vouchWhy(root, typ, body)
	return ok
}

// vouchWhy is vouch, also saying where it gave up (for tests).
func vouchWhy(root *fhirjson.Value, typ string, body []byte) (bool, string) {
	md := resourceMsgs()[typ]
	if md == nil {
		return false, "resourceType"
	}
	v := voucher{altEscapes: altEscapes(body)}
	return v.message(root, md, true), v.why
}

// altEscapes reports whether body has the JSON escapes that can stand for
// letters, digits, '+', '/' or '=' (\/ and \uXXXX). jsonformat decodes
// base64 from the raw text, so a base64 value written with them would be
// refused there while its decoded text is fine.
func altEscapes(body []byte) bool {
	return bytes.Contains(body, []byte(`\/`)) || bytes.Contains(body, []byte(`\u`))
}

type voucher struct {
	altEscapes bool   // see altEscapes
	why        string // the element vouch left to jsonformat (for tests)
}

// no records where vouch gave up.
func (v *voucher) no(at string) bool {
	if v.why == "" {
		v.why = at
	}
	return false
}

func (v *voucher) message(obj *fhirjson.Value, md protoreflect.MessageDescriptor, isResource bool) bool {
	if obj.Kind != fhirjson.Object {
		return false
	}
	info := vouchInfo(md)
	if info.reference {
		return v.reference(obj, info)
	}
	els := elements(md)
	var choices [4]protoreflect.FieldDescriptor // choice elements seen: one value each
	nc := 0
	for i := range obj.Members {
		m := &obj.Members[i]
		if isResource && m.Key == "resourceType" {
			continue
		}
		el, ok := els[m.Key]
		if !ok { // also every "_x": extensions of primitives go to jsonformat
			return v.no(m.Key)
		}
		if el.choice != nil {
			for _, c := range choices[:nc] {
				if c == el.choice {
					return v.no(m.Key) // two values for one choice element
				}
			}
			if nc == len(choices) {
				return v.no(m.Key)
			}
			choices[nc] = el.choice
			nc++
		}
		if !v.element(&m.Value, el) {
			return v.no(m.Key)
		}
	}
	for _, keys := range info.required {
		found := false
		for _, k := range keys {
			if obj.Get(k) != nil {
				found = true
				break
			}
		}
		if !found {
			return v.no("required " + strings.Join(keys, "|") + " of " + string(md.Name()))
		}
	}
	return true
}

func (v *voucher) element(val *fhirjson.Value, el element) bool {
	if !el.repeated {
		return v.single(val, el)
	}
	if val.Kind != fhirjson.Array || len(val.Items) == 0 {
		return false
	}
	for i := range val.Items {
		if !v.single(&val.Items[i], el) {
			return false
		}
	}
	return true
}

func (v *voucher) single(val *fhirjson.Value, el element) bool {
	switch {
	case el.resource:
		if val.Kind != fhirjson.Object {
			return false
		}
		md := resourceMsgs()[val.GetString("resourceType")]
		return md != nil && v.message(val, md, true)
	case el.msg == nil:
		return false
	}
	info := vouchInfo(el.msg)
	if info.prim == notPrimitive {
		if info.reference && !v.referenceTarget(val, el.field) {
			return v.no("reference target")
		}
		return v.message(val, el.msg, false)
	}
	if !v.primitive(val, info) {
		return v.no("value of " + string(el.msg.Name()) + ": " + val.Kind.String())
	}
	return true
}

// reference vouches for a Reference: jsonformat turns "Type/id" into a
// typed id, which must then be a type the element allows.
func (v *voucher) reference(obj *fhirjson.Value, info *vinfo) bool {
	els := elements(info.md)
	for i := range obj.Members {
		m := &obj.Members[i]
		switch m.Key {
		case "reference":
			if m.Value.Kind != fhirjson.String || !validString(m.Value.Str) {
				return false
			}
		case "type", "identifier", "display", "id", "extension":
			if !v.element(&m.Value, els[m.Key]) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// referenceTarget checks the target type of a relative reference against
// the types the element (field) allows.
func (v *voucher) referenceTarget(val *fhirjson.Value, field protoreflect.FieldDescriptor) bool {
	ref := val.GetString("reference")
	parts := strings.Split(ref, "/")
	if !(len(parts) == 2 || len(parts) == 4 && parts[2] == "_history") {
		return true // absolute, urn:uuid:, #fragment: kept as a URI
	}
	if !refTypes()[parts[0]] {
		return false // not an R4 type jsonformat types references to
	}
	if field == nil {
		return false
	}
	allowed := proto.GetExtension(field.Options(), apb.E_ValidReferenceType).([]string)
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		if a == parts[0] || a == "Resource" {
			return true
		}
	}
	return false
}

// refTypes are the resource types a Reference has a typed id field for
// (Patient → patient_id).
var refTypes = sync.OnceValue(func() map[string]bool {
	fields := (&dpb.Reference{}).ProtoReflect().Descriptor().Fields()
	m := map[string]bool{}
	for typ := range resourceMsgs() {
		var b strings.Builder
		for i, r := range typ {
			if r >= 'A' && r <= 'Z' {
				if i > 0 {
					b.WriteByte('_')
				}
				r += 'a' - 'A'
			}
			b.WriteRune(r)
		}
		if fields.ByName(protoreflect.Name(b.String()+"_id")) != nil {
			m[typ] = true
		}
	}
	return m
})

func (v *voucher) primitive(val *fhirjson.Value, info *vinfo) bool {
	switch info.prim {
	case primBoolean:
		return val.Kind == fhirjson.Bool
	case primInteger:
		return val.Kind == fhirjson.Number && integerLiteral(val.Str, math.MinInt32, math.MaxInt32)
	case primUnsignedInt:
		return val.Kind == fhirjson.Number && integerLiteral(val.Str, 0, math.MaxInt32)
	case primPositiveInt:
		return val.Kind == fhirjson.Number && integerLiteral(val.Str, 1, math.MaxInt32)
	case primDecimal:
		return val.Kind == fhirjson.Number && info.regex.MatchString(val.Str)
	}
	if val.Kind != fhirjson.String {
		return false
	}
	s := val.Str
	switch info.prim {
	case primString:
		return validString(s)
	case primText:
		return true
	case primRegex:
		return info.regex.MatchString(s)
	case primURI:
		_, err := url.Parse(s)
		return err == nil
	case primDate:
		return dateForm(s, false)
	case primDateTime:
		return dateForm(s, true)
	case primInstant:
		return len(s) > 10 && dateForm(s, true)
	case primTime:
		return timeForm(s)
	case primBase64:
		// Only the base64 alphabet: the decoder would skip CR and LF, which
		// jsonformat sees as the escapes \r and \n.
		if v.altEscapes || !base64Alphabet(s) {
			return false
		}
		_, err := base64.StdEncoding.DecodeString(s)
		return err == nil
	case primCode:
		return info.codes[s]
	}
	return false
}

func base64Alphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

// validString: at most 1 MiB, no control characters but tab, CR and LF.
func validString(s string) bool {
	if len(s) > 1<<20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// integerLiteral: a plain JSON integer (no sign but a minus, no leading
// zeros, no fraction or exponent) within [lo, hi].
func integerLiteral(s string, lo, hi int64) bool {
	d := strings.TrimPrefix(s, "-")
	if d == "" || d[0] == '0' && (len(d) > 1 || len(s) > 1) {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n >= lo && n <= hi
}

// dateForm accepts YYYY, YYYY-MM, YYYY-MM-DD with a real day and, when
// withTime, YYYY-MM-DDThh:mm:ss[.f{1,9}](Z|±hh:mm) with an offset of at
// most 14:00: the forms FHIR defines for date, dateTime and instant.
func dateForm(s string, withTime bool) bool {
	if len(s) < 4 || !digits(s[:4]) {
		return false
	}
	year, _ := strconv.Atoi(s[:4])
	switch {
	case len(s) == 4:
		return true
	case len(s) == 7:
		return s[4] == '-' && twoDigits(s[5:7], 1, 12)
	case len(s) < 10 || s[4] != '-' || s[7] != '-' || !twoDigits(s[5:7], 1, 12):
		return false
	}
	month, _ := strconv.Atoi(s[5:7])
	if !twoDigits(s[8:10], 1, daysIn(year, month)) {
		return false
	}
	if len(s) == 10 {
		return true
	}
	if !withTime || len(s) < 20 || s[10] != 'T' || !timeForm(s[11:19]) {
		return false
	}
	rest := s[19:]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return false
		}
		rest = rest[n:]
	}
	switch {
	case rest == "Z":
		return true
	case len(rest) != 6 || rest[0] != '+' && rest[0] != '-' || rest[3] != ':':
		return false
	case rest[1:] == "14:00":
		return true
	}
	return twoDigits(rest[1:3], 0, 13) && twoDigits(rest[4:6], 0, 59)
}

// timeForm accepts hh:mm:ss[.f{1,9}].
func timeForm(s string) bool {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' || !twoDigits(s[0:2], 0, 23) || !twoDigits(s[3:5], 0, 59) || !twoDigits(s[6:8], 0, 59) {
		return false
	}
	if len(s) == 8 {
		return true
	}
	return s[8] == '.' && len(s) > 9 && len(s) <= 18 && digits(s[9:])
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

func twoDigits(s string, lo, hi int) bool {
	if len(s) != 2 || !digits(s) {
		return false
	}
	n := int(s[0]-'0')*10 + int(s[1]-'0')
	return n >= lo && n <= hi
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

type primKind uint8

const (
	notPrimitive primKind = iota
	primUnknown           // a primitive vouch does not know: jsonformat decides
	primBoolean
	primInteger
	primUnsignedInt
	primPositiveInt
	primDecimal
	primString // string, markdown: size and control characters
	primText   // xhtml: any string (the narrative rules check it)
	primRegex  // code, id, oid, uuid: the value regex of the type
	primURI    // uri, url, canonical: must parse as a URL
	primDate
	primDateTime
	primInstant
	primTime
	primBase64
	primCode // a code bound to a required value set: one of its codes
)

// vinfo is what vouch needs to know of one message type.
type vinfo struct {
	md        protoreflect.MessageDescriptor
	prim      primKind
	regex     *regexp.Regexp
	codes     map[string]bool
	reference bool
	required  [][]string // per required element, the JSON keys that give it
}

var vinfoCache sync.Map // protoreflect.FullName -> *vinfo

func vouchInfo(md protoreflect.MessageDescriptor) *vinfo {
	if v, ok := vinfoCache.Load(md.FullName()); ok {
		return v.(*vinfo)
	}
	info := &vinfo{md: md, reference: md.FullName() == (&dpb.Reference{}).ProtoReflect().Descriptor().FullName()}
	if proto.GetExtension(md.Options(), apb.E_StructureDefinitionKind) == apb.StructureDefinitionKindValue_KIND_PRIMITIVE_TYPE {
		info.prim = primitiveKind(md)
		if info.prim == primRegex || info.prim == primDecimal {
			re, err := regexp.Compile("^" + proto.GetExtension(md.Options(), apb.E_ValueRegex).(string) + "$")
			if err != nil {
				info.prim = primUnknown
			}
			info.regex = re
		}
		if info.prim == primCode {
			info.codes = boundCodes(md)
		}
	}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		if proto.GetExtension(f.Options(), apb.E_ValidationRequirement) != apb.Requirement_REQUIRED_BY_FHIR {
			continue
		}
		var keys []string
		for k, el := range elements(md) {
			if k == f.JSONName() || el.choice == f {
				keys = append(keys, k)
			}
		}
		info.required = append(info.required, keys) // no keys: never vouched for
	}
	v, _ := vinfoCache.LoadOrStore(md.FullName(), info)
	return v.(*vinfo)
}

func primitiveKind(md protoreflect.MessageDescriptor) primKind {
	if md.ParentFile().Package() == "google.fhir.r4.core" && md.Parent() == md.ParentFile() {
		switch md.Name() {
		case "Boolean":
			return primBoolean
		case "Integer":
			return primInteger
		case "UnsignedInt":
			return primUnsignedInt
		case "PositiveInt":
			return primPositiveInt
		case "Decimal":
			return primDecimal
		case "String", "Markdown":
			return primString
		case "Xhtml":
			return primText
		case "Code", "Id", "Oid", "Uuid":
			return primRegex
		case "Uri", "Url", "Canonical":
			return primURI
		case "Date":
			return primDate
		case "DateTime":
			return primDateTime
		case "Instant":
			return primInstant
		case "Time":
			return primTime
		case "Base64Binary":
			return primBase64
		}
		return primUnknown
	}
	// Codes bound to a value set: an enum when the binding is required, a
	// string (MIME types, languages) otherwise.
	if f := md.Fields().ByName("value"); f != nil && proto.HasExtension(md.Options(), apb.E_FhirValuesetUrl) {
		switch f.Kind() {
		case protoreflect.EnumKind:
			return primCode
		case protoreflect.StringKind:
			return primString
		}
	}
	return primUnknown
}

// boundCodes are the codes of a bound code type that jsonformat maps to
// its enum: each value's name lower-cased with '-' for '_', and its
// original code where the proto records one.
func boundCodes(md protoreflect.MessageDescriptor) map[string]bool {
	vals := md.Fields().ByName("value").Enum().Values()
	codes := map[string]bool{}
	for i := 0; i < vals.Len(); i++ {
		ev := vals.Get(i)
		if orig := proto.GetExtension(ev.Options(), apb.E_FhirOriginalCode).(string); orig != "" {
			codes[orig] = true
		}
		if ev.Number() != 0 {
			codes[strings.ReplaceAll(strings.ToLower(string(ev.Name())), "_", "-")] = true
		}
	}
	return codes
}
