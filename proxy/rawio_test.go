package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	return connPair(t, "tcp", "127.0.0.1:0")
}

// connPair returns both ends of a connection to a listener on network and
// address.
func connPair(t testing.TB, network, address string) (a, b net.Conn) {
	t.Helper()
	l, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	a, err = net.Dial(network, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-accepted
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestRawIOLargeWriteWaitsForRoom(t *testing.T) {
	a, b := tcpPair(t)
	w := newConnIO(a)
	if _, ok := w.(*rawIO); !ok {
		t.Fatalf("newConnIO(TCP) = %T, want *rawIO", w)
	}
	// 32 MiB is far more than the socket buffers: the write must wait
	// (EAGAIN, poller) while a slow reader drains, and lose nothing.
	want := bytes.Repeat([]byte("0123456789abcdef"), 2<<20)
	got := make(chan []byte, 1)
	go func() {
		r := newConnIO(b)
		var buf bytes.Buffer
		chunk := make([]byte, 7000)
		for buf.Len() < len(want) {
			n, err := r.Read(chunk)
			if err != nil {
				break
			}
			buf.Write(chunk[:n])
			if buf.Len()%(1<<20) < 7000 {
				time.Sleep(time.Millisecond)
			}
		}
		got <- buf.Bytes()
	}()
	if n, err := w.Write(want); err != nil || n != len(want) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if g := <-got; !bytes.Equal(g, want) {
		t.Fatalf("read %d bytes, not the %d written", len(g), len(want))
	}
}

func TestRawIOEOFAndDeadline(t *testing.T) {
	a, b := tcpPair(t)
	r := newConnIO(a)
	_ = a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	_ = a.SetReadDeadline(time.Time{})
	b.Close()
	if _, err := r.Read(make([]byte, 10)); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want io.EOF", err)
	}
	a.Close()
	if _, err := newConnIO(b).Write([]byte("x")); err == nil {
		t.Fatal("write on a closed connection succeeded")
	}
}

func TestRawIOAllocatesNothing(t *testing.T) {
	a, b := tcpPair(t)
	w, r := newConnIO(a), newConnIO(b)
	msg, buf := []byte("ping"), make([]byte, 16)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := w.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per write and read, want 0", allocs)
	}
}

func TestRawIOIdleAndOpen(t *testing.T) {
	a, b := tcpPair(t)
	r := newConnIO(a).(*rawIO)
	if !r.idleAndOpen() {
		t.Fatal("an idle, open connection reads as closed")
	}
	if _, err := b.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "unasked data to read as not idle", func() bool { return !r.idleAndOpen() })
	buf := make([]byte, 1)
	if n, err := r.Read(buf); n != 1 || err != nil {
		t.Fatalf("peek consumed the byte: %d, %v", n, err)
	}
	b.Close()
	waitFor(t, 5*time.Second, "a connection the peer closed to read as closed", func() bool { return !r.idleAndOpen() })
}

func TestRawIOPeerReset(t *testing.T) {
	a, b := tcpPair(t)
	_ = b.(*net.TCPConn).SetLinger(0) // close with RST
	b.Close()
	_ = a.SetReadDeadline(time.Now().Add(5 * time.Second)) // the read waits for the RST
	rw := newConnIO(a)
	if _, err := rw.Read(make([]byte, 4)); err == nil {
		t.Fatal("read from a reset connection succeeded")
	}
	var err error
	for range 3 { // the first write may still be accepted by the kernel
		if _, err = rw.Write([]byte("ping")); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("writes to a reset connection kept succeeding")
	}
}

// With write-behind a small write goes out with the next Read, which then
// returns the answer; a large one goes at once, after what is pending.
func TestRawIOWriteBehind(t *testing.T) {
	a, b := tcpPair(t)
	r := newConnIO(a).(*rawIO)
	setWriteBehind(r, true)
	if n, err := r.Write([]byte("ping")); n != 4 || err != nil {
		t.Fatalf("Write: %d, %v", n, err)
	}
	buf := make([]byte, 64)
	_ = b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := b.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("peer read %q, %v before the Read: want nothing yet", buf[:n], err)
	}
	_ = b.SetReadDeadline(time.Time{})
	go func() {
		got := make([]byte, 4)
		if _, err := io.ReadFull(b, got); err == nil {
			_, _ = b.Write(append([]byte("pong:"), got...))
		}
	}()
	_ = a.SetDeadline(time.Now().Add(10 * time.Second))
	n, err := io.ReadAtLeast(r, buf, 9)
	if err != nil || string(buf[:n]) != "pong:ping" {
		t.Fatalf("Read after a pending write: %q, %v", buf[:n], err)
	}
	if r.pending != nil || r.pendingBuf != nil {
		t.Fatal("pending write kept after the Read")
	}
	// A small write, then one too large to wait: both arrive, in order.
	big := bytes.Repeat([]byte("x"), writeBehindMax+1)
	if _, err := r.Write([]byte("head")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(big); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4+len(big))
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil || string(got[:4]) != "head" || !bytes.Equal(got[4:], big) {
		t.Fatalf("peer read %d bytes, %v: want head then the large write", len(got), err)
	}
}

// A peer that answered and closed before the command went out: the Read
// after the pending write returns what it sent, or the reset, and does not
// wait for more.
func TestRawIOWriteBehindPeerGone(t *testing.T) {
	a, b := tcpPair(t)
	r := newConnIO(a).(*rawIO)
	setWriteBehind(r, true)
	if _, err := b.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	// Wait until the bytes and the FIN are here (readiness consumed
	// before the Read starts).
	waitPeerSent(t, r, "peer's bytes")
	if _, err := r.Write([]byte("cmd")); err != nil {
		t.Fatal(err)
	}
	_ = a.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	n, err := r.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("Read waited for its deadline (%v): it must see the bytes or the reset", err)
	}
	if err == nil && string(buf[:n]) != "bye" {
		t.Fatalf("Read: %q, want the peer's \"bye\"", buf[:n])
	}
}

// waitPeerSent waits, up to 10 s, until what the peer of r sent (bytes, a
// FIN, a reset) has arrived at r's socket.
func waitPeerSent(t *testing.T, r *rawIO, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.idleAndOpen() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not arrive", what)
		}
		time.Sleep(time.Millisecond)
	}
}
