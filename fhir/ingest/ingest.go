// Package ingest loads FHIR data files into a running gateway over its
// REST API (`gateway import`): NDJSON (the Bulk Data format, one resource
// a line, .ndjson or .ndjson.gz, what the gateway's $export writes) and
// Bundle files (.json: transaction, batch, collection), from files or
// directories. Going through the API means every imported version is
// validated, indexed, logged and anchored exactly as any write, and the
// access table applies to the token.
//
// NDJSON lines are sent as transactions of PUT Type/id (Options.Batch
// resources each, Options.Concurrency in flight): a PUT of a known id is
// idempotent, so a rerun writes nothing twice; a resource without an id
// gets one derived from its bytes. A refused line is reported (file:line,
// type/id, the OperationOutcome's diagnostics) and its transaction sent
// again without it, so the load goes on. A state file (state.go) records
// finished chunks, so a rerun after an interruption skips them.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure an import.
type Options struct {
	URL   string // the gateway's FHIR base, e.g. http://127.0.0.1:8080/fhir
	Token string // bearer token: system/*.cruds (and fhirgate/identity-linking for wallet identifiers)
	// Concurrency is how many Bundles are in flight; default 32 (as many
	// as fhirbench's transaction load: the gateway commits Bundles that
	// arrive together in one fsync, BENCHMARKS.md "Import").
	Concurrency int
	// Batch is how many NDJSON resources one transaction holds; default 100.
	Batch int
	// State is the state file (default: DefaultStatePath of the first path).
	State string
	// Errors, if set, receives each failure as an NDJSON line (Failure).
	Errors io.Writer
	// StopOnError stops at the first refused resource: no further Bundle
	// is sent, those in flight finish.
	StopOnError bool
	// Gzip: "auto" (compress request bodies unless the gateway is on this
	// machine), "always" or "never". Either way a gateway that answers 415
	// to a gzipped body gets plain ones.
	Gzip string
	// SkipUnchanged compares every chunk with what the gateway holds and
	// sends only the resources that differ (a search per chunk). Without
	// it only chunks left in flight by an interrupted run are compared.
	SkipUnchanged bool
	// Progress receives the progress and the failures (stderr); Terminal
	// draws one line redrawn with \r, otherwise a plain line every
	// ProgressEvery (default 10 s; negative: none).
	Progress      io.Writer
	Terminal      bool
	ProgressEvery time.Duration
	// Drain, when closed, stops sending new Bundles; those in flight
	// finish (a first Ctrl-C). Cancelling the context abandons them.
	Drain <-chan struct{}
	// HTTP client; default one with Concurrency connections.
	Client *http.Client
}

// ErrStopped is returned when --stop-on-error stopped the import.
var ErrStopped = errors.New("stopped at the first error (--stop-on-error)")

type importer struct {
	opt   Options
	cl    *client
	rep   *reporter
	state *stateFile

	stopOnce sync.Once
	stop     chan struct{} // no new chunks
	mu       sync.Mutex
	err      error // fatal
}

// Run imports paths (files and directories) and returns the summary. The
// error is nil when every resource was stored; failures of single
// resources are in the summary and the report, and make the error
// non-nil only with StopOnError (ErrStopped) or when the import could not
// go on (a refused token, an unreadable state file).
func Run(ctx context.Context, opt Options, paths []string) (Summary, error) {
	if opt.Concurrency <= 0 {
		opt.Concurrency = 32
	}
	if opt.Batch <= 0 {
		opt.Batch = 100
	}
	if opt.Progress == nil {
		opt.Progress = io.Discard
	}
	if opt.ProgressEvery == 0 {
		opt.ProgressEvery = 10 * time.Second
	}
	if len(paths) == 0 {
		return Summary{}, errors.New("no files to import")
	}
	if opt.URL == "" {
		return Summary{}, errors.New("the gateway's URL is required")
	}
	if opt.State == "" {
		opt.State = DefaultStatePath(paths[0])
	}
	srcs, err := listSources(paths)
	if err != nil {
		return Summary{}, err
	}
	state, err := openState(opt.State)
	if err != nil {
		return Summary{}, fmt.Errorf("state file: %w", err)
	}
	hc := opt.Client
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = opt.Concurrency + 2
		tr.DisableCompression = false
		hc = &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	}
	cl := &client{base: strings.TrimSuffix(opt.URL, "/"), token: opt.Token, hc: hc, retries: 6, backoff: 500 * time.Millisecond}
	cl.gzip.Store(opt.Gzip == "always" || ((opt.Gzip == "" || opt.Gzip == "auto") && !isLoopback(opt.URL)))
	im := &importer{opt: opt, cl: cl, state: state, stop: make(chan struct{}),
		rep: newReporter(opt.Progress, opt.Terminal, opt.Errors, opt.ProgressEvery)}
	if opt.Drain != nil {
		go func() {
			select {
			case <-opt.Drain:
				im.halt()
			case <-im.stop:
			}
		}()
	}
	go func() { // the total, for the progress bar and its ETA
		var n int64
		for _, s := range srcs {
			n += int64(countResources(s))
		}
		im.rep.total.Store(n)
	}()
	done := make(chan struct{})
	drawn := make(chan struct{})
	go func() { im.rep.run(done); close(drawn) }()

	for _, phase := range tiers(srcs) {
		im.runPhase(ctx, phase)
	}
	close(done)
	<-drawn
	if err := state.close(); err != nil && im.err == nil {
		im.err = fmt.Errorf("state file: %w", err)
	}
	sum := im.rep.summary(len(srcs))
	if im.err == nil && ctx.Err() != nil {
		im.err = ctx.Err()
	}
	return sum, im.err
}

func (im *importer) halt() { im.stopOnce.Do(func() { close(im.stop) }) }

func (im *importer) stopped() bool {
	select {
	case <-im.stop:
		return true
	default:
		return false
	}
}

func (im *importer) fatal(err error) {
	im.mu.Lock()
	if im.err == nil {
		im.err = err
	}
	im.mu.Unlock()
	im.halt()
}

// runPhase reads srcs in order into chunks that Concurrency workers send.
func (im *importer) runPhase(ctx context.Context, srcs []source) {
	if len(srcs) == 0 || im.stopped() {
		return
	}
	chunks := make(chan *chunk, im.opt.Concurrency)
	go func() {
		defer close(chunks)
		for i := range srcs {
			if im.stopped() || ctx.Err() != nil {
				return
			}
			src := &srcs[i]
			read := readNDJSON
			if src.json {
				read = readJSON
			}
			if err := read(src, im.cl.base, im.opt.Batch, chunks, im.stop); err != nil {
				im.rep.fail(Failure{File: src.name, Diagnostics: "cannot read the file: " + err.Error(), Retry: true})
				im.stopOnError()
			}
		}
	}()
	var wg sync.WaitGroup
	for range im.opt.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range chunks {
				if im.stopped() || ctx.Err() != nil {
					continue // drain
				}
				im.process(ctx, ch)
			}
		}()
	}
	wg.Wait()
}

func (im *importer) stopOnError() {
	if im.opt.StopOnError {
		im.fatal(ErrStopped)
	}
}

// process sends one chunk and records it done unless a failure may pass
// on a rerun.
func (im *importer) process(ctx context.Context, ch *chunk) {
	n := len(ch.items) + len(ch.errs)
	if im.state.isDone(ch.key) {
		im.rep.add(&im.rep.sum.skipped, n)
		return
	}
	uncertain := im.state.isUncertain(ch.key)
	for _, e := range ch.errs {
		im.rep.fail(im.failure(ch, e.at, e.typ, e.id, 0, "", e.msg, nil))
		im.stopOnError()
	}
	if im.stopped() {
		return
	}
	if err := im.state.record(ch.key, "start"); err != nil {
		im.fatal(fmt.Errorf("state file: %w", err))
		return
	}
	var retry bool
	switch {
	case ch.body != nil:
		retry = im.sendFile(ctx, ch)
	default:
		items := ch.items
		if uncertain || im.opt.SkipUnchanged {
			items = im.dropUnchanged(ctx, items)
		}
		retry = im.sendItems(ctx, ch, items)
	}
	if !retry && ctx.Err() == nil {
		if err := im.state.record(ch.key, "done"); err != nil {
			im.fatal(fmt.Errorf("state file: %w", err))
		}
	}
}

// failure describes a failed resource of ch at (a line number or entry).
func (im *importer) failure(ch *chunk, at, typ, id string, status int, code, diag string, expr []string) Failure {
	f := Failure{File: ch.src.name, ResourceType: typ, ID: id, Status: status, Code: code, Diagnostics: diag, Expression: expr}
	if n, err := strconv.Atoi(at); err == nil {
		f.Line = n
	} else {
		f.Entry = at
	}
	return f
}

// maxDrops is how many refused resources are taken out of a transaction,
// one resend each, before its rest goes as a batch (an answer per entry).
const maxDrops = 4

// sendItems stores items as transactions; it returns true when some were
// not stored for a reason a rerun may not meet (the gateway unavailable).
func (im *importer) sendItems(ctx context.Context, ch *chunk, items []item) (retry bool) {
	for drops := 0; len(items) > 0; drops++ {
		if drops >= maxDrops {
			return im.sendBatch(ctx, ch, items)
		}
		res, err := im.cl.post(ctx, bundleOf("transaction", items))
		if err != nil {
			return im.unavailable(ch, items, err)
		}
		if res.status == http.StatusOK {
			im.count(ch, items, res.body, "transaction")
			return false
		}
		o := parseOutcome(res.body)
		code, diag, expr := o.first()
		switch i := o.entryOf(); {
		case i >= 0 && i < len(items):
			it := items[i]
			for k := range expr {
				expr[k] = inEntry(expr[k], it.typ)
			}
			// The gateway names the entry; within it, the element.
			diag = strings.TrimPrefix(diag, "PUT "+it.typ+"/"+it.id+": ")
			im.rep.fail(im.failure(ch, it.at, it.typ, it.id, res.status, code, diag, expr))
			if im.opt.StopOnError {
				im.fatal(ErrStopped)
				return false
			}
			items = append(items[:i:i], items[i+1:]...)
		case (res.status == http.StatusRequestEntityTooLarge || code == "too-costly") && len(items) > 1:
			// Too large or too slow as one: halves.
			h := len(items) / 2
			r1 := im.sendItems(ctx, ch, items[:h])
			r2 := im.sendItems(ctx, ch, items[h:])
			return r1 || r2
		case res.status >= 500:
			return im.unavailable(ch, items, fmt.Errorf("%d %s", res.status, diag))
		default:
			return im.sendBatch(ctx, ch, items)
		}
	}
	return false
}

// unavailable fails items that the gateway did not answer for.
func (im *importer) unavailable(ch *chunk, items []item, err error) bool {
	if errors.Is(err, errUnauthorized) {
		im.fatal(err)
		return true
	}
	if errors.Is(err, context.Canceled) {
		return true // interrupted: the chunk stays to do
	}
	f := im.failure(ch, items[0].at, items[0].typ, items[0].id, 0, "transient",
		fmt.Sprintf("the gateway did not store this chunk (%d resources from here): %v", len(items), err), nil)
	f.Retry = true
	im.rep.failAll(f, len(items))
	im.stopOnError()
	return true
}

// sendBatch stores items as a batch: the gateway answers for each.
func (im *importer) sendBatch(ctx context.Context, ch *chunk, items []item) (retry bool) {
	res, err := im.cl.post(ctx, bundleOf("batch", items))
	if err != nil {
		return im.unavailable(ch, items, err)
	}
	if res.status != http.StatusOK {
		code, diag, expr := parseOutcome(res.body).first()
		if res.status >= 500 {
			return im.unavailable(ch, items, fmt.Errorf("%d %s", res.status, diag))
		}
		im.rep.failAll(im.failure(ch, items[0].at, items[0].typ, items[0].id, res.status, code,
			fmt.Sprintf("the batch of %d resources from here was refused: %s", len(items), diag), expr), len(items))
		im.stopOnError()
		return false
	}
	return im.count(ch, items, res.body, "batch")
}

// count reads a transaction- or batch-response: created, updated, and
// (batch) each refused entry.
func (im *importer) count(ch *chunk, items []item, body []byte, typ string) (retry bool) {
	var br bundleResponse
	if err := json.Unmarshal(body, &br); err != nil || len(br.Entry) != len(items) {
		// Stored (200), but the answer cannot be read: count as updated.
		im.rep.add(&im.rep.sum.updated, len(items))
		return false
	}
	for i, e := range br.Entry {
		st := statusCode(e.Response.Status)
		switch {
		case st == http.StatusCreated:
			im.rep.add(&im.rep.sum.created, 1)
		case st == http.StatusOK && items[i].cond:
			im.rep.add(&im.rep.sum.unchanged, 1)
		case st >= 200 && st < 300:
			im.rep.add(&im.rep.sum.updated, 1)
		default:
			code, diag, expr := parseOutcome(e.Response.Outcome).first()
			if diag == "" {
				diag = e.Response.Status
			}
			f := im.failure(ch, items[i].at, items[i].typ, items[i].id, st, code, diag, expr)
			f.Retry = st >= 500
			retry = retry || f.Retry
			im.rep.fail(f)
			im.stopOnError()
		}
	}
	return retry
}

// sendFile sends a transaction or batch Bundle file.
func (im *importer) sendFile(ctx context.Context, ch *chunk) (retry bool) {
	res, err := im.cl.post(ctx, ch.body)
	if err != nil {
		return im.unavailable(ch, ch.items, err)
	}
	if res.status == http.StatusOK {
		return im.count(ch, ch.items, res.body, ch.bundleTyp)
	}
	o := parseOutcome(res.body)
	code, diag, expr := o.first()
	if res.status >= 500 {
		return im.unavailable(ch, ch.items, fmt.Errorf("%d %s", res.status, diag))
	}
	f := im.failure(ch, "", "Bundle", "", res.status, code, diag, expr)
	if i := o.entryOf(); i >= 0 && i < len(ch.items) {
		f.Entry, f.ResourceType, f.ID = ch.items[i].at, ch.items[i].typ, ch.items[i].id
	}
	if ch.bundleTyp == "transaction" {
		f.Diagnostics = fmt.Sprintf("%s (the transaction of %d entries was not stored)", diag, len(ch.items))
	}
	im.rep.failAll(f, len(ch.items))
	im.stopOnError()
	return false
}

// inEntry turns a path in a transaction (Bundle.entry[3].resource.gender)
// into one in the entry's resource (Patient.gender).
func inEntry(expr, typ string) string {
	p := strings.TrimPrefix(entryRE.ReplaceAllString(expr, ""), ".")
	p = strings.TrimPrefix(p, "resource")
	p = strings.TrimPrefix(p, ".")
	if first, rest, _ := strings.Cut(p, "."); strings.EqualFold(first, typ) {
		p = rest
	}
	if p == "" {
		return typ
	}
	return typ + "." + p
}
