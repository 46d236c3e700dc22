package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem/internal/testpair"
)

// TestServeNodeAccountsAcrossSwitchover runs the real binary with no
// [[user]]: an account created on the nodes while tandem runs logs in
// through it, and its session keeps its user and settings across a
// switchover to node b and back.
func TestServeNodeAccountsAcrossSwitchover(t *testing.T) {
	testpair.Require(t)
	// A schema of its own for tandem's decision and heartbeat tables: a
	// fresh decision, dropped afterwards.
	admin := testpair.AdminDB(t, testpair.A)
	if _, err := admin.Exec("DROP DATABASE IF EXISTS tandem_acc_test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE IF EXISTS tandem_acc_test") })
	dir, bin := buildTandem(t)
	addr, adminAddr := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`
[proxy]
listen = [%q]
shutdown_timeout = "5s"
[[node]]
name = "a"
address = %q
[[node]]
name = "b"
address = %q
[failover]
state_file = %q
admin_password = "tandem"
schema = "tandem_acc_test"
[admin]
listen = %q
`, addr, testpair.Addr(testpair.A), testpair.Addr(testpair.B), filepath.Join(dir, "state.json"), adminAddr)
	path := writeConfig(t, dir, cfg)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve", "-config", path)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	api := "-admin=http://" + adminAddr
	var out, errb bytes.Buffer
	deadline := time.Now().Add(15 * time.Second)
	for {
		out.Reset()
		if code := run([]string{"status", api}, &out, &errb); code == exitOK && strings.Count(out.String(), " up ") == 2 &&
			strings.Contains(out.String(), "node a active") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tandem never showed two healthy nodes with a active:\n%s%s\nlog:\n%s", out.String(), errb.String(), logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	for _, q := range []string{
		"DROP USER IF EXISTS 'acc_srv'@'127.0.0.1'",
		"CREATE USER 'acc_srv'@'127.0.0.1' IDENTIFIED BY 'pw-srv'",
		"GRANT SELECT ON app.* TO 'acc_srv'@'127.0.0.1'",
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP USER IF EXISTS 'acc_srv'@'127.0.0.1'") })
	bdb := testpair.AdminDB(t, testpair.B)
	deadline = time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := bdb.QueryRow("SELECT COUNT(*) FROM mysql.user WHERE User = 'acc_srv'").Scan(&n); err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the account never reached node b")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Wrong password first: refused as by the node.
	bad, err := sql.Open("mysql", "acc_srv:nope@tcp("+addr+")/app?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Ping(); err == nil || !strings.Contains(err.Error(), "1045") {
		t.Fatalf("wrong password through tandem: %v, want error 1045", err)
	}
	db, err := sql.Open("mysql", "acc_srv:pw-srv@tcp("+addr+")/app?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("SET SESSION sql_mode = 'ANSI_QUOTES'"); err != nil {
		t.Fatalf("run-time account through tandem with no [[user]]: %v\nlog:\n%s", err, logs.String())
	}
	check := func(wantPort int) {
		t.Helper()
		var user, mode string
		var port int
		if err := db.QueryRow("SELECT CURRENT_USER(), @@sql_mode, @@port").Scan(&user, &mode, &port); err != nil {
			t.Fatalf("session of the run-time account: %v\nlog:\n%s", err, logs.String())
		}
		if user != "acc_srv@127.0.0.1" || mode != "ANSI_QUOTES" || port != wantPort {
			t.Fatalf("session: user %q, sql_mode %q, port %d; want acc_srv@127.0.0.1, ANSI_QUOTES, %d", user, mode, port, wantPort)
		}
	}
	check(testpair.Port(testpair.A))
	for _, to := range []testpair.Node{testpair.B, testpair.A} {
		out.Reset()
		if code := run([]string{"switchover", "-to", string(to), api}, &out, &errb); code != exitOK {
			t.Fatalf("tandem switchover -to %s: %d\n%s%s", to, code, out.String(), errb.String())
		}
		check(testpair.Port(to))
	}
}
