package replication

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotFenced is returned, wrapped, by RepairLostTail for a node that is
// writable: its replication is left alone.
var ErrNotFenced = errors.New("replication: the node is writable")

// RepairLostTail makes a fenced MariaDB node that lost transactions of its
// own (Facts.LostOwnTail: gtid_slave_pos names them, its binary log does
// not) fetch them again: STOP SLAVE; SET GLOBAL gtid_slave_pos to its
// position with those domains taken from gtid_binlog_pos; START SLAVE.
// The source then sends them, and the node applies them although they
// carry its own server_id (gtid_strict_mode; MDEV-27760, MDEV-28609).
//
// It returns the lost GTIDs and the position set, both "" when the node
// had nothing lost (nothing is changed then). A writable node is refused
// with ErrNotFenced. On MySQL it does nothing.
func RepairLostTail(ctx context.Context, q Querier) (lost, pos string, err error) {
	f, err := Read(ctx, q)
	if err != nil {
		return "", "", fmt.Errorf("replication: RepairLostTail: %w", err)
	}
	if f.LostOwnTail() == nil {
		return "", "", nil
	}
	if f.Writable() {
		return "", "", fmt.Errorf("replication: RepairLostTail: %w", ErrNotFenced)
	}
	if err := StopReplica(ctx, q, MariaDB); err != nil {
		return "", "", fmt.Errorf("replication: RepairLostTail: %w", err)
	}
	// Read again with the replica threads stopped: the SQL thread may
	// have moved gtid_slave_pos meanwhile.
	if f, err = Read(ctx, q); err != nil {
		return "", "", fmt.Errorf("replication: RepairLostTail: %w", err)
	}
	l := f.LostOwnTail()
	if l != nil && !f.Writable() {
		lost = l.String()
		pos = withoutLostTail(f.SlavePos.Set, f.BinlogPos.Set, l).String()
		if _, err := q.ExecContext(ctx, "SET GLOBAL gtid_slave_pos = ?", pos); err != nil {
			return "", "", fmt.Errorf("replication: RepairLostTail: SET GLOBAL gtid_slave_pos = '%s': %w", pos, err)
		}
	}
	if err := StartReplica(ctx, q, MariaDB); err != nil {
		return "", "", fmt.Errorf("replication: RepairLostTail: %w", err)
	}
	return lost, pos, nil
}
