package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// driveConfig says how hard and how long to drive one phase.
type driveConfig struct {
	Name     string
	Clients  int
	Warmup   time.Duration // operations completing before this are not counted
	Duration time.Duration // measured window after the warm-up
	// ServerPID, if not 0, is the server process whose CPU time is
	// reported next to this process's.
	ServerPID int
	// InProcess: the server runs inside this process, so this process's
	// CPU time is client and server together.
	InProcess bool
	// Rate, if above 0, paces the clients: operation k is due at
	// start + k/Rate, the next idle client sends it then, and its latency
	// counts from when it was due, not from when it was sent, so a server
	// that falls behind shows it in the figures (no coordinated omission).
	Rate float64
}

// worker is one closed-loop client: it sends its next request when the
// previous one has been answered. Everything a request needs is
// allocated once per worker.
type worker struct {
	id   int
	rng  *rand.Rand
	req  *fasthttp.Request
	resp *fasthttp.Response
	buf  []byte
	n    int // operations this worker started

	hist      Histogram
	sent      Histogram // with a rate: latency from when sent (hist: from when due)
	slow      []int64   // with a rate: operations over slowMark, per second of the measured window
	ok        int64
	codes     map[int]int64
	transport int64
	firstErr  string
	results   int64    // search: matching entries returned
	ids       []string // create: ids of the created resources
	bodies    []int    // create: the pool index of each one's body
	state     any      // per-worker state of an operation
}

// slowMark: paced runs count, second by second, the operations slower
// than this, to show whether a tail is steady or comes in bursts.
const slowMark = 10 * time.Millisecond

// watchdogGrace is how long a timed phase waits for answers after its
// end.
const watchdogGrace = 2 * time.Minute

// errDone, returned by an operation, ends its worker (counted runs).
var errDone = errors.New("done")

// opFunc does one operation and returns its HTTP status (2xx: success;
// non-HTTP operations return 200) or a transport error.
type opFunc func(w *worker) (int, error)

// Result is what one phase measured.
type Result struct {
	Name      string
	Clients   int
	Elapsed   time.Duration
	OK        int64
	Codes     map[int]int64 // non-2xx statuses
	Transport int64         // requests without an HTTP answer
	FirstErr  string
	Hist      Histogram
	Sent      Histogram // with a rate: latency from when each was sent
	Slow      []int64   // with a rate: operations slower than slowMark, per second
	Pace      float64   // the driveConfig.Rate it ran at
	Results   int64
	CPU       cpuDelta
	InProcess bool
	Note      string
}

// Rate is successful operations per second.
func (r *Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Errors is the number of failed operations.
func (r *Result) Errors() int64 {
	n := r.Transport
	for _, c := range r.Codes {
		n += c
	}
	return n
}

// drive runs op from cfg.Clients goroutines until the warm-up and the
// measured window have passed, or, when cfg.Duration is 0, until op
// returns errDone in every worker (everything is measured then). setup, if not nil, prepares each worker.
func drive(cfg driveConfig, setup func(w *worker), op opFunc) *Result {
	if cfg.Clients < 1 {
		cfg.Clients = 1
	}
	workers := make([]*worker, cfg.Clients)
	for i := range workers {
		w := &worker{id: i, rng: rand.New(rand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano()))), codes: map[int]int64{}}
		if setup != nil {
			setup(w)
		}
		workers[i] = w
	}
	start := time.Now()
	t0 := start.Add(cfg.Warmup)
	t1 := t0.Add(cfg.Duration)
	counted := cfg.Duration <= 0 // run until op returns errDone
	if counted {
		t0, t1 = start, start.Add(1<<62)
	}

	var cpu0, cpu1 cpuSnap
	snapDone := make(chan struct{})
	if counted {
		cpu0 = snapCPU(cfg.ServerPID)
	} else {
		go func() {
			time.Sleep(time.Until(t0))
			cpu0 = snapCPU(cfg.ServerPID)
			time.Sleep(time.Until(t1))
			cpu1 = snapCPU(cfg.ServerPID)
			close(snapDone)
		}()
	}

	finished := make(chan struct{})
	defer close(finished)
	if !counted {
		// Requests have no deadlines: a server that stops answering must
		// not hang the tool.
		go func() {
			select {
			case <-finished:
			case <-time.After(time.Until(t1.Add(watchdogGrace))):
				fmt.Fprintf(os.Stderr, "fhirbench: %s: requests still unanswered %s after the end of the phase; giving up\n", cfg.Name, watchdogGrace)
				os.Exit(3)
			}
		}()
	}

	var tickets atomic.Int64 // operations handed out, with cfg.Rate
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				w.n++
				results := w.results
				begin := time.Now()
				if cfg.Rate > 0 {
					k := tickets.Add(1) - 1
					begin = start.Add(time.Duration(float64(k) / cfg.Rate * float64(time.Second)))
					if begin.After(t1) {
						return
					}
					time.Sleep(time.Until(begin))
				}
				sent := time.Now()
				status, err := op(w)
				end := time.Now()
				if end.After(t1) || err == errDone {
					w.results = results // not measured
					return
				}
				if end.Before(t0) {
					w.results = results
					continue
				}
				w.hist.Record(end.Sub(begin))
				if cfg.Rate > 0 {
					w.sent.Record(end.Sub(sent))
					if end.Sub(begin) > slowMark {
						sec := int(end.Sub(t0) / time.Second)
						for len(w.slow) <= sec {
							w.slow = append(w.slow, 0)
						}
						w.slow[sec]++
					}
				}
				switch {
				case err != nil:
					w.transport++
					if w.firstErr == "" {
						w.firstErr = err.Error()
					}
				case status >= 200 && status < 300:
					w.ok++
				default:
					w.codes[status]++
					if w.firstErr == "" && w.resp != nil {
						w.firstErr = fmt.Sprintf("HTTP %d: %s", status, truncate(string(w.resp.Body()), 300))
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := cfg.Duration
	if counted {
		cpu1 = snapCPU(cfg.ServerPID)
		elapsed = time.Since(start)
	} else {
		<-snapDone
	}

	r := &Result{Name: cfg.Name, Clients: cfg.Clients, Elapsed: elapsed, Codes: map[int]int64{}, InProcess: cfg.InProcess, Pace: cfg.Rate}
	for _, w := range workers {
		r.Hist.Merge(&w.hist)
		r.Sent.Merge(&w.sent)
		for i, n := range w.slow {
			for len(r.Slow) <= i {
				r.Slow = append(r.Slow, 0)
			}
			r.Slow[i] += n
		}
		r.OK += w.ok
		r.Transport += w.transport
		r.Results += w.results
		for c, n := range w.codes {
			r.Codes[c] += n
		}
		if r.FirstErr == "" {
			r.FirstErr = w.firstErr
		}
	}
	r.CPU = cpu1.sub(cpu0)
	return r
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// String formats a result in two lines.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s clients=%-3d ok=%-8d %9.0f/s  p50=%-8s p99=%-8s p99.9=%-8s max=%-8s errors=%d",
		r.Name, r.Clients, r.OK, r.Rate(), fmtDur(r.Hist.Quantile(0.5)), fmtDur(r.Hist.Quantile(0.99)),
		fmtDur(r.Hist.Quantile(0.999)), fmtDur(r.Hist.Max()), r.Errors())
	if r.Errors() > 0 {
		var codes []string
		for _, c := range slices.Sorted(mapsKeys(r.Codes)) {
			codes = append(codes, fmt.Sprintf("%d×%d", r.Codes[c], c))
		}
		if r.Transport > 0 {
			codes = append(codes, fmt.Sprintf("%d×transport", r.Transport))
		}
		fmt.Fprintf(&b, " [%s] first: %s", strings.Join(codes, " "), r.FirstErr)
	}
	if r.Results > 0 && r.OK > 0 {
		fmt.Fprintf(&b, " results/search=%.2f", float64(r.Results)/float64(r.OK))
	}
	if r.Note != "" {
		fmt.Fprintf(&b, " %s", r.Note)
	}
	if r.Pace > 0 {
		fmt.Fprintf(&b, "\n           paced at %.0f/s; from when sent (without the wait for a client or timer): p50=%s p99=%s p99.9=%s",
			r.Pace, fmtDur(r.Sent.Quantile(0.5)), fmtDur(r.Sent.Quantile(0.99)), fmtDur(r.Sent.Quantile(0.999)))
		fmt.Fprintf(&b, "\n           over %s, second by second: %v", fmtDur(slowMark), r.Slow)
	}
	b.WriteString("\n           " + r.CPU.describe(r.OK, r.InProcess))
	return b.String()
}

func mapsKeys(m map[int]int64) func(func(int) bool) {
	return func(yield func(int) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// target is a FHIR base URL reached with fasthttp.
type target struct {
	hc    *fasthttp.HostClient
	host  string
	path  string // base path, e.g. "/fhir"
	auth  string // "Bearer ..." or ""
	cType string
}

// newTarget returns a target for base. Requests carry no deadlines (a
// deadline costs every request a timer update, about 8 % of the bare
// limit's throughput); timed phases are guarded by drive's watchdog
// instead, and the loader, whose runs have no end time, passes a timeout.
func newTarget(base, token string, conns int) (*target, error) {
	return newTargetTimeout(base, token, conns, 0)
}

func newTargetTimeout(base, token string, conns int, timeout time.Duration) (*target, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("base URL %q: want http(s)://host:port/path", base)
	}
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	t := &target{
		hc: &fasthttp.HostClient{
			Addr:                          addr,
			IsTLS:                         u.Scheme == "https",
			MaxConns:                      conns + 8,
			ReadTimeout:                   timeout,
			WriteTimeout:                  timeout,
			MaxIdleConnDuration:           time.Minute,
			MaxIdemponentCallAttempts:     1,
			NoDefaultUserAgentHeader:      true,
			DisableHeaderNamesNormalizing: true,
			DisablePathNormalizing:        true,
			ReadBufferSize:                16 << 10,
			WriteBufferSize:               16 << 10,
			MaxConnWaitTimeout:            time.Minute,
		},
		host:  u.Host,
		path:  u.EscapedPath(),
		cType: "application/fhir+json",
	}
	if token != "" {
		t.auth = "Bearer " + token
	}
	return t, nil
}

// prepare gives w a request with the headers every request carries.
func (t *target) prepare(w *worker) {
	w.req = fasthttp.AcquireRequest()
	w.resp = fasthttp.AcquireResponse()
	w.req.Header.SetHost(t.host)
	w.req.Header.Set("Accept", "application/fhir+json")
	if t.auth != "" {
		w.req.Header.Set("Authorization", t.auth)
	}
}

// get sends GET uri (a path with query, built by the caller).
func (t *target) get(w *worker, uri []byte) (int, error) {
	w.req.Header.SetMethod(fasthttp.MethodGet)
	w.req.SetRequestURIBytes(uri)
	w.req.ResetBody()
	w.req.Header.Del("Content-Type")
	if err := t.hc.Do(w.req, w.resp); err != nil {
		return 0, err
	}
	return w.resp.StatusCode(), nil
}

// send sends method uri with a FHIR JSON body (not copied: body must stay
// unchanged until the call returns).
func (t *target) send(w *worker, method string, uri, body []byte) (int, error) {
	w.req.Header.SetMethod(method)
	w.req.SetRequestURIBytes(uri)
	w.req.Header.SetContentType(t.cType)
	w.req.SetBodyRaw(body)
	if err := t.hc.Do(w.req, w.resp); err != nil {
		return 0, err
	}
	return w.resp.StatusCode(), nil
}

// idFromLocation returns the id in a Location such as
// http://host/fhir/Patient/ID/_history/1.
func idFromLocation(loc []byte, typ string) (string, error) {
	s := "/" + string(loc) // a relative location starts with the type
	i := strings.Index(s, "/"+typ+"/")
	if i < 0 {
		return "", errors.New("no " + typ + " in location " + truncate(s[1:], 100))
	}
	s = s[i+len(typ)+2:]
	if j := strings.IndexByte(s, '/'); j >= 0 {
		s = s[:j]
	}
	return s, nil
}
