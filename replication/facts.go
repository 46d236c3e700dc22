package replication

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// This file holds every SQL statement that reads a node's state. Statements
// that write (heartbeat.go, fence.go) or block (wait.go) live beside the
// code that needs them.

// Querier is what this package needs from a database handle: *sql.DB,
// *sql.Conn and *sql.Tx satisfy it. Callers bound each call with the
// context; the package keeps no handle and no state between calls.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Flavor is the server family of a node. The zero value is UnknownFlavor,
// which every function that needs a flavor refuses.
type Flavor int

const (
	// UnknownFlavor is the zero Flavor: not detected.
	UnknownFlavor Flavor = iota
	// MariaDB is a MariaDB server: GTID positions (one domain-server-seq
	// per domain), SHOW SLAVE STATUS, MASTER_GTID_WAIT.
	MariaDB
	// MySQL is an Oracle MySQL (or Percona) server: GTID sets
	// (uuid:intervals), SHOW REPLICA STATUS, WAIT_FOR_EXECUTED_GTID_SET.
	MySQL
)

// String returns "mariadb", "mysql" or "unknown".
func (f Flavor) String() string {
	switch f {
	case MariaDB:
		return "mariadb"
	case MySQL:
		return "mysql"
	default:
		return "unknown"
	}
}

// goMySQL returns go-mysql's name for the flavor, as ParseGTIDSet takes it.
func (f Flavor) goMySQL() (string, error) {
	switch f {
	case MariaDB:
		return mysql.MariaDBFlavor, nil
	case MySQL:
		return mysql.MySQLFlavor, nil
	default:
		return "", fmt.Errorf("replication: unsupported flavor %d", int(f))
	}
}

// DetectFlavor tells the flavor from the result of SELECT VERSION() (or the
// version variable): a version containing "MariaDB", in any case, is
// MariaDB (e.g. "10.11.6-MariaDB-0+deb12u1-log", also behind the
// "5.5.5-" prefix of the handshake); any other non-empty version is MySQL
// (e.g. "8.0.36", "8.0.36-28" from Percona). An empty version is
// UnknownFlavor.
func DetectFlavor(version string) Flavor {
	v := strings.TrimSpace(version)
	if v == "" {
		return UnknownFlavor
	}
	if strings.Contains(strings.ToLower(v), "mariadb") {
		return MariaDB
	}
	return MySQL
}

// GTIDValue is a GTID variable or column as the server printed it and as
// go-mysql parsed it. Set is nil when the value does not exist for the
// node's flavor, and an empty set when the server printed an empty string.
type GTIDValue struct {
	// Raw is the value as read, e.g. "0-1-42,1-2-7" (MariaDB) or
	// "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5" (MySQL; MySQL puts a
	// newline after each comma, which Raw keeps).
	Raw string
	// Set is Raw parsed with go-mysql: a *mysql.MariadbGTIDSet or a
	// *mysql.MysqlGTIDSet.
	Set mysql.GTIDSet
}

// Facts is what one Read saw on one node. Fields that do not exist for the
// node's flavor stay zero. The two statements of Read are not one
// snapshot: replication may progress between them.
type Facts struct {
	// Flavor is detected from Version.
	Flavor Flavor
	// Version is the server's version variable, e.g.
	// "10.11.6-MariaDB-0+deb12u1-log".
	Version string
	// ServerID is server_id.
	ServerID uint32
	// ServerUUID is server_uuid (MySQL only).
	ServerUUID string
	// ReadOnly is read_only. A user with SUPER (MySQL) or READ_ONLY ADMIN
	// (MariaDB) still writes when it is on.
	ReadOnly bool
	// SuperReadOnly is super_read_only (MySQL only): when on, nobody
	// writes.
	SuperReadOnly bool

	// GTIDDomainID is gtid_domain_id (MariaDB only).
	GTIDDomainID uint32
	// GTIDStrictMode is gtid_strict_mode (MariaDB only).
	GTIDStrictMode bool
	// CurrentPos is gtid_current_pos (MariaDB only): the last transaction
	// per domain that this node applied, whether it wrote it itself or
	// replicated it.
	CurrentPos GTIDValue
	// BinlogPos is gtid_binlog_pos (MariaDB only): the last transaction
	// per domain in this node's binary log.
	BinlogPos GTIDValue
	// SlavePos is gtid_slave_pos (MariaDB only): the last transaction per
	// domain that this node's replica SQL thread applied. Its own writes
	// are not in it.
	SlavePos GTIDValue

	// BinlogState is gtid_binlog_state (MariaDB only): the last
	// transaction per domain and server_id in the node's binary log;
	// empty when the server did not report it.
	BinlogState []mysql.MariadbGTID

	// GTIDMode is gtid_mode (MySQL only), e.g. "ON".
	GTIDMode string
	// GTIDExecuted is gtid_executed (MySQL only): every transaction this
	// node committed.
	GTIDExecuted GTIDValue

	// SemiSync is the node's semi-synchronous replication.
	SemiSync SemiSync

	// Replica is the node's replica (slave) status.
	Replica Replica

	// ReplicaStarts counts the START SLAVE (START REPLICA) statements the
	// server ran since it started: 0 with both replica threads stopped
	// and no error means nobody started them since the server came up,
	// as with skip_slave_start, where tandem starts them itself once it
	// has checked the position (Resume). Replica threads running with 0
	// were started by the server at boot (no skip_slave_start).
	ReplicaStarts uint64
}

// Executed returns what the node has applied or committed, in a
// flavor-neutral way: gtid_current_pos on MariaDB, gtid_executed on MySQL.
// It is nil for a Facts that Read did not fill.
//
// On MariaDB a domain where LostOwnTail finds gtid_slave_pos ahead of the
// node's binary log counts only what the binary log has: gtid_current_pos
// would claim the lost transactions there (see LostOwnTail).
func (f Facts) Executed() mysql.GTIDSet {
	switch f.Flavor {
	case MariaDB:
		return honestCurrent(f.ServerID, f.CurrentPos.Set, f.BinlogPos.Set, f.SlavePos.Set)
	case MySQL:
		return f.GTIDExecuted.Set
	default:
		return nil
	}
}

// LostOwnTail returns (MariaDB only) the GTIDs of gtid_slave_pos that carry
// the node's own server_id and lie beyond what its binary log has in
// their domain, or nil when there are none. A node in this state lost
// those transactions: in master-master with log_slave_updates a node's
// own commit comes back from its peer, and its SQL thread skips it (own
// server_id) but records it in gtid_slave_pos, which can happen before
// the node's own engine commit (AFTER_SYNC waits for the acknowledgement
// in between). Killed then, the node's crash recovery (init_rpl_role =
// SLAVE) truncates the prepared commit from its binary log, while
// gtid_slave_pos, and so gtid_current_pos, still name it; replication
// from slave_pos would then never fetch it back. Resume moves
// gtid_slave_pos back.
func (f Facts) LostOwnTail() *mysql.MariadbGTIDSet {
	if f.Flavor != MariaDB {
		return nil
	}
	return lostOwnTail(f.ServerID, f.BinlogPos.Set, f.SlavePos.Set)
}

// lostOwnTail is LostOwnTail on parsed positions.
func lostOwnTail(serverID uint32, binlog, slave mysql.GTIDSet) *mysql.MariadbGTIDSet {
	s, ok := slave.(*mysql.MariadbGTIDSet)
	if !ok || s == nil {
		return nil
	}
	b, _ := binlog.(*mysql.MariadbGTIDSet)
	var out *mysql.MariadbGTIDSet
	for domain, g := range s.Sets {
		if g == nil || g.ServerID != serverID {
			continue
		}
		if b != nil {
			if bg := b.Sets[domain]; bg != nil && bg.SequenceNumber >= g.SequenceNumber {
				continue
			}
		}
		if out == nil {
			out = &mysql.MariadbGTIDSet{Sets: map[uint32]*mysql.MariadbGTID{}}
		}
		c := *g
		out.Sets[domain] = &c
	}
	return out
}

// OwnMissing returns (MariaDB only) the GTIDs of node's own server_id
// that peer's binary log holds beyond the newest of node's own in node's
// binary log (both from gtid_binlog_state), "" when there are none. The
// peer only ever receives node's own transactions from node, so node
// lost them: its crash recovery dropped commits that had reached the
// peer (the semi-sync acknowledgement they waited for never came back).
// A node whose binary log holds nothing of its own in a domain (rebuilt,
// RESET MASTER) is not judged there.
func OwnMissing(node, peer Facts) string { return joinGTIDs(ownMissing(node, peer)) }

// ownMissing is OwnMissing as GTIDs.
func ownMissing(node, peer Facts) []mysql.MariadbGTID {
	if node.Flavor != MariaDB || peer.Flavor != MariaDB {
		return nil
	}
	var out []mysql.MariadbGTID
	for _, g := range peer.BinlogState {
		if g.ServerID != node.ServerID {
			continue
		}
		for _, h := range node.BinlogState {
			if h.DomainID == g.DomainID && h.ServerID == g.ServerID && h.SequenceNumber < g.SequenceNumber {
				out = append(out, g)
			}
		}
	}
	return out
}

// joinGTIDs writes gs as a GTID list, "" for none.
func joinGTIDs(gs []mysql.MariadbGTID) string {
	parts := make([]string, len(gs))
	for i := range gs {
		parts[i] = gs[i].String()
	}
	return strings.Join(parts, ",")
}

// SkippedOwn returns (MariaDB only) the GTIDs of node's own server_id that
// the active's binary log holds and node's lacks (OwnMissing) although
// node's position in their domain is already at or past them, "" when
// there are none. Such a node lost them in crash recovery (LostOwnTail)
// and its replication went on past them, when the active wrote more in
// that domain before the node was resumed: it will never apply them, and
// Resume can no longer help (moving gtid_slave_pos back would apply the
// active's later transactions twice).
func SkippedOwn(node, active Facts) string {
	exec, _ := node.Executed().(*mysql.MariadbGTIDSet)
	if exec == nil {
		return ""
	}
	var out []mysql.MariadbGTID
	for _, g := range ownMissing(node, active) {
		if e := exec.Sets[g.DomainID]; e != nil && e.SequenceNumber >= g.SequenceNumber {
			out = append(out, g)
		}
	}
	return joinGTIDs(out)
}

// withoutLostTail returns pos with every domain of lost replaced by the
// binary log's GTID of that domain (removed when the binary log has none);
// pos itself when lost is nil.
func withoutLostTail(pos, binlog mysql.GTIDSet, lost *mysql.MariadbGTIDSet) mysql.GTIDSet {
	p, ok := pos.(*mysql.MariadbGTIDSet)
	if lost == nil || !ok || p == nil {
		return pos
	}
	b, _ := binlog.(*mysql.MariadbGTIDSet)
	out := &mysql.MariadbGTIDSet{Sets: make(map[uint32]*mysql.MariadbGTID, len(p.Sets))}
	for domain, g := range p.Sets {
		if _, gone := lost.Sets[domain]; !gone {
			c := *g
			out.Sets[domain] = &c
			continue
		}
		if b != nil {
			if bg := b.Sets[domain]; bg != nil {
				c := *bg
				out.Sets[domain] = &c
			}
		}
	}
	return out
}

// honestCurrent is gtid_current_pos without a lost own tail.
func honestCurrent(serverID uint32, current, binlog, slave mysql.GTIDSet) mysql.GTIDSet {
	return withoutLostTail(current, binlog, lostOwnTail(serverID, binlog, slave))
}

// Writable reports whether ordinary users can write on the node: neither
// read_only nor super_read_only is on.
func (f Facts) Writable() bool {
	return !f.ReadOnly && !f.SuperReadOnly
}

// variablesQuery reads every variable Read needs in one round trip, on
// either flavor: variables the server lacks (gtid_executed on MariaDB,
// gtid_current_pos on MySQL) are simply absent from the result, where
// SELECT @@gtid_current_pos would fail with error 1193 on MySQL.
const variablesQuery = "SHOW GLOBAL VARIABLES WHERE Variable_name IN (" +
	"'version', 'server_id', 'server_uuid', 'read_only', 'super_read_only', " +
	"'gtid_domain_id', 'gtid_strict_mode', 'gtid_current_pos', 'gtid_binlog_pos', 'gtid_slave_pos', 'gtid_binlog_state', " +
	"'gtid_mode', 'gtid_executed', " +
	"'rpl_semi_sync_master_enabled', 'rpl_semi_sync_source_enabled', " +
	"'rpl_semi_sync_master_timeout', 'rpl_semi_sync_source_timeout', " +
	"'rpl_semi_sync_master_wait_point', 'rpl_semi_sync_source_wait_point', " +
	"'rpl_semi_sync_master_wait_no_slave', 'rpl_semi_sync_source_wait_no_replica', " +
	"'rpl_semi_sync_slave_enabled', 'rpl_semi_sync_replica_enabled')"

// Read states the facts of the node behind q in three round trips: one
// SHOW GLOBAL VARIABLES, one SHOW GLOBAL STATUS (semi-sync and the count
// of replica starts) and one SHOW SLAVE STATUS (MariaDB, MySQL before
// 8.0.22) or SHOW REPLICA STATUS (MySQL 8.0.22 and later). The user needs
// the REPLICATION CLIENT privilege (MariaDB 10.5.9+: SLAVE MONITOR or
// REPLICA MONITOR).
//
// A node that replicates from several sources reports its default
// connection: MariaDB's SHOW SLAVE STATUS shows only the connection named
// by default_master_connection (normally the unnamed one); on MySQL the
// row whose Channel_Name is empty is taken, the single row when there is
// only one, and several named channels without a default are an error.
func Read(ctx context.Context, q Querier) (Facts, error) {
	vars, err := readVariables(ctx, q)
	if err != nil {
		return Facts{}, err
	}
	f, err := parseVariables(vars)
	if err != nil {
		return Facts{}, err
	}
	status, err := readStatus(ctx, q)
	if err != nil {
		return Facts{}, err
	}
	if f.SemiSync.Known {
		if err := parseSemiSyncStatus(&f.SemiSync, status); err != nil {
			return Facts{}, err
		}
	}
	if f.ReplicaStarts, err = parseReplicaStarts(status); err != nil {
		return Facts{}, err
	}
	f.Replica, err = readReplica(ctx, q, f.Flavor, f.Version)
	if err != nil {
		return Facts{}, err
	}
	return f, nil
}

// readVariables runs variablesQuery and returns name → value, names in
// lower case.
func readVariables(ctx context.Context, q Querier) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, variablesQuery)
	if err != nil {
		return nil, fmt.Errorf("replication: reading variables: %w", err)
	}
	defer rows.Close()
	vars := make(map[string]string, 12)
	for rows.Next() {
		var name string
		var value sql.NullString
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("replication: reading variables: %w", err)
		}
		vars[strings.ToLower(name)] = value.String
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("replication: reading variables: %w", err)
	}
	return vars, nil
}

// parseVariables turns the result of variablesQuery into Facts (without
// Replica). It never panics on bad input.
func parseVariables(vars map[string]string) (Facts, error) {
	var f Facts
	version, ok := vars["version"]
	if !ok {
		return Facts{}, fmt.Errorf("replication: variable version missing")
	}
	f.Version = version
	f.Flavor = DetectFlavor(version)
	if f.Flavor == UnknownFlavor {
		return Facts{}, fmt.Errorf("replication: cannot tell flavor from empty version")
	}

	id, err := requireVar(vars, "server_id")
	if err != nil {
		return Facts{}, err
	}
	if f.ServerID, err = parseUint32("server_id", id); err != nil {
		return Facts{}, err
	}
	ro, err := requireVar(vars, "read_only")
	if err != nil {
		return Facts{}, err
	}
	if f.ReadOnly, err = parseReadOnly("read_only", ro); err != nil {
		return Facts{}, err
	}

	switch f.Flavor {
	case MariaDB:
		if v, ok := vars["gtid_domain_id"]; ok {
			if f.GTIDDomainID, err = parseUint32("gtid_domain_id", v); err != nil {
				return Facts{}, err
			}
		}
		if v, ok := vars["gtid_strict_mode"]; ok {
			if f.GTIDStrictMode, err = parseBool("gtid_strict_mode", v); err != nil {
				return Facts{}, err
			}
		}
		for _, g := range []struct {
			name string
			dst  *GTIDValue
		}{
			{"gtid_current_pos", &f.CurrentPos},
			{"gtid_binlog_pos", &f.BinlogPos},
			{"gtid_slave_pos", &f.SlavePos},
		} {
			raw, err := requireVar(vars, g.name)
			if err != nil {
				return Facts{}, err
			}
			if *g.dst, err = parseGTIDValue(MariaDB, g.name, raw); err != nil {
				return Facts{}, err
			}
		}
		if v := strings.TrimSpace(vars["gtid_binlog_state"]); v != "" {
			for _, part := range strings.Split(v, ",") {
				g, err := mysql.ParseMariadbGTID(strings.TrimSpace(part))
				if err != nil {
					return Facts{}, fmt.Errorf("replication: gtid_binlog_state %q: %w", v, err)
				}
				f.BinlogState = append(f.BinlogState, *g)
			}
		}
	case MySQL:
		f.ServerUUID = vars["server_uuid"]
		f.GTIDMode = vars["gtid_mode"]
		if v, ok := vars["super_read_only"]; ok {
			if f.SuperReadOnly, err = parseBool("super_read_only", v); err != nil {
				return Facts{}, err
			}
		}
		raw, err := requireVar(vars, "gtid_executed")
		if err != nil {
			return Facts{}, err
		}
		if f.GTIDExecuted, err = parseGTIDValue(MySQL, "gtid_executed", raw); err != nil {
			return Facts{}, err
		}
	}
	if f.SemiSync, err = parseSemiSyncVariables(vars); err != nil {
		return Facts{}, err
	}
	return f, nil
}

// replicaStatusQuery returns the statement that shows the replica status
// of a node of that flavor and version: MariaDB keeps SHOW SLAVE STATUS
// (SHOW REPLICA STATUS exists only from 10.5.1); MySQL has SHOW REPLICA
// STATUS from 8.0.22 and dropped the SLAVE form in 8.4. A MySQL version
// that cannot be parsed is taken as new.
func replicaStatusQuery(flavor Flavor, version string) string {
	if flavor == MySQL {
		major, minor, patch, ok := parseVersion(version)
		if ok && versionLess(major, minor, patch, 8, 0, 22) {
			return "SHOW SLAVE STATUS"
		}
		return "SHOW REPLICA STATUS"
	}
	return "SHOW SLAVE STATUS"
}

// readReplica runs the replica status statement and parses its rows by
// column name.
func readReplica(ctx context.Context, q Querier, flavor Flavor, version string) (Replica, error) {
	query := replicaStatusQuery(flavor, version)
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return Replica{}, fmt.Errorf("replication: %s: %w", query, err)
	}
	defer rows.Close()
	columns, err := rows.Columns()
	if err != nil {
		return Replica{}, fmt.Errorf("replication: %s: columns: %w", query, err)
	}
	var found []Replica
	for rows.Next() {
		values := make([]sql.NullString, len(columns))
		dest := make([]any, len(columns))
		for i := range values {
			dest[i] = &values[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return Replica{}, fmt.Errorf("replication: %s: %w", query, err)
		}
		r, err := parseReplicaStatus(flavor, columns, values)
		if err != nil {
			return Replica{}, fmt.Errorf("replication: %s: %w", query, err)
		}
		found = append(found, r)
	}
	if err := rows.Err(); err != nil {
		return Replica{}, fmt.Errorf("replication: %s: %w", query, err)
	}
	return pickDefaultChannel(found)
}

// executedQuery returns the statement that reads only Facts.Executed, for
// waits that poll it.
func executedQuery(flavor Flavor) (string, error) {
	switch flavor {
	case MariaDB:
		return "SELECT @@GLOBAL.gtid_current_pos, @@GLOBAL.gtid_binlog_pos, @@GLOBAL.gtid_slave_pos, @@GLOBAL.server_id", nil
	case MySQL:
		return "SELECT @@GLOBAL.gtid_executed", nil
	default:
		return "", fmt.Errorf("replication: unsupported flavor %d", int(flavor))
	}
}

// readExecuted reads what Facts.Executed would return, in one round trip.
func readExecuted(ctx context.Context, q Querier, flavor Flavor) (mysql.GTIDSet, error) {
	query, err := executedQuery(flavor)
	if err != nil {
		return nil, err
	}
	if flavor == MariaDB {
		var cur, bin, slave sql.NullString
		var id uint32
		if err := q.QueryRowContext(ctx, query).Scan(&cur, &bin, &slave, &id); err != nil {
			return nil, fmt.Errorf("replication: %s: %w", query, err)
		}
		var sets [3]mysql.GTIDSet
		for i, raw := range []sql.NullString{cur, bin, slave} {
			if sets[i], err = ParseGTIDs(flavor, raw.String); err != nil {
				return nil, fmt.Errorf("replication: %s: %w", query, err)
			}
		}
		return honestCurrent(id, sets[0], sets[1], sets[2]), nil
	}
	var raw sql.NullString
	if err := q.QueryRowContext(ctx, query).Scan(&raw); err != nil {
		return nil, fmt.Errorf("replication: %s: %w", query, err)
	}
	set, err := ParseGTIDs(flavor, raw.String)
	if err != nil {
		return nil, fmt.Errorf("replication: %s: %w", query, err)
	}
	return set, nil
}

// requireVar returns a variable that must exist.
func requireVar(vars map[string]string, name string) (string, error) {
	v, ok := vars[name]
	if !ok {
		return "", fmt.Errorf("replication: variable %s missing", name)
	}
	return v, nil
}

// parseGTIDValue parses a GTID variable or column named name.
func parseGTIDValue(flavor Flavor, name, raw string) (GTIDValue, error) {
	set, err := ParseGTIDs(flavor, raw)
	if err != nil {
		return GTIDValue{}, fmt.Errorf("replication: %s: %w", name, err)
	}
	return GTIDValue{Raw: raw, Set: set}, nil
}

// parseUint32 parses a decimal uint32 named name.
func parseUint32(name, v string) (uint32, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("replication: %s %q: %w", name, v, err)
	}
	return uint32(n), nil
}

// parseBool parses ON/OFF, 1/0, YES/NO, TRUE/FALSE in any case.
func parseBool(name, v string) (bool, error) {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "ON", "1", "YES", "TRUE":
		return true, nil
	case "OFF", "0", "NO", "FALSE":
		return false, nil
	}
	return false, fmt.Errorf("replication: %s: not a boolean: %q", name, v)
}

// parseReadOnly parses read_only, which newer MariaDB releases turned into
// an enumeration (OFF, ON, NO_LOCK, NO_LOCK_NO_ADMIN): all but OFF are on.
func parseReadOnly(name, v string) (bool, error) {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "NO_LOCK", "NO_LOCK_NO_ADMIN":
		return true, nil
	}
	return parseBool(name, v)
}

// parseVersion reads the leading major.minor.patch of a server version,
// e.g. 8, 0, 36 from "8.0.36-28". ok is false when there is no such prefix.
func parseVersion(v string) (major, minor, patch int, ok bool) {
	v = strings.TrimSpace(v)
	nums := [3]int{}
	for i := range nums {
		end := 0
		for end < len(v) && end < 9 && v[end] >= '0' && v[end] <= '9' {
			end++
		}
		if end == 0 {
			return 0, 0, 0, false
		}
		n, err := strconv.Atoi(v[:end])
		if err != nil {
			return 0, 0, 0, false
		}
		nums[i] = n
		v = v[end:]
		if i < 2 {
			if !strings.HasPrefix(v, ".") {
				return 0, 0, 0, false
			}
			v = v[1:]
		}
	}
	return nums[0], nums[1], nums[2], true
}

// versionLess reports whether a.b.c sorts before x.y.z.
func versionLess(a, b, c, x, y, z int) bool {
	if a != x {
		return a < x
	}
	if b != y {
		return b < y
	}
	return c < z
}
