package failover

// Unit tests of the state machine: observations are fed to observe by hand
// and a fake Controller records what the data path was asked. Two kinds of
// node: fakeNode (sequences_test.go drives whole failovers, switchovers and
// rollbacks through it, in order) and real connection pools pointed at a
// closed port, where every statement fails at once (decisions taken before
// or instead of touching a node). The integration tests run the same
// sequences on the real pair.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/tandemdb/tandem/replication"
)

// fakeCtl records the Controller calls in order, into log when set.
type fakeCtl struct {
	mu    sync.Mutex
	calls []string
	log   *opLog
	busy  atomic.Int32 // sessions Activity reports busy
}

func (c *fakeCtl) add(s string) {
	c.mu.Lock()
	c.calls = append(c.calls, s)
	c.mu.Unlock()
	if c.log != nil {
		c.log.add("ctl " + s)
	}
}

func (c *fakeCtl) Route(node string) error    { c.add("route " + node); return nil }
func (c *fakeCtl) Hold()                      { c.add("hold") }
func (c *fakeCtl) Resume()                    { c.add("resume") }
func (c *fakeCtl) Down(reason string)         { c.add("down " + reason) }
func (c *fakeCtl) Cut(node string)            { c.add("cut " + node) }
func (c *fakeCtl) Activity() (busy, inTx int) { return int(c.busy.Load()), 0 }

func (c *fakeCtl) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

// opLog is one ordered log of what the state machine did, to nodes, to the
// store and to the data path.
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) add(s string) { l.mu.Lock(); l.ops = append(l.ops, s); l.mu.Unlock() }

func (l *opLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ops...)
}

func (l *opLog) reset() { l.mu.Lock(); l.ops = nil; l.mu.Unlock() }

// memStore is a Store in memory that counts saves.
type memStore struct {
	mu    sync.Mutex
	d     Decision
	ok    bool
	saves int
	err   error
	log   *opLog
	// loadErr, when set, is what the next Load fails with.
	loadErr error
}

func (s *memStore) Load() (Decision, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loadErr != nil {
		err := s.loadErr
		s.loadErr = nil // fails once
		return Decision{}, false, err
	}
	return s.d, s.ok, nil
}
func (s *memStore) Save(d Decision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.d, s.ok = d, true
	s.saves++
	if s.log != nil {
		s.log.add(fmt.Sprintf("save active=%s epoch=%d promoting=%q unsynced=%v", d.Active, d.Epoch, d.Promoting, slices.Sorted(maps.Keys(d.Unsynced))))
	}
	return nil
}

func (s *memStore) get() Decision { s.mu.Lock(); defer s.mu.Unlock(); return s.d }

// fakeNode is NodeOps on no server: Read returns facts, every statement is
// logged as "NODE OP" and fails with errs[OP] when set.
type fakeNode struct {
	name string
	log  *opLog

	mu       sync.Mutex
	facts    replication.Facts
	errs     map[string]error
	recorded *Decision
	// skipBudget is the time SkipLostSequence was given (its context's
	// deadline), 0 without one.
	skipBudget time.Duration
}

func (f *fakeNode) do(op string) error {
	f.log.add(f.name + " " + op)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs[strings.Fields(op)[0]]; err != nil {
		return err
	}
	return nil
}

func (f *fakeNode) fail(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errs == nil {
		f.errs = map[string]error{}
	}
	f.errs[op] = err
}

func (f *fakeNode) Read(context.Context) (replication.Facts, error) {
	f.mu.Lock()
	err := f.errs["read"]
	facts := f.facts
	f.mu.Unlock()
	return facts, err
}

func (f *fakeNode) SetReadOnly(_ context.Context, _ replication.Flavor, on bool) error {
	return f.do(fmt.Sprintf("read_only %v", on))
}

func (f *fakeNode) KillClients(context.Context, string) (int, error) { return 0, f.do("kill_clients") }

func (f *fakeNode) StopReceiving(context.Context, replication.Flavor) error {
	return f.do("stop_receiving")
}

func (f *fakeNode) StopApplier(context.Context, replication.Flavor) error {
	return f.do("stop_applier")
}

func (f *fakeNode) StartReplica(_ context.Context, _ replication.Flavor, restartIO bool) error {
	if restartIO {
		return f.do("start_replica restart_io")
	}
	return f.do("start_replica")
}

// Resume records "resume" and, as START SLAVE does, counts a replica
// start; a lost own tail is reported, not repaired.
func (f *fakeNode) Resume(context.Context) (string, string, error) {
	f.mu.Lock()
	l := f.facts.LostOwnTail()
	f.facts.ReplicaStarts++
	f.mu.Unlock()
	if l != nil {
		return l.String(), "", f.do("resume lost_tail")
	}
	return "", "", f.do("resume")
}

func (f *fakeNode) UndoResume(context.Context, string) (string, error) {
	return "", f.do("undo_resume")
}

func (f *fakeNode) SkipLostSequence(ctx context.Context, _, _ string, _ uint64, _ time.Time) (string, error) {
	if dl, ok := ctx.Deadline(); ok {
		f.mu.Lock()
		f.skipBudget = time.Until(dl)
		f.mu.Unlock()
	}
	return "0-1-999", f.do("skip_lost_sequence")
}

func (f *fakeNode) SetSemiSyncSource(_ context.Context, on bool) (bool, error) {
	return true, f.do(fmt.Sprintf("semi_sync %v", on))
}

func (f *fakeNode) ConfigureSemiSyncSource(context.Context, time.Duration) error {
	return f.do("configure_semi_sync")
}

func (f *fakeNode) WaitExecuted(context.Context, replication.Flavor, mysql.GTIDSet, time.Duration) error {
	return f.do("wait_executed")
}

func (f *fakeNode) WriteHeartbeat(context.Context, string, string, uint64, time.Time) error {
	return nil
}

func (f *fakeNode) ReadHeartbeat(context.Context, string, string) (time.Time, error) {
	return time.Time{}, errors.New("no heartbeat")
}

func (f *fakeNode) WriteDecision(_ context.Context, _ string, d Decision) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recorded = &d
	return nil
}

func (f *fakeNode) ReadDecision(context.Context, string) (Decision, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["read_decision"]; err != nil {
		return Decision{}, false, err
	}
	if f.recorded == nil {
		return Decision{}, false, nil
	}
	return *f.recorded, true, nil
}

func (f *fakeNode) Close() error { return nil }

// testRig is a Manager over fake nodes a and b.
type testRig struct {
	m     *Manager
	ctl   *fakeCtl
	store *memStore
	log   *opLog
	a, b  *fakeNode
}

// newRig builds a Manager whose store holds d (none when d.Active is "").
func newRig(t *testing.T, d Decision) *testRig { return newRigWith(t, d, nil) }

// newRigWith is newRig for one of several tandems when cl is not nil.
func newRigWith(t *testing.T, d Decision, cl Cluster) *testRig {
	t.Helper()
	log := &opLog{}
	r := &testRig{log: log, ctl: &fakeCtl{log: log}, store: &memStore{log: log},
		a: &fakeNode{name: "a", log: log}, b: &fakeNode{name: "b", log: log}}
	if d.Active != "" {
		r.store.d, r.store.ok = d, true
	}
	r.start(t, cl)
	return r
}

// start makes a new Manager on the rig's nodes and store, as a restart of
// tandem would.
func (r *testRig) start(t *testing.T, cl Cluster) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.AdminUser, cfg.Cluster = "tandem", cl
	m, err := New(cfg, []NodeConfig{{Name: "a", Ops: r.a}, {Name: "b", Ops: r.b}}, "a", r.ctl, r.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
}

// newTestManager builds a Manager with a active at epoch 1 (unless store
// holds a decision) for nodes a and b on closed ports: every statement
// fails at once.
func newTestManager(t *testing.T, store Store) (*Manager, *fakeCtl) {
	t.Helper()
	if ms, ok := store.(*memStore); ok && !ms.ok {
		ms.d, ms.ok = Decision{Active: "a", Epoch: 1}, true
	} else if _, ok, _ := store.Load(); !ok {
		if err := store.Save(Decision{Active: "a", Epoch: 1}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultConfig()
	cfg.AdminUser = "tandem"
	cfg.CheckTimeout, cfg.FenceTimeout, cfg.CatchupTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	ctl := &fakeCtl{}
	m, err := New(cfg, []NodeConfig{{Name: "a", Address: closedAddr(t)}, {Name: "b", Address: closedAddr(t)}}, "a", ctl, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range m.nodes {
			n.ops.Close()
		}
	})
	return m, ctl
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func gtids(t *testing.T, s string) replication.GTIDValue {
	t.Helper()
	set, err := replication.ParseGTIDs(replication.MariaDB, s)
	if err != nil {
		t.Fatal(err)
	}
	return replication.GTIDValue{Raw: s, Set: set}
}

// writer and passive are the facts of a healthy pair's two nodes.
func writer(t *testing.T, serverID uint32, pos string) replication.Facts {
	return replication.Facts{Flavor: replication.MariaDB, Version: "10.11.6-MariaDB", ServerID: serverID,
		CurrentPos: gtids(t, pos), BinlogPos: gtids(t, pos),
		SemiSync: replication.SemiSync{Known: true, SourceEnabled: true, SourceOn: true, SourceTimeout: 30 * time.Second,
			WaitPoint: "AFTER_SYNC", WaitNoReplica: true, Clients: 1, ReplicaEnabled: true},
		Replica: replication.Replica{Configured: true, IORunning: replication.IOYes, SQLRunning: true}}
}

func passive(t *testing.T, serverID uint32, pos string) replication.Facts {
	f := writer(t, serverID, pos)
	f.ReadOnly = true
	f.Replica.GTIDIOPos = gtids(t, pos)
	return f
}

// bg is the context the tests run the state machine with.
var bg = context.Background()

func good(m *Manager, node string, f replication.Facts) {
	m.observe(bg, Observation{Node: node, Time: time.Now(), Facts: f})
}

// bad is a check that timed out: it proves nothing.
func bad(m *Manager, node string) {
	m.observe(bg, Observation{Node: node, Time: time.Now(), Err: errors.New("i/o timeout")})
}

// refused is a check whose connection the node's host refused.
func refused(m *Manager, node string) {
	err := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	m.observe(bg, Observation{Node: node, Time: time.Now(), Err: err})
}

func events(m *Manager, typ EventType) []Event {
	var out []Event
	for _, e := range m.Status().Events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// healthyPair makes both nodes healthy: a the writable active, b a
// replicating read-only passive.
func healthyPair(t *testing.T, m *Manager) {
	t.Helper()
	for range m.cfg.RecoverAfter {
		good(m, "a", writer(t, 1, "0-1-10"))
		good(m, "b", passive(t, 2, "0-1-10"))
	}
	if !m.node("a").healthy || !m.node("b").healthy || m.state != StateActive {
		t.Fatalf("pair not healthy: a=%v b=%v state=%v", m.node("a").healthy, m.node("b").healthy, m.state)
	}
}

func TestHealthCountsConsecutiveChecks(t *testing.T) {
	m, ctl := newTestManager(t, &memStore{})
	b := m.node("b")
	good(m, "b", passive(t, 2, "0-1-10"))
	if b.healthy {
		t.Fatal("healthy after one good check; RecoverAfter is 2")
	}
	good(m, "b", passive(t, 2, "0-1-10"))
	if !b.healthy || len(events(m, EventNodeUp)) != 1 {
		t.Fatalf("after two good checks: healthy=%v node_up events=%d", b.healthy, len(events(m, EventNodeUp)))
	}
	for i := 1; i < m.cfg.FailAfter; i++ {
		bad(m, "b")
		if !b.healthy {
			t.Fatalf("unhealthy after %d failed checks; FailAfter is %d", i, m.cfg.FailAfter)
		}
	}
	good(m, "b", passive(t, 2, "0-1-10")) // a good check resets the count
	for range m.cfg.FailAfter {
		bad(m, "b")
	}
	if b.healthy || len(events(m, EventNodeDown)) != 1 {
		t.Fatalf("after %d failed checks: healthy=%v node_down events=%d", m.cfg.FailAfter, b.healthy, len(events(m, EventNodeDown)))
	}
	// The passive failing moves no traffic.
	if got := ctl.list(); len(got) != 0 {
		t.Fatalf("controller calls for a failed passive: %q", got)
	}
	if m.dec.Active != "a" || m.state != StateActive {
		t.Fatalf("decision %+v state %v", m.dec, m.state)
	}
}

func TestActiveFailsAfterFailAfterChecks(t *testing.T) {
	store := &memStore{}
	m, ctl := newTestManager(t, store)
	healthyPair(t, m)
	for range m.cfg.FailAfter - 1 {
		bad(m, "a")
	}
	if got := ctl.list(); len(got) != 0 {
		t.Fatalf("acted after %d failed checks: %q", m.cfg.FailAfter-1, got)
	}
	bad(m, "a")
	// The candidate is sound by its last check, so a failover starts:
	// traffic held, a's commands cut. Here b cannot be read (closed
	// port), so the promotion is refused: traffic goes down with the
	// reason, and nothing is saved.
	got := ctl.list()
	if len(got) < 3 || got[0] != "hold" || got[1] != "cut a" || !strings.HasPrefix(got[len(got)-1], "down ") {
		t.Fatalf("controller calls: %q; want hold, cut a, ..., down", got)
	}
	if last := got[len(got)-1]; !strings.Contains(last, "cannot read node b") {
		t.Fatalf("down reason %q does not say b could not be read", last)
	}
	if m.state != StateDown || m.dec.Active != "a" || m.dec.Epoch != 1 {
		t.Fatalf("state %v decision %+v; want down, a at epoch 1", m.state, m.dec)
	}
	if store.saves != 0 {
		t.Fatalf("%d saves; a promotion refused before its first step must save nothing", store.saves)
	}
	if len(events(m, EventFailoverStarted)) != 1 || len(events(m, EventFailoverRefused)) != 1 {
		t.Fatalf("events: %+v", m.Status().Events)
	}
}

func TestUnsafeToPromote(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(m *Manager, c *node)
		force bool
		want  string // "" for safe
	}{
		{"sound", func(*Manager, *node) {}, false, ""},
		{"unhealthy", func(_ *Manager, c *node) { c.healthy = false }, false, "unreachable"},
		{"last check failed", func(_ *Manager, c *node) { c.fails = 1 }, false, "unreachable"},
		{"SQL thread stopped", func(_ *Manager, c *node) { c.good.Facts.Replica.SQLRunning = false }, false, "SQL thread is stopped"},
		{"SQL thread error", func(_ *Manager, c *node) {
			c.good.Facts.Replica.SQLRunning = false
			c.good.Facts.Replica.LastSQLErrno, c.good.Facts.Replica.LastSQLError = 1062, "Duplicate entry"
		}, false, "error 1062"},
		{"lagging", func(_ *Manager, c *node) { c.good.Lag, c.good.LagKnown = 6*time.Second, true }, false, "lagged"},
		{"lag just under", func(_ *Manager, c *node) { c.good.Lag, c.good.LagKnown = 4*time.Second, true }, false, ""},
		{"heartbeats stopped, caught up", func(m *Manager, c *node) {
			// Nobody wrote heartbeats for a minute (no coordinator),
			// then the active died: b holds the active's last row.
			a := m.node("a")
			last := a.good.Time.Add(-time.Minute)
			a.good.Heartbeat = last
			c.good.Heartbeat, c.good.Lag, c.good.LagKnown = last, c.good.Time.Sub(last), true
		}, false, ""},
		{"heartbeats stopped, behind", func(m *Manager, c *node) {
			a := m.node("a")
			last := a.good.Time.Add(-time.Minute)
			a.good.Heartbeat = last
			seen := last.Add(-6 * time.Second)
			c.good.Heartbeat, c.good.Lag, c.good.LagKnown = seen, c.good.Time.Sub(seen), true
		}, false, "lagged"},
		{"heartbeats flowing, behind", func(m *Manager, c *node) {
			a := m.node("a")
			a.good.Heartbeat = a.good.Time
			seen := c.good.Time.Add(-6 * time.Second)
			c.good.Heartbeat, c.good.Lag, c.good.LagKnown = seen, 6*time.Second, true
		}, false, "lagged"},
		{"not a replica", func(_ *Manager, c *node) { c.good.Facts.Replica = replication.Replica{} }, false, ""},
		{"excluded", func(m *Manager, c *node) { m.dec.Excluded = map[string]string{"b": "errant transactions 0-2-5"} }, false, "excluded: errant"},
		{"maintenance", func(m *Manager, c *node) { m.dec.Maintenance = map[string]bool{"b": true} }, false, "maintenance"},
		{"forced past a stopped SQL thread", func(_ *Manager, c *node) { c.good.Facts.Replica.SQLRunning = false }, true, ""},
		{"forced, still not excluded", func(m *Manager, c *node) { m.dec.Excluded = map[string]string{"b": "errant"} }, true, "excluded"},
		{"forced, still not unreachable", func(_ *Manager, c *node) { c.healthy = false }, true, "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTestManager(t, &memStore{})
			healthyPair(t, m)
			c := m.node("b")
			tc.edit(m, c)
			got := m.unsafeToPromote(c, tc.force)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("unsafeToPromote = %q; want %q", got, tc.want)
			}
		})
	}
	m, _ := newTestManager(t, &memStore{})
	if got := m.unsafeToPromote(nil, false); got == "" {
		t.Fatal("no candidate: want a reason")
	}
}

func TestRefusedFailoverGoesDownThenRecovers(t *testing.T) {
	m, ctl := newTestManager(t, &memStore{})
	healthyPair(t, m)
	f := passive(t, 2, "0-1-10")
	f.Replica.SQLRunning = false
	good(m, "b", f)
	for range m.cfg.FailAfter {
		bad(m, "a")
	}
	got := ctl.list()
	if len(got) != 1 || !strings.HasPrefix(got[0], "down ") || !strings.Contains(got[0], "SQL thread") {
		t.Fatalf("controller calls %q; want one down naming the SQL thread, with no hold first", got)
	}
	if m.state != StateDown || len(events(m, EventFailoverRefused)) != 1 || len(events(m, EventNoWriter)) != 1 {
		t.Fatalf("state %v, events %+v", m.state, m.Status().Events)
	}
	m.publish()
	if s := m.Status(); s.State != "down" {
		t.Fatalf("status state %q; want down", s.State)
	}
	// Retries while down do not repeat the events.
	m.nextAttempt = time.Time{}
	good(m, "b", f)
	if n := len(events(m, EventFailoverRefused)); n != 1 {
		t.Fatalf("%d failover_refused events after a retry; want 1", n)
	}
	// a answers again: it is still the decided active, traffic goes back.
	good(m, "a", writer(t, 1, "0-1-10"))
	if m.state != StateDown {
		t.Fatal("back after one good check; RecoverAfter is 2")
	}
	good(m, "a", writer(t, 1, "0-1-10"))
	got = ctl.list()
	if got[len(got)-1] != "route a" || m.state != StateActive || len(events(m, EventRecovered)) != 1 {
		t.Fatalf("after a came back: calls %q state %v", got, m.state)
	}
	if m.dec.Active != "a" || m.dec.Epoch != 1 {
		t.Fatalf("decision %+v", m.dec)
	}
}

func TestErrantTransactionsExcludeNode(t *testing.T) {
	store := &memStore{d: Decision{Active: "b", Epoch: 2, PromotedAt: "0-1-100", PendingRejoin: true}, ok: true}
	m, ctl := newTestManager(t, store)
	if m.dec.Active != "b" || m.dec.Epoch != 2 {
		t.Fatalf("saved decision not loaded: %+v", m.dec)
	}
	for range m.cfg.RecoverAfter {
		good(m, "b", writer(t, 2, "0-2-130"))
	}
	// a applied b's writes since the promotion: clean.
	a := passive(t, 1, "0-2-130")
	a.Replica.IORunning = replication.IOConnecting // no rejoin attempt yet
	good(m, "a", a)
	if len(m.dec.Excluded) != 0 {
		t.Fatalf("clean node excluded: %v", m.dec.Excluded)
	}
	// a holds a transaction of its own beyond the promotion point.
	a = passive(t, 1, "0-1-101")
	a.Replica.IORunning = replication.IOConnecting
	good(m, "a", a)
	why := m.dec.Excluded["a"]
	if !strings.Contains(why, "0-1-101") || !strings.Contains(why, "0-1-100") {
		t.Fatalf("exclusion %q; want it to name the errant GTID and the promotion point", why)
	}
	if store.d.Excluded["a"] != why || len(events(m, EventErrant)) != 1 {
		t.Fatalf("exclusion not saved (%v) or no event", store.d.Excluded)
	}
	// Never promoted, not even forced, and b failing makes tandem go down.
	for range m.cfg.FailAfter {
		bad(m, "b")
	}
	calls := ctl.list()
	if m.state != StateDown || m.dec.Active != "b" || !strings.Contains(calls[len(calls)-1], "excluded") {
		t.Fatalf("b failed: state %v decision %+v calls %q", m.state, m.dec, calls)
	}
	if err := m.failover(bg, "operator", true); err == nil || !strings.Contains(err.Error(), "excluded") {
		t.Fatalf("forced failover to an excluded node: %v", err)
	}
}

func TestOwnBeyond(t *testing.T) {
	for _, tc := range []struct {
		set, point string
		server     uint32
		want       string
	}{
		{"0-1-101", "0-1-100", 1, "0-1-101"},
		{"0-1-100", "0-1-100", 1, ""},
		{"0-1-99", "0-1-100", 1, ""},
		{"0-2-150", "0-1-100", 1, ""}, // the last GTID is the active's
		{"0-1-5,1-1-3", "0-1-5", 1, "1-1-3"},
		{"0-1-5", "", 1, "0-1-5"},
	} {
		set := gtids(t, tc.set).Set
		point := gtids(t, tc.point).Set
		if got := ownBeyond(set, point, tc.server); got != tc.want {
			t.Errorf("ownBeyond(%s, %s, %d) = %q; want %q", tc.set, tc.point, tc.server, got, tc.want)
		}
	}
	// MySQL sets: set minus point.
	u := "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	set, _ := mysql.ParseMysqlGTIDSet(u + ":1-7")
	point, _ := mysql.ParseMysqlGTIDSet(u + ":1-5")
	if got := ownBeyond(set, point, 1); got != u+":6-7" {
		t.Errorf("MySQL: ownBeyond = %q", got)
	}
}

// An observation begun before tandem fenced a node, and delivered after,
// says the node is writable: it must not be taken as a fresh split brain.
func TestStaleObservationAfterFence(t *testing.T) {
	m, _ := newTestManager(t, &memStore{})
	healthyPair(t, m)
	b := m.node("b")
	begun := time.Now()
	time.Sleep(time.Millisecond)
	b.tookReadOnly(true) // as fence does once read_only=ON took
	stale := passive(t, 2, "0-1-10")
	stale.ReadOnly = false
	m.observe(bg, Observation{Node: "b", Time: begun, Facts: stale})
	if n := len(events(m, EventSplitBrain)); n != 0 {
		t.Fatalf("%d split_brain events from an observation older than the fence", n)
	}
	m.publish()
	for _, ns := range m.Status().Nodes {
		if ns.Name == "b" && !ns.ReadOnly {
			t.Fatal("status shows the fenced node writable from a stale observation")
		}
	}
	// A check begun after the fence that finds b writable again is real.
	m.observe(bg, Observation{Node: "b", Time: time.Now(), Facts: stale})
	if n := len(events(m, EventSplitBrain)); n != 1 {
		t.Fatalf("%d split_brain events for a node writable after its fence; want 1", n)
	}
}

func TestNewKeepsSavedDecision(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	fs := &FileStore{Path: path}
	want := Decision{Active: "b", Epoch: 2, Time: time.Now().UTC().Round(0), Reason: "node a failed", PromotedAt: "0-1-100",
		PendingRejoin: true, Unsynced: map[string]string{"a": "promoted without it"}, Excluded: map[string]string{"a": "errant"}}
	if err := fs.Save(want); err != nil {
		t.Fatal(err)
	}
	m, _ := newTestManager(t, fs) // initial "a" must not override the file
	got := m.Decision()
	if got.Active != "b" || got.Epoch != 2 || !got.PendingRejoin || got.Unsynced["a"] == "" || got.Excluded["a"] != "errant" || !got.Time.Equal(want.Time) {
		t.Fatalf("after restart: %+v; want %+v", got, want)
	}
	if *m.active.Load() != "b" || m.epoch.Load() != 2 {
		t.Fatal("the monitor's view of the active node was not set from the saved decision")
	}
	// A decision naming an unknown node is an error, not a silent reset.
	if err := fs.Save(Decision{Active: "c", Epoch: 3}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.AdminUser = "tandem"
	if _, err := New(cfg, []NodeConfig{{Name: "a", Address: closedAddr(t)}, {Name: "b", Address: closedAddr(t)}}, "a", &fakeCtl{}, fs, nil); err == nil {
		t.Fatal("a saved decision naming an unknown node was accepted")
	}
}
