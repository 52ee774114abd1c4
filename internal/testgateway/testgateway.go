// Package testgateway builds the gateway binary and runs it as a
// subprocess for black-box tests: conformance, crash safety, the corpus
// round trip. The real binary means the real wiring, flags and process
// lifecycle are what get tested.
package testgateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of a freshly built gateway binary (built once
// per test process).
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Build builds the gateway binary once per process and returns its path.
func Build() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fhirgate-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gateway")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/fhirgate/fhirgate/cmd/gateway")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build gateway: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// Gateway is a running gateway process.
type Gateway struct {
	Base string // FHIR base URL (--base-url when given: a load balancer's)
	URL  string // this process's own FHIR base, http://ADDR/fhir
	Data string // data directory
	bin  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	logs *lockedBuffer
}

// Start runs `gateway serve` on a free loopback port with a data directory
// (a new temporary one when data is ""), waits until it is ready, and
// stops it when the test ends.
func Start(t testing.TB, data string, args ...string) *Gateway {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	g, err := StartProcess(data, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Stop() })
	return g
}

// StartProcess is Start for callers without a testing.TB (TestMain); the
// caller stops the gateway.
func StartProcess(data string, args ...string) (*Gateway, error) {
	bin, err := Build()
	if err != nil {
		return nil, err
	}
	g := &Gateway{Data: data, bin: bin, args: args}
	return g, g.start()
}

func (g *Gateway) start() error {
	// A free port for the embedded chain's JSON-RPC too, so that several
	// gateways can run at once.
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--eth-listen", "127.0.0.1:0", "--data", g.Data, "--log-format", "text"}, g.args...)
	cmd := exec.Command(g.bin, args...)
	cmd.Env = append(os.Environ(), "FHIRGATE_ADDR=", "FHIRGATE_DATA=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	g.logs = &lockedBuffer{}
	cmd.Stderr = g.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	g.cmd = cmd
	g.done = make(chan struct{})
	lines := make(chan string, 1)
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			g.logs.Write(append([]byte(sc.Text()), '\n')) // the banner too: Logs has what serve printed
			if f := strings.Fields(sc.Text()); len(f) == 4 && f[1] == "listening" {
				addrs <- f[3] // "fhirgate listening on http://ADDR"
			}
			if !found && strings.Contains(sc.Text(), " serving ") {
				lines <- sc.Text()
				found = true
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(g.done) }()
	select {
	case line := <-lines:
		// "fhirgate serving http://127.0.0.1:PORT/fhir (data in DIR)"
		f := strings.Fields(line)
		if len(f) < 3 || f[1] != "serving" {
			return fmt.Errorf("unexpected line %q; logs:\n%s", line, g.logs)
		}
		g.Base = f[2]
		g.URL = g.Base
		select { // the next line
		case a := <-addrs:
			g.URL = a + "/fhir"
		case <-time.After(5 * time.Second):
		}
	case <-g.done:
		return fmt.Errorf("gateway exited at start; logs:\n%s", g.logs)
	case <-time.After(60 * time.Second):
		g.cmd.Process.Kill()
		return fmt.Errorf("gateway did not start; logs:\n%s", g.logs)
	}
	return g.waitReady(30 * time.Second)
}

func (g *Gateway) waitReady(d time.Duration) error {
	ready := strings.TrimSuffix(g.URL, "/fhir") + "/readyz"
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		res, err := http.Get(ready)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("gateway not ready after %s; logs:\n%s", d, g.logs)
}

// Restart starts the gateway again on the same data directory (after
// Kill or Stop). The port changes.
func (g *Gateway) Restart() error { return g.start() }

// Kill ends the process with SIGKILL, as a crash would.
func (g *Gateway) Kill() {
	if g.cmd != nil && g.cmd.Process != nil {
		g.cmd.Process.Signal(syscall.SIGKILL)
		<-g.done
	}
}

// Stop ends the process gracefully (SIGTERM), killing it after 20 s.
func (g *Gateway) Stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.done:
		return
	default:
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(20 * time.Second):
		g.Kill()
	}
}

// PID is the gateway process's id (for /proc/<pid>/status).
func (g *Gateway) PID() int { return g.cmd.Process.Pid }

// Logs returns what the gateway wrote to stderr, and the lines it printed
// on stdout (the banner).
func (g *Gateway) Logs() string { return g.logs.String() }

// Token mints a bearer token with `gateway token` on the gateway's data
// directory. Extra arguments (such as "--sub", "x") are passed along.
func (g *Gateway) Token(t testing.TB, scope string, extra ...string) string {
	t.Helper()
	tok, err := g.MintToken(scope, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// MintToken is Token without a testing.TB.
func (g *Gateway) MintToken(scope string, extra ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"token", "--data", g.Data, "--scope", scope}, g.storeArgs()...)
	args = append(args, extra...)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, g.bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("gateway token: %v: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// storeArgs are the gateway's --store and --store-prefix flags, for
// commands (token) that must use the same store.
func (g *Gateway) storeArgs() []string {
	var out []string
	for i := 0; i+1 < len(g.args); i++ {
		switch g.args[i] {
		case "--store", "--store-prefix":
			out = append(out, g.args[i], g.args[i+1])
		}
	}
	return out
}
