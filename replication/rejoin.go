package replication

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Source is the node a replica pulls from, as the replica reaches it.
type Source struct {
	// Host and Port are the source's address seen from the replica, e.g.
	// "127.0.0.1" and 13307. Both are required.
	Host string
	Port int
	// User and Password are the replication account on the source. An
	// empty User keeps the account the replica has configured (and then
	// Password is ignored too).
	User     string
	Password string
}

// ErrDiverged is returned, wrapped, by Rejoin when the node holds
// transactions its new source does not have (or the source no longer has
// the binlogs the node needs): replicating would fork history or fail
// forever. The node must be rebuilt from the source (README "Errant
// transactions"). Rejoin leaves such a node read-only.
var ErrDiverged = errors.New("replication: node diverged from its source")

// rejoinPoll paces the re-reads of the node's replica status in Rejoin.
const rejoinPoll = 50 * time.Millisecond

// Rejoin makes the node behind node a clean, read-only replica of the
// source behind master, reached by the node at src: what a failed active
// needs when it comes back after a crash and another node has taken over.
// It returns nil once the node's replica threads run and the node has
// applied (committed) everything the source had binlogged (MariaDB) or
// executed (MySQL) when Rejoin began; ctx bounds the whole call, catching
// up included. On the local pair the first replicated commit waits
// rpl_semi_sync_master_timeout (2 s): the node is a semi-sync source
// too, and its peer does not replicate from it yet.
//
// Steps: fence the node (SetReadOnly on); read both nodes' facts and
// refuse, with ErrDiverged and before touching replication, a node whose
// executed GTIDs are errant relative to the source's (see Errant); stop
// the node's replica threads; point them at src; start them; wait.
//
// MariaDB: the node's gtid_slave_pos is first set to its gtid_current_pos
// (everything it has applied or written; without a lost own tail, see
// Facts.LostOwnTail), then CHANGE MASTER TO ...
// MASTER_USE_GTID = slave_pos. So the source checks the node's real
// position when the node connects: under gtid_strict_mode a position the
// source's binlog lacks is refused (error 1236), and a transaction of the
// source that would land out of order on the node stops its SQL thread
// (error 1950); both are reported as ErrDiverged. A MariaDB that was
// started with init_rpl_role=SLAVE has already discarded, during crash
// recovery, the commits that were waiting for a semi-sync acknowledgement
// when it died (README "Crash recovery of the old active"), so a crashed
// active normally rejoins cleanly; a transaction of the node's own that
// the source did receive comes back from the source and is applied
// although it carries the node's server_id (MDEV-27760, MDEV-28609).
//
// MySQL: CHANGE REPLICATION SOURCE TO ... SOURCE_AUTO_POSITION = 1 (CHANGE
// MASTER TO ... MASTER_AUTO_POSITION = 1 before 8.0.23). MySQL never
// discards a crashed source's unacknowledged tail: such a node is
// reported as ErrDiverged.
//
// Nothing is changed on master: restarting the source's own replication
// from the node (master-master) is the caller's next step, once Rejoin
// has returned. The user needs SUPER (MySQL 8: REPLICATION_SLAVE_ADMIN
// and SYSTEM_VARIABLES_ADMIN) on the node and REPLICATION CLIENT (MariaDB
// 10.5.9+: SLAVE MONITOR) on both.
func Rejoin(ctx context.Context, node, master Querier, flavor Flavor, src Source) error {
	if flavor != MariaDB && flavor != MySQL {
		return fmt.Errorf("replication: Rejoin: unsupported flavor %d", int(flavor))
	}
	if err := src.validate(); err != nil {
		return fmt.Errorf("replication: Rejoin: %w", err)
	}
	if err := SetReadOnly(ctx, node, flavor, true); err != nil {
		return fmt.Errorf("replication: Rejoin: fencing the node: %w", err)
	}
	fn, err := Read(ctx, node)
	if err != nil {
		return fmt.Errorf("replication: Rejoin: the node: %w", err)
	}
	fm, err := Read(ctx, master)
	if err != nil {
		return fmt.Errorf("replication: Rejoin: the source: %w", err)
	}
	if fn.Flavor != flavor || fm.Flavor != flavor {
		return fmt.Errorf("replication: Rejoin: node is %v and source %v; want %v for both", fn.Flavor, fm.Flavor, flavor)
	}
	if fn.ServerID == fm.ServerID {
		return fmt.Errorf("replication: Rejoin: node and source have the same server_id %d (the same server?)", fn.ServerID)
	}
	target := fm.Executed()
	if set, errant := Errant(target, fn.Executed()); errant {
		return fmt.Errorf("%w: the node has %s, which the source (at %s) lacks", ErrDiverged, set, target)
	}
	if err := StopReplica(ctx, node, flavor); err != nil {
		return fmt.Errorf("replication: Rejoin: %w", err)
	}
	if flavor == MariaDB {
		// gtid_current_pos, unless it names a lost tail of the node's
		// own (Facts.LostOwnTail): then what the node really has.
		pos := "@@GLOBAL.gtid_current_pos"
		if f, err := Read(ctx, node); err != nil {
			return fmt.Errorf("replication: Rejoin: the node: %w", err)
		} else if f.LostOwnTail() != nil {
			pos = "'" + f.Executed().String() + "'"
		}
		stmt := "SET GLOBAL gtid_slave_pos = " + pos
		if _, err := node.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("replication: Rejoin: %s: %w", stmt, err)
		}
	}
	change := changeSourceSQL(flavor, fn.Version, src)
	if _, err := node.ExecContext(ctx, change); err != nil {
		// The statement holds the password: it is not quoted here.
		return fmt.Errorf("replication: Rejoin: CHANGE MASTER/REPLICATION SOURCE to %s:%d: %w", src.Host, src.Port, err)
	}
	if err := StartReplica(ctx, node, flavor); err != nil {
		return fmt.Errorf("replication: Rejoin: %w", err)
	}
	if flavor == MariaDB {
		// What the source will send; on MariaDB the node's
		// gtid_current_pos shows a transaction of its own server_id as
		// soon as it is in the binlog, before it is committed (a semi-sync
		// source commits it only after an acknowledgement or the
		// timeout), so the wait watches gtid_slave_pos, which moves with
		// the commit.
		target = fm.BinlogPos.Set
	}
	return waitRejoined(ctx, node, flavor, target)
}

// applied is what the node has applied as Rejoin judges it: gtid_slave_pos
// on MariaDB (Rejoin set it to everything the node had), gtid_executed on
// MySQL.
func applied(f Facts, flavor Flavor) mysql.GTIDSet {
	if flavor == MariaDB {
		return f.SlavePos.Set
	}
	return f.Executed()
}

// waitRejoined polls the node until both replica threads run and it has
// applied target, or a thread has stopped on an error, or ctx ends.
func waitRejoined(ctx context.Context, node Querier, flavor Flavor, target mysql.GTIDSet) error {
	var last Facts
	var lastErr error
	for {
		f, err := Read(ctx, node)
		if err == nil {
			last, lastErr = f, nil
			r := f.Replica
			if r.IORunning == IONo && r.LastIOErrno != 0 {
				return replicaError("I/O", r.LastIOErrno, r.LastIOError)
			}
			if !r.SQLRunning && r.LastSQLErrno != 0 {
				return replicaError("SQL", r.LastSQLErrno, r.LastSQLError)
			}
			if r.IORunning == IOYes && r.SQLRunning && Contains(applied(f, flavor), target) {
				return nil
			}
		} else {
			lastErr = err
		}
		t := time.NewTimer(rejoinPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			if lastErr != nil {
				return fmt.Errorf("replication: Rejoin: waiting for the node to catch up: %w (last read: %v)", ctx.Err(), lastErr)
			}
			return fmt.Errorf("replication: Rejoin: waiting for the node to reach %s: %w (io=%v sql=%v applied=%s)",
				target, ctx.Err(), last.Replica.IORunning, last.Replica.SQLRunning, applied(last, flavor))
		case <-t.C:
		}
	}
}

// replicaError turns a stopped replica thread's error into Rejoin's
// error: ErrDiverged for the errors a diverged node gets.
func replicaError(thread string, errno int, msg string) error {
	switch errno {
	case 1236, // ER_MASTER_FATAL_ERROR_READING_BINLOG: position not in the source's binlog (or purged)
		1950: // ER_GTID_STRICT_OUT_OF_ORDER: a source transaction would land out of order
		return fmt.Errorf("%w: replica %s thread stopped with error %d: %s", ErrDiverged, thread, errno, msg)
	}
	return fmt.Errorf("replication: Rejoin: replica %s thread stopped with error %d: %s", thread, errno, msg)
}

// validate checks what CHANGE MASTER needs.
func (s Source) validate() error {
	if strings.TrimSpace(s.Host) == "" {
		return errors.New("source host is empty")
	}
	for _, v := range []string{s.Host, s.User, s.Password} {
		// CHANGE MASTER takes only plain literals, and a backslash in
		// one reads differently under NO_BACKSLASH_ESCAPES.
		if strings.ContainsAny(v, "\\\x00") {
			return errors.New("source host, user or password holds a backslash or a NUL byte, which CHANGE MASTER cannot take portably; configure that account on the node and leave User empty")
		}
	}
	if s.Port < 1 || s.Port > 65535 {
		return fmt.Errorf("source port %d is not in 1..65535", s.Port)
	}
	return nil
}

// changeSourceSQL builds the statement that points a replica at src.
// CHANGE MASTER cannot be prepared, so the values are quoted here.
func changeSourceSQL(flavor Flavor, version string, src Source) string {
	verb, prefix, auto := "CHANGE MASTER TO ", "MASTER_", "MASTER_USE_GTID = slave_pos"
	if flavor == MySQL {
		auto = "MASTER_AUTO_POSITION = 1"
		major, minor, patch, ok := parseVersion(version)
		if !ok || !versionLess(major, minor, patch, 8, 0, 23) {
			verb, prefix, auto = "CHANGE REPLICATION SOURCE TO ", "SOURCE_", "SOURCE_AUTO_POSITION = 1"
		}
	}
	var b strings.Builder
	b.WriteString(verb)
	b.WriteString(prefix + "HOST = " + quoteSQL(src.Host))
	b.WriteString(", " + prefix + "PORT = " + strconv.Itoa(src.Port))
	if src.User != "" {
		b.WriteString(", " + prefix + "USER = " + quoteSQL(src.User))
		b.WriteString(", " + prefix + "PASSWORD = " + quoteSQL(src.Password))
	}
	b.WriteString(", " + auto)
	return b.String()
}

// quoteSQL returns s as a single-quoted SQL string literal, quotes
// doubled. Source.validate refuses backslashes, whose meaning depends on
// sql_mode (NO_BACKSLASH_ESCAPES), so the literal reads the same in every
// mode.
func quoteSQL(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
