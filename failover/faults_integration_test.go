package failover_test

// Faults beyond the clean ones, on the real pair: a passive that stops
// receiving before the active dies, an old active that is alive but
// refuses the fence, tandem stopping between two steps of a promotion,
// a lost state file, a switchover stuck on an open transaction.

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem/failover"
	"github.com/tandemdb/tandem/internal/faultrelay"
	"github.com/tandemdb/tandem/internal/testpair"
)

// TestPassiveNotReceivingThenActiveDies: b's I/O thread stops while writes
// go on. tandem records b as unsynced before the active acknowledges a
// write without it; when a then dies, b is not promoted (it lacks
// acknowledged writes), clients get the reason, and a serves again once it
// is back, with every acknowledged write.
func TestPassiveNotReceivingThenActiveDies(t *testing.T) {
	tn := setup(t)
	db := tn.client(t)
	db.SetMaxOpenConns(8)
	bdb := nodeDB(t, testpair.B)
	mustExec(t, bdb, "STOP SLAVE IO_THREAD")
	t.Cleanup(func() { _, _ = bdb.Exec("START SLAVE IO_THREAD") })

	w := startWorkload(t, db, "fo_unsynced", 2, 20000, 40*time.Second)
	defer w.stop()
	s := tn.waitStatus(t, 15*time.Second, "b unsynced", func(s failover.Status) bool { return s.Decision.Unsynced["b"] != "" })
	t.Logf("b unsynced: %s", s.Decision.Unsynced["b"])
	if _, ok := tn.events.await(failover.EventUnsynced, 5*time.Second); !ok {
		t.Error("no passive_unsynced event")
	}
	// Writes go on without b once it is recorded.
	marked := time.Now()
	w.waitAcks(t, w.acked()+50, 10*time.Second)
	if w.firstAckAfter(marked).IsZero() {
		t.Fatal("no write acknowledged after b was marked unsynced")
	}

	testpair.Kill(t, testpair.A)
	s = tn.waitStatus(t, 15*time.Second, "promotion refused", func(s failover.Status) bool { return s.State == "down" })
	e, ok := tn.events.await(failover.EventFailoverRefused, 5*time.Second)
	if !ok || !strings.Contains(e.Reason, "may lack writes") {
		t.Fatalf("failover_refused %v: %q; want it to say b may lack writes: %s", ok, e.Reason, describe(s))
	}
	if ro, err := readOnly(t, testpair.B); err != nil || !ro {
		t.Fatalf("node b read_only=%v (%v); an unsynced node must stay read-only", ro, err)
	}
	// A client is told why, at once.
	c := tn.client(t)
	_, err := c.Exec("INSERT INTO fo_marker VALUES (1, 'x')")
	if err == nil || !strings.Contains(err.Error(), "may lack writes") {
		t.Fatalf("a client's statement while no node may take writes: %v", err)
	}
	w.stop()

	testpair.Start(t, testpair.A)
	tn.waitStatus(t, 20*time.Second, "a serving again", func(s failover.Status) bool {
		return s.State == "active" && s.Decision.Active == "a" && !nodeStatus(s, "a").ReadOnly && nodeStatus(s, "a").FactsCurrent
	})
	mustExec(t, tn.client(t), "CREATE TABLE IF NOT EXISTS fo_marker (id INT PRIMARY KEY, v VARCHAR(32))")
	mustExec(t, tn.client(t), "REPLACE INTO fo_marker VALUES (2, 'a is back')")
	w.checkNoLoss(t, testpair.A)
	checkOneWriter(t, tn.m.Status())

	// b receives again: it catches up and is synced.
	mustExec(t, bdb, "START SLAVE IO_THREAD")
	s = tn.waitStatus(t, 30*time.Second, "b synced", func(s failover.Status) bool { return s.Decision.Unsynced["b"] == "" })
	if s.Decision.Active != "a" || s.Decision.Epoch != 1 {
		t.Fatalf("after b caught up: %s", describe(s))
	}
}

// newRelay starts a fault relay to target, closed when the test ends.
func newRelay(t testing.TB, target string, delay time.Duration) *faultrelay.Relay {
	t.Helper()
	r, err := faultrelay.New(target, delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// TestLiveActiveRefusingFenceIsNotReplaced: node a stays alive and
// writable but answers every new connection with an error (too many
// connections). Its checks fail, yet the fence's error proves it alive:
// tandem must not promote b, which would make two writable nodes.
func TestLiveActiveRefusingFenceIsNotReplaced(t *testing.T) {
	testpair.Require(t)
	t.Cleanup(func() { testpair.Reset(t) })
	forgetRecordedDecision(t)
	r := newRelay(t, testpair.Addr(testpair.A), 0)
	tn := startTandemAt(t, newStore(t), r.Addr(), testpair.Addr(testpair.B), nil)
	tn.waitStatus(t, 10*time.Second, "both nodes healthy", func(s failover.Status) bool {
		return s.State == "active" && nodeStatus(s, "a").Healthy && nodeStatus(s, "b").Healthy
	})

	r.Set(faultrelay.Refuse)
	s := tn.waitStatus(t, 15*time.Second, "promotion refused", func(s failover.Status) bool { return s.State == "down" })
	e, _ := tn.events.await(failover.EventFailoverRefused, 5*time.Second)
	if !strings.Contains(e.Reason, "answers but could not be fenced") {
		t.Fatalf("failover_refused reason %q; want it to say a answers: %s", e.Reason, describe(s))
	}
	if ro, err := readOnly(t, testpair.B); err != nil || !ro {
		t.Fatalf("node b read_only=%v (%v) while a is alive and writable", ro, err)
	}
	if ro, err := readOnly(t, testpair.A); err != nil || ro {
		t.Fatalf("node a read_only=%v (%v); it was never reached, so never fenced", ro, err)
	}
	if s.Decision.Active != "a" || s.Decision.Epoch != 1 || s.Decision.Promoting != "" {
		t.Fatalf("decision after the refusal: %s", describe(s))
	}

	r.Set(faultrelay.Forward)
	tn.waitStatus(t, 15*time.Second, "a serving again", func(s failover.Status) bool { return s.State == "active" && s.Decision.Active == "a" })
	db := tn.client(t)
	if got := port(t, db); got != testpair.Port(testpair.A) {
		t.Fatalf("serving from port %d; want node a's", got)
	}
}

// TestTandemStoppedMidPromotion: tandem stops (its state machine ends as in
// a crash) between two steps of a promotion; the next start undoes the
// steps before the save, or completes a promotion that was saved.
func TestTandemStoppedMidPromotion(t *testing.T) {
	for _, tc := range []struct {
		step   string
		active string // after the restart
		epoch  uint64
	}{
		{"fenced", "a", 1},
		{"replica_stopped", "a", 1},
		{"caught_up", "a", 1},
		{"saved", "b", 2},
	} {
		t.Run(tc.step, func(t *testing.T) {
			testpair.Require(t)
			t.Cleanup(func() { testpair.Reset(t) })
			forgetRecordedDecision(t)
			store := newStore(t)
			stopped := make(chan struct{})
			tn := startTandemAt(t, store, testpair.Addr(testpair.A), testpair.Addr(testpair.B), func(m *failover.Manager) {
				failover.SetStepHook(m, func(step string) {
					if step == tc.step {
						close(stopped)
						runtime.Goexit()
					}
				})
			})
			tn.waitStatus(t, 10*time.Second, "both nodes healthy", func(s failover.Status) bool {
				return s.State == "active" && nodeStatus(s, "a").Healthy && nodeStatus(s, "b").Healthy
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			go func() { _ = tn.m.Failover(ctx, true) }()
			select {
			case <-stopped:
			case <-ctx.Done():
				t.Fatalf("the promotion never reached step %s: %s", tc.step, describe(tn.m.Status()))
			}
			tn.stop()

			tn2 := startTandem(t, store)
			s := tn2.waitStatus(t, 20*time.Second, "one writer, the decided one, and b replicating if passive", func(s failover.Status) bool {
				act, pas := nodeStatus(s, tc.active), nodeStatus(s, otherNode(tc.active))
				ok := s.State == "active" && s.Decision.Active == tc.active && s.Decision.Promoting == "" &&
					act.FactsCurrent && !act.ReadOnly && pas.FactsCurrent && pas.ReadOnly
				if tc.active == "a" {
					ok = ok && pas.IORunning == "Yes" && pas.SQLRunning
				}
				return ok
			})
			if s.Decision.Epoch != tc.epoch {
				t.Fatalf("epoch %d; want %d: %s", s.Decision.Epoch, tc.epoch, describe(s))
			}
			checkOneWriter(t, s)
			db := tn2.client(t)
			mustExec(t, db, "CREATE TABLE IF NOT EXISTS fo_marker (id INT PRIMARY KEY, v VARCHAR(32))")
			mustExec(t, db, "REPLACE INTO fo_marker VALUES (1, 'after the restart')")
			want := testpair.A
			if tc.active == "b" {
				want = testpair.B
			}
			if got := port(t, db); got != testpair.Port(want) {
				t.Fatalf("serving from port %d; want node %s's", got, want)
			}
		})
	}
}

func otherNode(n string) string {
	if n == "a" {
		return "b"
	}
	return "a"
}

// TestLostStateFileReadsNodes: a tandem whose state file is gone reads the
// decision recorded on the nodes, not initial_active.
func TestLostStateFileReadsNodes(t *testing.T) {
	tn := setup(t)
	killAndFailOver(t, tn)
	// The decision is recorded on b in the background: wait for it.
	bdb := nodeDB(t, testpair.B)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var epoch uint64
		err := bdb.QueryRow("SELECT epoch FROM tandem.decision WHERE id = 1").Scan(&epoch)
		if err == nil && epoch == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("decision not recorded on b: epoch %d, %v", epoch, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tn.stop()

	tn2 := startTandem(t, newStore(t)) // initial_active is "a"
	s := tn2.waitStatus(t, 15*time.Second, "decided", func(s failover.Status) bool { return s.State == "active" })
	if s.Decision.Active != "b" || s.Decision.Epoch != 2 || !strings.Contains(s.Decision.Reason, "decision table") {
		t.Fatalf("without a state file: %s", describe(s))
	}
	if got := port(t, tn2.client(t)); got != testpair.Port(testpair.B) {
		t.Fatalf("serving from port %d; want node b's", got)
	}
}

// TestSwitchoverAbortWithStuckTransaction: a switchover waiting on an open
// transaction shows in the status, is aborted by the operator, and rolls
// back with no client error; the transaction then commits on a.
func TestSwitchoverAbortWithStuckTransaction(t *testing.T) {
	tn := setup(t)
	db := tn.client(t)
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS fo_marker (id INT PRIMARY KEY, v VARCHAR(32))")
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("REPLACE INTO fo_marker VALUES (7, 'in the stuck transaction')"); err != nil {
		t.Fatal(err)
	}
	type result struct {
		rep failover.SwitchoverReport
		err error
	}
	res := make(chan result, 1)
	go func() {
		rep, err := tn.m.Switchover(ctx, failover.SwitchoverOptions{Timeout: 30 * time.Second})
		res <- result{rep, err}
	}()
	tn.waitStatus(t, 10*time.Second, "switching over", func(s failover.Status) bool { return s.State == "switching_over" })
	if err := tn.m.AbortSwitchover(); err != nil {
		t.Fatal(err)
	}
	var got result
	select {
	case got = <-res:
	case <-time.After(10 * time.Second):
		t.Fatal("the switchover did not end after the abort")
	}
	if got.err == nil || !got.rep.RolledBack || !strings.Contains(got.err.Error(), "aborted") {
		t.Fatalf("switchover: %+v %v", got.rep, got.err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("the open transaction after the abort: %v", err)
	}
	s := tn.waitStatus(t, 5*time.Second, "active on a", func(s failover.Status) bool { return s.State == "active" })
	if s.Decision.Active != "a" || s.Decision.Epoch != 1 {
		t.Fatalf("after the abort: %s", describe(s))
	}
	var v string
	if err := nodeDB(t, testpair.A).QueryRow("SELECT v FROM " + testpair.AppDB + ".fo_marker WHERE id = 7").Scan(&v); err != nil {
		t.Fatalf("the committed row on a: %v", err)
	}
	if err := tn.m.AbortSwitchover(); !errors.Is(err, failover.ErrRefused) {
		t.Fatalf("abort with no switchover: %v", err)
	}
}
