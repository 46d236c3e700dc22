package failover

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/faultrelay"
	"github.com/tandemdb/tandem/internal/testpair"
)

// TestReleaseWhileBackgroundWritesWaitForAck reproduces, on the real pair,
// the stall seen when a partition cut the passive off: the active's commits
// wait for the passive's acknowledgement, and so do tandem's own background
// writes on the active (the heartbeat, and the decision recorded after each
// save: markUnsynced saves just before the release). They used to share
// the node's connection pool (3 connections) with the checks and the
// release: with the heartbeat and two decision records stuck, the release
// (SET GLOBAL rpl_semi_sync_master_enabled = OFF) and the checks waited
// for a free connection until their deadlines, the node looked failed, and
// writes stopped until the records' own 10 s deadline freed a connection.
// The check and the release must not depend on those writes: both must
// succeed while they wait, and the release must free the waiting commits.
func TestReleaseWhileBackgroundWritesWaitForAck(t *testing.T) {
	testpair.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const schema = "tandem_release_test"
	a, b := adminDB(t, testpair.A), adminDB(t, testpair.B)
	exec := func(db *sql.DB, q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var timeoutMS string
	if err := a.QueryRowContext(ctx, "SELECT @@GLOBAL.rpl_semi_sync_master_timeout").Scan(&timeoutMS); err != nil {
		t.Fatal(err)
	}

	// b receives from a through a relay that will black-hole the link, as
	// a partition does: nothing passes, nothing is closed.
	r, err := faultrelay.New(testpair.Addr(testpair.A), 0)
	if err != nil {
		t.Fatal(err)
	}
	pointB := func(ctx context.Context, port int) error {
		for _, q := range []string{"STOP SLAVE", fmt.Sprintf("CHANGE MASTER TO MASTER_PORT = %d", port), "START SLAVE"} {
			if _, err := b.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("node b: %s: %w", q, err)
			}
		}
		return nil
	}
	t.Cleanup(func() {
		// The relay is closed first: b's I/O thread then stops at once.
		r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := pointB(ctx, testpair.Port(testpair.A)); err != nil {
			t.Error(err)
		}
		for _, q := range []string{"SET GLOBAL rpl_semi_sync_master_enabled = ON, rpl_semi_sync_master_timeout = " + timeoutMS,
			"DROP DATABASE IF EXISTS " + schema} {
			if _, err := a.ExecContext(ctx, q); err != nil {
				t.Errorf("node a: %s: %v", q, err)
			}
		}
	})
	if err := pointB(ctx, r.Port()); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.AdminUser, cfg.AdminPassword = testpair.AdminUser, testpair.AdminPassword
	n, err := openNode(cfg, NodeConfig{Name: "a", Address: testpair.Addr(testpair.A)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	d := Decision{Active: "a", Epoch: 1, Time: time.Now().UTC(), Reason: "release test"}
	if err := n.WriteDecision(ctx, schema, d); err != nil {
		t.Fatal(err)
	}
	if err := n.WriteHeartbeat(ctx, schema, "a", 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	exec(a, "CREATE TABLE IF NOT EXISTS "+schema+".app (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
	if err := n.ConfigureSemiSyncSource(ctx, cfg.SemiSyncTimeout); err != nil {
		t.Fatal(err)
	}
	waitSemiSync(t, a, "the passive connected and semi-sync on", func(st map[string]string) bool {
		return st["rpl_semi_sync_master_clients"] == "1" && st["rpl_semi_sync_master_status"] == "ON"
	})

	r.Set(faultrelay.Stall)
	// An application's commit, then tandem's background writes, all
	// waiting for the acknowledgement.
	committed := make(chan error, 1)
	go func() {
		_, err := a.ExecContext(ctx, "INSERT INTO "+schema+".app (v) VALUES (1)")
		committed <- err
	}()
	waitSemiSync(t, a, "a commit waiting for the acknowledgement", func(st map[string]string) bool {
		n, _ := strconv.Atoi(st["rpl_semi_sync_master_wait_sessions"])
		return n >= 1
	})
	bgCtx, bgCancel := context.WithTimeout(ctx, time.Minute)
	defer bgCancel()
	bg := make(chan error, 3)
	go func() { bg <- n.WriteHeartbeat(bgCtx, schema, "a", 1, time.Now()) }()
	for i := range 2 {
		go func() {
			d := d
			d.Reason = fmt.Sprintf("save %d", i)
			bg <- n.WriteDecision(bgCtx, schema, d)
		}()
	}
	// Wait until they hold connections in the server (each waits for
	// the acknowledgement or behind one that does).
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting int
		if err := a.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ? AND COMMAND IN ('Query', 'Execute') AND INFO LIKE ?",
			testpair.AdminUser, "%"+schema+"%").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tandem's background writes are not waiting on node a (%d seen)", waiting)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A check must still answer (generous bound: the machine is shared),
	// and the release must work and free the waiting commits.
	cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
	f, err := n.Read(cctx)
	ccancel()
	if err != nil {
		t.Fatalf("a check of the active while tandem's background writes wait for the acknowledgement: %v", err)
	}
	if f.SemiSync.WaitSessions < 1 {
		t.Fatalf("the check saw %d commits waiting; want at least 1", f.SemiSync.WaitSessions)
	}
	rctx, rcancel := context.WithTimeout(ctx, cfg.FenceTimeout)
	_, err = n.SetSemiSyncSource(rctx, false)
	rcancel()
	if err != nil {
		t.Fatalf("releasing the waiting commits: %v", err)
	}
	select {
	case err := <-committed:
		if err != nil {
			t.Fatalf("the waiting commit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting commit was not released")
	}
	for range 3 {
		select {
		case err := <-bg:
			if err != nil {
				t.Errorf("a background write: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("tandem's background writes were not released")
		}
	}
}

// adminDB opens tandem's admin account on node n, every I/O bounded.
func adminDB(t *testing.T, n testpair.Node) *sql.DB {
	t.Helper()
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = testpair.AdminUser, testpair.AdminPassword, "tcp", testpair.Addr(n)
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 2*time.Second, 30*time.Second, 30*time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// waitSemiSync polls db's semi-sync status until ok holds (20 s at most).
func waitSemiSync(t *testing.T, db *sql.DB, what string, ok func(map[string]string) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := map[string]string{}
		rows, err := db.Query("SHOW GLOBAL STATUS LIKE 'rpl_semi_sync_master_%'")
		if err == nil {
			for rows.Next() {
				var k, v string
				if rows.Scan(&k, &v) == nil {
					st[strings.ToLower(k)] = v
				}
			}
			rows.Close()
		}
		if ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: status %v (%v)", what, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
