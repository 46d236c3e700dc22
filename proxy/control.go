package proxy

// The control surface: the few things a caller (the failover package, via
// cmd) may ask of the data path. Nothing here decides anything; the caller
// owns policy.
//
// At any moment the proxy has one route:
//   - to a node: sessions run their commands there; a session whose node
//     connection is elsewhere moves at its next command (see move.go);
//   - held: new commands and new sessions wait, up to Config.HoldTimeout,
//     for the next route (a switchover or failover in progress); a session
//     inside a transaction may go on with it on its node, so that the
//     transaction can finish;
//   - down: no node may take traffic; commands fail at once with the reason.

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// route is one routing decision. It is immutable once published; changed is
// closed when it is replaced.
type route struct {
	node    *Node  // nil when down
	held    bool   // commands wait for the next route
	reason  string // why the route is down
	changed chan struct{}
	at      time.Time // when it was published
}

// Nodes returns the nodes the proxy knows, in configuration order.
func (p *Proxy) Nodes() []*Node { return p.nodes }

// Active returns the node traffic goes to, or nil when the proxy is down.
func (p *Proxy) Active() *Node { return p.route.Load().node }

func (p *Proxy) node(name string) (*Node, error) {
	for _, n := range p.nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("proxy: no node named %q", name)
}

// setRoute publishes r and wakes everything waiting on the old route.
func (p *Proxy) setRoute(r *route) {
	r.changed = make(chan struct{})
	r.at = time.Now()
	p.routeMu.Lock()
	old := p.route.Swap(r)
	p.routeMu.Unlock()
	if old != nil {
		close(old.changed)
	}
}

// Route sends all traffic to the node called name and releases held
// commands. Sessions connected to another node move there at their next
// command.
func (p *Proxy) Route(name string) error {
	n, err := p.node(name)
	if err != nil {
		return err
	}
	p.setRoute(&route{node: n})
	p.pool.drain("")
	p.log.Info("routing traffic", "node", n.Name, "address", n.Address)
	return nil
}

// Hold makes new commands and sessions wait (up to Config.HoldTimeout) for
// the next call to Route, Resume or Down. Commands already running finish,
// and sessions inside a transaction may go on with it (Activity tells when
// none is left).
func (p *Proxy) Hold() {
	cur := p.route.Load()
	p.setRoute(&route{node: cur.node, held: true, reason: cur.reason})
	p.captureIdle()
	p.log.Info("holding new commands")
}

// Resume releases held commands to the node they were routed to before
// Hold.
func (p *Proxy) Resume() {
	cur := p.route.Load()
	p.setRoute(&route{node: cur.node, reason: cur.reason})
	p.log.Info("resumed")
}

// Down refuses all traffic at once with reason, until the next Route.
func (p *Proxy) Down(reason string) {
	p.setRoute(&route{reason: reason})
	p.pool.drain("")
	p.log.Warn("no node takes traffic", "reason", reason)
}

// Cut interrupts every command running on the node called name: each such
// client gets one error and its session moves at its next command. Used
// when that node has failed (a hung node never answers by itself).
func (p *Proxy) Cut(name string) {
	p.pool.drain(name)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.sessions {
		s.mu.Lock()
		if s.be != nil && s.be.node.Name == name {
			s.cut.Store(true) // before the deadline: see readState
			_ = s.be.conn.SetDeadline(time.Unix(1, 0))
		}
		s.mu.Unlock()
	}
}

// SessionStats counts client sessions.
type SessionStats struct {
	Total         int
	Busy          int            // running a command now
	InTransaction int            // inside a transaction
	ByNode        map[string]int // node connections per node
}

// Sessions returns counts of the open client sessions.
func (p *Proxy) Sessions() SessionStats {
	st := SessionStats{ByNode: map[string]int{}}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.sessions {
		if !s.admitted {
			continue // still logging in
		}
		st.Total++
		if s.busy.Load() {
			st.Busy++
		}
		if s.inTx.Load() {
			st.InTransaction++
		}
		s.mu.Lock()
		if s.be != nil {
			st.ByNode[s.be.node.Name]++
		}
		s.mu.Unlock()
	}
	return st
}

// stuckClient is how long a write to a client may wait before Activity
// stops counting that session as running a command.
const stuckClient = time.Second

// Activity counts sessions running a command and sessions inside a
// transaction. A session whose client has not taken a block of the response
// for over a second (stuckClient) is not counted as running: the node can
// do nothing for it until the client reads, and such a session must not
// hold up a switchover. It is cut after NetWriteTimeout; if its client
// resumes reading, the rest of the response comes from the node the command
// ran on, and its next command moves.
func (p *Proxy) Activity() (busy, inTransaction int) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.sessions {
		if s.busy.Load() && !s.cwr.stuck(now, stuckClient) {
			busy++
		}
		if s.inTx.Load() {
			inTransaction++
		}
	}
	return busy + int(p.capturing.Load()), inTransaction
}

// errNoRoute is wrapped by waitRoute's errors.
var errNoRoute = errors.New("no node takes traffic")

// waitRoute returns the route to use now, waiting while traffic is held,
// at most until deadline.
func (p *Proxy) waitRoute(deadline time.Time) (*route, error) {
	for {
		r := p.route.Load()
		switch {
		case r.held:
		case r.node != nil:
			return r, nil
		default:
			return nil, fmt.Errorf("%w: %s", errNoRoute, r.reason)
		}
		d := time.Until(deadline)
		if d <= 0 {
			return nil, fmt.Errorf("%w: traffic was held for longer than %v", errNoRoute, p.cfg.HoldTimeout)
		}
		t := time.NewTimer(d)
		select {
		case <-r.changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// dialRoute logs in to the routed node. When that node cannot be reached
// (not a refusal by the node itself), it waits, until deadline, for the
// route to change and tries the new node: a session that arrives while a
// failed node is being detected and replaced is served, not refused.
func (p *Proxy) dialRoute(lp *loginParams, deadline time.Time) (*backend, *route, error) {
	for {
		rt, err := p.waitRoute(deadline)
		if err != nil {
			return nil, nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.ConnectTimeout+p.cfg.LoginTimeout)
		be, err := dialBackend(ctx, rt.node, lp, p.timeouts())
		cancel()
		if err == nil {
			return be, rt, nil
		}
		if _, refused := isNodeRefusal(err); refused {
			return nil, rt, err
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-rt.changed:
			t.Stop()
		case <-t.C:
			return nil, rt, fmt.Errorf("node %s: %w", rt.node, err)
		}
	}
}

// openRoute opens a connection to the routed node and reads its greeting,
// for a client that has just connected (see session.handshake). When that
// node cannot be reached it reports it (Config.NodeFailed) and waits, until
// deadline, for the route to change, as dialRoute does. An ERR packet in
// place of the greeting (too many connections) is returned as *sqlError.
func (p *Proxy) openRoute(deadline time.Time) (*pendingLogin, *route, error) {
	for {
		rt, err := p.waitRoute(deadline)
		if err != nil {
			return nil, nil, err
		}
		// openNode bounds the connect (ConnectTimeout) and the greeting
		// (LoginTimeout) itself.
		pl, err := openNode(context.Background(), rt.node, p.timeouts())
		if err == nil {
			return pl, rt, nil
		}
		if _, refused := isNodeRefusal(err); refused {
			return nil, rt, err
		}
		if f := p.cfg.NodeFailed; f != nil {
			f(rt.node.Name)
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-rt.changed:
			t.Stop()
		case <-t.C:
			return nil, rt, fmt.Errorf("cannot reach node %s: %w", rt.node, err)
		}
	}
}
