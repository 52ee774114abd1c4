// Package rest serves the FHIR R4 RESTful API (http.html) over fiber. It
// authenticates every request, asks policy for a decision, parses and
// validates through package fhir, keeps versions in store, and is the one
// place where errors become HTTP statuses and OperationOutcomes.
package rest

import (
	"context"
	"io/fs"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/auth/smart"
	"github.com/fhirgate/fhirgate/fhir/bulk"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/registration"
	"github.com/fhirgate/fhirgate/store"
)

// Indexer extracts the search index values of a resource (fhir/search).
type Indexer func(typ string, res *fhirjson.Value) ([]store.IndexValue, error)

// Config wires a Server.
type Config struct {
	Store    *store.Store
	Verifier *auth.Verifier
	// BaseURL is the public FHIR base (e.g. https://fhir.example.org/fhir).
	// Empty: derived from each request's scheme and Host.
	BaseURL string
	// BodyLimit caps request bodies in bytes, after decompression; default
	// 16 MiB.
	BodyLimit int
	// RequestBudget is how long one search, history page, $everything or
	// batch/transaction may run before it is stopped as too costly;
	// default DefaultRequestBudget.
	RequestBudget time.Duration
	// Registry receives the HTTP metrics; nil: a private registry.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Indexer, if set, computes search index values on every write.
	Indexer Indexer
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// NoLog leaves versions out of the audit log: only for measuring what
	// the log costs (fhirbench), never in service.
	NoLog bool
	// Decider decides every interaction; nil: scopes and roles only, no
	// consent (every consent-based access is refused).
	Decider *policy.Decider
	// Audit records an AuditEvent per interaction; nil: no audit trail
	// (tests of the REST rules alone).
	Audit *audit.Recorder
	// Recorded keeps the AuditEvents clients post (the audit record
	// repository, auditrepo.go); nil: AuditEvent is read-only.
	Recorded *audit.Repository
	// SIWE and SMART serve the sign-in routes; nil: not offered.
	SIWE  *siwe.Service
	SMART *smart.Server
	// WellKnown is served as GET /.well-known/fhirgate (the chain and
	// contracts); nil: not served.
	WellKnown any
	// Anchor is the tamper-evident log: $proof, $verify and the
	// checkpoints; nil: not served.
	Anchor *anchor.Log
	// Web is the portal (package web): served at / and /verify.
	Web fs.FS
	// OnWrite, if set, is called with every committed version (from the
	// request's goroutine: keep it short).
	OnWrite func(*store.Write)
	// Relay serves POST /consent/relay and RelayStatus GET
	// /consent/relay/:tx for the signed-in patient: they return the HTTP
	// status and the JSON body. Nil: not served.
	Relay       func(ctx context.Context, p *policy.Principal, body []byte) (int, any)
	RelayStatus func(ctx context.Context, p *policy.Principal, tx string) (int, any)
	// RelayPrepare serves POST /consent/relay/prepare: the typed data the
	// patient's wallet signs, with their next nonce.
	RelayPrepare func(ctx context.Context, p *policy.Principal, body []byte) (int, any)
	// Export runs Bulk Data exports ($export); nil: not served.
	Export *bulk.Exporter
	// Registration keeps registration requests and serves the
	// /registration routes (registration.go); nil: not served.
	Registration *registration.Store
	// Health, if set, is asked by /readyz: an error makes it answer 503
	// with the error's text (e.g. anchor.Log.Health: the gateway cannot
	// anchor). No PHI in it: /readyz is public.
	Health func() error
}

// DefaultBodyLimit is the default request body cap.
const DefaultBodyLimit = 16 << 20

// Server is the FHIR REST API.
type Server struct {
	cfg     Config
	store   *store.Store
	app     *fiber.App
	log     *slog.Logger
	metrics *metrics
	ready   atomic.Bool
	now     func() time.Time
	decider *policy.Decider
	// capCache holds the CapabilityStatement bytes per base URL.
	capCache sync.Map
	// sessions remembers, for a second, what wallet tokens stand for
	// (session.go).
	sessions sessionCache
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// Lines logged with a request's context carry its id.
	cfg.Logger = slog.New(LogHandler(cfg.Logger.Handler()))
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.Decider == nil {
		cfg.Decider = &policy.Decider{}
	}
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger, now: cfg.Now, decider: cfg.Decider}
	s.metrics = newMetrics(cfg.Registry)
	s.app = fiber.New(fiber.Config{
		BodyLimit:             cfg.BodyLimit,
		ErrorHandler:          s.errorHandler,
		DisableStartupMessage: true,
		ReadTimeout:           60 * time.Second,
		WriteTimeout:          60 * time.Second,
		IdleTimeout:           120 * time.Second,
		CaseSensitive:         true,
		StrictRouting:         false, // the base URL works with and without a trailing slash
		ReadBufferSize:        16 << 10,
		// Parameters, headers and query values are copies, not views of
		// a buffer the next request on the connection overwrites: the
		// store and the consent memo keep type and id strings they are
		// given (the read cache's keys changed under it, BENCHMARKS §3).
		Immutable: true,
	})
	s.routes()
	return s
}

// App returns the fiber application (for tests: app.Test).
func (s *Server) App() *fiber.App { return s.app }

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.ready.Store(true)
	defer s.ready.Store(false)
	return s.app.Listener(ln)
}

// SetReady marks the server ready (Serve does this; in-process tests that
// use App().Test call it themselves).
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

// Shutdown stops accepting requests and waits for those in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	return s.app.ShutdownWithContext(ctx)
}

func (s *Server) routes() {
	app := s.app
	app.Use(s.observe)
	app.Use(s.inflate) // every body is bounded after decompression
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.SendString("ok\n") })
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", s.metrics.handler())
	s.authRoutes()
	s.registrationRoutes()
	if s.cfg.WellKnown != nil {
		app.Get("/.well-known/fhirgate", func(c *fiber.Ctx) error { return c.JSON(s.cfg.WellKnown) })
	}
	if s.cfg.Anchor != nil {
		app.Get("/anchor/checkpoints", s.checkpoints)
		app.Get("/anchor/consistency", s.consistency)
	}
	if s.cfg.Web != nil {
		s.webRoutes()
	}
	if s.cfg.Relay != nil {
		r := app.Group("/consent", s.authenticate)
		r.Post("/relay", func(c *fiber.Ctx) error {
			status, body := s.cfg.Relay(c.UserContext(), principal(c), c.Body())
			return c.Status(status).JSON(body)
		})
		if s.cfg.RelayPrepare != nil {
			r.Post("/relay/prepare", func(c *fiber.Ctx) error {
				status, body := s.cfg.RelayPrepare(c.UserContext(), principal(c), c.Body())
				return c.Status(status).JSON(body)
			})
		}
		r.Get("/relay/:tx", func(c *fiber.Ctx) error {
			status, body := s.cfg.RelayStatus(c.UserContext(), principal(c), c.Params("tx"))
			return c.Status(status).JSON(body)
		})
	}

	f := app.Group("/fhir")
	f.Get("/metadata", s.negotiate, s.capabilities)
	s.exportFileRoute(f)
	// Authenticated and audited before the format is negotiated: a
	// signed-in principal's 406 is audited like any other refusal.
	f.Use(s.authenticate, s.audited, s.negotiate)
	s.exportRoutes(f)
	s.auditRoutes(f)
	f.Post("/", s.bundleRequest)
	f.Get("/_history", s.historySystem)
	f.Get("/:type/_history", s.historyType)
	f.Post("/:type/_search", s.searchPost)
	f.Get("/:type", s.searchType)
	f.Post("/:type", s.create)
	f.Put("/:type", s.conditionalUpdate)
	f.Patch("/:type", s.conditionalPatch)
	f.Delete("/:type", s.conditionalDelete)
	s.proofRoutes(f)
	f.Get("/Patient/:id/$everything", s.everything)
	f.Post("/Patient/:id/$everything", s.everything)
	f.Get("/:type/:id/_history/:vid", s.vread)
	f.Get("/:type/:id/_history", s.historyInstance)
	f.Get("/:type/:id", s.read)
	f.Put("/:type/:id", s.update)
	f.Patch("/:type/:id", s.patch)
	f.Delete("/:type/:id", s.delete)
}

func (s *Server) readyz(c *fiber.Ctx) error {
	if !s.ready.Load() {
		return c.Status(fiber.StatusServiceUnavailable).SendString("not ready\n")
	}
	// The store must answer, not just be open.
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if _, err := s.store.Current(ctx, "Patient", "readiness-probe"); err != nil && err != store.ErrNotFound {
		return c.Status(fiber.StatusServiceUnavailable).SendString("store unavailable\n")
	}
	if s.cfg.Health != nil {
		if err := s.cfg.Health(); err != nil {
			return c.Status(fiber.StatusServiceUnavailable).SendString("not ready: " + err.Error() + "\n")
		}
	}
	return c.SendString("ready\n")
}

type ctxKey int

const principalKey ctxKey = iota

// authenticate requires a valid bearer token on every FHIR route it
// guards.
func (s *Server) authenticate(c *fiber.Ctx) error {
	p, err := s.bearer(c)
	if err != nil {
		return err
	}
	if err := s.checkSession(c.UserContext(), p); err != nil {
		return err
	}
	c.Locals(principalKey, p)
	return c.Next()
}

// bearer returns the principal of the request's bearer token.
func (s *Server) bearer(c *fiber.Ctx) (*policy.Principal, error) {
	h := c.Get(fiber.HeaderAuthorization)
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		if tok, ok = strings.CutPrefix(h, "bearer "); !ok {
			return nil, errMissingToken
		}
	}
	return s.cfg.Verifier.Verify(strings.TrimSpace(tok))
}

var errMissingToken = &httpError{
	status: fiber.StatusUnauthorized,
	issue:  issue("error", "login", "a bearer token is required (Authorization: Bearer ...)"),
	header: [2]string{"WWW-Authenticate", `Bearer realm="fhirgate"`},
}

func principal(c *fiber.Ctx) *policy.Principal {
	p, _ := c.Locals(principalKey).(*policy.Principal)
	return p
}

// base is the FHIR base URL for links in responses.
func (s *Server) base(c *fiber.Ctx) string {
	if s.cfg.BaseURL != "" {
		return s.cfg.BaseURL
	}
	return c.Protocol() + "://" + c.Hostname() + "/fhir"
}

// clock returns the current time at the precision versions keep.
func (s *Server) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }
