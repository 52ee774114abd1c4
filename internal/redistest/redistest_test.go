package redistest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// do sends one inline command and returns the first line of the answer.
func do(t *testing.T, addr, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(line, "$") && !strings.HasPrefix(line, "$-1") {
		line, _ = r.ReadString('\n')
	}
	return strings.TrimSpace(line)
}

func TestKillRestartKeepsAcknowledgedWrites(t *testing.T) {
	s := Start(t)
	if got := do(t, s.Addr(), "CONFIG GET appendfsync"); got != "*2" {
		t.Fatalf("CONFIG GET: %q", got)
	}
	if got := do(t, s.Addr(), "SET k v1"); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	s.Kill()
	if ping(s.Addr()) {
		t.Fatal("server answers after Kill")
	}
	s.Restart()
	if got := do(t, s.Addr(), "GET k"); got != "v1" {
		t.Fatalf("after kill and restart GET k = %q, want v1", got)
	}
	s.Stop()
	s.Restart()
	if got := do(t, s.Addr(), "GET k"); got != "v1" {
		t.Fatalf("after stop and restart GET k = %q, want v1", got)
	}
}

func TestPrefixUnique(t *testing.T) {
	a, b := Prefix(t), Prefix(t)
	if a == b || !strings.HasPrefix(a, "test:TestPrefixUnique:") {
		t.Fatalf("prefixes %q %q", a, b)
	}
}
