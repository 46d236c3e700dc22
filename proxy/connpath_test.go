package proxy

import (
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// segsOut is how many segments c's socket has sent (tcp_info).
func segsOut(t *testing.T, r *rawIO) uint32 {
	t.Helper()
	var n uint32
	var gerr error
	if err := r.rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			gerr = err
			return
		}
		n = info.Segs_out
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return n
}

// sendLast sends the node's COM_QUIT and the FIN in one segment; the peer
// reads the COM_QUIT, then the end of the stream.
func TestSendLastOneSegment(t *testing.T) {
	a, b := tcpPair(t)
	r := newConnIO(a).(*rawIO)
	before := segsOut(t, r)
	n, done := r.sendLast(comQuit[:])
	if !done || n != len(comQuit) {
		t.Fatalf("sendLast: %d bytes, done %v (errno %v)", n, done, r.errno)
	}
	if got := segsOut(t, r) - before; got != 1 {
		t.Fatalf("COM_QUIT and FIN took %d segments, want 1", got)
	}
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(b)
	if err != nil || string(got) != string(comQuit[:]) {
		t.Fatalf("peer read %v, %v: want the COM_QUIT, then EOF", got, err)
	}
}

// With something pending (write-behind), sendLast does nothing: the
// caller writes in order.
func TestSendLastPending(t *testing.T) {
	a, _ := tcpPair(t)
	r := newConnIO(a).(*rawIO)
	setWriteBehind(r, true)
	if _, err := r.Write([]byte("cmd")); err != nil {
		t.Fatal(err)
	}
	if n, done := r.sendLast(comQuit[:]); done || n != 0 {
		t.Fatalf("sendLast with a pending write: %d, %v", n, done)
	}
	r.releasePending()
}

// sendLast on a connection the peer reset reports the error, without
// shutting anything down.
func TestSendLastReset(t *testing.T) {
	a, b := tcpPair(t)
	r := newConnIO(a).(*rawIO)
	_ = b.(interface{ SetLinger(int) error }).SetLinger(0)
	b.Close()
	waitPeerSent(t, r, "the reset")
	if _, done := r.sendLast(comQuit[:]); done || r.errno == 0 {
		t.Fatalf("sendLast on a reset connection: done %v, errno %v", done, r.errno)
	}
}
