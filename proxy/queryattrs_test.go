package proxy

// Query attributes (CLIENT_QUERY_ATTRIBUTES, MySQL 8.0.23+): every COM_QUERY
// starts with an attribute block, which tandem must read past to see the
// statement. The packets are built by hand as a MySQL 8 client sends them.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// qattr is one query attribute.
type qattr struct {
	name  string
	typ   byte
	value []byte // binary protocol encoding
	null  bool
}

// attrQuery is a COM_QUERY payload with attributes, as a MySQL 8 client
// sends it: parameter_count, parameter_set_count (1), and with attributes
// the null bitmap, new_params_bind_flag (1), each type (2 bytes) and name,
// then the values of those not NULL.
func attrQuery(text string, attrs ...qattr) []byte {
	b := []byte{mysql.COM_QUERY}
	b = mysql.AppendLengthEncodedInteger(b, uint64(len(attrs)))
	b = mysql.AppendLengthEncodedInteger(b, 1)
	if len(attrs) > 0 {
		bitmap := make([]byte, (len(attrs)+7)/8)
		for i, a := range attrs {
			if a.null {
				bitmap[i/8] |= 1 << (i % 8)
			}
		}
		b = append(b, bitmap...)
		b = append(b, 1)
		for _, a := range attrs {
			b = append(b, a.typ, 0)
			b = mysql.AppendLengthEncodedInteger(b, uint64(len(a.name)))
			b = append(b, a.name...)
		}
		for _, a := range attrs {
			if !a.null {
				b = append(b, a.value...)
			}
		}
	}
	return append(b, text...)
}

func lenencString(s string) []byte {
	return append(mysql.AppendLengthEncodedInteger(nil, uint64(len(s))), s...)
}

// someAttrs covers every kind of value encoding.
var someAttrs = []qattr{
	{name: "traceparent", typ: mysql.MYSQL_TYPE_VAR_STRING, value: lenencString("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
	{name: "n", typ: mysql.MYSQL_TYPE_LONGLONG, value: binary.LittleEndian.AppendUint64(nil, 42)},
	{name: "gone", typ: mysql.MYSQL_TYPE_VAR_STRING, null: true},
	{name: "when", typ: mysql.MYSQL_TYPE_DATETIME, value: []byte{7, 0xea, 0x07, 11, 30, 9, 48, 3}},
	{name: "t", typ: mysql.MYSQL_TYPE_TINY, value: []byte{1}},
	{name: "s", typ: mysql.MYSQL_TYPE_SHORT, value: []byte{1, 0}},
	{name: "f", typ: mysql.MYSQL_TYPE_FLOAT, value: []byte{0, 0, 0x80, 0x3f}},
	{name: "d", typ: mysql.MYSQL_TYPE_DOUBLE, value: make([]byte, 8)},
	{name: "nul", typ: mysql.MYSQL_TYPE_NULL},
	{name: "long name " + strings.Repeat("x", 300), typ: mysql.MYSQL_TYPE_BLOB, value: lenencString(strings.Repeat("v", 70000))},
}

func TestSkipQueryAttrs(t *testing.T) {
	const text = "SELECT 1"
	for name, attrs := range map[string][]qattr{
		"none":        nil,
		"one string":  someAttrs[:1],
		"nine kinds":  someAttrs[:9],
		"large value": someAttrs,
	} {
		p := attrQuery(text, attrs...)[1:]
		off, ok := skipQueryAttrs(p)
		if !ok || string(p[off:]) != text {
			t.Fatalf("%s: skipQueryAttrs = %d, %v; text %q", name, off, ok, p[min(off, len(p)):])
		}
		// Cut anywhere inside the block: never a wrong offset, never a panic.
		for i := range off {
			if got, ok := skipQueryAttrs(p[:i]); ok {
				t.Fatalf("%s: cut at %d of %d: ok with offset %d", name, i, off, got)
			}
		}
	}
	// Malformed: a types flag of 0 (no types: values cannot be read), an
	// unknown type, a count larger than the packet.
	bad := attrQuery("SELECT 1", someAttrs[1])[1:]
	noTypes := append([]byte(nil), bad...)
	noTypes[3] = 0
	unknown := append([]byte(nil), bad...)
	unknown[4] = 0x7f
	huge := append(mysql.AppendLengthEncodedInteger(nil, 1<<40), 1)
	for name, p := range map[string][]byte{"no types": noTypes, "unknown type": unknown, "huge count": huge} {
		if off, ok := skipQueryAttrs(p); ok {
			t.Errorf("%s: ok with offset %d", name, off)
		}
	}
}

// startScriptedFacts is startScripted with fact snapshots on (set before
// the session's goroutine starts).
func startScriptedFacts(t *testing.T, caps uint32) *scriptedSession {
	t.Helper()
	p, err := New(Config{}, []*Node{{Name: "fake", Address: "127.0.0.1:1"}}, "fake")
	if err != nil {
		t.Fatal(err)
	}
	p.snapshotFacts = true
	return startScriptedOn(t, p, caps)
}

// nodeExpects reads one command from the node end, checks its payload and
// answers OK with status.
func nodeExpects(t *testing.T, ss *scriptedSession, want []byte, status uint16) {
	t.Helper()
	_ = ss.node.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _, err := readPacket(ss.node, nil, 1<<20)
	if err != nil {
		t.Fatalf("node reading the command: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("node received %q, want %q", got, want)
	}
	if _, err := ss.node.Write(packet(1, appendOK(nil, status, 0))); err != nil {
		t.Fatal(err)
	}
}

func clientReadsOK(t *testing.T, ss *scriptedSession) {
	t.Helper()
	_ = ss.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, _, err := readPacket(ss.client, nil, 1<<20)
	if err != nil || len(p) == 0 || p[0] != 0 {
		t.Fatalf("client got %q, %v; want OK", p, err)
	}
}

func (ss *scriptedSession) facts() Facts {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.snapshot == nil {
		return Facts{}
	}
	return ss.s.snapshot.clone()
}

const attrCaps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_QUERY_ATTRIBUTES

func TestQueryAttributesSessionFacts(t *testing.T) {
	ss := startScriptedFacts(t, attrCaps)
	auto := uint16(mysql.SERVER_STATUS_AUTOCOMMIT)
	run := func(text string, attrs ...qattr) {
		t.Helper()
		q := attrQuery(text, attrs...)
		if _, err := ss.client.Write(framedAll(q)); err != nil {
			t.Fatal(err)
		}
		nodeExpects(t, ss, q, auto) // relayed verbatim, attributes included
		clientReadsOK(t, ss)
	}
	run("SET sql_mode = 'ANSI'", someAttrs[:4]...)
	run("USE app", someAttrs[0])
	run("SET NAMES utf8mb4")
	f := ss.facts()
	if f.Schema != "app" || len(f.Settings) != 2 || f.Settings[0] != "SET sql_mode = 'ANSI'" || f.Pinned != "" {
		t.Fatalf("facts after SET, USE, SET with attributes: %+v", f)
	}
	for _, c := range []struct{ text, pinned string }{
		{"CREATE TEMPORARY TABLE t (i INT)", "temporary tables"},
		{"SET @x = (SELECT 1)", pinUserVars}, // a literal one is replayed instead
		{"LOCK TABLES t WRITE", "LOCK TABLES"},
	} {
		ss2 := startScriptedFacts(t, attrCaps)
		q := attrQuery(c.text, someAttrs[:2]...)
		if _, err := ss2.client.Write(framedAll(q)); err != nil {
			t.Fatal(err)
		}
		nodeExpects(t, ss2, q, auto)
		clientReadsOK(t, ss2)
		f := ss2.facts()
		pinned := f.Pinned
		if pinned == "" && f.UserVars {
			pinned = pinUserVars
		}
		if pinned != c.pinned {
			t.Errorf("%q with attributes: pinned %q, want %q", c.text, pinned, c.pinned)
		}
	}
	// An attribute block larger than tandem inspects: the statement is
	// unseen, so the session is pinned (closed, not moved, on a failover).
	ss3 := startScriptedFacts(t, attrCaps)
	big := qattr{name: "big", typ: mysql.MYSQL_TYPE_BLOB, value: lenencString(strings.Repeat("b", 3*clientBufSize))}
	q := attrQuery("SET sql_mode = ''", big)
	if _, err := ss3.client.Write(framedAll(q)); err != nil {
		t.Fatal(err)
	}
	nodeExpects(t, ss3, q, auto)
	clientReadsOK(t, ss3)
	if f := ss3.facts(); f.Pinned == "" || len(f.Settings) != 0 {
		t.Fatalf("a statement after an oversized attribute block: %+v, want pinned", f)
	}
}

// framedAll frames a payload of any size (split at maxPayload).
func framedAll(payload []byte) []byte { return framed(payload) }

func TestQueryAttributesKill(t *testing.T) {
	ss := startScriptedFacts(t, attrCaps)
	p := ss.s.p
	target := &session{p: p, be: &backend{node: ss.s.be.node, threadID: 77}}
	other := &session{p: p, be: &backend{node: &Node{Name: "other"}, threadID: 88}}
	p.mu.Lock()
	target.id, other.id = 4242, 4343
	p.sessions[target.id], p.sessions[other.id] = target, other
	p.mu.Unlock()
	// KILL of a thread tandem does not serve on this node: 1094, nothing
	// reaches the node.
	for _, q := range []string{"KILL 4242", "KILL QUERY 88", "KILL 99999"} {
		if _, err := ss.client.Write(packet(0, attrQuery(q, someAttrs[:3]...))); err != nil {
			t.Fatal(err)
		}
		readErrPacket(t, ss, erNoSuchThread, 1)
	}
	// KILL QUERY of a session's thread on this node reaches the node as
	// tandem's own COM_QUERY, with the empty attribute block the node
	// now expects.
	if _, err := ss.client.Write(packet(0, attrQuery("KILL QUERY 77", someAttrs[0]))); err != nil {
		t.Fatal(err)
	}
	nodeExpects(t, ss, append([]byte{mysql.COM_QUERY, 0, 1}, "KILL QUERY 77"...), mysql.SERVER_STATUS_AUTOCOMMIT)
	clientReadsOK(t, ss)
}

func TestQueryAttributesCommitRecognised(t *testing.T) {
	ss := startScriptedFacts(t, attrCaps)
	begin := attrQuery("BEGIN", someAttrs[0])
	if _, err := ss.client.Write(packet(0, begin)); err != nil {
		t.Fatal(err)
	}
	nodeExpects(t, ss, begin, mysql.SERVER_STATUS_AUTOCOMMIT|mysql.SERVER_STATUS_IN_TRANS)
	clientReadsOK(t, ss)
	commit := attrQuery("COMMIT", someAttrs[:2]...)
	if _, err := ss.client.Write(packet(0, commit)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(ss.node, make([]byte, headerLen+len(commit))); err != nil {
		t.Fatal(err)
	}
	ss.node.Close() // the node dies before answering the COMMIT
	_ = ss.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, _, err := readPacket(ss.client, nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := parseErr(p)
	if !ok || e.Code != erInterrupted || !strings.Contains(e.Message, "during COMMIT") {
		t.Fatalf("answer %q: want error %d saying the COMMIT's outcome is unknown", p, erInterrupted)
	}
}

func TestReplayCarriesEmptyAttributeBlock(t *testing.T) {
	a, b := tcpPair(t)
	sc := &syncConn{br: bufio.NewReader(a), bw: bufio.NewWriter(a), caps: attrCaps}
	errc := make(chan error, 1)
	go func() { errc <- sc.exec("SET sql_mode = 'ANSI'") }()
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _, err := readPacket(b, nil, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte{mysql.COM_QUERY, 0, 1}, "SET sql_mode = 'ANSI'"...); !bytes.Equal(got, want) {
		t.Fatalf("replayed %q, want %q", got, want)
	}
	if _, err := b.Write(packet(1, appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0))); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// Without the capability, no block.
	if got := appendQuery(nil, mysql.CLIENT_PROTOCOL_41, "DO 1"); string(got) != "\x03DO 1" {
		t.Fatalf("appendQuery without attributes: %q", got)
	}
}

func FuzzSkipQueryAttrs(f *testing.F) {
	f.Add(attrQuery("SELECT 1")[1:])
	f.Add(attrQuery("SET @x = 1", someAttrs[:9]...)[1:])
	f.Fuzz(func(t *testing.T, p []byte) {
		off, ok := skipQueryAttrs(p)
		if ok && (off < 2 || off > len(p)) {
			t.Fatalf("offset %d in %d bytes", off, len(p))
		}
	})
}
