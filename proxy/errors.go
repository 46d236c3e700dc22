package proxy

// Every ERR packet tandem itself sends is built here, so that the codes a
// client can see from tandem are listed in one place.

import (
	"bufio"
	"encoding/binary"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Error codes tandem sends. Codes above 1863 are not in go-mysql's table.
const (
	erConCount               = mysql.ER_CON_COUNT_ERROR         // 1040 too many connections
	erHandshake              = mysql.ER_HANDSHAKE_ERROR         // 1043 bad handshake
	erAccessDenied           = mysql.ER_ACCESS_DENIED_ERROR     // 1045
	erAccessDeniedNoPassword = 1698                             // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
	erUnknownCom             = mysql.ER_UNKNOWN_COM_ERROR       // 1047 unknown command
	erNetPacketTooLarge      = mysql.ER_NET_PACKET_TOO_LARGE    // 1153
	erNetReadError           = mysql.ER_NET_READ_ERROR          // 1158
	erNoSuchThread           = mysql.ER_NO_SUCH_THREAD          // 1094 unknown thread id
	erNotSupportedAuth       = mysql.ER_NOT_SUPPORTED_AUTH_MODE // 1251
	erKillDenied             = mysql.ER_KILL_DENIED_ERROR       // 1095
	erNotSupportedYet        = mysql.ER_NOT_SUPPORTED_YET       // 1235
	// erUnknown (1105) is what tandem sends when it cannot reach or log in
	// to a node, with SQLSTATE 08S01 (communication link failure) so that
	// drivers class it as a connection error, and a message naming the node.
	erUnknown = mysql.ER_UNKNOWN_ERROR // 1105
)

// sqlError is an error that tandem reports to the client as an ERR packet.
type sqlError struct {
	Code    uint16
	State   string
	Message string
}

func (e *sqlError) Error() string {
	return fmt.Sprintf("ERROR %d (%s): %s", e.Code, e.State, e.Message)
}

// newError builds an error with the SQLSTATE go-mysql knows for code.
func newError(code uint16, format string, args ...any) *sqlError {
	state, ok := mysql.MySQLState[code]
	if !ok {
		state = mysql.DEFAULT_MYSQL_STATE
	}
	return &sqlError{Code: code, State: state, Message: fmt.Sprintf(format, args...)}
}

// backendError is the error a client sees when tandem cannot reach or log in
// to a node: SQLSTATE 08S01 marks it as a connection failure.
func backendError(format string, args ...any) *sqlError {
	return &sqlError{Code: erUnknown, State: "08S01", Message: fmt.Sprintf(format, args...)}
}

// appendErr appends the payload of an ERR packet (protocol 4.1 form).
func appendErr(b []byte, e *sqlError) []byte {
	b = append(b, 0xff)
	b = binary.LittleEndian.AppendUint16(b, e.Code)
	state := e.State
	if len(state) != 5 {
		state = mysql.DEFAULT_MYSQL_STATE
	}
	b = append(b, '#')
	b = append(b, state...)
	return append(b, e.Message...)
}

// writeErr buffers an ERR packet with sequence id seq into w and flushes.
func writeErr(w *bufio.Writer, seq byte, e *sqlError) error {
	if err := queueErr(w, seq, e); err != nil {
		return err
	}
	return w.Flush()
}

// queueErr buffers an ERR packet with sequence id seq into w.
func queueErr(w *bufio.Writer, seq byte, e *sqlError) error {
	var buf [256]byte
	_, err := writePacket(w, seq, appendErr(buf[:0], e))
	return err
}

// parseErr decodes an ERR packet payload; ok is false when it is malformed.
func parseErr(p []byte) (e sqlError, ok bool) {
	if len(p) < 3 || p[0] != 0xff {
		return e, false
	}
	e.Code = binary.LittleEndian.Uint16(p[1:])
	rest := p[3:]
	if len(rest) >= 6 && rest[0] == '#' {
		e.State = string(rest[1:6])
		rest = rest[6:]
	}
	e.Message = string(rest)
	return e, true
}
