package anchor

import "github.com/prometheus/client_golang/prometheus"

var (
	descOK = prometheus.NewDesc("fhirgate_anchor_ok",
		"1 while the audit log is being anchored, 0 when the gateway cannot anchor (see fhirgate_anchor_problem and /readyz).", nil, nil)
	descProblem = prometheus.NewDesc("fhirgate_anchor_problem",
		"1 for the reason the gateway cannot anchor now: alarm, not_anchorer, no_funds, refused, failing or stalled.", []string{"reason"}, nil)
	descFailures = prometheus.NewDesc("fhirgate_anchor_consecutive_failures",
		"Anchoring transactions that failed in a row (reverted, given up, refused by the node).", nil, nil)
	descSize = prometheus.NewDesc("fhirgate_anchor_tree_size",
		"Leaves in the log (integrated), in the newest checkpoint (cut), and in the newest anchored checkpoint (anchored).", []string{"state"}, nil)
	descQueued = prometheus.NewDesc("fhirgate_anchor_queued_checkpoints",
		"Checkpoints waiting to be anchored (pending or submitted).", nil, nil)
	descAnchorer = prometheus.NewDesc("fhirgate_anchor_is_anchorer",
		"1 while this replica holds the anchoring lease (integrates and anchors), 0 while another replica does.", nil, nil)
	descWait = prometheus.NewDesc("fhirgate_anchor_oldest_wait_seconds",
		"How long the oldest checkpoint not yet anchored has waited (0: none waits).", nil, nil)
)

// Collector returns the log's Prometheus metrics, read from Status and
// Health when scraped. Register it once (the gateway's /metrics).
func (l *Log) Collector() prometheus.Collector { return logCollector{l} }

type logCollector struct{ l *Log }

func (c logCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOK, descProblem, descFailures, descSize, descQueued, descWait, descAnchorer} {
		ch <- d
	}
}

func (c logCollector) Collect(ch chan<- prometheus.Metric) {
	l := c.l
	code, _ := l.problem()
	s := l.Status()
	ok := 1.0
	if code != "" {
		ok = 0
	}
	ch <- prometheus.MustNewConstMetric(descOK, prometheus.GaugeValue, ok)
	for _, p := range Problems {
		v := 0.0
		if p == code {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descProblem, prometheus.GaugeValue, v, p)
	}
	ch <- prometheus.MustNewConstMetric(descFailures, prometheus.GaugeValue, float64(s.Failures))
	ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(s.Integrated), "integrated")
	ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(s.LastCut), "cut")
	ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(s.Anchored), "anchored")
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(s.Queued))
	wait, holder := l.oldestWait().Seconds(), 1.0
	if !l.IsAnchorer() {
		wait, holder = 0, 0
	}
	ch <- prometheus.MustNewConstMetric(descWait, prometheus.GaugeValue, wait)
	ch <- prometheus.MustNewConstMetric(descAnchorer, prometheus.GaugeValue, holder)
}
