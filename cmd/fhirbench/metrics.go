package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// metricsText is a scraped Prometheus text exposition: one sample per
// line, "name{labels} value".
type metricsText []string

// scrapeMetrics reads the gateway's /metrics (at the root of the FHIR
// base URL's host).
func scrapeMetrics(base string) (metricsText, error) {
	u := base
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			u = u[:i+3+j]
		}
	}
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(u + "/metrics")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s/metrics: HTTP %d", u, res.StatusCode)
	}
	var m metricsText
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); line != "" && line[0] != '#' {
			m = append(m, line)
		}
	}
	return m, sc.Err()
}

// sum adds the values of the samples of metric name whose labels contain
// every one of labels (such as `method="POST"`).
func (m metricsText) sum(name string, labels ...string) float64 {
	var total float64
	for _, line := range m {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		sp := strings.LastIndexByte(rest, ' ')
		lbl := rest[:sp]
		match := true
		for _, l := range labels {
			if !strings.Contains(lbl, l) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		if v, err := strconv.ParseFloat(rest[sp+1:], 64); err == nil {
			total += v
		}
	}
	return total
}

// dirSize returns the bytes of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, err
}
