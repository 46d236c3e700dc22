package replication

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/nodetls"
	"github.com/tandemdb/tandem/internal/testpair"
)

// TestSettleReadsBinlogOverTLS: the binlog read that settles a COMMIT uses
// the node's TLS settings. The reading account REQUIRE SSL, so a plaintext
// read is refused: with TLS the marker is found; with preferred, TLS is used
// when the SQL connection got it, and dropped when it did not.
func TestSettleReadsBinlogOverTLS(t *testing.T) {
	a, b := openPair(t)
	const acct = "'tls_binlog'@'127.0.0.1'"
	exec(t, a.db, "a",
		"CREATE DATABASE IF NOT EXISTS "+testSchema,
		"CREATE TABLE IF NOT EXISTS "+testSchema+".settle_tls (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)",
		"DROP USER IF EXISTS "+acct,
		"CREATE USER "+acct+" IDENTIFIED BY 'binlogpw' REQUIRE SSL",
		"GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO "+acct)
	t.Cleanup(func() {
		exec(t, a.db, "a", "DROP DATABASE IF EXISTS "+testSchema, "DROP USER IF EXISTS "+acct)
	})
	ins := newMarker(t, "tls")
	exec(t, a.db, "a", ins+" INSERT INTO "+testSchema+".settle_tls (v) VALUES (1)")
	testpair.Until(t, pairWait, "node b caught up", func() (bool, error) {
		var n int
		err := b.db.QueryRow("SELECT COUNT(*) FROM " + testSchema + ".settle_tls").Scan(&n)
		return n == 1, err
	})
	// SQL connections to b as the same account, verify-full and preferred.
	open := func(c *nodetls.Client) *sql.DB {
		mc := mysql.NewConfig()
		mc.User, mc.Passwd, mc.Net, mc.Addr = "tls_binlog", "binlogpw", "tcp", testpair.Addr(testpair.B)
		mc.Timeout, mc.ReadTimeout, mc.WriteTimeout = 5*time.Second, 20*time.Second, 20*time.Second
		if err := c.Apply(mc); err != nil {
			t.Fatal(err)
		}
		conn, err := mysql.NewConnector(mc)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		t.Cleanup(func() { db.Close() })
		return db
	}
	full := testpair.TLS(t)
	pref, err := nodetls.New(nodetls.Settings{Mode: nodetls.Preferred}, testpair.Addr(testpair.B))
	if err != nil {
		t.Fatal(err)
	}
	src := BinlogSource{Address: testpair.Addr(testpair.B), User: "tls_binlog", Password: "binlogpw"}
	q := []SettleQuery{{Marker: ins}}
	for _, c := range []struct {
		name string
		db   Querier
		tls  *nodetls.Client
		ok   bool
	}{
		{"verify-full", open(full), full, true},
		{"preferred, SQL on TLS", open(pref), pref, true},
		{"preferred, SQL in plaintext", b.db, pref, false}, // the binlog read then goes plaintext: refused
		{"off", open(full), nil, false},
	} {
		s := src
		s.TLS, s.TLSIfOffered = c.tls.Config(), c.tls.Optional()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := FindTransactions(ctx, c.db, s, SettleLimits{MaxBytes: 64 << 20}, q)
		cancel()
		if c.ok && (err != nil || !res[0].Known || !res[0].Committed) {
			t.Fatalf("%s: %+v, %v", c.name, res, err)
		}
		if !c.ok && err == nil && res[0].Known {
			t.Fatalf("%s: the binlog was read in plaintext by a REQUIRE SSL account: %+v", c.name, res)
		}
		t.Logf("%s: %+v %v", c.name, res, err)
	}
}
