// Package testetcd starts a real three-member etcd for integration tests,
// with scripts/etcd.sh on free loopback ports and a temporary data
// directory, from the binary `make etcd-build` puts in bin/etcd
// ($TANDEM_ETCD_BIN overrides). Without the binary a test fails, saying
// how to build it; it never skips.
package testetcd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem/internal/testpair"
)

// Cluster is a running three-member etcd.
type Cluster struct {
	Root    string   // the module root, holding scripts/etcd.sh
	Bin     string   // the etcd binary
	Clients []string // 127.0.0.1:port of members 1..3
	env     []string
	dir     string
}

// Start starts a cluster and stops it (deleting its data) when the test
// ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := Launch()
	if err != nil {
		t.Fatalf("testetcd: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Down(); err != nil {
			t.Logf("testetcd: %v", err)
		}
	})
	return c
}

// Launch starts a cluster for a whole test binary (TestMain); Down stops
// it.
func Launch() (*Cluster, error) {
	root, err := testpair.ModuleRoot()
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
	ports, err := FreePorts(6)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tandem-etcd-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Root: root, Bin: bin, dir: dir}
	c.env = append(os.Environ(),
		"TANDEM_ETCD_BIN="+bin,
		"TANDEM_ETCD_DIR="+dir,
		fmt.Sprintf("TANDEM_ETCD_CLIENT_PORTS=%d %d %d", ports[0], ports[1], ports[2]),
		fmt.Sprintf("TANDEM_ETCD_PEER_PORTS=%d %d %d", ports[3], ports[4], ports[5]),
		"TANDEM_ETCD_TIMEOUT=60",
	)
	for _, p := range ports[:3] {
		c.Clients = append(c.Clients, fmt.Sprintf("127.0.0.1:%d", p))
	}
	if out, err := c.Script("up"); err != nil {
		_ = c.Down()
		return nil, fmt.Errorf("scripts/etcd.sh up: %v\n%s", err, out)
	}
	return c, nil
}

// Down resumes stopped members, stops them all and deletes the data.
func (c *Cluster) Down() error {
	for n := 1; n <= 3; n++ {
		_, _ = c.Script("cont", fmt.Sprint(n)) // fails harmlessly if not running
	}
	out, err := c.Script("down", "--purge")
	os.RemoveAll(c.dir)
	if err != nil {
		return fmt.Errorf("scripts/etcd.sh down: %v\n%s", err, out)
	}
	return nil
}

// Run runs scripts/etcd.sh with args on this cluster (stop N, cont N,
// kill N, start N, up, ...), failing the test if it fails.
func (c *Cluster) Run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := c.Script(args...); err != nil {
		t.Fatalf("testetcd: scripts/etcd.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Script runs scripts/etcd.sh with args on this cluster.
func (c *Cluster) Script(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.Root, "scripts", "etcd.sh"), args...)
	cmd.Env = c.env
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// FreePorts returns n loopback ports that were free a moment ago.
func FreePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
