package proxy

// KILL through tandem: the node's own privilege rules decide, and a KILL
// never reaches a thread on another node than the killer's.

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/tandemdb/tandem/internal/testpair"
)

const (
	otherUser     = "tandem_kill_b"
	otherPassword = "killpass"
)

// createOtherUser adds a second application account on the pair (made on
// node a, replicated to b) and drops it when the test ends.
func createOtherUser(t *testing.T) {
	t.Helper()
	admin := testpair.AdminDB(t, testpair.A)
	for _, q := range []string{
		"DROP USER IF EXISTS '" + otherUser + "'@'127.0.0.1'",
		"CREATE USER '" + otherUser + "'@'127.0.0.1' IDENTIFIED BY '" + otherPassword + "'",
		"GRANT SELECT ON " + testpair.AppDB + ".* TO '" + otherUser + "'@'127.0.0.1'",
	} {
		mustExec(t, admin, q)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP USER IF EXISTS '" + otherUser + "'@'127.0.0.1'"); err != nil {
			t.Errorf("dropping %s: %v", otherUser, err)
		}
	})
}

// session opens one connection as user through addr and returns it with
// its node thread id.
func sessionAs(t *testing.T, addr, user, password string) (*sql.Conn, int64) {
	t.Helper()
	c := driverConfig(addr)
	c.User, c.Passwd = user, password
	db := openDB(t, c)
	var conn *sql.Conn
	err := nonceRetry(func() (err error) {
		conn, err = db.Conn(context.Background())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var thread int64
	if err := conn.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&thread); err != nil {
		t.Fatal(err)
	}
	return conn, thread
}

func alive(c *sql.Conn) error {
	var one int
	return c.QueryRowContext(context.Background(), "SELECT 1").Scan(&one)
}

func TestKillFollowsNodePrivilegesAndNeverCrossesNodes(t *testing.T) {
	createOtherUser(t)
	p := startProxy(t, func(c *Config, _ []*Node) { c.Users[otherUser] = otherPassword })
	ctx := context.Background()

	// Directly on the node, user B may not kill user A's thread: 1095.
	directA, threadA := sessionAs(t, testpair.Addr(testpair.A), testpair.AppUser, testpair.AppPassword)
	directB, _ := sessionAs(t, testpair.Addr(testpair.A), otherUser, otherPassword)
	_, err := directB.ExecContext(ctx, fmt.Sprintf("KILL %d", threadA))
	if code, _ := mysqlErr(err); code != 1095 {
		t.Fatalf("directly: B kills A: %v, want error 1095", err)
	}
	if err := alive(directA); err != nil {
		t.Fatal(err)
	}

	// The same through tandem.
	victim, vid := sessionAs(t, p.addr, testpair.AppUser, testpair.AppPassword)
	b, _ := sessionAs(t, p.addr, otherUser, otherPassword)
	for _, stmt := range []string{"KILL %d", "KILL QUERY %d", "KILL CONNECTION %d"} {
		_, err := b.ExecContext(ctx, fmt.Sprintf(stmt, vid))
		if code, _ := mysqlErr(err); code != 1095 {
			t.Fatalf("through tandem: B runs %q on A's session: %v, want error 1095", fmt.Sprintf(stmt, vid), err)
		}
	}
	if err := alive(victim); err != nil {
		t.Fatalf("A's session after B's refused KILL: %v", err)
	}

	// A user can kill its own other session.
	killer, _ := sessionAs(t, p.addr, testpair.AppUser, testpair.AppPassword)
	if _, err := killer.ExecContext(ctx, fmt.Sprintf("KILL %d", vid)); err != nil {
		t.Fatalf("A kills its own other session: %v", err)
	}
	if err := alive(victim); err == nil {
		t.Fatal("the killed session still answers")
	}

	// A session that kills itself ends, rather than moving on to a new
	// node connection.
	self, sthread := sessionAs(t, p.addr, testpair.AppUser, testpair.AppPassword)
	_, _ = self.ExecContext(ctx, fmt.Sprintf("KILL %d", sthread))
	if err := alive(self); err == nil {
		t.Fatal("a session that killed itself still answers")
	}

	// After a move, the killer is on node b and the target, idle, still
	// on node a: its thread id means nothing on b, so 1094.
	stay, tid := sessionAs(t, p.addr, testpair.AppUser, testpair.AppPassword)
	mover, _ := sessionAs(t, p.addr, testpair.AppUser, testpair.AppPassword)
	if err := p.Route("b"); err != nil {
		t.Fatal(err)
	}
	defer p.Route("a")
	if got := port(t, mover); got != testpair.Port(testpair.B) {
		t.Fatalf("killer on port %d after the route change, want node b", got)
	}
	var mthread int64
	if err := mover.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&mthread); err != nil {
		t.Fatal(err)
	}
	if mthread == tid {
		t.Fatalf("the killer's thread on b has the target's id on a (%d): the check below would be a self-kill", tid)
	}
	_, err = mover.ExecContext(ctx, fmt.Sprintf("KILL %d", tid))
	if code, _ := mysqlErr(err); code != 1094 {
		t.Fatalf("KILL of a session on the other node: %v, want error 1094", err)
	}
	if err := alive(stay); err != nil {
		t.Fatalf("the target of a refused cross-node KILL: %v", err)
	}
}
