package failover

// The failover state machine. One goroutine (Run) owns every decision: it
// takes observations from the monitor and requests from operators, and is
// the only code that fences a node, promotes one, or moves traffic.
//
// Rules, in the order they are applied:
//  1. Only the decided active node may be writable. Any other node seen
//     writable is fenced at once (read_only=ON, its clients killed).
//  2. tandem owns durability: the active node is a lossless semi-sync
//     source (AFTER_SYNC) whose own fallback timeout is far above tandem's
//     reaction time. When its commits wait longer than AckTimeout for the
//     passive, tandem first records the passive as unsynced (saved), then
//     lets writes continue without it. An unsynced node is never promoted
//     automatically; it is synced again once it has caught up with
//     semi-sync back on.
//  3. The active node is failed after FailAfter consecutive failed checks,
//     or at once when its host refuses the connection (no process
//     listens). The other node is promoted only if it is healthy, not
//     excluded, in maintenance or unsynced, its SQL thread runs without
//     error, its lag is under MaxPromoteLag, tandem saw the old active
//     acknowledge every commit semi-synchronously until it was cut off
//     (durable), the old active is fenced or proven unable to acknowledge
//     more (its process gone, or its only acknowledger stopped), and the
//     candidate applies everything it received within CatchupTimeout.
//     Otherwise nothing is promoted, clients get the reason at once, and
//     tandem serves again as soon as the old active is back.
//  4. A promotion is journaled before its first step and every step before
//     the decision is saved is undone on refusal; a restart undoes a
//     journaled promotion that did not reach its save. The decision is
//     saved before the candidate is made writable, and traffic moves only
//     after that.
//  5. A node that comes back holding transactions of its own beyond the
//     promotion point is excluded from promotion and stays fenced.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/hashicorp/go-hclog"

	"github.com/tandemdb/tandem/internal/nodetls"
	"github.com/tandemdb/tandem/replication"
)

// Controller is what the state machine needs of the data path. The proxy
// satisfies it; failover owns it. Every method returns at once.
type Controller interface {
	// Route sends all traffic to node and releases held commands.
	Route(node string) error
	// Hold makes new commands wait for the next Route, Resume or Down.
	Hold()
	// Resume releases held commands to the current node.
	Resume()
	// Down refuses all traffic at once with reason.
	Down(reason string)
	// Cut interrupts commands running on node.
	Cut(node string)
	// Activity counts sessions running a command and sessions inside a
	// transaction, for a switchover to wait on.
	Activity() (busy, inTransaction int)
}

// State is the state machine's state.
type State int

const (
	// StateActive: traffic goes to the decided active node.
	StateActive State = iota
	// StateDown: no node may take traffic; clients get an error at once.
	StateDown
	// StateFailingOver: a failover is in progress; traffic is held.
	StateFailingOver
	// StateSwitchingOver: a planned switchover is in progress.
	StateSwitchingOver
	// StateUndecided: no decision was saved and none was found on the
	// nodes yet; traffic is held and nothing is changed on the nodes.
	StateUndecided
	// StateFollowing: another tandem coordinates (Config.Cluster); this
	// one routes by the decision it saved.
	StateFollowing
)

func (s State) String() string {
	switch s {
	case StateActive:
		return "active"
	case StateDown:
		return "down"
	case StateFailingOver:
		return "failing_over"
	case StateSwitchingOver:
		return "switching_over"
	case StateUndecided:
		return "undecided"
	case StateFollowing:
		return "following"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Manager runs the monitor and the state machine.
type Manager struct {
	cfg   Config
	log   hclog.Logger
	nodes []*node
	ctl   Controller
	store Store

	events chan Event
	hooks  []Hook

	// Read by the monitor goroutines.
	started time.Time
	active  atomic.Pointer[string]
	epoch   atomic.Uint64

	// Owned by the Run goroutine.
	dec   Decision
	state State
	// nextAttempt spaces promotion attempts while down.
	nextAttempt time.Time
	// routeWhenWritable names the active node that came back read-only
	// while down: traffic is held until enforce has made it writable.
	routeWhenWritable string
	// paused is set by an operator's Pause.
	paused bool
	// requests carries operator requests into the Run goroutine.
	requests chan request
	// obs carries the monitor's observations to the Run goroutine.
	obs chan Observation
	// abort asks a running switchover to roll back.
	abort chan struct{}
	// heartbeatsOff stops heartbeat writes while a switchover fences the
	// active node: a heartbeat committed there after its final position
	// was read would look like an errant transaction.
	heartbeatsOff atomic.Bool
	// undecidedLogged: the operator was told that no rule decides.
	undecidedLogged bool

	// With several tandems (cluster.go): cluster is nil for a single one.
	cluster Cluster
	gate    *gate
	// leading: this tandem is the coordinator (Run goroutine's view;
	// leadingFlag is the monitor's).
	leading     bool
	leadingFlag atomic.Bool
	// loadedLease is the lease under which the decision was last loaded.
	loadedLease      int64
	elected, deposed chan struct{}
	relatch          chan struct{}
	followErrLogged  time.Time
	membersRead      time.Time
	membersBusy      atomic.Bool // a refreshMembers read runs
	// step, when set (tests only), is called between the steps of a
	// failover and a switchover; see export_test.go.
	step func(name string)

	mu     sync.Mutex // guards status
	status Status
}

// New returns a Manager for two nodes (or one), driving ctl, keeping its
// decision in store. When store holds no decision, the Manager starts
// undecided: it reads the decision the nodes recorded (the highest epoch
// wins) or, when there is none anywhere, adopts the only writable node once
// it has seen both; initial only names the node an operator is advised to
// choose when neither rule decides.
func New(cfg Config, nodes []NodeConfig, initial string, ctl Controller, store Store, log hclog.Logger, hooks ...Hook) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	m := &Manager{cfg: cfg, log: log, ctl: ctl, store: store, hooks: hooks, events: make(chan Event, 256), started: time.Now(),
		requests: make(chan request), obs: make(chan Observation, 2*len(nodes)), abort: make(chan struct{}, 1),
		cluster: cfg.Cluster, elected: make(chan struct{}), deposed: make(chan struct{}), relatch: make(chan struct{}, 1)}
	if m.cluster != nil {
		m.gate = &gate{ctl: ctl}
		m.ctl = m.gate
		ctl.Hold() // until the decision is read under a valid lease
	}
	for _, nc := range nodes {
		ops := nc.Ops
		if ops == nil {
			sn, err := openNode(cfg, nc)
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", nc.Name, err)
			}
			ops = sn
		}
		m.nodes = append(m.nodes, &node{NodeConfig: nc, ops: ops, kick: make(chan struct{}, 1)})
	}
	if m.cluster != nil {
		// The decision is read from etcd when this tandem is allowed to
		// act on it: elected, or following with a valid lease.
		m.state = StateFollowing
		m.setDecision(Decision{Reason: "several tandems: waiting for the decision in etcd"})
		m.publish()
		return m, nil
	}
	dec, ok, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("loading the decision: %w", err)
	}
	if ok {
		if m.node(dec.Active) == nil {
			return nil, fmt.Errorf("the saved decision names node %q, which is not configured", dec.Active)
		}
		m.setDecision(dec)
	} else {
		m.state = StateUndecided
		m.setDecision(Decision{Reason: fmt.Sprintf("no saved decision: reading the nodes (suggested active: %s)", initial)})
	}
	m.publish()
	return m, nil
}

// Decision returns the decision in force (the active node tandem routes
// to); Active is "" while undecided.
func (m *Manager) Decision() Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status.Decision
}

// CheckNow asks for an immediate check of node (the data path saw its
// connection fail). It never blocks; unknown names, and a nil Manager,
// are ignored.
func (m *Manager) CheckNow(name string) {
	if m == nil {
		return
	}
	if n := m.node(name); n != nil {
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
}

func (m *Manager) node(name string) *node {
	for _, n := range m.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (m *Manager) other(name string) *node {
	for _, n := range m.nodes {
		if n.Name != name {
			return n
		}
	}
	return nil
}

func (m *Manager) activeName() string { return *m.active.Load() }

func (m *Manager) setDecision(d Decision) {
	m.dec = d
	name := d.Active
	m.active.Store(&name)
	m.epoch.Store(d.Epoch)
}

// save makes d the decision: durable in the store first, then in force,
// then, outside a failover or switchover (whose end records it), recorded
// on the active node.
func (m *Manager) save(d Decision) error {
	if err := m.store.Save(d); err != nil {
		if m.cluster != nil && m.leading {
			// A failed save to etcd may still have been applied (a
			// timeout), or lost to a newer decision (a conflict): act
			// again only on the decision read afresh (tick leads again).
			m.leading = false
			m.leadingFlag.Store(false)
			m.log.Warn("saving the decision to etcd failed; reading it again before acting", "error", err)
		}
		return err
	}
	m.setDecision(d)
	if m.state != StateFailingOver && m.state != StateSwitchingOver {
		m.record(d)
	}
	return nil
}

// record writes d to the active node's decision table, best effort and in
// the background: the store is the authority; the table, replicated to the
// peer, is how a tandem that lost its store finds the decision again. Like
// any write on the active it may wait for the passive's acknowledgement (a
// partition): one writer per node, which writes the newest decision it was
// given when it is done, so that saves in a row do not pile up writes (nor
// write them out of order) while they wait.
func (m *Manager) record(d Decision) {
	n := m.node(d.Active)
	if n == nil {
		return
	}
	n.recordMu.Lock()
	n.recordNext = &d
	busy := n.recording
	n.recording = true
	n.recordMu.Unlock()
	if busy {
		return
	}
	go func() {
		for {
			n.recordMu.Lock()
			next := n.recordNext
			n.recordNext = nil
			if next == nil {
				n.recording = false
				n.recordMu.Unlock()
				return
			}
			n.recordMu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := n.ops.WriteDecision(ctx, m.cfg.HeartbeatSchema, *next); err != nil {
				m.log.Warn("cannot record the decision on the node", "node", n.Name, "error", err)
			}
			cancel()
		}
	}()
}

// checkpoint calls the test hook between two steps of an operation.
func (m *Manager) checkpoint(name string) {
	if m.step != nil {
		m.step(name)
	}
}

// Run monitors the nodes and acts until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, n := range m.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); m.watch(ctx, n, m.obs) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); m.deliverEvents(ctx) }()
	var follow <-chan time.Time
	if m.cluster != nil {
		m.ctl.Hold()
		wg.Add(2)
		go func() { defer wg.Done(); m.guard(ctx) }()
		go func() { defer wg.Done(); m.campaign(ctx) }()
		t := time.NewTicker(m.cfg.FollowInterval)
		defer t.Stop()
		follow = t.C
	}
	defer func() {
		wg.Wait()
		for _, n := range m.nodes {
			n.ops.Close()
		}
	}()
	if m.state == StateUndecided && m.cluster == nil {
		m.ctl.Hold()
		m.log.Warn("no saved decision: traffic held until the nodes' recorded decision is read or exactly one node is found writable")
	} else {
		m.log.Info("monitoring", "active", m.dec.Active, "epoch", m.dec.Epoch)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case o := <-m.obs:
			m.observe(ctx, o)
			m.publish()
		case r := <-m.requests:
			rctx, cancel := mergeContexts(ctx, r.ctx)
			v, err := r.do(rctx)
			cancel()
			r.reply <- response{v, err}
			m.publish()
		case <-follow:
			m.tick(ctx)
			m.refreshMembers(ctx)
			m.publish()
		case <-m.elected:
			m.lead(ctx)
			m.publish()
		case <-m.deposed:
			m.leading = false
			m.leadingFlag.Store(false)
			m.setState(StateFollowing)
			m.emit(Event{Type: EventCoordinator, Reason: "this tandem is no longer the coordinator"})
			m.follow(ctx)
			m.publish()
		case <-m.relatch:
			// The lease is valid again: act only on a decision read
			// under it.
			if m.leading && m.cluster.IsCoordinator() {
				m.lead(ctx)
			} else {
				m.follow(ctx)
			}
			if m.gate.isOpen() {
				m.emit(Event{Type: EventLeaseRestored, Reason: "lease renewed and decision read again: traffic flows"})
			}
			m.publish()
		}
	}
}

// mergeContexts returns a context done when either a or b is.
func mergeContexts(a, b context.Context) (context.Context, context.CancelFunc) {
	if b == nil {
		return context.WithCancel(a)
	}
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}

// count updates n's health from o; it reports whether o was a good check.
// It applies no rule, so a running switchover can keep counting.
func (m *Manager) count(o Observation) (*node, bool) {
	n := m.node(o.Node)
	n.last = o
	if o.Refused {
		if n.fails == 0 && n.oks == 0 || time.Since(n.refusedLogged) > time.Minute {
			n.refusedLogged = time.Now()
			if nodetls.IsConfigError(o.Err) {
				m.log.Error("TLS with the node fails: check the node's tls keys (tls, tls_ca, tls_server_name) and its certificate; the node is not judged until tandem can log in",
					"node", n.Name, "error", o.Err)
			} else {
				m.log.Error("node refuses tandem's admin account: check failover.admin_user and its password and privileges; the node is not judged until it lets tandem in",
					"node", n.Name, "error", o.Err)
			}
		}
		return n, false
	}
	if o.Err != nil {
		n.fails++
		n.oks = 0
		n.reach = Classify(o.Err)
		if n.reach == ReachGone && n.fails < m.cfg.FailAfter {
			// Nothing listens on the node's port: its process is gone,
			// which one check proves as well as FailAfter.
			n.fails = m.cfg.FailAfter
		}
		if n.healthy && n.fails >= m.cfg.FailAfter || n.fails == m.cfg.FailAfter && !n.healthy && n.good.Time.IsZero() {
			n.healthy = false
			m.emit(Event{Type: EventNodeDown, Node: n.Name, Reason: fmt.Sprintf("%v (%s)", o.Err, n.reach)})
		}
		return n, false
	}
	if !n.roSetAt.IsZero() && !o.Time.After(n.roSetAt) {
		// Begun before tandem set read_only here (and queued while it
		// did): what it says of read_only is stale.
		o.Facts.ReadOnly = n.roSet
		if !n.roSet {
			o.Facts.SuperReadOnly = false
		}
	}
	n.trackAckWaits(o)
	n.prevGood = n.good.Time
	n.good = o
	n.oks++
	n.fails = 0
	n.reach = ReachAlive
	if !n.healthy && n.oks >= m.cfg.RecoverAfter {
		n.healthy = true
		m.emit(Event{Type: EventNodeUp, Node: n.Name, Reason: "answering checks"})
	}
	return n, true
}

// trackAckWaits keeps when the current run of checks that found commits
// stuck began: commits waiting for a semi-sync acknowledgement and none
// acknowledged since the previous check (acknowledgements are cumulative,
// so while they come no commit waits long). It starts, conservatively, at
// the previous good check, as they may have got stuck right after it.
func (n *node) trackAckWaits(o Observation) {
	ss, prev := o.Facts.SemiSync, n.good
	stuck := ss.WaitSessions > 0 && !prev.Time.IsZero() && prev.Facts.SemiSync.YesTx == ss.YesTx
	if !stuck {
		n.ackWaitSince = time.Time{}
		return
	}
	if n.ackWaitSince.IsZero() {
		n.ackWaitSince = prev.Time
	}
}

// observe updates a node's health and applies the rules.
func (m *Manager) observe(ctx context.Context, o Observation) {
	n, ok := m.count(o)
	if m.cluster != nil && !m.leading {
		return // a follower only watches
	}
	if m.state == StateUndecided {
		m.bootstrap(ctx)
		return
	}
	if ok {
		m.enforce(ctx, n)
	}
	m.decide(ctx)
}

// enforce applies rules 1, 2 and 5 to a node that just answered.
func (m *Manager) enforce(ctx context.Context, n *node) {
	f := n.good.Facts
	if n.Name != m.dec.Active {
		if f.Writable() {
			peer := m.node(m.dec.Active)
			if peer != nil && peer.good.Facts.Writable() && peer.oks > 0 {
				m.emit(Event{Type: EventSplitBrain, Node: n.Name, Reason: "both nodes were writable; fencing " + n.Name})
			}
			if ss := f.SemiSync; ss.SourceEnabled && ss.WaitSessions > 0 {
				// Commits on a node that is not the active wait for
				// an acknowledgement nobody sends (its peer stopped
				// receiving from it when it was replaced: a SIGSTOPped
				// old active, continued), and SET GLOBAL read_only
				// waits for commits in progress: the fence would
				// fail until rpl_semi_sync_master_timeout. Release
				// them first. They count for nothing: no client was
				// told they committed, and what this node commits
				// now is errant to the active (checkErrant).
				rctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
				if _, err := n.ops.SetSemiSyncSource(rctx, false); err != nil {
					m.log.Warn("cannot release commits waiting on a node that is not the active", "node", n.Name, "error", err)
				}
				cancel()
			}
			m.fence(ctx, n, "it is not the active node")
		}
		if n.Name == m.dec.Promoting {
			m.undoJournaledPromotion(ctx, n)
		}
		resumed := m.checkResume(ctx, n, false)
		resumed = m.checkUndoResume(ctx, n) || resumed
		m.checkSkippedOwn(n)
		m.checkErrant(ctx, n)
		m.checkRejoin(ctx, n)
		m.checkSynced(ctx)
		// Raise replication trouble on the passive when it starts, not
		// on every check (threads just started are judged at the next).
		if why := replicationTrouble(f.Replica); why != n.replTrouble && !resumed {
			if why != "" {
				m.emit(Event{Type: EventReplicationStopped, Node: n.Name, Reason: why})
			} else {
				m.log.Info("replication running again", "node", n.Name)
			}
			n.replTrouble = why
		}
		lagHigh := n.good.LagKnown && n.good.Lag > m.cfg.LagWarning
		if lagHigh && !n.lagHigh {
			m.emit(Event{Type: EventLagHigh, Node: n.Name, Reason: fmt.Sprintf("lag %v over %v", n.good.Lag.Round(time.Millisecond), m.cfg.LagWarning)})
		}
		n.lagHigh = lagHigh
		return
	}
	if m.state != StateActive {
		return
	}
	// The active node: make sure it takes writes, once its peer is known
	// not to (fenced or failed), and once it holds again every transaction
	// of its own that its peer has (a restarted active whose crash
	// recovery dropped commits the peer had received takes them back
	// first: writing before that would reuse their GTIDs).
	if !f.Writable() {
		peer := m.other(n.Name)
		if r := f.Replica; r.Configured && f.ReplicaStarts == 0 && r.IORunning == replication.IONo && !r.SQLRunning && !n.restarted {
			n.restarted, n.restartedAt = true, n.good.Time
		}
		missing, compared := "", peer != nil && peer.healthy && peer.oks > 0
		// Facts of the peer from before the active's return may miss
		// commits it received just before the active died: the active
		// waits for a check of the peer begun since.
		stale := compared && n.restarted && !peer.good.Time.After(n.restartedAt)
		if compared && !stale {
			missing = replication.OwnMissing(f, peer.good.Facts)
		}
		m.checkResume(ctx, n, missing != "" && f.Replica.IORunning == replication.IONo)
		if stale {
			return
		}
		if r := f.Replica; missing != "" && r.IORunning == replication.IOYes && r.SQLRunning && replication.Contains(f.Executed(), peer.good.Facts.Executed()) {
			// Its replication from the peer runs and has applied all
			// the peer has: what its gtid_binlog_state lacks is a stale
			// state after the crash (see checkSkippedOwn), not a loss.
			if missing != n.ownMissing {
				m.log.Warn("the active node's gtid_binlog_state lacks transactions of its own that its peer has, though it has caught up with the peer: taken for a stale state after its crash",
					"node", n.Name, "peer", peer.Name, "missing", missing)
				n.ownMissing = missing
			}
			missing = ""
		}
		if missing != "" {
			if missing != n.ownMissing {
				m.log.Warn("the active node lost transactions of its own that its peer has; it takes them back before it takes writes",
					"node", n.Name, "peer", peer.Name, "missing", missing)
			}
			n.ownMissing = missing
		} else if peer == nil || !peer.healthy || (peer.good.Facts.ReadOnly && peer.oks > 0) {
			if compared {
				n.restarted = false
			} else if n.restarted && !m.skipLostSequence(ctx, n, peer) {
				return
			}
			m.unfence(ctx, n)
		}
	} else {
		m.routeOnceWritable(n)
		if m.cluster != nil && !m.dec.Opened {
			// Writable (a previous coordinator got that far, or it was
			// the only writable node adopted): followers may route once
			// every tandem is past the older decisions.
			if err := m.barrier(ctx); err != nil {
				m.log.Warn("followers not opened yet", "error", err)
			} else if err := m.opened(); err != nil {
				m.log.Warn("followers not opened yet", "error", err)
			} else {
				m.ctl.Route(n.Name)
			}
		}
	}
	// The active's replication from its peer stopped on a position the
	// peer did not hold (1236: it restarted without a tail it has not got
	// back yet): rejoin again once it holds it.
	if r := f.Replica; !m.dec.PendingRejoin && r.Configured && r.IORunning == replication.IONo && r.LastIOErrno == 1236 {
		d := m.dec
		d.PendingRejoin = true
		if err := m.save(d); err != nil {
			m.log.Error("cannot save the decision", "error", err)
		} else {
			m.log.Warn("the active's replication from its peer stopped (1236); restarting it once the peer has caught up", "node", n.Name)
		}
	}
	m.keepDurable(ctx, n)
	m.checkSynced(ctx)
}

// skipLostSequence prepares a restarted active a, about to be made
// writable while its peer cannot be asked what it holds, so that no
// commit of a reuses the GTID of one its crash recovery dropped and the
// peer may have received (replication.SkipLostSequence): the peer is
// recorded unsynced (it may lack a's next commits, and may hold dropped
// ones), a stops waiting for its acknowledgements, and a's GTID sequence
// jumps. It reports whether a may be made writable.
func (m *Manager) skipLostSequence(ctx context.Context, a, peer *node) bool {
	if peer != nil && !m.markUnsynced(peer, fmt.Sprintf("node %s restarted while %s could not be reached; %s may hold commits %s dropped in crash recovery", a.Name, peer.Name, peer.Name, a.Name)) {
		return false
	}
	rctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
	defer cancel()
	if _, err := a.ops.SetSemiSyncSource(rctx, false); err != nil {
		m.log.Error("cannot stop the restarted active waiting for its unreachable peer", "node", a.Name, "error", err)
		return false
	}
	a.good.Facts.SemiSync.SourceEnabled = false
	// The node reads up to two binary log files to find its highest
	// sequence number (replication.SkipLostSequence): a wait like a
	// candidate's catch-up, not a fencing statement.
	sctx, scancel := context.WithTimeout(ctx, max(m.cfg.FenceTimeout, m.cfg.CatchupTimeout))
	defer scancel()
	gtid, err := a.ops.SkipLostSequence(sctx, m.cfg.HeartbeatSchema, a.Name, m.dec.Epoch, time.Now())
	if err != nil {
		m.log.Error("cannot move the restarted active's GTID sequence past what it may have dropped; it stays fenced", "node", a.Name, "error", err)
		return false
	}
	a.restarted = false
	m.log.Warn("the active node restarted while its peer could not be reached: its GTID sequence moved past what its crash recovery may have dropped, so that the peer, holding such a commit, does not skip a new one reusing its GTID",
		"node", a.Name, "gtid", gtid)
	return true
}

// keepDurable applies rule 2 to the active node a, just checked.
func (m *Manager) keepDurable(ctx context.Context, a *node) {
	ss := a.good.Facts.SemiSync
	peer := m.other(a.Name)
	if !ss.Known || peer == nil {
		return
	}
	if ss.SourceEnabled && !a.ackWaitSince.IsZero() && time.Since(a.ackWaitSince) >= m.cfg.AckTimeout {
		// Commits wait too long for the peer. Record first, then let
		// them go on: a promotion after this point knows the peer may
		// lack them. The release runs on the node's pool for checks and
		// actions, which no write that waits for the acknowledgement
		// uses (sqlNode), so it cannot queue behind what it releases;
		// if it fails, the next check of the active tries again.
		if !m.markUnsynced(peer, fmt.Sprintf("commits on %s waited over %v for its acknowledgement; writes continue without it", a.Name, m.cfg.AckTimeout)) {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
		defer cancel()
		if _, err := a.ops.SetSemiSyncSource(rctx, false); err != nil {
			m.log.Error("cannot release commits waiting for the passive", "node", a.Name, "error", err)
			return
		}
		a.good.Facts.SemiSync.SourceEnabled = false
		a.noTxKnown = false
		return
	}
	if _, unsynced := m.dec.Unsynced[peer.Name]; !unsynced {
		switch {
		case !ss.SourceEnabled || !ss.SourceOn:
			m.markUnsynced(peer, fmt.Sprintf("node %s acknowledged commits without waiting for it (semi-sync enabled=%v, status=%v)", a.Name, ss.SourceEnabled, ss.SourceOn))
		case a.noTxKnown && ss.NoTx > a.noTx:
			m.markUnsynced(peer, fmt.Sprintf("node %s acknowledged %d commits without it since the last check", a.Name, ss.NoTx-a.noTx))
		case ss.SourceTimeout < m.cfg.SemiSyncTimeout || ss.WaitPoint != "AFTER_SYNC" || !ss.WaitNoReplica:
			rctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
			defer cancel()
			if err := a.ops.ConfigureSemiSyncSource(rctx, m.cfg.SemiSyncTimeout); err != nil {
				m.log.Warn("cannot configure semi-synchronous replication", "node", a.Name, "error", err)
			} else {
				m.log.Info("semi-synchronous replication made lossless", "node", a.Name, "timeout", m.cfg.SemiSyncTimeout)
			}
		}
		a.noTx, a.noTxKnown = ss.NoTx, ss.SourceEnabled && ss.SourceOn
		return
	}
	// Unsynced: writes go on without the peer. Once it replicates soundly
	// again, semi-sync goes back on; checkSynced clears the mark when it
	// has caught up.
	a.noTxKnown = false
	r := peer.good.Facts.Replica
	lossless := ss.SourceTimeout >= m.cfg.SemiSyncTimeout && ss.WaitPoint == "AFTER_SYNC" && ss.WaitNoReplica
	if ss.SourceEnabled && lossless || !peer.healthy || peer.fails > 0 || !r.Configured || !r.SQLRunning || r.IORunning != replication.IOYes || r.LastSQLErrno != 0 {
		return
	}
	if _, excluded := m.dec.Excluded[peer.Name]; excluded {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
	defer cancel()
	if ps := peer.good.Facts.SemiSync; ps.Known && !ps.ReplicaOn {
		// Its I/O thread does not acknowledge (a promotion turned
		// that off): on again, with a restart of the thread, at most
		// once per RetryInterval.
		if time.Since(peer.ioRestartAt) < m.cfg.RetryInterval {
			return
		}
		peer.ioRestartAt = time.Now()
		if err := peer.ops.StartReplica(rctx, peer.good.Facts.Flavor, true); err != nil {
			m.log.Warn("cannot make the passive acknowledge again", "node", peer.Name, "error", err)
		}
		return
	}
	if err := a.ops.ConfigureSemiSyncSource(rctx, m.cfg.SemiSyncTimeout); err != nil {
		m.log.Warn("cannot turn semi-synchronous replication back on", "node", a.Name, "error", err)
		return
	}
	a.good.Facts.SemiSync.SourceEnabled = true
	m.log.Info("semi-synchronous replication back on; waiting for the passive to catch up", "node", a.Name, "passive", peer.Name)
}

// markUnsynced records that n may lack writes the active acknowledged; it
// reports whether the record is saved.
func (m *Manager) markUnsynced(n *node, why string) bool {
	if _, ok := m.dec.Unsynced[n.Name]; ok {
		return true
	}
	d := m.dec
	d.Unsynced = maps.Clone(m.dec.Unsynced)
	if d.Unsynced == nil {
		d.Unsynced = map[string]string{}
	}
	d.Unsynced[n.Name] = time.Now().UTC().Format(time.RFC3339) + ": " + why
	if err := m.save(d); err != nil {
		m.log.Error("cannot save that the passive is unsynced; commits keep waiting for it", "node", n.Name, "error", err)
		return false
	}
	m.emit(Event{Type: EventUnsynced, Node: n.Name, Reason: why})
	return true
}

// checkSynced clears the unsynced mark of the passive once it holds every
// write the active acknowledged: a check of the active found semi-sync on
// and waiting (so every later commit waits for the passive, for longer than
// tandem takes to notice), and a check of the passive that began after it
// found the passive had applied everything the active had then.
func (m *Manager) checkSynced(ctx context.Context) {
	a := m.node(m.dec.Active)
	if a == nil {
		return
	}
	p := m.other(a.Name)
	if p == nil {
		return
	}
	if _, ok := m.dec.Unsynced[p.Name]; !ok {
		return
	}
	ss := a.good.Facts.SemiSync
	if !ss.SourceEnabled || !ss.SourceOn || ss.SourceTimeout < m.cfg.SemiSyncTimeout ||
		!p.healthy || p.fails > 0 || !p.good.Time.After(a.good.Time) {
		return
	}
	if !replication.Contains(p.good.Facts.Executed(), a.good.Facts.Executed()) {
		return
	}
	d := m.dec
	d.Unsynced = maps.Clone(m.dec.Unsynced)
	delete(d.Unsynced, p.Name)
	if err := m.save(d); err != nil {
		m.log.Error("cannot save the decision", "error", err)
		return
	}
	m.emit(Event{Type: EventSynced, Node: p.Name, Reason: fmt.Sprintf("caught up with %s at %s; semi-synchronous replication on", a.Name, a.good.Facts.Executed())})
	// A promotion of p refused while it was unsynced (the active down)
	// may be tried again at once, not RetryInterval after the refusal.
	m.nextAttempt = time.Time{}
}

// replicationTrouble says what is wrong with a passive node's replication,
// or "".
func replicationTrouble(r replication.Replica) string {
	switch {
	case !r.Configured:
		return "replication is not configured"
	case r.LastSQLErrno != 0:
		return fmt.Sprintf("SQL thread stopped with error %d: %s", r.LastSQLErrno, r.LastSQLError)
	case !r.SQLRunning:
		return "SQL thread stopped"
	case r.IORunning == replication.IONo:
		return fmt.Sprintf("I/O thread stopped (last error %d: %s)", r.LastIOErrno, r.LastIOError)
	}
	return ""
}

// fence kills n's clients, sets it read-only and kills the clients that
// came meanwhile. Clients go first: read_only=ON waits for commits in
// progress, and a commit waiting for a semi-sync acknowledgement that will
// never come (its replica stopped receiving) waits until it is killed,
// which ends it without an answer to its client.
func (m *Manager) fence(ctx context.Context, n *node, why string) error {
	fctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
	defer cancel()
	killed, kerr := n.ops.KillClients(fctx, m.cfg.AdminUser)
	if err := n.ops.SetReadOnly(fctx, n.good.Facts.Flavor, true); err != nil {
		if kerr != nil && Classify(kerr) != ReachAlive {
			err = kerr // the connection failed before read_only was tried
		}
		m.log.Error("cannot fence node", "node", n.Name, "error", err)
		return err
	}
	more, err := n.ops.KillClients(fctx, m.cfg.AdminUser)
	killed += more
	if err != nil || kerr != nil {
		m.log.Warn("fenced, but could not kill every client", "node", n.Name, "error", errors.Join(kerr, err))
	}
	n.tookReadOnly(true)
	m.emit(Event{Type: EventFenced, Node: n.Name, Reason: fmt.Sprintf("%s; read_only=ON, %d client connections killed", why, killed)})
	return nil
}

// tookReadOnly records that tandem has just set n's read_only to on.
func (n *node) tookReadOnly(on bool) {
	n.good.Facts.ReadOnly = on
	if !on {
		n.good.Facts.SuperReadOnly = false
	}
	n.roSet, n.roSetAt = on, time.Now()
}

func (m *Manager) unfence(ctx context.Context, n *node) {
	if err := m.makeWritable(ctx, n); err != nil {
		m.log.Error("cannot make the active node writable", "node", n.Name, "error", err)
		return
	}
	m.log.Info("active node made writable", "node", n.Name, "epoch", m.dec.Epoch)
	m.routeOnceWritable(n)
}

// routeOnceWritable routes traffic to n, the active node, when decide held
// it until n was writable (routeWhenWritable): after unfence, or when a
// check finds n writable by another hand (an operator; an unfence whose
// answer was lost although the statement took effect).
func (m *Manager) routeOnceWritable(n *node) {
	if m.routeWhenWritable != n.Name {
		return
	}
	m.routeWhenWritable = ""
	if m.state == StateActive && m.dec.Active == n.Name {
		m.ctl.Route(n.Name)
	}
}

// makeWritable makes n writable once no tandem routes by an older
// decision (the barrier), and records that followers may route to it.
func (m *Manager) makeWritable(ctx context.Context, n *node) error {
	if err := m.barrier(ctx); err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
	defer cancel()
	if err := n.ops.SetReadOnly(fctx, n.good.Facts.Flavor, false); err != nil {
		return err
	}
	n.tookReadOnly(false)
	if err := m.opened(); err != nil {
		m.log.Error("node made writable, but followers cannot be told", "node", n.Name, "error", err)
	}
	return nil
}

// checkErrant excludes a passive node that holds transactions the active
// never had: written by itself beyond the promotion point.
func (m *Manager) checkErrant(ctx context.Context, n *node) {
	if _, excluded := m.dec.Excluded[n.Name]; excluded || m.dec.PromotedAt == "" {
		return
	}
	f := n.good.Facts
	mine := f.Executed()
	point, err := replication.ParseGTIDs(f.Flavor, m.dec.PromotedAt)
	if err != nil || mine == nil {
		return
	}
	errant := ownBeyond(mine, point, f.ServerID)
	if active := m.node(m.dec.Active); errant == "" && active != nil && active.oks > 0 {
		if set, ok := replication.Errant(active.good.Facts.Executed(), mine); ok && ownBeyond(set, point, f.ServerID) != "" {
			errant = set.String()
		}
	}
	if errant == "" {
		return
	}
	d := m.dec
	d.Excluded = maps.Clone(m.dec.Excluded)
	if d.Excluded == nil {
		d.Excluded = map[string]string{}
	}
	d.Excluded[n.Name] = fmt.Sprintf("errant transactions %s beyond the promotion point %s", errant, m.dec.PromotedAt)
	if err := m.save(d); err != nil {
		m.log.Error("cannot save the exclusion", "node", n.Name, "error", err)
		m.setDecision(d)
	}
	m.log.Error("node holds transactions the active never received; it stays fenced and is never promoted until an operator rejoins it (see README)",
		"node", n.Name, "errant", errant, "promoted_at", m.dec.PromotedAt)
	m.emit(Event{Type: EventErrant, Node: n.Name, Reason: d.Excluded[n.Name]})
}

// ownBeyond returns, for MariaDB positions, the GTIDs of set written by
// serverID with a sequence number beyond point's in the same domain; for
// MySQL sets, set minus point. "" when there are none.
func ownBeyond(set, point mysql.GTIDSet, serverID uint32) string {
	switch s := set.(type) {
	case *mysql.MariadbGTIDSet:
		p, _ := point.(*mysql.MariadbGTIDSet)
		out := ""
		for domain, g := range s.Sets {
			if g == nil || g.ServerID != serverID {
				continue
			}
			if p != nil {
				if pg := p.Sets[domain]; pg != nil && g.SequenceNumber <= pg.SequenceNumber {
					continue
				}
			}
			if out != "" {
				out += ","
			}
			out += g.String()
		}
		return out
	default:
		if e, ok := replication.Errant(point, set); ok {
			return e.String()
		}
	}
	return ""
}

// checkResume starts the replica threads of a fenced node n from the
// position its binary log backs (replication.Resume) when nobody started
// them since the server came up (skip_slave_start, README "Crash
// recovery of the old active"), or when its gtid_slave_pos names transactions of its
// own that its crash recovery dropped (Facts.LostOwnTail: replication
// from there would never fetch them back). Facts.Executed does not count
// such a tail, so until then the node is not caught up: it stays unsynced
// and is not promoted or switched to. The active's replication is left to
// checkRejoin while a rejoin is pending, unless force (the active must
// take back its own lost transactions from its peer before it writes).
func (m *Manager) checkResume(ctx context.Context, n *node, force bool) (resumed bool) {
	f := n.good.Facts
	if f.Writable() {
		return false
	}
	if _, excluded := m.dec.Excluded[n.Name]; excluded {
		return false
	}
	r := f.Replica
	fresh := r.Configured && r.IORunning == replication.IONo && !r.SQLRunning &&
		r.LastIOErrno == 0 && r.LastSQLErrno == 0 && f.ReplicaStarts == 0
	if fresh {
		n.heldTail = ""
	}
	lostTail := f.LostOwnTail()
	if lostTail != nil && lostTail.String() == n.heldTail {
		lostTail = nil // its data holds it (checkUndoResume)
	}
	if !fresh && lostTail == nil && !force {
		return false
	}
	if n.Name == m.dec.Active && m.dec.PendingRejoin && !force {
		return false
	}
	rctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
	defer cancel()
	lost, pos, err := n.ops.Resume(rctx)
	if err != nil {
		m.log.Error("cannot start the node's replication from the position its binary log backs", "node", n.Name, "lost_own_tail", lostTail, "error", err)
		return false
	}
	if lost != "" {
		n.resumedLost = lost
		m.log.Warn("node lost transactions of its own in crash recovery that its gtid_slave_pos still named; gtid_slave_pos moved back so that it fetches them again",
			"node", n.Name, "lost", lost, "gtid_slave_pos", pos)
	} else {
		m.log.Info("node's replication started", "node", n.Name)
	}
	return true
}

// checkUndoResume puts back the gtid_slave_pos that checkResume moved back
// from a lost own tail when the node's SQL thread then stopped on a row
// the node already has (1062 duplicate key, 1032 row not found): its data
// held those transactions although its binary log did not (seen once
// after a SIGKILL: the binary log 23 transactions short of the data), so
// fetching them again can only fail (replication.UndoResume). It reports
// whether it restarted the node's replication.
func (m *Manager) checkUndoResume(ctx context.Context, n *node) bool {
	if n.resumedLost == "" {
		return false
	}
	f := n.good.Facts
	if lost, err := replication.ParseGTIDs(f.Flavor, n.resumedLost); err == nil && f.Executed() != nil && replication.Contains(f.Executed(), lost) {
		n.resumedLost = "" // taken back
		return false
	}
	if r := f.Replica; r.SQLRunning || r.LastSQLErrno != 1062 && r.LastSQLErrno != 1032 {
		return false
	}
	rctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
	defer cancel()
	pos, err := n.ops.UndoResume(rctx, n.resumedLost)
	if err != nil {
		m.log.Error("cannot put back the node's gtid_slave_pos", "node", n.Name, "error", err)
		return false
	}
	m.log.Warn("the node's data held the transactions its binary log lost in crash recovery (its replication stopped on a row it has): gtid_slave_pos put back past them",
		"node", n.Name, "lost", n.resumedLost, "gtid_slave_pos", pos, "sql_error", f.Replica.LastSQLError)
	n.heldTail, n.resumedLost = n.resumedLost, ""
	return true
}

// checkSkippedOwn warns, once per finding, about a passive whose
// gtid_binlog_state lacks transactions of its own that the active's has
// although its position is past them (replication.SkippedOwn): either it
// lost them in crash recovery and its replication went past them before
// checkResume could repair it (a node without skip_slave_start), or its
// gtid_binlog_state is stale: MariaDB 10.11 was seen reporting, after a
// SIGKILL with nothing truncated, a gtid_binlog_pos 26 transactions short
// of its binary log and its data. The two cannot be told apart from SQL,
// so tandem does not exclude the node; the README says what to check.
func (m *Manager) checkSkippedOwn(n *node) {
	active := m.node(m.dec.Active)
	if active == nil || active.oks == 0 || active == n {
		return
	}
	skipped := replication.SkippedOwn(n.good.Facts, active.good.Facts)
	if skipped == "" || skipped == n.heldTail || skipped == n.skippedWarned {
		return
	}
	n.skippedWarned = skipped
	m.log.Warn("node's gtid_binlog_state lacks transactions of its own that the active has, though its position is past them: lost in crash recovery (node without skip_slave_start), or a stale gtid_binlog_state after a crash; compare the nodes' data (see README)",
		"node", n.Name, "skipped", skipped, "active", active.Name)
}

// checkRejoin restarts the active's replication from n once n is a clean,
// fenced, replicating passive again, restoring master-master; keepDurable
// then turns semi-sync back on.
func (m *Manager) checkRejoin(ctx context.Context, n *node) {
	active := m.node(m.dec.Active)
	if active == nil || !m.dec.PendingRejoin || active.oks == 0 {
		return
	}
	f := n.good.Facts
	if _, excluded := m.dec.Excluded[n.Name]; excluded || f.Writable() || !f.Replica.SQLRunning || f.Replica.IORunning != replication.IOYes {
		return
	}
	// The active resumes replicating from n where it left off: n must
	// hold that again. A node whose crash recovery dropped commits the
	// active had received gets them back from the active first (the
	// active's I/O thread would fail with 1236 until then).
	if !replication.Contains(f.Executed(), active.good.Facts.Executed()) {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
	defer cancel()
	if err := active.ops.StartReplica(rctx, active.good.Facts.Flavor, false); err != nil {
		m.log.Warn("cannot restart replication on the active node", "node", active.Name, "error", err)
		return
	}
	d := m.dec
	d.PendingRejoin = false
	if err := m.save(d); err != nil {
		m.log.Error("cannot save the decision", "error", err)
	}
	m.log.Info("node rejoined as passive; replication restored both ways", "node", n.Name)
}

// decide applies rule 3.
func (m *Manager) decide(ctx context.Context) {
	a := m.node(m.dec.Active)
	switch m.state {
	case StateActive:
		if !a.healthy && a.fails >= m.cfg.FailAfter {
			m.failover(ctx, fmt.Sprintf("node %s failed: %v (%s)", a.Name, a.last.Err, a.reach), false)
		}
	case StateDown:
		if a.healthy {
			// The active node is back: it is the decided one, so it
			// takes traffic again (rule 1 fences the other). A node
			// that restarted comes back read-only: clients wait until
			// enforce has made it writable (after it took back what it
			// lost, or moved its sequence), not get 1290 in between.
			if a.good.Facts.Writable() {
				m.ctl.Route(a.Name)
			} else {
				m.ctl.Hold()
				m.routeWhenWritable = a.Name
			}
			m.setState(StateActive)
			m.emit(Event{Type: EventRecovered, Node: a.Name, To: a.Name, Reason: "the active node answers again"})
			m.enforce(ctx, a)
			return
		}
		if a.oks > 0 {
			return // answering again: it takes traffic back once healthy
		}
		if c := m.other(a.Name); c != nil && c.healthy && c.fails == 0 && time.Now().After(m.nextAttempt) {
			m.nextAttempt = time.Now().Add(m.cfg.RetryInterval)
			m.failover(ctx, fmt.Sprintf("node %s is down (%s)", a.Name, a.reach), false)
		}
	}
}

func (m *Manager) setState(s State) {
	if m.state != s {
		m.log.Debug("state", "from", m.state, "to", s)
	}
	if s != StateActive {
		m.routeWhenWritable = "" // whatever comes next routes by itself
	}
	m.state = s
	m.publish()
}

// unsafeToPromote says why c must not be promoted, or "".
func (m *Manager) unsafeToPromote(c *node, force bool) string {
	return m.promotable(c, force, false)
}

// promotable is unsafeToPromote; ignoreSync skips the unsynced mark, for a
// switchover, which waits for the target to catch up itself.
func (m *Manager) promotable(c *node, force, ignoreSync bool) string {
	if c == nil {
		return "there is no other node"
	}
	if !c.healthy && c.fails == 0 && c.oks < m.cfg.RecoverAfter {
		return fmt.Sprintf("node %s has answered %d of the %d checks in a row that make it healthy", c.Name, c.oks, m.cfg.RecoverAfter)
	}
	if !c.healthy || c.fails > 0 {
		return fmt.Sprintf("node %s is unreachable too (%v)", c.Name, c.last.Err)
	}
	if why, ok := m.dec.Excluded[c.Name]; ok {
		return fmt.Sprintf("node %s is excluded: %s", c.Name, why)
	}
	if m.dec.Maintenance[c.Name] {
		return fmt.Sprintf("node %s is in maintenance", c.Name)
	}
	if force {
		return ""
	}
	if why, ok := m.dec.Unsynced[c.Name]; ok && !ignoreSync {
		return fmt.Sprintf("node %s may lack writes the active acknowledged (unsynced since %s)", c.Name, why)
	}
	r := c.good.Facts.Replica
	if r.Configured && r.LastSQLErrno != 0 {
		return fmt.Sprintf("node %s's replication SQL thread stopped with error %d (%s)", c.Name, r.LastSQLErrno, r.LastSQLError)
	}
	if r.Configured && !r.SQLRunning {
		return fmt.Sprintf("node %s's replication SQL thread is stopped: it may not have applied what it received", c.Name)
	}
	if lag, ok := m.lagBehind(c); ok && lag > m.cfg.MaxPromoteLag {
		return fmt.Sprintf("node %s lagged %v behind (over %v)", c.Name, lag.Round(time.Millisecond), m.cfg.MaxPromoteLag)
	}
	return ""
}

// lagBehind is how far c was behind the active node when the active was
// last seen alive: the age of the active's heartbeat on c, less the time
// since the active last answered (a dead active writes no heartbeat, so
// the plain age keeps growing without c falling behind). When heartbeats
// had stopped before the active's last check (no tandem led, so none
// wrote them: etcd was lost), the age counts the time nobody wrote, not
// c's lag: then the active's own row, as it read at that check, against
// c's row is the lag.
func (m *Manager) lagBehind(c *node) (time.Duration, bool) {
	if !c.good.LagKnown {
		return 0, false
	}
	lag := c.good.Lag
	if a := m.node(m.dec.Active); a != nil && a != c && !a.good.Time.IsZero() {
		if dead := c.good.Time.Sub(a.good.Time); dead > 0 {
			lag -= dead
		}
		own, seen := a.good.Heartbeat, c.good.Heartbeat
		if !own.IsZero() && !seen.IsZero() && a.good.Time.Sub(own) > heartbeatsStoppedAfter(m.cfg) {
			lag = min(lag, own.Sub(seen))
		}
	}
	return max(lag, 0), true
}

// heartbeatsStoppedAfter is how old the active's own heartbeat row must be
// at a check for tandem to take it that heartbeats stopped, rather than
// that the last write is still on its way (written in the background,
// one at a time, each within the check timeout when the node is well).
func heartbeatsStoppedAfter(c Config) time.Duration {
	return 2*c.Interval + c.CheckTimeout
}

// durable says why tandem cannot show that c holds every write old
// acknowledged up to cutAt (when its sessions were cut), or "". The proof:
// this tandem saw old as a semi-sync source waiting for acknowledgements
// (which with AFTER_SYNC means c received each commit before its client
// heard of it), and old cannot have fallen back to asynchronous
// replication since: that needs a commit to wait rpl_semi_sync_master_timeout,
// which had not begun before the check that saw it on (or the first check
// of the current run that saw commits waiting).
func (m *Manager) durable(old, c *node, cutAt time.Time) string {
	if why, ok := m.dec.Unsynced[c.Name]; ok {
		return fmt.Sprintf("node %s may lack writes %s acknowledged (unsynced since %s)", c.Name, old.Name, why)
	}
	o := old.good
	if o.Time.IsZero() {
		return fmt.Sprintf("this tandem never saw node %s answer, so it cannot show node %s received every write %s acknowledged", old.Name, c.Name, old.Name)
	}
	ss := o.Facts.SemiSync
	switch {
	case !ss.Known:
		return fmt.Sprintf("node %s has no semi-synchronous replication: it may have acknowledged writes node %s never received", old.Name, c.Name)
	case !ss.SourceEnabled || !ss.SourceOn:
		return fmt.Sprintf("node %s acknowledged commits without waiting for node %s at its last check (semi-sync enabled=%v, status=%v)", old.Name, c.Name, ss.SourceEnabled, ss.SourceOn)
	}
	// A commit waiting at that check may have begun before it, but not
	// before the check before it unless acknowledgements had stopped
	// (ackWaitSince); a passive so far behind that commits wait longer is
	// refused by its lag anyway (MaxPromoteLag).
	since := old.prevGood
	if since.IsZero() || !old.ackWaitSince.IsZero() && old.ackWaitSince.Before(since) {
		since = old.ackWaitSince
	}
	if since.IsZero() {
		since = o.Time
	}
	if fallback := since.Add(ss.SourceTimeout); !cutAt.Before(fallback) {
		return fmt.Sprintf("node %s may have fallen back to asynchronous replication since %s (rpl_semi_sync_master_timeout %v)", old.Name, since.Format(time.RFC3339Nano), ss.SourceTimeout)
	}
	return ""
}

// failover promotes the other node, or goes down saying why not. Every
// step before the decision is saved is undone when it refuses.
func (m *Manager) failover(ctx context.Context, reason string, force bool) error {
	start := time.Now()
	old := m.node(m.dec.Active)
	c := m.other(old.Name)
	if m.state != StateDown {
		m.emit(Event{Type: EventFailoverStarted, From: old.Name, Reason: reason})
	}
	var undo []func(context.Context)
	refuse := func(why string) error {
		if len(undo) > 0 {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.FenceTimeout)
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i](uctx)
			}
			cancel()
		}
		msg := fmt.Sprintf("no node can take writes: %s; not promoting: %s", reason, why)
		m.ctl.Down(msg)
		if m.state != StateDown {
			m.emit(Event{Type: EventFailoverRefused, From: old.Name, Reason: msg})
			m.emit(Event{Type: EventNoWriter, Reason: msg})
		}
		m.setState(StateDown)
		return errors.New(msg)
	}
	if why := m.unsafeToPromote(c, force); why != "" {
		return refuse(why)
	}
	m.setState(StateFailingOver)
	m.ctl.Hold()
	m.ctl.Cut(old.Name)
	cutAt := time.Now()
	lossWarning := ""
	if why := m.durable(old, c, cutAt); why != "" {
		if !force {
			return refuse(why)
		}
		lossWarning = why
		m.log.Warn("forced failover: acknowledged writes may be lost", "why", why)
	}
	// Journal the promotion before its first change on a node, so that a
	// restart of tandem in the middle undoes it (rule 4).
	flavor := c.good.Facts.Flavor
	cctx, cancel := context.WithTimeout(ctx, m.cfg.CatchupTimeout+2*m.cfg.FenceTimeout)
	defer cancel()
	cur, err := c.ops.Read(cctx)
	if err != nil {
		return refuse(fmt.Sprintf("cannot read node %s: %v", c.Name, err))
	}
	j := m.dec
	j.Promoting, j.PromotingSemiSync = c.Name, cur.SemiSync.SourceEnabled
	if err := m.store.Save(j); err != nil {
		return refuse(fmt.Sprintf("cannot save the decision: %v", err))
	}
	m.setDecision(j)
	undo = append(undo, func(context.Context) { m.clearJournal() })
	m.checkpoint("journaled")

	// Rule 1: fence the failed node, and, at the same time (another
	// node), make the candidate stop receiving from it: whatever the old
	// node commits from then on is never acknowledged by the candidate, so
	// never acknowledged to a client. What the fence's error proves
	// decides whether to go on: a live server that cannot be fenced may
	// still take writes from others. A hung node (SIGSTOP) gets
	// CheckTimeout, as for a check, not the whole FenceTimeout.
	fenceCtx := ctx
	if !old.healthy {
		var fcancel context.CancelFunc
		fenceCtx, fcancel = context.WithTimeout(ctx, m.cfg.CheckTimeout)
		defer fcancel()
	}
	hadSemiSync := cur.SemiSync.SourceEnabled
	stopped := make(chan error, 1)
	go func() {
		// Nothing can acknowledge a semi-synchronous commit on the
		// candidate now, not even its commits of what it applies from
		// the failed node: its source side goes off first.
		if !old.healthy && hadSemiSync {
			if _, err := c.ops.SetSemiSyncSource(cctx, false); err != nil {
				stopped <- fmt.Errorf("cannot turn semi-synchronous replication off on node %s: %v", c.Name, err)
				return
			}
		}
		if err := c.ops.StopReceiving(cctx, flavor); err != nil {
			stopped <- fmt.Errorf("cannot stop node %s's replication from %s: %v", c.Name, old.Name, err)
			return
		}
		stopped <- nil
	}()
	fenceErr := m.fence(fenceCtx, old, "it failed and is being replaced")
	stopErr := <-stopped
	// Undone by START SLAVE (with the SQL thread still running, the I/O
	// thread goes on from what it received) and the source setting back.
	undo = append(undo, func(uctx context.Context) {
		if !old.healthy && hadSemiSync {
			if _, err := c.ops.SetSemiSyncSource(uctx, true); err != nil {
				m.log.Error("undo: cannot turn semi-synchronous replication back on", "node", c.Name, "error", err)
			}
		}
		if err := c.ops.StartReplica(uctx, flavor, false); err != nil {
			m.log.Error("undo: cannot restart replication", "node", c.Name, "error", err)
		}
	})
	if fenceErr != nil {
		switch reach := Classify(fenceErr); {
		case reach == ReachAlive && !force:
			return refuse(fmt.Sprintf("node %s answers but could not be fenced (%v): it may still take writes", old.Name, fenceErr))
		case reach == ReachGone:
			m.log.Info("failed node refuses connections: its process is gone", "node", old.Name)
		default:
			// No answer: it may be hung or cut off, and writable. It
			// can acknowledge nothing more once the candidate stopped
			// receiving from it (semi-sync, shown durable above), and
			// tandem's own sessions there are cut.
			m.log.Warn("failed node did not answer the fence; proceeding: it cannot acknowledge writes once the candidate stops receiving from it",
				"node", old.Name, "error", fenceErr)
		}
	}
	m.checkpoint("fenced")
	if stopErr != nil {
		return refuse(stopErr.Error())
	}
	m.checkpoint("replica_stopped")
	// It applies everything it received before it writes.
	cur, err = c.ops.Read(cctx)
	if err != nil {
		return refuse(fmt.Sprintf("cannot read node %s: %v", c.Name, err))
	}
	received := cur.Replica.GTIDIOPos.Set
	if flavor == replication.MySQL {
		received = cur.Replica.RetrievedGTIDSet.Set
	}
	if received != nil && !force {
		if err := c.ops.WaitExecuted(cctx, flavor, received, m.cfg.CatchupTimeout); err != nil {
			return refuse(fmt.Sprintf("node %s did not apply what it received from %s: %v", c.Name, old.Name, err))
		}
	}
	if err := c.ops.StopApplier(cctx, flavor); err != nil {
		return refuse(fmt.Sprintf("cannot stop node %s's replication applier: %v", c.Name, err))
	}
	facts, err := c.ops.Read(cctx)
	if err != nil {
		return refuse(fmt.Sprintf("cannot read node %s: %v", c.Name, err))
	}
	m.checkpoint("caught_up")
	d := Decision{Active: c.Name, Epoch: m.dec.Epoch + 1, Time: time.Now().UTC(), Reason: reason,
		PromotedAt: facts.Executed().String(), Excluded: m.dec.Excluded, Maintenance: m.dec.Maintenance,
		Unsynced: maps.Clone(m.dec.Unsynced), PendingRejoin: true, Opened: m.cluster == nil}
	delete(d.Unsynced, c.Name) // forced: the operator accepted what it lacks
	if d.Unsynced == nil {
		d.Unsynced = map[string]string{}
	}
	d.Unsynced[old.Name] = time.Now().UTC().Format(time.RFC3339) + ": promoted " + c.Name + " without it"
	if force {
		d.Reason = "forced by operator: " + reason
		if lossWarning != "" {
			d.Reason = "forced by operator, WARNING: writes may be lost: " + lossWarning + "; " + reason
		}
	}
	if err := m.save(d); err != nil {
		return refuse(fmt.Sprintf("cannot save the decision: %v", err))
	}
	undo = nil
	m.checkpoint("saved")
	if err := m.makeWritable(cctx, c); err != nil {
		// Saved: c is the active node. Traffic waits for it to answer
		// (StateDown routes to it when it does; enforce unfences it).
		m.ctl.Down(fmt.Sprintf("node %s is the new active node but could not be made writable yet: %v", c.Name, err))
		m.setState(StateDown)
		return fmt.Errorf("cannot make node %s writable: %v", c.Name, err)
	}
	if err := m.ctl.Route(c.Name); err != nil {
		m.ctl.Down(err.Error())
		m.setState(StateDown)
		return err
	}
	m.setState(StateActive)
	m.record(d)
	if m.paused {
		m.ctl.Hold()
	}
	m.emit(Event{Type: EventFailoverFinished, From: old.Name, To: c.Name, Reason: d.Reason, Duration: time.Since(start)})
	return nil
}

// clearJournal forgets a promotion that was undone.
func (m *Manager) clearJournal() {
	if m.dec.Promoting == "" {
		return
	}
	d := m.dec
	d.Promoting, d.PromotingSemiSync = "", false
	if err := m.store.Save(d); err != nil {
		m.log.Error("cannot save the decision", "error", err)
	}
	m.setDecision(d)
}

// undoJournaledPromotion undoes, on the passive n, a promotion that a
// previous run of tandem began and never saved: n replicates again, with
// the semi-sync source setting it had.
func (m *Manager) undoJournaledPromotion(ctx context.Context, n *node) {
	uctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
	defer cancel()
	if err := n.ops.StartReplica(uctx, n.good.Facts.Flavor, false); err != nil {
		m.log.Error("cannot undo an unfinished promotion: replication does not start", "node", n.Name, "error", err)
		return
	}
	if m.dec.PromotingSemiSync {
		if _, err := n.ops.SetSemiSyncSource(uctx, true); err != nil {
			m.log.Error("cannot undo an unfinished promotion: semi-sync does not come back on", "node", n.Name, "error", err)
			return
		}
	}
	m.log.Warn("undid a promotion that a previous run of tandem began and did not finish", "node", n.Name)
	m.clearJournal()
}

// bootstrap decides, while undecided, from what the nodes say: the
// decision recorded on them (highest epoch wins) once every node answered
// or is known down, else the only writable node once both answered.
func (m *Manager) bootstrap(ctx context.Context) {
	var best Decision
	found := false
	for _, n := range m.nodes {
		if n.oks == 0 {
			if n.fails >= m.cfg.FailAfter {
				continue
			}
			return // not judged yet
		}
		if !n.decisionRead {
			rctx, cancel := context.WithTimeout(ctx, m.cfg.CheckTimeout)
			d, ok, err := n.ops.ReadDecision(rctx, m.cfg.HeartbeatSchema)
			cancel()
			if err != nil {
				m.log.Warn("cannot read the decision recorded on the node", "node", n.Name, "error", err)
				return
			}
			n.decisionRead, n.recorded, n.hasRecorded = true, d, ok
		}
		if n.hasRecorded && m.node(n.recorded.Active) != nil && (!found || n.recorded.Epoch > best.Epoch) {
			best, found = n.recorded, true
		}
	}
	if found {
		best.Promoting, best.PromotingSemiSync = "", false
		best.Reason = fmt.Sprintf("read from the nodes' decision table (epoch %d): %s", best.Epoch, best.Reason)
		best.Opened = m.cluster == nil
		m.adopt(ctx, best)
		return
	}
	var writable []*node
	for _, n := range m.nodes {
		if n.oks == 0 {
			return // a node never answered: its state is unknown
		}
		if n.good.Facts.Writable() {
			writable = append(writable, n)
		}
	}
	if len(writable) == 1 {
		m.adopt(ctx, Decision{Active: writable[0].Name, Epoch: 1, Time: time.Now().UTC(), Opened: m.cluster == nil,
			Reason: "no decision saved or recorded; adopted the only writable node"})
		return
	}
	if !m.undecidedLogged {
		m.undecidedLogged = true
		msg := fmt.Sprintf("no decision saved or recorded, and %d nodes are writable: an operator must choose the active node (tandem switchover -to NODE)", len(writable))
		m.log.Error(msg)
		m.emit(Event{Type: EventNoWriter, Reason: msg})
		m.ctl.Down(msg)
	}
}

// adopt makes d the decision of an undecided tandem.
func (m *Manager) adopt(ctx context.Context, d Decision) {
	if err := m.save(d); err != nil {
		m.log.Error("cannot save the decision", "error", err)
		return
	}
	m.log.Info("decision adopted", "active", d.Active, "epoch", d.Epoch, "reason", d.Reason)
	if d.Opened {
		if err := m.ctl.Route(d.Active); err != nil {
			m.log.Error("cannot route", "error", err)
		}
	}
	m.setState(StateActive)
	for _, n := range m.nodes {
		if n.oks > 0 {
			m.enforce(ctx, n)
		}
	}
	m.decide(ctx)
}

// emit stamps e and queues it for the hooks without blocking; when the
// queue is full the event is logged only.
func (m *Manager) emit(e Event) {
	e.Time = time.Now().UTC()
	e.Epoch = m.epoch.Load() // emit may be called from the guard too
	lvl := hclog.Info
	switch e.Type {
	case EventNodeDown, EventFailoverRefused, EventNoWriter, EventSplitBrain, EventErrant, EventReplicationStopped, EventSwitchoverRollback, EventUnsynced, EventSelfFenced:
		lvl = hclog.Warn
	}
	m.log.Log(lvl, "event: "+string(e.Type), "node", e.Node, "from", e.From, "to", e.To, "epoch", e.Epoch, "reason", e.Reason, "duration", e.Duration)
	m.mu.Lock()
	m.status.Events = append(m.status.Events, e)
	if len(m.status.Events) > 100 {
		m.status.Events = m.status.Events[len(m.status.Events)-100:]
	}
	m.mu.Unlock()
	select {
	case m.events <- e:
	default:
		m.log.Warn("event queue full; event not delivered to hooks", "type", e.Type)
	}
}

func (m *Manager) deliverEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-m.events:
			for _, h := range m.hooks {
				h(e)
			}
		}
	}
}
