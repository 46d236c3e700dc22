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
	root    string
	env     []string
	Clients []string // 127.0.0.1:port of members 1..3
}

// Start starts a cluster and stops it (deleting its data) when the test
// ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	root, err := testpair.ModuleRoot()
	if err != nil {
		t.Fatalf("testetcd: %v", err)
	}
	bin := os.Getenv("TANDEM_ETCD_BIN")
	if bin == "" {
		bin = filepath.Join(root, "bin", "etcd")
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		t.Fatalf("testetcd: no etcd binary at %s: run `make etcd-build` (or scripts/etcd.sh build) first", bin)
	}
	ports, err := freePorts(6)
	if err != nil {
		t.Fatalf("testetcd: %v", err)
	}
	c := &Cluster{root: root}
	c.env = append(os.Environ(),
		"TANDEM_ETCD_BIN="+bin,
		"TANDEM_ETCD_DIR="+t.TempDir(),
		fmt.Sprintf("TANDEM_ETCD_CLIENT_PORTS=%d %d %d", ports[0], ports[1], ports[2]),
		fmt.Sprintf("TANDEM_ETCD_PEER_PORTS=%d %d %d", ports[3], ports[4], ports[5]),
		"TANDEM_ETCD_TIMEOUT=60",
	)
	for _, p := range ports[:3] {
		c.Clients = append(c.Clients, fmt.Sprintf("127.0.0.1:%d", p))
	}
	t.Cleanup(func() {
		for n := 1; n <= 3; n++ {
			_, _ = c.script("cont", fmt.Sprint(n))
		}
		if out, err := c.script("down", "--purge"); err != nil {
			t.Logf("testetcd: down: %v\n%s", err, out)
		}
	})
	c.Run(t, "up")
	return c
}

// Run runs scripts/etcd.sh with args on this cluster (stop N, cont N,
// kill N, start N, up, ...), failing the test if it fails.
func (c *Cluster) Run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := c.script(args...); err != nil {
		t.Fatalf("testetcd: scripts/etcd.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (c *Cluster) script(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.root, "scripts", "etcd.sh"), args...)
	cmd.Env = c.env
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
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
