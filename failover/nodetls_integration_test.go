package failover_test

import (
	"context"
	"database/sql"
	"net"
	"sync/atomic"
	"testing"
	"time"

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
