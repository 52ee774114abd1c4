package main

import (
	"strings"
	"testing"
	"time"
)

// TestSuiteReportNoLog checks the log+anchor-off row, its ratio and the
// 10 % target, met and missed.
func TestSuiteReportNoLog(t *testing.T) {
	res := func(name string, ok int64) *Result {
		r := &Result{Name: name, Clients: 64, Elapsed: time.Second, OK: ok, Codes: map[int]int64{}}
		r.Hist.Record(time.Millisecond)
		r.CPU = cpuDelta{self: time.Duration(ok) * 10 * time.Microsecond, server: time.Duration(ok) * 500 * time.Microsecond,
			serverOK: true, busy: time.Second, total: 2 * time.Second}
		return r
	}
	report := func(withLog, without int64) string {
		rd := round{res: map[string]*Result{}, metrics: map[string]phaseMetrics{}}
		rd.res["create"] = res("create", withLog)
		rd.res["create-nolog"] = res("create-nolog", without)
		cfg := suiteConfig{gateway: "bin/gateway", clients: 64, duration: time.Second, rounds: 1, noPractitioner: true, compareNoLog: true,
			gatewayArgs: []string{"--eth-listen="}}
		var b strings.Builder
		writeSuiteReport(&b, cfg, []round{rd}, suiteInfo{started: time.Now()})
		return b.String()
	}
	out := report(2300, 2500)
	for _, want := range []string{
		" -compare-nolog",
		"| create-nolog | create (log+anchor off): the same creates on a fresh gateway with `--no-log`",
		"logging+anchoring cost: creates/s (log on) ÷ creates/s (log+anchor off, `--no-log`): **0.92**",
		"logging and anchoring cost (1 − creates/s with the log ÷ without, median per-round ratio 0.92): 8.0 % of create throughput, target ≤ 10 %: **met**",
		"- create-nolog: 510 µs per operation",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	out = report(2600, 2500)
	if want := "-4.0 % of create throughput, target ≤ 10 %: **met** (creates were no slower with the log than without)"; !strings.Contains(out, want) {
		t.Errorf("report lacks %q:\n%s", want, out)
	}
	out = report(2000, 2500)
	if want := "20.0 % of create throughput, target ≤ 10 %: **missed** (creates/s must reach 90 % of the log-off figure; they reach 80 %)"; !strings.Contains(out, want) {
		t.Errorf("report lacks %q:\n%s", want, out)
	}
}
