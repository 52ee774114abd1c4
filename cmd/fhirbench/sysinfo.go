package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clkTck is USER_HZ, the unit of /proc CPU times (100 on every Linux
// architecture Go supports).
const clkTck = 100

type cpuSnap struct {
	self, server time.Duration // process CPU time (user + system)
	busy, total  time.Duration // whole machine, summed over CPUs
	serverOK     bool
}

type cpuDelta cpuSnap

func snapCPU(serverPID int) cpuSnap {
	var s cpuSnap
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if serverPID > 0 {
		s.server, s.serverOK = procCPU(serverPID)
	}
	s.busy, s.total = machineCPU()
	return s
}

func (s cpuSnap) sub(o cpuSnap) cpuDelta {
	return cpuDelta{
		self: s.self - o.self, server: s.server - o.server,
		busy: s.busy - o.busy, total: s.total - o.total,
		serverOK: s.serverOK && o.serverOK,
	}
}

// describe says where the CPU time of a phase went, per operation.
func (d cpuDelta) describe(ops int64, inProcess bool) string {
	if ops <= 0 || d.total <= 0 {
		return "cpu: n/a"
	}
	per := func(t time.Duration) string { return fmt.Sprintf("%.0fµs", float64(t)/float64(ops)/1e3) }
	var b strings.Builder
	if inProcess {
		fmt.Fprintf(&b, "cpu/op: %s (client+server, one process)", per(d.self))
	} else {
		fmt.Fprintf(&b, "cpu/op: client %s", per(d.self))
		if d.serverOK {
			fmt.Fprintf(&b, ", server %s", per(d.server))
		}
	}
	other := d.busy - d.self
	if d.serverOK {
		other -= d.server
	}
	fmt.Fprintf(&b, "; machine busy %.0f%% (this client %.0f%%", pct(d.busy, d.total), pct(d.self, d.total))
	if d.serverOK {
		fmt.Fprintf(&b, ", server %.0f%%", pct(d.server, d.total))
	}
	fmt.Fprintf(&b, ", everything else %.0f%%)", pct(max(other, 0), d.total))
	return b.String()
}

// otherPct is the share of the machine's CPU time used by processes other
// than this one and the server.
func (d cpuDelta) otherPct() float64 {
	other := d.busy - d.self
	if d.serverOK {
		other -= d.server
	}
	return pct(max(other, 0), d.total)
}

func pct(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// procCPU returns the user+system CPU time of process pid.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name may contain spaces: fields start after ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * time.Second / clkTck, true
}

// procRSS returns the resident set size of process pid in bytes.
func procRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// machineCPU returns busy and total CPU time of the machine from
// /proc/stat (all CPUs).
func machineCPU() (busy, total time.Duration) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0, 0
	}
	var v [10]int64
	for i := 1; i < len(fields) && i <= 10; i++ {
		v[i-1], _ = strconv.ParseInt(fields[i], 10, 64)
	}
	// user nice system idle iowait irq softirq steal (guest is in user)
	idle := v[3] + v[4]
	b := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return time.Duration(b) * time.Second / clkTck, time.Duration(b+idle) * time.Second / clkTck
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "n/a"
	}
	return strings.Join(f[:3], " ")
}

func loadAvg1() float64 {
	f := strings.Fields(loadAvg())
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "n/a"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "n/a"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "n/a"
	}
	return strings.TrimSpace(string(b))
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "n/a"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	return "n/a"
}

// fsOf describes the filesystem holding path (type and device from
// /proc/mounts, longest matching mount point).
func fsOf(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "n/a"
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "n/a"
	}
	best, desc := "", "n/a"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best, desc = mp, f[2]+" on "+mp+" ("+f[0]+")"
		}
	}
	return desc
}

// machineInfo is the header of every report.
func machineInfo(goVersionOfGateway string) []string {
	lines := []string{
		fmt.Sprintf("CPU: %d × %s (GOMAXPROCS %d)", runtime.NumCPU(), cpuModel(), runtime.GOMAXPROCS(0)),
		"memory: " + memTotal() + ", kernel " + kernel(),
		"fhirbench built with " + runtime.Version(),
	}
	if goVersionOfGateway != "" {
		lines = append(lines, "gateway built with "+goVersionOfGateway)
	}
	return lines
}
