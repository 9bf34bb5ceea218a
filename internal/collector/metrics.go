package collector

import (
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parityhq/parity/internal/verifier"
)

// registry gathers the collector's metrics: HTTP ingest outcomes, the
// in-process verifier workers and the consumer backlog, the demo hook's
// counters, and the Go runtime.
func (a *App) registry(js jetstream.JetStream, in *ingester) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.MustRegister(verifier.NewMetrics(js, a.opts.Verifier, a.Workers))
	r.MustRegister(verifier.FoldMetrics(a.st.Folded)...)
	items := func(status string, get func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "parity_ingest_items_total", Help: "Pairs received over HTTP, by outcome.",
			ConstLabels: prometheus.Labels{"status": status},
		}, func() float64 { return float64(get()) })
	}
	r.MustRegister(items("accepted", in.accepted.Load), items("rejected", in.rejected.Load), items("failed", in.failed.Load))
	if a.pub != nil {
		hook := func(name, help string, get func() uint64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parity_demo_hook_" + name, Help: help},
				func() float64 { return float64(get()) })
		}
		r.MustRegister(
			hook("published_total", "Demo pairs stored by JetStream.", func() uint64 { return a.pub.Stats().Published }),
			hook("dropped_total", "Demo pairs dropped by the hook's bounded queue.", func() uint64 { return a.pub.Stats().Dropped }),
			hook("failed_total", "Demo pairs that failed to publish.", func() uint64 { return a.pub.Stats().Failed }),
		)
	}
	return r
}

func metricsHandler(r *prometheus.Registry) echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(r, promhttp.HandlerOpts{}))
}
