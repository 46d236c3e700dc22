package coord

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tandemdb/tandem/internal/testetcd"
)

// The tests run against a real three-member etcd that TestMain starts with
// scripts/etcd.sh on free loopback ports and a temporary data directory,
// and removes at the end. The binary comes from `make etcd-build`; without
// it the tests fail (they never skip).

// cluster is the test's etcd (package testetcd).
type cluster struct{ *testetcd.Cluster }

var tc *cluster

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
	case "report":
		os.Exit(reportMain())
	default:
		os.Exit(childMain())
	}
	c, err := testetcd.Launch()
	if err != nil {
		fmt.Fprintln(os.Stderr, "coord tests:", err)
		os.Exit(1)
	}
	tc = &cluster{c}
	code := m.Run()
	if err := c.Down(); err != nil {
		fmt.Fprintln(os.Stderr, "coord tests:", err)
	}
	os.Exit(code)
}

func (c *cluster) mustScript(t *testing.T, args ...string) { t.Helper(); c.Run(t, args...) }

// heal brings every member back (SIGCONT, start) and waits until healthy.
func (c *cluster) heal(t *testing.T) {
	t.Helper()
	for n := 1; n <= 3; n++ {
		c.Script("cont", fmt.Sprint(n)) // fails harmlessly if not running
	}
	c.mustScript(t, "up")
}

// testConfig is a session config for the test cluster.
func testConfig(t *testing.T, prefix, id string) Config {
	cfg := DefaultConfig()
	cfg.Endpoints = append([]string(nil), tc.Clients...)
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
		endpoints = tc.Clients
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
