package replication

import (
	"context"
	"errors"
	"fmt"
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
