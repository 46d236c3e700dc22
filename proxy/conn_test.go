package proxy

// The command/response state machine against a scripted node, without
// MariaDB: what the integration tests cannot force (packets the node
// should never send) and the cost of a whole command.

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// scriptedSession is a session whose client and node ends are loopback
// sockets the test drives.
type scriptedSession struct {
	s      *session
	client net.Conn // the test's client end
	node   net.Conn // the test's node end
	done   chan error
}

func startScripted(t testing.TB, caps uint32) *scriptedSession {
	t.Helper()
	return startScriptedWith(t, caps, Config{})
}

// startScriptedWith is startScripted with cfg for the proxy.
func startScriptedWith(t testing.TB, caps uint32, cfg Config) *scriptedSession {
	t.Helper()
	p, err := New(cfg, []*Node{{Name: "fake", Address: "127.0.0.1:1"}}, "fake")
	if err != nil {
		t.Fatal(err)
	}
	return startScriptedOn(t, p, caps)
}

// startScriptedOn starts a scripted session of p, logged in to p's active
// node as the test's node end.
func startScriptedOn(t testing.TB, p *Proxy, caps uint32) *scriptedSession {
	t.Helper()
	cTest, cProxy := tcpPair(t)
	nProxy, nTest := tcpPair(t)
	s := &session{p: p, client: cProxy, caps: caps, route: p.route.Load()}
	s.be = &backend{node: p.Active(), conn: nProxy, rw: newConnIO(nProxy), caps: caps}
	s.cio = newConnIO(cProxy)
	s.crd = &clientReader{conn: cProxy, r: s.cio, timeout: p.cfg.NetReadTimeout}
	s.cwr = &clientWriter{conn: cProxy, w: s.cio, timeout: p.cfg.NetWriteTimeout}
	s.cr = bufio.NewReaderSize(s.crd, clientBufSize)
	s.facts.reset("", 45)
	s.lastCmd = time.Now()
	ss := &scriptedSession{s: s, client: cTest, node: nTest, done: make(chan error, 1)}
	go func() { ss.done <- s.commandLoop() }()
	return ss
}

func packet(seq byte, payload []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(payload))
	putHeader(b, len(payload), seq)
	return append(b, payload...)
}

func TestCommandCostsNoAllocation(t *testing.T) {
	ss := startScripted(t, mysql.CLIENT_PROTOCOL_41)
	query := packet(0, append([]byte{mysql.COM_QUERY}, "UPDATE t SET v = v + 1 WHERE id = 7"...))
	ok := packet(1, appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0))
	qbuf, obuf := make([]byte, len(query)), make([]byte, len(ok))
	roundTrip := func() {
		if _, err := ss.client.Write(query); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(ss.node, qbuf); err != nil {
			t.Fatal(err)
		}
		if _, err := ss.node.Write(ok); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(ss.client, obuf); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip() // fill the relay pool
	if !bytes.Equal(qbuf, query) || !bytes.Equal(obuf, ok) {
		t.Fatalf("relayed %x / %x", qbuf, obuf)
	}
	if allocs := testing.AllocsPerRun(200, roundTrip); allocs != 0 && !raceEnabled {
		t.Fatalf("%.1f allocations per command (client, proxy and fake node together), want 0", allocs)
	}
}

func TestNodeOutOfStepClosesSession(t *testing.T) {
	ss := startScripted(t, mysql.CLIENT_PROTOCOL_41)
	if _, err := ss.client.Write(packet(0, []byte{mysql.COM_PING})); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(ss.node, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	// The OK, and in the same write a packet nobody asked for.
	reply := append(packet(1, appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0)), packet(2, []byte{0xff, 1, 2})...)
	if _, err := ss.node.Write(reply); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ss.done:
	case <-time.After(5 * time.Second):
		t.Fatal("a node out of step did not end the session")
	}
}

func TestNodeFailureBeforeAnyByteGivesOneError(t *testing.T) {
	ss := startScripted(t, mysql.CLIENT_PROTOCOL_41)
	if _, err := ss.client.Write(packet(0, append([]byte{mysql.COM_QUERY}, "SELECT 1"...))); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(ss.node, make([]byte, 13)); err != nil {
		t.Fatal(err)
	}
	ss.node.Close() // the node dies before answering
	p, _, err := readPacket(ss.client, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := parseErr(p); !ok || e.Code != erInterrupted {
		t.Fatalf("answer: %q, want one error %d", p, erInterrupted)
	}
}

func TestNodeFailureMidResultClosesClient(t *testing.T) {
	ss := startScripted(t, mysql.CLIENT_PROTOCOL_41)
	if _, err := ss.client.Write(packet(0, append([]byte{mysql.COM_QUERY}, "SELECT 1"...))); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(ss.node, make([]byte, 13)); err != nil {
		t.Fatal(err)
	}
	// A column count, then the node dies: part of a result was sent, so
	// the client connection must be closed rather than patched.
	if _, err := ss.node.Write(packet(1, []byte{1})); err != nil {
		t.Fatal(err)
	}
	ss.node.Close()
	select {
	case err := <-ss.done:
		if err == nil {
			t.Fatal("session ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session still open after its node died mid-result")
	}
}

// A session that sees its node fail, before any byte of the answer or in
// the middle of it, tells the NodeFailed hook (the failover monitor then
// checks that node at once).
func TestNodeFailureCallsNodeFailed(t *testing.T) {
	for _, partial := range []bool{false, true} {
		failed := make(chan string, 4)
		ss := startScriptedWith(t, mysql.CLIENT_PROTOCOL_41, Config{NodeFailed: func(n string) { failed <- n }})
		if _, err := ss.client.Write(packet(0, append([]byte{mysql.COM_QUERY}, "SELECT 1"...))); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(ss.node, make([]byte, 13)); err != nil {
			t.Fatal(err)
		}
		if partial {
			if _, err := ss.node.Write(packet(1, []byte{1})); err != nil {
				t.Fatal(err)
			}
		}
		ss.node.Close()
		select {
		case n := <-failed:
			if n != "fake" {
				t.Fatalf("NodeFailed(%q); want the session's node", n)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("partial=%v: NodeFailed was not called after the node died", partial)
		}
	}
}

// BenchmarkCommandRoundTrip is one small command and its OK through a
// session, client and node ends included.
func BenchmarkCommandRoundTrip(b *testing.B) {
	ss := startScripted(b, mysql.CLIENT_PROTOCOL_41)
	query := packet(0, append([]byte{mysql.COM_QUERY}, "UPDATE t SET v = v + 1 WHERE id = 7"...))
	ok := packet(1, appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0))
	qbuf, obuf := make([]byte, len(query)), make([]byte, len(ok))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ss.client.Write(query); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(ss.node, qbuf); err != nil {
			b.Fatal(err)
		}
		if _, err := ss.node.Write(ok); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(ss.client, obuf); err != nil {
			b.Fatal(err)
		}
	}
}
