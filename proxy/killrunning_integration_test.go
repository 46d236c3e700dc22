package proxy

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/testpair"
)

// killOutcome classifies how a statement ended when another session killed
// its connection: "lost" (the connection closed under it, what drivers
// report as a lost or bad connection), "mysql <code>", or "ok".
func killOutcome(err error) string {
	var me *mysql.MySQLError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &me):
		return fmt.Sprintf("mysql %d", me.Number)
	case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, driver.ErrBadConn):
		return "lost"
	}
	return "other: " + err.Error()
}

// TestKillConnectionOfRunningStatement: KILL CONNECTION <id> of a session
// in the middle of a statement (found by mysql-test-run's main.lock_kill
// through tandem, `make compat`). The node closes that thread's connection
// without an answer; directly the client sees a lost connection, and
// through tandem it must too: not tandem's 1317 "node failed while this
// statement ran", and tandem must not report a node failure.
func TestKillConnectionOfRunningStatement(t *testing.T) {
	var nodeFailed atomic.Int32
	p := startProxy(t, func(c *Config, _ []*Node) {
		c.NodeFailed = func(string) { nodeFailed.Add(1) }
	})
	// Which of the two closes the client first, the node's EOF on the
	// victim's connection or the killer's OK, is a race: several rounds.
	for round := 0; round < 5; round++ {
		killRunningRound(t, p)
	}
	if n := nodeFailed.Load(); n != 0 {
		t.Fatalf("tandem reported %d node failures for a KILL", n)
	}
}

func killRunningRound(t *testing.T, p *testProxy) {
	var outcomes []string
	both(t, p, func(t *testing.T, addr string) {
		db := openDB(t, driverConfig(addr))
		ctx := context.Background()
		victim, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer victim.Close()
		var id uint32
		if err := victim.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			var r int
			errc <- victim.QueryRowContext(ctx, "SELECT SLEEP(30) AS kill_running").Scan(&r)
		}()
		admin := testpair.AdminDB(t, testpair.A)
		waitFor(t, 10*time.Second, "the victim's SLEEP to run", func() bool {
			var n int
			if err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO LIKE '%kill_running%'", id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		})
		mustExec(t, db, fmt.Sprintf("KILL CONNECTION %d", id))
		select {
		case err := <-errc:
			o := killOutcome(err)
			outcomes = append(outcomes, o)
		case <-time.After(20 * time.Second):
			t.Fatal("KILL CONNECTION did not end the running statement")
		}
		// Nothing more on that connection, directly or through tandem.
		var one int
		if err := victim.QueryRowContext(ctx, "SELECT 1").Scan(&one); err == nil {
			t.Fatal("the killed connection still answers")
		}
	})
	if len(outcomes) != 2 {
		t.Fatalf("outcomes %v", outcomes)
	}
	if outcomes[0] != outcomes[1] {
		t.Fatalf("the killed statement ended with %s directly, %s through tandem", outcomes[0], outcomes[1])
	}
	if strings.HasPrefix(outcomes[1], "mysql 1317") {
		t.Fatal("tandem answered 1317")
	}
}
