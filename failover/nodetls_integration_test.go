package failover_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/failover"
	"github.com/tandemdb/tandem/internal/settlehook"
	"github.com/tandemdb/tandem/internal/testpair"
	"github.com/tandemdb/tandem/proxy"
)

// TestFailoverOverTLS: tandem's admin account and the app's account both
// REQUIRE SSL on the nodes, so any plaintext link tandem made would be
// refused: the monitor judges both nodes healthy, a SIGKILL of the active
// is detected and b promoted (fencing, replication and decision SQL), and
// the app's session moves to b on a new TLS node connection, all without
// the client noticing more than its one statement.
func TestFailoverOverTLS(t *testing.T) {
	testpair.Require(t)
	accounts := []string{"'tls_admin'@'127.0.0.1'", "'tls_app'@'127.0.0.1'"}
	t.Cleanup(func() {
		testpair.Reset(t) // a is the writer again
		db := nodeDB(t, testpair.A)
		for _, a := range accounts {
			if _, err := db.Exec("DROP USER IF EXISTS " + a); err != nil {
				t.Errorf("dropping %s: %v", a, err)
			}
		}
	})
	forgetRecordedDecision(t)
	admin := nodeDB(t, testpair.A)
	for _, a := range accounts {
		mustExec(t, admin, "DROP USER IF EXISTS "+a)
	}
	mustExec(t, admin, "CREATE USER 'tls_admin'@'127.0.0.1' IDENTIFIED BY 'tlsadminpw' REQUIRE SSL")
	mustExec(t, admin, "GRANT ALL PRIVILEGES ON *.* TO 'tls_admin'@'127.0.0.1' WITH GRANT OPTION")
	mustExec(t, admin, "CREATE USER 'tls_app'@'127.0.0.1' IDENTIFIED BY 'tlsapppw' REQUIRE SSL")
	mustExec(t, admin, "GRANT ALL PRIVILEGES ON app.* TO 'tls_app'@'127.0.0.1'")
	testpair.WaitInSync(t, 30*time.Second) // the accounts on b too

	tn := startTandemWith(t, newStore(t), testpair.Addr(testpair.A), testpair.Addr(testpair.B), func(pc *proxy.Config, fc *failover.Config) {
		pc.Users = map[string]string{"tls_app": "tlsapppw"}
		fc.AdminUser, fc.AdminPassword = "tls_admin", "tlsadminpw"
		tlsToNodes := testpair.TLS(t)
		pc.Settle = settlehook.New([]*proxy.Node{
			{Name: "a", Address: testpair.Addr(testpair.A), TLS: tlsToNodes},
			{Name: "b", Address: testpair.Addr(testpair.B), TLS: tlsToNodes}}, "tls_admin", "tlsadminpw").Settle
	}, nil)
	tn.waitStatus(t, 20*time.Second, "both nodes healthy", func(s failover.Status) bool {
		return s.State == "active" && nodeStatus(s, "a").Healthy && nodeStatus(s, "b").Healthy
	})

	c := tn.clientConfig()
	c.User, c.Passwd = "tls_app", "tlsapppw"
	var dials atomic.Int32
	c.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	cipherAndPort := func() (string, int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var name, cipher string
		var p int
		if err := db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
			return "", 0, err
		}
		err := db.QueryRowContext(ctx, "SELECT @@port").Scan(&p)
		return cipher, p, err
	}
	if cipher, p, err := cipherAndPort(); err != nil || cipher == "" || p != testpair.Port(testpair.A) {
		t.Fatalf("before the failover: Ssl_cipher %q on port %d (%v)", cipher, p, err)
	}

	testpair.Kill(t, testpair.A)
	tn.waitActive(t, 20*time.Second, "b", 2)
	// The session's first statement after the move may get the one error
	// of a session whose node died; the next runs on b.
	deadline := time.Now().Add(20 * time.Second)
	for {
		cipher, p, err := cipherAndPort()
		if err == nil {
			if cipher == "" || p != testpair.Port(testpair.B) {
				t.Fatalf("after the failover: Ssl_cipher %q on port %d", cipher, p)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the failover: %v", err)
		}
		t.Logf("statement after the kill: %v", err)
		time.Sleep(50 * time.Millisecond)
	}
	if ro, err := readOnly(t, testpair.B); err != nil || ro {
		t.Fatalf("node b read_only=%v (%v): promotion over TLS did not happen", ro, err)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("the client dialed %d times; the move must be invisible to it", n)
	}
}

// stripRelay forwards loopback connections to target; while strip is set,
// new connections see the node's greeting without CLIENT_SSL (a node that
// does not offer TLS). dropAll closes the relayed connections.
type stripRelay struct {
	l     net.Listener
	strip atomic.Bool
	mu    sync.Mutex
	conns []net.Conn
}

func newStripRelay(t *testing.T, target string) *stripRelay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &stripRelay{l: l}
	t.Cleanup(func() { l.Close(); r.dropAll() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, c, up)
			r.mu.Unlock()
			strip := r.strip.Load()
			go func() {
				defer c.Close()
				var hdr [4]byte
				if _, err := io.ReadFull(up, hdr[:]); err != nil {
					return
				}
				body := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
				if _, err := io.ReadFull(up, body); err != nil {
					return
				}
				// protocol 10, version NUL, thread id (4), scramble (8),
				// filler (1), capability flags (2).
				if i := bytes.IndexByte(body[1:], 0); strip && i >= 0 && 1+i+1+13+2 <= len(body) {
					at := 1 + i + 1 + 13
					binary.LittleEndian.PutUint16(body[at:], binary.LittleEndian.Uint16(body[at:])&^uint16(gomysql.CLIENT_SSL))
				}
				if _, err := c.Write(append(hdr[:], body...)); err != nil {
					return
				}
				_, _ = io.Copy(c, up)
			}()
			go func() {
				defer up.Close()
				_, _ = io.Copy(up, c)
			}()
		}
	}()
	return r
}

func (r *stripRelay) addr() string { return r.l.Addr().String() }

func (r *stripRelay) dropAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

// TestTLSMistakeNeverFailsANode: when the active node stops offering TLS
// (here a relay hides it) while its tls mode requires it, the monitor
// cannot log in, says why, and never judges the node failed: a TLS mistake
// must not cause a failover.
func TestTLSMistakeNeverFailsANode(t *testing.T) {
	testpair.Require(t)
	t.Cleanup(func() { testpair.Reset(t) })
	forgetRecordedDecision(t)
	relay := newStripRelay(t, testpair.Addr(testpair.A))
	tn := startTandemSplit(t, newStore(t), [2]string{testpair.Addr(testpair.A), testpair.Addr(testpair.B)},
		[2]string{relay.addr(), testpair.Addr(testpair.B)}, nil, nil)
	tn.waitStatus(t, 20*time.Second, "both nodes healthy", func(s failover.Status) bool {
		return s.State == "active" && nodeStatus(s, "a").Healthy && nodeStatus(s, "b").Healthy
	})
	relay.strip.Store(true)
	relay.dropAll() // the monitor reconnects, and finds no TLS
	s := tn.waitStatus(t, 20*time.Second, "node a's TLS error in status", func(s failover.Status) bool {
		return strings.Contains(nodeStatus(s, "a").LastError, mysql.ErrNoTLS.Error())
	})
	t.Logf("node a: %s", nodeStatus(s, "a").LastError)
	// Many checks later (fail_after is 3 at 250 ms), a is still active and
	// nothing failed over.
	cfg := failover.DefaultConfig()
	deadline := time.Now().Add(10 * time.Duration(cfg.FailAfter) * cfg.Interval)
	for time.Now().Before(deadline) {
		s := tn.m.Status()
		if !strings.Contains(nodeStatus(s, "a").LastError, mysql.ErrNoTLS.Error()) {
			t.Fatalf("node a's error changed: %q", nodeStatus(s, "a").LastError)
		}
		if s.Decision.Active != "a" || s.Decision.Epoch != 1 {
			t.Fatalf("failed over on a TLS mistake: %s", describe(s))
		}
		if e, ok := tn.events.find(failover.EventNodeDown); ok {
			t.Fatalf("node judged down on a TLS mistake: %+v", e)
		}
		time.Sleep(cfg.Interval)
	}
}
