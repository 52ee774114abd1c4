package search

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// Query is a parsed FHIR search (search.html): the store query that
// selects the matches plus the result controls the REST layer applies.
type Query struct {
	Store      store.Query
	Count      int    // -1: not given
	Total      string // "", "none", "estimate" or "accurate"
	Summary    string // "", "true", "count", "data", "text", "false"
	Elements   []string
	Include    []Include
	RevInclude []Include
	// Ignored lists parameters that were not understood and were ignored
	// (lenient handling); each entry explains why.
	Ignored []string
}

// Include is an _include or _revinclude: resources of Source referenced
// through (or referencing through) Param, of Target type when given.
type Include struct {
	Source, Param, Target string
	Iterate               bool
}

// Options tune parsing.
type Options struct {
	// Base is the server's FHIR base URL; absolute references under it
	// are treated as local ("Patient/123").
	Base string
	// Strict refuses unknown or unsupported parameters instead of
	// ignoring them (Prefer: handling=strict).
	Strict bool
	// Now is the reference time for the ap prefix on dates.
	Now time.Time
}

// Error is a search the server cannot run as asked. Param names the
// offending parameter; Limit marks a search refused for its size (one of
// the bounds below) rather than its meaning.
type Error struct {
	Param string
	Msg   string
	Limit bool
}

// The bounds of one search (docs/limits.md). A clinical search uses a
// handful of parameters (Observation?patient=..&code=a,b&date=ge..&
// date=le..&_sort=-date&_include=...); each bound is several times what
// such a search needs, and each is checked before any of the search runs.
const (
	// MaxParameters bounds the name=value pairs of one search, every
	// repetition counted (name=a&name=b is two): 900 name:contains=a
	// took 22 s.
	MaxParameters = 50
	// MaxValues bounds the comma-separated values of one parameter
	// (code=a,b,c: three), and MaxTotalValues those of the whole search.
	MaxValues      = 100
	MaxTotalValues = 200
	// MaxValueLength bounds one value, in bytes (_page tokens excepted:
	// the query length bounds them).
	MaxValueLength = 1024
	// MaxSorts bounds the _sort keys (5,000 took 17 s).
	MaxSorts = 8
	// MaxIncludes bounds _include and _revinclude together.
	MaxIncludes = 16
	// MaxLinks bounds the chained parameters and _has clauses, each of
	// which runs a search of its own.
	MaxLinks = 4
	// MaxQueryLength bounds the query string and form body of one search
	// together, in bytes (the REST layer checks it before parsing).
	MaxQueryLength = 16 << 10
)

func limitError(param, format string, args ...any) *Error {
	return &Error{Param: param, Msg: fmt.Sprintf(format, args...), Limit: true}
}

// checkBounds refuses a search over the bounds before any of it is
// parsed.
func checkBounds(params url.Values) error {
	var pairs, values, sorts, includes, links int
	for key, vs := range params {
		name, _, _ := strings.Cut(key, ":")
		pairs += len(vs)
		for _, raw := range vs {
			if len(raw) > MaxValueLength && name != "_page" {
				return limitError(key, "a value is %d bytes; at most %d are allowed", len(raw), MaxValueLength)
			}
			if resultParams[name] {
				continue
			}
			n := len(splitValues(raw))
			if n > MaxValues {
				return limitError(key, "%d values; at most %d per parameter", n, MaxValues)
			}
			values += n
		}
		switch {
		case name == "_sort":
			for _, raw := range vs {
				sorts += strings.Count(raw, ",") + 1
			}
		case name == "_include" || name == "_revinclude":
			includes += len(vs)
		case name == "_has" || strings.Contains(key, "."):
			links += len(vs)
		}
	}
	switch {
	case pairs > MaxParameters:
		return limitError("", "%d parameters; at most %d per search", pairs, MaxParameters)
	case values > MaxTotalValues:
		return limitError("", "%d values; at most %d per search", values, MaxTotalValues)
	case sorts > MaxSorts:
		return limitError("_sort", "%d sort keys; at most %d", sorts, MaxSorts)
	case includes > MaxIncludes:
		return limitError("_include", "%d _include and _revinclude; at most %d together", includes, MaxIncludes)
	case links > MaxLinks:
		return limitError("", "%d chained parameters and _has; at most %d together", links, MaxLinks)
	}
	return nil
}

func (e *Error) Error() string { return "search parameter " + e.Param + ": " + e.Msg }

// resultParams are the parameters that control results, not selection.
var resultParams = map[string]bool{
	"_count": true, "_sort": true, "_total": true, "_summary": true, "_elements": true,
	"_include": true, "_revinclude": true, "_format": true, "_pretty": true, "_page": true,
	"_contained": true, "_containedType": true,
}

// ParseQuery parses the search parameters of a search on resourceType.
func ParseQuery(resourceType string, params url.Values, opts Options) (*Query, error) {
	if !IsResourceType(resourceType) {
		return nil, &Error{Param: "type", Msg: "unknown resource type"}
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if err := checkBounds(params); err != nil {
		return nil, err
	}
	q := &Query{Store: store.Query{Type: resourceType}, Count: -1}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic errors and clause order
	for _, key := range keys {
		for _, raw := range params[key] {
			if err := q.add(resourceType, key, raw, opts); err != nil {
				var se *Error
				if errors.As(err, &se) && se.Msg == msgUnknown && !opts.Strict {
					q.Ignored = append(q.Ignored, se.Error())
					continue
				}
				return nil, err
			}
		}
	}
	return q, nil
}

const msgUnknown = "unknown or unsupported parameter"

func (q *Query) add(typ, key, raw string, opts Options) error {
	name, mod, _ := strings.Cut(key, ":")
	switch name {
	case "_count":
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
			return &Error{Param: key, Msg: "must be a non-negative integer"}
		}
		q.Count = n
		return nil
	case "_total":
		if raw != "none" && raw != "estimate" && raw != "accurate" {
			return &Error{Param: key, Msg: "must be none, estimate or accurate"}
		}
		q.Total = raw
		return nil
	case "_summary":
		switch raw {
		case "true", "count", "data", "text", "false":
			q.Summary = raw
			return nil
		}
		return &Error{Param: key, Msg: "must be true, count, data, text or false"}
	case "_elements":
		for _, e := range strings.Split(raw, ",") {
			if e = strings.TrimSpace(e); e != "" {
				q.Elements = append(q.Elements, e)
			}
		}
		return nil
	case "_sort":
		return q.addSort(typ, raw)
	case "_include", "_revinclude":
		inc, err := parseInclude(key, raw, mod, typ, name == "_revinclude")
		if err != nil {
			return err
		}
		if name == "_include" {
			q.Include = append(q.Include, inc)
		} else {
			q.RevInclude = append(q.RevInclude, inc)
		}
		return nil
	case "_format", "_pretty", "_page":
		return nil
	case "_contained", "_containedType":
		if raw == "false" || raw == "container" {
			return nil
		}
		return &Error{Param: key, Msg: msgUnknown}
	case "_id":
		if mod != "" {
			return &Error{Param: key, Msg: "no modifiers are supported on _id"}
		}
		ids := splitValues(raw)
		if q.Store.IDs == nil {
			q.Store.IDs = ids
		} else {
			// Repeated _id means AND: keep the intersection.
			q.Store.IDs = slices.DeleteFunc(q.Store.IDs, func(id string) bool { return !slices.Contains(ids, id) })
		}
		if q.Store.IDs == nil {
			q.Store.IDs = []string{}
		}
		return nil
	case "_has":
		cl, err := parseHas(typ, key, raw, opts, 0)
		if err != nil {
			return err
		}
		q.Store.Clauses = append(q.Store.Clauses, cl)
		return nil
	}
	cl, err := parseClause(typ, key, raw, opts, 0)
	if err != nil {
		return err
	}
	q.Store.Clauses = append(q.Store.Clauses, cl)
	return nil
}

// parseClause parses one "name[:modifier][.chain]=value[,value]" pair.
func parseClause(typ, key, raw string, opts Options, depth int) (store.Clause, error) {
	name, chain, chained := strings.Cut(key, ".")
	name, mod, _ := strings.Cut(name, ":")
	p, ok := Lookup(typ, name)
	if !ok {
		return store.Clause{}, &Error{Param: key, Msg: msgUnknown}
	}
	if chained {
		return parseChain(typ, p, mod, chain, raw, opts, depth)
	}
	if p.Type == TypeComposite || p.Type == TypeSpecial || p.Expression == "" {
		return store.Clause{}, &Error{Param: key, Msg: msgUnknown}
	}
	if err := Indexed(typ, name); err != nil {
		return store.Clause{}, &Error{Param: key, Msg: msgUnknown}
	}
	if mod == "missing" {
		var missing bool
		switch raw {
		case "true":
			missing = true
		case "false":
		default:
			return store.Clause{}, &Error{Param: key, Msg: ":missing takes true or false"}
		}
		return store.Clause{Preds: []store.Pred{{Op: store.OpMissing, Param: name, Missing: missing}}}, nil
	}
	cl := store.Clause{}
	if mod == "not" {
		if p.Type != TypeToken {
			return store.Clause{}, &Error{Param: key, Msg: ":not applies to token parameters only"}
		}
		cl.Not, mod = true, ""
	}
	for _, v := range splitValues(raw) {
		pr, err := parseValue(typ, p, mod, v, opts)
		if err != nil {
			var se *Error
			if errors.As(err, &se) {
				se.Param = key
			}
			return store.Clause{}, err
		}
		cl.Preds = append(cl.Preds, pr)
	}
	if len(cl.Preds) == 0 {
		return store.Clause{}, &Error{Param: key, Msg: "no value"}
	}
	return cl, nil
}

func parseValue(typ string, p *Param, mod, v string, opts Options) (store.Pred, error) {
	bad := func(format string, args ...any) (store.Pred, error) {
		return store.Pred{}, &Error{Msg: fmt.Sprintf(format, args...)}
	}
	pr := store.Pred{Param: p.Code}
	switch p.Type {
	case TypeString:
		if p.Phonetic {
			// The index holds Soundex codes: match the query's code exactly.
			if mod != "" {
				return bad("modifier :%s is not supported on phonetic parameters", mod)
			}
			pr.Op, pr.Text = store.OpStringExact, Phonetic(unescape(v))
			return pr, nil
		}
		switch mod {
		case "":
			pr.Op = store.OpStringStarts
		case "exact":
			pr.Op = store.OpStringExact
		case "contains":
			pr.Op = store.OpStringContains
		default:
			return bad("modifier :%s is not supported on string parameters", mod)
		}
		pr.Text = unescape(v)
	case TypeToken:
		if mod == "text" {
			pr.Op, pr.Text = store.OpTokenText, unescape(v)
			return pr, nil
		}
		if mod != "" {
			return bad("modifier :%s is not supported on token parameters", mod)
		}
		sys, code, hasBar := cutUnescaped(v, '|')
		sys, code = unescape(sys), unescape(code)
		switch {
		case !hasBar:
			pr.Op, pr.Code = store.OpTokenCode, sys
		case code == "":
			pr.Op, pr.System = store.OpTokenSystem, sys
			if sys == "" {
				return bad("a token needs a system or a code")
			}
		default:
			pr.Op, pr.System, pr.Code = store.OpTokenSystemCode, sys, code
		}
	case TypeReference:
		return parseReference(p, mod, unescape(v), opts)
	case TypeURI:
		switch mod {
		case "":
			pr.Op = store.OpURI
		case "below":
			pr.Op = store.OpURIBelow
		case "above":
			pr.Op = store.OpURIAbove
		default:
			return bad("modifier :%s is not supported on uri parameters", mod)
		}
		pr.Text = unescape(v)
	case TypeDate:
		if mod != "" {
			return bad("modifier :%s is not supported on date parameters", mod)
		}
		cmp, rest := prefix(v)
		lo, hi, ok := DateRange(rest)
		if !ok {
			return bad("%q is not a FHIR date, dateTime or instant", rest)
		}
		if cmp == store.Ap {
			// Approximately: widen by 10% of the distance from now
			// (search.html#prefix), at least a day.
			gap := math.Abs(float64(opts.Now.UnixMicro() - (lo+hi)/2))
			w := int64(max(gap*0.1, 24*3600*1e6))
			lo, hi = lo-w, hi+w
		}
		pr.Op, pr.Cmp, pr.Lo, pr.Hi = store.OpDate, cmp, lo, hi
	case TypeNumber, TypeQuantity:
		if mod != "" {
			return bad("modifier :%s is not supported on %s parameters", mod, p.Type)
		}
		cmp, rest := prefix(v)
		numPart, unit, hasUnit := cutUnescaped(rest, '|')
		lo, hi, ok := numberRange(numPart)
		if !ok {
			return bad("%q is not a number", numPart)
		}
		pr.Op, pr.Cmp, pr.NumLo, pr.NumHi = store.OpNumber, cmp, lo, hi
		if p.Type == TypeQuantity {
			pr.Op = store.OpQuantity
			if hasUnit {
				sys, code, ok := cutUnescaped(unit, '|')
				if !ok {
					return bad("a quantity is number|system|code")
				}
				pr.System, pr.Code = unescape(sys), unescape(code)
			}
		} else if hasUnit {
			return bad("a number has no unit")
		}
	default:
		return bad("%s parameters are not supported", p.Type)
	}
	return pr, nil
}

func parseReference(p *Param, mod, v string, opts Options) (store.Pred, error) {
	pr := store.Pred{Param: p.Code}
	if mod != "" {
		if mod == "identifier" || mod == "above" || mod == "below" || !IsResourceType(mod) {
			return store.Pred{}, &Error{Msg: "modifier :" + mod + " is not supported on reference parameters"}
		}
		if !slices.Contains(p.Targets, mod) && !slices.Contains(p.Targets, "Any") && len(p.Targets) > 0 {
			return store.Pred{}, &Error{Msg: mod + " is not a target type of " + p.Code}
		}
	}
	if opts.Base != "" {
		if rest, ok := strings.CutPrefix(v, strings.TrimSuffix(opts.Base, "/")+"/"); ok {
			v = rest
		}
	}
	if i := strings.Index(v, "/_history/"); i > 0 && !strings.Contains(v, "://") {
		v = v[:i] // a versioned reference matches the resource
	}
	switch t, id, ok := strings.Cut(v, "/"); {
	case strings.Contains(v, "://") || strings.HasPrefix(v, "urn:"):
		pr.Op, pr.Ref = store.OpRef, v
	case ok && IsResourceType(t) && !strings.Contains(id, "/"):
		if mod != "" && mod != t {
			return store.Pred{}, &Error{Msg: "the modifier :" + mod + " contradicts the type " + t}
		}
		pr.Op, pr.Ref = store.OpRef, v
	case !ok && mod != "":
		pr.Op, pr.Ref = store.OpRef, mod+"/"+v
	case !ok:
		pr.Op, pr.Code = store.OpRefID, v
	default:
		return store.Pred{}, &Error{Msg: fmt.Sprintf("%q is not a reference (Type/id, id or URL)", v)}
	}
	return pr, nil
}

// parseChain parses "ref[:Type].param=value": resources whose ref points
// at a Type resource matching param=value. Without :Type every target type
// that has param is searched. One level of chaining is supported.
func parseChain(typ string, ref *Param, mod, chain, raw string, opts Options, depth int) (store.Clause, error) {
	key := ref.Code + "." + chain
	if ref.Type != TypeReference {
		return store.Clause{}, &Error{Param: key, Msg: "only reference parameters can be chained"}
	}
	if strings.Contains(chain, ".") || depth > 0 {
		return store.Clause{}, &Error{Param: key, Msg: "only one level of chaining is supported"}
	}
	targets := ref.Targets
	if mod != "" {
		targets = []string{mod}
	}
	cl := store.Clause{}
	innerName, _, _ := strings.Cut(chain, ":")
	for _, t := range targets {
		if _, ok := Lookup(t, innerName); !ok {
			continue
		}
		inner, err := parseClause(t, chain, raw, opts, depth+1)
		if err != nil {
			return store.Clause{}, err
		}
		cl.Preds = append(cl.Preds, store.Pred{Op: store.OpChain, Param: ref.Code,
			Inner: &store.Query{Type: t, Clauses: []store.Clause{inner}}})
	}
	if len(cl.Preds) == 0 {
		return store.Clause{}, &Error{Param: key, Msg: "no target type of " + ref.Code + " has the parameter " + innerName}
	}
	return cl, nil
}

// parseHas parses "_has:Type:ref:param=value": resources referenced by a
// Type resource through its ref parameter, where that resource matches
// param=value.
func parseHas(typ, key, raw string, opts Options, depth int) (store.Clause, error) {
	parts := strings.SplitN(key, ":", 4)
	if len(parts) != 4 || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return store.Clause{}, &Error{Param: key, Msg: "_has is _has:Type:reference:parameter"}
	}
	other, ref, param := parts[1], parts[2], parts[3]
	if !IsResourceType(other) {
		return store.Clause{}, &Error{Param: key, Msg: "unknown resource type " + other}
	}
	rp, ok := Lookup(other, ref)
	if !ok || rp.Type != TypeReference {
		return store.Clause{}, &Error{Param: key, Msg: ref + " is not a reference parameter of " + other}
	}
	if len(rp.Targets) > 0 && !slices.Contains(rp.Targets, typ) && !slices.Contains(rp.Targets, "Any") {
		return store.Clause{}, &Error{Param: key, Msg: other + "." + ref + " cannot refer to " + typ}
	}
	if strings.HasPrefix(param, "_has") || depth > 0 {
		return store.Clause{}, &Error{Param: key, Msg: "only one level of _has is supported"}
	}
	inner, err := parseClause(other, param, raw, opts, depth+1)
	if err != nil {
		return store.Clause{}, err
	}
	return store.Clause{Preds: []store.Pred{{Op: store.OpHas, HasParam: ref,
		Inner: &store.Query{Type: other, Clauses: []store.Clause{inner}}}}}, nil
}

func (q *Query) addSort(typ, raw string) error {
	for _, f := range strings.Split(raw, ",") {
		f = strings.TrimSpace(f)
		desc := strings.HasPrefix(f, "-")
		f = strings.TrimPrefix(f, "-")
		switch f {
		case "":
			continue
		case "_id", "_lastUpdated":
			q.Store.Sort = append(q.Store.Sort, store.Sort{Param: f, Desc: desc})
			continue
		}
		p, ok := Lookup(typ, f)
		if !ok {
			return &Error{Param: "_sort", Msg: "unknown parameter " + f}
		}
		kind, ok := indexKinds[p.Type]
		if !ok {
			return &Error{Param: "_sort", Msg: "cannot sort by " + f}
		}
		q.Store.Sort = append(q.Store.Sort, store.Sort{Param: f, Desc: desc, Kind: kind})
	}
	return nil
}

var indexKinds = map[ParamType]store.IndexKind{
	TypeString: store.IndexString, TypeToken: store.IndexToken, TypeReference: store.IndexReference,
	TypeDate: store.IndexDate, TypeNumber: store.IndexNumber, TypeQuantity: store.IndexQuantity, TypeURI: store.IndexURI,
}

func parseInclude(key, raw, mod, typ string, rev bool) (Include, error) {
	inc := Include{Iterate: mod == "iterate" || mod == "recurse"}
	if mod != "" && !inc.Iterate {
		return inc, &Error{Param: key, Msg: "unknown modifier :" + mod}
	}
	if first, rest, ok := strings.Cut(raw, ","); ok {
		// Several values joined with commas (as @medplum/core sends them):
		// one value per parameter, the parameter repeated.
		second, more, _ := strings.Cut(rest, ",")
		example := key + "=" + first + "&" + key + "=" + second
		if more != "" {
			example += "&..."
		}
		return inc, &Error{Param: key, Msg: "takes one SourceType:parameter[:TargetType]; repeat the parameter instead of joining values with commas: " + example}
	}
	parts := strings.Split(raw, ":")
	if len(parts) < 2 || len(parts) > 3 {
		if raw == "*" && !rev {
			return Include{Source: typ, Param: "*"}, nil
		}
		return inc, &Error{Param: key, Msg: "must be SourceType:parameter[:TargetType]"}
	}
	inc.Source, inc.Param = parts[0], parts[1]
	if len(parts) == 3 {
		inc.Target = parts[2]
		if !IsResourceType(inc.Target) {
			return inc, &Error{Param: key, Msg: "unknown target type " + inc.Target}
		}
	}
	if !IsResourceType(inc.Source) {
		return inc, &Error{Param: key, Msg: "unknown resource type " + inc.Source}
	}
	if !rev && inc.Source != typ && !inc.Iterate {
		return inc, &Error{Param: key, Msg: "the source type must be " + typ + " (or use :iterate)"}
	}
	if inc.Param != "*" {
		p, ok := Lookup(inc.Source, inc.Param)
		if !ok || p.Type != TypeReference {
			return inc, &Error{Param: key, Msg: inc.Param + " is not a reference parameter of " + inc.Source}
		}
	}
	return inc, nil
}

// prefix splits a comparison prefix off a number, date or quantity value.
func prefix(v string) (store.Cmp, string) {
	if len(v) >= 2 {
		switch v[:2] {
		case "eq":
			return store.Eq, v[2:]
		case "ne":
			return store.Ne, v[2:]
		case "gt":
			return store.Gt, v[2:]
		case "lt":
			return store.Lt, v[2:]
		case "ge":
			return store.Ge, v[2:]
		case "le":
			return store.Le, v[2:]
		case "sa":
			return store.Sa, v[2:]
		case "eb":
			return store.Eb, v[2:]
		case "ap":
			return store.Ap, v[2:]
		}
	}
	return store.Eq, v
}

// numberRange returns the range a number's implicit precision covers:
// "100" is [99.5, 100.5), "0.25" is [0.245, 0.255), "1e2" is [50, 150).
func numberRange(s string) (float64, float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || strings.ContainsAny(s, "xXpP_") {
		return 0, 0, false
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, err := strconv.Atoi(s[i+1:])
		if err != nil {
			return 0, 0, false
		}
		exp = e
	}
	decimals := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		decimals = len(mant) - i - 1
	}
	half := 0.5 * math.Pow(10, float64(exp-decimals))
	return f - half, f + half, true
}

// splitValues splits on unescaped commas.
func splitValues(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case ',':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// cutUnescaped cuts s at the first unescaped sep.
func cutUnescaped(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// unescape removes search value escapes: \, \$ \| \\ (search.html#escaping).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
