// Package gethtest gives tests a real geth, built from the go-ethereum
// version in go.mod and cached in <module root>/bin (git-ignored), and the
// skip-or-fail rule for services: a test that cannot get one skips loudly,
// unless FHIRGATE_REQUIRE_SERVICES=1 (CI), where it fails.
package gethtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SkipOrFail skips loudly, or fails when FHIRGATE_REQUIRE_SERVICES=1 (CI).
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("FHIRGATE_REQUIRE_SERVICES") == "1" {
		t.Fatalf("FHIRGATE_REQUIRE_SERVICES=1: %s", msg)
	}
	fmt.Fprintf(os.Stderr, "\n*** SKIPPING %s: %s ***\n\n", t.Name(), msg)
	t.Skip(msg)
}

var (
	gethOnce sync.Once
	gethPath string
	gethErr  error
)

// Binary returns a geth built from the go-ethereum version in go.mod,
// cached as <module root>/bin/geth (git-ignored) and rebuilt when its
// version differs. It first builds in the main module; if the main
// module's go.sum lacks cmd/geth's dependencies it builds in a throwaway
// module requiring only that go-ethereum version.
func Binary(t testing.TB) string {
	t.Helper()
	gethOnce.Do(func() { gethPath, gethErr = buildGeth() })
	if gethErr != nil {
		SkipOrFail(t, "no geth binary: %v", gethErr)
	}
	return gethPath
}

func buildGeth() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	out, err = exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/ethereum/go-ethereum").Output()
	if err != nil {
		return "", fmt.Errorf("go list go-ethereum: %w", err)
	}
	version := strings.TrimSpace(string(out))
	bin := filepath.Join(root, "bin", "geth")
	if v, err := exec.Command(bin, "version").Output(); err == nil && bytes.Contains(v, []byte("Version: "+strings.TrimPrefix(version, "v")+"-")) {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	tmp := bin + ".tmp" + strconv.Itoa(os.Getpid())
	defer os.Remove(tmp)
	start := time.Now()
	pkg := "github.com/ethereum/go-ethereum/cmd/geth"
	build := exec.Command("go", "build", "-o", tmp, pkg)
	build.Dir = root
	if msg, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building geth in the main module failed (%v), trying a throwaway module:\n%s\n", err, firstLines(msg, 3))
		mod, err := os.MkdirTemp("", "gethbuild")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(mod)
		for _, args := range [][]string{
			{"mod", "init", "gethbuild"},
			{"get", pkg + "@" + version},
			{"build", "-o", tmp, pkg},
		} {
			c := exec.Command("go", args...)
			c.Dir = mod
			c.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
			if msg, err := c.CombinedOutput(); err != nil {
				return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, firstLines(msg, 10))
			}
		}
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "built %s (%s) in %v\n", bin, version, time.Since(start).Round(time.Second))
	return bin, nil
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// FreePort returns a loopback TCP port free right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Node is a running geth --dev: HTTP and WebSocket JSON-RPC on one port.
type Node struct {
	HTTP, WS string
	Data     string // its data directory
}

// StartDev runs `geth --dev` on a fresh data directory initialised with
// genesis (the JSON of chain.DevGenesis, so that it runs the same chain as
// the embedded one), one block every period seconds (0: one per
// transaction), extra flags appended. The node stops at the end of the
// test; its log is shown if the test failed.
func StartDev(t testing.TB, genesis []byte, period int, extra ...string) *Node {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	gf := filepath.Join(dir, "genesis.json")
	if err := os.WriteFile(gf, genesis, 0o600); err != nil {
		t.Fatal(err)
	}
	n := &Node{Data: filepath.Join(dir, "data")}
	if out, err := exec.Command(bin, "init", "--datadir", n.Data, gf).CombinedOutput(); err != nil {
		t.Fatalf("geth init: %v\n%s", err, out)
	}
	port := strconv.Itoa(FreePort(t))
	args := append([]string{
		"--dev", "--dev.period", strconv.Itoa(period), "--datadir", n.Data,
		"--http", "--http.addr", "127.0.0.1", "--http.port", port, "--http.api", "eth,net,web3,txpool",
		"--ws", "--ws.addr", "127.0.0.1", "--ws.port", port, "--ws.api", "eth,net,web3",
		"--authrpc.port", strconv.Itoa(FreePort(t)), "--ipcdisable", "--nodiscover", "--maxpeers", "0", "--verbosity", "2",
	}, extra...)
	logPath := filepath.Join(dir, "geth.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT) //nolint:errcheck
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill() //nolint:errcheck
			<-exited
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("geth log:\n%s", b)
		}
	})
	n.HTTP, n.WS = "http://127.0.0.1:"+port, "ws://127.0.0.1:"+port
	start := time.Now()
	for !answers(n.HTTP) {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("geth exited: %v\n%s", err, b)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Since(start) > 60*time.Second {
			t.Fatal("geth not ready after 60s")
		}
	}
	return n
}

// answers reports whether a JSON-RPC endpoint answers eth_chainId.
func answers(url string) bool {
	c := http.Client{Timeout: time.Second}
	res, err := c.Post(url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`))
	if err != nil {
		return false
	}
	defer res.Body.Close()
	var out struct{ Result string }
	return json.NewDecoder(res.Body).Decode(&out) == nil && out.Result != ""
}
