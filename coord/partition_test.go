package coord

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPartitionCoordinatorHost runs two sessions as processes on two
// "hosts" (network namespaces from scripts/cluster.sh, one etcd member
// each, plus a witness), partitions the coordinator's host, and checks that
// the partitioned session stops being Valid before the majority side
// elects the other one, and that after healing it comes back as a follower.
// Needs root (network namespaces).
func TestPartitionCoordinatorHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it builds network namespaces with scripts/cluster.sh")
	}
	nc := startNetCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	h1 := nc.startReporter(t, ctx, "host1", "app1")
	h1.wait(t, 30*time.Second, "app1 coordinator", func(r report) bool { return r.valid && r.coord })
	h2 := nc.startReporter(t, ctx, "host2", "app2")
	h2.wait(t, 30*time.Second, "app2 valid follower", func(r report) bool { return r.valid && !r.coord })
	h1.wait(t, 5*time.Second, "app1 still coordinator", func(r report) bool { return r.valid && r.coord })
	leader := nc.leaderOnHost1(t)

	before := time.Now()
	nc.mustScript(t, "partition", "host1")
	t0 := time.Now() // the cut happened between before and t0
	lost := h1.wait(t, 20*time.Second, "partitioned app1 to stop being valid", func(r report) bool { return !r.valid })
	if lost.coord || lost.until.IsZero() {
		t.Fatalf("app1 not valid: %+v (want not coordinator, a validity window that ended)", lost)
	}
	won := h2.wait(t, 30*time.Second, "app2 to become coordinator", func(r report) bool { return r.valid && r.coord })
	// lost.until is the end of app1's last validity window (it can no
	// longer renew); won.at is when app2 saw itself coordinator.
	if !lost.until.Before(won.at) {
		t.Fatalf("two coordinators: app1 valid until %v, app2 coordinator at %v", lost.until.Format(time.StampMicro), won.at.Format(time.StampMicro))
	}
	t.Logf("partition of the coordinator's host (etcd raft leader there: %v; the cut command took %v): after it returned, its session invalid at %+v, the other host's session coordinator at +%v (gap %v)",
		leader, t0.Sub(before).Round(time.Millisecond), lost.until.Sub(t0).Round(time.Millisecond), won.at.Sub(t0).Round(time.Millisecond), won.at.Sub(lost.until).Round(time.Millisecond))
	if r := h1.latest(); r.coord {
		t.Fatal("partitioned app1 coordinator again")
	}

	nc.mustScript(t, "heal", "host1")
	h1.wait(t, 30*time.Second, "healed app1 valid again, as follower", func(r report) bool { return r.valid && !r.coord })
	h2.wait(t, 5*time.Second, "app2 still coordinator", func(r report) bool { return r.valid && r.coord })
}

// netCluster is scripts/cluster.sh's three namespaces for one test.
type netCluster struct {
	env  []string
	root string
}

func startNetCluster(t *testing.T) *netCluster {
	t.Helper()
	dir := t.TempDir()
	nc := &netCluster{root: tc.root, env: append(os.Environ(),
		"TANDEM_ETCD_BIN="+tc.bin,
		fmt.Sprintf("TANDEM_CLUSTER_NS=ct%d", os.Getpid()%10000),
		"TANDEM_CLUSTER_DIR="+filepath.Join(dir, "cluster"),
		"TANDEM_CLUSTER_TIMEOUT=60",
		"TANDEM_CLUSTER_NET=10.77.0",
	)}
	t.Cleanup(func() {
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

// leaderOnHost1 asks host1's member whether it is etcd's raft leader.
func (nc *netCluster) leaderOnHost1(t *testing.T) bool {
	out := nc.mustScript(t, "exec", "host1", "curl", "-fsS", "--max-time", "2", "-X", "POST", "-d", "{}",
		"http://127.0.0.1:2379/v3/maintenance/status")
	var member, leader string
	for _, f := range strings.Split(out, ",") {
		if k, v, ok := strings.Cut(f, ":"); ok {
			v = strings.Trim(v, `"{} `)
			switch strings.Trim(k, `"{ `) {
			case "member_id":
				member = v
			case "leader":
				leader = v
			}
		}
	}
	return member != "" && member == leader
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
func (nc *netCluster) startReporter(t *testing.T, ctx context.Context, host, id string) *reporter {
	t.Helper()
	var eps []string
	for _, o := range []int{11, 12, 13} {
		eps = append(eps, fmt.Sprintf("10.77.0.%d:2379", o))
	}
	cmd := exec.CommandContext(ctx, filepath.Join(nc.root, "scripts", "cluster.sh"), "exec", host, os.Args[0], "-test.run=^$")
	cmd.Env = append(nc.env, childEnv+"=report", "COORD_CHILD_ENDPOINTS="+strings.Join(eps, ","),
		"COORD_CHILD_PREFIX=/coordtest/partition", "COORD_CHILD_ID="+id)
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
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
	s, err := Open(octx, cfg, nil)
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
