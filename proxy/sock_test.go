package proxy

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

func TestAcceptorAndDialTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := newAcceptor(l.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(l.Addr().String())
	dialed := make(chan net.Conn, 1)
	go func() {
		c, err := dialTCP(context.Background(), ap, 2*time.Second)
		if err != nil {
			t.Error(err)
		}
		dialed <- c
	}()
	c, err := a.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d := <-dialed
	if d == nil {
		t.FailNow()
	}
	defer d.Close()
	_ = syscall.EINVAL
}
