// Command compat runs client test suites once directly against node a of
// the local pair and once through tandem (bin/tandem, no [[user]] entries),
// and compares their results test by test (issue 10's bar). It prints a
// table (suite, tests, passed direct, passed via tandem, differing tests)
// and exits 1 when a test differs, 2 when a run could not be made.
//
// tandem reaches node a over its unix socket (-node-a), so that the node
// sees logins as from localhost, as mysql-test-run's accounts expect; the
// tests of TLS to the server then run through a second tandem, on the same
// addresses once the first stopped, that reaches node a over TCP with
// verify-full TLS (-tls-tests), as in the two-server deployment.
//
// Usage (scripts/compat.sh and `make compat` wrap it):
//
//	go run ./cmd/compat [-suites gosql,mtr] [-listen 127.0.0.1:13330] ...
//
// The pair is the one of TANDEM_PAIR_DIR / TANDEM_PAIR_PORT_A /
// TANDEM_PAIR_PORT_B (scripts/pair.sh), already up, node a active.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tandemdb/tandem/internal/compat"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		suites     = fs.String("suites", "gosql,mtr", "suites to run: gosql (go-sql-driver/mysql's tests), mtr (mysql-test-run)")
		bin        = fs.String("tandem", "bin/tandem", "the tandem binary (make build)")
		dir        = fs.String("dir", ".compat", "work directory: tandem's config and log, each run's output")
		listen     = fs.String("listen", env("TANDEM_COMPAT_LISTEN", "127.0.0.1:13330"), "tandem's client address")
		admin      = fs.String("admin", env("TANDEM_COMPAT_ADMIN", "127.0.0.1:13331"), "tandem's admin API address")
		nodeVia    = fs.String("node-a", "socket", "how tandem reaches node a: socket (its unix socket, as a tandem beside its node) or tcp")
		mtrList    = fs.String("mtr-list", "testdata/compat-mtr.list", "mysql-test-run tests to run")
		mtrDir     = fs.String("mtr-dir", compat.DefaultMTRDir, "mysql-test directory (Debian's mariadb-test)")
		mtrPar     = fs.Int("mtr-parallel", 1, "mysql-test-run workers (1 keeps the order, hence the results, deterministic)")
		mtrTimeout = fs.Duration("mtr-timeout", 60*time.Minute, "bound on one mysql-test-run run")
		goTimeout  = fs.Duration("gosql-timeout", 10*time.Minute, "bound on one go-sql-driver run")
		settle     = fs.Bool("settle-commits", true, "tandem's proxy.settle_commits (false: statements relayed without tandem's marker comment)")
		tlsTests   = fs.Bool("tls-tests", true, "run the suites' tests of TLS to the server (go-sql-driver's TestTLS, mtr tests sourcing have_ssl_communication.inc or have_tlsv13.inc) through a second tandem, on the same addresses once the first stopped, that reaches node a over TCP with verify-full TLS")
		directOnly = fs.Bool("direct-only", false, "run each suite directly only (no tandem) and write each test's outcome to DIR/SUITE-direct.txt: for choosing tests")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "compat: "+format+"\n", a...)
		return 2
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*suites, ",") {
		s = strings.TrimSpace(s)
		if s != "gosql" && s != "mtr" {
			return fail("unknown suite %q (want gosql, mtr)", s)
		}
		want[s] = true
	}
	if *nodeVia != "socket" && *nodeVia != "tcp" {
		return fail("-node-a must be socket or tcp, not %q", *nodeVia)
	}
	root, err := os.Getwd()
	if err != nil {
		return fail("%v", err)
	}
	absDir, err := filepath.Abs(*dir)
	if err != nil {
		return fail("%v", err)
	}
	if err := os.MkdirAll(absDir, 0o755); err != nil {
		return fail("%v", err)
	}
	pairDir := strings.TrimRight(env("TANDEM_PAIR_DIR", "/tmp/tandem-pair"), "/")
	portA, err := strconv.Atoi(env("TANDEM_PAIR_PORT_A", "13306"))
	if err != nil {
		return fail("TANDEM_PAIR_PORT_A: %v", err)
	}
	portB, err := strconv.Atoi(env("TANDEM_PAIR_PORT_B", "13307"))
	if err != nil {
		return fail("TANDEM_PAIR_PORT_B: %v", err)
	}
	addrA := fmt.Sprintf("127.0.0.1:%d", portA)
	addrB := fmt.Sprintf("127.0.0.1:%d", portB)
	sockA := filepath.Join(pairDir, "a", "mysqld.sock")
	caPair := filepath.Join(pairDir, "tls", "ca.pem")

	var mtrTests, mtrTLS, mtrOther, mtrIsolated []string
	if want["mtr"] {
		if mtrTests, mtrIsolated, err = compat.ReadList(*mtrList); err != nil {
			return fail("%v", err)
		}
		if _, err := os.Stat(filepath.Join(*mtrDir, "mariadb-test-run.pl")); err != nil {
			return fail("mysql-test-run not found in %s: install Debian's mariadb-test (scripts/compat.sh install)", *mtrDir)
		}
		mtrOther = mtrTests
		if *tlsTests {
			if mtrTLS, mtrOther, err = compat.TLSTests(*mtrDir, mtrTests); err != nil {
				return fail("%v", err)
			}
			// The isolated run goes through the first tandem, not the
			// TLS tests' one.
			if isoTLS, _, err := compat.TLSTests(*mtrDir, mtrIsolated); err != nil {
				return fail("%v", err)
			} else if len(isoTLS) > 0 {
				return fail("%s: %s tests TLS to the server and cannot be marked isolate", *mtrList, strings.Join(isoTLS, ", "))
			}
		}
	}
	_, lp, err := splitPort(*listen)
	if err != nil {
		return fail("-listen: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	adminA := compat.Admin{Addr: addrA, User: "tandem", Password: "tandem"}
	adminB := compat.Admin{Addr: addrB, User: "tandem", Password: "tandem"}
	md := ""
	if want["mtr"] {
		md = *mtrDir
	}
	fmt.Fprintf(stdout, "compat: preparing the pair (node a %s, node b %s)\n", addrA, addrB)
	prep, err := compat.Prepare(ctx, adminA, adminB, md)
	if err != nil {
		return fail("preparing the pair: %v", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := prep.Restore(rctx); err != nil {
			fmt.Fprintf(stderr, "compat: restoring the pair: %v\n", err)
		}
	}()

	nodeA := addrA
	if *nodeVia == "socket" {
		nodeA = sockA
	}
	td := &compat.Tandem{
		Bin: *bin, Dir: filepath.Join(absDir, "tandem"), Listen: *listen, Admin: *admin,
		NodeA: nodeA, NodeB: addrB, User: "tandem", Password: "tandem", NoSettle: !*settle,
		// Node a's own certificate: clients get TLS from tandem as from
		// the node (the suites' TLS tests), under the same name.
		TLSCert: filepath.Join(pairDir, "a", "tls", "server-cert.pem"),
		TLSKey:  filepath.Join(pairDir, "a", "tls", "server-key.pem"),
	}
	sides := 2
	if *directOnly {
		sides = 1
	} else {
		fmt.Fprintf(stdout, "compat: starting %s on %s and %s (node a by %s, settle_commits=%t)\n", *bin, *listen, td.Socket(), *nodeVia, *settle)
		if err := td.Start(ctx, compat.GoUser, compat.GoPassword, time.Minute); err != nil {
			return fail("%v", err)
		}
		defer stopTandem(td, stderr)
	}
	// The TLS tests' tandem: node a over TCP, verify-full against the
	// pair's CA (the two-server deployment's link), so that Ssl_cipher
	// through tandem is a TLS link's, as directly. The rest keeps the
	// socket: over TCP the node sees tandem's 127.0.0.1, not the
	// localhost mtr's accounts are made for (README, "Compatibility").
	tdTLS := &compat.Tandem{
		Bin: *bin, Dir: filepath.Join(absDir, "tandem-tls"), Listen: *listen, Admin: *admin,
		NodeA: addrA, NodeATLS: "verify-full", NodeATLSCA: caPair, NodeB: addrB,
		User: "tandem", Password: "tandem", NoSettle: !*settle, TLSCert: td.TLSCert, TLSKey: td.TLSKey,
	}
	needTLS := *tlsTests && !*directOnly && (want["gosql"] || len(mtrTLS) > 0)

	var rows []compat.Row
	details := map[string][2]map[string]string{}
	var (
		gosqlDir         string
		gosqlRes, mtrRes [2]compat.Results
		gosqlDet, mtrDet [2]map[string]string
	)
	if want["gosql"] {
		modDir, err := compat.ModuleDir(ctx, "", root, "github.com/go-sql-driver/mysql")
		if err != nil {
			return fail("%v", err)
		}
		s := compat.GoSQLDriver{Dir: modDir, User: compat.GoUser, Password: compat.GoPassword, DB: compat.GoDB, Timeout: *goTimeout}
		gosqlDir = modDir
		res, det := &gosqlRes, &gosqlDet
		for i, side := range []struct{ name, addr string }{{"direct", addrA}, {"tandem", *listen}}[:sides] {
			s.Skip = ""
			if i == 1 && *tlsTests {
				s.Skip = compat.GoSQLDriverTLS // through tdTLS below
			}
			if err := prep.FreshTestDB(ctx, adminA); err != nil {
				return fail("%v", err)
			}
			start := time.Now()
			fmt.Fprintf(stdout, "compat: go-sql-driver suite (%s) %s\n", filepath.Base(modDir), side.name)
			res[i], det[i], err = s.Run(ctx, side.addr, filepath.Join(absDir, "gosql-"+side.name+".json"))
			if err != nil {
				return fail("%v", err)
			}
			fmt.Fprintf(stdout, "compat:   %d tests, %d passed, %s\n", len(res[i]), res[i].Count(compat.Pass), time.Since(start).Round(time.Second))
		}
		if *directOnly {
			writeOutcomes(filepath.Join(absDir, "gosql-direct.txt"), res[0])
			res[1] = res[0]
		}
	}
	if want["mtr"] {
		m := compat.MTR{Dir: *mtrDir, Tests: mtrTests, Parallel: *mtrPar, Timeout: *mtrTimeout}
		res, det := &mtrRes, &mtrDet
		for i, side := range []struct {
			name, sock string
			port       int
		}{{"direct", sockA, portA}, {"tandem", td.Socket(), lp}}[:sides] {
			if err := prep.FreshTestDB(ctx, adminA); err != nil {
				return fail("%v", err)
			}
			if i == 1 {
				m.Tests = mtrOther // the TLS tests through tdTLS below
			}
			start := time.Now()
			fmt.Fprintf(stdout, "compat: mysql-test-run, %d tests, %s\n", len(m.Tests), side.name)
			res[i], det[i], err = m.Run(ctx, side.sock, side.port, filepath.Join(absDir, "mtr-var-"+side.name), filepath.Join(absDir, "mtr-"+side.name+".log"))
			if err != nil {
				return fail("%v", err)
			}
			fmt.Fprintf(stdout, "compat:   %d tests, %d passed, %d skipped, %s\n", len(res[i]), res[i].Count(compat.Pass), res[i].Count(compat.Skip), time.Since(start).Round(time.Second))
			if len(mtrIsolated) == 0 {
				continue
			}
			// Tests that fail at random both ways and then leave tables
			// behind run on their own, after the others (the list's
			// "isolate").
			if err := prep.FreshTestDB(ctx, adminA); err != nil {
				return fail("%v", err)
			}
			iso := compat.MTR{Dir: *mtrDir, Tests: mtrIsolated, Parallel: 1, Timeout: *mtrTimeout}
			fmt.Fprintf(stdout, "compat: mysql-test-run, %d isolated tests, %s\n", len(mtrIsolated), side.name)
			r, d, err := iso.Run(ctx, side.sock, side.port, filepath.Join(absDir, "mtr-var-"+side.name+"-isolated"), filepath.Join(absDir, "mtr-"+side.name+"-isolated.log"))
			if err != nil {
				return fail("%v", err)
			}
			merge(&res[i], &det[i], r, d)
		}
		if *directOnly {
			writeOutcomes(filepath.Join(absDir, "mtr-direct.txt"), res[0])
			res[1] = res[0]
		}
	}

	if needTLS {
		stopTandem(td, stderr)
		fmt.Fprintf(stdout, "compat: starting %s on %s for the TLS tests (node a by tcp, tls = verify-full)\n", *bin, *listen)
		if err := tdTLS.Start(ctx, compat.GoUser, compat.GoPassword, time.Minute); err != nil {
			return fail("%v", err)
		}
		defer stopTandem(tdTLS, stderr)
		if want["gosql"] {
			if err := prep.FreshTestDB(ctx, adminA); err != nil {
				return fail("%v", err)
			}
			s := compat.GoSQLDriver{Dir: gosqlDir, User: compat.GoUser, Password: compat.GoPassword, DB: compat.GoDB, Timeout: *goTimeout, Only: compat.GoSQLDriverTLS}
			fmt.Fprintf(stdout, "compat: go-sql-driver TLS tests, tandem over TLS\n")
			r, d, err := s.Run(ctx, *listen, filepath.Join(absDir, "gosql-tandem-tls.json"))
			if err != nil {
				return fail("%v", err)
			}
			merge(&gosqlRes[1], &gosqlDet[1], r, d)
		}
		if len(mtrTLS) > 0 {
			if err := prep.FreshTestDB(ctx, adminA); err != nil {
				return fail("%v", err)
			}
			m := compat.MTR{Dir: *mtrDir, Tests: mtrTLS, Parallel: *mtrPar, Timeout: *mtrTimeout}
			fmt.Fprintf(stdout, "compat: mysql-test-run, %d TLS tests, tandem over TLS\n", len(mtrTLS))
			r, d, err := m.Run(ctx, tdTLS.Socket(), lp, filepath.Join(absDir, "mtr-var-tandem-tls"), filepath.Join(absDir, "mtr-tandem-tls.log"))
			if err != nil {
				return fail("%v", err)
			}
			merge(&mtrRes[1], &mtrDet[1], r, d)
		}
	}
	if want["gosql"] {
		rows = append(rows, compat.Compare("go-sql-driver", gosqlRes[0], gosqlRes[1], nil))
		details["go-sql-driver"] = gosqlDet
	}
	if want["mtr"] {
		rows = append(rows, compat.Compare("mysql-test-run", mtrRes[0], mtrRes[1], slices.Concat(mtrTests, mtrIsolated)))
		details["mysql-test-run"] = mtrDet
	}

	differ := false
	for _, r := range rows {
		for _, d := range r.Diffs {
			differ = true
			det := details[r.Suite]
			fmt.Fprintf(stdout, "\n== %s %s: %s direct, %s via tandem\n", r.Suite, d.Test, d.Direct, d.Via)
			for i, side := range []string{"direct", "via tandem"} {
				if s := det[i][d.Test]; s != "" {
					fmt.Fprintf(stdout, "-- %s:\n%s\n", side, clip(s, 40))
				}
			}
		}
	}
	fmt.Fprintln(stdout)
	if err := compat.WriteTable(stdout, rows); err != nil {
		return fail("%v", err)
	}
	if f, err := os.Create(filepath.Join(absDir, "table.md")); err == nil {
		_ = compat.WriteTable(f, rows)
		f.Close()
	}
	for _, t := range []*compat.Tandem{td, tdTLS} {
		if n := len(t.LogErrors()); n > 0 {
			fmt.Fprintf(stdout, "\ntandem logged %d warnings or errors (%s)\n", n, t.LogPath())
		}
	}
	if ctx.Err() != nil {
		return fail("interrupted")
	}
	if differ {
		return 1
	}
	return 0
}

// stopTandem stops t (once: later calls find it stopped).
func stopTandem(t *compat.Tandem, stderr io.Writer) {
	if err := t.Stop(40 * time.Second); err != nil {
		fmt.Fprintf(stderr, "compat: %v\n", err)
	}
}

// merge puts the results and outputs of a run of some tests (r, d) into
// those of the side's main run.
func merge(res *compat.Results, det *map[string]string, r compat.Results, d map[string]string) {
	if *res == nil {
		*res = compat.Results{}
	}
	if *det == nil {
		*det = map[string]string{}
	}
	for k, v := range r {
		(*res)[k] = v
	}
	for k, v := range d {
		(*det)[k] = v
	}
}

// writeOutcomes writes "test outcome" lines, sorted.
func writeOutcomes(path string, r compat.Results) {
	lines := make([]string, 0, len(r))
	for k, v := range r {
		lines = append(lines, k+" "+string(v))
	}
	sort.Strings(lines)
	_ = os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// clip keeps the first n lines of s.
func clip(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "\n")
	}
	return strings.Join(lines[:n], "\n") + fmt.Sprintf("\n... (%d more lines)", len(lines)-n)
}

func splitPort(hostport string) (string, int, error) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return h, n, nil
}
