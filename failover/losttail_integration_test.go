package failover_test

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem/failover"
	"github.com/tandemdb/tandem/internal/testpair"
)

// queryOne reads one string from db, bounded.
func queryOne(db *sql.DB, q string, args ...any) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var v string
	err := db.QueryRowContext(ctx, q, args...).Scan(&v)
	return v, err
}

// TestKilledActiveTakesBackLostOwnTail: the active a is SIGKILLed while a
// commit waits for an acknowledgement b never sends (b's replica does not
// acknowledge) although b applied it, after the commit came back to a
// through b's binlog and moved a's gtid_slave_pos. tandem fails over to
// b, which has the row (tandem settles the in-doubt commit as committed).
// a restarts without it (crash recovery), with gtid_slave_pos still
// naming it and its replica threads stopped (skip_slave_start), while b
// writes on (tandem's heartbeats). tandem moves a's gtid_slave_pos back
// before it starts a's replication: a takes the row back from b, is never
// excluded, and is counted synced only with the row.
func TestKilledActiveTakesBackLostOwnTail(t *testing.T) {
	tn := setup(t)
	db := tn.client(t)
	// Dropped, not emptied: an earlier run may leave row 2 on b only.
	mustExec(t, db, "DROP TABLE IF EXISTS lt_marker")
	mustExec(t, db, "CREATE TABLE lt_marker (id INT PRIMARY KEY, v VARCHAR(64))")
	mustExec(t, db, "INSERT INTO lt_marker VALUES (1, 'acknowledged')")
	adb, bdb := nodeDB(t, testpair.A), nodeDB(t, testpair.B)
	testpair.WaitInSync(t, 30*time.Second)

	mustExec(t, bdb, "SET GLOBAL rpl_semi_sync_slave_enabled = OFF")
	mustExec(t, bdb, "STOP SLAVE IO_THREAD")
	mustExec(t, bdb, "START SLAVE IO_THREAD")
	mustExec(t, adb, "SET GLOBAL rpl_semi_sync_master_timeout = 600000")
	before, err := queryOne(adb, "SELECT @@GLOBAL.gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		_, err := db.ExecContext(ctx, "INSERT INTO lt_marker VALUES (2, 'received by b, never acknowledged')")
		done <- err
	}()
	var unacked string
	testpair.Until(t, 60*time.Second, "the insert in a's binlog, b's table and a's gtid_slave_pos", func() (bool, error) {
		select {
		case err := <-done:
			t.Fatalf("the INSERT returned (%v) without an acknowledgement", err)
		default:
		}
		var err error
		if unacked, err = queryOne(adb, "SELECT @@GLOBAL.gtid_binlog_pos"); err != nil || unacked == before {
			return false, err
		}
		if _, err := queryOne(bdb, "SELECT v FROM app.lt_marker WHERE id = 2"); err != nil {
			return false, err
		}
		slave, err := queryOne(adb, "SELECT @@GLOBAL.gtid_slave_pos")
		return slave == unacked, err
	})
	t.Logf("node a: binlog %s before the insert, %s while it waits; gtid_slave_pos %s", before, unacked, unacked)

	testpair.Kill(t, testpair.A)
	select {
	case err := <-done:
		t.Logf("the client got: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the INSERT did not return after node a was killed")
	}
	tn.waitActive(t, 30*time.Second, "b", 2)

	testpair.Start(t, testpair.A)
	adb = nodeDB(t, testpair.A)
	s := tn.waitStatus(t, 60*time.Second, "node a rejoined and synced, or excluded", func(s failover.Status) bool {
		return nodeStatus(s, "a").ExcludedWhy != "" || !s.Decision.PendingRejoin && s.Decision.Unsynced["a"] == ""
	})
	if why := nodeStatus(s, "a").ExcludedWhy; why != "" {
		t.Fatalf("node a excluded: %s; want its lost transaction taken back from b", why)
	}
	if v, err := queryOne(adb, "SELECT v FROM app.lt_marker WHERE id = 2"); err != nil {
		t.Errorf("node a counted synced without row 2: %v; %s", err, describe(s))
	} else {
		t.Logf("node a took row 2 back: %q", v)
	}
	if s.Decision.Active != "b" {
		t.Errorf("%s; want b active", describe(s))
	}
	for _, v := range []string{"gtid_binlog_state", "gtid_slave_pos", "gtid_current_pos"} {
		va, _ := queryOne(adb, "SELECT @@GLOBAL."+v)
		vb, _ := queryOne(bdb, "SELECT @@GLOBAL."+v)
		t.Logf("%s: a %s, b %s", v, va, vb)
	}
	if ro, err := readOnly(t, testpair.A); err != nil || !ro {
		t.Errorf("node a read_only=%v (%v); want fenced", ro, err)
	}
	if _, err := queryOne(bdb, "SELECT v FROM app.lt_marker WHERE id = 2"); err != nil {
		t.Errorf("node b, the active: row 2: %v", err)
	}
}

// TestActiveRestartedAlone: both nodes die, and the active a comes back
// while b is still down. tandem cannot ask b what it holds of a's
// commits, so before a takes writes it moves a's GTID sequence past what
// a's crash recovery may have dropped (a new commit never reuses a GTID b
// may already count as applied), records b unsynced, and a takes writes
// without waiting for b. When b is back, tandem starts its replication
// and b catches up and is synced again.
//
// "stopped": b is alive but answers nothing (SIGSTOP: its port still
// accepts connections) while a restarts: tandem's checks of b time out,
// a takes writes as above, and when b answers again (SIGCONT) its own
// replication reconnects and b catches up and is synced again.
func TestActiveRestartedAlone(t *testing.T) {
	for _, c := range []struct {
		name        string
		fault, back func(testing.TB, testpair.Node)
	}{{"killed", testpair.Kill, testpair.Start}, {"stopped", testpair.Stop, testpair.Cont}} {
		t.Run("peer "+c.name, func(t *testing.T) { activeRestartedAlone(t, c.fault, c.back) })
	}
}

func activeRestartedAlone(t *testing.T, fault, back func(testing.TB, testpair.Node)) {
	tn := setup(t)
	db := tn.client(t)
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS ra_rows (id INT PRIMARY KEY)")
	mustExec(t, db, "DELETE FROM ra_rows")
	adb := nodeDB(t, testpair.A)
	before, err := queryOne(adb, "SELECT @@GLOBAL.gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	fault(t, testpair.B)
	tn.waitStatus(t, 10*time.Second, "node b seen down", func(s failover.Status) bool { return !nodeStatus(s, "b").Healthy })
	testpair.Kill(t, testpair.A)
	tn.waitStatus(t, 10*time.Second, "node a seen down", func(s failover.Status) bool { return !nodeStatus(s, "a").Healthy })
	testpair.Start(t, testpair.A)
	s := tn.waitStatus(t, 30*time.Second, "node a back and b recorded unsynced", func(s failover.Status) bool {
		// A stopped b was recorded unsynced already, when a's commits
		// stopped waiting for its acknowledgement; that record stays.
		return nodeStatus(s, "a").Healthy && s.Decision.Unsynced["b"] != ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "INSERT INTO ra_rows VALUES (1)"); err != nil {
		t.Fatalf("a write through tandem after a came back alone: %v (%s)", err, describe(s))
	}
	adb = nodeDB(t, testpair.A)
	after, err := queryOne(adb, "SELECT @@GLOBAL.gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	var conns int
	if v, err := queryOne(adb, "SELECT @@GLOBAL.max_connections"); err != nil {
		t.Fatal(err)
	} else {
		conns, _ = strconv.Atoi(v)
	}
	if seq(t, after)-seq(t, before) <= uint64(conns) {
		t.Errorf("a's gtid_binlog_pos %s -> %s; want its sequence moved past max_connections (%d)", before, after, conns)
	}
	t.Logf("a: gtid_binlog_pos %s before, %s after its restart and one write", before, after)

	back(t, testpair.B)
	tn.waitStatus(t, 60*time.Second, "node b back, replicating and synced", func(s failover.Status) bool {
		return nodeStatus(s, "b").Healthy && s.Decision.Unsynced["b"] == ""
	})
	bdb := nodeDB(t, testpair.B)
	testpair.Until(t, 30*time.Second, "row 1 on b", func() (bool, error) {
		_, err := queryOne(bdb, "SELECT id FROM app.ra_rows WHERE id = 1")
		return err == nil, err
	})
}

// seq is the sequence number of a one-domain GTID position.
func seq(t *testing.T, pos string) uint64 {
	t.Helper()
	i := strings.LastIndexByte(pos, '-')
	n, err := strconv.ParseUint(pos[i+1:], 10, 64)
	if i < 0 || err != nil || strings.Contains(pos, ",") {
		t.Fatalf("GTID position %q: want one domain", pos)
	}
	return n
}
