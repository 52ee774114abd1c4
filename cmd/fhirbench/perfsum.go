package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
)

// perfGroups are the parts of the gateway a CPU sample is attributed to
// (inclusive: a sample counts for every group one of its frames matches).
var perfGroups = []struct{ name, match string }{
	{"HTTP handler: create", "rest.(*Server).create"},
	{"HTTP handler: read", "rest.(*Server).read"},
	{"HTTP handler: update", "rest.(*Server).update"},
	{"HTTP handler: search", "rest.(*Server).search"},
	{"HTTP handler: transaction", "rest.(*Server).transaction"},
	{"  parse+validate (fhir.Parse)", "fhir.Parse"},
	{"    jsonformat Unmarshal (validation)", "jsonformat.(*Unmarshaller).Unmarshal"},
	{"    core rules (checkRules)", "fhir.checkRules"},
	{"    narrative check (XHTML)", "fhir.checkNarrative"},
	{"    strict JSON parse (fhirjson.Parse)", "fhirjson.Parse"},
	{"  stamp + canonical JSON", "fhir.(*Resource).Stamp"},
	{"  index extraction (search.Extract)", "search.Extract"},
	{"  store commit (store.(*Store).Commit)", "store.(*Store).Commit"},
	{"    Pebble memtable insert", "pebble/v2.(*memTable).apply"},
	{"  store read", "store.(*Store).Read"},
	{"  store search", "store.(*Store).Search"},
	{"auth (Verify)", "auth.(*Verifier).Verify"},
	{"policy decision", "fhirgate/policy."},
	{"audit: adding the event to the group commit and waiting (in the request)", "audit.(*Recorder).Record"},
	{"audit: writing AuditEvents (background)", "audit.(*Recorder).Run"},
	{"anchored log (background)", "fhirgate/anchor."},
	{"embedded dev chain (go-ethereum)", "go-ethereum"},
	{"metrics (observe, after the handler)", "prometheus"},
	{"Pebble WAL write + fsync", "record.(*LogWriter)"},
	{"Pebble flush/compaction", "pebble/v2.(*DB).compact"},
	{"Pebble flush", "pebble/v2.(*DB).flush"},
	{"fasthttp serve (all of a request)", "fasthttp.(*Server).serveConn"},
	{"network read/write syscalls", "internal/poll.(*FD)."},
	{"GC (background mark)", "runtime.gcBgMarkWorker"},
	{"GC assist", "runtime.gcAssistAlloc"},
	{"allocation (mallocgc)", "runtime.mallocgc"},
	{"scheduler (schedule/findRunnable)", "runtime.schedule"},
}

// cmdPerfSum summarizes a 'perf record -g' profile of the gateway.
func cmdPerfSum(args []string, stdout, stderr io.Writer) error {
	f := newFlagsTimed("perfsum", "-i FILE.perf.data [flags]", `
Summarizes a CPU profile recorded with 'perf record -g -p PID' (suite
-perf DIR records one per crud phase): the share of samples spent in each
part of the gateway (inclusive), and the functions with the most samples
of their own. Needs perf on the PATH.`, stderr, 1, false)
	in := f.String("i", "", "perf.data file (required)")
	top := f.Int("top", 25, "self functions to list")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := required(f, "i"); err != nil {
		return err
	}
	cmd := exec.Command("perf", "script", "-i", *in, "-F", "ip,sym")
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	incl := make([]int, len(perfGroups))
	self := map[string]int{}
	total := 0
	var stack []string
	flush := func() {
		if len(stack) == 0 {
			return
		}
		total++
		self[stack[0]]++
		for i, g := range perfGroups {
			for _, fr := range stack {
				if strings.Contains(fr, g.match) {
					incl[i]++
					break
				}
			}
		}
		stack = stack[:0]
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			flush()
			continue
		}
		// "ADDR SYMBOL+0x.." or "ADDR SYMBOL"
		_, sym, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if i := strings.LastIndex(sym, "+0x"); i > 0 {
			sym = sym[:i]
		}
		stack = append(stack, sym)
	}
	flush()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("perf script: %w", err)
	}
	if total == 0 {
		return fmt.Errorf("%s: no samples", *in)
	}
	fmt.Fprintf(stdout, "%s: %d samples\n\ninclusive share of the gateway's CPU samples:\n", *in, total)
	for i, g := range perfGroups {
		if incl[i] > 0 {
			fmt.Fprintf(stdout, "  %5.1f%%  %s\n", 100*float64(incl[i])/float64(total), g.name)
		}
	}
	type kv struct {
		k string
		v int
	}
	var ss []kv
	for k, v := range self {
		ss = append(ss, kv{k, v})
	}
	slices.SortFunc(ss, func(a, b kv) int { return cmp.Compare(b.v, a.v) })
	fmt.Fprintf(stdout, "\ntop functions by own samples:\n")
	for _, e := range ss[:min(*top, len(ss))] {
		fmt.Fprintf(stdout, "  %5.1f%%  %s\n", 100*float64(e.v)/float64(total), e.k)
	}
	return nil
}
