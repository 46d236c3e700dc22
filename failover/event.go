package failover

import "time"

// EventType names what happened.
type EventType string

// Every event tandem raises.
const (
	EventNodeDown           EventType = "node_down"
	EventNodeUp             EventType = "node_up"
	EventFailoverStarted    EventType = "failover_started"
	EventFailoverFinished   EventType = "failover_finished"
	EventFailoverRefused    EventType = "failover_refused"
	EventSwitchoverStarted  EventType = "switchover_started"
	EventSwitchoverFinished EventType = "switchover_finished"
	EventSwitchoverRollback EventType = "switchover_rolled_back"
	EventFenced             EventType = "node_fenced"
	EventErrant             EventType = "errant_transactions"
	EventReplicationStopped EventType = "replication_stopped"
	EventLagHigh            EventType = "lag_over_threshold"
	EventSplitBrain         EventType = "split_brain"
	EventNoWriter           EventType = "no_writable_node"
	EventRecovered          EventType = "traffic_restored"
	EventUnsynced           EventType = "passive_unsynced"
	EventSynced             EventType = "passive_synced"
	EventCoordinator        EventType = "coordinator_changed"
	EventSelfFenced         EventType = "self_fenced"
	EventLeaseRestored      EventType = "lease_restored"
)

// Event is one thing that happened, for logs, alerts and the admin API.
type Event struct {
	Type   EventType `json:"type"`
	Time   time.Time `json:"time"`
	Node   string    `json:"node,omitempty"` // the node concerned
	From   string    `json:"from,omitempty"` // traffic moved from
	To     string    `json:"to,omitempty"`   // traffic moved to
	Epoch  uint64    `json:"epoch"`
	Reason string    `json:"reason"`
	// Duration of the operation that ended (failover, switchover, write
	// pause), when there is one.
	Duration time.Duration `json:"duration_ns,omitempty"`
}

// Hook receives events. It is called from one goroutine in order, never
// from the state machine itself: a slow hook delays later events, never a
// decision.
type Hook func(Event)
