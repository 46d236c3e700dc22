package replication

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem/internal/testpair"
)

// TestFindTransactionsInLargeBinlog reads node b's newest binlog file,
// holding some MB of inserts, for a marked multi-row insert in its middle
// (found, with its rows counted: the rows of searched statements are
// decoded) and a marker never written (not committed: the bound, at the
// start, was found and the whole file read). It logs how long each search
// took, for the README's settle figures.
func TestFindTransactionsInLargeBinlog(t *testing.T) {
	a, b := openPair(t)
	tbl := testSchema + ".settle_large"
	exec(t, a.db, "a",
		"CREATE DATABASE IF NOT EXISTS "+testSchema,
		"CREATE TABLE IF NOT EXISTS "+tbl+" (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT, s VARCHAR(64))")
	t.Cleanup(func() { exec(t, a.db, "a", "DROP DATABASE IF EXISTS "+testSchema) })
	exec(t, a.db, "a", "FLUSH BINARY LOGS")
	exec(t, b.db, "b", "FLUSH BINARY LOGS")
	bound := newMarker(t, "bound")
	middle := newMarker(t, "middle")
	exec(t, a.db, "a", bound+" INSERT INTO "+tbl+" (v, s) VALUES (0, 'bound')")
	vals := make([]string, 100)
	for i := range vals {
		vals[i] = fmt.Sprintf("(%d, '%s')", i, strings.Repeat("x", 40))
	}
	const groups, singles = 300, 3000
	for i := range groups {
		m := newMarker(t, fmt.Sprint(i))
		if i == groups/2 {
			m = middle
		}
		exec(t, a.db, "a", m+" INSERT INTO "+tbl+" (v, s) VALUES "+strings.Join(vals, ","))
	}
	for i := range singles {
		exec(t, a.db, "a", newMarker(t, fmt.Sprint("one", i))+" INSERT INTO "+tbl+" (v, s) VALUES (1, 'one')")
	}
	testpair.Until(t, pairWait, "node b caught up", func() (bool, error) {
		var n int
		err := b.db.QueryRow("SELECT COUNT(*) FROM " + tbl).Scan(&n)
		return n == 1+groups*100+singles, err
	})
	files, err := binaryLogs(context.Background(), b.db)
	if err != nil {
		t.Fatal(err)
	}
	newest := files[len(files)-1]
	t.Logf("node b's newest binlog file: %s, %d bytes", newest.name, newest.size)
	src := BinlogSource{Address: testpair.Addr(testpair.B), User: testpair.AdminUser, Password: testpair.AdminPassword}
	qs := []SettleQuery{
		{Marker: newMarker(t, "never"), Bounds: []string{bound}},
		{Marker: middle, Bounds: []string{bound}},
	}
	for round := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		began := time.Now()
		res, err := FindTransactions(ctx, b.db, src, SettleLimits{}, qs)
		took := time.Since(began)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("search %d: %v", round+1, took.Round(time.Millisecond))
		if g := res[0]; !g.Known || g.Committed {
			t.Errorf("never written: got %+v, want known, not committed", g)
		}
		if g := res[1]; !g.Committed || g.Rows != 100 || !g.RowsKnown {
			t.Errorf("the middle insert: got %+v, want committed, 100 rows", g)
		}
	}
}

// TestSettlerSharesOneRead queues several queries, as the sessions one
// failover interrupted do, while no search runs: one search, one read of
// the binlog, answers them all. A query whose After lies ahead is taken
// as made now.
func TestSettlerSharesOneRead(t *testing.T) {
	a, b := openPair(t)
	tbl := testSchema + ".settle_share"
	exec(t, a.db, "a",
		"CREATE DATABASE IF NOT EXISTS "+testSchema,
		"CREATE TABLE IF NOT EXISTS "+tbl+" (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
	t.Cleanup(func() { exec(t, a.db, "a", "DROP DATABASE IF EXISTS "+testSchema) })
	bound, ins := newMarker(t, "bound"), newMarker(t, "ins")
	exec(t, a.db, "a", bound+" INSERT INTO "+tbl+" (v) VALUES (0)", ins+" INSERT INTO "+tbl+" (v) VALUES (1)")
	testpair.Until(t, pairWait, "node b caught up", func() (bool, error) {
		var n int
		err := b.db.QueryRow("SELECT COUNT(*) FROM " + tbl).Scan(&n)
		return n == 2, err
	})
	s := &Settler{DB: b.db, Source: BinlogSource{Address: testpair.Addr(testpair.B), User: testpair.AdminUser, Password: testpair.AdminPassword}}
	moved := time.Now()
	qs := []SettleQuery{
		{Marker: ins, Bounds: []string{bound}, After: moved},
		{Marker: newMarker(t, "never"), Bounds: []string{bound}, After: moved},
		{Marker: newMarker(t, "never2"), Bounds: []string{bound}, After: moved},
	}
	// Queue them as Settle would, before the search starts.
	reqs := make([]*settleReq, len(qs))
	s.mu.Lock()
	for i, q := range qs {
		reqs[i] = &settleReq{q: q, done: make(chan struct{})}
		s.waiting = append(s.waiting, reqs[i])
	}
	s.running = true
	s.mu.Unlock()
	go s.run()
	for i, r := range reqs {
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Fatalf("query %d unanswered", i)
		}
		if r.err != nil {
			t.Fatalf("query %d: %v", i, r.err)
		}
		if want := i == 0; !r.res.Known || r.res.Committed != want {
			t.Errorf("query %d: got %+v, want known, committed %v", i, r.res, want)
		}
		if r.res.Search != reqs[0].res.Search || !strings.HasPrefix(r.res.Search, "3 queries:") {
			t.Errorf("query %d answered by %q, query 0 by %q: want one search of 3 queries", i, r.res.Search, reqs[0].res.Search)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g, err := s.Settle(ctx, SettleQuery{Marker: ins, Bounds: []string{bound}, After: time.Now().Add(time.Hour)})
	if err != nil || !g.Committed {
		t.Fatalf("a query with After ahead: %+v, %v", g, err)
	}
}

// TestSettlerReadsFromTrackedPoint: with Track recording where node b's
// binlog ends, a query whose newest bound was sent after a recorded point
// is answered by reading from that point only, not the whole newest file;
// a query whose bound lies before the point it is given (Since too late,
// which the proxy never passes) is not settled by that read and falls back
// to the whole file, still answered right.
func TestSettlerReadsFromTrackedPoint(t *testing.T) {
	a, b := openPair(t)
	tbl := testSchema + ".settle_tail"
	exec(t, a.db, "a",
		"CREATE DATABASE IF NOT EXISTS "+testSchema,
		"CREATE TABLE IF NOT EXISTS "+tbl+" (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT, s VARCHAR(64))")
	t.Cleanup(func() { exec(t, a.db, "a", "DROP DATABASE IF EXISTS "+testSchema) })
	early := newMarker(t, "early")
	exec(t, a.db, "a", early+" INSERT INTO "+tbl+" (v, s) VALUES (0, 'early')")
	vals := make([]string, 100)
	for i := range vals {
		vals[i] = fmt.Sprintf("(%d, '%s')", i, strings.Repeat("x", 40))
	}
	for i := range 100 {
		exec(t, a.db, "a", newMarker(t, fmt.Sprint(i))+" INSERT INTO "+tbl+" (v, s) VALUES "+strings.Join(vals, ","))
	}
	caughtUp := func(n int) {
		testpair.Until(t, pairWait, "node b caught up", func() (bool, error) {
			var got int
			err := b.db.QueryRow("SELECT COUNT(*) FROM " + tbl).Scan(&got)
			return got == n, err
		})
	}
	caughtUp(1 + 100*100)
	s := &Settler{DB: b.db, Source: BinlogSource{Address: testpair.Addr(testpair.B), User: testpair.AdminUser, Password: testpair.AdminPassword}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Track(ctx, 50*time.Millisecond)
	after := time.Now()
	testpair.Until(t, pairWait, "a point recorded", func() (bool, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.points) > 0 && s.points[len(s.points)-1].at.After(after), nil
	})
	since := time.Now() // the bound's COMMIT is sent after the point
	bound, ins := newMarker(t, "bound"), newMarker(t, "ins")
	exec(t, a.db, "a", bound+" INSERT INTO "+tbl+" (v) VALUES (1)", ins+" INSERT INTO "+tbl+" (v) VALUES (2)")
	caughtUp(1 + 100*100 + 2)
	files, err := binaryLogs(context.Background(), b.db)
	if err != nil {
		t.Fatal(err)
	}
	size := files[len(files)-1].size
	qctx, qcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer qcancel()
	settle := func(q SettleQuery) Settled {
		t.Helper()
		g, err := s.Settle(qctx, q)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %+v", q.Marker, g)
		return g
	}
	g := settle(SettleQuery{Marker: ins, Bounds: []string{bound}, Since: since})
	if !g.Committed || g.Rows != 1 {
		t.Errorf("the insert after the point: %+v, want committed, 1 row", g)
	}
	var read int64
	if _, err := fmt.Sscanf(g.Search[strings.Index(g.Search, "read "):], "read %d bytes", &read); err != nil || read <= 0 || read > size/10 {
		t.Errorf("read %d bytes (%v) of a %d-byte file: want only the tail (%q)", read, err, size, g.Search)
	}
	if g := settle(SettleQuery{Marker: newMarker(t, "never"), Bounds: []string{bound}, Since: since}); !g.Known || g.Committed {
		t.Errorf("never written: %+v, want known, not committed", g)
	}
	// A bound from before the point: the short read cannot settle it.
	// (Since as above: with time.Now(), Track's newest point may mark
	// the end of the file, and there is no short read to try.)
	g = settle(SettleQuery{Marker: newMarker(t, "never2"), Bounds: []string{early}, Since: since})
	if !g.Known || g.Committed || !strings.Contains(g.Search, "not all settled") {
		t.Errorf("bound before the point: %+v, want known, not committed, after the whole file was read", g)
	}
	// No Since: the whole newest file.
	g = settle(SettleQuery{Marker: ins, Bounds: []string{bound}})
	if !g.Committed || strings.Contains(g.Search, "not all settled") {
		t.Errorf("without Since: %+v", g)
	}
}
