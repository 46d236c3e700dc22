package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestEveryRequestSurvivesAHungMember: with one of the three members hung
// (SIGSTOP: it accepts connections and never answers), every request a
// tandem makes on its way to acting still succeeds, each time: the
// election, saves and loads of the decision, acknowledgements, the
// barrier, the member list and the coordinator's name. Before requests
// went to every member at once, the shared client sent one in three of
// them to the hung member, where it failed after RequestTimeout.
func TestEveryRequestSurvivesAHungMember(t *testing.T) {
	defer tc.heal(t)
	prefix := prefixFor(t)
	// A longer lease than the default 1 s: what is checked is that no
	// request fails because one member is hung, and a renewal that a
	// loaded 2-core machine delays past the default lease lost the
	// coordinator role once (save 3: not the coordinator) with every
	// request answered. Each request still has RequestTimeout (1 s), less
	// than the hung member would take.
	cfg := func(id string) Config {
		c := testConfig(t, prefix, id)
		c.LeaseTTL, c.RenewInterval, c.RenewTimeout = 5*time.Second, time.Second, time.Second
		return c
	}
	a := open(t, cfg("a"))
	b := open(t, cfg("b"))
	tc.mustScript(t, "stop", "2")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Campaign(ctx); err != nil {
		t.Fatalf("campaign with member 2 hung: %v", err)
	}
	const rounds = 12 // one request in three went to the hung member
	rev := int64(0)
	for i := 1; i <= rounds; i++ {
		val := []byte(fmt.Sprintf(`{"epoch":%d}`, i))
		r, err := a.Save(ctx, val, rev)
		if err != nil {
			t.Fatalf("save %d with member 2 hung: %v", i, err)
		}
		rev = r
		got, lrev, ok, err := b.Load(ctx)
		if err != nil || !ok || lrev != rev || string(got) != string(val) {
			t.Fatalf("load %d with member 2 hung: %s at %d, ok %v, err %v; want %s at %d", i, got, lrev, ok, err, val, rev)
		}
		for _, s := range []*Session{a, b} {
			if err := s.Ack(ctx, uint64(i)); err != nil {
				t.Fatalf("%s: ack %d with member 2 hung: %v", s.cfg.ID, i, err)
			}
		}
		if err := a.WaitAcked(ctx, uint64(i)); err != nil {
			t.Fatalf("barrier %d with member 2 hung: %v", i, err)
		}
		ms, err := b.Members(ctx)
		if err != nil {
			t.Fatalf("members %d with member 2 hung: %v", i, err)
		}
		for _, m := range ms {
			if !m.Present || m.AckedEpoch != uint64(i) {
				t.Fatalf("member %s after ack %d: present %v, acked %d", m.ID, i, m.Present, m.AckedEpoch)
			}
		}
		c, ok, err := b.Coordinator(ctx)
		if err != nil || !ok || c.ID != "a" {
			t.Fatalf("coordinator %d with member 2 hung: %+v ok %v err %v", i, c, ok, err)
		}
	}
	if !a.IsCoordinator() {
		t.Fatal("a lost the coordinator role with one member hung")
	}
}

// TestRequestsTakeEffectOnce: every request goes to all three members, yet
// each save and each acknowledgement takes effect exactly once and in
// order: the revision a save returns is the decision's, every save over it
// succeeds, and the member key's version grows by one per acknowledgement
// (a copy arriving late never overwrites a later one).
func TestRequestsTakeEffectOnce(t *testing.T) {
	prefix := prefixFor(t)
	a := open(t, testConfig(t, prefix, "a"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	obs := observer(t)
	key := a.cfg.memberKey("a")
	before, err := obs.Get(ctx, key)
	if err != nil || len(before.Kvs) != 1 {
		t.Fatalf("member key: %v %v", before, err)
	}
	const n = 30
	rev := int64(0)
	for i := 1; i <= n; i++ {
		r, err := a.Save(ctx, []byte(fmt.Sprintf(`{"epoch":%d}`, i)), rev)
		if err != nil {
			t.Fatalf("save %d over revision %d: %v", i, rev, err)
		}
		d, err := obs.Get(ctx, a.cfg.decisionKey())
		if err != nil || len(d.Kvs) != 1 || d.Kvs[0].ModRevision != r || d.Kvs[0].Version != int64(i) {
			t.Fatalf("decision after save %d: %v %v; want ModRevision %d, version %d", i, d, err, r, i)
		}
		rev = r
		if err := a.Ack(ctx, uint64(i)); err != nil {
			t.Fatalf("ack %d: %v", i, err)
		}
	}
	after, err := obs.Get(ctx, key)
	if err != nil || len(after.Kvs) != 1 {
		t.Fatalf("member key: %v %v", after, err)
	}
	var m Member
	if err := json.Unmarshal(after.Kvs[0].Value, &m); err != nil {
		t.Fatal(err)
	}
	if m.AckedEpoch != n || after.Kvs[0].Version != before.Kvs[0].Version+n {
		t.Fatalf("member key after %d acks: acked %d, version %d (was %d); want acked %d, version %d",
			n, m.AckedEpoch, after.Kvs[0].Version, before.Kvs[0].Version, n, before.Kvs[0].Version+n)
	}
}

// TestAckRecreatesDeletedMemberKey: an acknowledgement after the member key
// was deleted by hand (the lease still alive) registers the tandem again,
// so the barrier counts it; one under another lease is refused.
func TestAckRecreatesDeletedMemberKey(t *testing.T) {
	prefix := prefixFor(t)
	a := open(t, testConfig(t, prefix, "a"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Ack(ctx, 1); err != nil {
		t.Fatal(err)
	}
	obs := observer(t)
	key := a.cfg.memberKey("a")
	if _, err := obs.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := a.Ack(ctx, 2); err != nil {
		t.Fatalf("ack after the member key was deleted: %v", err)
	}
	resp, err := obs.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("member key after the ack: %v %v", resp, err)
	}
	var m Member
	if err := json.Unmarshal(resp.Kvs[0].Value, &m); err != nil {
		t.Fatal(err)
	}
	if m.AckedEpoch != 2 || resp.Kvs[0].Lease != a.Status().Lease {
		t.Fatalf("member key: acked %d under lease %x; want 2 under %x", m.AckedEpoch, resp.Kvs[0].Lease, a.Status().Lease)
	}
	// Someone else's key under this id (another lease): refused.
	g, err := obs.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.Put(ctx, key, `{"id":"a"}`, clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	if err := a.Ack(ctx, 3); !errors.Is(err, ErrNoLease) {
		t.Fatalf("ack over another lease's key: %v; want ErrNoLease", err)
	}
	if _, err := obs.Revoke(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
}
