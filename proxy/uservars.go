package proxy

// Reading a session's state on its own node connection before a planned
// move, so that user variables set from queries and LAST_INSERT_ID()
// survive a switchover exactly: MariaDB lists the connection's own
// variables in information_schema.USER_VARIABLES.

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// userVarsQuery lists the session's user variables, the value as hex so
// that no byte is lost on the way.
const userVarsQuery = "SELECT VARIABLE_NAME, VARIABLE_TYPE, CHARACTER_SET_NAME, HEX(VARIABLE_VALUE) FROM information_schema.USER_VARIABLES"

// captured is what a capture read on a session's idle node connection.
type captured struct {
	vars   []string // SET statements for its user variables (UserVars only)
	lastID uint64   // LAST_INSERT_ID()
	err    error
}

// needsCapture reports whether a planned move should read the session's
// state on its old node: user variables set from queries, or an insert id
// (the OK packets tell LAST_INSERT_ID() except after an INSERT that gave an
// AUTO_INCREMENT column its value: the node knows exactly).
func (f *Facts) needsCapture() bool { return f.UserVars || f.LastInsertID != 0 }

// captureIdle reads, for each idle session with state to capture, that
// state on its own node connection, in the background: Hold calls it, so
// that a planned switchover, which waits for Activity to show no busy
// session, finds every session's state read before the old node's
// connections are killed. A session claimed for a capture counts as busy,
// and its own goroutine waits for the capture before it uses its node
// connection again.
func (p *Proxy) captureIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.sessions {
		if !s.admitted || !s.wantCapture.Load() {
			continue
		}
		s.mu.Lock()
		if s.be == nil || s.closed.Load() || !s.claim.CompareAndSwap(claimIdle, claimCapture) {
			s.mu.Unlock()
			continue
		}
		s.capDone = make(chan struct{})
		s.mu.Unlock()
		p.capturing.Add(1)
		go func() {
			c := s.readState()
			s.mu.Lock()
			s.capture = &c
			done := s.capDone
			s.capDone = nil
			s.claim.Store(claimIdle)
			s.mu.Unlock()
			close(done)
			p.capturing.Add(-1)
		}()
	}
}

// Values of session.claim: who may use the session's node connection.
const (
	claimIdle    = 0
	claimCommand = 1 // the session's goroutine runs a command
	claimCapture = 2 // captureIdle reads the session's state
)

// claimConn takes the node connection for the session's own goroutine,
// waiting for a capture in progress.
func (s *session) claimConn() {
	for !s.claim.CompareAndSwap(claimIdle, claimCommand) {
		s.mu.Lock()
		done := s.capDone
		s.mu.Unlock()
		if done != nil {
			<-done
		}
	}
}

// takeCapture returns and forgets the state captured on the current node
// connection, if any.
func (s *session) takeCapture() *captured {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.capture
	s.capture = nil
	return c
}

// readState reads the session's user variables (if it has some tandem
// cannot replay) and LAST_INSERT_ID() on its idle node connection.
func (s *session) readState() captured {
	be := s.be
	_ = be.conn.SetDeadline(time.Now().Add(s.p.cfg.LoginTimeout))
	defer be.conn.SetDeadline(time.Time{})
	if s.cut.Load() {
		// Cut's deadline may have come before ours: the node failed.
		return captured{err: errors.New("the node's connections were cut")}
	}
	sc := newSyncConn(be)
	var c captured
	rows, err := sc.query("SELECT LAST_INSERT_ID()")
	if err != nil || len(rows) != 1 || len(rows[0]) != 1 || rows[0][0] == nil {
		return captured{err: fmt.Errorf("reading LAST_INSERT_ID(): %v", err)}
	}
	if c.lastID, err = strconv.ParseUint(*rows[0][0], 10, 64); err != nil {
		return captured{err: fmt.Errorf("reading LAST_INSERT_ID(): %w", err)}
	}
	if s.facts.UserVars {
		if c.vars, err = sc.userVars(); err != nil {
			return captured{err: err}
		}
	}
	if sc.br.Buffered() > 0 {
		return captured{err: fmt.Errorf("%w: node sent more than was asked while reading session state", errNodeProtocol)}
	}
	return c
}

// userVars returns SET statements that give a new connection the user
// variables of this one.
func (sc *syncConn) userVars() ([]string, error) {
	rows, err := sc.query(userVarsQuery)
	if err != nil {
		return nil, fmt.Errorf("reading user variables: %w", err)
	}
	out := []string{} // not nil: none is an answer too
	for _, r := range rows {
		if len(r) != 4 || r[0] == nil || r[1] == nil {
			return nil, fmt.Errorf("%w: bad USER_VARIABLES row", errNodeProtocol)
		}
		name := "@`" + strings.ReplaceAll(*r[0], "`", "``") + "`"
		if r[3] == nil {
			out = append(out, "SET "+name+" = NULL")
			continue
		}
		raw, err := hex.DecodeString(*r[3])
		if err != nil {
			return nil, fmt.Errorf("%w: bad USER_VARIABLES value", errNodeProtocol)
		}
		switch *r[1] {
		case "INT", "DECIMAL":
			out = append(out, "SET "+name+" = "+string(raw))
		case "REAL", "DOUBLE":
			out = append(out, "SET "+name+" = CAST("+quoteString(string(raw))+" AS DOUBLE)")
		default: // STRING: the value was read in utf8mb4
			cs := "binary"
			if r[2] != nil && *r[2] != "" {
				cs = *r[2]
			}
			out = append(out, "SET "+name+" = CONVERT(CONVERT(X'"+hex.EncodeToString(raw)+"' USING utf8mb4) USING "+cs+")")
		}
	}
	return out, nil
}

// quoteString quotes s as an SQL string literal.
func quoteString(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}

// query runs a statement and returns its rows (text protocol; nil for NULL).
func (c *syncConn) query(stmt string) ([][]*string, error) {
	p, err := c.roundTrip(mysql.COM_QUERY, stmt)
	if err != nil {
		return nil, err
	}
	ncols, _, ok := lenEncInt(p, 0)
	if !ok || ncols == 0 || ncols > 64 {
		return nil, fmt.Errorf("%w: %q did not return rows", errNodeProtocol, stmt)
	}
	for range ncols {
		if _, _, err := readPacket(c.br, nil, 1<<20); err != nil {
			return nil, err
		}
	}
	if c.caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
		if _, _, err := readPacket(c.br, nil, 1<<20); err != nil {
			return nil, err
		}
	}
	var rows [][]*string
	for {
		p, _, err := readPacket(c.br, nil, 1<<24)
		if err != nil {
			return nil, err
		}
		if len(p) > 0 && p[0] == 0xff {
			e, _ := parseErr(p)
			return nil, &e
		}
		if len(p) > 0 && p[0] == 0xfe && len(p) < 0xffffff {
			return rows, nil
		}
		row := make([]*string, 0, ncols)
		pos := 0
		for range ncols {
			if pos < len(p) && p[pos] == 0xfb {
				row = append(row, nil)
				pos++
				continue
			}
			v, next, ok := lenEncBytes(p, pos)
			if !ok {
				return nil, fmt.Errorf("%w: bad row", errNodeProtocol)
			}
			sv := string(v)
			row = append(row, &sv)
			pos = next
		}
		rows = append(rows, row)
		if len(rows) > 4096 {
			return nil, fmt.Errorf("%w: too many rows", errNodeProtocol)
		}
	}
}
