package failover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// errRefused is what a dial to a closed port wraps.
var errRefused = syscall.ECONNREFUSED

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Reach
	}{
		{"server error", fmt.Errorf("replication: SET GLOBAL read_only = ON: %w", &mysql.MySQLError{Number: 1040, Message: "Too many connections"}), ReachAlive},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, ReachGone},
		{"timeout", context.DeadlineExceeded, ReachUnknown},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, ReachUnknown},
		{"bad conn", errors.New("invalid connection"), ReachUnknown},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("%s: Classify(%v) = %v; want %v", tc.name, tc.err, got, tc.want)
		}
	}
	// Through the driver, as the monitor sees it: a closed TCP port and a
	// unix socket nobody listens on.
	for _, addr := range []string{closedAddr(t), filepath.Join(t.TempDir(), "gone.sock")} {
		cfg := DefaultConfig()
		cfg.AdminUser = "tandem"
		n, err := openNode(cfg, NodeConfig{Name: "x", Address: addr})
		if err != nil {
			t.Fatal(err)
		}
		_, err = n.Read(context.Background())
		n.Close()
		if got := Classify(err); got != ReachGone {
			t.Errorf("%s: Classify(%v) = %v; want gone", addr, err, got)
		}
	}
}
