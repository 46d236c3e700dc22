package proxy

// Byte-level checks of the sequence ids on tandem's own ERR packets after
// commands that take several client packets: a client matches each
// response's sequence id with the one it expects and drops the connection
// on a mismatch.

import (
	"bufio"
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// bigCommand is a command payload of maxPayload+extra bytes (two chunks).
func bigCommand(cmd byte, extra int) []byte {
	b := bytes.Repeat([]byte{'x'}, maxPayload+extra)
	b[0] = cmd
	copy(b[1:], "SELECT '")
	return b
}

// framed frames payload as a client would, from sequence id 0.
func framed(payload []byte) []byte {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if _, err := writePacket(w, 0, payload); err != nil {
		panic(err)
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// readErrPacket reads one packet from the client end and checks that it
// is an ERR with code and sequence id seq.
func readErrPacket(t *testing.T, ss *scriptedSession, code uint16, seq byte) {
	t.Helper()
	_ = ss.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [headerLen]byte
	n, got, err := readHeader(ss.client, &hdr)
	if err != nil {
		t.Fatalf("reading tandem's answer: %v", err)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(ss.client, p); err != nil {
		t.Fatal(err)
	}
	e, ok := parseErr(p)
	if !ok || e.Code != code {
		t.Fatalf("answer %q, want ERR %d", p, code)
	}
	if got != seq {
		t.Fatalf("ERR %d has sequence id %d, want %d", code, got, seq)
	}
}

func TestOwnErrorAfterInfileHasNextSequenceID(t *testing.T) {
	ss := startScripted(t, mysql.CLIENT_PROTOCOL_41|mysql.CLIENT_LOCAL_FILES)
	q := append([]byte{mysql.COM_QUERY}, "LOAD DATA LOCAL INFILE 'f' INTO TABLE t"...)
	if _, err := ss.client.Write(packet(0, q)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(ss.node, make([]byte, headerLen+len(q))); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.node.Write(packet(1, []byte{0xfb, 'f'})); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(ss.client, make([]byte, headerLen+2)); err != nil {
		t.Fatal(err)
	}
	// Three file packets and the empty one that ends the file: 2..5.
	upload := append(append(append(packet(2, []byte("1,a\n")), packet(3, []byte("2,b\n"))...), packet(4, []byte("3,c\n"))...), packet(5, nil)...)
	if _, err := ss.client.Write(upload); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(ss.node, make([]byte, len(upload))); err != nil {
		t.Fatal(err)
	}
	ss.node.Close() // the node dies before its OK (which would be 6)
	readErrPacket(t, ss, erInterrupted, 6)
}

func TestOwnErrorAfterMultiChunkCommandHasNextSequenceID(t *testing.T) {
	ss := startScripted(t, mysql.CLIENT_PROTOCOL_41)
	cmd := framed(bigCommand(mysql.COM_QUERY, 100)) // chunks 0 and 1
	go func() { _, _ = ss.client.Write(cmd) }()
	if _, err := io.CopyN(io.Discard, ss.node, int64(len(cmd))); err != nil {
		t.Fatal(err)
	}
	ss.node.Close()
	readErrPacket(t, ss, erInterrupted, 2)
}

func TestRefusedMultiChunkCommandHasNextSequenceID(t *testing.T) {
	ss := startScripted(t, mysql.CLIENT_PROTOCOL_41)
	ss.s.p.Down("test: no node")
	// maxPayload exactly: chunk 0 full, then an empty chunk 1.
	cmd := framed(bigCommand(mysql.COM_QUERY, 0))
	go func() { _, _ = ss.client.Write(cmd) }()
	readErrPacket(t, ss, erUnknown, 2)
}

func TestOversizedMultiChunkPrepareHasNextSequenceID(t *testing.T) {
	ss := startScripted(t, mysql.CLIENT_PROTOCOL_41)
	// Three chunks (0, 1, 2): more than tandem holds in memory whole.
	b := bigCommand(mysql.COM_STMT_PREPARE, maxPayload+10)
	cmd := framed(b)
	go func() { _, _ = ss.client.Write(cmd) }()
	readErrPacket(t, ss, erNetPacketTooLarge, 3)
	select {
	case <-ss.done:
	case <-time.After(10 * time.Second):
		t.Fatal("session still open after a packet over max_packet")
	}
}

func TestKillOfSessionOnOtherNodeNeverReachesANode(t *testing.T) {
	ss := startScripted(t, mysql.CLIENT_PROTOCOL_41)
	p := ss.s.p
	// A target whose node connection is on another node, with a thread
	// id that this node may well use for someone else.
	target := &session{p: p, be: &backend{node: &Node{Name: "other"}, threadID: 77}}
	p.mu.Lock()
	target.id = 4242
	p.sessions[target.id] = target
	p.mu.Unlock()
	for _, q := range []string{"KILL 4242", "KILL QUERY 4242"} {
		if _, err := ss.client.Write(packet(0, append([]byte{mysql.COM_QUERY}, q...))); err != nil {
			t.Fatal(err)
		}
		readErrPacket(t, ss, erNoSuchThread, 1)
	}
	// The node got nothing: the first bytes it reads are the next command.
	ping := packet(0, []byte{mysql.COM_PING})
	if _, err := ss.client.Write(ping); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(ping))
	if _, err := io.ReadFull(ss.node, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, ping) {
		t.Fatalf("node received %q, want only the ping", got)
	}
}
