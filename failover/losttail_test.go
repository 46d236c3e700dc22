package failover

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/tandemdb/tandem/replication"
)

// A passive whose gtid_slave_pos names a transaction of its own that its
// binlog lost is repaired (gtid_slave_pos moved back), not counted synced;
// once its position went past it (the active's gtid_binlog_state has it,
// the passive's not), tandem warns but does not exclude it.
func TestPassiveLostOwnTail(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.a.facts = writer(t, 1, "0-2-11")
	r.a.facts.BinlogState = []mysql.MariadbGTID{{DomainID: 0, ServerID: 1, SequenceNumber: 10}, {DomainID: 0, ServerID: 2, SequenceNumber: 11}}
	lost := passive(t, 2, "0-2-11")
	lost.BinlogPos = gtids(t, "0-2-10")
	lost.SlavePos = gtids(t, "0-2-11")
	lost.BinlogState = []mysql.MariadbGTID{{DomainID: 0, ServerID: 1, SequenceNumber: 9}, {DomainID: 0, ServerID: 2, SequenceNumber: 10}}
	r.b.facts = lost
	r.observe("a")
	r.observe("b")
	wantInOrder(t, r.log.list(), "b resume lost_tail")
	if len(r.m.dec.Excluded) != 0 {
		t.Fatalf("repairable node excluded: %v", r.m.dec.Excluded)
	}
	if replication.Contains(lost.Executed(), r.a.facts.Executed()) {
		t.Fatalf("Executed %s of the node with a lost tail contains the active's %s", lost.Executed(), r.a.facts.Executed())
	}

	// The active wrote on; the passive's replication went past 0-2-11.
	r.a.facts = writer(t, 1, "0-1-12")
	r.a.facts.BinlogState = []mysql.MariadbGTID{{DomainID: 0, ServerID: 1, SequenceNumber: 12}, {DomainID: 0, ServerID: 2, SequenceNumber: 11}}
	past := passive(t, 2, "0-1-12")
	past.SlavePos = gtids(t, "0-1-12")
	past.BinlogState = []mysql.MariadbGTID{{DomainID: 0, ServerID: 1, SequenceNumber: 12}, {DomainID: 0, ServerID: 2, SequenceNumber: 10}}
	r.b.facts = past
	r.observe("a")
	r.observe("b")
	// Lost for good, or a stale gtid_binlog_state after a crash: SQL
	// cannot tell, so the node is not excluded (checkSkippedOwn warns).
	if why := r.m.dec.Excluded["b"]; why != "" || len(events(r.m, EventErrant)) != 0 {
		t.Fatalf("excluded (%q) on a gtid_binlog_state that may be stale", why)
	}
	if got := r.m.node("b").skippedWarned; got != "0-2-11" {
		t.Fatalf("warned about %q; want 0-2-11", got)
	}
}

// A node that came up with skip_slave_start (replica threads stopped, no
// error, no START SLAVE since the server started) has its replication
// started by tandem (Resume); threads an operator stopped later (a START
// SLAVE was counted) are left alone, as is a writable node.
func TestResumeAfterBoot(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	booted := passive(t, 2, "0-1-10")
	booted.Replica.IORunning, booted.Replica.SQLRunning = replication.IONo, false
	r.b.facts = booted
	r.log.reset()
	r.observe("b")
	wantInOrder(t, r.log.list(), "b resume")

	stopped := booted
	stopped.ReplicaStarts = 3
	r.b.facts = stopped
	r.log.reset()
	r.observe("b")
	wantAbsent(t, r.log.list(), "b resume")
}

// A restarted active whose crash recovery dropped transactions of its own
// that its peer received (the peer's gtid_binlog_state has them, its own
// not) is not made writable until it took them back: its replication is
// started (even with a rejoin pending) and it is unfenced only once it
// holds them.
func TestActiveTakesBackOwnTailBeforeWriting(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1, PendingRejoin: true})
	r.healthy(t)
	peer := passive(t, 2, "0-1-12")
	peer.BinlogState = []mysql.MariadbGTID{{DomainID: 0, ServerID: 1, SequenceNumber: 12}, {DomainID: 0, ServerID: 2, SequenceNumber: 4}}
	r.b.facts = peer
	restarted := writer(t, 1, "0-1-11")
	restarted.ReadOnly = true
	restarted.BinlogState = []mysql.MariadbGTID{{DomainID: 0, ServerID: 1, SequenceNumber: 11}, {DomainID: 0, ServerID: 2, SequenceNumber: 4}}
	restarted.Replica.IORunning, restarted.Replica.SQLRunning = replication.IONo, false
	r.a.facts = restarted
	r.log.reset()
	r.observe("b")
	r.observe("a")
	wantInOrder(t, r.log.list(), "a resume")
	wantAbsent(t, r.log.list(), "a read_only false")

	// Still missing while its replication runs: still fenced, not
	// resumed again.
	r.a.facts.Replica.IORunning, r.a.facts.Replica.SQLRunning = replication.IOYes, true
	r.log.reset()
	r.observe("a")
	wantAbsent(t, r.log.list(), "a read_only false", "a resume")

	// It took 0-1-12 back: writable.
	back := writer(t, 1, "0-1-12")
	back.ReadOnly = true
	back.BinlogState = peer.BinlogState
	r.a.facts = back
	r.log.reset()
	r.observe("b")
	r.observe("a")
	wantInOrder(t, r.log.list(), "a read_only false")
}

// A restarted active that cannot be compared with its peer (down) has its
// GTID sequence moved past what its crash recovery may have dropped before
// it is made writable, with the peer recorded unsynced and semi-sync off;
// one that could be compared (nothing missing) is unfenced as it is.
func TestRestartedActiveSkipsLostSequenceWhenPeerUnreachable(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	for range r.m.cfg.FailAfter {
		bad(r.m, "b")
	}
	r.a.facts = restarted(t, 1, "0-1-10")
	r.log.reset()
	r.observe("a")
	wantInOrder(t, r.log.list(), "a semi_sync false", "a skip_lost_sequence", "a read_only false")
	if why := r.m.dec.Unsynced["b"]; !strings.Contains(why, "restarted while b could not be reached") {
		t.Fatalf("b unsynced %q; want the restart named", why)
	}

	// The peer answers: compared with it once it has been checked since
	// the active came back (an older check may miss commits it received
	// just before the active died), then unfenced as it is.
	r = newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	r.a.facts = restarted(t, 1, "0-1-10")
	r.log.reset()
	r.observe("a")
	wantAbsent(t, r.log.list(), "a read_only false", "a skip_lost_sequence")
	r.observe("b")
	r.observe("a")
	wantInOrder(t, r.log.list(), "a read_only false")
	wantAbsent(t, r.log.list(), "a skip_lost_sequence")
}

// When the node whose gtid_slave_pos checkResume moved back then stops on
// a row it already has (its data held what its binary log lost), the
// position is put back (UndoResume); once it holds the lost tail, nothing
// is undone.
func TestUndoResumeWhenDataHeldTheTail(t *testing.T) {
	lostFacts := func(t *testing.T) replication.Facts {
		f := passive(t, 2, "0-2-11")
		f.BinlogPos = gtids(t, "0-2-10")
		f.SlavePos = gtids(t, "0-2-11")
		f.Replica.IORunning, f.Replica.SQLRunning = replication.IONo, false
		return f
	}
	for _, tt := range []struct {
		name  string
		after func(f *replication.Facts)
		undo  bool
	}{
		{"duplicate key", func(f *replication.Facts) { f.Replica.LastSQLErrno = 1062 }, true},
		{"row not found", func(f *replication.Facts) { f.Replica.LastSQLErrno = 1032 }, true},
		{"other error", func(f *replication.Facts) { f.Replica.LastSQLErrno = 1146 }, false},
		{"tail taken back, a later duplicate", func(f *replication.Facts) {
			f.CurrentPos, f.BinlogPos = gtids(t, "0-2-11"), gtids(t, "0-2-11")
			f.Replica.LastSQLErrno = 1062
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, Decision{Active: "a", Epoch: 1})
			r.healthy(t)
			r.a.facts = writer(t, 1, "0-2-11")
			r.b.facts = lostFacts(t)
			r.observe("b")
			wantInOrder(t, r.log.list(), "b resume lost_tail")
			// Moved back to 0-2-10 and started.
			f := passive(t, 2, "0-2-10")
			f.ReplicaStarts = 1
			f.Replica.IORunning = replication.IOYes
			f.Replica.SQLRunning = false
			tt.after(&f)
			r.b.facts = f
			r.log.reset()
			r.observe("b")
			if got := slices.Contains(r.log.list(), "b undo_resume"); got != tt.undo {
				t.Fatalf("undo_resume %v; want %v: %q", got, tt.undo, r.log.list())
			}
			if !tt.undo {
				return
			}
			// Put back: gtid_slave_pos names the tail again, which its
			// data holds: neither moved back again nor excluded once
			// the node replicated past it.
			held := lostFacts(t)
			held.ReplicaStarts = 2
			held.Replica.IORunning, held.Replica.SQLRunning = replication.IOYes, true
			r.b.facts = held
			r.log.reset()
			r.observe("b")
			wantAbsent(t, r.log.list(), "b resume")
			r.a.facts = writer(t, 1, "0-1-12")
			r.a.facts.BinlogState = []mysql.MariadbGTID{{DomainID: 0, ServerID: 1, SequenceNumber: 12}, {DomainID: 0, ServerID: 2, SequenceNumber: 11}}
			past := passive(t, 2, "0-1-12")
			past.ReplicaStarts = 2
			past.SlavePos = gtids(t, "0-1-12")
			past.BinlogState = []mysql.MariadbGTID{{DomainID: 0, ServerID: 1, SequenceNumber: 12}, {DomainID: 0, ServerID: 2, SequenceNumber: 10}}
			r.b.facts = past
			r.observe("a")
			r.observe("b")
			if why := r.m.dec.Excluded["b"]; why != "" {
				t.Fatalf("excluded for a tail its data holds: %s", why)
			}
		})
	}
}

// The active comes back read-only after both nodes were down (a restart):
// traffic is held, not routed to it, until it has been made writable;
// then it is routed. Clients wait instead of getting 1290 in between.
func TestActiveBackReadOnlyHoldsTrafficUntilWritable(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	bothDown(r.m)
	if r.m.state != StateDown {
		t.Fatalf("state %v; want down with both nodes gone", r.m.state)
	}
	r.a.facts = restarted(t, 1, "0-1-10")
	r.log.reset()
	for range r.m.cfg.RecoverAfter {
		r.observe("a")
	}
	got := r.log.list()
	wantInOrder(t, got, "ctl hold", "a skip_lost_sequence", "a read_only false", "ctl route a")
	if i, j := slices.Index(got, "ctl route a"), slices.IndexFunc(got, func(l string) bool { return strings.HasPrefix(l, "a read_only false") }); i < j {
		t.Fatalf("routed to a before it was writable:\n  %s", strings.Join(got, "\n  "))
	}
	if r.m.state != StateActive || len(events(r.m, EventRecovered)) != 1 {
		t.Fatalf("state %v, events %+v", r.m.state, r.m.Status().Events)
	}

	// Back writable (it was never restarted, only unreachable): routed at
	// once, as before.
	r = newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	bothDown(r.m)
	r.log.reset()
	for range r.m.cfg.RecoverAfter {
		r.observe("a")
	}
	got = r.log.list()
	wantInOrder(t, got, "ctl route a")
	wantAbsent(t, got, "ctl hold")
}

// Traffic held for a read-only active is routed as soon as a check finds
// the active writable, also when tandem's own unfence failed (its answer
// lost, or an operator made the node writable): never held for good.
func TestHeldTrafficRoutedWhenActiveFoundWritable(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	r.healthy(t)
	bothDown(r.m)
	r.a.facts = restarted(t, 1, "0-1-10")
	r.a.fail("read_only", errors.New("i/o timeout"))
	r.log.reset()
	for range r.m.cfg.RecoverAfter {
		r.observe("a")
	}
	wantInOrder(t, r.log.list(), "ctl hold", "a read_only false")
	wantAbsent(t, r.log.list(), "ctl route")
	r.a.facts = writer(t, 1, "0-1-1000") // writable after all
	r.observe("a")
	wantInOrder(t, r.log.list(), "ctl hold", "ctl route a")
}

// The sequence move fails (the node refused, or reading its binary log
// outlasted catchup_timeout): the restarted active stays read-only and
// traffic stays held; the next check tries again, and once it succeeds
// the active is made writable and routed to.
func TestSkipLostSequenceFailureKeepsActiveFenced(t *testing.T) {
	r := newRig(t, Decision{Active: "a", Epoch: 1})
	// The step reads binary logs: bounded by catchup_timeout, not by
	// the shorter fence_timeout.
	r.m.cfg.CatchupTimeout = time.Minute
	r.healthy(t)
	bothDown(r.m)
	r.a.facts = restarted(t, 1, "0-1-10")
	r.a.fail("skip_lost_sequence", context.DeadlineExceeded)
	r.log.reset()
	for range r.m.cfg.RecoverAfter + 1 {
		r.observe("a")
	}
	got := r.log.list()
	if n := len(slices.DeleteFunc(slices.Clone(got), func(l string) bool { return l != "a skip_lost_sequence" })); n < 2 {
		t.Fatalf("skip_lost_sequence tried %d times; want a retry at the next check:\n  %s", n, strings.Join(got, "\n  "))
	}
	wantAbsent(t, got, "a read_only false", "ctl route")
	r.a.mu.Lock()
	budget := r.a.skipBudget
	r.a.mu.Unlock()
	if budget <= r.m.cfg.FenceTimeout {
		t.Fatalf("SkipLostSequence given %v; want catchup_timeout (%v), more than fence_timeout (%v)", budget, r.m.cfg.CatchupTimeout, r.m.cfg.FenceTimeout)
	}
	r.a.fail("skip_lost_sequence", nil)
	r.log.reset()
	r.observe("a")
	wantInOrder(t, r.log.list(), "a skip_lost_sequence", "a read_only false", "ctl route a")
}

// restarted is the facts of a node back from a restart (skip_slave_start):
// read-only, its replication threads stopped.
func restarted(t *testing.T, serverID uint32, pos string) replication.Facts {
	t.Helper()
	f := writer(t, serverID, pos)
	f.ReadOnly = true
	f.Replica.IORunning, f.Replica.SQLRunning = replication.IONo, false
	return f
}

// bothDown fails b's checks, then a's: tandem is down, a still the active.
func bothDown(m *Manager) {
	for range m.cfg.FailAfter {
		bad(m, "b")
	}
	for range m.cfg.FailAfter {
		bad(m, "a")
	}
}
