package proxy

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// The connection phase, in one place: the greeting a client gets, TLS, the
// one authentication routine that checks a client's credentials (a
// handshake response or a COM_CHANGE_USER), and COM_CHANGE_USER. The node
// side of a login is backend.go. The packets themselves are encoded and decoded in
// packet.go, next to the framing; conn.go holds only the command phase.

// handshakerIdle is how long a handshake goroutine waits for another
// connection before it ends.
const handshakerIdle = time.Second

// startHandshake runs conn's handshake (serveConn) on a handshake goroutine
// that is waiting for one, else on a new one. Handshake goroutines are
// reused: a busy listener then neither starts a goroutine per connection
// nor grows a new stack to the depth of a handshake (dialing, hashing) each
// time. The session itself runs on a goroutine of its own (serveConn).
func (p *Proxy) startHandshake(conn net.Conn) {
	select {
	case p.handshakers <- conn:
	default:
		p.wg.Add(1)
		go p.handshaker(conn)
	}
}

// handshaker runs handshakes, starting with conn's, until it has waited
// handshakerIdle for a new one or the proxy shuts down.
func (p *Proxy) handshaker(conn net.Conn) {
	defer p.wg.Done()
	t := time.NewTimer(handshakerIdle)
	defer t.Stop()
	for {
		p.serveConn(conn)
		t.Reset(handshakerIdle)
		select {
		case conn = <-p.handshakers:
		case <-t.C:
			return
		case <-p.closed:
			return
		}
	}
}

// handshake greets the client, authenticates it, logs in to the active node
// and answers OK. Any failure has already been reported to the client.
//
// tandem opens the node connection first and greets the client with that
// node thread's id and scramble: the id the client's driver reports is then
// its CONNECTION_ID(), and the client's scramble response is computed over
// the very salt the node will check.
func (s *session) handshake() error {
	p := s.p
	// With pooling on, tandem greets the client itself, with what the
	// routed node's greeting said (pool.go); else it opens the node
	// connection first.
	g, rt := p.pool.greeting()
	var pl *pendingLogin
	if g != nil {
		s.greetID = pooledGreetID(s.id)
	} else {
		// Waiting for a route (a failover under way) may take half the
		// handshake's time: the rest is for the client and the login.
		var err error
		pl, rt, err = p.openRoute(s.accepted.Add(min(p.cfg.HoldTimeout, p.cfg.HandshakeTimeout/2)))
		if err != nil {
			e, refused := isNodeRefusal(err)
			if !refused {
				e = backendError("tandem: %v", err)
			}
			_ = writeRaw(s.cio, 0, appendErr(nil, e))
			return e
		}
		defer func() {
			if pl != nil { // not handed to the login
				pl.abandon()
			}
		}()
		g = pl.g
		p.pool.noteGreeting(pl.node, g)
		s.greetID = g.ConnID
		s.salt = g.Salt
		// Never over a unix socket: there the node's unix_socket plugin
		// would authenticate the client as tandem's own OS user.
		s.relayable = len(g.Salt) == 20 && pl.node.network() != "unix"
	}
	s.route = rt
	if len(s.salt) != 20 {
		s.salt = mysql.RandomBuf(20)
	}
	// The node's own capabilities, masked to what the relay follows:
	// a MariaDB node's extended ones included (it clears
	// CLIENT_LONG_PASSWORD, alias CLIENT_MYSQL, to announce them).
	advertised := g.Caps&supportedCaps | requiredCaps | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS
	var advertisedExt uint32
	if g.Caps&mysql.CLIENT_LONG_PASSWORD == 0 {
		advertisedExt = g.ExtCaps & supportedExtCaps
	}
	if p.cfg.TLS != nil {
		advertised |= mysql.CLIENT_SSL
	}
	hello := &greeting{
		Version: g.Version, ConnID: s.greetID, Salt: s.salt, Caps: advertised, ExtCaps: advertisedExt,
		Collation: g.Collation, Status: mysql.SERVER_STATUS_AUTOCOMMIT,
		AuthPlugin: p.cfg.DefaultAuthPlugin,
	}
	if err := writeRaw(s.cio, 0, appendGreeting(nil, hello)); err != nil {
		return err
	}
	p.greeted(s)
	pkt, seq, err := readPacket(s.cr, nil, 1<<16)
	if err != nil {
		return fmt.Errorf("reading handshake response: %w", err)
	}
	s.answered.Store(true)
	if isSSLRequest(pkt) {
		if p.cfg.TLS == nil {
			return fmt.Errorf("%w: SSLRequest but TLS is not configured", ErrHandshake)
		}
		// The client may have sent the start of TLS right behind its
		// SSLRequest: what our buffer holds of it goes to TLS first.
		under := s.client
		if n := s.cr.Buffered(); n > 0 {
			b, _ := s.cr.Peek(n)
			under = &prefixConn{Conn: s.client, pre: bytes.Clone(b)}
		}
		tc := tls.Server(under, p.cfg.TLS)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
		s.mu.Lock()
		s.client = tc
		s.mu.Unlock()
		s.cio = tc
		s.crd.conn, s.crd.r = tc, tc
		s.cwr.conn, s.cwr.w = tc, tc
		s.cr.Reset(s.crd)
		if pkt, seq, err = readPacket(s.cr, nil, 1<<16); err != nil {
			return fmt.Errorf("reading handshake response: %w", err)
		}
	} else if p.cfg.TLS != nil && p.cfg.RequireTLS {
		e := newError(erAccessDenied, "Access denied: tandem requires TLS")
		_ = writeRaw(s.cio, seq+1, appendErr(nil, e))
		return e
	}
	resp, err := parseHandshakeResponse(pkt)
	if err != nil {
		_ = writeRaw(s.cio, seq+1, appendErr(nil, newError(erHandshake, "Bad handshake")))
		return err
	}
	s.caps = resp.Caps & advertised
	if resp.Caps&mysql.CLIENT_LONG_PASSWORD == 0 {
		s.extCaps = resp.ExtCaps & advertisedExt
	}
	s.user = resp.User
	seq++
	cr, seq, err := s.authenticate(&clientAuth{user: resp.User, plugin: resp.Plugin, auth: resp.Auth}, seq,
		func(seq byte, b []byte) error { return writeRaw(s.cio, seq, b) },
		func() ([]byte, byte, error) { return readPacket(s.cr, nil, 1<<12) })
	if err != nil {
		var e *sqlError
		if errors.As(err, &e) {
			_ = writeRaw(s.cio, seq, appendErr(nil, e))
		}
		return err
	}
	if !p.admit(s) {
		if s.evicted.Load() {
			return ErrClosed
		}
		e := newError(erConCount, "Too many connections")
		_ = writeRaw(s.cio, seq, appendErr(nil, e))
		return e
	}
	if cr.fastAuthOK {
		// Fast authentication succeeded: tandem knows the password, so
		// it never needs the full (RSA or TLS) exchange.
		if err := writeRaw(s.cio, seq, []byte{1, 3}); err != nil {
			return err
		}
		seq++
	}
	s.pass, s.stage1 = cr.password, cr.stage1
	s.attrs = resp.Attrs
	s.facts.reset(resp.DB, resp.Collation)
	lp := s.loginParams()
	if cr.relay != nil {
		lp.Relay = cr.relay
		cr.relay.send = func(seq byte, b []byte) error { return writeRaw(s.cio, seq, b) }
		cr.relay.recv = func() ([]byte, byte, error) { return readPacket(s.cr, nil, 1<<16) }
	}
	var be *backend
	if pl == nil {
		be, rt, err = p.pool.login(lp, time.Now().Add(p.cfg.HoldTimeout))
	} else {
		if cr.relay == nil {
			lp.Verified = cr.verified
		}
		be, err = pl.login(lp, p.cfg.LoginTimeout)
		pl = nil // closed by login on error
		if cr.relay != nil {
			seq = cr.relay.seq
		} else if err != nil {
			if _, refused := isNodeRefusal(err); !refused {
				// The node connection opened at the greeting failed (the
				// node went away, or closed it after its connect_timeout):
				// log in afresh, to whichever node the route names.
				lp.Verified = nil
				be, rt, err = p.dialRoute(lp, time.Now().Add(p.cfg.HoldTimeout))
			}
		}
	}
	if err != nil {
		e, refused := isNodeRefusal(err)
		if !refused {
			e = backendError("tandem: %v", err)
		}
		_ = writeRaw(s.cio, seq, appendErr(nil, e))
		return err
	}
	s.route = rt
	if cr.relay != nil {
		// tandem holds no credential for this account: the session
		// cannot be logged in again elsewhere.
		s.relogin = fmt.Sprintf("an account the node authenticated itself (plugin %s), which tandem cannot log in again", cr.relay.plugin)
	}
	s.noteExpired(cr.expired) // expired.go
	s.mu.Lock()
	s.be = be
	closed := s.closed.Load()
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	s.facts.noteStatus(be.status)
	ok := appendOK(nil, be.status&^mysql.SERVER_SESSION_STATE_CHANGED, s.caps)
	if err := writeRaw(s.cio, seq, ok); err != nil {
		return err
	}
	if s.caps&mysql.CLIENT_COMPRESS != 0 {
		// From the first command on, the client's packets come and go
		// compressed. A client sends nothing before the OK.
		if s.cr.Buffered() > 0 {
			return fmt.Errorf("%w: the client sent data before the login's OK", ErrHandshake)
		}
		c := newCompressedIO(s.cio)
		s.cio, s.crd.r, s.cwr.w = c, c, c
		s.cr.Reset(s.crd)
	}
	return nil
}

// handshakeFailure classifies a failed handshake for the Observer.
func handshakeFailure(err error) string {
	var ne net.Error
	var e *sqlError
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &e) && e.Code == erAccessDenied:
		return "auth"
	case errors.As(err, &e) && e.Code == erConCount:
		return "limit"
	case errors.Is(err, ErrHandshake), errors.Is(err, ErrPacketTooLarge):
		return "protocol"
	case errors.As(err, &e) && e.Code == erUnknown, errors.Is(err, errNoRoute):
		return "backend"
	default:
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return "backend"
		}
		return "protocol"
	}
}

// prefixConn is a connection whose first bytes were already read: its
// reads return pre first.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func remoteHost(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return "localhost"
	}
	return host
}

// changeUser handles COM_CHANGE_USER: tandem checks the new user's password
// itself (a [[user]] or a node account), then sends the node a
// COM_CHANGE_USER of its own on the same connection, answering the node's
// scramble with the new user's credential: the node resets the session and
// keeps its thread id, as it would for the client directly.
func (s *session) changeUser(r *relay, length int) error {
	body, err := s.clientPayload(length)
	if err != nil {
		return err
	}
	cu, err := parseChangeUser(body, s.caps)
	if err != nil {
		return s.replyErr(r, newError(erHandshake, "Bad handshake"))
	}
	send := func(seq byte, b []byte) error {
		if _, err := writePacket(r.cw, seq, b); err != nil {
			return err
		}
		return r.cw.Flush()
	}
	pluginAuth := s.caps&mysql.CLIENT_PLUGIN_AUTH != 0
	ca := &clientAuth{user: cu.User, plugin: cu.Plugin, auth: cu.Auth,
		forceSwitch: pluginAuth && cu.Plugin == "", freshSalt: true}
	if !pluginAuth && !clientPluginOK(cu.Plugin) && cu.Plugin != "" {
		ca.plugin = mysql.AUTH_NATIVE_PASSWORD
	}
	out, seq, err := s.authenticate(ca, 1, send, func() ([]byte, byte, error) { return readPacket(s.cr, nil, 1<<12) })
	if err != nil {
		var e *sqlError
		if !errors.As(err, &e) {
			return err
		}
		return s.changeUserRefused(r, seq, e)
	}
	if out.fastAuthOK {
		if seq, err = writePacket(r.cw, seq, []byte{1, 3}); err != nil {
			return err
		}
	}
	collation := cu.Collation
	if collation == 0 {
		collation = s.facts.Collation
	}
	lp := s.loginParams()
	lp.User, lp.Password, lp.Stage1, lp.DB, lp.Collation, lp.Attrs = cu.User, out.password, out.stage1, cu.DB, collation, cu.Attrs
	status, err := s.be.changeUser(lp, s.p.cfg.LoginTimeout)
	if err != nil {
		e, refused := isNodeRefusal(err)
		if !refused {
			_ = queueErr(r.cw, seq, backendError("tandem: changing user on node %s: %v", s.be.node, err))
			return err
		}
		// The node refused (a locked account, say): it has reset the
		// session and kept the old user, as for a client of its own.
		s.changeUserReset()
		return queueErr(r.cw, seq, e)
	}
	s.user, s.pass, s.stage1, s.attrs = cu.User, out.password, out.stage1, cu.Attrs
	s.relogin = "" // tandem checked this account itself: it holds its credential
	s.noteExpired(out.expired)
	if s.stmts != nil {
		s.stmts = map[uint32]uint32{}
	}
	s.nextStmt = 0
	s.forgetStmts()
	s.facts.reset(cu.DB, collation)
	s.facts.noteStatus(status)
	_, err = writePacket(r.cw, seq, appendOK(nil, status&^mysql.SERVER_SESSION_STATE_CHANGED, s.caps))
	return err
}

// changeUserRefused answers a COM_CHANGE_USER whose credentials tandem
// refused (e) as the node answers its own clients: MariaDB keeps the
// connection, resets the session (variables, temporary tables, prepared
// statements), keeps the old user, schema and character set, waits a
// second and, from the fourth failure on, answers 1047 "Unknown command".
// So that the node does all of that itself, tandem sends it a
// COM_CHANGE_USER of the session's own user with a credential bound to
// fail, and answers the client with e, or with the node's error when it is
// not an access denial. If the node does anything else, the session closes.
func (s *session) changeUserRefused(r *relay, seq byte, e *sqlError) error {
	lp := s.loginParams()
	// A user no account has (not the old user: over a unix socket the
	// node's unix_socket plugin would accept tandem's OS user for it).
	lp.User, lp.Password, lp.Stage1 = abandonUser, hex.EncodeToString(mysql.RandomBuf(16)), nil
	_, err := s.be.changeUser(lp, s.p.cfg.LoginTimeout)
	ne, refused := isNodeRefusal(err)
	if !refused {
		_ = queueErr(r.cw, seq, e)
		if err == nil {
			return fmt.Errorf("%w: node %s accepted a change of user bound to fail", ErrHandshake, s.be.node)
		}
		return err
	}
	s.changeUserReset()
	if ne.Code != erAccessDenied && ne.Code != erAccessDeniedNoPassword {
		e = ne // 1047 from the fourth refusal on one connection
	}
	return queueErr(r.cw, seq, e)
}

// changeUserReset records what a refused COM_CHANGE_USER left on the node:
// the old user, schema and collation on a reset session.
func (s *session) changeUserReset() {
	if s.stmts != nil {
		s.stmts = map[uint32]uint32{}
	}
	s.nextStmt = 0
	s.forgetStmts()
	s.facts.reset(s.facts.Schema, s.facts.Collation)
}

// clientAuth is a client's login attempt: a handshake response or a
// COM_CHANGE_USER.
type clientAuth struct {
	user   string
	plugin string // the plugin the client's response is for ("": native)
	auth   []byte
	// forceSwitch asks for an auth switch even when the plugin is fine
	// (a COM_CHANGE_USER without a plugin name from a client that speaks
	// CLIENT_PLUGIN_AUTH); freshSalt makes the switch use a new salt.
	forceSwitch, freshSalt bool
}

// authOutcome is an authenticated client's credential for node logins.
type authOutcome struct {
	password string
	stage1   []byte
	// fastAuthOK: the client used caching_sha2_password and expects the
	// "fast auth succeeded" packet before the OK.
	fastAuthOK bool
	// relay, when set, says tandem could not accept the login itself and
	// the node is to decide (authRelay): there is no credential then.
	relay *authRelay
	// verified is the client's checked response, for the node login that
	// answers the same scramble (handshake).
	verified *verifiedResponse
	// expired: the node account's password is expired (expired.go).
	expired bool
}

// authenticate checks a client's credentials, a user of Config.Users with
// its password, else a node account (Config.Accounts). When the client's
// response is for a plugin tandem cannot check for this user, it first
// switches the client to one it can (send writes a packet with a sequence
// id, recv reads the answer). It returns the outcome and the sequence id
// of the next packet to the client. A *sqlError is the answer the client
// must get (the caller sends it with that sequence id).
func (s *session) authenticate(ca *clientAuth, seq byte, send func(byte, []byte) error, recv func() ([]byte, byte, error)) (*authOutcome, byte, error) {
	p := s.p
	plugin := ca.plugin
	if plugin == "" {
		plugin = mysql.AUTH_NATIVE_PASSWORD
	}
	password, known := p.cfg.Users[ca.user]
	want := plugin
	switch {
	case !known && p.accounts != nil:
		want = mysql.AUTH_NATIVE_PASSWORD // the only plugin whose stored hash suffices
	case !clientPluginOK(plugin) || ca.forceSwitch:
		want = p.cfg.DefaultAuthPlugin
	}
	auth := ca.auth
	if want != ca.plugin && (want != plugin || ca.forceSwitch) {
		if ca.freshSalt {
			s.salt = mysql.RandomBuf(20)
		}
		if err := send(seq, appendAuthSwitch(nil, want, s.salt)); err != nil {
			return nil, seq, err
		}
		var rseq byte
		var err error
		if auth, rseq, err = recv(); err != nil {
			if errors.Is(err, ErrPacketTooLarge) {
				return nil, seq, fmt.Errorf("%w: auth switch response: %v", errClientProtocol, err)
			}
			return nil, seq, err
		}
		seq = rseq + 1
	}
	// The answer to a refused login, built only then.
	denied := func(host string) error {
		using := "YES"
		if emptyAuth(auth) {
			using = "NO"
		}
		return newError(erAccessDenied, "Access denied for user '%s'@'%s' (using password: %s)", ca.user, host, using)
	}
	verified := &verifiedResponse{Plugin: want, Salt: s.salt, Resp: auth}
	switch {
	case known:
		if !checkScramble(want, s.salt, auth, password) {
			return nil, seq, denied(remoteHost(s.client))
		}
		return &authOutcome{password: password, fastAuthOK: want == mysql.AUTH_CACHING_SHA2_PASSWORD && password != "",
			verified: verified}, seq, nil
	case p.accounts != nil:
		host := remoteHost(s.client)
		node := s.route.node
		if s.be != nil {
			node = s.be.node
		}
		name := ""
		if node != nil {
			name = node.Name
		}
		cred, res, detail := p.checkAccount(ca.user, host, name, s.salt, auth)
		if (res == authDenied || res == authUnsupported) && s.relayable && !ca.freshSalt {
			// The client answered the node's own scramble: let the node
			// decide, with its own rules (plugins tandem cannot check,
			// max_password_errors, the answer for an unknown user).
			return &authOutcome{relay: &authRelay{plugin: want, auth: auth, seq: seq, clientTLS: s.client != s.raw}}, seq, nil
		}
		switch res {
		case authOK:
			return &authOutcome{password: cred.password, stage1: cred.stage1, verified: verified, expired: cred.expired}, seq, nil
		case authUnsupported:
			p.log.Info("login refused: the account's plugin needs the password, which tandem does not have; list the user in [[user]]",
				"user", ca.user, "host", host, "plugin", detail)
		case authUnavailable:
			p.log.Warn("login refused: cannot read the node's accounts", "user", ca.user, "node", name, "error", detail)
			return nil, seq, backendError("tandem: cannot read the accounts of node %s: %s", name, detail)
		}
		return nil, seq, denied(host)
	}
	return nil, seq, denied(remoteHost(s.client))
}
