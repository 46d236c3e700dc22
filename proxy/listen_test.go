package proxy

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// An accepted client socket has the keepalive and TCP_NODELAY settings
// although ListenTCP set keepalive only on the listening socket.
func TestListenTCPAcceptedSocketsKeepAlive(t *testing.T) {
	l, err := ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dialed := make(chan error, 1)
	go func() {
		c, err := net.DialTimeout("tcp", l.Addr().String(), 10*time.Second)
		if err == nil {
			defer c.Close()
			_, _ = c.Read(make([]byte, 1)) // until the test closes its end
		}
		dialed <- err
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name       string
		level, opt int
		v          int
	}{
		{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, keepAliveIdle},
		{"TCP_KEEPINTVL", syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, keepAliveInterval},
		{"TCP_KEEPCNT", syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAliveCount},
		{"TCP_NODELAY", syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
	}
	if err := rc.Control(func(fd uintptr) {
		for _, w := range want {
			v, err := syscall.GetsockoptInt(int(fd), w.level, w.opt)
			if err != nil || v != w.v {
				t.Errorf("accepted socket %s = %d (%v), want %d", w.name, v, err, w.v)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-dialed; err != nil {
		t.Fatal(err)
	}
	if _, err := ListenTCP("127.0.0.1:99999"); err == nil {
		t.Fatal("port 99999: no error")
	}
}
