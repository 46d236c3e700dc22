package proxy

// Reading a session's user variables on its own node connection before a
// planned move, so that variables set from queries survive a switchover:
// MariaDB lists them in information_schema.USER_VARIABLES, which shows the
// variables of the connection that reads it.

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// userVarsQuery lists the session's user variables, the value as hex so
// that no byte is lost on the way.
const userVarsQuery = "SELECT VARIABLE_NAME, VARIABLE_TYPE, CHARACTER_SET_NAME, HEX(VARIABLE_VALUE) FROM information_schema.USER_VARIABLES"

// readUserVars returns SET statements that give a new connection the user
// variables (and LAST_INSERT_ID) of the session's idle node connection.
func (s *session) readUserVars() ([]string, error) {
	be := s.be
	_ = be.conn.SetDeadline(time.Now().Add(s.p.cfg.LoginTimeout))
	defer be.conn.SetDeadline(time.Time{})
	sc := &syncConn{br: bufio.NewReaderSize(be.rw, 4096), bw: bufio.NewWriterSize(be.rw, 4096), caps: be.caps}
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
		default: // STRING: the value was read in the connection's character set
			cs := "binary"
			if r[2] != nil && *r[2] != "" {
				cs = *r[2]
			}
			out = append(out, "SET "+name+" = CONVERT(CONVERT(X'"+hex.EncodeToString(raw)+"' USING utf8mb4) USING "+cs+")")
		}
	}
	if sc.br.Buffered() > 0 {
		return nil, fmt.Errorf("%w: node sent more than was asked while reading user variables", errNodeProtocol)
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
