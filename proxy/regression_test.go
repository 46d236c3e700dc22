package proxy

// Regression tests: each pinned down one bug found while writing the
// byte-level fixtures (fixed in session.go and packet.go).

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// Was a bug: session.go firstIdent: for
//
//	USE `we``ird`
//
// Facts.Schema becomes the raw text between the outer backticks (with the
// doubled backtick kept) instead of the database name we`ird. COM_INIT_DB
// (conn.go) stores the raw name, so the two paths disagree, and a session
// rebuilt from Schema would select another (or no) database.
func TestRegressionUseDoubledBacktick(t *testing.T) {
	runNoteQuery(t, []noteQueryCase{
		{"USE `we``ird`", true, "we`ird", nil, ""},
		{"USE ````", true, "`", nil, ""},
	})
}

// Was a bug: session.go noteQuery/skipSpace: executable comments /*! ... */,
// /*!NNNNN ... */ and MariaDB's /*M! ... */ are run by the server but
// skipped as comments, so the statement inside is invisible: a session
// that sets user variables or names this way (every mysqldump file starts
// with these lines, and the mysql client keeps /*! comments) is neither
// pinned nor recorded, and would be moved on a failover with its state
// silently lost. Expected: pin (the conservative choice) or parse inside.
func TestRegressionExecutableComments(t *testing.T) {
	for _, q := range []string{
		"/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */",
		"/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */",
		"/*M!100401 SET @x = 1 */",
		"/*!40101 SET NAMES utf8mb4 */",
		"/*! CREATE TEMPORARY TABLE t (a INT) */",
		"/*!50003 SELECT GET_LOCK('a', 0) */",
	} {
		var f Facts
		f.reset("app", 45)
		f.noteQuery([]byte(q), true)
		if f.Pinned == "" && len(f.Settings) == 0 {
			t.Errorf("noteQuery(%q): neither pinned nor recorded: %+v", q, f)
		}
	}
}

// Was a bug: session.go noteQuery: MariaDB's SET STATEMENT var=value FOR <stmt>
// is recorded in Settings as if it were a session SET. Replaying it on
// another node would run <stmt> again (an INSERT, a DELETE, ...), and it
// sets nothing that outlives the statement. Expected: not recorded (and
// <stmt> judged on its own: a CREATE TEMPORARY TABLE inside still pins).
func TestRegressionSetStatementFor(t *testing.T) {
	runNoteQuery(t, []noteQueryCase{
		{"SET STATEMENT max_statement_time=10 FOR INSERT INTO t VALUES (1)", true, "app", nil, ""},
		{"set statement sql_mode='' for delete from t", true, "app", nil, ""},
	})
	var f Facts
	f.reset("app", 45)
	f.noteQuery([]byte("SET STATEMENT sql_mode='' FOR CREATE TEMPORARY TABLE t (a INT)"), true)
	if f.Pinned == "" {
		t.Errorf("SET STATEMENT ... FOR CREATE TEMPORARY TABLE: not pinned: %+v", f)
	}
}

// Was a bug: session.go noteQuery: MariaDB's CREATE OR REPLACE TEMPORARY TABLE
// does not pin: only the word right after CREATE is checked.
func TestRegressionCreateOrReplaceTemporary(t *testing.T) {
	runNoteQuery(t, []noteQueryCase{
		{"CREATE OR REPLACE TEMPORARY TABLE t (a INT)", true, "app", nil, pinTemp},
	})
}

// Was a bug: session.go noteQuery: with CLIENT_MULTI_STATEMENTS (which tandem
// advertises) one COM_QUERY can hold several statements, but only the first
// keyword is looked at. "SET NAMES ...; INSERT ..." is recorded verbatim in
// Settings, so a replay re-runs the INSERT; and session state set by a
// later statement (temporary table, LOCK TABLES, PREPARE) does not pin.
// (User variables and GET_LOCK are caught because those checks scan the
// whole text.) Expected: a text with more than one statement pins, or each
// statement is judged.
func TestRegressionMultiStatement(t *testing.T) {
	var f Facts
	f.reset("app", 45)
	f.noteQuery([]byte("SET NAMES utf8mb4; INSERT INTO t VALUES (1)"), true)
	for _, s := range f.Settings {
		if strings.Contains(s, "INSERT") {
			t.Errorf("recorded for replay: %q", s)
		}
	}
	for _, q := range []string{
		"SELECT 1; CREATE TEMPORARY TABLE t (a INT)",
		"SELECT 1; LOCK TABLES t READ",
		"USE shop; PREPARE s FROM 'SELECT 1'",
	} {
		f.reset("app", 45)
		f.noteQuery([]byte(q), true)
		if f.Pinned == "" {
			t.Errorf("noteQuery(%q): not pinned", q)
		}
	}
}

// Was a bug: (minor) packet.go relayBody: a payload cut short by the end of the
// stream returns io.EOF (from Peek on the small path, from io.CopyN on the
// large one), not io.ErrUnexpectedEOF as readPacket now does. A caller
// testing errors.Is(err, io.EOF) to recognise a clean close (as
// commandLoop does after readHeader) would take a connection lost in the
// middle of a packet for a clean one.
func TestRegressionRelayTruncatedPayloadEOF(t *testing.T) {
	for _, n := range []int{10, 100} { // small path, large path (buffer of 16)
		in := frame(0, pattern(n, 1))[:headerLen+n/2]
		src := bufio.NewReaderSize(bytes.NewReader(in), 16)
		dst := bufio.NewWriterSize(io.Discard, 16)
		var hdr [headerLen]byte
		_, _, _, _, err := relayPacket(dst, src, &hdr)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%d-byte packet cut after %d bytes: err = %v; want io.ErrUnexpectedEOF", n, n/2, err)
		}
	}
}

// Was a bug: (latent) packet.go relayBody: the small path is taken when
// length < src.Size(), without checking length < maxPayload. With a read
// buffer larger than 2^24-1 bytes a chunk of exactly maxPayload bytes is
// relayed as a whole packet and its continuation chunk is left for the
// next call, which sees it as a new (empty) packet. Unreachable with
// today's 8 KiB and 64 KiB buffers; a guard (or a comment pinning the
// buffer sizes) would keep it so.
func TestRegressionRelayHugeBuffer(t *testing.T) {
	in := bigFrames(0, pattern(maxPayload, 2)) // a full chunk and an empty one
	src := bufio.NewReaderSize(bytes.NewReader(in), maxPayload+16)
	var out bytes.Buffer
	dst := bufio.NewWriter(&out)
	var hdr [headerLen]byte
	if _, _, _, _, err := relayPacket(dst, src, &hdr); err != nil {
		t.Fatal(err)
	}
	if err := dst.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Errorf("relayed %d of %d bytes: the continuation chunk was left behind", out.Len(), len(in))
	}
}
