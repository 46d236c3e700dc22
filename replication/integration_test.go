package replication

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"
	"github.com/tandemdb/tandem/internal/testpair"
)

// Integration tests against the local pair (see pair_test.go). Each test
// leaves the pair as it found it; the ones that stop a thread restore it in
// t.Cleanup.

// heartbeatNode is the heartbeat row the tests write (and delete), apart
// from the rows tandem itself writes.
const heartbeatNode = "replication_test"

func TestPairReadFacts(t *testing.T) {
	a, b := openPair(t)
	fa, fb := mustRead(t, a), mustRead(t, b)

	for _, f := range []struct {
		node     string
		facts    Facts
		readOnly bool
	}{{"a", fa, false}, {"b", fb, true}} {
		if f.facts.Flavor != MariaDB {
			t.Errorf("node %s: flavor %v (version %q), want mariadb", f.node, f.facts.Flavor, f.facts.Version)
		}
		if f.facts.ReadOnly != f.readOnly || f.facts.SuperReadOnly {
			t.Errorf("node %s: read_only %v super_read_only %v, want read_only %v", f.node, f.facts.ReadOnly, f.facts.SuperReadOnly, f.readOnly)
		}
		if f.facts.CurrentPos.Set == nil || f.facts.BinlogPos.Set == nil || f.facts.SlavePos.Set == nil {
			t.Errorf("node %s: GTID positions not parsed: %+v", f.node, f.facts)
		}
		if r := f.facts.Replica; !r.Configured || !r.UsingGTID || r.MasterHost == "" || r.MasterPort == 0 {
			t.Errorf("node %s: replica not configured with GTID: %+v", f.node, r)
		}
	}
	if fa.ServerID == fb.ServerID {
		t.Errorf("both nodes have server_id %d", fa.ServerID)
	}
	if fa.Replica.MasterServerID != fb.ServerID || fb.Replica.MasterServerID != fa.ServerID {
		t.Errorf("not master-master: a replicates from server %d, b from %d; ids a=%d b=%d",
			fa.Replica.MasterServerID, fb.Replica.MasterServerID, fa.ServerID, fb.ServerID)
	}

	// Both directions run (waiting a little, in case the pair is busy).
	for _, n := range []pairNode{a, b} {
		testpair.Until(t, pairWait, "node "+n.name+" replicating", func() (bool, error) {
			f, err := Read(context.Background(), n.db)
			return err == nil && f.Replica.IORunning == IOYes && f.Replica.SQLRunning, err
		})
	}

	// After a write on a and a sync, both nodes have executed the same.
	if err := EnsureHeartbeatTable(testCtx(t, 5*time.Second), a.db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteHeartbeat(t, a) })
	if err := WriteHeartbeat(testCtx(t, 5*time.Second), a.db, heartbeatNode, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	testpair.Until(t, pairWait, "executed sets equal on a and b", func() (bool, error) {
		fa, err := Read(context.Background(), a.db)
		if err != nil {
			return false, err
		}
		fb, err := Read(context.Background(), b.db)
		if err != nil {
			return false, err
		}
		return fa.Executed().Equal(fb.Executed()), nil
	})
}

func TestPairReadOverConn(t *testing.T) {
	_, b := openPair(t)
	ctx := testCtx(t, 5*time.Second)
	conn, err := b.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const polls = 20
	start := time.Now()
	for i := 0; i < polls; i++ { // as a monitor polls: same connection, repeatedly
		f, err := Read(ctx, conn)
		if err != nil {
			t.Fatalf("poll %d: %v", i, err)
		}
		if f.Executed() == nil {
			t.Fatalf("poll %d: no executed set", i)
		}
	}
	t.Logf("Read over one *sql.Conn: %v per call", time.Since(start)/polls)
}

func TestPairHeartbeatLag(t *testing.T) {
	a, b := openPair(t)
	ctx := testCtx(t, 20*time.Second)
	if err := EnsureHeartbeatTable(ctx, a.db); err != nil {
		t.Fatal(err)
	}
	// A second call finds the table and writes nothing (no new GTID).
	before := mustRead(t, a).BinlogPos.Raw
	if err := EnsureHeartbeatTable(ctx, a.db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteHeartbeat(t, a) })

	const epoch = uint64(1) << 40
	now := time.Now()
	if err := WriteHeartbeat(ctx, a.db, heartbeatNode, epoch, now); err != nil {
		t.Fatal(err)
	}
	after := mustRead(t, a)
	if after.BinlogPos.Raw == before {
		t.Errorf("binlog position did not move with a heartbeat write: %s", before)
	}

	var written time.Time
	var gotEpoch uint64
	testpair.Until(t, pairWait, "heartbeat on b", func() (bool, error) {
		var err error
		written, gotEpoch, err = ReadHeartbeat(ctx, b.db, heartbeatNode)
		return err == nil && written.Equal(now.Truncate(time.Microsecond)), err
	})
	if gotEpoch != epoch {
		t.Errorf("epoch %d, want %d", gotEpoch, epoch)
	}
	lag := time.Since(written)
	if lag < 0 || lag > 2*time.Second {
		t.Errorf("lag %v, want small", lag)
	}
	t.Logf("heartbeat lag a→b: %v", lag)

	if _, _, err := ReadHeartbeat(ctx, b.db, "no_such_node"); !errors.Is(err, ErrNoHeartbeat) {
		t.Errorf("missing row: %v, want ErrNoHeartbeat", err)
	}
	if _, _, err := (Heartbeat{Schema: "tandem_no_such_schema"}).Read(ctx, b.db, heartbeatNode); err == nil || errors.Is(err, ErrNoHeartbeat) {
		t.Errorf("missing table: %v, want an SQL error", err)
	}
}

func TestPairWaitExecuted(t *testing.T) {
	a, b := openPair(t)
	ctx := testCtx(t, 30*time.Second)
	if err := EnsureHeartbeatTable(ctx, a.db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteHeartbeat(t, a) })
	if err := WriteHeartbeat(ctx, a.db, heartbeatNode, 2, time.Now()); err != nil {
		t.Fatal(err)
	}
	pos := mustRead(t, a).Executed()

	t.Run("reached on the replica", func(t *testing.T) {
		start := time.Now()
		if err := WaitExecuted(ctx, b.db, MariaDB, pos, 5*time.Second); err != nil {
			t.Fatalf("WaitExecuted(b, %s): %v", pos, err)
		}
		t.Logf("b reached %s in %v", pos, time.Since(start))
		if !Contains(mustRead(t, b).Executed(), pos) {
			t.Errorf("WaitExecuted returned but b's gtid_current_pos lacks %s", pos)
		}
	})

	t.Run("own write on the writer", func(t *testing.T) {
		// a's gtid_slave_pos gets a's own GTIDs only when b echoes them
		// back; WaitExecuted must not depend on that.
		start := time.Now()
		if err := WaitExecuted(ctx, a.db, MariaDB, pos, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Errorf("waiting for a's own position took %v", d)
		}
	})

	future := pos.Clone().(*gomysql.MariadbGTIDSet)
	for _, g := range future.Sets {
		g.SequenceNumber += 1_000_000_000
	}

	t.Run("unreachable position times out", func(t *testing.T) {
		start := time.Now()
		err := WaitExecuted(ctx, b.db, MariaDB, future, 700*time.Millisecond)
		d := time.Since(start)
		if !errors.Is(err, ErrWaitTimeout) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrWaitTimeout alone", err)
		}
		if d < 700*time.Millisecond || d > 2*time.Second {
			t.Errorf("timed out after %v, want about 700ms", d)
		}
		t.Logf("%v after %v", err, d)
	})

	t.Run("context deadline first, connection survives", func(t *testing.T) {
		conn, err := b.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		short, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = WaitExecuted(short, conn, MariaDB, future, time.Minute)
		if !errors.Is(err, ErrWaitTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrWaitTimeout and context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("returned after %v, want before the 400ms deadline", d)
		}
		if err := conn.PingContext(ctx); err != nil {
			t.Errorf("connection dropped by the wait: %v", err)
		}
	})

	t.Run("no wait when timeout is zero", func(t *testing.T) {
		if err := WaitExecuted(ctx, b.db, MariaDB, pos, 0); err != nil {
			t.Errorf("reached position, zero timeout: %v", err)
		}
		if err := WaitExecuted(ctx, b.db, MariaDB, future, 0); !errors.Is(err, ErrWaitTimeout) {
			t.Errorf("future position, zero timeout: %v", err)
		}
	})
}

// TestPairMasterGTIDWait pins down what MariaDB 10.11's MASTER_GTID_WAIT
// returns, which WaitExecuted relies on.
func TestPairMasterGTIDWait(t *testing.T) {
	_, b := openPair(t)
	ctx := testCtx(t, 10*time.Second)
	slavePos := mustRead(t, b).SlavePos.Raw
	if slavePos == "" {
		t.Fatal("b has an empty gtid_slave_pos")
	}
	query := func(pos string, timeout float64) (sql.NullInt64, error) {
		var res sql.NullInt64
		err := b.db.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, ?)", pos, timeout).Scan(&res)
		return res, err
	}
	for _, tt := range []struct {
		name    string
		pos     string
		timeout float64
		want    int64
	}{
		{"reached", slavePos, 0.5, 0},
		{"empty position", "", 0.5, 0},
		{"future, fractional timeout", "0-1-999999999999", 0.2, -1},
		{"future, zero timeout returns at once", "0-1-999999999999", 0, -1},
		{"unknown domain waits", "77-1-1", 0.1, -1},
	} {
		start := time.Now()
		got, err := query(tt.pos, tt.timeout)
		if err != nil || !got.Valid || got.Int64 != tt.want {
			t.Errorf("%s: MASTER_GTID_WAIT(%q, %v) = %v, %v; want %d", tt.name, tt.pos, tt.timeout, got, err, tt.want)
		}
		if d := time.Since(start); d > time.Duration(tt.timeout*float64(time.Second))+500*time.Millisecond {
			t.Errorf("%s: took %v", tt.name, d)
		}
	}
	// A malformed position is an SQL error, not NULL.
	_, err := query("junk", 0.1)
	var myErr *mysql.MySQLError
	if !errors.As(err, &myErr) {
		t.Errorf("MASTER_GTID_WAIT('junk'): %v, want a server error", err)
	} else {
		t.Logf("MASTER_GTID_WAIT('junk'): error %d %s", myErr.Number, myErr.Message)
	}
}

func TestPairSQLThreadStopped(t *testing.T) {
	a, b := openPair(t)
	ctx := testCtx(t, 30*time.Second)
	if err := EnsureHeartbeatTable(ctx, a.db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteHeartbeat(t, a) })
	waitExecutedOn(t, a, b)

	t.Cleanup(func() {
		exec(t, b.db, "b", "START SLAVE SQL_THREAD")
		ensureReplicating(t, b)
		waitExecutedOn(t, a, b)
	})
	exec(t, b.db, "b", "STOP SLAVE SQL_THREAD")

	f := mustRead(t, b)
	if f.Replica.SQLRunning || f.Replica.IORunning != IOYes {
		t.Errorf("after STOP SLAVE SQL_THREAD: SQL running %v, I/O %v", f.Replica.SQLRunning, f.Replica.IORunning)
	}
	if f.Replica.SecondsBehind != nil {
		t.Errorf("Seconds_Behind_Master = %d with the SQL thread stopped, want NULL", *f.Replica.SecondsBehind)
	}
	if f.Replica.LastSQLErrno != 0 {
		t.Errorf("stopped by hand, yet Last_SQL_Errno %d", f.Replica.LastSQLErrno)
	}

	// A write on a now reaches b's relay log but is not applied.
	if err := WriteHeartbeat(ctx, a.db, heartbeatNode, 3, time.Now()); err != nil {
		t.Fatal(err)
	}
	pos := mustRead(t, a).Executed()
	if err := WaitExecuted(ctx, b.db, MariaDB, pos, 300*time.Millisecond); !errors.Is(err, ErrWaitTimeout) {
		t.Errorf("waiting on b with its SQL thread stopped: %v, want ErrWaitTimeout", err)
	}
	testpair.Until(t, pairWait, "b's I/O thread to receive the write", func() (bool, error) {
		f, err := Read(ctx, b.db)
		return err == nil && Contains(f.Replica.GTIDIOPos.Set, pos), err
	})

	exec(t, b.db, "b", "START SLAVE SQL_THREAD")
	if err := WaitExecuted(ctx, b.db, MariaDB, pos, 5*time.Second); err != nil {
		t.Fatalf("after START SLAVE SQL_THREAD: %v", err)
	}
	if f := mustRead(t, b); !f.Replica.SQLRunning {
		t.Errorf("SQL thread not running after START SLAVE SQL_THREAD: %+v", f.Replica)
	}
}

// TestPairSetReadOnly sets each node's read_only to the value it already
// has: both statements run for real and the pair does not change.
func TestPairSetReadOnly(t *testing.T) {
	a, b := openPair(t)
	ctx := testCtx(t, 10*time.Second)
	for _, n := range []pairNode{a, b} {
		before := mustRead(t, n)
		if err := SetReadOnly(ctx, n.db, before.Flavor, before.ReadOnly); err != nil {
			t.Fatalf("node %s: %v", n.name, err)
		}
		if after := mustRead(t, n); after.ReadOnly != before.ReadOnly {
			t.Fatalf("node %s: read_only went from %v to %v", n.name, before.ReadOnly, after.ReadOnly)
		}
	}
	if !mustRead(t, b).ReadOnly || mustRead(t, a).ReadOnly {
		t.Error("want a writable and b read-only")
	}
}

// deleteHeartbeat removes the tests' heartbeat row on a (it replicates).
func deleteHeartbeat(t *testing.T, a pairNode) {
	t.Helper()
	exec(t, a.db, "a", "DELETE FROM `"+DefaultHeartbeatSchema+"`.`heartbeat` WHERE node = '"+heartbeatNode+"'")
}
