// Package parityprom exports the counters of Parity's migration helpers
// ([migration.Stats]) as Prometheus metrics. It is a separate package so
// that applications that do not use Prometheus do not link its client.
//
// A [Collector] reads the counters of its sources when it is scraped; it
// keeps no state of its own, so it costs nothing between scrapes. Every
// metric has the labels experiment, operation and kind ("read" or "write"):
//
//	parity_migration_calls_total               calls to Read or Write
//	parity_migration_pairs_offered_total       calls in a comparing stage
//	parity_migration_pairs_published_total     pairs the publisher accepted
//	parity_migration_pairs_dropped_total       pairs refused or over MaxInFlight
//	parity_migration_pairs_sampled_out_total   calls left out of the sample
//	parity_migration_pairs_pending             pairs not complete yet (gauge)
//	parity_migration_flag_errors_total         flag evaluations that fell back to the default stage
//	parity_migration_panics_total              panics recovered from user functions
//	parity_migration_timeouts_total            non-authoritative sides past their timeout
//	parity_migration_marshal_errors_total      results that could not be encoded as JSON
//	parity_migration_writes_frozen_total       writes refused during a freeze
//	parity_migration_in_flight                 non-authoritative reads running (gauge)
package parityprom

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parityhq/parity/pkg/migration"
)

// Source is what a Collector reads: a *migration.Reader or a
// *migration.Writer.
type Source interface {
	Stats() migration.Stats
}

// ErrDuplicate is wrapped by the error [Collector.Add] returns for a second
// source with the same experiment, operation and kind, whose metrics would
// collide.
var ErrDuplicate = errors.New("parityprom: duplicate source")

var labels = []string{"experiment", "operation", "kind"}

type metric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(*migration.Stats) float64
}

func counter(name, help string, v func(*migration.Stats) uint64) metric {
	return metric{
		desc:  prometheus.NewDesc(name, help, labels, nil),
		typ:   prometheus.CounterValue,
		value: func(s *migration.Stats) float64 { return float64(v(s)) },
	}
}

var metrics = []metric{
	counter("parity_migration_calls_total", "Calls to Read or Write.",
		func(s *migration.Stats) uint64 { return s.Calls }),
	counter("parity_migration_pairs_offered_total", "Calls in a stage that compares the old and new paths.",
		func(s *migration.Stats) uint64 { return s.Offered }),
	counter("parity_migration_pairs_published_total", "Pairs the publisher accepted.",
		func(s *migration.Stats) uint64 { return s.Published }),
	counter("parity_migration_pairs_dropped_total", "Pairs the publisher refused, and reads over MaxInFlight.",
		func(s *migration.Stats) uint64 { return s.Dropped }),
	counter("parity_migration_pairs_sampled_out_total", "Calls in a comparing stage left out of the sample.",
		func(s *migration.Stats) uint64 { return s.SampledOut }),
	{
		desc:  prometheus.NewDesc("parity_migration_pairs_pending", "Pairs whose calls have started but that are not published, dropped or sampled out yet.", labels, nil),
		typ:   prometheus.GaugeValue,
		value: func(s *migration.Stats) float64 { return float64(s.Pending) },
	},
	counter("parity_migration_flag_errors_total", "Flag evaluations that failed or gave an unknown stage; the default stage was used.",
		func(s *migration.Stats) uint64 { return s.FlagErrors }),
	counter("parity_migration_panics_total", "Panics recovered from the old path, the new path and the comparison.",
		func(s *migration.Stats) uint64 { return s.Panics }),
	counter("parity_migration_timeouts_total", "Non-authoritative sides that did not answer within their timeout.",
		func(s *migration.Stats) uint64 { return s.Timeouts }),
	counter("parity_migration_marshal_errors_total", "Results that could not be encoded as JSON.",
		func(s *migration.Stats) uint64 { return s.MarshalErrors }),
	counter("parity_migration_writes_frozen_total", "Writes refused because the stage was freeze.",
		func(s *migration.Stats) uint64 { return s.Frozen }),
	{
		desc:  prometheus.NewDesc("parity_migration_in_flight", "Non-authoritative reads running now, abandoned ones included.", labels, nil),
		typ:   prometheus.GaugeValue,
		value: func(s *migration.Stats) float64 { return float64(s.InFlight) },
	},
}

// Collector is a prometheus.Collector over the counters of migration
// Readers and Writers. Its methods are safe for concurrent use.
type Collector struct {
	mu      sync.Mutex
	sources []Source
	seen    map[[3]string]bool
}

// New returns a Collector over sources. See [Collector.Add] for the errors.
func New(sources ...Source) (*Collector, error) {
	c := &Collector{seen: map[[3]string]bool{}}
	for _, s := range sources {
		if err := c.Add(s); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Add adds a source, which may be done after the Collector is registered.
// It fails for a nil source and, with an error wrapping [ErrDuplicate], for
// a second source with the same experiment, operation and kind.
func (c *Collector) Add(s Source) error {
	if s == nil {
		return errors.New("parityprom: nil source")
	}
	st := s.Stats()
	key := [3]string{st.Experiment, st.Operation, string(st.Kind)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[key] {
		return fmt.Errorf("%w: experiment %q operation %q kind %q", ErrDuplicate, key[0], key[1], key[2])
	}
	c.seen[key] = true
	c.sources = append(c.sources, s)
	return nil
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range metrics {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	sources := c.sources[:len(c.sources):len(c.sources)]
	c.mu.Unlock()
	for _, src := range sources {
		s := src.Stats()
		for _, m := range metrics {
			ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(&s), s.Experiment, s.Operation, string(s.Kind))
		}
	}
}
