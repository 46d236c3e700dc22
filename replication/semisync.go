package replication

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SemiSync is a node's semi-synchronous replication, source (master) and
// replica sides, as variables and status counters show it. MariaDB and
// MySQL before 8.0.26 name them rpl_semi_sync_master_* / _slave_*; MySQL
// from 8.0.26 rpl_semi_sync_source_* / _replica_*. Both are read.
type SemiSync struct {
	// Known is false when the server has no semi-sync variables (MySQL
	// without the plugin): nothing below is meaningful then.
	Known bool
	// SourceEnabled is rpl_semi_sync_master_enabled: commits wait for a
	// replica's acknowledgement.
	SourceEnabled bool
	// SourceOn is the status Rpl_semi_sync_master_status: the source is
	// waiting for acknowledgements now. Enabled but not on means it fell
	// back to asynchronous replication (after SourceTimeout, or with no
	// replica while WaitNoReplica is off): commits are acknowledged to
	// clients without any replica having them.
	SourceOn bool
	// SourceTimeout is rpl_semi_sync_master_timeout: how long one commit
	// waits before the source falls back.
	SourceTimeout time.Duration
	// WaitPoint is rpl_semi_sync_master_wait_point: AFTER_SYNC (lossless:
	// no other session sees a commit the replica lacks) or AFTER_COMMIT.
	WaitPoint string
	// WaitNoReplica is rpl_semi_sync_master_wait_no_slave: keep waiting
	// when no replica is connected.
	WaitNoReplica bool
	// Clients is Rpl_semi_sync_master_clients: semi-sync replicas
	// connected now.
	Clients int
	// WaitSessions is Rpl_semi_sync_master_wait_sessions: commits waiting
	// for an acknowledgement now.
	WaitSessions int
	// NoTx is Rpl_semi_sync_master_no_tx: commits acknowledged to their
	// client without a replica's acknowledgement since the server started.
	NoTx uint64
	// YesTx is Rpl_semi_sync_master_yes_tx: commits a replica
	// acknowledged since the server started. Acknowledgements are
	// cumulative (by binary log position), so while it grows no commit
	// waits for long.
	YesTx uint64
	// ReplicaEnabled is rpl_semi_sync_slave_enabled: this node acknowledges
	// what its I/O thread receives (takes effect when the thread starts).
	ReplicaEnabled bool
	// ReplicaOn is Rpl_semi_sync_slave_status: the I/O thread acknowledges
	// now.
	ReplicaOn bool
}

// statusQuery reads SemiSync's status counters and Facts.ReplicaStarts
// in one round trip: Com_start_slave on MariaDB (and MySQL before 8.0.22
// as Com_slave_start), Com_replica_start on MySQL 8.0.22 and later.
const statusQuery = "SHOW GLOBAL STATUS WHERE Variable_name IN (" +
	"'Rpl_semi_sync_master_status', 'Rpl_semi_sync_source_status', " +
	"'Rpl_semi_sync_master_clients', 'Rpl_semi_sync_source_clients', " +
	"'Rpl_semi_sync_master_wait_sessions', 'Rpl_semi_sync_source_wait_sessions', " +
	"'Rpl_semi_sync_master_no_tx', 'Rpl_semi_sync_source_no_tx', " +
	"'Rpl_semi_sync_master_yes_tx', 'Rpl_semi_sync_source_yes_tx', " +
	"'Rpl_semi_sync_slave_status', 'Rpl_semi_sync_replica_status', " +
	"'Com_start_slave', 'Com_slave_start', 'Com_replica_start')"

// parseReplicaStarts sums the replica start counters of statusQuery's
// result (names in lower case); absent counters count 0.
func parseReplicaStarts(status map[string]string) (uint64, error) {
	var sum uint64
	for _, name := range []string{"com_start_slave", "com_slave_start", "com_replica_start"} {
		v, ok := status[name]
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("replication: %s %q: %w", name, v, err)
		}
		sum += n
	}
	return sum, nil
}

// either returns vars[a], or vars[b] when a is absent.
func either(vars map[string]string, a, b string) (string, bool) {
	if v, ok := vars[a]; ok {
		return v, true
	}
	v, ok := vars[b]
	return v, ok
}

// parseSemiSyncVariables fills the variable half of SemiSync from vars
// (names in lower case). Absent variables leave Known false.
func parseSemiSyncVariables(vars map[string]string) (SemiSync, error) {
	var s SemiSync
	en, ok := either(vars, "rpl_semi_sync_master_enabled", "rpl_semi_sync_source_enabled")
	if !ok {
		return s, nil
	}
	s.Known = true
	var err error
	if s.SourceEnabled, err = parseBool("rpl_semi_sync_master_enabled", en); err != nil {
		return SemiSync{}, err
	}
	if v, ok := either(vars, "rpl_semi_sync_master_timeout", "rpl_semi_sync_source_timeout"); ok {
		ms, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return SemiSync{}, fmt.Errorf("replication: rpl_semi_sync_master_timeout %q: %w", v, err)
		}
		s.SourceTimeout = time.Duration(min(ms, uint64(1<<62)/uint64(time.Millisecond))) * time.Millisecond
	}
	if v, ok := either(vars, "rpl_semi_sync_master_wait_point", "rpl_semi_sync_source_wait_point"); ok {
		s.WaitPoint = strings.ToUpper(strings.TrimSpace(v))
	}
	if v, ok := either(vars, "rpl_semi_sync_master_wait_no_slave", "rpl_semi_sync_source_wait_no_replica"); ok {
		if s.WaitNoReplica, err = parseBool("rpl_semi_sync_master_wait_no_slave", v); err != nil {
			return SemiSync{}, err
		}
	}
	if v, ok := either(vars, "rpl_semi_sync_slave_enabled", "rpl_semi_sync_replica_enabled"); ok {
		if s.ReplicaEnabled, err = parseBool("rpl_semi_sync_slave_enabled", v); err != nil {
			return SemiSync{}, err
		}
	}
	return s, nil
}

// parseSemiSyncStatus fills the status half of s from status (names in
// lower case). It never panics on bad input.
func parseSemiSyncStatus(s *SemiSync, status map[string]string) error {
	var err error
	if v, ok := either(status, "rpl_semi_sync_master_status", "rpl_semi_sync_source_status"); ok {
		if s.SourceOn, err = parseBool("Rpl_semi_sync_master_status", v); err != nil {
			return err
		}
	}
	if v, ok := either(status, "rpl_semi_sync_slave_status", "rpl_semi_sync_replica_status"); ok {
		if s.ReplicaOn, err = parseBool("Rpl_semi_sync_slave_status", v); err != nil {
			return err
		}
	}
	for _, c := range []struct {
		a, b string
		dst  *int
	}{
		{"rpl_semi_sync_master_clients", "rpl_semi_sync_source_clients", &s.Clients},
		{"rpl_semi_sync_master_wait_sessions", "rpl_semi_sync_source_wait_sessions", &s.WaitSessions},
	} {
		if v, ok := either(status, c.a, c.b); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 31)
			if err != nil {
				return fmt.Errorf("replication: %s %q: %w", c.a, v, err)
			}
			*c.dst = int(n)
		}
	}
	for _, c := range []struct {
		a, b string
		dst  *uint64
	}{
		{"rpl_semi_sync_master_no_tx", "rpl_semi_sync_source_no_tx", &s.NoTx},
		{"rpl_semi_sync_master_yes_tx", "rpl_semi_sync_source_yes_tx", &s.YesTx},
	} {
		if v, ok := either(status, c.a, c.b); ok {
			if *c.dst, err = strconv.ParseUint(strings.TrimSpace(v), 10, 64); err != nil {
				return fmt.Errorf("replication: %s %q: %w", c.a, v, err)
			}
		}
	}
	return nil
}

// readStatus runs statusQuery and returns name → value,
// names in lower case.
func readStatus(ctx context.Context, q Querier) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, statusQuery)
	if err != nil {
		return nil, fmt.Errorf("replication: reading status: %w", err)
	}
	defer rows.Close()
	status := make(map[string]string, 5)
	for rows.Next() {
		var name string
		var value sql.NullString
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("replication: reading status: %w", err)
		}
		status[strings.ToLower(name)] = value.String
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("replication: reading status: %w", err)
	}
	return status, nil
}

// SemiSyncSettings are what tandem makes of a source's semi-sync: it owns
// durability, so the source never falls back to asynchronous replication
// on its own within tandem's reaction time.
type SemiSyncSettings struct {
	// Timeout becomes rpl_semi_sync_master_timeout.
	Timeout time.Duration
}

// ConfigureSemiSyncSource sets the source side of the node behind q to
// wait for an acknowledgement after the binary log sync (AFTER_SYNC), also
// with no replica connected, for up to s.Timeout per commit, and turns it
// on. The node must have semi-sync (MariaDB 10.3+ has it built in).
func ConfigureSemiSyncSource(ctx context.Context, q Querier, s SemiSyncSettings) error {
	ms := s.Timeout.Milliseconds()
	if ms <= 0 {
		return fmt.Errorf("replication: ConfigureSemiSyncSource: timeout %v must be positive", s.Timeout)
	}
	vars, err := readVariables(ctx, q)
	if err != nil {
		return err
	}
	prefix, noReplica := "rpl_semi_sync_master_", "rpl_semi_sync_master_wait_no_slave"
	if _, ok := vars["rpl_semi_sync_master_enabled"]; !ok {
		if _, ok := vars["rpl_semi_sync_source_enabled"]; !ok {
			return fmt.Errorf("replication: the node has no semi-synchronous replication (plugin not loaded?)")
		}
		prefix, noReplica = "rpl_semi_sync_source_", "rpl_semi_sync_source_wait_no_replica"
	}
	stmt := "SET GLOBAL " + prefix + "timeout = " + strconv.FormatInt(ms, 10) + ", " +
		prefix + "wait_point = AFTER_SYNC, " + noReplica + " = ON, " + prefix + "enabled = ON"
	if _, err := q.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("replication: %s: %w", stmt, err)
	}
	return nil
}
