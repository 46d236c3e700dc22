package proxy

import (
	"context"
	"net"
	"syscall"
)

// Client keepalive: what Go sets on every accepted TCP connection by
// default (net.ListenConfig.KeepAlive), probes after 15 s idle, every
// 15 s, 9 of them.
const (
	keepAliveIdle     = 15 // seconds
	keepAliveInterval = 15 // seconds
	keepAliveCount    = 9
)

// ListenTCP listens for clients on a TCP address. Keepalive is set once on
// the listening socket, which every accepted socket inherits on Linux,
// instead of with four setsockopt calls on each accepted connection (what
// net.Listen does): a connect-per-request workload accepts thousands of
// connections a second.
func ListenTCP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1, Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			for _, o := range [...]struct{ level, opt, v int }{
				{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
				{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, keepAliveIdle},
				{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, keepAliveInterval},
				{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAliveCount},
			} {
				if err == nil {
					err = syscall.SetsockoptInt(int(fd), o.level, o.opt, o.v)
				}
			}
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}
