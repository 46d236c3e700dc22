package testpair

import (
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// These are integration tests: they need the pair (`make pair-up`).

func openApp(t *testing.T, n Node) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", AppDSN(n)+"&readTimeout=30s&writeTimeout=30s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// prepare makes sure the pair is in its normal state and that the test
// table exists on both nodes.
func prepare(t *testing.T) (a, b *sql.DB) {
	Require(t)
	Reset(t)
	t.Cleanup(func() { Reset(t) })
	a, b = openApp(t, A), openApp(t, B)
	if _, err := a.Exec("CREATE TABLE IF NOT EXISTS testpair_rows (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64) NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func insert(t *testing.T, db *sql.DB, v string) {
	t.Helper()
	if _, err := db.Exec("INSERT INTO testpair_rows (v) VALUES (?)", v); err != nil {
		t.Fatalf("insert %q: %v", v, err)
	}
}

func requireRow(t *testing.T, db *sql.DB, node Node, v string) {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM testpair_rows WHERE v = ?", v).Scan(&n); err != nil {
		t.Fatalf("node %s: %v", node, err)
	}
	if n != 1 {
		t.Fatalf("node %s: %d rows with v=%q, want 1", node, n, v)
	}
}

func TestWriteOnAReadOnB(t *testing.T) {
	a, b := prepare(t)
	v := fmt.Sprintf("a-to-b-%d", time.Now().UnixNano())
	insert(t, a, v)
	WaitInSync(t, 10*time.Second)
	requireRow(t, b, B, v)

	// B is the read-only standby: the app user cannot write there.
	_, err := b.Exec("INSERT INTO testpair_rows (v) VALUES ('must-fail')")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1290 {
		t.Fatalf("write on read-only B: got %v, want error 1290", err)
	}
}

func TestKillAndStartB(t *testing.T) {
	a, b := prepare(t)
	Kill(t, B)

	// With B gone, A waits for a semi-sync ack once (rpl_semi_sync_master_timeout
	// = 2 s), then commits asynchronously.
	v1 := fmt.Sprintf("while-b-down-%d", time.Now().UnixNano())
	start := time.Now()
	insert(t, a, v1)
	t.Logf("first write with B down took %v", time.Since(start).Round(time.Millisecond))

	Start(t, B)
	Resume(t, B)
	WaitInSync(t, 30*time.Second)
	requireRow(t, b, B, v1)

	v2 := fmt.Sprintf("after-b-restart-%d", time.Now().UnixNano())
	insert(t, a, v2)
	WaitInSync(t, 10*time.Second)
	requireRow(t, b, B, v2)
}

func TestStopContB(t *testing.T) {
	a, b := prepare(t)
	Stop(t, B)
	v := fmt.Sprintf("while-b-frozen-%d", time.Now().UnixNano())
	start := time.Now()
	insert(t, a, v)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("write on A with B frozen took %v; semi-sync should give up after 2 s", d)
	}
	t.Logf("write with B frozen took %v", time.Since(start).Round(time.Millisecond))
	Cont(t, B)
	start = time.Now()
	WaitInSync(t, 30*time.Second)
	t.Logf("in sync %v after SIGCONT", time.Since(start).Round(time.Millisecond))
	requireRow(t, b, B, v)
}

func TestResetRestoresRoles(t *testing.T) {
	a, _ := prepare(t)
	// Promote B by hand, as a failover would, and write there.
	adminA, adminB := AdminDB(t, A), AdminDB(t, B)
	for _, q := range []string{"SET GLOBAL read_only = ON", "STOP SLAVE"} {
		if _, err := adminA.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := adminB.Exec("SET GLOBAL read_only = OFF"); err != nil {
		t.Fatal(err)
	}
	v := fmt.Sprintf("written-on-b-%d", time.Now().UnixNano())
	insert(t, openApp(t, B), v)

	Reset(t)
	requireRow(t, a, A, v)
	for n, want := range map[Node]int{A: 0, B: 1} {
		var ro int
		if err := AdminDB(t, n).QueryRow("SELECT @@read_only").Scan(&ro); err != nil {
			t.Fatal(err)
		}
		if ro != want {
			t.Errorf("node %s: read_only=%d after Reset, want %d", n, ro, want)
		}
	}
}

func TestRequireFailsWhenUnreachable(t *testing.T) {
	// Point the package at a port where nothing listens; Require must fail
	// (not skip) and mention `make pair-up`.
	t.Setenv("TANDEM_PAIR_PORT_A", "1")
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Require(ft)
	}()
	<-done
	if !ft.failed {
		t.Fatal("Require did not fail with node A unreachable")
	}
	if want := "make pair-up"; !strings.Contains(ft.msg, want) {
		t.Fatalf("Require message %q does not mention %q", ft.msg, want)
	}
}

// fakeT records Fatalf instead of failing the real test.
type fakeT struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
