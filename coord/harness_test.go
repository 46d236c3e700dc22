package coord

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The tests run against a real three-member etcd that TestMain starts with
// scripts/etcd.sh on free loopback ports and a temporary data directory,
// and removes at the end. The binary comes from `make etcd-build`; without
// it the tests fail (they never skip).

// cluster describes the test's etcd.
type cluster struct {
	root    string // repository root
	bin     string
	env     []string
	clients []string // 127.0.0.1:port of members 1..3
}

var tc *cluster

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
	case "report":
		os.Exit(reportMain())
	default:
		os.Exit(childMain())
	}
	c, err := startCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "coord tests:", err)
		os.Exit(1)
	}
	tc = c
	code := m.Run()
	if out, err := c.script("down", "--purge"); err != nil {
		fmt.Fprintf(os.Stderr, "coord tests: etcd down: %v\n%s", err, out)
	}
	os.Exit(code)
}

func startCluster() (*cluster, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	bin := os.Getenv("TANDEM_ETCD_BIN")
	if bin == "" {
		bin = filepath.Join(root, "bin", "etcd")
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return nil, fmt.Errorf("no etcd binary at %s: run `make etcd-build` (or scripts/etcd.sh build) first", bin)
	}
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "coord-etcd-")
	if err != nil {
		return nil, err
	}
	c := &cluster{root: root, bin: bin}
	c.env = append(os.Environ(),
		"TANDEM_ETCD_BIN="+bin,
		"TANDEM_ETCD_DIR="+dir,
		fmt.Sprintf("TANDEM_ETCD_CLIENT_PORTS=%d %d %d", ports[0], ports[1], ports[2]),
		fmt.Sprintf("TANDEM_ETCD_PEER_PORTS=%d %d %d", ports[3], ports[4], ports[5]),
		"TANDEM_ETCD_TIMEOUT=60",
	)
	for _, p := range ports[:3] {
		c.clients = append(c.clients, fmt.Sprintf("127.0.0.1:%d", p))
	}
	if out, err := c.script("up"); err != nil {
		c.script("down", "--purge")
		return nil, fmt.Errorf("scripts/etcd.sh up: %v\n%s", err, out)
	}
	return c, nil
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// script runs scripts/etcd.sh with the test cluster's environment.
func (c *cluster) script(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.root, "scripts", "etcd.sh"), args...)
	cmd.Env = c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (c *cluster) mustScript(t *testing.T, args ...string) {
	t.Helper()
	if out, err := c.script(args...); err != nil {
		t.Fatalf("scripts/etcd.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// heal brings every member back (SIGCONT, start) and waits until healthy.
func (c *cluster) heal(t *testing.T) {
	t.Helper()
	for n := 1; n <= 3; n++ {
		c.script("cont", fmt.Sprint(n)) // fails harmlessly if not running
	}
	c.mustScript(t, "up")
}

// testConfig is a session config for the test cluster.
func testConfig(t *testing.T, prefix, id string) Config {
	cfg := DefaultConfig()
	cfg.Endpoints = append([]string(nil), tc.clients...)
	cfg.Prefix = prefix
	cfg.ID = id
	cfg.Host = "host-" + id
	cfg.Admin = "127.0.0.1:9306"
	return cfg
}

// prefixFor gives each test its own key space.
func prefixFor(t *testing.T) string {
	return fmt.Sprintf("/coordtest/%s-%d", t.Name(), time.Now().UnixNano())
}

// open opens a session and closes it at the end of the test.
func open(t *testing.T, cfg Config) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("Open %s: %v", cfg.ID, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// observer is a plain client on the given members, for checking etcd's view.
func observer(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	if len(endpoints) == 0 {
		endpoints = tc.clients
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// keyExists reads key linearizably; ok is false if the read failed.
func keyExists(cli *clientv3.Client, key string) (exists, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return false, false
	}
	return len(resp.Kvs) > 0, true
}

// waitFor polls cond every 5 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// events records Config.Events calls.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) hook(kind, detail string) {
	e.mu.Lock()
	e.list = append(e.list, kind)
	e.mu.Unlock()
}

func (e *events) has(kind string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range e.list {
		if k == kind {
			return true
		}
	}
	return false
}

func (e *events) snapshot() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.list...)
}
