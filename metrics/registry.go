// Package metrics exports tandem's Prometheus metrics: the proxy's sessions
// and commands, the failover manager's events, and each node's status read
// at scrape time.
//
// Neither proxy nor failover imports this package or Prometheus: proxy
// takes an observer interface it declares itself, which ProxyObserver
// satisfies, and failover takes plain hooks and a status function.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every tandem metric name.
const namespace = "tandem"

// counterVec is a tandem counter with one label.
func counterVec(name, help, label string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, []string{label})
}

// newHistogram is a tandem histogram of seconds.
func newHistogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets})
}

// Registry holds tandem's metrics. Make one with New; its methods are safe
// for concurrent use.
type Registry struct {
	reg      *prometheus.Registry
	proxy    *proxyMetrics
	failover *failoverMetrics
}

// New returns a Registry with the proxy and failover metrics, and the Go
// runtime and process collectors, registered. Every labelled series that
// can be known in advance exists from the start at zero, so that rate()
// and increase() see the first event.
func New() *Registry {
	r := &Registry{
		reg:      prometheus.NewRegistry(),
		proxy:    newProxyMetrics(),
		failover: newFailoverMetrics(),
	}
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	r.proxy.register(r.reg)
	r.failover.register(r.reg)
	return r
}

// ProxyObserver returns the observer to set in the proxy's Config. Every
// call returns the same observer.
func (r *Registry) ProxyObserver() ProxyObserver { return r.proxy }

// Handler serves the metrics in the Prometheus text or protobuf format,
// as the scraper asks, for /metrics.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg})
}

// Prometheus returns the underlying registry, to register more collectors
// or gather in tests.
func (r *Registry) Prometheus() *prometheus.Registry { return r.reg }
