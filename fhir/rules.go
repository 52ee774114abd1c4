package fhir

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

// checkRules walks a resource with the R4 schema and enforces what
// jsonformat accepts silently or reports vaguely: every key must be an
// element of its parent (named precisely when not); objects and arrays are
// never empty, strings never empty, null only inside arrays (json.html);
// uri values have no white space; narrative is well-formed, safe XHTML
// (txt-1, txt-2); extension URLs carry no version; Bundle entries follow
// the Bundle rules.
func checkRules(root *fhirjson.Value, typ string) []Issue {
	c := ruleChecker{path: []string{typ}}
	c.resource(root, typ)
	return c.issues
}

const maxIssues = 20

type ruleChecker struct {
	path   []string
	issues []Issue
}

func (c *ruleChecker) add(code, msg string) {
	if len(c.issues) >= maxIssues {
		return
	}
	c.issues = append(c.issues, Issue{Severity: "error", Code: code, Diagnostics: msg, Expression: []string{c.expr()}})
}

func (c *ruleChecker) expr() string {
	var b strings.Builder
	for i, p := range c.path {
		if i > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func (c *ruleChecker) push(s string) { c.path = append(c.path, s) }
func (c *ruleChecker) pop()          { c.path = c.path[:len(c.path)-1] }

func (c *ruleChecker) resource(v *fhirjson.Value, typ string) {
	md := resourceMsgs()[typ]
	if md == nil {
		c.add("not-supported", "unknown resource type")
		return
	}
	c.object(v, md, true)
	if typ == "Bundle" && len(c.issues) == 0 {
		c.bundle(v)
	}
}

func (c *ruleChecker) object(v *fhirjson.Value, md protoreflect.MessageDescriptor, isResource bool) {
	if len(v.Members) == 0 {
		c.add("structure", "empty object: FHIR JSON objects are never empty")
		return
	}
	els := elements(md)
	for i := range v.Members {
		m := &v.Members[i]
		if isResource && m.Key == "resourceType" {
			continue
		}
		c.push(m.Key)
		name, primExt := m.Key, false
		if strings.HasPrefix(name, "_") {
			name, primExt = name[1:], true
		}
		el, ok := els[name]
		switch {
		case !ok:
			c.add("structure", "unknown element '"+m.Key+"'")
		case primExt && (el.msg == nil || !isPrimitive(el.msg)):
			c.add("structure", "'"+m.Key+"' is only allowed for primitive elements")
		default:
			// "_x" holds the id and extensions of primitive x.
			c.element(&m.Value, el, primExt)
			if name == "extension" || name == "modifierExtension" {
				c.extensionURLs(&m.Value)
			}
		}
		c.pop()
	}
}

func (c *ruleChecker) element(v *fhirjson.Value, el element, primExt bool) {
	if v.Kind == fhirjson.Array {
		if !el.repeated {
			c.add("structure", "an array is not allowed here: the element repeats at most once")
			return
		}
		if len(v.Items) == 0 {
			c.add("structure", "empty array: FHIR JSON arrays are never empty")
			return
		}
		for i := range v.Items {
			c.push("[" + strconv.Itoa(i) + "]")
			if v.Items[i].Kind != fhirjson.Null {
				c.single(&v.Items[i], el, primExt)
			} else if !(primExt || el.msg != nil && isPrimitive(el.msg)) {
				c.add("structure", "null is only allowed in arrays of primitives")
			}
			c.pop()
		}
		return
	}
	if el.repeated {
		c.add("structure", "an array is required here: the element repeats")
		return
	}
	c.single(v, el, primExt)
}

func (c *ruleChecker) single(v *fhirjson.Value, el element, primExt bool) {
	switch {
	case v.Kind == fhirjson.Null:
		c.add("structure", "null is only allowed inside arrays")
	case el.resource:
		if v.Kind != fhirjson.Object {
			c.add("structure", "a resource must be a JSON object")
			return
		}
		typ := v.GetString("resourceType")
		if typ == "" {
			c.add("required", "a nested resource needs a resourceType")
			return
		}
		c.resource(v, typ)
	case primExt:
		if v.Kind != fhirjson.Object {
			c.add("structure", "the extension part of a primitive must be an object")
			return
		}
		if len(v.Members) == 0 {
			c.add("structure", "empty object: FHIR JSON objects are never empty")
			return
		}
		for i := range v.Members {
			if k := v.Members[i].Key; k != "id" && k != "extension" {
				c.push(k)
				c.add("structure", "unknown element '"+k+"' (only id and extension may extend a primitive)")
				c.pop()
				continue
			}
			c.push(v.Members[i].Key)
			if v.Members[i].Key == "extension" {
				c.element(&v.Members[i].Value, element{msg: el.msg.Fields().ByName("extension").Message(), repeated: true}, false)
				c.extensionURLs(&v.Members[i].Value)
			} else {
				c.single(&v.Members[i].Value, element{msg: el.msg.Fields().ByName("id").Message()}, false)
			}
			c.pop()
		}
	case isPrimitive(el.msg):
		c.primitive(v, el.msg)
	case v.Kind != fhirjson.Object:
		c.add("structure", "expected an object for "+string(el.msg.Name())+", found "+v.Kind.String())
	default:
		c.object(v, el.msg, false)
	}
}

// primitive checks what jsonformat does not: no empty strings, no white
// space in URIs, safe narrative. Datatype formats are jsonformat's job.
func (c *ruleChecker) primitive(v *fhirjson.Value, md protoreflect.MessageDescriptor) {
	if v.Kind == fhirjson.Number && md.Name() == "Decimal" && !Indexable(v.Str) {
		// The value itself stays out of the message (error texts are
		// audited).
		c.add("value", "the decimal is outside the range the gateway can store and search: magnitudes up to "+
			"1.7976931348623157e308, and none so small that it would be taken for zero")
		return
	}
	if v.Kind != fhirjson.String {
		return
	}
	switch {
	case v.Str == "":
		c.add("value", "empty string: FHIR values are never empty")
	case uriTypes[md.Name()] && strings.ContainsAny(v.Str, " \t\r\n"):
		c.add("value", "a "+strings.ToLower(string(md.Name()))+" must not contain white space")
	case md.Name() == "Xhtml":
		if msg := checkNarrative(v.Str); msg != "" {
			c.add("invariant", msg)
		}
	}
}

func (c *ruleChecker) extensionURLs(v *fhirjson.Value) {
	for j := range v.Items {
		if u := v.Items[j].GetString("url"); strings.Contains(u, "|") {
			c.push("[" + strconv.Itoa(j) + "]")
			c.push("url")
			c.add("value", "an extension URL must not contain a version ('|')")
			c.pop()
			c.pop()
		}
	}
}

// bundle checks the Bundle rules a server must enforce on a stored Bundle:
// absolute fullUrls, unique link relations, and for search sets, matches
// with ids and outcomes that are OperationOutcomes.
func (c *ruleChecker) bundle(b *fhirjson.Value) {
	if links := b.Get("link"); links != nil {
		seen := map[string]bool{}
		for i := range links.Items {
			rel := links.Items[i].GetString("relation")
			if seen[rel] {
				c.push("link[" + strconv.Itoa(i) + "]")
				c.add("invariant", "the link relation '"+rel+"' can only occur once")
				c.pop()
			}
			seen[rel] = true
		}
	}
	searchset := b.GetString("type") == "searchset"
	history := b.GetString("type") == "history"
	entries := b.Get("entry")
	if entries == nil {
		return
	}
	// bdl-7: a fullUrl is unique in a Bundle, except for entries with
	// different meta.versionId and in history Bundles.
	fullURLs := map[[2]string]int{}
	for i := range entries.Items {
		e := &entries.Items[i]
		c.push("entry[" + strconv.Itoa(i) + "]")
		if u := e.GetString("fullUrl"); u != "" && !IsAbsoluteURL(u) {
			c.add("invalid", "fullUrl must be an absolute URL")
		} else if u != "" && !history {
			k := [2]string{u, e.Get("resource").Get("meta").GetString("versionId")}
			if j, dup := fullURLs[k]; dup {
				c.push("fullUrl")
				c.add("invariant", "the fullUrl of entry "+strconv.Itoa(j)+" again: a fullUrl is unique in a Bundle unless the versions differ (bdl-7)")
				c.pop()
			} else {
				fullURLs[k] = i
			}
		}
		res := e.Get("resource")
		if searchset && res != nil {
			switch e.Get("search").GetString("mode") {
			case "outcome":
				if res.GetString("resourceType") != "OperationOutcome" {
					c.add("invariant", "a search entry with mode 'outcome' must be an OperationOutcome")
				}
			default:
				if res.GetString("id") == "" {
					c.add("invariant", "search results must have ids")
				}
			}
		}
		c.pop()
	}
}

// Indexable reports whether the decimal literal d is one the search index
// holds as it is: the index keeps numbers as float64, so a magnitude over
// math.MaxFloat64 (1e999999999) would be stored but never found, and a
// non-zero value under the smallest float64 (1e-400) found as zero.
func Indexable(d string) bool {
	f, err := strconv.ParseFloat(d, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return false
	}
	if f == 0 {
		mant, _, _ := strings.Cut(strings.ToLower(d), "e")
		return strings.Trim(mant, "-+0.") == ""
	}
	return true
}

// IsAbsoluteURL reports whether u has a URI scheme (http:, https:, urn:...).
func IsAbsoluteURL(u string) bool {
	i := strings.IndexByte(u, ':')
	if i <= 0 {
		return false
	}
	for j := 0; j < i; j++ {
		ch := u[j]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || j > 0 && (ch >= '0' && ch <= '9' || ch == '+' || ch == '-' || ch == '.')) {
			return false
		}
	}
	return true
}

const xhtmlNS = "http://www.w3.org/1999/xhtml"

// narrativeElements are the XHTML elements txt-1 allows: the basic HTML
// formatting elements of HTML 4.0 chapters 7-11 and 12, images and links.
var narrativeElements = map[string]bool{}

func init() {
	for _, e := range strings.Fields(`a abbr acronym address area b bdo big blockquote br caption cite code col
		colgroup dd del dfn div dl dt em h1 h2 h3 h4 h5 h6 hr i img ins kbd li map ol p pre q samp small
		span strong sub sup table tbody td tfoot th thead tr tt ul var`) {
		narrativeElements[e] = true
	}
}

// checkNarrative returns why div is not acceptable narrative, or "".
func checkNarrative(div string) string {
	d := xml.NewDecoder(strings.NewReader(div))
	d.Strict = true // unknown entities such as &reg; are errors, as in XML
	depth, text := 0, false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "narrative is not well-formed XHTML: " + err.Error()
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 && (t.Name.Local != "div" || t.Name.Space != xhtmlNS) {
				return "narrative must be a <div> in the XHTML namespace"
			}
			if t.Name.Space != xhtmlNS || !narrativeElements[t.Name.Local] {
				return "narrative contains the element <" + t.Name.Local + ">, which txt-1 does not allow"
			}
			for _, a := range t.Attr {
				name := strings.ToLower(a.Name.Local)
				if strings.HasPrefix(name, "on") {
					return "narrative contains the event attribute " + a.Name.Local
				}
				if (name == "href" || name == "src") && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Value)), "javascript:") {
					return "narrative contains a javascript: link"
				}
			}
			if t.Name.Local == "img" {
				text = true
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && strings.TrimSpace(string(t)) != "" {
				return "narrative has text outside its <div>"
			}
			if strings.TrimSpace(string(t)) != "" {
				text = true
			}
		case xml.ProcInst, xml.Directive:
			return "narrative must not contain processing instructions or declarations"
		}
	}
	if !text {
		return "narrative has no content (txt-2)"
	}
	return ""
}
