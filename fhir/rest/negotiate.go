package rest

import (
	"mime"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/fhir"
)

const (
	mimeFHIRJSON  = "application/fhir+json"
	mimeJSON      = "application/json"
	mimeJSONPatch = "application/json-patch+json"
)

type formatKey struct{}

// negotiate picks the response format from _format (which wins) or Accept,
// and answers 406 when the client accepts nothing we produce. Only JSON is
// served; application/json is treated as application/fhir+json.
func (s *Server) negotiate(c *fiber.Ctx) error {
	mt := mimeFHIRJSON
	if f := c.Query("_format"); f != "" {
		switch strings.TrimSpace(strings.SplitN(f, ";", 2)[0]) {
		case "json", mimeFHIRJSON:
		case mimeJSON:
			mt = mimeJSON
		default:
			c.Locals(formatKey{}, mimeFHIRJSON)
			return errorAt(fiber.StatusNotAcceptable, "not-supported", "_format", "only JSON is supported (_format=json)")
		}
	} else if a := c.Get(fiber.HeaderAccept); a != "" {
		var ok bool
		if mt, ok = acceptJSON(a); !ok {
			c.Locals(formatKey{}, mimeFHIRJSON)
			return errorf(fiber.StatusNotAcceptable, "not-supported", "only application/fhir+json and application/json are supported")
		}
	}
	c.Locals(formatKey{}, mt)
	return c.Next()
}

// acceptJSON returns the JSON media type an Accept header allows, best
// first, or false when it allows none.
func acceptJSON(accept string) (string, bool) {
	best, bestQ := "", -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if qs, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(qs, 64); err == nil {
				q = f
			}
		}
		if q <= 0 {
			continue
		}
		var m string
		switch mt {
		case mimeFHIRJSON, "*/*", "application/*":
			m = mimeFHIRJSON
		case mimeJSON:
			m = mimeJSON
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = m, q
		}
	}
	return best, best != ""
}

func (s *Server) contentType(c *fiber.Ctx) string {
	mt, _ := c.Locals(formatKey{}).(string)
	if mt == "" {
		mt = mimeFHIRJSON
	}
	return mt + "; charset=utf-8"
}

// requireBody checks the request's media type is one of want, or answers
// 415.
func requireBody(c *fiber.Ctx, want ...string) error {
	ct := c.Get(fiber.HeaderContentType)
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return errorf(fiber.StatusUnsupportedMediaType, "not-supported", "a Content-Type of "+strings.Join(want, " or ")+" is required")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return errorf(fiber.StatusUnsupportedMediaType, "not-supported", "only the utf-8 charset is supported")
	}
	for _, w := range want {
		if mt == w {
			return nil
		}
	}
	return errorf(fiber.StatusUnsupportedMediaType, "not-supported", "unsupported Content-Type "+mt+"; use "+strings.Join(want, " or "))
}

func issue(severity, code, diagnostics string) fhir.Issue {
	return fhir.Issue{Severity: severity, Code: code, Diagnostics: diagnostics}
}
