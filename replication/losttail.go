package replication

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// ErrNotFenced is returned, wrapped, by Resume for a node that is
// writable: its replication is left alone.
var ErrNotFenced = errors.New("replication: the node is writable")

// Resume starts the replica threads of a fenced node from the position
// its binary log backs, as a semi-sync replica, and returns the GTIDs of
// a lost own tail it moved gtid_slave_pos back from (Facts.LostOwnTail)
// and the position it set, both "" when there was none. A node whose
// threads run and which lost nothing is left as it is.
//
// This is how a node started with skip_slave_start (README "Crash
// recovery of the old active") must begin replicating after a restart: a node killed
// while its own commit waited for the peer's acknowledgement may hold a
// gtid_slave_pos naming that commit, which its crash recovery dropped
// (LostOwnTail); replica threads started from there would never fetch it
// back, and once they apply the source's later transactions the loss can
// no longer be repaired (SkippedOwn). Steps: STOP SLAVE; read again; SET
// GLOBAL gtid_slave_pos without the lost tail (what the binary log has
// in those domains); START SLAVE. The source then sends the lost
// transactions and the node applies them although they carry its own
// server_id (gtid_strict_mode; MDEV-27760, MDEV-28609).
//
// A writable node is refused with ErrNotFenced. On MySQL, which has no
// lost own tail, Resume only starts stopped threads.
func Resume(ctx context.Context, q Querier) (lost, pos string, err error) {
	f, err := Read(ctx, q)
	if err != nil {
		return "", "", fmt.Errorf("replication: Resume: %w", err)
	}
	if f.Writable() {
		return "", "", fmt.Errorf("replication: Resume: %w", ErrNotFenced)
	}
	r := f.Replica
	if f.LostOwnTail() == nil && r.SQLRunning && r.IORunning != IONo {
		return "", "", nil
	}
	if err := StopReplica(ctx, q, f.Flavor); err != nil {
		return "", "", fmt.Errorf("replication: Resume: %w", err)
	}
	// Read again with the replica threads stopped: the SQL thread may
	// have moved gtid_slave_pos meanwhile.
	if f, err = Read(ctx, q); err != nil {
		return "", "", fmt.Errorf("replication: Resume: %w", err)
	}
	if f.Writable() {
		return "", "", fmt.Errorf("replication: Resume: %w", ErrNotFenced)
	}
	if l := f.LostOwnTail(); l != nil {
		lost = l.String()
		pos = withoutLostTail(f.SlavePos.Set, f.BinlogPos.Set, l).String()
		if _, err := q.ExecContext(ctx, "SET GLOBAL gtid_slave_pos = ?", pos); err != nil {
			return "", "", fmt.Errorf("replication: Resume: SET GLOBAL gtid_slave_pos = '%s': %w", pos, err)
		}
	}
	if err := StartReplicaSemiSync(ctx, q, f.Flavor, false); err != nil {
		return "", "", fmt.Errorf("replication: Resume: %w", err)
	}
	return lost, pos, nil
}

// SkipLostSequence makes the GTIDs of a MariaDB node that restarted, and
// is about to take writes while its peer cannot be asked what it holds,
// start past every sequence number its crash recovery may have dropped.
// Dropped commits (waiting for the peer's acknowledgement when the node
// died) may have reached the peer; a new commit reusing the GTID of one
// of them would be skipped by the peer's replication, which already counts
// that GTID as applied: an acknowledged write missing on the peer for
// good. SkipLostSequence writes h's row for node in a transaction whose
// sequence number is the highest the node has used in its gtid_domain_id
// (highestSequence) plus max_connections + extra_max_connections + 2 (a
// session waits for at most one acknowledgement). The peer then resumes
// after the gap and applies every new commit; it keeps the dropped
// commits it had (never acknowledged to their clients). It returns the
// GTID written; on MySQL, which drops nothing in crash recovery, it does
// nothing. The user needs SUPER or BINLOG REPLAY (gtid_seq_no) and
// READ_ONLY ADMIN on a fenced node.
func SkipLostSequence(ctx context.Context, db *sql.DB, h Heartbeat, node string, epoch uint64, now time.Time) (string, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", fmt.Errorf("replication: SkipLostSequence: %w", err)
	}
	defer conn.Close()
	const q = "SELECT @@GLOBAL.version, @@GLOBAL.server_id, @@GLOBAL.gtid_domain_id, " +
		"@@GLOBAL.max_connections, @@GLOBAL.extra_max_connections"
	var (
		version          string
		serverID, domain uint32
		conns, extra     uint64
	)
	if err := conn.QueryRowContext(ctx, "SELECT @@GLOBAL.version").Scan(&version); err != nil {
		return "", fmt.Errorf("replication: SkipLostSequence: %w", err)
	}
	if DetectFlavor(version) != MariaDB {
		return "", nil
	}
	if err := conn.QueryRowContext(ctx, q).Scan(&version, &serverID, &domain, &conns, &extra); err != nil {
		return "", fmt.Errorf("replication: SkipLostSequence: %s: %w", q, err)
	}
	seq, err := highestSequence(ctx, conn, domain)
	if err != nil {
		return "", fmt.Errorf("replication: SkipLostSequence: %w", err)
	}
	next := seq + conns + extra + 2
	if _, err := conn.ExecContext(ctx, "SET SESSION gtid_seq_no = ?", next); err != nil {
		return "", fmt.Errorf("replication: SkipLostSequence: SET SESSION gtid_seq_no = %d: %w", next, err)
	}
	if err := h.Write(ctx, conn, node, epoch, now); err != nil {
		// gtid_seq_no stays set until a transaction uses it: never hand
		// this connection back to the pool.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		return "", fmt.Errorf("replication: SkipLostSequence: %w", err)
	}
	g := mysql.MariadbGTID{DomainID: domain, ServerID: serverID, SequenceNumber: next}
	return g.String(), nil
}

// highestSequence is the highest sequence number of domain that the
// node's GTID positions or its binary log name. gtid_binlog_pos alone is
// not enough: after a crash whose recovery truncated the binary log,
// MariaDB 10.11.14 reported gtid_binlog_pos and gtid_current_pos as they
// stood when the crashed binary log file began, 316 transactions short,
// and began its next file with that state (TestActiveRestartedAlone, once
// in five runs); a sequence moved from there would reuse GTIDs the peer
// already has. So gtid_slave_pos (the node's own commits looped back
// through the peer) counts too, and so does BINLOG_GTID_POS at the end of
// the two newest binary log files, which MariaDB computes by reading the
// file: the crashed one and the one begun at the restart. Reading a file
// takes time in proportion to its size (max_binlog_size).
func highestSequence(ctx context.Context, conn *sql.Conn, domain uint32) (uint64, error) {
	const q = "SELECT @@GLOBAL.gtid_binlog_pos, @@GLOBAL.gtid_current_pos, @@GLOBAL.gtid_slave_pos"
	positions := make([]string, 3, 5)
	if err := conn.QueryRowContext(ctx, q).Scan(&positions[0], &positions[1], &positions[2]); err != nil {
		return 0, fmt.Errorf("%s: %w", q, err)
	}
	files, err := binaryLogs(ctx, conn)
	if err != nil {
		return 0, err
	}
	for _, f := range files[max(0, len(files)-2):] {
		var pos sql.NullString
		if err := conn.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", f.name, f.size).Scan(&pos); err != nil {
			return 0, fmt.Errorf("BINLOG_GTID_POS('%s', %d): %w", f.name, f.size, err)
		}
		if pos.Valid {
			positions = append(positions, pos.String)
		}
	}
	return maxSequence(positions, domain)
}

// maxSequence is the highest sequence number of domain in MariaDB GTID
// positions (0 when none names the domain).
func maxSequence(positions []string, domain uint32) (uint64, error) {
	var seq uint64
	for _, p := range positions {
		set, err := ParseGTIDs(MariaDB, p)
		if err != nil {
			return 0, fmt.Errorf("GTID position %q: %w", p, err)
		}
		if s, ok := set.(*mysql.MariadbGTIDSet); ok && s.Sets[domain] != nil {
			seq = max(seq, s.Sets[domain].SequenceNumber)
		}
	}
	return seq, nil
}

// UndoResume puts back the gtid_slave_pos that Resume moved back from
// lost (its first result), when the premise of the move proved wrong: the
// node's SQL thread stopped on a row the node already has (1062, 1032)
// while applying what it was to fetch again, so its data held those
// transactions although its binary log did not. STOP SLAVE; SET GLOBAL
// gtid_slave_pos to its position with lost's domains taken from lost;
// START SLAVE. It returns the position set.
func UndoResume(ctx context.Context, q Querier, lost string) (string, error) {
	l, err := ParseGTIDs(MariaDB, lost)
	if err != nil {
		return "", fmt.Errorf("replication: UndoResume: %w", err)
	}
	f, err := Read(ctx, q)
	if err != nil {
		return "", fmt.Errorf("replication: UndoResume: %w", err)
	}
	if f.Writable() {
		return "", fmt.Errorf("replication: UndoResume: %w", ErrNotFenced)
	}
	if err := StopReplica(ctx, q, MariaDB); err != nil {
		return "", fmt.Errorf("replication: UndoResume: %w", err)
	}
	if f, err = Read(ctx, q); err != nil {
		return "", fmt.Errorf("replication: UndoResume: %w", err)
	}
	out := &mysql.MariadbGTIDSet{Sets: map[uint32]*mysql.MariadbGTID{}}
	if s, ok := f.SlavePos.Set.(*mysql.MariadbGTIDSet); ok && s != nil {
		for d, g := range s.Sets {
			c := *g
			out.Sets[d] = &c
		}
	}
	ls, ok := l.(*mysql.MariadbGTIDSet)
	if !ok {
		return "", fmt.Errorf("replication: UndoResume: %q is not a MariaDB GTID position", lost)
	}
	for d, g := range ls.Sets {
		c := *g
		out.Sets[d] = &c
	}
	pos := out.String()
	if _, err := q.ExecContext(ctx, "SET GLOBAL gtid_slave_pos = ?", pos); err != nil {
		return "", fmt.Errorf("replication: UndoResume: SET GLOBAL gtid_slave_pos = '%s': %w", pos, err)
	}
	if err := StartReplicaSemiSync(ctx, q, MariaDB, false); err != nil {
		return "", fmt.Errorf("replication: UndoResume: %w", err)
	}
	return pos, nil
}
