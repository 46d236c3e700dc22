package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tandemdb/tandem/admin"
	"github.com/tandemdb/tandem/internal/testpair"
)

// Recognisable secrets, each given to tandem one of the ways a config can.
const (
	secretNodeAdmin = "NodeAdminPw-q7Zr4Lx" // failover.admin_password_env
	secretUser      = "UserPw-K9x2mVt"      // [[user]] password_file
	secretToken     = "AdminTok-W3vP8Qa"    // admin.token_env
	secretHookPath  = "HookPathSecret-J5n1" // a Slack-style webhook's path
	secretHookQuery = "HookQuery-Xy7Rb"     // a webhook URL's query
	secretHookHdr   = "HookHeader-Zq2Cw"    // a webhook header
)

// outputs collects everything tandem produced, labelled.
type outputs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *outputs) add(label, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(&o.buf, "\n===== %s\n%s\n", label, text)
}

func (o *outputs) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// TestNoSecretInOutput runs the real binary in front of the pair with
// recognisable secrets (node admin password, a user's password, the admin
// token, a webhook's secret path, query and header), provokes failures (a
// webhook that fails and echoes its URL, wrong logins, a bad token,
// refused requests, a node frozen then back), collects every log line,
// /status, /metrics, /events, CLI output, client error, webhook payload
// and alert command environment, and finds none of the secrets, nor the
// pair's replication password, in any of it.
func TestNoSecretInOutput(t *testing.T) {
	testpair.Require(t)
	testpair.Reset(t) // a writable, no recorded decision: whatever an earlier test left
	t.Cleanup(func() { testpair.Reset(t) })
	dir, bin := buildTandem(t)

	// Accounts with the secrets, created on a and replicated to b.
	adb := testpair.AdminDB(t, testpair.A)
	for _, q := range []string{
		"CREATE OR REPLACE USER 'sx_admin'@'127.0.0.1' IDENTIFIED BY '" + secretNodeAdmin + "'",
		"GRANT ALL PRIVILEGES ON *.* TO 'sx_admin'@'127.0.0.1' WITH GRANT OPTION",
		"CREATE OR REPLACE USER 'sx_app'@'127.0.0.1' IDENTIFIED BY '" + secretUser + "'",
		"GRANT ALL ON app.* TO 'sx_app'@'127.0.0.1'",
	} {
		if _, err := adb.Exec(q); err != nil {
			t.Fatalf("%s: %v", q[:strings.Index(q, " IDENTIFIED")+1], err)
		}
	}
	t.Cleanup(func() { // replicated to b
		_, _ = adb.Exec("DROP USER IF EXISTS 'sx_admin'@'127.0.0.1', 'sx_app'@'127.0.0.1'")
	})
	testpair.WaitInSync(t, 30*time.Second)

	var out outputs
	// A webhook that fails, echoing the path and query it was sent to.
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		out.add("webhook payload", string(body))
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "no such hook: %s", r.URL.RequestURI())
	}))
	defer hook.Close()
	hookURL := hook.URL + "/services/T000/B000/" + secretHookPath + "?sig=" + secretHookQuery
	// An alert command that keeps its environment and stdin.
	hookScript := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(hookScript, []byte("#!/bin/sh\nf=$(mktemp \"$1/hook.XXXXXX\")\nenv > \"$f\"\ncat >> \"$f\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "app.pw")
	if err := os.WriteFile(pwFile, []byte(secretUser+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	addr, adminAddr := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`
[log]
level = "trace"
format = "json"
[proxy]
listen = [%q]
shutdown_timeout = "5s"
[[user]]
name = "sx_app"
password_file = %q
[[node]]
name = "a"
address = %q
[[node]]
name = "b"
address = %q
[failover]
state_file = %q
admin_user = "sx_admin"
admin_password_env = "SX_NODE_ADMIN_PW"
[admin]
listen = %q
token_env = "SX_ADMIN_TOKEN"
[[alert.webhook]]
url = %q
format = "slack"
retries = 1
backoff = "10ms"
headers = { Authorization = "Bearer %s" }
[[alert.command]]
path = %q
args = [%q]
`, addr, pwFile, testpair.Addr(testpair.A), testpair.Addr(testpair.B), filepath.Join(dir, "state.json"), adminAddr,
		hookURL, secretHookHdr, hookScript, dir)
	path := writeConfig(t, dir, cfg)
	var logs lockedBuffer
	cmd := exec.Command(bin, "serve", "-config", path)
	cmd.Env = append(os.Environ(), "SX_NODE_ADMIN_PW="+secretNodeAdmin, "SX_ADMIN_TOKEN="+secretToken)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	api := []string{"-admin=http://" + adminAddr, "-token=" + secretToken}
	cli := func(args ...string) int {
		var o, e bytes.Buffer
		code := run(append(args, api...), &o, &e)
		out.add(fmt.Sprintf("tandem %s (exit %d)", strings.Join(args, " "), code), o.String()+e.String())
		return code
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s; log:\n%s", what, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	c := &admin.Client{Base: "http://" + adminAddr, Token: secretToken}
	healthy := func() bool {
		st, err := c.Status(context.Background())
		if err != nil || len(st.Nodes) != 2 {
			return false
		}
		return st.Nodes[0].Healthy && st.Nodes[1].Healthy
	}
	waitFor("both nodes healthy", healthy)

	// Logins: a wrong password, an unknown user, then the right one and a
	// failing statement.
	for _, dsn := range []string{"sx_app:wrong-password@tcp(" + addr + ")/app?timeout=5s", "nobody:x@tcp(" + addr + ")/app?timeout=5s"} {
		db, _ := sql.Open("mysql", dsn)
		err := db.Ping()
		db.Close()
		if err == nil {
			t.Fatalf("login %s succeeded", dsn)
		}
		out.add("client error, bad login", err.Error())
	}
	db, err := sql.Open("mysql", "sx_app:"+secretUser+"@tcp("+addr+")/app?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("SELECT 1"); err != nil {
		t.Fatalf("login with the right password: %v", err)
	}
	if _, err := db.Exec("SELECT * FROM no_such_table"); err != nil {
		out.add("client error, bad statement", err.Error())
	}

	// The admin API: a bad token, none, a foreign Host, a cross-site page.
	for _, tok := range []string{"wrong-token", ""} {
		_, err := (&admin.Client{Base: c.Base, Token: tok}).Status(context.Background())
		if err == nil {
			t.Fatalf("status with token %q succeeded", tok)
		}
		out.add("admin client error, token "+tok, err.Error())
	}
	var e bytes.Buffer
	code := run([]string{"status", "-admin=http://" + adminAddr, "-token=bad"}, &e, &e)
	out.add(fmt.Sprintf("tandem status -token=bad (exit %d)", code), e.String())
	for _, h := range []map[string]string{{"Host": "rebind.example"}, {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}} {
		req, _ := http.NewRequest(http.MethodPost, c.Base+"/pause", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Authorization", "Bearer "+secretToken)
		for k, v := range h {
			req.Header.Set(k, v)
			if k == "Host" {
				req.Host = v
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out.add(fmt.Sprintf("refused admin request %v: %d", h, resp.StatusCode), string(b))
	}

	// The CLI's usage, printed on a bad flag, with the token in the
	// environment.
	t.Setenv("TANDEM_ADMIN_TOKEN", secretToken)
	for _, args := range [][]string{{"status", "-bogus"}, {"switchover", "-h"}, {"maintenance", "b"}} {
		var o bytes.Buffer
		code := run(args, &o, &o)
		out.add(fmt.Sprintf("tandem %s (exit %d)", strings.Join(args, " "), code), o.String())
	}
	var o bytes.Buffer
	if code := run([]string{"status", "-admin=http://" + adminAddr}, &o, &o); code != exitOK {
		t.Fatalf("status with TANDEM_ADMIN_TOKEN: exit %d: %s", code, o.String())
	}

	// Operator commands, refusals included.
	cli("status")
	cli("status", "-json")
	cli("switchover", "-dry-run")
	if cli("maintenance", "a", "on") != exitFail {
		t.Fatal("maintenance on the active node was not refused")
	}
	cli("maintenance", "b", "on")
	if cli("switchover") != exitFail {
		t.Fatal("a switchover to a node in maintenance was not refused")
	}
	cli("maintenance", "b", "off")
	cli("failover")

	// Node b frozen, then back: node_down and node_up go to the failing
	// webhook and to the command.
	testpair.Stop(t, testpair.B)
	stopped := true
	t.Cleanup(func() {
		if stopped {
			testpair.Cont(t, testpair.B)
		}
	})
	waitFor("node b down", func() bool { return !healthy() })
	testpair.Cont(t, testpair.B)
	stopped = false
	waitFor("node b back", healthy)
	testpair.WaitInSync(t, 30*time.Second)

	cli("events", "-json")
	cli("status", "-json")
	for _, p := range []string{"/metrics", "/status", "/events"} {
		req, _ := http.NewRequest(http.MethodGet, c.Base+p, nil)
		req.Header.Set("Authorization", "Bearer "+secretToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out.add("GET "+p, string(b))
	}
	// Wait until the webhook gave up on the node events (logged).
	waitFor("the webhook's failures logged", func() bool {
		return strings.Count(logs.String(), "webhook failed; giving up") >= 3
	})

	db.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("tandem did not exit after SIGTERM; log:\n%s", logs.String())
	}
	out.add("tandem's log", logs.String())
	hooks, _ := filepath.Glob(filepath.Join(dir, "hook.*"))
	for _, f := range hooks {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out.add("alert command environment and stdin "+filepath.Base(f), string(b))
	}

	all := out.String()
	// The collection holds what the failures produced: the test looked
	// where a secret would be.
	for _, want := range []string{"Access denied", "bearer token", "webhook failed; giving up", "[redacted]", "node_down", "node_up",
		"TANDEM_EVENT_TYPE=node_down", "tandem_epoch", "is not a name of this API", "cross-site request refused", `"@module":"tandem.proxy`,
		"bearer token (env TANDEM_ADMIN_TOKEN)"} {
		if !strings.Contains(all, want) {
			t.Errorf("the collected output lacks %q: the test did not provoke what it meant to", want)
		}
	}
	for _, s := range []string{secretNodeAdmin, secretUser, secretToken, secretHookPath, secretHookQuery, secretHookHdr, testpair.ReplPassword} {
		if i := strings.Index(all, s); i >= 0 {
			label := all[:i]
			label = label[strings.LastIndex(label, "\n===== ")+7:]
			label = label[:strings.IndexByte(label, '\n')]
			t.Errorf("secret %q found in %s: ...%s...", s, label, all[max(0, i-200):min(len(all), i+100)])
		}
	}
	if t.Failed() {
		os.WriteFile(filepath.Join(os.TempDir(), "tandem-secrets-output.txt"), []byte(all), 0o644)
		t.Logf("everything collected: %s", filepath.Join(os.TempDir(), "tandem-secrets-output.txt"))
	}
	t.Logf("collected %d bytes from %d sources; no secret in them", len(all), strings.Count(all, "\n===== "))
}
