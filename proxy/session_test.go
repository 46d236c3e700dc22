package proxy

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// noteQueryCase is one statement and the facts it should leave behind on a
// fresh session (schema "app").
type noteQueryCase struct {
	sql      string
	whole    bool
	schema   string   // after the statement
	settings []string // recorded for replay
	pinned   string
}

func runNoteQuery(t *testing.T, tests []noteQueryCase) {
	t.Helper()
	for _, tt := range tests {
		var f Facts
		f.reset("app", 45)
		f.noteQuery([]byte(tt.sql), tt.whole)
		pinned := f.Pinned
		if pinned == "" && f.UserVars {
			pinned = pinUserVars // closed on a failover, read on a switchover
		}
		if f.Schema != tt.schema || !reflect.DeepEqual(f.Settings, tt.settings) || pinned != tt.pinned {
			t.Errorf("noteQuery(%q, whole=%v):\n got schema %q settings %q pinned %q\nwant schema %q settings %q pinned %q",
				tt.sql, tt.whole, f.Schema, f.Settings, pinned, tt.schema, tt.settings, tt.pinned)
		}
	}
}

const (
	pinUserVars   = "user variables"
	pinLocks      = "named locks (GET_LOCK)"
	pinTemp       = "temporary tables"
	pinLockTbl    = "LOCK TABLES"
	pinPrepare    = "SQL-level PREPARE"
	pinTooManySet = "too many or too long SET statements"
)

func TestNoteQuery(t *testing.T) {
	runNoteQuery(t, []noteQueryCase{
		// USE
		{"USE shop", true, "shop", nil, ""},
		{"use shop;", true, "shop", nil, ""},
		{"USE `my db`", true, "my db", nil, ""},
		{"USE `shop`;", true, "shop", nil, ""},
		{"USE données", true, "données", nil, ""},
		{"USE $x", true, "$x", nil, ""},
		{"/* pick */ USE shop", true, "shop", nil, ""},
		{"-- pick\nUSE shop", true, "shop", nil, ""},
		{"# pick\nUSE shop", true, "shop", nil, ""},
		{"\t\r\n USE\n\tshop", true, "shop", nil, ""},
		{"USE", true, "app", nil, ""},
		{"USE ;", true, "app", nil, ""},
		{"USE `unterminated", true, "app", nil, ""},
		{"USER shop", true, "app", nil, ""},

		// SET: recorded for replay, verbatim
		{"SET NAMES utf8mb4", true, "app", []string{"SET NAMES utf8mb4"}, ""},
		{"set names 'utf8mb4' collate 'utf8mb4_bin'", true, "app", []string{"set names 'utf8mb4' collate 'utf8mb4_bin'"}, ""},
		{"SET CHARACTER SET latin1", true, "app", []string{"SET CHARACTER SET latin1"}, ""},
		{"SET autocommit=0", true, "app", []string{"SET autocommit=0"}, ""},
		{"SET SESSION sql_mode = 'ANSI'", true, "app", []string{"SET SESSION sql_mode = 'ANSI'"}, ""},
		{"SET @@session.time_zone = '+00:00'", true, "app", []string{"SET @@session.time_zone = '+00:00'"}, ""},
		{"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", true, "app",
			[]string{"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"}, ""},
		{"/* c */ SET NAMES utf8mb4", true, "app", []string{"/* c */ SET NAMES utf8mb4"}, ""},
		{"-- c\nset names utf8mb4", true, "app", []string{"-- c\nset names utf8mb4"}, ""},
		{"# c\nSET NAMES utf8mb4", true, "app", []string{"# c\nSET NAMES utf8mb4"}, ""},
		// ... unless it is not session state
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", true, "app", nil, ""},
		{"set transaction read only", true, "app", nil, ""},
		{"SET GLOBAL max_connections = 10", true, "app", nil, ""},
		{"SET PASSWORD = PASSWORD('x')", true, "app", nil, ""},
		{"SET DEFAULT ROLE r FOR u", true, "app", nil, ""},
		// user variables set to literals are replayed too
		{"SET @x = 1", true, "app", []string{"SET @x = 1"}, ""},
		{"set @x := 1, @y = 2", true, "app", []string{"set @x := 1, @y = 2"}, ""},
		{"SET @a := 'x', @b = NULL", true, "app", []string{"SET @a := 'x', @b = NULL"}, ""},
		{"SET @x = 'it''s', @`odd name` = -1.5e-3, @'q' = X'00ff'", true, "app",
			[]string{"SET @x = 'it''s', @`odd name` = -1.5e-3, @'q' = X'00ff'"}, ""},
		{"SET @x = _utf8mb4'\u00e9', time_zone = '+00:00', @y = TRUE", true, "app",
			[]string{"SET @x = _utf8mb4'\u00e9', time_zone = '+00:00', @y = TRUE"}, ""},
		{"SET @x = 0x1F, sql_mode = CONCAT(@@sql_mode, ',ANSI')", true, "app",
			[]string{"SET @x = 0x1F, sql_mode = CONCAT(@@sql_mode, ',ANSI')"}, ""},
		// ... others cannot be replayed on a failover
		{"SET sql_mode = @saved", true, "app", nil, pinUserVars},
		{"SET @x = (SELECT 1)", true, "app", nil, pinUserVars},
		{"SET @x = @y", true, "app", nil, pinUserVars},
		{"SET @x = CONCAT('a', 'b')", true, "app", nil, pinUserVars},
		{"SET @x = 1 + 1", true, "app", nil, pinUserVars},
		{"SET @x = 'unterminated", true, "app", nil, pinUserVars},
		{"SET @x", true, "app", nil, pinUserVars},
		{"UPDATE t SET c = (@x := c)", true, "app", nil, pinUserVars},
		{"SET NAMES utf8mb4", false, "app", nil, pinTooManySet},

		// SELECT and friends
		{"SELECT 1", true, "app", nil, ""},
		{"SELECT @@version", true, "app", nil, ""},
		{"select @@session.autocommit, @@global.read_only", true, "app", nil, ""},
		{"SELECT @x", true, "app", nil, ""}, // reading changes nothing
		{"SELECT 1 INTO @x", true, "app", nil, pinUserVars},
		{"SELECT @x := 1", true, "app", nil, pinUserVars},
		{"SELECT @@a, @b", true, "app", nil, ""},
		{"SELECT 'a@b.example'", true, "app", nil, ""},
		{"SELECT 'a@b.example := 1'", true, "app", nil, pinUserVars}, // conservative: a literal's ':=' counts
		{"SELECT GET_LOCK('job', 10)", true, "app", nil, pinLocks},
		{"select get_lock('job', 10)", true, "app", nil, pinLocks},
		{"SELECT Get_Lock('job', 10) AS l", true, "app", nil, pinLocks},
		{"DO GET_LOCK('job', 0)", true, "app", nil, pinLocks},
		{"(SELECT GET_LOCK('job', 0))", true, "app", nil, pinLocks},
		{"( ( SELECT @x ) )", true, "app", nil, ""},
		{"/* x */ (SELECT GET_LOCK('a', 1))", true, "app", nil, pinLocks},
		{"WITH t AS (SELECT 1) SELECT @x FROM t", true, "app", nil, ""},
		{"WITH t AS (SELECT 1) SELECT 1 INTO @x FROM t", true, "app", nil, pinUserVars},
		{"CALL p(@out)", true, "app", nil, pinUserVars},
		{"VALUES (@v)", true, "app", nil, ""},
		{"SELECT RELEASE_LOCK('job')", true, "app", nil, ""},

		// CREATE, LOCK, PREPARE
		{"CREATE TEMPORARY TABLE t (a INT)", true, "app", nil, pinTemp},
		{"create temporary table if not exists t (a int)", true, "app", nil, pinTemp},
		{"/*x*/ CREATE\nTEMPORARY TABLE t SELECT 1", true, "app", nil, pinTemp},
		{"CREATE TABLE t (a INT)", true, "app", nil, ""},
		{"LOCK TABLES t READ", true, "app", nil, pinLockTbl},
		{"lock table t write", true, "app", nil, pinLockTbl},
		{"UNLOCK TABLES", true, "app", nil, ""},
		{"PREPARE s FROM 'SELECT 1'", true, "app", nil, pinPrepare},
		{"prepare s from @q", true, "app", nil, pinPrepare},

		// Other statements change nothing tandem tracks.
		{"INSERT INTO t VALUES (1)", true, "app", nil, ""},
		{"BEGIN", true, "app", nil, ""},
		{"", true, "app", nil, ""},
		{";;;", true, "app", nil, ""},
		{"/* unterminated", true, "app", nil, ""},
		{"-- only a comment", true, "app", nil, ""},
		{"SELECTX @x", true, "app", nil, ""},
		{"SELECTIONISTHEWORDTHATISLONG @x", true, "app", nil, ""},
	})
}

func TestNoteQueryAccumulates(t *testing.T) {
	var f Facts
	f.reset("app", 45)
	for _, q := range []string{"SET NAMES utf8mb4", "USE shop", "SELECT 1", "SET autocommit = 0", "SET TRANSACTION READ ONLY"} {
		f.noteQuery([]byte(q), true)
	}
	if want := []string{"SET NAMES utf8mb4", "SET autocommit = 0"}; !reflect.DeepEqual(f.Settings, want) || f.Schema != "shop" || f.Pinned != "" {
		t.Errorf("facts %+v", f)
	}
	// The first reason to pin is kept.
	f.noteQuery([]byte("LOCK TABLES t READ"), true)
	f.noteQuery([]byte("SET @x = 1"), true)
	if f.Pinned != pinLockTbl {
		t.Errorf("pinned %q; want %q", f.Pinned, pinLockTbl)
	}
}

func TestNoteQueryMaxSettings(t *testing.T) {
	var f Facts
	f.reset("", 0)
	for i := 0; i < maxSettings; i++ {
		f.noteQuery([]byte(fmt.Sprintf("SET sort_buffer_size = %d", i)), true)
	}
	if len(f.Settings) != maxSettings || f.Pinned != "" {
		t.Fatalf("after %d SETs: %d settings, pinned %q", maxSettings, len(f.Settings), f.Pinned)
	}
	// Statements that are not recorded do not count or pin.
	f.noteQuery([]byte("SET TRANSACTION READ WRITE"), true)
	if f.Pinned != "" {
		t.Fatalf("SET TRANSACTION pinned: %q", f.Pinned)
	}
	f.noteQuery([]byte("SET NAMES latin1"), true)
	if len(f.Settings) != maxSettings || f.Pinned != pinTooManySet {
		t.Errorf("after %d SETs: %d settings, pinned %q; want %d, %q", maxSettings+1, len(f.Settings), f.Pinned, maxSettings, pinTooManySet)
	}
}

func TestFactsStatusAndPrepared(t *testing.T) {
	var f Facts
	f.reset("db", 33)
	if !f.Autocommit || f.InTransaction || f.Schema != "db" || f.Collation != 33 {
		t.Errorf("reset: %+v", f)
	}
	f.noteStatus(mysql.SERVER_STATUS_IN_TRANS)
	if !f.InTransaction || f.Autocommit {
		t.Errorf("IN_TRANS: %+v", f)
	}
	f.noteStatus(mysql.SERVER_STATUS_AUTOCOMMIT | mysql.SERVER_MORE_RESULTS_EXISTS)
	if f.InTransaction || !f.Autocommit {
		t.Errorf("AUTOCOMMIT: %+v", f)
	}
	f.notePrepare(1, "SELECT ?")
	f.notePrepare(2, "INSERT INTO t VALUES (?)")
	f.noteStmtClose(1)
	f.noteStmtClose(9)
	if want := map[uint32]string{2: "INSERT INTO t VALUES (?)"}; !reflect.DeepEqual(f.Prepared, want) {
		t.Errorf("prepared %v; want %v", f.Prepared, want)
	}
	f.noteQuery([]byte("SET @x=1"), true)
	f.reset("db", 33)
	if f.Pinned != "" || f.Prepared != nil || f.Settings != nil {
		t.Errorf("reset keeps %+v", f)
	}
}

func TestParseKill(t *testing.T) {
	tests := []struct {
		sql      string
		ok       bool
		modifier string
		id       uint32
	}{
		{"KILL 5", true, "", 5},
		{"kill 5", true, "", 5},
		{"kill query 5", true, "QUERY ", 5},
		{"KILL CONNECTION 5", true, "CONNECTION ", 5},
		{"KILL HARD QUERY 5", true, "HARD QUERY ", 5},
		{"KILL SOFT CONNECTION 12", true, "SOFT CONNECTION ", 12},
		{"KILL HARD 5", true, "HARD ", 5},
		{"KILL /*c*/ 7", true, "", 7},
		{"/* who */ KILL QUERY /* which */ 7 /* done */", true, "QUERY ", 7},
		{"KILL 5;", true, "", 5},
		{"  KILL   5  ;  ", true, "", 5},
		{"KILL\n5\n", true, "", 5},
		{"KILL 5 -- why\n", true, "", 5},
		{"KILL 0", true, "", 0},
		{"KILL 4294967295", true, "", 4294967295},
		{"KILL 007", true, "", 7},

		{"KILL QUERY ID 5", false, "", 0}, // a query id, not a connection
		{"KILL ID 5", false, "", 0},
		{"KILL USER bob", false, "", 0},
		{"KILL HARD USER bob", false, "", 0},
		{"KILL 5 6", false, "", 0},
		{"KILL 4294967296", false, "", 0},
		{"KILL 99999999999", false, "", 0},
		{"KILL 99999999999999999999999", false, "", 0},
		{"KILL", false, "", 0},
		{"KILL QUERY", false, "", 0},
		{"KILL -5", false, "", 0},
		{"KILL 5abc", false, "", 0},
		{"KILL 0x10", false, "", 0},
		{"KILL CONNECTION_ID()", false, "", 0},
		{"KILL @id", false, "", 0},
		{"KILLS 5", false, "", 0},
		{"SELECT 5", false, "", 0},
		{"", false, "", 0},
		{"KILL SOFT HARD 5", false, "", 0},
		{"KILL QUERY QUERY 5", false, "", 0},
	}
	for _, tt := range tests {
		k, ok := parseKill([]byte(tt.sql))
		if ok != tt.ok || (ok && (k.modifier != tt.modifier || k.id != tt.id)) {
			t.Errorf("parseKill(%q) = %+v, %v; want {%q %d}, %v", tt.sql, k, ok, tt.modifier, tt.id, tt.ok)
		}
	}
}

func TestOKStatus(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want uint16
	}{
		{"plain OK", []byte{0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00}, mysql.SERVER_STATUS_AUTOCOMMIT},
		{"in transaction", []byte{0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00}, mysql.SERVER_STATUS_IN_TRANS},
		{"2-byte affected rows", []byte{0x00, 0xfc, 0x10, 0x27, 0x05, 0x22, 0x00, 0x01, 0x00}, 0x0022},
		{"3-byte insert id", []byte{0x00, 0x01, 0xfd, 0x01, 0x02, 0x03, 0x0a, 0x40, 0x00, 0x00}, 0x400a},
		{"8-byte insert id", []byte{0x00, 0x00, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 0x03, 0x00, 0x00, 0x00}, 0x0003},
		{"with info", append([]byte{0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00}, "Rows matched: 3"...), 2},
		{"OK as EOF (0xfe)", []byte{0xfe, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00}, 0x000a},
		{"no warnings field", []byte{0x00, 0x00, 0x00, 0x02, 0x00}, 2},
		{"one status byte", []byte{0x00, 0x00, 0x00, 0x02}, 0},
		{"no status", []byte{0x00, 0x00, 0x00}, 0},
		{"header only", []byte{0x00}, 0},
		{"empty", nil, 0},
		{"NULL affected rows", []byte{0x00, 0xfb, 0x00, 0x02, 0x00}, 0},
		{"truncated lenenc", []byte{0x00, 0xfc, 0x01}, 0},
	}
	for _, tt := range tests {
		for _, caps := range []uint32{0, mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_SESSION_TRACK} {
			if got := okStatus(tt.in, caps); got != tt.want {
				t.Errorf("okStatus(%s, caps %#x) = %#x; want %#x", tt.name, caps, got, tt.want)
			}
		}
	}
	for _, caps := range []uint32{0, mysql.CLIENT_SESSION_TRACK} {
		for _, st := range []uint16{0, mysql.SERVER_STATUS_AUTOCOMMIT, 0xffff} {
			if got := okStatus(appendOK(nil, st, caps), caps); got != st {
				t.Errorf("okStatus(appendOK(%#x, caps %#x)) = %#x", st, caps, got)
			}
		}
	}
}

func TestEOFStatus(t *testing.T) {
	tests := []struct {
		in   []byte
		want uint16
	}{
		{[]byte{0xfe, 0x00, 0x00, 0x22, 0x00}, 0x0022},
		{[]byte{0xfe, 0x01, 0x00, 0x0a, 0x00}, 0x000a},
		{[]byte{0xfe, 0x00, 0x00, 0x08, 0x01}, 0x0108},
		{[]byte{0xfe, 0x00, 0x00, 0x02}, 0},
		{[]byte{0xfe}, 0},
		{nil, 0},
	}
	for _, tt := range tests {
		if got := eofStatus(tt.in); got != tt.want {
			t.Errorf("eofStatus(% x) = %#x; want %#x", tt.in, got, tt.want)
		}
	}
}

func TestTerminator(t *testing.T) {
	const deprecateEOF = 0x01000000
	if mysql.CLIENT_DEPRECATE_EOF != deprecateEOF {
		t.Fatalf("CLIENT_DEPRECATE_EOF = %#x", mysql.CLIENT_DEPRECATE_EOF)
	}
	tests := []struct {
		caps   uint32
		first  byte
		length int
		want   bool
	}{
		// Classic EOF: 0xfe and under 9 bytes.
		{0, 0xfe, 5, true},
		{0, 0xfe, 1, true},
		{0, 0xfe, 8, true},
		{0, 0xfe, 9, false}, // a row whose first column has an 8-byte length
		{0, 0xfe, 7, true},  // under 9: an EOF even if it looks like an OK
		{0, 0x00, 5, false},
		{0, 0xff, 5, false},
		{0, 0xfb, 1, false}, // a row with a NULL column
		// CLIENT_DEPRECATE_EOF: an OK with header 0xfe under 2^24-1 bytes.
		{deprecateEOF, 0xfe, 7, true},
		{deprecateEOF, 0xfe, 9, true},
		{deprecateEOF, 0xfe, 5000, true},
		{deprecateEOF, 0xfe, maxPayload - 1, true},
		{deprecateEOF, 0xfe, maxPayload, false}, // a row of 2^24-1 bytes or more
		{deprecateEOF, 0x00, 7, false},
		{deprecateEOF | mysql.CLIENT_PROTOCOL_41, 0xfe, 5, true},
	}
	for _, tt := range tests {
		s := &session{caps: tt.caps}
		if got := s.isTerminator(tt.first, tt.length); got != tt.want {
			t.Errorf("isTerminator(caps %#x, %#x, %d) = %v; want %v", tt.caps, tt.first, tt.length, got, tt.want)
		}
	}

	eof := []byte{0xfe, 0x00, 0x00, 0x22, 0x00}
	okEOF := []byte{0xfe, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00}
	if got := (&session{}).terminatorStatus(eof); got != 0x22 {
		t.Errorf("terminatorStatus(EOF) = %#x; want 0x22", got)
	}
	if got := (&session{caps: deprecateEOF}).terminatorStatus(okEOF); got != 0x08 {
		t.Errorf("terminatorStatus(OK as EOF) = %#x; want 0x08", got)
	}
}

func TestNoteQueryPinsUninspectedTail(t *testing.T) {
	var f Facts
	f.reset("app", 45)
	f.noteQuery([]byte("SELECT 'a long statement whose tail tandem did not see'"), false)
	if f.Pinned == "" {
		t.Fatal("a statement seen only in part did not pin the session")
	}
}

func TestNoteQueryAllocatesNothing(t *testing.T) {
	q := []byte("SELECT c FROM sbtest1 WHERE id = 42 AND k BETWEEN 1 AND 100")
	var f Facts
	f.reset("app", 45)
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := parseKill(q); ok {
			t.Fatal("a SELECT parsed as KILL")
		}
		f.noteQuery(q, true)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per query, want 0", allocs)
	}
}
