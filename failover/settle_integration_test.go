package failover_test

// Settled outcomes across a failover, on the real pair: node a is SIGKILLed
// while COMMITs and autocommit INSERTs are in flight, and every answer the
// clients got is checked against the data on the new active (b). The
// transactions write three ways: a marked INSERT, a prepared INSERT, and a
// SELECT of a function that inserts (neither of the last two carries the
// marker: their COMMIT is marked by tandem's savepoint).
//
// To put commands in flight at the moment of the kill, the proxy reaches
// node a through a relay that delays every byte by relayDelay in each
// direction (the monitor reaches a directly, so detection is unchanged): at
// the kill, a command may still be on its way to a (never executed: not
// committed), or executed, acknowledged by b and its OK on its way back
// (committed, but the client has no answer). The relay drops what it holds
// when a dies, as the network does.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemdb/tandem/failover"
	"github.com/tandemdb/tandem/internal/testpair"
)

// relayDelay is how long the delay relay holds each chunk, each way.
const relayDelay = 40 * time.Millisecond

// settleOp is one operation of the settle workload and the answer it got.
type settleOp struct {
	worker     int
	tag        int64
	tx         bool // BEGIN; INSERT; COMMIT (else one autocommit INSERT)
	prepared   bool // the transaction's INSERT is a prepared statement
	fn         bool // the transaction writes by SELECT settle_ins(...)
	start, end time.Time
	err        error // nil: OK
	atCommit   bool  // the error came from the COMMIT
	rows       int64 // OK of an autocommit INSERT: affected rows
	insertID   int64 // ... and its insert id
}

// settleWorkers runs workers inserting rows tagged with unique numbers
// through tandem, alternating autocommit INSERTs and transactions, and
// records every answer.
type settleWorkers struct {
	mu     sync.Mutex
	ops    []settleOp
	lastID []int64 // per worker: the insert id of its last INSERT answered OK
	conns  []*sql.Conn
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startSettleWorkers(t *testing.T, db *sql.DB, table string, workers int, round int) *settleWorkers {
	t.Helper()
	w := &settleWorkers{lastID: make([]int64, workers), stop: make(chan struct{})}
	for i := range workers {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := db.Conn(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		w.conns = append(w.conns, c)
		// A statement prepared on the node (COM_STMT_PREPARE/EXECUTE):
		// its text carries no marker, so its transactions are marked
		// with a savepoint before their COMMIT.
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		stmt, err := c.PrepareContext(ctx, "INSERT INTO "+table+" (tag, worker) VALUES (?, ?)")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer stmt.Close()
			for n := int64(0); n < 100000; n++ {
				select {
				case <-w.stop:
					return
				default:
				}
				op := settleOp{worker: i, tag: int64(round)<<40 | int64(i)<<20 | n, tx: n%4 != 0, prepared: n%4 == 2, fn: n%4 == 3, start: time.Now()}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				ins := fmt.Sprintf("INSERT INTO %s (tag, worker) VALUES (%d, %d)", table, op.tag, i)
				if op.tx {
					_, op.err = c.ExecContext(ctx, "BEGIN")
					var res sql.Result
					if op.err == nil && op.fn {
						// Unmarked: the SELECT reaches the node as
						// written. LAST_INSERT_ID() is the
						// function's own.
						var id int64
						op.err = c.QueryRowContext(ctx, fmt.Sprintf("SELECT settle_ins(%d, %d)", op.tag, i)).Scan(&id)
					} else if op.err == nil {
						if op.prepared {
							res, op.err = stmt.ExecContext(ctx, op.tag, i)
						} else {
							res, op.err = c.ExecContext(ctx, ins)
						}
						if op.err == nil {
							id, _ := res.LastInsertId()
							w.mu.Lock()
							w.lastID[i] = id
							w.mu.Unlock()
						}
					}
					if op.err == nil {
						_, op.err = c.ExecContext(ctx, "COMMIT")
						op.atCommit = op.err != nil
					} else {
						_, _ = c.ExecContext(ctx, "ROLLBACK")
					}
				} else {
					var res sql.Result
					res, op.err = c.ExecContext(ctx, ins)
					if op.err == nil {
						op.rows, _ = res.RowsAffected()
						op.insertID, _ = res.LastInsertId()
						w.mu.Lock()
						w.lastID[i] = op.insertID
						w.mu.Unlock()
					}
				}
				cancel()
				op.end = time.Now()
				w.mu.Lock()
				w.ops = append(w.ops, op)
				w.mu.Unlock()
				if op.err != nil && errCode(op.err) == 0 {
					return // the connection is gone: counted as a closed answer
				}
			}
		}()
	}
	return w
}

func (w *settleWorkers) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ops)
}

// waitOps waits until n more operations were answered.
func (w *settleWorkers) waitOps(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	want := w.count() + n
	deadline := time.Now().Add(timeout)
	for w.count() < want {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d operations answered after %v", w.count(), want, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *settleWorkers) halt() {
	close(w.stop)
	w.wg.Wait()
}

// settleTally counts answers by kind over all rounds.
type settleTally struct {
	ok, okSettled, notCommitted, notCommittedSettled, txLost, unknown, closed, other, wrong int
	commitsInFlight, insertsInFlight                                                        int
	// Answers to commands in flight at the kill, by kind.
	commitOK, commitNot, insertOK, insertNot int
	preparedOK, preparedNot                  int           // of the commits, transactions of prepared statements
	fnOK, fnNot                              int           // ... and of SELECT settle_ins(...)
	slowest                                  time.Duration // kill -> a settled answer
}

// check compares every answer with the rows on node n.
func (w *settleWorkers) check(t *testing.T, n testpair.Node, table string, killed, dead time.Time, tl *settleTally) {
	t.Helper()
	db := nodeDB(t, n)
	rows, err := db.Query("SELECT tag, id FROM " + testpair.AppDB + "." + table)
	if err != nil {
		t.Fatal(err)
	}
	have := map[int64]int64{}
	for rows.Next() {
		var tag, id int64
		if err := rows.Scan(&tag, &id); err != nil {
			t.Fatal(err)
		}
		have[tag] = id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, op := range w.ops {
		id, present := have[op.tag]
		inFlight := op.start.Before(killed) && op.end.After(dead)
		if inFlight {
			if op.tx {
				tl.commitsInFlight++
			} else {
				tl.insertsInFlight++
			}
		}
		what := fmt.Sprintf("worker %d tag %d tx=%v prepared=%v fn=%v in_flight=%v", op.worker, op.tag, op.tx, op.prepared, op.fn, inFlight)
		code := errCode(op.err)
		switch {
		case op.err == nil:
			tl.ok++
			if inFlight {
				tl.slowest = max(tl.slowest, op.end.Sub(killed))
				tl.okSettled++
				if op.tx {
					tl.commitOK++
					if op.prepared {
						tl.preparedOK++
					}
					if op.fn {
						tl.fnOK++
					}
				} else {
					tl.insertOK++
				}
			}
			if !present {
				tl.wrong++
				t.Errorf("%s: answered OK but the row is not on node %s", what, n)
			} else if !op.tx && (op.rows != 1 || op.insertID != id) {
				tl.wrong++
				t.Errorf("%s: OK with %d rows, insert id %d; the row has id %d", what, op.rows, op.insertID, id)
			}
		case code == 1317:
			tl.unknown++
			t.Errorf("%s: outcome unknown (row present=%v): %v", what, present, op.err)
		case code == 0:
			tl.closed++
			t.Errorf("%s: connection closed (row present=%v): %v", what, present, op.err)
		default:
			if code == 1213 && strings.Contains(op.err.Error(), "not committed") {
				tl.notCommitted++
				if inFlight {
					tl.slowest = max(tl.slowest, op.end.Sub(killed))
					tl.notCommittedSettled++
					if op.tx {
						tl.commitNot++
						if op.prepared {
							tl.preparedNot++
						}
						if op.fn {
							tl.fnNot++
						}
					} else {
						tl.insertNot++
					}
				}
			} else if code == 1213 {
				tl.txLost++
			} else {
				tl.other++
			}
			if present {
				tl.wrong++
				t.Errorf("%s: answered %v but the row is on node %s", what, op.err, n)
			}
		}
	}
}

// TestSettledOutcomesAcrossFailover: rounds of SIGKILL of the active under
// COMMITs and autocommit INSERTs in flight. Every OK must have its row on
// the new active (with the affected rows and insert id it reported), every
// "not committed" must have none, and no answer may be "outcome unknown":
// the new active's binlog always tells. LAST_INSERT_ID() survives the move.
func TestSettledOutcomesAcrossFailover(t *testing.T) {
	rounds := 4
	if v, err := strconv.Atoi(os.Getenv("TANDEM_SETTLE_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	const workers = 8
	testpair.Require(t)
	// Cleanups run last first: the pair is reset, then the decision
	// this test recorded on it forgotten.
	t.Cleanup(func() { forgetRecordedDecision(t) })
	t.Cleanup(func() { testpair.Reset(t) })
	var tl settleTally
	// Which commands are in flight at the kill is up to timing: past the
	// rounds asked for, go on (up to maxRounds) until both outcomes were
	// settled at least once.
	const maxRounds = 16
	round := 0
	for ; round < rounds || (tl.okSettled == 0 || tl.notCommittedSettled == 0) && round < maxRounds; round++ {
		testpair.Reset(t)
		forgetRecordedDecision(t)
		relay := newRelay(t, testpair.Addr(testpair.A), relayDelay)
		tn := startTandemSplit(t, newStore(t), [2]string{relay.Addr(), testpair.Addr(testpair.B)},
			[2]string{testpair.Addr(testpair.A), testpair.Addr(testpair.B)}, nil, nil)
		tn.waitStatus(t, 10*time.Second, "both nodes healthy", func(s failover.Status) bool {
			return s.State == "active" && nodeStatus(s, "a").Healthy && nodeStatus(s, "b").Healthy
		})
		db := tn.client(t)
		db.SetMaxOpenConns(workers + 1)
		table := "settle_rows"
		mustExec(t, db, "DROP TABLE IF EXISTS "+table)
		mustExec(t, db, "CREATE TABLE "+table+" (id BIGINT AUTO_INCREMENT PRIMARY KEY, tag BIGINT NOT NULL UNIQUE, worker INT NOT NULL)")
		// Created by the admin account (with the binlog on, a function
		// that writes needs SUPER to create); app may execute it.
		mustExec(t, nodeDB(t, testpair.A), "CREATE OR REPLACE FUNCTION "+testpair.AppDB+".settle_ins(t BIGINT, w INT) RETURNS BIGINT DETERMINISTIC MODIFIES SQL DATA "+
			"BEGIN INSERT INTO "+testpair.AppDB+"."+table+" (tag, worker) VALUES (t, w); RETURN LAST_INSERT_ID(); END")
		w := startSettleWorkers(t, db, table, workers, round)
		w.waitOps(t, 60+round*7, 20*time.Second) // a different moment each round
		// A command counts as in flight if it started before the signal
		// and was answered after the process was gone: pair.sh kill
		// takes 100-300 ms, in which most commands in flight were
		// answered, so the signal is sent from here.
		killed, dead := testpair.KillTimed(t, testpair.A)
		tn.waitActive(t, 15*time.Second, "b", 2)
		w.waitOps(t, 2*workers, 20*time.Second)
		w.halt()
		// LAST_INSERT_ID() of each session is the last insert id it was
		// told, on the new node too.
		for i, c := range w.conns {
			var got int64
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := c.QueryRowContext(ctx, "SELECT LAST_INSERT_ID()").Scan(&got)
			cancel()
			if err != nil {
				t.Errorf("round %d worker %d: SELECT LAST_INSERT_ID(): %v", round, i, err)
			} else if got != w.lastID[i] {
				t.Errorf("round %d worker %d: LAST_INSERT_ID() = %d after the failover, want %d", round, i, got, w.lastID[i])
			}
			c.Close()
		}
		before := tl
		w.check(t, testpair.B, table, killed, dead, &tl)
		t.Logf("round %d: %d answers; in flight at the kill: %d transactions, %d autocommit inserts; settled OK %d, settled not committed %d, unknown %d, wrong %d",
			round, len(w.ops), tl.commitsInFlight-before.commitsInFlight, tl.insertsInFlight-before.insertsInFlight,
			tl.okSettled-before.okSettled, tl.notCommittedSettled-before.notCommittedSettled, tl.unknown-before.unknown, tl.wrong-before.wrong)
		tn.stop()
		relay.Close()
	}
	t.Logf("in flight at the kill and settled: COMMIT -> OK %d, COMMIT -> not committed %d (of which prepared-statement transactions: %d, %d; SELECT-of-a-function transactions: %d, %d), INSERT -> OK %d, INSERT -> not committed %d",
		tl.commitOK, tl.commitNot, tl.preparedOK, tl.preparedNot, tl.fnOK, tl.fnNot, tl.insertOK, tl.insertNot)
	t.Logf("slowest settled answer: %v after the kill", tl.slowest.Round(time.Millisecond))
	t.Logf("%d rounds: OK %d (of which answered after the kill for commands in flight: %d), not committed %d (in flight: %d), transaction lost %d, unknown %d, closed %d, other errors %d; wrong answers %d",
		round, tl.ok, tl.okSettled, tl.notCommitted, tl.notCommittedSettled, tl.txLost, tl.unknown, tl.closed, tl.other, tl.wrong)
	if tl.okSettled == 0 || tl.notCommittedSettled == 0 {
		t.Errorf("the rounds settled %d commands as committed and %d as not committed; want both kinds exercised", tl.okSettled, tl.notCommittedSettled)
	}
}

// TestUserVariablesSurviveMoves: idle sessions keep their user variables and
// LAST_INSERT_ID() across a switchover and then a failover. Variables set
// to literals are replayed; variables set from a query are read on the old
// node at the switchover; only a variable set from a query on a node that
// then dies closes its session (1927).
func TestUserVariablesSurviveMoves(t *testing.T) {
	testpair.Require(t)
	testpair.Reset(t)
	t.Cleanup(func() { forgetRecordedDecision(t) }) // after setup's reset
	tn := setup(t)
	db := tn.client(t)
	db.SetMaxOpenConns(8)
	ctx := context.Background()
	conn := func() *sql.Conn {
		t.Helper()
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	mustExec(t, db, "DROP TABLE IF EXISTS uv_rows")
	mustExec(t, db, "CREATE TABLE uv_rows (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
	literal, fromQuery, lateLiteral, lateQuery := conn(), conn(), conn(), conn()
	mustExec(t, literal, "SET @x = 5")
	mustExec(t, literal, "SET @a := 'x', @b = NULL")
	mustExec(t, literal, "INSERT INTO uv_rows (v) VALUES (1), (2)")
	var wantID int64
	if err := literal.QueryRowContext(ctx, "SELECT LAST_INSERT_ID()").Scan(&wantID); err != nil || wantID == 0 {
		t.Fatalf("LAST_INSERT_ID(): %d, %v", wantID, err)
	}
	mustExec(t, literal, "INSERT INTO uv_rows (id, v) VALUES (1000, 3)") // an explicit id leaves LAST_INSERT_ID() alone
	mustExec(t, fromQuery, "SET @q = (SELECT 40 + 2), @s = (SELECT CONCAT('h', _utf8mb4 X'C3A9', 'llo'))")

	check := func(when string) {
		t.Helper()
		var x, id int64
		var a string
		var b sql.NullString
		if err := literal.QueryRowContext(ctx, "SELECT @x, @a, @b, LAST_INSERT_ID()").Scan(&x, &a, &b, &id); err != nil {
			t.Fatalf("%s: literal session: %v", when, err)
		}
		if x != 5 || a != "x" || b.Valid || id != wantID {
			t.Errorf("%s: @x=%d @a=%q @b=%v LAST_INSERT_ID()=%d; want 5, x, NULL, %d", when, x, a, b, id, wantID)
		}
		var q int64
		var s string
		if err := fromQuery.QueryRowContext(ctx, "SELECT @q, @s").Scan(&q, &s); err != nil {
			t.Fatalf("%s: session with variables from a query: %v", when, err)
		}
		if q != 42 || s != "h\u00e9llo" {
			t.Errorf("%s: @q=%d @s=%q; want 42, h\u00e9llo", when, q, s)
		}
	}

	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := tn.m.Switchover(sctx, failover.SwitchoverOptions{Timeout: 5 * time.Second}); err != nil {
		t.Fatalf("switchover: %v", err)
	}
	tn.waitActive(t, 10*time.Second, "b", 2)
	check("after the switchover")
	if got := port(t, literal); got != testpair.Port(testpair.B) {
		t.Fatalf("after the switchover the session is on port %d, want node b", got)
	}
	mustExec(t, lateLiteral, "SET @y = 9")
	mustExec(t, lateQuery, "SET @r = (SELECT 7)")

	testpair.Kill(t, testpair.B)
	tn.waitActive(t, 20*time.Second, "a", 3)
	check("after the failover")
	var y int64
	if err := lateLiteral.QueryRowContext(ctx, "SELECT @y").Scan(&y); err != nil || y != 9 {
		t.Errorf("after the failover: @y = %d, %v; want 9", y, err)
	}
	var r int64
	err := lateQuery.QueryRowContext(ctx, "SELECT @r").Scan(&r)
	if code := errCode(err); code != 1927 || !strings.Contains(err.Error(), "user variables set from a query") {
		t.Errorf("after the failover, a session whose variable was set from a query on the dead node: %v; want 1927 naming it", err)
	}
}
