package proxy

// Reads and writes on the relay path without the Go runtime's syscall
// bookkeeping. net.Conn's Read and Write enter the scheduler's syscall
// state for every call; a write that wakes the peer can take long enough
// on a busy machine that the runtime's monitor thread hands the
// processor to another thread meanwhile, and the two threads then wake
// each other for every packet. The sockets are non-blocking, so a plain
// read(2) or write(2) never blocks: rawIO makes them with RawSyscall
// inside syscall.RawConn's Read and Write, which still wait on the
// runtime's poller (and honour deadlines) when the socket is not ready.

import (
	"io"
	"net"
	"sync"
	"syscall"
	"unsafe"
)

// rawIO is an io.ReadWriter over a TCP or unix socket. Not safe for
// concurrent use: one session goroutine reads and writes it.
type rawIO struct {
	rc syscall.RawConn

	// The in-flight call's operation, arguments and results, and the one
	// callback bound once (it dispatches on op), so that a call allocates
	// nothing.
	op      byte
	buf     []byte
	n       int
	errno   syscall.Errno
	f       func(uintptr) bool
	open    bool
	peekBuf [1]byte
}

// rawIO operations.
const (
	opRead byte = iota
	opWrite
	opPeek
	opReadFirst
)

func (r *rawIO) do(fd uintptr) bool {
	switch r.op {
	case opRead:
		return r.readOnce(fd)
	case opWrite:
		return r.writeOnce(fd)
	case opReadFirst:
		return r.readFirstOnce(fd)
	}
	return r.peekOnce(fd)
}

// newConnIO returns the fastest reader/writer for c: a rawIO for plain TCP
// and unix sockets, c itself otherwise (TLS).
func newConnIO(c net.Conn) io.ReadWriter {
	sc, ok := c.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return c
	}
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawIO{rc: rc}
	r.f = r.do
	return r
}

func (r *rawIO) readOnce(fd uintptr) bool {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)))
	if e == syscall.EAGAIN {
		return false // wait until readable
	}
	if e == syscall.EINTR {
		return r.readOnce(fd)
	}
	r.n, r.errno = int(n), e
	return true
}

// Read reads what is there, waiting until something is.
func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.op, r.buf, r.n, r.errno = opRead, p, 0, 0
	err := r.rc.Read(r.f)
	r.buf = nil
	switch {
	case err != nil:
		return 0, err
	case r.errno != 0:
		return 0, r.errno
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

// firstBufs holds the arrays idle sessions read the start of their next
// command into (clientReader.waitFirst).
var firstBufs = sync.Pool{New: func() any { return new([firstReadSize]byte) }}

// readFirst waits until something can be read, then reads it into an array
// from firstBufs, taken only once there is something to read: while it
// waits it holds no buffer. n > 0 comes with a nil error; otherwise the
// array is nil.
func (r *rawIO) readFirst() (a *[firstReadSize]byte, n int, err error) {
	r.op, r.buf, r.n, r.errno = opReadFirst, nil, 0, 0
	err = r.rc.Read(r.f)
	if r.buf != nil {
		a = (*[firstReadSize]byte)(r.buf)
		r.buf = nil
	}
	switch {
	case err == nil && r.errno == 0 && r.n > 0:
		return a, r.n, nil
	case err == nil && r.errno != 0:
		err = r.errno
	case err == nil:
		err = io.EOF
	}
	if a != nil {
		firstBufs.Put(a)
	}
	return nil, 0, err
}

func (r *rawIO) readFirstOnce(fd uintptr) bool {
	a := firstBufs.Get().(*[firstReadSize]byte)
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&a[0])), firstReadSize)
	if e == syscall.EAGAIN || e == syscall.EINTR {
		firstBufs.Put(a) // not held while waiting
		if e == syscall.EINTR {
			return r.readFirstOnce(fd)
		}
		return false // wait until readable
	}
	r.buf, r.n, r.errno = a[:], int(n), e
	return true
}

func (r *rawIO) writeOnce(fd uintptr) bool {
	for len(r.buf) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)))
		switch e {
		case 0:
			r.n += int(n)
			r.buf = r.buf[n:]
		case syscall.EAGAIN:
			return false // wait until writable
		case syscall.EINTR:
		default:
			r.errno = e
			return true
		}
	}
	return true
}

// Write writes all of p, waiting for room as needed.
func (r *rawIO) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.op, r.buf, r.n, r.errno = opWrite, p, 0, 0
	err := r.rc.Write(r.f)
	r.buf = nil
	switch {
	case err != nil:
		return r.n, err
	case r.errno != 0:
		return r.n, r.errno
	}
	return r.n, nil
}

// idleAndOpen peeks, without blocking or consuming anything, whether the
// peer closed the connection or sent something unasked (a node's "connection
// killed" error) while it was idle.
func (r *rawIO) idleAndOpen() bool {
	r.op, r.open = opPeek, true
	_ = r.rc.Read(r.f)
	return r.open
}

func (r *rawIO) peekOnce(fd uintptr) bool {
	_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.peekBuf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	// Nothing to read and no error: idle and open. Data, EOF (0 bytes)
	// or an error: the node closed it or is out of step.
	r.open = e == syscall.EAGAIN
	return true
}

// closeConn closes c, whose reads and writes went through rw, at the
// normal end of a session. When rw is a rawIO it first sends the FIN with a
// plain shutdown(2) (a raw system call, like rawIO's): on loopback the
// kernel runs the peer's side of it inside the call, and a blocking system
// call that long makes the runtime hand the processor to another thread.
// What close(2) has left to do is then short.
func closeConn(c net.Conn, rw io.ReadWriter) error {
	if r, ok := rw.(*rawIO); ok {
		_ = r.rc.Control(shutdownFD)
	}
	return c.Close()
}

func shutdownFD(fd uintptr) {
	_, _, _ = syscall.RawSyscall(syscall.SYS_SHUTDOWN, fd, syscall.SHUT_RDWR, 0)
}
