// Command fhirbench is the load tool of fhirgate: it drives a running
// gateway with N concurrent closed-loop clients and measures, on the same
// machine and in the same run, the two raw limits the gateway is compared
// with (a bare fiber handler, synced Pebble batch commits).
//
//	fhirbench crud       -base URL -token T [-clients 64 -duration 15s]
//	fhirbench practitioner-read -base URL -token T [-patients 64 -clients 64 -duration 15s]
//	fhirbench raw-http   [-clients 64 -duration 15s]
//	fhirbench raw-pebble [-clients 64 -duration 15s -dir DIR]
//	fhirbench suite      -gateway bin/gateway [-clients 64 -duration 15s -rounds 3]
//	fhirbench load       -base URL -token T -n 1000000 -mode create|transaction [-clients 32]
//	fhirbench search     -base URL -token T -n 1000000 [-clients 32 -duration 15s]
//	fhirbench ndjson     -out DIR -n 100000 [-shape load|synthea]
//	fhirbench ganache    [-gateway bin/gateway] [-senders 1,2,4,8 -clients 64 -duration 15s]
//
// See BENCHMARKS.md at the root of the repository for the recorded
// figures and the exact commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usageText = `usage: fhirbench <command> [flags]

commands:
  crud        create, then read, then update Patients on a running gateway;
              each phase reports ops/s, p50/p99/p99.9 latency and errors
  practitioner-read
              set up a wallet-signed-in Practitioner and K patients who
              granted it access by relayed signatures, then read those
              patients as the practitioner (consent-checked) and with the
              system token
  raw-http    a bare fiber handler returning a fixed Patient-sized body,
              driven by the same load generator (the HTTP limit)
  raw-pebble  N goroutines committing synced Pebble batches shaped like a
              create's write, with the gateway's Pebble options (the disk limit)
  suite       start a gateway binary, run raw-http, raw-pebble, crud and
              practitioner-read for several rounds and print a Markdown report (for BENCHMARKS.md)
  load        load a realistic data set (Patients, Practitioners,
              Appointments, DiagnosticReports with references)
  search      run selective token, reference, date and string searches
              against a data set made by load
  ganache     the original system's approach side by side with fhirgate's:
              one transaction per record on Ganache (started from
              bench/ganache/node_modules), then the gateway's creates and the
              gas of the anchoring transactions that covered them
  ndjson      write a data set as Bulk Data NDJSON files, for 'gateway import'
  perfsum     summarize a 'perf record -g' profile of the gateway by part
              (validation, indexing, store, HTTP, GC, ...)

Clients are closed loops: each sends its next request when the previous
one is answered. Every non-2xx answer counts as an error, shown by status
code. Run 'fhirbench <command> -h' for the flags of a command.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "crud":
		err = cmdCRUD(args, stdout, stderr)
	case "practitioner-read":
		err = cmdPractitionerRead(args, stdout, stderr)
	case "raw-http":
		err = cmdRawHTTP(args, stdout, stderr)
	case "raw-pebble":
		err = cmdRawPebble(args, stdout, stderr)
	case "suite":
		err = cmdSuite(args, stdout, stderr)
	case "load":
		err = cmdLoad(args, stdout, stderr)
	case "search":
		err = cmdSearch(args, stdout, stderr)
	case "perfsum":
		err = cmdPerfSum(args, stdout, stderr)
	case "ndjson":
		err = cmdNDJSON(args, stdout, stderr)
	case "ganache":
		err = cmdGanache(args, stdout, stderr)
	case "_raw-http-server":
		return rawHTTPServe(args, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText)
		return 0
	default:
		fmt.Fprintf(stderr, "fhirbench: unknown command %q\n\n%s", cmd, usageText)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "fhirbench %s: %v\n", cmd, err)
	return 1
}

// flags is a command's flag set with the options every load command has.
type flags struct {
	*flag.FlagSet
	clients  *int
	duration *time.Duration
	warmup   *time.Duration
	seed     *int64
}

func newFlags(name, synopsis, about string, stderr io.Writer, clients int) *flags {
	return newFlagsTimed(name, synopsis, about, stderr, clients, true)
}

// newFlagsTimed is newFlags; timed commands also get -duration and -warmup.
func newFlagsTimed(name, synopsis, about string, stderr io.Writer, clients int, timed bool) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: fhirbench %s %s\n\n%s\n\nflags:\n", name, synopsis, strings.TrimSpace(about))
		fs.PrintDefaults()
	}
	f := &flags{
		FlagSet: fs,
		clients: fs.Int("clients", clients, "concurrent closed-loop clients"),
		seed:    fs.Int64("seed", 1, "seed of the synthetic data"),
	}
	if timed {
		f.duration = fs.Duration("duration", 15*time.Second, "measured time of each phase")
		f.warmup = fs.Duration("warmup", 2*time.Second, "warm-up before each phase's measured time (not counted)")
	}
	return f
}

func (f *flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if f.NArg() > 0 {
		fmt.Fprintf(f.Output(), "unexpected argument %q\n", f.Arg(0))
		f.Usage()
		return errUsage
	}
	if *f.clients < 1 {
		fmt.Fprintln(f.Output(), "-clients must be at least 1")
		return errUsage
	}
	return nil
}

func required(f *flags, names ...string) error {
	for _, n := range names {
		if f.Lookup(n).Value.String() == "" {
			fmt.Fprintf(f.Output(), "-%s is required\n", n)
			f.Usage()
			return errUsage
		}
	}
	return nil
}

func cmdCRUD(args []string, stdout, stderr io.Writer) error {
	f := newFlags("crud", "-base URL -token TOKEN [flags]", `
Creates Patients (POST [base]/Patient) for -duration, then reads random
created ones (GET [base]/Patient/ID), then updates them (PUT with the id;
each client updates its own share, so there are no write races). Each
phase starts with -warmup that is not counted. Get a token with
'gateway token --data DIR --scope system/*.cruds'.`, stderr, 64)
	base := f.String("base", "", "FHIR base URL, e.g. http://127.0.0.1:8080/fhir (required)")
	token := f.String("token", "", "bearer token (required)")
	pool := f.Int("pool", 4096, "distinct Patient bodies to cycle through")
	minimal := f.Bool("minimal", false, "send Prefer: return=minimal on writes (default: the server returns the resource)")
	pid := f.Int("pid", 0, "gateway process id, to report its CPU time per operation (optional)")
	update := f.String("update", "body", "what an update changes: body (another Patient's body: every field and index value) or phone (the record's own body with its first phone number changed, as an EHR's update of one field)")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := required(f, "base", "token"); err != nil {
		return err
	}
	if *update != "body" && *update != "phone" {
		return fmt.Errorf("crud: -update %q: body or phone", *update)
	}
	_, err := runCRUD(crudConfig{base: *base, token: *token, clients: *f.clients, warmup: *f.warmup, duration: *f.duration,
		pool: *pool, seed: *f.seed, minimal: *minimal, serverPID: *pid, updatePhone: *update == "phone"}, stdout)
	return err
}

func cmdPractitionerRead(args []string, stdout, stderr io.Writer) error {
	f := newFlags("practitioner-read", "-base URL -token TOKEN [flags]", `
Authenticated, consent-checked, audited reads by a practitioner. With the
system token (system/*.cruds fhirgate/identity-linking: it links wallets to
records) it creates one active Practitioner linked to
a fresh wallet and -patients Patients, each linked to its own fresh wallet
(CAIP-10 identifiers on the gateway's chain, from /.well-known/fhirgate),
plus one more Patient who grants nothing. Each patient signs in with
Sign-In With Ethereum and signs an EIP-712 Grant of -scope to the
practitioner, which the gateway relays gas-free (POST /consent/relay); the
practitioner signs in with its wallet. Once every grant is in force (the
practitioner reads each patient) and the patient without a grant is
refused (404, as if absent), it runs read-practitioner: GET [base]/Patient/ID of a random
one of the granted patients with the practitioner's token; then, unless
-system-same=false, read-system-same: the same reads with the system
token. Every answer but 200 counts as an error. Needs no ether, no
JSON-RPC port and no access to the gateway's data directory. The
practitioner's token lasts one hour.`, stderr, 64)
	base := f.String("base", "", "FHIR base URL, e.g. http://127.0.0.1:8080/fhir (required)")
	token := f.String("token", "", "system bearer token with 'system/*.cruds fhirgate/identity-linking' (required)")
	patients := f.Int("patients", defaultPractitionerPatients, "patients who grant the practitioner access (the reads cycle through them)")
	scope := f.String("scope", defaultPractitionerScope, "consent scope each patient grants (<Type>.<perms>, e.g. Patient.rs or *.rs)")
	systemSame := f.Bool("system-same", true, "also read the same patients with the system token")
	grantWait := f.Duration("grant-wait", time.Minute, "longest wait for the relayed grants to be in force")
	pid := f.Int("pid", 0, "gateway process id, to report its CPU time per read (optional)")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := required(f, "base", "token"); err != nil {
		return err
	}
	if *patients < 1 {
		fmt.Fprintln(stderr, "-patients must be at least 1")
		return errUsage
	}
	_, _, err := runPractitionerRead(practitionerConfig{base: *base, token: *token, patients: *patients, scope: *scope,
		clients: *f.clients, warmup: *f.warmup, duration: *f.duration, seed: *f.seed, serverPID: *pid,
		systemSame: *systemSame, grantWait: *grantWait}, stdout)
	return err
}

func cmdRawHTTP(args []string, stdout, stderr io.Writer) error {
	f := newFlags("raw-http", "[flags]", `
Serves a bare fiber handler (the gateway's fiber settings, no auth, no
store) that answers GET /fhir/Patient/:id with the bytes of a stored
synthetic Patient, on a free loopback port, and drives it with the same
load generator and the same requests as the read phase of crud. By
default the handler runs in a child process (like the gateway, so that
client and server CPU time are measured apart); -inproc runs it inside
this process.`, stderr, 64)
	inproc := f.Bool("inproc", false, "serve from this process instead of a child process")
	if err := f.parse(args); err != nil {
		return err
	}
	r, err := runRawHTTP(rawHTTPConfig{clients: *f.clients, warmup: *f.warmup, duration: *f.duration, seed: *f.seed, inProcess: *inproc})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, r)
	return nil
}

func cmdRawPebble(args []string, stdout, stderr io.Writer) error {
	f := newFlags("raw-pebble", "[flags]", `
Opens a new Pebble database under -dir with the options store/pebble uses
and commits synced batches (pebble.Sync) from -clients goroutines. With
-shape create (the default) each batch is exactly what the gateway's store
writes for one Patient create (version, current pointer, history keys,
index list and every search index key), with a fresh id each time; with
-shape simple it is one -value-bytes value plus -index-keys small keys.
-engine store commits the same batches through store/pebble's Apply (a
condition on the current key, the log mutex) instead of raw batches.
Put -dir on the filesystem of the gateway's data directory.`, stderr, 64)
	dir := f.String("dir", os.TempDir(), "directory to create the database in (removed afterwards)")
	engine := f.String("engine", "raw", "raw (pebble.Batch.Commit) or store (store/pebble Apply)")
	shapeName := f.String("shape", "create", "create or simple")
	valueBytes := f.Int("value-bytes", 1500, "-shape simple: value size")
	indexKeys := f.Int("index-keys", 10, "-shape simple: index keys per batch")
	if err := f.parse(args); err != nil {
		return err
	}
	var sh *shape
	switch *shapeName {
	case "create":
		var err error
		if sh, err = createShape(*f.seed); err != nil {
			return err
		}
	case "simple":
		sh = simpleShape(*valueBytes, *indexKeys)
	default:
		fmt.Fprintln(stderr, "-shape must be create or simple")
		return errUsage
	}
	r, err := runRawPebble(rawPebbleConfig{dir: *dir, clients: *f.clients, warmup: *f.warmup, duration: *f.duration, engine: *engine, sh: sh})
	if r != nil {
		fmt.Fprintln(stdout, r)
	}
	return err
}

func cmdSuite(args []string, stdout, stderr io.Writer) error {
	f := newFlags("suite", "-gateway PATH [flags]", `
The one command behind BENCHMARKS.md. Builds nothing: build the gateway
first with

    go build -o bin/gateway ./cmd/gateway

The binary is copied at the start, so a rebuild during the run does not
mix two gateways.
Each round runs, one after the other: raw-http (child process and in
process), raw-pebble (raw batches, then store/pebble's Apply) in -dir,
then a fresh gateway on a new data directory in -dir and a free port,
a token, and crud (create, read, update). Right after read, unless
-no-practitioner, the practitioner-read setup and phases run on the same
gateway: read-practitioner (consent-checked reads by a practitioner signed
in with a wallet, of -practitioner-patients patients who granted access by
relayed signatures) and read-system-same (the same patients, system token).
With -compare-nolog, each round then starts another fresh gateway with
--no-log added (versions and AuditEvents stay out of the Merkle log, so
nothing is anchored) and runs the create phase again: the report shows it
as create-nolog and the logging+anchoring cost (creates/s with the log ÷
without) against the 10 % target. The Markdown report (medians
across rounds, ratios to the raw limits, the gateway's own metrics,
machine and load average) goes to stdout and to -out; progress to stderr.`, stderr, 64)
	gateway := f.String("gateway", "", "path of the gateway binary (required)")
	rounds := f.Int("rounds", 3, "rounds")
	dir := f.String("dir", os.TempDir(), "parent of the gateway data and raw Pebble directories (same filesystem for both)")
	pool := f.Int("pool", 4096, "distinct Patient bodies the creates cycle through")
	maxLoad := f.Float64("max-load", 0, "wait until the 1-minute load average is at most this before starting (0: do not wait)")
	maxWait := f.Duration("max-wait", 10*time.Minute, "longest wait for -max-load")
	perfDir := f.String("perf", "", "record 'perf record -g' of the gateway during each crud phase into this directory (perturbs the figures: profile in a separate run)")
	out := f.String("out", "", "also write the report to this file")
	noInproc := f.Bool("no-inproc", false, "skip the in-process raw-http variant")
	gatewayArgs := f.String("gateway-args", defaultGatewayArgs, "extra arguments of 'gateway serve', space-separated (e.g. '--eth-listen= --no-log')")
	maxOther := f.Float64("max-other", 0, "discard and repeat a round in which other processes used more than this percentage of the CPU during a phase (0: keep every round)")
	retries := f.Int("retries", 3, "most repeats of one round for -max-other")
	noPractitioner := f.Bool("no-practitioner", false, "skip the practitioner read phases (read-practitioner, read-system-same)")
	prPatients := f.Int("practitioner-patients", defaultPractitionerPatients, "patients who grant the practitioner access in the practitioner read phases")
	prScope := f.String("practitioner-scope", defaultPractitionerScope, "consent scope those patients grant")
	compareNoLog := f.Bool("compare-nolog", false, "after each round's crud phases, run the create phase again on a fresh gateway with --no-log (logging+anchoring cost)")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := required(f, "gateway"); err != nil {
		return err
	}
	if *prPatients < 1 {
		fmt.Fprintln(stderr, "-practitioner-patients must be at least 1")
		return errUsage
	}
	if *rounds < 1 {
		fmt.Fprintln(stderr, "-rounds must be at least 1")
		return errUsage
	}
	return runSuite(suiteConfig{gateway: *gateway, clients: *f.clients, warmup: *f.warmup, duration: *f.duration, rounds: *rounds,
		dir: *dir, seed: *f.seed, pool: *pool, maxLoad: *maxLoad, maxWait: *maxWait, perfDir: *perfDir, out: *out, noInproc: *noInproc, maxOther: *maxOther, retries: *retries, gatewayArgs: strings.Fields(*gatewayArgs),
		noPractitioner: *noPractitioner, practitionerPatients: *prPatients, practitionerScope: *prScope, compareNoLog: *compareNoLog},
		stdout, stderr)
}

func cmdLoad(args []string, stdout, stderr io.Writer) error {
	f := newFlagsTimed("load", "-base URL -token TOKEN -n N [flags]", `
Loads about N resources of a realistic mix: one Practitioner per 50
Patients; per Patient 0-4 Appointments and 0-4 DiagnosticReports (2 of each
on average) referencing the Patient and a Practitioner. Practitioners go
first. -mode create sends one POST per resource (a client creates a
Patient, then its group); -mode transaction sends Bundles of type
transaction of up to -batch entries (a Patient always with its group,
referenced as urn:uuid:...). The data is a pure function of -n and -seed:
search recomputes MRNs, names and dates from them.`, stderr, 32, false)
	base := f.String("base", "", "FHIR base URL (required)")
	token := f.String("token", "", "bearer token (required)")
	n := f.Int("n", 1_000_000, "resources to load (about)")
	mode := f.String("mode", "create", "create or transaction")
	batch := f.Int("batch", 100, "entries per transaction Bundle")
	ids := f.String("ids", "", "write 'index id' of every Patient to this file (for search -ids)")
	data := f.String("data", "", "the gateway's data directory, to report bytes on disk per resource (optional)")
	progress := f.Duration("progress", 10*time.Second, "progress report interval (0: none)")
	pid := f.Int("pid", 0, "gateway process id, to report its CPU time per request (optional)")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := required(f, "base", "token"); err != nil {
		return err
	}
	return runLoad(loadConfig{base: *base, token: *token, n: *n, seed: *f.seed, mode: *mode, clients: *f.clients,
		batch: *batch, idsFile: *ids, dataDir: *data, progress: *progress, serverPID: *pid}, stdout)
}

func cmdSearch(args []string, stdout, stderr io.Writer) error {
	var kindHelp []string
	for _, k := range []string{"token", "reference", "date", "string"} {
		kindHelp = append(kindHelp, "  "+k+": "+searchKinds[k])
	}
	f := newFlags("search", "-base URL -token TOKEN -n N [flags]", `
Runs selective searches against a data set loaded with the same -n and
-seed, one kind after the other, each for -duration, and reports
searches/s, latency and the mean number of matches per search. Kinds:
`+strings.Join(kindHelp, "\n"), stderr, 32)
	base := f.String("base", "", "FHIR base URL (required)")
	token := f.String("token", "", "bearer token (required)")
	n := f.Int("n", 1_000_000, "the -n the data was loaded with")
	kinds := f.String("kinds", "token,reference,date,string", "comma-separated kinds of search")
	ids := f.String("ids", "", "patient ids written by load -ids (default: look patients up by MRN)")
	discover := f.Int("discover", 2000, "patients to look up by MRN for reference searches when there is no -ids file")
	pid := f.Int("pid", 0, "gateway process id, to report its CPU time per search (optional)")
	rate := f.Float64("rate", 0, "searches per second the clients send together, on a fixed schedule, latency counted from when each was due (0: closed loop, as fast as answered)")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := required(f, "base", "token"); err != nil {
		return err
	}
	_, err := runSearch(searchConfig{base: *base, token: *token, n: *n, seed: *f.seed, clients: *f.clients, warmup: *f.warmup,
		duration: *f.duration, kinds: splitKinds(*kinds), idsFile: *ids, discover: *discover, serverPID: *pid, rate: *rate}, stdout)
	return err
}

func cmdGanache(args []string, stdout, stderr io.Writer) error {
	f := newFlags("ganache", "[-gateway PATH] [flags]", `
The original research system stored each medical record through a
contract call: one transaction per record. This measures that approach
and fhirgate's side by side, one after the other on the same machine.

First Ganache (npm ganache, pinned in -dir's package-lock.json; install
it once with 'cd bench/ganache && npm ci') runs as a child process on a
free loopback port, in memory, instamine, with deterministic accounts;
RecordStore.sol (in -dir) is compiled with the solc pinned there and
deployed; -senders closed-loop senders, each with its own account and
nonces, send addRecord transactions and wait for each receipt; a fresh
Ganache runs for each count in -senders. Reported:
records/s, latency to the receipt, gas per record (median of the
receipts), Ganache's CPU per record.

Then, with -gateway, a fresh gateway (its chain's JSON-RPC on a free
port) gets one anchored record, -clients create Patients as in the
suite's create phase, and one last record is created and waited for
until anchored. The gas of the anchoring transactions in between (their
receipts, over JSON-RPC), divided by the records created, is fhirgate's
gas per record. Ganache is stopped before the gateway starts.`, stderr, 64)
	dir := f.String("dir", "bench/ganache", "the directory with package.json, RecordStore.sol and compile.mjs (npm ci done)")
	senders := f.String("senders", "1,2,4,8", "concurrent Ganache senders, each its own account; comma-separated: one run per count, each on a fresh Ganache")
	ganacheArgs := f.String("ganache-args", "", "extra Ganache options, space-separated (e.g. '--miner.instamine strict')")
	gateway := f.String("gateway", "", "gateway binary for the fhirgate side (empty: Ganache only)")
	gatewayArgs := f.String("gateway-args", "", "extra arguments of 'gateway serve', space-separated (the chain's JSON-RPC must stay on)")
	pool := f.Int("pool", 4096, "distinct Patient bodies the creates cycle through")
	work := f.String("work", os.TempDir(), "parent of the gateway's data directory and the logs (removed afterwards)")
	anchorWait := f.Duration("anchor-wait", 5*time.Minute, "longest wait for the gateway's setup and for the last record to be anchored")
	out := f.String("out", "", "also write the report to this file")
	if err := f.parse(args); err != nil {
		return err
	}
	var counts []int
	for _, v := range strings.Split(*senders, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			fmt.Fprintln(stderr, "-senders: want counts of at least 1, comma-separated (e.g. 1,2,4,8)")
			return errUsage
		}
		counts = append(counts, n)
	}
	return runGanache(ganacheConfig{dir: *dir, senders: counts, ganacheArgs: strings.Fields(*ganacheArgs), warmup: *f.warmup, duration: *f.duration, seed: *f.seed,
		gateway: *gateway, gwClients: *f.clients, gatewayArgs: strings.Fields(*gatewayArgs), pool: *pool, work: *work,
		anchorWait: *anchorWait, out: *out}, stdout, stderr)
}
