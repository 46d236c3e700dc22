package failover

// The clustered state machine against an in-memory Cluster: the order of a
// change of active node (save, barrier, writable, opened), followers, and
// the gate.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeCluster is a Cluster in memory, logging into the rig's log.
type fakeCluster struct {
	log         *opLog
	valid       atomic.Bool
	coordinator atomic.Bool
	lease       atomic.Int64
	mu          sync.Mutex
	acked       uint64
	waitErr     error
}

func (c *fakeCluster) Valid() bool                        { return c.valid.Load() }
func (c *fakeCluster) Lease() int64                       { return c.lease.Load() }
func (c *fakeCluster) Campaign(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
func (c *fakeCluster) IsCoordinator() bool                { return c.coordinator.Load() && c.valid.Load() }
func (c *fakeCluster) Ack(_ context.Context, e uint64) error {
	c.mu.Lock()
	c.acked = e
	c.mu.Unlock()
	c.log.add(fmt.Sprintf("ack %d", e))
	return nil
}
func (c *fakeCluster) WaitAcked(_ context.Context, e uint64) error {
	c.log.add(fmt.Sprintf("barrier %d", e))
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waitErr
}
func (c *fakeCluster) Members(context.Context) ([]ClusterMember, error) { return nil, nil }
func (c *fakeCluster) Coordinator(context.Context) (ClusterMember, bool, error) {
	return ClusterMember{ID: "t2", Host: "web2", Admin: "10.0.0.2:9306"}, true, nil
}

// newClusterRig is a rig whose manager is one of several tandems, with the
// decision d in the (shared) store.
func newClusterRig(t *testing.T, d Decision) (*testRig, *fakeCluster) {
	t.Helper()
	fc := &fakeCluster{}
	fc.valid.Store(true)
	fc.lease.Store(1)
	r := newRigWith(t, d, fc)
	fc.log = r.log
	r.a.facts, r.b.facts = writer(t, 1, "0-1-10"), passive(t, 2, "0-1-10")
	r.b.facts.SemiSync.ReplicaOn = true
	return r, fc
}

// A follower routes by the decision read from the store only once opened,
// and acknowledges the epoch after routing by it; it never acts on nodes.
func TestFollowerRoutesByOpenedDecision(t *testing.T) {
	r, _ := newClusterRig(t, Decision{Active: "a", Epoch: 3, Opened: true})
	if r.m.state != StateFollowing {
		t.Fatalf("state %v", r.m.state)
	}
	r.m.follow(bg)
	wantInOrder(t, r.log.list(), "ctl route a", "ack 3")
	// The coordinator saves b unopened: hold, then ack.
	r.log.reset()
	r.store.d = Decision{Active: "b", Epoch: 4}
	r.m.follow(bg)
	wantInOrder(t, r.log.list(), "ctl hold", "ack 4")
	wantAbsent(t, r.log.list(), "ctl route")
	r.log.reset()
	r.store.d.Opened = true
	r.m.follow(bg)
	wantInOrder(t, r.log.list(), "ctl route b", "ack 4")
	// A follower's checks never act on nodes, even a writable passive.
	r.log.reset()
	r.a.facts.ReadOnly = false
	for range 3 {
		r.observe("a")
		r.observe("b")
	}
	wantAbsent(t, r.log.list(), "a ", "b ", "save")
	// Operator requests name the coordinator.
	if _, err := r.m.switchover(bg, SwitchoverOptions{}); err == nil || !strings.Contains(err.Error(), "ask tandem t2") {
		t.Fatalf("switchover on a follower: %v", err)
	}
}

// The gate: a lapsed lease stops traffic at once (held, running commands
// cut); the state machine's routing is remembered and applied only when a
// decision was read again.
func TestGateSelfFences(t *testing.T) {
	r, fc := newClusterRig(t, Decision{Active: "a", Epoch: 3, Opened: true})
	r.m.follow(bg)
	r.log.reset()
	fc.valid.Store(false)
	if !r.m.gate.shut() {
		t.Fatal("gate not shut")
	}
	wantInOrder(t, r.log.list(), "ctl hold", "ctl cut a")
	r.log.reset()
	r.m.ctl.Route("b") // the state machine routes while shut: remembered only
	r.m.follow(bg)     // lease still invalid: nothing read
	if log := r.log.list(); len(log) != 0 {
		t.Fatalf("traffic moved while self-fenced: %q", log)
	}
	fc.valid.Store(true)
	fc.lease.Store(2) // a new lease: the decision must be read again
	r.m.follow(bg)
	wantInOrder(t, r.log.list(), "ctl route a", "ack 3")
	if !r.m.gate.isOpen() {
		t.Fatal("gate still shut")
	}
}

// The coordinator's promotion: the decision saved unopened, the barrier,
// then the node made writable, then opened for the followers.
func TestCoordinatorPromotionBarrier(t *testing.T) {
	r, fc := newClusterRig(t, Decision{Active: "a", Epoch: 1, Opened: true})
	fc.coordinator.Store(true)
	r.m.lead(bg)
	r.healthy(t)
	r.a.fail("kill_clients", refusedErr())
	r.a.fail("read_only", refusedErr())
	refused(r.m, "a")
	log := r.log.list()
	wantInOrder(t, log, "ctl hold", "b stop_receiving", "b wait_executed",
		`save active=b epoch=2 promoting=""`, "ack 2", "barrier 2", "b read_only false", "save active=b epoch=2", "ctl route b")
	if d := r.store.get(); !d.Opened || d.Active != "b" {
		t.Fatalf("decision %+v", d)
	}
	// A barrier that does not pass keeps the node read-only.
	r2, fc2 := newClusterRig(t, Decision{Active: "a", Epoch: 1, Opened: true})
	fc2.coordinator.Store(true)
	r2.m.lead(bg)
	r2.healthy(t)
	fc2.waitErr = errors.New("not acknowledged by t2")
	r2.a.fail("kill_clients", refusedErr())
	r2.a.fail("read_only", refusedErr())
	refused(r2.m, "a")
	wantAbsent(t, r2.log.list(), "b read_only false", "ctl route b")
	if r2.m.state != StateDown {
		t.Fatalf("state %v", r2.m.state)
	}
}

// A clustered switchover holds every tandem first (saved held epoch and a
// barrier) before the old node is fenced.
func TestClusterSwitchoverHoldsEveryTandemFirst(t *testing.T) {
	r, fc := newClusterRig(t, Decision{Active: "a", Epoch: 1, Opened: true})
	fc.coordinator.Store(true)
	r.m.lead(bg)
	r.healthy(t)
	if _, err := r.m.switchover(bg, SwitchoverOptions{Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	wantInOrder(t, r.log.list(), "ctl hold", "save active=a epoch=2", "barrier 2", "a read_only true",
		"b wait_executed", "save active=b epoch=3", "barrier 3", "b read_only false", "save active=b epoch=3", "ctl route b")
}

// Elected while the decision cannot be read: the next tick tries again,
// instead of leaving the cluster with no tandem acting.
func TestElectedRetriesReadingTheDecision(t *testing.T) {
	r, fc := newClusterRig(t, Decision{Active: "a", Epoch: 5, Opened: true})
	fc.coordinator.Store(true)
	r.store.loadErr = errors.New("etcdserver: request timed out")
	r.m.lead(bg)
	if r.m.leading {
		t.Fatal("leading without a decision")
	}
	r.m.tick(bg) // the Run loop's next follow tick
	if !r.m.leading || r.m.dec.Epoch != 5 {
		t.Fatalf("leading %v decision %+v", r.m.leading, r.m.dec)
	}
}

// A follower's status shows the decision's marks as the coordinator saves
// them, not only its epoch and active node.
func TestFollowerRefreshesWholeDecision(t *testing.T) {
	r, _ := newClusterRig(t, Decision{Active: "a", Epoch: 3, Opened: true})
	r.m.follow(bg)
	r.store.d.Excluded = map[string]string{"b": "errant transactions 0-2-9"}
	r.m.follow(bg)
	r.m.publish()
	if r.m.Status().Decision.Excluded["b"] == "" {
		t.Fatalf("follower status: %+v", r.m.Status().Decision)
	}
}

// A save to etcd that fails (a conflict, or a timeout with an unknown
// outcome) makes the coordinator read the decision again before acting.
func TestFailedSaveReloadsDecision(t *testing.T) {
	r, fc := newClusterRig(t, Decision{Active: "a", Epoch: 1, Opened: true})
	fc.coordinator.Store(true)
	r.m.lead(bg)
	r.healthy(t)
	r.store.err = errors.New("coord: decision changed since it was loaded")
	r.a.facts.SemiSync.SourceOn = false // makes the coordinator save b unsynced
	r.observe("a")
	if r.m.leading {
		t.Fatal("still acting after a failed save")
	}
	r.store.err = nil
	r.store.d = Decision{Active: "b", Epoch: 7, Opened: true} // what another coordinator saved
	r.m.tick(bg)
	if !r.m.leading || r.m.dec.Epoch != 7 || r.m.dec.Active != "b" {
		t.Fatalf("after reloading: leading %v decision %+v", r.m.leading, r.m.dec)
	}
}
