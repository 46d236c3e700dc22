package failover

// Several tandems, one decision. With a Cluster (etcd, through package
// coord) every tandem monitors the nodes, but only the elected coordinator
// acts on them: it fails over, switches over, fences and unfences, and
// saves the decision, each save a compare-and-set inside etcd that fails
// for a stale coordinator. The others follow: they route to the node the
// saved decision names and acknowledge its epoch. Before the coordinator
// makes a node writable, every tandem has acknowledged the new epoch or
// its lease has certainly expired (the barrier), and every tandem routes
// only while its own lease is valid (the gate): a tandem cut off from etcd
// stops relaying before another can open a new node.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Cluster is what the state machine needs of the other tandems. failover
// owns it; package cluster adapts coord.Session to it. Every method is
// safe for concurrent use and bounds its own etcd requests.
type Cluster interface {
	// Valid reports whether this tandem's lease, renewed by itself and
	// counted from when the renewal was sent, still holds.
	Valid() bool
	// Lease identifies the lease Valid speaks of: a decision loaded under
	// another lease must be loaded again before it is acted on.
	Lease() int64
	// Campaign blocks until this tandem is the coordinator or ctx ends.
	Campaign(ctx context.Context) error
	// IsCoordinator reports whether this tandem is elected and its lease
	// valid.
	IsCoordinator() bool
	// Ack records that this tandem routes by epoch (never by an older one).
	Ack(ctx context.Context, epoch uint64) error
	// WaitAcked returns once every live tandem acknowledged epoch, or whose
	// lease has expired in etcd; an error names who did not.
	WaitAcked(ctx context.Context, epoch uint64) error
	// Members lists the tandems that registered (and, Present false,
	// those seen before whose lease expired).
	Members(ctx context.Context) ([]ClusterMember, error)
	// Coordinator names the coordinator, when there is one.
	Coordinator(ctx context.Context) (ClusterMember, bool, error)
}

// ClusterMember is one tandem as the cluster shows it.
type ClusterMember struct {
	ID          string `json:"id"`
	Host        string `json:"host,omitempty"`
	Admin       string `json:"admin,omitempty"`
	AckedEpoch  uint64 `json:"acked_epoch"`
	LeaseValid  bool   `json:"lease_valid"`
	Coordinator bool   `json:"coordinator"`
	Self        bool   `json:"self"`
}

// gate stands between the state machine and the data path of a clustered
// tandem: traffic flows only while this tandem's lease is valid and the
// decision it routes by was loaded under that lease. The state machine's
// calls are remembered while the gate is shut and replayed when it opens.
type gate struct {
	ctl Controller

	mu   sync.Mutex
	open bool
	node string           // where the state machine routes ("" held or down)
	last func(Controller) // the state machine's last routing call
}

func (g *gate) apply(node string, f func(Controller)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.node, g.last = node, f
	if g.open {
		f(g.ctl)
	}
}

func (g *gate) Route(node string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.node, g.last = node, func(c Controller) { _ = c.Route(node) }
	if g.open {
		return g.ctl.Route(node)
	}
	return nil
}

func (g *gate) Hold()              { g.apply("", Controller.Hold) }
func (g *gate) Resume()            { g.apply(g.current(), Controller.Resume) }
func (g *gate) Down(reason string) { g.apply("", func(c Controller) { c.Down(reason) }) }
func (g *gate) Cut(node string)    { g.ctl.Cut(node) }
func (g *gate) Activity() (int, int) {
	return g.ctl.Activity()
}

func (g *gate) current() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.node
}

// shut stops traffic at once: new commands wait (hold_timeout), commands
// running on the routed node are cut.
func (g *gate) shut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		return false
	}
	g.open = false
	g.ctl.Hold()
	if g.node != "" {
		g.ctl.Cut(g.node)
	}
	return true
}

// reopen lets traffic flow again as the state machine last asked.
func (g *gate) reopen() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open {
		return
	}
	g.open = true
	if g.last != nil {
		g.last(g.ctl)
	}
}

func (g *gate) isOpen() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

// guard shuts the gate as soon as the lease lapses, independently of the
// state machine's goroutine (which may be busy promoting), and tells the
// state machine when the lease is valid again so that it reloads the
// decision before reopening.
func (m *Manager) guard(ctx context.Context) {
	t := time.NewTicker(m.cfg.GuardInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.cluster.Valid() {
			if !m.gate.isOpen() {
				select {
				case m.relatch <- struct{}{}:
				default:
				}
			}
			continue
		}
		if m.gate.shut() {
			m.mu.Lock()
			m.status.SelfFenced = true // at once, not at the next publish
			m.mu.Unlock()
			m.emit(Event{Type: EventSelfFenced, Reason: "this tandem's etcd lease is not valid: traffic held and running statements cut until it is renewed and the decision read again"})
		}
	}
}

// campaign keeps this tandem a candidate: it reports each term won on
// m.elected and each term lost on m.deposed.
func (m *Manager) campaign(ctx context.Context) {
	for ctx.Err() == nil {
		if err := m.cluster.Campaign(ctx); err != nil {
			return
		}
		select {
		case m.elected <- struct{}{}:
		case <-ctx.Done():
			return
		}
		t := time.NewTicker(m.cfg.GuardInterval)
		for m.cluster.IsCoordinator() {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		t.Stop()
		select {
		case m.deposed <- struct{}{}:
		case <-ctx.Done():
			return
		}
	}
}

// lead takes over as coordinator: the decision is read afresh, and acted
// on as the single-instance state machine would.
func (m *Manager) lead(ctx context.Context) {
	lease := m.cluster.Lease()
	d, ok, err := m.store.Load()
	if err != nil {
		if time.Since(m.followErrLogged) > 10*time.Second {
			m.followErrLogged = time.Now()
			m.log.Error("elected, but cannot read the decision; not acting until it can (tried again every 100 ms)", "error", err)
		}
		return
	}
	if ok && m.node(d.Active) == nil {
		if time.Since(m.followErrLogged) > 10*time.Second {
			m.followErrLogged = time.Now()
			m.log.Error("the decision in etcd names a node that is not configured here: not acting", "node", d.Active)
		}
		return
	}
	m.leading = true
	m.leadingFlag.Store(true)
	m.loadedLease = lease
	m.emit(Event{Type: EventCoordinator, Reason: "this tandem is the coordinator"})
	if !ok {
		m.setState(StateUndecided)
		m.setDecision(Decision{Reason: "no decision in etcd yet: reading the nodes"})
		m.ctl.Hold()
		m.gate.reopen()
		m.bootstrap(ctx)
		return
	}
	m.setDecision(d)
	m.ack(ctx, d.Epoch)
	m.setState(StateActive)
	if d.Opened {
		m.ctl.Route(d.Active)
	} else {
		m.ctl.Hold() // the previous coordinator had not opened it yet: enforce does
	}
	m.gate.reopen()
	for _, n := range m.nodes {
		if n.oks > 0 {
			m.enforce(ctx, n)
		}
	}
	m.decide(ctx)
}

// tick is the Run loop's periodic step with several tandems: a follower
// reads the decision; a tandem elected but not yet leading (the decision
// could not be read when it won) tries to lead again.
func (m *Manager) tick(ctx context.Context) {
	if !m.leading && m.cluster.IsCoordinator() {
		m.lead(ctx)
		return
	}
	m.follow(ctx)
}

// follow routes by the decision in etcd, read afresh, and acknowledges its
// epoch once routing by it.
func (m *Manager) follow(ctx context.Context) {
	if m.leading || !m.cluster.Valid() {
		return
	}
	lease := m.cluster.Lease()
	d, ok, err := m.store.Load()
	if err != nil {
		if time.Since(m.followErrLogged) > 10*time.Second {
			m.followErrLogged = time.Now()
			m.log.Warn("cannot read the decision from etcd", "error", err)
		}
		return
	}
	if !ok || m.node(d.Active) == nil {
		if !ok {
			m.ctl.Hold()
			m.gate.reopen()
		}
		return
	}
	changed := d.Epoch != m.dec.Epoch || d.Opened != m.dec.Opened || d.Active != m.dec.Active || lease != m.loadedLease
	if !changed && m.gate.isOpen() {
		m.setDecision(d) // the rest (exclusions, unsynced marks) for the status
		return
	}
	m.setDecision(d)
	m.loadedLease = lease
	if m.state != StateFollowing {
		m.setState(StateFollowing)
	}
	if d.Opened {
		m.ctl.Route(d.Active)
	} else {
		m.ctl.Hold()
	}
	m.gate.reopen()
	if !d.Opened {
		m.drain()
	}
	m.ack(ctx, d.Epoch)
}

// drain waits, bounded by half the barrier's timeout, until no session of
// this tandem runs a command or a transaction: a held epoch is
// acknowledged once the old node may be fenced without cutting anyone
// (a switchover's promise of no client error holds on every tandem).
func (m *Manager) drain() {
	deadline := time.Now().Add(m.cfg.BarrierTimeout / 2)
	for time.Now().Before(deadline) {
		if busy, inTx := m.ctl.Activity(); busy == 0 && inTx == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	busy, inTx := m.ctl.Activity()
	m.log.Warn("acknowledging a held epoch with sessions still busy", "busy", busy, "in_transaction", inTx)
}

// ack acknowledges epoch for this tandem.
func (m *Manager) ack(ctx context.Context, epoch uint64) {
	actx, cancel := context.WithTimeout(ctx, m.cfg.BarrierTimeout)
	defer cancel()
	if err := m.cluster.Ack(actx, epoch); err != nil {
		m.log.Warn("cannot acknowledge the epoch", "epoch", epoch, "error", err)
	}
}

// barrier returns once no tandem routes by an epoch before the current one:
// the step before a node is made writable. A single tandem passes at once.
func (m *Manager) barrier(ctx context.Context) error {
	if m.cluster == nil {
		return nil
	}
	if !m.cluster.IsCoordinator() {
		return errors.New("this tandem is no longer the coordinator")
	}
	m.ack(ctx, m.dec.Epoch) // this tandem routes by it (held until opened)
	bctx, cancel := context.WithTimeout(ctx, m.cfg.BarrierTimeout)
	defer cancel()
	if err := m.cluster.WaitAcked(bctx, m.dec.Epoch); err != nil {
		return fmt.Errorf("not every tandem stopped routing by the previous decision: %w", err)
	}
	return nil
}

// opened records, once the active node is writable, that followers may
// route to it.
func (m *Manager) opened() error {
	if m.cluster == nil || m.dec.Opened {
		return nil
	}
	d := m.dec
	d.Opened = true
	return m.save(d)
}

// notCoordinator refuses an operator request on a follower, naming the
// coordinator.
func (m *Manager) notCoordinator(ctx context.Context) error {
	if m.cluster == nil || m.leading {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, m.cfg.BarrierTimeout)
	defer cancel()
	c, ok, err := m.cluster.Coordinator(cctx)
	switch {
	case err != nil:
		return fmt.Errorf("%w: this tandem is not the coordinator, and the coordinator cannot be read from etcd: %v", ErrRefused, err)
	case !ok:
		return fmt.Errorf("%w: this tandem is not the coordinator, and no tandem is at the moment", ErrRefused)
	}
	return fmt.Errorf("%w: this tandem is not the coordinator; ask tandem %s (host %q, admin API %s)", ErrRefused, c.ID, c.Host, c.Admin)
}

// refreshMembers keeps the cluster's view for the status, at most every
// second, read in the background: the Run loop, which also takes the
// nodes' checks, never waits for etcd for the status's sake.
func (m *Manager) refreshMembers(ctx context.Context) {
	if time.Since(m.membersRead) < time.Second || !m.membersBusy.CompareAndSwap(false, true) {
		return
	}
	m.membersRead = time.Now()
	go func() {
		defer m.membersBusy.Store(false)
		cctx, cancel := context.WithTimeout(ctx, m.cfg.BarrierTimeout)
		defer cancel()
		ms, err := m.cluster.Members(cctx)
		if err != nil {
			return
		}
		m.mu.Lock()
		m.status.Cluster = ms
		m.mu.Unlock()
	}()
}
