package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemdb/tandem/failover"
)

// eventTypes are the events with a tandem_events_total series from the
// start; any other type gets one when it first happens.
var eventTypes = []failover.EventType{
	failover.EventNodeDown,
	failover.EventNodeUp,
	failover.EventFailoverStarted,
	failover.EventFailoverFinished,
	failover.EventFailoverRefused,
	failover.EventSwitchoverStarted,
	failover.EventSwitchoverFinished,
	failover.EventSwitchoverRollback,
	failover.EventFenced,
	failover.EventErrant,
	failover.EventReplicationStopped,
	failover.EventLagHigh,
	failover.EventSplitBrain,
	failover.EventNoWriter,
	failover.EventRecovered,
}

// failoverBuckets spans a fast promotion of a caught-up passive (0.1s) to
// one that waited long for the candidate to catch up (2min).
var failoverBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120}

// writePauseBuckets spans the time writes were held in a switchover: from
// a few milliseconds when idle to the drain timeout.
var writePauseBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

type failoverMetrics struct {
	events      *prometheus.CounterVec
	failovers   *prometheus.CounterVec
	switchovers *prometheus.CounterVec
	failoverDur prometheus.Histogram
	writePause  prometheus.Histogram
}

func newFailoverMetrics() *failoverMetrics {
	m := &failoverMetrics{
		events: counterVec("events_total",
			"Events raised by the failover manager, by type.", "type"),
		failovers: counterVec("failovers_total",
			"Failovers that promoted the other node (finished) or found it unsafe to promote (refused).", "result"),
		switchovers: counterVec("switchovers_total",
			"Planned switchovers that moved traffic (finished) or gave up and restored the old active (rolled_back).", "result"),
		failoverDur: newHistogram("failover_duration_seconds",
			"Time from the start of a failover to traffic flowing to the promoted node.", failoverBuckets),
		writePause: newHistogram("switchover_write_pause_seconds",
			"Time writes were held during a switchover, finished or rolled back.", writePauseBuckets),
	}
	for _, t := range eventTypes {
		m.events.WithLabelValues(string(t))
	}
	m.failovers.WithLabelValues("finished")
	m.failovers.WithLabelValues("refused")
	m.switchovers.WithLabelValues("finished")
	m.switchovers.WithLabelValues("rolled_back")
	return m
}

func (m *failoverMetrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.events, m.failovers, m.switchovers, m.failoverDur, m.writePause)
}

// FailoverHook returns a hook for the failover manager that counts its
// events. A duration is observed only when the event carries one.
func (r *Registry) FailoverHook() failover.Hook { return r.failover.observe }

func (m *failoverMetrics) observe(e failover.Event) {
	m.events.WithLabelValues(string(e.Type)).Inc()
	switch e.Type {
	case failover.EventFailoverFinished:
		m.failovers.WithLabelValues("finished").Inc()
		if e.Duration > 0 {
			m.failoverDur.Observe(e.Duration.Seconds())
		}
	case failover.EventFailoverRefused:
		m.failovers.WithLabelValues("refused").Inc()
	case failover.EventSwitchoverFinished, failover.EventSwitchoverRollback:
		result := "finished"
		if e.Type == failover.EventSwitchoverRollback {
			result = "rolled_back"
		}
		m.switchovers.WithLabelValues(result).Inc()
		if e.Duration > 0 {
			m.writePause.Observe(e.Duration.Seconds())
		}
	}
}
