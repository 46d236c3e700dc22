package failover_test

import (
	"context"
	"database/sql"
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
