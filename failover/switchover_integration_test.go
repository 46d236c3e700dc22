package failover_test

// Planned switchover on the real pair, under a running read/write workload.

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/failover"
	"github.com/tandemdb/tandem/internal/testpair"
)

// swStart starts tandem (failover_integration_test.go's harness) on a pair
// reset to its normal state first.
func swStart(t *testing.T) *tandem {
	t.Helper()
	testpair.Require(t)
	testpair.Reset(t)
	return setup(t)
}

// swWorkload runs workers doing transactions and autocommit inserts
// through addr until stop is closed (at most limit per worker). It returns
// the acknowledged ids and every error.
type swWorkload struct {
	mu    sync.Mutex
	acked []int64
	errs  []error
	ops   atomic.Int64
	wg    sync.WaitGroup
}

func swRun(t *testing.T, addr string, workers int, stop <-chan struct{}) *swWorkload {
	t.Helper()
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = testpair.AppUser, testpair.AppPassword, "tcp", addr, testpair.AppDB
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 5*time.Second, 20*time.Second, 20*time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(workers)
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS sw_rows (id BIGINT PRIMARY KEY, worker INT, note VARCHAR(40))"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM sw_rows"); err != nil {
		t.Fatal(err)
	}
	w := &swWorkload{}
	var next atomic.Int64
	for i := range workers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for n := 0; n < 20000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				id := next.Add(1)
				var err error
				if n%2 == 0 {
					_, err = db.Exec("INSERT INTO sw_rows VALUES (?, ?, 'autocommit')", id, i)
				} else {
					err = func() error {
						tx, err := db.Begin()
						if err != nil {
							return err
						}
						if _, err := tx.Exec("INSERT INTO sw_rows VALUES (?, ?, 'tx')", id, i); err != nil {
							tx.Rollback()
							return err
						}
						var cnt int
						if err := tx.QueryRow("SELECT COUNT(*) FROM sw_rows WHERE worker = ?", i).Scan(&cnt); err != nil {
							tx.Rollback()
							return err
						}
						return tx.Commit()
					}()
				}
				w.ops.Add(1)
				w.mu.Lock()
				if err != nil {
					w.errs = append(w.errs, err)
				} else {
					w.acked = append(w.acked, id)
				}
				w.mu.Unlock()
			}
		}()
	}
	return w
}

// swMissing returns the acknowledged ids not on node n.
func swMissing(t *testing.T, n testpair.Node, acked []int64) []int64 {
	t.Helper()
	db := testpair.AdminDB(t, n)
	have := map[int64]bool{}
	rows, err := db.Query("SELECT id FROM app.sw_rows")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		have[id] = true
	}
	var missing []int64
	for _, id := range acked {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	return missing
}

func TestSwitchoverUnderLoadHasNoClientErrors(t *testing.T) {
	tt := swStart(t)
	ctx := context.Background()

	dry, err := tt.m.Switchover(ctx, failover.SwitchoverOptions{DryRun: true})
	if err != nil || !dry.DryRun || dry.To != "b" || len(dry.Plan) == 0 {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	if tt.m.Decision().Active != "a" {
		t.Fatal("a dry run changed the active node")
	}

	stop := make(chan struct{})
	w := swRun(t, tt.addr, 6, stop)
	time.Sleep(time.Second)
	before := w.ops.Load()
	rep, err := tt.m.Switchover(ctx, failover.SwitchoverOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("switchover: %v (%+v)", err, rep)
	}
	t.Logf("switchover a→b: write pause %v, %d operations before it", rep.WritePause, before)
	time.Sleep(time.Second)
	// And back, so both directions are exercised under load.
	rep2, err := tt.m.Switchover(ctx, failover.SwitchoverOptions{To: "a", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("switchover back: %v", err)
	}
	t.Logf("switchover b→a: write pause %v", rep2.WritePause)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	w.wg.Wait()

	if len(w.errs) > 0 {
		t.Fatalf("%d client errors during switchovers, first: %v", len(w.errs), w.errs[0])
	}
	if len(w.acked) < 100 {
		t.Fatalf("only %d writes acknowledged: the workload barely ran", len(w.acked))
	}
	if d := tt.m.Decision(); d.Active != "a" || d.Epoch != 3 {
		t.Fatalf("decision after two switchovers: %+v", d)
	}
	testpair.WaitInSync(t, 20*time.Second)
	for _, n := range []testpair.Node{testpair.A, testpair.B} {
		if missing := swMissing(t, n, w.acked); len(missing) > 0 {
			t.Fatalf("%d acknowledged writes missing on node %s, e.g. %v", len(missing), n, missing[0])
		}
	}
	// Exactly one writable node.
	ro := map[testpair.Node]int{}
	for _, n := range []testpair.Node{testpair.A, testpair.B} {
		var v int
		if err := testpair.AdminDB(t, n).QueryRow("SELECT @@read_only").Scan(&v); err != nil {
			t.Fatal(err)
		}
		ro[n] = v
	}
	if ro[testpair.A] != 0 || ro[testpair.B] != 1 {
		t.Fatalf("read_only after switching back: %v", ro)
	}
}

func TestSwitchoverRollsBackWhenTransactionsDoNotFinish(t *testing.T) {
	tt := swStart(t)
	ctx := context.Background()
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = testpair.AppUser, testpair.AppPassword, "tcp", tt.addr, testpair.AppDB
	conn, _ := mysql.NewConnector(c)
	db := sql.OpenDB(conn)
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	// The open transaction never ends in time: the switchover must roll
	// back, and every session must go on without an error.
	start := time.Now()
	rep, err := tt.m.Switchover(ctx, failover.SwitchoverOptions{Timeout: 500 * time.Millisecond})
	if err == nil || !rep.RolledBack {
		t.Fatalf("switchover with a transaction open: %+v, %v; want a rollback", rep, err)
	}
	t.Logf("rolled back after %v: %v", time.Since(start), err)
	if _, err := tx.Exec("INSERT INTO sw_rows VALUES (999999999, 0, 'after rollback') ON DUPLICATE KEY UPDATE note = 'after rollback'"); err != nil && !isMissingTable(err) {
		t.Fatalf("open transaction after the rollback: %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	var port int
	if err := db.QueryRow("SELECT @@port").Scan(&port); err != nil || port != testpair.Port(testpair.A) {
		t.Fatalf("after the rollback: port %d, %v; want node a", port, err)
	}
	if d := tt.m.Decision(); d.Active != "a" || d.Epoch != 1 {
		t.Fatalf("decision after a rolled back switchover: %+v", d)
	}
	var ro int
	if err := testpair.AdminDB(t, testpair.A).QueryRow("SELECT @@read_only").Scan(&ro); err != nil || ro != 0 {
		t.Fatalf("node a read_only=%d after the rollback (%v)", ro, err)
	}
	// Refusals name the reason.
	if _, err := tt.m.Switchover(ctx, failover.SwitchoverOptions{To: "a"}); !errors.Is(err, failover.ErrRefused) {
		t.Fatalf("switchover to the active node: %v", err)
	}
	if _, err := tt.m.Switchover(ctx, failover.SwitchoverOptions{To: "zz"}); err == nil || !strings.Contains(err.Error(), `no node named "zz"`) {
		t.Fatalf("switchover to an unknown node: %v", err)
	}
}

func isMissingTable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1146
}

func TestMaintenanceAndPause(t *testing.T) {
	tt := swStart(t)
	ctx := context.Background()
	if err := tt.m.SetMaintenance(ctx, "a", true); !errors.Is(err, failover.ErrRefused) {
		t.Fatalf("maintenance on the active node: %v", err)
	}
	if err := tt.m.SetMaintenance(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	if _, err := tt.m.Switchover(ctx, failover.SwitchoverOptions{}); err == nil || !strings.Contains(err.Error(), "maintenance") {
		t.Fatalf("switchover to a node in maintenance: %v", err)
	}
	if err := tt.m.SetMaintenance(ctx, "b", false); err != nil {
		t.Fatal(err)
	}

	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = testpair.AppUser, testpair.AppPassword, "tcp", tt.addr, testpair.AppDB
	conn, _ := mysql.NewConnector(c)
	db := sql.OpenDB(conn)
	defer db.Close()
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := tt.m.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := db.Exec("SELECT 1"); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("statement ran while paused: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tt.m.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("paused statement after resume: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("statement still held after resume")
	}
}
