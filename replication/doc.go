// Package replication states facts about the replication of ONE database
// node (MariaDB or MySQL) and waits on them.
//
// It is what tandem's failover monitor and switchover logic ask when they
// need to know whether a node is writable, whether its replica threads run,
// how far it lags and which transactions it has applied, and what they call
// to fence a node or to wait until it has caught up.
//
// Files, one concept each:
//
//   - facts.go: [Read] and every SQL statement that reads a node's state
//     (one SHOW GLOBAL VARIABLES and one SHOW SLAVE/REPLICA STATUS).
//   - replica_status.go: the pure parser of a SHOW SLAVE/REPLICA STATUS row.
//   - gtid.go: parsing GTID positions and sets, [Contains] and [Errant].
//   - heartbeat.go: the heartbeat table, its SQL and lag measurement.
//   - wait.go: [WaitExecuted] (MASTER_GTID_WAIT, WAIT_FOR_EXECUTED_GTID_SET).
//   - fence.go: [SetReadOnly].
//
// Every function takes a [Querier] (a *sql.DB, *sql.Conn or *sql.Tx) and a
// context; none keeps state between calls and nothing here is global, so one
// process may watch any number of nodes. The package imports neither
// tandem's proxy nor its failover package: it only describes and waits on a
// node, and leaves every decision to its callers.
package replication
