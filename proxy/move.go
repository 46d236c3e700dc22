package proxy

// Moving a session to another node between two commands: log in again,
// restore schema, settings and autocommit, re-prepare statements and keep
// the client's statement ids. A session caught in a transaction gets one
// error; one holding state that cannot be rebuilt is closed.

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Error codes a moved or interrupted session may see; the README lists them.
const (
	// erTxLost: the transaction was lost with its node. 1213 with SQLSTATE
	// 40001 is the error drivers and frameworks already retry as a whole
	// transaction.
	erTxLost = mysql.ER_LOCK_DEADLOCK
	// erInterrupted: the node failed while this statement ran; it may or
	// may not have taken effect.
	erInterrupted = mysql.ER_QUERY_INTERRUPTED
	// erConnectionKilled: the session holds state tandem cannot rebuild
	// elsewhere, so it is closed.
	erConnectionKilled = 1927 // ER_CONNECTION_KILLED, SQLSTATE 70100
)

// checkRoute runs before each command. It moves the session if the route
// changed or its node connection broke, and reports handled=true if it
// answered (and consumed) the command itself. A non-nil error ends the
// session.
func (s *session) checkRoute(r *relay, cmd byte, length int, now time.Time) (handled bool, err error) {
	rt := s.p.route.Load()
	if rt == s.route && !s.broken {
		if s.p.cfg.IdleCheck <= 0 || now.Sub(s.lastCmd) < s.p.cfg.IdleCheck || s.backendAlive() {
			return false, nil
		}
		s.p.log.Info("node closed an idle session's connection", "session", s.id, "node", s.be.node.Name)
		s.broken = true
	}
	if !s.broken && rt.node == s.be.node {
		if !rt.held {
			// The route changed but names this session's node (resumed,
			// or switched away and back): keep the connection if the
			// node did not close it meanwhile.
			if s.backendAlive() {
				s.route = rt
				s.takeCapture()
				return false, nil
			}
			s.broken = true
		}
		if s.facts.InTransaction && rt.held {
			// A hold lets transactions already open finish (a planned
			// switchover waits for them); only new work waits.
			s.takeCapture()
			return false, nil
		}
	}
	// Waiting: not busy meanwhile, so that a switchover does not wait
	// for sessions that wait for it. busy was set before the route was
	// loaded, so a Hold published after that load sees this session busy.
	deadline := time.Now().Add(s.p.cfg.HoldTimeout)
	for {
		// Not using the node connection either: a capture of the
		// session's state (uservars.go) may read on it meanwhile.
		s.claim.Store(claimIdle)
		s.busy.Store(false)
		rt, err = s.p.waitRoute(deadline)
		s.busy.Store(true)
		s.claimConn()
		if err != nil || s.p.route.Load() == rt {
			break // else held again before we were marked busy: wait again
		}
	}
	if err != nil {
		return true, s.refuse(r, cmd, length, backendError("tandem: %v", err))
	}
	if !s.broken && rt.node == s.be.node {
		if s.backendAlive() {
			s.route = rt
			s.takeCapture()
			return false, nil
		}
		s.broken = true
	}
	if why := cmp.Or(s.relogin, s.facts.Pinned); why != "" {
		e := &sqlError{Code: erConnectionKilled, State: "70100", Message: fmt.Sprintf(
			"tandem: the session had to move from node %s to node %s but holds %s, which cannot be rebuilt; reconnect",
			s.be.node.Name, rt.node.Name, why)}
		_ = s.refuse(r, cmd, length, e)
		return true, e
	}
	// The session's state on the old node, read before the move: by a
	// capture when traffic was held, else now if the connection lives.
	c := s.takeCapture()
	if c == nil && s.facts.needsCapture() && !s.broken && !s.cut.Load() && s.backendAlive() {
		st := s.readState()
		c = &st
	}
	if c != nil && c.err == nil {
		s.facts.LastInsertID = c.lastID
	}
	var vars []string
	if s.facts.UserVars {
		if c != nil && c.err == nil {
			vars = c.vars
		} else {
			why := "the node failed"
			if c != nil {
				why = c.err.Error()
			}
			e := &sqlError{Code: erConnectionKilled, State: "70100", Message: fmt.Sprintf(
				"tandem: the session had to move from node %s to node %s but holds user variables set from a query, which cannot be read back (%s); reconnect",
				s.be.node.Name, rt.node.Name, why)}
			_ = s.refuse(r, cmd, length, e)
			return true, e
		}
	}
	from, to, inTx := s.be.node, rt.node, s.facts.InTransaction
	if rt, err = s.reattach(time.Now().Add(s.p.cfg.HoldTimeout), vars); err != nil {
		s.p.log.Warn("could not move session", "session", s.id, "error", err)
		s.p.cfg.Observer.SessionMoved(false)
		e, refused := isNodeRefusal(err)
		if !refused {
			e = backendError("tandem: %v", err)
		} else {
			// The node refused the login this session made before: the
			// account changed since (a password set by SET PASSWORD or
			// ALTER USER, a lock, a drop). The client did not log in
			// now; its session ends as any session that cannot move.
			e = &sqlError{Code: erConnectionKilled, State: "70100", Message: fmt.Sprintf(
				"tandem: the session had to move from node %s to node %s, which refused its login again (%d: %s): the account changed since the session logged in; reconnect",
				from.Name, to.Name, e.Code, e.Message)}
		}
		return true, s.refuse(r, cmd, length, e)
	}
	s.route = rt
	r.br.Reset(s.be.rw)
	r.bw.Reset(s.be.rw)
	s.p.log.Debug("session moved", "session", s.id, "from", from.Name, "to", rt.node.Name, "in_transaction", inTx)
	s.p.cfg.Observer.SessionMoved(true)
	if inTx {
		return true, s.refuse(r, cmd, length, &sqlError{Code: erTxLost, State: "40001", Message: fmt.Sprintf(
			"tandem: the transaction was lost when traffic moved from node %s to node %s; retry the transaction", from.Name, rt.node.Name)})
	}
	return false, nil
}

// refuse consumes the current command and answers it with e, unless the
// command is one that has no response.
func (s *session) refuse(r *relay, cmd byte, length int, e *sqlError) error {
	if err := s.discardClient(length); err != nil {
		return err
	}
	if cmd == mysql.COM_STMT_CLOSE || cmd == mysql.COM_STMT_SEND_LONG_DATA {
		return nil
	}
	return queueErr(r.cw, s.replySeq(), e)
}

// backendAlive peeks, without blocking, whether the node closed the idle
// connection (or sent something unasked, such as a "connection killed"
// error). Any doubt counts as alive: the command then runs and fails as
// usual.
func (s *session) backendAlive() bool { return s.be.idleAndOpen() }

// reattach logs in to the routed node (waiting, until deadline, for a new
// route if it is unreachable) and rebuilds the session there, then replaces
// the node connection. On error the old connection is left as it was.
func (s *session) reattach(deadline time.Time, vars []string) (*route, error) {
	be, rt, err := s.p.dialRoute(s.loginParams(), deadline)
	if err != nil {
		return nil, err
	}
	if err := s.restore(be, vars); err != nil {
		return nil, err
	}
	if vars != nil && len(s.facts.Settings)+len(vars) <= maxSettings {
		// Now known by value: replayed like any SET from here on,
		// on a failover too.
		s.facts.Settings = append(s.facts.Settings, vars...)
		s.facts.UserVars = false
	}
	return rt, nil
}

// restore replays the session's state on be, then vars (user variables
// read on the old node), and makes it the session's node connection.
func (s *session) restore(be *backend, vars []string) error {
	_ = be.conn.SetDeadline(time.Now().Add(s.p.cfg.LoginTimeout))
	sc := newSyncConn(be)
	fail := func(err error) error {
		be.close()
		return err
	}
	for _, stmt := range s.facts.Settings {
		if err := sc.exec(stmt); err != nil {
			return fail(fmt.Errorf("replaying %q: %w", stmt, err))
		}
	}
	for _, stmt := range vars {
		if err := sc.exec(stmt); err != nil {
			return fail(fmt.Errorf("restoring a user variable: %w", err))
		}
	}
	if s.facts.LastInsertID != 0 {
		if err := sc.exec("SET last_insert_id = " + strconv.FormatUint(s.facts.LastInsertID, 10)); err != nil {
			return fail(fmt.Errorf("restoring LAST_INSERT_ID(): %w", err))
		}
	}
	if !s.facts.Autocommit {
		if err := sc.exec("SET autocommit = 0"); err != nil {
			return fail(err)
		}
	}
	stmts := make(map[uint32]uint32, len(s.facts.Prepared))
	for clientID, text := range s.facts.Prepared {
		id, crc, err := sc.prepare(text)
		if err != nil {
			return fail(fmt.Errorf("re-preparing statement %d: %w", clientID, err))
		}
		stmts[clientID] = id
		s.reprepared(clientID, crc)
	}
	if sc.br.Buffered() > 0 {
		return fail(fmt.Errorf("%w: node sent more than was asked while restoring a session", errNodeProtocol))
	}
	_ = be.conn.SetDeadline(time.Time{})
	be.status = sc.status
	s.mu.Lock()
	old := s.be
	s.be = be
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
	s.stmts = stmts
	s.broken = false
	s.cut.Store(false)
	s.facts.InTransaction = false
	s.inTx.Store(false)
	return nil
}

// loginParams are the session's credentials and options for a node login.
func (s *session) loginParams() *loginParams {
	return &loginParams{User: s.user, Password: s.pass, Stage1: s.stage1, DB: s.facts.Schema, Caps: s.caps &^ mysql.CLIENT_SSL,
		ExtCaps: s.extCaps, Collation: s.facts.Collation, MaxPacket: 1<<30 - 1, Attrs: s.attrs}
}

// syncConn runs tandem's own statements on a node connection that no client
// uses yet.
type syncConn struct {
	rw     io.ReadWriter // be.rw: compressed when the link is
	br     *bufio.Reader
	bw     *bufio.Writer
	caps   uint32
	status uint16
}

// newSyncConn returns a syncConn on be's connection.
func newSyncConn(be *backend) *syncConn {
	rw := be.stream()
	return &syncConn{rw: rw, br: bufio.NewReaderSize(rw, 4096), bw: bufio.NewWriterSize(rw, 4096), caps: be.caps}
}

func (c *syncConn) roundTrip(cmd byte, text string) ([]byte, error) {
	body := append([]byte{cmd}, text...)
	if cmd == mysql.COM_QUERY {
		body = appendQuery(nil, c.caps, text)
	}
	newCommandOn(c.rw)
	if _, err := writePacket(c.bw, 0, body); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	p, _, err := readPacket(c.br, nil, 1<<20)
	for err == nil && isProgress(p) { // MARIADB_CLIENT_PROGRESS
		p, _, err = readPacket(c.br, nil, 1<<20)
	}
	if err != nil {
		return nil, err
	}
	if len(p) > 0 && p[0] == 0xff {
		e, _ := parseErr(p)
		return nil, &e
	}
	return p, nil
}

// exec runs a statement that returns no rows.
func (c *syncConn) exec(stmt string) error {
	p, err := c.roundTrip(mysql.COM_QUERY, stmt)
	if err != nil {
		return err
	}
	if len(p) == 0 || p[0] != 0 {
		return fmt.Errorf("%w: %q returned rows", errNodeProtocol, stmt)
	}
	c.status = okStatus(p, c.caps)
	return nil
}

// prepare prepares text and returns the node's statement id and the
// checksum of its column definitions (cachedmeta.go).
func (c *syncConn) prepare(text string) (id, crc uint32, err error) {
	p, err := c.roundTrip(mysql.COM_STMT_PREPARE, text)
	if err != nil {
		return 0, 0, err
	}
	if len(p) < 12 || p[0] != 0 {
		return 0, 0, fmt.Errorf("%w: bad COM_STMT_PREPARE response", errNodeProtocol)
	}
	id = binary.LittleEndian.Uint32(p[1:])
	for i, n := range []uint16{binary.LittleEndian.Uint16(p[7:]), binary.LittleEndian.Uint16(p[5:])} {
		for range n {
			def, _, err := readPacket(c.br, nil, 1<<20)
			if err != nil {
				return 0, 0, err
			}
			if i == 1 {
				var first byte
				if len(def) > 0 {
					first = def[0]
				}
				if len(def) >= relayBufSize { // as the relay sees it
					def = nil
				}
				crc = metaCRC(crc, def, first)
			}
		}
		if n > 0 && c.caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
			if _, _, err := readPacket(c.br, nil, 1<<20); err != nil {
				return 0, 0, err
			}
		}
	}
	return id, crc, nil
}
