package proxy

// Settling against a scripted node: the marker tandem adds, the bounds it
// passes, and the answer the client gets for each outcome of the check.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// settleRig is a scripted session with a Settle hook the test answers.
type settleRig struct {
	*scriptedSession
	mu   sync.Mutex
	reqs []SettleRequest
	res  SettleResult
}

func startSettleRig(t *testing.T, res SettleResult) *settleRig {
	t.Helper()
	rig := &settleRig{res: res}
	cfg := Config{HoldTimeout: 5 * time.Second, Settle: func(_ context.Context, req SettleRequest) SettleResult {
		rig.mu.Lock()
		defer rig.mu.Unlock()
		rig.reqs = append(rig.reqs, req)
		return rig.res
	}}
	p, err := New(cfg, []*Node{{Name: "old", Address: "127.0.0.1:1"}, {Name: "new", Address: "127.0.0.1:1"}}, "old")
	if err != nil {
		t.Fatal(err)
	}
	cTest, cProxy := tcpPair(t)
	nProxy, nTest := tcpPair(t)
	caps := uint32(mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_TRANSACTIONS)
	s := &session{p: p, id: 7, client: cProxy, caps: caps, route: p.route.Load(), admitted: true}
	s.be = &backend{node: p.nodes[0], conn: nProxy, rw: newConnIO(nProxy), caps: caps, threadID: 99}
	s.cio = newConnIO(cProxy)
	s.crd = &clientReader{conn: cProxy, r: s.cio, timeout: time.Second}
	s.cwr = &clientWriter{conn: cProxy, w: s.cio, timeout: time.Second}
	s.cr = bufio.NewReaderSize(s.crd, clientBufSize)
	s.facts.reset("", 45)
	s.lastCmd = time.Now()
	rig.scriptedSession = &scriptedSession{s: s, client: cTest, node: nTest, done: make(chan error, 1)}
	go func() { rig.done <- s.commandLoop() }()
	return rig
}

// send writes a COM_QUERY from the client and returns what the node got.
func (r *settleRig) send(t *testing.T, query string) string {
	t.Helper()
	if _, err := r.client.Write(packet(0, append([]byte{mysql.COM_QUERY}, query...))); err != nil {
		t.Fatal(err)
	}
	_ = r.node.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, _, err := readPacket(r.node, nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return string(p[1:])
}

// nodeOK answers the command with an OK packet and relays it to the client.
func (r *settleRig) nodeOK(t *testing.T, rows uint64, status uint16) {
	t.Helper()
	if _, err := r.node.Write(packet(1, appendOKInfo(nil, rows, 0, status, "", 0))); err != nil {
		t.Fatal(err)
	}
	r.clientPacket(t)
}

// clientPacket reads one packet the client gets.
func (r *settleRig) clientPacket(t *testing.T) []byte {
	t.Helper()
	_ = r.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, _, err := readPacket(r.client, nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSettleMarksAndAnswers(t *testing.T) {
	ac := uint16(mysql.SERVER_STATUS_AUTOCOMMIT)
	inTx := ac | mysql.SERVER_STATUS_IN_TRANS
	for _, tt := range []struct {
		name   string
		res    SettleResult
		commit bool
		check  func(t *testing.T, p []byte)
	}{
		{"insert committed", SettleResult{Known: true, Committed: true, AffectedRows: 3, RowsKnown: true, InsertID: 42}, false,
			func(t *testing.T, p []byte) {
				rows, pos, _ := lenEncInt(p, 1)
				id, _, _ := lenEncInt(p, pos)
				if p[0] != 0 || rows != 3 || id != 42 || !bytes.Contains(p, []byte("committed")) {
					t.Errorf("client got % x; want OK with 3 rows, insert id 42", p)
				}
			}},
		{"commit committed", SettleResult{Known: true, Committed: true}, true,
			func(t *testing.T, p []byte) {
				if p[0] != 0 {
					t.Errorf("client got % x; want OK", p)
				}
			}},
		{"not committed", SettleResult{Known: true}, true,
			func(t *testing.T, p []byte) {
				e, _ := parseErr(p)
				if e.Code != 1213 || e.State != "40001" || !strings.Contains(e.Message, "not committed") || !strings.Contains(e.Message, "checked on node new") {
					t.Errorf("client got %+v; want 1213 40001 saying not committed, checked", e)
				}
			}},
		{"unknown", SettleResult{Why: "binlog gone"}, false,
			func(t *testing.T, p []byte) {
				e, _ := parseErr(p)
				if e.Code != 1317 || !strings.Contains(e.Message, "binlog gone") {
					t.Errorf("client got %+v; want 1317 with the reason", e)
				}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rig := startSettleRig(t, tt.res)
			// An acknowledged write: the bound for the next one.
			first := rig.send(t, "INSERT INTO t VALUES (1)")
			if !strings.HasPrefix(first, MarkerPrefix) || !strings.HasSuffix(first, ":7:1*/ INSERT INTO t VALUES (1)") {
				t.Fatalf("node got %q; want the statement marked for session 7, transaction 1", first)
			}
			rig.nodeOK(t, 1, ac)
			var marked string
			if tt.commit {
				begin := rig.send(t, "BEGIN")
				rig.nodeOK(t, 0, inTx)
				marked = rig.send(t, "INSERT INTO t VALUES (2)")
				rig.nodeOK(t, 1, inTx)
				// The INSERT's marker is in the binlog if the
				// transaction commits: no savepoint.
				commit := rig.send(t, "COMMIT")
				if begin != "BEGIN" || commit != "COMMIT" || !strings.HasPrefix(marked, MarkerPrefix) {
					t.Fatalf("node got %q, %q, %q; want BEGIN and COMMIT as sent, the INSERT marked", begin, marked, commit)
				}
			} else {
				marked = rig.send(t, "INSERT INTO t VALUES (2), (3), (4)")
			}
			rig.node.Close() // the node dies with the command in flight
			if err := rig.s.p.Route("new"); err != nil {
				t.Fatal(err)
			}
			tt.check(t, rig.clientPacket(t))
			rig.mu.Lock()
			defer rig.mu.Unlock()
			if len(rig.reqs) != 1 {
				t.Fatalf("Settle called %d times", len(rig.reqs))
			}
			req := rig.reqs[0]
			if req.From != "old" || req.To != "new" || req.ThreadID != 99 || !strings.HasPrefix(marked, req.Marker) {
				t.Errorf("request %+v for a command sent as %q", req, marked)
			}
			if len(req.Bounds) != 1 || !strings.HasPrefix(first, req.Bounds[0]) {
				t.Errorf("bounds %q; want the first insert's marker", req.Bounds)
			}
		})
	}
}

func TestSettleSkipsUnmarkedTransactions(t *testing.T) {
	rig := startSettleRig(t, SettleResult{Known: true, Committed: true})
	inTx := uint16(mysql.SERVER_STATUS_AUTOCOMMIT | mysql.SERVER_STATUS_IN_TRANS)
	rig.send(t, "BEGIN")
	rig.nodeOK(t, 0, inTx)
	// A CALL is not marked (its statements are logged without the marker).
	if got := rig.send(t, "CALL p()"); got != "CALL p()" {
		t.Fatalf("node got %q", got)
	}
	rig.nodeOK(t, 1, inTx)
	rig.send(t, "COMMIT")
	rig.node.Close()
	p := rig.clientPacket(t)
	if e, _ := parseErr(p); e.Code != 1317 || !strings.Contains(e.Message, "may or may not") {
		t.Errorf("client got %+v; want today's 1317", e)
	}
	if len(rig.reqs) != 0 {
		t.Errorf("Settle asked about a transaction it cannot settle: %+v", rig.reqs)
	}
}

// A node failing during a statement that may have committed the open
// transaction implicitly gets 1317 ("may or may not have been
// committed"), never 1213 ("lost, retry it"): a retry could apply the
// transaction twice. Statements that leave it open still get 1213.
func TestNodeFailsDuringImplicitCommit(t *testing.T) {
	inTx := uint16(mysql.SERVER_STATUS_AUTOCOMMIT | mysql.SERVER_STATUS_IN_TRANS)
	for _, tt := range []struct {
		stmt string
		code uint16
	}{
		{"CREATE TABLE t2 (id INT)", 1317},
		{"ALTER TABLE t ADD COLUMN c INT", 1317},
		{"BEGIN", 1317},
		{"SET autocommit = 1", 1317},
		{"LOCK TABLES t WRITE", 1317},
		{"LOAD INDEX INTO CACHE t", 1317},
		{"SELECT 1; COMMIT", 1317},
		{"SELECT v FROM t WHERE id = 1", 1213},
		{"LOAD DATA LOCAL INFILE 'x' INTO TABLE t", 1213},
		{"SET @x = 1", 1213},
		{"SAVEPOINT s1", 1213},
	} {
		rig := startSettleRig(t, SettleResult{})
		rig.send(t, "BEGIN")
		rig.nodeOK(t, 0, inTx)
		rig.send(t, "CALL p()") // unmarked: the transaction is not settled
		rig.nodeOK(t, 1, inTx)
		rig.send(t, tt.stmt)
		rig.node.Close()
		e, _ := parseErr(rig.clientPacket(t))
		if e.Code != tt.code {
			t.Errorf("%s in a transaction, node failed: client got %+v; want %d", tt.stmt, e, tt.code)
		}
		if tt.code == 1317 && !strings.Contains(e.Message, "may or may not have been committed") {
			t.Errorf("%s: message %q", tt.stmt, e.Message)
		}
	}
}

func TestSettleBeginNeedsNoCheck(t *testing.T) {
	for _, q := range []string{"BEGIN", "COMMIT", "SHOW TABLES"} {
		rig := startSettleRig(t, SettleResult{})
		rig.send(t, q)
		rig.node.Close()
		if e, _ := parseErr(rig.clientPacket(t)); e.Code != 1213 || !strings.Contains(e.Message, "safe to retry") {
			t.Errorf("%s outside a transaction: client got %+v; want 1213 saying it is safe to retry", q, e)
		}
		if len(rig.reqs) != 0 {
			t.Errorf("%s: Settle asked", q)
		}
	}
}

// TestSettleMarkingCostsNoAllocation: with settling on, an acknowledged
// autocommit write (marked, its marker kept as a bound) allocates nothing.
func TestSettleMarkingCostsNoAllocation(t *testing.T) {
	rig := startSettleRig(t, SettleResult{})
	query := packet(0, append([]byte{mysql.COM_QUERY}, "UPDATE t SET v = v + 1 WHERE id = 7"...))
	ok := packet(1, appendOKInfo(nil, 1, 0, mysql.SERVER_STATUS_AUTOCOMMIT, "", 0))
	var hdr [headerLen]byte
	body, obuf := make([]byte, 1024), make([]byte, len(ok))
	roundTrip := func() {
		if _, err := rig.client.Write(query); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(rig.node, hdr[:]); err != nil {
			t.Fatal(err)
		}
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		if _, err := io.ReadFull(rig.node, body[:n]); err != nil {
			t.Fatal(err)
		}
		if _, err := rig.node.Write(ok); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(rig.client, obuf); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip()
	if allocs := testing.AllocsPerRun(200, roundTrip); allocs != 0 && !raceEnabled {
		t.Fatalf("%.1f allocations per marked command, want 0", allocs)
	}
}

func TestVerbOf(t *testing.T) {
	for in, want := range map[string]string{
		"select 1": "SELECT", "  /* c */ (SELECT 1)": "SELECT", "-- c\ninsert into t": "INSERT",
		"": "", "123": "", "REPLACEMENTSAREVERYLONGWORDS x": "?", "merge into": "?",
	} {
		if got := verbOf([]byte(in)); got != want {
			t.Errorf("verbOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAppendOKInfo(t *testing.T) {
	for _, v := range []uint64{0, 250, 251, 0xffff, 0x10000, 0xffffff, 0x1000000, 1 << 40} {
		p := appendOKInfo(nil, v, v+1, 2, "hi", 0)
		rows, pos, ok1 := lenEncInt(p, 1)
		id, pos, ok2 := lenEncInt(p, pos)
		if !ok1 || !ok2 || rows != v || id != v+1 || okStatus(p, 0) != 2 || string(p[pos+4:]) != "hi" {
			t.Errorf("appendOKInfo(%d): % x", v, p)
		}
	}
	p := appendOKInfo(nil, 1, 0, 0, "hi", mysql.CLIENT_SESSION_TRACK)
	if !bytes.HasSuffix(p, []byte{2, 'h', 'i'}) {
		t.Errorf("with session tracking: % x", p)
	}
}

// FuzzMarkerFor: any statement text is classified without a panic, and a
// statement is marked only when it is whole, single and of a known kind.
func FuzzMarkerFor(f *testing.F) {
	for _, q := range []string{"INSERT INTO t VALUES (1)", "COMMIT", "CALL p()", "SELECT 1; SELECT 2", "/*!40101 SET x=1*/",
		"SET autocommit = 1", "((select 1))", "-- c\nupdate t set a = 1", ""} {
		f.Add([]byte(q), true)
	}
	p, err := New(Config{Settle: func(context.Context, SettleRequest) SettleResult { return SettleResult{} }},
		[]*Node{{Name: "n", Address: "127.0.0.1:1"}}, "n")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text []byte, whole bool) {
		s := &session{p: p, id: 1}
		s.facts.reset("", 45)
		s.beginCommand(mysql.COM_QUERY)
		mk, sp := s.markerFor(text, whole, false)
		if sp {
			t.Fatalf("a savepoint for %q outside a transaction", text)
		}
		if mk == nil {
			return
		}
		if !whole || afterFirstStatement(text) != nil || !strings.HasPrefix(string(mk), MarkerPrefix) || !strings.HasSuffix(string(mk), "*/ ") {
			t.Fatalf("marked %q (whole=%v) with %q", text, whole, mk)
		}
		switch verbOf(text) {
		case "INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD":
		default:
			t.Fatalf("marked %q, which does not write by nature", text)
		}
	})
}

// TestSettleSavepointMarksPreparedTransactions: a transaction whose writes
// came from prepared statements gets a marking SAVEPOINT in the same write
// as its COMMIT, and the COMMIT is settled by it.
func TestSettleSavepointMarksPreparedTransactions(t *testing.T) {
	rig := startSettleRig(t, SettleResult{Known: true, Committed: true})
	inTx := uint16(mysql.SERVER_STATUS_AUTOCOMMIT | mysql.SERVER_STATUS_IN_TRANS)
	rig.send(t, "BEGIN")
	rig.nodeOK(t, 0, inTx)
	exec := []byte{mysql.COM_STMT_EXECUTE, 1, 0, 0, 0, 0, 1, 0, 0, 0}
	if _, err := rig.client.Write(packet(0, exec)); err != nil {
		t.Fatal(err)
	}
	if p, _, err := readPacket(rig.node, nil, 1<<20); err != nil || !bytes.Equal(p, exec) {
		t.Fatalf("node got % x, %v", p, err)
	}
	rig.nodeOK(t, 1, inTx)
	sp := rig.send(t, "COMMIT")
	if !strings.HasPrefix(sp, "SAVEPOINT tandem_") {
		t.Fatalf("node got %q; want the marking savepoint", sp)
	}
	// The COMMIT goes once the savepoint's answer is in.
	if _, err := rig.node.Write(packet(1, appendOK(nil, inTx, 0))); err != nil {
		t.Fatal(err)
	}
	commit, _, err := readPacket(rig.node, nil, 1<<20)
	if err != nil || string(commit[1:]) != "COMMIT" {
		t.Fatalf("node got %q, %v; want the COMMIT as sent", commit, err)
	}
	rig.node.Close() // dies before the COMMIT's answer
	if err := rig.s.p.Route("new"); err != nil {
		t.Fatal(err)
	}
	if p := rig.clientPacket(t); p[0] != 0 {
		t.Fatalf("client got % x; want the settled OK", p)
	}
	rig.mu.Lock()
	defer rig.mu.Unlock()
	if len(rig.reqs) != 1 || savepointFor(rig.reqs[0].Marker) != sp {
		t.Fatalf("requests %+v; want one for the marker of %s", rig.reqs, sp)
	}
}

// savepointFor is the marking SAVEPOINT that stands for marker m.
func savepointFor(m string) string {
	return "SAVEPOINT tandem_" + strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(m, MarkerPrefix), "*/"), ":", "_")
}

// TestSettleLeavesReadsAlone: only INSERT, UPDATE, DELETE, REPLACE and LOAD
// DATA carry the marker; every other statement reaches the node byte for
// byte as the client sent it.
func TestSettleLeavesReadsAlone(t *testing.T) {
	rig := startSettleRig(t, SettleResult{})
	ac := uint16(mysql.SERVER_STATUS_AUTOCOMMIT)
	for _, q := range []string{"SELECT 1", "/* c */ select * from t", "SHOW PROFILES", "SET @x = 1", "DO f()",
		"WITH a AS (SELECT 1) SELECT * FROM a", "USE test", "EXPLAIN SELECT 1", "CALL p()", "CREATE TABLE x (i INT)"} {
		if got := rig.send(t, q); got != q {
			t.Errorf("node got %q for %q", got, q)
		}
		rig.nodeOK(t, 0, ac)
	}
	for _, q := range []string{"INSERT INTO t VALUES (1)", "update t set a = 1", "DELETE FROM t", "REPLACE INTO t VALUES (1)",
		"LOAD DATA INFILE 'f' INTO TABLE t"} {
		if got := rig.send(t, q); !strings.HasPrefix(got, MarkerPrefix) || !strings.HasSuffix(got, "*/ "+q) {
			t.Errorf("node got %q for %q; want it marked", got, q)
		}
		rig.nodeOK(t, 0, ac)
	}
}

// TestSettleAutocommitSelectIsUnknown: an autocommit SELECT carries no
// marker, and may have written (a function): caught by a node failure, it
// gets 1317 without a check.
func TestSettleAutocommitSelectIsUnknown(t *testing.T) {
	rig := startSettleRig(t, SettleResult{Known: true})
	rig.send(t, "SELECT f()")
	rig.node.Close()
	if e, _ := parseErr(rig.clientPacket(t)); e.Code != 1317 || !strings.Contains(e.Message, "may or may not") {
		t.Errorf("client got %+v; want 1317", e)
	}
	rig.mu.Lock()
	defer rig.mu.Unlock()
	if len(rig.reqs) != 0 {
		t.Errorf("Settle asked about an unmarked SELECT: %+v", rig.reqs)
	}
}

// TestSettleSavepointForUnmarkedWrites: a transaction whose statements may
// have written without the marker (SELECT f(), SET @x = f(), DO) gets the
// marking savepoint before its COMMIT, and only then; the COMMIT is sent
// once the savepoint was answered, and a refused savepoint makes the
// COMMIT unsettleable.
func TestSettleSavepointForUnmarkedWrites(t *testing.T) {
	ac := uint16(mysql.SERVER_STATUS_AUTOCOMMIT)
	inTx := ac | mysql.SERVER_STATUS_IN_TRANS
	for _, tt := range []struct {
		name  string
		stmts []string // after BEGIN, each answered OK with 1 row
		sp    bool     // a savepoint before the COMMIT
	}{
		{"select only", []string{"SELECT f()"}, true},
		{"set and do", []string{"SET @x = f()", "DO f()"}, true},
		{"select then marked write", []string{"SELECT f()", "INSERT INTO t VALUES (1)"}, false},
		{"marked write then select", []string{"INSERT INTO t VALUES (1)", "SELECT f()"}, false},
		{"marked write rolled back to a savepoint", []string{"INSERT INTO t VALUES (1)", "SELECT f()", "ROLLBACK TO SAVEPOINT a"}, true},
		{"marked write only", []string{"INSERT INTO t VALUES (1)"}, false},
		{"reads that cannot write", []string{"SHOW TABLES", "SAVEPOINT a"}, false},
	} {
		for _, refused := range []bool{false, true} {
			if refused && !tt.sp {
				continue
			}
			t.Run(fmt.Sprintf("%s refused=%v", tt.name, refused), func(t *testing.T) {
				rig := startSettleRig(t, SettleResult{Known: true, Committed: true})
				rig.send(t, "BEGIN")
				rig.nodeOK(t, 0, inTx)
				for _, q := range tt.stmts {
					rig.send(t, q)
					rig.nodeOK(t, 1, inTx)
				}
				got := rig.send(t, "COMMIT")
				if !tt.sp {
					if got != "COMMIT" {
						t.Fatalf("node got %q; want the COMMIT as sent, no savepoint", got)
					}
				} else {
					if !strings.HasPrefix(got, "SAVEPOINT tandem_") {
						t.Fatalf("node got %q; want the marking savepoint", got)
					}
					// Nothing more until the savepoint is answered.
					_ = rig.node.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
					if p, _, err := readPacket(rig.node, nil, 1<<20); err == nil {
						t.Fatalf("node got %q before the savepoint's answer", p)
					}
					ans := packet(1, appendOK(nil, inTx, 0))
					if refused {
						ans = packet(1, appendErr(nil, newError(1178, "The storage engine for the table doesn't support SAVEPOINT")))
					}
					if _, err := rig.node.Write(ans); err != nil {
						t.Fatal(err)
					}
					_ = rig.node.SetReadDeadline(time.Now().Add(5 * time.Second))
					commit, _, err := readPacket(rig.node, nil, 1<<20)
					if err != nil || string(commit[1:]) != "COMMIT" {
						t.Fatalf("node got %q, %v; want the COMMIT as sent", commit, err)
					}
				}
				rig.node.Close() // dies before the COMMIT's answer
				if err := rig.s.p.Route("new"); err != nil {
					t.Fatal(err)
				}
				p := rig.clientPacket(t)
				rig.mu.Lock()
				defer rig.mu.Unlock()
				if refused {
					if e, _ := parseErr(p); e.Code != 1317 || len(rig.reqs) != 0 {
						t.Fatalf("client got %+v after %d checks; want 1317 without a check", e, len(rig.reqs))
					}
					return
				}
				if p[0] != 0 || len(rig.reqs) != 1 {
					t.Fatalf("client got % x after %d checks; want the settled OK", p, len(rig.reqs))
				}
				if tt.sp && savepointFor(rig.reqs[0].Marker) != got {
					t.Errorf("checked %s; the savepoint was %s", rig.reqs[0].Marker, got)
				}
			})
		}
	}
}

// TestSettleChainedTransactionGetsNewMarker: COMMIT AND CHAIN and BEGIN
// inside a transaction end it while the session stays in one: the next
// transaction is marked anew, so a marker never names two transactions.
func TestSettleChainedTransactionGetsNewMarker(t *testing.T) {
	inTx := uint16(mysql.SERVER_STATUS_AUTOCOMMIT | mysql.SERVER_STATUS_IN_TRANS)
	for _, end := range []string{"COMMIT AND CHAIN", "BEGIN", "ROLLBACK AND CHAIN"} {
		rig := startSettleRig(t, SettleResult{})
		rig.send(t, "BEGIN")
		rig.nodeOK(t, 0, inTx)
		first := rig.send(t, "INSERT INTO t VALUES (1)")
		rig.nodeOK(t, 1, inTx)
		rig.send(t, end)
		rig.nodeOK(t, 0, inTx)
		second := rig.send(t, "INSERT INTO t VALUES (2)")
		rig.nodeOK(t, 1, inTx)
		if m := first[:strings.Index(first, "*/")+2]; strings.HasPrefix(second, m) {
			t.Errorf("after %s: both transactions marked %s", end, m)
		}
	}
}

func TestRollbackTo(t *testing.T) {
	for in, want := range map[string]bool{
		"ROLLBACK TO a": true, "rollback work to savepoint a": true, " /* c */ ROLLBACK\tTO`a`": true,
		"ROLLBACK": false, "ROLLBACK AND CHAIN": false, "ROLLBACK WORK": false, "ROLLBACK TOO": false, "ROLLBACKTO a": false,
	} {
		if got := rollbackTo([]byte(in)); got != want {
			t.Errorf("rollbackTo(%q) = %v, want %v", in, got, want)
		}
	}
}
