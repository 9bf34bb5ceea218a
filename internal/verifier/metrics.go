package verifier

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parityhq/parity/internal/store"
)

// Metrics exports workers' counters and the shared consumer's backlog in the
// Prometheus format. Counters are read from [Worker.Stats] at scrape time, so
// they cost nothing on the hot path.
type Metrics struct {
	js       jetstream.JetStream // nil: no consumer backlog
	stream   string
	durable  string
	workers  func() []*Worker
	counters []counterDesc
	flushSec *prometheus.Desc
	pending  *prometheus.Desc
	acking   *prometheus.Desc
}

type counterDesc struct {
	desc *prometheus.Desc
	get  func(Stats) uint64
}

// NewMetrics returns a collector over the workers that workers returns. With
// a non-nil js it also reports the durable consumer's backlog.
func NewMetrics(js jetstream.JetStream, opts Options, workers func() []*Worker) *Metrics {
	_ = opts.setDefaults() // names only; New validated the rest
	c := func(name, help string, get func(Stats) uint64) counterDesc {
		return counterDesc{prometheus.NewDesc("parity_verifier_"+name, help, nil, nil), get}
	}
	return &Metrics{
		js: js, stream: opts.Stream.Name, durable: opts.Durable, workers: workers,
		counters: []counterDesc{
			c("messages_consumed_total", "Messages received from the pair stream.", func(s Stats) uint64 { return s.Consumed }),
			c("pairs_judged_total", "Pairs counted (A/A pairs included).", func(s Stats) uint64 { return s.Judged }),
			c("pairs_divergent_total", "Counted pairs whose candidate disagreed with control.", func(s Stats) uint64 { return s.Divergent }),
			c("dead_letters_total", "Envelopes set aside with a reason.", func(s Stats) uint64 { return s.DeadLettered }),
			c("duplicates_total", "Redelivered messages already counted.", func(s Stats) uint64 { return s.Duplicates }),
			c("flushes_total", "Committed batches.", func(s Stats) uint64 { return s.Flushes }),
			c("flush_errors_total", "Failed attempts to commit a batch.", func(s Stats) uint64 { return s.FlushErrors }),
		},
		flushSec: prometheus.NewDesc("parity_verifier_flush_seconds_total", "Time spent committing batches, retries included.", nil, nil),
		pending:  prometheus.NewDesc("parity_consumer_pending_messages", "Pairs in the stream not yet delivered to a verifier (consumer lag).", nil, nil),
		acking:   prometheus.NewDesc("parity_consumer_ack_pending_messages", "Pairs delivered to verifiers and not yet acknowledged.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.counters {
		ch <- c.desc
	}
	ch <- m.flushSec
	ch <- m.pending
	ch <- m.acking
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	var total Stats
	for _, w := range m.workers() {
		s := w.Stats()
		total.Consumed += s.Consumed
		total.Judged += s.Judged
		total.Divergent += s.Divergent
		total.DeadLettered += s.DeadLettered
		total.Duplicates += s.Duplicates
		total.Flushes += s.Flushes
		total.FlushErrors += s.FlushErrors
		total.FlushTime += s.FlushTime
	}
	for _, c := range m.counters {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.get(total)))
	}
	ch <- prometheus.MustNewConstMetric(m.flushSec, prometheus.CounterValue, total.FlushTime.Seconds())
	if m.js == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cons, err := m.js.Consumer(ctx, m.stream, m.durable)
	if err != nil {
		return // not created yet, or NATS unreachable: no backlog figure rather than a wrong one
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(m.pending, prometheus.GaugeValue, float64(info.NumPending))
	ch <- prometheus.MustNewConstMetric(m.acking, prometheus.GaugeValue, float64(info.NumAckPending))
}

// FoldMetrics returns counters of the pairs the store counted in experiment
// or operation "other" because their own was past the store's cap
// (store.Options.ExperimentCap, OperationCap), read from folded at scrape
// time.
func FoldMetrics(folded func() store.FoldStats) []prometheus.Collector {
	c := func(into string, get func(store.FoldStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "parity_store_folded_pairs_total", Help: "Pairs counted in experiment or operation \"other\" because their own was past its cap.",
			ConstLabels: prometheus.Labels{"into": into},
		}, func() float64 { return float64(get(folded())) })
	}
	return []prometheus.Collector{
		c("experiment", func(f store.FoldStats) uint64 { return f.ExperimentPairs }),
		c("operation", func(f store.FoldStats) uint64 { return f.OperationPairs }),
	}
}
