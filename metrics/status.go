package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemdb/tandem/failover"
)

// states are the state machine's states, each with a tandem_state series.
var states = []failover.State{
	failover.StateActive,
	failover.StateDown,
	failover.StateFailingOver,
	failover.StateSwitchingOver,
}

// WatchStatus registers a collector that calls status at every scrape
// (typically (*failover.Manager).Status) and exports what it returns:
// each node's health, read_only, role, replication lag and SQL thread, the
// decision's epoch and the state machine's state. It may be called once.
func (r *Registry) WatchStatus(status func() failover.Status) error {
	if status == nil {
		return errors.New("metrics: WatchStatus with a nil status function")
	}
	return r.reg.Register(newStatusCollector(status))
}

// statusCollector exports a failover.Status read at scrape time.
type statusCollector struct {
	status     func() failover.Status
	up         *prometheus.Desc
	readOnly   *prometheus.Desc
	active     *prometheus.Desc
	lag        *prometheus.Desc
	sqlRunning *prometheus.Desc
	epoch      *prometheus.Desc
	state      *prometheus.Desc
}

func newStatusCollector(status func() failover.Status) *statusCollector {
	node := []string{"node"}
	name := func(n string) string { return prometheus.BuildFQName(namespace, "", n) }
	return &statusCollector{
		status:     status,
		up:         prometheus.NewDesc(name("node_up"), "1 if the node passed its last health check, else 0.", node, nil),
		readOnly:   prometheus.NewDesc(name("node_read_only"), "1 if the node has read_only or super_read_only on, else 0.", node, nil),
		active:     prometheus.NewDesc(name("node_active"), "1 for the node decided active (taking traffic), else 0.", node, nil),
		lag:        prometheus.NewDesc(name("node_replication_lag_seconds"), "Replication lag last measured on the node; absent when unknown.", node, nil),
		sqlRunning: prometheus.NewDesc(name("node_replica_sql_running"), "1 if the node's replication SQL thread runs, else 0.", node, nil),
		epoch:      prometheus.NewDesc(name("epoch"), "Epoch of the current decision: one more at every change of active node.", nil, nil),
		state:      prometheus.NewDesc(name("state"), "1 for the failover state machine's current state, else 0.", []string{"state"}, nil),
	}
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.readOnly, c.active, c.lag, c.sqlRunning, c.epoch, c.state} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, n := range s.Nodes {
		gauge(c.up, bit(n.Healthy), n.Name)
		gauge(c.active, bit(n.Role == "active"), n.Name)
		if !n.FactsCurrent {
			continue // stale facts are not exported
		}
		gauge(c.readOnly, bit(n.ReadOnly), n.Name)
		if n.LagKnown {
			gauge(c.lag, n.Lag.Seconds(), n.Name)
		}
		gauge(c.sqlRunning, bit(n.SQLRunning), n.Name)
	}
	gauge(c.epoch, float64(s.Decision.Epoch))
	known := false
	for _, st := range states {
		cur := st.String() == s.State
		known = known || cur
		gauge(c.state, bit(cur), st.String())
	}
	if !known && s.State != "" {
		gauge(c.state, 1, s.State)
	}
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
