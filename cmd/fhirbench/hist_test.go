package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	// Every bucket starts right after the previous one ends, and every
	// value maps to the bucket whose range holds it.
	var next uint64
	for i := range histBuckets {
		lo, hi := bucketRange(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if hi < lo {
			t.Fatalf("bucket %d: hi %d < lo %d", i, hi, lo)
		}
		for _, v := range []uint64{lo, lo + (hi-lo)/2, hi} {
			if b := bucketOf(v); b != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, b, i)
			}
		}
		next = hi + 1
	}
	if next != 1<<63 {
		t.Fatalf("buckets end at %d, want every non-negative int64 (up to 2^63)", next)
	}
}

func TestBucketPrecision(t *testing.T) {
	for _, v := range []uint64{0, 1, 255, 256, 257, 1000, 123456, 1 << 30, 987654321, 1 << 62} {
		lo, hi := bucketRange(bucketOf(v))
		if float64(hi-lo) > float64(v)/subCount {
			t.Errorf("value %d: bucket [%d, %d] wider than 1/%d of it", v, lo, hi, subCount)
		}
	}
}

func TestQuantile(t *testing.T) {
	us := time.Microsecond
	ms := time.Millisecond
	seq := func(n int, step time.Duration) []time.Duration {
		var ds []time.Duration
		for i := 1; i <= n; i++ {
			ds = append(ds, time.Duration(i)*step)
		}
		return ds
	}
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one value", []time.Duration{3 * ms}, 0.99, 3 * ms},
		{"one value p0", []time.Duration{3 * ms}, 0, 3 * ms},
		{"small exact median", []time.Duration{1, 2, 3, 4, 5}, 0.5, 3},
		{"small exact p100", []time.Duration{1, 2, 3, 4, 5}, 1, 5},
		{"1..100 us p50", seq(100, us), 0.50, 50 * us},
		{"1..100 us p99", seq(100, us), 0.99, 99 * us},
		{"1..1000 ms p999", seq(1000, ms), 0.999, 999 * ms},
		{"1..1000 ms p50", seq(1000, ms), 0.5, 500 * ms},
		{"outlier at p99", append(slices.Repeat([]time.Duration{ms}, 98), 10*ms, 500*ms), 0.99, 10 * ms},
		{"outlier beyond p99", append(slices.Repeat([]time.Duration{ms}, 99), 500*ms), 0.99, ms},
		{"max is max", append(slices.Repeat([]time.Duration{ms}, 99), 500*ms), 1, 500 * ms},
		{"negative is zero", []time.Duration{-5}, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			got := h.Quantile(tt.q)
			if !near(got, tt.want) {
				t.Errorf("Quantile(%v) = %v, want %v (within 1/%d)", tt.q, got, tt.want, subCount)
			}
		})
	}
}

func near(got, want time.Duration) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d <= want/subCount
}

// TestQuantileMatchesSort checks random data against the exact
// nearest-rank quantile of the sorted values.
func TestQuantileMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 100, 10_000} {
		var h Histogram
		vals := make([]time.Duration, n)
		for i := range vals {
			// Log-normal-ish latencies from 10 us to ~1 s.
			vals[i] = time.Duration(10_000 * (1 + r.ExpFloat64()*r.ExpFloat64()*50))
			h.Record(vals[i])
		}
		slices.Sort(vals)
		for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
			rank := int(q*float64(n) + 0.999999999)
			rank = min(max(rank, 1), n)
			want := vals[rank-1]
			if got := h.Quantile(q); !near(got, want) {
				t.Errorf("n=%d q=%v: got %v, want %v", n, q, got, want)
			}
		}
		if h.Count() != uint64(n) || h.Max() != vals[n-1] {
			t.Errorf("n=%d: count %d max %v, want %d %v", n, h.Count(), h.Max(), n, vals[n-1])
		}
	}
}

func TestMerge(t *testing.T) {
	var a, b, all Histogram
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	if m.counts != all.counts || m.n != all.n || m.min != all.min || m.max != all.max || m.Mean() != all.Mean() {
		t.Fatalf("merged histogram differs: n %d/%d min %d/%d max %d/%d", m.n, all.n, m.min, all.min, m.max, all.max)
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		if m.Quantile(q) != all.Quantile(q) {
			t.Errorf("q %v: merged %v, direct %v", q, m.Quantile(q), all.Quantile(q))
		}
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(1000, func() { h.Record(1234567) }); n != 0 {
		t.Errorf("Record allocates %v times", n)
	}
}
