package hoststest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// dialer returns a DialContext that opens its sockets in the network
// namespace ns (as `ip netns add` names it, under /run/netns).
func dialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	path := filepath.Join("/run/netns", ns)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			// A dedicated goroutine, locked to its thread, so that no other
			// goroutine runs on the thread while it is in another namespace.
			runtime.LockOSThread()
			c, err := dialIn(ctx, path, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// dialIn runs on a locked thread: it enters the namespace at path, dials,
// and returns to the thread's own namespace. It unlocks the thread only if
// that return succeeded; otherwise the thread ends with its goroutine.
func dialIn(ctx context.Context, path, network, addr string) (net.Conn, error) {
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer self.Close()
	target, err := os.Open(path)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("setns %s: %w", path, err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	}
	return c, err
}
