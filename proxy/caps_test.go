package proxy

// MariaDB's extended capabilities and the compressed protocol against a
// scripted node, with hand-built packets: progress reports, bulk execute,
// the metadata cache (and its staleness after a move), statement id
// 0xffffffff, compressed links on both sides.

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// startScriptedExt is startScriptedWith for a session that negotiated
// extended capabilities ext and, with CLIENT_COMPRESS in caps, compressed
// links on both sides (the test's ends must then speak it too).
func startScriptedExt(t testing.TB, caps, ext uint32, cfg Config, setup ...func(*session)) *scriptedSession {
	t.Helper()
	p, err := New(cfg, []*Node{{Name: "fake", Address: "127.0.0.1:1"}}, "fake")
	if err != nil {
		t.Fatal(err)
	}
	cTest, cProxy := tcpPair(t)
	nProxy, nTest := tcpPair(t)
	s := &session{p: p, client: cProxy, caps: caps, extCaps: ext, route: p.route.Load()}
	s.be = &backend{node: p.nodes[0], conn: nProxy, rw: newConnIO(nProxy), caps: caps, extCaps: ext}
	s.cio = newConnIO(cProxy)
	if caps&mysql.CLIENT_COMPRESS != 0 {
		s.cio = newCompressedIO(s.cio)
		s.be.rw = newCompressedIO(s.be.rw)
	}
	s.crd = &clientReader{conn: cProxy, r: s.cio, timeout: 10 * time.Second}
	s.cwr = &clientWriter{conn: cProxy, w: s.cio, timeout: p.cfg.NetWriteTimeout}
	s.cr = bufio.NewReaderSize(s.crd, clientBufSize)
	s.facts.reset("", 45)
	s.lastCmd = time.Now()
	ss := &scriptedSession{s: s, client: cTest, node: nTest, done: make(chan error, 1)}
	_ = cTest.SetDeadline(time.Now().Add(30 * time.Second))
	_ = nTest.SetDeadline(time.Now().Add(30 * time.Second))
	for _, f := range setup {
		f(s) // before the session's goroutine starts
	}
	go func() { ss.done <- s.commandLoop() }()
	return ss
}

// packets frames payloads with consecutive sequence ids from seq.
func capsPackets(seq byte, payloads ...[]byte) []byte {
	var b []byte
	for i, p := range payloads {
		b = append(b, packet(seq+byte(i), p)...)
	}
	return b
}

// exchange sends the client's command, checks what the node receives,
// plays the node's answer and returns what the client receives (n packets).
func capsExchange(t *testing.T, ss *scriptedSession, cmd, answer []byte, n int) [][]byte {
	t.Helper()
	if _, err := ss.client.Write(packet(0, cmd)); err != nil {
		t.Fatal(err)
	}
	got, _, err := readPacket(ss.node, nil, 1<<24)
	if err != nil {
		t.Fatalf("node reading the command: %v", err)
	}
	if !bytes.Equal(got, cmd) {
		t.Fatalf("node received %q, want %q", got, cmd)
	}
	if _, err := ss.node.Write(answer); err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range out {
		if out[i], _, err = readPacket(ss.client, nil, 1<<24); err != nil {
			t.Fatalf("client reading packet %d of %d: %v", i+1, n, err)
		}
	}
	return out
}

// stillServing checks that the session answers a COM_PING after what came
// before: it was not out of step.
func capsStillServing(t *testing.T, ss *scriptedSession) {
	t.Helper()
	ok := appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0)
	got := capsExchange(t, ss, []byte{mysql.COM_PING}, packet(1, ok), 1)
	if !bytes.Equal(got[0], ok) {
		t.Fatalf("COM_PING answered %q", got[0])
	}
}

func progressPacket(stage byte) []byte {
	return append([]byte{0xff, 0xff, 0xff, 1, 3, stage, 0x10, 0x27, 0}, lenencString("copy to tmp table")...)
}

func TestExtendedCapsInHandshakeResponse(t *testing.T) {
	r := &handshakeResponse{Caps: requiredCaps | mysql.CLIENT_PLUGIN_AUTH, ExtCaps: 0x1d, MaxPacket: 1 << 24, Collation: 45,
		User: "app", Auth: []byte("12345678901234567890"), Plugin: mysql.AUTH_NATIVE_PASSWORD}
	p := appendHandshakeResponse(nil, r)
	if got := binary.LittleEndian.Uint32(p[extCapsOffset:]); got != 0x1d {
		t.Fatalf("extended caps at bytes 28-31: 0x%x", got)
	}
	back, err := parseHandshakeResponse(p)
	if err != nil || back.ExtCaps != 0x1d || back.User != "app" {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	// With CLIENT_MYSQL (CLIENT_LONG_PASSWORD) set, the filler is not
	// extended capabilities: not written, not read.
	r.Caps |= mysql.CLIENT_LONG_PASSWORD
	p = appendHandshakeResponse(nil, r)
	if binary.LittleEndian.Uint32(p[extCapsOffset:]) != 0 {
		t.Fatal("extended caps written although CLIENT_MYSQL is set")
	}
	binary.LittleEndian.PutUint32(p[extCapsOffset:], 0x1d)
	if back, err = parseHandshakeResponse(p); err != nil || back.ExtCaps != 0 {
		t.Fatalf("extended caps read although CLIENT_MYSQL is set: %+v, %v", back, err)
	}
}

func TestProgressReportsAreNotTheAnswer(t *testing.T) {
	ss := startScriptedExt(t, mysql.CLIENT_PROTOCOL_41, mariadbClientProgress, Config{})
	query := append([]byte{mysql.COM_QUERY}, "ALTER TABLE t FORCE"...)
	ok := appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0)
	got := capsExchange(t, ss, query, capsPackets(1, progressPacket(1), progressPacket(2), ok), 3)
	if !isProgress(got[0]) || !isProgress(got[1]) || !bytes.Equal(got[2], ok) {
		t.Fatalf("client got %q", got)
	}
	capsStillServing(t, ss)

	// In a result set, between two results, and before a prepare's OK.
	multi := capsPackets(1, progressPacket(1), []byte{1}, []byte("\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x00\x00\x00\x00\x00"),
		[]byte{0xfe, 0, 0, 2, 0}, []byte("\x011"), progressPacket(2), []byte{0xfe, 0, 0, 2, 0})
	if got := capsExchange(t, ss, append([]byte{mysql.COM_QUERY}, "SELECT 1"...), multi, 7); !bytes.Equal(got[6], []byte{0xfe, 0, 0, 2, 0}) {
		t.Fatalf("result set with progress reports: %q", got)
	}
	prep := []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if got := capsExchange(t, ss, append([]byte{mysql.COM_STMT_PREPARE}, "DO 1"...), capsPackets(1, progressPacket(1), prep), 2); !bytes.Equal(got[1], prep) {
		t.Fatalf("prepare with a progress report: %q", got)
	}
	capsStillServing(t, ss)

	// Without MARIADB_CLIENT_PROGRESS such a packet is an ERR: the end.
	ss2 := startScriptedExt(t, mysql.CLIENT_PROTOCOL_41, 0, Config{})
	if got := capsExchange(t, ss2, query, packet(1, progressPacket(1)), 1); !isProgress(got[0]) {
		t.Fatalf("client got %q", got)
	}
	capsStillServing(t, ss2)
}

func TestBulkExecuteRelayed(t *testing.T) {
	for _, caps := range []uint32{mysql.CLIENT_PROTOCOL_41, mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_DEPRECATE_EOF} {
		ss := startScriptedExt(t, caps, mariadbClientBulkOperations|mariadbClientCacheMetadata, Config{})
		bulk := bulkInsert(7, []int64{1, 2, 3})
		ok := appendOKInfo(nil, 3, 0, mysql.SERVER_STATUS_AUTOCOMMIT, "Records: 3", caps)
		if got := capsExchange(t, ss, bulk, packet(1, ok), 1); !bytes.Equal(got[0], ok) {
			t.Fatalf("bulk execute OK: %q", got)
		}
		// INSERT ... RETURNING in bulk: a binary result set.
		col := []byte("\x03def\x00\x00\x00\x02id\x00\x0c\x3f\x00\x14\x00\x00\x00\x08\x03\x00\x00\x00\x00")
		end := []byte{0xfe, 0, 0, 2, 0}
		answer := [][]byte{{1, 1}, col}
		if caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
			answer = append(answer, end)
		} else {
			end = append(end, 0, 0)
		}
		answer = append(answer, []byte{0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, []byte{0, 0, 2, 0, 0, 0, 0, 0, 0, 0}, end)
		got := capsExchange(t, ss, bulk, capsPackets(1, answer...), len(answer))
		if !bytes.Equal(got[len(got)-1], end) {
			t.Fatalf("bulk execute result set: %q", got)
		}
		capsStillServing(t, ss)
	}
}

func TestCachedMetadataFollowed(t *testing.T) {
	for _, caps := range []uint32{mysql.CLIENT_PROTOCOL_41, mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_DEPRECATE_EOF} {
		ss := startScriptedExt(t, caps, mariadbClientCacheMetadata, Config{})
		eof := []byte{0xfe, 0, 0, 2, 0}
		end := eof
		if caps&mysql.CLIENT_DEPRECATE_EOF != 0 {
			end = []byte{0xfe, 0, 0, 2, 0, 0, 0}
		}
		// Text result: the flag byte is 1 and the definitions follow.
		col := []byte("\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x00\x00\x00\x00\x00")
		text := [][]byte{{1, 1}, col}
		if caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
			text = append(text, eof)
		}
		text = append(text, []byte("\x011"), end)
		capsExchange(t, ss, append([]byte{mysql.COM_QUERY}, "SELECT 1"...), capsPackets(1, text...), len(text))
		// An execute whose definitions are left out: the column count
		// with flag 0, the EOF (without DEPRECATE_EOF), the rows. A row
		// starting with 0xfe... is a definition the relay must not expect.
		exec := []byte{mysql.COM_STMT_EXECUTE, 9, 0, 0, 0, 0, 1, 0, 0, 0}
		bin := [][]byte{{2, 0}}
		if caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
			bin = append(bin, eof)
		}
		bin = append(bin, []byte{0, 0, 1}, []byte{0, 0, 2}, end)
		got := capsExchange(t, ss, exec, capsPackets(1, bin...), len(bin))
		if !bytes.Equal(got[len(got)-1], end) {
			t.Fatalf("execute without definitions: %q", got)
		}
		capsStillServing(t, ss)
	}
}

func TestStaleCachedMetadataIsNotRelayed(t *testing.T) {
	// As after a move whose re-prepare of statement 9 gave other
	// definitions than the client holds.
	stale := func(s *session) { s.meta = map[uint32]stmtMeta{9: {crc: 1, stale: true}} }
	ss := startScriptedExt(t, mysql.CLIENT_PROTOCOL_41|mysql.CLIENT_DEPRECATE_EOF, mariadbClientCacheMetadata, Config{}, stale)
	exec := []byte{mysql.COM_STMT_EXECUTE, 9, 0, 0, 0, 0, 1, 0, 0, 0}
	got := capsExchange(t, ss, exec, capsPackets(1, []byte{1, 0}, []byte{0, 0, 1}, []byte{0xfe, 0, 0, 2, 0, 0, 0}), 1)
	if e, ok := parseErr(got[0]); !ok || e.Code != erConnectionKilled {
		t.Fatalf("stale metadata: client got %q, want error %d", got[0], erConnectionKilled)
	}
	select {
	case err := <-ss.done:
		if !errors.Is(err, errStaleMetadata) {
			t.Fatalf("session ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session stayed open")
	}

	// With the definitions sent, the statement is fresh again.
	ss = startScriptedExt(t, mysql.CLIENT_PROTOCOL_41|mysql.CLIENT_DEPRECATE_EOF, mariadbClientCacheMetadata, Config{}, stale)
	col := []byte("\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x00\x00\x00\x00\x00")
	capsExchange(t, ss, exec, capsPackets(1, []byte{1, 1}, col, []byte{0, 0, 1}, []byte{0xfe, 0, 0, 2, 0, 0, 0}), 4)
	capsExchange(t, ss, exec, capsPackets(1, []byte{1, 0}, []byte{0, 0, 1}, []byte{0xfe, 0, 0, 2, 0, 0, 0}), 3)
	capsStillServing(t, ss)
	ss.client.Close()
	select {
	case <-ss.done: // the session's goroutine is over: its state may be read
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end when its client left")
	}
	if m := ss.s.meta[9]; m.stale || m.crc != metaCRC(0, col, col[0]) {
		t.Fatalf("after the definitions came: %+v", m)
	}
}

func TestRepreparedStatementGoesStaleOnlyIfItsDefinitionsDiffer(t *testing.T) {
	s := &session{}
	col := []byte("\x03def\x00\x00\x00\x01a")
	s.noteMeta(4, metaCRC(0, col, col[0]))
	s.noteMeta(5, metaCRC(0, col, col[0]))
	s.reprepared(4, metaCRC(0, col, col[0]))
	s.reprepared(5, metaCRC(0, []byte("other"), 'o'))
	s.reprepared(6, 77) // never seen: nothing to compare
	if s.meta[4].stale || !s.meta[5].stale {
		t.Fatalf("%+v", s.meta)
	}
	if _, ok := s.meta[6]; ok {
		t.Fatal("an unknown statement was recorded")
	}
}

func TestLastPreparedStatementIDAfterMove(t *testing.T) {
	ss := startScriptedExt(t, mysql.CLIENT_PROTOCOL_41, mariadbClientBulkOperations, Config{}, func(s *session) {
		s.stmts = map[uint32]uint32{7: 3}
		s.lastStmt = 7
	})
	ok := appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0)
	if _, err := ss.client.Write(packet(0, bulkInsert(lastPreparedID, []int64{1}))); err != nil {
		t.Fatal(err)
	}
	got, _, err := readPacket(ss.node, nil, 0)
	if err != nil || binary.LittleEndian.Uint32(got[1:]) != 3 {
		t.Fatalf("node got statement %x, %v; want the node's id 3 of the client's last statement 7", got[:5], err)
	}
	if _, err := ss.node.Write(packet(1, ok)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readPacket(ss.client, nil, 0); err != nil {
		t.Fatal(err)
	}
	// No statement prepared last (its prepare failed, or it was closed):
	// the node must not run whatever it prepared last (a re-prepare).
	ss = startScriptedExt(t, mysql.CLIENT_PROTOCOL_41, mariadbClientBulkOperations, Config{}, func(s *session) {
		s.stmts = map[uint32]uint32{7: 3}
	})
	if _, err := ss.client.Write(packet(0, bulkInsert(lastPreparedID, []int64{1}))); err != nil {
		t.Fatal(err)
	}
	if got, _, err = readPacket(ss.node, nil, 0); err != nil || binary.LittleEndian.Uint32(got[1:]) != unknownStmt {
		t.Fatalf("node got statement %x, %v; want unknownStmt", got[:5], err)
	}
}

// compressedPair returns a writer and a reader of the compressed protocol
// joined by a buffer.
func compressedWrite(t *testing.T, chunks ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := newCompressedIO(struct {
		io.Reader
		io.Writer
	}{nil, &buf})
	for _, c := range chunks {
		if n, err := w.Write(c); err != nil || n != len(c) {
			t.Fatalf("write: %d, %v", n, err)
		}
	}
	return buf.Bytes()
}

func compressedReader(b []byte, r io.Reader) *compressedIO {
	if r == nil {
		r = bytes.NewReader(b)
	}
	return newCompressedIO(struct {
		io.Reader
		io.Writer
	}{r, io.Discard})
}

func TestCompressedRoundTrip(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 3<<20)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	chunks := [][]byte{
		[]byte("short"), // stored: under minCompressLen
		bytes.Repeat([]byte("tandem "), 1000),
		random[:100],                           // incompressible: stored
		random,                                 // over compressChunk: several packets
		bytes.Repeat([]byte{0}, maxPayload+10), // more than one packet's worth
	}
	wire := compressedWrite(t, chunks...)
	want := bytes.Join(chunks, nil)
	if len(wire) >= len(want) {
		t.Fatalf("%d bytes on the wire for %d", len(wire), len(want))
	}
	for name, r := range map[string]io.Reader{"whole": nil, "byte by byte": iotest.OneByteReader(bytes.NewReader(wire)),
		"halves": iotest.HalfReader(bytes.NewReader(wire))} {
		got, err := io.ReadAll(compressedReader(wire, r))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: read %d bytes, %v; want %d", name, len(got), err, len(want))
		}
	}
	// The headers: sequence ids count up from 0, stored packets say 0.
	h := wire[:compHeaderLen]
	if h[3] != 0 || h[4]|h[5]|h[6] != 0 || int(h[0]) != len("short") {
		t.Fatalf("first header % x", h)
	}
	h = wire[compHeaderLen+5:][:compHeaderLen]
	if h[3] != 1 || int(h[4])|int(h[5])<<8 != 7000 {
		t.Fatalf("second header % x", h)
	}
}

// zpacket builds one compressed packet of payload, deflated, announcing
// ulen uncompressed bytes.
func zpacket(seq byte, payload []byte, ulen int) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	_, _ = w.Write(payload)
	_ = w.Close()
	b := []byte{byte(z.Len()), byte(z.Len() >> 8), byte(z.Len() >> 16), seq, byte(ulen), byte(ulen >> 8), byte(ulen >> 16)}
	return append(b, z.Bytes()...)
}

func TestCompressedReaderRejectsBadPackets(t *testing.T) {
	data := bytes.Repeat([]byte("abc"), 100)
	good := zpacket(0, data, len(data))
	corrupt := append([]byte{}, good...)
	corrupt[len(corrupt)-1] ^= 0xff // the checksum
	for name, wire := range map[string][]byte{
		"truncated header":  good[:5],
		"truncated payload": good[:len(good)-3],
		"not zlib":          append([]byte{10, 0, 0, 0, 50, 0, 0}, "0123456789"...),
		"longer than said":  zpacket(0, data, len(data)-1),
		"shorter than said": zpacket(0, data, len(data)+1),
		"bad checksum":      corrupt,
		"bytes after zlib":  func() []byte { p := zpacket(0, data, len(data)); p[0]++; return append(p, 'x') }(),
	} {
		_, err := io.ReadAll(compressedReader(wire, nil))
		if !errors.Is(err, ErrCompressed) {
			t.Errorf("%s: %v, want ErrCompressed", name, err)
		}
	}
	// A clean close between packets is io.EOF (ReadAll: no error).
	if got, err := io.ReadAll(compressedReader(good, nil)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("good packet: %q, %v", got, err)
	}
}

// A session with compressed links on both sides: the client's compressed
// command reaches the node as a compressed command numbered from 0, and
// the node's answer comes back numbered as the client counts.
func TestCompressedSessionRelays(t *testing.T) {
	ss := startScriptedExt(t, mysql.CLIENT_PROTOCOL_41|mysql.CLIENT_COMPRESS, 0, Config{})
	cz, nz := newCompressedIO(ss.client), newCompressedIO(ss.node)
	big := append([]byte{mysql.COM_QUERY}, "SELECT '"...)
	big = append(big, strings.Repeat("x", 200000)...)
	big = append(big, '\'')
	for round := range 3 {
		// The client sends its command in three compressed packets.
		wire := framed(big)
		cz.newCommand()
		for _, part := range [][]byte{wire[:100], wire[100:150000], wire[150000:]} {
			if _, err := cz.Write(part); err != nil {
				t.Fatal(err)
			}
		}
		got, _, err := readPacket(nz, nil, 1<<24)
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("round %d: node got %d bytes, %v", round, len(got), err)
		}
		// The node numbers its answer from the compressed packets it
		// read; the client expects its own count (3).
		ok := appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0)
		if _, err := nz.Write(packet(nz.seq, ok)); err != nil {
			t.Fatal(err)
		}
		p, seq, err := readPacket(cz, nil, 0)
		if err != nil || !bytes.Equal(p, ok) || seq != 3 {
			t.Fatalf("round %d: client got %q seq %d, %v; want OK with seq 3", round, p, seq, err)
		}
	}
}

// Query attributes with settling on: the marker goes after the attribute
// block, and the marking SAVEPOINT carries an empty one.
func TestQueryAttributesMarkedStatement(t *testing.T) {
	settle := func(context.Context, SettleRequest) SettleResult { return SettleResult{} }
	ss := startScriptedExt(t, attrCaps, 0, Config{Settle: settle})
	auto := uint16(mysql.SERVER_STATUS_AUTOCOMMIT)
	send := func(payload []byte) []byte {
		t.Helper()
		if _, err := ss.client.Write(framedAll(payload)); err != nil {
			t.Fatal(err)
		}
		got, _, err := readPacket(ss.node, nil, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	q := attrQuery("INSERT INTO t VALUES (1)", someAttrs[:3]...)
	got := send(q)
	off, ok := skipQueryAttrs(got[1:])
	if !ok || !bytes.Equal(got[:1+off], q[:1+off]) {
		t.Fatalf("attribute block not kept in front: %q", got)
	}
	text := string(got[1+off:])
	if !strings.HasPrefix(text, MarkerPrefix) || !strings.HasSuffix(text, "*/ INSERT INTO t VALUES (1)") {
		t.Fatalf("statement sent %q, want the marker in front of it, after the attributes", text)
	}
	if _, err := ss.node.Write(packet(1, appendOK(nil, auto, 0))); err != nil {
		t.Fatal(err)
	}
	clientReadsOK(t, ss)

	// A transaction of prepared statements: its COMMIT is preceded by a
	// marking SAVEPOINT of tandem's, with an empty attribute block.
	got = send(attrQuery("BEGIN"))
	if _, err := ss.node.Write(packet(1, appendOK(nil, auto|mysql.SERVER_STATUS_IN_TRANS, 0))); err != nil {
		t.Fatal(err)
	}
	clientReadsOK(t, ss)
	exec := []byte{mysql.COM_STMT_EXECUTE, 1, 0, 0, 0, 0, 1, 0, 0, 0}
	if got = send(exec); !bytes.Equal(got, exec) {
		t.Fatalf("execute relayed as %q", got)
	}
	if _, err := ss.node.Write(packet(1, appendOKInfo(nil, 1, 0, auto|mysql.SERVER_STATUS_IN_TRANS, "", 0))); err != nil {
		t.Fatal(err)
	}
	clientReadsOK(t, ss)
	sp := send(attrQuery("COMMIT"))
	if !bytes.HasPrefix(sp, []byte{mysql.COM_QUERY, 0, 1, 'S', 'A', 'V', 'E', 'P', 'O', 'I', 'N', 'T', ' '}) {
		t.Fatalf("savepoint sent as %q, want an empty attribute block first", sp)
	}
	if _, err := ss.node.Write(packet(1, appendOK(nil, auto|mysql.SERVER_STATUS_IN_TRANS, 0))); err != nil {
		t.Fatal(err)
	}
	commit, _, err := readPacket(ss.node, nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if off, ok := skipQueryAttrs(commit[1:]); !ok || !strings.HasSuffix(string(commit[1+off:]), "COMMIT") {
		t.Fatalf("COMMIT sent as %q", commit)
	}
	if _, err := ss.node.Write(packet(1, appendOK(nil, auto, 0))); err != nil {
		t.Fatal(err)
	}
	clientReadsOK(t, ss)
}

// FuzzCompressedReader feeds arbitrary bytes to the compressed protocol's
// reader: an error or the bytes, never a panic, a hang, or more inflated
// bytes than the headers announced. Any input also survives a round trip
// through the writer.
func FuzzCompressedReader(f *testing.F) {
	data := bytes.Repeat([]byte("abc"), 100)
	f.Add(zpacket(0, data, len(data)))
	f.Add(append(zpacket(0, data, len(data)), zpacket(1, []byte("x"), 1)...))
	f.Add(append([]byte{5, 0, 0, 0, 0, 0, 0}, "hello"...))
	f.Add(zpacket(0, data, len(data)+1))
	f.Add([]byte{0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0x78, 0x9c})
	f.Fuzz(func(t *testing.T, wire []byte) {
		// Each packet inflates to at most what its header says
		// (< 2^24), and each takes at least 7 bytes of input.
		limit := (len(wire)/compHeaderLen + 1) * maxPayload
		r := compressedReader(wire, nil)
		buf := make([]byte, 32<<10)
		total := 0
		for {
			n, err := r.Read(buf)
			total += n
			if total > limit {
				t.Fatalf("%d inflated bytes from %d input bytes", total, len(wire))
			}
			if err != nil {
				break
			}
		}
		got, err := io.ReadAll(compressedReader(compressedWrite(t, wire), nil))
		if err != nil || !bytes.Equal(got, wire) {
			t.Fatalf("round trip: %d bytes, %v; want %d", len(got), err, len(wire))
		}
	})
}

// BenchmarkCompressedWrite is the cost of deflating one write of the
// relay (a small answer, a row batch, a full relay buffer).
func BenchmarkCompressedWrite(b *testing.B) {
	for _, n := range []int{60, 1000, 64 << 10} {
		data := bytes.Repeat([]byte("row number 12345 xxxxxxxxxxxxxxxxxxxx "), n/38+1)[:n]
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			c := newCompressedIO(struct {
				io.Reader
				io.Writer
			}{nil, io.Discard})
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = c.Write(data)
			}
		})
	}
}

// On a compressed link a command numbered from 1 is accepted, as a node
// accepts it (Connector/J sends one after COM_STMT_CLOSE); uncompressed it
// is a protocol error.
func TestCompressedCommandNumberNotChecked(t *testing.T) {
	ss := startScriptedExt(t, mysql.CLIENT_PROTOCOL_41|mysql.CLIENT_COMPRESS, 0, Config{})
	cz, nz := newCompressedIO(ss.client), newCompressedIO(ss.node)
	cz.newCommand()
	if _, err := cz.Write(append(packet(0, []byte{mysql.COM_STMT_CLOSE, 1, 0, 0, 0}), packet(1, []byte{mysql.COM_PING})...)); err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]byte{{mysql.COM_STMT_CLOSE, 1, 0, 0, 0}, {mysql.COM_PING}} {
		got, _, err := readPacket(nz, nil, 0)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("node got %q, %v; want %q", got, err, want)
		}
	}
	ok := appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0)
	if _, err := nz.Write(packet(nz.seq, ok)); err != nil {
		t.Fatal(err)
	}
	if p, _, err := readPacket(cz, nil, 0); err != nil || !bytes.Equal(p, ok) {
		t.Fatalf("client got %q, %v", p, err)
	}

	plain := startScriptedExt(t, mysql.CLIENT_PROTOCOL_41, 0, Config{})
	if _, err := plain.client.Write(packet(1, []byte{mysql.COM_PING})); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-plain.done:
		if !errors.Is(err, ErrPacketSequence) {
			t.Fatalf("session ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a command numbered 1 was accepted on a plain link")
	}
}

// A zlib bomb (16 MiB from a few KiB) costs what arrives, not what it
// announces: reading its first bytes allocates far less than 16 MiB.
func TestCompressedBombCostsWhatArrives(t *testing.T) {
	bomb := zpacket(0, make([]byte, maxPayload), maxPayload)
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb of %d bytes", len(bomb))
	}
	r := compressedReader(bomb, nil)
	buf := make([]byte, 4096)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("reading 4 KiB of a 16 MiB bomb allocated %d bytes", grew)
	}
	if r.buffered() != maxPayload-len(buf) {
		t.Fatalf("%d bytes left, want %d", r.buffered(), maxPayload-len(buf))
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != int64(maxPayload-len(buf)) {
		t.Fatalf("rest of the bomb: %d bytes, %v", n, err)
	}
}
