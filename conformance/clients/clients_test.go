// Package clients drives real npm FHIR clients against the gateway
// binary: what integrators' tools do, run as they run it. The node
// scripts live beside this file with their package.json and lock file;
// the first run installs them (npm ci --omit=optional). Without node or
// npm the tests skip loudly, except with FHIRGATE_REQUIRE_SERVICES=1
// (CI), where they fail.
package clients

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/gethtest"
	"github.com/fhirgate/fhirgate/internal/testgateway"
)

var (
	npmOnce sync.Once
	npmErr  error
)

// node returns node's path once node_modules is installed from the
// committed lock file.
func node(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("node")
	if err != nil {
		gethtest.SkipOrFail(t, "node is not installed; the npm client tests need Node 20+")
	}
	npmOnce.Do(func() {
		if _, err := os.Stat(filepath.Join("node_modules", "fhirclient", "package.json")); err == nil {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			npmErr = err
			return
		}
		// fhirclient's optional dependencies are React Native crypto
		// shims (some 340 MB); Node has WebCrypto.
		out, err := exec.Command(npm, "ci", "--omit=optional", "--no-audit", "--no-fund").CombinedOutput()
		if err != nil {
			npmErr = &npmError{err, string(out)}
		}
	})
	if npmErr != nil {
		gethtest.SkipOrFail(t, "cannot install conformance/clients' packages (npm ci): %v", npmErr)
	}
	return path
}

type npmError struct {
	err error
	out string
}

func (e *npmError) Error() string { return e.err.Error() + "\n" + e.out }

// runNode runs a node test file here, its output in the test log.
func runNode(t *testing.T, node string, env []string, timeout time.Duration, file string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-concurrency=1", "--test-reporter=spec", file)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			t.Log(sc.Text())
		}
	}()
	err := cmd.Run()
	pw.Close()
	<-done
	if ctx.Err() != nil {
		t.Fatalf("node %s: timed out after %s", file, timeout)
	}
	if err != nil {
		t.Fatalf("node %s: %v (see the log above)", file, err)
	}
}

// registerClient writes a client registry holding one system client with
// a fresh ES384 key and returns the registry's path, the kid and the
// private key as PKCS#8 PEM.
func registerClient(t *testing.T, id, scope string) (path, kid, keyPEM string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	pub, err := k.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	raw := pub.Bytes() // 0x04 || X || Y, 48 bytes each
	kid = id + "-es384"
	reg := map[string]any{"clients": []any{map[string]any{
		"client_id": id, "name": "fhirclient interop test", "scope": scope,
		"jwks": map[string]any{"keys": []any{map[string]any{
			"kty": "EC", "crv": "P-384", "alg": "ES384", "use": "sig", "kid": kid,
			"x": b64(raw[1:49]), "y": b64(raw[49:]),
		}}},
	}}}
	b, _ := json.Marshal(reg)
	path = filepath.Join(t.TempDir(), "clients.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, kid, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// TestFhirclientDiscovery runs fhirclient's own discovery
// (fetchWellKnownJson, getSecurityExtensions) against the gateway binary
// started with a client registry: it must find the token endpoint; a
// token obtained there with a private_key_jwt assertion then reads
// through fhirclient's Client.
func TestFhirclientDiscovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the gateway binary")
	}
	nodePath := node(t)
	reg, kid, key := registerClient(t, "fhirclient-interop", "system/*.rs")
	g := testgateway.Start(t, "", "--clients", reg)
	defer func() {
		if t.Failed() {
			logs := g.Logs()
			t.Logf("gateway log (last 8 KB):\n%s", logs[max(0, len(logs)-8<<10):])
		}
	}()
	if !strings.HasSuffix(g.Base, "/fhir") {
		t.Fatalf("base %q", g.Base)
	}
	runNode(t, nodePath, []string{
		"FHIRGATE_BASE=" + g.Base,
		"FHIRGATE_CLIENT_ID=fhirclient-interop",
		"FHIRGATE_CLIENT_KID=" + kid,
		"FHIRGATE_CLIENT_KEY=" + key,
	}, 2*time.Minute, "fhirclient.test.mjs")
}
