//go:build unix

package audit

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCommit: what one synced commit of the trail costs, by the
// number of events it holds. The CPU per commit is mostly fixed (the
// WAL write and fdatasync), so the events per commit decide the CPU per
// event: go test ./audit -run '^$' -bench Commit -benchtime 1000x
func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{1, 8, 32, 128} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			_, tr := openTrail(b, nil)
			batch := make([]Event, n)
			for i := range batch {
				batch[i] = readEvent(i)
			}
			ctx := context.Background()
			cpu := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				if err := tr.write(ctx, batch, false); err != nil {
					b.Fatal(err)
				}
			}
			used := cpuTime() - cpu
			b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/commit")
			b.ReportMetric(float64(used.Microseconds())/float64(b.N*n), "cpu-µs/event")
		})
	}
}
