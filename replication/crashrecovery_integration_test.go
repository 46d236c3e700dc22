package replication

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem/internal/testpair"
)

// Crash recovery of an old active on the real pair (scripts/pair.sh starts
// both nodes with init_rpl_role=SLAVE): a node SIGKILLed while a commit
// waits for the peer's semi-sync acknowledgement comes back without that
// commit. Each test ends with testpair.Reset (node a writable again).

// crashTable is the scratch table of the crash tests, in testSchema.
const crashTable = testSchema + ".crash"

// crashWait bounds each wait of the crash tests: they restart a server.
const crashWait = 60 * time.Second

// queryString reads one string value from a node.
func queryString(t *testing.T, n pairNode, query string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var v string
	if err := n.db.QueryRowContext(ctx, query).Scan(&v); err != nil {
		t.Fatalf("node %s: %s: %v", n.name, query, err)
	}
	return v
}

// globalStatus reads one global status variable.
func globalStatus(ctx context.Context, n pairNode, name string) (string, error) {
	var k, v string
	err := n.db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE ?", name).Scan(&k, &v)
	return v, err
}

// hasRow reports whether the crash table on n holds row id.
func hasRow(ctx context.Context, n pairNode, id int) (bool, error) {
	var c int
	err := n.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+crashTable+" WHERE id = ?", id).Scan(&c)
	return c == 1, err
}

// waitRow waits until n holds row id.
func waitRow(t *testing.T, n pairNode, id int) {
	t.Helper()
	testpair.Until(t, crashWait, fmt.Sprintf("row %d on node %s", id, n.name), func() (bool, error) {
		return hasRow(context.Background(), n, id)
	})
}

// truncations counts the error log lines of node n saying that crash
// recovery removed transactions starting from gtid.
func truncations(t *testing.T, n testpair.Node, gtid string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testpair.Dir(), string(n), "error.log"))
	if err != nil {
		t.Fatalf("node %s error log: %v", n, err)
	}
	return strings.Count(string(b), "to remove transactions starting from GTID "+gtid+"\n")
}

// crashedCommit is what crashWithUnacknowledgedCommit saw.
type crashedCommit struct {
	before  string // a's gtid_binlog_pos before the commit
	unacked string // the GTID the commit had in a's binlog when a died
	logged  int    // truncations(a, unacked) before the kill
}

// crashWithUnacknowledgedCommit makes an INSERT of row id on node a wait
// for node b's semi-sync acknowledgement (b's I/O thread is stopped and
// a's rpl_semi_sync_master_timeout raised so that a never falls back to
// asynchronous), checks that the commit is in a's binlog but visible to
// nobody, then SIGKILLs a and checks that the client got an error. Node
// a is down on return; b's I/O thread stays stopped.
func crashWithUnacknowledgedCommit(t *testing.T, a, b pairNode, id int) crashedCommit {
	t.Helper()
	testpair.WaitInSync(t, crashWait)
	ctx := testCtx(t, 2*crashWait)
	testpair.Until(t, crashWait, "semi-sync on on node a", func() (bool, error) {
		v, err := globalStatus(ctx, a, "Rpl_semi_sync_master_status")
		return v == "ON", err
	})
	exec(t, a.db, "a", "SET GLOBAL rpl_semi_sync_master_timeout = 600000")
	exec(t, b.db, "b", "STOP SLAVE IO_THREAD")
	var c crashedCommit
	c.before = queryString(t, a, "SELECT @@GLOBAL.gtid_binlog_pos")

	var done <-chan error
	c.unacked, done = insertUnacknowledged(t, ctx, a, id, "never acknowledged", c.before)
	if ok, err := hasRow(ctx, a, id); err != nil || ok {
		t.Fatalf("row %d visible on node a before the acknowledgement (%v, %v)", id, ok, err)
	}
	t.Logf("node a: binlog at %s before the INSERT, %s while it waits for the ACK", c.before, c.unacked)
	c.logged = truncations(t, testpair.A, c.unacked)

	testpair.Kill(t, testpair.A)
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the INSERT succeeded although node a died before b acknowledged it")
		}
		t.Logf("the client got: %v", err)
	case <-time.After(crashWait):
		t.Fatal("the INSERT did not return after node a was killed")
	}
	return c
}

// insertUnacknowledged starts an INSERT of row (id, v) on node a, from a
// client of its own whose reads are bounded well above the tests' waits,
// and waits until the commit is in a's binlog (past before) and waits for
// a semi-sync acknowledgement, which the caller has made sure never
// comes. It returns the commit's GTID and where the INSERT's result will
// arrive; the client's pool closes when the test ends.
func insertUnacknowledged(t *testing.T, ctx context.Context, a pairNode, id int, v, before string) (string, <-chan error) {
	t.Helper()
	cdb, err := sql.Open("mysql", testpair.AdminUser+":"+testpair.AdminPassword+"@tcp("+testpair.Addr(testpair.A)+")/?timeout=2s&readTimeout=150s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cdb.Close() })
	done := make(chan error, 1)
	go func() {
		_, err := cdb.ExecContext(ctx, "INSERT INTO "+crashTable+" VALUES (?, ?)", id, v)
		done <- err
	}()
	var unacked string
	testpair.Until(t, crashWait, "the INSERT in a's binlog, waiting for a semi-sync ACK", func() (bool, error) {
		select {
		case err := <-done:
			t.Fatalf("the INSERT returned (%v) without an acknowledgement", err)
		default:
		}
		w, err := globalStatus(ctx, a, "Rpl_semi_sync_master_wait_sessions")
		if err != nil || w == "0" {
			return false, err
		}
		unacked = queryString(t, a, "SELECT @@GLOBAL.gtid_binlog_pos")
		return unacked != before, nil
	})
	return unacked, done
}

// checkDiscarded checks, on the restarted node a, that the commit is gone:
// a's GTID positions are c.before or one of also (positions the test
// expects it may have reached otherwise).
func checkDiscarded(t *testing.T, a pairNode, c crashedCommit, id int, also ...string) {
	t.Helper()
	ctx := testCtx(t, crashWait)
	if got := queryString(t, a, "SELECT @@GLOBAL.read_only"); got != "1" {
		t.Errorf("restarted node a: read_only=%s; every start must be read-only", got)
	}
	for _, v := range []string{"gtid_binlog_pos", "gtid_current_pos"} {
		got := queryString(t, a, "SELECT @@GLOBAL."+v)
		if got != c.before && !slices.Contains(also, got) {
			t.Errorf("restarted node a: %s %q; want %q (the unacknowledged %s discarded) or one of %q", v, got, c.before, c.unacked, also)
		}
	}
	if ok, err := hasRow(ctx, a, id); err != nil || ok {
		t.Errorf("restarted node a: unacknowledged row %d present=%v (%v); want rolled back", id, ok, err)
	}
	if n := truncations(t, testpair.A, c.unacked); n != c.logged+1 {
		t.Errorf("node a's error log: %d new lines saying it truncated the binlog from %s; want 1", n-c.logged, c.unacked)
	}
}

// setupCrashTable creates the scratch table on a and waits for b to have it.
func setupCrashTable(t *testing.T, a, b pairNode) {
	t.Helper()
	exec(t, a.db, "a",
		"CREATE DATABASE IF NOT EXISTS "+testSchema,
		"CREATE TABLE IF NOT EXISTS "+crashTable+" (id INT PRIMARY KEY, v VARCHAR(64) NOT NULL) ENGINE=InnoDB",
		"DELETE FROM "+crashTable,
		"INSERT INTO "+crashTable+" VALUES (1, 'acknowledged')")
	waitRow(t, b, 1)
}

// TestCrashedActiveDiscardsUnacknowledgedCommit: node a, SIGKILLed while
// a commit waits for b's acknowledgement, restarts (read-only, with the
// pair's my.cnf) without that commit: row rolled back, GTID gone from
// gtid_binlog_pos and gtid_current_pos, MariaDB's note in the error log.
// It then replicates from b again, and b from it, with no errant GTIDs.
func TestCrashedActiveDiscardsUnacknowledgedCommit(t *testing.T) {
	a, b := openPair(t)
	t.Cleanup(func() { testpair.Reset(t) })
	setupCrashTable(t, a, b)

	c := crashWithUnacknowledgedCommit(t, a, b, 2)
	testpair.Start(t, testpair.A)
	a = openNode(t, testpair.A)
	checkDiscarded(t, a, c, 2)

	// a replicates from b from where it really is, and b from a.
	exec(t, a.db, "a",
		"STOP SLAVE",
		"SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_current_pos",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %d, MASTER_USER = '%s', MASTER_PASSWORD = '%s', MASTER_USE_GTID = slave_pos",
			testpair.Port(testpair.B), testpair.ReplUser, testpair.ReplPassword),
		"START SLAVE")
	exec(t, b.db, "b", "START SLAVE IO_THREAD")
	exec(t, b.db, "b", "INSERT INTO "+crashTable+" VALUES (3, 'written on b after the crash')")
	waitRow(t, a, 3)
	exec(t, a.db, "a", "INSERT INTO "+crashTable+" VALUES (4, 'written on a after it rejoined')")
	waitRow(t, b, 4)
	for _, n := range []pairNode{a, b} {
		testpair.Until(t, crashWait, "node "+n.name+" replicating", func() (bool, error) {
			f, err := Read(context.Background(), n.db)
			if err != nil {
				return false, err
			}
			r := f.Replica
			if r.LastIOErrno != 0 && r.IORunning == IONo || r.LastSQLErrno != 0 {
				t.Fatalf("node %s: replication error: io %d %s; sql %d %s", n.name, r.LastIOErrno, r.LastIOError, r.LastSQLErrno, r.LastSQLError)
			}
			return r.IORunning == IOYes && r.SQLRunning, nil
		})
	}
	testpair.WaitInSync(t, crashWait)
	fa, fb := mustRead(t, a), mustRead(t, b)
	if set, errant := Errant(fb.Executed(), fa.Executed()); errant {
		t.Errorf("node a has errant GTIDs %s relative to b (%s)", set, fb.Executed())
	}
	if !fa.Executed().Equal(fb.Executed()) {
		t.Errorf("executed a=%s b=%s; want equal", fa.Executed(), fb.Executed())
	}
	if ok, err := hasRow(context.Background(), b, 2); err != nil || ok {
		t.Errorf("node b: unacknowledged row 2 present=%v (%v)", ok, err)
	}
}
