package rest

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/gofiber/fiber/v2"
)

// Bounded work per request (docs/limits.md). Every request body is held to
// the body limit after decompression; searches, history, $everything and
// batches run within a time budget.

// maxContentCodings bounds the codings one body may be wrapped in
// ("gzip, br"): each layer keeps its own decoder window.
const maxContentCodings = 2

// supportedCodings are the content codings request bodies may use
// (RFC 9110 §8.4.1; x-gzip is gzip).
const supportedCodings = "gzip, deflate, br, identity"

// inflate decodes a Content-Encoding'd request body before any handler
// reads it, holding the decoded size to the body limit (fasthttp checked
// the limit on the encoded bytes only, and fiber's Ctx.Body would inflate
// without any bound). The body is replaced by its decoded bytes and the
// header removed, so nothing decodes it again. It answers 415 for a coding
// it does not know, 413 past the limit and 400 for corrupt data.
func (s *Server) inflate(c *fiber.Ctx) error {
	var codings []string
	c.Request().Header.VisitAll(func(k, v []byte) {
		if !strings.EqualFold(string(k), fiber.HeaderContentEncoding) {
			return
		}
		for _, cd := range strings.Split(string(v), ",") {
			if cd = strings.ToLower(strings.TrimSpace(cd)); cd != "" && cd != "identity" {
				codings = append(codings, cd)
			}
		}
	})
	if codings == nil && len(c.Request().Header.Peek(fiber.HeaderContentEncoding)) == 0 {
		return c.Next()
	}
	c.Request().Header.Del(fiber.HeaderContentEncoding)
	for _, cd := range codings {
		switch cd {
		case "gzip", "x-gzip", "deflate", "br":
		default:
			e := errorf(fiber.StatusUnsupportedMediaType, "not-supported",
				"unsupported Content-Encoding '"+truncate(cd, 40)+"'; use one of "+supportedCodings)
			e.header = [2]string{fiber.HeaderAcceptEncoding, supportedCodings}
			return e
		}
	}
	if len(codings) > maxContentCodings {
		e := errorf(fiber.StatusUnsupportedMediaType, "not-supported",
			"at most "+strconv.Itoa(maxContentCodings)+" content codings per request body")
		e.header = [2]string{fiber.HeaderAcceptEncoding, supportedCodings}
		return e
	}
	body := c.Request().Body()
	if len(codings) == 0 || len(body) == 0 {
		return c.Next()
	}
	out, err := decodeBody(body, codings, s.cfg.BodyLimit)
	if err != nil {
		return err
	}
	c.Request().SetBodyRaw(out)
	return c.Next()
}

// errInflatedTooLarge refuses a body whose decoded size is over the limit.
func errInflatedTooLarge(limit int) *httpError {
	return errorf(fiber.StatusRequestEntityTooLarge, "too-long",
		"the request body, decoded, exceeds the body limit of "+strconv.Itoa(limit)+" bytes")
}

// decodeBody undoes codings (in the order they were applied, RFC 9110
// §8.4) and returns the decoded body, at most limit bytes. It decodes
// twice: once counting, keeping nothing, so that a body decoding past the
// limit costs no memory; then into a buffer of the exact size.
func decodeBody(body []byte, codings []string, limit int) ([]byte, error) {
	// Brotli keeps a window of up to 16 MiB: the second pass reuses the
	// first's.
	brs := make([]*brotli.Reader, len(codings))
	n, err := decodeInto(io.Discard, body, codings, limit, brs)
	if err != nil {
		return nil, err
	}
	buf := bytes.NewBuffer(make([]byte, 0, n))
	if _, err := decodeInto(buf, body, codings, limit, brs); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeInto writes the decoded body to w and returns its size, refusing
// it once it passes limit.
func decodeInto(w io.Writer, body []byte, codings []string, limit int, brs []*brotli.Reader) (int64, error) {
	var r io.Reader = bytes.NewReader(body)
	for i := len(codings) - 1; i >= 0; i-- {
		var err error
		switch {
		case codings[i] == "br" && brs[i] != nil:
			err = brs[i].Reset(r)
			r = brs[i]
		case codings[i] == "br":
			brs[i] = brotli.NewReader(r)
			r = brs[i]
		default:
			r, err = decoder(codings[i], r)
		}
		if err != nil {
			return 0, errorf(fiber.StatusBadRequest, "invalid", "the request body is not valid "+codings[i]+" data")
		}
	}
	n, err := io.Copy(w, io.LimitReader(r, int64(limit)+1))
	switch {
	case n > int64(limit):
		return 0, errInflatedTooLarge(limit)
	case err != nil:
		return 0, errorf(fiber.StatusBadRequest, "invalid", "the request body is not valid "+strings.Join(codings, ", ")+" data")
	}
	return n, nil
}

func decoder(coding string, r io.Reader) (io.Reader, error) {
	switch coding {
	case "gzip", "x-gzip":
		return gzip.NewReader(r)
	case "deflate":
		// HTTP's deflate is the zlib format (RFC 9110 §8.4.1.2); some
		// clients send raw deflate, which has no zlib header.
		br := bufio.NewReaderSize(r, 512)
		if hdr, _ := br.Peek(2); len(hdr) == 2 && hdr[0]&0x0f == 8 && (uint16(hdr[0])<<8|uint16(hdr[1]))%31 == 0 {
			return zlib.NewReader(br)
		}
		return flate.NewReader(br), nil
	}
	return nil, errors.New("unknown coding")
}

// DefaultRequestBudget is how long one search, history page, $everything
// or batch/transaction may run unless Config.RequestBudget says otherwise.
const DefaultRequestBudget = 5 * time.Second

// errBudget is the cause of a budget's deadline.
var errBudget = errors.New("request budget exceeded")

func (s *Server) requestBudget() time.Duration {
	if s.cfg.RequestBudget > 0 {
		return s.cfg.RequestBudget
	}
	return DefaultRequestBudget
}

// errTooCostly answers a request that ran out of its time budget.
func (s *Server) errTooCostly() *httpError {
	return errorf(budgetStatus, "too-costly",
		"the request was stopped at its time budget of "+s.requestBudget().String()+"; narrow it (more criteria, smaller pages, fewer entries)")
}

// budgetStatus is the status of a request stopped at its budget: the
// request, not the server, is at fault (as for any too-costly search),
// and the same request would be stopped again.
const budgetStatus = fiber.StatusBadRequest

// budgetKey carries a parent request's budget into the sub-requests a
// batch dispatches (a fasthttp user value).
type budgetKey struct{}

// withBudget runs fn with the request's user context bounded by the time
// budget (a batch entry's sub-request shares its batch's deadline), then
// restores the context, so that what runs after the handler (the audit
// record) is not cut short. A failure once the budget is spent is a
// too-costly refusal.
func (s *Server) withBudget(c *fiber.Ctx, fn func() error) error {
	parent := c.UserContext()
	if pc, ok := c.Context().UserValue(budgetKey{}).(context.Context); ok && pc != nil {
		parent = pc
	}
	ctx, cancel := context.WithTimeoutCause(parent, s.requestBudget(), errBudget)
	defer cancel()
	orig := c.UserContext()
	c.SetUserContext(ctx)
	err := fn()
	c.SetUserContext(orig)
	if err != nil && overBudget(ctx) {
		return s.errTooCostly()
	}
	return err
}

// overBudget reports whether ctx's budget (or its batch's) is spent.
func overBudget(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), errBudget)
}
