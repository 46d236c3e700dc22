package proxy

// Accepting clients and dialing nodes without Go's per-connection socket
// set-up. For each TCP connection net's Accept and Dial make about a dozen
// system calls besides accept4(2) or connect(2): five setsockopt(2) (Nagle
// off, and keepalive on with its idle time, interval and count), the
// addresses, and for a dial SO_ERROR; most go through the scheduler's
// syscall state (entersyscall), which wakes the runtime's monitor thread
// and lets it hand the processor to another thread. With a connection per
// request that is a thread switch or two per request.
//
// Here accept4(2), socket(2), connect(2) and the options are plain system
// calls (the sockets are non-blocking, so none blocks; the wait is on the
// runtime's poller). An accepted socket takes its options from the listening
// socket, where they are set once: Linux copies TCP_NODELAY and the
// keepalive settings to each connection it accepts. The descriptor then
// goes to the poller through os.NewFile, and sockConn makes it a net.Conn
// with net's error values and addresses.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// The keepalive settings of client and node connections: Go's defaults
// for net.Dial and net.Listen (15 s idle, probes every 15 s, 9 of them).
const (
	keepAliveIdle     = 15
	keepAliveInterval = 15
	keepAliveCount    = 9
)

// sockConn is a TCP connection accepted or dialed by this file: an
// *os.File on the runtime's poller, with net.Conn's addresses and errors.
type sockConn struct {
	f      *os.File
	raw    sockRawConn                 // f's syscall.RawConn, with net's errors
	laddr  atomic.Pointer[net.TCPAddr] // looked up when first asked for
	raddr  *net.TCPAddr
	closed atomic.Bool
}

func newSockConn(fd int, raddr *net.TCPAddr) *sockConn {
	c := &sockConn{f: os.NewFile(uintptr(fd), ""), raddr: raddr}
	c.raw.c = c
	c.raw.rc, _ = c.f.SyscallConn() // never fails for an open file
	return c
}

func (c *sockConn) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	return n, c.opErr("read", err)
}

func (c *sockConn) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	return n, c.opErr("write", err)
}

func (c *sockConn) Close() error {
	if c.closed.Swap(true) {
		return c.opErr("close", net.ErrClosed)
	}
	return c.opErr("close", c.f.Close())
}

// closeLater closes the connection as Close does, but its descriptor
// only with the next batch (closer): for a socket whose FIN went out
// already (shutdown(2)) and that nothing reads or writes any more.
func (c *sockConn) closeLater() {
	if !c.closed.Swap(true) {
		sockCloser.add(c.f)
	}
}

func (c *sockConn) LocalAddr() net.Addr {
	if a := c.laddr.Load(); a != nil {
		return a
	}
	a := &net.TCPAddr{}
	_ = c.control(func(fd uintptr) {
		if sa, err := syscall.Getsockname(int(fd)); err == nil {
			a = sockaddrTCP(sa)
		}
	})
	c.laddr.Store(a)
	return a
}

func (c *sockConn) RemoteAddr() net.Addr { return c.raddr }

func (c *sockConn) SetDeadline(t time.Time) error {
	return c.opErr("set", c.f.SetDeadline(t))
}

func (c *sockConn) SetReadDeadline(t time.Time) error {
	return c.opErr("set", c.f.SetReadDeadline(t))
}

func (c *sockConn) SetWriteDeadline(t time.Time) error {
	return c.opErr("set", c.f.SetWriteDeadline(t))
}

// SyscallConn returns the raw connection, with net's errors.
func (c *sockConn) SyscallConn() (syscall.RawConn, error) {
	return &c.raw, nil
}

func (c *sockConn) control(f func(uintptr)) error {
	return c.raw.rc.Control(f)
}

// opErr turns an error of the os.File into the one a net.Conn returns: a
// *net.OpError, net.ErrClosed once the connection is closed, io.EOF as it
// is.
func (c *sockConn) opErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, os.ErrClosed) || c.closed.Load() && !errors.Is(err, os.ErrDeadlineExceeded) {
		err = net.ErrClosed
	}
	return &net.OpError{Op: op, Net: "tcp", Addr: c.raddr, Err: err}
}

// sockRawConn is a sockConn's syscall.RawConn with net's errors.
type sockRawConn struct {
	rc syscall.RawConn
	c  *sockConn
}

func (r *sockRawConn) Control(f func(uintptr)) error {
	return r.c.opErr("raw-control", r.rc.Control(f))
}

func (r *sockRawConn) Read(f func(uintptr) bool) error {
	return r.c.opErr("raw-read", r.rc.Read(f))
}

func (r *sockRawConn) Write(f func(uintptr) bool) error {
	return r.c.opErr("raw-write", r.rc.Write(f))
}

// sockaddrTCP converts a socket address to a *net.TCPAddr.
func sockaddrTCP(sa syscall.Sockaddr) *net.TCPAddr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *syscall.SockaddrInet6:
		a := &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	}
	return &net.TCPAddr{}
}

// rawSetsockoptInt is setsockopt(2) of an int option as a plain system
// call.
func rawSetsockoptInt(fd uintptr, level, opt, value int) syscall.Errno {
	v := int32(value)
	_, _, e := syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&v)), unsafe.Sizeof(v), 0)
	return e
}

// setConnOptions sets TCP_NODELAY and keepalive on a TCP socket, as net
// does for its connections.
func setConnOptions(fd uintptr) error {
	for _, o := range [...]struct{ level, opt, v int }{
		{syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
		{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, keepAliveIdle},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, keepAliveInterval},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAliveCount},
	} {
		if e := rawSetsockoptInt(fd, o.level, o.opt, o.v); e != 0 {
			return os.NewSyscallError("setsockopt", e)
		}
	}
	return nil
}

// acceptor is a TCP listener that accepts with plain accept4(2) calls
// (see the top of the file). A listener's own syscall.RawConn cannot wait
// for a connection (its Read is EINVAL), so the acceptor waits on a
// duplicate of the listening socket, an *os.File on the poller.
type acceptor struct {
	l   *net.TCPListener
	lrc syscall.RawConn // l's, to notice that l was closed by its owner
	f   *os.File        // the duplicate
	rc  syscall.RawConn // f's

	// The in-flight accept's results, and the callback bound once.
	fd    int
	sa    syscall.RawSockaddrAny
	errno syscall.Errno
	f1    func(uintptr) bool

	recheck time.Time // the read deadline set on f (acceptRecheck)
}

// acceptRecheck is how often an acceptor waiting for a connection checks
// whether its listener was closed other than by its Close.
const acceptRecheck = time.Second

// newAcceptor sets the options every connection should have on l's socket,
// from where accepted sockets inherit them, and returns an acceptor for l.
func newAcceptor(l *net.TCPListener) (*acceptor, error) {
	lrc, err := l.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	if err := lrc.Control(func(fd uintptr) { serr = setConnOptions(fd) }); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	f, err := l.File()
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	a := &acceptor{l: l, lrc: lrc, f: f, rc: rc}
	a.f1 = a.acceptOnce
	return a, nil
}

func (a *acceptor) acceptOnce(fd uintptr) bool {
	for {
		n := uint32(unsafe.Sizeof(a.sa))
		r, _, e := syscall.RawSyscall6(syscall.SYS_ACCEPT4, fd, uintptr(unsafe.Pointer(&a.sa)), uintptr(unsafe.Pointer(&n)),
			syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
		switch e {
		case 0:
			a.fd, a.errno = int(r), 0
			return true
		case syscall.EAGAIN:
			return false // wait until a connection comes
		case syscall.EINTR, syscall.ECONNABORTED:
			// A connection reset while it waited: take the next one.
			continue
		}
		a.fd, a.errno = -1, e
		return true
	}
}

// Accept returns the next connection, a *sockConn.
func (a *acceptor) Accept() (net.Conn, error) {
	for {
		// The recheck's deadline is moved only once it is less than
		// half a period away, not for every connection (a timer
		// update each time).
		if now := time.Now(); a.recheck.Sub(now) < acceptRecheck/2 {
			a.recheck = now.Add(acceptRecheck)
			_ = a.f.SetReadDeadline(a.recheck)
		}
		err := a.rc.Read(a.f1)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: a.l.Addr(), Err: net.ErrClosed}
		}
		a.recheck = time.Time{}
		if a.lrc.Control(func(uintptr) {}) != nil {
			a.f.Close() // l was closed: so is the acceptor
		}
	}
	if a.errno != 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: a.l.Addr(), Err: os.NewSyscallError("accept4", a.errno)}
	}
	raddr := &net.TCPAddr{}
	switch a.sa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&a.sa))
		raddr.IP = net.IPv4(sa.Addr[0], sa.Addr[1], sa.Addr[2], sa.Addr[3])
		raddr.Port = int(sa.Port>>8 | sa.Port<<8)
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&a.sa))
		raddr.IP = append(net.IP(nil), sa.Addr[:]...)
		raddr.Port = int(sa.Port>>8 | sa.Port<<8)
		if sa.Scope_id != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.Scope_id)); err == nil {
				raddr.Zone = ifi.Name
			}
		}
	}
	return newSockConn(a.fd, raddr), nil
}

// Close closes the listener and its duplicate.
func (a *acceptor) Close() error {
	a.f.Close()
	return a.l.Close()
}

// Addr is the listener's address.
func (a *acceptor) Addr() net.Addr { return a.l.Addr() }

// dialTCP connects to ap by plain system calls within timeout (and ctx's
// deadline), with TCP_NODELAY and keepalive set as net.Dial sets them.
func dialTCP(ctx context.Context, ap netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	raddr := net.TCPAddrFromAddrPort(ap)
	fail := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Addr: raddr, Err: err} }
	var sa syscall.RawSockaddrAny
	var salen uintptr
	family := syscall.AF_INET
	port := uint16(ap.Port()>>8 | ap.Port()<<8)
	if a := ap.Addr(); a.Is4() {
		s := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&sa))
		s.Family, s.Port, s.Addr = syscall.AF_INET, port, a.As4()
		salen = unsafe.Sizeof(*s)
	} else {
		family = syscall.AF_INET6
		s := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&sa))
		s.Family, s.Port, s.Addr = syscall.AF_INET6, port, a.As16()
		salen = unsafe.Sizeof(*s)
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_SOCKET, uintptr(family), syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if e != 0 {
		return nil, fail(os.NewSyscallError("socket", e))
	}
	fd := r
	if err := setConnOptions(fd); err != nil {
		syscall.Close(int(fd))
		return nil, fail(err)
	}
	for {
		_, _, e = syscall.RawSyscall(syscall.SYS_CONNECT, fd, uintptr(unsafe.Pointer(&sa)), salen)
		if e != syscall.EINTR {
			break
		}
	}
	switch e {
	case 0, syscall.EINPROGRESS, syscall.EALREADY:
	default:
		syscall.Close(int(fd))
		return nil, fail(os.NewSyscallError("connect", e))
	}
	c := newSockConn(int(fd), raddr)
	// On loopback the connection is usually up by now: only a connect
	// still under way costs a deadline and a wait on the poller.
	var cerr syscall.Errno
	done := false
	check := func(fd uintptr) bool {
		done, cerr = connectDone(fd)
		return done
	}
	rc := c.raw.rc
	err := rc.Control(func(fd uintptr) { check(fd) })
	if err == nil && !done {
		deadline := time.Now().Add(timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		_ = c.f.SetWriteDeadline(deadline)
		err = rc.Write(check)
		_ = c.f.SetWriteDeadline(time.Time{})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = os.ErrDeadlineExceeded // the i/o timeout a dial reports
		}
	}
	if err == nil && cerr != 0 {
		err = os.NewSyscallError("connect", cerr)
	}
	if err != nil {
		c.Close()
		return nil, fail(err)
	}
	return c, nil
}

// connectDone reports whether a non-blocking connect on fd has finished,
// and how. getpeername(2) succeeds once the connection is established (on
// loopback, usually by the first check: one system call); while it fails
// with ENOTCONN, SO_ERROR tells a connect still under way from one that
// failed.
func connectDone(fd uintptr) (bool, syscall.Errno) {
	var sa syscall.RawSockaddrAny
	sn := uint32(unsafe.Sizeof(sa))
	_, _, e := syscall.RawSyscall(syscall.SYS_GETPEERNAME, fd, uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&sn)))
	switch e {
	case 0:
		return true, 0
	case syscall.ENOTCONN:
	default:
		return true, e
	}
	var v int32
	n := uint32(unsafe.Sizeof(v))
	_, _, e = syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, fd, syscall.SOL_SOCKET, syscall.SO_ERROR,
		uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return true, e
	}
	switch syscall.Errno(v) {
	case 0, syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
		// Under way (or established between the two calls): the
		// next check tells.
		return false, 0
	}
	return true, syscall.Errno(v)
}

// closeBatchDelay is how long a socket waits at most, after its session
// ended, for its descriptor to be closed; closeBatchMax bounds how many
// wait (one more closes them all at once). Each batch wakes the runtime's
// monitor thread once: at 2,000 connections a second (4,000 sockets),
// 100 ms and 1,024 make about 10 batches a second; 25 ms and 256 made 40.
const (
	closeBatchDelay = 100 * time.Millisecond
	closeBatchMax   = 1024
)

// closer closes descriptors in batches. close(2) is the one system call
// of a connection that Go makes through the scheduler's syscall state
// (os.File and net both do): each such call wakes the runtime's monitor
// thread when it sleeps, which then polls every 20 µs until the process
// is idle again: a thread switch or two per session with a connection per
// request. Batched, a burst of closes wakes it once every closeBatchDelay
// at most. The peers are not kept waiting: the FIN went out with
// shutdown(2) when the session ended.
type closer struct {
	mu      sync.Mutex
	pending []*os.File
	spare   []*os.File
	timer   *time.Timer
}

var sockCloser = newCloser()

func newCloser() *closer {
	c := &closer{}
	c.timer = time.AfterFunc(time.Hour, c.closeAll)
	c.timer.Stop()
	return c
}

func (c *closer) add(f *os.File) {
	c.mu.Lock()
	c.pending = append(c.pending, f)
	n := len(c.pending)
	if n == 1 {
		c.timer.Reset(closeBatchDelay)
	}
	c.mu.Unlock()
	if n >= closeBatchMax {
		c.closeAll()
	}
}

// closeAll closes the pending descriptors.
func (c *closer) closeAll() {
	c.mu.Lock()
	batch := c.pending
	c.pending, c.spare = c.spare[:0], nil
	c.mu.Unlock()
	for i, f := range batch {
		_ = f.Close()
		batch[i] = nil
	}
	c.mu.Lock()
	if c.spare == nil {
		c.spare = batch[:0]
	}
	c.mu.Unlock()
}
