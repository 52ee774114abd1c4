package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fhirgate/fhirgate/fhir/ingest"
)

// importCmd is `gateway import --url BASE --token TOKEN PATH...`: it loads
// NDJSON and Bundle files into a running gateway over its API (package
// fhir/ingest). Exit 0 when every resource was stored, 1 when some were
// not (or the import stopped), 2 on a usage error.
func importCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("import", stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: gateway import --url BASE --token TOKEN [flags] PATH...

Loads FHIR NDJSON files (Bulk Data: one resource a line, .ndjson or
.ndjson.gz) and Bundle files (.json: transaction, batch, collection) from
files or directories (recursively) into a running gateway, through its
API: every version is validated, indexed, logged and anchored as any
write. Rerun the same command after an interruption: finished chunks are
skipped (--state). The token needs system/*.cruds (and
fhirgate/identity-linking for wallet identifiers).

`)
		fs.PrintDefaults()
	}
	base := fs.String("url", "http://127.0.0.1:8080/fhir", "the gateway's FHIR base URL")
	token := fs.String("token", "", "bearer token (gateway token --scope 'system/*.cruds')")
	conc := fs.Int("concurrency", 32, "Bundles in flight at once")
	batch := fs.Int("batch", 100, "NDJSON resources per transaction Bundle")
	state := fs.String("state", "", "state file recording finished chunks (default: beside the first PATH, PATH.import-state)")
	errFile := fs.String("errors", "", "also write each failure to this file as NDJSON")
	stop := fs.Bool("stop-on-error", false, "stop at the first resource the gateway refuses")
	gz := fs.String("gzip", "auto", "compress request bodies: auto (unless the gateway is on this machine), always, never")
	unchanged := fs.Bool("skip-unchanged", false, "compare each chunk with what the gateway holds and send only what differs")
	every := fs.Duration("progress", 10*time.Second, "interval of the progress lines when stderr is not a terminal (0: none)")
	paths, err := parseWithArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil && *token == "" {
		err = errors.New("--token is required (for example: --token \"$(gateway token --scope 'system/*.cruds')\")")
	}
	if err == nil && len(paths) == 0 {
		err = errors.New("name the files or directories to import")
	}
	if err == nil && *gz != "auto" && *gz != "always" && *gz != "never" {
		err = fmt.Errorf("--gzip must be auto, always or never, not %q", *gz)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gateway import: %v\n", err)
		return 2
	}
	if *every == 0 {
		*every = -1
	}
	opt := ingest.Options{URL: *base, Token: *token, Concurrency: *conc, Batch: *batch, State: *state,
		StopOnError: *stop, Gzip: *gz, SkipUnchanged: *unchanged, Progress: stderr, ProgressEvery: *every}
	if f, ok := stderr.(*os.File); ok {
		opt.Terminal = ingest.IsTerminal(f)
	}
	if *errFile != "" {
		f, err := os.Create(*errFile)
		if err != nil {
			fmt.Fprintf(stderr, "gateway import: %v\n", err)
			return 1
		}
		defer f.Close()
		opt.Errors = f
	}
	// A first Ctrl-C lets the Bundles in flight finish; a second abandons
	// them (a rerun checks what they stored).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	drain := make(chan struct{})
	opt.Drain = drain
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		<-sig
		fmt.Fprintln(stderr, "gateway import: stopping after the Bundles in flight (again to abandon them)")
		close(drain)
		<-sig
		cancel()
	}()
	sum, err := ingest.Run(ctx, opt, paths)
	fmt.Fprintln(stderr, sum)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "gateway import: %v\n", err)
		return 1
	case sum.Failed > 0:
		return 1
	}
	select {
	case <-drain:
		return 1 // interrupted: not everything was imported
	default:
	}
	return 0
}

// parseWithArgs is parse for commands that take arguments after their
// flags (and flags between them): it returns the arguments.
func parseWithArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			rest = append(rest, args[1:]...)
			break
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
	// The flags given are set; parse applies FHIRGATE_* to the others.
	if err := parse(fs, nil); err != nil {
		return nil, err
	}
	return rest, nil
}
