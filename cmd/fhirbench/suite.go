package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fhirgate/fhirgate/policy"
)

type suiteConfig struct {
	gateway  string
	clients  int
	warmup   time.Duration
	duration time.Duration
	rounds   int
	dir      string
	seed     int64
	pool     int
	maxLoad  float64
	maxWait  time.Duration
	perfDir  string
	out      string
	noInproc bool
	// gatewayArgs are added to 'gateway serve'.
	gatewayArgs []string
	maxOther    float64
	retries     int
	// noPractitioner skips the practitioner read phases; otherwise
	// practitionerPatients patients grant practitionerScope.
	noPractitioner       bool
	practitionerPatients int
	practitionerScope    string
	// compareNoLog: after the round's crud phases, a fresh gateway with
	// --no-log (no log leaves, so nothing anchored) runs the create phase
	// again ("create-nolog").
	compareNoLog bool
}

// gatewayProc is a gateway started by the suite.
type gatewayProc struct {
	cmd  *exec.Cmd
	base string
	data string
	pid  int
	done chan struct{}
}

// startGateway runs `gateway serve` on a free loopback port with data as
// its data directory, its log in logPath, and waits until it is ready.
func startGateway(bin, data, logPath string, extra []string) (*gatewayProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data, "--log-format", "text", "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "FHIRGATE_ADDR=", "FHIRGATE_DATA=", "FHIRGATE_BASE_URL=")
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	g := &gatewayProc{cmd: cmd, data: data, pid: cmd.Process.Pid, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, out)
	}()
	go func() { cmd.Wait(); logf.Close(); close(g.done) }()
	select {
	case line := <-lines:
		// "fhirgate serving http://127.0.0.1:PORT/fhir (data in DIR)"
		f := strings.Fields(line)
		if len(f) < 3 || f[1] != "serving" {
			g.stop()
			return nil, fmt.Errorf("gateway: unexpected first line %q (log: %s)", line, logPath)
		}
		g.base = f[2]
	case <-g.done:
		return nil, fmt.Errorf("gateway exited at start (log: %s)", logPath)
	case <-time.After(60 * time.Second):
		g.stop()
		return nil, fmt.Errorf("gateway did not start within 60 s (log: %s)", logPath)
	}
	ready := strings.TrimSuffix(g.base, "/fhir") + "/readyz"
	c := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if res, err := c.Get(ready); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return g, nil
			}
		}
	}
	g.stop()
	return nil, fmt.Errorf("gateway not ready within 30 s (log: %s)", logPath)
}

// token mints a system token with every scope on the gateway's data
// directory.
func (g *gatewayProc) token(bin string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "token", "--data", g.data, "--scope", "system/*.cruds "+policy.ScopeIdentityLinking, "--ttl", "4h")
	cmd.Env = append(os.Environ(), "FHIRGATE_DATA=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("gateway token: %v: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// stop ends the gateway with SIGTERM (SIGKILL after 20 s).
func (g *gatewayProc) stop() { stopProcess(g.cmd, g.done, 20*time.Second) }

// stopProcess ends a child process with SIGTERM, SIGKILL after grace;
// done is closed when it has exited.
func stopProcess(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		cmd.Process.Kill()
		<-done
	}
}

// phaseMetrics is what the gateway's own /metrics said about a phase.
type phaseMetrics struct {
	serverMean time.Duration // mean request latency inside the gateway
	commitMean time.Duration // mean store commit latency (creates, updates)
	commits    float64       // commits per second
	gcPerSec   float64
}

func metricsDelta(a, b metricsText, elapsed time.Duration, method, route string) phaseMetrics {
	var pm phaseMetrics
	d := func(name string, labels ...string) float64 { return b.sum(name, labels...) - a.sum(name, labels...) }
	if n := d("fhirgate_http_request_duration_seconds_count", `method="`+method+`"`, `route="`+route+`"`); n > 0 {
		pm.serverMean = time.Duration(d("fhirgate_http_request_duration_seconds_sum", `method="`+method+`"`, `route="`+route+`"`) / n * 1e9)
	}
	if n := d("fhirgate_store_commit_duration_seconds_count"); n > 0 {
		pm.commitMean = time.Duration(d("fhirgate_store_commit_duration_seconds_sum") / n * 1e9)
		pm.commits = n / elapsed.Seconds()
	}
	pm.gcPerSec = d("go_gc_duration_seconds_count") / elapsed.Seconds()
	return pm
}

// round is everything one round measured.
type round struct {
	res       map[string]*Result
	metrics   map[string]phaseMetrics
	rss       int64 // gateway RSS at the end of the round
	dataBytes int64 // gateway data directory at the end of the round
	// grantsEffective: from the first relayed grant to the last in force
	// (practitioner setup).
	grantsEffective time.Duration
}

// noise returns the largest share of the CPU other processes used during
// a phase of the round, and that phase.
func (rd round) noise() (float64, string) {
	worst, at := 0.0, ""
	for name, r := range rd.res {
		if p := r.CPU.otherPct(); p > worst {
			worst, at = p, name
		}
	}
	return worst, at
}

func runSuite(cfg suiteConfig, stdout, stderr io.Writer) error {
	if err := os.MkdirAll(cfg.dir, 0o700); err != nil {
		return err
	}
	work, err := os.MkdirTemp(cfg.dir, "fhirbench-suite-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// Interrupted: stop the gateway of the round and remove the work
	// directory before exiting.
	var (
		mu      sync.Mutex
		running *gatewayProc
	)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer func() { signal.Stop(sig); close(sig) }()
	go func() {
		if _, ok := <-sig; !ok {
			return
		}
		mu.Lock()
		if running != nil {
			running.stop()
		}
		os.RemoveAll(work)
		fmt.Fprintln(stderr, "suite: interrupted")
		os.Exit(130)
	}()
	// Run a private copy, so that a rebuild of the binary during the run
	// cannot mix two gateways in one report.
	bin := filepath.Join(work, "gateway")
	gwID, err := copyBinary(cfg.gateway, bin)
	if err != nil {
		return fmt.Errorf("suite: %w", err)
	}
	gwGo := "unknown"
	if bi, err := buildinfo.ReadFile(bin); err == nil {
		gwGo = bi.GoVersion
	} else {
		return fmt.Errorf("suite: %s is not a Go binary: %v", cfg.gateway, err)
	}
	if cfg.perfDir != "" {
		if err := os.MkdirAll(cfg.perfDir, 0o755); err != nil {
			return err
		}
	}

	if cfg.maxLoad > 0 {
		waitQuiet(cfg.maxLoad, cfg.maxWait, stderr)
	}
	loadBefore := loadAvg()
	startAt := time.Now()
	fmt.Fprintf(stderr, "suite: %d rounds, %d clients, %s per phase after %s warm-up; work dir %s (%s); load average %s\n",
		cfg.rounds, cfg.clients, cfg.duration, cfg.warmup, work, fsOf(work), loadBefore)

	runRound := func(r int) (round, error) {
		rd := round{res: map[string]*Result{}, metrics: map[string]phaseMetrics{}}
		add := func(res *Result, err error) error {
			if err != nil {
				return err
			}
			fmt.Fprintln(stderr, res)
			rd.res[res.Name] = res
			return nil
		}
		hc := rawHTTPConfig{clients: cfg.clients, warmup: cfg.warmup, duration: cfg.duration, seed: cfg.seed}
		if err := add(runRawHTTP(hc)); err != nil {
			return rd, err
		}
		if !cfg.noInproc {
			hc.inProcess = true
			if err := add(runRawHTTP(hc)); err != nil {
				return rd, err
			}
		}
		sh, err := createShape(cfg.seed)
		if err != nil {
			return rd, err
		}
		pc := rawPebbleConfig{dir: work, clients: cfg.clients, warmup: cfg.warmup, duration: cfg.duration, engine: "raw", sh: sh}
		if err := add(runRawPebble(pc)); err != nil {
			return rd, err
		}
		pc.engine = "store"
		if err := add(runRawPebble(pc)); err != nil {
			return rd, err
		}

		data := filepath.Join(work, fmt.Sprintf("gateway-%d", r))
		gw, err := startGateway(bin, data, filepath.Join(work, fmt.Sprintf("gateway-%d.log", r)), cfg.gatewayArgs)
		if err != nil {
			return rd, err
		}
		mu.Lock()
		running = gw
		mu.Unlock()
		defer func() {
			mu.Lock()
			running = nil
			mu.Unlock()
		}()
		tok, err := gw.token(bin)
		if err != nil {
			gw.stop()
			return rd, err
		}
		cc := crudConfig{base: gw.base, token: tok, clients: cfg.clients, warmup: cfg.warmup, duration: cfg.duration,
			pool: cfg.pool, seed: cfg.seed, serverPID: gw.pid, fieldUpdates: true}
		routes := map[string][2]string{"create": {"POST", "/fhir/:type"}, "create-nolog": {"POST", "/fhir/:type"}, "read": {"GET", "/fhir/:type/:id"},
			"update": {"PUT", "/fhir/:type/:id"}, "update-field": {"PUT", "/fhir/:type/:id"},
			"read-practitioner": {"GET", "/fhir/:type/:id"}, "read-system-same": {"GET", "/fhir/:type/:id"}}
		var before metricsText
		var perf *exec.Cmd
		var phaseStart time.Time
		cc.hook = func(phase string, begin bool) {
			if begin {
				before, _ = scrapeMetrics(gw.base)
				phaseStart = time.Now()
				if cfg.perfDir != "" {
					perf = startPerf(gw.pid, filepath.Join(cfg.perfDir, fmt.Sprintf("%s-r%d.perf.data", phase, r)), stderr)
				}
				return
			}
			if perf != nil {
				stopPerf(perf)
				perf = nil
			}
			after, err := scrapeMetrics(gw.base)
			if err != nil {
				fmt.Fprintf(stderr, "suite: gateway metrics: %v\n", err)
			}
			if err == nil && before != nil {
				rt := routes[phase]
				rd.metrics[phase] = metricsDelta(before, after, time.Since(phaseStart), rt[0], rt[1])
			}
		}
		if !cfg.noPractitioner {
			// Right after the system reads, on the same data: a
			// practitioner's consent-checked reads of K patients who
			// granted them by relayed signatures, and the system token's
			// reads of the same K.
			cc.afterRead = func() ([]*Result, error) {
				res, s, err := runPractitionerRead(practitionerConfig{base: gw.base, token: tok, patients: cfg.practitionerPatients,
					scope: cfg.practitionerScope, clients: cfg.clients, warmup: cfg.warmup, duration: cfg.duration, seed: cfg.seed,
					serverPID: gw.pid, systemSame: true, grantWait: time.Minute, hook: cc.hook}, stderr)
				if s != nil {
					rd.grantsEffective = s.effective
				}
				return res, err
			}
		}
		res, err := runCRUD(cc, stderr)
		if err == nil {
			rd.rss = procRSS(gw.pid)
			var size int64
			if size, err = dirSize(data); err == nil {
				rd.dataBytes = size
				fmt.Fprintf(stderr, "gateway: RSS %.0f MiB, data directory %.1f MiB at the end of the round\n", float64(rd.rss)/(1<<20), float64(size)/(1<<20))
			}
		}
		gw.stop()
		os.RemoveAll(data)
		if err != nil {
			return rd, err
		}
		for _, x := range res {
			rd.res[x.Name] = x
		}
		if cfg.compareNoLog {
			// The same create phase on a fresh gateway whose versions and
			// AuditEvents stay out of the Merkle log: no leaves, nothing
			// to integrate or anchor.
			data := filepath.Join(work, fmt.Sprintf("gateway-%d-nolog", r))
			args := append(slices.Clone(cfg.gatewayArgs), "--no-log")
			// Assigned, not declared: cc.hook reads the gateway's
			// metrics through gw.
			gw, err = startGateway(bin, data, filepath.Join(work, fmt.Sprintf("gateway-%d-nolog.log", r)), args)
			if err != nil {
				return rd, err
			}
			mu.Lock()
			running = gw
			mu.Unlock()
			tok, err = gw.token(bin)
			if err != nil {
				gw.stop()
				return rd, err
			}
			cc.base, cc.token, cc.serverPID = gw.base, tok, gw.pid
			x, _, err := runCreate(cc, "create-nolog", stderr)
			gw.stop()
			os.RemoveAll(data)
			if err != nil {
				return rd, err
			}
			rd.res[x.Name] = x
		}
		return rd, nil
	}
	var rounds []round
	discarded := 0
	for r := 1; r <= cfg.rounds; r++ {
		// With -max-other, a round in which other processes took more
		// than that share of the CPU is repeated; after the last repeat
		// the least noisy attempt is kept.
		var best *round
		bestNoise := 0.0
		for attempt := 1; ; attempt++ {
			fmt.Fprintf(stderr, "--- round %d/%d (load average %s)\n", r, cfg.rounds, loadAvg())
			rd, err := runRound(r)
			if err != nil {
				return err
			}
			worst, at := rd.noise()
			if best == nil || worst < bestNoise {
				best, bestNoise = &rd, worst
			}
			if cfg.maxOther <= 0 || worst <= cfg.maxOther {
				break
			}
			discarded++
			fmt.Fprintf(stderr, "suite: round %d attempt %d: other processes used %.0f %% of the CPU during %s (limit %.0f %%)\n", r, attempt, worst, at, cfg.maxOther)
			if attempt >= 1+cfg.retries {
				fmt.Fprintf(stderr, "suite: keeping the least noisy attempt (%.0f %%)\n", bestNoise)
				discarded--
				break
			}
			if cfg.maxLoad > 0 {
				waitQuiet(cfg.maxLoad, cfg.maxWait, stderr)
			}
		}
		rounds = append(rounds, *best)
	}
	loadAfter := loadAvg()

	var b strings.Builder
	writeSuiteReport(&b, cfg, rounds, suiteInfo{
		gatewayGo: gwGo, gatewayID: gwID, loadBefore: loadBefore, loadAfter: loadAfter, fs: fsOf(work), discarded: discarded,
		started: startAt, took: time.Since(startAt),
	})
	fmt.Fprint(stdout, b.String())
	if cfg.out != "" {
		return os.WriteFile(cfg.out, []byte(b.String()), 0o644)
	}
	return nil
}

// waitQuiet waits until the 1-minute load average is at most max (or
// maxWait has passed).
func waitQuiet(limit float64, maxWait time.Duration, log io.Writer) {
	deadline := time.Now().Add(maxWait)
	for {
		l := loadAvg1()
		if l <= limit {
			fmt.Fprintf(log, "suite: load average %s (≤ %.2f): starting\n", loadAvg(), limit)
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(log, "suite: load average still %s after %s: starting anyway\n", loadAvg(), maxWait)
			return
		}
		fmt.Fprintf(log, "suite: load average %s > %.2f: waiting\n", loadAvg(), limit)
		time.Sleep(15 * time.Second)
	}
}

func startPerf(pid int, out string, log io.Writer) *exec.Cmd {
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-p", fmt.Sprint(pid), "-o", out)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(log, "suite: perf: %v\n", err)
		return nil
	}
	return cmd
}

func stopPerf(cmd *exec.Cmd) {
	cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

type suiteInfo struct {
	gatewayGo             string
	gatewayID             string
	loadBefore, loadAfter string
	fs                    string
	discarded             int
	started               time.Time
	took                  time.Duration
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// across collects f of result name over the rounds that have it.
func across(rounds []round, name string, f func(*Result) float64) []float64 {
	var xs []float64
	for _, rd := range rounds {
		if r, ok := rd.res[name]; ok {
			xs = append(xs, f(r))
		}
	}
	return xs
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

var suiteRows = []struct{ name, what string }{
	{"raw-http", "bare fiber handler, fixed body, own process"},
	{"raw-http-in", "bare fiber handler, fixed body, inside fhirbench"},
	{"raw-pebble", "raw synced Pebble batches (a create's keys)"},
	{"engine", "store/pebble Apply of the same batch (conditional)"},
	{"create", "POST /Patient (validated, indexed, synced)"},
	{"create-nolog", "create (log+anchor off): the same creates on a fresh gateway with `--no-log` (no log leaves, nothing anchored; AuditEvents still written)"},
	{"read", "GET /Patient/{id} (authenticated)"},
	{"read-practitioner", "GET /Patient/{id} by a practitioner: SIWE token, consent-checked, audited; the K patients who granted"},
	{"read-system-same", "GET /Patient/{id}, system token, the same K patients"},
	{"update-field", "PUT /Patient/{id}: its own body, one phone number changed (an EHR's update of one field)"},
	{"update", "PUT /Patient/{id}: another Patient's body (every field and index value changes)"},
}

func writeSuiteReport(w io.Writer, cfg suiteConfig, rounds []round, info suiteInfo) {
	fmt.Fprintf(w, "### fhirbench suite, %s\n\n", info.started.UTC().Format("2006-01-02 15:04 MST"))
	cmdline := fmt.Sprintf("fhirbench suite -gateway %s -clients %d -duration %s -warmup %s -rounds %d", cfg.gateway, cfg.clients, cfg.duration, cfg.warmup, cfg.rounds)
	if a := strings.Join(cfg.gatewayArgs, " "); a != defaultGatewayArgs {
		cmdline += fmt.Sprintf(" -gateway-args '%s'", a)
	}
	if cfg.maxLoad > 0 {
		cmdline += fmt.Sprintf(" -max-load %g", cfg.maxLoad)
	}
	if cfg.maxOther > 0 {
		cmdline += fmt.Sprintf(" -max-other %g -retries %d", cfg.maxOther, cfg.retries)
	}
	if cfg.compareNoLog {
		cmdline += " -compare-nolog"
	}
	if cfg.noPractitioner {
		cmdline += " -no-practitioner"
	} else if cfg.practitionerPatients != defaultPractitionerPatients || cfg.practitionerScope != defaultPractitionerScope {
		cmdline += fmt.Sprintf(" -practitioner-patients %d -practitioner-scope '%s'", cfg.practitionerPatients, cfg.practitionerScope)
	}
	fmt.Fprintf(w, "- command: `%s`\n", cmdline)
	for _, l := range machineInfo(info.gatewayGo) {
		fmt.Fprintf(w, "- %s\n", l)
	}
	fmt.Fprintf(w, "- gateway binary: %s, run as `gateway serve %s`\n", info.gatewayID, strings.Join(cfg.gatewayArgs, " "))
	fmt.Fprintf(w, "- data and raw Pebble on: %s\n", info.fs)
	fmt.Fprintf(w, "- load average (1, 5, 15 min): %s before, %s after; run took %s\n", info.loadBefore, info.loadAfter, info.took.Round(time.Second))
	if cfg.maxOther > 0 {
		fmt.Fprintf(w, "- round attempts discarded because other processes used more than %.0f %% of the CPU during a phase: %d (the \"other processes\" column shows what the kept rounds saw)\n", cfg.maxOther, info.discarded)
	}
	var rss, data []float64
	for _, rd := range rounds {
		rss = append(rss, float64(rd.rss)/(1<<20))
		data = append(data, float64(rd.dataBytes)/(1<<20))
	}
	fmt.Fprintf(w, "- gateway at the end of a round (medians): RSS %.0f MiB, data directory %.0f MiB\n", median(rss), median(data))
	if !cfg.noPractitioner {
		var eff []float64
		for _, rd := range rounds {
			if rd.grantsEffective > 0 {
				eff = append(eff, rd.grantsEffective.Seconds())
			}
		}
		fmt.Fprintf(w, "- practitioner phases (right after read, on the same data): K = %d patients, each linked to its own fresh wallet, granted `%s` to one active Practitioner "+
			"by an EIP-712 signature the gateway relayed gas-free (`POST /consent/relay`); the practitioner's token comes from Sign-In With Ethereum; "+
			"all grants in force %.1f s (median) after the first relay; a patient without a grant is refused (404, as if absent) before each phase\n",
			cfg.practitionerPatients, cfg.practitionerScope, median(eff))
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "Medians of %d rounds (min–max of ops/s in brackets); %d closed-loop clients; latency in ms; CPU per successful operation; "+
		"\"other processes\": the largest share of the machine's CPU that processes other than fhirbench and the server used during the phase (noise from other users).\n\n", len(rounds), cfg.clients)
	fmt.Fprintln(w, "| phase | what | ops/s | p50 | p99 | p99.9 | errors | client CPU/op | server CPU/op | other processes |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, row := range suiteRows {
		rates := across(rounds, row.name, (*Result).Rate)
		if len(rates) == 0 {
			continue
		}
		q := func(p float64) float64 {
			return median(across(rounds, row.name, func(r *Result) float64 { return ms(r.Hist.Quantile(p)) }))
		}
		errs := across(rounds, row.name, func(r *Result) float64 { return float64(r.Errors()) })
		var errSum float64
		for _, e := range errs {
			errSum += e
		}
		perOp := func(f func(c cpuDelta) time.Duration) string {
			v := median(across(rounds, row.name, func(r *Result) float64 {
				if r.OK == 0 {
					return 0
				}
				return float64(f(r.CPU)) / float64(r.OK) / 1e3
			}))
			return fmt.Sprintf("%.0f µs", v)
		}
		client, server := perOp(func(c cpuDelta) time.Duration { return c.self }), "–"
		first := rounds[0].res[row.name]
		switch {
		case first != nil && first.InProcess:
			client, server = "–", perOp(func(c cpuDelta) time.Duration { return c.self })+" (one process)"
		case first != nil && first.CPU.serverOK:
			server = perOp(func(c cpuDelta) time.Duration { return c.server })
		}
		other := slices.Max(across(rounds, row.name, func(r *Result) float64 { return r.CPU.otherPct() }))
		fmt.Fprintf(w, "| %s | %s | **%.0f** (%.0f–%.0f) | %.2f | %.2f | %.2f | %.0f | %s | %s | ≤ %.0f %% |\n",
			row.name, row.what, median(rates), slices.Min(rates), slices.Max(rates), q(0.5), q(0.99), q(0.999), errSum, client, server, other)
	}

	ratio := func(a, b string) (float64, bool) {
		var xs []float64
		for _, rd := range rounds {
			x, y := rd.res[a], rd.res[b]
			if x != nil && y != nil && y.Rate() > 0 {
				xs = append(xs, x.Rate()/y.Rate())
			}
		}
		return median(xs), len(xs) > 0
	}
	fmt.Fprintf(w, "\nRatios (median of the per-round ratios, each round's figures measured minutes apart):\n\n")
	for _, rr := range [][3]string{
		{"create", "raw-pebble", "creates/s ÷ raw synced Pebble commits/s"},
		{"create", "engine", "creates/s ÷ store/pebble Apply/s"},
		{"create", "create-nolog", "logging+anchoring cost: creates/s (log on) ÷ creates/s (log+anchor off, `--no-log`)"},
		{"update", "raw-pebble", "updates/s ÷ raw synced Pebble commits/s"},
		{"update-field", "create", "one-field updates/s ÷ creates/s"},
		{"update", "create", "whole-body updates/s ÷ creates/s"},
		{"read", "raw-http", "reads/s ÷ bare fiber req/s (own process)"},
		{"read", "raw-http-in", "reads/s ÷ bare fiber req/s (inside fhirbench)"},
		{"read-practitioner", "read-system-same", "practitioner reads/s ÷ system reads/s of the same K patients (the consent layer)"},
		{"read-practitioner", "read", "practitioner reads/s ÷ system reads/s (read phase, all created patients)"},
		{"read-practitioner", "raw-http", "practitioner reads/s ÷ bare fiber req/s (own process)"},
		{"read-system-same", "raw-http", "system reads/s of the K patients ÷ bare fiber req/s (own process)"},
	} {
		if v, ok := ratio(rr[0], rr[1]); ok {
			fmt.Fprintf(w, "- %s: **%.2f**\n", rr[2], v)
		}
	}

	fmt.Fprintf(w, "\nInside the gateway (its /metrics, medians):\n\n")
	fmt.Fprintln(w, "| phase | mean latency in gateway | mean store commit | commits/s | GC/s |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, ph := range []string{"create", "create-nolog", "read", "read-practitioner", "read-system-same", "update-field", "update"} {
		var sm, cm, cs, gc []float64
		for _, rd := range rounds {
			if pm, ok := rd.metrics[ph]; ok {
				sm = append(sm, ms(pm.serverMean))
				cm = append(cm, ms(pm.commitMean))
				cs = append(cs, pm.commits)
				gc = append(gc, pm.gcPerSec)
			}
		}
		if len(sm) == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s | %.2f ms | %.2f ms | %.0f | %.1f |\n", ph, median(sm), median(cm), median(cs), median(gc))
	}

	writeLayers(w, rounds)

	fmt.Fprintf(w, "\nTargets (2 cores):\n\n")
	target := func(what string, got, want float64, higher bool, unit string) {
		f := func(v float64) string {
			if unit == "ms" {
				return fmt.Sprintf("%.2f ms", v)
			}
			return fmt.Sprintf("%.0f%s", v, unit)
		}
		switch {
		case higher && got >= want, !higher && got <= want:
			fmt.Fprintf(w, "- %s: %s, target %s %s: **met**\n", what, f(got), map[bool]string{true: "≥", false: "≤"}[higher], f(want))
		case higher:
			fmt.Fprintf(w, "- %s: %s, target ≥ %s: **missed by %.0f %%** (needs ×%.2f)\n", what, f(got), f(want), 100*(1-got/want), want/got)
		default:
			fmt.Fprintf(w, "- %s: %s, target ≤ %s: **missed by %.0f %%** (needs ÷%.2f)\n", what, f(got), f(want), 100*(got/want-1), got/want)
		}
	}
	if rates := across(rounds, "create", (*Result).Rate); len(rates) > 0 {
		target(fmt.Sprintf("creates/s at %d clients", cfg.clients), median(rates), 5000, true, "/s")
	}
	if r, ok := ratio("create", "create-nolog"); ok {
		cost := 100 * (1 - r)
		verdict := "**met**"
		switch {
		case cost > 10:
			verdict = fmt.Sprintf("**missed** (creates/s must reach %.0f %% of the log-off figure; they reach %.0f %%)", 90.0, 100*r)
		case cost < 0:
			verdict = "**met** (creates were no slower with the log than without)"
		}
		fmt.Fprintf(w, "- logging and anchoring cost (1 − creates/s with the log ÷ without, median per-round ratio %.2f): %.1f %% of create throughput, target ≤ 10 %%: %s\n", r, cost, verdict)
	}
	if rates := across(rounds, "read", (*Result).Rate); len(rates) > 0 {
		target(fmt.Sprintf("authenticated reads/s at %d clients", cfg.clients), median(rates), 40000, true, "/s")
		target(fmt.Sprintf("read p99 at %d clients", cfg.clients), median(across(rounds, "read", func(r *Result) float64 { return ms(r.Hist.Quantile(0.99)) })), 5, false, "ms")
	}
	if rates := across(rounds, "read-practitioner", (*Result).Rate); len(rates) > 0 {
		target(fmt.Sprintf("authenticated, consent-checked, audited practitioner reads/s at %d clients", cfg.clients), median(rates), 30000, true, "/s")
	}

	// CPU ceilings: what the machine could do if nothing but fhirbench and
	// the server ran, from the CPU time each operation cost.
	fmt.Fprintf(w, "\nCPU ceilings (%d CPUs ÷ CPU time per operation, client + server; what the phase could reach on an otherwise idle machine if CPU were the only limit):\n\n", runtime.NumCPU())
	for _, ph := range []string{"raw-http", "raw-http-in", "raw-pebble", "engine", "create", "create-nolog", "read", "read-practitioner", "read-system-same", "update-field", "update"} {
		per := median(across(rounds, ph, func(r *Result) float64 {
			if r.OK == 0 {
				return 0
			}
			c := r.CPU.self
			if r.CPU.serverOK {
				c += r.CPU.server
			}
			return float64(c) / float64(r.OK)
		}))
		if per > 0 {
			fmt.Fprintf(w, "- %s: %.0f µs per operation → at most **%.0f/s**\n", ph, per/1e3, float64(runtime.NumCPU())*1e9/per)
		}
	}

	// The load generator's own cost: it shares the CPUs with the server.
	fmt.Fprintf(w, "\nLoad generator overhead: ")
	var parts []string
	for _, ph := range []string{"raw-http", "read", "read-practitioner", "create"} {
		c := median(across(rounds, ph, func(r *Result) float64 {
			if r.OK == 0 {
				return 0
			}
			return float64(r.CPU.self) / float64(r.OK) / 1e3
		}))
		share := median(across(rounds, ph, func(r *Result) float64 { return pct(r.CPU.self, r.CPU.total) }))
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f µs CPU/request (%.0f %% of the machine)", ph, c, share))
		}
	}
	fmt.Fprintf(w, "%s.\n", strings.Join(parts, "; "))
	fmt.Fprintf(w, "\n_%s, %d CPUs, GOMAXPROCS %d._\n", runtime.Version(), runtime.NumCPU(), runtime.GOMAXPROCS(0))
}

// writeLayers splits the cost of a read by layer: the bare HTTP handler,
// then the gateway with a system token (authentication, scopes, the
// store, the audit record), then a practitioner's read (its principal and
// the consent check), the last two on the same K patients.
func writeLayers(w io.Writer, rounds []round) {
	layers := []struct{ phase, what string }{
		{"raw-http", "bare fiber handler: HTTP only"},
		{"read-system-same", "+ bearer token, scopes, store read, audit record (system token, K patients)"},
		{"read-practitioner", "+ practitioner principal and consent check (same K patients)"},
	}
	for _, l := range layers {
		if len(across(rounds, l.phase, (*Result).Rate)) == 0 {
			return
		}
	}
	perOp := func(phase string, f func(c cpuDelta) time.Duration) float64 {
		return median(across(rounds, phase, func(r *Result) float64 {
			if r.OK == 0 {
				return 0
			}
			return float64(f(r.CPU)) / float64(r.OK) / 1e3
		}))
	}
	fmt.Fprintf(w, "\nA read, layer by layer (medians; CPU per successful read; the server's own process):\n\n")
	fmt.Fprintln(w, "| layer | phase | reads/s | ÷ previous | server CPU/read | added | mean in gateway | client CPU/read |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|")
	var prevRate, prevCPU float64
	for i, l := range layers {
		rate := median(across(rounds, l.phase, (*Result).Rate))
		cpu := perOp(l.phase, func(c cpuDelta) time.Duration { return c.server })
		client := perOp(l.phase, func(c cpuDelta) time.Duration { return c.self })
		ratio, added, inGW := "–", "–", "–"
		if i > 0 && prevRate > 0 {
			ratio = fmt.Sprintf("%.2f", rate/prevRate)
			added = fmt.Sprintf("%+.0f µs", cpu-prevCPU)
		}
		var sm []float64
		for _, rd := range rounds {
			if pm, ok := rd.metrics[l.phase]; ok && pm.serverMean > 0 {
				sm = append(sm, float64(pm.serverMean)/1e3)
			}
		}
		if len(sm) > 0 {
			inGW = fmt.Sprintf("%.0f µs", median(sm))
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %.0f µs | %s | %s | %.0f µs |\n", l.what, l.phase, rate, ratio, cpu, added, inGW, client)
		prevRate, prevCPU = rate, cpu
	}
}

var errUsage = errors.New("usage")

// defaultGatewayArgs keep the embedded dev chain off the fixed port 8545
// (other gateways on a shared machine may hold it); the chain itself still
// runs.
const defaultGatewayArgs = "--eth-listen="

// copyBinary copies the executable src to dst and describes it (size,
// modification time, sha256 prefix).
func copyBinary(src, dst string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return "", err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s (%.0f MB, built %s, sha256 %x)", src, float64(fi.Size())/1e6, fi.ModTime().UTC().Format("2006-01-02 15:04 MST"), h.Sum(nil)[:6]), nil
}
