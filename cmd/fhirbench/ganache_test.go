package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/testgateway"
)

// ganacheDir is bench/ganache from this package's directory.
const ganacheDir = "../../bench/ganache"

// needGanache skips (or, with FHIRGATE_REQUIRE_SERVICES=1, fails) when
// node or bench/ganache's npm packages are missing.
func needGanache(t *testing.T) {
	t.Helper()
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not on PATH"
	} else if _, err := os.Stat(ganacheCLI(ganacheDir)); err != nil {
		missing = "bench/ganache/node_modules is missing: run (cd bench/ganache && npm ci)"
	}
	if missing == "" {
		return
	}
	if os.Getenv("FHIRGATE_REQUIRE_SERVICES") == "1" {
		t.Fatalf("FHIRGATE_REQUIRE_SERVICES=1 and %s", missing)
	}
	t.Skipf("SKIPPED: %s", missing)
}

// TestGanache runs the ganache command for real, briefly: Ganache from
// bench/ganache with 2 senders, then a gateway (anchoring every second)
// with 2 clients. Every record must be stored, gas must be in the
// expected classes, and the report must carry both rows.
func TestGanache(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Ganache and a gateway with its chain")
	}
	needGanache(t)
	bin := testgateway.Binary(t)
	out := filepath.Join(t.TempDir(), "report.md")
	var stdout, stderr strings.Builder
	start := time.Now()
	err := runGanache(ganacheConfig{dir: ganacheDir, senders: []int{2}, warmup: 200 * time.Millisecond, duration: time.Second, seed: 1,
		gateway: bin, gwClients: 2, gatewayArgs: []string{"--anchor-interval=1s"}, pool: 64, work: t.TempDir(),
		anchorWait: time.Minute, out: out}, &stdout, &stderr)
	t.Log(stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	report := stdout.String()
	t.Log(report)
	if b, err := os.ReadFile(out); err != nil || string(b) != report {
		t.Errorf("-out file differs from stdout (%v)", err)
	}
	for _, want := range []string{
		"| approach | records/s | p50 | p99 | gas/record | tx/record |",
		"| one transaction per record on Ganache (2 senders) | **",
		"| fhirgate: anchored log, checkpoints on chain (2 clients) | **",
		"gas per record, one transaction per record ÷ fhirgate: **",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// TestGanacheSide checks the Ganache side's figures: every send mined,
// no errors, gas per record in the ~50k class of a one-slot write.
func TestGanacheSide(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Ganache")
	}
	needGanache(t)
	var log strings.Builder
	gs, err := runGanacheSide(ganacheConfig{dir: ganacheDir, warmup: 100 * time.Millisecond, duration: 500 * time.Millisecond, seed: 1}, 2, t.TempDir(), &log)
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	if gs.res.OK == 0 || gs.res.Errors() != 0 {
		t.Fatalf("%d records, %d errors (first: %s)", gs.res.OK, gs.res.Errors(), gs.res.FirstErr)
	}
	if g := medianU64(gs.gas); g < 40_000 || g > 60_000 {
		t.Errorf("gas per record %.0f, want the ~50k class", g)
	}
	if !gs.res.CPU.serverOK {
		t.Errorf("no CPU time of the Ganache process")
	}
}

// TestGanacheReport checks the report's rows and ratios.
func TestGanacheReport(t *testing.T) {
	gr := &Result{Name: "ganache", Clients: 8, Elapsed: 10 * time.Second, OK: 3000, Codes: map[int]int64{},
		CPU: cpuDelta{self: 300 * time.Millisecond, server: 6 * time.Second, serverOK: true, busy: time.Second, total: 2 * time.Second}}
	gr.Hist.Record(2 * time.Millisecond)
	fr := &Result{Name: "fhirgate", Clients: 64, Elapsed: 10 * time.Second, OK: 24000, Codes: map[int]int64{},
		CPU: cpuDelta{self: time.Second, server: 16 * time.Second, serverOK: true, busy: time.Second, total: 2 * time.Second}}
	fr.Hist.Record(20 * time.Millisecond)
	slow := &Result{Name: "ganache", Clients: 1, Elapsed: 10 * time.Second, OK: 2000, Codes: map[int]int64{},
		CPU: cpuDelta{self: 200 * time.Millisecond, server: 4 * time.Second, serverOK: true, busy: time.Second, total: 2 * time.Second}}
	slow.Hist.Record(time.Millisecond)
	gs := &ganacheSide{senders: 8, res: gr, version: "Ganache/v7.9.2/EthereumJS TestRPC/v7.9.2/ethereum-js", solc: "0.8.37", deployGas: 200000,
		gas: []uint64{49000, 49012, 49012}}
	fs := &gatewaySide{res: fr, records: 30000, leaves: 60000, anchors: 6, anchorGas: 6 * 80000, fromSize: 2, toSize: 60002, anchorDelay: 3 * time.Second}
	runs := []*ganacheSide{{senders: 1, res: slow, gas: []uint64{49012}}, gs}
	cfg := ganacheConfig{dir: "bench/ganache", senders: []int{1, 8}, warmup: 2 * time.Second, duration: 10 * time.Second, gateway: "bin/gateway", gwClients: 64}
	var b strings.Builder
	writeGanacheReport(&b, cfg, runs, fs, ganacheInfo{started: time.Now()})
	out := b.String()
	for _, want := range []string{
		"- command: `fhirbench ganache -dir bench/ganache -senders 1,8 -duration 10s -warmup 2s -gateway bin/gateway -clients 64`",
		"| one transaction per record on Ganache (8 senders) | **300** | 2.00 | 2.00 | **49012** | 1 | 0 | 2000 µs (Ganache) | 100 µs | 0 % |",
		"| fhirgate: anchored log, checkpoints on chain (64 clients) | **2400** | 20.00 | 20.00 | **16.0** | 0.00020 | 0 | 667 µs (gateway) | 42 µs | 0 % |",
		"| one transaction per record on Ganache (1 sender) | **200** |",
		"records/s, fhirgate ÷ one transaction per record (8 senders): **8.00**",
		"closed-loop senders (1, 8; a fresh Ganache for each count)",
		"gas per record, one transaction per record ÷ fhirgate: **3063×** (fhirgate: 80000 gas per anchoring transaction, 8.0 gas per log leaf, 10000 leaves per anchor)",
		"- fhirgate: `gateway serve --eth-listen=127.0.0.1:0` (embedded dev chain",
		"the 6 anchoring transactions from the checkpoint before the load (tree size 2) to the first one holding the last record (tree size 60002",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	cfg.gateway = ""
	writeGanacheReport(&b, cfg, runs, nil, ganacheInfo{started: time.Now()})
	if !strings.Contains(b.String(), "the fhirgate side was not measured") || strings.Contains(b.String(), "| fhirgate:") {
		t.Errorf("Ganache-only report:\n%s", b.String())
	}
}

// TestChained checks the completeness test of a checkpoint list.
func TestChained(t *testing.T) {
	cp := func(prev, size uint64) checkpointJSON { return checkpointJSON{PrevSize: prev, TreeSize: size} }
	for _, tc := range []struct {
		cps      []checkpointJSON
		from, to uint64
		want     bool
	}{
		{[]checkpointJSON{cp(10, 20), cp(20, 35)}, 10, 35, true},
		{[]checkpointJSON{cp(10, 20)}, 10, 20, true},
		{[]checkpointJSON{cp(10, 20), cp(25, 35)}, 10, 35, false}, // 20→25 not yet listed
		{[]checkpointJSON{cp(10, 20)}, 10, 35, false},             // does not reach 35
		{[]checkpointJSON{cp(5, 20)}, 10, 20, false},
		{nil, 10, 20, false},
	} {
		if got := chained(tc.cps, tc.from, tc.to); got != tc.want {
			t.Errorf("chained(%v, %d, %d) = %v", tc.cps, tc.from, tc.to, got)
		}
	}
}
