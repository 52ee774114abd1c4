package ingest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Summary is what an import did.
type Summary struct {
	Files     int
	Resources int64 // resources and lines handled (each counted once below)
	Created   int64
	Updated   int64
	Unchanged int64 // already stored with this content (verified), or matched by ifNoneExist
	Failed    int64
	Skipped   int64 // done in an earlier run (the state file)
	Elapsed   time.Duration
}

// Rate is resources handled per second, skipped ones excepted.
func (s Summary) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Resources-s.Skipped) / s.Elapsed.Seconds()
}

func (s Summary) String() string {
	return fmt.Sprintf("import: %d files, %d resources in %s (%.0f/s): %d created, %d updated, %d unchanged, %d failed, %d skipped (done in an earlier run)",
		s.Files, s.Resources, s.Elapsed.Round(time.Millisecond), s.Rate(), s.Created, s.Updated, s.Unchanged, s.Failed, s.Skipped)
}

// Failure is one resource (or line) that was not stored: a line of the
// --errors file.
type Failure struct {
	File         string   `json:"file"`
	Line         int      `json:"line,omitempty"`  // NDJSON
	Entry        string   `json:"entry,omitempty"` // Bundle files: entry[i]
	ResourceType string   `json:"resourceType,omitempty"`
	ID           string   `json:"id,omitempty"`
	Status       int      `json:"status,omitempty"` // the gateway's answer; 0: refused before sending
	Code         string   `json:"code,omitempty"`   // the OperationOutcome's issue code
	Diagnostics  string   `json:"diagnostics"`
	Expression   []string `json:"expression,omitempty"`
	// Retry says the failure may pass on a rerun (the gateway was
	// unavailable): its chunk is not marked done.
	Retry bool `json:"retry,omitempty"`
}

// where is "file:line" or "file entry[i]".
func (f Failure) where() string {
	switch {
	case f.Line > 0:
		return fmt.Sprintf("%s:%d", f.File, f.Line)
	case f.Entry != "":
		return f.File + " " + f.Entry
	}
	return f.File
}

func (f Failure) String() string {
	var b strings.Builder
	b.WriteString(f.where())
	b.WriteString(": ")
	if f.ResourceType != "" {
		b.WriteString(f.ResourceType)
		if f.ID != "" {
			b.WriteString("/" + f.ID)
		}
		b.WriteString(": ")
	}
	if f.Status != 0 {
		fmt.Fprintf(&b, "%d ", f.Status)
	}
	b.WriteString(f.Diagnostics)
	if len(f.Expression) > 0 {
		b.WriteString(" (" + strings.Join(f.Expression, ", ") + ")")
	}
	return b.String()
}

// reporter counts, draws the progress and writes failures.
type reporter struct {
	mu     sync.Mutex
	out    io.Writer // stderr
	tty    bool
	errs   *json.Encoder
	every  time.Duration
	start  time.Time
	drawn  bool
	total  atomic.Int64 // -1 until counted
	sum    struct{ resources, created, updated, unchanged, failed, skipped atomic.Int64 }
	last   int64
	lastAt time.Time
}

func newReporter(out io.Writer, tty bool, errs io.Writer, every time.Duration) *reporter {
	r := &reporter{out: out, tty: tty, every: every, start: time.Now()}
	r.lastAt = r.start
	r.total.Store(-1)
	if errs != nil {
		r.errs = json.NewEncoder(errs)
	}
	return r
}

// IsTerminal says whether f is a terminal (a character device), where the
// progress is one line redrawn with \r.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (r *reporter) fail(f Failure) {
	r.sum.failed.Add(1)
	r.sum.resources.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clearLine()
	fmt.Fprintln(r.out, f.String())
	if r.errs != nil {
		r.errs.Encode(f)
	}
}

// failAll counts n resources failed with one message (a transaction
// refused as a whole, a gateway that stays unavailable).
func (r *reporter) failAll(f Failure, n int) {
	r.fail(f)
	if n > 1 {
		r.sum.failed.Add(int64(n - 1))
		r.sum.resources.Add(int64(n - 1))
	}
}

func (r *reporter) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clearLine()
	fmt.Fprintf(r.out, format+"\n", args...)
}

func (r *reporter) clearLine() {
	if r.tty && r.drawn {
		fmt.Fprint(r.out, "\r\033[K")
		r.drawn = false
	}
}

// run draws the progress until done is closed.
func (r *reporter) run(done <-chan struct{}) {
	every := r.every
	if r.tty {
		every = 250 * time.Millisecond
	}
	if every <= 0 {
		<-done
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			r.mu.Lock()
			r.clearLine()
			r.mu.Unlock()
			return
		case now := <-t.C:
			r.draw(now)
		}
	}
}

func (r *reporter) draw(now time.Time) {
	n := r.sum.resources.Load()
	skipped := r.sum.skipped.Load()
	total := r.total.Load()
	el := now.Sub(r.start).Seconds()
	rate := float64(n-skipped) / el
	recent := float64(n-r.last) / now.Sub(r.lastAt).Seconds()
	r.last, r.lastAt = n, now
	var b strings.Builder
	fmt.Fprintf(&b, "import: %d", n)
	if total >= 0 {
		fmt.Fprintf(&b, "/%d", total)
	}
	fmt.Fprintf(&b, " resources")
	if total > 0 {
		fmt.Fprintf(&b, " (%.0f%%)", 100*float64(min(n, total))/float64(total))
	}
	fmt.Fprintf(&b, "  %.0f/s", rate)
	if !r.tty {
		fmt.Fprintf(&b, " (%.0f/s now)", recent)
	}
	if total > n && rate > 0 {
		eta := time.Duration(float64(total-n) / rate * float64(time.Second))
		fmt.Fprintf(&b, "  ETA %s", eta.Round(time.Second))
	}
	if f := r.sum.failed.Load(); f > 0 {
		fmt.Fprintf(&b, "  %d failed", f)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tty {
		fmt.Fprint(r.out, "\r\033[K"+b.String())
		r.drawn = true
	} else {
		fmt.Fprintln(r.out, b.String())
	}
}

func (r *reporter) summary(files int) Summary {
	return Summary{
		Files:     files,
		Resources: r.sum.resources.Load(),
		Created:   r.sum.created.Load(),
		Updated:   r.sum.updated.Load(),
		Unchanged: r.sum.unchanged.Load(),
		Failed:    r.sum.failed.Load(),
		Skipped:   r.sum.skipped.Load(),
		Elapsed:   time.Since(r.start),
	}
}

func (r *reporter) add(c *atomic.Int64, n int) {
	c.Add(int64(n))
	r.sum.resources.Add(int64(n))
}
