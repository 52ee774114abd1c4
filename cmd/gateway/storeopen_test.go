package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/redistest"
)

// A replica on a shared store is refused, with a message that names what
// is missing or wrong, before it touches anything.
func TestServeOnSharedStoreRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no chain, no base URL", []string{"--store", "redis://127.0.0.1:1/0"}, []string{"--eth-rpc", "--base-url"}},
		{"no base URL", []string{"--store", "redis://127.0.0.1:1/0", "--eth-rpc", "ws://127.0.0.1:1"}, []string{"--base-url"}},
		{"not a Redis URL", []string{"--store", "postgres://db/fhir"}, []string{"redis://HOST:PORT/DB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := run(append([]string{"serve", "--data", t.TempDir()}, tc.args...), &out, &out); code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("message does not name %s: %s", w, out.String())
				}
			}
		})
	}
	t.Run("Redis that may lose acknowledged writes", func(t *testing.T) {
		rds := redistest.Start(t, "--appendfsync", "everysec")
		var out bytes.Buffer
		code := run([]string{"serve", "--store", rds.URL(), "--store-prefix", redistest.Prefix(t), "--eth-rpc", "ws://127.0.0.1:1",
			"--base-url", "http://127.0.0.1:1/fhir", "--log-format", "text"}, &out, &out)
		if code != 1 || !strings.Contains(out.String(), "appendfsync") || !strings.Contains(out.String(), "--allow-volatile") {
			t.Fatalf("exit %d, want 1 naming appendfsync and --allow-volatile: %s", code, out.String())
		}
	})
}

func TestReadyzURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":         "http://127.0.0.1:8080/readyz",
		"http://127.0.0.1:8080/":        "http://127.0.0.1:8080/readyz",
		"http://127.0.0.1:8080/fhir":    "http://127.0.0.1:8080/readyz",
		"http://127.0.0.1:8080/readyz":  "http://127.0.0.1:8080/readyz",
		"https://fhir.example.org/fhir": "https://fhir.example.org/readyz",
	} {
		if got := readyzURL(in); got != want {
			t.Errorf("readyzURL(%q) = %q, want %q", in, got, want)
		}
	}
}
