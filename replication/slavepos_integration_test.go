package replication

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tandemdb/tandem/internal/testpair"
)

// crashAfterLoopBack makes an INSERT of row id on node a wait for a
// semi-sync acknowledgement that never comes (b's replica no longer
// acknowledges: rpl_semi_sync_slave_enabled off on b, a's
// rpl_semi_sync_master_timeout raised, wait_no_slave on) while b does
// receive, apply and binlog it; waits until the transaction came back to
// a through b's binlog and a's replica skipped it (a's own server_id) but
// moved gtid_slave_pos past it; then SIGKILLs a. It returns the GTID of
// the insert and a's gtid_binlog_pos before it. Node a is down on return.
func crashAfterLoopBack(t *testing.T, a, b pairNode, id int) (unacked, before string) {
	t.Helper()
	testpair.WaitInSync(t, crashWait)
	ctx := testCtx(t, 2*crashWait)
	exec(t, b.db, "b", "SET GLOBAL rpl_semi_sync_slave_enabled = OFF", "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD")
	exec(t, a.db, "a", "SET GLOBAL rpl_semi_sync_master_timeout = 600000")
	before = queryString(t, a, "SELECT @@GLOBAL.gtid_binlog_pos")

	unacked, done := insertUnacknowledged(t, ctx, a, id, "received by b, never acknowledged", before)
	waitRow(t, b, id)
	testpair.Until(t, crashWait, "a's gtid_slave_pos at "+unacked+" (the insert looped back through b)", func() (bool, error) {
		return queryString(t, a, "SELECT @@GLOBAL.gtid_slave_pos") == unacked, nil
	})
	if ok, err := hasRow(ctx, a, id); err != nil || ok {
		t.Fatalf("row %d visible on node a before the acknowledgement (%v, %v)", id, ok, err)
	}
	t.Logf("node a: binlog %s before the INSERT, %s while it waits; gtid_slave_pos %s", before, unacked, unacked)
	testpair.Kill(t, testpair.A)
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the INSERT succeeded although node a died before an acknowledgement")
		}
	case <-time.After(crashWait):
		t.Fatal("the INSERT did not return after node a was killed")
	}
	return unacked, before
}

// TestCrashedActiveOwnTransactionLoopedBack: node a, the writer, is
// SIGKILLed while a commit waits for an acknowledgement that b never
// sends although b applied it; the commit had looped back a -> b -> a and
// moved a's gtid_slave_pos. a restarts without it (crash recovery
// truncates it) yet with gtid_slave_pos, and so gtid_current_pos, still
// naming it: replicating from slave_pos, a would never fetch it back.
// Its replica threads wait (skip_slave_start); Facts.Executed and
// WaitExecuted must not count the lost commit; Resume moves gtid_slave_pos
// back, starts the threads, and a takes the row back from b.
func TestCrashedActiveOwnTransactionLoopedBack(t *testing.T) {
	a, b := openPair(t)
	t.Cleanup(func() { testpair.Reset(t) })
	setupCrashTable(t, a, b)

	unacked, before := crashAfterLoopBack(t, a, b, 7)
	testpair.Start(t, testpair.A)
	a = openNode(t, testpair.A)
	fa := mustRead(t, a)
	t.Logf("restarted a: binlog %s current %s slave %s", fa.BinlogPos.Raw, fa.CurrentPos.Raw, fa.SlavePos.Raw)
	if r := fa.Replica; r.IORunning != IONo || r.SQLRunning || fa.ReplicaStarts != 0 {
		t.Fatalf("restarted a: replica io=%v sql=%v, %d START SLAVE; want both threads stopped and none (skip_slave_start)", r.IORunning, r.SQLRunning, fa.ReplicaStarts)
	}
	if fa.BinlogPos.Raw != before || fa.SlavePos.Raw != unacked || fa.CurrentPos.Raw != unacked {
		t.Fatalf("restarted a: binlog %s slave %s current %s; want the state under test: binlog %s, slave and current %s",
			fa.BinlogPos.Raw, fa.SlavePos.Raw, fa.CurrentPos.Raw, before, unacked)
	}
	if ok, err := hasRow(testCtx(t, 5*time.Second), a, 7); err != nil || ok {
		t.Fatalf("restarted a: row 7 present=%v (%v) right after the restart", ok, err)
	}
	if l := fa.LostOwnTail(); l == nil || l.String() != unacked {
		t.Errorf("LostOwnTail = %v; want %s", l, unacked)
	}
	if got := fa.Executed().String(); got != before {
		t.Errorf("Executed = %s; want %s (without the lost %s)", got, before, unacked)
	}
	want, err := ParseGTIDs(MariaDB, unacked)
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitExecuted(testCtx(t, 10*time.Second), a.db, MariaDB, want, time.Second); !errors.Is(err, ErrWaitTimeout) {
		t.Errorf("WaitExecuted(%s) on restarted a: %v; want ErrWaitTimeout", unacked, err)
	}

	lost, pos, err := Resume(testCtx(t, crashWait), a.db)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	t.Logf("Resume: lost %s, gtid_slave_pos set to %s", lost, pos)
	if lost != unacked || pos != before {
		t.Errorf("Resume = %q, %q; want %q, %q", lost, pos, unacked, before)
	}
	waitRow(t, a, 7)
	if err := WaitExecuted(testCtx(t, crashWait), a.db, MariaDB, want, crashWait/2); err != nil {
		t.Errorf("WaitExecuted(%s) after the repair: %v", unacked, err)
	}
	fa = mustRead(t, a)
	if fa.BinlogPos.Raw != unacked || fa.LostOwnTail() != nil {
		t.Errorf("repaired a: binlog %s slave %s; want both at %s", fa.BinlogPos.Raw, fa.SlavePos.Raw, unacked)
	}
	if lost, _, err := Resume(testCtx(t, crashWait), a.db); err != nil || lost != "" {
		t.Errorf("Resume again: %q, %v; want nothing to do", lost, err)
	}
}

// TestSkipLostSequenceKeepsNewCommits: node a dies while a commit waits
// for an acknowledgement b never sends although b applied it; b dies too.
// a restarts alone (the commit dropped) and, before it takes writes,
// SkipLostSequence moves its GTID sequence past the dropped commit's. A
// new, acknowledged commit on a then gets a GTID of its own: when b comes
// back and replicates from a after the dropped commit, which it holds, it
// applies a's new commit. Reusing the dropped commit's GTID, the new
// commit would be skipped by b as one it already has (lost there for good).
func TestSkipLostSequenceKeepsNewCommits(t *testing.T) {
	a, b := openPair(t)
	t.Cleanup(func() { testpair.Reset(t) })
	setupCrashTable(t, a, b)
	ctx := testCtx(t, 4*crashWait)
	if err := (Heartbeat{}).EnsureTable(ctx, a.db); err != nil {
		t.Fatal(err)
	}
	testpair.WaitInSync(t, crashWait)
	// b applies a's commit without acknowledging it, and commits it at
	// once (its own semi-sync source side off: no wait for a's ack).
	exec(t, b.db, "b", "SET GLOBAL rpl_semi_sync_slave_enabled = OFF", "SET GLOBAL rpl_semi_sync_master_enabled = OFF",
		"STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD")
	exec(t, a.db, "a", "SET GLOBAL rpl_semi_sync_master_timeout = 600000")
	before := queryString(t, a, "SELECT @@GLOBAL.gtid_binlog_pos")
	unacked, done := insertUnacknowledged(t, ctx, a, 8, "received by b, never acknowledged", before)
	waitRow(t, b, 8)
	testpair.Kill(t, testpair.B)
	testpair.Kill(t, testpair.A)
	<-done

	testpair.Start(t, testpair.A)
	a = openNode(t, testpair.A)
	if got := queryString(t, a, "SELECT @@GLOBAL.gtid_binlog_pos"); got != before {
		t.Fatalf("restarted a: gtid_binlog_pos %s; want %s (the unacknowledged %s dropped)", got, before, unacked)
	}
	gtid, err := SkipLostSequence(ctx, a.db, Heartbeat{}, "a", 1, time.Now())
	if err != nil {
		t.Fatalf("SkipLostSequence: %v", err)
	}
	after := queryString(t, a, "SELECT @@GLOBAL.gtid_binlog_pos")
	skip, err := ParseGTIDs(MariaDB, after)
	if err != nil {
		t.Fatal(err)
	}
	lost, _ := ParseGTIDs(MariaDB, unacked)
	if Contains(lost, skip) || after != gtid {
		t.Fatalf("SkipLostSequence said %s; a's binlog at %s, not past the dropped %s", gtid, after, unacked)
	}
	t.Logf("dropped %s; SkipLostSequence wrote %s", unacked, gtid)
	exec(t, a.db, "a", "SET GLOBAL rpl_semi_sync_master_enabled = OFF", "SET GLOBAL read_only = OFF",
		"INSERT INTO "+crashTable+" VALUES (9, 'written on a after its restart')")
	aPos, err := ParseGTIDs(MariaDB, queryString(t, a, "SELECT @@GLOBAL.gtid_binlog_pos"))
	if err != nil {
		t.Fatal(err)
	}

	testpair.Start(t, testpair.B)
	b = openNode(t, testpair.B)
	if ok, err := hasRow(ctx, b, 8); err != nil || !ok {
		t.Fatalf("restarted b: row 8 present=%v (%v); the test needs b to keep a's dropped commit", ok, err)
	}
	testpair.Resume(t, testpair.B)
	testpair.Until(t, crashWait, "a's new row 9 on b", func() (bool, error) {
		f, err := Read(ctx, b.db)
		if err != nil {
			return false, err
		}
		if r := f.Replica; r.LastSQLErrno != 0 || r.IORunning == IONo && r.LastIOErrno != 0 {
			// A loud stop is acceptable too (the binlog has a hole
			// where b starts): never a silent skip.
			t.Logf("b's replication stopped: io %d %s; sql %d %s", r.LastIOErrno, r.LastIOError, r.LastSQLErrno, r.LastSQLError)
			return true, nil
		}
		if !Contains(f.Executed(), aPos) {
			return false, nil
		}
		ok, err := hasRow(ctx, b, 9)
		if err == nil && !ok {
			t.Fatalf("b is at a's %s but lacks a's new row 9: skipped as a commit it already had", aPos)
		}
		return ok, err
	})
}

// TestUndoResumeOnRowAlreadyThere: node b's data holds a transaction of
// a that b's binary log and gtid_slave_pos lack (written on b with
// sql_log_bin off while its replica was stopped: the shape of a binary log
// left short of the data), so re-applying it stops b's SQL thread with
// 1062. UndoResume moves the position past it and b replicates again.
func TestUndoResumeOnRowAlreadyThere(t *testing.T) {
	a, b := openPair(t)
	t.Cleanup(func() { testpair.Reset(t) })
	setupCrashTable(t, a, b)
	testpair.WaitInSync(t, crashWait)
	ctx := testCtx(t, 2*crashWait)
	exec(t, b.db, "b", "STOP SLAVE")
	exec(t, a.db, "a", "INSERT INTO "+crashTable+" VALUES (10, 'b has it')")
	held := queryString(t, a, "SELECT @@GLOBAL.gtid_binlog_pos")
	conn, err := b.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SET SESSION sql_log_bin = 0", "INSERT INTO " + crashTable + " VALUES (10, 'b has it')", "SET SESSION sql_log_bin = 1"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("b: %s: %v", q, err)
		}
	}
	conn.Close()
	exec(t, b.db, "b", "START SLAVE")
	testpair.Until(t, crashWait, "b's SQL thread stopped with 1062", func() (bool, error) {
		f, err := Read(ctx, b.db)
		if err == nil && f.Replica.LastSQLErrno != 0 && f.Replica.LastSQLErrno != 1062 {
			t.Fatalf("b's SQL thread: %d %s; want 1062", f.Replica.LastSQLErrno, f.Replica.LastSQLError)
		}
		return err == nil && !f.Replica.SQLRunning && f.Replica.LastSQLErrno == 1062, err
	})
	pos, err := UndoResume(ctx, b.db, held)
	if err != nil {
		t.Fatalf("UndoResume: %v", err)
	}
	if pos != held {
		t.Errorf("UndoResume set %s; want %s", pos, held)
	}
	exec(t, a.db, "a", "INSERT INTO "+crashTable+" VALUES (11, 'after the undo')")
	waitRow(t, b, 11)
	if f := mustRead(t, b); !f.Replica.SQLRunning || f.Replica.LastSQLErrno != 0 {
		t.Errorf("b's replica after UndoResume: %+v", f.Replica)
	}
}

// TestSkipLostSequenceCountsEveryPosition: the sequence moves past the
// highest number any of the node's positions names, not only
// gtid_binlog_pos (which MariaDB reported stale after a crash that
// truncated the binary log): here gtid_slave_pos names a looped-back own
// transaction 1000 past it.
func TestSkipLostSequenceCountsEveryPosition(t *testing.T) {
	a, _ := openPair(t)
	t.Cleanup(func() { testpair.Reset(t) })
	ctx := testCtx(t, crashWait)
	if err := (Heartbeat{}).EnsureTable(ctx, a.db); err != nil {
		t.Fatal(err)
	}
	var serverID, domain, conns, extra uint64
	if err := a.db.QueryRowContext(ctx, "SELECT @@GLOBAL.server_id, @@GLOBAL.gtid_domain_id, @@GLOBAL.max_connections, @@GLOBAL.extra_max_connections").
		Scan(&serverID, &domain, &conns, &extra); err != nil {
		t.Fatal(err)
	}
	binlog, err := maxSequence([]string{queryString(t, a, "SELECT @@GLOBAL.gtid_binlog_pos")}, uint32(domain))
	if err != nil {
		t.Fatal(err)
	}
	ahead := fmt.Sprintf("%d-%d-%d", domain, serverID, binlog+1000)
	exec(t, a.db, "a", "STOP SLAVE", "SET GLOBAL gtid_slave_pos = '"+ahead+"'")
	t.Cleanup(func() {
		// b never had the made-up position: a, the writer, resumes
		// from its own binary log's.
		exec(t, a.db, "a", "STOP SLAVE", "SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos", "START SLAVE")
	})
	gtid, err := SkipLostSequence(ctx, a.db, Heartbeat{}, "a", 1, time.Now())
	if err != nil {
		t.Fatalf("SkipLostSequence: %v", err)
	}
	got, err := maxSequence([]string{gtid}, uint32(domain))
	if err != nil {
		t.Fatal(err)
	}
	if want := binlog + 1000 + conns + extra + 2; got != want {
		t.Fatalf("SkipLostSequence wrote %s; want sequence %d (gtid_slave_pos %s + max_connections + extra_max_connections + 2)", gtid, want, ahead)
	}
}
