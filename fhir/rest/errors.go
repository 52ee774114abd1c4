package rest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// httpError is a failure the REST layer itself detects, with its status.
type httpError struct {
	status int
	issue  fhir.Issue
	header [2]string // optional extra header (name, value)
}

func (e *httpError) Error() string { return e.issue.Diagnostics }

func errorf(status int, code, diagnostics string) *httpError {
	return &httpError{status: status, issue: fhir.Issue{Severity: "error", Code: code, Diagnostics: diagnostics}}
}

func errorAt(status int, code, expression, diagnostics string) *httpError {
	e := errorf(status, code, diagnostics)
	e.issue.Expression = []string{expression}
	return e
}

// statusOf maps an error to an HTTP status and the issues to report. This
// is the one place that does so (DESIGN.md conventions).
func statusOf(err error) (int, []fhir.Issue, [2]string) {
	var he *httpError
	var fe *fhir.Error
	var fbe *fiber.Error
	switch {
	case errors.As(err, &he):
		return he.status, []fhir.Issue{he.issue}, he.header
	case errors.As(err, &fe):
		status := http.StatusBadRequest
		switch {
		case errors.Is(fe.Kind, fhir.ErrTooLarge):
			status = http.StatusRequestEntityTooLarge
		case errors.Is(fe.Kind, fhir.ErrBusinessRule):
			status = http.StatusUnprocessableEntity
		}
		return status, fe.Issues, [2]string{}
	case errors.Is(err, store.ErrUnknownOutcome):
		// Before ErrConflict: an unknown outcome may wrap one.
		return http.StatusServiceUnavailable, []fhir.Issue{{Severity: "error", Code: "timeout",
			Diagnostics: "the data store did not confirm the write: it may or may not have been applied; read the resource before retrying"}}, retryAfter
	case errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable, []fhir.Issue{{Severity: "error", Code: "no-store",
			Diagnostics: "the data store is unavailable; nothing was changed; retry later"}}, retryAfter
	case errors.Is(err, store.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, []fhir.Issue{{Severity: "error", Code: "too-long",
			Diagnostics: "the request writes more than the data store takes in one commit; send it in smaller parts"}}, [2]string{}
	case errors.Is(err, auth.ErrUnauthenticated):
		return http.StatusUnauthorized, []fhir.Issue{{Severity: "error", Code: "login", Diagnostics: err.Error()}},
			[2]string{"WWW-Authenticate", `Bearer realm="fhirgate", error="invalid_token"`}
	case errors.Is(err, policy.ErrDenied):
		return http.StatusForbidden, []fhir.Issue{{Severity: "error", Code: "forbidden", Diagnostics: err.Error()}}, [2]string{}
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, []fhir.Issue{{Severity: "error", Code: "not-found", Diagnostics: "resource not found"}}, [2]string{}
	case errors.Is(err, store.ErrTaken):
		return http.StatusConflict, []fhir.Issue{{Severity: "error", Code: "duplicate", Expression: []string{"identifier"},
			Diagnostics: "this wallet is already linked to another record: a wallet speaks for one Patient or Practitioner only"}}, [2]string{}
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, []fhir.Issue{{Severity: "error", Code: "conflict", Diagnostics: "the resource was changed concurrently; retry"}}, [2]string{}
	case errors.Is(err, store.ErrReadOnly):
		return errAuditCommit.status, []fhir.Issue{errAuditCommit.issue}, [2]string{}
	case errors.Is(err, store.ErrUnsupported):
		return http.StatusBadRequest, []fhir.Issue{{Severity: "error", Code: "not-supported", Diagnostics: strings.TrimPrefix(err.Error(), "store: ")}}, [2]string{}
	case errors.Is(err, store.ErrBadCursor):
		return http.StatusBadRequest, []fhir.Issue{{Severity: "error", Code: "invalid", Diagnostics: "invalid or expired paging link"}}, [2]string{}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, []fhir.Issue{{Severity: "error", Code: "timeout", Diagnostics: "the request timed out"}}, [2]string{}
	case errors.As(err, &fbe):
		return fbe.Code, []fhir.Issue{fiberIssue(fbe)}, [2]string{}
	}
	return http.StatusInternalServerError, []fhir.Issue{{Severity: "fatal", Code: "exception", Diagnostics: "internal server error"}}, [2]string{}
}

// retryAfter asks clients to wait a second before retrying a request the
// store could not serve.
var retryAfter = [2]string{fiber.HeaderRetryAfter, "1"}

// fiberIssue describes errors fiber raises before a handler runs.
func fiberIssue(e *fiber.Error) fhir.Issue {
	switch e.Code {
	case http.StatusNotFound:
		return fhir.Issue{Severity: "error", Code: "not-found", Diagnostics: "no such endpoint"}
	case http.StatusMethodNotAllowed:
		return fhir.Issue{Severity: "error", Code: "not-supported", Diagnostics: "this interaction is not allowed on this URL"}
	case http.StatusRequestEntityTooLarge:
		return fhir.Issue{Severity: "error", Code: "too-long", Diagnostics: "request body exceeds the size limit"}
	}
	code := "invalid"
	if e.Code >= 500 {
		code = "exception"
	}
	return fhir.Issue{Severity: "error", Code: code, Diagnostics: strings.ToLower(e.Message)}
}

// errorHandler answers every failed request with an OperationOutcome.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	status, issues, hdr := statusOf(err)
	if status == fiber.StatusRequestEntityTooLarge {
		// fasthttp refuses a body over the limit before any route runs:
		// a signed-in principal's 413 is audited here.
		if aerr := s.auditRefusal(c, status, issues); aerr != nil {
			status, issues, hdr = statusOf(errAuditUnavailable)
		}
	}
	if status >= 500 {
		// The error text comes from our own code and libraries; resource
		// content never reaches error strings.
		s.log.ErrorContext(c.UserContext(), "request failed", "method", c.Method(), "route", routeOf(c), "err", err)
	}
	if hdr[0] != "" {
		c.Set(hdr[0], hdr[1])
	}
	c.Set(fiber.HeaderContentType, s.contentType(c))
	return c.Status(status).Send(fhir.OperationOutcome(issues...))
}

var _ = slog.Default
