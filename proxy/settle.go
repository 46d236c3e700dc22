package proxy

// Settled outcomes: when a node fails while a COMMIT or an autocommit
// statement runs there, tandem does not answer "it may or may not have
// taken effect" at once. It waits for traffic to move to another node and
// asks Config.Settle whether the transaction was committed there, then
// answers exactly: the OK the node would have sent, or "not committed, safe
// to retry".
//
// Marking. To make a transaction findable, tandem puts a marker comment
// ("/*tandem:<process>:<session>:<transaction>*/", unique per tandem
// process, session and transaction) in front of the statements that write
// by nature: INSERT, UPDATE, DELETE, REPLACE and LOAD DATA. MariaDB copies
// the statement text, marker included, into the binlog in front of the
// rows it changed (Annotate_rows), and the passive keeps it when it applies
// them. Every other statement reaches the node byte for byte as the client
// wrote it: SELECT, SHOW, SET, DO... (they show unchanged in the
// processlist and SHOW PROFILES, and hit the query cache).
//
// Some unmarked statements may still write: SELECT f(), DO f(), SET @x =
// f() with a function that writes, a prepared statement (its text is the
// node's). A transaction that ran one is marked at its COMMIT instead: in
// the same write as the COMMIT, tandem sends "SAVEPOINT
// tandem_<process>_<session>_<transaction>", which MariaDB logs inside the
// transaction when the transaction changed rows (none of its answer reaches
// the client). It is skipped when a marked statement of the transaction
// already reported changed rows (its marker is then in the transaction's
// binlog; not after a ROLLBACK TO SAVEPOINT, which may cut it out, nor for
// an UPDATE whose count is of matched rows, CLIENT_FOUND_ROWS).
//
// A command is settled only when it is:
//   - an autocommit INSERT, UPDATE, DELETE, REPLACE or LOAD DATA, marked;
//   - a COMMIT of a transaction that stayed "clean": every statement that
//     could write carried the marker, or the marking savepoint was sent,
//     and none committed implicitly or wrote outside the transaction's
//     binlog group (CALL, whose procedure may commit; DDL; a multi-statement
//     query; a statement longer than tandem inspects; BEGIN or SET
//     autocommit = 1 inside the transaction, which commit it; XA);
//   - a statement that cannot write (SHOW, BEGIN, COMMIT outside a
//     transaction...): "safe to retry" without a check.
// Any other command caught by a node failure gets 1317, "it may or may not
// have taken effect": an autocommit SELECT among them, since the SELECT may
// have called a function that writes and carries no marker to find it by;
// a transaction that committed implicitly likewise.
//
// Why the answers are sound:
//   - found => committed: a marker names one transaction of one session of
//     one tandem process (the transaction number is process-wide and a new
//     one starts with every command outside a transaction; BEGIN inside a
//     transaction, which commits it and opens the next under the same
//     number, makes the rest unsettleable), and it reaches a binlog only
//     inside that transaction's group (Annotate_rows of its statement, or
//     its SAVEPOINT, sent after every other statement of it), which is
//     written only when the transaction commits.
//   - not found, bound found => not committed: if the transaction
//     committed having changed rows, its marker is in its group (a marked
//     statement changed rows; else the savepoint was logged: a transaction
//     that changed rows logs its savepoints); a transaction that changed no
//     rows has nothing to retry twice. The bounds are markers of
//     transactions the same node acknowledged before this COMMIT was sent;
//     the new active applied the old node's transactions in the old node's
//     commit order, so the searched one, if committed, comes after a bound
//     found in a file read whole.
//   - A write to a non-transactional table (MyISAM, Aria) inside a
//     transaction is logged at once in a group of its own, marker and all:
//     finding it proves that write, not the transaction's COMMIT. So a
//     COMMIT is proven only by a group committed with an XID
//     (SettleRequest.Commit); found only elsewhere, the answer is unknown.
//   - The savepoint can fail where the COMMIT does not (1178: an engine
//     without savepoints in the transaction, Aria for one): so tandem
//     sends the COMMIT only once the savepoint's answer is in (one round
//     trip more for such a COMMIT), and a refused savepoint leaves the
//     COMMIT unsettleable. Sent together, a refused savepoint and a
//     committed COMMIT lost with the node would read as "not committed".

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// SettleRequest asks whether a transaction tandem sent to node From was
// committed on node To, where traffic now goes.
type SettleRequest struct {
	From, To string
	// ThreadID is the session's connection id on From (for logs).
	ThreadID uint32
	// Marker is the comment in front of each of the transaction's
	// statements.
	Marker string
	// Bounds are markers of transactions From acknowledged before this
	// one's COMMIT was sent; BoundsSince is when the COMMIT of the newest
	// of them was sent.
	Bounds      []string
	BoundsSince time.Time
	// Commit: the command is an explicit transaction's COMMIT (else an
	// autocommit statement): only a transactional commit proves it.
	Commit bool
	// After: the answer must come from a read of To's binlog begun after
	// this moment: when traffic moved to To (the promotion had made To
	// apply all it received from From), or when the request was made.
	// The sessions one failover interrupted share one read.
	After time.Time
}

// SettleResult is the answer to a SettleRequest.
type SettleResult struct {
	// Known is false when To could not tell (Why says why).
	Known     bool
	Committed bool
	// AffectedRows and InsertID are what the statement's OK packet would
	// have said, when RowsKnown (a committed autocommit statement).
	AffectedRows uint64
	RowsKnown    bool
	InsertID     uint64
	Why          string
	// Search says how the check went, for the log.
	Search string
}

// settleDetectWait bounds how long a session whose node failed waits for a
// failover to begin (traffic held or moved) before it answers that the
// outcome is unknown: a node whose failure the monitor does not confirm is
// not failed over, and its transaction may still be running there.
const settleDetectWait = 5 * time.Second

// cannotWrite reports whether a statement with this first word changes no
// data: its failure needs no check.
func cannotWrite(verb string) bool {
	switch verb {
	case "BEGIN", "START", "ROLLBACK", "SAVEPOINT", "RELEASE", "COMMIT", "SHOW", "DESC", "DESCRIBE", "EXPLAIN", "HANDLER", "USE":
		return true
	}
	return false
}

// markRingSize is how many recently acknowledged transactions of each node
// a session passes as bounds.
const markRingSize = 4

// markID names one marked transaction of this tandem process.
type markID struct {
	session uint32
	seq     uint64 // 0: none
}

// ackedMark is a transaction a node acknowledged, and when the command that
// ended it was sent.
type ackedMark struct {
	markID
	sent time.Time
}

// markRing holds the last transactions a node acknowledged that changed
// rows.
type markRing struct {
	mu   sync.Mutex
	next int
	m    [markRingSize]ackedMark
}

func (r *markRing) push(id ackedMark) {
	r.mu.Lock()
	r.m[r.next] = id
	r.next = (r.next + 1) % markRingSize
	r.mu.Unlock()
}

func (r *markRing) snapshot(dst *[markRingSize]ackedMark) {
	r.mu.Lock()
	*dst = r.m
	r.mu.Unlock()
}

// settler is the proxy's part: its marker prefix and the rings.
type settler struct {
	prefix string // "/*tandem:<random>:"
	proc   string // "<random>"
	rings  map[*Node]*markRing
	// seq numbers the transactions of all sessions: a marker stays
	// unique even if a session id is reused.
	seq atomic.Uint64
}

func newSettler(nodes []*Node) *settler {
	var b [8]byte
	_, _ = rand.Read(b[:])
	proc := hex.EncodeToString(b[:])
	st := &settler{prefix: MarkerPrefix + proc + ":", proc: proc, rings: map[*Node]*markRing{}}
	for _, n := range nodes {
		st.rings[n] = &markRing{}
	}
	return st
}

// MarkerPrefix starts every marker tandem puts in front of a statement.
const MarkerPrefix = "/*tandem:"

// appendSavepoint appends a SAVEPOINT statement whose name stands for the
// marker of id: "SAVEPOINT tandem_<random>_<session>_<transaction>". A
// transaction whose writes came from prepared statements (their text
// carries no marker) is marked with it just before its COMMIT; MariaDB logs
// the savepoint inside the transaction when the transaction changed rows.
func (st *settler) appendSavepoint(b []byte, id markID) []byte {
	b = append(b, "SAVEPOINT tandem_"...)
	b = append(b, st.proc...)
	b = append(b, '_')
	b = strconv.AppendUint(b, uint64(id.session), 10)
	b = append(b, '_')
	return strconv.AppendUint(b, id.seq, 10)
}

// appendMarker appends the marker of id, with a trailing space.
func (st *settler) appendMarker(b []byte, id markID) []byte {
	b = append(b, st.prefix...)
	b = strconv.AppendUint(b, uint64(id.session), 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, id.seq, 10)
	return append(b, "*/ "...)
}

// txMark is a session's marking state.
type txMark struct {
	seq    uint64
	marker []byte // "/*tandem:...*/ ", with the trailing space
	// clean: every statement of the transaction so far carried the
	// marker, could not change rows, or will be covered by the marking
	// savepoint; nothing committed implicitly.
	clean bool
	// wrote: an OK reported changed rows; markedWrote: an OK of a marked
	// statement did (its marker is then in the transaction's binlog).
	wrote, markedWrote bool
	// unmarked: the transaction ran a statement without the marker that
	// may have changed rows (SELECT f(), a prepared statement...): its
	// COMMIT is preceded by a marking SAVEPOINT, unless markedWrote.
	unmarked  bool
	spSent    bool   // the marking SAVEPOINT went with the COMMIT
	savepoint []byte // the COM_QUERY payload of the marking SAVEPOINT
	// ending: the command in flight ends the transaction even if the
	// session stays in one (COMMIT AND CHAIN, BEGIN inside a
	// transaction); fresh: so the next command starts a new one.
	ending, fresh bool

	// The command in flight.
	ends    bool   // it may end a transaction (COMMIT, autocommit statement)
	marked  bool   // it carried the marker
	verb    string // its first word (COM_QUERY)
	bounds  [markRingSize]ackedMark
	sent    time.Time // when the command was sent, if it may end a transaction
	inTx    bool      // the session was in a transaction when it started
	autocom bool
}

// beginCommand runs before each command when settling is on: a command
// outside a transaction starts a new one (a new marker).
func (s *session) beginCommand(cmd byte) {
	m := &s.mark
	if !s.facts.InTransaction || m.fresh {
		m.fresh = false
		m.seq = s.p.settle.seq.Add(1)
		m.clean, m.wrote, m.markedWrote, m.unmarked, m.spSent = true, false, false, false, false
		m.marker = s.p.settle.appendMarker(m.marker[:0], markID{s.id, m.seq})
	}
	m.marked, m.verb, m.ending = false, "", false
	m.inTx, m.autocom = s.facts.InTransaction, s.facts.Autocommit
	m.ends = false
	switch cmd {
	case mysql.COM_QUERY, mysql.COM_STMT_EXECUTE, comStmtBulkExecute:
		m.ends = !m.inTx && m.autocom
		if cmd != mysql.COM_QUERY {
			// Prepared text carries no marker: a transaction is marked
			// by a savepoint before its COMMIT; an autocommit
			// execution cannot be.
			m.mayWriteUnmarked()
		}
	}
}

// mayWriteUnmarked records a statement without the marker that may change
// rows: in a transaction (or one it may open, autocommit off) the COMMIT
// gets the marking savepoint; in autocommit mode the statement cannot be
// settled.
func (m *txMark) mayWriteUnmarked() {
	if m.inTx || !m.autocom {
		m.unmarked = true
	} else {
		m.clean = false
	}
}

// markerFor decides how a COM_QUERY (text, whole) goes to the node. It
// returns the marker to put in front of it (nil: the statement goes as
// sent) and whether the marking savepoint must go first (a COMMIT).
func (s *session) markerFor(text []byte, whole, commit bool) (mk []byte, savepoint bool) {
	m := &s.mark
	if commit && m.inTx {
		m.ends = true
	}
	if !whole || afterFirstStatement(text) != nil {
		m.clean = false
		return nil, false
	}
	verb := verbOf(text)
	m.verb = verb
	switch verb {
	case "INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD":
		m.marked = true
		return m.marker, false
	case "SELECT", "WITH", "VALUES", "TABLE", "DO":
		// A function it calls may write.
		m.mayWriteUnmarked()
	case "SET":
		if indexFold(text, "AUTOCOMMIT") >= 0 {
			// SET autocommit = 1 commits the open transaction.
			m.clean = false
		} else {
			m.mayWriteUnmarked() // SET @x = f()
		}
	case "BEGIN", "START":
		// Inside a transaction, it commits it and opens the next.
		m.ending = m.inTx
	case "ROLLBACK":
		if rollbackTo(text) {
			// It may cut marked rows out of the transaction's binlog.
			m.markedWrote = false
			break
		}
		m.ending = m.inTx
	case "COMMIT":
		m.ending = m.inTx
		if commit && m.inTx && m.clean && m.unmarked && !m.markedWrote {
			m.spSent = true
			return nil, true
		}
	case "SHOW", "DESC", "DESCRIBE", "EXPLAIN", "HANDLER", "SAVEPOINT", "RELEASE", "USE":
		// They change no rows.
	default:
		// CALL (its procedure's statements are logged without the
		// marker, and it may commit), DDL and the other statements that
		// commit implicitly, XA.
		m.clean = false
	}
	return nil, false
}

// rollbackTo reports whether a ROLLBACK statement is ROLLBACK [WORK] TO.
func rollbackTo(text []byte) bool {
	word := func(t []byte, w string) ([]byte, bool) {
		t = skipSpace(t)
		if len(t) < len(w) || indexFold(t[:len(w)], w) != 0 || len(t) > len(w) && isIdentByte(t[len(w)]) {
			return t, false
		}
		return t[len(w):], true
	}
	t, ok := word(text, "ROLLBACK")
	if !ok {
		return false
	}
	if rest, ok := word(t, "WORK"); ok {
		t = rest
	}
	_, ok = word(t, "TO")
	return ok
}

// verbOf returns the first word of a statement in upper case if it is one
// settling knows (else "?", or "" for none), skipping spaces and comments.
// It does not allocate: the words come back as constants.
func verbOf(text []byte) string {
	t := skipSpace(text)
	for len(t) > 0 && t[0] == '(' {
		t = skipSpace(t[1:])
	}
	var up [16]byte
	i := 0
	for i < len(t) && i < len(up) && (t[i] >= 'a' && t[i] <= 'z' || t[i] >= 'A' && t[i] <= 'Z') {
		c := t[i]
		if c >= 'a' {
			c -= 'a' - 'A'
		}
		up[i] = c
		i++
	}
	if i == 0 {
		return ""
	}
	if v, ok := verbs[string(up[:i])]; ok {
		return v
	}
	return "?"
}

// verbs are the first words markerFor and settleFailed act on.
var verbs = func() map[string]string {
	m := map[string]string{}
	for _, w := range []string{"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD", "DO", "WITH", "VALUES", "TABLE",
		"SHOW", "DESC", "DESCRIBE", "EXPLAIN", "HANDLER", "BEGIN", "START", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT",
		"USE", "SET", "CALL", "XA"} {
		m[w] = w
	}
	return m
}()

// startSettleable snapshots the node's recent acknowledged markers when the
// command may end a transaction.
func (s *session) startSettleable() {
	if s.mark.ends {
		s.p.settle.rings[s.be.node].snapshot(&s.mark.bounds)
	}
	// Before it is sent: the transaction it ends cannot be in any binlog
	// before this moment.
	s.mark.sent = time.Now()
}

// noteOK records what an OK packet of the node says about the transaction:
// rows changed, last insert id.
func (s *session) noteOK(head []byte) {
	rows, pos, ok := lenEncInt(head, 1)
	if !ok {
		return
	}
	id, _, ok := lenEncInt(head, pos)
	if ok && id != 0 {
		s.facts.LastInsertID = id
	}
	if rows > 0 {
		s.mark.wrote = true
		// An UPDATE's count is of matched rows with CLIENT_FOUND_ROWS:
		// it proves no change.
		if s.mark.marked && (s.mark.verb != "UPDATE" || s.caps&mysql.CLIENT_FOUND_ROWS == 0) {
			s.mark.markedWrote = true
		}
	}
}

// endCommand runs after a command answered without failing: a transaction
// that ended with a commit and changed rows becomes a bound for later ones.
func (s *session) endCommand(failed bool) {
	m := &s.mark
	if m.ending && s.facts.InTransaction {
		if failed {
			m.clean = false // did it end? Its marker may be in two transactions
		} else {
			m.fresh = true // a new transaction, a new marker
		}
	}
	if failed || s.broken || !m.ends || s.facts.InTransaction || !m.clean || !m.wrote {
		return
	}
	if !m.markedWrote && !m.spSent {
		return // its marker may not be in the binlog: no use as a bound
	}
	if m.verb == "ROLLBACK" {
		return
	}
	if m.sent.IsZero() {
		return // never with a marker or a COMMIT (startSettleable ran)
	}
	s.p.settle.rings[s.be.node].push(ackedMark{markID{s.id, m.seq}, m.sent})
}

// settleable reports whether the command that failed on the node can be
// settled: a COMMIT or an autocommit statement of a transaction whose every
// statement carried the marker.
func (s *session) settleable(r *relay) bool {
	m := &s.mark
	if s.p.settle == nil || !m.ends || !m.clean {
		return false
	}
	if r.commit && m.inTx {
		return true
	}
	return !m.inTx && m.autocom && (m.marked || cannotWrite(m.verb))
}

// settleFailed answers a settleable command whose node failed: it waits,
// until HoldTimeout, for traffic to move to another node, asks Settle, and
// queues the answer. It returns the error to send, or nil when it queued an
// OK.
func (s *session) settleFailed(r *relay, node *Node, cause error) *sqlError {
	what := "statement"
	if r.commit {
		what = "COMMIT"
	}
	unknown := func(why string) *sqlError {
		return newError(erInterrupted, "tandem: node %s failed during %s (%v); the outcome could not be checked (%s): it may or may not have taken effect, check before retrying",
			node.Name, what, cause, why)
	}
	if !s.mark.inTx && cannotWrite(s.mark.verb) {
		return &sqlError{Code: erTxLost, State: "40001", Message: fmt.Sprintf(
			"tandem: node %s failed during %s (%v); it changes no data: safe to retry", node.Name, s.mark.verb, cause)}
	}
	// Wait for traffic to move: first for the failover to begin (the
	// route held or changed), then for the new route.
	start := time.Now()
	deadline := start.Add(s.p.cfg.HoldTimeout)
	detect := start.Add(min(s.p.cfg.HoldTimeout, settleDetectWait))
	s.busy.Store(false)
	defer s.busy.Store(true)
	first := s.p.route.Load()
	var to *Node
	var after time.Time
	for to == nil {
		rt := s.p.route.Load()
		if rt != first && !rt.held && rt.node != nil {
			if rt.node == node {
				return unknown("traffic came back to node " + node.Name)
			}
			to, after = rt.node, rt.at
			break
		}
		if rt == first && !rt.held && rt.node != node && rt.node != nil {
			to, after = rt.node, time.Now() // traffic had already moved
			break
		}
		until := deadline
		if rt == first && !rt.held {
			until = detect
		}
		d := time.Until(until)
		if d <= 0 {
			if until == detect {
				return unknown("no failover of node " + node.Name + " began")
			}
			return unknown("traffic did not move to another node within hold_timeout")
		}
		if s.closed.Load() {
			return unknown("tandem is closing the session")
		}
		t := time.NewTimer(min(d, 100*time.Millisecond)) // and look at closed again
		select {
		case <-rt.changed:
		case <-t.C:
		}
		t.Stop()
	}
	moved := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	req := SettleRequest{From: node.Name, To: to.Name, ThreadID: s.be.threadID,
		Marker: string(s.mark.marker[:len(s.mark.marker)-1]), Commit: r.commit && s.mark.inTx, After: after}
	for _, b := range s.mark.bounds {
		if b.seq != 0 {
			m := s.p.settle.appendMarker(nil, b.markID)
			req.Bounds = append(req.Bounds, string(m[:len(m)-1]))
			if b.sent.After(req.BoundsSince) {
				req.BoundsSince = b.sent
			}
		}
	}
	res := s.p.cfg.Settle(ctx, req)
	s.p.log.Info("settled a command interrupted by a node failure", "session", s.id, "from", node.Name, "to", to.Name,
		"known", res.Known, "committed", res.Committed, "why", res.Why,
		"waited", moved.Sub(start).Round(time.Millisecond), "checked", time.Since(moved).Round(time.Millisecond), "search", res.Search)
	switch {
	case !res.Known:
		return unknown(res.Why)
	case !res.Committed:
		return &sqlError{Code: erTxLost, State: "40001", Message: fmt.Sprintf(
			"tandem: node %s failed during %s (%v); checked on node %s: it was not committed (it left no change there), safe to retry", node.Name, what, cause, to.Name)}
	}
	if res.InsertID != 0 {
		s.facts.LastInsertID = res.InsertID
	}
	var status uint16
	if s.facts.Autocommit {
		status = mysql.SERVER_STATUS_AUTOCOMMIT
	}
	if s.caps&mysql.CLIENT_FOUND_ROWS != 0 && s.mark.verb == "UPDATE" {
		res.RowsKnown = false // the client counts matched rows, the binlog changed ones
	}
	rows := res.AffectedRows
	if !res.RowsKnown {
		rows = 0
	}
	info := fmt.Sprintf("tandem: node %s failed; checked on node %s: committed", node.Name, to.Name)
	if !res.RowsKnown && !r.commit {
		info += " (affected rows unknown)"
	}
	r.cw.Reset(s.cwr)
	_, err := writePacket(r.cw, s.replySeq(), appendOKInfo(nil, rows, res.InsertID, status, info, s.caps))
	if err != nil {
		return unknown(err.Error())
	}
	return nil
}

// appendOKInfo appends an OK packet payload with affected rows, insert id,
// status and a human-readable info string.
func appendOKInfo(b []byte, rows, insertID uint64, status uint16, info string, caps uint32) []byte {
	b = append(b, 0)
	b = appendLenEnc(b, rows)
	b = appendLenEnc(b, insertID)
	b = binary.LittleEndian.AppendUint16(b, status)
	b = append(b, 0, 0) // warnings
	if caps&mysql.CLIENT_SESSION_TRACK != 0 {
		b = appendLenEnc(b, uint64(len(info)))
	}
	return append(b, info...)
}

func appendLenEnc(b []byte, v uint64) []byte {
	switch {
	case v < 0xfb:
		return append(b, byte(v))
	case v <= 0xffff:
		return binary.LittleEndian.AppendUint16(append(b, 0xfc), uint16(v))
	case v <= 0xffffff:
		return append(b, 0xfd, byte(v), byte(v>>8), byte(v>>16))
	default:
		return binary.LittleEndian.AppendUint64(append(b, 0xfe), v)
	}
}
