//go:build unix

package alert

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// script writes an executable shell script into a fresh directory and
// returns its path and the directory.
func script(t *testing.T, body string) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

func TestCommandGetsEnvAndStdin(t *testing.T) {
	path, dir := script(t, `env | grep '^TANDEM_EVENT_' | sort > "$1/env"
cat > "$1/stdin"
`)
	a := start(t, Config{Version: "1.2.3", Commands: []CommandConfig{{Path: path, Args: []string{dir}, Timeout: 5 * time.Second}}}, nil)
	e := testEvent(2)
	e.Reason = "a failed 3 checks in a row; it's 'quoted'"
	a.Send(e)
	waitFor(t, 2*time.Second, "the command ran", func() bool { return a.Stats().Sinks[0].Sent == 1 })

	env, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	want := `TANDEM_EVENT_DURATION_MS=812
TANDEM_EVENT_EPOCH=2
TANDEM_EVENT_FROM=a
TANDEM_EVENT_NODE=
TANDEM_EVENT_REASON=a failed 3 checks in a row; it's 'quoted'
TANDEM_EVENT_TIME=2025-03-14T09:26:53.589Z
TANDEM_EVENT_TO=b
TANDEM_EVENT_TYPE=failover_finished
`
	if string(env) != want {
		t.Errorf("environment:\n%s\nwant:\n%s", env, want)
	}
	stdin, err := os.ReadFile(filepath.Join(dir, "stdin"))
	if err != nil {
		t.Fatal(err)
	}
	if want := NewPayload(e, Source{Version: "1.2.3", Host: "proxy1"}).JSON(); !bytes.Equal(stdin, want) {
		t.Errorf("stdin:\n%s\nwant:\n%s", stdin, want)
	}
	var p Payload
	if err := json.Unmarshal(stdin, &p); err != nil || p.Epoch != 2 {
		t.Errorf("stdin does not decode: %v", err)
	}
	if st := a.Stats().Sinks[0]; st.Kind != "command" || st.Name != path {
		t.Errorf("stats %+v", st)
	}
}

func TestCommandFailureLogsStderr(t *testing.T) {
	path, _ := script(t, `echo "a long line of noise that the tail cuts" >&2
i=0; while [ $i -lt 200 ]; do echo "noise $i" >&2; i=$((i+1)); done
echo "boom: webhook token rejected" >&2
exit 3
`)
	log, out := testLogger()
	a := start(t, Config{Commands: []CommandConfig{{Path: path}}}, log)
	a.Send(testEvent(1))
	waitFor(t, 2*time.Second, "the command counted as failed", func() bool { return a.Stats().Sinks[0].Failed == 1 })
	logs := out.String()
	for _, want := range []string{"command failed", "exit status 3", "boom: webhook token rejected", "command=" + path} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "the tail cuts") {
		t.Errorf("log holds all of stderr, want its last %d bytes:\n%s", stderrTail, logs)
	}
}

func TestCommandKilledAfterTimeout(t *testing.T) {
	path, dir := script(t, `sleep 30 &
echo $! > "$1/child"
echo "hanging" >&2
wait
`)
	log, out := testLogger()
	a := start(t, Config{Commands: []CommandConfig{{Path: path, Args: []string{dir}, Timeout: 300 * time.Millisecond}}}, log)
	t0 := time.Now()
	a.Send(testEvent(1))
	waitFor(t, 3*time.Second, "the hanging command counted as failed", func() bool { return a.Stats().Sinks[0].Failed == 1 })
	if d := time.Since(t0); d < 300*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("failed after %v, want soon after the 300ms timeout", d)
	}
	if logs := out.String(); !strings.Contains(logs, "killed after the 300ms timeout") || !strings.Contains(logs, "hanging") {
		t.Errorf("log does not say it was killed:\n%s", logs)
	}
	b, err := os.ReadFile(filepath.Join(dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "the script's child killed with its group", func() bool { return gone(pid) })
}

// gone reports whether pid has exited: no such process, or a zombie that
// no one reaps (the test may run as PID 1's grandchild in a container).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return os.IsNotExist(err)
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

func TestCloseKillsRunningCommand(t *testing.T) {
	path, _ := script(t, "sleep 30\n")
	a, err := New(Config{Commands: []CommandConfig{{Path: path, Timeout: time.Minute}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Send(testEvent(1))
	a.Send(testEvent(2))
	time.Sleep(50 * time.Millisecond) // the first one running
	ctx, cancel := contextWithTimeout(100 * time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if err := a.Close(ctx); err == nil {
		t.Error("Close: nil, want the deadline")
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if st := a.Stats().Sinks[0]; st.Failed != 1 || st.Dropped != 1 {
		t.Errorf("stats %+v, want 1 killed, 1 dropped", st)
	}
}

// TestCommandEnvHoldsNoSecret: the hook sees PATH, HOME and the event,
// never the rest of tandem's environment (where password_env and
// token_env variables live).
func TestCommandEnvHoldsNoSecret(t *testing.T) {
	const secret = "hook-must-not-see-7f3a9c"
	t.Setenv("TANDEM_ADMIN_PASSWORD", secret)
	t.Setenv("SOME_TOKEN", secret)
	t.Setenv("HOME", "/home/tandem-test")
	path, dir := script(t, `env > "$1/env"
`)
	a := start(t, Config{Commands: []CommandConfig{{Path: path, Args: []string{dir}, Timeout: 5 * time.Second}}}, nil)
	a.Send(testEvent(1))
	waitFor(t, 2*time.Second, "the command ran", func() bool { return a.Stats().Sinks[0].Sent == 1 })
	b, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	env := string(b)
	if strings.Contains(env, secret) {
		t.Fatalf("the hook saw a secret of tandem's environment:\n%s", env)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(env), "\n") {
		name, _, _ := strings.Cut(line, "=")
		switch {
		case strings.HasPrefix(name, "TANDEM_EVENT_"):
		case name == "PATH" && line == "PATH="+os.Getenv("PATH"):
		case name == "HOME" && line == "HOME=/home/tandem-test":
		case name == "PWD" || name == "SHLVL" || name == "_" || name == "OLDPWD":
			// set by /bin/sh itself
		default:
			names = append(names, line)
		}
	}
	if len(names) > 0 {
		t.Fatalf("the hook got more than PATH, HOME and TANDEM_EVENT_*: %q", names)
	}
	if !strings.Contains(env, "TANDEM_EVENT_TYPE=failover_finished") {
		t.Fatalf("the hook lacks its event:\n%s", env)
	}
}
