package proxy

// The node side of a session: dialing a node and logging in to it as the
// client's user, with the client's capabilities, schema and collation.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/tandemdb/tandem/internal/nodetls"
)

// Node is one database server tandem can route sessions to.
type Node struct {
	// Name is the operator's name for the node, used in logs and errors.
	Name string
	// Address is host:port, or the path of a unix socket.
	Address string
	// TLS secures the connections to the node: nil is plaintext. With a
	// mode other than preferred, a node that does not offer TLS is
	// refused.
	TLS *nodetls.Client
	// OnPlaintext, if set, is called (without blocking) each time a
	// preferred-TLS login goes ahead in plaintext because the node does
	// not offer TLS.
	OnPlaintext func()
}

func (n *Node) network() string {
	if len(n.Address) > 0 && n.Address[0] == '/' {
		return "unix"
	}
	return "tcp"
}

func (n *Node) String() string { return n.Name + " (" + n.Address + ")" }

// dial connects to n within timeout, with TCP_NODELAY and keepalive on a
// TCP connection. An address with an IP literal is dialed by plain system
// calls (sock.go), others by net. (Dialer.DialTCP would skip the resolver,
// but it binds the socket to a local address first, even an unspecified
// one: bind(2) picks a port no connection uses, TIME_WAIT ones included, and
// a connect per client session then exhausts the ephemeral ports.)
func (n *Node) dial(ctx context.Context, timeout time.Duration) (net.Conn, error) {
	if n.network() == "tcp" {
		if ap, err := netip.ParseAddrPort(n.Address); err == nil && ap.Addr().Zone() == "" {
			return dialTCP(ctx, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), timeout)
		}
	}
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, n.network(), n.Address)
}

// backend is one logged-in connection to a node.
type backend struct {
	node     *Node
	conn     net.Conn
	rw       io.ReadWriter // the relay's reads and writes (rawio.go)
	threadID uint32
	salt     []byte    // the scramble of the node's greeting (COM_CHANGE_USER answers it)
	plugin   string    // the auth plugin of the node's greeting
	caps     uint32    // capabilities in effect on this connection
	extCaps  uint32    // MariaDB's extended capabilities in effect
	status   uint16    // status flags of the login OK
	born     time.Time // when the login finished (PoolConfig.MaxAge)
	authed   time.Time // when the node last checked the account (pool.go)
	// raw is the socket under TLS, for peeking whether the node closed
	// an idle connection (nil without TLS: rw itself can peek).
	raw io.ReadWriter
}

// tls reports whether the connection to the node is encrypted.
func (b *backend) tls() bool { return b.raw != nil }

// authRelay lets the node authenticate a client itself, when tandem
// cannot accept the login (an account of a plugin whose stored form does not
// suffice, an unknown user, a wrong password): the client's answer to the
// node's own scramble goes to the node in the handshake response, and each
// packet of the exchange after it is relayed, the node's to the client and
// the client's answer back, until the node's OK or ERR. The node then
// applies its own rules and gives its own answer. tandem holds no credential
// for such a session, so it cannot move.
type authRelay struct {
	plugin    string // the plugin of the client's answer; then the node's last switch
	auth      []byte
	clientTLS bool // the client is on TLS: its secrets go only to a node over TLS
	seq       byte // the next sequence id towards the client
	send      func(seq byte, b []byte) error
	recv      func() ([]byte, byte, error)
}

// maxRelayRounds bounds a relayed authentication exchange.
const maxRelayRounds = 8

// run relays the exchange after the handshake response (node side: br,
// bw) and returns the status flags of the node's OK.
//
// A client on TLS to tandem may answer with secrets (a cleartext password,
// caching_sha2_password's full authentication): past the handshake
// response, its answers go only to a node on TLS (secure).
func (a *authRelay) run(br *bufio.Reader, bw *bufio.Writer, n *Node, caps uint32, secure bool) (uint16, error) {
	for range maxRelayRounds {
		p, nseq, err := readPacket(br, nil, 1<<16)
		if err != nil {
			return 0, fmt.Errorf("reading login result: %w", err)
		}
		switch {
		case len(p) == 0:
			return 0, fmt.Errorf("%w: empty packet during login", ErrHandshake)
		case p[0] == 0x00:
			return okStatus(p, caps), nil
		case p[0] == 0xff:
			e, ok := parseErr(p)
			if !ok {
				return 0, fmt.Errorf("%w: malformed error packet during login", ErrHandshake)
			}
			return 0, &e
		case p[0] == 0xfe:
			if plugin, _, err := parseAuthSwitch(p); err == nil {
				a.plugin = plugin
			}
		}
		if err := a.send(a.seq, p); err != nil {
			return 0, err
		}
		a.seq++
		if p[0] == 0x01 && len(p) == 2 && p[1] == 3 {
			continue // caching_sha2_password's fast auth succeeded: the OK follows
		}
		if a.clientTLS && !secure {
			return 0, backendError("tandem: node %s asks for more of the login (plugin %s); tandem relays that from a client on TLS only over TLS to the node", n.Name, a.plugin)
		}
		reply, cseq, err := a.recv()
		if err != nil {
			return 0, fmt.Errorf("%w: %v", errClientGone, err)
		}
		a.seq = cseq + 1
		if _, err := writePacket(bw, nseq+1, reply); err != nil {
			return 0, err
		}
		if err := bw.Flush(); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("%w: login to node %s took more than %d rounds", ErrHandshake, n.Name, maxRelayRounds)
}

// loginParams are what a client session asks of its node connection.
type loginParams struct {
	User     string
	Password string
	// Stage1, when set, is SHA1(password) of a mysql_native_password
	// account from the node (accounts.go): tandem answers the node's
	// scramble with it instead of Password.
	Stage1    []byte
	DB        string
	Caps      uint32 // the client's negotiated flags, relayed as they are
	ExtCaps   uint32 // the client's negotiated MariaDB extended capabilities
	Collation byte
	MaxPacket uint32
	Attrs     []byte
	// Relay, when set, has the node authenticate the client itself
	// (authRelay) instead of tandem answering with a credential.
	Relay *authRelay
	// Verified, when set, is the client's own response to the scramble of
	// the node's greeting, which tandem has checked: the login answers
	// that same scramble with it rather than computing it again.
	Verified *verifiedResponse
}

// verifiedResponse is a client's auth response that tandem checked, for
// plugin and salt.
type verifiedResponse struct {
	Plugin     string
	Salt, Resp []byte
}

// dialTimeouts bound the two phases of reaching a node.
type dialTimeouts struct {
	Connect time.Duration // TCP connect
	Login   time.Duration // greeting to final OK
}

// readGreeting reads and parses a node's greeting.
func readGreeting(r io.Reader) (*greeting, byte, error) {
	p, seq, err := readPacket(r, nil, 1<<16)
	if err != nil {
		return nil, 0, fmt.Errorf("reading greeting: %w", err)
	}
	g, err := parseGreeting(p)
	if err != nil {
		return nil, 0, err
	}
	return g, seq, nil
}

// dialBackend connects to n and logs in with lp. A *sqlError return is the
// node's own refusal (wrong password on the node, unknown database) and is
// meant for the client as it is; any other error is a failure to reach the
// node.
func dialBackend(ctx context.Context, n *Node, lp *loginParams, t dialTimeouts) (*backend, error) {
	conn, err := n.dial(ctx, t.Connect)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(t.Login))
	b, err := login(conn, n, lp)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return b, nil
}

// pendingLogin is a node connection whose greeting has been read and
// whose login waits for the client's credentials: tandem opens it when a
// client connects, so that it can greet the client with the node thread's
// id and scramble.
type pendingLogin struct {
	node *Node
	conn net.Conn
	rw   io.ReadWriter // conn's raw I/O (rawio.go)
	br   *bufio.Reader // from loginBufs
	g    *greeting
	seq  byte
}

// loginBufs holds the read buffers of node logins: a login is a few small
// packets, and an open login must not cost an allocation.
var loginBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, loginBufSize) }}

// loginWriters holds the write buffers of node logins.
var loginWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, loginBufSize) }}

const loginBufSize = 1024

func getLoginReader(r io.Reader) *bufio.Reader {
	br := loginBufs.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func putLoginReader(br *bufio.Reader) {
	br.Reset(nil)
	loginBufs.Put(br)
}

// openNode dials n and reads its greeting, within t.Login in all, and
// leaves the connection waiting for the login.
func openNode(ctx context.Context, n *Node, t dialTimeouts) (*pendingLogin, error) {
	conn, err := n.dial(ctx, t.Connect)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(t.Login))
	rw := newConnIO(conn)
	setWriteBehind(rw, true) // the login's packets go out inside the reads of their answers
	br := getLoginReader(rw)
	g, seq, err := readGreeting(br)
	if err != nil {
		putLoginReader(br)
		conn.Close()
		return nil, err
	}
	return &pendingLogin{node: n, conn: conn, rw: rw, br: br, g: g, seq: seq}, nil
}

// login finishes the login with lp within timeout. The connection is
// closed on error.
func (pl *pendingLogin) login(lp *loginParams, timeout time.Duration) (*backend, error) {
	_ = pl.conn.SetDeadline(time.Now().Add(timeout))
	b, err := finishLogin(pl.conn, pl.rw, pl.br, pl.node, pl.g, pl.seq, lp)
	putLoginReader(pl.br)
	if err != nil {
		pl.conn.Close()
		return nil, err
	}
	_ = pl.conn.SetDeadline(time.Time{})
	return b, nil
}

// abandonUser is the user name of the login tandem sends a node for a
// client that went away before logging in (pendingLogin.abandon).
const abandonUser = "tandem_client_left"

// abandon ends a node connection whose client went away (or failed to log
// in) before its login. It sends a login that is bound to fail (a random
// password for abandonUser), within one second, rather than closing the
// connection in the middle of the handshake: a node counts such a close
// against max_connect_errors for tandem's host and blocks the host past it
// (no login through tandem would work any more), while a wrong password is
// not counted. TCP health checks of tandem would otherwise block it.
func (pl *pendingLogin) abandon() {
	defer pl.conn.Close()
	defer putLoginReader(pl.br)
	_ = pl.conn.SetDeadline(time.Now().Add(time.Second))
	resp := &handshakeResponse{Caps: requiredCaps | mysql.CLIENT_PLUGIN_AUTH, MaxPacket: 1 << 24,
		Collation: pl.g.Collation, User: abandonUser, Auth: mysql.RandomBuf(20), Plugin: mysql.AUTH_NATIVE_PASSWORD}
	// Over TLS like every other login to the node.
	conn, br, seq, err := startTLS(pl.conn, pl.br, pl.node, pl.g, pl.seq, resp)
	if err != nil {
		return
	}
	seq++
	reply := appendHandshakeResponse(nil, resp)
	for range 3 {
		if err := writeRaw(conn, seq, reply); err != nil {
			return
		}
		p, rseq, err := readPacket(br, nil, 1<<16)
		if err != nil || len(p) == 0 {
			return
		}
		switch p[0] {
		case 0x00: // an anonymous account let it in
			_ = writeRaw(conn, 0, []byte{mysql.COM_QUIT})
			return
		case 0xff:
			return
		}
		// An auth switch or another round: answer with noise.
		seq, reply = rseq+1, mysql.RandomBuf(20)
	}
}

// login runs the connection phase on conn. The node sends nothing after its
// final OK until it gets a command, so the buffered reader used here holds
// no bytes when login returns.
func login(conn net.Conn, n *Node, lp *loginParams) (*backend, error) {
	rw := newConnIO(conn)
	setWriteBehind(rw, true) // the login's packets go out inside the reads of their answers
	br := getLoginReader(rw)
	defer putLoginReader(br)
	g, seq, err := readGreeting(br)
	if err != nil {
		return nil, err
	}
	return finishLogin(conn, rw, br, n, g, seq, lp)
}

// respond computes lp's answer to a node's scramble for plugin; ok is false
// for a plugin it cannot answer.
func (lp *loginParams) respond(plugin string, salt []byte) ([]byte, bool) {
	if v := lp.Verified; v != nil && len(v.Resp) > 0 && v.Plugin == plugin && bytes.Equal(v.Salt, salt) {
		return v.Resp, true
	}
	c := credential{password: lp.Password, stage1: lp.Stage1}
	return c.respond(plugin, salt)
}

// finishLogin sends the handshake response to a node whose greeting g
// (sequence id seq) was read from br, and runs the rest of the login: over
// TLS first when the node's settings ask for it (startTLS).
//
// rw is conn's raw I/O (rawio.go), which br reads; it stays the session's
// I/O with the node unless TLS starts.
func finishLogin(conn net.Conn, rw io.ReadWriter, br *bufio.Reader, n *Node, g *greeting, seq byte, lp *loginParams) (*backend, error) {
	caps := lp.Caps&supportedCaps | requiredCaps | mysql.CLIENT_PLUGIN_AUTH
	if missing := caps &^ g.Caps &^ (mysql.CLIENT_CONNECT_ATTRS | mysql.CLIENT_LONG_PASSWORD); missing != 0 {
		// The client negotiated a flag with tandem that this node lacks
		// (a pair of different servers): its session would behave
		// differently, so refuse it plainly.
		return nil, backendError("node %s does not support capability flags 0x%x that this session negotiated", n.Name, missing)
	}
	var ext uint32
	if caps&mysql.CLIENT_LONG_PASSWORD == 0 {
		if g.Caps&mysql.CLIENT_LONG_PASSWORD != 0 {
			caps |= mysql.CLIENT_LONG_PASSWORD // not a MariaDB node: no extended capabilities
		} else {
			ext = lp.ExtCaps & supportedExtCaps
		}
	}
	if missing := ext &^ g.ExtCaps; missing != 0 {
		return nil, backendError("node %s does not support MariaDB extended capabilities 0x%x that this session negotiated", n.Name, missing)
	}
	caps &= g.Caps | mysql.CLIENT_CONNECT_ATTRS
	if lp.DB != "" {
		caps |= mysql.CLIENT_CONNECT_WITH_DB
	} else {
		caps &^= mysql.CLIENT_CONNECT_WITH_DB
	}
	plugin := g.AuthPlugin
	auth, ok := lp.respond(plugin, g.Salt)
	if !ok {
		plugin = mysql.AUTH_NATIVE_PASSWORD
		auth, _ = lp.respond(plugin, g.Salt)
	}
	if v := lp.Verified; v != nil && v.Plugin == plugin && bytes.Equal(v.Salt, g.Salt) {
		auth = v.Resp // the client's own response, checked by tandem
	}
	if lp.Relay != nil {
		plugin, auth = lp.Relay.plugin, lp.Relay.auth
	}
	resp := &handshakeResponse{
		Caps: caps, ExtCaps: ext, MaxPacket: lp.MaxPacket, Collation: lp.Collation,
		User: lp.User, Auth: auth, DB: lp.DB, Plugin: plugin, Attrs: lp.Attrs,
	}
	if caps&mysql.CLIENT_CONNECT_ATTRS != 0 && len(lp.Attrs) == 0 {
		resp.Caps &^= mysql.CLIENT_CONNECT_ATTRS
	}
	raw := conn
	conn, br, seq, err := startTLS(conn, br, n, g, seq, resp)
	if err != nil {
		return nil, err
	}
	// Without TLS the login writes through the raw I/O, as it reads.
	var w io.Writer = rw
	if conn != raw {
		w = conn
	}
	bw := loginWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() {
		bw.Reset(nil)
		loginWriters.Put(bw)
	}()
	seq++
	seq, err = writePacket(bw, seq, appendHandshakeResponse(nil, resp))
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	secure := conn != raw
	var status uint16
	if lp.Relay != nil {
		status, err = lp.Relay.run(br, bw, n, resp.Caps, secure)
	} else {
		status, err = authExchange(br, bw, n, plugin, g.Salt, lp, resp.Caps, secure)
	}
	if err != nil {
		return nil, err
	}
	if br.Buffered() > 0 {
		return nil, fmt.Errorf("%w: node sent data after its login OK", ErrHandshake)
	}
	b := &backend{node: n, conn: conn, rw: rw, threadID: g.ConnID, salt: g.Salt, plugin: g.AuthPlugin,
		caps: resp.Caps, extCaps: ext, status: status}
	// Write-behind (rawio.go) stays on for the commands of a plain
	// link, not under compression, whose frames hide the commands. (The
	// login ended with a read: nothing is pending.)
	setWriteBehind(rw, !secure && resp.Caps&mysql.CLIENT_COMPRESS == 0)
	if secure {
		b.rw, b.raw = newConnIO(conn), rw
	}
	if resp.Caps&mysql.CLIENT_COMPRESS != 0 {
		b.rw = newCompressedIO(b.rw)
	}
	b.born, b.authed = time.Now(), time.Now()
	return b, nil
}

// startTLS upgrades a node connection whose greeting g (sequence id seq)
// was read from br to TLS when n's settings ask for it and the node offers
// it: an SSLRequest (the first 32 bytes of resp, CLIENT_SSL set in resp),
// then the TLS handshake. It returns the connection and reader to go on
// with and the sequence id of the last packet sent; unchanged when TLS is
// not used. A node that does not offer TLS is refused unless n's mode is
// preferred. Errors that retrying cannot cure (no TLS offered, a
// certificate that does not verify) are *sqlError, for the client as they
// are.
func startTLS(conn net.Conn, br *bufio.Reader, n *Node, g *greeting, seq byte, resp *handshakeResponse) (net.Conn, *bufio.Reader, byte, error) {
	if n.TLS == nil {
		return conn, br, seq, nil
	}
	if g.Caps&mysql.CLIENT_SSL == 0 {
		if n.TLS.Optional() {
			if n.OnPlaintext != nil {
				n.OnPlaintext()
			}
			return conn, br, seq, nil
		}
		return nil, nil, 0, backendError("tandem: node %s: %v (its greeting lacks CLIENT_SSL), and its tls = %q requires it",
			n.Name, nodetls.ErrNotOffered, n.TLS.Mode)
	}
	if br.Buffered() > 0 {
		return nil, nil, 0, fmt.Errorf("%w: node sent data after its greeting", ErrHandshake)
	}
	resp.Caps |= mysql.CLIENT_SSL
	// The node keeps the capabilities of the SSLRequest (MariaDB ANDs
	// them with its own and does not read them again), so they are
	// exactly the handshake response's.
	req := appendHandshakeResponse(nil, resp)[:sslRequestLen]
	seq++
	if err := writeRaw(conn, seq, req); err != nil {
		return nil, nil, 0, err
	}
	tc := tls.Client(conn, n.TLS.Config())
	if err := tc.Handshake(); err != nil {
		if nodetls.IsConfigError(err) {
			// The certificate does not verify, or the node rejects
			// ours: no other try would do better, so the client is
			// told at once.
			return nil, nil, 0, backendError("tandem: TLS with node %s (tls = %q) failed: %v", n.Name, n.TLS.Mode, err)
		}
		return nil, nil, 0, fmt.Errorf("TLS handshake with node %s: %w", n.Name, err)
	}
	return tc, bufio.NewReaderSize(tc, 1024), seq, nil
}

// authExchange reads the node's answers to a handshake response or a
// COM_CHANGE_USER that used plugin and salt, and answers auth switches and
// caching_sha2_password rounds, up to the final OK (its status flags are
// returned) or ERR (a *sqlError).
// secure says the connection is encrypted: a password may then be sent in
// clear (caching_sha2_password full authentication, mysql_clear_password)
// instead of asking the node for its RSA key.
func authExchange(br *bufio.Reader, bw *bufio.Writer, n *Node, plugin string, salt []byte, lp *loginParams, caps uint32, secure bool) (uint16, error) {
	for range 5 { // bounded: a node never needs more than a few rounds
		p, rseq, err := readPacket(br, nil, 1<<16)
		if err != nil {
			return 0, fmt.Errorf("reading login result: %w", err)
		}
		seq := rseq + 1
		var reply []byte
		switch {
		case len(p) == 0:
			return 0, fmt.Errorf("%w: empty packet during login", ErrHandshake)
		case p[0] == 0x00: // OK
			return okStatus(p, caps), nil
		case p[0] == 0xff:
			e, ok := parseErr(p)
			if !ok {
				return 0, fmt.Errorf("%w: malformed error packet during login", ErrHandshake)
			}
			return 0, &e
		case p[0] == 0xfe: // auth switch
			plugin, salt, err = parseAuthSwitch(p)
			if err != nil {
				return 0, err
			}
			switch {
			case plugin == mysql.AUTH_CLEAR_PASSWORD && !secure:
				return 0, backendError("node %s asks for a cleartext password; tandem sends it only over TLS, which this node link does not use", n.Name)
			case plugin == mysql.AUTH_CLEAR_PASSWORD && lp.Stage1 != nil:
				return 0, backendError("node %s asks for a cleartext password, which tandem does not hold for this account", n.Name)
			case plugin == mysql.AUTH_CLEAR_PASSWORD:
				reply = append([]byte(lp.Password), 0)
			default:
				r, ok := lp.respond(plugin, salt)
				if !ok {
					return 0, backendError("node %s asks for auth plugin %q, which tandem cannot answer for this account", n.Name, plugin)
				}
				reply = r
			}
		case p[0] == 0x01 && plugin == mysql.AUTH_CACHING_SHA2_PASSWORD:
			switch {
			case len(p) == 2 && p[1] == 3: // fast auth ok: the OK follows
				continue
			case len(p) == 2 && p[1] == 4 && lp.Stage1 != nil:
				return 0, backendError("node %s asks for caching_sha2_password full authentication, which needs the password", n.Name)
			case len(p) == 2 && p[1] == 4 && secure:
				// Full authentication over TLS: the password in
				// clear, as MySQL's own clients send it; no RSA key.
				reply = append([]byte(lp.Password), 0)
			case len(p) == 2 && p[1] == 4: // full auth: ask for the public key
				reply = []byte{2}
			default: // the public key itself
				if lp.Stage1 != nil {
					return 0, backendError("node %s asks for caching_sha2_password full authentication, which needs the password", n.Name)
				}
				enc, err := encryptPassword(lp.Password, salt, p[1:])
				if err != nil {
					return 0, err
				}
				reply = enc
			}
		default:
			return 0, fmt.Errorf("%w: unexpected packet 0x%02x during login", ErrHandshake, p[0])
		}
		if _, err := writePacket(bw, seq, reply); err != nil {
			return 0, err
		}
		if err := bw.Flush(); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("%w: login to node %s did not finish", ErrHandshake, n.Name)
}

// changeUser runs COM_CHANGE_USER to lp's user, schema, collation and
// attributes on b, which must be idle, within timeout, and returns the
// status flags of the node's OK. A *sqlError is the node's refusal.
func (b *backend) changeUser(lp *loginParams, timeout time.Duration) (uint16, error) {
	plugin := b.plugin
	auth, ok := lp.respond(plugin, b.salt)
	if !ok {
		plugin = mysql.AUTH_NATIVE_PASSWORD
		auth, _ = lp.respond(plugin, b.salt)
	}
	body := append([]byte{mysql.COM_CHANGE_USER}, lp.User...)
	body = append(body, 0, byte(len(auth)))
	body = append(body, auth...)
	body = append(body, lp.DB...)
	body = append(body, 0, lp.Collation, 0)
	if b.caps&mysql.CLIENT_PLUGIN_AUTH != 0 {
		body = append(append(body, plugin...), 0)
	}
	if b.caps&mysql.CLIENT_CONNECT_ATTRS != 0 {
		if len(lp.Attrs) == 0 {
			body = append(body, 0)
		} else {
			body = append(body, lp.Attrs...)
		}
	}
	_ = b.conn.SetDeadline(time.Now().Add(timeout))
	defer b.conn.SetDeadline(time.Time{})
	rw := b.stream()
	newCommandOn(rw)
	br := bufio.NewReaderSize(rw, 1024)
	bw := bufio.NewWriterSize(rw, 1024)
	if _, err := writePacket(bw, 0, body); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	status, err := authExchange(br, bw, b.node, plugin, b.salt, lp, b.caps, b.tls())
	if err == nil && br.Buffered() > 0 {
		err = fmt.Errorf("%w: node sent data after its COM_CHANGE_USER OK", ErrHandshake)
	}
	return status, err
}

// stream is what tandem reads and writes the node through: rw, compressed
// when the link is (compress.go).
func (b *backend) stream() io.ReadWriter {
	if b.rw == nil {
		return b.conn
	}
	return b.rw
}

// comQuit is a COM_QUIT packet.
var comQuit = [...]byte{1, 0, 0, 0, mysql.COM_QUIT}

// close sends COM_QUIT and closes the connection. On a plain socket
// (rawio.go) the COM_QUIT goes out with the FIN in one segment (sendLast:
// a send(2) that cannot block, into a send buffer that holds nothing else
// of an idle connection, and shutdown(2)) before close(2), as for a client
// (closeConn); a COM_QUIT that does not fit at once, or one through TLS or
// compression, is written within 100 ms.
func (b *backend) close() {
	if r, ok := b.rw.(*rawIO); ok && b.raw == nil {
		n, done := r.sendLast(comQuit[:])
		if done {
			_ = closeShut(b.conn, r)
			return
		}
		if r.errno == 0 && n < len(comQuit) {
			_ = b.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if len(r.pending) > 0 {
				_ = r.flushPending()
			}
			_, _ = r.write(comQuit[n:])
		}
		_ = closeConn(b.conn, r)
		return
	}
	_ = b.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	rw := b.stream()
	newCommandOn(rw)
	_, _ = rw.Write(comQuit[:])
	_ = b.closeSocket()
}

// closeSocket closes the connection at once, from any goroutine. Under
// TLS it closes the socket beneath without the close_notify alert, which
// crypto/tls sends with a 5 s write deadline of its own: a hung node must
// not hold whoever closes (the node needs no alert after COM_QUIT, nor on
// a cut).
func (b *backend) closeSocket() error {
	if tc, ok := b.conn.(*tls.Conn); ok {
		return tc.NetConn().Close()
	}
	return b.conn.Close()
}

// idleAndOpen peeks, without blocking or consuming anything, whether the
// node closed the idle connection or sent something unasked. Any doubt
// counts as open. Under TLS it peeks at the socket beneath: tandem reads
// the node's post-handshake TLS messages with the login's OK, so an idle
// connection has nothing pending there either.
func (b *backend) idleAndOpen() bool {
	rw := b.rw
	if c, ok := rw.(*compressedIO); ok {
		if c.buffered() > 0 {
			return false // the node sent something unasked
		}
		rw = c.rw
	}
	if b.raw != nil {
		rw = b.raw
	}
	if r, ok := rw.(*rawIO); ok {
		return r.idleAndOpen()
	}
	return true
}

// isNodeRefusal reports whether err is the node's own ERR packet.
func isNodeRefusal(err error) (*sqlError, bool) {
	var e *sqlError
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}
