package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// ready asks a gateway's /readyz and exits 0 when it answers 200: the
// container health check (the runtime image has no curl).
func ready(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("ready", stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "the gateway: its root, its FHIR base (…/fhir, as FHIRGATE_URL holds for gateway import) or its /readyz")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := parse(fs, args); err != nil {
		fmt.Fprintf(stderr, "gateway ready: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, readyzURL(*url), nil)
	if err != nil {
		fmt.Fprintf(stderr, "gateway ready: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "gateway ready: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "gateway ready: %s: %s\n", resp.Status, body)
		return 1
	}
	fmt.Fprintf(stdout, "ready\n")
	return 0
}

// readyzURL is the /readyz of a gateway named by its root, FHIR base or
// readiness URL.
func readyzURL(u string) string {
	u = strings.TrimRight(u, "/")
	if strings.HasSuffix(u, "/readyz") {
		return u
	}
	return strings.TrimSuffix(u, "/fhir") + "/readyz"
}
