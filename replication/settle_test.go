package replication

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/tandemdb/tandem/internal/testpair"
)

func newMarker(t *testing.T, tag string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return MarkerPrefix + "test" + hex.EncodeToString(b[:]) + ":" + tag + "*/"
}

// TestFindTransactionsOnPeer writes marked transactions on node a and asks
// node b's binlog about them: committed ones are found with their rows and
// insert id, a marker never committed is "not committed" once a bound is
// found, and unknown without one.
func TestFindTransactionsOnPeer(t *testing.T) {
	a, b := openPair(t)
	exec(t, a.db, "a",
		"CREATE DATABASE IF NOT EXISTS "+testSchema,
		"CREATE TABLE IF NOT EXISTS "+testSchema+".settle (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)",
		"CREATE TABLE IF NOT EXISTS "+testSchema+".settle_myisam (v INT) ENGINE=MyISAM")
	t.Cleanup(func() { exec(t, a.db, "a", "DROP DATABASE IF EXISTS "+testSchema) })

	bound := newMarker(t, "bound")
	ins := newMarker(t, "insert")
	multi := newMarker(t, "multi")
	upd := newMarker(t, "update")
	tx := newMarker(t, "tx")
	noop := newMarker(t, "noop")
	never := newMarker(t, "never")
	tbl := testSchema + ".settle"
	exec(t, a.db, "a", bound+" INSERT INTO "+tbl+" (v) VALUES (0)")
	exec(t, a.db, "a", ins+" INSERT INTO "+tbl+" (v) VALUES (1)")
	var insID uint64
	if err := a.db.QueryRow("SELECT MAX(id) FROM " + tbl).Scan(&insID); err != nil {
		t.Fatal(err)
	}
	exec(t, a.db, "a", multi+" INSERT INTO "+tbl+" (v) VALUES (2), (3), (4)")
	exec(t, a.db, "a", upd+" UPDATE "+tbl+" SET v = v + 10 WHERE v >= 2")
	exec(t, a.db, "a", noop+" UPDATE "+tbl+" SET v = v WHERE v < 0")
	conn, err := a.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	exec(t, conn, "a", tx+" BEGIN", tx+" INSERT INTO "+tbl+" (v) VALUES (5)", tx+" DELETE FROM "+tbl+" WHERE v = 0", tx+" COMMIT")
	// A transaction that wrote a MyISAM table and was rolled back: the
	// MyISAM row is logged, with the marker, in a group of its own.
	mixed := newMarker(t, "mixed")
	exec(t, conn, "a", mixed+" BEGIN", mixed+" INSERT INTO "+testSchema+".settle_myisam (v) VALUES (6)",
		mixed+" INSERT INTO "+tbl+" (v) VALUES (6)", "ROLLBACK")
	conn.Close()
	testpair.Until(t, pairWait, "node b caught up", func() (bool, error) {
		var n int
		err := b.db.QueryRow("SELECT (SELECT COUNT(*) FROM " + tbl + " WHERE v = 5) + (SELECT COUNT(*) FROM " + testSchema + ".settle_myisam)").Scan(&n)
		return n == 2, err
	})

	src := BinlogSource{Address: testpair.Addr(testpair.B), User: testpair.AdminUser, Password: testpair.AdminPassword}
	qs := []SettleQuery{
		{Marker: ins, Bounds: []string{bound}},
		{Marker: multi, Bounds: []string{bound}},
		{Marker: upd, Bounds: []string{bound}},
		{Marker: tx, Bounds: []string{bound}},
		{Marker: noop, Bounds: []string{bound}},
		{Marker: never, Bounds: []string{newMarker(t, "absent"), bound}},
		{Marker: never},
		{Marker: tx, Bounds: []string{bound}, Commit: true},
		{Marker: mixed, Bounds: []string{bound}, Commit: true},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := FindTransactions(ctx, b.db, src, SettleLimits{MaxBytes: 64 << 20}, qs)
	if err != nil {
		t.Fatal(err)
	}
	want := []Settled{
		{Known: true, Committed: true, Rows: 1, RowsKnown: true, InsertID: insID},
		{Known: true, Committed: true, Rows: 3, RowsKnown: true},
		{Known: true, Committed: true, Rows: 3, RowsKnown: true},
		{Known: true, Committed: true},
		{Known: true},
		{Known: true},
		{},
		{Known: true, Committed: true},
		{}, // its COMMIT is not proven by the MyISAM row
	}
	for i, w := range want {
		g := res[i]
		t.Logf("%s: %+v", qs[i].Marker, g)
		if g.Known != w.Known || g.Committed != w.Committed || g.Rows != w.Rows || g.RowsKnown != w.RowsKnown || g.InsertID != w.InsertID {
			t.Errorf("query %d (%s): got %+v, want %+v", i, qs[i].Marker, g, w)
		}
		if g.Committed && g.GTID == "" {
			t.Errorf("query %d: committed without a GTID", i)
		}
		if !g.Known && g.Why == "" {
			t.Errorf("query %d: unknown without a reason", i)
		}
	}

	// The Settler batches concurrent queries and gives the same answers.
	s := &Settler{DB: b.db, Source: src}
	errs := make(chan error, len(qs))
	for i, q := range qs {
		go func() {
			g, err := s.Settle(ctx, q)
			if err == nil && (g.Known != want[i].Known || g.Committed != want[i].Committed) {
				err = fmt.Errorf("query %d: Settler said %+v, want %+v", i, g, want[i])
			}
			errs <- err
		}()
	}
	for range qs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if _, err := s.Settle(ctx, SettleQuery{Marker: "no prefix"}); err == nil {
		t.Error("a marker without the prefix was accepted")
	}
}
