package rest

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/gofiber/fiber/v2"
)

// HeaderRequestID carries a request's id: taken from the client (or the
// load balancer) when it is sane, else made here; echoed in every
// response, and in every log line written while serving the request.
const HeaderRequestID = "X-Request-ID"

const maxRequestID = 128

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request id id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// saneRequestID reports whether a client's request id may be kept: 1 to
// 128 characters of the kinds request ids are written in (UUIDs, ULIDs,
// hex, base64, "svc/123"), nothing a log reader could take for structure.
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '-' || b == '_' || b == '.' || b == ':' || b == '/' || b == '+' || b == '=' || b == '@':
		default:
			return false
		}
	}
	return true
}

// newRequestID makes a request id: 128 random bits in hex, unique across
// replicas without coordination.
func newRequestID() string {
	var b [32]byte
	putHex := func(b []byte, u uint64) {
		for i := len(b) - 1; i >= 0; i, u = i-1, u>>4 {
			b[i] = "0123456789abcdef"[u&0xf]
		}
	}
	putHex(b[:16], rand.Uint64())
	putHex(b[16:], rand.Uint64())
	return string(b[:])
}

// requestID gives the request its id (the client's if sane) in its user
// context, where loggers given the context find it (LogHandler).
func requestID(c *fiber.Ctx) string {
	id := c.Get(HeaderRequestID)
	if !saneRequestID(id) {
		id = newRequestID()
	}
	c.SetUserContext(WithRequestID(c.UserContext(), id))
	return id
}

// LogHandler wraps h so that every record logged with a request's context
// (slog's ...Context methods, given c.UserContext() or a context derived
// from it) carries the attribute request_id. The gateway's logger is
// wrapped once, so that any component logging with the request's context
// is covered, not only this package.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{h}
}

type requestIDHandler struct{ h slog.Handler }

func (r requestIDHandler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r requestIDHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := RequestID(ctx); id != "" {
		rec.AddAttrs(slog.String("request_id", id))
	}
	return r.h.Handle(ctx, rec)
}

func (r requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{r.h.WithAttrs(as)}
}

func (r requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{r.h.WithGroup(name)}
}

// logRequest writes the request's access line (debug level: a line per
// request costs at full rate).
func (s *Server) logRequest(c *fiber.Ctx, route, method string, took time.Duration) {
	ctx := c.UserContext()
	if !s.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "request", slog.String("method", method), slog.String("route", route),
		slog.Int("status", c.Response().StatusCode()), slog.Duration("took", took))
}
