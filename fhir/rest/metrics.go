package rest

import (
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// seen holds the metrics of each (route, method, code) once looked
	// up: WithLabelValues hashes and copies its labels on every call, a
	// few allocations per request on the hot path. Routes, methods and
	// codes are finite sets (route patterns, not paths), so it is bounded.
	seen sync.Map // seriesKey -> *series
	// rereads counts requests answered a second time because a version
	// read from this replica's memory was no longer current (reread).
	rereads prometheus.Counter
}

type seriesKey struct {
	route, method string
	code          int
}

type series struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

func (m *metrics) series(route, method string, code int) *series {
	k := seriesKey{route, method, code}
	if v, ok := m.seen.Load(k); ok {
		return v.(*series)
	}
	v, _ := m.seen.LoadOrStore(k, &series{
		requests: m.requests.WithLabelValues(route, method, strconv.Itoa(code)),
		latency:  m.latency.WithLabelValues(route, method),
	})
	return v.(*series)
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirgate_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fhirgate_http_request_duration_seconds",
			Help:    "HTTP request latency by route and method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "method"}),
		rereads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fhirgate_http_rereads_total",
			Help: "Reads answered again from the store because the version this replica held was no longer current (shared store).",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.rereads)
	// Process and Go runtime figures help operators size the gateway; a
	// registry shared with another server may have them already.
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
}

// NewCommitHistogram returns the store commit latency metric, registered
// on reg, for store.Options.ObserveCommit.
func NewCommitHistogram(reg *prometheus.Registry) func(time.Duration) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "fhirgate_store_commit_duration_seconds",
		Help:    "Latency of durable store commits (including fsync).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	})
	reg.MustRegister(h)
	return func(d time.Duration) { h.Observe(d.Seconds()) }
}

// observe records every request; failed handlers are answered here so the
// recorded status is the one sent. It gives the request its id first, so
// that every line logged while serving it carries the id, and echoes the
// id in the response (after the handlers: a failed audit resets the
// response's headers).
func (s *Server) observe(c *fiber.Ctx) error {
	if c.Locals(rereadKey{}) != nil {
		return c.Next() // a request's second pass (reread): observed once
	}
	start := time.Now()
	id := requestID(c)
	if err := c.Next(); err != nil {
		if herr := s.errorHandler(c, err); herr != nil {
			return herr
		}
	}
	c.Set(HeaderRequestID, id)
	route := routeOf(c)
	method := methodLabel(c.Method())
	took := time.Since(start)
	ms := s.metrics.series(route, method, c.Response().StatusCode())
	ms.requests.Inc()
	ms.latency.Observe(took.Seconds())
	s.logRequest(c, route, method, took)
	return nil
}

// routeOf is the matched route pattern: low-cardinality, no ids.
func routeOf(c *fiber.Ctx) string {
	r := c.Route()
	if r == nil || r.Path == "/" || r.Path == "" {
		return "unmatched"
	}
	return r.Path
}

// methodLabel returns a constant string for the method: fiber's
// c.Method() aliases a reused request buffer, and a label kept by
// Prometheus must not change under it.
func methodLabel(m string) string {
	for _, known := range []string{fiber.MethodGet, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch,
		fiber.MethodDelete, fiber.MethodHead, fiber.MethodOptions} {
		if m == known {
			return known
		}
	}
	return "other"
}
