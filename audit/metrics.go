package audit

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Why Record refused an event (fhirgate_audit_refused_total{reason}).
const (
	refusedFull     = iota // the queue was full
	refusedFailed          // the commit failed
	refusedShutdown        // closing
	refusedGaveUp          // the caller's context ended first
	refusedReasons
)

var refusedNames = [refusedReasons]string{"queue_full", "commit_failed", "shutting_down", "gave_up"}

type metrics struct {
	events, commits, failedCommits atomic.Int64
	rode                           atomic.Int64 // events written in their interaction's commit (Ride)
	refused                        [refusedReasons]atomic.Int64
	commitSeconds                  prometheus.Histogram
}

func (m *metrics) init() {
	m.commitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "fhirgate_audit_commit_duration_seconds",
		Help: "Time of one synced commit of AuditEvents (the requests waiting for it answer when it ends).",
		// 100 µs .. ~1.6 s
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 15),
	})
}

var (
	descEvents = prometheus.NewDesc("fhirgate_audit_events_total",
		"AuditEvents written (each with its log leaf, synced before its request answered).", nil, nil)
	descCommits = prometheus.NewDesc("fhirgate_audit_commits_total",
		"Synced commits that wrote them (events per commit: the group commit at work).", nil, nil)
	descFailed = prometheus.NewDesc("fhirgate_audit_failed_commits_total",
		"Commits of AuditEvents that failed (their requests answered 503).", nil, nil)
	descRefused = prometheus.NewDesc("fhirgate_audit_refused_total",
		"Requests that failed closed (503) because their AuditEvent could not be kept, by reason.", []string{"reason"}, nil)
	descRode = prometheus.NewDesc("fhirgate_audit_events_in_write_commits_total",
		"AuditEvents written in the commit of the write they record (Ride), not counted in fhirgate_audit_events_total.", nil, nil)
	descGathering = prometheus.NewDesc("fhirgate_audit_gathering_events",
		"Events waiting for the next commit.", nil, nil)
)

// Collector returns the recorder's Prometheus metrics. Register it once
// (the gateway's /metrics).
func (r *Recorder) Collector() prometheus.Collector { return recorderCollector{r} }

type recorderCollector struct{ r *Recorder }

func (c recorderCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEvents, descCommits, descFailed, descRefused, descRode, descGathering} {
		ch <- d
	}
	c.r.metrics.commitSeconds.Describe(ch)
}

func (c recorderCollector) Collect(ch chan<- prometheus.Metric) {
	m := &c.r.metrics
	ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(m.events.Load()))
	ch <- prometheus.MustNewConstMetric(descCommits, prometheus.CounterValue, float64(m.commits.Load()))
	ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(m.failedCommits.Load()))
	ch <- prometheus.MustNewConstMetric(descRode, prometheus.CounterValue, float64(m.rode.Load()))
	for i, name := range refusedNames {
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(m.refused[i].Load()), name)
	}
	c.r.mu.Lock()
	n := len(c.r.cur.events)
	c.r.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descGathering, prometheus.GaugeValue, float64(n))
	m.commitSeconds.Collect(ch)
}
