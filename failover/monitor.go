package failover

// The monitor: one goroutine per node checks it on an interval over a
// persistent connection with timeouts, and hands each observation to the
// state machine. It decides nothing.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/nodetls"
	"github.com/tandemdb/tandem/replication"
)

// Observation is the outcome of one check of one node.
type Observation struct {
	Node string
	Time time.Time
	// Err is nil when the node answered; then Facts holds what it said.
	Err error
	// Refused is set when the node answered but refused tandem's account
	// (wrong password, missing privilege) or its TLS settings (a
	// certificate that does not verify): the node is up, so this never
	// counts towards failing it, but nothing is known of its state.
	Refused bool
	Facts   replication.Facts
	// Lag is the age of the active node's heartbeat as read on this node
	// (a passive), when LagKnown. It stays meaningful when replication
	// is broken and Seconds_Behind_Master is NULL.
	Lag      time.Duration
	LagKnown bool
	// Heartbeat is the active node's heartbeat row as read on this node
	// (the active reads its own), zero when unknown: comparing the
	// active's row with a passive's gives the lag even when nobody has
	// written heartbeats for a while (no coordinator: etcd was lost).
	Heartbeat time.Time
}

// node is the monitor's and the state machine's view of one node.
type node struct {
	NodeConfig
	ops NodeOps
	// kick asks the monitor for a check now (CheckNow).
	kick chan struct{}

	// Owned by the state machine goroutine.
	last Observation // last observation, good or bad
	good Observation // last good observation
	// prevGood is when the good observation before good began.
	prevGood time.Time
	fails    int // consecutive failed checks
	oks      int // consecutive good checks
	healthy  bool
	reach    Reach // what the last check proved
	// roSetAt is when tandem last set the node's read_only, to roSet: an
	// observation begun before then is stale about read_only.
	roSetAt time.Time
	roSet   bool
	// ackWaitSince begins the current run of checks that saw commits
	// waiting for a semi-sync acknowledgement (zero: none waiting).
	ackWaitSince time.Time
	// noTx is Rpl_semi_sync_master_no_tx at the last check that saw
	// semi-sync on (noTxKnown): a rise means commits went unacknowledged.
	noTx      uint64
	noTxKnown bool
	// ioRestartAt is when tandem last restarted the node's I/O thread
	// to make it a semi-sync replica again.
	ioRestartAt time.Time
	// The decision recorded on the node, read once while undecided.
	decisionRead, hasRecorded bool
	recorded                  Decision

	refusedLogged time.Time
	replTrouble   string // last replication trouble raised, "" for none
	lagHigh       bool   // lag over LagWarning at the last check
	// ownMissing is what the fenced active last lacked of its own
	// transactions that its peer has (replication.OwnMissing), "" for
	// nothing: logged when it changes.
	ownMissing string
	// restarted: the node, the active, came up fenced with its replica
	// threads never started since (a restart), and tandem has not yet
	// compared it with its peer (OwnMissing) or moved its GTID sequence
	// past what its crash recovery may have dropped (SkipLostSequence).
	restarted bool
	// resumedLost is the lost own tail checkResume last moved the node's
	// gtid_slave_pos back from, until the node holds it again or
	// checkUndoResume put the position back ("" for none).
	resumedLost string
	// heldTail is what checkUndoResume found the node's data to hold
	// although its binary log lost it: not a lost tail, until the node
	// restarts.
	heldTail string
	// skippedWarned is what checkSkippedOwn last warned about.
	skippedWarned string
	// restartedAt is when the check that found it restarted began.
	restartedAt time.Time

	heartbeatBusy atomic.Bool

	// The decision to record on the node (record): one writer at a time,
	// writing the newest decision it was given.
	recordMu   sync.Mutex
	recordNext *Decision
	recording  bool
}

// watch checks n every Interval until ctx ends, sending observations to out.
func (m *Manager) watch(ctx context.Context, n *node, out chan<- Observation) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		o := m.check(ctx, n)
		select {
		case out <- o:
		case <-ctx.Done():
			return
		}
		select {
		case <-t.C:
		case <-n.kick:
		case <-ctx.Done():
			return
		}
	}
}

// check reads n's facts, and its view of the active's heartbeat; on the
// active node it also writes the heartbeat, in the background so that a
// write stalled by semi-synchronous replication (peer down) never makes
// the active look failed.
func (m *Manager) check(ctx context.Context, n *node) Observation {
	cctx, cancel := context.WithTimeout(ctx, m.cfg.CheckTimeout)
	defer cancel()
	o := Observation{Node: n.Name, Time: time.Now()}
	o.Facts, o.Err = n.ops.Read(cctx)
	if o.Err != nil {
		var me *mysql.MySQLError
		o.Refused = errors.As(o.Err, &me) && (me.Number == 1045 || me.Number == 1044 || me.Number == 1227 || me.Number == 1142) ||
			nodetls.IsConfigError(o.Err)
		return o
	}
	active, epoch := m.activeName(), m.epoch.Load()
	if n.Name == active {
		// One heartbeat writer: the coordinator, when there are several.
		leads := m.cluster == nil || m.leadingFlag.Load()
		if o.Facts.Writable() && leads && !m.heartbeatsOff.Load() && n.heartbeatBusy.CompareAndSwap(false, true) {
			go func() {
				defer n.heartbeatBusy.Store(false)
				hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				_ = n.ops.WriteHeartbeat(hctx, m.cfg.HeartbeatSchema, n.Name, epoch, time.Now())
			}()
		}
		if written, err := n.ops.ReadHeartbeat(cctx, m.cfg.HeartbeatSchema, n.Name); err == nil && written.After(m.started) {
			o.Heartbeat = written
		}
		return o
	}
	if active == "" {
		return o
	}
	written, err := n.ops.ReadHeartbeat(cctx, m.cfg.HeartbeatSchema, active)
	// A row older than this process says nothing about the lag now.
	if err == nil && written.After(m.started) {
		o.Lag, o.LagKnown = max(0, time.Since(written)), true
		o.Heartbeat = written
	}
	return o
}
