package failover

// The state machine's sequences against fake nodes: every statement on a
// node, every save and every data path call lands in one ordered log.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/replication"
)

// healthy feeds RecoverAfter good checks of both nodes: a the writable
// semi-sync source, b its read-only replica, in sync at pos.
func (r *testRig) healthy(t *testing.T) {
	t.Helper()
	r.a.facts, r.b.facts = writer(t, 1, "0-1-10"), passive(t, 2, "0-1-10")
	r.b.facts.SemiSync.ReplicaOn = true
	for range r.m.cfg.RecoverAfter {
		r.observe("a")
		r.observe("b")
	}
	if r.m.state != StateActive || !r.m.node("a").healthy || !r.m.node("b").healthy {
		t.Fatalf("pair not healthy: state %v", r.m.state)
	}
	r.log.reset()
}

// observe feeds a good check of node with its fake's facts.
func (r *testRig) observe(node string) {
	f := r.a
	if node == "b" {
		f = r.b
	}
	facts, _ := f.Read(bg)
	r.m.observe(bg, Observation{Node: node, Time: time.Now(), Facts: facts})
}

func refusedErr() error {
	return fmt.Errorf("dial tcp 127.0.0.1:1: connect: %w", errors.Join(errors.New("connection refused"), errRefused))
}

// wantInOrder fails unless want appear in log in this order (others may
// come between).
func wantInOrder(t *testing.T, log []string, want ...string) {
	t.Helper()
	i := 0
	for _, l := range log {
		if i < len(want) && strings.HasPrefix(l, want[i]) {
			i++
		}
	}
	if i < len(want) {
		t.Fatalf("missing %q (in order %q) in:\n  %s", want[i], want, strings.Join(log, "\n  "))
	}
}

func wantAbsent(t *testing.T, log []string, prefixes ...string) {
	t.Helper()
	for _, l := range log {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				t.Fatalf("unexpected %q in:\n  %s", l, strings.Join(log, "\n  "))
			}
		}
	}
}

// A refused connection proves the process gone: one check starts the
// failover, and the promotion runs its steps in order.
func TestRefusedConnectionPromotesAtOnce(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.a.fail("kill_clients", refusedErr())
	r.a.fail("read_only", refusedErr())
	refused(r.m, "a")
	log := r.log.list()
	// The old node's fence and the candidate's stop run at once (two
	// nodes): each is in order, both before the catch-up.
	wantInOrder(t, log,
		"ctl hold", "ctl cut a",
		`save active=a epoch=1 promoting="b"`,
		"b semi_sync false", "b stop_receiving", "b wait_executed", "b stop_applier",
		`save active=b epoch=2 promoting="" unsynced=[a]`,
		"b read_only false", "ctl route b")
	wantInOrder(t, log, `save active=a epoch=1 promoting="b"`, "a kill_clients", "a read_only true", "b wait_executed")
	if d := r.store.get(); d.Active != "b" || d.Epoch != 2 || d.Promoting != "" || d.Unsynced["a"] == "" || !d.PendingRejoin {
		t.Fatalf("saved decision %+v", d)
	}
	if r.m.state != StateActive || len(events(r.m, EventFailoverFinished)) != 1 {
		t.Fatalf("state %v events %+v", r.m.state, r.m.Status().Events)
	}
}

// A timeout proves nothing: FailAfter checks are needed.
func TestTimeoutsNeedFailAfterChecks(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	for range r.m.cfg.FailAfter - 1 {
		bad(r.m, "a")
	}
	if log := r.log.list(); len(log) != 0 {
		t.Fatalf("acted on %d timeouts: %q", r.m.cfg.FailAfter-1, log)
	}
	bad(r.m, "a")
	wantInOrder(t, r.log.list(), "ctl hold", "b stop_receiving", "ctl route b")
}

// A live server that refuses the fence (a privilege error, too many
// connections) may still take writes: no promotion, and the journal and
// every step taken are undone.
func TestLiveOldActiveBlocksPromotion(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.a.fail("read_only", &mysql.MySQLError{Number: 1227, Message: "Access denied; you need (at least one of) the SUPER privilege(s)"})
	for range r.m.cfg.FailAfter {
		bad(r.m, "a")
	}
	log := r.log.list()
	wantInOrder(t, log, `save active=a epoch=1 promoting="b"`, "a read_only true", "b start_replica", `save active=a epoch=1 promoting=""`, "ctl down")
	wantInOrder(t, log, "b stop_receiving", "b start_replica") // stopped meanwhile, undone
	wantAbsent(t, log, "b wait_executed", "b read_only false", "ctl route b")
	if last := log[len(log)-1]; !strings.Contains(last, "answers but could not be fenced") {
		t.Fatalf("clients are told %q", last)
	}
	if d := r.store.get(); d.Active != "a" || d.Promoting != "" {
		t.Fatalf("decision %+v", d)
	}
}

// A catch-up that fails undoes the candidate's changes in reverse order.
func TestRefusalUndoesSteps(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.a.fail("kill_clients", refusedErr())
	r.a.fail("read_only", refusedErr())
	r.b.fail("wait_executed", errors.New("timed out waiting for GTIDs"))
	refused(r.m, "a")
	log := r.log.list()
	wantInOrder(t, log, "b semi_sync false", "b stop_receiving", "b wait_executed",
		"b semi_sync true", "b start_replica", `save active=a epoch=1 promoting=""`, "ctl down")
	wantAbsent(t, log, "b read_only false", "ctl route")
	if r.m.state != StateDown {
		t.Fatalf("state %v", r.m.state)
	}
}

// The proof that the candidate has every acknowledged write.
func TestDurableProof(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(r *testRig)
		want string
	}{
		{"sound", func(*testRig) {}, ""},
		{"unsynced", func(r *testRig) { r.m.dec.Unsynced = map[string]string{"b": "x"} }, "unsynced"},
		{"never seen", func(r *testRig) { r.m.node("a").good.Time = time.Time{} }, "never saw"},
		{"no semi-sync", func(r *testRig) { r.m.node("a").good.Facts.SemiSync.Known = false }, "no semi-synchronous"},
		{"fallen back", func(r *testRig) { r.m.node("a").good.Facts.SemiSync.SourceOn = false }, "without waiting"},
		{"disabled", func(r *testRig) { r.m.node("a").good.Facts.SemiSync.SourceEnabled = false }, "without waiting"},
		{"timeout may have passed", func(r *testRig) { r.m.node("a").ackWaitSince = time.Now().Add(-31 * time.Second) }, "fallen back"},
		{"old check, short timeout", func(r *testRig) {
			a := r.m.node("a")
			a.good.Facts.SemiSync.SourceTimeout = time.Second
			a.good.Time = time.Now().Add(-2 * time.Second)
			a.prevGood = a.good.Time.Add(-250 * time.Millisecond)
		}, "fallen back"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Decision{Active: "a", Epoch: 1})
			r.healthy(t)
			tc.edit(r)
			got := r.m.durable(r.m.node("a"), r.m.node("b"), time.Now())
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("durable = %q; want %q", got, tc.want)
			}
		})
	}
}

// An unsynced passive is never promoted automatically: clients get the
// reason, and a forced failover still may.
func TestUnsyncedPassiveNotPromoted(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.m.dec.Unsynced = map[string]string{"b": "2026-11-30T10:00:00Z: commits waited"}
	for range r.m.cfg.FailAfter {
		bad(r.m, "a")
	}
	log := r.log.list()
	wantAbsent(t, log, "b stop_receiving", "ctl route b", "save")
	if last := log[len(log)-1]; !strings.HasPrefix(last, "ctl down") || !strings.Contains(last, "may lack writes") {
		t.Fatalf("clients are told %q", last)
	}
	if len(events(r.m, EventFailoverRefused)) != 1 {
		t.Fatal("no failover_refused event")
	}
	r.a.fail("kill_clients", refusedErr())
	r.a.fail("read_only", refusedErr())
	if err := r.m.failover(bg, "operator", true); err != nil {
		t.Fatalf("forced failover: %v", err)
	}
	if d := r.store.get(); d.Active != "b" || d.Unsynced["b"] != "" {
		t.Fatalf("after a forced failover: %+v", d)
	}
}

// Commits waiting over AckTimeout: the passive is recorded unsynced
// (saved) before semi-sync goes off and writes continue; once it
// replicates again semi-sync comes back, and the mark goes once it caught
// up.
func TestDegradeThenResync(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.a.facts.SemiSync.WaitSessions = 1
	r.observe("a")
	a := r.m.node("a")
	if a.ackWaitSince.IsZero() {
		t.Fatal("waiting commits not noticed")
	}
	if log := r.log.list(); len(log) != 0 {
		t.Fatalf("acted at once: %q", log)
	}
	a.ackWaitSince = time.Now().Add(-r.m.cfg.AckTimeout) // as if checks went on that long
	r.observe("a")
	wantInOrder(t, r.log.list(), `save active=a epoch=1 promoting="" unsynced=[b]`, "a semi_sync false")
	if len(events(r.m, EventUnsynced)) != 1 {
		t.Fatal("no passive_unsynced event")
	}
	// b is back, acknowledging, replicating: semi-sync back on.
	r.log.reset()
	r.a.facts.SemiSync.WaitSessions, r.a.facts.SemiSync.SourceEnabled, r.a.facts.SemiSync.SourceOn = 0, false, false
	r.observe("b")
	r.observe("a")
	wantInOrder(t, r.log.list(), "a configure_semi_sync")
	if _, ok := r.m.dec.Unsynced["b"]; !ok {
		t.Fatal("cleared before b caught up")
	}
	// a's check shows semi-sync on; b's later check has a's position.
	r.a.facts.SemiSync.SourceEnabled, r.a.facts.SemiSync.SourceOn = true, true
	r.a.facts.CurrentPos = gtids(t, "0-1-20")
	r.observe("a")
	r.observe("b") // still at 0-1-10
	if _, ok := r.m.dec.Unsynced["b"]; !ok {
		t.Fatal("cleared while b lacked 0-1-20")
	}
	r.b.facts.CurrentPos = gtids(t, "0-1-20")
	r.observe("b")
	if _, ok := r.m.dec.Unsynced["b"]; ok || len(events(r.m, EventSynced)) != 1 {
		t.Fatalf("not cleared after b caught up: %+v", r.m.dec.Unsynced)
	}
	if d := r.store.get(); len(d.Unsynced) != 0 {
		t.Fatalf("clearing not saved: %+v", d)
	}
}

// Under a steady write load commits are waiting at every check, but
// acknowledgements keep coming: the passive is in sync, never degraded.
func TestBusyActiveNotDegraded(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	a := r.m.node("a")
	for i := range 20 {
		r.a.facts.SemiSync.WaitSessions = 3
		r.a.facts.SemiSync.YesTx = uint64(100 * (i + 1))
		r.observe("a")
		if !a.ackWaitSince.IsZero() {
			t.Fatalf("check %d: acknowledgements advance, yet commits taken as stuck", i)
		}
		a.good.Time = a.good.Time.Add(-time.Duration(20-i) * 250 * time.Millisecond) // as if spread over 5 s
	}
	if len(r.m.dec.Unsynced) != 0 || len(events(r.m, EventUnsynced)) != 0 {
		t.Fatalf("a busy, acknowledging passive was marked unsynced: %v", r.m.dec.Unsynced)
	}
	// Acknowledgements stop: stuck from the check before.
	r.observe("a")
	if a.ackWaitSince.IsZero() {
		t.Fatal("acknowledgements stopped with commits waiting, not noticed")
	}
}

// While no node takes traffic, an old active that answers again is waited
// for (RecoverAfter checks), never failed over away from; and a candidate
// not yet checked enough is named as such.
func TestDownWaitsForReturningActive(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.m.dec.Unsynced = map[string]string{"b": "x"}
	refused(r.m, "a")
	if r.m.state != StateDown {
		t.Fatalf("state %v", r.m.state)
	}
	delete(r.m.dec.Unsynced, "b") // b caught up meanwhile: a retry could promote it
	r.m.nextAttempt = time.Time{}
	r.log.reset()
	r.observe("a") // a answers once: not healthy yet
	r.observe("b")
	wantAbsent(t, r.log.list(), "b stop_receiving", "save", "ctl route b")
	r.observe("a")
	wantInOrder(t, r.log.list(), "ctl route a")
	if r.m.state != StateActive || r.m.dec.Active != "a" {
		t.Fatalf("state %v decision %+v", r.m.state, r.m.dec)
	}

	r = newRig(t, Decision{Active: "a", Epoch: 1})
	r.a.facts, r.b.facts = writer(t, 1, "0-1-10"), passive(t, 2, "0-1-10")
	r.observe("b") // one of RecoverAfter good checks
	if why := r.m.unsafeToPromote(r.m.node("b"), false); !strings.Contains(why, "answered 1 of the 2 checks") {
		t.Fatalf("reason %q", why)
	}
}

// A source that fell back by itself, or acknowledged commits without the
// replica between two checks, makes the passive unsynced.
func TestFallbackMarksUnsynced(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.a.facts.SemiSync.NoTx = 3
	r.observe("a")
	if why := r.m.dec.Unsynced["b"]; !strings.Contains(why, "acknowledged 3 commits") {
		t.Fatalf("unsynced = %q", why)
	}
	r = newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.a.facts.SemiSync.SourceOn = false
	r.observe("a")
	if why := r.m.dec.Unsynced["b"]; !strings.Contains(why, "status=false") {
		t.Fatalf("unsynced = %q", why)
	}
}

// A crash (the step hook ends the goroutine) between two steps of a
// promotion leaves a journal; the next run undoes it on the candidate.
func TestRestartUndoesJournaledPromotion(t *testing.T) {
	for _, step := range []string{"journaled", "fenced", "replica_stopped", "caught_up"} {
		t.Run(step, func(t *testing.T) {
			r := newRig(t, Decision{Active: "a", Epoch: 1})
			r.healthy(t)
			r.a.fail("kill_clients", refusedErr())
			r.a.fail("read_only", refusedErr())
			r.m.step = func(name string) {
				if name == step {
					runtime.Goexit()
				}
			}
			done := make(chan struct{})
			go func() { defer close(done); refused(r.m, "a") }()
			<-done
			d := r.store.get()
			if d.Promoting != "b" || d.Active != "a" {
				t.Fatalf("after a crash at %s: %+v", step, d)
			}
			// The next run, with the same store and nodes.
			r.log.reset()
			r.start(t, nil)
			r.observe("b")
			wantInOrder(t, r.log.list(), "b start_replica", "b semi_sync true", `save active=a epoch=1 promoting=""`)
		})
	}
	// After the save, the decision stands: the next run completes it.
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.a.fail("kill_clients", refusedErr())
	r.a.fail("read_only", refusedErr())
	r.m.step = func(name string) {
		if name == "saved" {
			runtime.Goexit()
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); refused(r.m, "a") }()
	<-done
	if d := r.store.get(); d.Active != "b" || d.Promoting != "" {
		t.Fatalf("after a crash after the save: %+v", r.store.get())
	}
	r.log.reset()
	r.start(t, nil)
	refused(r.m, "a")
	refused(r.m, "a")
	for range r.m.cfg.RecoverAfter {
		r.observe("b") // b: read-only, a gone: b is unfenced
	}
	wantInOrder(t, r.log.list(), "b read_only false")
}

// Without a saved decision: the highest recorded epoch wins; with none,
// the only writable node; with two writable (or none), nothing changes
// until an operator chooses.
func TestBootstrap(t *testing.T) {
	r := newRig(t, Decision{})
	if r.m.state != StateUndecided || r.m.Decision().Active != "" {
		t.Fatalf("state %v decision %+v", r.m.state, r.m.Decision())
	}
	r.a.facts, r.b.facts = writer(t, 1, "0-1-10"), passive(t, 2, "0-1-10")
	r.a.recorded = &Decision{Active: "a", Epoch: 3}
	r.b.recorded = &Decision{Active: "b", Epoch: 4, Excluded: map[string]string{"a": "errant"}}
	r.observe("a")
	if r.m.state != StateUndecided {
		t.Fatal("decided before hearing from b")
	}
	r.observe("b")
	if d := r.store.get(); d.Active != "b" || d.Epoch != 4 || d.Excluded["a"] != "errant" {
		t.Fatalf("adopted %+v; want b at epoch 4 with a excluded", d)
	}

	r = newRig(t, Decision{})
	r.a.facts, r.b.facts = writer(t, 1, "0-1-10"), passive(t, 2, "0-1-10")
	r.observe("a")
	r.observe("b")
	if d := r.store.get(); d.Active != "a" || d.Epoch != 1 || r.m.state != StateActive {
		t.Fatalf("adopted %+v state %v; want the only writable node a", d, r.m.state)
	}
	wantInOrder(t, r.log.list(), "save active=a epoch=1", "ctl route a")

	r = newRig(t, Decision{})
	r.a.facts, r.b.facts = passive(t, 1, "0-1-10"), passive(t, 2, "0-1-10")
	r.observe("a")
	r.observe("b")
	log := r.log.list()
	wantAbsent(t, log, "save", "a read_only", "b read_only", "ctl route")
	if last := log[len(log)-1]; !strings.HasPrefix(last, "ctl down") || !strings.Contains(last, "operator must choose") {
		t.Fatalf("clients are told %q", last)
	}
	rep, err := r.m.switchover(bg, SwitchoverOptions{To: "b"})
	if err != nil {
		t.Fatalf("operator's choice: %v", err)
	}
	wantInOrder(t, r.log.list(), "a kill_clients", "a read_only true", "save active=b epoch=1", "ctl route b")
	if rep.To != "b" || r.m.state != StateActive {
		t.Fatalf("report %+v state %v", rep, r.m.state)
	}
}

// A switchover waiting for a stuck transaction shows in the status, can
// be aborted, and rolls back with no change on the nodes.
func TestSwitchoverAbort(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.ctl.busy.Store(1)
	type result struct {
		rep SwitchoverReport
		err error
	}
	res := make(chan result, 1)
	go func() {
		rep, err := r.m.switchover(bg, SwitchoverOptions{Timeout: 30 * time.Second})
		res <- result{rep, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for r.m.Status().State != "switching_over" {
		if time.Now().After(deadline) {
			t.Fatal("status never showed switching_over")
		}
		time.Sleep(time.Millisecond)
	}
	if err := r.m.AbortSwitchover(); err != nil {
		t.Fatal(err)
	}
	got := <-res
	if got.err == nil || !strings.Contains(got.err.Error(), "aborted by operator") || !got.rep.RolledBack {
		t.Fatalf("switchover: %+v, %v", got.rep, got.err)
	}
	wantAbsent(t, r.log.list(), "a read_only", "b read_only", "save", "ctl route")
	if r.m.state != StateActive || r.m.Status().State != "active" {
		t.Fatalf("state after abort: %v", r.m.state)
	}
	if err := r.m.AbortSwitchover(); err == nil {
		t.Fatal("abort with no switchover running accepted")
	}
}

// Checks go on while a switchover waits: the active failing ends it, and
// the caller going away does too; the timeout is capped.
func TestSwitchoverEndsWhenActiveFailsOrCallerLeaves(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.ctl.busy.Store(1)
	go func() {
		for range r.m.cfg.FailAfter {
			r.m.obs <- Observation{Node: "a", Time: time.Now(), Err: errors.New("i/o timeout")}
		}
	}()
	_, err := r.m.switchover(bg, SwitchoverOptions{Timeout: 30 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "failed during the switchover") {
		t.Fatalf("switchover: %v", err)
	}
	if a := r.m.node("a"); a.healthy {
		t.Fatal("the failures seen during the switchover were not counted")
	}

	r = newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.ctl.busy.Store(1)
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	_, err = r.m.switchover(ctx, SwitchoverOptions{Timeout: 30 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "went away") {
		t.Fatalf("switchover: %v", err)
	}
	if _, err := r.m.switchover(bg, SwitchoverOptions{Timeout: 2 * r.m.cfg.MaxSwitchoverTimeout}); err == nil || !errors.Is(err, ErrRefused) {
		t.Fatalf("a timeout over the maximum: %v", err)
	}
	if slices.Contains(r.log.list(), "ctl route b") {
		t.Fatal("routed")
	}
}

// A candidate's lag counts up to the old active's last sign of life: a
// dead active writes no heartbeat, so the plain age grows without the
// candidate falling behind.
func TestLagMeasuredToLastSignOfLife(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	a, b := r.m.node("a"), r.m.node("b")
	b.good.Lag, b.good.LagKnown = 8*time.Second, true
	a.good.Time = b.good.Time.Add(-7800 * time.Millisecond) // a last answered 7.8 s before b's check
	if why := r.m.unsafeToPromote(b, false); why != "" {
		t.Fatalf("b was 200 ms behind when a was last seen: %q", why)
	}
	a.good.Time = b.good.Time.Add(-2 * time.Second)
	if why := r.m.unsafeToPromote(b, false); !strings.Contains(why, "lagged 6s") {
		t.Fatalf("b was 6 s behind: %q", why)
	}
}

// When heartbeats had stopped before the active's last check (no tandem
// led: etcd was lost), the age of the row on the candidate counts the
// time nobody wrote; the lag is then the active's own row against the
// candidate's.
func TestLagWhenHeartbeatsStopped(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	a, b := r.m.node("a"), r.m.node("b")
	now := time.Now()
	stopped := now.Add(-9 * time.Second) // the last heartbeat anyone wrote
	b.good.Time, b.good.Lag, b.good.LagKnown, b.good.Heartbeat = now, 9*time.Second, true, stopped
	a.good.Time, a.good.Heartbeat = now.Add(-time.Second), stopped // a died 8 s after the last heartbeat
	if why := r.m.unsafeToPromote(b, false); why != "" {
		t.Fatalf("b had a's last heartbeat: %q", why)
	}
	b.good.Heartbeat = stopped.Add(-6 * time.Second)
	b.good.Lag = 15 * time.Second
	if why := r.m.unsafeToPromote(b, false); !strings.Contains(why, "lagged 6s") {
		t.Fatalf("b was 6 s behind a's last heartbeat: %q", why)
	}
	// Heartbeats still flowing at a's last check: the plain age counts.
	a.good.Heartbeat = a.good.Time.Add(-100 * time.Millisecond)
	b.good.Heartbeat, b.good.Lag = a.good.Heartbeat.Add(-7*time.Second), 8*time.Second
	if why := r.m.unsafeToPromote(b, false); !strings.Contains(why, "lagged 7s") {
		t.Fatalf("b was 7 s behind: %q", why)
	}
}

// A returning node rejoins (the active replicates from it again) only once
// it holds everything the active has: crash recovery may have dropped
// commits the active received, which it gets back first.
func TestRejoinWaitsUntilCaughtUp(t *testing.T) {
	r := newRig(t, Decision{Active: "b", Epoch: 2, PromotedAt: "0-1-10", PendingRejoin: true})
	r.b.facts = writer(t, 2, "0-2-30")
	r.b.facts.SemiSync.ReplicaOn = true
	r.a.facts = passive(t, 1, "0-1-10") // still behind b
	for range r.m.cfg.RecoverAfter {
		r.observe("b")
		r.observe("a")
	}
	wantAbsent(t, r.log.list(), "b start_replica")
	r.a.facts = passive(t, 1, "0-2-30")
	r.observe("a")
	wantInOrder(t, r.log.list(), "b start_replica")
	if r.m.dec.PendingRejoin {
		t.Fatal("still pending")
	}
	// The active's I/O thread then stops on 1236: rejoin again.
	r.log.reset()
	r.b.facts.Replica.IORunning, r.b.facts.Replica.LastIOErrno = replication.IONo, 1236
	r.observe("b")
	if !r.m.dec.PendingRejoin {
		t.Fatal("a 1236 on the active did not reopen the rejoin")
	}
	r.observe("a")
	wantInOrder(t, r.log.list(), "b start_replica")
}

// An operator clears the exclusion of a rebuilt node; one still holding
// transactions of its own beyond the promotion point is excluded again.
func TestClearExclusion(t *testing.T) {
	r := newRig(t, Decision{Active: "b", Epoch: 2, PromotedAt: "0-1-10",
		Excluded: map[string]string{"a": "errant transactions 0-1-11"}})
	r.b.facts = writer(t, 2, "0-2-30")
	r.a.facts = passive(t, 1, "0-1-11") // still errant
	r.observe("b")
	r.observe("a")
	if err := r.m.clearExclusion(bg, "a"); err == nil || !strings.Contains(err.Error(), "still holds") {
		t.Fatalf("clearing a still errant node: %v", err)
	}
	if r.m.dec.Excluded["a"] == "" {
		t.Fatal("not excluded again")
	}
	r.a.facts = passive(t, 1, "0-2-30") // rebuilt from b
	r.observe("a")
	if err := r.m.clearExclusion(bg, "a"); err != nil {
		t.Fatal(err)
	}
	if d := r.store.get(); len(d.Excluded) != 0 {
		t.Fatalf("saved decision still excludes: %+v", d.Excluded)
	}
	if err := r.m.clearExclusion(bg, "a"); err == nil {
		t.Fatal("clearing a node that is not excluded was accepted")
	}
}

// A promotion refused because the candidate was marked unsynced is tried
// again as soon as the candidate is recorded synced, not RetryInterval
// after the refusal (seen on the namespace hosts: the active killed right
// after its peer rejoined waited 2 s for the retry).
func TestSyncedCandidatePromotedWithoutWaitingForRetry(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.m.dec.Unsynced = map[string]string{"b": "2026-11-30T10:00:00Z: promoted a without it"}
	r.b.facts.CurrentPos = gtids(t, "0-1-9") // behind a's last known position
	r.observe("b")
	refused(r.m, "a") // a is gone
	if r.m.state != StateDown {
		t.Fatalf("state %v; want down (b unsynced)", r.m.state)
	}
	r.observe("b") // a retry, refused: b still lacks 0-1-10
	if r.m.state != StateDown || r.m.nextAttempt.IsZero() {
		t.Fatalf("state %v, next attempt %v", r.m.state, r.m.nextAttempt)
	}
	r.b.facts.CurrentPos = gtids(t, "0-1-10") // b caught up with a's last position
	r.observe("b")
	r.observe("b")
	if _, ok := r.m.dec.Unsynced["b"]; ok || len(events(r.m, EventSynced)) != 1 {
		t.Fatalf("b not recorded synced: %+v", r.m.dec.Unsynced)
	}
	if r.m.state != StateActive || r.m.dec.Active != "b" {
		t.Fatalf("state %v, decision %+v: want b promoted at once, not after RetryInterval", r.m.state, r.m.dec)
	}
	wantInOrder(t, r.log.list(), "b stop_receiving", "ctl route b")
}

// A node that is not the active comes back writable with commits waiting
// for an acknowledgement nobody sends (a SIGSTOPped old active,
// continued): they are released before the fence, whose read_only would
// wait for them; without waiting commits, semi-sync is left alone.
func TestStrayWriterCommitsReleasedBeforeFence(t *testing.T) {
	for _, waiting := range []int{2, 0} {
		r := newRig(t, Decision{Active: "b", Epoch: 2})
		good(r.m, "b", writer(t, 2, "0-2-20"))
		fa := writer(t, 1, "0-2-20")
		fa.SemiSync.WaitSessions = waiting
		r.log.reset()
		good(r.m, "a", fa)
		log := r.log.list()
		if waiting > 0 {
			wantInOrder(t, log, "a semi_sync false", "a kill_clients", "a read_only true")
		} else {
			wantInOrder(t, log, "a kill_clients", "a read_only true")
			wantAbsent(t, log, "a semi_sync")
		}
	}
}
