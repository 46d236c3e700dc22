package proxy

// The node side of a session: dialing a node and logging in to it as the
// client's user, with the client's capabilities, schema and collation.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Node is one database server tandem can route sessions to.
type Node struct {
	// Name is the operator's name for the node, used in logs and errors.
	Name string
	// Address is host:port, or the path of a unix socket.
	Address string

	// greeting caches the node's last initial handshake, so that tandem
	// can greet a client with the node's version and capabilities before
	// it dials the node for that client.
	greeting atomic.Pointer[greeting]
}

func (n *Node) network() string {
	if len(n.Address) > 0 && n.Address[0] == '/' {
		return "unix"
	}
	return "tcp"
}

func (n *Node) String() string { return n.Name + " (" + n.Address + ")" }

// backend is one logged-in connection to a node.
type backend struct {
	node     *Node
	conn     net.Conn
	rw       io.ReadWriter // the relay's reads and writes (rawio.go)
	threadID uint32
	caps     uint32 // capabilities in effect on this connection
	status   uint16 // status flags of the login OK
}

// loginParams are what a client session asks of its node connection.
type loginParams struct {
	User      string
	Password  string
	DB        string
	Caps      uint32 // the client's negotiated flags, relayed as they are
	Collation byte
	MaxPacket uint32
	Attrs     []byte
}

// dialTimeouts bound the two phases of reaching a node.
type dialTimeouts struct {
	Connect time.Duration // TCP connect
	Login   time.Duration // greeting to final OK
}

// probeNode dials a node, reads its greeting and hangs up, so that tandem
// knows what to offer clients before any session has reached the node.
func probeNode(ctx context.Context, n *Node, t dialTimeouts) (*greeting, error) {
	d := net.Dialer{Timeout: t.Connect}
	conn, err := d.DialContext(ctx, n.network(), n.Address)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(t.Login))
	g, _, err := readGreeting(conn, n)
	return g, err
}

// readGreeting reads and parses a node's greeting, and caches it on n.
func readGreeting(r io.Reader, n *Node) (*greeting, byte, error) {
	p, seq, err := readPacket(r, nil, 1<<16)
	if err != nil {
		return nil, 0, fmt.Errorf("reading greeting: %w", err)
	}
	g, err := parseGreeting(p)
	if err != nil {
		return nil, 0, err
	}
	n.greeting.Store(g)
	return g, seq, nil
}

// dialBackend connects to n and logs in with lp. A *sqlError return is the
// node's own refusal (wrong password on the node, unknown database) and is
// meant for the client as it is; any other error is a failure to reach the
// node.
func dialBackend(ctx context.Context, n *Node, lp *loginParams, t dialTimeouts) (*backend, error) {
	d := net.Dialer{Timeout: t.Connect}
	conn, err := d.DialContext(ctx, n.network(), n.Address)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
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

// login runs the connection phase on conn. The node sends nothing after its
// final OK until it gets a command, so the buffered reader used here holds
// no bytes when login returns.
func login(conn net.Conn, n *Node, lp *loginParams) (*backend, error) {
	br := bufio.NewReaderSize(conn, 1024)
	bw := bufio.NewWriterSize(conn, 1024)
	g, seq, err := readGreeting(br, n)
	if err != nil {
		return nil, err
	}

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
	auth, ok := scramble(plugin, g.Salt, lp.Password)
	if !ok {
		plugin = mysql.AUTH_NATIVE_PASSWORD
		auth, _ = scramble(plugin, g.Salt, lp.Password)
	}
	resp := &handshakeResponse{
		Caps: caps, MaxPacket: lp.MaxPacket, Collation: lp.Collation,
		User: lp.User, Auth: auth, DB: lp.DB, Plugin: plugin, Attrs: lp.Attrs,
	}
	if caps&mysql.CLIENT_CONNECT_ATTRS != 0 && len(lp.Attrs) == 0 {
		resp.Caps &^= mysql.CLIENT_CONNECT_ATTRS
	}
	seq++
	if seq, err = writePacket(bw, seq, appendHandshakeResponse(nil, resp)); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	salt := g.Salt
	for range 5 { // bounded: a node never needs more than a few rounds
		p, rseq, err := readPacket(br, nil, 1<<16)
		if err != nil {
			return nil, fmt.Errorf("reading login result: %w", err)
		}
		seq = rseq + 1
		var reply []byte
		switch {
		case len(p) == 0:
			return nil, fmt.Errorf("%w: empty packet during login", ErrHandshake)
		case p[0] == 0x00: // OK
			b := &backend{node: n, conn: conn, rw: newConnIO(conn), threadID: g.ConnID, caps: resp.Caps}
			b.status = okStatus(p, resp.Caps)
			if br.Buffered() > 0 {
				return nil, fmt.Errorf("%w: node sent data after its login OK", ErrHandshake)
			}
			return b, nil
		case p[0] == 0xff:
			e, ok := parseErr(p)
			if !ok {
				return nil, fmt.Errorf("%w: malformed error packet during login", ErrHandshake)
			}
			return nil, &e
		case p[0] == 0xfe: // auth switch
			plugin, salt, err = parseAuthSwitch(p)
			if err != nil {
				return nil, err
			}
			if plugin == mysql.AUTH_CLEAR_PASSWORD {
				return nil, backendError("node %s asks for a cleartext password; tandem sends it only over TLS, which this node link does not use", n.Name)
			}
			r, ok := scramble(plugin, salt, lp.Password)
			if !ok {
				return nil, backendError("node %s asks for auth plugin %q, which tandem does not support", n.Name, plugin)
			}
			reply = r
		case p[0] == 0x01 && plugin == mysql.AUTH_CACHING_SHA2_PASSWORD:
			switch {
			case len(p) == 2 && p[1] == 3: // fast auth ok: the OK follows
				continue
			case len(p) == 2 && p[1] == 4: // full auth: ask for the public key
				reply = []byte{2}
			default: // the public key itself
				enc, err := encryptPassword(lp.Password, salt, p[1:])
				if err != nil {
					return nil, err
				}
				reply = enc
			}
		default:
			return nil, fmt.Errorf("%w: unexpected packet 0x%02x during login", ErrHandshake, p[0])
		}
		if _, err := writePacket(bw, seq, reply); err != nil {
			return nil, err
		}
		if err := bw.Flush(); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: login to node %s did not finish", ErrHandshake, n.Name)
}

// close sends COM_QUIT and closes the connection.
func (b *backend) close() {
	_ = b.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = b.conn.Write([]byte{1, 0, 0, 0, mysql.COM_QUIT})
	_ = b.conn.Close()
}

// isNodeRefusal reports whether err is the node's own ERR packet.
func isNodeRefusal(err error) (*sqlError, bool) {
	var e *sqlError
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}
