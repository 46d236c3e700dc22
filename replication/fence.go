package replication

import (
	"context"
	"fmt"
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
