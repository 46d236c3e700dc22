package proxy

// Statements reach the node as the client wrote them (settle.go): with
// settling on, only INSERT, UPDATE, DELETE, REPLACE and LOAD DATA carry
// tandem's marker; what the node shows of any other statement (SHOW
// PROFILES, the processlist's INFO) is the client's text, byte for byte.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem/internal/testpair"
)

func startMarkingProxy(t *testing.T) *testProxy {
	t.Helper()
	return startProxy(t, func(c *Config, _ []*Node) {
		// Settling on (the answer is not used here): statements are
		// marked as in production.
		c.Settle = func(context.Context, SettleRequest) SettleResult { return SettleResult{Why: "not used"} }
	})
}

func randomTag(t *testing.T) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// TestReadsReachNodeAsSent: SHOW PROFILES on a session through tandem lists
// its SELECTs and SETs exactly as sent (its INSERT marked), and another
// session's SELECT shows in the processlist's INFO exactly as sent.
func TestReadsReachNodeAsSent(t *testing.T) {
	p := startMarkingProxy(t)
	db := openDB(t, driverConfig(p.addr))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tag := randomTag(t)
	table := "marker_" + tag
	mustExec(t, db, "CREATE TABLE "+table+" (id INT PRIMARY KEY, v INT)")
	t.Cleanup(func() {
		_, _ = testpair.AdminDB(t, testpair.A).Exec("DROP TABLE IF EXISTS " + testpair.AppDB + "." + table)
	})

	sent := []string{
		"SET profiling = 1",
		"SELECT 1 /* " + tag + " */",
		"  select v FROM " + table + " WHERE id = 1",
		"SET @x_" + tag + " = 2",
		"INSERT INTO " + table + " VALUES (1, 1)",
		"DO 1",
	}
	// profiles runs sent on a new session of db and returns what SHOW
	// PROFILES lists.
	profiles := func(db *sql.DB) []string {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		mustExec(t, c, "DELETE FROM "+table)
		for _, q := range sent {
			rows, err := c.QueryContext(ctx, q) // COM_QUERY, as is
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			for rows.Next() {
			}
			rows.Close()
		}
		rows, err := c.QueryContext(ctx, "SHOW PROFILES")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var id int
			var dur float64
			var q string
			if err := rows.Scan(&id, &dur, &q); err != nil {
				t.Fatal(err)
			}
			got = append(got, q)
		}
		return got
	}
	direct := profiles(openDB(t, driverConfig(testpair.Addr(testpair.A))))
	via := profiles(db)
	if len(via) != len(direct) || len(direct) != len(sent)-1 { // profiling starts after its own SET
		t.Fatalf("SHOW PROFILES lists %q through tandem, %q directly", via, direct)
	}
	for i, q := range direct {
		if strings.HasPrefix(q, "INSERT") {
			if !strings.HasPrefix(via[i], MarkerPrefix) || !strings.HasSuffix(via[i], "*/ "+q) {
				t.Errorf("SHOW PROFILES lists %q through tandem; want the INSERT marked", via[i])
			}
		} else if via[i] != q {
			t.Errorf("SHOW PROFILES lists %q through tandem, %q directly", via[i], q)
		}
	}

	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A statement running on another session, seen from the node.
	admin := testpair.AdminDB(t, testpair.A)
	lock := "marker_lock_" + tag
	holder, err := admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	var ok int
	if err := holder.QueryRowContext(ctx, "SELECT GET_LOCK(?, 30)", lock).Scan(&ok); err != nil || ok != 1 {
		t.Fatalf("GET_LOCK: %d, %v", ok, err)
	}
	waiting := "SELECT GET_LOCK('" + lock + "', 30) AS waited"
	done := make(chan error, 1)
	go func() {
		var got sql.NullInt64
		done <- c.QueryRowContext(ctx, waiting).Scan(&got)
	}()
	var info string
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := admin.QueryRowContext(ctx, "SELECT INFO FROM information_schema.PROCESSLIST WHERE INFO LIKE ?", "%"+lock+"', 30)%").Scan(&info)
		if err == nil {
			break
		}
		if err != sql.ErrNoRows || time.Now().After(deadline) {
			t.Fatalf("the waiting SELECT never showed in the processlist: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := holder.ExecContext(ctx, "DO RELEASE_LOCK(?)", lock); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if info != waiting {
		t.Errorf("the processlist shows %q; want %q, as sent", info, waiting)
	}
}

// TestRefusedSavepointLeavesCommitAlone: a transaction whose only write is
// a SELECT of a function gets tandem's marking savepoint before its COMMIT;
// when the node refuses it (an Aria table in the transaction: no
// savepoints), the COMMIT still goes and commits, as directly.
func TestRefusedSavepointLeavesCommitAlone(t *testing.T) {
	p := startMarkingProxy(t)
	tag := randomTag(t)
	admin := testpair.AdminDB(t, testpair.A)
	table, fn := testpair.AppDB+".aria_"+tag, testpair.AppDB+".aria_ins_"+tag
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, q := range []string{
		"CREATE TABLE " + table + " (id INT PRIMARY KEY) ENGINE=Aria TRANSACTIONAL=1",
		// The admin account creates it: with the binlog on, a function
		// that writes needs SUPER to create.
		"CREATE FUNCTION " + fn + "(i INT) RETURNS INT DETERMINISTIC MODIFIES SQL DATA BEGIN INSERT INTO " + table + " VALUES (i); RETURN i; END",
	} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP FUNCTION IF EXISTS " + fn)
		_, _ = admin.Exec("DROP TABLE IF EXISTS " + table)
	})
	// Directly, the node refuses a savepoint in such a transaction.
	direct, err := admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, direct, "BEGIN")
	var v int
	if err := direct.QueryRowContext(ctx, "SELECT "+fn+"(1)").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.ExecContext(ctx, "SAVEPOINT s"); err == nil || !strings.Contains(err.Error(), "1178") {
		t.Fatalf("SAVEPOINT in a transaction that wrote Aria rows: %v; want 1178", err)
	}
	mustExec(t, direct, "COMMIT")
	direct.Close()

	db := openDB(t, driverConfig(p.addr))
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustExec(t, c, "BEGIN")
	if err := c.QueryRowContext(ctx, "SELECT "+fn+"(2)").Scan(&v); err != nil {
		t.Fatal(err)
	}
	mustExec(t, c, "COMMIT") // the savepoint's 1178 is tandem's, not the client's
	var n int
	if err := admin.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows, %v; want both committed", n, err)
	}
	// The session goes on normally.
	if err := c.QueryRowContext(ctx, "SELECT 7").Scan(&v); err != nil || v != 7 {
		t.Fatalf("SELECT 7 after the COMMIT: %d, %v", v, err)
	}
}
