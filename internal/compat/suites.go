package compat

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// GoSQLDriver runs go-sql-driver/mysql's own test suite (the module
// version in tandem's go.mod, from the module cache) against one server.
type GoSQLDriver struct {
	Go       string        // the go command; "" means "go"
	Dir      string        // the module's directory (ModuleDir)
	User     string        // MYSQL_TEST_USER
	Password string        // MYSQL_TEST_PASS
	DB       string        // MYSQL_TEST_DBNAME
	Timeout  time.Duration // bound on one run; 0 means 10 minutes
	// Only, when set, runs only the tests it matches (go test -run);
	// Skip skips those it matches too, beside GoSQLDriverSkip.
	Only, Skip string
}

// GoSQLDriverTLS matches the driver's tests of TLS to the server: make
// compat runs them through a tandem that reaches node a over TCP with TLS
// (the node link's Ssl_cipher is what they read through tandem).
const GoSQLDriverTLS = `^TestTLS$`

// GoSQLDriverSkip lists the driver's tests that are never run, with why:
//   - TestConnectorReturnsTimeout dials 1.1.1.1:1234 (outside loopback;
//     it needs no server anyway).
//
// TestConcurrent (opens max_connections connections at once) needs
// MYSQL_TEST_CONCURRENT, which is left unset, as the suite does by
// default: directly it fails or passes by chance on this machine.
const GoSQLDriverSkip = `^TestConnectorReturnsTimeout$`

// ModuleDir returns the directory of module path (as required by the go.mod
// in root) in the module cache, downloading it when missing.
func ModuleDir(ctx context.Context, goCmd, root, path string) (string, error) {
	if goCmd == "" {
		goCmd = "go"
	}
	list := func() (string, error) {
		cmd := exec.CommandContext(ctx, goCmd, "list", "-m", "-f", "{{.Dir}}", path)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return "", fmt.Errorf("go list -m %s: %w: %s", path, err, bytes.TrimSpace(ee.Stderr))
			}
			return "", fmt.Errorf("go list -m %s: %w", path, err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	dir, err := list()
	if err != nil {
		return "", err
	}
	if dir == "" {
		cmd := exec.CommandContext(ctx, goCmd, "mod", "download", path)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go mod download %s: %w: %s", path, err, bytes.TrimSpace(out))
		}
		if dir, err = list(); err != nil {
			return "", err
		}
	}
	if dir == "" {
		return "", fmt.Errorf("module %s is not in the module cache after go mod download", path)
	}
	return dir, nil
}

// Run runs the suite against addr (host:port), writing `go test -json`
// to logPath, and returns the parsed results and each test's output.
func (s GoSQLDriver) Run(ctx context.Context, addr, logPath string) (Results, map[string]string, error) {
	goCmd := s.Go
	if goCmd == "" {
		goCmd = "go"
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	log, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	defer log.Close()
	var stderr bytes.Buffer
	// -timeout inside the bound of ctx, so that a hung test prints its
	// goroutines and the events end properly.
	inner := timeout - 30*time.Second
	if inner < timeout/2 {
		inner = timeout / 2
	}
	skip := GoSQLDriverSkip
	if s.Skip != "" {
		skip += "|" + s.Skip
	}
	args := []string{"test", "-count=1", "-json", "-timeout", inner.String(), "-skip", skip}
	if s.Only != "" {
		args = append(args, "-run", s.Only)
	}
	cmd := exec.CommandContext(ctx, goCmd, append(args, ".")...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(),
		"GOWORK=off", "GOFLAGS=-mod=mod",
		"MYSQL_TEST_ADDR="+addr, "MYSQL_TEST_PROT=tcp",
		"MYSQL_TEST_USER="+s.User, "MYSQL_TEST_PASS="+s.Password,
		"MYSQL_TEST_DBNAME="+s.DB, "MYSQL_TEST_CONCURRENT=",
	)
	cmd.Stdout = log
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return nil, nil, fmt.Errorf("go-sql-driver suite against %s: not done after %s", addr, timeout)
	}
	// A failing test makes go test exit 1: that is a result, not an error.
	var ee *exec.ExitError
	if runErr != nil && !errors.As(runErr, &ee) {
		return nil, nil, fmt.Errorf("go test: %w", runErr)
	}
	f, err := os.Open(logPath)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	res, out, err := ParseGoTestJSON(f)
	if err != nil {
		return nil, nil, err
	}
	if len(res) == 0 {
		return nil, nil, fmt.Errorf("go-sql-driver suite against %s ran no test (exit %v): %s", addr, runErr, truncate(stderr.String(), 2000))
	}
	return res, out, nil
}

// MTR runs a list of MariaDB mysql-test-run tests in --extern mode against
// a running server.
type MTR struct {
	Dir             string        // mysql-test directory; "" means /usr/share/mysql/mysql-test
	Tests           []string      // suite.test names
	Parallel        int           // workers; 0 means 1
	TestcaseTimeout time.Duration // bound on one test (whole minutes); 0 means 2 minutes
	Timeout         time.Duration // bound on the whole run; 0 means 60 minutes
}

// DefaultMTRDir is where Debian's mariadb-test package installs the suite.
const DefaultMTRDir = "/usr/share/mysql/mysql-test"

// Run runs the tests against the server at socket (the default connection
// and every connection to localhost) and port (connections to 127.0.0.1),
// with vardir as mtr's scratch directory, writing mtr's output to logPath.
func (m MTR) Run(ctx context.Context, socket string, port int, vardir, logPath string) (Results, map[string]string, error) {
	dir := m.Dir
	if dir == "" {
		dir = DefaultMTRDir
	}
	script := filepath.Join(dir, "mariadb-test-run.pl")
	if _, err := os.Stat(script); err != nil {
		return nil, nil, fmt.Errorf("mysql-test-run not found (%w): install Debian's mariadb-test (scripts/compat.sh install)", err)
	}
	if len(m.Tests) == 0 {
		return nil, nil, errors.New("no mysql-test-run test to run")
	}
	par := m.Parallel
	if par <= 0 {
		par = 1
	}
	tcMin := int(m.TestcaseTimeout / time.Minute)
	if tcMin <= 0 {
		tcMin = 2
	}
	timeout := m.Timeout
	if timeout == 0 {
		timeout = 60 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := os.RemoveAll(vardir); err != nil {
		return nil, nil, err
	}
	log, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	defer log.Close()
	args := []string{script,
		"--extern", "socket=" + socket,
		"--extern", "port=" + strconv.Itoa(port),
		"--vardir=" + vardir,
		"--parallel=" + strconv.Itoa(par),
		"--force", "--max-test-fail=0", "--retry=0",
		"--testcase-timeout=" + strconv.Itoa(tcMin),
		"--suite-timeout=" + strconv.Itoa(int(timeout/time.Minute)),
	}
	args = append(args, m.Tests...)
	cmd := exec.CommandContext(ctx, "perl", args...)
	cmd.Dir = dir
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return nil, nil, fmt.Errorf("mysql-test-run against %s: not done after %s (log %s)", socket, timeout, logPath)
	}
	f, err := os.Open(logPath)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	res, details, err := ParseMTR(f)
	if err != nil {
		return nil, nil, err
	}
	if len(res) == 0 {
		return nil, nil, fmt.Errorf("mysql-test-run against %s reported no test (exit %v); see %s", socket, runErr, logPath)
	}
	return res, details, nil
}

// TLSTests splits mysql-test-run tests (suite.name) into those that test
// TLS to the server (their .test file in dir sources mtr's
// include/have_ssl_communication.inc or have_tlsv13.inc) and the others,
// each in the order given.
func TLSTests(dir string, tests []string) (tls, other []string, err error) {
	if dir == "" {
		dir = DefaultMTRDir
	}
	for _, name := range tests {
		suite, test, ok := strings.Cut(name, ".")
		if !ok {
			return nil, nil, fmt.Errorf("mysql-test-run test %q: want suite.name", name)
		}
		path := filepath.Join(dir, "suite", suite, "t", test+".test")
		if suite == "main" {
			path = filepath.Join(dir, "main", test+".test")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("mysql-test-run test %s: %w", name, err)
		}
		if bytes.Contains(b, []byte("include/have_ssl_communication.inc")) || bytes.Contains(b, []byte("include/have_tlsv13.inc")) {
			tls = append(tls, name)
		} else {
			other = append(other, name)
		}
	}
	return tls, other, nil
}

// ReadList reads a test list: one name a line; blank lines and lines
// starting with # are ignored. A line's second field is the test's outcome
// directly when the list was made (not used); "isolate" as its third field
// puts the test in isolated (and not in tests): make compat runs those in
// a run of their own, after the others, so that tables a random failure
// of theirs leaves behind cannot fail later tests.
func ReadList(path string) (tests, isolated []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		fields := strings.Fields(l)
		if len(fields) > 2 && fields[2] == "isolate" {
			isolated = append(isolated, fields[0])
		} else {
			tests = append(tests, fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if len(tests)+len(isolated) == 0 {
		return nil, nil, fmt.Errorf("%s lists no test", path)
	}
	return tests, isolated, nil
}
