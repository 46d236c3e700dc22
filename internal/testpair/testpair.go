// Package testpair gives integration tests access to the local two-node
// MariaDB master-master pair that scripts/pair.sh runs (`make pair-up`).
//
// Node A is the writer (read_only=OFF) and node B the passive standby
// (read_only=ON); each replicates from the other with GTIDs and
// semi-synchronous replication. Both listen on 127.0.0.1 only.
//
// The environment variables are those of scripts/pair.sh:
//
//	TANDEM_PAIR_DIR     default /tmp/tandem-pair
//	TANDEM_PAIR_PORT_A  default 13306
//	TANDEM_PAIR_PORT_B  default 13307
//
// A typical test:
//
//	func TestFailover(t *testing.T) {
//		testpair.Require(t)
//		t.Cleanup(func() { testpair.Reset(t) })
//		testpair.Kill(t, testpair.A)
//		...
//	}
//
// Require serialises test processes: the first call in a process takes an
// exclusive lock on the pair that is held until the process exits, so test
// binaries of different packages (run in parallel by `go test ./...`) never
// inject faults into each other's pair. Tests inside one package run
// sequentially unless they call t.Parallel; don't, with this package.
package testpair

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/nodetls"
)

// Node names one of the two servers of the pair.
type Node string

// The two nodes. A starts as the writer, B as the read-only standby.
const (
	A Node = "a"
	B Node = "b"
)

// Accounts created on both nodes by scripts/pair.sh.
const (
	AdminUser     = "tandem" // ALL PRIVILEGES WITH GRANT OPTION, @127.0.0.1 and @localhost
	AdminPassword = "tandem"
	AppUser       = "app" // ALL on app.* and sbtest.*, @127.0.0.1
	AppPassword   = "apppass"
	AppDB         = "app"
	ReplUser      = "repl" // REPLICATION SLAVE, @127.0.0.1
	ReplPassword  = "replpass"
)

// Dir is the directory holding the nodes' data: $TANDEM_PAIR_DIR or
// /tmp/tandem-pair.
func Dir() string {
	if d := os.Getenv("TANDEM_PAIR_DIR"); d != "" {
		return strings.TrimRight(d, "/")
	}
	return "/tmp/tandem-pair"
}

// Port is the TCP port of node n: $TANDEM_PAIR_PORT_A (13306) or
// $TANDEM_PAIR_PORT_B (13307). It panics on an unknown node or a
// non-numeric variable.
func Port(n Node) int {
	env, def := "TANDEM_PAIR_PORT_A", 13306
	switch n {
	case A:
	case B:
		env, def = "TANDEM_PAIR_PORT_B", 13307
	default:
		panic(fmt.Sprintf("testpair: unknown node %q", n))
	}
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	p, err := strconv.Atoi(v)
	if err != nil {
		panic(fmt.Sprintf("testpair: %s=%q is not a port number", env, v))
	}
	return p
}

// Addr is node n's "host:port" address, always on 127.0.0.1.
func Addr(n Node) string { return "127.0.0.1:" + strconv.Itoa(Port(n)) }

// CA is the PEM file of the pair's test CA, which signs both nodes' TLS
// certificates (names 127.0.0.1 and localhost): $TANDEM_PAIR_DIR/tls/ca.pem.
func CA() string { return filepath.Join(Dir(), "tls", "ca.pem") }

// TLS is tandem's verify-full TLS to a node of the pair reached at a
// 127.0.0.1 address (either node, or a relay to one on 127.0.0.1): the
// certificate must chain to CA and name 127.0.0.1.
func TLS(t testing.TB) *nodetls.Client {
	t.Helper()
	c, err := nodetls.New(nodetls.Settings{Mode: nodetls.VerifyFull, CAFile: CA()}, Addr(A))
	if err != nil {
		t.Fatalf("testpair: TLS to the pair: %v (does the pair offer TLS? scripts/pair.sh up restarts a node without it)", err)
	}
	return c
}

// Socket is the path of node n's unix socket (root may log in there
// without a password).
func Socket(n Node) string { return filepath.Join(Dir(), string(n), "mysqld.sock") }

// Peer is the other node.
func Peer(n Node) Node {
	if n == A {
		return B
	}
	return A
}

// AdminDSN is a go-sql-driver DSN for tandem's admin user on node n, with no
// default database and a 5 s dial timeout. Append "&readTimeout=..." for
// tests that SIGSTOP a node, or a query may block until SIGCONT.
func AdminDSN(n Node) string { return dsn(n, AdminUser, AdminPassword, "", 5*time.Second, 0) }

// AppDSN is a go-sql-driver DSN for the application user on node n, with
// database app and a 5 s dial timeout.
func AppDSN(n Node) string { return dsn(n, AppUser, AppPassword, AppDB, 5*time.Second, 0) }

func dsn(n Node, user, pass, db string, dial, io time.Duration) string {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = user, pass, "tcp", Addr(n), db
	c.Timeout, c.ReadTimeout, c.WriteTimeout = dial, io, io
	return c.FormatDSN()
}

// AdminDB opens a connection pool as the admin user on node n, closed when
// the test ends.
func AdminDB(t testing.TB, n Node) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", AdminDSN(n))
	if err != nil {
		t.Fatalf("testpair: open node %s: %v", n, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var (
	lockOnce sync.Once
	lockErr  error
	// lockFile holds the pair lock for the life of the process: it must
	// stay reachable, or the garbage collector closes it and the lock
	// goes with it.
	lockFile *os.File
)

// Require fails the test unless both nodes accept the admin user's logins,
// and takes the process-wide pair lock (see the package doc).
func Require(t testing.TB) {
	t.Helper()
	lockOnce.Do(func() { lockErr = lockPair(t) })
	if lockErr != nil {
		t.Fatalf("testpair: %v", lockErr)
	}
	for _, n := range []Node{A, B} {
		if err := ping(n); err != nil {
			t.Fatalf("testpair: MariaDB node %s at %s is not reachable: %v\n"+
				"Start the local pair with `make pair-up` (scripts/pair.sh up); `make pair-status` shows its state.",
				n, Addr(n), err)
		}
	}
}

func lockPair(t testing.TB) error {
	path := Dir() + ".testlock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("open lock %s: %v", path, err)
	}
	lockFile = f // open (and locked) until the process exits
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return nil
	}
	t.Logf("testpair: waiting for %s (another test process is using the pair)", path)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %v", path, err)
	}
	return nil
}

// quickDB is a short-lived admin connection with I/O timeouts, so helpers
// never hang on a stopped node.
func quickDB(n Node) (*sql.DB, error) {
	db, err := sql.Open("mysql", dsn(n, AdminUser, AdminPassword, "", 2*time.Second, 5*time.Second))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

func ping(n Node) error {
	db, err := quickDB(n)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// Kill sends SIGKILL to node n's server and waits until it is gone.
func Kill(t testing.TB, n Node) { t.Helper(); runScript(t, "kill", string(n)) }

// PID is the process id of node n's running mariadbd, from its pid file.
// The pid file goes stale after a kill, so the process must be this node's
// mariadbd (its --defaults-file is in the node's directory).
func PID(t testing.TB, n Node) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(), string(n), "mysqld.pid"))
	if err != nil {
		t.Fatalf("testpair: node %s's pid: %v", n, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("testpair: node %s's pid file: %v", n, err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.HasPrefix(string(cmdline), "mariadbd\x00--defaults-file="+filepath.Join(Dir(), string(n))+"/") {
		t.Fatalf("testpair: node %s is not running (pid %d: %q, %v)", n, pid, cmdline, err)
	}
	return pid
}

// KillTimed is Kill sent from this process, for tests that must know when
// the server died to the millisecond (pair.sh kill starts a shell and polls
// every 100 ms). sent is taken just before the signal; gone once the process
// has exited (or is a zombie: its sockets are closed by then), polled every
// millisecond for up to 10 s.
func KillTimed(t testing.TB, n Node) (sent, gone time.Time) {
	t.Helper()
	pid := PID(t, n)
	sent = time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("testpair: SIGKILL node %s (pid %d): %v", n, pid, err)
	}
	deadline := sent.Add(10 * time.Second)
	for {
		f := procStat(pid)
		if f == nil || f[0] == "Z" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpair: node %s (pid %d) survived SIGKILL for 10 s", n, pid)
		}
		time.Sleep(time.Millisecond)
	}
	gone = time.Now()
	t.Logf("testpair: node %s killed (pid %d), gone %v after the signal", n, pid, gone.Sub(sent).Round(time.Microsecond))
	return sent, gone
}

// CPU is the user and system CPU time process pid has used, from
// /proc/PID/stat (0 when unreadable), for benchmarks that report the
// nodes' and their own CPU per request.
func CPU(pid int) time.Duration {
	f := procStat(pid)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	k, _ := strconv.Atoi(f[12])
	return time.Duration(u+k) * time.Second / 100 // USER_HZ
}

// procStat is /proc/PID/stat's fields after "pid (comm)": the state first
// (field 3 of proc(5)); nil if the process is gone.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return nil
	}
	return strings.Fields(s[i+2:])
}

// Stop freezes node n's server with SIGSTOP (it keeps its connections and
// ports, but answers nothing), as a hung or partitioned server would.
func Stop(t testing.TB, n Node) { t.Helper(); runScript(t, "stop", string(n)) }

// Cont resumes a node frozen by Stop (SIGCONT).
func Cont(t testing.TB, n Node) { t.Helper(); runScript(t, "cont", string(n)) }

// Start starts node n's server again on its existing data and waits until
// it accepts connections. It always comes up read-only (read_only=ON in
// its my.cnf, whatever its role: making a node writable is tandem's
// decision, or Reset's) with its replica threads stopped (skip_slave_start:
// tandem starts them once it has checked the position; Resume without tandem).
// A node SIGKILLed by Kill first discards, during crash recovery, the
// commits that were still waiting for its peer's semi-sync
// acknowledgement (init_rpl_role=SLAVE; see scripts/pair.sh).
func Start(t testing.TB, n Node) { t.Helper(); runScript(t, "start", string(n)) }

// StartReadOnly is Start; it remains for the tests that say so explicitly.
func StartReadOnly(t testing.TB, n Node) { t.Helper(); runScript(t, "start", string(n), "--read-only") }

// Resume starts node n's replica threads as tandem would after a start
// (scripts/pair.sh resume: the nodes run with skip_slave_start), for
// tests that restart a node without a tandem watching it.
func Resume(t testing.TB, n Node) { t.Helper(); runScript(t, "resume", string(n)) }

// Reset restores the normal state after a test broke it: both servers
// running, A writable, B read_only, semi-sync on, replication running both
// ways and in sync. Data written by tests stays, except when the nodes'
// histories diverged: then the pair is rebuilt from scratch (empty app and
// sbtest databases), which takes about 10 s.
func Reset(t testing.TB) {
	t.Helper()
	runScript(t, "reset")
}

func runScript(t testing.TB, args ...string) {
	t.Helper()
	script, err := scriptPath()
	if err != nil {
		t.Fatalf("testpair: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.WaitDelay = 5 * time.Second // never wait on pipes a server inherited
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("testpair: scripts/pair.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("testpair: pair.sh %s (%v): %s", strings.Join(args, " "),
		time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
}

// scriptPath finds scripts/pair.sh in the module root.
func scriptPath() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("%w; cannot find scripts/pair.sh", err)
	}
	return filepath.Join(root, "scripts", "pair.sh"), nil
}

// ModuleRoot is the nearest directory above the working directory that
// holds go.mod: where the project's scripts are.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// WaitInSync waits until both nodes replicate from each other and each has
// applied (visibly to readers) every transaction that the other had
// committed when the check ran; with no concurrent writers, both then hold
// the same data. It fails the test after timeout.
func WaitInSync(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := caughtUp(time.Until(deadline))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpair: nodes not in sync after %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// caughtUp checks the replication threads of both nodes, reads both
// gtid_binlog_pos, then has each node MASTER_GTID_WAIT for the other's
// position (for at most budget, clamped to 0.1..4 s). With a single GTID
// domain the wait compares sequence numbers, so this converges even under
// continuous writes, where equal positions might never be observed.
func caughtUp(budget time.Duration) error {
	wait := min(max(budget.Seconds(), 0.1), 4) // stay under quickDB's 5 s read timeout
	var dbs [2]*sql.DB
	var pos [2]string
	for i, n := range []Node{A, B} {
		db, err := quickDB(n)
		if err != nil {
			return err
		}
		defer db.Close()
		dbs[i] = db
		st, err := slaveStatus(db)
		if err != nil {
			return fmt.Errorf("node %s: SHOW SLAVE STATUS: %v", n, err)
		}
		if st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
			return fmt.Errorf("node %s: io=%q sql=%q last_io_error=%q last_sql_error=%q",
				n, st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_IO_Error"], st["Last_SQL_Error"])
		}
		if err := db.QueryRow("SELECT @@GLOBAL.gtid_binlog_pos").Scan(&pos[i]); err != nil {
			return fmt.Errorf("node %s: %v", n, err)
		}
	}
	for i, n := range []Node{A, B} {
		other := pos[1-i]
		var r sql.NullInt64
		if err := dbs[i].QueryRow("SELECT MASTER_GTID_WAIT(?, ?)", other, wait).Scan(&r); err != nil {
			return fmt.Errorf("node %s: MASTER_GTID_WAIT: %v", n, err)
		}
		if !r.Valid || r.Int64 != 0 {
			return fmt.Errorf("node %s has not applied %s (its peer's gtid_binlog_pos) yet; positions a=%q b=%q",
				n, other, pos[0], pos[1])
		}
	}
	return nil
}

// slaveStatus returns SHOW SLAVE STATUS as column name -> value (empty map
// when no master is configured).
func slaveStatus(db *sql.DB) (map[string]string, error) {
	rows, err := db.Query("SHOW SLAVE STATUS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	if rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, c := range cols {
			m[c] = string(vals[i])
		}
	}
	return m, rows.Err()
}

// Until polls cond every 50 ms until it holds, failing t after d with
// what and cond's last error.
func Until(t testing.TB, d time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up after %v (last error: %v)", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
