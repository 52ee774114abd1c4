package main

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestDriveTimed(t *testing.T) {
	var calls atomic.Int64
	r := drive(driveConfig{Name: "x", Clients: 4, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond}, nil,
		func(w *worker) (int, error) {
			calls.Add(1)
			time.Sleep(time.Millisecond)
			w.results += 2
			if w.n%10 == 0 {
				return 503, nil
			}
			return 200, nil
		})
	if r.OK == 0 || r.Codes[503] == 0 || r.Errors() != r.Codes[503] {
		t.Fatalf("ok %d, codes %v", r.OK, r.Codes)
	}
	measured := r.OK + r.Errors()
	if measured >= calls.Load() {
		t.Errorf("%d measured of %d calls: the warm-up was counted", measured, calls.Load())
	}
	if uint64(measured) != r.Hist.Count() {
		t.Errorf("histogram has %d values for %d measured operations", r.Hist.Count(), measured)
	}
	if r.Results != 2*measured {
		t.Errorf("results %d for %d measured operations: unmeasured ones counted", r.Results, measured)
	}
	if r.Elapsed != 200*time.Millisecond {
		t.Errorf("elapsed %v", r.Elapsed)
	}
	if !strings.Contains(r.String(), "503") {
		t.Errorf("report does not show the 503s: %s", r)
	}
}

func TestDrivePaced(t *testing.T) {
	tests := []struct {
		name    string
		clients int
		service time.Duration
		// the rate is 400/s for 500 ms: 200 operations are due
		minOK, maxOK   int64
		minP99, maxP99 time.Duration // latency counted from when each was due
	}{
		{"keeps up", 4, time.Millisecond, 150, 210, time.Millisecond, 100 * time.Millisecond},
		// 2 clients of a 20 ms server do 100/s: by the end the operation
		// answered was due at ~125 ms, so it waited ~375 ms, and the
		// latencies must show that.
		{"falls behind", 2, 20 * time.Millisecond, 30, 70, 250 * time.Millisecond, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := drive(driveConfig{Name: "p", Clients: tc.clients, Duration: 500 * time.Millisecond, Rate: 400}, nil,
				func(w *worker) (int, error) {
					time.Sleep(tc.service)
					return 200, nil
				})
			if r.OK < tc.minOK || r.OK > tc.maxOK {
				t.Errorf("%d operations in 500 ms at 400/s, want %d..%d", r.OK, tc.minOK, tc.maxOK)
			}
			if p99 := r.Hist.Quantile(0.99); p99 < tc.minP99 || p99 > tc.maxP99 {
				t.Errorf("p99 %v, want %v..%v", p99, tc.minP99, tc.maxP99)
			}
		})
	}
}

func TestDriveCounted(t *testing.T) {
	var next atomic.Int64
	r := drive(driveConfig{Name: "n", Clients: 8}, nil, func(w *worker) (int, error) {
		if next.Add(1) > 1000 {
			return 0, errDone
		}
		return 201, nil
	})
	if r.OK != 1000 || r.Errors() != 0 || r.Hist.Count() != 1000 {
		t.Errorf("ok %d errors %d hist %d, want 1000 0 1000", r.OK, r.Errors(), r.Hist.Count())
	}
}

func TestIDFromLocation(t *testing.T) {
	tests := []struct{ loc, typ, want string }{
		{"http://127.0.0.1:8080/fhir/Patient/0191-ab/_history/1", "Patient", "0191-ab"},
		{"Patient/abc/_history/3", "Patient", "abc"},
		{"http://h/fhir/Practitioner/p1", "Practitioner", "p1"},
		{"http://h/fhir/Patient/x/_history/1", "Practitioner", ""},
	}
	for _, tt := range tests {
		got, err := idFromLocation([]byte(tt.loc), tt.typ)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("idFromLocation(%q, %s) = %q, %v; want %q", tt.loc, tt.typ, got, err, tt.want)
		}
	}
}

func TestMetricsSum(t *testing.T) {
	m := metricsText{
		`fhirgate_http_request_duration_seconds_sum{method="GET",route="/fhir/:type/:id"} 2.5`,
		`fhirgate_http_request_duration_seconds_sum{method="POST",route="/fhir/:type"} 4`,
		`fhirgate_http_request_duration_seconds_count{method="POST",route="/fhir/:type"} 8`,
		`fhirgate_http_request_duration_seconds_sum{method="GET",route="/fhir/:type"} 1`,
		`process_resident_memory_bytes 1.2e+08`,
		`process_resident_memory_bytes_extra 5`,
	}
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"fhirgate_http_request_duration_seconds_sum", nil, 7.5},
		{"fhirgate_http_request_duration_seconds_sum", []string{`method="GET"`}, 3.5},
		{"fhirgate_http_request_duration_seconds_sum", []string{`method="GET"`, `route="/fhir/:type"`}, 1},
		{"fhirgate_http_request_duration_seconds_count", []string{`method="POST"`}, 8},
		{"process_resident_memory_bytes", nil, 1.2e8},
		{"missing", nil, 0},
	}
	for _, tt := range tests {
		if got := m.sum(tt.name, tt.labels...); got != tt.want {
			t.Errorf("sum(%s, %v) = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.xs); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.want)
		}
	}
}

// TestReadRequestAllocations checks that the load generator's read
// request allocates (next to) nothing: client and bare server run in this
// process, so the count covers both.
func TestReadRequestAllocations(t *testing.T) {
	body, err := typicalRead(1)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := newRawApp(body)
	go app.Listener(ln)
	defer app.Shutdown()
	tg, err := newTarget("http://"+ln.Addr().String()+"/fhir", "token", 1)
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{}
	tg.prepare(w)
	uri := []byte("/fhir/Patient/0193-abc")
	for range 10 { // warm the connection and the pools
		if status, err := tg.get(w, uri); err != nil || status != 200 {
			t.Fatalf("GET: %d %v", status, err)
		}
	}
	allocs := testing.AllocsPerRun(500, func() { tg.get(w, uri) })
	t.Logf("%.1f allocations per request (client and bare server)", allocs)
	if allocs > 1 {
		t.Errorf("%.1f allocations per read request", allocs)
	}
	if len(w.resp.Body()) != len(body) {
		t.Errorf("got %d bytes, want %d", len(w.resp.Body()), len(body))
	}
}

// TestRawPebble commits the create shape briefly through both engines:
// every commit must succeed (fresh ids never conflict).
func TestRawPebble(t *testing.T) {
	sh, err := createShape(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(sh.keys) < 10 || len(sh.conds) != 1 || len(sh.appends) != 1 {
		t.Fatalf("create shape: %d keys, %d conditions, %d log appends", len(sh.keys), len(sh.conds), len(sh.appends))
	}
	for _, engine := range []string{"raw", "store"} {
		r, err := runRawPebble(rawPebbleConfig{dir: t.TempDir(), clients: 4, duration: 300 * time.Millisecond, engine: engine, sh: sh})
		if err != nil {
			t.Fatal(err)
		}
		if r.OK == 0 || r.Errors() > 0 {
			t.Errorf("%s: %d commits, %d errors (%s)", engine, r.OK, r.Errors(), r.FirstErr)
		}
	}
}
