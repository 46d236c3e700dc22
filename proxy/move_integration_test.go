package proxy

// Integration tests of the control surface on the real pair: sessions move
// between nodes between two commands, with the errors the README promises.

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/testpair"
)

// countingDB opens a pool through tandem whose dials are counted.
func countingDB(t *testing.T, addr string) (*sql.DB, *atomic.Int32) {
	c := driverConfig(addr)
	var dials atomic.Int32
	c.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	db := openDB(t, c)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	return db, &dials
}

func port(t *testing.T, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) int {
	t.Helper()
	var p int
	if err := q.QueryRowContext(context.Background(), "SELECT @@port").Scan(&p); err != nil {
		t.Fatalf("SELECT @@port: %v", err)
	}
	return p
}

func mysqlErr(err error) (uint16, string) {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number, me.Message
	}
	return 0, ""
}

func TestIdleSessionMovesWithStateAndStatements(t *testing.T) {
	p := startProxy(t, nil)
	db, dials := countingDB(t, p.addr)
	ctx := context.Background()
	mustExec(t, db, "SET SESSION sql_mode = 'ANSI_QUOTES'")
	mustExec(t, db, "USE sbtest")
	stmt, err := db.PrepareContext(ctx, "SELECT ? + 1, DATABASE(), @@sql_mode")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	check := func(wantPort int) {
		t.Helper()
		var n int
		var schema, mode string
		if err := stmt.QueryRowContext(ctx, 41).Scan(&n, &schema, &mode); err != nil {
			t.Fatalf("prepared statement: %v", err)
		}
		if n != 42 || schema != "sbtest" || mode != "ANSI_QUOTES" {
			t.Fatalf("got %d %q %q; want 42, schema sbtest, sql_mode ANSI_QUOTES", n, schema, mode)
		}
		if got := port(t, db); got != wantPort {
			t.Fatalf("on port %d, want %d", got, wantPort)
		}
	}
	check(testpair.Port(testpair.A))
	if err := p.Route("b"); err != nil {
		t.Fatal(err)
	}
	check(testpair.Port(testpair.B))
	// A statement prepared after the move gets an id that does not clash.
	stmt2, err := db.PrepareContext(ctx, "SELECT ? * 2")
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := stmt2.QueryRowContext(ctx, 21).Scan(&v); err != nil || v != 42 {
		t.Fatalf("statement prepared after the move: %d, %v", v, err)
	}
	check(testpair.Port(testpair.B))
	stmt2.Close()
	if err := p.Route("a"); err != nil {
		t.Fatal(err)
	}
	check(testpair.Port(testpair.A))
	if err := stmt2.Close(); err != nil {
		t.Fatal(err)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("the driver dialed %d times; moves must be invisible to it", n)
	}
}

func TestTransactionSeesOneErrorOnMove(t *testing.T) {
	p := startProxy(t, nil)
	db, dials := countingDB(t, p.addr)
	ctx := context.Background()
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS move_tx (id INT PRIMARY KEY)")
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, "SELECT 1")
	if err := p.Route("b"); err != nil {
		t.Fatal(err)
	}
	_, err = tx.ExecContext(ctx, "SELECT 2")
	if code, msg := mysqlErr(err); code != 1213 || !strings.Contains(msg, "retry the transaction") {
		t.Fatalf("statement in a moved transaction: %v; want error 1213 saying to retry", err)
	}
	_ = tx.Rollback()
	if got := port(t, db); got != testpair.Port(testpair.B) {
		t.Fatalf("after the error the session is on port %d, want node b", got)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("the driver dialed %d times", n)
	}
	_ = p.Route("a")
}

func TestPinnedSessionIsClosedOnMove(t *testing.T) {
	p := startProxy(t, nil)
	db, _ := countingDB(t, p.addr)
	mustExec(t, db, "CREATE TEMPORARY TABLE tmp_pin (id INT)")
	_ = p.Route("b")
	defer p.Route("a")
	_, err := db.Exec("SELECT 1")
	if code, msg := mysqlErr(err); code != 1927 || !strings.Contains(msg, "temporary tables") {
		t.Fatalf("pinned session after a move: %v; want error 1927 naming temporary tables", err)
	}
}

func TestCutInterruptsRunningCommand(t *testing.T) {
	p := startProxy(t, nil)
	db, dials := countingDB(t, p.addr)
	errc := make(chan error, 1)
	go func() {
		var r int
		errc <- db.QueryRow("SELECT SLEEP(10)").Scan(&r)
	}()
	waitRunning(t, testpair.A, "SELECT SLEEP(10)")
	_ = p.Route("b")
	p.Cut("a")
	select {
	case err := <-errc:
		// MariaDB's own "query interrupted" is 1317 too: the message
		// tells tandem's apart.
		if code, msg := mysqlErr(err); code != 1317 || !strings.Contains(msg, "tandem: node a failed") {
			t.Fatalf("interrupted statement: %v; want tandem's error 1317", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Cut did not interrupt the running statement")
	}
	if got := port(t, db); got != testpair.Port(testpair.B) {
		t.Fatalf("after the cut the session is on port %d, want node b", got)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("the driver dialed %d times", n)
	}
	_ = p.Route("a")
}

func TestHoldDownAndResume(t *testing.T) {
	p := startProxy(t, func(c *Config, _ []*Node) { c.HoldTimeout = 3 * time.Second })
	db, _ := countingDB(t, p.addr)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	p.Hold()
	done := make(chan error, 1)
	start := time.Now()
	go func() { _, err := db.Exec("SELECT 1"); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("statement ran while held: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	p.Resume()
	if err := <-done; err != nil {
		t.Fatalf("held statement after resume: %v", err)
	}
	t.Logf("held for %v", time.Since(start))

	p.Down("both nodes are down (test)")
	start = time.Now()
	_, err := db.Exec("SELECT 1")
	if code, msg := mysqlErr(err); code != 1105 || !strings.Contains(msg, "both nodes are down (test)") || time.Since(start) > time.Second {
		t.Fatalf("while down: %v after %v; want error 1105 with the reason, at once", err, time.Since(start))
	}
	// New sessions are refused at once too.
	c := driverConfig(p.addr)
	if err := openDB(t, c).Ping(); err == nil {
		t.Fatal("new session accepted while down")
	}
	_ = p.Route("a")
	if _, err := db.Exec("SELECT 1"); err != nil {
		t.Fatalf("after routing again: %v", err)
	}

	// A hold that outlasts HoldTimeout ends in an error, not a hang.
	p.Hold()
	start = time.Now()
	_, err = db.Exec("SELECT 1")
	if code, _ := mysqlErr(err); code != 1105 || time.Since(start) > 5*time.Second {
		t.Fatalf("held past the timeout: %v after %v", err, time.Since(start))
	}
	p.Resume()
}

func TestIdleSessionSurvivesNodeClosingIt(t *testing.T) {
	p := startProxy(t, func(c *Config, _ []*Node) { c.IdleCheck = 50 * time.Millisecond })
	db, dials := countingDB(t, p.addr)
	var thread int64
	if err := db.QueryRow("SELECT CONNECTION_ID()").Scan(&thread); err != nil {
		t.Fatal(err)
	}
	idleSince := time.Now()
	admin := testpair.AdminDB(t, testpair.A)
	if _, err := admin.Exec("KILL ?", thread); err != nil {
		t.Fatal(err)
	}
	// The node closes the connection before it drops the thread; the
	// idle check runs once the session has been idle for IdleCheck.
	waitThreadGone(t, testpair.A, thread)
	waitFor(t, time.Second, "the session to be idle for twice IdleCheck", func() bool {
		return time.Since(idleSince) > 100*time.Millisecond
	})
	var thread2 int64
	if err := db.QueryRow("SELECT CONNECTION_ID()").Scan(&thread2); err != nil {
		t.Fatalf("idle session whose node connection was killed: %v", err)
	}
	if thread2 == thread || dials.Load() != 1 {
		t.Fatalf("thread %d → %d, %d dials: want a new node thread and no new dial", thread, thread2, dials.Load())
	}
}

func TestInterruptedCommitHasUnknownOutcome(t *testing.T) {
	p := startProxy(t, nil)
	t.Cleanup(func() { testpair.Reset(t) })
	db, _ := countingDB(t, p.addr)
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS commit_cut (id INT PRIMARY KEY)")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, "INSERT INTO commit_cut VALUES (1) ON DUPLICATE KEY UPDATE id = id")
	testpair.Stop(t, testpair.A) // the COMMIT hangs on a frozen node
	defer testpair.Cont(t, testpair.A)
	errc := make(chan error, 1)
	go func() { errc <- tx.Commit() }()
	// Once the COMMIT is under way, cut the frozen node. Whether the cut
	// comes before or after tandem sent the COMMIT to it, the outcome
	// is unknown to tandem.
	waitFor(t, 10*time.Second, "the COMMIT to reach tandem", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, s := range p.sessions {
			if s.busy.Load() {
				return true
			}
		}
		return false
	})
	p.Cut("a")
	_ = p.Route("b")
	select {
	case err := <-errc:
		if code, msg := mysqlErr(err); code != 1317 || !strings.Contains(msg, "COMMIT") {
			t.Fatalf("interrupted COMMIT: %v; want error 1317 saying the outcome is unknown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the interrupted COMMIT never returned")
	}
}

func TestUnknownStatementIDAfterMove(t *testing.T) {
	p := startProxy(t, nil)
	defer p.Route("a")
	c := dialRaw(t, p.addr, 0)
	c.send(append([]byte{0x16}, "SELECT 1"...))
	prep := c.read(1 + 1 + 1) // OK, one column, EOF
	id := binary.LittleEndian.Uint32(prep[0][1:])
	if err := p.Route("b"); err != nil {
		t.Fatal(err)
	}
	// The client's own statement still runs on b, under its old id.
	exec := func(id uint32) []byte {
		b := []byte{0x17, 0, 0, 0, 0, 0, 1, 0, 0, 0}
		binary.LittleEndian.PutUint32(b[1:], id)
		c.send(b)
		return c.read(1)[0]
	}
	if r := exec(id); r[0] != 1 { // column count
		t.Fatalf("the moved statement %d: %x", id, r)
	}
	c.read(4) // column, EOF, row, EOF
	// An id the session never prepared must not reach a statement of the
	// node's that happens to have that number.
	if e, ok := parseErr(exec(id + 1)); !ok || e.Code != 1243 {
		t.Fatalf("unknown statement id after a move: %+v, want error 1243", e)
	}
}
