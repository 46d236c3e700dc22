package failover

// Operator requests: planned switchover, forced failover, maintenance,
// pause and resume. Each is carried out by the Run goroutine, so it never
// races with an automatic decision.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/tandemdb/tandem/replication"
)

// ErrRefused wraps every reason an operator request was not carried out.
var ErrRefused = errors.New("refused")

// SwitchoverOptions describe a planned switchover.
type SwitchoverOptions struct {
	// To is the node to make active; "" means the other node.
	To string
	// Timeout bounds the write pause: held statements, in-flight
	// transactions finishing, and the target catching up. Default 5s.
	Timeout time.Duration
	// DryRun runs every pre-flight check and reports the plan only.
	DryRun bool
}

// SwitchoverReport says what a switchover did or, for a dry run, would do.
type SwitchoverReport struct {
	From       string        `json:"from"`
	To         string        `json:"to"`
	Epoch      uint64        `json:"epoch"`
	DryRun     bool          `json:"dry_run"`
	Plan       []string      `json:"plan"`
	WritePause time.Duration `json:"write_pause_ns"`
	RolledBack bool          `json:"rolled_back"`
}

type request struct {
	// ctx is the caller's: the operation sees it done when the caller
	// goes away.
	ctx   context.Context
	do    func(ctx context.Context) (any, error)
	reply chan response
}

type response struct {
	v   any
	err error
}

// call runs do in the Run goroutine and waits for its answer.
func (m *Manager) call(ctx context.Context, do func(ctx context.Context) (any, error)) (any, error) {
	r := request{ctx: ctx, do: do, reply: make(chan response, 1)}
	select {
	case m.requests <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case resp := <-r.reply:
		return resp.v, resp.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Switchover moves traffic to the other node with no client error: it holds
// new statements, lets running transactions finish, fences the active,
// waits until the target has applied everything, makes the target
// writable and releases the held statements there. Any failure rolls back
// to the old active, with nothing lost and no client error.
func (m *Manager) Switchover(ctx context.Context, o SwitchoverOptions) (SwitchoverReport, error) {
	v, err := m.call(ctx, func(ctx context.Context) (any, error) { return m.switchover(ctx, o) })
	r, _ := v.(SwitchoverReport)
	return r, err
}

// Failover promotes the other node now. With force, the safety checks
// (replication thread state, lag, catch-up) are skipped: only an operator
// may ask for that, never the automatic path.
func (m *Manager) Failover(ctx context.Context, force bool) error {
	_, err := m.call(ctx, func(ctx context.Context) (any, error) {
		if err := m.notCoordinator(ctx); err != nil {
			return nil, err
		}
		if m.state == StateSwitchingOver || m.state == StateFailingOver {
			return nil, fmt.Errorf("%w: another operation is in progress", ErrRefused)
		}
		if err := m.failover(ctx, "failover requested by operator", force); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRefused, err)
		}
		return nil, nil
	})
	return err
}

// SetMaintenance puts a passive node in maintenance (never promoted, its
// failures raise no failover) or takes it out. The active node cannot be
// put in maintenance: switch over first.
func (m *Manager) SetMaintenance(ctx context.Context, name string, on bool) error {
	_, err := m.call(ctx, func(ctx context.Context) (any, error) {
		if err := m.notCoordinator(ctx); err != nil {
			return nil, err
		}
		if m.node(name) == nil {
			return nil, fmt.Errorf("%w: no node named %q", ErrRefused, name)
		}
		if on && name == m.dec.Active {
			return nil, fmt.Errorf("%w: node %s is active; switch over to the other node first", ErrRefused, name)
		}
		d := m.dec
		d.Maintenance = map[string]bool{}
		for k, v := range m.dec.Maintenance {
			d.Maintenance[k] = v
		}
		if on {
			d.Maintenance[name] = true
		} else {
			delete(d.Maintenance, name)
		}
		if err := m.save(d); err != nil {
			return nil, fmt.Errorf("saving the decision: %w", err)
		}
		m.log.Info("maintenance", "node", name, "on", on)
		return nil, nil
	})
	return err
}

// ClearExclusion lifts the exclusion of a node an operator rebuilt (or
// whose errant transactions were dealt with): it may be promoted again.
// The node is checked again at once: still holding transactions of its
// own beyond the promotion point, it is excluded again.
func (m *Manager) ClearExclusion(ctx context.Context, name string) error {
	_, err := m.call(ctx, func(ctx context.Context) (any, error) { return nil, m.clearExclusion(ctx, name) })
	return err
}

// clearExclusion runs in the Run goroutine.
func (m *Manager) clearExclusion(ctx context.Context, name string) error {
	if err := m.notCoordinator(ctx); err != nil {
		return err
	}
	if m.node(name) == nil {
		return fmt.Errorf("%w: no node named %q", ErrRefused, name)
	}
	if _, ok := m.dec.Excluded[name]; !ok {
		return fmt.Errorf("%w: node %s is not excluded", ErrRefused, name)
	}
	d := m.dec
	d.Excluded = maps.Clone(m.dec.Excluded)
	delete(d.Excluded, name)
	if err := m.save(d); err != nil {
		return fmt.Errorf("saving the decision: %w", err)
	}
	m.log.Warn("exclusion cleared by operator", "node", name)
	if n := m.node(name); n.oks > 0 {
		m.checkErrant(ctx, n)
	}
	if _, again := m.dec.Excluded[name]; again {
		return fmt.Errorf("%w: node %s still holds transactions of its own beyond the promotion point: %s", ErrRefused, name, m.dec.Excluded[name])
	}
	return nil
}

// Pause holds all traffic (clients see latency, and an error after
// proxy.hold_timeout) until Resume.
func (m *Manager) Pause(ctx context.Context) error {
	_, err := m.call(ctx, func(context.Context) (any, error) {
		m.paused = true
		m.ctl.Hold()
		m.log.Info("traffic paused by operator")
		return nil, nil
	})
	return err
}

// Resume releases traffic paused by Pause.
func (m *Manager) Resume(ctx context.Context) error {
	_, err := m.call(ctx, func(context.Context) (any, error) {
		m.paused = false
		if m.state == StateActive {
			m.ctl.Resume()
		}
		m.log.Info("traffic resumed by operator")
		return nil, nil
	})
	return err
}

// AbortSwitchover asks the switchover in progress to roll back: the old
// active takes writes again, held statements run there, no client error.
func (m *Manager) AbortSwitchover() error {
	if m.Status().State != StateSwitchingOver.String() {
		return fmt.Errorf("%w: no switchover is in progress", ErrRefused)
	}
	select {
	case m.abort <- struct{}{}:
	default:
	}
	return nil
}

// switchover runs in the Run goroutine. ctx ends when the caller goes away.
func (m *Manager) switchover(ctx context.Context, o SwitchoverOptions) (SwitchoverReport, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	rep := SwitchoverReport{DryRun: o.DryRun}
	if err := m.notCoordinator(ctx); err != nil {
		return rep, err
	}
	refuse := func(format string, args ...any) (SwitchoverReport, error) {
		return rep, fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
	}
	if o.Timeout > m.cfg.MaxSwitchoverTimeout {
		return refuse("timeout %v is over the maximum %v", o.Timeout, m.cfg.MaxSwitchoverTimeout)
	}
	if m.state == StateUndecided {
		return m.choose(ctx, o)
	}
	old := m.node(m.dec.Active)
	rep.From = old.Name
	var target *node
	if o.To == "" {
		target = m.other(old.Name)
	} else {
		target = m.node(o.To)
	}
	switch {
	case target == nil && o.To != "":
		return refuse("no node named %q", o.To)
	case target == nil:
		return refuse("there is no other node")
	case target == old:
		return refuse("node %s is already active", old.Name)
	case m.state != StateActive:
		return refuse("tandem is %s, not active", m.state)
	case m.paused:
		return refuse("traffic is paused; resume first")
	}
	rep.To = target.Name
	if m.dec.Maintenance[target.Name] {
		return refuse("node %s is in maintenance", target.Name)
	}
	// Pre-flight on fresh facts from both nodes.
	// The target first: the active moves on meanwhile, so reading it
	// second gives a set that covers what the target got from it.
	pctx, cancel := context.WithTimeout(ctx, m.cfg.FenceTimeout)
	ft, err := target.ops.Read(pctx)
	if err != nil {
		cancel()
		return refuse("cannot read node %s: %v", target.Name, err)
	}
	fo, err := old.ops.Read(pctx)
	cancel()
	if err != nil {
		return refuse("cannot read the active node %s: %v", old.Name, err)
	}
	target.good.Facts = ft
	// An unsynced target is fine here: the switchover waits until it
	// has applied everything the fenced active wrote.
	if why := m.promotable(target, false, true); why != "" {
		return refuse("%s", why)
	}
	if r := ft.Replica; !r.Configured || r.IORunning != replication.IOYes {
		return refuse("node %s is not replicating from %s (I/O thread %v)", target.Name, old.Name, r.IORunning)
	}
	if target.good.LagKnown && target.good.Lag > m.cfg.LagWarning {
		return refuse("node %s lags %v behind (over %v)", target.Name, target.good.Lag.Round(time.Millisecond), m.cfg.LagWarning)
	}
	if set, errant := replication.Errant(fo.Executed(), ft.Executed()); errant {
		if own := ownBeyond(set, fo.Executed(), ft.ServerID); own != "" {
			return refuse("node %s has transactions of its own the active node lacks (errant): %s", target.Name, own)
		}
	}
	rep.Epoch = m.dec.Epoch + 1
	rep.Plan = []string{
		"hold new statements at the proxy (clients wait, no error)",
		fmt.Sprintf("wait up to %v for running statements and transactions to finish (failure detection goes on; abort with `tandem switchover -abort`)", o.Timeout),
		fmt.Sprintf("fence node %s (read_only=ON)", old.Name),
		fmt.Sprintf("wait until node %s has applied everything node %s wrote", target.Name, old.Name),
		fmt.Sprintf("save the decision: node %s active, epoch %d", target.Name, rep.Epoch),
		fmt.Sprintf("make node %s writable and release the held statements there", target.Name),
	}
	if o.DryRun {
		return rep, nil
	}

	// A stale abort (sent as the previous switchover ended) is dropped.
	select {
	case <-m.abort:
	default:
	}
	actx, acancel := context.WithCancel(ctx)
	defer acancel()
	aborted := make(chan struct{})
	go func() {
		select {
		case <-m.abort:
			close(aborted)
			acancel()
		case <-actx.Done():
		}
	}()
	stopped := func() string {
		select {
		case <-aborted:
			return "aborted by operator"
		default:
		}
		if ctx.Err() != nil {
			return "the operator's request went away: " + context.Cause(ctx).Error()
		}
		return ""
	}

	start := time.Now()
	deadline := start.Add(o.Timeout)
	m.setState(StateSwitchingOver)
	m.emit(Event{Type: EventSwitchoverStarted, From: old.Name, To: target.Name, Reason: "requested by operator"})
	m.ctl.Hold()
	rollback := func(why string, unfence bool) (SwitchoverReport, error) {
		if m.cluster != nil && !unfence && !m.dec.Opened && m.dec.Active == old.Name {
			// Followers hold for the switchover: open the old node to
			// them again.
			if err := m.opened(); err != nil {
				m.log.Error("rollback: cannot release the followers", "error", err)
			}
		}
		if unfence {
			uctx, cancel := context.WithTimeout(context.Background(), m.cfg.FenceTimeout+m.cfg.BarrierTimeout)
			if err := m.makeWritable(uctx, old); err != nil {
				m.log.Error("rollback: cannot make the old active writable again", "node", old.Name, "error", err)
			}
			cancel()
		}
		m.ctl.Resume()
		m.setState(StateActive)
		rep.RolledBack = true
		rep.WritePause = time.Since(start)
		m.emit(Event{Type: EventSwitchoverRollback, From: old.Name, To: target.Name, Reason: why, Duration: rep.WritePause})
		return rep, fmt.Errorf("switchover rolled back: %s", why)
	}
	if m.cluster != nil {
		// Every tandem holds too, and acknowledges once its own
		// sessions are idle: no follower's transaction is cut by the
		// fence.
		hold := m.dec
		hold.Epoch++
		hold.Opened, hold.Time = false, time.Now().UTC()
		hold.Reason = fmt.Sprintf("switchover to %s: traffic held on every tandem", target.Name)
		if err := m.save(hold); err != nil {
			return rollback(fmt.Sprintf("cannot save the held decision: %v", err), false)
		}
		if err := m.barrier(actx); err != nil {
			if why := stopped(); why != "" {
				return rollback(why, false)
			}
			return rollback(err.Error(), false)
		}
		rep.Epoch = m.dec.Epoch + 1
	}
	// Let running statements and transactions end. Checks of the nodes
	// go on meanwhile: a failing active ends the switchover, and the
	// state machine fails over as usual once it is back in charge.
	poll := time.NewTicker(2 * time.Millisecond)
	defer poll.Stop()
	for {
		busy, inTx := m.ctl.Activity()
		if busy == 0 && inTx == 0 {
			break
		}
		if time.Now().After(deadline) {
			return rollback(fmt.Sprintf("%d statements and %d transactions still running after %v", busy, inTx, o.Timeout), false)
		}
		select {
		case <-actx.Done():
			return rollback(stopped(), false)
		case ob := <-m.obs:
			if n, _ := m.count(ob); n == old && !old.healthy {
				return rollback(fmt.Sprintf("node %s failed during the switchover: %v", old.Name, ob.Err), false)
			}
		case <-poll.C:
		}
	}
	m.checkpoint("switchover_drained")
	sctx, cancel := context.WithDeadline(actx, deadline.Add(m.cfg.FenceTimeout))
	defer cancel()
	m.heartbeatsOff.Store(true)
	defer m.heartbeatsOff.Store(false)
	for old.heartbeatBusy.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := old.ops.SetReadOnly(sctx, fo.Flavor, true); err != nil {
		return rollback(fmt.Sprintf("cannot fence node %s: %v", old.Name, err), true)
	}
	m.checkpoint("switchover_fenced")
	final, err := old.ops.Read(sctx)
	if err != nil {
		return rollback(fmt.Sprintf("cannot read node %s's final position: %v", old.Name, err), true)
	}
	if err := target.ops.WaitExecuted(sctx, ft.Flavor, final.Executed(), time.Until(deadline)); err != nil {
		if why := stopped(); why != "" {
			return rollback(why, true)
		}
		return rollback(fmt.Sprintf("node %s did not catch up with %s in time: %v", target.Name, old.Name, err), true)
	}
	if why := stopped(); why != "" {
		return rollback(why, true)
	}
	// The target holds everything the old active wrote: it is synced,
	// whatever it was before.
	unsynced := maps.Clone(m.dec.Unsynced)
	delete(unsynced, target.Name)
	d := Decision{Active: target.Name, Epoch: m.dec.Epoch + 1, Time: time.Now().UTC(),
		Reason: "switchover requested by operator", PromotedAt: final.Executed().String(),
		Excluded: m.dec.Excluded, Maintenance: m.dec.Maintenance, Unsynced: unsynced, Opened: m.cluster == nil}
	if err := m.save(d); err != nil {
		return rollback(fmt.Sprintf("cannot save the decision: %v", err), true)
	}
	m.checkpoint("switchover_saved")
	prev := m.dec
	if err := m.makeWritable(sctx, target); err != nil {
		// Undo the decision: the old node takes writes again.
		prev.Epoch = d.Epoch + 1
		prev.Time, prev.Reason = time.Now().UTC(), "switchover rolled back"
		prev.Active, prev.Opened = old.Name, m.cluster == nil
		if serr := m.save(prev); serr != nil {
			m.log.Error("rollback: cannot save the decision", "error", serr)
		}
		return rollback(fmt.Sprintf("cannot make node %s writable: %v", target.Name, err), true)
	}
	old.tookReadOnly(true)
	if err := m.ctl.Route(target.Name); err != nil {
		m.log.Error("cannot route to the new active", "error", err)
	}
	rep.WritePause = time.Since(start)
	m.setState(StateActive)
	m.record(d)
	// Sessions left on the old node move at their next command; anyone
	// else connected there directly is cut off (read_only already stops
	// their writes).
	kctx, kcancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.FenceTimeout)
	defer kcancel()
	if _, err := old.ops.KillClients(kctx, m.cfg.AdminUser); err != nil {
		m.log.Warn("could not kill the old active's remaining clients", "node", old.Name, "error", err)
	}
	m.emit(Event{Type: EventSwitchoverFinished, From: old.Name, To: target.Name, Reason: d.Reason, Duration: rep.WritePause})
	return rep, nil
}

// choose is an operator's choice of the active node while tandem is
// undecided (no decision saved or recorded, and not exactly one writable
// node): the other node is fenced first, unless it is proven gone.
func (m *Manager) choose(ctx context.Context, o SwitchoverOptions) (SwitchoverReport, error) {
	rep := SwitchoverReport{To: o.To, DryRun: o.DryRun}
	target := m.node(o.To)
	if target == nil {
		return rep, fmt.Errorf("%w: tandem is undecided: name the node to make active (-to NODE)", ErrRefused)
	}
	if why, ok := m.dec.Excluded[target.Name]; ok {
		return rep, fmt.Errorf("%w: node %s is excluded: %s", ErrRefused, target.Name, why)
	}
	if target.oks == 0 {
		return rep, fmt.Errorf("%w: node %s has not answered a check yet", ErrRefused, target.Name)
	}
	var best uint64
	for _, n := range m.nodes {
		if n.hasRecorded && n.recorded.Epoch > best {
			best = n.recorded.Epoch
		}
	}
	rep.Epoch = best + 1
	other := m.other(target.Name)
	rep.Plan = []string{fmt.Sprintf("make node %s active at epoch %d", target.Name, rep.Epoch)}
	if other != nil {
		rep.Plan = append([]string{fmt.Sprintf("fence node %s (read_only=ON) unless it refuses connections", other.Name)}, rep.Plan...)
	}
	if o.DryRun {
		return rep, nil
	}
	if other != nil {
		if err := m.fence(ctx, other, "an operator chose "+target.Name); err != nil && Classify(err) != ReachGone {
			return rep, fmt.Errorf("%w: cannot fence node %s (%v), which may be writable", ErrRefused, other.Name, err)
		}
	}
	m.undecidedLogged = false
	m.adopt(ctx, Decision{Active: target.Name, Epoch: rep.Epoch, Time: time.Now().UTC(), Reason: "chosen by operator", Opened: m.cluster == nil})
	if m.state != StateActive {
		return rep, fmt.Errorf("%w: the decision could not be saved", ErrRefused)
	}
	return rep, nil
}
