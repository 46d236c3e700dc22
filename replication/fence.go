package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	mysqldriver "github.com/go-sql-driver/mysql"
)

// SetReadOnly fences (on) or unfences (off) the node behind q.
//
// MariaDB: SET GLOBAL read_only. Replica threads and users with the
// READ_ONLY ADMIN privilege (which SUPER no longer implies from 10.11, but
// ALL PRIVILEGES does) still write: read_only stops the application, not
// replication. Turning it on waits for running write statements and
// commits, so bound ctx.
//
// MySQL: on sets super_read_only, which also sets read_only and stops
// SUPER users too; off sets read_only = OFF, which also clears
// super_read_only. MySQL 5.6 has no super_read_only: the server refuses.
//
// The user needs SUPER (MySQL 8: SYSTEM_VARIABLES_ADMIN). Read tells
// whether it took.
func SetReadOnly(ctx context.Context, q Querier, flavor Flavor, on bool) error {
	var stmt string
	switch {
	case flavor == MariaDB && on:
		stmt = "SET GLOBAL read_only = ON"
	case flavor == MariaDB:
		stmt = "SET GLOBAL read_only = OFF"
	case flavor == MySQL && on:
		stmt = "SET GLOBAL super_read_only = ON"
	case flavor == MySQL:
		stmt = "SET GLOBAL read_only = OFF"
	default:
		return fmt.Errorf("replication: SetReadOnly: unsupported flavor %d", int(flavor))
	}
	if _, err := q.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("replication: %s: %w", stmt, err)
	}
	return nil
}

// KillClients ends every client connection on the node behind q except
// replication threads, the server's own threads, the connection running
// this, and connections of the users in keep (tandem's own monitor). It
// returns how many it killed. Fencing uses it after SetReadOnly: a client
// already connected to a fenced node must not go on reading stale data
// or holding locks.
func KillClients(ctx context.Context, q Querier, keep ...string) (int, error) {
	rows, err := q.QueryContext(ctx, "SELECT ID, USER FROM information_schema.PROCESSLIST "+
		"WHERE ID <> CONNECTION_ID() AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon', 'Slave_IO', 'Slave_SQL', 'Slave_worker') "+
		"AND USER NOT IN ('system user', 'event_scheduler', 'unauthenticated user')")
	if err != nil {
		return 0, fmt.Errorf("replication: listing client connections: %w", err)
	}
	var ids []uint64
	for rows.Next() {
		var id uint64
		var user string
		if err := rows.Scan(&id, &user); err != nil {
			rows.Close()
			return 0, fmt.Errorf("replication: listing client connections: %w", err)
		}
		if !slices.Contains(keep, user) {
			ids = append(ids, id)
		}
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("replication: listing client connections: %w", err)
	}
	killed := 0
	var first error
	for _, id := range ids {
		if _, err := q.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatUint(id, 10)); err != nil {
			var me *mysqldriver.MySQLError
			if errors.As(err, &me) && me.Number == 1094 { // gone meanwhile
				continue
			}
			if ctx.Err() != nil {
				return killed, fmt.Errorf("replication: KILL CONNECTION %d: %w", id, err)
			}
			// Refused (e.g. 1095 for a more privileged account): the
			// others must still go.
			if first == nil {
				first = fmt.Errorf("replication: KILL CONNECTION %d: %w", id, err)
			}
			continue
		}
		killed++
	}
	return killed, first
}

// StopReplica stops the node's replica threads (STOP SLAVE on MariaDB and
// MySQL before 8.0.22, STOP REPLICA after). A promoted node stops pulling
// from the node it replaced, so nothing the fenced node still commits can
// flow into the new active behind tandem's back.
func StopReplica(ctx context.Context, q Querier, flavor Flavor) error {
	return replicaStmt(ctx, q, flavor, "STOP")
}

// StopReplicaApplier stops only the node's replica SQL (applier) thread:
// nothing more it received is applied. It returns at once, where stopping
// the I/O thread can wait seconds for a hung source (semi-sync replicas try
// to kill their connection there first).
func StopReplicaApplier(ctx context.Context, q Querier, flavor Flavor) error {
	stmt := "STOP SLAVE SQL_THREAD"
	if flavor == MySQL {
		stmt = "STOP REPLICA SQL_THREAD"
	}
	if _, err := q.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("replication: %s: %w", stmt, err)
	}
	return nil
}

// StartReplica starts the node's replica threads.
func StartReplica(ctx context.Context, q Querier, flavor Flavor) error {
	return replicaStmt(ctx, q, flavor, "START")
}

func replicaStmt(ctx context.Context, q Querier, flavor Flavor, verb string) error {
	stmt := verb + " SLAVE"
	if flavor == MySQL {
		stmt = verb + " REPLICA"
	}
	if _, err := q.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("replication: %s: %w", stmt, err)
	}
	return nil
}

// SetSemiSyncSource turns the node's semi-synchronous source (master) side
// on or off, if the node has it: rpl_semi_sync_master_enabled on MariaDB
// and MySQL before 8.0.26, rpl_semi_sync_source_enabled after. It reports
// whether the variable exists. A promoted node whose peer is gone turns
// it off, so its first commits do not each stall for
// rpl_semi_sync_master_timeout waiting for an acknowledgement that cannot
// come; it is turned on again when the peer rejoins.
func SetSemiSyncSource(ctx context.Context, q Querier, on bool) (bool, error) {
	return setFirstKnown(ctx, q, on, "rpl_semi_sync_master_enabled", "rpl_semi_sync_source_enabled")
}

// SetSemiSyncReplica turns the node's semi-synchronous replica side on or
// off (rpl_semi_sync_slave_enabled; rpl_semi_sync_replica_enabled on MySQL
// 8.0.26+), reporting whether the node has it. It takes effect when the
// I/O thread starts; turned off first, STOP SLAVE returns at once even when
// the source hangs, where a semi-sync replica first tries to kill its
// connection on the source (rpl_semi_sync_slave_kill_conn_timeout, 2 s and
// more against a SIGSTOPped source).
func SetSemiSyncReplica(ctx context.Context, q Querier, on bool) (bool, error) {
	return setFirstKnown(ctx, q, on, "rpl_semi_sync_slave_enabled", "rpl_semi_sync_replica_enabled")
}

// isUnknownVariable reports MySQL error 1193 (unknown system variable).
func isUnknownVariable(err error) bool {
	var me *mysqldriver.MySQLError
	return errors.As(err, &me) && me.Number == 1193
}

// setFirstKnown sets the first of names the node knows to on or off.
func setFirstKnown(ctx context.Context, q Querier, on bool, names ...string) (bool, error) {
	val := "OFF"
	if on {
		val = "ON"
	}
	for _, name := range names {
		var v string
		err := q.QueryRowContext(ctx, "SELECT @@GLOBAL."+name).Scan(&v)
		if isUnknownVariable(err) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("replication: reading %s: %w", name, err)
		}
		if _, err := q.ExecContext(ctx, "SET GLOBAL "+name+" = "+val); err != nil {
			return true, fmt.Errorf("replication: SET GLOBAL %s = %s: %w", name, val, err)
		}
		return true, nil
	}
	return false, nil
}

// StopReceiving stops the node's replica I/O thread and returns once it is
// stopped: from then on the node neither receives nor acknowledges anything
// from its source. The semi-sync replica side goes off first (see
// SetSemiSyncReplica); StartReplicaSemiSync turns it back on. The SQL
// thread goes on applying what was received: never stop both threads
// before it has, as MariaDB discards the relay log when both are stopped
// and START SLAVE fetches again from gtid_slave_pos, from a source that may
// be gone.
//
// A running semi-sync I/O thread, when stopped, first kills its connection
// on the source and waits for that up to
// rpl_semi_sync_slave_kill_conn_timeout (MariaDB; default 5 s, 0 waits
// about 24 s here): against a hung source STOP SLAVE IO_THREAD takes that
// long, so StopReceiving lowers it to 1 s (measured: 1.06 s instead of 2 s
// under load).
func StopReceiving(ctx context.Context, q Querier, flavor Flavor) error {
	if _, err := SetSemiSyncReplica(ctx, q, false); err != nil {
		return err
	}
	if flavor == MariaDB {
		const stmt = "SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout = LEAST(@@GLOBAL.rpl_semi_sync_slave_kill_conn_timeout, 1)"
		if _, err := q.ExecContext(ctx, stmt); err != nil && !isUnknownVariable(err) {
			return fmt.Errorf("replication: %s: %w", stmt, err)
		}
	}
	stmt := "STOP SLAVE IO_THREAD"
	if flavor == MySQL {
		stmt = "STOP REPLICA IO_THREAD"
	}
	if _, err := q.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("replication: %s: %w", stmt, err)
	}
	return nil
}

// StartReplicaSemiSync turns the node's semi-sync replica side on, if it
// has one, and starts its replica threads, restarting the I/O thread when
// it runs without acknowledging (semi-sync replica was off when it began).
func StartReplicaSemiSync(ctx context.Context, q Querier, flavor Flavor, restartIO bool) error {
	if _, err := SetSemiSyncReplica(ctx, q, true); err != nil {
		return err
	}
	if restartIO {
		stop, start := "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD"
		if flavor == MySQL {
			stop, start = "STOP REPLICA IO_THREAD", "START REPLICA IO_THREAD"
		}
		for _, stmt := range []string{stop, start} {
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("replication: %s: %w", stmt, err)
			}
		}
	}
	return StartReplica(ctx, q, flavor)
}
