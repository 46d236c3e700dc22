package failover

import (
	"fmt"
	"time"

	"github.com/tandemdb/tandem/replication"
)

// NodeStatus is what tandem knows of one node now.
type NodeStatus struct {
	Name          string        `json:"name"`
	Address       string        `json:"address"`
	Role          string        `json:"role"` // active or passive
	Healthy       bool          `json:"healthy"`
	LastCheck     time.Time     `json:"last_check"`
	LastError     string        `json:"last_error,omitempty"`
	FailedChecks  int           `json:"failed_checks"`
	ReadOnly      bool          `json:"read_only"`
	Version       string        `json:"version,omitempty"`
	IORunning     string        `json:"replica_io_running,omitempty"`
	SQLRunning    bool          `json:"replica_sql_running"`
	ReplicaError  string        `json:"replica_error,omitempty"`
	Executed      string        `json:"gtid_executed,omitempty"`
	Lag           time.Duration `json:"lag_ns"`
	LagKnown      bool          `json:"lag_known"`
	ExcludedWhy   string        `json:"excluded,omitempty"`
	UnsyncedWhy   string        `json:"unsynced,omitempty"`
	LastGoodCheck time.Time     `json:"last_good_check"`
	// FactsCurrent is false when the last check failed (or none
	// answered yet): read_only, the replica threads, lag and GTIDs are
	// then not shown, as they would be stale.
	FactsCurrent bool `json:"facts_current"`
}

// Status is a snapshot for the admin API and tests.
type Status struct {
	State    string       `json:"state"`
	Paused   bool         `json:"paused"`
	Decision Decision     `json:"decision"`
	Nodes    []NodeStatus `json:"nodes"`
	Events   []Event      `json:"events"`
	// Cluster lists the tandems sharing the decision (several tandems
	// only), as last read from etcd.
	Cluster []ClusterMember `json:"cluster,omitempty"`
	// Coordinator: this tandem is the one that acts (always, alone).
	Coordinator bool `json:"coordinator"`
	// SelfFenced: several tandems, and this one's lease is not valid (or
	// the decision not yet read under it): it relays nothing.
	SelfFenced bool `json:"self_fenced,omitempty"`
}

// Status returns a copy of the current status.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.status
	s.Nodes = append([]NodeStatus(nil), s.Nodes...)
	s.Events = append([]Event(nil), s.Events...)
	s.Cluster = append([]ClusterMember(nil), s.Cluster...)
	return s
}

// publish refreshes the status snapshot; called by the Run goroutine.
func (m *Manager) publish() {
	nodes := make([]NodeStatus, 0, len(m.nodes))
	for _, n := range m.nodes {
		f := n.good.Facts
		ns := NodeStatus{
			Name: n.Name, Address: n.Address, Role: "passive", Healthy: n.healthy,
			LastCheck: n.last.Time, FailedChecks: n.fails, Version: f.Version, LastGoodCheck: n.good.Time,
			ExcludedWhy: m.dec.Excluded[n.Name], UnsyncedWhy: m.dec.Unsynced[n.Name],
		}
		if n.Name == m.dec.Active {
			ns.Role = "active"
		}
		if n.last.Err != nil {
			ns.LastError = n.last.Err.Error()
		}
		if ns.FactsCurrent = n.last.Err == nil && !n.good.Time.IsZero(); !ns.FactsCurrent {
			nodes = append(nodes, ns)
			continue
		}
		ns.ReadOnly = f.ReadOnly || f.SuperReadOnly
		ns.IORunning, ns.SQLRunning = f.Replica.IORunning.String(), f.Replica.SQLRunning
		ns.Lag, ns.LagKnown = n.good.Lag, n.good.LagKnown
		if f.Replica.LastSQLErrno != 0 {
			ns.ReplicaError = fmt.Sprintf("SQL %d: %s", f.Replica.LastSQLErrno, f.Replica.LastSQLError)
		} else if f.Replica.LastIOErrno != 0 && f.Replica.IORunning != replication.IOYes {
			ns.ReplicaError = fmt.Sprintf("IO %d: %s", f.Replica.LastIOErrno, f.Replica.LastIOError)
		}
		if e := f.Executed(); e != nil {
			ns.Executed = e.String()
		}
		nodes = append(nodes, ns)
	}
	coordinator, fenced := true, false
	if m.cluster != nil {
		coordinator, fenced = m.leading, !m.gate.isOpen()
	}
	m.mu.Lock()
	m.status.Coordinator, m.status.SelfFenced = coordinator, fenced
	m.status.State = m.state.String()
	m.status.Paused = m.paused
	m.status.Decision = m.dec
	m.status.Nodes = nodes
	m.mu.Unlock()
}
