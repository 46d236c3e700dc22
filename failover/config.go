// Package failover watches both nodes of the pair, decides which one takes
// traffic, fences the other, and drives the proxy through the small
// Controller interface it owns. The decision logic is the state machine in
// state.go, run by one goroutine; monitor.go feeds it observations.
package failover

import (
	"errors"
	"fmt"
	"time"

	"github.com/tandemdb/tandem/internal/nodetls"
)

// Config tunes the monitor and the failover decision. DefaultConfig gives
// the defaults; each field says why.
type Config struct {
	// Interval between two checks of a node. Default 250ms: a check is
	// two cheap statements, and detection must fit in 1.5 s.
	Interval time.Duration
	// CheckTimeout bounds one check (connect, statements): a hung node
	// (SIGSTOP) is detected by it. Default 400ms, well above a loaded
	// node's answer time on a LAN, well below the detection budget.
	CheckTimeout time.Duration
	// FailAfter is how many consecutive failed checks make the active node
	// failed. Default 3: one slow check never triggers a failover, and
	// 3 × max(Interval, CheckTimeout) stays within 1.5 s.
	FailAfter int
	// RecoverAfter is how many consecutive good checks make a failed node
	// healthy again. Default 2.
	RecoverAfter int
	// CatchupTimeout bounds the wait for the candidate to apply what it
	// received from the failed node before promotion. Default 5s: the
	// relay log of a healthy pair is applied in milliseconds; longer means
	// a real lag that an operator should see.
	CatchupTimeout time.Duration
	// MaxPromoteLag: a candidate whose last measured lag exceeded this is
	// not promoted automatically (it may have missed writes). Default 5s.
	MaxPromoteLag time.Duration
	// LagWarning: lag above this is logged and raised as an event.
	// Default 1s.
	LagWarning time.Duration
	// FenceTimeout bounds the statements that fence a node. Default 2s.
	FenceTimeout time.Duration
	// RetryInterval spaces automatic promotion attempts while no node
	// takes traffic. Default 2s.
	RetryInterval time.Duration
	// AckTimeout is how long the active's commits may wait for the
	// passive's semi-sync acknowledgement before tandem lets writes go on
	// without it, having first recorded the passive as unsynced (never
	// promoted automatically until it has caught up). Default 1s: writes
	// stall at most about this long (plus a check) when the passive dies.
	AckTimeout time.Duration
	// SemiSyncTimeout is what tandem sets as the active's
	// rpl_semi_sync_master_timeout, after which the node itself would fall
	// back to asynchronous replication. It must be far above AckTimeout
	// plus detection, so that tandem, not the node, decides. Default 30s.
	SemiSyncTimeout time.Duration
	// MaxSwitchoverTimeout caps a switchover's write pause. Default 60s.
	MaxSwitchoverTimeout time.Duration

	// Cluster, when set, makes this tandem one of several that agree
	// through etcd (cluster.go); nil: it decides alone.
	Cluster Cluster
	// GuardInterval is how often a clustered tandem checks its own lease
	// (and stops traffic when it lapsed). Default 20ms: a small part of
	// the lease's margin.
	GuardInterval time.Duration
	// FollowInterval is how often a follower reads the decision in etcd.
	// Default 100ms.
	FollowInterval time.Duration
	// BarrierTimeout bounds the wait for every tandem to acknowledge a new
	// epoch (or lose its lease) before a node is made writable. Default
	// 5s: a cut-off tandem's lease expires within its TTL (1 s).
	BarrierTimeout time.Duration
	// HeartbeatSchema holds tandem's heartbeat and decision tables on
	// the nodes. Default "tandem".
	HeartbeatSchema string
	// AdminUser and AdminPassword are tandem's own account on the nodes:
	// it needs SUPER or READ_ONLY ADMIN, REPLICATION CLIENT/SLAVE ADMIN,
	// CONNECTION ADMIN (to kill clients), BINLOG REPLAY on MariaDB
	// (gtid_seq_no, replication.SkipLostSequence) and write access to
	// HeartbeatSchema (README "Privileges of tandem's admin account").
	AdminUser     string
	AdminPassword string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Interval:        250 * time.Millisecond,
		CheckTimeout:    400 * time.Millisecond,
		FailAfter:       3,
		RecoverAfter:    2,
		CatchupTimeout:  5 * time.Second,
		MaxPromoteLag:   5 * time.Second,
		LagWarning:      time.Second,
		FenceTimeout:    2 * time.Second,
		RetryInterval:   2 * time.Second,
		AckTimeout:      time.Second,
		SemiSyncTimeout: 30 * time.Second,
		HeartbeatSchema: "tandem",

		MaxSwitchoverTimeout: time.Minute,
		GuardInterval:        20 * time.Millisecond,
		FollowInterval:       100 * time.Millisecond,
		BarrierTimeout:       5 * time.Second,
	}
}

// Validate names the first bad field.
func (c *Config) Validate() error {
	for name, d := range map[string]time.Duration{
		"Interval": c.Interval, "CheckTimeout": c.CheckTimeout, "CatchupTimeout": c.CatchupTimeout,
		"MaxPromoteLag": c.MaxPromoteLag, "LagWarning": c.LagWarning, "FenceTimeout": c.FenceTimeout, "RetryInterval": c.RetryInterval,
		"AckTimeout": c.AckTimeout, "SemiSyncTimeout": c.SemiSyncTimeout, "MaxSwitchoverTimeout": c.MaxSwitchoverTimeout,
		"GuardInterval": c.GuardInterval, "FollowInterval": c.FollowInterval, "BarrierTimeout": c.BarrierTimeout,
	} {
		if d <= 0 {
			return fmt.Errorf("%s: %v must be positive", name, d)
		}
	}
	if c.FailAfter < 1 {
		return fmt.Errorf("FailAfter: %d must be at least 1", c.FailAfter)
	}
	if c.RecoverAfter < 1 {
		return fmt.Errorf("RecoverAfter: %d must be at least 1", c.RecoverAfter)
	}
	if c.SemiSyncTimeout < 5*(c.AckTimeout+c.Interval+c.CheckTimeout) {
		return fmt.Errorf("SemiSyncTimeout: %v must be at least 5 × (AckTimeout + Interval + CheckTimeout) = %v, so that tandem, not the node, decides when writes go on without the passive",
			c.SemiSyncTimeout, 5*(c.AckTimeout+c.Interval+c.CheckTimeout))
	}
	if c.AdminUser == "" {
		return errors.New("AdminUser: missing; tandem needs its own account on the nodes")
	}
	return nil
}

// NodeConfig names one node for the monitor.
type NodeConfig struct {
	Name    string
	Address string // host:port or /path/to/socket
	// Ops runs the statements on the node; nil means tandem's own SQL
	// connection to Address with the admin account.
	Ops NodeOps
	// TLS secures that connection; nil is plaintext.
	TLS *nodetls.Client
}
