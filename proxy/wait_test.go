package proxy

// Waiting on conditions, never on a sleep: the machine running the tests
// may be slow and shared.

import (
	"testing"
	"time"

	"github.com/tandemdb/tandem/internal/testpair"
)

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitRunning waits until node n runs a statement that starts with prefix
// (as its processlist shows), other than the query asking.
func waitRunning(t testing.TB, n testpair.Node, prefix string) {
	t.Helper()
	db := testpair.AdminDB(t, n)
	waitFor(t, 10*time.Second, "node "+string(n)+" to run "+prefix, func() bool {
		var c int
		err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE CONCAT(?, '%')", prefix).Scan(&c)
		if err != nil {
			t.Fatal(err)
		}
		return c > 0
	})
}

// waitThreadGone waits until node n has no thread with id thread.
func waitThreadGone(t testing.TB, n testpair.Node, thread int64) {
	t.Helper()
	db := testpair.AdminDB(t, n)
	waitFor(t, 10*time.Second, "node "+string(n)+" to end its thread", func() bool {
		var c int
		if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", thread).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c == 0
	})
}
