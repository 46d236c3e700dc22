package proxy

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/binary"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/nodetls"
	"github.com/tandemdb/tandem/internal/testpair"
)

// sessionTLS reads Ssl_cipher and the node's port on one connection of db.
func sessionTLS(t *testing.T, db *sql.DB) (cipher string, port int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var name string
	if err := db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
		t.Fatalf("Ssl_cipher: %v", err)
	}
	if err := db.QueryRowContext(ctx, "SELECT @@port").Scan(&port); err != nil {
		t.Fatalf("@@port: %v", err)
	}
	return cipher, port
}

// withNodeTLS sets every node's TLS to c.
func withNodeTLS(c *nodetls.Client, more func(*Config)) func(*Config, []*Node) {
	return func(cfg *Config, nodes []*Node) {
		for _, n := range nodes {
			n.TLS = c
		}
		if more != nil {
			more(cfg)
		}
	}
}

// TestNodeTLSThroughTandem: with verify-full to the pair (startProxy's
// default) a plaintext client's statements run on a TLS node session
// (Ssl_cipher, as the node reports it, is set), an account that REQUIRE
// SSL logs in through tandem, and both stop being true with tls off.
func TestNodeTLSThroughTandem(t *testing.T) {
	runtimeAccounts(t, map[string]string{"'tls_only'@'127.0.0.1'": "IDENTIFIED BY 'tlspw' REQUIRE SSL"})
	// The account is refused in plaintext directly, as tandem will be
	// with tls off.
	if _, code := tryLogin(t, testpair.Addr(testpair.A), "tls_only", "tlspw"); code != 1045 {
		t.Fatalf("REQUIRE SSL account, plaintext, directly: code %d, want 1045", code)
	}
	for _, c := range []struct {
		name string
		tls  *nodetls.Client
	}{{"verify-full", testpair.TLS(t)}, {"off", nil}} {
		t.Run(c.name, func(t *testing.T) {
			p := startProxy(t, func(cfg *Config, nodes []*Node) {
				for _, n := range nodes {
					n.TLS = c.tls
				}
				cfg.Users = nil
				cfg.Accounts = pairAccounts(t)
			})
			cipher, port := sessionTLS(t, openDB(t, driverConfig(p.addr)))
			if port != testpair.Port(testpair.A) || (cipher != "") != (c.tls != nil) {
				t.Fatalf("through tandem: Ssl_cipher %q on port %d", cipher, port)
			}
			user, code := tryLogin(t, p.addr, "tls_only", "tlspw")
			if c.tls != nil && user != "tls_only@127.0.0.1" || c.tls == nil && code != 1045 {
				t.Fatalf("REQUIRE SSL account through tandem: %q, code %d", user, code)
			}
		})
	}
}

// TestNodeTLSWithClientTLS: a client on TLS to tandem sees the node
// session's own cipher, not an empty one.
func TestNodeTLSWithClientTLS(t *testing.T) {
	cert, caFile := nodeCert(t)
	p := startProxy(t, func(cfg *Config, _ []*Node) {
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	})
	c := driverConfig(p.addr)
	ct, err := nodetls.New(nodetls.Settings{Mode: nodetls.VerifyFull, CAFile: caFile}, p.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.TLS = ct.Config()
	cipher, _ := sessionTLS(t, openDB(t, c))
	if cipher == "" {
		t.Fatal("a TLS client through tandem sees an empty Ssl_cipher")
	}
}

// TestNodeTLSSessionMovesWithTLS: a session moved to the other node (a
// route change, as after a failover or switchover) re-dials it with TLS.
func TestNodeTLSSessionMovesWithTLS(t *testing.T) {
	p := startProxy(t, nil)
	db, dials := countingDB(t, p.addr)
	if cipher, port := sessionTLS(t, db); cipher == "" || port != testpair.Port(testpair.A) {
		t.Fatalf("before the move: Ssl_cipher %q, port %d", cipher, port)
	}
	for _, to := range []string{"b", "a"} {
		if err := p.Route(to); err != nil {
			t.Fatal(err)
		}
		want := testpair.Port(testpair.A)
		if to == "b" {
			want = testpair.Port(testpair.B)
		}
		if cipher, port := sessionTLS(t, db); cipher == "" || port != want {
			t.Fatalf("after the move to %s: Ssl_cipher %q, port %d", to, cipher, port)
		}
	}
	if dials.Load() != 1 {
		t.Fatalf("%d dials: the moves must be invisible to the client", dials.Load())
	}
}

// TestNodeTLSIdleSessionKeepsItsConnection: the idle check peeks under
// TLS: an idle session whose node connection is fine keeps it (no false
// "closed" from pending TLS records), and one the node closed is redialed
// (TestIdleSessionSurvivesNodeClosingIt, on TLS via startProxy).
func TestNodeTLSIdleSessionKeepsItsConnection(t *testing.T) {
	p := startProxy(t, func(c *Config, _ []*Node) { c.IdleCheck = 50 * time.Millisecond })
	db, _ := countingDB(t, p.addr)
	var first int64
	if err := db.QueryRow("SELECT CONNECTION_ID()").Scan(&first); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		idleSince := time.Now()
		waitFor(t, 5*time.Second, "the session to be idle for twice IdleCheck", func() bool {
			return time.Since(idleSince) > 100*time.Millisecond
		})
		var id int64
		if err := db.QueryRow("SELECT CONNECTION_ID()").Scan(&id); err != nil || id != first {
			t.Fatalf("round %d: node thread %d → %d (%v): an idle TLS node connection was taken for closed", i, first, id, err)
		}
	}
	if cipher, _ := sessionTLS(t, db); cipher == "" {
		t.Fatal("no TLS")
	}
}

// TestNodeTLSWrongServerName: verify-full with a name the node's
// certificate does not hold fails the login at once with a clear error.
func TestNodeTLSWrongServerName(t *testing.T) {
	wrong, err := nodetls.New(nodetls.Settings{Mode: nodetls.VerifyFull, CAFile: testpair.CA(), ServerName: "wrong.example"}, testpair.Addr(testpair.A))
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, withNodeTLS(wrong, nil))
	start := time.Now()
	err = openDB(t, driverConfig(p.addr)).Ping()
	code, msg := mysqlErr(err)
	if code != erUnknown || !strings.Contains(msg, `TLS with node a (tls = "verify-full") failed`) ||
		!strings.Contains(msg, "wrong.example") {
		t.Fatalf("got %v, want error 1105 naming the node and the name", err)
	}
	// At once: a configuration error is not waited out like an outage.
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the error took %v (hold_timeout is %v)", d, DefaultConfig().HoldTimeout)
	}
}

// TestNodeTLSVerifyCA: verify-ca accepts the pair's CA, refuses another.
func TestNodeTLSVerifyCA(t *testing.T) {
	good, err := nodetls.New(nodetls.Settings{Mode: nodetls.VerifyCA, CAFile: testpair.CA()}, testpair.Addr(testpair.A))
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, withNodeTLS(good, nil))
	if cipher, _ := sessionTLS(t, openDB(t, driverConfig(p.addr))); cipher == "" {
		t.Fatal("verify-ca: no TLS")
	}
	_, otherCA := nodeCert(t) // a CA that did not sign the pair's certificates
	bad, err := nodetls.New(nodetls.Settings{Mode: nodetls.VerifyCA, CAFile: otherCA}, testpair.Addr(testpair.A))
	if err != nil {
		t.Fatal(err)
	}
	p = startProxy(t, withNodeTLS(bad, nil))
	err = openDB(t, driverConfig(p.addr)).Ping()
	if _, msg := mysqlErr(err); !strings.Contains(msg, "certificate signed by unknown authority") {
		t.Fatalf("verify-ca with another CA: %v", err)
	}
}

// stripRelay forwards loopback connections to target, clearing CLIENT_SSL
// in the node's greeting: a node that does not offer TLS.
type stripRelay struct {
	l     net.Listener
	conns sync.WaitGroup
}

func newStripRelay(t *testing.T, target string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &stripRelay{l: l}
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		r.conns.Wait()
	})
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
			mu.Lock()
			open = append(open, c, up)
			mu.Unlock()
			r.conns.Add(2)
			go func() {
				defer r.conns.Done()
				defer c.Close()
				// The greeting: header, protocol 10, version, NUL,
				// thread id (4), scramble (8), filler (1), flags (2).
				var hdr [4]byte
				if _, err := io.ReadFull(up, hdr[:]); err != nil {
					return
				}
				body := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
				if _, err := io.ReadFull(up, body); err != nil {
					return
				}
				if i := strings.IndexByte(string(body[1:]), 0); i >= 0 && 1+i+1+13+2 <= len(body) {
					at := 1 + i + 1 + 13
					flags := binary.LittleEndian.Uint16(body[at:])
					binary.LittleEndian.PutUint16(body[at:], flags&^uint16(gmysql.CLIENT_SSL))
				}
				if _, err := c.Write(append(hdr[:], body...)); err != nil {
					return
				}
				_, _ = io.Copy(c, up)
			}()
			go func() {
				defer r.conns.Done()
				defer up.Close()
				_, _ = io.Copy(up, c)
			}()
		}
	}()
	return l.Addr().String()
}

// TestNodeTLSNotOffered: through a node that does not offer TLS, required
// (and the verify modes) refuse the login with a clear error, preferred
// goes on in plaintext and says so, off never asks.
func TestNodeTLSNotOffered(t *testing.T) {
	relay := newStripRelay(t, testpair.Addr(testpair.A))
	// The relay works: a direct plaintext client gets through it, and a
	// client that requires TLS is told the server has none.
	direct := driverConfig(relay)
	if _, err := openDB(t, direct).Exec("SELECT 1"); err != nil {
		t.Fatalf("plaintext through the relay: %v", err)
	}
	direct.TLS = testpair.TLS(t).Config()
	if err := openDB(t, direct).Ping(); err == nil || !strings.Contains(err.Error(), mysql.ErrNoTLS.Error()) {
		t.Fatalf("TLS client through the relay: %v, want %v", err, mysql.ErrNoTLS)
	}
	for _, mode := range []nodetls.Mode{nodetls.Required, nodetls.VerifyCA, nodetls.VerifyFull, nodetls.Preferred, nodetls.Off} {
		t.Run(mode.String(), func(t *testing.T) {
			s := nodetls.Settings{Mode: mode}
			if mode == nodetls.VerifyCA || mode == nodetls.VerifyFull {
				s.CAFile = testpair.CA()
			}
			c, err := nodetls.New(s, relay)
			if err != nil {
				t.Fatal(err)
			}
			var plain atomic.Int32
			p := startProxy(t, func(cfg *Config, nodes []*Node) {
				nodes[0].Address, nodes[0].TLS, nodes[0].OnPlaintext = relay, c, func() { plain.Add(1) }
			})
			db := openDB(t, driverConfig(p.addr))
			if mode >= nodetls.Required {
				err := db.Ping()
				code, msg := mysqlErr(err)
				want := `tandem: node a: the node does not offer TLS (its greeting lacks CLIENT_SSL), and its tls = "` + mode.String() + `" requires it`
				if code != erUnknown || msg != want {
					t.Fatalf("got %v, want error %d %q", err, erUnknown, want)
				}
				return
			}
			if cipher, _ := sessionTLS(t, db); cipher != "" {
				t.Fatalf("Ssl_cipher %q through a relay that hides TLS", cipher)
			}
			if got, want := plain.Load(), map[nodetls.Mode]int32{nodetls.Preferred: 1, nodetls.Off: 0}[mode]; got != want {
				t.Fatalf("OnPlaintext called %d times, want %d", got, want)
			}
		})
	}
}

// TestNodeTLSDriverPoolsKeepTLS: go-sql-driver pools built with
// nodetls.Apply (monitor, accounts, settling) use TLS; a preferred pool
// that met a node without TLS still uses TLS on the next node that offers
// it (go-sql-driver v1.10 would otherwise drop TLS from the shared config).
func TestNodeTLSDriverPoolsKeepTLS(t *testing.T) {
	testpair.Require(t)
	relay := newStripRelay(t, testpair.Addr(testpair.A))
	pref, err := nodetls.New(nodetls.Settings{Mode: nodetls.Preferred}, testpair.Addr(testpair.A))
	if err != nil {
		t.Fatal(err)
	}
	var viaRelay atomic.Bool
	viaRelay.Store(true)
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = testpair.AdminUser, testpair.AdminPassword, "tcp", testpair.Addr(testpair.A)
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 5*time.Second, 30*time.Second, 30*time.Second
	if err := pref.Apply(c); err != nil {
		t.Fatal(err)
	}
	c.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if viaRelay.Load() {
			addr = relay
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	db := openDB(t, c)
	db.SetMaxIdleConns(0) // a new connection per statement
	if cipher, _ := sessionTLS(t, db); cipher != "" {
		t.Fatalf("preferred through a relay that hides TLS: Ssl_cipher %q", cipher)
	}
	viaRelay.Store(false)
	if cipher, _ := sessionTLS(t, db); cipher == "" {
		t.Fatal("preferred, node offering TLS, after one plaintext connection: plaintext")
	}
	full := testpair.TLS(t)
	c2 := mysql.NewConfig()
	c2.User, c2.Passwd, c2.Net, c2.Addr = testpair.AdminUser, testpair.AdminPassword, "tcp", testpair.Addr(testpair.B)
	c2.Timeout = 5 * time.Second
	if err := full.Apply(c2); err != nil {
		t.Fatal(err)
	}
	if cipher, _ := sessionTLS(t, openDB(t, c2)); cipher == "" {
		t.Fatal("verify-full pool: plaintext")
	}
}

// TestNodeTLSResumesSessions: later node connections resume the TLS
// session (a ticket cache per node): no certificate exchange or check.
func TestNodeTLSResumesSessions(t *testing.T) {
	testpair.Require(t)
	n := &Node{Name: "a", Address: testpair.Addr(testpair.A), TLS: testpair.TLS(t)}
	lp := &loginParams{User: testpair.AppUser, Password: testpair.AppPassword,
		Caps: requiredCaps | gmysql.CLIENT_PLUGIN_AUTH, Collation: 45, MaxPacket: 1 << 24}
	for i := range 3 {
		be, err := dialBackend(context.Background(), n, lp, dialTimeouts{Connect: 5 * time.Second, Login: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		resumed := be.conn.(*tls.Conn).ConnectionState().DidResume
		be.close()
		if resumed != (i > 0) {
			t.Fatalf("login %d: resumed %v", i, resumed)
		}
	}
}

// TestNodeTLSCipherAsDirectly: the mariadb CLI (OpenSSL) sees the same
// Ssl_cipher through tandem, on TLS to tandem and tandem on TLS to the node,
// as directly; so does a Go client in plaintext to tandem. Go's own TLS 1.3
// order gave TLS_AES_128_GCM_SHA256 through tandem where OpenSSL's
// clients get TLS_AES_256_GCM_SHA384 directly (internal/nodetls/order.go).
func TestNodeTLSCipherAsDirectly(t *testing.T) {
	cert, _ := nodeCert(t)
	p := startProxy(t, func(cfg *Config, _ []*Node) {
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	})
	cli := func(addr string) string {
		host, port, _ := net.SplitHostPort(addr)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "mariadb", "-h", host, "-P", port, "--protocol=tcp",
			"-u"+testpair.AppUser, "-p"+testpair.AppPassword, "--ssl", "--skip-ssl-verify-server-cert",
			"-N", "-B", "-e", "SHOW SESSION STATUS LIKE 'Ssl_cipher'").CombinedOutput()
		if err != nil {
			t.Fatalf("mariadb --ssl to %s: %v\n%s", addr, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	direct := cli(testpair.Addr(testpair.A))
	if !strings.HasPrefix(direct, "Ssl_cipher\t") || direct == "Ssl_cipher\t" {
		t.Fatalf("directly: %q, want a cipher", direct)
	}
	if through := cli(p.addr); through != direct {
		t.Fatalf("Ssl_cipher through tandem %q, directly %q", through, direct)
	}
	if cipher, _ := sessionTLS(t, openDB(t, driverConfig(p.addr))); "Ssl_cipher\t"+cipher != direct {
		t.Fatalf("Go client through tandem: Ssl_cipher %q, the CLI directly %q", cipher, direct)
	}
}
