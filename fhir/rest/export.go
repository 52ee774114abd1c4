package rest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/bulk"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// Bulk Data export (HL7 FHIR Bulk Data Access IG v2, export.html): the
// kick-off, status, cancel and download routes over package bulk.

// ExportDecider is the decision a bulk export makes for each resource:
// the one a search makes for each match (visible), without break-glass.
func ExportDecider(d *policy.Decider) func(*policy.Principal, *store.Version) policy.Decision {
	if d == nil {
		d = &policy.Decider{}
	}
	return func(p *policy.Principal, v *store.Version) policy.Decision {
		return d.Decide(p, policy.SearchType, targetOf(v), policy.Glass{})
	}
}

const mimeNDJSON = "application/fhir+ndjson"

// exportFileRoute registers the download route ahead of the format
// negotiation: a file is NDJSON whatever the Accept header says.
func (s *Server) exportFileRoute(f fiber.Router) {
	if s.cfg.Export != nil {
		f.Get("/$export-file/:job/:file", s.authenticate, s.audited, s.exportFile)
	}
}

// exportRoutes registers the kick-offs and the status URL (before the
// type and instance routes they would otherwise match).
func (s *Server) exportRoutes(f fiber.Router) {
	if s.cfg.Export == nil {
		return
	}
	for _, r := range []struct {
		path  string
		level bulk.Level
	}{{"/$export", bulk.System}, {"/Patient/$export", bulk.Patient}, {"/Group/:id/$export", bulk.Group}} {
		f.Get(r.path, s.exportKickoff(r.level))
		f.Post(r.path, s.exportKickoff(r.level))
	}
	f.Get("/$export-poll-status/:job", s.exportStatus)
	f.Delete("/$export-poll-status/:job", s.exportCancel)
}

// exportUnsupported are the kick-off parameters the IG defines that this
// server refuses (or, with Prefer: handling=lenient, ignores).
var exportUnsupported = []string{"_elements", "includeAssociatedData", "organizeOutputBy", "allowPartialManifests"}

// exportValueTypes are the value[x] each parameter of the IG's
// OperationDefinitions takes in a POST kick-off's Parameters body.
var exportValueTypes = map[string]string{
	"_outputFormat": "valueString", "_since": "valueInstant", "_type": "valueString",
	"_typeFilter": "valueString", "patient": "valueReference", "includeAssociatedData": "valueCode",
	"_elements": "valueString", "organizeOutputBy": "valueString", "allowPartialManifests": "valueBoolean",
}

// Bounds of one kick-off (docs/limits.md): the Parameters body of a POST,
// and its parameters (every repetition counted).
const (
	maxExportBody   = 256 << 10
	maxExportParams = 1000
)

// exportParam is one kick-off parameter: from the query string of a GET
// or the Parameters body of a POST, the one list both are read from.
type exportParam struct {
	name, value string
}

func (s *Server) exportKickoff(level bulk.Level) fiber.Handler {
	return func(c *fiber.Ctx) error {
		n := noteOf(c)
		n.interaction = "operation"
		raw := string(c.Request().URI().QueryString())
		n.query = strings.TrimPrefix(c.Path(), "/fhir/")
		if raw != "" {
			n.query += "?" + raw
		}
		if !preferAsync(c) {
			return errorf(fiber.StatusBadRequest, "invalid", "a bulk export runs asynchronously: send the header Prefer: respond-async")
		}
		post := c.Method() == fiber.MethodPost
		params, err := exportQuery(raw, post)
		if err == nil && post {
			var body []exportParam
			body, err = exportBody(c)
			params = append(params, body...)
			n.query = strings.TrimPrefix(c.Path(), "/fhir/") + "?" + exportParamsString(params)
		}
		if err != nil {
			return err
		}
		p := principal(c)
		req := bulk.Request{Level: level, Base: s.base(c)}
		req.URL = req.Base + strings.TrimPrefix(c.Path(), "/fhir")
		if raw != "" {
			req.URL += "?" + raw
		}
		if err := s.exportRequest(c, p, &req, params, post); err != nil {
			return err
		}
		id, err := s.cfg.Export.Kickoff(c.UserContext(), p, req)
		if errors.Is(err, bulk.ErrBusy) {
			c.Set(fiber.HeaderRetryAfter, "30")
			return errorf(fiber.StatusTooManyRequests, "throttled", "you already have the most bulk exports running at once; wait for one to complete or cancel it (DELETE its status URL)")
		}
		if err != nil {
			return err
		}
		n.query += " (job " + id + ")"
		c.Set(fiber.HeaderContentLocation, req.Base+"/$export-poll-status/"+id)
		c.Set(fiber.HeaderContentType, s.contentType(c))
		return c.Status(fiber.StatusAccepted).Send(fhir.OperationOutcome(issue("information", "informational",
			"the export has started; poll the Content-Location URL for its status")))
	}
}

// exportQuery reads a kick-off's query string into parameters, in their
// order. A POST takes its parameters in its body: its query string may
// only hold _format.
func exportQuery(raw string, post bool) ([]exportParam, error) {
	var out []exportParam
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		name, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, errorf(fiber.StatusBadRequest, "invalid", "the query string is malformed")
		}
		if post && name != "_format" {
			return nil, errorAt(fiber.StatusBadRequest, "invalid", name,
				"a POST kick-off takes its parameters in a Parameters body, not in the URL ("+strconv.Quote(truncate(name, 64))+")")
		}
		if len(out) == maxExportParams {
			return nil, errorf(fiber.StatusBadRequest, "too-costly", "more than "+strconv.Itoa(maxExportParams)+" kick-off parameters")
		}
		out = append(out, exportParam{name, value})
	}
	return out, nil
}

// exportBody reads a POST kick-off's Parameters body (export.html: each
// parameter with the value[x] its OperationDefinition gives it).
func exportBody(c *fiber.Ctx) ([]exportParam, error) {
	if err := requireBody(c, mimeFHIRJSON, mimeJSON); err != nil {
		return nil, err
	}
	body := c.Body()
	switch {
	case len(body) == 0:
		return nil, errorf(fiber.StatusBadRequest, "required", "a POST kick-off needs a Parameters body")
	case len(body) > maxExportBody:
		return nil, errorf(fiber.StatusRequestEntityTooLarge, "too-costly",
			"the Parameters body is "+strconv.Itoa(len(body))+" bytes; at most "+strconv.Itoa(maxExportBody)+" are allowed")
	}
	var in struct {
		ResourceType string                       `json:"resourceType"`
		Parameter    []map[string]json.RawMessage `json:"parameter"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, errorf(fiber.StatusBadRequest, "invalid", "the body is not a Parameters resource in JSON")
	}
	if in.ResourceType != "Parameters" {
		return nil, errorAt(fiber.StatusBadRequest, "invalid", "resourceType", "the body of a POST kick-off is a Parameters resource")
	}
	if len(in.Parameter) > maxExportParams {
		return nil, errorf(fiber.StatusBadRequest, "too-costly", "more than "+strconv.Itoa(maxExportParams)+" kick-off parameters")
	}
	out := make([]exportParam, 0, len(in.Parameter))
	for i, m := range in.Parameter {
		at := "Parameters.parameter[" + strconv.Itoa(i) + "]"
		var name string
		if err := json.Unmarshal(m["name"], &name); err != nil || name == "" {
			return nil, errorAt(fiber.StatusBadRequest, "required", at+".name", "every parameter needs a name")
		}
		var kind string
		var value json.RawMessage
		for k, v := range m {
			switch {
			case k == "name" || k == "id" || k == "extension":
			case strings.HasPrefix(k, "value") && kind == "":
				kind, value = k, v
			default:
				return nil, errorAt(fiber.StatusBadRequest, "invalid", at,
					"the parameter "+strconv.Quote(truncate(name, 64))+" has an element "+strconv.Quote(truncate(k, 64))+" a kick-off does not take")
			}
		}
		want, known := exportValueTypes[name]
		if known && kind != want {
			return nil, errorAt(fiber.StatusBadRequest, "invalid", at,
				"the parameter "+strconv.Quote(name)+" takes a "+want)
		}
		var str string
		var err error
		switch kind {
		case "valueReference":
			var ref struct {
				Reference string `json:"reference"`
			}
			err = json.Unmarshal(value, &ref)
			str = ref.Reference
		case "valueBoolean":
			var b bool
			err = json.Unmarshal(value, &b)
			str = strconv.FormatBool(b)
		default:
			err = json.Unmarshal(value, &str)
		}
		if known && (err != nil || str == "") {
			return nil, errorAt(fiber.StatusBadRequest, "invalid", at, "the parameter "+strconv.Quote(name)+" has no valid "+want)
		}
		out = append(out, exportParam{name, str})
	}
	return out, nil
}

// exportParamsString is the parameters as a query string (the audit
// trail's record of a POST kick-off).
func exportParamsString(params []exportParam) string {
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p.name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.value))
	}
	return truncate(b.String(), 4096)
}

// exportRequest turns the kick-off's parameters into req, with the same
// meaning and refusals whether they came by GET or POST.
func (s *Server) exportRequest(c *fiber.Ctx, p *policy.Principal, req *bulk.Request, params []exportParam, post bool) error {
	lenient := prefer(c, "handling") == "lenient"
	seen := map[string]bool{}
	var patients, filters []string
	for _, prm := range params {
		name, v := prm.name, prm.value
		once := func() error {
			if seen[name] {
				return errorAt(fiber.StatusBadRequest, "invalid", name, "the parameter "+name+" is given more than once")
			}
			seen[name] = true
			return nil
		}
		switch name {
		case "_outputFormat":
			if err := once(); err != nil {
				return err
			}
			// A '+' in the query is a space once decoded.
			switch f := strings.ReplaceAll(v, " ", "+"); f {
			case mimeNDJSON, "application/ndjson", "ndjson":
			default:
				return errorAt(fiber.StatusBadRequest, "not-supported", "_outputFormat",
					"_outputFormat "+strconv.Quote(truncate(f, 64))+" is not supported: use application/fhir+ndjson (or application/ndjson, ndjson)")
			}
		case "_type":
			for typ := range strings.SplitSeq(v, ",") {
				typ = strings.TrimSpace(typ)
				switch {
				case !fhir.IsResourceType(typ):
					return errorAt(fiber.StatusBadRequest, "invalid", "_type", "_type: unknown resource type "+strconv.Quote(truncate(typ, 64)))
				case s.store.IsVirtual(typ):
					return errorAt(fiber.StatusBadRequest, "not-supported", "_type",
						"_type: "+typ+" is not exported; search it ("+typ+"?date=...)")
				}
				if err := policy.CheckScope(p, policy.SearchType, typ); err != nil {
					return err
				}
				if !slices.Contains(req.Types, typ) {
					req.Types = append(req.Types, typ)
				}
			}
		case "_since":
			if err := once(); err != nil {
				return err
			}
			t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
			if err != nil {
				return errorAt(fiber.StatusBadRequest, "invalid", "_since", "_since must be an instant such as 2026-01-02T03:04:05Z")
			}
			req.Since = t
		case "patient":
			switch {
			case !post:
				return errorAt(fiber.StatusBadRequest, "not-supported", "patient",
					"the parameter patient is taken by a POST kick-off only (a Parameters body with valueReference Patient/<id>)")
			case req.Level == bulk.System:
				return errorAt(fiber.StatusBadRequest, "invalid", "patient",
					"the parameter patient applies to Patient/$export and Group/[id]/$export, not to a system export")
			case len(patients) == maxExportPatients:
				return errorAt(fiber.StatusBadRequest, "too-costly", "patient",
					"more than "+strconv.Itoa(maxExportPatients)+" patients; export a Group instead")
			}
			patients = append(patients, v)
		case "_typeFilter":
			if len(filters) == maxTypeFilters {
				return errorAt(fiber.StatusBadRequest, "too-costly", "_typeFilter", "more than "+strconv.Itoa(maxTypeFilters)+" _typeFilter values")
			}
			filters = append(filters, v)
		case "_format":
		default:
			if lenient {
				continue
			}
			what := "is not a parameter of $export"
			if slices.Contains(exportUnsupported, name) {
				what = "is not supported by this server"
			}
			return errorAt(fiber.StatusBadRequest, "not-supported", name,
				"the parameter "+strconv.Quote(truncate(name, 64))+" "+what+" (send Prefer: handling=lenient to have it ignored)")
		}
	}
	for _, f := range filters {
		if err := s.typeFilter(c, p, req, f, lenient); err != nil {
			return err
		}
	}
	if req.Level == bulk.Group {
		members, err := s.groupMembers(c)
		if err != nil {
			return err
		}
		req.Members = members
	}
	for _, ref := range patients {
		pid, ok := strings.CutPrefix(strings.TrimPrefix(ref, req.Base+"/"), "Patient/")
		if !ok || !fhir.ValidID(pid) {
			return errorAt(fiber.StatusBadRequest, "invalid", "patient",
				"patient: "+strconv.Quote(truncate(ref, 80))+" is not a reference Patient/<id>")
		}
		ref = "Patient/" + pid
		if slices.Contains(req.Patients, ref) {
			continue
		}
		if err := s.exportablePatient(c, p, pid, req); err != nil {
			return err
		}
		req.Patients = append(req.Patients, ref)
	}
	return nil
}

// maxTypeFilters bounds the _typeFilter values of one kick-off: each is
// a search every resource of its type is checked against.
const maxTypeFilters = 32

// typeFilterResults are search parameters that shape a search's answer,
// not which resources match: nothing a _typeFilter can mean.
var typeFilterResults = []string{"_count", "_sort", "_total", "_summary", "_elements", "_include", "_revinclude",
	"_page", "_contained", "_containedType", "_format", "_pretty"}

// typeFilter checks one _typeFilter (Type?search-parameters) as a search
// of Type would be checked, and adds it to req. Its type must be one the
// export reads (in _type when that is given). Chained parameters and _has
// are refused: they would decide by resources the export does not read.
func (s *Server) typeFilter(c *fiber.Ctx, p *policy.Principal, req *bulk.Request, f string, lenient bool) error {
	refuse := func(status int, code, msg string) error {
		return errorAt(status, code, "_typeFilter", "_typeFilter "+strconv.Quote(truncate(f, 100))+": "+msg)
	}
	typ, query, ok := strings.Cut(f, "?")
	switch {
	case !ok:
		return refuse(fiber.StatusBadRequest, "invalid", "a _typeFilter is Type?search-parameters")
	case len(f) > search.MaxQueryLength:
		return refuse(fiber.StatusBadRequest, "too-costly", "longer than "+strconv.Itoa(search.MaxQueryLength)+" bytes")
	case !fhir.IsResourceType(typ):
		return refuse(fiber.StatusBadRequest, "invalid", "unknown resource type")
	case len(req.Types) > 0 && !slices.Contains(req.Types, typ):
		return refuse(fiber.StatusBadRequest, "invalid", typ+" is not one of the _type the export reads")
	case s.store.IsVirtual(typ):
		return refuse(fiber.StatusBadRequest, "not-supported", typ+" is not exported")
	}
	if err := policy.CheckScope(p, policy.SearchType, typ); err != nil {
		return err
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return refuse(fiber.StatusBadRequest, "invalid", "the search parameters are malformed")
	}
	for key := range params {
		name, _, _ := strings.Cut(key, ":")
		if slices.Contains(typeFilterResults, name) {
			return refuse(fiber.StatusBadRequest, "not-supported", key+" shapes a search's answer; a _typeFilter only selects")
		}
	}
	q, err := search.ParseQuery(typ, params, search.Options{Base: req.Base, Strict: !lenient, Now: s.now()})
	var se *search.Error
	switch {
	case errors.As(err, &se) && se.Limit:
		return refuse(fiber.StatusBadRequest, "too-costly", se.Error())
	case errors.As(err, &se):
		return refuse(fiber.StatusBadRequest, "invalid", se.Error())
	case err != nil:
		return err
	}
	for _, cl := range q.Store.Clauses {
		for _, pr := range cl.Preds {
			if pr.Op == store.OpChain || pr.Op == store.OpHas {
				return refuse(fiber.StatusBadRequest, "not-supported", "chained parameters and _has are not supported in a _typeFilter")
			}
		}
	}
	if !slices.Contains(req.TypeFilters, f) {
		req.TypeFilters = append(req.TypeFilters, f)
	}
	return nil
}

// maxExportPatients bounds the patient parameters of one kick-off (each
// is a read and a decision before the export starts); more patients are
// a Group's to name.
const maxExportPatients = 500

// exportablePatient answers the same for a patient that does not exist,
// one the caller may not read and one outside the Group: nobody learns
// from a kick-off that a record exists that they could not read.
func (s *Server) exportablePatient(c *fiber.Ctx, p *policy.Principal, id string, req *bulk.Request) error {
	ref := "Patient/" + id
	refused := errorAt(fiber.StatusBadRequest, "not-found", "patient",
		"patient: "+ref+" is not a patient this export can hold (no such patient, not one you may read, or not a member of the Group)")
	v, err := s.store.Current(c.UserContext(), "Patient", id)
	absent := errors.Is(err, store.ErrNotFound) || err == nil && v.Deleted
	if err != nil && !absent {
		return err
	}
	t := policy.Target{Type: "Patient", ID: id, Patients: []string{ref}}
	if !absent {
		t = targetOf(&v)
	}
	// Decided for an absent patient too (as if it were one of its own):
	// a decision that cannot be made now (503) must not tell them apart.
	d := s.decider.Decide(p, policy.Read, t, policy.Glass{})
	switch {
	case d.Unavailable:
		return errConsentUnavailable
	case absent, req.Level == bulk.Group && !slices.Contains(req.Members, ref):
		return refused
	}
	if s.note(c, policy.Read, t, d); !d.Allow {
		return refused
	}
	return nil
}

// preferAsync reports whether the Prefer header asks for respond-async.
func preferAsync(c *fiber.Ctx) bool {
	for _, p := range strings.Split(c.Get("Prefer"), ",") {
		if strings.EqualFold(strings.TrimSpace(p), "respond-async") {
			return true
		}
	}
	return false
}

// groupMembers reads the Group of the URL, as a read would (hidden from
// those who may not read it), and returns its Patient members.
func (s *Server) groupMembers(c *fiber.Ctx) ([]string, error) {
	id := c.Params("id")
	if !fhir.ValidID(id) {
		return nil, errorf(fiber.StatusNotFound, "not-found", "resource not found")
	}
	g, err := s.store.Read(c.UserContext(), "Group", id)
	if err != nil {
		return nil, err
	}
	if err := s.reveal(c, policy.Read, targetOf(&g)); err != nil {
		return nil, err
	}
	if g.Deleted {
		return nil, gone(g)
	}
	var body struct {
		Member []struct {
			Entity struct {
				Reference string `json:"reference"`
			} `json:"entity"`
		} `json:"member"`
	}
	if err := json.Unmarshal(g.Body, &body); err != nil {
		return nil, err
	}
	base := s.base(c) + "/"
	var out []string
	for _, m := range body.Member {
		ref := strings.TrimPrefix(m.Entity.Reference, base)
		if pid, ok := strings.CutPrefix(ref, "Patient/"); ok && fhir.ValidID(pid) && !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	}
	return out, nil
}

func (s *Server) exportStatus(c *fiber.Ctx) error {
	noteOf(c).interaction = "operation"
	st, err := s.cfg.Export.Status(c.UserContext(), principal(c), c.Params("job"))
	switch {
	case errors.Is(err, bulk.ErrFailed):
		return errorf(fiber.StatusInternalServerError, "exception", err.Error())
	case errors.Is(err, store.ErrNotFound):
		return errNoExport
	case err != nil:
		return err
	case !st.Done:
		c.Set("X-Progress", st.Progress)
		c.Set(fiber.HeaderRetryAfter, "2")
		return c.SendStatus(fiber.StatusAccepted)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(fiber.StatusOK).Send(st.Manifest)
}

var errNoExport = errorf(fiber.StatusNotFound, "not-found", "no such export (unknown, expired or cancelled)")

func (s *Server) exportCancel(c *fiber.Ctx) error {
	noteOf(c).interaction = "operation"
	if err := s.cfg.Export.Cancel(c.UserContext(), principal(c), c.Params("job")); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNoExport
		}
		return err
	}
	c.Set(fiber.HeaderContentType, s.contentType(c))
	return c.Status(fiber.StatusAccepted).Send(fhir.OperationOutcome(issue("information", "informational",
		"the export was cancelled and its files deleted")))
}

// exportFile serves one output file: only to the principal who started
// the export (or an administrator); anyone else gets the answer for a
// file that does not exist.
func (s *Server) exportFile(c *fiber.Ctx) error {
	n := noteOf(c)
	n.interaction = "operation"
	job, name := c.Params("job"), c.Params("file")
	n.query = "$export-file/" + truncate(job, 64) + "/" + truncate(name, 32)
	num, err := strconv.Atoi(strings.TrimSuffix(name, ".ndjson"))
	if err != nil {
		return errNoExportFile
	}
	ctx := context.WithoutCancel(c.UserContext())
	_, write, err := s.cfg.Export.File(ctx, principal(c), job, num)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, bulk.ErrNotReady):
		return errNoExportFile
	case err != nil:
		return err
	}
	c.Set(fiber.HeaderContentType, mimeNDJSON)
	c.Response().SetBodyStreamWriter(func(w *bufio.Writer) {
		if err := write(w); err != nil {
			// The status is sent: the client sees a short body.
			s.log.Warn("bulk export: download cut short", "job", job, "err", err)
		}
	})
	return nil
}

var errNoExportFile = errorf(fiber.StatusNotFound, "not-found", "no such export file")
