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

	"github.com/go-mysql-org/go-mysql/mysql"
)

// rawIO is an io.ReadWriter over a TCP or unix socket. Not safe for
// concurrent use: one session goroutine reads and writes it.
type rawIO struct {
	rc   syscall.RawConn
	conn net.Conn // whose socket rc is

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

	// writeBehind (set on node connections, setWriteBehind): a small
	// write is kept in pending, from writeBehindBufs, and made by the
	// next call; by a Read, inside its wait for the answer.
	writeBehind bool
	pending     []byte
	pendingBuf  *[writeBehindMax]byte
}

// rawIO operations.
const (
	opRead byte = iota
	opWrite
	opPeek
	opWriteRead // write pending, then wait for the answer and read it
	opReadFirst
	opSendLast // send and shut down, never waiting (sendLast)
)

func (r *rawIO) do(fd uintptr) bool {
	switch r.op {
	case opRead:
		return r.readOnce(fd)
	case opWrite:
		return r.writeOnce(fd)
	case opWriteRead:
		return r.writePendingOnce(fd)
	case opReadFirst:
		return r.readFirstOnce(fd)
	case opSendLast:
		r.sendLastOnce(fd)
		return true
	}
	return r.peekOnce(fd)
}

// Write-behind. A read that finds nothing costs a read(2) that fails with
// EAGAIN before the wait on the poller: after a command goes to the node,
// the node's answer is never there yet, so every command cost one such
// call (HAProxy reads only when epoll says there is something). The
// runtime's poller forgets readiness at the start of each wait (a Read
// must try first, or it could wait for data that came already), so the
// write itself moves into the Read: its wait starts, the command goes out,
// and what the node answers can only come after that, so the first thing
// the Read does after the write is wait. Bytes the node sent unasked
// before the command (it does that only as it closes the connection) are
// not lost: the command then meets a closed socket, whose reset wakes the
// wait.
//
// Only small writes wait for a Read (writeBehindMax): what fits at once
// into an empty socket buffer; and not a command the node does not answer
// (noAnswer), which no Read follows. Any other call on the connection (a Write
// that does not fit, a peek, a close) makes the pending write first, in
// order.
const writeBehindMax = 4096

var writeBehindBufs = sync.Pool{New: func() any { return new([writeBehindMax]byte) }}

// setWriteBehind turns write-behind on or off for rw when it is a rawIO.
// Turned off, what is pending still goes out with the next call.
func setWriteBehind(rw io.ReadWriter, on bool) {
	if r, ok := rw.(*rawIO); ok {
		r.writeBehind = on
	}
}

// noAnswer reports whether p starts with a command the node does not
// answer (COM_QUIT, COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE): no Read
// follows it, so it is written at once.
func noAnswer(p []byte) bool {
	if len(p) < headerLen+1 || p[headerLen-1] != 0 { // a command has sequence id 0
		return false
	}
	switch p[headerLen] {
	case mysql.COM_QUIT, mysql.COM_STMT_SEND_LONG_DATA, mysql.COM_STMT_CLOSE:
		return true
	}
	return false
}

// writePendingOnce writes pending inside a Read. When all of it is
// written, the Read goes on to wait for the answer (false). When the
// socket takes only part of it, or fails, the Read stops (true) and
// finishes the write in the ordinary way.
func (r *rawIO) writePendingOnce(fd uintptr) bool {
	for len(r.pending) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.pending[0])), uintptr(len(r.pending)))
		switch e {
		case 0:
			r.pending = r.pending[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return true
		default:
			r.errno = e
			return true
		}
	}
	r.releasePending()
	r.op = opRead
	return false
}

func (r *rawIO) releasePending() {
	r.pending = nil
	if r.pendingBuf != nil {
		writeBehindBufs.Put(r.pendingBuf)
		r.pendingBuf = nil
	}
}

// flushPending makes the pending write, waiting for room as needed.
func (r *rawIO) flushPending() error {
	p := r.pending
	r.pending = nil
	_, err := r.write(p)
	r.releasePending()
	return err
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
	case *net.TCPConn, *net.UnixConn, *sockConn:
	default:
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawIO{rc: rc, conn: c}
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

// Read reads what is there, waiting until something is. A pending write
// is made first (write-behind).
func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	op := opRead
	if len(r.pending) > 0 {
		op = opWriteRead
	}
	r.op, r.buf, r.n, r.errno = op, p, 0, 0
	err := r.rc.Read(r.f)
	r.buf = nil
	if r.op == opWriteRead { // the pending write did not finish
		switch {
		case err == nil && r.errno == 0:
			if err := r.flushPending(); err != nil {
				return 0, err
			}
			return r.Read(p)
		case err == nil:
			err = r.errno
		}
		r.releasePending()
		return 0, err
	}
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

// Write writes all of p, waiting for room as needed; with write-behind, a
// small p waits for the next call instead.
func (r *rawIO) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.writeBehind && len(r.pending)+len(p) <= writeBehindMax && !noAnswer(p) {
		if r.pendingBuf == nil {
			r.pendingBuf = writeBehindBufs.Get().(*[writeBehindMax]byte)
			r.pending = r.pendingBuf[:0]
		}
		r.pending = append(r.pending, p...)
		return len(p), nil
	}
	if len(r.pending) > 0 {
		if err := r.flushPending(); err != nil {
			return 0, err
		}
	}
	return r.write(p)
}

// write writes all of p, waiting for room as needed.
func (r *rawIO) write(p []byte) (int, error) {
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

// tryWrite writes what of p the socket takes at once, without waiting
// (nor a deadline), and reports how much and whether that was all of it.
func (r *rawIO) tryWrite(p []byte) (int, bool) {
	if len(r.pending) > 0 {
		r.errno = 0
		return 0, false
	}
	r.op, r.buf, r.n, r.errno = opWrite, p, 0, 0
	done := false
	err := r.rc.Control(func(fd uintptr) { done = r.writeOnce(fd) })
	r.buf = nil
	return r.n, err == nil && done && r.errno == 0 && r.n == len(p)
}

// idleAndOpen peeks, without blocking or consuming anything, whether the
// peer closed the connection or sent something unasked (a node's "connection
// killed" error) while it was idle.
func (r *rawIO) idleAndOpen() bool {
	if len(r.pending) > 0 {
		return true // not idle: the command goes out with the next call
	}
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
//
// A *sockConn (sock.go) under rw then has its descriptor closed with the
// next batch (closer) rather than at once.
func closeConn(c net.Conn, rw io.ReadWriter) error {
	if r, ok := rw.(*rawIO); ok {
		_ = r.rc.Control(shutdownFD)
		if sc, ok := c.(*sockConn); ok && r.conn == c {
			sc.closeLater()
			return nil
		}
	}
	return c.Close()
}

// sendLast writes p, the last bytes for the peer, and shuts the socket
// down, with p and the FIN in one segment: send(2) with MSG_MORE holds p
// back (corked), and shutdown(2) then sets the FIN on that unsent segment
// and sends it (Linux's tcp_send_fin). The peer is woken once, not once
// for p and again for the FIN. It reports whether it did so; when not
// (something pending, or p did not go out whole at once), the caller
// writes the rest and closes in the ordinary way, with nothing shut down.
func (r *rawIO) sendLast(p []byte) (n int, done bool) {
	r.errno = 0
	if len(r.pending) > 0 || len(p) == 0 {
		return 0, false
	}
	r.op, r.buf, r.n, r.open = opSendLast, p, 0, false
	_ = r.rc.Write(r.f) // never waits: the callback is done at once
	r.buf = nil
	return r.n, r.open
}

// sendLastOnce is sendLast's system calls; r.open reports that p went
// out whole with the FIN.
func (r *rawIO) sendLastOnce(fd uintptr) {
	w, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)),
		syscall.MSG_MORE|syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
	switch e {
	case 0:
	case syscall.EAGAIN, syscall.EINTR:
		return // no room now: the caller writes it with a deadline
	default:
		r.errno = e
		return
	}
	r.n = int(w)
	if r.n == len(r.buf) {
		shutdownFD(fd)
		r.open = true
	}
}

// closeShut closes c, whose reads and writes went through r and whose
// FIN went out already (sendLast): a *sockConn's descriptor with the next
// batch (closer).
func closeShut(c net.Conn, r *rawIO) error {
	if sc, ok := c.(*sockConn); ok && r.conn == c {
		sc.closeLater()
		return nil
	}
	return c.Close()
}

func shutdownFD(fd uintptr) {
	_, _, _ = syscall.RawSyscall(syscall.SYS_SHUTDOWN, fd, syscall.SHUT_RDWR, 0)
}
