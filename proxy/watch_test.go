package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// unixPair returns both ends of a unix socket connection.
func unixPair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	return connPair(t, "unix", filepath.Join(t.TempDir(), "s"))
}

// waitLeft waits until clientLeft reports want, and fails if it ever
// reports the other answer after a moment of settling (a FIN or a reset
// takes a moment to arrive).
func waitLeft(t *testing.T, s *session, want bool) {
	t.Helper()
	if want {
		waitFor(t, 10*time.Second, "the client to count as gone", s.clientLeft)
		return
	}
	for range 20 {
		if s.clientLeft() {
			t.Fatal("a client still there counts as gone")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClientLeft: the watcher's check of a client socket, on TCP and unix
// sockets, plain and as under TLS (client is not raw), without reading
// anything.
func TestClientLeft(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		pair := tcpPair
		if network == "unix" {
			pair = unixPair
		}
		t.Run(network+"/idle, then closed", func(t *testing.T) {
			c, p := pair(t)
			s := &session{raw: p, client: p}
			waitLeft(t, s, false)
			c.Close()
			waitLeft(t, s, true)
		})
		t.Run(network+"/data waiting, then closed", func(t *testing.T) {
			// Pipelining: the next command waits unread. As MariaDB
			// (vio_is_connected), data waiting means still there, even
			// behind a FIN.
			c, p := pair(t)
			s := &session{raw: p, client: p}
			if _, err := c.Write([]byte{1, 0, 0, 0, mysql.COM_PING}); err != nil {
				t.Fatal(err)
			}
			waitLeft(t, s, false)
			c.Close()
			waitLeft(t, s, false)
			// Nothing was consumed.
			b := make([]byte, 5)
			if _, err := io.ReadFull(p, b); err != nil || b[4] != mysql.COM_PING {
				t.Fatalf("read %x, %v after the checks", b, err)
			}
			waitLeft(t, s, true)
		})
	}
	t.Run("tcp/reset", func(t *testing.T) {
		c, p := tcpPair(t)
		s := &session{raw: p, client: p}
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
		waitLeft(t, s, true)
	})
	t.Run("tls/data waiting, then FIN", func(t *testing.T) {
		// Under TLS the bytes waiting may be the close_notify alert:
		// the FIN says the client left.
		c, p := tcpPair(t)
		s := &session{raw: p, client: tls.Server(p, &tls.Config{})}
		if _, err := c.Write([]byte{0x15, 3, 3, 0, 2, 1, 0}); err != nil {
			t.Fatal(err)
		}
		waitLeft(t, s, false)
		c.Close()
		waitLeft(t, s, true)
	})
}

// TestWatcherClosesOnlyLongCommandsOfClientsThatLeft: the watcher looks at
// sessions whose command has run for longer than watchAfter, and closes
// those whose client left; an idle session, or a running one whose client
// is there, is left alone.
func TestWatcherClosesOnlyLongCommandsOfClientsThatLeft(t *testing.T) {
	p, err := New(Config{}, []*Node{{Name: "fake", Address: "127.0.0.1:1"}}, "fake")
	if err != nil {
		t.Fatal(err)
	}
	type victim struct {
		s          *session
		client     net.Conn
		node       net.Conn
		busy, left bool
	}
	var vs []victim
	for i, v := range []struct{ busy, left bool }{{true, true}, {true, false}, {false, true}} {
		cTest, cProxy := tcpPair(t)
		nProxy, nTest := tcpPair(t)
		s := &session{p: p, id: uint32(i + 1), raw: cProxy, client: cProxy}
		s.be = &backend{node: p.nodes[0], conn: nProxy, rw: newConnIO(nProxy)}
		s.cr = bufio.NewReader(cProxy)
		if v.busy {
			s.cmdStart.Store(time.Now().Add(-time.Minute).UnixNano())
		}
		if v.left {
			cTest.Close()
		}
		p.mu.Lock()
		p.sessions[s.id] = s
		p.mu.Unlock()
		vs = append(vs, victim{s, cTest, nTest, v.busy, v.left})
	}
	go p.watchClients()
	defer close(p.closed)
	// The one that ran long and whose client left: its node connection
	// closes (the node sees EOF).
	_ = vs[0].node.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := vs[0].node.Read(make([]byte, 1)); err == nil {
		t.Fatalf("node end of the session whose client left read %d bytes", n)
	}
	// The others stay open through a few more rounds of the watcher.
	deadline := time.Now().Add(4 * watchInterval)
	for _, v := range vs[1:] {
		_ = v.node.SetReadDeadline(deadline)
		var ne net.Error
		if _, err := v.node.Read(make([]byte, 1)); err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("busy=%v left=%v: node connection ended: %v", v.busy, v.left, err)
		}
		if v.s.closed.Load() {
			t.Fatalf("busy=%v left=%v: session closed", v.busy, v.left)
		}
	}
}
