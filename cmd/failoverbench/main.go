// Command failoverbench measures what tandem does under real faults on the
// local pair (scripts/pair.sh), under load: how long writes stop, what
// clients see meanwhile, whether any acknowledged write is lost, and
// whether both nodes were ever writable at once.
//
//	go run ./cmd/failoverbench                 (or: make failover-bench)
//	go run ./cmd/failoverbench -rounds 3 -slow-rounds 0 -modes kill
//
// Each round runs a go-sql-driver workload through tandem (autocommit
// INSERTs with unique ids, transactions of a few statements, point
// SELECTs; a worker whose connection breaks takes a new one, and waits
// 20 ms after an error), injects one fault, and reports:
//
//   - what tandem did: promoted b, refused (and why), kept a, rolled back,
//     undid or completed a journaled promotion, adopted a decision, or
//     whether a restarted old active rejoined or was excluded;
//   - fault -> first write: from the fault to the first INSERT or COMMIT
//     acknowledged after it (after pair.sh returned, so it includes
//     pair.sh's own start-up, a few tens of ms); and the longest gap
//     between two acknowledged writes from the fault on;
//   - client errors by code (1317: statement interrupted; 1213: transaction
//     lost, retry; 1105: no node takes writes, with the reason; anything
//     else, such as a refused connection to a restarting tandem, is
//     "other");
//   - acknowledged writes missing on the node that is active at the end
//     (must be 0);
//   - samples with two writable nodes: a watcher reads @@read_only on both
//     nodes directly, both at once, every ~20 ms for the whole round, and
//     counts the samples where both answered OFF (must be 0).
//
// The faults (-modes, see allModes; -rounds for the first three, the
// others -slow-rounds):
//
//   - kill: SIGKILL of node a. stop: SIGSTOP of node a (a hung server).
//     switchover: a planned switchover to b, which must cause no client
//     error. If tandem refuses to promote b, a is restarted and must
//     serve again with every write;
//   - passive-not-receiving: STOP SLAVE IO_THREAD on b; once tandem marks b
//     unsynced and writes went on without it, a is SIGKILLed: b must not
//     be promoted, clients are told why; a restarted serves again;
//   - link-cut: b's replication from a goes through a TCP relay (CHANGE
//     MASTER TO MASTER_PORT on b, put back afterwards), which is cut under
//     load (connections closed, new ones closed at once): b must be marked
//     unsynced and writes go on on a; healed, b must be synced again;
//   - fence-refused: tandem reaches a through a relay that, at the fault,
//     closes every connection and answers new ones with ERR 1040 (too
//     many connections): a is alive and writable, so tandem must refuse to
//     promote b; healed, a serves again;
//   - tandem-crash: tandem runs as a child process (built once with go
//     build); a is SIGKILLed, and tandem is SIGKILLed as soon as it logs
//     failover_started; a new tandem with the same state file must end
//     with one writable node, the decided one, serving clients (a is
//     restarted if the new tandem refuses: it never saw a answer, so it
//     cannot prove b has every write). tandem-crash-hung: the same with
//     a SIGSTOPped and tandem killed 150 ms after failover_started, while
//     it waits for the hung node to answer the fence: after the journal,
//     before the decision is saved;
//   - state-file-lost: after a kill and a failover to b, tandem stops and a
//     new one starts without a state file: it must adopt b from the
//     nodes' decision table, not initial_active a;
//   - switchover-stuck-tx: a transaction held open through tandem, a
//     switchover bounded at 30 s, aborted after about a second: it must
//     roll back with no client error, and the transaction then commits;
//   - kill-restart: SIGKILL of a, failover to b, then a restarted with
//     pair.sh start (its my.cnf says read_only=OFF): it must rejoin as a
//     clean passive by itself, or be excluded with errant transactions.
//
// Every round starts from a reset pair with no decision recorded on the
// nodes (tandem.decision is emptied on a and the delete awaited on b), and
// ends with pair.sh reset (a stopped node is killed first, since on
// SIGCONT it would commit the statements it froze in, after b took over:
// errant transactions, which reset can only cure by rebuilding the pair).
// Everything is bounded: each wait has a limit, each worker a count and a
// deadline, and no round starts once -budget is spent. The exit status is
// 1 if a round failed, lost a write or saw two writable nodes.
//
// The pair is the one scripts/pair.sh selects: TANDEM_PAIR_DIR,
// TANDEM_PAIR_PORT_A (13306), TANDEM_PAIR_PORT_B (13307). The workload is Go
// because sysbench crashes when it reconnects (see /work/shared/README.md).
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/hashicorp/go-hclog"

	"github.com/tandemdb/tandem/failover"
	"github.com/tandemdb/tandem/proxy"
)

// Accounts created by scripts/pair.sh.
const (
	adminUser, adminPassword = "tandem", "tandem"
	appUser, appPassword     = "app", "apppass"
	appDB                    = "app"
)

type options struct {
	rounds          int
	modes           []string
	writers, txs    int
	readers         int
	warmup, after   time.Duration
	budget          time.Duration
	verbose         bool
	pairScript      string
	addrA, addrB    string
	firstWriteLimit time.Duration
	slowRounds      int
	tandemBin       string // built once for the modes that run tandem as a child process
	tmp             string // holds the tandem binary
}

// Faults, in the order they run within a round. The first three are the
// quick ones (-rounds); the others take longer (-slow-rounds).
var allModes = []string{"kill", "stop", "switchover", "passive-not-receiving", "link-cut", "fence-refused",
	"tandem-crash", "tandem-crash-hung", "state-file-lost", "switchover-stuck-tx", "kill-restart"}

func quickMode(m string) bool { return m == "kill" || m == "stop" || m == "switchover" }

func (o options) roundsFor(mode string) int {
	if quickMode(mode) {
		return o.rounds
	}
	return o.slowRounds
}

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	var modes string
	flag.IntVar(&o.rounds, "rounds", 5, "rounds of each quick mode (kill, stop, switchover)")
	flag.IntVar(&o.slowRounds, "slow-rounds", 2, "rounds of each of the other modes")
	flag.StringVar(&modes, "modes", strings.Join(allModes, ","), "faults to inject, comma-separated: "+strings.Join(allModes, ", ")+" (see the package comment)")
	flag.IntVar(&o.writers, "writers", 4, "workers doing autocommit INSERTs")
	flag.IntVar(&o.txs, "tx", 2, "workers doing transactions (INSERT, UPDATE, SELECT, COMMIT)")
	flag.IntVar(&o.readers, "readers", 2, "workers doing point SELECTs")
	flag.DurationVar(&o.warmup, "warmup", 1500*time.Millisecond, "load before the fault")
	flag.DurationVar(&o.after, "after", 1500*time.Millisecond, "load after the first write on the new active")
	flag.DurationVar(&o.budget, "budget", 6*time.Minute, "no round starts after this much time")
	flag.DurationVar(&o.firstWriteLimit, "limit", 20*time.Second, "give up on a round when no write succeeds this long after the fault")
	flag.BoolVar(&o.verbose, "v", false, "print tandem's log")
	flag.Parse()
	for _, m := range strings.Split(modes, ",") {
		m = strings.TrimSpace(m)
		if !slices.Contains(allModes, m) {
			fmt.Fprintf(os.Stderr, "failoverbench: unknown mode %q (want one of %s)\n", m, strings.Join(allModes, ", "))
			return 2
		}
		o.modes = append(o.modes, m)
	}
	if o.rounds < 1 || o.slowRounds < 0 || o.writers < 1 {
		fmt.Fprintln(os.Stderr, "failoverbench: -rounds and -writers must be at least 1, -slow-rounds at least 0")
		return 2
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "failoverbench:", err)
		return 1
	}
	o.pairScript = filepath.Join(root, "scripts", "pair.sh")
	o.addrA = "127.0.0.1:" + envOr("TANDEM_PAIR_PORT_A", "13306")
	o.addrB = "127.0.0.1:" + envOr("TANDEM_PAIR_PORT_B", "13307")

	if !o.verbose {
		// The driver logs each dead pooled connection it drops; the
		// failures it meets are counted, not printed.
		_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	}
	start := time.Now()
	fmt.Printf("failoverbench: pair a=%s b=%s, %d round(s) of the quick modes and %d of the others among %s; %d writers, %d transaction workers, %d readers\n",
		o.addrA, o.addrB, o.rounds, o.slowRounds, strings.Join(o.modes, ","), o.writers, o.txs, o.readers)
	if slices.ContainsFunc(o.modes, func(m string) bool { return strings.HasPrefix(m, "tandem-crash") }) && o.slowRounds > 0 {
		tmp, err := os.MkdirTemp("", "failoverbench-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "failoverbench:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		o.tmp = tmp
		if o.tandemBin, err = buildTandem(root, tmp); err != nil {
			fmt.Fprintln(os.Stderr, "failoverbench: building tandem:", err)
			return 1
		}
	}
	if _, err := pair(o, "reset"); err != nil {
		fmt.Fprintln(os.Stderr, "failoverbench: the pair is not usable:", err)
		return 1
	}
	var results []result
	failed := false
rounds:
	for i := 1; i <= max(o.rounds, o.slowRounds); i++ {
		for _, mode := range o.modes {
			if i > o.roundsFor(mode) {
				continue
			}
			if time.Since(start) > o.budget {
				fmt.Printf("budget of %v spent: stopping after %d rounds\n", o.budget, len(results))
				break rounds
			}
			r := runRound(o, mode, i)
			results = append(results, r)
			fmt.Println(r.line())
			resetStart := time.Now()
			out, err := pair(o, "reset")
			if err != nil {
				// A crashed node can hold a binlogged transaction its peer
				// never received; a second reset rebuilds the pair.
				out, err = pair(o, "reset")
			}
			if err == nil && o.verbose {
				fmt.Printf("  pair reset in %v: %s\n", time.Since(resetStart).Round(time.Millisecond), strings.TrimSpace(out))
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "failoverbench: cannot restore the pair:", err)
				failed = true
				break rounds
			}
			if r.err != "" || r.missing > 0 || r.twoWritable > 0 {
				failed = true
			}
		}
	}
	report(os.Stdout, results)
	fmt.Printf("\ntotal time %v\n", time.Since(start).Round(time.Second))
	if failed {
		return 1
	}
	return 0
}

// ---------------------------------------------------------------- one round

type result struct {
	mode              string
	n                 int
	faultToWrite      time.Duration // fault injected -> first acknowledged write
	outage            time.Duration // first client error -> first write after it
	detect            time.Duration // fault -> node_down
	promote           time.Duration // failover_finished duration
	acked, txCommited int
	errs              map[string]int
	maxPerWorker      int
	missing           int
	err               string

	did         string        // what tandem did: promoted, refused, rejoined, rolled back, ...
	gap         time.Duration // longest time without an acknowledged write, from the fault on
	twoWritable int           // read_only samples showing both nodes writable
	samples     int           // read_only samples where both nodes answered
	checkedOn   string        // the node the acknowledged writes were looked for on
	note        string        // what else was seen, for the log
	told        string        // the first error 1105 a worker got (why no node took writes)
}

func (r result) line() string {
	if r.err != "" {
		return fmt.Sprintf("%s #%d: FAILED: %s (two writable nodes in %d of %d samples)", r.mode, r.n, r.err, r.twoWritable, r.samples)
	}
	s := fmt.Sprintf("%s #%d: %s; fault->first write %v, longest write gap %v, client outage %v, detection %v, promotion %v; %d inserts + %d transactions acknowledged, errors %s (max %d per worker), %d acknowledged writes missing on %s; two writable nodes in %d of %d samples",
		r.mode, r.n, r.did, ms(r.faultToWrite), ms(r.gap), ms(r.outage), ms(r.detect), ms(r.promote), r.acked, r.txCommited, fmtErrs(r.errs), r.maxPerWorker, r.missing, r.checkedOn, r.twoWritable, r.samples)
	if r.note != "" {
		s += "\n    " + r.note
	}
	if r.told != "" {
		s += "\n    first 1105 a worker got: " + r.told
	}
	return s
}

// runRound runs one round of mode; every mode starts from a reset pair
// with no decision recorded on the nodes.
func runRound(o options, mode string, n int) result {
	if err := forgetDecision(o); err != nil {
		return result{mode: mode, n: n, err: err.Error()}
	}
	// read_only is sampled on both nodes for the whole round.
	wt := startWatch(o)
	var r result
	switch mode {
	case "kill", "stop", "switchover":
		r = round(o, mode, n)
	case "passive-not-receiving":
		r = roundPassiveNotReceiving(o, n)
	case "link-cut":
		r = roundLinkCut(o, n)
	case "fence-refused":
		r = roundFenceRefused(o, n)
	case "tandem-crash", "tandem-crash-hung":
		r = roundTandemCrash(o, n, mode == "tandem-crash-hung")
	case "state-file-lost":
		r = roundStateFileLost(o, n)
	case "switchover-stuck-tx":
		r = roundStuckTx(o, n)
	case "kill-restart":
		r = roundKillRestart(o, n)
	default:
		r = result{mode: mode, n: n, err: "unknown mode"}
	}
	wt.finish(&r)
	return r
}

func round(o options, mode string, n int) (res result) {
	res = result{mode: mode, n: n, errs: map[string]int{}, checkedOn: "b"}
	fail := func(format string, args ...any) result {
		res.err = fmt.Sprintf(format, args...)
		return res
	}
	tn, err := startTandem(o, "", o.addrA)
	if err != nil {
		return fail("starting tandem: %v", err)
	}
	defer tn.stop()
	if err := tn.waitStatus(10*time.Second, func(s failover.Status) bool {
		return s.State == "active" && s.Decision.Active == "a" && healthy(s, "a") && healthy(s, "b")
	}); err != nil {
		return fail("tandem not ready: %v", err)
	}
	db, err := tn.client(o.writers + o.txs + o.readers + 2)
	if err != nil {
		return fail("%v", err)
	}
	defer db.Close()
	w, err := startWorkload(db, o, 0)
	if err != nil {
		return fail("workload: %v", err)
	}
	defer w.stop()
	time.Sleep(o.warmup)
	if w.acked() == 0 {
		return fail("no write acknowledged during the warm-up; errors: %v", lastN(w.errorList(), 5))
	}

	t0 := time.Now()
	res.did = "promoted b"
	if mode == "switchover" {
		res.did = "switched over to b"
		rep, err := tn.m.Switchover(context.Background(), failover.SwitchoverOptions{To: "b", Timeout: 5 * time.Second})
		if err != nil {
			return fail("switchover: %v", err)
		}
		res.promote = rep.WritePause
	} else {
		verb := map[string]string{"kill": "kill", "stop": "stop"}[mode]
		if _, err := pair(o, verb, "a"); err != nil {
			return fail("pair.sh %s a: %v", verb, err)
		}
	}
	t1 := time.Now()
	if mode == "switchover" {
		t1 = t0
	}
	if mode == "stop" {
		// Never SIGCONT: see the package comment. Killing a stopped
		// server works, and reset starts it again.
		defer func() {
			if _, err := pair(o, "kill", "a"); err != nil && res.err == "" {
				res.err = fmt.Sprintf("killing the stopped node: %v", err)
			}
		}()
	}
	var first time.Time
	deadline := t0.Add(o.firstWriteLimit)
	refused := ""
	for {
		from := t1
		if mode != "switchover" {
			// A write through b comes after the promotion began; one
			// acknowledged by a just before the fault can reach its
			// client after pair.sh returned (a stopped server's last
			// answers are already in the socket buffers).
			st := tn.m.Status()
			if e, ok := findEvent(st, failover.EventFailoverRefused); ok && st.State == "down" {
				refused = e.Reason
				break
			}
			e, ok := findEvent(st, failover.EventFailoverStarted)
			if !ok {
				from = time.Time{}
			} else if e.Time.After(from) {
				from = e.Time
			}
		}
		if !from.IsZero() {
			if first = w.firstWriteAfter(from); !first.IsZero() {
				break
			}
		}
		if time.Now().After(deadline) {
			return fail("no write acknowledged %v after the fault; status: %s; errors: %v", o.firstWriteLimit, describe(tn.m.Status()), lastN(w.errorList(), 3))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if refused != "" {
		// tandem would not promote b: a comes back (killed first if
		// hung) and must serve again with every write.
		res.did, res.checkedOn = "refused: "+refusal(refused), "a"
		res.note = "failover_refused: " + refused
		if mode == "stop" {
			if _, err := pair(o, "kill", "a"); err != nil {
				return fail("pair.sh kill a: %v", err)
			}
		}
		if _, err := pair(o, "start", "a"); err != nil {
			return fail("pair.sh start a: %v", err)
		}
		if first, err = waitWrite(w, time.Now(), o.firstWriteLimit); err != nil {
			return fail("after a's restart: %v", err)
		}
	}
	res.faultToWrite = first.Sub(t0)
	time.Sleep(o.after)
	w.stop()
	res.gap = w.longestGap(t0)
	st := tn.m.Status()
	if refused != "" {
		res.acked, res.txCommited = w.counts()
		res.errs, res.maxPerWorker = w.errorCounts()
		res.told = w.firstMessage(1105)
		if res.missing, err = w.missingOn(o.addrA); err != nil {
			return fail("checking acknowledged writes on a: %v", err)
		}
		return res
	}
	if st.Decision.Active != "b" || st.Decision.Epoch != 2 {
		return fail("after the fault: %s", describe(st))
	}
	for _, e := range st.Events {
		switch {
		case e.Type == failover.EventNodeDown && e.Node == "a" && res.detect == 0:
			res.detect = e.Time.Sub(t0)
		case e.Type == failover.EventFailoverFinished:
			res.promote = e.Duration
		}
	}
	firstErr := w.firstErrorAfter(t0)
	if !firstErr.IsZero() {
		if after := w.firstWriteAfter(firstErr); !after.IsZero() {
			res.outage = after.Sub(firstErr)
		}
	}
	res.acked, res.txCommited = w.counts()
	res.errs, res.maxPerWorker = w.errorCounts()
	missing, err := w.missingOn(o.addrB)
	if err != nil {
		return fail("checking acknowledged writes on b: %v", err)
	}
	res.missing = missing
	if mode == "switchover" && len(res.errs) > 0 {
		return fail("a planned switchover caused client errors: %v", lastN(w.errorList(), 5))
	}
	return res
}

// refusal shortens a failover_refused reason to why b was not promoted.
func refusal(reason string) string {
	_, why, ok := strings.Cut(reason, "not promoting: ")
	if !ok {
		return reason
	}
	switch {
	case strings.Contains(why, "may lack writes"):
		return "b unsynced"
	case strings.Contains(why, "never saw node"):
		return "a never seen by this tandem"
	case strings.Contains(why, "could not be fenced"):
		return "a alive, unfenceable"
	case strings.Contains(why, "unreachable too"):
		return "b not yet healthy"
	}
	return why
}

func healthy(s failover.Status, name string) bool {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n.Healthy
		}
	}
	return false
}

func describe(s failover.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state=%s active=%s epoch=%d", s.State, s.Decision.Active, s.Decision.Epoch)
	for _, e := range s.Events {
		fmt.Fprintf(&b, "; %s %s %s", e.Type, e.Node, e.Reason)
	}
	return b.String()
}

// ---------------------------------------------------------------- tandem

type tandem struct {
	p    *proxy.Proxy
	m    *failover.Manager
	addr string
	dir  string
	stop func()
}

// startTandem runs tandem in-process: its proxy on listen (127.0.0.1:0
// when empty), node a reached at addrA (a relay in some modes), a fresh
// state file.
func startTandem(o options, listen, addrA string) (*tandem, error) {
	dir, err := os.MkdirTemp("", "failoverbench-")
	if err != nil {
		return nil, err
	}
	var out io.Writer = io.Discard
	if o.verbose {
		out = os.Stderr
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "tandem", Level: hclog.Info, Output: out, TimeFormat: "15:04:05.000", IndependentLevels: true})
	pcfg := proxy.DefaultConfig()
	pcfg.Users = map[string]string{appUser: appPassword}
	pcfg.Logger = logger.Named("proxy")
	pcfg.Logger.SetLevel(hclog.Warn)
	nodes := []*proxy.Node{{Name: "a", Address: addrA}, {Name: "b", Address: o.addrB}}
	var m *failover.Manager
	pcfg.NodeFailed = func(node string) { m.CheckNow(node) }
	p, err := proxy.New(pcfg, nodes, "")
	if err != nil {
		return nil, err
	}
	fcfg := failover.DefaultConfig()
	fcfg.AdminUser, fcfg.AdminPassword = adminUser, adminPassword
	fnodes := []failover.NodeConfig{{Name: "a", Address: addrA}, {Name: "b", Address: o.addrB}}
	m, err = failover.New(fcfg, fnodes, "a", p, &failover.FileStore{Path: filepath.Join(dir, "state.json")}, logger.Named("failover"))
	if err != nil {
		return nil, err
	}
	if d := m.Decision(); d.Active != "" {
		if err := p.Route(d.Active); err != nil {
			return nil, err
		}
	}
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = m.Run(ctx) }()
	go func() { defer wg.Done(); _ = p.Serve(l) }()
	var once sync.Once
	tn := &tandem{p: p, m: m, addr: l.Addr().String(), dir: dir}
	tn.stop = func() {
		once.Do(func() {
			cancel()
			sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer scancel()
			_ = p.Shutdown(sctx)
			wg.Wait()
			os.RemoveAll(dir)
		})
	}
	return tn, nil
}

func (tn *tandem) waitStatus(timeout time.Duration, ok func(failover.Status) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		s := tn.m.Status()
		if ok(s) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %s", timeout, describe(s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (tn *tandem) client(conns int) (*sql.DB, error) { return clientAt(tn.addr, conns) }

// clientAt is the application's pool on tandem's proxy at addr.
func clientAt(addr string, conns int) (*sql.DB, error) {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = appUser, appPassword, "tcp", addr, appDB
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 5*time.Second, 20*time.Second, 20*time.Second
	c.InterpolateParams = true
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return db, nil
}

// ---------------------------------------------------------------- workload

type workload struct {
	next   atomic.Int64
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	writes  []write // acknowledged INSERTs and COMMITs
	errs    []clientErr
	perWkr  map[string]int
	txCount int
}

type write struct {
	ids []int64
	end time.Time
	tx  bool
}

type clientErr struct {
	worker string
	at     time.Time
	err    error
}

// startWorkload runs the workers until stop, or for at most limit (0: the
// quick modes' bound). A worker whose connection breaks takes a new one;
// after an error it waits 20 ms (a client's retry), so a tandem refusing
// writes gets a bounded number of attempts.
func startWorkload(db *sql.DB, o options, limit time.Duration) (*workload, error) {
	setup := []string{
		"CREATE TABLE IF NOT EXISTS fb_rows (id BIGINT PRIMARY KEY, worker VARCHAR(16) NOT NULL, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))",
		"CREATE TABLE IF NOT EXISTS fb_counter (id INT PRIMARY KEY, n BIGINT NOT NULL)",
		"TRUNCATE TABLE fb_rows",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, s := range setup {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return nil, fmt.Errorf("%s: %w", s, err)
		}
	}
	for i := range o.txs {
		if _, err := db.ExecContext(ctx, "INSERT IGNORE INTO fb_counter VALUES (?, 0)", i); err != nil {
			return nil, err
		}
	}
	// Ids never repeat across rounds on a kept pair: start from the clock.
	w := &workload{perWkr: map[string]int{}, done: make(chan struct{})}
	w.next.Store(time.Now().UnixMicro())
	if limit == 0 {
		limit = o.warmup + o.firstWriteLimit + o.after + 30*time.Second
	}
	lctx, lcancel := context.WithTimeout(context.Background(), limit)
	w.cancel = lcancel
	var wg sync.WaitGroup
	worker := func(name string, body func(ctx context.Context, conn *sql.Conn) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn *sql.Conn
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			for range 200000 { // bounded in count as well as in time
				if lctx.Err() != nil {
					return
				}
				if conn == nil {
					c, err := db.Conn(lctx)
					if err != nil {
						if lctx.Err() == nil {
							w.fail(name, err)
						}
						time.Sleep(50 * time.Millisecond)
						continue
					}
					conn = c
				}
				sctx, scancel := context.WithTimeout(lctx, 15*time.Second)
				err := body(sctx, conn)
				scancel()
				if err != nil && lctx.Err() == nil {
					w.fail(name, err)
					if errCode(err) == 0 {
						// Not a MySQL error: the connection is gone.
						conn.Close()
						conn = nil
					}
					time.Sleep(20 * time.Millisecond)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	for i := range o.writers {
		name := "insert-" + strconv.Itoa(i)
		worker(name, func(ctx context.Context, conn *sql.Conn) error {
			id := w.next.Add(1)
			if _, err := conn.ExecContext(ctx, "INSERT INTO fb_rows (id, worker) VALUES (?, ?)", id, name); err != nil {
				return err
			}
			w.ack(write{ids: []int64{id}, end: time.Now()})
			return nil
		})
	}
	for i := range o.txs {
		name := "tx-" + strconv.Itoa(i)
		worker(name, func(ctx context.Context, conn *sql.Conn) error {
			id1, id2 := w.next.Add(1), w.next.Add(1)
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			var n int64
			for _, step := range []func() error{
				func() error {
					_, err := tx.ExecContext(ctx, "INSERT INTO fb_rows (id, worker) VALUES (?, ?)", id1, name)
					return err
				},
				func() error {
					_, err := tx.ExecContext(ctx, "UPDATE fb_counter SET n = n + 1 WHERE id = ?", i)
					return err
				},
				func() error { return tx.QueryRowContext(ctx, "SELECT n FROM fb_counter WHERE id = ?", i).Scan(&n) },
				func() error {
					_, err := tx.ExecContext(ctx, "INSERT INTO fb_rows (id, worker) VALUES (?, ?)", id2, name)
					return err
				},
			} {
				if err := step(); err != nil {
					_ = tx.Rollback()
					return err
				}
			}
			if err := tx.Commit(); err != nil {
				return err
			}
			w.ack(write{ids: []int64{id1, id2}, end: time.Now(), tx: true})
			return nil
		})
	}
	for i := range o.readers {
		name := "read-" + strconv.Itoa(i)
		worker(name, func(ctx context.Context, conn *sql.Conn) error {
			var cnt int
			return conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM fb_rows WHERE id = ?", w.next.Load()-5).Scan(&cnt)
		})
	}
	go func() { wg.Wait(); close(w.done) }()
	return w, nil
}

func (w *workload) stop() {
	w.cancel()
	<-w.done
}

func (w *workload) ack(wr write) {
	w.mu.Lock()
	w.writes = append(w.writes, wr)
	if wr.tx {
		w.txCount++
	}
	w.mu.Unlock()
}

func (w *workload) fail(worker string, err error) {
	w.mu.Lock()
	w.errs = append(w.errs, clientErr{worker: worker, at: time.Now(), err: err})
	w.perWkr[worker]++
	w.mu.Unlock()
}

func (w *workload) acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.writes)
}

func (w *workload) counts() (inserts, txs int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.writes) - w.txCount, w.txCount
}

// firstWriteAfter returns when the first write acknowledged after t was.
func (w *workload) firstWriteAfter(t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for _, wr := range w.writes {
		if wr.end.After(t) && (first.IsZero() || wr.end.Before(first)) {
			first = wr.end
		}
	}
	return first
}

// longestGap is the longest time from t on without an acknowledged write
// (from t to the first one, or between two).
func (w *workload) longestGap(t time.Time) time.Duration {
	d, _ := w.gap(t)
	return d
}

// longestGapEnd is when the longest gap from t on ended.
func (w *workload) longestGapEnd(t time.Time) time.Time {
	_, end := w.gap(t)
	return end
}

func (w *workload) gap(t time.Time) (time.Duration, time.Time) {
	w.mu.Lock()
	var ends []time.Time
	for _, wr := range w.writes {
		if wr.end.After(t) {
			ends = append(ends, wr.end)
		}
	}
	w.mu.Unlock()
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
	var most time.Duration
	var end time.Time
	prev := t
	for _, e := range ends {
		if e.Sub(prev) > most {
			most, end = e.Sub(prev), e
		}
		prev = e
	}
	return most, end
}

func (w *workload) firstErrorAfter(t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for _, e := range w.errs {
		if e.at.After(t) && (first.IsZero() || e.at.Before(first)) {
			first = e.at
		}
	}
	return first
}

func (w *workload) errorCounts() (map[string]int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	byCode := map[string]int{}
	for _, e := range w.errs {
		code := "other"
		if c := errCode(e.err); c != 0 {
			code = strconv.Itoa(int(c))
		}
		byCode[code]++
	}
	most := 0
	for _, n := range w.perWkr {
		most = max(most, n)
	}
	return byCode, most
}

// firstMessage is the first error with MySQL code code, or "".
func (w *workload) firstMessage(code uint16) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.errs {
		if errCode(e.err) == code {
			return e.err.Error()
		}
	}
	return ""
}

func (w *workload) errorList() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, e := range w.errs {
		out = append(out, e.worker+": "+e.err.Error())
	}
	return out
}

// missingOn counts acknowledged ids absent from node addr.
func (w *workload) missingOn(addr string) (int, error) {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = adminUser, adminPassword, "tcp", addr
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 5*time.Second, 30*time.Second, 30*time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return 0, err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT id FROM "+appDB+".fb_rows")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return 0, err
		}
		have[id] = true
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	missing := 0
	for _, wr := range w.writes {
		for _, id := range wr.ids {
			if !have[id] {
				missing++
			}
		}
	}
	return missing, nil
}

func errCode(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// ---------------------------------------------------------------- report

func report(out io.Writer, results []result) {
	fmt.Fprintln(out, "\n| mode | round | what tandem did | fault → first write | longest write gap | client outage | detection | promotion | inserts | transactions | client errors | max errors / worker | lost acked writes | two writable (samples) |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		if r.err != "" {
			fmt.Fprintf(out, "| %s | %d | failed: %s | | | | | | | | | | | %d (%d) |\n", r.mode, r.n, strings.ReplaceAll(r.err, "|", "/"), r.twoWritable, r.samples)
			continue
		}
		fmt.Fprintf(out, "| %s | %d | %s | %s | %s | %s | %s | %s | %d | %d | %s | %d | %d on %s | %d (%d) |\n", r.mode, r.n, r.did, ms(r.faultToWrite), ms(r.gap), ms(r.outage),
			ms(r.detect), ms(r.promote), r.acked, r.txCommited, fmtErrs(r.errs), r.maxPerWorker, r.missing, r.checkedOn, r.twoWritable, r.samples)
	}
	// One row per fault and outcome: a round where tandem refused is not
	// averaged with rounds where it promoted.
	type key struct{ mode, did string }
	var keys []key
	for _, r := range results {
		k := key{r.mode, r.did}
		if r.err != "" {
			k.did = "FAILED"
		}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	slices.SortStableFunc(keys, func(a, b key) int { return slices.Index(allModes, a.mode) - slices.Index(allModes, b.mode) })
	fmt.Fprintln(out, "\nThe fault matrix (medians over the rounds with the same outcome):")
	fmt.Fprintln(out, "\n| fault | rounds | what tandem did | fault → first write | longest write gap | client errors per round (median; codes seen) | lost acked writes (total) | samples with two writable nodes (total) |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|")
	for _, k := range keys {
		var fw, gp []time.Duration
		var ec []int
		codes := map[string]int{}
		lost, two, samples, rounds := 0, 0, 0, 0
		for _, r := range results {
			if r.mode != k.mode || (r.err != "") != (k.did == "FAILED") || r.err == "" && r.did != k.did {
				continue
			}
			rounds++
			two += r.twoWritable
			samples += r.samples
			fw, gp = append(fw, r.faultToWrite), append(gp, r.gap)
			total := 0
			for c, n := range r.errs {
				total += n
				codes[c] += n
			}
			ec = append(ec, total)
			lost += r.missing
		}
		var seen []string
		for c := range codes {
			seen = append(seen, c)
		}
		sort.Strings(seen)
		if k.did == "FAILED" {
			fmt.Fprintf(out, "| %s | %d | FAILED (see above) | | | | | %d of %d |\n", k.mode, rounds, two, samples)
			continue
		}
		fmt.Fprintf(out, "| %s | %d | %s | %s | %s | %d; %s | %d | %d of %d |\n", k.mode, rounds, k.did, ms(median(fw)), ms(median(gp)),
			medianInt(ec), orNone(strings.Join(seen, ", ")), lost, two, samples)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianInt(v []int) int {
	d := make([]time.Duration, len(v))
	for i, x := range v {
		d[i] = time.Duration(x)
	}
	return int(median(d))
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
}

func fmtErrs(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d×%s", m[k], k))
	}
	return strings.Join(parts, " ")
}

// ---------------------------------------------------------------- pair.sh

// pair runs scripts/pair.sh with args, bounded in time.
func pair(o options, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{o.pairScript}, args...)...)
	cmd.WaitDelay = 5 * time.Second // never wait on pipes a server inherited
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%w\n%s", err, out)
	}
	return string(out), nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; run from the tandem module")
		}
		dir = parent
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
