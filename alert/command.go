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

// deliver runs the program with the event in TANDEM_EVENT_* and as JSON on
// stdin. Past cfg.Timeout, or once ctx ends, its process group is killed.
func (c *command) deliver(ctx context.Context, p Payload) error {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, c.cfg.Path, c.cfg.Args...)
	cmd.Env = append(os.Environ(), p.Env()...)
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
