package proxy

// Bounded resources against real clients on the pair: memory per session,
// connections still logging in, clients that stop reading.

import (
	"context"
	"database/sql"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	mysqldriver "github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/testpair"
)

// heapAfterGC is the live heap of the test process (tandem included).
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// sessionsWaitingOnClient counts session goroutines blocked reading their
// client in the middle of a command (the rest of a packet).
func sessionsWaitingOnClient() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[IO wait") && strings.Contains(g, "(*session).command(") {
			n++
		}
	}
	return n
}

func TestLyingHeadersCostWhatWasSent(t *testing.T) {
	p := startProxy(t, nil)
	const n = 64
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dialRaw(t, p.addr, 0)
	}
	before := heapAfterGC()
	// Each announces a packet of 16 MiB (one byte short of a second
	// chunk) and sends 20 bytes of it: statements tandem streams to the
	// node, and commands it reads whole.
	cmds := []byte{mysql.COM_QUERY, mysql.COM_STMT_PREPARE, mysql.COM_INIT_DB, mysql.COM_PROCESS_KILL}
	for i, c := range conns {
		length := maxPayload - 1
		msg := append([]byte{byte(length), byte(length >> 8), byte(length >> 16), 0, cmds[i%len(cmds)]}, "SELECT 'a lie' FROM t"...)
		if _, err := c.conn.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "every session to wait for the rest of its packet", func() bool {
		return p.Sessions().Busy == n && sessionsWaitingOnClient() == n
	})
	after := heapAfterGC()
	grown := int64(after) - int64(before)
	t.Logf("%d sessions announcing 16 MiB each: heap %d KiB before, %d KiB after (%+d KiB)", n, before>>10, after>>10, grown>>10)
	if grown > 64<<20 {
		t.Fatalf("the lying headers cost %d MiB of heap, want well under 64 MiB", grown>>20)
	}
	// They are then cut by net_read_timeout like any stalled client; here
	// they just go away, and tandem serves on.
	for _, c := range conns {
		c.conn.Close()
	}
	waitFor(t, 20*time.Second, "the sessions to close", func() bool { return p.SessionCount() == 0 })
	var one int
	if err := openDB(t, driverConfig(p.addr)).QueryRow("SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
}

// probe logs in as the app user, runs SELECT 1 and logs out, all within
// timeout.
func probe(addr string, timeout time.Duration) error {
	c := driverConfig(addr)
	c.Timeout, c.ReadTimeout, c.WriteTimeout = timeout, timeout, timeout
	conn, err := mysqldriver.NewConnector(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	db := sql.OpenDB(conn)
	defer db.Close()
	var one int
	return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

func TestSilentSocketsDoNotLockOutClients(t *testing.T) {
	const slots, logins = 8, 4
	p := startProxy(t, func(c *Config, _ []*Node) {
		c.MaxHandshakes, c.MaxConnections, c.HandshakeTimeout = slots, logins, time.Minute
	})
	var silent []net.Conn
	first := p.nextID.Load()
	for i := range 2 * slots {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
		// One at a time, so that "oldest" is dial order.
		waitFor(t, 10*time.Second, "tandem to take the connection", func() bool { return p.nextID.Load() == first+uint32(i)+1 })
	}
	waitFor(t, 10*time.Second, "the handshake slots to fill", func() bool { return p.HandshakeCount() == slots })
	// The first half were closed to make room for the second (with or
	// without a greeting first).
	for i, c := range silent[:slots] {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("silent socket %d: still open though newer ones came", i)
		}
	}
	// Real clients log in and are served at once, up to max_connections:
	// the silent sockets do not count against it.
	db := openDB(t, driverConfig(p.addr))
	ctx := context.Background()
	for i := range logins {
		start := time.Now()
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatalf("login %d with the handshake slots full: %v", i, err)
		}
		defer c.Close()
		if err := alive(c); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("login %d and a query took %v with the handshake slots full, want under 1s", i, d)
		}
	}
	if n := p.SessionCount(); n != logins {
		t.Fatalf("%d logged-in sessions, want %d", n, logins)
	}
	if _, err := db.Conn(ctx); !isConCount(err) {
		t.Fatalf("one login over max_connections: %v, want error 1040", err)
	}
}

func isConCount(err error) bool {
	code, _ := mysqlErr(err)
	return code == 1040
}

func TestTLSHandshakeIsBoundedByHandshakeTimeout(t *testing.T) {
	p := startProxy(t, func(c *Config, _ []*Node) {
		c.TLS, c.HandshakeTimeout = selfSigned(t), 300*time.Millisecond
	})
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := readPacket(conn, nil, 0); err != nil {
		t.Fatal(err)
	}
	// An SSLRequest, then a TLS ClientHello that never comes.
	req := make([]byte, sslRequestLen)
	caps := uint32(mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_SSL)
	req[0], req[1], req[2], req[3] = byte(caps), byte(caps>>8), byte(caps>>16), byte(caps>>24)
	if err := writeRaw(conn, 1, req); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("tandem sent something to a client silent inside TLS")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("tandem kept a client silent inside TLS open for 10s")
	}
	waitFor(t, 5*time.Second, "the handshake slot to be freed", func() bool { return p.HandshakeCount() == 0 })
}

// bigResult is a query whose result (about 64 MB) cannot fit in socket
// buffers.
const bigResult = "SELECT REPEAT('x', 1000000) FROM seq_1_to_64"

func TestClientNotReadingIsCutAfterNetWriteTimeout(t *testing.T) {
	p := startProxy(t, func(c *Config, _ []*Node) { c.NetWriteTimeout = 500 * time.Millisecond })
	rc := dialRaw(t, p.addr, 0)
	rc.send(append([]byte{mysql.COM_QUERY}, bigResult...))
	start := time.Now()
	// Read nothing. tandem must give up on this client.
	waitFor(t, 30*time.Second, "the session of a client that reads nothing to be closed", func() bool { return p.SessionCount() == 0 })
	t.Logf("a client that stopped reading was cut after %v (net_write_timeout 500ms)", time.Since(start).Round(time.Millisecond))
	if err := probe(p.addr, 5*time.Second); err != nil {
		t.Fatalf("a new client after the cut: %v", err)
	}
	// The node's thread for it is gone too (tandem closed its node
	// connection).
	waitFor(t, 10*time.Second, "the node to end the stuck session's query", func() bool {
		var c int
		err := testpair.AdminDB(t, testpair.A).QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT REPEAT%'").Scan(&c)
		return err == nil && c == 0
	})
}

func TestStuckClientDoesNotHoldASwitchover(t *testing.T) {
	p := startProxy(t, nil) // net_write_timeout 60s
	rc := dialRaw(t, p.addr, 0)
	rc.send(append([]byte{mysql.COM_QUERY}, bigResult...))
	waitFor(t, 10*time.Second, "the command to start", func() bool { return p.Sessions().Busy == 1 })
	// The client reads nothing: within a bounded time the session no
	// longer counts as running a command, though it is still open.
	waitFor(t, 20*time.Second, "Activity to stop counting the stuck session", func() bool {
		busy, inTx := p.Activity()
		return busy == 0 && inTx == 0
	})
	if n := p.SessionCount(); n != 1 {
		t.Fatalf("%d sessions, want the stuck one still open", n)
	}
	// When the client reads again, it gets its whole result.
	_ = rc.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	res := rc.read(3) // column count, column, EOF
	if len(res[0]) != 1 || res[0][0] != 1 {
		t.Fatalf("column count %x", res[0])
	}
	rows := 0
	for {
		pkt, _, err := readPacket(rc.conn, nil, 0)
		if err != nil {
			t.Fatalf("after %d rows: %v", rows, err)
		}
		if pkt[0] == 0xfe && len(pkt) < 9 {
			break
		}
		rows++
	}
	if rows != 64 {
		t.Fatalf("%d rows, want 64", rows)
	}
	if busy, _ := p.Activity(); busy != 0 {
		t.Fatalf("busy %d after the result", busy)
	}
}
