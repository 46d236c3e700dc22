package proxy

// Pooled node sessions (pool.go) on the real pair: what a client leaves
// behind never reaches the next one, the pool follows the route, KILL by
// either id, eviction and the size bound.

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/testpair"
)

// startPoolProxy starts a proxy pooling the app user's sessions.
func startPoolProxy(t *testing.T, mutate func(*PoolConfig)) *testProxy {
	t.Helper()
	return startProxy(t, func(c *Config, _ []*Node) {
		c.Pool = PoolConfig{Users: []string{testpair.AppUser}}
		if mutate != nil {
			mutate(&c.Pool)
		}
	})
}

// quit ends a rawClient's session as a client does: COM_QUIT, then close.
func (c *rawClient) quit() {
	_ = writeRaw(c.be.conn, 0, []byte{gmysql.COM_QUIT})
	_ = c.be.conn.Close()
}

// poolClient logs in as the app user (schema app, collation 45) and
// returns the client and its CONNECTION_ID().
func poolClient(t *testing.T, addr string) (*rawClient, string) {
	t.Helper()
	c, err := loginAs(addr, testpair.AppDB, 45)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.be.conn.Close() })
	return c, c.value(t, "SELECT CONNECTION_ID()")
}

// quitPooled quits c and waits until tandem has reset and pooled its
// session (or closed it).
func quitPooled(t *testing.T, p *testProxy, c *rawClient) {
	t.Helper()
	st := p.PoolStats()
	c.quit()
	waitFor(t, 30*time.Second, "the session to be returned", func() bool {
		now := p.PoolStats()
		return now.Resets+now.Evicted+now.Drained > st.Resets+st.Evicted+st.Drained
	})
}

// waitIdle waits until the pool holds n idle sessions.
func waitIdle(t *testing.T, p *testProxy, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%d idle pooled sessions", n), func() bool { return p.PoolStats().Idle == n })
}

// appThreads counts the app user's connections on node n, or returns -1
// when it cannot ask (a node at max_connections while connections of
// earlier tests are ending): callers poll it.
func appThreads(t *testing.T, n testpair.Node) int {
	t.Helper()
	var c int
	if err := testpair.AdminDB(t, n).QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?",
		testpair.AppUser).Scan(&c); err != nil {
		t.Logf("counting app threads on node %s: %v", n, err)
		return -1
	}
	return c
}

func TestPoolReusesALoggedInSession(t *testing.T) {
	p := startPoolProxy(t, nil)
	c, id := poolClient(t, p.addr)
	c.quit()
	waitIdle(t, p, 1)
	c, id2 := poolClient(t, p.addr)
	if id2 != id {
		t.Fatalf("second client's CONNECTION_ID() %s, want the pooled %s", id2, id)
	}
	if c.be.threadID != pooledGreetID(c.be.threadID) {
		t.Fatalf("greeting id %d: tandem greets with its own ids (top bit set) while pooling", c.be.threadID)
	}
	if st := p.PoolStats(); st.Hits != 1 || st.Idle != 0 {
		t.Fatalf("pool stats %+v, want 1 hit, none idle", st)
	}
	if got := c.value(t, "SELECT CONCAT(CURRENT_USER(), ' ', DATABASE(), ' ', @@collation_connection)"); got != "app@127.0.0.1 app utf8mb4_general_ci" {
		t.Fatalf("pooled session: %q", got)
	}
	// A user that is not pooled logs in as usual, with a node session of
	// its own.
	admin := dialClient(t, p.addr, testpair.AdminUser, testpair.AdminPassword)
	if got := admin.value(t, "SELECT CURRENT_USER()"); got != "tandem@127.0.0.1" {
		t.Fatalf("unpooled user: %q", got)
	}
	admin.quit()
	c.quit()
	waitIdle(t, p, 1)
	// A wrong password never gets the pooled session.
	if _, code := tryLogin(t, p.addr, testpair.AppUser, "wrong"); code != 1045 {
		t.Fatalf("wrong password: error %d, want 1045", code)
	}
	if st := p.PoolStats(); st.Idle != 1 || st.Hits != 1 {
		t.Fatalf("after a wrong password: %+v", st)
	}
}

// TestPoolLeaksNoState leaves each kind of session state behind and checks
// that the next client, on the same node thread, sees none of it.
func TestPoolLeaksNoState(t *testing.T) {
	// Within AccountsRefresh of the node's last check of the account the
	// reset is COM_RESET_CONNECTION; past it (here: always), COM_CHANGE_USER.
	t.Run("COM_RESET_CONNECTION", func(t *testing.T) { testPoolLeaksNoState(t, 0) })
	t.Run("COM_CHANGE_USER", func(t *testing.T) { testPoolLeaksNoState(t, time.Nanosecond) })
}

func testPoolLeaksNoState(t *testing.T, accountsRefresh time.Duration) {
	p := startProxy(t, func(c *Config, _ []*Node) {
		c.Pool = PoolConfig{Users: []string{testpair.AppUser}}
		c.AccountsRefresh = accountsRefresh
	})
	setup, err := loginAs(testpair.Addr(testpair.A), testpair.AppDB, 45)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE TABLE IF NOT EXISTS pool_leak (id INT PRIMARY KEY)", "DELETE FROM pool_leak"} {
		if err := setup.sc.exec(q); err != nil {
			t.Fatal(err)
		}
	}
	setup.quit()
	direct := openDB(t, driverConfig(testpair.Addr(testpair.A)))
	admin := testpair.AdminDB(t, testpair.A)
	mustExec(t, admin, "CREATE ROLE IF NOT EXISTS pool_role")
	mustExec(t, admin, "GRANT pool_role TO 'app'@'127.0.0.1'")
	cases := []struct {
		name  string
		leave []string // run by the first client, which then quits
		check func(t *testing.T, c *rawClient)
	}{
		{"session variables", []string{"SET SESSION sql_mode = 'ANSI_QUOTES'", "SET SESSION wait_timeout = 1234"},
			func(t *testing.T, c *rawClient) {
				if got := c.value(t, "SELECT CONCAT(@@session.sql_mode = @@global.sql_mode, @@session.wait_timeout = @@global.wait_timeout)"); got != "11" {
					t.Fatalf("session variables not reset (sql_mode, wait_timeout equal to global: %q)", got)
				}
			}},
		{"user variables", []string{"SET @pool_secret = 'leaked'"},
			func(t *testing.T, c *rawClient) {
				if got := c.value(t, "SELECT IFNULL(@pool_secret, 'none')"); got != "none" {
					t.Fatalf("user variable: %q", got)
				}
			}},
		{"temporary tables", []string{"CREATE TEMPORARY TABLE pool_tmp (v INT)", "INSERT INTO pool_tmp VALUES (1)"},
			func(t *testing.T, c *rawClient) {
				err := c.sc.exec("INSERT INTO pool_tmp VALUES (2)")
				if e := (*sqlError)(nil); !errors.As(err, &e) || e.Code != gmysql.ER_NO_SUCH_TABLE {
					t.Fatalf("temporary table of the previous client: %v, want error 1146", err)
				}
			}},
		{"SQL prepared statements", []string{"PREPARE pool_stmt FROM 'SELECT 1'"},
			func(t *testing.T, c *rawClient) {
				err := c.sc.exec("DEALLOCATE PREPARE pool_stmt")
				if e := (*sqlError)(nil); !errors.As(err, &e) || e.Code != gmysql.ER_UNKNOWN_STMT_HANDLER {
					t.Fatalf("SQL prepared statement of the previous client: %v, want error 1243", err)
				}
			}},
		{"open transaction", []string{"BEGIN", "INSERT INTO pool_leak VALUES (1)"},
			func(t *testing.T, c *rawClient) {
				if got := c.value(t, "SELECT CONCAT(@@in_transaction, (SELECT COUNT(*) FROM pool_leak))"); got != "00" {
					t.Fatalf("in_transaction and rows of the abandoned transaction: %q", got)
				}
				// Its row lock is gone: a direct session inserts the same key.
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if _, err := direct.ExecContext(ctx, "INSERT INTO pool_leak VALUES (1)"); err != nil {
					t.Fatalf("insert of the abandoned transaction's key: %v", err)
				}
				mustExec(t, direct, "DELETE FROM pool_leak")
			}},
		{"table locks", []string{"LOCK TABLES pool_leak WRITE"},
			func(t *testing.T, c *rawClient) {
				// Under LOCK TABLES any other table is refused (1100).
				if got := c.value(t, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'app'"); got != "1" {
					t.Fatalf("query under a leaked LOCK TABLES: %q", got)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if _, err := direct.ExecContext(ctx, "INSERT INTO pool_leak VALUES (7)"); err != nil {
					t.Fatalf("write to the table the previous client locked: %v", err)
				}
				mustExec(t, direct, "DELETE FROM pool_leak")
			}},
		{"named locks", []string{"DO GET_LOCK('pool_named', 0)"},
			func(t *testing.T, c *rawClient) {
				if got := c.value(t, "SELECT IFNULL(IS_USED_LOCK('pool_named'), 0)"); got != "0" {
					t.Fatalf("GET_LOCK of the previous client still held by thread %s", got)
				}
			}},
		{"LAST_INSERT_ID()", []string{"DO LAST_INSERT_ID(42)"},
			func(t *testing.T, c *rawClient) {
				if got := c.value(t, "SELECT LAST_INSERT_ID()"); got != "0" {
					t.Fatalf("LAST_INSERT_ID() of the previous client: %s", got)
				}
			}},
		{"next transaction's characteristics", []string{"SET TRANSACTION READ ONLY"},
			func(t *testing.T, c *rawClient) {
				for _, q := range []string{"START TRANSACTION", "INSERT INTO pool_leak VALUES (9)", "ROLLBACK"} {
					if err := c.sc.exec(q); err != nil {
						t.Fatalf("%s after the previous client's SET TRANSACTION READ ONLY: %v", q, err)
					}
				}
			}},
		{"schema", []string{"USE sbtest"},
			func(t *testing.T, c *rawClient) {
				if got := c.value(t, "SELECT DATABASE()"); got != testpair.AppDB {
					t.Fatalf("schema %q, want the client's own %q", got, testpair.AppDB)
				}
			}},
		{"schema changed where tandem does not look", []string{"EXECUTE IMMEDIATE 'USE sbtest'"},
			func(t *testing.T, c *rawClient) {
				if got := c.value(t, "SELECT DATABASE()"); got != testpair.AppDB {
					t.Fatalf("schema %q, want the client's own %q", got, testpair.AppDB)
				}
			}},
		{"role set where tandem does not look", []string{"EXECUTE IMMEDIATE 'SET ROLE NONE'"},
			func(t *testing.T, c *rawClient) {
				if got := c.value(t, "SELECT IFNULL(CURRENT_ROLE(), 'none')"); got != "none" {
					t.Fatalf("role %q", got)
				}
			}},
		{"character set", []string{"SET NAMES latin1"},
			func(t *testing.T, c *rawClient) {
				if got := c.value(t, "SELECT CONCAT(@@character_set_client, ' ', @@character_set_results, ' ', @@collation_connection)"); got != "utf8mb4 utf8mb4 utf8mb4_general_ci" {
					t.Fatalf("character set: %q, want the handshake's utf8mb4_general_ci", got)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first, id := poolClient(t, p.addr)
			for _, q := range tc.leave {
				if err := first.sc.exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			quitPooled(t, p, first)
			waitIdle(t, p, 1)
			next, id2 := poolClient(t, p.addr)
			defer quitPooled(t, p, next)
			if id2 != id {
				t.Fatalf("the next client got thread %s, not the pooled %s", id2, id)
			}
			tc.check(t, next)
		})
	}
	t.Run("role", func(t *testing.T) {
		// Neither reset undoes SET ROLE: such a session is closed.
		first, id := poolClient(t, p.addr)
		// EXECUTE IMMEDIATE: tandem does not see the statement; the
		// reset's own check does.
		if err := first.sc.exec("EXECUTE IMMEDIATE 'SET ROLE pool_role'"); err != nil {
			t.Fatal(err)
		}
		before := p.PoolStats()
		quitPooled(t, p, first)
		if st := p.PoolStats(); st.Evicted != before.Evicted+1 || st.Idle != before.Idle {
			t.Fatalf("a session with a role was pooled: %+v", st)
		}
		next, err := loginAs(p.addr, testpair.AppDB, 45)
		if err != nil {
			t.Fatal(err)
		}
		defer quitPooled(t, p, next)
		if got := next.value(t, "SELECT CONCAT_WS(' ', CONNECTION_ID() = "+id+", IFNULL(CURRENT_ROLE(), 'none'))"); got != "0 none" {
			t.Fatalf("next client (same thread, role): %q", got)
		}
	})
	t.Run("binary prepared statements", func(t *testing.T) {
		first, id := poolClient(t, p.addr)
		stmt, _, err := first.sc.prepare("SELECT 1")
		if err != nil {
			t.Fatal(err)
		}
		quitPooled(t, p, first)
		waitIdle(t, p, 1)
		next, id2 := poolClient(t, p.addr)
		defer quitPooled(t, p, next)
		if id2 != id {
			t.Fatalf("the next client got thread %s, not the pooled %s", id2, id)
		}
		exec := []byte{gmysql.COM_STMT_EXECUTE, byte(stmt), byte(stmt >> 8), byte(stmt >> 16), byte(stmt >> 24), 0, 1, 0, 0, 0}
		_, err = next.sc.roundTrip(gmysql.COM_STMT_EXECUTE, string(exec[1:]))
		if e := (*sqlError)(nil); !errors.As(err, &e) || e.Code != gmysql.ER_UNKNOWN_STMT_HANDLER {
			t.Fatalf("executing the previous client's statement %d: %v, want error 1243", stmt, err)
		}
	})
	t.Run("without a schema", func(t *testing.T) {
		// A client that logged in without a schema: its session is
		// reset with COM_CHANGE_USER (COM_RESET_CONNECTION keeps the
		// schema).
		first, err := loginAs(p.addr, "", 45)
		if err != nil {
			t.Fatal(err)
		}
		id := first.value(t, "SELECT CONNECTION_ID()")
		for _, q := range []string{"USE app", "SET @pool_secret = 'leaked'", "CREATE TEMPORARY TABLE pool_tmp2 (v INT)"} {
			if err := first.sc.exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		quitPooled(t, p, first)
		waitIdle(t, p, 2) // with the one of the clients with a schema
		next, err := loginAs(p.addr, "", 45)
		if err != nil {
			t.Fatal(err)
		}
		defer quitPooled(t, p, next)
		got := next.value(t, "SELECT CONCAT_WS(' ', CONNECTION_ID(), IFNULL(DATABASE(), 'none'), IFNULL(@pool_secret, 'unset'))")
		if got != id+" none unset" {
			t.Fatalf("got %q, want the pooled thread %s with no schema and no user variable", got, id)
		}
		err = next.sc.exec("INSERT INTO app.pool_tmp2 VALUES (1)")
		if e := (*sqlError)(nil); !errors.As(err, &e) || e.Code != gmysql.ER_NO_SUCH_TABLE {
			t.Fatalf("temporary table of the previous client: %v, want error 1146", err)
		}
	})
	t.Run("other schema and collation", func(t *testing.T) {
		// A client asking for another schema and collation gets the
		// pooled session changed to them.
		first, id := poolClient(t, p.addr)
		quitPooled(t, p, first)
		waitIdle(t, p, 2) // this one, and the one without a schema
		c, err := loginAs(p.addr, "sbtest", 8)
		if err != nil {
			t.Fatal(err)
		}
		defer quitPooled(t, p, c)
		if got := c.value(t, "SELECT CONCAT(CONNECTION_ID(), ' ', DATABASE(), ' ', @@collation_connection)"); got != id+" sbtest latin1_swedish_ci" {
			t.Fatalf("got %q, want the pooled thread %s with sbtest and latin1_swedish_ci", got, id)
		}
	})
}

func TestPoolDrainsOnSwitchoverAndNeverReachesTheOldActive(t *testing.T) {
	p := startPoolProxy(t, func(c *PoolConfig) { c.MinIdle = 2 })
	t.Cleanup(func() { _ = p.Route("a") })
	c, _ := poolClient(t, p.addr)
	c.quit()
	waitIdle(t, p, 2) // the one left, and one opened ahead (MinIdle)
	// (Connections of earlier tests may still be ending.)
	waitFor(t, 30*time.Second, "the 2 pooled app threads on node a", func() bool { return appThreads(t, testpair.A) == 2 })
	if err := p.Route("b"); err != nil {
		t.Fatal(err)
	}
	if st := p.PoolStats(); st.Idle > 0 && st.Drained < 2 {
		t.Fatalf("after Route(b): %+v, want a's sessions drained", st)
	}
	waitFor(t, 30*time.Second, "node a's pooled threads to end", func() bool { return appThreads(t, testpair.A) == 0 })
	// Refilled on the new active.
	waitIdle(t, p, 2)
	waitFor(t, 30*time.Second, "2 pooled threads on node b", func() bool { return appThreads(t, testpair.B) == 2 })
	for range 3 {
		c, _ := poolClient(t, p.addr)
		if port := c.value(t, "SELECT @@port"); port != strconv.Itoa(testpair.Port(testpair.B)) {
			t.Fatalf("a client after the switchover reached port %s", port)
		}
		defer c.quit()
	}
	waitFor(t, 30*time.Second, "no app thread on the old active", func() bool { return appThreads(t, testpair.A) == 0 })
}

func TestPoolDrainsOnNodeFailure(t *testing.T) {
	p := startPoolProxy(t, nil)
	t.Cleanup(func() {
		testpair.Reset(t)
		_ = p.Route("a")
	})
	var cs []*rawClient
	for range 3 {
		c, _ := poolClient(t, p.addr)
		cs = append(cs, c)
	}
	for _, c := range cs {
		c.quit()
	}
	waitIdle(t, p, 3)
	testpair.Kill(t, testpair.A)
	// The route still names a (the failure is not detected yet): the
	// janitor's peek drops the dead sessions without any client.
	waitIdle(t, p, 0)
	hits := p.PoolStats().Hits
	// A new client finds none, cannot reach a, and waits for the route
	// to change: it lands on b.
	type result struct {
		port string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := tryClient(p.addr)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.quit()
		port, err := c.query1("SELECT @@port")
		done <- result{port, err}
	}()
	waitFor(t, 30*time.Second, "the client to find the pool empty", func() bool { return p.PoolStats().Misses > 0 })
	p.Cut("a")
	if err := p.Route("b"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || r.port != strconv.Itoa(testpair.Port(testpair.B)) {
			t.Fatalf("client during the failure: port %q, %v; want node b", r.port, r.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("client during the failure never logged in")
	}
	if st := p.PoolStats(); st.Hits != hits {
		t.Fatalf("a session of the dead node was handed out: %+v", st)
	}
}

func TestPoolKillByGreetingIDAndConnectionID(t *testing.T) {
	p := startPoolProxy(t, nil)
	c, _ := poolClient(t, p.addr)
	c.quit()
	waitIdle(t, p, 1)
	victim, thread := poolClient(t, p.addr) // the pooled thread
	_ = victim.be.conn.SetDeadline(time.Now().Add(5 * time.Minute))
	if st := p.PoolStats(); st.Hits != 1 {
		t.Fatalf("victim did not get the pooled session: %+v", st)
	}
	greetID := victim.be.threadID
	if strconv.FormatUint(uint64(greetID), 10) == thread {
		t.Fatalf("greeting id %d equals CONNECTION_ID(): not a pooled greeting", greetID)
	}
	killer, _ := sessionAs(t, p.addr, testpair.AppUser, testpair.AppPassword)
	ctx := context.Background()
	for _, by := range []string{strconv.FormatUint(uint64(greetID), 10), thread} {
		done := make(chan error, 1)
		go func() {
			_, err := victim.query1("SELECT SLEEP(600)")
			done <- err
		}()
		waitFor(t, 30*time.Second, "the victim's SLEEP to run", func() bool {
			var n int
			_ = testpair.AdminDB(t, testpair.A).QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO LIKE 'SELECT SLEEP%'", thread).Scan(&n)
			return n == 1
		})
		if _, err := killer.ExecContext(ctx, "KILL QUERY "+by); err != nil {
			t.Fatalf("KILL QUERY %s: %v", by, err)
		}
		select {
		case err := <-done:
			if e := (*sqlError)(nil); err != nil && (!errors.As(err, &e) || e.Code != gmysql.ER_QUERY_INTERRUPTED) {
				t.Fatalf("killed SLEEP: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("KILL QUERY %s did not reach the pooled thread", by)
		}
	}
	if _, err := killer.ExecContext(ctx, "KILL "+thread); err != nil {
		t.Fatalf("KILL %s: %v", thread, err)
	}
	waitFor(t, 30*time.Second, "the killed session to end", func() bool {
		_, err := victim.query1("SELECT 1")
		return err != nil
	})
	// Killed sessions are not pooled.
	if st := p.PoolStats(); st.Idle != 0 {
		t.Fatalf("a killed session was pooled: %+v", st)
	}
}

func TestPoolEvictsIdleAndOld(t *testing.T) {
	t.Run("idle timeout", func(t *testing.T) {
		p := startPoolProxy(t, func(c *PoolConfig) { c.IdleTimeout = 300 * time.Millisecond })
		c, _ := poolClient(t, p.addr)
		c.quit()
		waitFor(t, 30*time.Second, "the session to be pooled", func() bool { return p.PoolStats().Resets == 1 })
		waitIdle(t, p, 0)
		if st := p.PoolStats(); st.Evicted != 1 {
			t.Fatalf("%+v, want 1 evicted", st)
		}
		waitFor(t, 30*time.Second, "the evicted thread to end", func() bool { return appThreads(t, testpair.A) == 0 })
	})
	t.Run("max age", func(t *testing.T) {
		p := startPoolProxy(t, func(c *PoolConfig) { c.MaxAge = 2 * time.Second })
		c, _ := poolClient(t, p.addr)
		c.quit()
		waitFor(t, 30*time.Second, "the session to be pooled", func() bool { return p.PoolStats().Resets == 1 })
		waitIdle(t, p, 0)
		// A client that holds its session past MaxAge does not return it.
		c, _ = poolClient(t, p.addr)
		born := time.Now()
		waitFor(t, 30*time.Second, "MaxAge to pass", func() bool { return time.Since(born) > 2*time.Second })
		c.quit()
		waitFor(t, 30*time.Second, "the old session to be closed", func() bool { return p.PoolStats().Evicted == 2 })
		if st := p.PoolStats(); st.Idle != 0 || st.Resets != 1 {
			t.Fatalf("%+v: an old session was pooled", st)
		}
	})
}

func TestPoolSizeBound(t *testing.T) {
	p := startPoolProxy(t, func(c *PoolConfig) { c.Size = 2 })
	var cs []*rawClient
	for range 5 {
		c, _ := poolClient(t, p.addr)
		cs = append(cs, c)
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() { defer wg.Done(); c.quit() }()
	}
	wg.Wait()
	waitFor(t, 30*time.Second, "all 5 sessions returned", func() bool {
		st := p.PoolStats()
		return st.Resets+st.Evicted == 5
	})
	if st := p.PoolStats(); st.Idle != 2 || st.Resets != 2 {
		t.Fatalf("%+v, want 2 idle", st)
	}
	waitFor(t, 30*time.Second, "only the 2 pooled threads left", func() bool { return appThreads(t, testpair.A) == 2 })
}

// tryClient logs in as the app user through addr without failing the
// test (for goroutines).
func tryClient(addr string) (*rawClient, error) { return loginAs(addr, testpair.AppDB, 45) }

// loginAs logs in as the app user through addr with schema db and
// collation.
func loginAs(addr, db string, collation byte) (*rawClient, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Minute))
	be, err := login(conn, &Node{Name: "tandem", Address: addr}, &loginParams{User: testpair.AppUser, Password: testpair.AppPassword,
		DB: db, Caps: requiredCaps | gmysql.CLIENT_PLUGIN_AUTH, Collation: collation, MaxPacket: 1 << 24})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &rawClient{be: be, sc: &syncConn{br: bufio.NewReader(conn), bw: bufio.NewWriter(conn), caps: be.caps}}, nil
}

// query1 runs a query returning one row of one column, without failing
// the test.
func (c *rawClient) query1(q string) (string, error) {
	rows, err := c.sc.query(q)
	if err != nil {
		return "", err
	}
	if len(rows) != 1 || len(rows[0]) != 1 || rows[0][0] == nil {
		return "", fmt.Errorf("%s: %d rows", q, len(rows))
	}
	return *rows[0][0], nil
}

// TestResetConnectionKeepsSchema checks, directly on the node, why the
// pool resets with COM_CHANGE_USER rather than COM_RESET_CONNECTION: the
// latter resets session state and the character set (to the handshake's)
// too, but keeps the schema, and cannot give the session another
// client's schema or collation.
func TestResetConnectionKeepsSchema(t *testing.T) {
	testpair.Require(t)
	c, err := loginAs(testpair.Addr(testpair.A), testpair.AppDB, 8) // latin1_swedish_ci
	if err != nil {
		t.Fatal(err)
	}
	defer c.quit()
	for _, q := range []string{"USE sbtest", "SET @v = 1", "SET SESSION wait_timeout = 1234", "SET NAMES utf8mb4"} {
		if err := c.sc.exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.sc.roundTrip(gmysql.COM_RESET_CONNECTION, ""); err != nil {
		t.Fatalf("COM_RESET_CONNECTION: %v", err)
	}
	got := c.value(t, "SELECT CONCAT_WS(' ', DATABASE(), IFNULL(@v, 'unset'), @@session.wait_timeout = @@global.wait_timeout, @@character_set_client)")
	if got != "sbtest unset 1 latin1" {
		t.Fatalf("after COM_RESET_CONNECTION: %q; want schema kept, variables reset, the handshake's character set", got)
	}
	// COM_CHANGE_USER sets the schema and the collation it is given.
	if _, err := c.be.changeUser(&loginParams{User: testpair.AppUser, Password: testpair.AppPassword, DB: testpair.AppDB, Collation: 45}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := c.value(t, "SELECT CONCAT_WS(' ', DATABASE(), @@character_set_client)"); got != "app utf8mb4" {
		t.Fatalf("after COM_CHANGE_USER: %q, want app utf8mb4", got)
	}
}

// TestPoolNodeAccountChecksTheNodeAgain: a pooled session does not outlive
// the node's verdict on its account for longer than AccountsRefresh. One
// pooled before its account was locked is checked again at checkout once
// the node's last check is AccountsRefresh old, and one returned that long
// after its login is closed (the reset's COM_CHANGE_USER fails).
func TestPoolNodeAccountChecksTheNodeAgain(t *testing.T) {
	runtimeAccounts(t, map[string]string{"'acc_pool'@'127.0.0.1'": "IDENTIFIED BY 'pw-pool'"})
	const refresh = 300 * time.Millisecond
	p := startProxy(t, func(c *Config, _ []*Node) {
		c.Users = nil
		c.Accounts = pairAccounts(t)
		c.AccountsRefresh = refresh
		c.Pool = PoolConfig{Users: []string{"*"}}
	})
	admin := testpair.AdminDB(t, testpair.A)
	if cur, code := tryLogin(t, p.addr, "acc_pool", "pw-pool"); code != 0 || cur != "acc_pool@127.0.0.1" {
		t.Fatalf("login: %q, error %d", cur, code)
	}
	waitIdle(t, p, 1)
	pooledAt := time.Now()
	mustExec(t, admin, "ALTER USER 'acc_pool'@'127.0.0.1' ACCOUNT LOCK")
	waitFor(t, 30*time.Second, "the pooled session to be idle for AccountsRefresh", func() bool { return time.Since(pooledAt) > refresh })
	if _, code := tryLogin(t, p.addr, "acc_pool", "pw-pool"); code != 4151 {
		t.Fatalf("login to a locked account with a pooled session: error %d, want 4151", code)
	}
	if st := p.PoolStats(); st.Idle != 0 || st.Hits != 0 {
		t.Fatalf("%+v: the locked account's session was handed out or kept", st)
	}
	mustExec(t, admin, "ALTER USER 'acc_pool'@'127.0.0.1' ACCOUNT UNLOCK")
	cfg := driverConfig(p.addr)
	cfg.User, cfg.Passwd = "acc_pool", "pw-pool"
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := connector.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	loggedIn := time.Now()
	mustExec(t, admin, "ALTER USER 'acc_pool'@'127.0.0.1' ACCOUNT LOCK")
	// Within AccountsRefresh of the node's last check, the reset does
	// not ask the node again (COM_RESET_CONNECTION); past it, it does.
	waitFor(t, 30*time.Second, "AccountsRefresh to pass since the login", func() bool { return time.Since(loggedIn) > refresh })
	before := p.PoolStats()
	c.Close()
	waitFor(t, 30*time.Second, "the session to be returned", func() bool { return p.PoolStats().Evicted > before.Evicted })
	if st := p.PoolStats(); st.Idle != 0 || st.Resets != before.Resets {
		t.Fatalf("%+v: a session of a locked account was pooled", st)
	}
}

func TestPoolDrainsOnDown(t *testing.T) {
	p := startPoolProxy(t, nil)
	t.Cleanup(func() { _ = p.Route("a") })
	c, _ := poolClient(t, p.addr)
	quitPooled(t, p, c)
	waitIdle(t, p, 1)
	p.Down("maintenance")
	if st := p.PoolStats(); st.Idle != 0 || st.Drained != 1 {
		t.Fatalf("after Down: %+v, want the idle session drained", st)
	}
	if _, err := tryClient(p.addr); err == nil {
		t.Fatal("a client logged in while no node takes traffic")
	}
	if err := p.Route("a"); err != nil {
		t.Fatal(err)
	}
	c, _ = poolClient(t, p.addr)
	if got := c.value(t, "SELECT @@port"); got != strconv.Itoa(testpair.Port(testpair.A)) {
		t.Fatalf("after Route(a): port %s", got)
	}
	quitPooled(t, p, c)
}

// TestPoolCompressedAndCachedMetadataSessions: go-sql-driver negotiates
// MariaDB's metadata cache, and here the compressed protocol: the pool
// resets such a session through its compressed link, hands it only to a
// client that negotiates the same, and the next client's queries work.
func TestPoolCompressedAndCachedMetadataSessions(t *testing.T) {
	p := startPoolProxy(t, nil)
	connect := func(compressed bool) driverConn {
		c := driverConfig(p.addr)
		c.Apply(mysql.EnableCompression(compressed))
		connector, err := mysql.NewConnector(c)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(connector)
		db.SetMaxOpenConns(1)
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return driverConn{db: db, conn: conn}
	}
	value := func(c driverConn, q string) string {
		var v string
		if err := c.conn.QueryRowContext(context.Background(), q).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return v
	}
	status := func(c driverConn, name string) string {
		var k, v string
		if err := c.conn.QueryRowContext(context.Background(), "SHOW SESSION STATUS LIKE '"+name+"'").Scan(&k, &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	quit := func(c driverConn) {
		st := p.PoolStats()
		_ = c.conn.Close()
		_ = c.db.Close() // COM_QUIT
		waitFor(t, 30*time.Second, "the session to be returned", func() bool {
			now := p.PoolStats()
			return now.Resets+now.Evicted+now.Drained > st.Resets+st.Evicted+st.Drained
		})
	}
	first := connect(true)
	id := value(first, "SELECT CONNECTION_ID()")
	if got := status(first, "Compression"); got != "ON" {
		t.Fatalf("first client: Compression %s", got)
	}
	// A prepared statement whose definitions the node may cache for this
	// client: the next client must get them again.
	stmt, err := first.conn.PrepareContext(context.Background(), "SELECT ? + 1")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := stmt.QueryRowContext(context.Background(), 1).Scan(&n); err != nil || n != 2 {
		t.Fatalf("prepared statement: %d, %v", n, err)
	}
	quit(first)
	if st := p.PoolStats(); st.Idle != 1 {
		t.Fatalf("%+v: the compressed session was not pooled", st)
	}
	plain := connect(false)
	if got := value(plain, "SELECT CONNECTION_ID()"); got == id {
		t.Fatal("a client without compression got the compressed session")
	}
	if got := status(plain, "Compression"); got != "OFF" {
		t.Fatalf("plain client: Compression %s", got)
	}
	next := connect(true)
	if got := value(next, "SELECT CONNECTION_ID()"); got != id {
		t.Fatalf("next compressed client: thread %s, want the pooled %s", got, id)
	}
	if got := status(next, "Compression"); got != "ON" {
		t.Fatalf("next client: Compression %s", got)
	}
	stmt2, err := next.conn.PrepareContext(context.Background(), "SELECT CONCAT(?, 'x')")
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := stmt2.QueryRowContext(context.Background(), "a").Scan(&s); err != nil || s != "ax" {
		t.Fatalf("prepared statement on the pooled session: %q, %v", s, err)
	}
}

type driverConn struct {
	db   *sql.DB
	conn *sql.Conn
}
