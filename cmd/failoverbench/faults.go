package main

// The fault matrix beyond kill, stop and switchover: each round function
// injects one fault under the workload and says what tandem did.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tandemdb/tandem/failover"
	"github.com/tandemdb/tandem/internal/faultrelay"
)

// slowLimit bounds the workload of one slow round.
const slowLimit = 2 * time.Minute

// loaded is tandem in-process with the workload running through it.
type loaded struct {
	tn *tandem
	db *sql.DB
	w  *workload
}

func (l *loaded) close() {
	if l.w != nil {
		l.w.stop()
	}
	if l.db != nil {
		l.db.Close()
	}
	if l.tn != nil {
		l.tn.stop()
	}
}

// startLoaded starts tandem (node a reached at addrA), waits until both
// nodes are healthy and a is active, and runs the workload through it for
// the warm-up.
func startLoaded(o options, listen, addrA string) (*loaded, error) {
	l := &loaded{}
	var err error
	if l.tn, err = startTandem(o, listen, addrA); err != nil {
		return l, fmt.Errorf("starting tandem: %w", err)
	}
	if err := l.tn.waitStatus(15*time.Second, func(s failover.Status) bool {
		return s.State == "active" && s.Decision.Active == "a" && healthy(s, "a") && healthy(s, "b")
	}); err != nil {
		return l, fmt.Errorf("tandem not ready: %w", err)
	}
	if l.db, err = l.tn.client(o.writers + o.txs + o.readers + 2); err != nil {
		return l, err
	}
	if l.w, err = startWorkload(l.db, o, slowLimit); err != nil {
		return l, fmt.Errorf("workload: %w", err)
	}
	time.Sleep(o.warmup)
	if l.w.acked() == 0 {
		return l, fmt.Errorf("no write acknowledged during the warm-up; errors: %v", lastN(l.w.errorList(), 5))
	}
	return l, nil
}

// waitFor is waitStatus returning the status that matched.
func (tn *tandem) waitFor(timeout time.Duration, ok func(failover.Status) bool) (failover.Status, error) {
	var got failover.Status
	err := tn.waitStatus(timeout, func(s failover.Status) bool {
		got = s
		return ok(s)
	})
	return got, err
}

func findEvent(s failover.Status, t failover.EventType) (failover.Event, bool) {
	for i := len(s.Events) - 1; i >= 0; i-- {
		if s.Events[i].Type == t {
			return s.Events[i], true
		}
	}
	return failover.Event{}, false
}

func nodeOf(s failover.Status, name string) failover.NodeStatus {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n
		}
	}
	return failover.NodeStatus{}
}

// waitWrite waits for an acknowledged write after t.
func waitWrite(w *workload, t time.Time, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		if first := w.firstWriteAfter(t); !first.IsZero() {
			return first, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no write acknowledged within %v; last errors: %v", limit, lastN(w.errorList(), 3))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func lastN(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// probe runs one INSERT through tandem on a new connection and returns its
// error (what a client is told).
func probe(addr string) error {
	db, err := clientAt(addr, 1)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err = db.ExecContext(ctx, "INSERT INTO fb_counter VALUES (1000000, 0) ON DUPLICATE KEY UPDATE n = n + 1")
	return err
}

// settle ends a round: the workload stops after o.after, and its counts,
// errors and the acknowledged writes missing on node `on` go in res.
func settle(o options, w *workload, t0 time.Time, on string, res *result) error {
	time.Sleep(o.after)
	w.stop()
	res.gap = w.longestGap(t0)
	res.acked, res.txCommited = w.counts()
	res.errs, res.maxPerWorker = w.errorCounts()
	res.told = w.firstMessage(1105)
	if first := w.firstErrorAfter(t0); !first.IsZero() {
		if after := w.firstWriteAfter(first); !after.IsZero() {
			res.outage = after.Sub(first)
		}
	}
	addr := o.addrA
	if on == "b" {
		addr = o.addrB
	}
	res.checkedOn = on
	missing, err := w.missingOn(addr)
	if err != nil {
		return fmt.Errorf("checking acknowledged writes on %s: %w", on, err)
	}
	res.missing = missing
	return nil
}

func newResult(mode string, n int) (*result, func(format string, args ...any) result) {
	res := &result{mode: mode, n: n, errs: map[string]int{}}
	return res, func(format string, args ...any) result {
		res.err = fmt.Sprintf(format, args...)
		return *res
	}
}

// ---------------------------------------------------------------- passive-not-receiving

// roundPassiveNotReceiving: b's I/O thread stops under load; tandem marks
// b unsynced and writes go on; then a is killed: b must not be promoted,
// clients are told why; a restarted serves again with every write.
func roundPassiveNotReceiving(o options, n int) result {
	res, fail := newResult("passive-not-receiving", n)
	l, err := startLoaded(o, "", o.addrA)
	defer l.close()
	if err != nil {
		return fail("%v", err)
	}
	defer func() { _ = execOn(o.addrB, "START SLAVE IO_THREAD") }()
	stopped := time.Now()
	if err := execOn(o.addrB, "STOP SLAVE IO_THREAD"); err != nil {
		return fail("%v", err)
	}
	s, err := l.tn.waitFor(15*time.Second, func(s failover.Status) bool { return s.Decision.Unsynced["b"] != "" })
	if err != nil {
		return fail("b never marked unsynced: %v", err)
	}
	marked := time.Since(stopped)
	if _, err := waitWrite(l.w, time.Now(), 10*time.Second); err != nil {
		return fail("writes did not go on without b: %v", err)
	}
	t0 := time.Now()
	if _, err := pair(o, "kill", "a"); err != nil {
		return fail("pair.sh kill a: %v", err)
	}
	t1 := time.Now() // a write acknowledged before pair.sh returned is not "back"
	s, err = l.tn.waitFor(15*time.Second, func(s failover.Status) bool { return s.State == "down" })
	if err != nil {
		return fail("no refusal: %v", err)
	}
	e, ok := findEvent(s, failover.EventFailoverRefused)
	if !ok || !strings.Contains(e.Reason, "may lack writes") {
		return fail("failover_refused %v %q; want it to say b may lack writes: %s", ok, e.Reason, describe(s))
	}
	if s.Decision.Active != "a" {
		return fail("b promoted although unsynced: %s", describe(s))
	}
	res.did = "refused: " + refusal(e.Reason)
	perr := probe(l.tn.addr)
	if perr == nil {
		return fail("a client's write succeeded while no node may take writes")
	}
	if _, err := pair(o, "start", "a"); err != nil {
		return fail("pair.sh start a: %v", err)
	}
	if _, err := l.tn.waitFor(30*time.Second, func(s failover.Status) bool {
		return s.State == "active" && s.Decision.Active == "a" && nodeOf(s, "a").FactsCurrent && !nodeOf(s, "a").ReadOnly
	}); err != nil {
		return fail("a not serving again: %v", err)
	}
	first, err := waitWrite(l.w, t1, o.firstWriteLimit)
	if err != nil {
		return fail("after a's restart: %v", err)
	}
	res.faultToWrite = first.Sub(t0)
	if err := settle(o, l.w, t0, "a", res); err != nil {
		return fail("%v", err)
	}
	healed := time.Now()
	if err := execOn(o.addrB, "START SLAVE IO_THREAD"); err != nil {
		return fail("%v", err)
	}
	synced := "b not synced again within 30 s"
	if _, err := l.tn.waitFor(30*time.Second, func(s failover.Status) bool { return s.Decision.Unsynced["b"] == "" }); err == nil {
		synced = fmt.Sprintf("b synced again %v after START SLAVE IO_THREAD", ms(time.Since(healed)))
	}
	res.note = fmt.Sprintf("b unsynced %v after STOP SLAVE IO_THREAD; a client was told: %v; %s", ms(marked), perr, synced)
	return *res
}

// ---------------------------------------------------------------- link-cut

// roundLinkCut: b's replication from a goes through a relay, which is cut
// under load (every connection closed, new ones closed at once): b must be
// marked unsynced and writes go on on a; healed, b is synced again.
func roundLinkCut(o options, n int) result {
	res, fail := newResult("link-cut", n)
	r, err := faultrelay.New(o.addrA, 0)
	if err != nil {
		return fail("%v", err)
	}
	defer r.Close()
	portA := o.addrA[strings.LastIndex(o.addrA, ":")+1:]
	// b replicates from a through the relay; put back afterwards (reset
	// would too).
	if err := execOn(o.addrB, "STOP SLAVE", "CHANGE MASTER TO MASTER_PORT="+strconv.Itoa(r.Port()), "START SLAVE"); err != nil {
		return fail("pointing b's replication at the relay: %v", err)
	}
	defer func() {
		_ = execOn(o.addrB, "STOP SLAVE", "CHANGE MASTER TO MASTER_PORT="+portA, "START SLAVE")
	}()
	l, err := startLoaded(o, "", o.addrA)
	defer l.close()
	if err != nil {
		return fail("%v", err)
	}
	if _, err := l.tn.waitFor(15*time.Second, func(s failover.Status) bool {
		return s.Decision.Unsynced["b"] == "" && nodeOf(s, "b").IORunning == "Yes"
	}); err != nil {
		return fail("b not replicating through the relay: %v", err)
	}
	t0 := time.Now()
	r.Set(faultrelay.Cut)
	res.did = "kept a; b unsynced, then synced"
	s, err := l.tn.waitFor(15*time.Second, func(s failover.Status) bool { return s.Decision.Unsynced["b"] != "" })
	if err != nil {
		return fail("b never marked unsynced: %v", err)
	}
	marked := time.Since(t0)
	if _, err := waitWrite(l.w, t0, o.firstWriteLimit); err != nil {
		return fail("writes did not go on: %v", err)
	}
	if s.Decision.Active != "a" || s.State != "active" {
		return fail("after the cut: %s", describe(s))
	}
	// The link stays cut for a second of writes without b.
	time.Sleep(time.Second)
	healed := time.Now()
	r.Set(faultrelay.Forward)
	synced := "b NOT synced again within 30 s"
	if _, err := l.tn.waitFor(30*time.Second, func(s failover.Status) bool { return s.Decision.Unsynced["b"] == "" }); err == nil {
		synced = fmt.Sprintf("b synced again %v after the link healed", ms(time.Since(healed)))
	} else {
		res.did = "kept a; b unsynced, not synced again"
	}
	if err := settle(o, l.w, t0, "a", res); err != nil {
		return fail("%v", err)
	}
	// Commits stall from the cut until tandem lets them go on without b:
	// writes are back at the end of the longest gap.
	if end := l.w.longestGapEnd(t0); !end.IsZero() {
		res.faultToWrite = end.Sub(t0)
	}
	res.note = fmt.Sprintf("b unsynced %v after the cut; %s", ms(marked), synced)
	return *res
}

// ---------------------------------------------------------------- fence-refused

// roundFenceRefused: tandem reaches a through a relay that, at the fault,
// closes every connection and answers new ones with ERR 1040. a stays
// alive and writable: tandem must refuse to promote b; healed, a serves
// again.
func roundFenceRefused(o options, n int) result {
	res, fail := newResult("fence-refused", n)
	r, err := faultrelay.New(o.addrA, 0)
	if err != nil {
		return fail("%v", err)
	}
	defer r.Close()
	l, err := startLoaded(o, "", r.Addr())
	defer l.close()
	if err != nil {
		return fail("%v", err)
	}
	t0 := time.Now()
	r.Set(faultrelay.Refuse)
	s, err := l.tn.waitFor(15*time.Second, func(s failover.Status) bool { return s.State == "down" })
	if err != nil {
		return fail("no refusal: %v", err)
	}
	detected := time.Since(t0)
	e, _ := findEvent(s, failover.EventFailoverRefused)
	if s.Decision.Active != "a" {
		return fail("b promoted while a is alive: %s", describe(s))
	}
	// Refusing for another reason (b found unsynced first) is safe too,
	// but does not exercise the fence: said in the outcome.
	res.did = "refused: " + refusal(e.Reason)
	perr := probe(l.tn.addr)
	if perr == nil {
		return fail("a client's write succeeded while a refuses tandem")
	}
	// The refusal lasts a second more: b must stay read-only throughout
	// (the watcher counts).
	time.Sleep(time.Second)
	if ro, err := readOnly(o.addrA); err != nil || ro {
		return fail("node a read_only=%v (%v); it was never reached, so never fenced", ro, err)
	}
	healed := time.Now()
	r.Set(faultrelay.Forward)
	if _, err := l.tn.waitFor(20*time.Second, func(s failover.Status) bool { return s.State == "active" && s.Decision.Active == "a" }); err != nil {
		return fail("a not serving again: %v", err)
	}
	first, err := waitWrite(l.w, healed, o.firstWriteLimit)
	if err != nil {
		return fail("after healing: %v", err)
	}
	res.faultToWrite = first.Sub(t0)
	if err := settle(o, l.w, t0, "a", res); err != nil {
		return fail("%v", err)
	}
	res.note = fmt.Sprintf("refusal %v after the fault; a client was told: %v; first write %v after the relay healed", ms(detected), perr, ms(first.Sub(healed)))
	return *res
}

// ---------------------------------------------------------------- tandem-crash

// roundTandemCrash: tandem runs as a child process; a fails under load and
// tandem is SIGKILLed during its failover. A new tandem with the same
// state file must end with one writable node, the decided one, serving
// clients. "tandem-crash": a is SIGKILLed and tandem is killed as soon as
// it logs failover_started (the promotion of a gone node takes a few ms,
// so the kill lands wherever it lands). "tandem-crash-hung": a is
// SIGSTOPped and tandem is killed 150 ms after failover_started, while it
// waits (check_timeout, 400 ms) for the hung node to answer the fence:
// after the journal, before the decision is saved.
func roundTandemCrash(o options, n int, hung bool) result {
	mode := "tandem-crash"
	if hung {
		mode = "tandem-crash-hung"
	}
	res, fail := newResult(mode, n)
	if o.tandemBin == "" {
		return fail("no tandem binary")
	}
	dir, err := os.MkdirTemp(o.tmp, "crash-")
	if err != nil {
		return fail("%v", err)
	}
	cfg, err := writeChildConfig(o, dir)
	if err != nil {
		return fail("%v", err)
	}
	var startedAt, killedAt time.Time
	killed := make(chan struct{})
	c1, err := startChild(o.tandemBin, cfg, func(c *child, line string) {
		if !startedAt.IsZero() || !strings.Contains(line, "event: failover_started") {
			return
		}
		startedAt = time.Now()
		if !hung {
			_ = c.cmd.Process.Kill()
			killedAt = time.Now()
			close(killed)
			return
		}
		time.AfterFunc(150*time.Millisecond, func() {
			_ = c.cmd.Process.Kill()
			killedAt = time.Now()
			close(killed)
		})
	})
	if err != nil {
		return fail("starting tandem: %v", err)
	}
	defer c1.kill()
	if o.verbose {
		defer c1.dump("tandem 1")
	}
	if _, err := c1.waitStatus(20*time.Second, func(s failover.Status) bool {
		return s.State == "active" && s.Decision.Active == "a" && healthy(s, "a") && healthy(s, "b")
	}); err != nil {
		return fail("tandem not ready: %v", err)
	}
	db, err := clientAt(cfg.proxyAddr, o.writers+o.txs+o.readers+2)
	if err != nil {
		return fail("%v", err)
	}
	defer db.Close()
	w, err := startWorkload(db, o, slowLimit)
	if err != nil {
		return fail("workload: %v", err)
	}
	defer w.stop()
	time.Sleep(o.warmup)
	t0 := time.Now()
	verb := "kill"
	if hung {
		verb = "stop"
		// Never SIGCONT (see the package comment): killed before reset.
		defer func() { _, _ = pair(o, "kill", "a") }()
	}
	if _, err := pair(o, verb, "a"); err != nil {
		return fail("pair.sh %s a: %v", verb, err)
	}
	select {
	case <-killed:
	case <-time.After(15 * time.Second):
		return fail("tandem never logged failover_started")
	}
	<-c1.exited
	crashAfter := killedAt.Sub(t0)
	store := &failover.FileStore{Path: cfg.state}
	saved, _, err := store.Load()
	if err != nil {
		return fail("reading the state file after the crash: %v", err)
	}
	point := fmt.Sprintf("state file after the crash: active %s epoch %d", saved.Active, saved.Epoch)
	if saved.Promoting != "" {
		point += ", promoting " + saved.Promoting + " (journaled, not saved)"
	}

	// Writes acknowledged from now on come through the new tandem (one
	// acknowledged by the old one just before its death can reach its
	// client a little later).
	t2 := time.Now()
	c2, err := startChild(o.tandemBin, cfg, nil)
	if err != nil {
		return fail("restarting tandem: %v", err)
	}
	defer c2.stop()
	if o.verbose {
		defer c2.dump("tandem 2")
	}
	// Settled: serving from a decided node that answers, or refusing.
	s, err := c2.waitStatus(20*time.Second, func(s failover.Status) bool {
		act := nodeOf(s, s.Decision.Active)
		return s.Decision.Promoting == "" && (s.State == "active" && act.FactsCurrent && !act.ReadOnly || s.State == "down")
	})
	if err != nil {
		return fail("the new tandem did not settle: %v (%s)", err, point)
	}
	undone := len(c2.log("undid a promotion")) > 0
	switch {
	case saved.Active == "b":
		res.did = "completed (b active)"
	case undone:
		res.did = "undone"
	case saved.Promoting != "":
		res.did = "journaled, NOT undone"
	default:
		res.did = "crashed before the journal"
	}
	if s.State == "down" && s.Decision.Active == "a" {
		// a is the decided node and gone: a tandem that never saw a
		// answer cannot prove b holds every write a acknowledged. What
		// a client is told once its retries (retry_interval, 2 s) ran:
		time.Sleep(2500 * time.Millisecond)
		perr := probe(cfg.proxyAddr)
		e, _ := findEvent(s, failover.EventFailoverRefused)
		res.did += ", then refused until a restarted"
		point += fmt.Sprintf("; the new tandem refused: %q; 2.5 s later a client was told: %v", e.Reason, perr)
		if hung {
			if _, err := pair(o, "kill", "a"); err != nil {
				return fail("pair.sh kill a: %v", err)
			}
		}
		out, err := pair(o, "start", "a")
		if err != nil {
			return fail("pair.sh start a: %v", err)
		}
		_, rerr := readOnly(o.addrA)
		point += fmt.Sprintf("; pair.sh start a: %q, a answers directly: %v", strings.TrimSpace(out), rerr)
	} else if s.Decision.Active == "b" && saved.Active != "b" {
		res.did += ", then b promoted"
	}
	s, err = c2.waitStatus(30*time.Second, func(s failover.Status) bool {
		act := nodeOf(s, s.Decision.Active)
		return s.State == "active" && act.FactsCurrent && !act.ReadOnly
	})
	if err != nil {
		return fail("no node serving: %v (%s; did: %s)", err, point, res.did)
	}
	if strings.Contains(res.did, "refused") && s.Decision.Active == "b" {
		// The new tandem promoted b once a answered again.
		res.did += "; b promoted when a came back"
	}
	first, err := waitWrite(w, t2, o.firstWriteLimit)
	if err != nil {
		return fail("%v (%s)", err, point)
	}
	res.faultToWrite = first.Sub(t0)
	// Exactly one writable node, the decided one.
	other := "a"
	if s.Decision.Active == "a" {
		other = "b"
	}
	addrOf := map[string]string{"a": o.addrA, "b": o.addrB}
	if ro, err := readOnly(addrOf[s.Decision.Active]); err != nil || ro {
		return fail("the decided node %s: read_only=%v (%v)", s.Decision.Active, ro, err)
	}
	if ro, err := readOnly(addrOf[other]); err == nil && !ro {
		return fail("node %s is writable too", other)
	}
	if err := settle(o, w, t0, s.Decision.Active, res); err != nil {
		return fail("%v", err)
	}
	res.note = fmt.Sprintf("tandem SIGKILLed %v after failover_started (%v after the fault); %s; restarted: active %s epoch %d",
		ms(killedAt.Sub(startedAt)), ms(crashAfter), point, s.Decision.Active, s.Decision.Epoch)
	if l := c2.log("undid a promotion"); len(l) > 0 {
		res.note += "; log: " + l[0]
	}
	return *res
}

// ---------------------------------------------------------------- state-file-lost

// roundStateFileLost: after a kill and a failover to b, tandem stops and
// a new one starts without its state file: it must adopt b from the
// nodes' decision table, not initial_active a.
func roundStateFileLost(o options, n int) result {
	res, fail := newResult("state-file-lost", n)
	l, err := startLoaded(o, "", o.addrA)
	defer l.close()
	if err != nil {
		return fail("%v", err)
	}
	listen := l.tn.addr
	if _, err := pair(o, "kill", "a"); err != nil {
		return fail("pair.sh kill a: %v", err)
	}
	if _, err := l.tn.waitFor(20*time.Second, func(s failover.Status) bool { return s.Decision.Active == "b" && s.State == "active" }); err != nil {
		return fail("no failover to b: %v", err)
	}
	bdb := nodeDB(o.addrB, 5*time.Second)
	defer bdb.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var epoch uint64
		err := bdb.QueryRow("SELECT epoch FROM tandem.decision WHERE id = 1").Scan(&epoch)
		if err == nil && epoch == 2 {
			break
		}
		if time.Now().After(deadline) {
			return fail("decision not recorded on b: epoch %d, %v", epoch, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t0 := time.Now()
	l.tn.stop() // removes its state directory: the state file is lost
	t1 := time.Now()
	tn2, err := startTandem(o, listen, o.addrA)
	if err != nil {
		return fail("starting the new tandem: %v", err)
	}
	defer tn2.stop()
	s, err := tn2.waitFor(20*time.Second, func(s failover.Status) bool { return s.State == "active" })
	if err != nil {
		return fail("the new tandem did not decide: %v", err)
	}
	if s.Decision.Active != "b" || s.Decision.Epoch != 2 || !strings.Contains(s.Decision.Reason, "decision table") {
		return fail("without a state file: %s", describe(s))
	}
	res.did = "adopted b from the decision table"
	first, err := waitWrite(l.w, t1, o.firstWriteLimit)
	if err != nil {
		return fail("through the new tandem: %v", err)
	}
	res.faultToWrite = first.Sub(t1)
	if err := settle(o, l.w, t0, "b", res); err != nil {
		return fail("%v", err)
	}
	res.note = fmt.Sprintf("fault = tandem stopped (%v: its sessions closed) and a new one started without a state file, first write measured from its start; reason: %s",
		ms(t1.Sub(t0)), s.Decision.Reason)
	return *res
}

// ---------------------------------------------------------------- switchover-stuck-tx

// roundStuckTx: a transaction held open through tandem; a switchover with
// a 30 s bound waits for it and is aborted after about a second: it must
// roll back with no client error, and the transaction then commits on a.
func roundStuckTx(o options, n int) result {
	res, fail := newResult("switchover-stuck-tx", n)
	l, err := startLoaded(o, "", o.addrA)
	defer l.close()
	if err != nil {
		return fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return fail("%v", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS fb_marker (id INT PRIMARY KEY, v VARCHAR(64))"); err != nil {
		return fail("%v", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fail("%v", err)
	}
	defer func() { _ = tx.Rollback() }()
	mark := strconv.FormatInt(time.Now().UnixNano(), 10)
	if _, err := tx.ExecContext(ctx, "REPLACE INTO fb_marker VALUES (7, ?)", mark); err != nil {
		return fail("%v", err)
	}
	type outcome struct {
		rep failover.SwitchoverReport
		err error
	}
	done := make(chan outcome, 1)
	t0 := time.Now()
	go func() {
		rep, err := l.tn.m.Switchover(ctx, failover.SwitchoverOptions{To: "b", Timeout: 30 * time.Second})
		done <- outcome{rep, err}
	}()
	if _, err := l.tn.waitFor(10*time.Second, func(s failover.Status) bool { return s.State == "switching_over" }); err != nil {
		return fail("no switchover in progress: %v", err)
	}
	time.Sleep(time.Until(t0.Add(time.Second)))
	if err := l.tn.m.AbortSwitchover(); err != nil {
		return fail("abort: %v", err)
	}
	var got outcome
	select {
	case got = <-done:
	case <-time.After(15 * time.Second):
		return fail("the switchover did not end after the abort")
	}
	if got.err == nil || !got.rep.RolledBack || !strings.Contains(got.err.Error(), "aborted") {
		return fail("switchover after the abort: %+v %v", got.rep, got.err)
	}
	res.did = "rolled back"
	res.promote = got.rep.WritePause
	aborted := time.Now()
	if err := tx.Commit(); err != nil {
		return fail("the open transaction after the abort: %v", err)
	}
	first, err := waitWrite(l.w, aborted, o.firstWriteLimit)
	if err != nil {
		return fail("%v", err)
	}
	res.faultToWrite = first.Sub(t0)
	s := l.tn.m.Status()
	if s.Decision.Active != "a" || s.Decision.Epoch != 1 {
		return fail("after the abort: %s", describe(s))
	}
	if err := settle(o, l.w, t0, "a", res); err != nil {
		return fail("%v", err)
	}
	var v string
	adb := nodeDB(o.addrA, 5*time.Second)
	defer adb.Close()
	if err := adb.QueryRow("SELECT v FROM " + appDB + ".fb_marker WHERE id = 7").Scan(&v); err != nil || v != mark {
		return fail("the held transaction's row on a: %q, %v", v, err)
	}
	if len(res.errs) > 0 {
		return fail("an aborted switchover caused client errors: %v", lastN(l.w.errorList(), 5))
	}
	res.note = fmt.Sprintf("switchover aborted after ~1 s (write pause %v, the report says %q); the held transaction committed on a", ms(got.rep.WritePause), got.err)
	return *res
}

// ---------------------------------------------------------------- kill-restart

// roundKillRestart: a is SIGKILLed under load, tandem promotes b, then a is
// restarted (pair.sh start a, with its own my.cnf: read_only=OFF): it must
// rejoin as a clean passive by itself, or be excluded with its errant
// transactions.
func roundKillRestart(o options, n int) result {
	res, fail := newResult("kill-restart", n)
	l, err := startLoaded(o, "", o.addrA)
	defer l.close()
	if err != nil {
		return fail("%v", err)
	}
	t0 := time.Now()
	if _, err := pair(o, "kill", "a"); err != nil {
		return fail("pair.sh kill a: %v", err)
	}
	t1 := time.Now() // a write acknowledged before pair.sh returned is not "back"
	if _, err := l.tn.waitFor(20*time.Second, func(s failover.Status) bool { return s.Decision.Active == "b" && s.State == "active" }); err != nil {
		return fail("no failover to b: %v", err)
	}
	first, err := waitWrite(l.w, t1, o.firstWriteLimit)
	if err != nil {
		return fail("%v", err)
	}
	res.faultToWrite = first.Sub(t0)
	restarted := time.Now()
	if _, err := pair(o, "start", "a"); err != nil {
		return fail("pair.sh start a: %v", err)
	}
	s, err := l.tn.waitFor(40*time.Second, func(s failover.Status) bool {
		a := nodeOf(s, "a")
		return s.Decision.Excluded["a"] != "" ||
			!s.Decision.PendingRejoin && a.FactsCurrent && a.ReadOnly && a.IORunning == "Yes" && a.SQLRunning
	})
	switch {
	case err != nil:
		res.did = "promoted b; a NOT rejoined within 40 s"
		res.note = "after a's restart: " + err.Error()
	case s.Decision.Excluded["a"] != "":
		res.did = "promoted b; a excluded"
		res.note = fmt.Sprintf("a excluded %v after its restart: %s", ms(time.Since(restarted)), s.Decision.Excluded["a"])
	default:
		res.did = "promoted b; a rejoined"
		res.note = fmt.Sprintf("a rejoined as a passive %v after its restart (PendingRejoin cleared, replicating both ways)", ms(time.Since(restarted)))
	}
	if e, ok := findEvent(l.tn.m.Status(), failover.EventSplitBrain); ok {
		res.note += "; split_brain event: " + e.Reason
	}
	if err := settle(o, l.w, t0, "b", res); err != nil {
		return fail("%v", err)
	}
	return *res
}
