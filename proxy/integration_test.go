package proxy

// Integration tests: real clients (go-sql-driver/mysql, go-mysql's client,
// the mariadb command-line client) through tandem to the local MariaDB pair.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"
	"github.com/hashicorp/go-hclog"

	"github.com/tandemdb/tandem/internal/testpair"
)

// testProxy is a tandem proxy serving on a loopback port for one test.
type testProxy struct {
	*Proxy
	addr string
}

// startProxy starts a proxy in front of the pair, routing to node a, with
// verify-full TLS to both nodes.
func startProxy(t testing.TB, mutate func(*Config, []*Node)) *testProxy {
	t.Helper()
	testpair.Require(t)
	cfg := DefaultConfig()
	cfg.Users = map[string]string{testpair.AppUser: testpair.AppPassword, testpair.AdminUser: testpair.AdminPassword}
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}})
	// TLS to the nodes, verified, as tandem is meant to be deployed: every
	// test runs over it unless it says otherwise.
	tlsToNodes := testpair.TLS(t)
	nodes := []*Node{{Name: "a", Address: testpair.Addr(testpair.A), TLS: tlsToNodes}, {Name: "b", Address: testpair.Addr(testpair.B), TLS: tlsToNodes}}
	if mutate != nil {
		mutate(&cfg, nodes)
	}
	p, err := New(cfg, nodes, "a")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = p.Serve(l); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
		<-done
	})
	return &testProxy{Proxy: p, addr: l.Addr().String()}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// driverConfig is a go-sql-driver config for addr as the app user.
func driverConfig(addr string) *mysql.Config {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = testpair.AppUser, testpair.AppPassword, "tcp", addr, testpair.AppDB
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 5*time.Second, 60*time.Second, 60*time.Second
	c.ParseTime = true
	return c
}

func openDB(t testing.TB, c *mysql.Config) *sql.DB {
	t.Helper()
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t testing.TB, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, q string, args ...any) sql.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := db.ExecContext(ctx, q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

// both runs f once directly against node a and once through tandem.
func both(t *testing.T, p *testProxy, f func(t *testing.T, addr string)) {
	t.Run("direct", func(t *testing.T) { f(t, testpair.Addr(testpair.A)) })
	t.Run("tandem", func(t *testing.T) { f(t, p.addr) })
}

func TestQueriesAndTransactions(t *testing.T) {
	p := startProxy(t, nil)
	db := openDB(t, driverConfig(p.addr))
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS tx_test (id INT PRIMARY KEY, v VARCHAR(20))")
	mustExec(t, db, "DELETE FROM tx_test")
	var port int
	if err := db.QueryRow("SELECT @@port").Scan(&port); err != nil || port != testpair.Port(testpair.A) {
		t.Fatalf("routed to port %d (%v), want node a", port, err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, "INSERT INTO tx_test VALUES (1, 'rolled back')")
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	tx, _ = db.Begin()
	mustExec(t, tx, "INSERT INTO tx_test VALUES (2, 'kept')")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var n int
	var v string
	if err := db.QueryRow("SELECT COUNT(*), MAX(v) FROM tx_test").Scan(&n, &v); err != nil || n != 1 || v != "kept" {
		t.Fatalf("got %d rows, %q, %v; want 1 row 'kept'", n, v, err)
	}
	// A node error comes through with its code.
	_, err = db.Exec("SELECT * FROM no_such_table")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1146 {
		t.Fatalf("missing table: got %v, want error 1146", err)
	}
}

func TestSessionFactsTracked(t *testing.T) {
	p := startProxy(t, nil)
	p.snapshotFacts = true // before any session starts
	db := openDB(t, driverConfig(p.addr))
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	facts := func() Facts {
		t.Helper()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, s := range p.sessions {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.snapshot == nil {
				return Facts{}
			}
			return *s.snapshot
		}
		t.Fatal("no session")
		return Facts{}
	}
	mustExec(t, conn, "BEGIN")
	if f := facts(); !f.InTransaction {
		t.Fatalf("after BEGIN: %+v, want InTransaction", f)
	}
	mustExec(t, conn, "COMMIT")
	mustExec(t, conn, "SET SESSION sql_mode = 'ANSI'")
	mustExec(t, conn, "USE sbtest")
	stmt, err := conn.PrepareContext(ctx, "SELECT ?")
	if err != nil {
		t.Fatal(err)
	}
	f := facts()
	if f.InTransaction || f.Schema != "sbtest" || len(f.Settings) != 1 || len(f.Prepared) != 1 || f.Pinned != "" {
		t.Fatalf("facts %+v: want no transaction, schema sbtest, one setting, one statement, not pinned", f)
	}
	stmt.Close()
	mustExec(t, conn, "SET @x = 1")
	if f := facts(); f.Pinned != "" || f.UserVars || len(f.Settings) != 2 || len(f.Prepared) != 0 {
		t.Fatalf("facts %+v: want SET @x = 1 recorded for replay, statement closed", f)
	}
	mustExec(t, conn, "SET @y = (SELECT 2)")
	if f := facts(); f.Pinned != "" || !f.UserVars {
		t.Fatalf("facts %+v: want user variables set from a query", f)
	}
}

func TestPreparedStatements(t *testing.T) {
	p := startProxy(t, nil)
	for _, interpolate := range []bool{false, true} {
		t.Run(fmt.Sprint("interpolateParams=", interpolate), func(t *testing.T) {
			c := driverConfig(p.addr)
			c.InterpolateParams = interpolate
			db := openDB(t, c)
			mustExec(t, db, "CREATE TABLE IF NOT EXISTS ps_test (id INT PRIMARY KEY, f DOUBLE, s TEXT, b BLOB, d DATETIME(6), n INT NULL)")
			mustExec(t, db, "DELETE FROM ps_test")
			when := time.Date(2026, 11, 25, 12, 30, 45, 123456000, time.UTC)
			for i := range 20 {
				mustExec(t, db, "INSERT INTO ps_test VALUES (?, ?, ?, ?, ?, ?)", i, float64(i)/3, strings.Repeat("s", i*100), []byte{0, byte(i), 0xff}, when, nil)
			}
			rows, err := db.Query("SELECT id, f, s, b, d, n FROM ps_test WHERE id >= ? ORDER BY id", 5)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			i := 5
			for rows.Next() {
				var id int
				var f float64
				var s string
				var b []byte
				var d time.Time
				var n sql.NullInt64
				if err := rows.Scan(&id, &f, &s, &b, &d, &n); err != nil {
					t.Fatal(err)
				}
				if id != i || f != float64(i)/3 || len(s) != i*100 || !bytes.Equal(b, []byte{0, byte(i), 0xff}) || !d.Equal(when) || n.Valid {
					t.Fatalf("row %d: got %d %v %d %x %v %v", i, id, f, len(s), b, d, n)
				}
				i++
			}
			if err := rows.Err(); err != nil || i != 20 {
				t.Fatalf("read up to row %d: %v", i, err)
			}
		})
	}
}

func TestFailedPrepareKeepsSession(t *testing.T) {
	p := startProxy(t, nil)
	both(t, p, func(t *testing.T, addr string) {
		db := openDB(t, driverConfig(addr))
		db.SetMaxOpenConns(1)
		for range 3 {
			_, err := db.Prepare("SELECT * FROM no_such_table_for_prepare WHERE id = ?")
			if code, _ := mysqlErr(err); code != 1146 {
				t.Fatalf("prepare on a missing table: %v, want error 1146", err)
			}
		}
		var one int
		if err := db.QueryRow("SELECT 1").Scan(&one); err != nil {
			t.Fatalf("session after failed prepares: %v", err)
		}
	})
}

func TestMultiStatementsAndResults(t *testing.T) {
	p := startProxy(t, nil)
	both(t, p, func(t *testing.T, addr string) {
		c := driverConfig(addr)
		c.MultiStatements = true
		db := openDB(t, c)
		mustExec(t, db, "DROP PROCEDURE IF EXISTS two_results; CREATE PROCEDURE two_results() BEGIN SELECT 1 AS a; SELECT 2 AS b, 3 AS c; END")
		rows, err := db.Query("SELECT 'x'; SELECT 'y', 'z'; CALL two_results()")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for {
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for i, v := range vals {
					if b, ok := v.([]byte); ok {
						vals[i] = string(b)
					}
				}
				got = append(got, fmt.Sprintf("%v", vals))
			}
			if !rows.NextResultSet() {
				break
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := "[[x] [y z] [1] [2 3]]"
		if fmt.Sprint(got) != want {
			t.Fatalf("got %v, want %s", got, want)
		}
	})
}

func TestClientFoundRows(t *testing.T) {
	p := startProxy(t, nil)
	affected := func(addr string, found bool) int64 {
		c := driverConfig(addr)
		c.ClientFoundRows = found
		db := openDB(t, c)
		mustExec(t, db, "CREATE TABLE IF NOT EXISTS found_test (id INT PRIMARY KEY, v INT)")
		mustExec(t, db, "REPLACE INTO found_test VALUES (1, 7)")
		n, err := mustExec(t, db, "UPDATE found_test SET v = 7 WHERE id = 1").RowsAffected()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, found := range []bool{false, true} {
		d, x := affected(testpair.Addr(testpair.A), found), affected(p.addr, found)
		if d != x {
			t.Fatalf("clientFoundRows=%v: direct says %d affected, tandem %d", found, d, x)
		}
		if want := map[bool]int64{false: 0, true: 1}[found]; x != want {
			t.Fatalf("clientFoundRows=%v: %d affected, want %d", found, x, want)
		}
	}
}

func TestLoadDataLocalInfile(t *testing.T) {
	p := startProxy(t, nil)
	path := filepath.Join(t.TempDir(), "rows.csv")
	var buf bytes.Buffer
	for i := range 50000 {
		fmt.Fprintf(&buf, "%d,value-%d\n", i, i)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	mysql.RegisterLocalFile(path)
	db := openDB(t, driverConfig(p.addr))
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS infile_test (id INT PRIMARY KEY, v VARCHAR(40))")
	mustExec(t, db, "DELETE FROM infile_test")
	r := mustExec(t, db, fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE infile_test FIELDS TERMINATED BY ','", path))
	if n, _ := r.RowsAffected(); n != 50000 {
		t.Fatalf("loaded %d rows, want 50000", n)
	}
	// A missing file: the driver sends an empty file and reports the error;
	// the session must still work afterwards.
	_, err := db.Exec("LOAD DATA LOCAL INFILE '/nonexistent/file' INTO TABLE infile_test")
	if err == nil {
		t.Fatal("loading a file the driver refuses succeeded")
	}
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil {
		t.Fatalf("session broken after refused LOCAL INFILE: %v", err)
	}
}

func TestLargeBlobRoundTrip(t *testing.T) {
	p := startProxy(t, nil)
	c := driverConfig(p.addr)
	c.MaxAllowedPacket = 0 // ask the server (1 GiB in the pair)
	db := openDB(t, c)
	db.SetMaxOpenConns(1)
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS blob_test (id INT PRIMARY KEY, b LONGBLOB)")
	mustExec(t, db, "DELETE FROM blob_test")
	blob := make([]byte, 64<<20)
	for i := range blob {
		blob[i] = byte(i*7 + i>>16)
	}
	mustExec(t, db, "INSERT INTO blob_test VALUES (1, ?)", blob)
	var got []byte
	if err := db.QueryRow("SELECT b FROM blob_test WHERE id = 1").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(blob) {
		t.Fatalf("blob of %d bytes came back as %d different bytes", len(blob), len(got))
	}
	// Text protocol too (exactly 2^24-1 and 2^24 byte values cross the
	// packet split boundary).
	for _, n := range []int{maxPayload - 40, maxPayload, maxPayload + 1} {
		var l int
		if err := db.QueryRow(fmt.Sprintf("SELECT LENGTH(REPEAT('x', %d))", n)).Scan(&l); err != nil || l != n {
			t.Fatalf("LENGTH(REPEAT(%d)) = %d, %v", n, l, err)
		}
		var s []byte
		if err := db.QueryRow(fmt.Sprintf("SELECT REPEAT('y', %d)", n)).Scan(&s); err != nil || len(s) != n {
			t.Fatalf("REPEAT(%d): got %d bytes, %v", n, len(s), err)
		}
	}
	mustExec(t, db, "DELETE FROM blob_test")
}

func TestMillionRowsStreamInConstantMemory(t *testing.T) {
	p := startProxy(t, nil)
	db := openDB(t, driverConfig(p.addr))
	rows, err := db.Query("SELECT seq, REPEAT('r', 100) FROM seq_1_to_1000000")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var peak uint64
	var ms runtime.MemStats
	runtime.GC()
	n := 0
	var id int
	var pad []byte
	for rows.Next() {
		if err := rows.Scan(&id, &pad); err != nil {
			t.Fatal(err)
		}
		n++
		if id != n {
			t.Fatalf("row %d has id %d", n, id)
		}
		if n%100000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	if err := rows.Err(); err != nil || n != 1000000 {
		t.Fatalf("read %d rows: %v", n, err)
	}
	// About 110 MB crossed the proxy; streaming keeps the live heap
	// (client and proxy together, in this process) far below that.
	if peak > 32<<20 {
		t.Fatalf("live heap peaked at %d MiB while streaming 1M rows", peak>>20)
	}
	t.Logf("1M rows; peak live heap %d MiB", peak>>20)
}

// tandemSession finds the tandem session serving the node thread id.
func tandemSession(t *testing.T, p *testProxy, threadID uint32) *session {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.sessions {
		s.mu.Lock()
		found := s.be != nil && s.be.threadID == threadID
		s.mu.Unlock()
		if found {
			return s
		}
	}
	t.Fatalf("no tandem session for node thread %d", threadID)
	return nil
}

// greetingAndConnectionID logs in to addr as a plain client (tandem's own
// node login code) and returns the connection id of the greeting and what
// SELECT CONNECTION_ID() answers on that connection.
func greetingAndConnectionID(t *testing.T, addr, user, password string) (greet, id uint32) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	be, err := login(conn, &Node{Name: "under test", Address: addr}, &loginParams{User: user, Password: password,
		Caps: requiredCaps | gmysql.CLIENT_PLUGIN_AUTH, Collation: 45, MaxPacket: 1 << 24})
	if err != nil {
		t.Fatal(err)
	}
	sc := &syncConn{br: bufio.NewReader(conn), bw: bufio.NewWriter(conn), caps: be.caps}
	if _, err := sc.roundTrip(gmysql.COM_QUERY, "SELECT CONNECTION_ID()"); err != nil { // column count
		t.Fatal(err)
	}
	var row []byte
	for range 3 { // column definition, EOF, row
		if row, _, err = readPacket(sc.br, nil, 1<<16); err != nil {
			t.Fatal(err)
		}
	}
	v, _, ok := lenEncBytes(row, 0)
	n, err := strconv.ParseUint(string(v), 10, 32)
	if !ok || err != nil {
		t.Fatalf("CONNECTION_ID() row %q: %v", row, err)
	}
	return be.threadID, uint32(n)
}

func TestKillUsesConnectionID(t *testing.T) {
	p := startProxy(t, nil)
	p.nextID.Store(1 << 20) // tandem's own session ids can then never pass for thread ids
	// The id in the greeting (what drivers report) is CONNECTION_ID(),
	// through tandem as directly.
	both(t, p, func(t *testing.T, addr string) {
		greet, id := greetingAndConnectionID(t, addr, testpair.AppUser, testpair.AppPassword)
		if greet != id {
			t.Fatalf("CONNECTION_ID() %d, greeting's id %d: want the same", id, greet)
		}
	})
	db := openDB(t, driverConfig(p.addr))
	ctx := context.Background()
	victim, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	var id uint32
	if err := victim.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	killer, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close()

	// KILL QUERY interrupts the sleep; the victim's session lives on.
	errc := make(chan error, 1)
	go func() {
		var r int
		errc <- victim.QueryRowContext(ctx, "SELECT SLEEP(20)").Scan(&r)
	}()
	waitRunning(t, testpair.A, "SELECT SLEEP(20)")
	start := time.Now()
	mustExec(t, killer, fmt.Sprintf("KILL QUERY %d", id))
	select {
	case err := <-errc:
		// MariaDB answers a killed SLEEP with result 1, or error 1317.
		var me *mysql.MySQLError
		if err != nil && !(errors.As(err, &me) && me.Number == 1317) {
			t.Fatalf("killed query: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("KILL QUERY did not interrupt the query")
	}
	t.Logf("KILL QUERY took effect in %v", time.Since(start))
	var one int
	if err := victim.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("session after KILL QUERY: %v", err)
	}

	// An id tandem does not know is an unknown thread, as on MySQL.
	_, err = killer.ExecContext(ctx, "KILL 4000000000")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1094 {
		t.Fatalf("KILL of unknown id: %v, want error 1094", err)
	}

	// KILL CONNECTION ends the victim's session.
	mustExec(t, killer, fmt.Sprintf("KILL CONNECTION %d", id))
	if err := victim.QueryRowContext(ctx, "SELECT 1").Scan(&one); err == nil {
		t.Fatal("killed connection still answers")
	}
}

func TestWrongPassword(t *testing.T) {
	p := startProxy(t, nil)
	for _, user := range []string{testpair.AppUser, "nobody"} {
		c := driverConfig(p.addr)
		c.User, c.Passwd = user, "wrong"
		err := openDB(t, c).Ping()
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1045 {
			t.Fatalf("user %s with a wrong password: %v, want error 1045", user, err)
		}
	}
}

func TestBackendDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	p := startProxy(t, func(c *Config, nodes []*Node) { nodes[0].Address = dead })
	err = openDB(t, driverConfig(p.addr)).Ping()
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1105 || !strings.Contains(me.Message, "node a ("+dead+")") || !strings.Contains(me.Message, "refused") {
		t.Fatalf("backend down: %v; want error 1105 naming node a and why", err)
	}
}

func TestHandshakeTimeoutCutsSilentClient(t *testing.T) {
	p := startProxy(t, func(c *Config, _ []*Node) { c.HandshakeTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	buf := make([]byte, 4096)
	for { // read the greeting, then wait for the close
		if _, err := conn.Read(buf); err != nil {
			break
		}
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("silent client was cut after %v, want about 300ms", d)
	}
	// The slot is freed before the socket is closed.
	if n := p.HandshakeCount(); n != 0 {
		t.Fatalf("%d connections still logging in after the timeout", n)
	}
}

func TestTooManyConnections(t *testing.T) {
	p := startProxy(t, func(c *Config, _ []*Node) { c.MaxConnections = 2 })
	db := openDB(t, driverConfig(p.addr))
	ctx := context.Background()
	for range 2 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	_, err := db.Conn(ctx)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1040 {
		t.Fatalf("third connection: %v, want error 1040", err)
	}
}

func TestMalformedPacketClosesOnlyThatSession(t *testing.T) {
	p := startProxy(t, nil)
	db := openDB(t, driverConfig(p.addr))
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	for _, garbage := range [][]byte{
		{5, 0, 0, 7, 3, 's', 'e', 'l', 'x'}, // sequence id 7 for a command
		{0, 0, 0, 0},                        // empty command
	} {
		rc := dialRaw(t, p.addr, 0)
		if _, err := rc.conn.Write(garbage); err != nil {
			t.Fatal(err)
		}
		_ = rc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := rc.conn.Read(make([]byte, 16)); err == nil {
			t.Fatalf("garbage %x: session still open", garbage)
		}
	}
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil {
		t.Fatalf("other session after garbage: %v", err)
	}
}

func TestMariaDBClientThroughTandem(t *testing.T) {
	p := startProxy(t, nil)
	host, port, _ := net.SplitHostPort(p.addr)
	_, aport, _ := net.SplitHostPort(testpair.Addr(testpair.A))
	run := func(port string, args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		base := []string{"-h", host, "-P", port, "-u" + testpair.AppUser, "-p" + testpair.AppPassword, "--protocol=tcp", "--ssl=0"}
		out, err := exec.CommandContext(ctx, "mariadb", append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("mariadb %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	script := `CREATE TABLE IF NOT EXISTS cli_test (id INT PRIMARY KEY, v VARCHAR(10));
DELETE FROM cli_test;
INSERT INTO cli_test VALUES (1,'one'),(2,'two');
SELECT * FROM cli_test ORDER BY id;
UPDATE cli_test SET v='uno' WHERE id=1;
SELECT ROW_COUNT();
SHOW WARNINGS;
SELECT @@read_only, DATABASE();`
	direct := run(aport, "-D", "app", "-e", script)
	through := run(port, "-D", "app", "-e", script)
	if direct != through || !strings.Contains(through, "two") {
		t.Fatalf("mariadb client output differs:\ndirect:\n%s\ntandem:\n%s", direct, through)
	}
	// status uses COM_STATISTICS; its uptime line differs by a second at most.
	if out := run(port, "-e", "status"); !strings.Contains(out, "Uptime:") {
		t.Fatalf("status through tandem:\n%s", out)
	}
}

// rawConn is a hand-driven client for commands no driver sends.
type rawConn struct {
	t    testing.TB
	conn net.Conn
	caps uint32
}

// dialRaw logs in to addr as the app user with extra capability flags.
func dialRaw(t testing.TB, addr string, extraCaps uint32) *rawConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	p, _, err := readPacket(conn, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	g, err := parseGreeting(p)
	if err != nil {
		t.Fatal(err)
	}
	caps := (requiredCaps | clientPluginAuth | connectWithDB | extraCaps) & g.Caps
	auth, _ := scramble(g.AuthPlugin, g.Salt, testpair.AppPassword)
	resp := appendHandshakeResponse(nil, &handshakeResponse{Caps: caps, MaxPacket: 1 << 30, Collation: 45,
		User: testpair.AppUser, Auth: auth, DB: testpair.AppDB, Plugin: g.AuthPlugin})
	if err := writeRaw(conn, 1, resp); err != nil {
		t.Fatal(err)
	}
	for {
		p, _, err = readPacket(conn, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p[0] != 1 { // skip caching_sha2 fast-auth notice
			break
		}
	}
	if p[0] != 0 {
		t.Fatalf("login failed: %x", p)
	}
	return &rawConn{t: t, conn: conn, caps: caps}
}

// send writes one command packet.
func (c *rawConn) send(payload []byte) {
	c.t.Helper()
	if err := writeRaw(c.conn, 0, payload); err != nil {
		c.t.Fatal(err)
	}
}

// read reads n packets.
func (c *rawConn) read(n int) [][]byte {
	c.t.Helper()
	out := make([][]byte, n)
	for i := range out {
		p, _, err := readPacket(c.conn, nil, 0)
		if err != nil {
			c.t.Fatalf("packet %d of %d: %v", i+1, n, err)
		}
		out[i] = p
	}
	return out
}

// rawPair runs f on raw connections to node a and to tandem and compares the
// packets each returned, masking what may differ (thread and statement ids).
func rawPair(t *testing.T, p *testProxy, caps uint32, f func(c *rawConn) [][]byte) {
	t.Helper()
	d := f(dialRaw(t, testpair.Addr(testpair.A), caps))
	x := f(dialRaw(t, p.addr, caps))
	if len(d) != len(x) {
		t.Fatalf("direct gave %d packets, tandem %d", len(d), len(x))
	}
	for i := range d {
		if !bytes.Equal(d[i], x[i]) {
			t.Fatalf("packet %d differs:\ndirect %q\ntandem %q", i, d[i], x[i])
		}
	}
}

const (
	clientPluginAuth = 1 << 19
	connectWithDB    = 1 << 3
	deprecateEOF     = 1 << 24
)

func TestRawCommands(t *testing.T) {
	p := startProxy(t, nil)
	db := openDB(t, driverConfig(p.addr))
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS raw_test (id INT PRIMARY KEY, v VARCHAR(10))")
	mustExec(t, db, "REPLACE INTO raw_test VALUES (1,'a'),(2,'b'),(3,'c')")
	for _, caps := range []uint32{0, deprecateEOF} {
		t.Run(fmt.Sprintf("deprecate_eof=%v", caps != 0), func(t *testing.T) {
			eof := 1
			if caps != 0 {
				eof = 0
			}
			// COM_FIELD_LIST: two column definitions and a terminator.
			rawPair(t, p, caps, func(c *rawConn) [][]byte {
				c.send(append([]byte{0x04}, "raw_test\x00"...))
				return c.read(3)
			})
			// COM_INIT_DB, then COM_PING, then a query in the new schema.
			rawPair(t, p, caps, func(c *rawConn) [][]byte {
				c.send(append([]byte{0x02}, "sbtest"...))
				out := c.read(1)
				c.send([]byte{0x0e})
				out = append(out, c.read(1)...)
				c.send(append([]byte{0x03}, "SELECT DATABASE()"...))
				return append(out, c.read(3+eof*2)...)
			})
			// COM_RESET_CONNECTION clears user variables.
			rawPair(t, p, caps, func(c *rawConn) [][]byte {
				c.send(append([]byte{0x03}, "SET @v = 5"...))
				out := c.read(1)
				c.send([]byte{0x1f})
				out = append(out, c.read(1)...)
				c.send(append([]byte{0x03}, "SELECT @v IS NULL"...))
				return append(out, c.read(3+eof*2)...)
			})
			// A cursor: prepare, execute with CURSOR_TYPE_READ_ONLY, fetch
			// two rows then the rest, reset and close.
			rawPair(t, p, caps, func(c *rawConn) [][]byte {
				c.send(append([]byte{0x16}, "SELECT id, v FROM raw_test ORDER BY id"...))
				prep := c.read(1 + 2 + eof)
				id := prep[0][1:5]
				exec := append([]byte{0x17}, id...)
				exec = append(exec, 1, 1, 0, 0, 0)
				c.send(exec)
				out := c.read(1 + 2 + 1) // count, 2 columns, EOF/OK with CURSOR_EXISTS
				fetch := append(append([]byte{0x1c}, id...), 2, 0, 0, 0)
				c.send(fetch)
				out = append(out, c.read(3)...) // 2 rows, terminator
				fetch[5] = 10
				c.send(fetch)
				out = append(out, c.read(2)...) // 1 row, terminator (LAST_ROW_SENT)
				c.send(append([]byte{0x1a}, id...))
				out = append(out, c.read(1)...)
				c.send(append([]byte{0x19}, id...)) // no response
				c.send(append([]byte{0x03}, "SELECT 42"...))
				out = append(out, c.read(3+eof*2)...)
				prep[0] = append([]byte(nil), prep[0]...)
				copy(prep[0][1:5], []byte{0, 0, 0, 0}) // ids may differ
				return append(prep, out...)
			})
		})
	}
	// Replication commands get a clear error and the session goes on.
	c := dialRaw(t, p.addr, 0)
	c.send([]byte{0x12, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0})
	if e, ok := parseErr(c.read(1)[0]); !ok || !strings.Contains(e.Message, "replication") {
		t.Fatalf("COM_BINLOG_DUMP: %+v", e)
	}
	c.send([]byte{0x0e})
	if r := c.read(1)[0]; r[0] != 0 {
		t.Fatalf("ping after refused binlog dump: %x", r)
	}
}

func TestChangeUser(t *testing.T) {
	p := startProxy(t, nil)
	c := dialRaw(t, p.addr, 0)
	// Native scramble over the greeting's salt: tandem's salt is the
	// session's; fetch it from the session.
	var s *session
	deadline := time.Now().Add(2 * time.Second)
	for s == nil && time.Now().Before(deadline) {
		p.mu.Lock()
		for _, x := range p.sessions {
			s = x
		}
		p.mu.Unlock()
	}
	cu := func(user, pass string) []byte {
		auth, _ := scramble("mysql_native_password", s.salt, pass)
		b := append([]byte{0x11}, user...)
		b = append(b, 0, byte(len(auth)))
		b = append(b, auth...)
		b = append(b, "sbtest"...)
		b = append(b, 0, 45, 0)
		b = append(b, "mysql_native_password"...)
		return append(b, 0)
	}
	c.send(append([]byte{0x03}, "SET @v = 1"...))
	c.read(1)
	c.send(cu(testpair.AdminUser, testpair.AdminPassword))
	if r := c.read(1)[0]; r[0] != 0 {
		t.Fatalf("COM_CHANGE_USER to %s: %x", testpair.AdminUser, r)
	}
	c.send(append([]byte{0x03}, "SELECT CURRENT_USER(), DATABASE(), @v IS NULL"...))
	res := c.read(7) // count, 3 columns, EOF, row, EOF
	if !bytes.Contains(res[5], []byte(testpair.AdminUser+"@")) || !bytes.Contains(res[5], []byte("sbtest")) || !bytes.HasSuffix(res[5], []byte{1, '1'}) {
		t.Fatalf("after change user: row %q", res[5])
	}
	c.send(cu(testpair.AppUser, "wrong"))
	if e, ok := parseErr(c.read(1)[0]); !ok || e.Code != 1045 {
		t.Fatalf("change user with a wrong password: %+v", e)
	}
}

func TestShutdownWaitsForSessions(t *testing.T) {
	p := startProxy(t, nil)
	db := openDB(t, driverConfig(p.addr))
	var wg sync.WaitGroup
	wg.Add(1)
	var qerr error
	go func() {
		defer wg.Done()
		var r int
		qerr = db.QueryRow("SELECT SLEEP(1)").Scan(&r)
	}()
	waitRunning(t, testpair.A, "SELECT SLEEP(1)")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Shutdown waits while the query runs; the idle pool connection is
	// closed when the driver closes it, so close the pool after the query.
	go func() { wg.Wait(); db.Close() }()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	wg.Wait()
	if qerr != nil {
		t.Fatalf("query during shutdown: %v", qerr)
	}
	if _, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

func TestOversizedPrepareGetsAnError(t *testing.T) {
	p := startProxy(t, func(c *Config, _ []*Node) { c.MaxPacket = 4096 })
	db := openDB(t, driverConfig(p.addr))
	// Like MariaDB, tandem answers 1153 and closes the session: the
	// driver must not reuse it.
	db.SetMaxIdleConns(0)
	_, err := db.Prepare("SELECT '" + strings.Repeat("x", 8000) + "'")
	if code, _ := mysqlErr(err); code != 1153 {
		t.Fatalf("prepare over max_packet: %v, want error 1153", err)
	}
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil {
		t.Fatalf("a new session after the refused one: %v", err)
	}
}

func TestClientStallingMidCommandIsCut(t *testing.T) {
	p := startProxy(t, func(c *Config, _ []*Node) { c.NetReadTimeout = 300 * time.Millisecond })
	other := openDB(t, driverConfig(p.addr))
	if err := other.Ping(); err != nil {
		t.Fatal(err)
	}
	rc := dialRaw(t, p.addr, 0)
	// A COM_QUERY header announcing 100 bytes, then only 10 of them.
	if _, err := rc.conn.Write(append([]byte{100, 0, 0, 0, 0x03}, "SELECT 1 +"...)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = rc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := rc.conn.Read(make([]byte, 64)); err == nil {
		t.Fatal("stalled session got an answer")
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("stalled client cut after %v, want about 300ms", d)
	}
	var one int
	if err := other.QueryRow("SELECT 1").Scan(&one); err != nil {
		t.Fatalf("other session: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for p.SessionCount() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions open; the stalled one was not closed", p.SessionCount())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A client that keeps sending, slowly, is not cut: each piece comes
	// within the timeout though the whole command takes longer. (A
	// proxy with a longer timeout, so that a loaded machine's scheduling
	// delays stay well inside it.)
	lenient := startProxy(t, func(c *Config, _ []*Node) { c.NetReadTimeout = 2 * time.Second })
	slow := dialRaw(t, lenient.addr, 0)
	q := append([]byte{0x03}, "SELECT 'slow but steady'"...)
	pkt := append([]byte{byte(len(q)), 0, 0, 0}, q...)
	for i := 0; i < len(pkt); i += 8 {
		if _, err := slow.conn.Write(pkt[i:min(i+8, len(pkt))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(700 * time.Millisecond) // the gap under test, not a wait for anything
	}
	if res := slow.read(5); !bytes.Contains(res[3], []byte("slow but steady")) {
		t.Fatalf("slow command's row: %q", res[3])
	}
	// An idle client, between commands, is not cut.
	idle := dialRaw(t, p.addr, 0)
	time.Sleep(600 * time.Millisecond)
	idle.send([]byte{0x0e})
	if r := idle.read(1)[0]; r[0] != 0 {
		t.Fatalf("ping after idling: %x", r)
	}
}
