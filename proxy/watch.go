package proxy

// Clients that leave in the middle of a command. While the node works on a
// command, the session's goroutine reads the node, not the client: a client
// that closes its connection then (a dirty close, a driver's read timeout)
// would go unnoticed until the answer comes, and its statement would go on
// on the node: a SLEEP(600) for ten minutes, a GET_LOCK holding its lock.
// Directly, MariaDB notices such a close while the statement waits (SLEEP,
// GET_LOCK, lock waits) and ends the statement and the connection.
//
// One watcher goroutine per Proxy (started by Serve) looks, every
// watchInterval, at the sessions whose command has run for longer than
// watchAfter, and checks each one's client socket without reading from it.
// When the client has left, it closes the session's connections: the node
// sees its client gone, as it would directly, and ends the statement at its
// next check; the session ends as a client close ends it (no node failure is
// reported, nothing is moved). The relay pays one atomic store per command
// (session.cmdStart) and nothing else.

import (
	"syscall"
	"time"
	"unsafe"
)

const (
	// watchInterval is how often the watcher looks at running commands.
	watchInterval = 250 * time.Millisecond
	// watchAfter is how long a command runs before the watcher checks
	// its client: short commands never cost a system call.
	watchAfter = 250 * time.Millisecond
)

// watchClients runs until Shutdown.
func (p *Proxy) watchClients() {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	var long []*session
	for {
		select {
		case <-p.closed:
			return
		case now := <-t.C:
			long = p.longCommands(now, long[:0])
			for i, s := range long {
				if s.clientLeft() {
					p.log.Info("client left during a command; closing its node connection",
						"session", s.id, "remote", s.raw.RemoteAddr())
					s.closeConns()
				}
				long[i] = nil
			}
		}
	}
}

// longCommands appends to out the sessions whose command has run for longer
// than watchAfter at now.
func (p *Proxy) longCommands(now time.Time, out []*session) []*session {
	before := now.Add(-watchAfter).UnixNano()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.sessions {
		if st := s.cmdStart.Load(); st != 0 && st < before && !s.closed.Load() {
			out = append(out, s)
		}
	}
	return out
}

// clientLeft reports whether the session's client has left: it closed its
// connection (the FIN arrived and nothing is left unread, as MariaDB's own
// vio_is_connected decides) or the connection was reset (even with bytes
// left unread). A client that sent its next command meanwhile (pipelining)
// has not left, even if it closed its side behind it. Under TLS the bytes
// waiting may be the client's close_notify alert, which tandem cannot tell
// from a command without reading it: there the FIN alone (tcpPeerClosed)
// says the client left. Any doubt counts as present.
func (s *session) clientLeft() bool {
	sc, ok := s.raw.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	s.mu.Lock()
	tls := s.client != s.raw
	s.mu.Unlock()
	left := false
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch {
		case e == syscall.EAGAIN || e == syscall.EINTR:
		case e != 0:
			left = true // reset, or otherwise failed
			return
		case n == 0:
			left = true // end of stream, nothing unread
			return
		}
		fin, closed := tcpPeerClosed(fd)
		left = closed || tls && fin
	})
	return err == nil && left
}
