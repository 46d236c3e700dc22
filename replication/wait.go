package replication

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// ErrWaitTimeout is returned, wrapped, by WaitExecuted when the node did not
// reach the wanted GTIDs in time. When the context's deadline, not the
// timeout, cut the wait short, the error also wraps
// context.DeadlineExceeded.
var ErrWaitTimeout = errors.New("replication: timed out waiting for GTIDs")

const (
	// waitSlice bounds one blocking server call of WaitExecuted, so that a
	// connection's readTimeout above it never fires and MariaDB's
	// gtid_current_pos is re-checked (see WaitExecuted).
	waitSlice = 250 * time.Millisecond
	// ctxMargin is how long before the context's deadline WaitExecuted
	// makes the server return, so the driver does not cancel the query
	// and drop the connection.
	ctxMargin = 50 * time.Millisecond
	// pollInterval paces the re-reads of gtid_executed when less than a
	// second is left on MySQL (see mysqlWait).
	pollInterval = 10 * time.Millisecond
)

// WaitExecuted waits until the node behind q has applied or committed every
// transaction of want (until Facts.Executed would contain it), for at most
// timeout; it returns nil then, an error wrapping ErrWaitTimeout when time
// runs out, and other errors when the node cannot be asked. A nil or empty
// want returns nil at once; a timeout <= 0 only checks, without waiting.
//
// MariaDB: MASTER_GTID_WAIT(pos, timeout), which returns 0 when reached
// and -1 on timeout (a malformed position is SQL error 1941). It only
// watches gtid_slave_pos, which gets the node's own writes only when the
// peer echoes them back (master-master with log_slave_updates): late, and
// never while the peer is down. WaitExecuted therefore checks
// gtid_current_pos first and again after every slice of at most 250 ms
// that MASTER_GTID_WAIT times out, and trusts MASTER_GTID_WAIT's success
// only once the executed position (Facts.Executed: without a lost own
// tail) shows it.
//
// MySQL: WAIT_FOR_EXECUTED_GTID_SET(set, timeout), which watches
// gtid_executed and returns 0 when reached, 1 on timeout. MySQL 5.7 reads
// the timeout as whole seconds (0 waits forever), so WaitExecuted waits
// there one second at a time and polls gtid_executed every 10 ms for the
// last fraction of a second.
//
// The wait ends before the context's deadline, so that a persistent
// *sql.Conn survives it; each server call blocks at most about a second,
// which the connection's readTimeout must allow.
func WaitExecuted(ctx context.Context, q Querier, flavor Flavor, want mysql.GTIDSet, timeout time.Duration) error {
	if err := checkSetFlavor(flavor, want); err != nil {
		return fmt.Errorf("replication: WaitExecuted: %w", err)
	}
	if isEmptySet(want) {
		return nil
	}
	pos := want.String()
	deadline := time.Now().Add(timeout)
	byContext := false
	if d, ok := ctx.Deadline(); ok && d.Add(-ctxMargin).Before(deadline) {
		deadline = d.Add(-ctxMargin)
		byContext = true
	}
	for {
		have, err := readExecuted(ctx, q, flavor)
		if err != nil {
			return fmt.Errorf("replication: waiting for %s: %w", pos, err)
		}
		if Contains(have, want) {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			if byContext {
				return fmt.Errorf("%w: %s not reached: %w", ErrWaitTimeout, pos, context.DeadlineExceeded)
			}
			return fmt.Errorf("%w: %s not reached within %v", ErrWaitTimeout, pos, timeout)
		}
		var reached bool
		if flavor == MariaDB {
			reached, err = mariaDBWait(ctx, q, pos, min(left, waitSlice))
		} else {
			reached, err = mysqlWait(ctx, q, pos, left)
		}
		if err != nil {
			return fmt.Errorf("replication: waiting for %s: %w", pos, err)
		}
		if reached && flavor == MySQL {
			return nil
		}
		if reached {
			// MASTER_GTID_WAIT watches gtid_slave_pos, which may name
			// a transaction of the node's own that crash recovery
			// dropped (Facts.LostOwnTail): the loop re-reads the
			// executed position, pausing so as not to spin.
			if have, err := readExecuted(ctx, q, flavor); err == nil && Contains(have, want) {
				return nil
			}
			t := time.NewTimer(min(time.Until(deadline), waitSlice))
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
	}
}

// mariaDBWait runs MASTER_GTID_WAIT for d and reports whether the position
// was reached.
func mariaDBWait(ctx context.Context, q Querier, pos string, d time.Duration) (bool, error) {
	var res sql.NullInt64
	err := q.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, ?)", pos, d.Seconds()).Scan(&res)
	if err != nil {
		return false, fmt.Errorf("MASTER_GTID_WAIT: %w", err)
	}
	switch {
	case !res.Valid: // documented for a NULL position, which is never sent
		return false, fmt.Errorf("MASTER_GTID_WAIT returned NULL")
	case res.Int64 == 0:
		return true, nil
	case res.Int64 == -1:
		return false, nil
	}
	return false, fmt.Errorf("MASTER_GTID_WAIT returned %d", res.Int64)
}

// mysqlWait waits up to one second with WAIT_FOR_EXECUTED_GTID_SET when at
// least a second is left, else sleeps pollInterval for the caller to
// re-read gtid_executed; it reports whether the set was reached.
func mysqlWait(ctx context.Context, q Querier, set string, left time.Duration) (bool, error) {
	if left < time.Second {
		t := time.NewTimer(min(left, pollInterval))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.C:
			return false, nil
		}
	}
	var res sql.NullInt64
	err := q.QueryRowContext(ctx, "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, 1)", set).Scan(&res)
	if err != nil {
		return false, fmt.Errorf("WAIT_FOR_EXECUTED_GTID_SET: %w", err)
	}
	switch {
	case !res.Valid:
		return false, fmt.Errorf("WAIT_FOR_EXECUTED_GTID_SET returned NULL")
	case res.Int64 == 0:
		return true, nil
	case res.Int64 == 1:
		return false, nil
	}
	return false, fmt.Errorf("WAIT_FOR_EXECUTED_GTID_SET returned %d", res.Int64)
}

// checkSetFlavor refuses an unknown flavor and a set of the other flavor.
func checkSetFlavor(flavor Flavor, set mysql.GTIDSet) error {
	if _, err := flavor.goMySQL(); err != nil {
		return err
	}
	if isNilSet(set) {
		return nil
	}
	switch set.(type) {
	case *mysql.MariadbGTIDSet:
		if flavor == MariaDB {
			return nil
		}
	case *mysql.MysqlGTIDSet:
		if flavor == MySQL {
			return nil
		}
	}
	return fmt.Errorf("a %T is not a %s GTID set", set, flavor)
}
