package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

// sockPair returns a connection dialed with dialTCP and the one an acceptor
// accepted for it.
func sockPair(t *testing.T) (dialed, accepted net.Conn, a *acceptor) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, err = newAcceptor(l.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := dialTCP(context.Background(), netip.MustParseAddrPort(l.Addr().String()), 5*time.Second)
		done <- result{c, err}
	}()
	accepted, err = a.Accept()
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { accepted.Close(); r.c.Close() })
	return r.c, accepted, a
}

func sockoptInt(t *testing.T, c net.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// Both ends have the options net.Dial and net.Listen give a connection:
// the accepted one inherits them from the listening socket.
func TestSockOptions(t *testing.T) {
	dialed, accepted, _ := sockPair(t)
	for name, c := range map[string]net.Conn{"dialed": dialed, "accepted": accepted} {
		if _, ok := c.(*sockConn); !ok {
			t.Fatalf("%s: %T, want *sockConn", name, c)
		}
		for _, o := range []struct {
			name       string
			level, opt int
			want       int
		}{
			{"TCP_NODELAY", syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
			{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
			{"TCP_KEEPIDLE", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, keepAliveIdle},
			{"TCP_KEEPINTVL", syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, keepAliveInterval},
			{"TCP_KEEPCNT", syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAliveCount},
		} {
			if got := sockoptInt(t, c, o.level, o.opt); got != o.want {
				t.Errorf("%s: %s = %d, want %d", name, o.name, got, o.want)
			}
		}
	}
	if dialed.RemoteAddr().String() != accepted.LocalAddr().String() || accepted.RemoteAddr().String() != dialed.LocalAddr().String() {
		t.Errorf("addresses: dialed %v -> %v, accepted %v -> %v", dialed.LocalAddr(), dialed.RemoteAddr(), accepted.LocalAddr(), accepted.RemoteAddr())
	}
}

// Reads, writes, deadlines and closing give net.Conn's results and errors.
func TestSockConnErrors(t *testing.T) {
	dialed, accepted, _ := sockPair(t)
	if _, err := dialed.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(accepted, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	_ = accepted.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := accepted.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v, want a net.Error timeout", err)
	}
	_ = accepted.SetReadDeadline(time.Time{})
	r := newConnIO(accepted)
	if _, ok := r.(*rawIO); !ok {
		t.Fatalf("newConnIO(sockConn) = %T, want *rawIO", r)
	}
	_ = accepted.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.Read(buf); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("raw read past its deadline: %v, want a net.Error timeout", err)
	}
	_ = accepted.SetReadDeadline(time.Time{})
	if err := dialed.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := accepted.Read(buf); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want io.EOF", err)
	}
	if _, err := dialed.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v, want net.ErrClosed", err)
	}
	if err := dialed.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
}

// A refused connect reports ECONNREFUSED as net.Dial does.
func TestDialTCPRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(l.Addr().String())
	l.Close()
	_, err = dialTCP(context.Background(), addr, 5*time.Second)
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port: %v, want a dial *net.OpError with ECONNREFUSED", err)
	}
}

// closeConn sends the FIN at once and closes the descriptor within the
// batch delay.
func TestCloseConnBatched(t *testing.T) {
	dialed, accepted, _ := sockPair(t)
	sc := accepted.(*sockConn)
	closeConn(accepted, newConnIO(accepted))
	_ = dialed.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := dialed.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read after closeConn: %v, want io.EOF", err)
	}
	rc, err := sc.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rc.Control(func(uintptr) {}) == nil {
		if time.Now().After(deadline) {
			t.Fatal("descriptor still open 10s after closeConn")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := accepted.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Close after closeConn: %v, want net.ErrClosed", err)
	}
}

// An acceptor whose listener its owner closed stops accepting.
func TestAcceptorListenerClosed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAcceptor(l.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.Accept()
		done <- err
	}()
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after the listener closed: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still waiting 10s after its listener closed")
	}
}
