package failover

// The failover state machine. One goroutine (Run) owns every decision: it
// takes observations from the monitor and requests from operators, and is
// the only code that fences a node, promotes one, or moves traffic.
//
// Rules, in the order they are applied:
//  1. Only the decided active node may be writable. Any other node seen
//     writable is fenced at once (read_only=ON, its clients killed).
//  2. The active node is failed after FailAfter consecutive failed checks.
//     The other node is promoted only if it is healthy, not excluded, its
//     replication SQL thread is running without error, its last measured
//     lag is under MaxPromoteLag, and it applies everything it received
//     within CatchupTimeout. Otherwise nothing is promoted, clients get a
//     clear error at once, and tandem retries as observations come in.
//  3. A promotion is saved to the Store before the candidate is made
//     writable, and traffic moves only after that.
//  4. A node that comes back holding transactions of its own beyond the
//     promotion point is excluded from promotion and stays fenced.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/hashicorp/go-hclog"

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
	// paused is set by an operator's Pause.
	paused bool
	// requests carries operator requests into the Run goroutine.
	requests chan request
	// heartbeatsOff stops heartbeat writes while a switchover fences the
	// active node: a heartbeat committed there after its final position
	// was read would look like an errant transaction.
	heartbeatsOff atomic.Bool

	mu     sync.Mutex // guards status
	status Status
}

// New returns a Manager for two nodes (or one), driving ctl, keeping its
// decision in store. initial is the node to make active when store has no
// decision yet.
func New(cfg Config, nodes []NodeConfig, initial string, ctl Controller, store Store, log hclog.Logger, hooks ...Hook) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	m := &Manager{cfg: cfg, log: log, ctl: ctl, store: store, hooks: hooks, events: make(chan Event, 256), started: time.Now(),
		requests: make(chan request)}
	for _, nc := range nodes {
		db, err := openNode(cfg, nc)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", nc.Name, err)
		}
		m.nodes = append(m.nodes, &node{NodeConfig: nc, db: db})
	}
	dec, ok, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("loading the decision: %w", err)
	}
	if !ok {
		dec = Decision{Active: initial, Epoch: 1, Time: time.Now().UTC(), Reason: "initial configuration"}
		if err := store.Save(dec); err != nil {
			return nil, fmt.Errorf("saving the initial decision: %w", err)
		}
	}
	if m.node(dec.Active) == nil {
		return nil, fmt.Errorf("the saved decision names node %q, which is not configured", dec.Active)
	}
	m.setDecision(dec)
	m.publish()
	return m, nil
}

// Decision returns the decision in force (the active node tandem routes to).
func (m *Manager) Decision() Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status.Decision
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

// Run monitors the nodes and acts until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	obs := make(chan Observation, 2*len(m.nodes))
	var wg sync.WaitGroup
	for _, n := range m.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); m.watch(ctx, n, obs) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); m.deliverEvents(ctx) }()
	defer func() {
		wg.Wait()
		for _, n := range m.nodes {
			n.db.Close()
		}
	}()
	m.log.Info("monitoring", "active", m.dec.Active, "epoch", m.dec.Epoch)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case o := <-obs:
			m.observe(ctx, o)
			m.publish()
		case r := <-m.requests:
			v, err := r.do(ctx)
			r.reply <- response{v, err}
			m.publish()
		}
	}
}

// observe updates a node's health and applies the rules.
func (m *Manager) observe(ctx context.Context, o Observation) {
	n := m.node(o.Node)
	n.last = o
	if o.Refused {
		if n.fails == 0 && n.oks == 0 || time.Since(n.refusedLogged) > time.Minute {
			n.refusedLogged = time.Now()
			m.log.Error("node refuses tandem's admin account: check failover.admin_user and its password and privileges; the node is not judged until it lets tandem in",
				"node", n.Name, "error", o.Err)
		}
		return
	}
	if o.Err != nil {
		n.fails++
		n.oks = 0
		if n.healthy && n.fails >= m.cfg.FailAfter || n.fails == m.cfg.FailAfter && !n.healthy && n.good.Time.IsZero() {
			n.healthy = false
			m.emit(Event{Type: EventNodeDown, Node: n.Name, Reason: o.Err.Error()})
		}
	} else {
		if !n.roSetAt.IsZero() && !o.Time.After(n.roSetAt) {
			// Begun before tandem set read_only here (and queued
			// while it did): what it says of read_only is stale.
			o.Facts.ReadOnly = n.roSet
			if !n.roSet {
				o.Facts.SuperReadOnly = false
			}
		}
		n.good = o
		n.oks++
		n.fails = 0
		if !n.healthy && n.oks >= m.cfg.RecoverAfter {
			n.healthy = true
			m.emit(Event{Type: EventNodeUp, Node: n.Name, Reason: "answering checks"})
		}
		m.enforce(ctx, n)
	}
	m.decide(ctx)
}

// enforce applies rules 1 and 4 to a node that just answered.
func (m *Manager) enforce(ctx context.Context, n *node) {
	f := n.good.Facts
	if n.Name != m.dec.Active {
		if f.Writable() {
			peer := m.node(m.dec.Active)
			if peer != nil && peer.good.Facts.Writable() && peer.oks > 0 {
				m.emit(Event{Type: EventSplitBrain, Node: n.Name, Reason: "both nodes were writable; fencing " + n.Name})
			}
			m.fence(ctx, n, "it is not the active node")
		}
		m.checkErrant(ctx, n)
		m.checkRejoin(ctx, n)
		// Raise replication trouble on the passive when it starts, not
		// on every check.
		if why := replicationTrouble(f.Replica); why != n.replTrouble {
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
	// The active node: make sure it takes writes, once its peer is known
	// not to (fenced or failed).
	if !f.Writable() && m.state == StateActive {
		peer := m.other(n.Name)
		if peer == nil || !peer.healthy || (peer.good.Facts.ReadOnly && peer.oks > 0) {
			m.unfence(ctx, n)
		}
	}
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

// fence sets n read-only and kills its clients.
func (m *Manager) fence(ctx context.Context, n *node, why string) error {
	fctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
	defer cancel()
	flavor := n.good.Facts.Flavor
	if flavor == replication.UnknownFlavor {
		flavor = replication.MariaDB
	}
	if err := replication.SetReadOnly(fctx, n.db, flavor, true); err != nil {
		m.log.Error("cannot fence node", "node", n.Name, "error", err)
		return err
	}
	killed, err := replication.KillClients(fctx, n.db, m.cfg.AdminUser)
	if err != nil {
		m.log.Warn("fenced, but could not kill every client", "node", n.Name, "error", err)
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
	fctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
	defer cancel()
	if err := replication.SetReadOnly(fctx, n.db, n.good.Facts.Flavor, false); err != nil {
		m.log.Error("cannot make the active node writable", "node", n.Name, "error", err)
		return
	}
	n.tookReadOnly(false)
	m.log.Info("active node made writable", "node", n.Name, "epoch", m.dec.Epoch)
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
	d.Excluded = map[string]string{}
	for k, v := range m.dec.Excluded {
		d.Excluded[k] = v
	}
	d.Excluded[n.Name] = fmt.Sprintf("errant transactions %s beyond the promotion point %s", errant, m.dec.PromotedAt)
	if err := m.store.Save(d); err != nil {
		m.log.Error("cannot save the exclusion", "node", n.Name, "error", err)
	}
	m.setDecision(d)
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

// checkRejoin restarts the active's replication from n once n is a clean,
// fenced, replicating passive again, restoring master-master.
func (m *Manager) checkRejoin(ctx context.Context, n *node) {
	active := m.node(m.dec.Active)
	if active == nil || !m.dec.PendingRejoin || active.oks == 0 {
		return
	}
	f := n.good.Facts
	if _, excluded := m.dec.Excluded[n.Name]; excluded || f.Writable() || !f.Replica.SQLRunning || f.Replica.IORunning != replication.IOYes {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
	defer cancel()
	if err := replication.StartReplica(rctx, active.db, active.good.Facts.Flavor); err != nil {
		m.log.Warn("cannot restart replication on the active node", "node", active.Name, "error", err)
		return
	}
	if m.dec.SemiSyncOff {
		if _, err := replication.SetSemiSyncSource(rctx, active.db, true); err != nil {
			m.log.Warn("cannot turn semi-synchronous replication back on", "node", active.Name, "error", err)
			return
		}
	}
	d := m.dec
	d.PendingRejoin, d.SemiSyncOff = false, false
	if err := m.store.Save(d); err != nil {
		m.log.Error("cannot save the decision", "error", err)
	}
	m.setDecision(d)
	m.log.Info("node rejoined as passive; replication restored both ways", "node", n.Name)
}

// decide applies rules 2 and 3.
func (m *Manager) decide(ctx context.Context) {
	a := m.node(m.dec.Active)
	switch m.state {
	case StateActive:
		if !a.healthy && a.fails >= m.cfg.FailAfter {
			m.failover(ctx, fmt.Sprintf("node %s failed %d checks in a row: %v", a.Name, a.fails, a.last.Err), false)
		}
	case StateDown:
		if a.healthy {
			// The active node is back: it is the decided one, so it
			// takes traffic again (rule 1 fences the other).
			m.ctl.Route(a.Name)
			m.setState(StateActive)
			m.emit(Event{Type: EventRecovered, Node: a.Name, To: a.Name, Reason: "the active node answers again"})
			return
		}
		if c := m.other(a.Name); c != nil && c.healthy && c.fails == 0 && time.Now().After(m.nextAttempt) {
			m.nextAttempt = time.Now().Add(m.cfg.RetryInterval)
			m.failover(ctx, fmt.Sprintf("node %s is down", a.Name), false)
		}
	}
}

func (m *Manager) setState(s State) {
	if m.state != s {
		m.log.Debug("state", "from", m.state, "to", s)
	}
	m.state = s
}

// unsafeToPromote says why c must not be promoted, or "".
func (m *Manager) unsafeToPromote(c *node, force bool) string {
	if c == nil {
		return "there is no other node"
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
	r := c.good.Facts.Replica
	if r.Configured && r.LastSQLErrno != 0 {
		return fmt.Sprintf("node %s's replication SQL thread stopped with error %d (%s)", c.Name, r.LastSQLErrno, r.LastSQLError)
	}
	if r.Configured && !r.SQLRunning {
		return fmt.Sprintf("node %s's replication SQL thread is stopped: it may not have applied what it received", c.Name)
	}
	if c.good.LagKnown && c.good.Lag > m.cfg.MaxPromoteLag {
		return fmt.Sprintf("node %s lagged %v behind (over %v)", c.Name, c.good.Lag.Round(time.Millisecond), m.cfg.MaxPromoteLag)
	}
	return ""
}

// failover promotes the other node, or goes down saying why not.
func (m *Manager) failover(ctx context.Context, reason string, force bool) error {
	start := time.Now()
	old := m.node(m.dec.Active)
	c := m.other(old.Name)
	if m.state != StateDown {
		m.emit(Event{Type: EventFailoverStarted, From: old.Name, Reason: reason})
	}
	refuse := func(why string) error {
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
	// Rule 1: fence the failed node if it answers at all; if not, it
	// failed FailAfter checks and is known unreachable. "At all" is
	// CheckTimeout, as for a check: a hung node (SIGSTOP) would hold
	// the failover for the whole FenceTimeout otherwise.
	fenceCtx := ctx
	if !old.healthy {
		var cancel context.CancelFunc
		fenceCtx, cancel = context.WithTimeout(ctx, m.cfg.CheckTimeout)
		defer cancel()
	}
	if err := m.fence(fenceCtx, old, "it failed and is being replaced"); err != nil {
		m.log.Info("failed node not reachable for fencing; proceeding as it is known unreachable", "node", old.Name)
	}
	// The candidate applies everything it received before it writes.
	flavor := c.good.Facts.Flavor
	cctx, cancel := context.WithTimeout(ctx, m.cfg.CatchupTimeout+time.Second)
	defer cancel()
	semiSyncOff := false
	if !old.healthy {
		// Nothing can acknowledge a semi-synchronous commit now: not
		// the candidate's first writes, nor, before that, its commits
		// of what it applies from the failed node, which would each
		// wait rpl_semi_sync_master_timeout and stall the catch-up.
		had, err := replication.SetSemiSyncSource(cctx, c.db, false)
		if err != nil {
			m.log.Warn("cannot turn semi-synchronous replication off on the new active", "node", c.Name, "error", err)
		}
		semiSyncOff = had && err == nil
	}
	// What it received, read now (after the fence): its last check may
	// predate transactions the old node sent, and had acknowledged, since.
	cur, err := replication.Read(cctx, c.db)
	if err != nil {
		return refuse(fmt.Sprintf("cannot read node %s: %v", c.Name, err))
	}
	received := cur.Replica.GTIDIOPos.Set
	if flavor == replication.MySQL {
		received = cur.Replica.RetrievedGTIDSet.Set
	}
	if received != nil && !force {
		if err := replication.WaitExecuted(cctx, c.db, flavor, received, m.cfg.CatchupTimeout); err != nil {
			return refuse(fmt.Sprintf("node %s did not apply what it received from %s: %v", c.Name, old.Name, err))
		}
	}
	// Stop applying what comes from the old node; the I/O thread is
	// stopped in the background, as that can wait seconds on a hung node.
	// Whatever it still receives is never applied: the rejoin restarts
	// replication only if the old node has nothing of its own beyond the
	// promotion point.
	if err := replication.StopReplicaApplier(cctx, c.db, flavor); err != nil {
		return refuse(fmt.Sprintf("cannot stop node %s's replication from %s: %v", c.Name, old.Name, err))
	}
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := replication.StopReplica(sctx, c.db, flavor); err != nil {
			m.log.Warn("could not stop the replication I/O thread on the new active", "node", c.Name, "error", err)
		}
	}()
	facts, err := replication.Read(cctx, c.db)
	if err != nil {
		return refuse(fmt.Sprintf("cannot read node %s: %v", c.Name, err))
	}
	d := Decision{Active: c.Name, Epoch: m.dec.Epoch + 1, Time: time.Now().UTC(), Reason: reason,
		PromotedAt: facts.Executed().String(), Excluded: m.dec.Excluded, Maintenance: m.dec.Maintenance,
		PendingRejoin: true, SemiSyncOff: semiSyncOff}
	if force {
		d.Reason = "forced by operator: " + reason
	}
	if err := m.store.Save(d); err != nil {
		return refuse(fmt.Sprintf("cannot save the decision: %v", err))
	}
	m.setDecision(d)
	if err := replication.SetReadOnly(cctx, c.db, flavor, false); err != nil {
		return refuse(fmt.Sprintf("cannot make node %s writable: %v", c.Name, err))
	}
	c.tookReadOnly(false)
	if err := m.ctl.Route(c.Name); err != nil {
		return refuse(err.Error())
	}
	// Best effort, after traffic flows: recorded on the new active for
	// operators (the file store is the authority).
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		m.writeDecisionTable(wctx, c, d)
	}()
	m.setState(StateActive)
	if m.paused {
		m.ctl.Hold()
	}
	m.emit(Event{Type: EventFailoverFinished, From: old.Name, To: c.Name, Reason: d.Reason, Duration: time.Since(start)})
	return nil
}

// emit stamps e and queues it for the hooks without blocking; when the
// queue is full the event is logged only.
func (m *Manager) emit(e Event) {
	e.Time = time.Now().UTC()
	e.Epoch = m.dec.Epoch
	lvl := hclog.Info
	switch e.Type {
	case EventNodeDown, EventFailoverRefused, EventNoWriter, EventSplitBrain, EventErrant, EventReplicationStopped, EventSwitchoverRollback:
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
