package proxy

// MariaDB's metadata cache (MARIADB_CLIENT_CACHE_METADATA): a result set's
// column count is followed by a byte saying whether its column definitions
// follow. A node leaves them out of a COM_STMT_EXECUTE answer when the
// client already holds them: from the prepare, or from an earlier execute
// of the same statement on that connection.
//
// A session that moves re-prepares its statements on the new node
// (move.go): that node then believes the client holds the definitions of
// tandem's re-prepare, while the client holds those the old node sent. The
// two are the same bytes unless the statement's result changed shape
// (a different table definition, say). tandem keeps, per statement, a
// checksum of the definitions the client received last; a re-prepare whose
// definitions differ marks the statement stale. A stale statement's next
// answer with definitions makes it fresh again; one without them cannot be
// relayed faithfully (the client would decode its rows with the wrong
// columns), so tandem answers with an error and closes the session.

import (
	"errors"
	"hash/crc32"
)

// stmtMeta is what tandem knows of one statement's cached metadata.
type stmtMeta struct {
	crc   uint32 // checksum of the column definitions the client holds
	stale bool   // the node's idea of them differs (after a move)
}

// metaCRC adds one column definition packet to a checksum. A packet too
// large for the relay's buffer (head nil) counts by its first byte: the
// checksum then only errs towards "different".
func metaCRC(crc uint32, head []byte, first byte) uint32 {
	if head == nil {
		return crc32.Update(crc, crc32.IEEETable, []byte{first, 0xff})
	}
	return crc32.Update(crc, crc32.IEEETable, head)
}

// noteMeta records that the client now holds column definitions with
// checksum crc for statement id (a client id).
func (s *session) noteMeta(id, crc uint32) {
	if id == 0 {
		return
	}
	if s.meta == nil {
		s.meta = map[uint32]stmtMeta{}
	}
	s.meta[id] = stmtMeta{crc: crc}
}

// reprepared records the checksum of a statement's definitions as a new
// node sent them to tandem's re-prepare.
func (s *session) reprepared(id, crc uint32) {
	if m, ok := s.meta[id]; ok && m.crc != crc {
		m.stale = true
		s.meta[id] = m
	}
}

// forgetStmts drops what the session knew of its statements (the node
// dropped them: COM_RESET_CONNECTION, COM_CHANGE_USER).
func (s *session) forgetStmts() {
	s.lastStmt = 0
	if s.meta != nil {
		s.meta = map[uint32]stmtMeta{}
	}
}

// staleMetadata answers an execute whose node left out column definitions
// the client does not hold (the column count of length bytes was the
// last packet relayed). When nothing reached the client before it, the
// client gets an error; the session ends either way.
func (s *session) staleMetadata(r *relay, length int) error {
	e := &sqlError{Code: erConnectionKilled, State: "70100", Message: "tandem: after moving to node " + s.be.node.Name +
		", the node sent a prepared statement's rows without the column definitions the client holds (they differ from the old node's); reconnect"}
	if r.out == headerLen+length {
		r.cw.Reset(s.cwr)
		r.wrote = false
		_ = queueErr(r.cw, s.replySeq(), e)
	}
	s.p.log.Warn("closing a session whose cached result metadata is stale after a move", "session", s.id, "node", s.be.node.Name)
	return errStaleMetadata
}

// errStaleMetadata ends a session whose cached metadata went stale.
var errStaleMetadata = errors.New("stale cached result metadata after a move")
