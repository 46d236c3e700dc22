package coord

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestPartitionCoordinatorHost runs two sessions as processes on two
// "hosts" (network namespaces from scripts/cluster.sh, one etcd member
// each, plus a witness), partitions the coordinator's host, and checks that
// the partitioned session stops being Valid before the majority side
// elects the other one, and that after healing it comes back as a follower.
// Needs root (network namespaces).
func TestPartitionCoordinatorHost(t *testing.T) { testPartition(t, "") }

// TestPartitionWithPreferredLeader: the same, with the coordinator keeping
// etcd's leader on the witness (PreferredLeader), as production should.
func TestPartitionWithPreferredLeader(t *testing.T) { testPartition(t, "witness") }

func testPartition(t *testing.T, preferred string) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it builds network namespaces with scripts/cluster.sh")
	}
	nc := startNetCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	h1 := nc.startReporter(t, ctx, "host1", "app1", preferred)
	h1.wait(t, 30*time.Second, "app1 coordinator", func(r report) bool { return r.valid && r.coord })
	h2 := nc.startReporter(t, ctx, "host2", "app2", preferred)
	h2.wait(t, 30*time.Second, "app2 valid follower", func(r report) bool { return r.valid && !r.coord })
	h1.wait(t, 5*time.Second, "app1 still coordinator", func(r report) bool { return r.valid && r.coord })
	if preferred != "" {
		// Wait until the preferred member has led for 2 s in one term: a
		// leader change extends every lease, which would blur the
		// measurement below.
		deadline := time.Now().Add(60 * time.Second)
		var since time.Time
		var term string
		for {
			lead, tm := nc.leads(t, preferred)
			if !lead {
				since = time.Time{}
			} else if since.IsZero() || tm != term {
				since, term = time.Now(), tm
			} else if time.Since(since) > 2*time.Second {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("etcd's leader not kept on %s", preferred)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	leader, _ := nc.leads(t, "host1")
	_, termBefore := nc.leads(t, "host2")

	before := time.Now()
	nc.mustScript(t, "partition", "host1")
	t0 := time.Now() // the cut happened between before and t0
	lost := h1.wait(t, 20*time.Second, "partitioned app1 to stop being valid", func(r report) bool { return !r.valid })
	if lost.coord || lost.until.IsZero() {
		t.Fatalf("app1 not valid: %+v (want not coordinator, a validity window that ended)", lost)
	}
	won := h2.wait(t, 30*time.Second, "app2 to become coordinator", func(r report) bool { return r.valid && r.coord })
	_, termAfter := nc.leads(t, "host2")
	// lost.until is the end of app1's last validity window (it can no
	// longer renew); won.at is when app2 saw itself coordinator.
	if !lost.until.Before(won.at) {
		t.Fatalf("two coordinators: app1 valid until %v, app2 coordinator at %v", lost.until.Format(time.StampMicro), won.at.Format(time.StampMicro))
	}
	t.Logf("partition of the coordinator's host (etcd raft leader there: %v, raft term %s → %s, preferred leader %q; the cut command took %v): after it returned, its session invalid at %+v, the other host's session coordinator at +%v (gap %v)",
		leader, termBefore, termAfter, preferred, t0.Sub(before).Round(time.Millisecond), lost.until.Sub(t0).Round(time.Millisecond), won.at.Sub(t0).Round(time.Millisecond), won.at.Sub(lost.until).Round(time.Millisecond))
	if r := h1.latest(); r.coord {
		t.Fatal("partitioned app1 coordinator again")
	}

	// After healing, app1 comes back on a new lease. Normally app2 stays
	// coordinator; an etcd hiccup during the rejoin may cost app2 its
	// lease too, so the check is: both valid, exactly one coordinator.
	nc.mustScript(t, "heal", "host1")
	h1.wait(t, 30*time.Second, "healed app1 valid again", func(r report) bool { return r.valid })
	deadline := time.Now().Add(30 * time.Second)
	for {
		r1, r2 := h1.latest(), h2.latest()
		if r1.valid && r2.valid && r1.coord != r2.coord {
			t.Logf("after healing: coordinator is %s", map[bool]string{true: "app1", false: "app2 (kept)"}[r1.coord])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after healing: app1 %+v, app2 %+v; want both valid, one coordinator", r1, r2)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// netCluster is scripts/cluster.sh's three namespaces for one test.
type netCluster struct {
	env  []string
	root string
}

func startNetCluster(t *testing.T) *netCluster {
	t.Helper()
	dir := t.TempDir()
	nc := &netCluster{root: tc.Root, env: append(os.Environ(),
		"TANDEM_ETCD_BIN="+tc.Bin,
		fmt.Sprintf("TANDEM_CLUSTER_NS=ct%d", os.Getpid()%10000),
		"TANDEM_CLUSTER_DIR="+filepath.Join(dir, "cluster"),
		"TANDEM_CLUSTER_TIMEOUT=60",
		"TANDEM_CLUSTER_NET=10.77.0",
	)}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("COORD_DUMP_ETCD") != "" { // show what etcd saw
			for _, h := range []string{"host1", "host2", "witness"} {
				b, _ := os.ReadFile(filepath.Join(dir, "cluster", h, "etcd.log"))
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				if len(lines) > 40 {
					lines = lines[len(lines)-40:]
				}
				t.Logf("etcd log of %s (last lines):\n%s", h, strings.Join(lines, "\n"))
			}
		}
		if out, err := nc.script("down", "--purge"); err != nil {
			t.Errorf("cluster.sh down: %v\n%s", err, out)
		}
	})
	nc.mustScript(t, "up")
	return nc
}

func (nc *netCluster) script(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(nc.root, "scripts", "cluster.sh"), args...)
	cmd.Env = nc.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (nc *netCluster) mustScript(t *testing.T, args ...string) string {
	t.Helper()
	out, err := nc.script(args...)
	if err != nil {
		t.Fatalf("scripts/cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// leads asks host's etcd member whether it is the raft leader, and the
// raft term it is in.
func (nc *netCluster) leads(t *testing.T, host string) (bool, string) {
	out := nc.mustScript(t, "exec", host, "curl", "-fsS", "--max-time", "2", "-X", "POST", "-d", "{}",
		"http://127.0.0.1:2379/v3/maintenance/status")
	var st struct {
		Header struct {
			MemberID string `json:"member_id"`
		} `json:"header"`
		Leader   string `json:"leader"`
		RaftTerm string `json:"raftTerm"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status of %s: %v: %s", host, err, out)
	}
	return st.Header.MemberID != "" && st.Header.MemberID == st.Leader, st.RaftTerm
}

// report is one status line of a reporter child.
type report struct {
	valid, coord bool
	until, at    time.Time
}

// reporter follows a child session's status lines.
type reporter struct {
	mu   sync.Mutex
	last report
	seen bool
	done chan struct{}
}

// startReporter runs the test binary inside host's namespace as a session
// that campaigns continuously and prints its status every 10 ms.
func (nc *netCluster) startReporter(t *testing.T, ctx context.Context, host, id, preferred string) *reporter {
	t.Helper()
	var eps []string
	for _, o := range []int{11, 12, 13} {
		eps = append(eps, fmt.Sprintf("10.77.0.%d:2379", o))
	}
	cmd := exec.CommandContext(ctx, filepath.Join(nc.root, "scripts", "cluster.sh"), "exec", host, os.Args[0], "-test.run=^$")
	cmd.Env = append(nc.env, childEnv+"=report", "COORD_CHILD_ENDPOINTS="+strings.Join(eps, ","),
		"COORD_CHILD_PREFIX=/coordtest/partition", "COORD_CHILD_ID="+id, "COORD_CHILD_PREFERRED="+preferred)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := &reporter{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var v, c int
			var until, at int64
			if n, _ := fmt.Sscanf(sc.Text(), "S %d %d %d %d", &v, &c, &until, &at); n != 4 {
				continue
			}
			r.mu.Lock()
			r.last = report{valid: v == 1, coord: c == 1, until: time.Unix(0, until), at: time.Unix(0, at)}
			r.seen = true
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *reporter) latest() report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// wait polls the child's latest report until cond holds.
func (r *reporter) wait(t *testing.T, timeout time.Duration, what string, cond func(report) bool) report {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		last, seen := r.last, r.seen
		r.mu.Unlock()
		if seen && cond(last) {
			return last
		}
		select {
		case <-r.done:
			t.Fatalf("child exited while waiting for %s", what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last report %+v)", timeout, what, last)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// reportMain runs in a reporter child: campaign whenever not coordinator,
// print "S valid coord until_ns now_ns" every 10 ms, for at most 3 minutes.
func reportMain() int {
	cfg := DefaultConfig()
	cfg.Endpoints = strings.Split(os.Getenv("COORD_CHILD_ENDPOINTS"), ",")
	cfg.Prefix = os.Getenv("COORD_CHILD_PREFIX")
	cfg.ID = os.Getenv("COORD_CHILD_ID")
	cfg.PreferredLeader = os.Getenv("COORD_CHILD_PREFERRED")
	cfg.LeaderCheckInterval = 200 * time.Millisecond
	cfg.Events = func(kind, detail string) {
		fmt.Fprintf(os.Stderr, "%s %s event: %s (%s)\n", time.Now().Format("15:04:05.000"), cfg.ID, kind, detail)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
	log := hclog.New(&hclog.LoggerOptions{Name: cfg.ID, Level: hclog.LevelFromString(os.Getenv("COORD_CHILD_LOG")), Output: os.Stderr, TimeFormat: "15:04:05.000"})
	s, err := Open(octx, cfg, log)
	ocancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reporter:", err)
		return 1
	}
	go func() {
		for ctx.Err() == nil {
			if !s.IsCoordinator() {
				cctx, ccancel := context.WithTimeout(ctx, time.Second)
				s.Campaign(cctx)
				ccancel()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	w := bufio.NewWriter(os.Stdout)
	for ctx.Err() == nil {
		st := s.Status()
		b := func(v bool) int {
			if v {
				return 1
			}
			return 0
		}
		// IsCoordinator is read after Status: a "1" never outlives validity.
		fmt.Fprintf(w, "S %d %d %d %d\n", b(st.Valid), b(s.IsCoordinator()), st.ValidUntil.UnixNano(), time.Now().UnixNano())
		w.Flush()
		time.Sleep(10 * time.Millisecond)
	}
	return 0
}
