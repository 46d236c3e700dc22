package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// stderrTail is how much of a failed command's stderr is logged: its end,
// where the error usually is.
const stderrTail = 1024

// command runs one program per event.
type command struct {
	cfg CommandConfig // Path resolved, defaults applied
	log hclog.Logger
}

func (c *command) close() {}

// defaultPath is the hook's PATH when tandem has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// hookEnv is the whole environment a hook gets: PATH and HOME from tandem's
// (PATH defaulting to defaultPath), and the event. Nothing else of tandem's
// environment, which may hold passwords (password_env, token_env).
func hookEnv(p Payload) []string {
	env := []string{"PATH=" + first(os.Getenv("PATH"), defaultPath)}
	if home, ok := os.LookupEnv("HOME"); ok {
		env = append(env, "HOME="+home)
	}
	return append(env, p.Env()...)
}

// deliver runs the program with the event in TANDEM_EVENT_* and as JSON on
// stdin, in the environment hookEnv gives. Past cfg.Timeout, or once ctx
// ends, its process group is killed.
func (c *command) deliver(ctx context.Context, p Payload) error {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, c.cfg.Path, c.cfg.Args...)
	cmd.Env = hookEnv(p)
	cmd.Stdin = bytes.NewReader(p.JSON())
	stderr := &tailBuffer{max: stderrTail}
	cmd.Stderr = stderr // stdout goes to /dev/null
	killGroup(cmd)
	// A background child that keeps stderr open must not hold us past
	// the program's own end (or its kill) for more than this.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("killed: closing (%w)", err)
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("killed after the %v timeout", c.cfg.Timeout)
	}
	c.log.Error("command failed", "type", p.Type, "error", err, "stderr", stderr.String())
	return err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	trimmed bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.trimmed = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.buf))
	if t.trimmed {
		s = "..." + s
	}
	return s
}
