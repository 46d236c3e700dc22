package proxy

// The node side of a session: dialing a node and logging in to it as the
// client's user, with the client's capabilities, schema and collation.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Node is one database server tandem can route sessions to.
type Node struct {
	// Name is the operator's name for the node, used in logs and errors.
	Name string
	// Address is host:port, or the path of a unix socket.
	Address string
}

func (n *Node) network() string {
	if len(n.Address) > 0 && n.Address[0] == '/' {
		return "unix"
	}
	return "tcp"
}

func (n *Node) String() string { return n.Name + " (" + n.Address + ")" }

// dial connects to n within timeout. Go sets TCP_NODELAY on TCP
// connections. (Dialer.DialTCP would skip the resolver, but it binds the
// socket to a local address first, even an unspecified one: bind(2) picks a
// port no connection uses, TIME_WAIT ones included, and a connect per
// client session then exhausts the ephemeral ports.)
func (n *Node) dial(ctx context.Context, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, n.network(), n.Address)
}

// backend is one logged-in connection to a node.
type backend struct {
	node     *Node
	conn     net.Conn
	rw       io.ReadWriter // the relay's reads and writes (rawio.go)
	threadID uint32
	salt     []byte // the scramble of the node's greeting (COM_CHANGE_USER answers it)
	plugin   string // the auth plugin of the node's greeting
	caps     uint32 // capabilities in effect on this connection
	status   uint16 // status flags of the login OK
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
	Collation byte
	MaxPacket uint32
	Attrs     []byte
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
	seq := pl.seq + 1
	reply := appendHandshakeResponse(nil, resp)
	for range 3 {
		if err := writeRaw(pl.rw, seq, reply); err != nil {
			return
		}
		p, rseq, err := readPacket(pl.br, nil, 1<<16)
		if err != nil || len(p) == 0 {
			return
		}
		switch p[0] {
		case 0x00: // an anonymous account let it in
			_ = writeRaw(pl.rw, 0, []byte{mysql.COM_QUIT})
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
// (sequence id seq) was read from br, and runs the rest of the login. rw is
// conn's raw I/O (rawio.go), which br reads.
func finishLogin(conn net.Conn, rw io.ReadWriter, br *bufio.Reader, n *Node, g *greeting, seq byte, lp *loginParams) (*backend, error) {
	bw := loginWriters.Get().(*bufio.Writer)
	bw.Reset(rw)
	defer func() {
		bw.Reset(nil)
		loginWriters.Put(bw)
	}()

	caps := lp.Caps&supportedCaps | requiredCaps | mysql.CLIENT_PLUGIN_AUTH
	if missing := caps &^ g.Caps &^ (mysql.CLIENT_CONNECT_ATTRS | mysql.CLIENT_LONG_PASSWORD); missing != 0 {
		// The client negotiated a flag with tandem that this node lacks
		// (a pair of different servers): its session would behave
		// differently, so refuse it plainly.
		return nil, backendError("node %s does not support capability flags 0x%x that this session negotiated", n.Name, missing)
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
	resp := &handshakeResponse{
		Caps: caps, MaxPacket: lp.MaxPacket, Collation: lp.Collation,
		User: lp.User, Auth: auth, DB: lp.DB, Plugin: plugin, Attrs: lp.Attrs,
	}
	if caps&mysql.CLIENT_CONNECT_ATTRS != 0 && len(lp.Attrs) == 0 {
		resp.Caps &^= mysql.CLIENT_CONNECT_ATTRS
	}
	seq++
	seq, err := writePacket(bw, seq, appendHandshakeResponse(nil, resp))
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	status, err := authExchange(br, bw, n, plugin, g.Salt, lp, resp.Caps)
	if err != nil {
		return nil, err
	}
	if br.Buffered() > 0 {
		return nil, fmt.Errorf("%w: node sent data after its login OK", ErrHandshake)
	}
	b := &backend{node: n, conn: conn, rw: rw, threadID: g.ConnID, salt: g.Salt, plugin: g.AuthPlugin,
		caps: resp.Caps, status: status}
	return b, nil
}

// authExchange reads the node's answers to a handshake response or a
// COM_CHANGE_USER that used plugin and salt, and answers auth switches and
// caching_sha2_password rounds, up to the final OK (its status flags are
// returned) or ERR (a *sqlError).
func authExchange(br *bufio.Reader, bw *bufio.Writer, n *Node, plugin string, salt []byte, lp *loginParams, caps uint32) (uint16, error) {
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
			if plugin == mysql.AUTH_CLEAR_PASSWORD {
				return 0, backendError("node %s asks for a cleartext password; tandem sends it only over TLS, which this node link does not use", n.Name)
			}
			r, ok := lp.respond(plugin, salt)
			if !ok {
				return 0, backendError("node %s asks for auth plugin %q, which tandem cannot answer for this account", n.Name, plugin)
			}
			reply = r
		case p[0] == 0x01 && plugin == mysql.AUTH_CACHING_SHA2_PASSWORD:
			switch {
			case len(p) == 2 && p[1] == 3: // fast auth ok: the OK follows
				continue
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
	br := getLoginReader(b.conn)
	defer putLoginReader(br)
	bw := loginWriters.Get().(*bufio.Writer)
	bw.Reset(b.conn)
	defer func() {
		bw.Reset(nil)
		loginWriters.Put(bw)
	}()
	if _, err := writePacket(bw, 0, body); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	status, err := authExchange(br, bw, b.node, plugin, b.salt, lp, b.caps)
	if err == nil && br.Buffered() > 0 {
		err = fmt.Errorf("%w: node sent data after its COM_CHANGE_USER OK", ErrHandshake)
	}
	return status, err
}

// comQuit is a whole COM_QUIT packet.
var comQuit = [...]byte{1, 0, 0, 0, mysql.COM_QUIT}

// close sends COM_QUIT and closes the connection.
func (b *backend) close() {
	_ = b.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = b.rw.Write(comQuit[:])
	_ = closeConn(b.conn, b.rw)
}

// isNodeRefusal reports whether err is the node's own ERR packet.
func isNodeRefusal(err error) (*sqlError, bool) {
	var e *sqlError
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}
