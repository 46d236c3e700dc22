package proxy

// The whole response grammar against a scripted node, without MariaDB: for
// each command a client can send, the node answers with byte-level
// fixtures, and the client must receive exactly the node's bytes; the
// session must be in step afterwards (the next command works, and neither
// side holds a byte too many). The byte layouts follow the MariaDB and
// MySQL client/server protocol documentation; the real servers' side is
// covered by the integration tests.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

const (
	// gramCaps is what a modern client negotiates, CLIENT_DEPRECATE_EOF
	// aside (each case runs with and without it).
	gramCaps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_TRANSACTIONS |
		mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS |
		mysql.CLIENT_LOCAL_FILES | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_SESSION_TRACK
	gramDeprecateEOF = gramCaps | mysql.CLIENT_DEPRECATE_EOF
	stAC             = uint16(mysql.SERVER_STATUS_AUTOCOMMIT)
	stMore           = uint16(mysql.SERVER_MORE_RESULTS_EXISTS)
)

// --- fixtures: payloads of the protocol's packets.

// framesFrom frames payloads as consecutive packets from sequence id seq,
// splitting those of 2^24-1 bytes or more as the protocol requires.
func framesFrom(seq byte, payloads ...[]byte) []byte {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	for _, p := range payloads {
		var err error
		if seq, err = writePacket(w, seq, p); err != nil {
			panic(err)
		}
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// nodeAnswer frames a response from sequence id 1.
func nodeAnswer(payloads ...[]byte) []byte { return framesFrom(1, payloads...) }

// cmdPacket is a command packet from the client.
func cmdPacket(c byte, body ...[]byte) []byte {
	p := []byte{c}
	for _, b := range body {
		p = append(p, b...)
	}
	return framesFrom(0, p)
}

func queryCmd(text string) []byte { return cmdPacket(mysql.COM_QUERY, []byte(text)) }

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func lenStr(b []byte, s string) []byte { return append(appendLenEnc(b, uint64(len(s))), s...) }

// okP is an OK packet (CLIENT_SESSION_TRACK: the info is length-encoded).
func okP(rows, insertID uint64, status uint16, info string) []byte {
	return appendOKInfo(nil, rows, insertID, status, info, mysql.CLIENT_SESSION_TRACK)
}

// okTracked is an OK packet carrying a session state change: the schema
// is now db.
func okTracked(status uint16, db string) []byte {
	p := okP(0, 0, status|mysql.SERVER_SESSION_STATE_CHANGED, "")
	entry := lenStr(nil, db)
	state := append([]byte{1 /* SESSION_TRACK_SCHEMA */}, appendLenEnc(nil, uint64(len(entry)))...)
	state = append(state, entry...)
	return append(appendLenEnc(p, uint64(len(state))), state...)
}

func errP(code uint16, msg string) []byte {
	return appendErr(nil, newError(code, "%s", msg))
}

func eofP(warnings, status uint16) []byte {
	p := []byte{0xfe}
	p = binary.LittleEndian.AppendUint16(p, warnings)
	return binary.LittleEndian.AppendUint16(p, status)
}

// termP is the packet that ends rows (and, without CLIENT_DEPRECATE_EOF,
// column definitions): an EOF, or an OK with header 0xfe.
func termP(caps uint32, status uint16) []byte {
	if caps&mysql.CLIENT_DEPRECATE_EOF != 0 {
		p := okP(0, 0, status, "")
		p[0] = 0xfe
		return p
	}
	return eofP(0, status)
}

// colDef is a column definition (protocol 4.1) of a VARCHAR column.
func colDef(name string) []byte {
	p := lenStr(nil, "def")
	for _, s := range []string{"shop", "t", "t", name, name} {
		p = lenStr(p, s)
	}
	p = append(p, 0x0c, 0x21, 0x00)                           // fixed-length fields; utf8
	p = append(p, u32(255)...)                                // column length
	p = append(p, mysql.MYSQL_TYPE_VAR_STRING, 0, 0, 0, 0, 0) // type, flags, decimals, filler
	return p
}

// textRow is a row of the text protocol; a nil value is NULL.
func textRow(vals ...[]byte) []byte {
	var p []byte
	for _, v := range vals {
		if v == nil {
			p = append(p, 0xfb)
			continue
		}
		p = append(appendLenEnc(p, uint64(len(v))), v...)
	}
	return p
}

// binRow is a row of the binary protocol of BIGINT columns.
func binRow(vals ...uint64) []byte {
	p := make([]byte, 1+(len(vals)+7+2)/8) // header 0x00, NULL bitmap
	for _, v := range vals {
		p = binary.LittleEndian.AppendUint64(p, v)
	}
	return p
}

// resultSet is a whole result set: column count, definitions, rows and the
// terminator with status.
func resultSet(caps uint32, status uint16, ncols int, rows ...[]byte) [][]byte {
	ps := [][]byte{appendLenEnc(nil, uint64(ncols))}
	for i := range ncols {
		ps = append(ps, colDef(fmt.Sprintf("c%d", i)))
	}
	if caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
		ps = append(ps, eofP(0, status&^stMore))
	}
	ps = append(ps, rows...)
	return append(ps, termP(caps, status))
}

// prepareOK is the first packet of a COM_STMT_PREPARE answer.
func prepareOK(id uint32, cols, params uint16) []byte {
	p := append([]byte{0}, u32(id)...)
	p = binary.LittleEndian.AppendUint16(p, cols)
	p = binary.LittleEndian.AppendUint16(p, params)
	return append(p, 0, 0, 0)
}

// preparedAnswer is a whole COM_STMT_PREPARE answer.
func preparedAnswer(caps uint32, id uint32, cols, params int) [][]byte {
	ps := [][]byte{prepareOK(id, uint16(cols), uint16(params))}
	for _, n := range []int{params, cols} {
		if n == 0 {
			continue
		}
		for i := range n {
			ps = append(ps, colDef(fmt.Sprintf("p%d", i)))
		}
		if caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
			ps = append(ps, eofP(0, stAC))
		}
	}
	return ps
}

func catP(parts ...[][]byte) [][]byte {
	var all [][]byte
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func executeCmd(id uint32, flags byte) []byte {
	return cmdPacket(mysql.COM_STMT_EXECUTE, u32(id), []byte{flags}, u32(1))
}

func fetchCmd(id, rows uint32) []byte { return cmdPacket(mysql.COM_STMT_FETCH, u32(id), u32(rows)) }

// bigValue is a column value of n bytes.
func bigValue(n int) []byte { return bytes.Repeat([]byte("v"), n) }

// --- the runner.

// gstep is one exchange: what the client sends, what the node must
// receive, what the node answers and what the client must receive.
type gstep struct {
	send  []byte
	node  []byte // nil: send, unchanged; empty: nothing
	reply []byte // nil: no answer
	want  []byte // nil: answer, unchanged; empty: nothing
}

// noBytes says "nothing" in a step.
var noBytes = []byte{}

// expectBytes reads exactly len(want) bytes from c and compares them.
func expectBytes(t *testing.T, c net.Conn, want []byte, what string) {
	t.Helper()
	if len(want) == 0 {
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	got := make([]byte, len(want))
	n, err := io.ReadFull(c, got)
	if err != nil {
		t.Fatalf("%s: got %d of %d bytes: %v (first bytes % x)", what, n, len(want), err, got[:min(n, 32)])
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		lo := max(i-8, 0)
		t.Fatalf("%s: %d bytes differ at offset %d:\n got  % x\n want % x", what, len(want), i,
			got[lo:min(i+24, len(got))], want[lo:min(i+24, len(want))])
	}
}

// runSteps plays steps between client and node.
func runSteps(t *testing.T, client, node net.Conn, steps []gstep) {
	t.Helper()
	for i, st := range steps {
		errc := make(chan error, 2)
		go func() {
			_, err := client.Write(st.send)
			errc <- err
		}()
		toNode := st.node
		if toNode == nil {
			toNode = st.send
		}
		expectBytes(t, node, toNode, fmt.Sprintf("step %d: node receives", i))
		if len(st.reply) > 0 {
			go func() {
				_, err := node.Write(st.reply)
				errc <- err
			}()
		} else {
			errc <- nil
		}
		want := st.want
		if want == nil {
			want = st.reply
		}
		expectBytes(t, client, want, fmt.Sprintf("step %d: client receives", i))
		for range 2 {
			if err := <-errc; err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
	}
}

// pingStep is a command the session must still relay as it is.
var pingStep = gstep{send: cmdPacket(mysql.COM_PING), reply: nodeAnswer(okP(0, 0, stAC, ""))}

// endInStep checks that the session is in step: a COM_PING is relayed as
// it is, COM_QUIT ends the session cleanly, and neither end then holds a
// byte it was not meant to get.
func endInStep(t *testing.T, ss *scriptedSession, node net.Conn) {
	t.Helper()
	runSteps(t, ss.client, node, []gstep{pingStep})
	if _, err := ss.client.Write(cmdPacket(mysql.COM_QUIT)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ss.done:
		if err != nil {
			t.Fatalf("session ended with %v; want a clean COM_QUIT", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("COM_QUIT did not end the session")
	}
	ss.s.closeConns()
	for name, c := range map[string]net.Conn{"client": ss.client, "node": node} {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if rest, err := io.ReadAll(c); err != nil || len(rest) > 0 {
			t.Errorf("%s end holds % x (%v) after the session ended", name, rest[:min(len(rest), 32)], err)
		}
	}
}

// grammarCase is one exchange of the response grammar; steps builds it for
// the client's capabilities.
type grammarCase struct {
	name  string
	caps  []uint32 // nil: with and without CLIENT_DEPRECATE_EOF
	steps func(caps uint32) []gstep
	// check, if set, looks at the session's facts as the last step's
	// answer left them (a step without an answer may not have run yet)
	// and at the session once it has ended (after a COM_PING).
	check func(t *testing.T, f Facts, s *session)
}

func runGrammar(t *testing.T, cases []grammarCase) {
	for _, tc := range cases {
		capsList := tc.caps
		if capsList == nil {
			capsList = []uint32{gramCaps, gramDeprecateEOF}
		}
		for _, caps := range capsList {
			name := tc.name + "/EOF"
			if caps&mysql.CLIENT_DEPRECATE_EOF != 0 {
				name = tc.name + "/DEPRECATE_EOF"
			}
			t.Run(name, func(t *testing.T) {
				ss := startScriptedFacts(t, caps)
				runSteps(t, ss.client, ss.node, tc.steps(caps))
				facts := ss.facts()
				endInStep(t, ss, ss.node)
				if tc.check != nil {
					tc.check(t, facts, ss.s)
				}
			})
		}
	}
}

// relayed is a step whose command and answer pass unchanged.
func relayed(send []byte, payloads ...[]byte) gstep {
	return gstep{send: send, reply: nodeAnswer(payloads...)}
}

func TestGrammarTextProtocol(t *testing.T) {
	runGrammar(t, []grammarCase{
		{name: "OK", steps: func(c uint32) []gstep {
			return []gstep{relayed(queryCmd("UPDATE t SET a = 1"), okP(3, 0, stAC, "Rows matched: 3  Changed: 3  Warnings: 0"))}
		}},
		{name: "OK with session state", steps: func(c uint32) []gstep {
			return []gstep{relayed(queryCmd("USE shop"), okTracked(stAC, "shop"))}
		}},
		{name: "ERR", steps: func(c uint32) []gstep {
			return []gstep{relayed(queryCmd("SELEC 1"), errP(mysql.ER_PARSE_ERROR, "You have an error in your SQL syntax"))}
		}},
		{name: "result set", steps: func(c uint32) []gstep {
			return []gstep{relayed(queryCmd("SELECT a, b FROM t"), resultSet(c, stAC, 2,
				textRow([]byte("1"), []byte("x")),
				textRow(nil, []byte("first column NULL: 0xfb")),
				textRow([]byte(""), []byte("first byte 0x00")),
				textRow(bigValue(300), []byte("first byte 0xfc")),
				textRow(bigValue(70000), []byte("first byte 0xfd, more than the relay's buffer")),
			)...)}
		}},
		{name: "empty result set", steps: func(c uint32) []gstep {
			return []gstep{relayed(queryCmd("SELECT a FROM t WHERE 0"), resultSet(c, stAC, 1)...)}
		}},
		{name: "many columns", steps: func(c uint32) []gstep {
			return []gstep{relayed(queryCmd("SELECT *"), resultSet(c, stAC, 300, textRow(bytes.Split(bigValue(300), nil)...))...)}
		}},
		{name: "ERR after rows", steps: func(c uint32) []gstep {
			rs := resultSet(c, stAC, 1, textRow([]byte("1")))
			rs[len(rs)-1] = errP(mysql.ER_QUERY_INTERRUPTED, "Query execution was interrupted")
			return []gstep{relayed(queryCmd("SELECT SLEEP(10)"), rs...)}
		}},
		{name: "multi-statement", steps: func(c uint32) []gstep {
			return []gstep{relayed(queryCmd("SELECT 1; UPDATE t SET a = 2; SELECT 2"), catP(
				resultSet(c, stAC|stMore, 1, textRow([]byte("1"))),
				[][]byte{okP(1, 0, stAC|stMore, "Rows matched: 1  Changed: 1  Warnings: 0")},
				resultSet(c, stAC, 1, textRow([]byte("2"))),
			)...)}
		}},
		{name: "multi-statement ending in ERR", steps: func(c uint32) []gstep {
			return []gstep{relayed(queryCmd("DO 1; SELECT * FROM missing; DO 3"),
				okP(0, 0, stAC|stMore, ""), errP(mysql.ER_NO_SUCH_TABLE, "Table 'shop.missing' doesn't exist"))}
		}},
		{name: "CALL", steps: func(c uint32) []gstep {
			return []gstep{relayed(queryCmd("CALL p()"), catP(
				resultSet(c, stAC|stMore, 2, textRow([]byte("1"), []byte("a"))),
				resultSet(c, stAC|stMore, 1),
				[][]byte{okP(0, 0, stAC, "")},
			)...)}
		}, check: func(t *testing.T, f Facts, s *session) {
			if f.InTransaction || !f.Autocommit {
				t.Errorf("facts %+v after the CALL's final OK", s.facts)
			}
		}},
		{name: "status of the last terminator", steps: func(c uint32) []gstep {
			return []gstep{relayed(queryCmd("SELECT 1 FOR UPDATE"), resultSet(c, stAC|mysql.SERVER_STATUS_IN_TRANS, 1, textRow([]byte("1")))...)}
		}, check: func(t *testing.T, f Facts, s *session) {
			if !f.InTransaction {
				t.Error("the terminator's IN_TRANS was not noted")
			}
		}},
	})
}

func TestGrammarLocalInfile(t *testing.T) {
	load := queryCmd("LOAD DATA LOCAL INFILE 'f.csv' INTO TABLE t")
	request := nodeAnswer(append([]byte{0xfb}, "f.csv"...))
	runGrammar(t, []grammarCase{
		{name: "file", steps: func(c uint32) []gstep {
			file := framesFrom(2, []byte("1,a\n"), []byte("2,b\n"), nil)
			return []gstep{
				{send: load, reply: request},
				{send: file, reply: framesFrom(5, okP(2, 0, stAC, "Records: 2  Deleted: 0  Skipped: 0  Warnings: 0"))},
			}
		}},
		{name: "refused by the client", steps: func(c uint32) []gstep {
			return []gstep{
				{send: load, reply: request},
				{send: framesFrom(2, nil), reply: framesFrom(3, errP(mysql.ER_UNKNOWN_ERROR, "file not found"))},
			}
		}},
		{name: "chunk of 2^24-1 bytes", steps: func(c uint32) []gstep {
			// A full chunk, its empty continuation, then the empty packet
			// that ends the file: tandem reads logical packets.
			file := framesFrom(2, bytes.Repeat([]byte("1,a\n"), maxPayload/4+1)[:maxPayload], nil)
			return []gstep{
				{send: load, reply: request},
				{send: file, reply: framesFrom(5, okP(1, 0, stAC, ""))},
			}
		}},
		{name: "in a multi-statement", steps: func(c uint32) []gstep {
			q := queryCmd("LOAD DATA LOCAL INFILE 'f.csv' INTO TABLE t; SELECT COUNT(*) FROM t")
			return []gstep{
				{send: q, reply: request},
				{send: framesFrom(2, []byte("1,a\n"), nil), reply: framesFrom(4, catP(
					[][]byte{okP(1, 0, stAC|stMore, "")},
					resultSet(c, stAC, 1, textRow([]byte("1"))),
				)...)},
			}
		}},
	})
}

func TestGrammarLargePackets(t *testing.T) {
	runGrammar(t, []grammarCase{
		{name: "row of 2^24-1 bytes", steps: func(c uint32) []gstep {
			// 0xfd, a 3-byte length and the value: exactly one full
			// chunk, then an empty one.
			row := textRow(bigValue(maxPayload - 4))
			if len(row) != maxPayload {
				panic(len(row))
			}
			return []gstep{relayed(queryCmd("SELECT big"), resultSet(c, stAC, 1, row, textRow([]byte("after")))...)}
		}},
		{name: "row starting with 0xfe", steps: func(c uint32) []gstep {
			// A first column of 2^24 bytes has an 8-byte length: the
			// row starts with 0xfe, like an EOF or an OK with header
			// 0xfe, but its first chunk is full.
			row := textRow(bigValue(1<<24), []byte("b"))
			if row[0] != 0xfe {
				panic("not 0xfe")
			}
			return []gstep{relayed(queryCmd("SELECT huge, b"), resultSet(c, stAC, 2, row, textRow([]byte("s"), []byte("b")))...)}
		}},
		{name: "command of 2^24-1 bytes", steps: func(c uint32) []gstep {
			// Chunks 0 and 1 (empty) from the client: the answer starts
			// at sequence id 2.
			q := framesFrom(0, bigCommand(mysql.COM_QUERY, 0))
			return []gstep{{send: q, reply: framesFrom(2, okP(0, 0, stAC, ""))}}
		}},
		{name: "OK terminator longer than an EOF", caps: []uint32{gramDeprecateEOF}, steps: func(c uint32) []gstep {
			// With CLIENT_DEPRECATE_EOF any packet starting with 0xfe
			// whose first chunk is not full ends the rows, however long.
			rs := resultSet(c, stAC, 1, textRow([]byte("1")))
			end := okP(0, 0, stAC, strings.Repeat("info ", 20))
			end[0] = 0xfe
			rs[len(rs)-1] = end
			return []gstep{relayed(queryCmd("SELECT 1"), rs...)}
		}},
	})
}

func TestGrammarPreparedStatements(t *testing.T) {
	runGrammar(t, []grammarCase{
		{name: "prepare", steps: func(c uint32) []gstep {
			return []gstep{
				relayed(cmdPacket(mysql.COM_STMT_PREPARE, []byte("DO 1")), preparedAnswer(c, 1, 0, 0)...),
				relayed(cmdPacket(mysql.COM_STMT_PREPARE, []byte("INSERT INTO t VALUES (?, ?)")), preparedAnswer(c, 2, 0, 2)...),
				relayed(cmdPacket(mysql.COM_STMT_PREPARE, []byte("SELECT a, b, c FROM t")), preparedAnswer(c, 3, 3, 0)...),
				relayed(cmdPacket(mysql.COM_STMT_PREPARE, []byte("SELECT a FROM t WHERE b = ? AND c = ?")), preparedAnswer(c, 4, 1, 2)...),
				relayed(cmdPacket(mysql.COM_STMT_PREPARE, []byte("SELECT * FROM missing")), errP(mysql.ER_NO_SUCH_TABLE, "Table 'shop.missing' doesn't exist")),
			}
		}, check: func(t *testing.T, f Facts, s *session) {
			if len(f.Prepared) != 4 || f.Prepared[2] != "INSERT INTO t VALUES (?, ?)" {
				t.Errorf("prepared statements %v", f.Prepared)
			}
			if s.lastStmt != 0 {
				t.Errorf("last statement %d after a failed prepare; want none", s.lastStmt)
			}
		}},
		{name: "execute", steps: func(c uint32) []gstep {
			return []gstep{
				relayed(cmdPacket(mysql.COM_STMT_PREPARE, []byte("SELECT a, b FROM t")), preparedAnswer(c, 1, 2, 0)...),
				relayed(executeCmd(1, 0), resultSet(c, stAC, 2, binRow(1, 2), binRow(3, 4))...),
				relayed(executeCmd(1, 0), resultSet(c, stAC, 2)...),
				relayed(executeCmd(9, 0), errP(mysql.ER_UNKNOWN_STMT_HANDLER, "Unknown prepared statement handler (9) given to mysqld_stmt_execute")),
				relayed(cmdPacket(mysql.COM_STMT_PREPARE, []byte("UPDATE t SET a = 1")), preparedAnswer(c, 2, 0, 0)...),
				relayed(executeCmd(2, 0), okP(5, 0, stAC, "")),
			}
		}},
		{name: "CALL with OUT parameters", steps: func(c uint32) []gstep {
			out := resultSet(c, stAC|stMore|mysql.SERVER_PS_OUT_PARAMS, 1, binRow(7))
			return []gstep{
				relayed(cmdPacket(mysql.COM_STMT_PREPARE, []byte("CALL p(?)")), preparedAnswer(c, 1, 0, 1)...),
				relayed(executeCmd(1, 0), catP(resultSet(c, stAC|stMore, 2, binRow(1, 2)), out, [][]byte{okP(0, 0, stAC, "")})...),
			}
		}},
		{name: "cursor", steps: func(c uint32) []gstep {
			cursor := stAC | mysql.SERVER_STATUS_CURSOR_EXISTS
			// The execute answers the column definitions only, ended
			// by an EOF (or OK) with SERVER_STATUS_CURSOR_EXISTS.
			opened := [][]byte{{2}, colDef("a"), colDef("b"), termP(c, cursor)}
			return []gstep{
				relayed(cmdPacket(mysql.COM_STMT_PREPARE, []byte("SELECT a, b FROM t")), preparedAnswer(c, 1, 2, 0)...),
				relayed(executeCmd(1, mysql.CURSOR_TYPE_READ_ONLY), opened...),
				relayed(fetchCmd(1, 2), binRow(1, 2), binRow(3, 4), termP(c, cursor)),
				relayed(fetchCmd(1, 2), binRow(5, 6), termP(c, stAC|mysql.SERVER_STATUS_LAST_ROW_SEND)),
				relayed(fetchCmd(1, 2), errP(mysql.ER_STMT_HAS_NO_OPEN_CURSOR, "The statement (1) has no open cursor")),
				// Executed again, with an empty result: LAST_ROW_SENT
				// on the first fetch.
				relayed(executeCmd(1, mysql.CURSOR_TYPE_READ_ONLY), opened...),
				relayed(fetchCmd(1, 100), termP(c, stAC|mysql.SERVER_STATUS_LAST_ROW_SEND)),
			}
		}},
		{name: "long data, reset and close", steps: func(c uint32) []gstep {
			long := func(param uint16, data string) []byte {
				return cmdPacket(mysql.COM_STMT_SEND_LONG_DATA, u32(1), binary.LittleEndian.AppendUint16(nil, param), []byte(data))
			}
			// One parameter, sent as long data: new-params-bound 1,
			// type MYSQL_TYPE_BLOB, no value in the packet.
			exec := cmdPacket(mysql.COM_STMT_EXECUTE, u32(1), []byte{0}, u32(1), []byte{0, 1, mysql.MYSQL_TYPE_BLOB, 0})
			return []gstep{
				relayed(cmdPacket(mysql.COM_STMT_PREPARE, []byte("INSERT INTO t (doc) VALUES (?)")), preparedAnswer(c, 1, 0, 1)...),
				{send: long(0, "first part, ")}, // no answer
				{send: long(0, "second part")},
				relayed(exec, okP(1, 0, stAC, "")),
				relayed(cmdPacket(mysql.COM_STMT_RESET, u32(1)), okP(0, 0, stAC, "")),
				relayed(cmdPacket(mysql.COM_STMT_RESET, u32(8)), errP(mysql.ER_UNKNOWN_STMT_HANDLER, "Unknown prepared statement handler (8) given to mysqld_stmt_reset")),
				{send: cmdPacket(mysql.COM_STMT_CLOSE, u32(1))}, // no answer
			}
		}, check: func(t *testing.T, f Facts, s *session) {
			// COM_STMT_CLOSE has no answer: look at the ended session.
			if len(s.facts.Prepared) != 0 || s.lastStmt != 0 {
				t.Errorf("prepared %v, last %d after COM_STMT_CLOSE", s.facts.Prepared, s.lastStmt)
			}
		}},
	})
}

func TestGrammarOtherCommands(t *testing.T) {
	stats := "Uptime: 4242  Threads: 3  Questions: 17  Slow queries: 0  Opens: 33  Open tables: 26  Queries per second avg: 0.004"
	runGrammar(t, []grammarCase{
		{name: "COM_PING", steps: func(c uint32) []gstep { return []gstep{pingStep} }},
		{name: "COM_STATISTICS", steps: func(c uint32) []gstep {
			return []gstep{relayed(cmdPacket(mysql.COM_STATISTICS), []byte(stats))}
		}},
		{name: "COM_FIELD_LIST", steps: func(c uint32) []gstep {
			withDefault := func(name string) []byte { return append(colDef(name), 0xfb) } // NULL default
			return []gstep{
				relayed(cmdPacket(mysql.COM_FIELD_LIST, []byte("t\x00")), withDefault("a"), withDefault("b"), termP(c, stAC)),
				relayed(cmdPacket(mysql.COM_FIELD_LIST, []byte("missing\x00")), errP(mysql.ER_NO_SUCH_TABLE, "Table 'shop.missing' doesn't exist")),
			}
		}},
		{name: "COM_PROCESS_INFO", steps: func(c uint32) []gstep {
			return []gstep{relayed(cmdPacket(mysql.COM_PROCESS_INFO), resultSet(c, stAC, 3, textRow([]byte("5"), []byte("app"), nil))...)}
		}},
		{name: "COM_INIT_DB", steps: func(c uint32) []gstep {
			return []gstep{
				relayed(cmdPacket(mysql.COM_INIT_DB, []byte("shop")), okP(0, 0, stAC, "")),
				relayed(cmdPacket(mysql.COM_INIT_DB, []byte("nope")), errP(mysql.ER_BAD_DB_ERROR, "Unknown database 'nope'")),
			}
		}, check: func(t *testing.T, f Facts, s *session) {
			if f.Schema != "shop" {
				t.Errorf("schema %q", f.Schema)
			}
		}},
		{name: "COM_RESET_CONNECTION", steps: func(c uint32) []gstep {
			return []gstep{
				relayed(cmdPacket(mysql.COM_STMT_PREPARE, []byte("DO 1")), preparedAnswer(c, 1, 0, 0)...),
				relayed(cmdPacket(mysql.COM_RESET_CONNECTION), okP(0, 0, stAC, "")),
			}
		}, check: func(t *testing.T, f Facts, s *session) {
			if len(f.Prepared) != 0 || s.lastStmt != 0 {
				t.Errorf("prepared %v, last %d after COM_RESET_CONNECTION", f.Prepared, s.lastStmt)
			}
		}},
		{name: "COM_REFRESH and COM_DEBUG", steps: func(c uint32) []gstep {
			return []gstep{
				relayed(cmdPacket(mysql.COM_REFRESH, []byte{1}), okP(0, 0, stAC, "")),
				relayed(cmdPacket(mysql.COM_DEBUG), termP(c, stAC)),
			}
		}},
		{name: "COM_SET_OPTION", steps: func(c uint32) []gstep {
			return []gstep{
				relayed(cmdPacket(mysql.COM_SET_OPTION, []byte{1, 0}), termP(c, stAC)), // multi-statements off
				relayed(cmdPacket(mysql.COM_SET_OPTION, []byte{7, 0}), errP(mysql.ER_UNKNOWN_COM_ERROR, "Unknown command")),
			}
		}, check: func(t *testing.T, f Facts, s *session) {
			if s.caps&mysql.CLIENT_MULTI_STATEMENTS != 0 {
				t.Error("multi-statements still on after COM_SET_OPTION turned them off")
			}
		}},
		{name: "EOF with many warnings", caps: []uint32{gramCaps}, steps: func(c uint32) []gstep {
			// 251 warnings: the EOF's status is at a fixed offset, not
			// after two length-encoded integers.
			return []gstep{relayed(cmdPacket(mysql.COM_DEBUG), eofP(251, stAC|mysql.SERVER_STATUS_IN_TRANS))}
		}, check: func(t *testing.T, f Facts, s *session) {
			if !f.InTransaction {
				t.Error("the EOF's IN_TRANS status was misread")
			}
		}},
		{name: "tandem's own answers", steps: func(c uint32) []gstep {
			// Commands tandem answers itself: the node gets nothing.
			own := func(code uint16, format string, args ...any) []byte {
				return nodeAnswer(appendErr(nil, newError(code, format, args...)))
			}
			return []gstep{
				{send: cmdPacket(mysql.COM_SLEEP), node: noBytes, want: own(erUnknownCom, "Unknown command 0x00")},
				{send: cmdPacket(mysql.COM_BINLOG_DUMP, u32(4), []byte{0, 0}, u32(1)), node: noBytes,
					want: own(erNotSupportedYet, "tandem does not relay replication commands; connect a replica to a node directly")},
			}
		}},
	})
}

// COM_QUIT ends the session without reaching the node.
func TestGrammarQuit(t *testing.T) {
	ss := startScripted(t, gramCaps)
	runSteps(t, ss.client, ss.node, []gstep{relayed(queryCmd("DO 1"), okP(0, 0, stAC, ""))})
	if _, err := ss.client.Write(cmdPacket(mysql.COM_QUIT)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ss.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("COM_QUIT did not end the session")
	}
	ss.s.closeConns()
	_ = ss.node.SetReadDeadline(time.Now().Add(30 * time.Second))
	if rest, err := io.ReadAll(ss.node); err != nil || len(rest) > 0 {
		t.Fatalf("node got % x (%v)", rest, err)
	}
}

// --- statement ids after a move.

// fakeLogin is a node that accepts any login, then hands the connection
// to the test with the handshake response it got.
type fakeLogin struct {
	addr  string
	conns chan loggedIn
}

type loggedIn struct {
	conn net.Conn
	resp *handshakeResponse
}

func startFakeLogin(t *testing.T) *fakeLogin {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeLogin{addr: l.Addr().String(), conns: make(chan loggedIn, 4)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for id := uint32(500); ; id++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			g := &greeting{Version: "10.11.0-fake", ConnID: id, Salt: []byte("abcdefghij0123456789"),
				Caps: supportedCaps | requiredCaps, Collation: 45, AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}
			if writeRaw(c, 0, appendGreeting(nil, g)) != nil {
				continue
			}
			p, seq, err := readPacket(c, nil, 1<<16)
			if err != nil {
				continue
			}
			resp, err := parseHandshakeResponse(p)
			if err != nil || writeRaw(c, seq+1, appendOK(nil, stAC, 0)) != nil {
				continue
			}
			_ = c.SetDeadline(time.Time{})
			f.conns <- loggedIn{c, resp}
		}
	}()
	return f
}

func (f *fakeLogin) next(t *testing.T) loggedIn {
	t.Helper()
	select {
	case li := <-f.conns:
		return li
	case <-time.After(30 * time.Second):
		t.Fatal("no login reached the new node")
		return loggedIn{}
	}
}

// moveRig is a scripted session on node "a" of a proxy whose node "b" is
// a fakeLogin.
type moveRig struct {
	*scriptedSession
	b *fakeLogin
}

func startMoveRig(t *testing.T, caps uint32) *moveRig {
	t.Helper()
	b := startFakeLogin(t)
	p, err := New(Config{HoldTimeout: 30 * time.Second}, []*Node{{Name: "a", Address: "127.0.0.1:1"}, {Name: "b", Address: b.addr}}, "a")
	if err != nil {
		t.Fatal(err)
	}
	return &moveRig{startScriptedOn(t, p, caps), b}
}

// move routes to b and sends first, which makes the session move: the old
// node gets COM_QUIT, b a login and the re-preparation of every statement
// (answered with ids[text]); it returns b's connection, on which first
// is to arrive next.
func (m *moveRig) move(t *testing.T, caps uint32, first []byte, ids map[string]uint32) loggedIn {
	t.Helper()
	if err := m.s.p.Route("b"); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = m.client.Write(first) }()
	li := m.b.next(t)
	_ = li.conn.SetDeadline(time.Now().Add(30 * time.Second))
	for range ids {
		p, _, err := readPacket(li.conn, nil, 1<<20)
		if err != nil || len(p) == 0 || p[0] != mysql.COM_STMT_PREPARE {
			t.Fatalf("new node got % x, %v; want a COM_STMT_PREPARE", p, err)
		}
		id, ok := ids[string(p[1:])]
		if !ok {
			t.Fatalf("new node asked to prepare %q", p[1:])
		}
		if _, err := li.conn.Write(nodeAnswer(preparedAnswer(caps, id, 0, 0)...)); err != nil {
			t.Fatal(err)
		}
	}
	_ = li.conn.SetDeadline(time.Time{})
	// The old connection is closed once the new one is ready.
	expectBytes(t, m.node, cmdPacket(mysql.COM_QUIT), "old node")
	return li
}

// relayFirst checks that the command move sent reaches the new node as
// want, and relays the node's answer back.
func (m *moveRig) relayFirst(t *testing.T, li loggedIn, want, nodeAnswer []byte) {
	t.Helper()
	expectBytes(t, li.conn, want, "new node")
	if _, err := li.conn.Write(nodeAnswer); err != nil {
		t.Fatal(err)
	}
	expectBytes(t, m.client, nodeAnswer, "client")
}

// After a move the client keeps its statement ids; the node's differ, and
// tandem maps every COM_STMT_* between the two.
func TestGrammarStatementIDsAfterMove(t *testing.T) {
	for _, c := range []uint32{gramCaps, gramDeprecateEOF} {
		m := startMoveRig(t, c)
		prep := func(text string) []byte { return cmdPacket(mysql.COM_STMT_PREPARE, []byte(text)) }
		runSteps(t, m.client, m.node, []gstep{
			relayed(prep("SELECT 1"), preparedAnswer(c, 1, 0, 0)...),
			relayed(prep("SELECT 2"), preparedAnswer(c, 2, 0, 0)...),
		})
		li := m.move(t, c, executeCmd(1, 0), map[string]uint32{"SELECT 1": 21, "SELECT 2": 22})
		node := li.conn
		ok := nodeAnswer(okP(0, 0, stAC, ""))
		m.relayFirst(t, li, executeCmd(21, 0), ok)
		unknown := nodeAnswer(errP(mysql.ER_UNKNOWN_STMT_HANDLER, "Unknown prepared statement handler"))
		// The client's next statement id skips those it holds; the
		// node's (5) comes back as the client's (3).
		prepared3 := nodeAnswer(preparedAnswer(c, 3, 0, 0)...)
		runSteps(t, m.client, node, []gstep{
			{send: fetchCmd(2, 1), node: fetchCmd(22, 1), reply: nodeAnswer(termP(c, stAC|mysql.SERVER_STATUS_LAST_ROW_SEND))},
			{send: cmdPacket(mysql.COM_STMT_SEND_LONG_DATA, u32(2), []byte{0, 0}, []byte("x")),
				node: cmdPacket(mysql.COM_STMT_SEND_LONG_DATA, u32(22), []byte{0, 0}, []byte("x"))},
			{send: cmdPacket(mysql.COM_STMT_RESET, u32(2)), node: cmdPacket(mysql.COM_STMT_RESET, u32(22)), reply: ok},
			// An id the session never had must not reach whatever the
			// node holds under that number.
			{send: executeCmd(21, 0), node: executeCmd(unknownStmt, 0), reply: unknown},
			{send: prep("SELECT 3"), reply: nodeAnswer(preparedAnswer(c, 5, 0, 0)...), want: prepared3},
			{send: executeCmd(3, 0), node: executeCmd(5, 0), reply: ok},
			// The "last prepared statement" id is the client's last.
			{send: executeCmd(lastPreparedID, 0), node: executeCmd(5, 0), reply: ok},
			{send: cmdPacket(mysql.COM_STMT_CLOSE, u32(3)), node: cmdPacket(mysql.COM_STMT_CLOSE, u32(5))},
			{send: executeCmd(lastPreparedID, 0), node: executeCmd(unknownStmt, 0), reply: unknown},
			{send: cmdPacket(mysql.COM_STMT_CLOSE, u32(1)), node: cmdPacket(mysql.COM_STMT_CLOSE, u32(21))},
			{send: executeCmd(1, 0), node: executeCmd(unknownStmt, 0), reply: unknown},
		})
		endInStep(t, m.scriptedSession, node)
	}
}

// A COM_STMT_EXECUTE for "the statement prepared last" (id 0xffffffff, as
// MariaDB Connector/J pipelines it after COM_STMT_PREPARE) that arrives
// just as the session moves runs the client's last statement, not the
// last one tandem re-prepared on the new node.
func TestGrammarLastStatementAfterMove(t *testing.T) {
	for _, last := range []string{"SELECT 1", "SELECT 2"} {
		m := startMoveRig(t, gramCaps)
		first := map[string]uint32{"SELECT 1": 1, "SELECT 2": 2}
		for _, text := range []string{"SELECT 1", "SELECT 2"} {
			if text != last {
				runSteps(t, m.client, m.node, []gstep{relayed(cmdPacket(mysql.COM_STMT_PREPARE, []byte(text)), preparedAnswer(gramCaps, first[text], 0, 0)...)})
			}
		}
		runSteps(t, m.client, m.node, []gstep{relayed(cmdPacket(mysql.COM_STMT_PREPARE, []byte(last)), preparedAnswer(gramCaps, first[last], 0, 0)...)})
		ids := map[string]uint32{"SELECT 1": 31, "SELECT 2": 32}
		li := m.move(t, gramCaps, executeCmd(lastPreparedID, 0), ids)
		m.relayFirst(t, li, executeCmd(ids[last], 0), nodeAnswer(okP(0, 0, stAC, "")))
		endInStep(t, m.scriptedSession, li.conn)
	}
}

// COM_SET_OPTION lasts for the session: a move logs in to the new node
// with multi-statements as the client last set them.
func TestGrammarSetOptionSurvivesMove(t *testing.T) {
	for _, on := range []bool{true, false} {
		caps := uint32(gramCaps)
		opt := []byte{0, 0} // MYSQL_OPTION_MULTI_STATEMENTS_ON
		if on {
			caps &^= mysql.CLIENT_MULTI_STATEMENTS
		} else {
			opt = []byte{1, 0}
		}
		m := startMoveRig(t, caps)
		runSteps(t, m.client, m.node, []gstep{relayed(cmdPacket(mysql.COM_SET_OPTION, opt), eofP(0, stAC))})
		li := m.move(t, caps, cmdPacket(mysql.COM_PING), nil)
		if got := li.resp.Caps&mysql.CLIENT_MULTI_STATEMENTS != 0; got != on {
			t.Errorf("multi-statements %v on the new node's login; the client set %v", got, on)
		}
		m.relayFirst(t, li, cmdPacket(mysql.COM_PING), nodeAnswer(okP(0, 0, stAC, "")))
		endInStep(t, m.scriptedSession, li.conn)
	}
}

// --- a node answering garbage.

// fuzzCommands are the commands FuzzNodeResponse sends, one per response
// grammar of conn.go.
var fuzzCommands = [][]byte{
	append([]byte{mysql.COM_QUERY}, "SELECT 1"...),
	append(append([]byte{mysql.COM_STMT_EXECUTE}, u32(1)...), 0, 1, 0, 0, 0),
	append(append([]byte{mysql.COM_STMT_EXECUTE}, u32(1)...), mysql.CURSOR_TYPE_READ_ONLY, 1, 0, 0, 0),
	append(append([]byte{mysql.COM_STMT_FETCH}, u32(1)...), u32(10)...),
	append([]byte{mysql.COM_STMT_PREPARE}, "SELECT ?"...),
	append([]byte{mysql.COM_STMT_RESET}, u32(1)...),
	append([]byte{mysql.COM_FIELD_LIST}, "t\x00"...),
	{mysql.COM_PROCESS_INFO},
	{mysql.COM_STATISTICS},
	{mysql.COM_PING},
	{mysql.COM_SET_OPTION, 1, 0},
	{mysql.COM_RESET_CONNECTION},
	append([]byte{mysql.COM_INIT_DB}, "shop"...),
}

// FuzzNodeResponse: whatever a node answers a command with, the session
// relays it to the client byte for byte, possibly followed by one ERR of
// its own (the node "failed" before the end of its answer); when it
// reports a complete response, it relayed exactly the bytes it consumed.
// It never panics and, the input being finite, always returns. client is
// what the client sends after the command (a LOCAL INFILE upload).
func FuzzNodeResponse(f *testing.F) {
	for _, caps := range []uint32{gramCaps, gramDeprecateEOF} {
		dep := caps == gramDeprecateEOF
		rs := framesFrom(1, resultSet(caps, stAC, 2, textRow([]byte("1"), nil), textRow(bigValue(300), []byte("x")))...)
		f.Add(uint8(0), dep, rs, []byte(nil))
		multi := framesFrom(1, catP(resultSet(caps, stAC|stMore, 1, textRow([]byte("1"))), [][]byte{okP(1, 0, stAC|stMore, "")}, [][]byte{errP(1146, "no")})...)
		f.Add(uint8(0), dep, multi, []byte(nil))
		infile := append(framesFrom(1, []byte{0xfb, 'f'}), framesFrom(4, okP(1, 0, stAC, ""))...)
		f.Add(uint8(0), dep, infile, framesFrom(2, []byte("1\n"), nil))
		f.Add(uint8(1), dep, framesFrom(1, resultSet(caps, stAC, 2, binRow(1, 2))...), []byte(nil))
		f.Add(uint8(2), dep, framesFrom(1, []byte{2}, colDef("a"), colDef("b"), termP(caps, stAC|mysql.SERVER_STATUS_CURSOR_EXISTS)), []byte(nil))
		f.Add(uint8(3), dep, framesFrom(1, binRow(1), termP(caps, stAC|mysql.SERVER_STATUS_LAST_ROW_SEND)), []byte(nil))
		f.Add(uint8(4), dep, framesFrom(1, preparedAnswer(caps, 1, 1, 1)...), []byte(nil))
		f.Add(uint8(6), dep, framesFrom(1, colDef("a"), termP(caps, stAC)), []byte(nil))
		f.Add(uint8(10), dep, framesFrom(1, termP(caps, stAC)), []byte(nil))
	}
	f.Add(uint8(8), false, framesFrom(1, []byte("Uptime: 1")), []byte(nil))
	f.Add(uint8(0), false, []byte{9, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []byte(nil))
	f.Add(uint8(4), true, []byte{12, 0, 0, 1, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0}, []byte(nil))
	f.Add(uint8(0), true, []byte{0xff, 0xff, 0xff, 1, 0xfe}, []byte(nil))
	p, err := New(Config{}, []*Node{{Name: "fake", Address: "127.0.0.1:1"}}, "fake")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, deprecate bool, node, client []byte) {
		caps := uint32(gramCaps)
		if deprecate {
			caps = gramDeprecateEOF
		}
		command := fuzzCommands[int(which)%len(fuzzCommands)]
		conn, other := net.Pipe() // only for deadlines
		defer conn.Close()
		defer other.Close()
		fromNode := bytes.NewReader(node)
		var out bytes.Buffer
		s := &session{p: p, client: conn, caps: caps, route: p.route.Load()}
		s.be = &backend{node: p.Active(), conn: conn, caps: caps,
			rw: struct {
				io.Reader
				io.Writer
			}{fromNode, io.Discard}}
		s.crd = &clientReader{conn: conn, r: bytes.NewReader(append(framesFrom(0, command), client...)), timeout: time.Second}
		s.cwr = &clientWriter{conn: conn, w: &out, timeout: time.Second}
		s.cr = bufio.NewReaderSize(s.crd, clientBufSize)
		s.facts.reset("", 45)
		length, _, err := readHeader(s.cr, &s.hdr)
		if err != nil {
			t.Fatal(err)
		}
		r := s.getRelay()
		err = s.command(r, command[0], length)
		if ferr := r.cw.Flush(); ferr != nil {
			t.Fatal(ferr)
		}
		got := out.Bytes()
		k := 0
		for k < len(got) && k < len(node) && got[k] == node[k] {
			k++
		}
		if k < len(got) {
			// Some prefix of the node's bytes, then one ERR packet.
			for j := k; j >= 0; j-- {
				own := got[j:]
				n, _, herr := readHeader(bytes.NewReader(own), &[headerLen]byte{})
				if _, ok := parseErr(own[min(headerLen, len(own)):]); herr == nil && len(own) == headerLen+n && ok {
					return
				}
			}
			t.Fatalf("client got % x after the node's first %d bytes: not one ERR packet", got[k:], k)
		}
		consumed := len(node) - fromNode.Len() - r.br.Buffered()
		if err == nil && k != consumed {
			t.Fatalf("complete response: relayed %d bytes of the %d consumed", k, consumed)
		}
	})
}

// --- failures on the client's side are not the node's.

// startNodeFailedRig is a scripted session whose NodeFailed calls land in
// the returned channel.
func startNodeFailedRig(t *testing.T) (*scriptedSession, chan string) {
	t.Helper()
	failed := make(chan string, 4)
	return startScriptedWith(t, gramCaps, Config{NodeFailed: func(n string) { failed <- n }}), failed
}

// sessionEnds waits for the session to end with an error, and checks
// that it did not blame the node.
func sessionEnds(t *testing.T, ss *scriptedSession, failed chan string) {
	t.Helper()
	select {
	case err := <-ss.done:
		if err == nil || !strings.Contains(err.Error(), "client") {
			t.Errorf("session ended with %v; want the client's failure", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the session did not end")
	}
	select {
	case n := <-failed:
		t.Errorf("NodeFailed(%q) for the client's failure", n)
	default:
	}
}

// A client that goes away in the middle of its LOCAL INFILE upload ends
// its session without the node being reported as failed.
func TestGrammarClientGoneDuringInfile(t *testing.T) {
	ss, failed := startNodeFailedRig(t)
	load := queryCmd("LOAD DATA LOCAL INFILE 'f.csv' INTO TABLE t")
	runSteps(t, ss.client, ss.node, []gstep{{send: load, reply: nodeAnswer([]byte{0xfb, 'f'})}})
	half := framesFrom(2, []byte("1,a\n2,b\n"))
	if _, err := ss.client.Write(half[:len(half)-3]); err != nil {
		t.Fatal(err)
	}
	ss.client.Close()
	sessionEnds(t, ss, failed)
}

// A client that goes away while a result streams to it ends its session
// without the node being reported as failed.
func TestGrammarClientGoneDuringResult(t *testing.T) {
	ss, failed := startNodeFailedRig(t)
	if _, err := ss.client.Write(queryCmd("SELECT big")); err != nil {
		t.Fatal(err)
	}
	expectBytes(t, ss.node, queryCmd("SELECT big"), "node")
	rows := make([][]byte, 400)
	for i := range rows {
		rows[i] = textRow(bigValue(64 << 10))
	}
	go func() { _, _ = ss.node.Write(framesFrom(1, resultSet(gramCaps, stAC, 1, rows...)...)) }()
	// Read the start of the result, then leave.
	_ = ss.client.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.ReadFull(ss.client, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	ss.client.Close()
	sessionEnds(t, ss, failed)
}
