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
	f.Get("/$export", s.exportKickoff(bulk.System))
	f.Get("/Patient/$export", s.exportKickoff(bulk.Patient))
	f.Get("/Group/:id/$export", s.exportKickoff(bulk.Group))
	f.Get("/$export-poll-status/:job", s.exportStatus)
	f.Delete("/$export-poll-status/:job", s.exportCancel)
}

// exportParams are the kick-off parameters served; the others the IG
// defines are refused (or, with Prefer: handling=lenient, ignored).
var exportUnsupported = []string{"_typeFilter", "_elements", "patient", "includeAssociatedData", "organizeOutputBy", "allowPartialManifests"}

func (s *Server) exportKickoff(level bulk.Level) fiber.Handler {
	return func(c *fiber.Ctx) error {
		n := noteOf(c)
		n.interaction = "operation"
		raw := string(c.Request().URI().QueryString())
		n.query = strings.TrimPrefix(c.Path(), "/fhir/") + "?" + raw
		if !preferAsync(c) {
			return errorf(fiber.StatusBadRequest, "invalid", "a bulk export runs asynchronously: send the header Prefer: respond-async")
		}
		params, err := url.ParseQuery(raw)
		if err != nil {
			return errorf(fiber.StatusBadRequest, "invalid", "the query string is malformed")
		}
		lenient := prefer(c, "handling") == "lenient"
		p := principal(c)
		req := bulk.Request{Level: level, Base: s.base(c)}
		req.URL = req.Base + strings.TrimPrefix(c.Path(), "/fhir")
		if raw != "" {
			req.URL += "?" + raw
		}
		for name, vs := range params {
			switch name {
			case "_outputFormat":
				// A '+' in the query is a space once decoded.
				switch f := strings.ReplaceAll(vs[0], " ", "+"); f {
				case mimeNDJSON, "application/ndjson", "ndjson":
				default:
					return errorAt(fiber.StatusBadRequest, "not-supported", "_outputFormat",
						"_outputFormat "+strconv.Quote(truncate(f, 64))+" is not supported: use application/fhir+ndjson (or application/ndjson, ndjson)")
				}
			case "_type":
				for _, v := range vs {
					for _, typ := range strings.Split(v, ",") {
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
				}
			case "_since":
				t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(vs[0], " ", "+"))
				if err != nil {
					return errorAt(fiber.StatusBadRequest, "invalid", "_since", "_since must be an instant such as 2026-01-02T03:04:05Z")
				}
				req.Since = t
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
		if level == bulk.Group {
			members, err := s.groupMembers(c)
			if err != nil {
				return err
			}
			req.Members = members
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
