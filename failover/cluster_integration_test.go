package failover_test

// Two tandems (one per app server) agreeing through a real three-member
// etcd, on the real pair, with a write load through both at once. Each
// tandem reaches etcd through its own loopback relays, so that cutting
// them partitions that tandem from etcd.

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemdb/tandem/cluster"
	"github.com/tandemdb/tandem/coord"
	"github.com/tandemdb/tandem/failover"
	"github.com/tandemdb/tandem/internal/faultrelay"
	"github.com/tandemdb/tandem/internal/testetcd"
	"github.com/tandemdb/tandem/internal/testpair"
	"github.com/tandemdb/tandem/proxy"
)

// clusterTandem is a tandem of a cluster, with the relays to etcd that cut
// it off.
type clusterTandem struct {
	*tandem
	id     string
	relays []*faultrelay.Relay
}

func (c *clusterTandem) partition(on bool) {
	for _, r := range c.relays {
		if on {
			r.Set(faultrelay.Cut)
		} else {
			r.Set(faultrelay.Forward)
		}
	}
}

func startClusterTandem(t *testing.T, id string, etcd *testetcd.Cluster, prefix string) *clusterTandem {
	t.Helper()
	ct := &clusterTandem{id: id}
	var endpoints []string
	for _, c := range etcd.Clients {
		r := newRelay(t, c, 0)
		ct.relays = append(ct.relays, r)
		endpoints = append(endpoints, r.Addr())
	}
	cfg := coord.DefaultConfig()
	cfg.Endpoints, cfg.Prefix, cfg.ID, cfg.Host = endpoints, prefix, id, "host-"+id
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	sess, err := coord.Open(ctx, cfg, nil)
	cancel()
	if err != nil {
		t.Fatalf("tandem %s: etcd: %v", id, err)
	}
	t.Cleanup(func() { sess.Close() })
	cl := cluster.New(sess)
	ct.tandem = startTandemWith(t, cl, testpair.Addr(testpair.A), testpair.Addr(testpair.B), func(pc *proxy.Config, fc *failover.Config) {
		fc.Cluster = cl
		pc.HoldTimeout = 3 * time.Second
	}, nil)
	return ct
}

// writableSampler reads read_only on both nodes every 20 ms and counts the
// moments both were writable.
type writableSampler struct {
	both, samples atomic.Int64
	stop          chan struct{}
	done          sync.WaitGroup
}

func sampleWritable(t *testing.T) *writableSampler {
	s := &writableSampler{stop: make(chan struct{})}
	dbs := []*sql.DB{nodeDB(t, testpair.A), nodeDB(t, testpair.B)}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) {
			select {
			case <-s.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			writable := 0
			for _, db := range dbs {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				var ro int
				if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&ro); err == nil && ro == 0 {
					writable++
				}
				cancel()
			}
			s.samples.Add(1)
			if writable == 2 {
				s.both.Add(1)
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *writableSampler) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.done.Wait()
}

func TestClusterOfTwoTandems(t *testing.T) {
	testpair.Require(t)
	testpair.Reset(t) // a writable: whatever an earlier test left
	t.Cleanup(func() { testpair.Reset(t) })
	forgetRecordedDecision(t)
	etcd := testetcd.Start(t)
	prefix := fmt.Sprintf("/tandemtest/%d", time.Now().UnixNano())
	ts := []*clusterTandem{startClusterTandem(t, "t1", etcd, prefix), startClusterTandem(t, "t2", etcd, prefix)}

	// One coordinator; both route to a, writable.
	var coordinator, follower *clusterTandem
	deadline := time.Now().Add(20 * time.Second)
	for coordinator == nil {
		for i, ct := range ts {
			s, o := ct.m.Status(), ts[1-i].m.Status()
			if s.Coordinator && !o.Coordinator && s.Decision.Active == "a" && s.Decision.Opened && o.Decision.Opened &&
				!s.SelfFenced && !o.SelfFenced {
				coordinator, follower = ct, ts[1-i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no single coordinator routing to a:\n%s\n%s", describe(ts[0].m.Status()), describe(ts[1].m.Status()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("coordinator %s, follower %s", coordinator.id, follower.id)
	sampler := sampleWritable(t)
	cdb, fdb := coordinator.client(t), follower.client(t)
	cdb.SetMaxOpenConns(4)
	fdb.SetMaxOpenConns(4)
	wc := startWorkload(t, cdb, "fo_cluster_c", 2, 20000, 60*time.Second)
	defer wc.stop()
	wf := startWorkload(t, fdb, "fo_cluster_f", 2, 20000, 60*time.Second)
	defer wf.stop()
	wc.waitAcks(t, 100, 10*time.Second)
	wf.waitAcks(t, 100, 10*time.Second)

	// The coordinator is cut off from etcd: it stops relaying within its
	// lease, and the other tandem takes over.
	cut := time.Now()
	coordinator.partition(true)
	coordinator.waitStatus(t, 5*time.Second, "self-fenced", func(s failover.Status) bool { return s.SelfFenced })
	fenced := time.Since(cut)
	follower.waitStatus(t, 10*time.Second, "coordinator", func(s failover.Status) bool { return s.Coordinator })
	took := time.Since(cut)
	t.Logf("cut-off coordinator self-fenced after %v; the other tandem coordinates after %v", fenced.Round(time.Millisecond), took.Round(time.Millisecond))
	if _, ok := coordinator.events.await(failover.EventSelfFenced, 5*time.Second); !ok {
		t.Error("no self_fenced event")
	}
	wf.waitAcks(t, wf.acked()+50, 10*time.Second)

	// The active node dies during the change: the new coordinator
	// promotes b once the cut-off tandem's lease has expired in etcd.
	killed := time.Now()
	testpair.Kill(t, testpair.A)
	s := follower.waitActive(t, 15*time.Second, "b", 2)
	marked := time.Now()
	wf.waitAcks(t, wf.acked()+50, 10*time.Second)
	t.Logf("node a killed: b active after %v, first write through the new coordinator %v after the kill",
		marked.Sub(killed).Round(time.Millisecond), wf.firstAckAfter(killed).Sub(killed).Round(time.Millisecond))
	if !s.Decision.Opened {
		t.Fatalf("b active but not opened to followers: %s", describe(s))
	}
	if got := port(t, fdb); got != testpair.Port(testpair.B) {
		t.Fatalf("the new coordinator serves from port %d; want b's", got)
	}

	// Healed: the old coordinator follows the new decision.
	coordinator.partition(false)
	coordinator.waitStatus(t, 15*time.Second, "following b", func(s failover.Status) bool {
		return !s.SelfFenced && s.Decision.Active == "b" && s.Decision.Epoch == 2 && !s.Coordinator
	})
	db := coordinator.client(t)
	if got := port(t, db); got != testpair.Port(testpair.B) {
		t.Fatalf("the healed tandem serves from port %d; want b's", got)
	}
	wc.stop()
	wf.stop()
	wc.checkNoLoss(t, testpair.B)
	wf.checkNoLoss(t, testpair.B)

	// etcd lost entirely: no tandem may act or relay; clients wait up to
	// hold_timeout and get an error; nothing is promoted.
	for n := 1; n <= 3; n++ {
		etcd.Run(t, "stop", fmt.Sprint(n))
	}
	for _, ct := range ts {
		ct.waitStatus(t, 5*time.Second, "self-fenced without etcd", func(s failover.Status) bool { return s.SelfFenced })
	}
	c := coordinator.client(t)
	start := time.Now()
	_, err := c.Exec("SELECT 1")
	t.Logf("a statement without etcd: %v after %v", err, time.Since(start).Round(time.Millisecond))
	if err == nil {
		t.Fatal("a statement was relayed while no tandem holds a lease")
	}
	for n := 1; n <= 3; n++ {
		etcd.Run(t, "cont", fmt.Sprint(n))
	}
	for _, ct := range ts {
		ct.waitStatus(t, 20*time.Second, "relaying again", func(s failover.Status) bool {
			return !s.SelfFenced && s.Decision.Active == "b" && s.Decision.Epoch == 2
		})
	}
	mustExec(t, c, "CREATE TABLE IF NOT EXISTS fo_marker (id INT PRIMARY KEY, v VARCHAR(32))")
	mustExec(t, c, "REPLACE INTO fo_marker VALUES (9, 'etcd back')")

	sampler.close()
	t.Logf("%d samples of both nodes' read_only, %d with both writable", sampler.samples.Load(), sampler.both.Load())
	if sampler.both.Load() != 0 {
		t.Errorf("both nodes writable in %d samples", sampler.both.Load())
	}
}
