package replication

import (
	"context"
	"database/sql"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem/internal/testpair"
)

// captureFlag regenerates the MariaDB fixtures from the live pair:
//
//	go test ./replication -run TestCaptureFixtures -capture
//
// It puts node b, then node a, briefly into each captured state and
// restores them (see testdata/replication/README.md). Never run it while
// something else depends on the pair.
var captureFlag = flag.Bool("capture", false, "capture MariaDB replica status fixtures from the live pair into testdata/replication")

func TestCaptureFixtures(t *testing.T) {
	if !*captureFlag {
		t.Skip("fixture capture runs only with -capture")
	}
	a, b := openPair(t)

	capture(t, b, "mariadb1011_slave_running.json",
		"node b of the local pair, both threads running, caught up")

	t.Run("sql_stopped", func(t *testing.T) {
		t.Cleanup(func() { ensureReplicating(t, b) })
		exec(t, b.db, "b", "STOP SLAVE SQL_THREAD")
		capture(t, b, "mariadb1011_slave_sql_stopped.json",
			"node b after STOP SLAVE SQL_THREAD (no error)")
	})

	t.Run("sql_error", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		t.Cleanup(func() { exec(t, a.db, "a", "DROP DATABASE IF EXISTS "+testSchema) })
		exec(t, a.db, "a",
			"CREATE DATABASE IF NOT EXISTS "+testSchema,
			"CREATE TABLE IF NOT EXISTS "+testSchema+".conflict (id INT PRIMARY KEY)")
		waitExecutedOn(t, a, b)
		conn, err := b.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() }) // after the restore below
		t.Cleanup(func() {
			exec(t, conn, "b", "SET SESSION sql_log_bin = 0",
				"DELETE FROM "+testSchema+".conflict WHERE id = 1",
				"SET SESSION sql_log_bin = 1")
			ensureReplicating(t, b)
			waitExecutedOn(t, a, b)
		})
		// A row only b has (not binlogged), then the same key on a: b's
		// SQL thread stops with a duplicate key error.
		exec(t, conn, "b", "SET SESSION sql_log_bin = 0",
			"INSERT INTO "+testSchema+".conflict VALUES (1)",
			"SET SESSION sql_log_bin = 1")
		exec(t, a.db, "a", "INSERT INTO "+testSchema+".conflict VALUES (1)")
		testpair.Until(t, pairWait, "b's SQL thread to stop on the conflict", func() (bool, error) {
			f, err := Read(ctx, b.db)
			return err == nil && !f.Replica.SQLRunning && f.Replica.LastSQLErrno != 0, err
		})
		capture(t, b, "mariadb1011_slave_sql_error.json",
			"node b after a duplicate key: a row inserted on b with sql_log_bin=0, then the same key on a")
	})

	t.Run("io_connecting", func(t *testing.T) {
		// On node a, the writer: pointing b's I/O thread away would make
		// a's semi-synchronous commits wait for acknowledgements.
		f := mustRead(t, a)
		port := f.Replica.MasterPort
		t.Cleanup(func() {
			exec(t, a.db, "a", "STOP SLAVE",
				"CHANGE MASTER TO MASTER_PORT="+strconv.Itoa(port),
				"START SLAVE")
			ensureReplicating(t, a)
		})
		exec(t, a.db, "a", "STOP SLAVE", "CHANGE MASTER TO MASTER_PORT=13399", "START SLAVE")
		testpair.Until(t, pairWait, "a's I/O thread to fail connecting", func() (bool, error) {
			f, err := Read(context.Background(), a.db)
			return err == nil && f.Replica.IORunning == IOConnecting && f.Replica.LastIOErrno != 0, err
		})
		capture(t, a, "mariadb1011_slave_io_connecting.json",
			"node a with its source port changed to 13399, where nothing listens: what a replica shows while its source is down (connection refused)")
	})
}

// capture writes the node's SHOW SLAVE STATUS to testdata/replication/name.
func capture(t *testing.T, n pairNode, name, what string) {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	var version string
	if err := n.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	rows, err := n.db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	fix := statusFixture{
		Source:  "Captured from MariaDB " + version + " by TestCaptureFixtures (-capture) on " + time.Now().UTC().Format("2006-01-02") + ": " + what + ".",
		Flavor:  "mariadb",
		Version: version,
		Query:   "SHOW SLAVE STATUS",
	}
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		row := make([][2]*string, len(cols))
		for i := range cols {
			row[i][0] = &cols[i]
			if vals[i].Valid {
				v := vals[i].String
				row[i][1] = &v
			}
		}
		fix.Rows = append(fix.Rows, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	b, err := encodeFixture(fix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fixtureDir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("captured %s:\n%s", name, strings.TrimSpace(string(b)))
}

// waitExecutedOn waits until node to has applied everything node from has.
func waitExecutedOn(t *testing.T, from, to pairNode) {
	t.Helper()
	f := mustRead(t, from)
	if err := WaitExecuted(testCtx(t, pairWait+time.Second), to.db, f.Flavor, f.Executed(), pairWait); err != nil {
		t.Fatalf("node %s catching up with node %s: %v", to.name, from.name, err)
	}
}
