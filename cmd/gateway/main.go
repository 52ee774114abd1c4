// Command gateway is the fhirgate FHIR R4 gateway.
//
//	gateway [serve] [--addr 127.0.0.1:8080] [--data ./data]   run the gateway (default)
//	gateway token --scope 'system/*.cruds' [--sub NAME] [--ttl 1h]   print an access token
//	gateway reindex [--data ./data]   rebuild search indexes (gateway stopped)
//	gateway verify --rpc URL --proof proof.json [--resource body.json]   check a proof against the chain
//	gateway dev-genesis   print the dev chain's genesis (for geth init, as docker-compose does)
//	gateway ready [--url http://127.0.0.1:8080/readyz]   exit 0 when the gateway is ready (health checks)
//	gateway import --url BASE --token TOKEN PATH...   load NDJSON and Bundle files over the API
//
// Every flag has an environment equivalent: --addr is FHIRGATE_ADDR,
// --data is FHIRGATE_DATA, --base-url is FHIRGATE_BASE_URL, and so on.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the exit code: 0 success, 1
// failure, 2 usage error.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stdout, stderr)
	case "token":
		return token(args, stdout, stderr)
	case "reindex":
		return reindex(args, stdout, stderr)
	case "verify":
		return verifyCmd(args, stdout, stderr)
	case "dev-genesis":
		return devGenesis(args, stdout, stderr)
	case "ready":
		return ready(args, stdout, stderr)
	case "import":
		return importCmd(args, stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "gateway: unknown command %q\n\n", cmd)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: gateway <command> [flags]

commands:
  serve   run the FHIR gateway (the default)
  token   print an access token signed with the gateway's key
  reindex rebuild the search indexes after an upgrade (gateway stopped)
  verify  check a proof of a version against any Ethereum node (exit 0 valid, 1 invalid)
  dev-genesis  print the embedded dev chain's genesis, for 'geth init' of an external dev node
  ready   exit 0 when a gateway's /readyz answers 200 (container health checks)
  import  load NDJSON and Bundle files into a running gateway over its API (resumable)

Run 'gateway <command> -h' for a command's flags. Each flag can also be set
in the environment as FHIRGATE_<FLAG> (for example FHIRGATE_ADDR).
`)
}

// newFlags returns a flag set whose defaults come from FHIRGATE_* variables.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args and applies environment defaults for flags not given.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := "FHIRGATE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return err
}
