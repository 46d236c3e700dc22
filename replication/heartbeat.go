package replication

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The heartbeat measures lag where Seconds_Behind_Master cannot: it is NULL
// whenever a replica thread is stopped or disconnected, and in master-master
// the surviving writer then looks infinitely lagged. tandem writes a row on
// the active node every poll (the time of its own clock and its failover
// epoch) and reads it back on the passive: lag = now - written, both taken
// from tandem's clock, so the servers' clocks do not matter.
//
// The table, one row per writing node (its name, not the server's):
//
//	CREATE TABLE tandem.heartbeat (
//	  node  VARCHAR(64)     NOT NULL PRIMARY KEY,
//	  ts    BIGINT          NOT NULL,  -- unix microseconds, writer's clock
//	  epoch BIGINT UNSIGNED NOT NULL   -- failover epoch of the writer
//	) ENGINE=InnoDB
//
// The statements are plain (literal values, no system variables or
// functions), so they replicate the same under statement, mixed and row
// binary logging.

// DefaultHeartbeatSchema is the schema of the heartbeat table when
// Heartbeat.Schema is empty.
const DefaultHeartbeatSchema = "tandem"

// heartbeatTable is the table name inside the schema.
const heartbeatTable = "heartbeat"

// maxNodeLen is the length of the node column.
const maxNodeLen = 64

// ErrNoHeartbeat is returned, wrapped, by ReadHeartbeat when the table has
// no row for the node (never written, or not replicated yet).
var ErrNoHeartbeat = errors.New("replication: no heartbeat row")

// Heartbeat names the heartbeat table. The zero value uses
// DefaultHeartbeatSchema.
type Heartbeat struct {
	// Schema is the database holding the heartbeat table: letters, digits,
	// '_' and '$', at most 64 characters. Empty means "tandem".
	Schema string
}

// table returns the quoted `schema`.`heartbeat`, or an error naming a bad
// schema.
func (h Heartbeat) table() (string, error) {
	schema := h.Schema
	if schema == "" {
		schema = DefaultHeartbeatSchema
	}
	if err := checkIdentifier(schema); err != nil {
		return "", fmt.Errorf("replication: heartbeat schema: %w", err)
	}
	return "`" + schema + "`.`" + heartbeatTable + "`", nil
}

// schemaName returns Schema or its default.
func (h Heartbeat) schemaName() string {
	if h.Schema == "" {
		return DefaultHeartbeatSchema
	}
	return h.Schema
}

// EnsureTable creates the schema and the heartbeat table when the table
// does not exist yet. Call it on the active node only: it looks first and
// writes nothing when the table is there, because CREATE ... IF NOT EXISTS
// is written to the binary log even when it does nothing, which on a
// passive would be a transaction of its own (on MariaDB with a shared
// gtid_domain_id, one that can break replication in gtid_strict_mode).
func (h Heartbeat) EnsureTable(ctx context.Context, q Querier) error {
	table, err := h.table()
	if err != nil {
		return err
	}
	var n int
	err = q.QueryRowContext(ctx,
		"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
		h.schemaName(), heartbeatTable).Scan(&n)
	if err != nil {
		return fmt.Errorf("replication: looking for %s: %w", table, err)
	}
	if n > 0 {
		return nil
	}
	stmts := []string{
		"CREATE DATABASE IF NOT EXISTS `" + h.schemaName() + "`",
		"CREATE TABLE IF NOT EXISTS " + table + " (" +
			"node VARCHAR(64) NOT NULL PRIMARY KEY, " +
			"ts BIGINT NOT NULL COMMENT 'unix microseconds, writer clock', " +
			"epoch BIGINT UNSIGNED NOT NULL COMMENT 'failover epoch of the writer'" +
			") ENGINE=InnoDB COMMENT='tandem heartbeat: lag = now - ts on the passive'",
	}
	for _, s := range stmts {
		if _, err := q.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("replication: creating %s: %w", table, err)
		}
	}
	return nil
}

// Write records a heartbeat for node at now with epoch, on the active node
// (REPLACE, one row per node). Writing on a read-only node fails unless the
// user may bypass read_only; writing on the passive of a pair creates
// transactions there, so don't.
func (h Heartbeat) Write(ctx context.Context, q Querier, node string, epoch uint64, now time.Time) error {
	table, err := h.table()
	if err != nil {
		return err
	}
	if err := checkNode(node); err != nil {
		return err
	}
	_, err = q.ExecContext(ctx,
		"REPLACE INTO "+table+" (node, ts, epoch) VALUES (?, ?, ?)",
		node, now.UnixMicro(), epoch)
	if err != nil {
		return fmt.Errorf("replication: writing heartbeat of %q: %w", node, err)
	}
	return nil
}

// Read returns when node last wrote its heartbeat (as the writer's clock
// said) and with which epoch, as the node behind q has it. On the passive,
// lag = now - written. A missing row is ErrNoHeartbeat.
func (h Heartbeat) Read(ctx context.Context, q Querier, node string) (written time.Time, epoch uint64, err error) {
	table, err := h.table()
	if err != nil {
		return time.Time{}, 0, err
	}
	if err := checkNode(node); err != nil {
		return time.Time{}, 0, err
	}
	var ts int64
	err = q.QueryRowContext(ctx, "SELECT ts, epoch FROM "+table+" WHERE node = ?", node).Scan(&ts, &epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, 0, fmt.Errorf("%w for %q in %s", ErrNoHeartbeat, node, table)
	}
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("replication: reading heartbeat of %q: %w", node, err)
	}
	return time.UnixMicro(ts), epoch, nil
}

// EnsureHeartbeatTable is Heartbeat{}.EnsureTable: the table in schema
// "tandem".
func EnsureHeartbeatTable(ctx context.Context, q Querier) error {
	return Heartbeat{}.EnsureTable(ctx, q)
}

// WriteHeartbeat is Heartbeat{}.Write: a heartbeat in schema "tandem".
func WriteHeartbeat(ctx context.Context, q Querier, node string, epoch uint64, now time.Time) error {
	return Heartbeat{}.Write(ctx, q, node, epoch, now)
}

// ReadHeartbeat is Heartbeat{}.Read: a heartbeat from schema "tandem".
func ReadHeartbeat(ctx context.Context, q Querier, node string) (written time.Time, epoch uint64, err error) {
	return Heartbeat{}.Read(ctx, q, node)
}

// checkIdentifier accepts an unquoted-safe schema name.
func checkIdentifier(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%q: want 1 to 64 characters", s)
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '$':
		default:
			return fmt.Errorf("%q: only letters, digits, '_' and '$'", s)
		}
	}
	return nil
}

// checkNode accepts a node name that fits the node column.
func checkNode(node string) error {
	if node == "" || len(node) > maxNodeLen {
		return fmt.Errorf("replication: heartbeat node name %q: want 1 to %d bytes", node, maxNodeLen)
	}
	return nil
}
