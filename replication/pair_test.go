package replication

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/testpair"
)

// The integration tests run against the local master-master pair that
// scripts/pair.sh up starts (internal/testpair: node a writable, node b
// read_only, GTID replication both ways; TANDEM_PAIR_* select another
// pair). They FAIL, never skip, when the pair is unreachable, and hold the
// pair's test lock so that no other package's tests change it meanwhile.

const (
	// dsnParams bound every dial and I/O of the tests; interpolateParams
	// makes each call with arguments one round trip.
	dsnParams = "?timeout=2s&readTimeout=5s&writeTimeout=5s&interpolateParams=true"
	// pairWait bounds how long a test waits for replication to catch up.
	pairWait = 10 * time.Second
)

// pairNode is one node of the pair, opened for a test.
type pairNode struct {
	name string
	db   *sql.DB
}

// openPair opens both nodes and fails the test when either does not answer
// within a few seconds.
func openPair(t *testing.T) (a, b pairNode) {
	t.Helper()
	testpair.Require(t)
	return openNode(t, testpair.A), openNode(t, testpair.B)
}

func openNode(t *testing.T, n testpair.Node) pairNode {
	t.Helper()
	name := string(n)
	dsn := testpair.AdminUser + ":" + testpair.AdminPassword + "@tcp(" + testpair.Addr(n) + ")/" + dsnParams
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("node %s: open: %v", name, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	db.SetMaxIdleConns(2)
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return pairNode{name: name, db: db}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s unreachable (%v); start the pair with scripts/pair.sh up", name, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// testCtx returns a context that ends with the test or after d.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// mustRead reads a node's facts or fails the test.
func mustRead(t *testing.T, n pairNode) Facts {
	t.Helper()
	f, err := Read(testCtx(t, 5*time.Second), n.db)
	if err != nil {
		t.Fatalf("Read(node %s): %v", n.name, err)
	}
	return f
}

// exec runs statements on a node or fails the test.
func exec(t *testing.T, q Querier, node string, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := q.ExecContext(ctx, s)
		cancel()
		if err != nil {
			t.Fatalf("node %s: %s: %v", node, s, err)
		}
	}
}

// ensureReplicating starts both replica threads of n when they are stopped
// and waits until they run: the restore step of tests that stop them.
func ensureReplicating(t *testing.T, n pairNode) {
	t.Helper()
	exec(t, n.db, n.name, "START SLAVE")
	testpair.Until(t, pairWait, fmt.Sprintf("node %s replicating", n.name), func() (bool, error) {
		f, err := Read(context.Background(), n.db)
		if err != nil {
			return false, err
		}
		return f.Replica.IORunning == IOYes && f.Replica.SQLRunning, nil
	})
}

// testSchema is the scratch schema the tests create on node a (and drop).
const testSchema = "tandem_replication_test"
