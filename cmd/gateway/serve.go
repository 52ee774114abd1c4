package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/anchor/ethanchor"
	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/fhir/rest"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/registration"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
	"github.com/fhirgate/fhirgate/web"
)

type serveConfig struct {
	addr, data, baseURL string
	dataGiven           bool // --data set: with a shared store it is scratch otherwise
	store               storeConfig
	bodyLimit           int
	requestBudget       time.Duration
	logFormat, logLevel string
	noLog               bool
	clients             string
	admins, regulators  string // wallets the operator names (siwe.ParseOperators)
	chain               chainConfig
	anchorInterval      time.Duration
	consentConfs        uint64
	consentMaxLag       time.Duration
	readCacheMB         int
	blockCacheMB        int
	debugAddr           string
	export              exportConfig
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", stderr)
	var cfg serveConfig
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&cfg.data, "data", "./data", "data directory (store, keys); with --store redis://… local scratch only (default: a temporary directory)")
	cfg.store.register(fs)
	fs.StringVar(&cfg.baseURL, "base-url", "", "public FHIR base URL (default http://<addr>/fhir)")
	fs.IntVar(&cfg.bodyLimit, "body-limit", rest.DefaultBodyLimit, "maximum request body in bytes")
	fs.DurationVar(&cfg.requestBudget, "request-budget", rest.DefaultRequestBudget, "how long one search, history page, $everything or batch/transaction may run before it is stopped as too costly")
	fs.StringVar(&cfg.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.IntVar(&cfg.readCacheMB, "read-cache-mb", store.DefaultReadCacheBytes>>20, "memory for the current versions reads are answered from (0: none)")
	fs.IntVar(&cfg.blockCacheMB, "block-cache-mb", pebble.DefaultCacheBytes>>20, "memory for the store's blocks (indexes and versions) read from disk")
	fs.StringVar(&cfg.debugAddr, "debug-addr", "", "serve Go's profiler (/debug/pprof/) on this address, apart from the API (empty: nowhere; keep it private)")
	fs.BoolVar(&cfg.noLog, "no-log", false, "benchmarking only: keep versions out of the audit log")
	fs.StringVar(&cfg.clients, "clients", "", "SMART Backend Services client registry (JSON); empty: no client_credentials sign-in")
	fs.StringVar(&cfg.admins, "admins", "", "administrators' wallet addresses, comma-separated: they sign in as admin (default on the embedded dev chain: dev account (9))")
	fs.StringVar(&cfg.regulators, "regulators", "", "regulators' wallet addresses, comma-separated: they sign in as regulator")
	fs.StringVar(&cfg.chain.rpc, "eth-rpc", "", "Ethereum JSON-RPC URL (ws:// for subscriptions); empty: the embedded dev chain")
	fs.StringVar(&cfg.chain.listen, "eth-listen", chain.DefaultListenAddr, "where the embedded dev chain serves JSON-RPC for wallets: host:port, a port alone (\":8545\") means loopback, 0.0.0.0:8545 every interface (empty: nowhere)")
	fs.StringVar(&cfg.chain.keyFile, "eth-key-file", "", "keystore file of the gateway's account (with --eth-rpc); passphrase in FHIRGATE_ETH_KEY_PASSWORD or the file FHIRGATE_ETH_KEY_PASSWORD_FILE")
	fs.StringVar(&cfg.chain.publicRPC, "eth-public-rpc", "", "JSON-RPC URL wallets and verifiers should use (default: the embedded chain's)")
	fs.DurationVar(&cfg.chain.blockPeriod, "eth-block-period", chain.DefaultBlockPeriod, "embedded dev chain: time between blocks (whole seconds; 0: a block per transaction)")
	fs.IntVar(&cfg.chain.idleBlocks, "eth-idle-blocks", 64, "embedded dev chain: pause empty blocks after this many (0: never)")
	fs.StringVar(&cfg.chain.anchorAddr, "audit-anchor-address", "", "AuditAnchor contract (default: deploy once)")
	fs.StringVar(&cfg.chain.consentAddr, "consent-registry-address", "", "ConsentRegistry contract (default: deploy once)")
	fs.Uint64Var(&cfg.chain.confirmations, "eth-confirmations", 1, "confirmations before a transaction counts as done")
	fs.DurationVar(&cfg.anchorInterval, "anchor-interval", 5*time.Second, "a checkpoint of the audit log is anchored this often (or every 10,000 leaves)")
	cfg.export.register(fs)
	fs.Uint64Var(&cfg.consentConfs, "consent-confirmations", 1, "confirmations before a consent change is enforced")
	fs.DurationVar(&cfg.consentMaxLag, "consent-max-lag", 30*time.Second, "refuse consent-based access when the consent mirror is this far behind the chain")
	if err := parse(fs, args); err != nil {
		fmt.Fprintf(stderr, "gateway serve: %v\n", err)
		return 2
	}
	cfg.dataGiven = flagGiven(fs, "data")
	if _, err := siwe.ParseOperators(cfg.admins, cfg.regulators); err != nil {
		fmt.Fprintf(stderr, "gateway serve: --admins/--regulators: %v\n", err)
		return 2
	}
	cfg.store.blockCacheMB = cfg.blockCacheMB
	if err := cfg.store.check(); err == nil {
		err = requireShared(cfg.store, cfg.chain.rpc, cfg.baseURL)
		if err != nil {
			fmt.Fprintf(stderr, "gateway serve: %v\n", err)
			return 2
		}
	} else {
		fmt.Fprintf(stderr, "gateway serve: %v\n", err)
		return 2
	}
	log, err := newLogger(cfg.logFormat, cfg.logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "gateway serve: %v\n", err)
		return 2
	}
	slog.SetDefault(log)
	setProcs()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runServer(ctx, cfg, log, stdout); err != nil {
		log.Error("gateway stopped", "err", err)
		return 1
	}
	return 0
}

// procsPerCore is how many goroutines run at once per core unless the
// operator sets GOMAXPROCS. Pebble's flushes and compactions run for
// hundreds of milliseconds on end: with one P per core they took every P
// and requests waited for Go's 10 ms preemption to get one (every ~24 s a
// second in which 1,400-1,900 of 3,000 searches took over 10 ms; p99
// 40-70 ms). With two Ps per core the kernel shares the cores and a
// request finds a P at once (p99 3-9 ms), and ingest is as fast as with
// one; four cost ingest 5 % (BENCHMARKS.md §3).
const procsPerCore = 2

// defaultProcs is Go's own GOMAXPROCS (the cores, or the container's CPU
// limit), read before setProcs changes it.
var defaultProcs = runtime.GOMAXPROCS(0)

// gcPercent is Go's GOGC unless the operator sets it: the heap may grow
// to three times what is live before a collection (Go's default: twice).
// At a sustained transaction load collections cost a tenth of the
// gateway's CPU at 100 and half that at 200: 1M-resource loads ran at
// 8,666 and 9,768 resources/s with 100, 10,515 and 10,755 with 200,
// alternating, for 300 MB more memory (BENCHMARKS.md §3).
const gcPercent = 200

// setProcs applies procsPerCore and gcPercent where the environment does
// not say otherwise.
func setProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(procsPerCore * defaultProcs)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

func runServer(ctx context.Context, cfg serveConfig, log *slog.Logger, stdout io.Writer) error {
	if cfg.store.shared() {
		dir, cleanup, err := scratchDir(cfg.data, cfg.dataGiven)
		if err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		defer cleanup()
		cfg.data = dir
	}
	if err := privateDataDir(cfg.data, log); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	reg := prometheus.NewRegistry()
	db, err := openEngine(ctx, cfg.store, cfg.data, log)
	if err != nil {
		return err
	}
	// Replicas and `gateway reindex` exclude each other (store.Maintain).
	leave, err := store.Serve(ctx, db, replicaID())
	if err != nil {
		db.Close()
		return err
	}
	// The audit trail keeps AuditEvents in its own compact layout; the store
	// serves them as a read-only type.
	trail, err := audit.OpenTrail(ctx, db)
	if err != nil {
		leave()
		db.Close()
		return err
	}
	// The events clients record (POST AuditEvent) in a journal of their
	// own; the store serves both as AuditEvent.
	recorded, err := audit.OpenRepository(ctx, db)
	if err != nil {
		leave()
		db.Close()
		return err
	}
	cacheBytes := cfg.readCacheMB << 20
	if cacheBytes <= 0 {
		cacheBytes = -1 // none
	}
	st := store.New(db, store.Options{ObserveCommit: rest.NewCommitHistogram(reg),
		Virtual: map[string]store.Virtual{"AuditEvent": audit.Journals(trail, recorded)}, ReadCacheBytes: cacheBytes, Shared: shared})
	defer func() { leave(); st.Close() }()
	// One signing key for every replica, in the store (a key file in the
	// data directory is imported into an empty store).
	key, err := auth.LoadOrCreateStoredKey(ctx, db, cfg.data)
	if err != nil {
		return err
	}

	cfg.chain.baseURL = cfg.baseURL
	chn, err := setupChain(ctx, cfg.chain, cfg.data, db, log)
	if err != nil {
		return err
	}
	defer chn.Close()
	sendLease, stopLease := keepSendLease(db, chn.sender, log)
	defer stopLease()

	anchorer, err := ethanchor.New(ctx, ethanchor.Config{Sender: chn.sender, Contract: chn.anchor, FromBlock: chn.anchorBlk, Logger: log})
	if err != nil {
		return err
	}
	defer anchorer.Close()
	alog, err := anchor.Open(ctx, anchor.Config{Store: st, Anchorer: anchorer, Lease: sendLease, Interval: cfg.anchorInterval,
		Confirmations: cfg.chain.confirmations, Logger: log})
	if err != nil {
		return err
	}
	reg.MustRegister(alog.Collector())
	anchorCtx, stopAnchor := context.WithCancel(context.Background())
	anchorDone := make(chan struct{})
	go func() { defer close(anchorDone); alog.Run(anchorCtx) }()
	defer func() { stopAnchor(); <-anchorDone }()

	pc, err := policy.NewConsent(time.Now)
	if err != nil {
		return err
	}
	var srv *rest.Server // the follower projects Consent resources through it
	cw, err := setupConsent(ctx, chn, st, sendLease, pc.Grants(), cfg.consentConfs, cfg.consentMaxLag, projector(&srv), log)
	if err != nil {
		return err
	}
	defer cw.relay.Close()
	decider := &policy.Decider{Consent: pc, Health: cw.follower.Health}
	recorder := audit.NewRecorder(trail, audit.Options{NoLog: cfg.noLog, Logger: log})
	reg.MustRegister(recorder.Collector())
	auditCtx, stopAudit := context.WithCancel(context.Background())
	// After a shutdown that ran out of time: refuse what is still queued
	// and wait for the commits in flight, before the store closes.
	defer func() { stopAudit(); recorder.Close(context.Background()) }()
	go recorder.Run(auditCtx)
	exporter, stopExport := startExport(st, decider, recorder, cfg.export, log)
	defer stopExport() // before the recorder and the store close

	if cfg.debugAddr != "" {
		stopDebug, err := serveDebug(cfg.debugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	base := cfg.baseURL
	if base == "" {
		base = "http://" + ln.Addr().String() + "/fhir"
	}
	rcfg := rest.Config{
		Store:        st,
		Verifier:     auth.NewVerifier(key, base),
		BaseURL:      base,
		BodyLimit:    cfg.bodyLimit,
		Registry:     reg,
		Logger:       log,
		Indexer:      indexer,
		NoLog:        cfg.noLog,
		Decider:      decider,
		Audit:        recorder,
		Recorded:     recorded,
		WellKnown:    wellKnown(chn, base),
		Anchor:       alog,
		Web:          web.FS(),
		OnWrite:      cw.onWrite,
		Relay:        cw.relayAPI.Submit,
		RelayStatus:  cw.relayAPI.Status,
		RelayPrepare: cw.relayAPI.Prepare,
		Health:       alog.Health,
		Export:       exporter,
		// Registration requests live in the same store: every replica
		// sees and decides them alike.
		Registration: registration.New(st.Engine(), nil),
	}
	rcfg.RequestBudget = cfg.requestBudget
	ops, devAdmin, err := operators(cfg.admins, cfg.regulators, chn)
	if err != nil {
		return err
	}
	clients, err := signIn(&rcfg, st, key, base, chn, cfg.clients, ops)
	if err != nil {
		return err
	}
	if err := cw.follower.AddGrantees(ctx, clients...); err != nil {
		return err
	}
	srv = rest.New(rcfg)
	followCtx, stopFollow := context.WithCancel(context.Background())
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		if err := cw.follower.Run(followCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("consent follower stopped", "err", err)
		}
	}()
	defer func() { stopFollow(); <-followDone }()
	// The first line is what tools wait for (the base URL); the second
	// says where this process listens (behind a load balancer it differs).
	fmt.Fprintf(stdout, "fhirgate serving %s (data in %s)\n", base, cfg.data)
	fmt.Fprintf(stdout, "fhirgate listening on http://%s\n", ln.Addr())
	printChain(stdout, chn, devAdmin)
	if cfg.noLog {
		log.Warn("the audit log is off (--no-log): for benchmarking only")
	}
	log.Info("serving", "base", base, "data", cfg.data)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// Every accepted audit event is written before the store closes.
	return recorder.Close(sctx)
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	// Lines logged with a request's context carry its id, whichever
	// component logs them.
	switch format {
	case "json":
		return slog.New(rest.LogHandler(slog.NewJSONHandler(w, opts))), nil
	case "text":
		return slog.New(rest.LogHandler(slog.NewTextHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("--log-format must be json or text")
}
