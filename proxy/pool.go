package proxy

// Pooled node sessions (Config.Pool): a client whose user is pooled gets a
// node session that is already logged in, left by an earlier client of the
// same account, instead of a new node connection and login.
//
// A session is pooled when its client quits cleanly: tandem resets it with
// COM_CHANGE_USER to the same account, schema and collation (the node rolls
// back any transaction, releases table locks and GET_LOCK locks, drops
// temporary tables, prepared statements and user variables, and sets the
// session variables back to their global values), and keeps it idle. Its
// key is the account as the node sees it: user, credential (password or
// stage1) and the capability flags negotiated with the node, which must be
// the same for the next client. A client that wants another schema or
// collation gets a second COM_CHANGE_USER at checkout. A checked out
// session is validated with one non-blocking peek (the node closed it, or
// sent something unasked: it is dropped); the reset's OK already proved it
// alive when it was pooled.
//
// Only sessions of the routed node are handed out or kept: Route, Down and
// Cut drain the others, and a put or get checks the route under the
// pool's lock, which a drain takes after publishing the new route.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// PoolConfig configures pooled node sessions. Pooling is off unless Users
// names at least one user.
type PoolConfig struct {
	// Users lists the users whose node sessions are pooled; "*" pools
	// every user. Any user tandem checks the password of can be pooled:
	// a [[user]] (Config.Users) or a mysql_native_password node account
	// (Config.Accounts). Default: none (pooling off).
	Users []string
	// Size is the most idle sessions kept per account (user, credential
	// and capability flags): a session returned beyond it is closed.
	// Default 16.
	Size int
	// MinIdle is how many idle sessions per account tandem opens ahead
	// on the active node, once a client of that account has logged in
	// (tandem learns the credential only then), and again after a
	// failover or switchover. Default 0: sessions are pooled only as
	// clients leave them.
	MinIdle int
	// IdleTimeout closes a session that stayed idle in the pool this
	// long. Default 60s (well under MariaDB's wait_timeout).
	IdleTimeout time.Duration
	// MaxAge closes a node session this old rather than pool it or hand
	// it out. Default 1h.
	MaxAge time.Duration
}

func (c *PoolConfig) withDefaults() {
	orDefault(&c.Size, 16)
	orDefault(&c.IdleTimeout, 60*time.Second)
	orDefault(&c.MaxAge, time.Hour)
}

func (c *PoolConfig) validate() error {
	switch {
	case c.Size < 0:
		return fmt.Errorf("Pool.Size: %d is negative", c.Size)
	case c.MinIdle < 0:
		return fmt.Errorf("Pool.MinIdle: %d is negative", c.MinIdle)
	case c.MinIdle > c.Size && c.Size > 0 || c.MinIdle > 16 && c.Size == 0:
		return fmt.Errorf("Pool.MinIdle: %d is more than Pool.Size", c.MinIdle)
	case c.IdleTimeout < 0:
		return fmt.Errorf("Pool.IdleTimeout: %v is negative", c.IdleTimeout)
	case c.MaxAge < 0:
		return fmt.Errorf("Pool.MaxAge: %v is negative", c.MaxAge)
	}
	for i, u := range c.Users {
		if u == "" {
			return fmt.Errorf("Pool.Users[%d]: empty user name", i)
		}
	}
	return nil
}

// poolKey is an account as the node sees it.
type poolKey struct {
	user string
	cred string // password, or stage1
	caps uint32
	ext  uint32 // MariaDB's extended capabilities
}

// pooledSession is an idle, reset node session.
type pooledSession struct {
	be        *backend
	db        string
	collation byte
	since     time.Time // idle since
}

// pool holds the idle node sessions. Its methods are safe for concurrent
// use; nil means pooling is off.
type pool struct {
	p     *Proxy
	cfg   PoolConfig
	all   bool
	users map[string]bool

	mu      sync.Mutex
	idle    map[poolKey][]*pooledSession // most recently pooled last
	count   int
	known   map[poolKey]*loginParams // for MinIdle
	filling map[poolKey]int          // sessions being opened ahead
	greet   map[*Node]*greeting      // the last greeting each node sent
	closed  bool
	stats   PoolStats

	stop chan struct{}
	wg   sync.WaitGroup
}

// PoolStats counts the pool's work since the proxy started.
type PoolStats struct {
	Idle    int // idle sessions now
	Hits    int // clients given a pooled session
	Misses  int // pooled clients that found none and logged in afresh
	Resets  int // sessions reset and pooled as their client left
	Evicted int // closed for IdleTimeout, MaxAge, Size or a failed check
	Drained int // closed because their node stopped being the active one
	Opened  int // opened ahead (MinIdle)
}

func newPool(p *Proxy, cfg PoolConfig) *pool {
	if len(cfg.Users) == 0 {
		return nil
	}
	cfg.withDefaults()
	pl := &pool{p: p, cfg: cfg, users: map[string]bool{}, idle: map[poolKey][]*pooledSession{},
		known: map[poolKey]*loginParams{}, filling: map[poolKey]int{}, greet: map[*Node]*greeting{},
		stop: make(chan struct{})}
	for _, u := range cfg.Users {
		pl.users[u] = true
		if u == "*" {
			pl.all = true
		}
	}
	pl.wg.Add(1)
	go pl.janitor()
	return pl
}

// PoolStats returns the pool's counters (zero when pooling is off).
func (p *Proxy) PoolStats() PoolStats {
	pl := p.pool
	if pl == nil {
		return PoolStats{}
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	st := pl.stats
	st.Idle = pl.count
	return st
}

func (pl *pool) pooled(user string) bool {
	return pl != nil && (pl.all || pl.users[user])
}

func keyOf(lp *loginParams) poolKey {
	cred := lp.Password
	if lp.Stage1 != nil {
		cred = "\x00stage1:" + string(lp.Stage1)
	}
	return poolKey{user: lp.User, cred: cred, caps: lp.Caps, ext: lp.ExtCaps}
}

// noteGreeting remembers the greeting a node sent: tandem greets clients
// with its version, capabilities and collation while pooling is on.
func (pl *pool) noteGreeting(n *Node, g *greeting) {
	if pl == nil {
		return
	}
	c := *g
	c.Salt = nil
	pl.mu.Lock()
	pl.greet[n] = &c // the latest: a node upgraded meanwhile says so
	pl.mu.Unlock()
}

// greeting returns what to greet a new client with when tandem greets it
// itself: the remembered greeting of the routed node, and that route. It
// returns nil when pooling is off, traffic is held or down, or the node
// has not been seen yet (the client is then greeted as without pooling).
func (pl *pool) greeting() (*greeting, *route) {
	if pl == nil {
		return nil, nil
	}
	rt := pl.p.route.Load()
	if rt.node == nil || rt.held {
		return nil, nil
	}
	pl.mu.Lock()
	g := pl.greet[rt.node]
	pl.mu.Unlock()
	return g, rt
}

// pooledGreetID is the connection id a client greeted by tandem itself
// gets: the session's id with the top bit set, far from the node thread
// ids its node counts up from 1, so that KILL by it reaches the session
// (Proxy.killTarget refuses an id that also names a node thread).
func pooledGreetID(id uint32) uint32 { return id | 1<<31 }

// get returns an idle session for lp on rt's node, set to lp's schema and
// collation, or nil when there is none (or rt is no longer the route).
func (pl *pool) get(rt *route, lp *loginParams) *backend {
	key := keyOf(lp)
	now := time.Now()
	for {
		pl.mu.Lock()
		if pl.closed || pl.p.route.Load() != rt {
			pl.mu.Unlock()
			return nil
		}
		pl.learn(key, lp)
		list := pl.idle[key]
		i := len(list) - 1
		for j := i; j >= 0; j-- { // the newest with the same schema and collation
			if list[j].db == lp.DB && list[j].collation == lp.Collation {
				i = j
				break
			}
		}
		if i < 0 {
			pl.stats.Misses++
			pl.mu.Unlock()
			return nil
		}
		e := list[i]
		pl.idle[key] = append(list[:i], list[i+1:]...)
		pl.count--
		pl.mu.Unlock()

		be := e.be
		ok := be.node == rt.node && now.Sub(be.born) < pl.cfg.MaxAge && pl.alive(be)
		// A session whose account the node last checked longer ago than
		// tandem's accounts may be stale is checked again.
		stale := now.Sub(be.authed) >= pl.p.cfg.AccountsRefresh
		if ok && (stale || e.db != lp.DB || e.collation != lp.Collation) {
			status, err := be.changeUser(lp, pl.p.cfg.LoginTimeout)
			be.status, be.authed = status, time.Now()
			ok = err == nil
		}
		if !ok {
			be.close()
			pl.mu.Lock()
			pl.stats.Evicted++
			pl.mu.Unlock()
			continue
		}
		pl.mu.Lock()
		pl.stats.Hits++
		pl.mu.Unlock()
		return be
	}
}

// learn remembers lp as an account to open sessions ahead for (MinIdle).
// pl.mu is held.
func (pl *pool) learn(key poolKey, lp *loginParams) {
	if pl.known[key] == nil && pl.cfg.MinIdle > 0 {
		c := *lp
		pl.known[key] = &c
	}
}

// alive peeks, without blocking, whether the node closed the idle session
// or sent something unasked.
func (pl *pool) alive(be *backend) bool { return be.idleAndOpen() }

// put resets be, whose client has quit between two commands, and pools it
// if its node is still the routed one and its account has room; otherwise
// it closes be. It closes client, the quit client's connection, once the
// reset is on its way: the node resets the session meanwhile, so that its
// answer is usually there to read (no wait for the network) when tandem
// is done with the client.
func (pl *pool) put(be *backend, lp *loginParams, client io.Closer) {
	done := false
	closeClient := func() {
		if !done {
			done = true
			_ = client.Close()
		}
	}
	defer closeClient()
	pl.mu.Lock()
	closed := pl.closed
	pl.mu.Unlock()
	if closed {
		be.close()
		return
	}
	if time.Since(be.born) >= pl.cfg.MaxAge {
		be.close()
		pl.count1(&pl.stats.Evicted)
		return
	}
	var status uint16
	r, err := startReset(be, lp, pl.p.cfg.AccountsRefresh, pl.p.cfg.LoginTimeout)
	closeClient()
	if err == nil {
		status, err = r.finish()
	}
	if err != nil {
		pl.p.log.Debug("pool: reset failed; closing the node session", "node", be.node.Name, "error", err)
		be.close()
		pl.count1(&pl.stats.Evicted)
		return
	}
	be.status = status
	pl.add(be, lp, &pl.stats.Resets)
}

// errRoleSet: the reset session still has a role. Neither
// COM_RESET_CONNECTION nor COM_CHANGE_USER undoes a SET ROLE on MariaDB
// 10.11, so a session with a role is closed rather than pooled.
var errRoleSet = errors.New("the session has a role set (SET ROLE or a default role)")

// resetSession resets be for a next client with lp's schema and
// collation, within timeout, and returns the status flags of the last OK.
// When the node last checked the account more than recheck ago (or lp has
// no schema, which COM_RESET_CONNECTION would keep): COM_CHANGE_USER to the
// same account, so the node checks the credential and the account again
// (a password changed, an account locked or dropped since: the session is
// closed). Otherwise COM_RESET_CONNECTION, which keeps the schema and
// takes the character set back to the last login's. Then, in the same
// write as COM_RESET_CONNECTION, a query asking whether a role is set and
// whether the schema is lp's; COM_INIT_DB follows only if it is not.
func resetSession(be *backend, lp *loginParams, recheck, timeout time.Duration) (uint16, error) {
	r, err := startReset(be, lp, recheck, timeout)
	if err != nil {
		return 0, err
	}
	return r.finish()
}

// pendingReset is a session reset sent to the node whose answers are still
// to be read (finish): the node works on it while tandem does something
// else (pool.put closes the client's socket meanwhile).
type pendingReset struct {
	be     *backend
	db     string
	q      string
	status uint16 // of the COM_CHANGE_USER or COM_RESET_CONNECTION, when already read
	full   bool   // reset by COM_CHANGE_USER
	quick  bool   // COM_RESET_CONNECTION's OK is still to be read
	br     *bufio.Reader
}

// startReset sends the reset resetSession describes: everything but
// reading the answers to the last write. The COM_CHANGE_USER exchange, and
// on a compressed link the COM_RESET_CONNECTION one, happen here. The
// connection's deadline is set until finish.
func startReset(be *backend, lp *loginParams, recheck, timeout time.Duration) (*pendingReset, error) {
	r := &pendingReset{be: be, db: lp.DB}
	r.full = lp.DB == "" || time.Since(be.authed) >= recheck
	if r.full {
		st, err := be.changeUser(lp, timeout)
		if err != nil {
			return nil, err
		}
		be.authed, r.status = time.Now(), st
	}
	_ = be.conn.SetDeadline(time.Now().Add(timeout))
	r.q = "SELECT CURRENT_ROLE() IS NULL, DATABASE() IS NULL"
	if lp.DB != "" {
		r.q = "SELECT CURRENT_ROLE() IS NULL, DATABASE() <=> " + quoteString(lp.DB)
	}
	// On a compressed link each command is its own exchange (the
	// compressed packets' numbers start again at every command), so the
	// reset and the query are not sent together there.
	rw := be.stream()
	_, compressed := rw.(*compressedIO)
	r.br = bufio.NewReaderSize(rw, 512)
	var b []byte
	if !r.full {
		b = appendFrame(b, []byte{mysql.COM_RESET_CONNECTION})
		if compressed {
			newCommandOn(rw)
			if _, err := rw.Write(b); err != nil {
				return nil, r.fail(err)
			}
			st, err := readOK(r.br, be.caps)
			if err != nil {
				return nil, r.fail(err)
			}
			r.status, b = st, nil
		} else {
			r.quick = true
		}
	}
	newCommandOn(rw)
	if _, err := rw.Write(appendFrame(b, appendQuery(nil, be.caps, r.q))); err != nil {
		return nil, r.fail(err)
	}
	return r, nil
}

// fail clears the deadline startReset set and returns err.
func (r *pendingReset) fail(err error) error {
	_ = r.be.conn.SetDeadline(time.Time{})
	return err
}

// finish reads and checks the answers to the reset and returns the status
// flags of the last OK.
func (r *pendingReset) finish() (uint16, error) {
	be, br := r.be, r.br
	defer be.conn.SetDeadline(time.Time{})
	if r.quick {
		st, err := readOK(br, be.caps)
		if err != nil {
			return 0, err
		}
		r.status = st
	}
	// Two columns, one row, then EOF or OK.
	var row []byte
	eof := 2
	if be.caps&mysql.CLIENT_DEPRECATE_EOF != 0 {
		eof = 1
	}
	for i := range 4 + eof {
		p, _, err := readPacket(br, nil, 1<<16)
		if err != nil {
			return 0, err
		}
		if len(p) > 0 && p[0] == 0xff {
			e, _ := parseErr(p)
			return 0, &e
		}
		// The column count; with MariaDB's metadata cache, a second byte
		// says the definitions follow (always, for a text query).
		if i == 0 && (len(p) == 0 || p[0] != 2 || len(p) != 1 && (len(p) != 2 || be.extCaps&mariadbClientCacheMetadata == 0)) {
			return 0, fmt.Errorf("%w: unexpected answer to %q", errNodeProtocol, r.q)
		}
		if i == 2+eof {
			row = p
		}
	}
	if br.Buffered() > 0 {
		return 0, fmt.Errorf("%w: node sent more than a session reset asked", errNodeProtocol)
	}
	switch {
	case string(row) == "\x011\x011":
		return r.status, nil
	case len(row) > 1 && row[1] == '0':
		return 0, errRoleSet
	case !r.full: // the schema changed where tandem did not look
		rw := be.stream()
		newCommandOn(rw)
		if _, err := writeFrame(rw, append([]byte{mysql.COM_INIT_DB}, r.db...)); err != nil {
			return 0, err
		}
		return readOK(br, be.caps)
	}
	return 0, fmt.Errorf("%w: the session's schema is not %q after COM_CHANGE_USER (%q)", errNodeProtocol, r.db, row)
}

// readOK reads an OK packet and returns its status flags; an ERR is
// returned as *sqlError.
func readOK(br *bufio.Reader, caps uint32) (uint16, error) {
	p, _, err := readPacket(br, nil, 1<<16)
	if err != nil {
		return 0, err
	}
	switch {
	case len(p) > 0 && p[0] == 0xff:
		e, _ := parseErr(p)
		return 0, &e
	case len(p) == 0 || p[0] != 0:
		return 0, fmt.Errorf("%w: unexpected answer to a session reset", errNodeProtocol)
	}
	return okStatus(p, caps), nil
}

func writeFrame(w io.Writer, payload []byte) (int, error) { return w.Write(appendFrame(nil, payload)) }

// appendFrame appends payload (under 16 MiB) framed as a packet with
// sequence id 0.
func appendFrame(b, payload []byte) []byte {
	b = append(b, byte(len(payload)), byte(len(payload)>>8), byte(len(payload)>>16), 0)
	return append(b, payload...)
}

// add pools be (reset, idle, logged in with lp) and counts it in *counter,
// or closes it.
func (pl *pool) add(be *backend, lp *loginParams, counter *int) {
	key := keyOf(lp)
	pl.mu.Lock()
	pl.learn(key, lp)
	rt := pl.p.route.Load()
	if pl.closed || rt.node != be.node || rt.held || len(pl.idle[key]) >= pl.cfg.Size {
		if !pl.closed && rt.node == be.node && !rt.held {
			pl.stats.Evicted++
		} else {
			pl.stats.Drained++
		}
		pl.mu.Unlock()
		be.close()
		return
	}
	pl.idle[key] = append(pl.idle[key], &pooledSession{be: be, db: lp.DB, collation: lp.Collation, since: time.Now()})
	pl.count++
	*counter++
	pl.mu.Unlock()
}

func (pl *pool) count1(c *int) {
	pl.mu.Lock()
	*c++
	pl.mu.Unlock()
}

// remove takes the idle sessions gone(e) says out of the pool, counts them
// in *counter, and returns their node connections for the caller to close
// (after the lock).
func (pl *pool) remove(counter *int, gone func(e *pooledSession) bool) []*backend {
	var out []*backend
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for key, list := range pl.idle {
		kept := list[:0]
		for _, e := range list {
			if gone(e) {
				out = append(out, e.be)
				continue
			}
			kept = append(kept, e)
		}
		if len(kept) == 0 {
			delete(pl.idle, key)
		} else {
			pl.idle[key] = kept
		}
	}
	pl.count -= len(out)
	*counter += len(out)
	return out
}

// drain closes the idle sessions of every node but the routed one (all of
// them when traffic is down), and those of the node called cut. Route,
// Down and Cut call it after publishing the new route.
func (pl *pool) drain(cut string) {
	if pl == nil {
		return
	}
	rt := pl.p.route.Load()
	out := pl.remove(&pl.stats.Drained, func(e *pooledSession) bool {
		return e.be.node != rt.node || e.be.node.Name == cut
	})
	for _, be := range out {
		be.close()
	}
	if len(out) > 0 {
		pl.p.log.Info("pool: drained idle node sessions", "count", len(out), "active", rt.node)
	}
}

// close closes every idle session and stops the janitor (Shutdown).
func (pl *pool) close() {
	if pl == nil {
		return
	}
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return
	}
	pl.closed = true
	close(pl.stop)
	var out []*backend
	for _, list := range pl.idle {
		for _, e := range list {
			out = append(out, e.be)
		}
	}
	pl.idle, pl.count = map[poolKey][]*pooledSession{}, 0
	pl.mu.Unlock()
	for _, be := range out {
		be.close()
	}
	pl.wg.Wait()
}

// janitor evicts idle sessions past IdleTimeout or MaxAge or closed by
// the node, and opens
// sessions ahead (MinIdle), until close.
func (pl *pool) janitor() {
	defer pl.wg.Done()
	tick := min(pl.cfg.IdleTimeout, pl.cfg.MaxAge) / 4
	tick = max(min(tick, time.Second), 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-pl.stop:
			return
		case <-t.C:
		}
		pl.evict(time.Now())
		pl.fill()
	}
}

// evict closes the idle sessions that are past IdleTimeout or MaxAge at
// now, and those the node closed (a peek each: a node that died, or its
// wait_timeout).
func (pl *pool) evict(now time.Time) {
	out := pl.remove(&pl.stats.Evicted, func(e *pooledSession) bool {
		return now.Sub(e.since) >= pl.cfg.IdleTimeout || now.Sub(e.be.born) >= pl.cfg.MaxAge || !pl.alive(e.be)
	})
	for _, be := range out {
		be.close()
	}
}

// fill opens sessions ahead on the routed node for each account seen, up
// to MinIdle idle ones; each opens in its own goroutine.
func (pl *pool) fill() {
	if pl.cfg.MinIdle == 0 {
		return
	}
	rt := pl.p.route.Load()
	if rt.node == nil || rt.held {
		return
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return
	}
	for key, lp := range pl.known {
		for n := len(pl.idle[key]) + pl.filling[key]; n < pl.cfg.MinIdle; n++ {
			pl.filling[key]++
			pl.wg.Add(1)
			go pl.open(key, lp)
		}
	}
}

// open logs in one session for lp on the routed node and pools it.
func (pl *pool) open(key poolKey, lp *loginParams) {
	defer pl.wg.Done()
	be, _, err := pl.p.dialRoute(lp, time.Now().Add(pl.p.cfg.ConnectTimeout))
	pl.mu.Lock()
	pl.filling[key]--
	if err != nil {
		if _, refused := isNodeRefusal(err); refused {
			delete(pl.known, key) // the account changed: wait for its next client
		}
		pl.mu.Unlock()
		pl.p.log.Debug("pool: opening a session ahead failed", "user", lp.User, "error", err)
		return
	}
	pl.mu.Unlock()
	pl.add(be, lp, &pl.stats.Opened)
}

// login gives a client of the pooled user (tandem greeted it itself) a
// node session on the routed node: an idle pooled one, else a new login.
func (pl *pool) login(lp *loginParams, deadline time.Time) (*backend, *route, error) {
	if pl.pooled(lp.User) {
		rt, err := pl.p.waitRoute(deadline)
		if err != nil {
			return nil, nil, err
		}
		if be := pl.get(rt, lp); be != nil {
			return be, rt, nil
		}
	}
	// As a client greeted with a node connection would: a node that
	// cannot be reached is reported (Config.NodeFailed) and the login
	// waits for the route to change.
	o, rt, err := pl.p.openRoute(deadline)
	if err != nil {
		return nil, rt, err
	}
	pl.noteGreeting(o.node, o.g)
	be, err := o.login(lp, pl.p.cfg.LoginTimeout)
	if _, refused := isNodeRefusal(err); err != nil && !refused {
		return pl.p.dialRoute(lp, deadline)
	}
	return be, rt, err
}

// release hands the session's node connection to the pool, reset, when the
// client quit cleanly (err is nil) between two commands, its user is
// pooled and the connection still follows the route. It reports false when
// the caller must close the node connection itself.
func (s *session) release(err error) bool {
	pl := s.p.pool
	if err != nil || !pl.pooled(s.user) || s.relogin != "" || s.broken || s.cut.Load() {
		return false
	}
	s.claimConn() // a capture (Hold) may be reading the session's state
	rt := s.p.route.Load()
	if rt != s.route || rt.held || s.be.node != rt.node || s.closed.Swap(true) {
		s.claim.Store(claimIdle)
		return false
	}
	// closed is set: Cut, KILL and Shutdown no longer reach the session;
	// detach its node connection so that no one else sees it.
	s.mu.Lock()
	be := s.be
	s.be = nil
	client := s.client
	s.mu.Unlock()
	pl.put(be, s.loginParams(), client)
	return true
}
