package failover_test

// Integration tests of failover on the real pair (internal/testpair): tandem
// runs in-process (a proxy.Proxy driven by a failover.Manager), clients use
// go-sql-driver through it, and faults are injected with scripts/pair.sh.
// Every test restores the pair with testpair.Reset when it ends.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/hashicorp/go-hclog"

	"github.com/tandemdb/tandem/failover"
	"github.com/tandemdb/tandem/internal/settlehook"
	"github.com/tandemdb/tandem/internal/testpair"
	"github.com/tandemdb/tandem/proxy"
)

// ---------------------------------------------------------------- harness

// logWriter sends log lines to the test log until the test ends; lines
// written later (a goroutine finishing after the test) are dropped, since
// t.Log would panic.
type logWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func newLogWriter(t testing.TB) *logWriter {
	w := &logWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return w
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

// tandem is one in-process tandem: proxy and failover manager.
type tandem struct {
	t      testing.TB
	p      *proxy.Proxy
	m      *failover.Manager
	addr   string
	store  failover.Store
	events *eventLog

	stopOnce sync.Once
	stopFn   func()
}

// eventLog collects the events delivered to the manager's hook.
type eventLog struct {
	mu  sync.Mutex
	evs []failover.Event
}

func (l *eventLog) hook(e failover.Event) {
	l.mu.Lock()
	l.evs = append(l.evs, e)
	l.mu.Unlock()
}

func (l *eventLog) all() []failover.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]failover.Event(nil), l.evs...)
}

// find returns the first event of type typ, if any.
func (l *eventLog) find(typ failover.EventType) (failover.Event, bool) {
	for _, e := range l.all() {
		if e.Type == typ {
			return e, true
		}
	}
	return failover.Event{}, false
}

// await returns the first event of type typ, waiting up to timeout for it:
// hooks get events after the status shows them (emit queues them).
func (l *eventLog) await(typ failover.EventType, timeout time.Duration) (failover.Event, bool) {
	deadline := time.Now().Add(timeout)
	for {
		if e, ok := l.find(typ); ok || time.Now().After(deadline) {
			return e, ok
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newStore returns a decision file in a fresh temporary directory.
func newStore(t testing.TB) *failover.FileStore {
	return &failover.FileStore{Path: filepath.Join(t.TempDir(), "tandem-state.json")}
}

// startTandem starts a proxy on 127.0.0.1:0 and a failover manager with
// default timings and its decision in store, wired as cmd/tandem wires them.
// It is stopped when the test ends (or earlier by stop).
func startTandem(t testing.TB, store failover.Store) *tandem {
	t.Helper()
	return startTandemAt(t, store, testpair.Addr(testpair.A), testpair.Addr(testpair.B), nil)
}

// startTandemAt is startTandem with the nodes at addrA and addrB (a fault
// relay, say), calling before(m) before the manager runs.
func startTandemAt(t testing.TB, store failover.Store, addrA, addrB string, before func(*failover.Manager)) *tandem {
	t.Helper()
	return startTandemWith(t, store, addrA, addrB, nil, before)
}

// startTandemWith is startTandemAt with edit(&proxy config, &failover
// config) applied before they are used.
func startTandemWith(t testing.TB, store failover.Store, addrA, addrB string, edit func(*proxy.Config, *failover.Config), before func(*failover.Manager)) *tandem {
	t.Helper()
	return startTandemSplit(t, store, [2]string{addrA, addrB}, [2]string{addrA, addrB}, edit, before)
}

// startTandemSplit is startTandemWith with the proxy reaching nodes a and b
// at proxyAddrs and the failover manager at monitorAddrs.
func startTandemSplit(t testing.TB, store failover.Store, proxyAddrs, monitorAddrs [2]string, edit func(*proxy.Config, *failover.Config), before func(*failover.Manager)) *tandem {
	t.Helper()
	w := newLogWriter(t)
	log := hclog.New(&hclog.LoggerOptions{Name: "tandem", Level: hclog.Info, Output: w, TimeFormat: "15:04:05.000", IndependentLevels: true})

	pcfg := proxy.DefaultConfig()
	pcfg.Users = map[string]string{testpair.AppUser: testpair.AppPassword, testpair.AdminUser: testpair.AdminPassword}
	pcfg.Logger = log.Named("proxy")
	pcfg.Logger.SetLevel(hclog.Warn) // one line per moved session otherwise
	// Every link to the nodes (sessions, monitor, fencing, settling) on
	// verify-full TLS, as tandem is meant to be deployed; the relays some
	// tests put in front of a node listen on 127.0.0.1, the name the
	// pair's certificates hold.
	tlsToNodes := testpair.TLS(t)
	nodes := []*proxy.Node{{Name: "a", Address: proxyAddrs[0], TLS: tlsToNodes}, {Name: "b", Address: proxyAddrs[1], TLS: tlsToNodes}}
	var m *failover.Manager
	pcfg.NodeFailed = func(node string) { m.CheckNow(node) }
	hook := settlehook.New(nodes, testpair.AdminUser, testpair.AdminPassword)
	hook.Track(t.Context()) // as cmd/tandem does
	pcfg.Settle = hook.Settle
	fcfg := failover.DefaultConfig()
	fcfg.AdminUser, fcfg.AdminPassword = testpair.AdminUser, testpair.AdminPassword
	if edit != nil {
		edit(&pcfg, &fcfg)
	}
	p, err := proxy.New(pcfg, nodes, "")
	if err != nil {
		t.Fatal(err)
	}
	fnodes := []failover.NodeConfig{{Name: "a", Address: monitorAddrs[0], TLS: tlsToNodes}, {Name: "b", Address: monitorAddrs[1], TLS: tlsToNodes}}
	events := &eventLog{}
	m, err = failover.New(fcfg, fnodes, "a", p, store, log.Named("failover"), events.hook)
	if err != nil {
		t.Fatal(err)
	}
	if d := m.Decision(); d.Active != "" {
		if err := p.Route(d.Active); err != nil {
			t.Fatal(err)
		}
	}
	if before != nil {
		before(m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = m.Run(ctx) }()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveDone := make(chan struct{})
	go func() { _ = p.Serve(l); close(serveDone) }()

	tn := &tandem{t: t, p: p, m: m, addr: l.Addr().String(), store: store, events: events}
	tn.stopFn = func() {
		cancel()
		<-runDone
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		_ = p.Shutdown(sctx)
		<-serveDone
	}
	t.Cleanup(tn.stop)
	return tn
}

// stop stops the manager and the proxy; safe to call twice.
func (tn *tandem) stop() { tn.stopOnce.Do(tn.stopFn) }

// clientConfig is a go-sql-driver config for the app user through tandem.
// Every I/O is bounded, so a hang shows as an error, not a stuck test.
func (tn *tandem) clientConfig() *mysql.Config {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = testpair.AppUser, testpair.AppPassword, "tcp", tn.addr, testpair.AppDB
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 5*time.Second, 20*time.Second, 20*time.Second
	c.InterpolateParams = true
	return c
}

// client opens a pool through tandem, closed when the test ends.
func (tn *tandem) client(t testing.TB) *sql.DB {
	t.Helper()
	conn, err := mysql.NewConnector(tn.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// waitStatus polls the manager's status until ok says so, or fails the test
// after timeout with the last status.
func (tn *tandem) waitStatus(t testing.TB, timeout time.Duration, what string, ok func(failover.Status) bool) failover.Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := tn.m.Status()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, still not %s; status: %s", timeout, what, describe(s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitActive waits until node is the decided active node with that epoch and
// traffic flows (state active).
func (tn *tandem) waitActive(t testing.TB, timeout time.Duration, node string, epoch uint64) failover.Status {
	t.Helper()
	return tn.waitStatus(t, timeout, fmt.Sprintf("active on %s at epoch %d", node, epoch), func(s failover.Status) bool {
		return s.State == "active" && s.Decision.Active == node && s.Decision.Epoch == epoch
	})
}

func nodeStatus(s failover.Status, name string) failover.NodeStatus {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n
		}
	}
	return failover.NodeStatus{}
}

func describe(s failover.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state=%s active=%s epoch=%d pending_rejoin=%v unsynced=%v excluded=%v promoting=%q",
		s.State, s.Decision.Active, s.Decision.Epoch, s.Decision.PendingRejoin, s.Decision.Unsynced, s.Decision.Excluded, s.Decision.Promoting)
	for _, n := range s.Nodes {
		fmt.Fprintf(&b, "\n  node %s: role=%s healthy=%v read_only=%v io=%s sql=%v fails=%d err=%q replica_err=%q gtid=%s",
			n.Name, n.Role, n.Healthy, n.ReadOnly, n.IORunning, n.SQLRunning, n.FailedChecks, n.LastError, n.ReplicaError, n.Executed)
	}
	for _, e := range s.Events {
		fmt.Fprintf(&b, "\n  event %s %s node=%s from=%s to=%s epoch=%d: %s", e.Time.Format("15:04:05.000"), e.Type, e.Node, e.From, e.To, e.Epoch, e.Reason)
	}
	return b.String()
}

// forgetRecordedDecision deletes the decision an earlier test recorded on
// the pair, so that a tandem without a saved decision adopts the only
// writable node (a, after a reset) instead of reading it back.
func forgetRecordedDecision(t testing.TB) {
	t.Helper()
	db := nodeDB(t, testpair.A)
	if _, err := db.Exec("DELETE FROM tandem.decision"); err != nil && errCode(err) != 1146 && errCode(err) != 1049 {
		t.Fatalf("forgetting the recorded decision: %v", err)
	}
	// The delete replicates: wait until b has it too, or a tandem could
	// read the old decision there.
	deadline := time.Now().Add(10 * time.Second)
	bdb := nodeDB(t, testpair.B)
	for {
		var n int
		err := bdb.QueryRow("SELECT COUNT(*) FROM tandem.decision").Scan(&n)
		if err != nil && (errCode(err) == 1146 || errCode(err) == 1049) || err == nil && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node b still holds a recorded decision (%d rows, %v)", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nodeDB opens an admin pool on node n directly, with every I/O bounded
// (a SIGSTOPped node must not hang the test).
func nodeDB(t testing.TB, n testpair.Node) *sql.DB {
	t.Helper()
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = testpair.AdminUser, testpair.AdminPassword, "tcp", testpair.Addr(n)
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 2*time.Second, 5*time.Second, 5*time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// readOnly reads @@read_only on node n directly.
func readOnly(t testing.TB, n testpair.Node) (bool, error) {
	db := nodeDB(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ro bool
	err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&ro)
	return ro, err
}

func mustExec(t testing.TB, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, q string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// port asks the node behind q which port it listens on.
func port(t testing.TB, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var p int
	if err := q.QueryRowContext(ctx, "SELECT @@port").Scan(&p); err != nil {
		t.Fatalf("SELECT @@port: %v", err)
	}
	return p
}

func errCode(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// setup requires the pair, restores it when the test ends, and starts
// tandem routing to node a.
func setup(t *testing.T) *tandem {
	t.Helper()
	testpair.Require(t)
	t.Cleanup(func() { testpair.Reset(t) })
	forgetRecordedDecision(t)
	tn := startTandem(t, newStore(t))
	tn.waitStatus(t, 10*time.Second, "both nodes healthy", func(s failover.Status) bool {
		return s.State == "active" && nodeStatus(s, "a").Healthy && nodeStatus(s, "b").Healthy
	})
	return tn
}

// ---------------------------------------------------------------- workload

// workload runs autocommit INSERTs with unique ids through tandem from a few
// workers, each on its own connection, and records what was acknowledged.
type workload struct {
	table string
	next  atomic.Int64

	mu      sync.Mutex
	acks    []ack
	errs    []clientErr
	perWkr  []int // errors per worker
	stopped chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type ack struct {
	id         int64
	start, end time.Time
}

type clientErr struct {
	worker int
	at     time.Time
	took   time.Duration
	err    error
}

// startWorkload creates table (through db) and starts workers inserting
// into it, each at most maxPerWorker rows and for at most maxTime.
func startWorkload(t testing.TB, db *sql.DB, table string, workers, maxPerWorker int, maxTime time.Duration) *workload {
	t.Helper()
	mustExec(t, db, "DROP TABLE IF EXISTS "+table)
	mustExec(t, db, "CREATE TABLE "+table+" (id BIGINT PRIMARY KEY, worker INT NOT NULL, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))")
	w := &workload{table: table, perWkr: make([]int, workers), stopped: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), maxTime)
	w.cancel = cancel
	for i := range workers {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer conn.Close()
			for range maxPerWorker {
				if ctx.Err() != nil {
					return
				}
				id := w.next.Add(1)
				start := time.Now()
				sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
				_, err := conn.ExecContext(sctx, "INSERT INTO "+table+" (id, worker) VALUES (?, ?)", id, i)
				scancel()
				end := time.Now()
				w.mu.Lock()
				if err == nil {
					w.acks = append(w.acks, ack{id: id, start: start, end: end})
				} else if ctx.Err() == nil {
					w.errs = append(w.errs, clientErr{worker: i, at: end, took: end.Sub(start), err: err})
					w.perWkr[i]++
				}
				w.mu.Unlock()
				if err != nil && ctx.Err() == nil && errCode(err) == 0 {
					return // the connection is unusable; counted above
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	go func() { w.wg.Wait(); close(w.stopped) }()
	return w
}

// stop ends the workload and waits for the workers.
func (w *workload) stop() {
	w.cancel()
	<-w.stopped
}

// acked returns the number of acknowledged inserts so far.
func (w *workload) acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

// waitAcks waits until n more inserts were acknowledged, or fails.
func (w *workload) waitAcks(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	want := w.acked() + n
	deadline := time.Now().Add(timeout)
	for w.acked() < want {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d inserts acknowledged after %v; errors: %v", w.acked(), want, timeout, w.errors())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// firstAckAfter returns the end of the first acknowledged insert that
// ended after t0, or the zero time.
func (w *workload) firstAckAfter(t0 time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for _, a := range w.acks {
		if a.end.After(t0) && (first.IsZero() || a.end.Before(first)) {
			first = a.end
		}
	}
	return first
}

func (w *workload) errors() []clientErr {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]clientErr(nil), w.errs...)
}

// checkErrors fails the test unless every client error is a MySQL error
// with one of the allowed codes, answered without a hang, and no worker
// saw more than maxPerWorker errors.
func (w *workload) checkErrors(t testing.TB, maxPerWorker int, allowed ...uint16) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.errs {
		code := errCode(e.err)
		ok := false
		for _, a := range allowed {
			ok = ok || code == a
		}
		t.Logf("worker %d: error after %v: %v", e.worker, e.took.Round(time.Millisecond), e.err)
		if !ok {
			t.Errorf("worker %d: unexpected error %v (want MySQL errors %v)", e.worker, e.err, allowed)
		}
		if e.took > 12*time.Second {
			t.Errorf("worker %d: the error took %v to arrive (a hang)", e.worker, e.took)
		}
	}
	for i, n := range w.perWkr {
		if n > maxPerWorker {
			t.Errorf("worker %d saw %d errors; want at most %d", i, n, maxPerWorker)
		}
	}
}

// checkNoLoss fails the test unless every acknowledged id is on node n.
func (w *workload) checkNoLoss(t testing.TB, n testpair.Node) {
	t.Helper()
	db := nodeDB(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT id FROM "+testpair.AppDB+"."+w.table)
	if err != nil {
		t.Fatalf("reading %s on node %s: %v", w.table, n, err)
	}
	defer rows.Close()
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		have[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var lost []int64
	for _, a := range w.acks {
		if !have[a.id] {
			lost = append(lost, a.id)
		}
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i] < lost[j] })
	t.Logf("%d inserts acknowledged, %d rows on node %s, %d acknowledged rows missing", len(w.acks), len(have), n, len(lost))
	if len(lost) > 0 {
		t.Errorf("acknowledged writes lost on node %s: %d, e.g. %v", n, len(lost), lost[:min(len(lost), 10)])
	}
}

// ---------------------------------------------------------------- helpers for scenarios

// checkOneWriter fails the test if a status snapshot shows two nodes whose
// last check succeeded and that are both writable.
func checkOneWriter(t testing.TB, s failover.Status) {
	t.Helper()
	var writable []string
	for _, n := range s.Nodes {
		if n.LastError == "" && !n.LastGoodCheck.IsZero() && !n.ReadOnly {
			writable = append(writable, n.Name)
		}
	}
	if len(writable) > 1 {
		t.Errorf("the monitor saw two writable nodes %v: %s", writable, describe(s))
	}
}

// waitReadOnly waits until node n reports read_only=ON directly.
func waitReadOnly(t testing.TB, n testpair.Node, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ro, err := readOnly(t, n)
		if err == nil && ro {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("node %s not read_only after %v (read_only=%v, err=%v)", n, timeout, ro, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killAndFailOver kills node a with tandem routing to it (no load) and
// waits until b took over.
func killAndFailOver(t *testing.T, tn *tandem) {
	t.Helper()
	db := tn.client(t)
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS fo_marker (id INT PRIMARY KEY, v VARCHAR(32))")
	mustExec(t, db, "REPLACE INTO fo_marker VALUES (1, 'before')")
	testpair.Kill(t, testpair.A)
	tn.waitActive(t, 15*time.Second, "b", 2)
	if got := port(t, db); got != testpair.Port(testpair.B) {
		t.Fatalf("after the failover tandem serves from port %d, want node b's", got)
	}
}

// ---------------------------------------------------------------- scenarios

// TestKillActiveUnderLoad: SIGKILL of the active under a write workload.
// Traffic moves to b; no acknowledged write is lost (semi-sync); each
// worker sees at most the one error of its statement in flight.
func TestKillActiveUnderLoad(t *testing.T) {
	tn := setup(t)
	db := tn.client(t)
	db.SetMaxOpenConns(8)
	const workers = 4
	w := startWorkload(t, db, "fo_kill", workers, 20000, 40*time.Second)
	defer w.stop()
	w.waitAcks(t, 200, 10*time.Second)

	t0 := time.Now()
	testpair.Kill(t, testpair.A)
	t1 := time.Now()
	s := tn.waitActive(t, 10*time.Second, "b", 2)
	w.waitAcks(t, 200, 10*time.Second)
	first := w.firstAckAfter(t1)
	took := first.Sub(t0)
	var firstErr time.Time
	for _, e := range w.errors() {
		if firstErr.IsZero() || e.at.Before(firstErr) {
			firstErr = e.at
		}
	}
	if !firstErr.IsZero() {
		t.Logf("kill -> first successful write through tandem: %v (pair.sh kill took %v; first client error %v after the kill started)",
			took.Round(time.Millisecond), t1.Sub(t0).Round(time.Millisecond), firstErr.Sub(t0).Round(time.Millisecond))
	} else {
		t.Logf("kill -> first successful write through tandem: %v (pair.sh kill took %v; no client error)", took.Round(time.Millisecond), t1.Sub(t0).Round(time.Millisecond))
	}
	if first.IsZero() || took > 10*time.Second {
		t.Errorf("first write after the kill took %v; want under 10s", took)
	}
	if e, ok := tn.events.find(failover.EventFailoverFinished); ok {
		t.Logf("failover_finished: %v after detection; %s", e.Duration.Round(time.Millisecond), e.Reason)
	}
	w.stop()

	if ro, err := readOnly(t, testpair.B); err != nil || ro {
		t.Errorf("node b read_only=%v (%v); want writable", ro, err)
	}
	if n := nodeStatus(s, "b"); n.Role != "active" {
		t.Errorf("node b role %q", n.Role)
	}
	w.checkErrors(t, 1, 1317, 1213, 1105)
	w.checkNoLoss(t, testpair.B)
	t.Logf("%d inserts acknowledged, %d errors", w.acked(), len(w.errors()))
}

// TestStopActive: SIGSTOP of the active (a hung server). Traffic moves to b;
// when a resumes it is fenced and stays passive; the monitor never sees two
// writable nodes.
func TestStopActive(t *testing.T) {
	tn := setup(t)
	db := tn.client(t)
	db.SetMaxOpenConns(8)
	w := startWorkload(t, db, "fo_stop", 4, 20000, 40*time.Second)
	defer w.stop()
	w.waitAcks(t, 200, 10*time.Second)

	t0 := time.Now()
	testpair.Stop(t, testpair.A)
	t1 := time.Now()
	contDone := false
	defer func() {
		if !contDone {
			testpair.Cont(t, testpair.A)
		}
	}()
	tn.waitActive(t, 10*time.Second, "b", 2)
	w.waitAcks(t, 200, 10*time.Second)
	first := w.firstAckAfter(t1)
	took := first.Sub(t0)
	t.Logf("SIGSTOP -> first successful write through tandem: %v (pair.sh stop took %v)", took.Round(time.Millisecond), t1.Sub(t0).Round(time.Millisecond))
	if first.IsZero() || took > 10*time.Second {
		t.Errorf("first write after SIGSTOP took %v; want under 10s", took)
	}
	if took > 3*time.Second {
		t.Logf("note: above the 3 s goal")
	}
	if e, ok := tn.events.find(failover.EventFailoverFinished); ok {
		t.Logf("failover_finished: took %v after detection", e.Duration.Round(time.Millisecond))
	}
	w.stop()
	w.checkErrors(t, 1, 1317, 1213, 1105)
	w.checkNoLoss(t, testpair.B)

	// Resume a: it comes back writable (it was the active) and must be
	// fenced, and stay passive.
	testpair.Cont(t, testpair.A)
	contDone = true
	fenced := waitReadOnly(t, testpair.A, 5*time.Second)
	t.Logf("node a fenced %v after SIGCONT", fenced.Round(time.Millisecond))
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		s := tn.m.Status()
		checkOneWriter(t, s)
		if s.Decision.Active != "b" || s.Decision.Epoch != 2 {
			t.Fatalf("after a resumed: %s", describe(s))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ro, err := readOnly(t, testpair.A); err != nil || !ro {
		t.Errorf("node a read_only=%v (%v) after it resumed; want fenced", ro, err)
	}
	if ro, err := readOnly(t, testpair.B); err != nil || ro {
		t.Errorf("node b read_only=%v (%v); want writable", ro, err)
	}
	s := tn.m.Status()
	if why := nodeStatus(s, "a").ExcludedWhy; why != "" {
		// Statements a had received before it froze commit when it
		// resumes, after b took over: real errant transactions.
		t.Logf("node a excluded after resuming (expected when writes were in flight): %s", why)
	}
	if got := port(t, db); got != testpair.Port(testpair.B) {
		t.Errorf("traffic on port %d after a resumed; want node b's", got)
	}
}

// TestKillPassive: clients see nothing when the passive dies.
func TestKillPassive(t *testing.T) {
	tn := setup(t)
	db := tn.client(t)
	db.SetMaxOpenConns(8)
	w := startWorkload(t, db, "fo_passive", 3, 2000, 30*time.Second)
	defer w.stop()
	w.waitAcks(t, 100, 10*time.Second)
	testpair.Kill(t, testpair.B)
	tn.waitStatus(t, 5*time.Second, "node b seen down", func(s failover.Status) bool { return !nodeStatus(s, "b").Healthy })
	// Semi-sync makes the first commit after the peer died wait for
	// rpl_semi_sync_master_timeout (2 s) before it falls back.
	w.waitAcks(t, 300, 15*time.Second)
	w.stop()
	w.checkErrors(t, 0)
	s := tn.m.Status()
	if s.State != "active" || s.Decision.Active != "a" || s.Decision.Epoch != 1 {
		t.Errorf("after the passive died: %s", describe(s))
	}
	if _, ok := tn.events.find(failover.EventFailoverStarted); ok {
		t.Errorf("a failover started: %s", describe(s))
	}
	t.Logf("%d inserts acknowledged, %d errors", w.acked(), len(w.errors()))
}

// TestRefusePromotionWhenSQLThreadStopped: with b's SQL thread stopped,
// tandem must not promote b when a dies; clients get a clear error at once,
// and traffic resumes on a when it is back.
func TestRefusePromotionWhenSQLThreadStopped(t *testing.T) {
	tn := setup(t)
	db := tn.client(t)
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS fo_refuse (id INT PRIMARY KEY)")
	mustExec(t, db, "DELETE FROM fo_refuse")
	mustExec(t, nodeDB(t, testpair.B), "STOP SLAVE SQL_THREAD")
	tn.waitStatus(t, 5*time.Second, "b's SQL thread seen stopped", func(s failover.Status) bool {
		n := nodeStatus(s, "b")
		return !n.SQLRunning && n.LastError == "" && n.Healthy
	})
	testpair.Kill(t, testpair.A)
	s := tn.waitStatus(t, 10*time.Second, "down", func(s failover.Status) bool { return s.State == "down" })
	e, ok := tn.events.await(failover.EventFailoverRefused, 5*time.Second)
	if !ok || !strings.Contains(e.Reason, "SQL thread") {
		t.Fatalf("want a failover_refused event naming the SQL thread; status: %s", describe(s))
	}
	t.Logf("refused: %s", e.Reason)
	if s.Decision.Active != "a" || s.Decision.Epoch != 1 {
		t.Fatalf("decision changed: %s", describe(s))
	}
	if ro, err := readOnly(t, testpair.B); err != nil || !ro {
		t.Errorf("node b read_only=%v (%v); it must not have been promoted", ro, err)
	}
	// A client gets error 1105 with the reason at once, on an open
	// session and on a new one.
	for _, fresh := range []bool{false, true} {
		cdb := db
		if fresh {
			cdb = tn.client(t)
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_, err := cdb.ExecContext(ctx, "INSERT INTO fo_refuse VALUES (1)")
		cancel()
		took := time.Since(start)
		// The open session's node connection died with a: its first
		// statement may get 1317, the next the refusal.
		if !fresh && errCode(err) == 1317 {
			start = time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			_, err = cdb.ExecContext(ctx, "INSERT INTO fo_refuse VALUES (1)")
			cancel()
			took = time.Since(start)
		}
		t.Logf("fresh=%v: %v after %v", fresh, err, took.Round(time.Millisecond))
		if err == nil || !strings.Contains(err.Error(), "SQL thread") || took > time.Second {
			t.Errorf("fresh session=%v: got %v after %v; want error 1105 naming the SQL thread within 1s", fresh, err, took)
		} else if code := errCode(err); code != 1105 && !fresh {
			t.Errorf("open session: error %d; want 1105", code)
		}
	}
	// a comes back: traffic resumes there by itself.
	start := time.Now()
	testpair.Start(t, testpair.A)
	tn.waitActive(t, 10*time.Second, "a", 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := db.ExecContext(ctx, "INSERT INTO fo_refuse VALUES (2)")
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write through tandem 10s after a came back: %v; %s", err, describe(tn.m.Status()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("traffic back on a %v after starting it", time.Since(start).Round(time.Millisecond))
	if got := port(t, db); got != testpair.Port(testpair.A) {
		t.Errorf("traffic on port %d; want node a's", got)
	}
	if ro, err := readOnly(t, testpair.B); err != nil || !ro {
		t.Errorf("node b read_only=%v (%v); want passive", ro, err)
	}
}

// TestKilledActiveRejoins: the old active comes back (read-only, as a
// semi-sync replica: its configuration says so, and crash recovery drops
// any commit no replica acknowledged); it stays passive, replication both
// ways is restored once it has caught up, and it is synced again (semi-sync
// back on the active).
func TestKilledActiveRejoins(t *testing.T) {
	tn := setup(t)
	killAndFailOver(t, tn)
	s := tn.m.Status()
	if !s.Decision.PendingRejoin {
		t.Fatalf("after the failover: %s; want a pending rejoin", describe(s))
	}
	db := tn.client(t)
	mustExec(t, db, "REPLACE INTO fo_marker VALUES (2, 'on b while a was down')")

	testpair.Start(t, testpair.A)
	fenced := waitReadOnly(t, testpair.A, 5*time.Second)
	t.Logf("node a read-only %v after it accepted connections", fenced.Round(time.Millisecond))
	s = tn.waitStatus(t, 20*time.Second, "rejoined and synced", func(s failover.Status) bool {
		return !s.Decision.PendingRejoin && s.Decision.Unsynced["a"] == ""
	})
	if s.Decision.Active != "b" || s.Decision.Epoch != 2 {
		t.Fatalf("after the rejoin: %s", describe(s))
	}
	if why := nodeStatus(s, "a").ExcludedWhy; why != "" {
		t.Fatalf("node a excluded: %s", why)
	}
	// Replication runs both ways again, with semi-sync on the active.
	bdb := nodeDB(t, testpair.B)
	var ioRun, sqlRun string
	deadline := time.Now().Add(10 * time.Second)
	for {
		ioRun, sqlRun = slaveThreads(t, bdb)
		if ioRun == "Yes" && sqlRun == "Yes" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node b replicates from a: io=%s sql=%s", ioRun, sqlRun)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var semi int
	if err := bdb.QueryRow("SELECT @@GLOBAL.rpl_semi_sync_master_enabled").Scan(&semi); err != nil || semi != 1 {
		t.Errorf("rpl_semi_sync_master_enabled on b = %d (%v); want 1", semi, err)
	}
	// b's write reached a.
	adb := nodeDB(t, testpair.A)
	deadline = time.Now().Add(10 * time.Second)
	for {
		var v string
		err := adb.QueryRow("SELECT v FROM app.fo_marker WHERE id = 2").Scan(&v)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b's write not on a: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ro, err := readOnly(t, testpair.A); err != nil || !ro {
		t.Errorf("node a read_only=%v (%v); want fenced", ro, err)
	}
	if e, ok := tn.events.find(failover.EventFenced); ok {
		t.Logf("fenced: %s %s", e.Node, e.Reason)
	}
}

func slaveThreads(t testing.TB, db *sql.DB) (io, sqlRun string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return "", ""
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	for i, c := range cols {
		switch c {
		case "Slave_IO_Running":
			io = vals[i].String
		case "Slave_SQL_Running":
			sqlRun = vals[i].String
		}
	}
	return io, sqlRun
}

// TestRestartKeepsDecision: a tandem restarted after a failover keeps b as
// the active node and never flips back to a.
func TestRestartKeepsDecision(t *testing.T) {
	tn := setup(t)
	killAndFailOver(t, tn)
	tn.stop()

	tn2 := startTandem(t, tn.store)
	if d := tn2.m.Decision(); d.Active != "b" || d.Epoch != 2 {
		t.Fatalf("restarted tandem decided %+v; want b at epoch 2", d)
	}
	db := tn2.client(t)
	if got := port(t, db); got != testpair.Port(testpair.B) {
		t.Fatalf("restarted tandem serves from port %d; want node b's", got)
	}
	mustExec(t, db, "REPLACE INTO fo_marker VALUES (3, 'after restart')")
	testpair.Start(t, testpair.A) // read-only by its configuration; tandem keeps it so
	waitReadOnly(t, testpair.A, 5*time.Second)
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		s := tn2.m.Status()
		if s.Decision.Active != "b" || s.Decision.Epoch != 2 || s.State != "active" {
			t.Fatalf("restarted tandem: %s", describe(s))
		}
		checkOneWriter(t, s)
		time.Sleep(50 * time.Millisecond)
	}
	if got := port(t, db); got != testpair.Port(testpair.B) {
		t.Fatalf("serving from port %d after a came back; want node b's", got)
	}
	tn2.waitStatus(t, 20*time.Second, "rejoined", func(s failover.Status) bool { return !s.Decision.PendingRejoin })
}

// TestIdlePreparedConnectionsSurvive: idle pooled connections holding
// server-side prepared statements go on working after a failover, with no
// error and no new dial.
func TestIdlePreparedConnectionsSurvive(t *testing.T) {
	tn := setup(t)
	c := tn.clientConfig()
	c.InterpolateParams = false // real COM_STMT_PREPARE / EXECUTE
	var dials atomic.Int32
	c.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	const n = 4
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS fo_idle (id INT PRIMARY KEY, conn INT NOT NULL)")
	mustExec(t, db, "DELETE FROM fo_idle")

	// Each connection prepares its own statements; a pool-level
	// statement is prepared on the connections as they are used.
	poolStmt, err := db.PrepareContext(ctx, "SELECT COUNT(*) FROM fo_idle WHERE conn = ?")
	if err != nil {
		t.Fatal(err)
	}
	defer poolStmt.Close()
	conns := make([]*sql.Conn, n)
	ins := make([]*sql.Stmt, n)
	for i := range conns {
		if conns[i], err = db.Conn(ctx); err != nil {
			t.Fatal(err)
		}
		if ins[i], err = conns[i].PrepareContext(ctx, "INSERT INTO fo_idle VALUES (?, ?)"); err != nil {
			t.Fatal(err)
		}
		if _, err := ins[i].ExecContext(ctx, i, i); err != nil {
			t.Fatal(err)
		}
		var cnt int
		if err := conns[i].QueryRowContext(ctx, "SELECT COUNT(*) FROM fo_idle").Scan(&cnt); err != nil {
			t.Fatal(err)
		}
	}
	before := dials.Load()
	if before != n {
		t.Fatalf("%d dials for %d connections", before, n)
	}

	testpair.Kill(t, testpair.A)
	tn.waitActive(t, 15*time.Second, "b", 2)

	for i := range conns {
		if _, err := ins[i].ExecContext(ctx, 100+i, i); err != nil {
			t.Errorf("connection %d: prepared INSERT after the failover: %v", i, err)
		}
		var p int
		if err := conns[i].QueryRowContext(ctx, "SELECT @@port").Scan(&p); err != nil || p != testpair.Port(testpair.B) {
			t.Errorf("connection %d: on port %d (%v); want node b's", i, p, err)
		}
		ins[i].Close()
		conns[i].Close()
	}
	for i := range n {
		var cnt int
		if err := poolStmt.QueryRowContext(ctx, i).Scan(&cnt); err != nil || cnt != 2 {
			t.Errorf("pool statement for connection %d: count %d, %v; want 2", i, cnt, err)
		}
	}
	if got := dials.Load(); got != before {
		t.Errorf("the driver dialed %d more times; the failover must be invisible to idle connections", got-before)
	}
}

// TestErrantTransactionsExclude: a node that comes back holding a
// transaction of its own beyond the promotion point is excluded, stays
// fenced and is never promoted, even when the active dies.
func TestErrantTransactionsExclude(t *testing.T) {
	tn := setup(t)
	killAndFailOver(t, tn)
	promotedAt := tn.m.Decision().PromotedAt
	testpair.Start(t, testpair.A)
	// The admin user bypasses read_only: a write of a's own, which b never
	// had when it was promoted.
	adb := nodeDB(t, testpair.A)
	// A fresh id each run: the pair, and this table, outlive a test run.
	mustExec(t, adb, fmt.Sprintf("INSERT INTO app.fo_marker VALUES (%d, 'errant on a')", 1000+time.Now().UnixNano()%1000000000))
	var pos string
	_ = adb.QueryRow("SELECT @@GLOBAL.gtid_current_pos").Scan(&pos)
	t.Logf("promoted at %s; a is now at %s", promotedAt, pos)

	s := tn.waitStatus(t, 10*time.Second, "a excluded", func(s failover.Status) bool { return nodeStatus(s, "a").ExcludedWhy != "" })
	why := nodeStatus(s, "a").ExcludedWhy
	t.Logf("excluded: %s", why)
	if !strings.Contains(why, "errant") {
		t.Errorf("exclusion reason %q does not say errant", why)
	}
	// Clearing the exclusion of a node still holding its errant
	// transaction is refused: it is checked again at once.
	if err := tn.m.ClearExclusion(context.Background(), "a"); err == nil || !strings.Contains(err.Error(), "still holds") {
		t.Errorf("clearing the exclusion of a still errant node: %v", err)
	}
	if _, ok := tn.events.await(failover.EventErrant, 5*time.Second); !ok {
		t.Errorf("no %s event: %s", failover.EventErrant, describe(s))
	}
	if d, _, err := tn.store.Load(); err != nil || d.Excluded["a"] == "" {
		t.Errorf("the exclusion is not saved: %+v, %v", d, err)
	}
	waitReadOnly(t, testpair.A, 5*time.Second)

	// b dies: tandem must go down with a clear reason, not promote a.
	db := tn.client(t)
	if got := port(t, db); got != testpair.Port(testpair.B) {
		t.Fatalf("serving from port %d; want node b's", got)
	}
	testpair.Kill(t, testpair.B)
	s = tn.waitStatus(t, 10*time.Second, "down", func(s failover.Status) bool { return s.State == "down" })
	if s.Decision.Active != "b" || s.Decision.Epoch != 2 {
		t.Fatalf("decision changed: %s", describe(s))
	}
	e, ok := tn.events.await(failover.EventFailoverRefused, 5*time.Second)
	if !ok || !strings.Contains(e.Reason, "excluded") {
		t.Fatalf("want a failover_refused event saying a is excluded: %s", describe(s))
	}
	t.Logf("refused: %s", e.Reason)
	end := time.Now().Add(3 * time.Second) // retries must keep refusing
	for time.Now().Before(end) {
		if s := tn.m.Status(); s.Decision.Active != "b" {
			t.Fatalf("a was promoted: %s", describe(s))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ro, err := readOnly(t, testpair.A); err != nil || !ro {
		t.Errorf("node a read_only=%v (%v); want fenced", ro, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	_, err := db.ExecContext(ctx, "SELECT 1")
	if errCode(err) == 1317 { // the statement's node connection died with b
		start = time.Now()
		_, err = db.ExecContext(ctx, "SELECT 1")
	}
	if errCode(err) != 1105 || !strings.Contains(err.Error(), "excluded") || time.Since(start) > time.Second {
		t.Errorf("client got %v after %v; want error 1105 saying a is excluded, at once", err, time.Since(start))
	}
}
