package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/testpair"
)

func TestVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != exitOK || !strings.HasPrefix(out.String(), "tandem ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != exitConfig || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("unknown command: %d %q", code, errb.String())
	}
}

func TestBadConfigExitsTwo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(path, []byte("[proxy]\nlisten = [\"nowhere\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"serve", "-config", path}, &out, &errb)
	if code != exitConfig || !strings.Contains(errb.String(), "proxy.listen[0]") {
		t.Fatalf("bad config: exit %d, stderr %q", code, errb.String())
	}
	code = run([]string{"serve", "-config", filepath.Join(t.TempDir(), "missing.toml")}, &out, &errb)
	if code != exitConfig {
		t.Fatalf("missing config: exit %d", code)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// buildTandem builds the tandem binary into a temporary directory.
func buildTandem(t *testing.T) (dir, bin string) {
	t.Helper()
	dir = t.TempDir()
	bin = filepath.Join(dir, "tandem")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir, bin
}

// writeConfig writes cfg as dir/tandem.toml and returns its path. Every
// [[node]] gets verify-full TLS with the pair's CA (as a deployment across
// hosts should have it): the binary's links to the nodes are exercised on
// TLS by every test.
func writeConfig(t *testing.T, dir, cfg string) string {
	t.Helper()
	cfg = strings.ReplaceAll(cfg, "\n[[node]]\n", fmt.Sprintf("\n[[node]]\ntls = \"verify-full\"\ntls_ca = %q\n", testpair.CA()))
	path := filepath.Join(dir, "tandem.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeAndSIGTERM runs the real binary in front of the pair: it serves,
// and on SIGTERM stops accepting, lets a running query finish, and exits 0.
func TestServeAndSIGTERM(t *testing.T) {
	testpair.Require(t)
	testpair.Reset(t) // a writable, no recorded decision: whatever an earlier test left
	t.Cleanup(func() { testpair.Reset(t) })
	dir, bin := buildTandem(t)
	addr, adminAddr := freePort(t), freePort(t)
	hook, events := webhookReceiver(t)
	cfg := fmt.Sprintf(`
[proxy]
listen = [%q]
shutdown_timeout = "10s"
[[user]]
name = "app"
password = "apppass"
[[node]]
name = "a"
address = %q
[[node]]
name = "b"
address = %q
[failover]
state_file = %q
admin_password = "tandem"
[admin]
listen = %q
[[alert.webhook]]
url = %q
`, addr, testpair.Addr(testpair.A), testpair.Addr(testpair.B), filepath.Join(dir, "state.json"), adminAddr, hook.URL)
	path := writeConfig(t, dir, cfg)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve", "-config", path)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	db, err := sql.Open("mysql", "app:apppass@tcp("+addr+")/app?timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(10 * time.Second)
	for db.Ping() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("tandem never answered; log:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The operator commands against the running binary's admin API.
	api := "-admin=http://" + adminAddr
	var out, errb bytes.Buffer
	waitHealthy := time.Now().Add(10 * time.Second)
	for {
		out.Reset()
		if code := run([]string{"status", api}, &out, &errb); code == exitOK && strings.Count(out.String(), " up ") == 2 {
			break
		}
		if time.Now().After(waitHealthy) {
			t.Fatalf("tandem status never showed two healthy nodes:\n%s%s", out.String(), errb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "node a active, epoch 1") {
		t.Fatalf("tandem status:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"status", "-json", "-config", path}, &out, &errb); code != exitOK || !strings.Contains(out.String(), `"active": "a"`) {
		t.Fatalf("tandem status -json -config: %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"switchover", "-dry-run", api}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "from node a to node b") {
		t.Fatalf("tandem switchover -dry-run: %d\n%s%s", code, out.String(), errb.String())
	}
	errb.Reset()
	if code := run([]string{"maintenance", "a", "on", api}, &out, &errb); code != exitFail || !strings.Contains(errb.String(), "switch over") {
		t.Fatalf("maintenance on the active node: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"rejoin", "b", api}, &out, &errb); code != exitFail || !strings.Contains(errb.String(), "not excluded") {
		t.Fatalf("rejoin of a node that is not excluded: %d %q", code, errb.String())
	}
	if code := run([]string{"failover", api}, &out, &errb); code != exitConfig {
		t.Fatalf("failover without -force: exit %d", code)
	}
	out.Reset()
	if code := run([]string{"events", api}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "node_up") {
		t.Fatalf("tandem events: %d\n%s", code, out.String())
	}
	// Metrics on the admin listener, after one query through tandem: one
	// that shows the node session is on TLS (writeConfig: verify-full).
	var sslName, sslCipher string
	if err := db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&sslName, &sslCipher); err != nil || sslCipher == "" {
		t.Fatalf("Ssl_cipher through tandem %q (%v): the node link is not on TLS", sslCipher, err)
	}
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`tandem_node_up{node="a"} 1`, `tandem_node_active{node="a"} 1`, `tandem_commands_total{command="query"}`,
		"tandem_client_connections 1", `tandem_epoch 1`, `tandem_command_duration_seconds_bucket`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, body)
		}
	}
	// A real switchover through the CLI: its event reaches the webhook
	// (the bound only keeps a lost event from hanging the test; the
	// delay is logged, not asserted); then back to a.
	waitEvent(t, events, "node_up", 5*time.Second)
	for _, to := range []string{"b", "a"} {
		out.Reset()
		if code := run([]string{"switchover", "-to", to, api}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "to node "+to) {
			t.Fatalf("tandem switchover -to %s: %d\n%s%s", to, code, out.String(), errb.String())
		}
		done := time.Now()
		waitEvent(t, events, "switchover_finished", 15*time.Second)
		t.Logf("switchover to %s: %s; webhook after %v", to, strings.TrimSpace(out.String()), time.Since(done))
	}

	errb.Reset()
	if code := run([]string{"status", "-admin=http://" + freePort(t)}, &out, &errb); code != exitUnreachable || !strings.Contains(errb.String(), "is tandem running") {
		t.Fatalf("status against nothing: %d %q", code, errb.String())
	}

	qerr := make(chan error, 1)
	go func() {
		var r int
		qerr <- db.QueryRow("SELECT SLEEP(3)").Scan(&r)
	}()
	// SIGTERM once the query runs on the node (a fixed pause could
	// signal before it even reached tandem on a busy machine).
	admin := testpair.AdminDB(t, testpair.A)
	for deadline := time.Now().Add(30 * time.Second); ; {
		var n int
		if err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%SLEEP(3)%' AND INFO NOT LIKE '%PROCESSLIST%'").Scan(&n); err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the query through tandem never ran on node a")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-qerr; err != nil {
		t.Fatalf("query running at SIGTERM: %v", err)
	}
	db.Close() // idle pool connections end; tandem can exit
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tandem exited with %v; log:\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("tandem did not exit after SIGTERM; log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "shutting down") || !strings.Contains(logs.String(), "stopped") {
		t.Fatalf("log lacks the shutdown lines:\n%s", logs.String())
	}
}

// webhookReceiver is a local HTTP server that collects event types.
func webhookReceiver(t *testing.T) (*httptest.Server, chan string) {
	events := make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e struct{ Type string }
		if err := json.NewDecoder(r.Body).Decode(&e); err == nil {
			select {
			case events <- e.Type:
			default:
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, events
}

// waitEvent waits for an event of type typ, skipping others.
func waitEvent(t *testing.T, events chan string, typ string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case got := <-events:
			if got == typ {
				return
			}
		case <-deadline:
			t.Fatalf("no %s event at the webhook within %v", typ, within)
		}
	}
}
