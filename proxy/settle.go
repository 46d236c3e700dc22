package proxy

// Settled outcomes: when a node fails while a COMMIT or an autocommit
// statement runs there, tandem does not answer "it may or may not have
// taken effect" at once. It waits for traffic to move to another node and
// asks Config.Settle whether the transaction was committed there, then
// answers exactly: the OK the node would have sent, or "not committed, safe
// to retry".
//
// To make a transaction findable, tandem puts a marker comment in front of
// each statement it relays ("/*tandem:<process>:<session>:<transaction>*/"),
// unique per tandem process, session and transaction. MariaDB copies the
// statement text, marker included, into the binlog next to the rows it
// changed, and the passive keeps it when it applies them. A transaction is
// settled only if every statement in it that could change rows carried the
// marker (prepared statements, CALL, multi-statement queries and statements
// that commit implicitly do not); the others get today's answer.
//
// Finding the marker proves the commit. Not finding it proves nothing
// unless the search read far enough back: so each session also passes the
// markers of a few transactions the same node acknowledged (committed)
// before the COMMIT was sent. Once one of those is found, the searched one,
// if committed, must come after it.

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
	// one's COMMIT was sent.
	Bounds []string
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

// markRing holds the last transactions a node acknowledged that changed
// rows.
type markRing struct {
	mu   sync.Mutex
	next int
	m    [markRingSize]markID
}

func (r *markRing) push(id markID) {
	r.mu.Lock()
	r.m[r.next] = id
	r.next = (r.next + 1) % markRingSize
	r.mu.Unlock()
}

func (r *markRing) snapshot(dst *[markRingSize]markID) {
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
	// marker or could not change rows; wrote: one changed rows.
	clean, wrote bool

	// prepared: the transaction ran prepared statements; its COMMIT is
	// preceded by a marking SAVEPOINT.
	prepared  bool
	savepoint []byte // the COM_QUERY payload of the marking SAVEPOINT

	// The command in flight.
	ends    bool   // it may end a transaction (COMMIT, autocommit statement)
	marked  bool   // it carried the marker
	verb    string // its first word (marked COM_QUERY)
	bounds  [markRingSize]markID
	inTx    bool // the session was in a transaction when it started
	autocom bool
}

// beginCommand runs before each command when settling is on: a command
// outside a transaction starts a new one (a new marker).
func (s *session) beginCommand(cmd byte) {
	m := &s.mark
	if !s.facts.InTransaction {
		m.seq = s.p.settle.seq.Add(1)
		m.clean, m.wrote, m.prepared = true, false, false
		m.marker = s.p.settle.appendMarker(m.marker[:0], markID{s.id, m.seq})
	}
	m.marked, m.verb = false, ""
	m.inTx, m.autocom = s.facts.InTransaction, s.facts.Autocommit
	m.ends = false
	switch cmd {
	case mysql.COM_QUERY, mysql.COM_STMT_EXECUTE, comStmtBulkExecute:
		m.ends = !m.inTx && m.autocom
		if cmd != mysql.COM_QUERY {
			// Prepared text carries no marker: a transaction is marked
			// by a savepoint before its COMMIT; an autocommit
			// execution cannot be.
			if m.inTx || !m.autocom {
				m.prepared = true
			} else {
				m.clean = false
			}
		}
	}
}

// markerFor decides whether a COM_QUERY (text, whole) carries the marker.
// It returns the marker, or nil when the statement goes unmarked (which
// makes the transaction unsettleable if the statement could write).
func (s *session) markerFor(text []byte, whole, commit bool) []byte {
	m := &s.mark
	if commit && m.inTx {
		m.ends = true
	}
	if !whole || afterFirstStatement(text) != nil {
		m.clean = false
		return nil
	}
	verb := verbOf(text)
	switch verb {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD", "DO", "WITH", "VALUES", "TABLE",
		"SHOW", "DESC", "DESCRIBE", "EXPLAIN", "HANDLER", "BEGIN", "START", "SAVEPOINT", "RELEASE",
		"ROLLBACK", "COMMIT", "USE":
	case "SET":
		// SET autocommit = 1 commits the open transaction implicitly.
		if indexFold(text, "AUTOCOMMIT") >= 0 {
			m.clean = false
		}
	default:
		// CALL (its statements are logged without the marker), DDL and
		// the other statements that commit implicitly.
		m.clean = false
		return nil
	}
	m.marked, m.verb = true, verb
	return m.marker
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
		"USE", "SET", "CALL"} {
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
	}
}

// endCommand runs after a command answered without failing: a transaction
// that ended with a commit and changed rows becomes a bound for later ones.
func (s *session) endCommand(failed bool) {
	m := &s.mark
	if failed || s.broken || !m.ends || s.facts.InTransaction || !m.clean || !m.wrote {
		return
	}
	if m.verb == "ROLLBACK" {
		return
	}
	s.p.settle.rings[s.be.node].push(markID{s.id, m.seq})
}

// settleable reports whether the command that failed on the node can be
// settled: a COMMIT or an autocommit statement of a transaction whose every
// statement carried the marker.
func (s *session) settleable(r *relay) bool {
	m := &s.mark
	if s.p.settle == nil || !m.ends || !m.clean || !m.marked {
		return false
	}
	if r.commit && m.inTx {
		return true
	}
	return !m.inTx && m.autocom
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
	for to == nil {
		rt := s.p.route.Load()
		if rt != first && !rt.held && rt.node != nil {
			if rt.node == node {
				return unknown("traffic came back to node " + node.Name)
			}
			to = rt.node
			break
		}
		if rt == first && !rt.held && rt.node != node && rt.node != nil {
			to = rt.node // traffic had already moved
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
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	req := SettleRequest{From: node.Name, To: to.Name, ThreadID: s.be.threadID,
		Marker: string(s.mark.marker[:len(s.mark.marker)-1])}
	for _, b := range s.mark.bounds {
		if b.seq != 0 {
			m := s.p.settle.appendMarker(nil, b)
			req.Bounds = append(req.Bounds, string(m[:len(m)-1]))
		}
	}
	res := s.p.cfg.Settle(ctx, req)
	s.p.log.Info("settled a command interrupted by a node failure", "session", s.id, "from", node.Name, "to", to.Name,
		"known", res.Known, "committed", res.Committed, "why", res.Why)
	switch {
	case !res.Known:
		return unknown(res.Why)
	case !res.Committed:
		return &sqlError{Code: erTxLost, State: "40001", Message: fmt.Sprintf(
			"tandem: node %s failed during %s (%v); checked on node %s: it was not committed (it left no change there), safe to retry", node.Name, what, cause, to.Name)}
	}
	switch s.mark.verb {
	case "SELECT", "WITH", "VALUES", "TABLE", "DO", "SHOW", "DESC", "DESCRIBE", "EXPLAIN", "HANDLER", "SET":
		// It committed changes, but its result (or new settings) is lost.
		return newError(erInterrupted, "tandem: node %s failed during a statement (%v); checked on node %s: its changes were committed, but its result is lost",
			node.Name, cause, to.Name)
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
