package main

import (
	"bytes"
	"context"
	"database/sql/driver"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/testpair"
)

// serveTandem runs the real binary in front of the pair with extra config
// appended, waits until it routes to node a, and returns its client
// address and its admin API flag.
func serveTandem(t testing.TB, schema, extra string) (addr, api string, logs *bytes.Buffer) {
	addr, api, logs, _ = serveTandemPID(t, schema, serveExtra{tail: extra})
	return addr, api, logs
}

// serveExtra is configuration serveTandemPID adds.
type serveExtra struct {
	node     string // to each [[node]]
	failover string // to [failover]
	tail     string // at the end
}

// serveTandemPID is serveTandem with more configuration, and it also
// returns the process id.
func serveTandemPID(t testing.TB, schema string, extra serveExtra) (addr, api string, logs *bytes.Buffer, pid int) {
	t.Helper()
	admin := testpair.AdminDB(t, testpair.A)
	if _, err := admin.Exec("DROP DATABASE IF EXISTS " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE IF EXISTS " + schema) })
	dir := t.TempDir()
	bin := filepath.Join(dir, "tandem")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l1, l2 := freePortTB(t), freePortTB(t)
	cfg := fmt.Sprintf(`
[proxy]
listen = [%q]
shutdown_timeout = "5s"
max_procs = 1
[[node]]
name = "a"
address = %q
%s
[[node]]
name = "b"
address = %q
%s
[failover]
state_file = %q
admin_password = "tandem"
schema = %q
%s
[admin]
listen = %q
%s`, l1, testpair.Addr(testpair.A), extra.node, testpair.Addr(testpair.B), extra.node, filepath.Join(dir, "state.json"), schema,
		extra.failover, l2, extra.tail)
	path := filepath.Join(dir, "tandem.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs = &bytes.Buffer{}
	cmd := exec.Command(bin, "serve", "-config", path)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	api = "-admin=http://" + l2
	var out, errb bytes.Buffer
	deadline := time.Now().Add(30 * time.Second)
	for {
		out.Reset()
		if code := run([]string{"status", api}, &out, &errb); code == exitOK && strings.Count(out.String(), " up ") == 2 &&
			strings.Contains(out.String(), "node a active") {
			return l1, api, logs, cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("tandem never showed two healthy nodes with a active:\n%s%s\nlog:\n%s", out.String(), errb.String(), logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePortTB(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// appConnector connects as the pair's app user (a node account: no
// [[user]] in the config).
func appConnector(t testing.TB, addr string) driver.Connector {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = testpair.AppUser, testpair.AppPassword, "tcp", addr, testpair.AppDB
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 5*time.Second, 30*time.Second, 30*time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// oneQuery connects, returns what q (one value) answers, and closes.
func oneQuery(conn driver.Connector, q string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := conn.Connect(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	rows, err := c.(driver.QueryerContext).QueryContext(ctx, q, nil)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return "", err
	}
	switch v := dest[0].(type) {
	case []byte:
		return string(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	}
	return fmt.Sprint(dest[0]), nil
}

// TestServePooledSessionsAcrossSwitchover runs the real binary with
// [pool]: a client gets the node thread an earlier client left, and after
// a switchover the pooled sessions are on node b only.
func TestServePooledSessionsAcrossSwitchover(t *testing.T) {
	testpair.Require(t)
	testpair.Reset(t)
	t.Cleanup(func() { testpair.Reset(t) })
	addr, api, logs := serveTandem(t, "tandem_pool_test", "[pool]\nusers = [\"app\"]\nmin_idle = 1\n")
	conn := appConnector(t, addr)
	first, err := oneQuery(conn, "SELECT CONNECTION_ID()")
	if err != nil {
		t.Fatalf("through tandem with [pool]: %v\nlog:\n%s", err, logs.String())
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		id, err := oneQuery(conn, "SELECT CONNECTION_ID()")
		if err != nil {
			t.Fatal(err)
		}
		if id == first {
			break // the node thread of the first client, pooled
		}
		if time.Now().After(deadline) {
			t.Fatalf("no client got the first client's pooled thread %s\nlog:\n%s", first, logs.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"switchover", "-to", "b", api}, &out, &errb); code != exitOK {
		t.Fatalf("tandem switchover -to b: %d\n%s%s", code, out.String(), errb.String())
	}
	if port, err := oneQuery(conn, "SELECT @@port"); err != nil || port != strconv.Itoa(testpair.Port(testpair.B)) {
		t.Fatalf("after the switchover: port %s, %v", port, err)
	}
	// Drained on a, refilled on b (min_idle).
	appThreads := func(n testpair.Node) int {
		var c int
		if err := testpair.AdminDB(t, n).QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", testpair.AppUser).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	deadline = time.Now().Add(30 * time.Second)
	for appThreads(testpair.A) != 0 || appThreads(testpair.B) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("app threads: %d on a, %d on b; want none on the old active, pooled ones on b", appThreads(testpair.A), appThreads(testpair.B))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkServeConnectPerRequest: 8 clients each connect, run one point
// SELECT and close, directly and through the real binary (max_procs = 1)
// without and with [pool], alternating, 7 rounds of 2000. The client
// talks plaintext to every target; tandem talks plaintext to the node
// (tls = "off") in "tandem" and "pooled", as the direct client does, and
// TLS (the default, "preferred") in "pooled-tls". Besides the rates it
// logs the CPU time per request of the load generator, of the tandem
// process in front (none for direct) and of node a, from /proc/PID/stat.
// The ratios are the medians of each round's rate over that round's direct
// rate: other work on the machine changes from round to round. Run with
//
//	go test -run '^$' -bench ServeConnectPerRequest -benchtime 1x -v ./cmd/tandem/
func BenchmarkServeConnectPerRequest(b *testing.B) {
	testpair.Require(b)
	// Three tandems watch the one pair, each on its own: on a loaded
	// machine a slow check must not make one of them fail over alone.
	const patient = "check_timeout = \"2s\"\nfail_after = 30"
	const pool = "[pool]\nusers = [\"app\"]\n"
	plain, _, _, plainPID := serveTandemPID(b, "tandem_bench_plain", serveExtra{node: `tls = "off"`, failover: patient})
	pooled, _, _, pooledPID := serveTandemPID(b, "tandem_bench_pooled", serveExtra{node: `tls = "off"`, failover: patient, tail: pool})
	pooledTLS, _, _, pooledTLSPID := serveTandemPID(b, "tandem_bench_pooled_tls", serveExtra{failover: patient, tail: pool})
	admin := testpair.AdminDB(b, testpair.A)
	for _, q := range []string{"CREATE TABLE IF NOT EXISTS app.pool_bench (id INT PRIMARY KEY, v VARCHAR(32))",
		"INSERT IGNORE INTO app.pool_bench VALUES (1, 'one'), (2, 'two'), (3, 'three')"} {
		if _, err := admin.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	nodePID := testpair.PID(b, testpair.A)
	targets := []struct {
		name, addr string
		pid        int // tandem's, 0 for direct
	}{{"direct", testpair.Addr(testpair.A), 0}, {"tandem", plain, plainPID}, {"pooled", pooled, pooledPID},
		{"pooled-tls", pooledTLS, pooledTLSPID}}
	rates := map[string][]float64{}
	cpu := map[string][][3]time.Duration{} // load generator, tandem, node per request
	for round := range 7 {
		for _, tg := range targets {
			conn := appConnector(b, tg.addr)
			const n, clients = 2000, 8
			var next, failed atomic.Int64
			var wg sync.WaitGroup
			self0, tandem0, node0 := testpair.CPU(os.Getpid()), testpair.CPU(tg.pid), testpair.CPU(nodePID)
			start := time.Now()
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= n {
						if _, err := oneQuery(conn, "SELECT v FROM pool_bench WHERE id = 2"); err != nil {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			rate := n / time.Since(start).Seconds()
			if f := failed.Load(); f > 0 {
				b.Fatalf("%s: %d of %d requests failed", tg.name, f, n)
			}
			per := [3]time.Duration{(testpair.CPU(os.Getpid()) - self0) / n, (testpair.CPU(tg.pid) - tandem0) / n, (testpair.CPU(nodePID) - node0) / n}
			rates[tg.name] = append(rates[tg.name], rate)
			cpu[tg.name] = append(cpu[tg.name], per)
			b.Logf("round %d %s: %.0f req/s; CPU per request: client %v, tandem %v, node %v", round, tg.name, rate, per[0], per[1], per[2])
		}
	}
	med := func(v []float64) float64 { s := slices.Clone(v); slices.Sort(s); return s[len(s)/2] }
	for _, tg := range targets {
		var who [3][]float64
		for _, c := range cpu[tg.name] {
			for i := range who {
				who[i] = append(who[i], float64(c[i].Microseconds()))
			}
		}
		var ratio []float64
		for i, r := range rates[tg.name] {
			ratio = append(ratio, r/rates["direct"][i])
		}
		b.Logf("%s median: %.0f req/s, %.2fx direct; CPU per request: client %.0f µs, tandem %.0f µs, node %.0f µs, together %.0f µs",
			tg.name, med(rates[tg.name]), med(ratio), med(who[0]), med(who[1]), med(who[2]), med(who[0])+med(who[1])+med(who[2]))
		b.ReportMetric(med(rates[tg.name]), tg.name+"-req/s")
		if tg.name != "direct" {
			b.ReportMetric(med(ratio), tg.name+"/direct")
		}
	}
}
