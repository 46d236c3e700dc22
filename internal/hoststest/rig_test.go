package hoststest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/failover"
	"github.com/tandemdb/tandem/internal/testpair"
)

// The hosts, the node each runs, and back.
var (
	hostOf = map[string]string{"a": "host1", "b": "host2"}
	nodeOn = map[string]string{"host1": "a", "host2": "b"}
)

// rig is the topology of scripts/cluster.sh, driven from the test.
type rig struct {
	root, ns, net, dir string
	tandemBin          string
	env                []string
	token              string
	admin              map[string]*http.Client // per tandem host
	nodes              map[string]*sql.DB      // tandem's admin account on each node, from the node's host
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// newRig builds tandem, takes the rig's lock and runs `scripts/cluster.sh
// demo` from scratch; everything is stopped when the test ends (the data
// directory, with the logs, is kept if the test failed).
func newRig(t *testing.T) *rig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root (network namespaces): run the tests as root")
	}
	root, err := testpair.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{
		root: root,
		// Its own namespaces, addresses and directory, never those of
		// scripts/cluster.sh's defaults (another test uses them).
		ns:  envOr("TANDEM_HOSTS_NS", "hst"),
		net: envOr("TANDEM_HOSTS_NET", "10.78.0"),
		dir: strings.TrimRight(envOr("TANDEM_HOSTS_DIR", "/tmp/tandem-hosts"), "/"),
	}
	for _, b := range []string{"mariadbd", "mariadb-install-db", "curl", "ip"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is missing (make pair-install installs MariaDB): %v", b, err)
		}
	}
	etcd := envOr("TANDEM_ETCD_BIN", filepath.Join(root, "bin", "etcd"))
	if _, err := os.Stat(etcd); err != nil {
		t.Fatalf("no etcd binary at %s: run `make etcd-build` first", etcd)
	}
	lock(t, r.dir+".lock")
	r.tandemBin = filepath.Join(t.TempDir(), "tandem")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	build := exec.Command(gobin, "build", "-o", r.tandemBin, "./cmd/tandem")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tandem: %v\n%s", err, out)
	}
	r.env = append(os.Environ(), "TANDEM_CLUSTER_NS="+r.ns, "TANDEM_CLUSTER_NET="+r.net,
		"TANDEM_CLUSTER_DIR="+r.dir, "TANDEM_ETCD_BIN="+etcd, "TANDEM_BIN="+r.tandemBin,
		"TANDEM_CLUSTER_TIMEOUT=60")
	if out, err := r.script(120*time.Second, "down", "--purge"); err != nil {
		t.Fatalf("scripts/cluster.sh down --purge: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			r.dumpLogs(t)
		}
		args := []string{"down", "--purge"}
		if t.Failed() || os.Getenv("TANDEM_HOSTS_KEEP") != "" {
			args = args[:1] // keep the logs
		}
		if out, err := r.script(120*time.Second, args...); err != nil {
			t.Logf("scripts/cluster.sh down: %v\n%s", err, out)
		}
	})
	r.run(t, "demo")
	tok, err := os.ReadFile(filepath.Join(r.dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	r.token = strings.TrimSpace(string(tok))
	r.admin = map[string]*http.Client{}
	for _, h := range []string{"host1", "host2"} {
		r.admin[h] = &http.Client{Timeout: time.Second, Transport: &http.Transport{
			DialContext: dialer(r.nsOf(h)), MaxIdleConnsPerHost: 2}}
	}
	r.nodes = map[string]*sql.DB{}
	for n, h := range hostOf {
		c := mysql.NewConfig()
		c.User, c.Passwd, c.Net, c.Addr = testpair.AdminUser, testpair.AdminPassword, "tcp", r.ip(h)+":3307"
		c.Timeout, c.ReadTimeout, c.WriteTimeout = time.Second, 5*time.Second, 5*time.Second
		c.ParseTime = true
		c.DialFunc = dialer(r.nsOf(h))
		conn, err := mysql.NewConnector(c)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		db.SetMaxIdleConns(2)
		t.Cleanup(func() { db.Close() })
		r.nodes[n] = db
	}
	return r
}

// lock takes an exclusive lock on path for the rest of the test.
func lock(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("%s stays locked by another test process", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() { f.Close() })
}

func (r *rig) nsOf(host string) string { return r.ns + "-" + host }

func (r *rig) ip(host string) string {
	switch host {
	case "host1":
		return r.net + ".11"
	case "host2":
		return r.net + ".12"
	}
	return r.net + ".13"
}

func (r *rig) script(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(r.root, "scripts", "cluster.sh"), args...)
	cmd.Dir, cmd.Env = r.root, r.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// run runs scripts/cluster.sh ARGS, failing the test if it fails.
func (r *rig) run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := r.script(120*time.Second, args...); err != nil {
		t.Fatalf("scripts/cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// tandemCmd runs the tandem CLI inside host's namespace against that
// host's tandem.
func (r *rig) tandemCmd(t testing.TB, host string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append(append([]string{"netns", "exec", r.nsOf(host), r.tandemBin}, args...),
		"-config", filepath.Join(r.dir, host, "tandem", "tandem.toml"))
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	return string(out), err
}

func (r *rig) dumpLogs(t *testing.T) {
	for _, f := range []string{"host1/tandem/tandem.log", "host2/tandem/tandem.log"} {
		b, err := os.ReadFile(filepath.Join(r.dir, f))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		t.Logf("---- last lines of %s ----\n%s", f, strings.Join(lines[max(0, len(lines)-60):], "\n"))
	}
}

// status asks host's tandem for its status.
func (r *rig) status(host string) (failover.Status, error) {
	var s failover.Status
	req, err := http.NewRequest("GET", "http://"+r.ip(host)+":9306/status", nil)
	if err != nil {
		return s, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.admin[host].Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET /status: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s, err
}

// waitStatus polls host's tandem until ok, or fails the test after timeout.
func (r *rig) waitStatus(t testing.TB, host string, timeout time.Duration, what string, ok func(failover.Status) bool) failover.Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, err := r.status(host)
		if err == nil && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("tandem on %s: after %v, still not %s; last status: %v %s", host, timeout, what, err, describe(s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// routing: settled on node (coordinator "active" or follower
// "following"), opened, not self-fenced.
func routing(node string) func(failover.Status) bool {
	return func(s failover.Status) bool {
		return routesTo(s) == node && (s.State == "active" || s.State == "following")
	}
}

// routesTo is the node a tandem may send traffic to, as its status says
// ("" when self-fenced or the decision is not opened). Counted whatever
// the state (a tandem holding traffic for a switchover still counts).
func routesTo(s failover.Status) string {
	if s.SelfFenced || !s.Decision.Opened {
		return ""
	}
	return s.Decision.Active
}

// settled waits until both tandems route to node, one of them coordinator.
func (r *rig) settled(t testing.TB, node string, timeout time.Duration) (coordinator string) {
	t.Helper()
	c, why := r.trySettled(node, timeout)
	if c == "" {
		t.Fatal(why)
	}
	return c
}

// trySettled is settled without failing: the coordinator, or "" and why.
func (r *rig) trySettled(node string, timeout time.Duration) (coordinator, why string) {
	deadline := time.Now().Add(timeout)
	for {
		s1, err1 := r.status("host1")
		s2, err2 := r.status("host2")
		if err1 == nil && err2 == nil && routing(node)(s1) && routing(node)(s2) &&
			s1.Decision.Epoch == s2.Decision.Epoch && s1.Coordinator != s2.Coordinator {
			if s1.Coordinator {
				return "host1", ""
			}
			return "host2", ""
		}
		if time.Now().After(deadline) {
			return "", fmt.Sprintf("after %v the tandems do not both route to %s with one coordinator:\nhost1 (%v): %s\nhost2 (%v): %s",
				timeout, node, err1, describe(s1), err2, describe(s2))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// coordinator returns the host whose tandem says it is the coordinator,
// or "".
func (r *rig) coordinator() string {
	for _, h := range []string{"host1", "host2"} {
		if s, err := r.status(h); err == nil && s.Coordinator && !s.SelfFenced {
			return h
		}
	}
	return ""
}

func describe(s failover.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state=%s coordinator=%v self_fenced=%v active=%s epoch=%d opened=%v excluded=%v unsynced=%v",
		s.State, s.Coordinator, s.SelfFenced, s.Decision.Active, s.Decision.Epoch, s.Decision.Opened, s.Decision.Excluded, s.Decision.Unsynced)
	for _, n := range s.Nodes {
		fmt.Fprintf(&b, "\n  node %s: role=%s healthy=%v read_only=%v io=%s sql=%v err=%q replica_err=%q gtid=%s",
			n.Name, n.Role, n.Healthy, n.ReadOnly, n.IORunning, n.SQLRunning, n.LastError, n.ReplicaError, n.Executed)
	}
	for _, e := range s.Events[max(0, len(s.Events)-8):] {
		fmt.Fprintf(&b, "\n  event %s %s node=%s epoch=%d: %s", e.Time.Format("15:04:05.000"), e.Type, e.Node, e.Epoch, e.Reason)
	}
	return b.String()
}

// readOnly reads node n's read_only from inside its host.
func (r *rig) readOnly(ctx context.Context, n string) (bool, error) {
	var ro bool
	err := r.nodes[n].QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&ro)
	return ro, err
}

// query1 runs a one-value query on node n.
func (r *rig) query1(t testing.TB, n, q string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var v sql.NullString
	if err := r.nodes[n].QueryRowContext(ctx, q).Scan(&v); err != nil {
		t.Fatalf("node %s: %s: %v", n, q, err)
	}
	return v.String
}

// replica returns node n's SHOW SLAVE STATUS fields.
func (r *rig) replica(n string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := r.nodes[n].QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	if !rows.Next() {
		return out, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	for i, c := range cols {
		out[c] = vals[i].String
	}
	return out, nil
}

// app opens a pool as the app user through host's tandem, from host.
func (r *rig) app(t testing.TB, host string, conns int) *sql.DB {
	t.Helper()
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = testpair.AppUser, testpair.AppPassword, "tcp", r.ip(host)+":3306", testpair.AppDB
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 3*time.Second, 20*time.Second, 20*time.Second
	c.InterpolateParams = true
	c.DialFunc = dialer(r.nsOf(host))
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(conns)
	t.Cleanup(func() { db.Close() })
	return db
}

func errCode(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// sqlDB names a pool of app connections through one tandem.
type sqlDB struct{ *sql.DB }
