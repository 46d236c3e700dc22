package proxy

// The connect path and idle sessions on the real pair: idle sessions hold no
// read buffer, commands that arrive together or in pieces, TLS bytes right
// behind an SSLRequest, sessions that end with a COM_QUIT to the node, and
// the node login answering with the client's checked response.

import (
	"context"
	"crypto/tls"
	"database/sql"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/testpair"
)

// Idle sessions give their client read buffer back; a command after the
// wait, small or larger than the first read, is served whole.
func TestIdleSessionsHoldNoReadBuffer(t *testing.T) {
	p := startProxy(t, nil)
	const n = 20
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dialRaw(t, p.addr, 0)
		conns[i].send([]byte{gmysql.COM_PING})
		if r := conns[i].read(1)[0]; r[0] != 0 {
			t.Fatalf("session %d: ping answered %x", i, r)
		}
	}
	waitFor(t, 10*time.Second, "idle sessions to hold no client read buffer", func() bool {
		return p.clientBufsHeld.Load() == 0
	})
	// A statement longer than an idle session's first read (512 bytes).
	long := strings.Repeat("x", 3000)
	for i, c := range conns {
		c.send(append([]byte{gmysql.COM_QUERY}, "SELECT '"+long+"'"...))
		pkts := readResultSet(t, c)
		if !strings.Contains(string(pkts[len(pkts)-2]), long) {
			t.Fatalf("session %d: the long statement's row is missing", i)
		}
		c.send(append([]byte{gmysql.COM_QUERY}, "SELECT 1"...))
		readResultSet(t, c)
	}
	waitFor(t, 10*time.Second, "idle sessions to hold no client read buffer again", func() bool {
		return p.clientBufsHeld.Load() == 0
	})
}

// readResultSet reads a text result set of one column (no
// CLIENT_DEPRECATE_EOF): column count, definition, EOF, rows, EOF.
func readResultSet(t *testing.T, c *rawConn) [][]byte {
	t.Helper()
	pkts := c.read(3)
	if pkts[0][0] == 0xff {
		t.Fatalf("query failed: %q", pkts[0])
	}
	for {
		p := c.read(1)[0]
		pkts = append(pkts, p)
		if p[0] == 0xfe && len(p) < 9 {
			return pkts
		}
	}
}

// Commands that arrive in one read, and a command that arrives in pieces.
func TestCommandsTogetherAndInPieces(t *testing.T) {
	p := startProxy(t, nil)
	c := dialRaw(t, p.addr, 0)
	var both []byte
	for _, cmd := range [][]byte{{gmysql.COM_PING}, append([]byte{gmysql.COM_QUERY}, "SELECT 2"...), {gmysql.COM_PING}} {
		hdr := make([]byte, headerLen)
		putHeader(hdr, len(cmd), 0)
		both = append(append(both, hdr...), cmd...)
	}
	if _, err := c.conn.Write(both); err != nil {
		t.Fatal(err)
	}
	if r := c.read(1)[0]; r[0] != 0 {
		t.Fatalf("first ping: %x", r)
	}
	readResultSet(t, c)
	if r := c.read(1)[0]; r[0] != 0 {
		t.Fatalf("second ping: %x", r)
	}
	// One command written a few bytes at a time (TCP_NODELAY, Go's
	// default, sends each write at once).
	cmd := append([]byte{gmysql.COM_QUERY}, "SELECT 3"...)
	pkt := make([]byte, headerLen, headerLen+len(cmd))
	putHeader(pkt, len(cmd), 0)
	pkt = append(pkt, cmd...)
	for i := 0; i < len(pkt); i += 3 {
		if _, err := c.conn.Write(pkt[i:min(i+3, len(pkt))]); err != nil {
			t.Fatal(err)
		}
	}
	readResultSet(t, c)
}

// coalescingConn sends pre together with the first write: the client's
// SSLRequest and the start of its TLS handshake then reach tandem in one
// segment, as many clients send them.
type coalescingConn struct {
	net.Conn
	pre []byte
}

func (c *coalescingConn) Write(b []byte) (int, error) {
	if c.pre != nil {
		pre := c.pre
		c.pre = nil
		if _, err := c.Conn.Write(append(pre, b...)); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func TestTLSStartRightBehindSSLRequest(t *testing.T) {
	p := startProxy(t, func(c *Config, _ []*Node) { c.TLS = selfSigned(t) })
	conn, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	gp, _, err := readPacket(conn, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	g, err := parseGreeting(gp)
	if err != nil {
		t.Fatal(err)
	}
	caps := (requiredCaps | clientPluginAuth | connectWithDB | gmysql.CLIENT_SSL) & g.Caps
	if caps&gmysql.CLIENT_SSL == 0 {
		t.Fatal("tandem does not offer TLS")
	}
	ssl := make([]byte, headerLen, headerLen+32)
	putHeader(ssl, 32, 1)
	ssl = append(ssl, byte(caps), byte(caps>>8), byte(caps>>16), byte(caps>>24), 0, 0, 0, 0x40, 45)
	ssl = append(ssl, make([]byte, 23)...)
	tc := tls.Client(&coalescingConn{Conn: conn, pre: ssl}, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake with the ClientHello behind the SSLRequest: %v", err)
	}
	auth, _ := scramble(g.AuthPlugin, g.Salt, testpair.AppPassword)
	resp := appendHandshakeResponse(nil, &handshakeResponse{Caps: caps, MaxPacket: 1 << 30, Collation: 45,
		User: testpair.AppUser, Auth: auth, DB: testpair.AppDB, Plugin: g.AuthPlugin})
	if err := writeRaw(tc, 2, resp); err != nil {
		t.Fatal(err)
	}
	for {
		r, _, err := readPacket(tc, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if r[0] == 1 {
			continue // caching_sha2 fast-auth notice
		}
		if r[0] != 0 {
			t.Fatalf("login over TLS failed: %q", r)
		}
		break
	}
	if err := writeRaw(tc, 0, []byte{gmysql.COM_PING}); err != nil {
		t.Fatal(err)
	}
	if r, _, err := readPacket(tc, nil, 0); err != nil || r[0] != 0 {
		t.Fatalf("ping over TLS: %x, %v", r, err)
	}
}

// abortedClients reads a node's Aborted_clients: sessions that ended
// without a COM_QUIT.
func abortedClients(t *testing.T, admin *sql.DB) int {
	t.Helper()
	var name string
	var n int
	if err := admin.QueryRow("SHOW GLOBAL STATUS LIKE 'Aborted_clients'").Scan(&name, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Every session ends on the node with a COM_QUIT, whether its client quit
// or just closed the connection: the node counts no aborted client. Over
// TLS to the node, and over a plain link (where the COM_QUIT and the FIN go
// in one segment, and the login writes through write-behind), with and
// without compression.
func TestSessionsEndWithQuitOnTheNode(t *testing.T) {
	plainNodes := func(_ *Config, nodes []*Node) {
		for _, n := range nodes {
			n.TLS = nil
		}
	}
	for _, tc := range []struct {
		name     string
		mutate   func(*Config, []*Node)
		compress bool
	}{
		{"tls", nil, false},
		{"plain", plainNodes, false},
		{"plain-compressed", plainNodes, true},
	} {
		t.Run(tc.name, func(t *testing.T) { sessionsEndWithQuit(t, tc.mutate, tc.compress) })
	}
}

func sessionsEndWithQuit(t *testing.T, mutate func(*Config, []*Node), compress bool) {
	p := startProxy(t, mutate)
	adminCfg := driverConfig(testpair.Addr(testpair.A))
	adminCfg.User, adminCfg.Passwd, adminCfg.DBName = testpair.AdminUser, testpair.AdminPassword, ""
	admin := openDB(t, adminCfg)
	before := abortedClients(t, admin)

	cfg := driverConfig(p.addr)
	if err := cfg.Apply(mysql.EnableCompression(compress)); err != nil {
		t.Fatal(err)
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	db.SetMaxIdleConns(0) // each request a new connection, closed after
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				var one int
				err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Clients that close without COM_QUIT.
	for range 10 {
		c := dialRaw(t, p.addr, 0)
		c.send([]byte{gmysql.COM_PING})
		c.read(1)
		c.conn.Close()
	}
	waitFor(t, 10*time.Second, "the sessions to end", func() bool { return p.SessionCount() == 0 })
	// The node counts an aborted client when its thread ends; give the
	// threads time to end, then compare (a wrong count shows up at once).
	waitFor(t, 10*time.Second, "the node threads of the sessions to end", func() bool {
		var n int
		_ = admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", testpair.AppUser).Scan(&n)
		return n == 0
	})
	if after := abortedClients(t, admin); after != before {
		t.Fatalf("node a counted %d aborted clients during the test, want 0", after-before)
	}
}

// The node login answers the node's scramble with the client's own checked
// response when the plugin and the salt are the ones it was checked for,
// and computes the answer otherwise.
func TestLoginReusesVerifiedResponse(t *testing.T) {
	salt := []byte("abcdefghij0123456789")
	other := []byte("0123456789abcdefghij")
	client, _ := scramble(gmysql.AUTH_NATIVE_PASSWORD, salt, "pw")
	lp := &loginParams{Password: "pw", Verified: &verifiedResponse{Plugin: gmysql.AUTH_NATIVE_PASSWORD, Salt: salt, Resp: client}}
	if r, ok := lp.respond(gmysql.AUTH_NATIVE_PASSWORD, salt); !ok || &r[0] != &client[0] {
		t.Fatal("same plugin and salt: the checked response is not reused")
	}
	want, _ := scramble(gmysql.AUTH_NATIVE_PASSWORD, other, "pw")
	if r, ok := lp.respond(gmysql.AUTH_NATIVE_PASSWORD, other); !ok || string(r) != string(want) {
		t.Fatal("another salt: the answer is not computed for it")
	}
	want, _ = scramble(gmysql.AUTH_CACHING_SHA2_PASSWORD, salt, "pw")
	if r, ok := lp.respond(gmysql.AUTH_CACHING_SHA2_PASSWORD, salt); !ok || string(r) != string(want) {
		t.Fatal("another plugin: the answer is not computed for it")
	}
	empty := &loginParams{Verified: &verifiedResponse{Plugin: gmysql.AUTH_NATIVE_PASSWORD, Salt: salt}}
	if r, ok := empty.respond(gmysql.AUTH_NATIVE_PASSWORD, salt); !ok || len(r) != 0 {
		t.Fatalf("empty password: %x, %v", r, ok)
	}
}
