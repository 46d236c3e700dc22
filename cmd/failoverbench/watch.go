package main

// Helpers of the fault matrix: direct admin connections to the nodes, the
// read_only watcher, the TCP relays, tandem as a child process.

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/admin"
	"github.com/tandemdb/tandem/failover"
)

// nodeDB is an admin pool on one node directly, every I/O bounded (a
// SIGSTOPped node must not hang the bench).
func nodeDB(addr string, timeout time.Duration) *sql.DB {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = adminUser, adminPassword, "tcp", addr
	c.Timeout, c.ReadTimeout, c.WriteTimeout = timeout, timeout, timeout
	conn, err := mysql.NewConnector(c)
	if err != nil {
		panic(err) // the config is built here: cannot fail
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	db.SetConnMaxLifetime(time.Minute)
	return db
}

// execOn runs statements on the node at addr, bounded.
func execOn(addr string, stmts ...string) error {
	db := nodeDB(addr, 10*time.Second)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s on %s: %w", s, addr, err)
		}
	}
	return nil
}

// forgetDecision deletes the decision tandem recorded on the nodes in an
// earlier round, and waits until b has the delete too: a fresh tandem
// without a state file would adopt it otherwise.
func forgetDecision(o options) error {
	ignorable := func(err error) bool { c := errCode(err); return c == 1146 || c == 1049 }
	if err := execOn(o.addrA, "DELETE FROM tandem.decision"); err != nil && !ignorable(err) {
		return fmt.Errorf("forgetting the recorded decision: %w", err)
	}
	db := nodeDB(o.addrB, 5*time.Second)
	defer db.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var n int
		err := db.QueryRow("SELECT COUNT(*) FROM tandem.decision").Scan(&n)
		if err != nil && ignorable(err) || err == nil && n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node b still holds a recorded decision (%d rows, %v)", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readOnly reads @@read_only on the node at addr.
func readOnly(addr string) (bool, error) {
	db := nodeDB(addr, 3*time.Second)
	defer db.Close()
	var ro bool
	err := db.QueryRow("SELECT @@global.read_only").Scan(&ro)
	return ro, err
}

// ---------------------------------------------------------------- watcher

// watcher samples read_only on both nodes directly, every ~20 ms, both at
// once, and counts the samples where both answered writable. A node that
// does not answer within 250 ms (killed, hung) gives no sample.
type watcher struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu                  sync.Mutex
	samples, both       int
	firstBoth, lastBoth time.Time
}

func startWatch(o options) *watcher {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	wt := &watcher{cancel: cancel, done: make(chan struct{})}
	dbs := []*sql.DB{nodeDB(o.addrA, 250*time.Millisecond), nodeDB(o.addrB, 250*time.Millisecond)}
	go func() {
		defer close(wt.done)
		defer dbs[0].Close()
		defer dbs[1].Close()
		for range 30000 { // 10 minutes at most, bounded in count too
			if ctx.Err() != nil {
				return
			}
			var ro [2]bool
			var errs [2]error
			var wg sync.WaitGroup
			for i, db := range dbs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					qctx, qcancel := context.WithTimeout(ctx, 250*time.Millisecond)
					defer qcancel()
					errs[i] = db.QueryRowContext(qctx, "SELECT @@global.read_only").Scan(&ro[i])
				}()
			}
			wg.Wait()
			if errs[0] == nil && errs[1] == nil {
				now := time.Now()
				wt.mu.Lock()
				wt.samples++
				if !ro[0] && !ro[1] {
					wt.both++
					if wt.firstBoth.IsZero() {
						wt.firstBoth = now
					}
					wt.lastBoth = now
				}
				wt.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return wt
}

// finish stops the watcher and puts its counts in res.
func (wt *watcher) finish(res *result) {
	wt.cancel()
	<-wt.done
	wt.mu.Lock()
	defer wt.mu.Unlock()
	res.samples, res.twoWritable = wt.samples, wt.both
	if wt.both > 0 {
		res.note = strings.TrimSpace(res.note + fmt.Sprintf(" both nodes writable in %d samples from %s to %s", wt.both,
			wt.firstBoth.Format("15:04:05.000"), wt.lastBoth.Format("15:04:05.000")))
	}
}

// ---------------------------------------------------------------- tandem as a child process

// buildTandem builds cmd/tandem into dir once.
func buildTandem(root, dir string) (string, error) {
	bin := filepath.Join(dir, "tandem")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tandem")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: %s", err, out)
	}
	return bin, nil
}

// freePort returns a loopback port nobody listens on now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// childConfig is a tandem configuration for the pair in dir: its proxy
// and admin API on fixed loopback ports (a restarted child takes them
// again), its state file in dir.
type childConfig struct {
	path, state, proxyAddr, adminAddr string
}

func writeChildConfig(o options, dir string) (childConfig, error) {
	var c childConfig
	var err error
	if c.proxyAddr, err = freePort(); err != nil {
		return c, err
	}
	if c.adminAddr, err = freePort(); err != nil {
		return c, err
	}
	c.path, c.state = filepath.Join(dir, "tandem.toml"), filepath.Join(dir, "state.json")
	toml := fmt.Sprintf(`[log]
level = "info"

[proxy]
listen = [%q]
shutdown_timeout = "2s"

[[user]]
name = %q
password = %q

[[node]]
name = "a"
address = %q

[[node]]
name = "b"
address = %q

[failover]
initial_active = "a"
state_file = %q
admin_user = %q
admin_password = %q

[admin]
listen = %q
`, c.proxyAddr, appUser, appPassword, o.addrA, o.addrB, c.state, adminUser, adminPassword, c.adminAddr)
	return c, os.WriteFile(c.path, []byte(toml), 0o600)
}

// child is one `tandem serve` process.
type child struct {
	cmd    *exec.Cmd
	api    *admin.Client
	exited chan struct{}

	mu    sync.Mutex
	lines []string
}

// startChild runs bin with cfg; onLine sees each log line as it comes
// (from the reader goroutine).
func startChild(bin string, cfg childConfig, onLine func(c *child, line string)) (*child, error) {
	cmd := exec.Command(bin, "serve", "-config", cfg.path)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, exited: make(chan struct{}),
		api: &admin.Client{Base: "http://" + cfg.adminAddr, HTTP: nil}}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			if len(c.lines) < 5000 {
				c.lines = append(c.lines, line)
			}
			c.mu.Unlock()
			if onLine != nil {
				onLine(c, line)
			}
		}
		_ = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// kill sends SIGKILL and waits for the process, bounded.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
	}
}

// stop sends SIGTERM (tandem shuts down), SIGKILL after 10 s.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.kill()
	}
}

// log returns the lines containing any of subs.
func (c *child) log(subs ...string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.lines {
		for _, s := range subs {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// dump prints the process's log (-v).
func (c *child) dump(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		fmt.Fprintf(os.Stderr, "%s| %s\n", name, l)
	}
}

func (c *child) status() (failover.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := c.api.Status(ctx)
	return s.Status, err
}

func (c *child) waitStatus(timeout time.Duration, ok func(failover.Status) bool) (failover.Status, error) {
	deadline := time.Now().Add(timeout)
	for {
		s, err := c.status()
		if err == nil && ok(s) {
			return s, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return s, fmt.Errorf("after %v: %v", timeout, err)
			}
			return s, fmt.Errorf("after %v: %s", timeout, describe(s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
