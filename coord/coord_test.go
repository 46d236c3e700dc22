package coord

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/tandemdb/tandem/internal/testetcd"
)

// TestValidEndsBeforeEtcdExpires: a session whose only etcd member hangs
// (SIGSTOP) stops being Valid no later than TTL after its last successful
// renewal was sent, and before etcd deletes its key (seen through the other
// members). After the member continues, the session finds its lease gone,
// grants a new one and registers again.
func TestValidEndsBeforeEtcdExpires(t *testing.T) {
	defer tc.heal(t)
	const victim = 1 // the member the session talks to
	prefix := prefixFor(t)
	ev := &events{}
	cfg := testConfig(t, prefix, "a")
	cfg.Endpoints = []string{tc.Clients[victim-1]}
	cfg.Events = ev.hook
	s := open(t, cfg)
	obs := observer(t, tc.Clients[1], tc.Clients[2])
	key := cfg.memberKey("a")
	waitFor(t, 10*time.Second, "member key visible on the other members", func() bool {
		e, ok := keyExists(obs, key)
		return ok && e
	})
	if _, ok := s.Valid(); !ok {
		t.Fatal("fresh session not Valid")
	}

	// The client library's session on the same single member, for comparison.
	lib, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	libSess, err := concurrency.NewSession(lib, concurrency.WithTTL(1))
	if err != nil {
		t.Fatal(err)
	}
	libDone := make(chan time.Time, 1)
	go func() { <-libSess.Done(); libDone <- time.Now() }()

	stopped := time.Now()
	tc.mustScript(t, "stop", fmt.Sprint(victim))
	var until time.Time
	invalid := waitFor(t, 10*time.Second, "Valid() to turn false", func() bool {
		u, ok := s.Valid()
		if ok {
			until = u
		}
		return !ok
	})
	st := s.Status()
	if until.IsZero() {
		t.Fatal("never saw a validity window")
	}
	last := until.Add(cfg.Margin - st.TTL) // send time of the last successful renewal
	if w := until.Sub(last); w > st.TTL {
		t.Fatalf("validity window %v exceeds the TTL %v", w, st.TTL)
	}
	if invalid.Sub(last) > st.TTL+50*time.Millisecond {
		t.Fatalf("Valid() still true %v after the last successful send (TTL %v)", invalid.Sub(last), st.TTL)
	}
	gone := waitFor(t, 20*time.Second, "etcd to delete the member key", func() bool {
		e, ok := keyExists(obs, key)
		return ok && !e
	})
	// gone is when the deletion was observed, so never before it happened.
	if !until.Before(gone) {
		t.Fatalf("validity ran until %v, but etcd had already deleted the key at %v", until, gone)
	}
	var done time.Time
	select {
	case done = <-libDone:
	case <-time.After(20 * time.Second):
	}
	t.Logf("after SIGSTOP of the session's member: Valid() false at +%v (last successful send at %v before the stop), key deleted (observed) at +%v, library Session.Done at +%v",
		invalid.Sub(stopped).Round(time.Millisecond), stopped.Sub(last).Round(time.Millisecond),
		gone.Sub(stopped).Round(time.Millisecond), done.Sub(stopped).Round(time.Millisecond))

	tc.mustScript(t, "cont", fmt.Sprint(victim))
	waitFor(t, 20*time.Second, "lease lost and regained", func() bool {
		return ev.has(EventLeaseLost) && ev.has(EventLeaseRegained)
	})
	waitFor(t, 10*time.Second, "Valid() again with a new lease", func() bool {
		_, ok := s.Valid()
		return ok && s.Status().Lease != st.Lease
	})
	waitFor(t, 10*time.Second, "member key registered again", func() bool {
		e, ok := keyExists(obs, key)
		return ok && e
	})
}

// TestSaveCompareAndSet: only the coordinator saves, and only over the
// revision it loaded; a coordinator whose key is gone is refused by etcd.
func TestSaveCompareAndSet(t *testing.T) {
	prefix := prefixFor(t)
	a := open(t, testConfig(t, prefix, "a"))
	b := open(t, testConfig(t, prefix, "b"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	err := b.Campaign(short)
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) || b.IsCoordinator() {
		t.Fatalf("second candidate: err %v, IsCoordinator %v; want it to keep waiting", err, b.IsCoordinator())
	}
	if _, err := b.Save(ctx, []byte(`{"epoch":1}`), 0); !errors.Is(err, ErrNotCoordinator) {
		t.Fatalf("non-coordinator Save: %v, want ErrNotCoordinator", err)
	}
	if _, _, ok, err := a.Load(ctx); err != nil || ok {
		t.Fatalf("Load before any save: ok %v err %v", ok, err)
	}
	rev1, err := a.Save(ctx, []byte(`{"epoch":1}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Save(ctx, []byte(`{"epoch":2}`), 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("Save expecting no decision: %v, want ErrConflict", err)
	}
	v, rev, ok, err := b.Load(ctx)
	if err != nil || !ok || rev != rev1 || string(v) != `{"epoch":1}` {
		t.Fatalf("Load: %s %d %v %v", v, rev, ok, err)
	}
	rev2, err := a.Save(ctx, []byte(`{"epoch":2}`), rev1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Save(ctx, []byte(`{"epoch":3}`), rev1); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale Save: %v, want ErrConflict", err)
	}

	// Someone deletes the coordinator key behind a's back; b wins. a's
	// transaction with its old term is refused by etcd itself, whatever a
	// believes locally.
	a.mu.Lock()
	term := a.electRev
	a.mu.Unlock()
	obs := observer(t)
	if _, err := obs.Delete(ctx, a.cfg.coordinatorKey()); err != nil {
		t.Fatal(err)
	}
	if err := b.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.saveTxn(ctx, []byte(`{"epoch":9}`), rev2, term); !errors.Is(err, ErrNotCoordinator) {
		t.Fatalf("stale coordinator's transaction: %v, want ErrNotCoordinator", err)
	}
	if a.IsCoordinator() {
		t.Fatal("a still coordinator after etcd refused its term")
	}
	if _, err := a.Save(ctx, []byte(`{"epoch":9}`), rev2); !errors.Is(err, ErrNotCoordinator) {
		t.Fatalf("old coordinator Save: %v", err)
	}
	if _, err := b.Save(ctx, []byte(`{"epoch":3}`), rev2); err != nil {
		t.Fatalf("new coordinator Save: %v", err)
	}
	v, _, _, _ = a.Load(ctx)
	if string(v) != `{"epoch":3}` {
		t.Fatalf("decision %s after the hand-over", v)
	}
}

// TestElectionAfterKill: the coordinator is a child process holding the
// lease; after SIGKILL the waiting candidate wins once the lease expires.
func TestElectionAfterKill(t *testing.T) {
	prefix := prefixFor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	child := startChild(t, ctx, prefix, "child")
	p := open(t, testConfig(t, prefix, "parent"))
	m, ok, err := p.Coordinator(ctx)
	if err != nil || !ok || m.ID != "child" || m.Self {
		t.Fatalf("Coordinator: %+v ok %v err %v; want the child", m, ok, err)
	}
	won := make(chan error, 1)
	go func() { won <- p.Campaign(ctx) }()
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	child.Wait()
	if err := <-won; err != nil {
		t.Fatalf("Campaign after the coordinator died: %v", err)
	}
	t.Logf("new coordinator %v after SIGKILL of the old one (TTL %v)", time.Since(killed).Round(time.Millisecond), p.Status().TTL)
	if !p.IsCoordinator() {
		t.Fatal("IsCoordinator false after Campaign")
	}
	m, ok, err = p.Coordinator(ctx)
	if err != nil || !ok || !m.Self || m.ID != "parent" {
		t.Fatalf("Coordinator after failover: %+v ok %v err %v", m, ok, err)
	}
	ms, err := p.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.ID == "child" && m.Present {
			t.Fatal("dead child's member key still present after its coordinator key expired")
		}
	}
}

// TestElectionHandOver: an abandoned session (crash without resign) is
// replaced after its lease expires; Resign and Close hand over at once.
func TestElectionHandOver(t *testing.T) {
	prefix := prefixFor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	eva := &events{}
	cfgA := testConfig(t, prefix, "a")
	cfgA.Events = eva.hook
	a := open(t, cfgA)
	b := open(t, testConfig(t, prefix, "b"))
	c := open(t, testConfig(t, prefix, "c"))
	if err := a.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	if !eva.has(EventBecameCoordinator) {
		t.Fatalf("events %v lack %q", eva.snapshot(), EventBecameCoordinator)
	}
	wonB := make(chan error, 1)
	go func() { wonB <- b.Campaign(ctx) }()
	resigned := time.Now()
	if err := a.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if a.IsCoordinator() || !eva.has(EventLostCoordinator) {
		t.Fatalf("after Resign: IsCoordinator %v, events %v", a.IsCoordinator(), eva.snapshot())
	}
	if err := <-wonB; err != nil {
		t.Fatal(err)
	}
	t.Logf("Resign → new coordinator in %v", time.Since(resigned).Round(time.Millisecond))

	wonC := make(chan error, 1)
	go func() { wonC <- c.Campaign(ctx) }()
	crashed := time.Now()
	b.abandon()
	if err := <-wonC; err != nil {
		t.Fatal(err)
	}
	t.Logf("crash (no resign, lease left to expire) → new coordinator in %v", time.Since(crashed).Round(time.Millisecond))

	wonA := make(chan error, 1)
	go func() { wonA <- a.Campaign(ctx) }()
	closed := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-wonA; err != nil {
		t.Fatal(err)
	}
	t.Logf("Close (lease revoked) → new coordinator in %v", time.Since(closed).Round(time.Millisecond))
}

// TestSameIDWaitsForOldSession: Open refuses an ID whose member key is held
// by another live lease, and takes it over once that lease expires.
// The old session's lease is 3 s, so a renewal delayed by load cannot lose
// it while the second Open waits (2 s); the error names the duplicate even
// when the last try failed otherwise (a grant that timed out under load once
// hid it).
func TestSameIDWaitsForOldSession(t *testing.T) {
	prefix := prefixFor(t)
	cfg := testConfig(t, prefix, "dup")
	cfg.LeaseTTL = 3 * time.Second
	old := open(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := Open(ctx, cfg, nil)
	cancel()
	if err == nil || !strings.Contains(err.Error(), `"dup"`) || !errors.Is(err, errIDTaken) {
		t.Fatalf("Open with a live duplicate ID: %v", err)
	}
	old.abandon() // crash: the key lives until the lease expires
	s := open(t, cfg)
	m, err := s.Members(context.Background())
	if err != nil || len(m) != 1 || !m[0].Self {
		t.Fatalf("members after restart: %+v %v", m, err)
	}
}

// TestJoinError: why Open gave up names a taken ID even when the last try
// failed otherwise, and keeps ctx's error.
func TestJoinError(t *testing.T) {
	taken := fmt.Errorf("coord: ID %q %w", "dup", errIDTaken)
	grant := context.DeadlineExceeded
	for _, c := range []struct {
		name               string
		taken, last, ctxEr error
		want               string
		isTaken            bool
	}{
		{"taken, then ctx ended", taken, taken, context.DeadlineExceeded,
			`coord: ID "dup" ` + errIDTaken.Error() + ` (context deadline exceeded)`, true},
		{"taken, then a grant timed out", taken, grant, context.DeadlineExceeded,
			`coord: ID "dup" ` + errIDTaken.Error() + ` (last try: context deadline exceeded) (context deadline exceeded)`, true},
		{"taken, then waited long enough", taken, taken, nil, taken.Error(), true},
		{"never taken", nil, grant, context.Canceled, "context deadline exceeded (context canceled)", false},
	} {
		err := joinError(c.taken, c.last, c.ctxEr)
		if err.Error() != c.want || errors.Is(err, errIDTaken) != c.isTaken {
			t.Errorf("%s: %v (is taken: %v); want %q (%v)", c.name, err, errors.Is(err, errIDTaken), c.want, c.isTaken)
		}
	}
}

// TestBarrier: WaitAcked waits for a slow member, names who is missing,
// and stops waiting for a member whose lease expired.
func TestBarrier(t *testing.T) {
	prefix := prefixFor(t)
	a := open(t, testConfig(t, prefix, "a"))
	b := open(t, testConfig(t, prefix, "b"))
	c := open(t, testConfig(t, prefix, "c"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, s := range []*Session{a, b} {
		if err := s.Ack(ctx, 5); err != nil {
			t.Fatal(err)
		}
	}
	// Long enough for one read of the members under load: an error
	// before any read names nobody.
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	err := a.WaitAcked(short, 5)
	cancelShort()
	if err == nil || !strings.Contains(err.Error(), `c (host "host-c", acked 0)`) || strings.Contains(err.Error(), "a (") {
		t.Fatalf("barrier with c missing: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.WaitAcked(ctx, 5) }()
	select {
	case err := <-done:
		t.Fatalf("barrier returned (%v) before c acknowledged", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := c.Ack(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("barrier after every ack: %v", err)
	}

	// c dies without acknowledging epoch 6: the barrier ends when its
	// lease expires.
	for _, s := range []*Session{a, b} {
		if err := s.Ack(ctx, 6); err != nil {
			t.Fatal(err)
		}
	}
	c.abandon()
	died := time.Now()
	if err := a.WaitAcked(ctx, 6); err != nil {
		t.Fatalf("barrier with c dead: %v", err)
	}
	t.Logf("barrier released %v after the unacknowledging member died", time.Since(died).Round(time.Millisecond))
	ms, err := a.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.ID == "c" && m.Present {
			t.Fatal("barrier returned while c's key still exists")
		}
	}
}

// TestMembers: the listing shows each member's published fields, acks only
// grow, Self follows the lease, and a closed member stays listed as gone.
func TestMembers(t *testing.T) {
	prefix := prefixFor(t)
	a := open(t, testConfig(t, prefix, "a"))
	b := open(t, testConfig(t, prefix, "b"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Ack(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(ctx, 2); err != nil {
		t.Fatal(err)
	}
	ms, err := a.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].ID != "a" || ms[1].ID != "b" {
		t.Fatalf("members %+v", ms)
	}
	if !ms[0].Self || ms[1].Self || !ms[0].Present || !ms[1].Present {
		t.Fatalf("Self/Present wrong: %+v", ms)
	}
	if ms[1].AckedEpoch != 3 || ms[1].Host != "host-b" || ms[1].Admin != "127.0.0.1:9306" || ms[1].Updated.IsZero() || ms[1].Lease == 0 {
		t.Fatalf("member b: %+v", ms[1])
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	ms, err = a.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[1].ID != "b" || ms[1].Present {
		t.Fatalf("after b closed: %+v", ms)
	}
	if err := b.Ack(ctx, 9); !errors.Is(err, ErrNoLease) {
		t.Fatalf("Ack on a closed session: %v", err)
	}
}

// TestLeaseRevoked: when etcd no longer knows the lease, the session stops
// being coordinator, grants a new lease and registers again.
func TestLeaseRevoked(t *testing.T) {
	prefix := prefixFor(t)
	ev := &events{}
	cfg := testConfig(t, prefix, "a")
	cfg.Events = ev.hook
	a := open(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	old := a.Status().Lease
	obs := observer(t)
	if _, err := obs.Revoke(ctx, clientv3.LeaseID(old)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "lease regained", func() bool { return ev.has(EventLeaseRegained) })
	if a.IsCoordinator() {
		t.Fatal("still coordinator on a new lease")
	}
	want := []string{EventBecameCoordinator, EventLeaseLost, EventLostCoordinator, EventLeaseRegained}
	if got := ev.snapshot(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
	if st := a.Status(); st.Lease == old || !st.Valid {
		t.Fatalf("status after regrant: %+v", st)
	}
	ms, err := a.Members(ctx)
	if err != nil || len(ms) != 1 || !ms[0].Self || !ms[0].Present {
		t.Fatalf("members after regrant: %+v %v", ms, err)
	}
	if err := a.Campaign(ctx); err != nil || !a.IsCoordinator() {
		t.Fatalf("campaign on the new lease: %v", err)
	}
}

// TestHungMemberKeepsLease: with every endpoint configured, one hung member
// (SIGSTOP) costs single renewals, never the lease: the renewal loop's
// next request goes to another member. TTL 2 s leaves room for a loaded
// machine; the point is the mechanism, not the speed.
func TestHungMemberKeepsLease(t *testing.T) {
	defer tc.heal(t)
	ev := &events{}
	cfg := testConfig(t, prefixFor(t), "a")
	cfg.LeaseTTL = 2 * time.Second
	cfg.Events = ev.hook
	s := open(t, cfg)
	lease := s.Status().Lease
	tc.mustScript(t, "stop", "1")
	end := time.Now().Add(3 * cfg.LeaseTTL)
	var worst time.Duration
	for time.Now().Before(end) {
		until, ok := s.Valid()
		if !ok {
			t.Fatalf("lease validity lost with one of three members hung (until %v, events %v)", until, ev.snapshot())
		}
		if left := time.Until(until); worst == 0 || left < worst {
			worst = left
		}
		time.Sleep(5 * time.Millisecond)
	}
	tc.mustScript(t, "cont", "1")
	if st := s.Status(); st.Lease != lease || len(ev.snapshot()) != 0 {
		t.Fatalf("lease changed (%x → %x) or events %v", lease, st.Lease, ev.snapshot())
	}
	t.Logf("member 1 hung for %v: validity never below %v of %v", 3*cfg.LeaseTTL, worst.Round(time.Millisecond), cfg.LeaseTTL-cfg.Margin)
}

// TestShortStallKeepsCoordinator: a coordinator process stopped for less
// than its lease (SIGSTOP, then SIGCONT) is still coordinator in the same
// term; the waiting candidate never won.
func TestShortStallKeepsCoordinator(t *testing.T) {
	prefix := prefixFor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	child := startChild(t, ctx, prefix, "child", "COORD_CHILD_TTL=2")
	p := open(t, testConfig(t, prefix, "parent"))
	before, ok, err := p.Coordinator(ctx)
	if err != nil || !ok || before.ID != "child" {
		t.Fatalf("Coordinator: %+v %v %v", before, ok, err)
	}
	campaign, stopCampaign := context.WithCancel(ctx)
	won := make(chan error, 1)
	go func() { won <- p.Campaign(campaign) }()
	if err := child.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the stall under test, well under the 2 s lease
	if err := child.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Let the child renew again, then check nobody took over.
	waitFor(t, 10*time.Second, "the child's member key renewed after the stall", func() bool {
		ms, err := p.Members(ctx)
		if err != nil {
			return false
		}
		for _, m := range ms {
			if m.ID == "child" && m.Present {
				return true
			}
		}
		return false
	})
	time.Sleep(2 * time.Second) // longer than the lease: an expiry would show now
	after, ok, err := p.Coordinator(ctx)
	if err != nil || !ok || after.ID != "child" || after.CreateRevision != before.CreateRevision || after.Lease != before.Lease {
		t.Fatalf("after a 500ms stall: coordinator %+v (before %+v), ok %v err %v", after, before, ok, err)
	}
	if p.IsCoordinator() {
		t.Fatal("the waiting candidate became coordinator")
	}
	stopCampaign()
	if err := <-won; !errors.Is(err, context.Canceled) {
		t.Fatalf("candidate's campaign: %v, want it still waiting", err)
	}
}

// TestCoordinatorSelfByLease: Coordinator judges "is it me" by the key's
// lease, never by the stored value, even when that value names this
// tandem (as after a restart while the old lease lives).
func TestCoordinatorSelfByLease(t *testing.T) {
	prefix := prefixFor(t)
	b := open(t, testConfig(t, prefix, "b"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	obs := observer(t)
	other, err := obs.Grant(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Revoke(context.Background(), other.ID)
	if _, err := obs.Put(ctx, b.cfg.coordinatorKey(), `{"id":"b","host":"host-b"}`, clientv3.WithLease(other.ID)); err != nil {
		t.Fatal(err)
	}
	m, ok, err := b.Coordinator(ctx)
	if err != nil || !ok || m.ID != "b" || m.Self || m.Lease != int64(other.ID) {
		t.Fatalf("Coordinator: %+v ok %v err %v; want the value's id b but Self false", m, ok, err)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	err = b.Campaign(short)
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) || b.IsCoordinator() {
		t.Fatalf("Campaign against a key of another lease with our id: %v", err)
	}
	if _, err := obs.Revoke(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	if m, ok, err := b.Coordinator(ctx); err != nil || !ok || !m.Self {
		t.Fatalf("Coordinator after winning: %+v %v %v", m, ok, err)
	}
}

// TestOrphanCoordinatorKey: a coordinator key under this session's lease
// that no term owns (a campaign attempt that landed after its caller gave
// up) is adopted by a running Campaign, and removed when none runs.
func TestOrphanCoordinatorKey(t *testing.T) {
	prefix := prefixFor(t)
	a := open(t, testConfig(t, prefix, "a"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	obs := observer(t)
	key := a.cfg.coordinatorKey()
	lease := clientv3.LeaseID(a.Status().Lease)
	if _, err := obs.Put(ctx, key, `{"id":"a"}`, clientv3.WithLease(lease)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the orphan key removed", func() bool {
		e, ok := keyExists(obs, key)
		return ok && !e
	})
	if a.IsCoordinator() {
		t.Fatal("coordinator without a campaign")
	}
	// With a campaign running, such a key is this session's term.
	resp, err := obs.Put(ctx, key, `{"id":"a"}`, clientv3.WithLease(lease))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	if m, ok, err := a.Coordinator(ctx); err != nil || !ok || !m.Self || m.CreateRevision != resp.Header.Revision {
		t.Fatalf("campaign did not adopt the key: %+v %v %v", m, ok, err)
	}
}

// TestOpenUnreachable: no etcd answering is a clear error within the dial
// timeout, not a hang.
func TestOpenUnreachable(t *testing.T) {
	ports, err := testetcd.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, prefixFor(t), "a")
	cfg.Endpoints = []string{fmt.Sprintf("127.0.0.1:%d", ports[0])}
	cfg.DialTimeout = 500 * time.Millisecond
	start := time.Now()
	s, err := Open(context.Background(), cfg, nil)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded without etcd")
	}
	if !strings.Contains(err.Error(), "grant lease from etcd") || time.Since(start) > 10*time.Second {
		t.Fatalf("Open without etcd: %v after %v", err, time.Since(start))
	}
	bad := cfg
	bad.ID = ""
	if _, err := Open(context.Background(), bad, nil); err == nil || !strings.Contains(err.Error(), "coord: ID:") {
		t.Fatalf("Open with a bad config: %v", err)
	}
}

// ---- child process: a coordinator that can be SIGKILLed -------------------

const childEnv = "COORD_TEST_CHILD"

// startChild re-executes the test binary as a coordinator process and
// waits until it reports that it won the election.
func startChild(t *testing.T, ctx context.Context, prefix, id string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1",
		"COORD_CHILD_ENDPOINTS="+strings.Join(tc.Clients, ","),
		"COORD_CHILD_PREFIX="+prefix, "COORD_CHILD_ID="+id)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ELECTED") {
				lines <- sc.Text()
				return
			}
		}
		close(lines)
	}()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("child exited without being elected")
		}
		t.Logf("child: %s", l)
	case <-time.After(30 * time.Second):
		t.Fatal("child not elected within 30s")
	}
	return cmd
}

// childMain runs in the child: open, campaign, report, then hold the lease
// (renewing it) for at most two minutes.
func childMain() int {
	cfg := DefaultConfig()
	cfg.Endpoints = strings.Split(os.Getenv("COORD_CHILD_ENDPOINTS"), ",")
	cfg.Prefix = os.Getenv("COORD_CHILD_PREFIX")
	cfg.ID = os.Getenv("COORD_CHILD_ID")
	if ttl, err := strconv.Atoi(os.Getenv("COORD_CHILD_TTL")); err == nil {
		cfg.LeaseTTL = time.Duration(ttl) * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	if err := s.Campaign(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	fmt.Printf("ELECTED lease %x\n", s.Status().Lease)
	time.Sleep(2 * time.Minute)
	return 0
}
