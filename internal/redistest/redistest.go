// Package redistest gives tests their own redis-server: a fresh process on
// a free loopback port, its data in t.TempDir(), durable the way the
// gateway requires (append-only file, fsync at every write, no RDB
// snapshots), stopped at the end of the test. Tests that cannot start one
// skip loudly, unless FHIRGATE_REQUIRE_SERVICES=1 (CI), where they fail.
//
// A test never uses the Redis of the machine (127.0.0.1:6379): its data
// would outlive the test and its configuration is not the test's.
package redistest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/gethtest"
)

// Server is a redis-server started for one test.
type Server struct {
	t    testing.TB
	bin  string
	args []string
	// Dir is the server's working directory (its append-only files).
	Dir  string
	Port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
}

// Start runs redis-server on a free loopback port with
// --appendonly yes --appendfsync always --save "" in a temporary
// directory; extra arguments are appended (e.g. "--appendfsync", "everysec"
// to test a refusal). The server is killed when the test ends, and its log
// shown if the test failed.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		gethtest.SkipOrFail(t, "no redis-server in PATH (apt-get install redis-server): %v", err)
	}
	s := &Server{t: t, bin: bin, Dir: t.TempDir(), Port: gethtest.FreePort(t)}
	s.args = append([]string{
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--dir", s.Dir, "--daemonize", "no", "--logfile", "",
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
	}, extra...)
	logf, err := os.Create(filepath.Join(s.Dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.log = logf
	t.Cleanup(func() {
		s.Kill()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("redis-server log:\n%s", tail(b, 4000))
		}
	})
	s.start()
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is redis://127.0.0.1:port/0, for store/redis.Config.URL.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

func (s *Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("redistest: server already running")
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() //nolint:errcheck
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(20 * time.Second)
	for !ping(s.Addr()) {
		select {
		case <-exited:
			b, _ := os.ReadFile(s.log.Name())
			s.cmd = nil
			s.t.Fatalf("redistest: redis-server exited at start:\n%s", tail(b, 4000))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatal("redistest: redis-server not ready after 20s")
		}
	}
}

// ping reports whether a server answers PING with PONG (not LOADING).
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond)) //nolint:errcheck
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

func (s *Server) halt(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT) //nolint:errcheck // a paused server must run to die of SIGTERM
	s.cmd.Process.Signal(sig)             //nolint:errcheck
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill() //nolint:errcheck
		<-s.exited
	}
	s.cmd = nil
}

// Kill ends the server with SIGKILL: no shutdown, nothing flushed beyond
// what it had already written (a crash). Killing a stopped server does
// nothing.
func (s *Server) Kill() { s.halt(syscall.SIGKILL) }

// Pause stops the server with SIGSTOP: connections stay open and
// commands get no answer (a hung or partitioned Redis). Resume undoes it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig) //nolint:errcheck
	}
}

// Stop ends the server with SIGTERM (a clean shutdown) and waits for it.
func (s *Server) Stop() { s.halt(syscall.SIGTERM) }

// Restart starts the server again after Kill or Stop, on the same
// directory and port, and waits until it has loaded its data.
func (s *Server) Restart() {
	s.t.Helper()
	s.start()
}

// Prefix returns a key prefix unique to this call ("test:<name>:<random>:"),
// so that tests sharing one server never see each other's keys.
func Prefix(t testing.TB) string {
	var b [6]byte
	rand.Read(b[:]) //nolint:errcheck
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == ':' {
			return '_'
		}
		return r
	}, t.Name())
	return fmt.Sprintf("test:%s:%s:", name, hex.EncodeToString(b[:]))
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
