package compat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Tandem is a tandem process (the real binary) in front of the pair, with no
// [[user]] entries: every client account comes from the nodes.
type Tandem struct {
	Bin    string // bin/tandem
	Dir    string // config, state file, log and unix socket go here
	Listen string // client address, host:port
	Admin  string // admin API address, host:port
	NodeA  string // node a: host:port or a unix socket path
	// NodeATLS and NodeATLSCA, when set, are node a's tls and tls_ca
	// ("verify-full" and the pair's CA: the TLS tests' tandem).
	NodeATLS, NodeATLSCA string
	NodeB                string // node b
	User                 string // failover.admin_user
	Password             string // failover.admin_password
	// NoSettle sets proxy.settle_commits = false: statements are relayed
	// without tandem's marker comment.
	NoSettle bool
	// TLSCert and TLSKey, when set, offer clients TLS (the suites' TLS
	// tests run as directly against a node that offers it).
	TLSCert, TLSKey string

	cmd  *exec.Cmd
	done chan error
}

// Socket is tandem's unix socket for clients (mysql-test-run's localhost
// connections).
func (t *Tandem) Socket() string { return filepath.Join(t.Dir, "tandem.sock") }

// LogPath is where tandem's log goes.
func (t *Tandem) LogPath() string { return filepath.Join(t.Dir, "tandem.log") }

func (t *Tandem) config() string {
	return fmt.Sprintf(`# Written by tandem's compat harness (internal/compat): no [[user]] entries.
[log]
level = "info"

[proxy]
listen = [%q, %q]
settle_commits = %t
%s

[[node]]
name = "a"
address = %q
%s
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
`, t.Listen, "unix:"+t.Socket(), !t.NoSettle, t.tlsKeys(), t.NodeA, t.nodeATLS(), t.NodeB, filepath.Join(t.Dir, "state.json"), t.User, t.Password, t.Admin)
}

func (t *Tandem) nodeATLS() string {
	if t.NodeATLS == "" {
		return ""
	}
	s := fmt.Sprintf("tls = %q\n", t.NodeATLS)
	if t.NodeATLSCA != "" {
		s += fmt.Sprintf("tls_ca = %q\n", t.NodeATLSCA)
	}
	return s
}

func (t *Tandem) tlsKeys() string {
	if t.TLSCert == "" {
		return ""
	}
	return fmt.Sprintf("tls_cert = %q\ntls_key = %q", t.TLSCert, t.TLSKey)
}

// Start writes the config, starts tandem and waits (up to bound) until a
// client logging in as probeUser through it lands on a writable node a.
func (t *Tandem) Start(ctx context.Context, probeUser, probePassword string, bound time.Duration) error {
	if err := os.MkdirAll(t.Dir, 0o755); err != nil {
		return err
	}
	cfgPath := filepath.Join(t.Dir, "tandem.toml")
	if err := os.WriteFile(cfgPath, []byte(t.config()), 0o600); err != nil {
		return err
	}
	// A fresh decision each time: tandem adopts the only writable node.
	_ = os.Remove(filepath.Join(t.Dir, "state.json"))
	_ = os.Remove(t.Socket())
	log, err := os.Create(t.LogPath())
	if err != nil {
		return err
	}
	t.cmd = exec.Command(t.Bin, "serve", "-config", cfgPath)
	t.cmd.Stdout, t.cmd.Stderr = log, log
	if err := t.cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %w", t.Bin, err)
	}
	t.done = make(chan error, 1)
	go func() { t.done <- t.cmd.Wait(); log.Close() }()

	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = probeUser, probePassword, "tcp", t.Listen
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 2*time.Second, 5*time.Second, 5*time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	deadline := time.Now().Add(bound)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-t.done:
			t.done <- err
			return fmt.Errorf("tandem exited (%v) before it answered; see %s", err, t.LogPath())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		var ro int
		if last = db.QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro); last == nil {
			if ro == 0 {
				return nil
			}
			last = errors.New("the node tandem routes to is still read-only")
		}
	}
	_ = t.Stop(10 * time.Second)
	return fmt.Errorf("tandem did not take writes within %s: %v; see %s", bound, last, t.LogPath())
}

// Stop sends SIGTERM, and SIGKILL after bound.
func (t *Tandem) Stop(bound time.Duration) error {
	if t.cmd == nil || t.cmd.Process == nil {
		return nil
	}
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-t.done:
		t.done <- err
		return nil
	case <-time.After(bound):
		_ = t.cmd.Process.Kill()
		err := <-t.done
		t.done <- err
		return fmt.Errorf("tandem did not stop within %s of SIGTERM; killed", bound)
	}
}

// LogErrors returns tandem's log lines at level WARN or ERROR, for the report.
func (t *Tandem) LogErrors() []string {
	b, err := os.ReadFile(t.LogPath())
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "[ERROR]") || strings.Contains(l, "[WARN]") {
			out = append(out, l)
		}
	}
	return out
}
