package conformance

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/fhirgate/fhirgate/internal/testgateway"
)

var (
	baseURL   = flag.String("base-url", "", "FHIR base URL of the server under test (default: start an in-process gateway)")
	token     = flag.String("token", "", "bearer token with system/*.cruds")
	readToken = flag.String("read-token", "", "optional bearer token of the same client with only system/*.rs, for the scope checks")
)

// env is the server under test and clients for it.
type env struct {
	base string
	full *Client // system/*.cruds
	read *Client // system/*.rs, nil when not given
	anon *Client // no token
	// gw is the in-process gateway (nil against another server): it mints
	// the tokens of people and other clients for the consent checks.
	gw *testgateway.Gateway
}

var srv env

func TestMain(m *testing.M) {
	flag.Parse()
	var gw *testgateway.Gateway
	if *baseURL == "" {
		dir, err := os.MkdirTemp("", "fhirgate-conformance-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if gw, err = testgateway.StartProcess(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		*baseURL = gw.Base
		if *token, err = gw.MintToken("system/*.cruds"); err == nil {
			// The same client with narrower scopes: what it may do is then
			// a matter of scopes alone (another client would also need the
			// patients' consent).
			*readToken, err = gw.MintToken("system/*.rs")
		}
		if err != nil {
			gw.Stop()
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	srv = env{base: *baseURL, full: NewClient(*baseURL, *token), anon: NewClient(*baseURL, ""), gw: gw}
	if *readToken != "" {
		srv.read = NewClient(*baseURL, *readToken)
	}
	code := m.Run()
	if gw != nil {
		gw.Stop()
		os.RemoveAll(gw.Data)
	}
	os.Exit(code)
}
