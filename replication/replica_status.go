package replication

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// IOState is the state of a replica's I/O (receiver) thread, the
// Slave_IO_Running / Replica_IO_Running column.
type IOState int

const (
	// IONo means the I/O thread is stopped (also the zero value, as on a
	// node that is not a replica).
	IONo IOState = iota
	// IOConnecting means the I/O thread runs but is not connected to its
	// source: the source is down, unreachable or refuses the login.
	IOConnecting
	// IOYes means the I/O thread runs and is connected.
	IOYes
)

// String returns "No", "Connecting" or "Yes", as the server prints them.
func (s IOState) String() string {
	switch s {
	case IONo:
		return "No"
	case IOConnecting:
		return "Connecting"
	case IOYes:
		return "Yes"
	default:
		return "IOState(" + strconv.Itoa(int(s)) + ")"
	}
}

// parseIOState parses Slave_IO_Running / Replica_IO_Running.
func parseIOState(v string) (IOState, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes":
		return IOYes, nil
	case "no":
		return IONo, nil
	case "connecting", "preparing":
		// MariaDB shows Preparing while a starting I/O thread sets
		// itself up (semi-sync, GTID position), before it connects.
		return IOConnecting, nil
	}
	return IONo, fmt.Errorf("unknown I/O thread state %q", v)
}

// Replica is a node's replica status: one row of SHOW SLAVE STATUS (MariaDB,
// MySQL before 8.0.22) or SHOW REPLICA STATUS (MySQL 8.0.22+). Columns
// that do not exist for the flavor stay zero.
type Replica struct {
	// Configured is true when the node has a replication source: the
	// statement returned a row with a non-empty source host.
	Configured bool
	// Channel is MySQL's Channel_Name; empty for the default channel and
	// on MariaDB.
	Channel string
	// IORunning is Slave_IO_Running / Replica_IO_Running.
	IORunning IOState
	// SQLRunning is Slave_SQL_Running / Replica_SQL_Running = "Yes".
	SQLRunning bool
	// IOStateText is the human-readable Slave_IO_State / Replica_IO_State,
	// e.g. "Waiting for master to send event".
	IOStateText string
	// SQLStateText is Slave_SQL_Running_State / Replica_SQL_Running_State.
	SQLStateText string
	// LastIOErrno and LastIOError are the I/O thread's last error (0 and
	// "" when none), e.g. 2003 and "error connecting to master ...". The
	// error outlives its cause for a moment: MariaDB 10.11 was seen with
	// IORunning Yes and the old 2003 still set right after reconnecting, so
	// judge the thread by IORunning, not by the error.
	LastIOErrno int
	LastIOError string
	// LastSQLErrno and LastSQLError are the SQL thread's last error, e.g.
	// 1062 and "Could not execute Write_rows_v1 event ...".
	LastSQLErrno int
	LastSQLError string
	// SecondsBehind is Seconds_Behind_Master / Seconds_Behind_Source; nil
	// when the server reports NULL, which it does whenever a thread is not
	// running or not connected. Use a heartbeat for lag that survives that.
	SecondsBehind *int64
	// MasterHost and MasterPort are Master_Host / Source_Host and
	// Master_Port / Source_Port.
	MasterHost string
	MasterPort int
	// MasterServerID is Master_Server_Id / Source_Server_Id: the source's
	// server_id as last seen (0 before the first connection).
	MasterServerID uint32
	// MasterUUID is Master_UUID / Source_UUID (MySQL only).
	MasterUUID string
	// UsingGTID reports whether the replica positions by GTID: MariaDB's
	// Using_Gtid is not "No"; MySQL's Auto_Position is 1.
	UsingGTID bool
	// GTIDMode is the raw column behind UsingGTID: MariaDB's Using_Gtid
	// ("No", "Slave_Pos", "Current_Pos"), MySQL's Auto_Position ("0", "1").
	GTIDMode string
	// GTIDIOPos is Gtid_IO_Pos (MariaDB only): the last GTID per domain
	// the I/O thread received.
	GTIDIOPos GTIDValue
	// RetrievedGTIDSet is Retrieved_Gtid_Set (MySQL only): the GTIDs the
	// I/O thread received.
	RetrievedGTIDSet GTIDValue
	// ExecutedGTIDSet is Executed_Gtid_Set (MySQL only): the node's
	// gtid_executed.
	ExecutedGTIDSet GTIDValue
}

// columnNames lists, for each field parseReplicaStatus reads, the column
// names that carry it: MariaDB and MySQL before 8.0.22 say Slave/Master,
// MySQL 8.0.22+ says Replica/Source. The first name is the one errors
// quote. Lookup ignores case.
type columnNames struct {
	ioRunning, sqlRunning, ioState, sqlState []string
	ioErrno, ioError, sqlErrno, sqlError     []string
	behind, host, port, serverID, uuid       []string
	usingGTID, autoPosition, gtidIOPos       []string
	retrieved, executed, channel             []string
}

// statusColumnNames returns the column names parseReplicaStatus looks up.
func statusColumnNames() columnNames {
	return columnNames{
		ioRunning:    []string{"Slave_IO_Running", "Replica_IO_Running"},
		sqlRunning:   []string{"Slave_SQL_Running", "Replica_SQL_Running"},
		ioState:      []string{"Slave_IO_State", "Replica_IO_State"},
		sqlState:     []string{"Slave_SQL_Running_State", "Replica_SQL_Running_State"},
		ioErrno:      []string{"Last_IO_Errno"},
		ioError:      []string{"Last_IO_Error"},
		sqlErrno:     []string{"Last_SQL_Errno"},
		sqlError:     []string{"Last_SQL_Error"},
		behind:       []string{"Seconds_Behind_Master", "Seconds_Behind_Source"},
		host:         []string{"Master_Host", "Source_Host"},
		port:         []string{"Master_Port", "Source_Port"},
		serverID:     []string{"Master_Server_Id", "Source_Server_Id"},
		uuid:         []string{"Master_UUID", "Source_UUID"},
		usingGTID:    []string{"Using_Gtid"},
		autoPosition: []string{"Auto_Position"},
		gtidIOPos:    []string{"Gtid_IO_Pos"},
		retrieved:    []string{"Retrieved_Gtid_Set"},
		executed:     []string{"Executed_Gtid_Set"},
		channel:      []string{"Channel_Name"},
	}
}

// statusRow looks up one row's values by column name.
type statusRow struct {
	index  map[string]int
	values []sql.NullString
}

// get returns the value of the first of names present, and whether one
// was present.
func (r statusRow) get(names []string) (sql.NullString, bool) {
	for _, n := range names {
		if i, ok := r.index[strings.ToLower(n)]; ok {
			return r.values[i], true
		}
	}
	return sql.NullString{}, false
}

// str returns the value of names, "" when absent or NULL.
func (r statusRow) str(names []string) string {
	v, _ := r.get(names)
	return v.String
}

// integer parses the value of names as a signed decimal; absent, NULL and
// "" are 0.
func (r statusRow) integer(names []string, bits int) (int64, error) {
	v, ok := r.get(names)
	if !ok || !v.Valid || strings.TrimSpace(v.String) == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v.String), 10, bits)
	if err != nil {
		return 0, fmt.Errorf("column %s: %w", names[0], err)
	}
	return n, nil
}

// parseReplicaStatus parses one row of SHOW SLAVE STATUS or SHOW REPLICA
// STATUS by column name, so that column order and the Slave/Replica,
// Master/Source naming do not matter. It is pure and never panics: a row
// without an I/O or SQL running column, or with a value it cannot read, is
// an error.
func parseReplicaStatus(flavor Flavor, columns []string, values []sql.NullString) (Replica, error) {
	if len(columns) != len(values) {
		return Replica{}, fmt.Errorf("%d columns but %d values", len(columns), len(values))
	}
	if flavor != MariaDB && flavor != MySQL {
		return Replica{}, fmt.Errorf("unsupported flavor %d", int(flavor))
	}
	row := statusRow{index: make(map[string]int, len(columns)), values: values}
	for i, c := range columns {
		key := strings.ToLower(c)
		if _, dup := row.index[key]; !dup {
			row.index[key] = i
		}
	}
	c := statusColumnNames()
	var r Replica
	var err error

	io, ok := row.get(c.ioRunning)
	if !ok {
		return Replica{}, fmt.Errorf("column %s missing", c.ioRunning[0])
	}
	if r.IORunning, err = parseIOState(io.String); err != nil {
		return Replica{}, fmt.Errorf("column %s: %w", c.ioRunning[0], err)
	}
	sqlRunning, ok := row.get(c.sqlRunning)
	if !ok {
		return Replica{}, fmt.Errorf("column %s missing", c.sqlRunning[0])
	}
	if r.SQLRunning, err = parseYesNo(sqlRunning.String); err != nil {
		return Replica{}, fmt.Errorf("column %s: %w", c.sqlRunning[0], err)
	}

	r.Channel = row.str(c.channel)
	r.IOStateText = row.str(c.ioState)
	r.SQLStateText = row.str(c.sqlState)
	r.LastIOError = row.str(c.ioError)
	r.LastSQLError = row.str(c.sqlError)
	r.MasterHost = row.str(c.host)
	r.MasterUUID = row.str(c.uuid)
	r.Configured = strings.TrimSpace(r.MasterHost) != ""

	n, err := row.integer(c.ioErrno, 32)
	if err != nil {
		return Replica{}, err
	}
	r.LastIOErrno = int(n)
	if n, err = row.integer(c.sqlErrno, 32); err != nil {
		return Replica{}, err
	}
	r.LastSQLErrno = int(n)
	if n, err = row.integer(c.port, 32); err != nil {
		return Replica{}, err
	}
	r.MasterPort = int(n)
	if n, err = row.integer(c.serverID, 64); err != nil {
		return Replica{}, err
	}
	if n < 0 || n > 1<<32-1 {
		return Replica{}, fmt.Errorf("column %s: %d out of range", c.serverID[0], n)
	}
	r.MasterServerID = uint32(n)

	if v, ok := row.get(c.behind); ok && v.Valid && strings.TrimSpace(v.String) != "" {
		s, err := strconv.ParseInt(strings.TrimSpace(v.String), 10, 64)
		if err != nil {
			return Replica{}, fmt.Errorf("column %s: %w", c.behind[0], err)
		}
		r.SecondsBehind = &s
	}

	switch flavor {
	case MariaDB:
		r.GTIDMode = row.str(c.usingGTID)
		r.UsingGTID = r.GTIDMode != "" && !strings.EqualFold(r.GTIDMode, "No")
		if r.GTIDIOPos, err = parseGTIDColumn(row, flavor, c.gtidIOPos); err != nil {
			return Replica{}, err
		}
	case MySQL:
		r.GTIDMode = row.str(c.autoPosition)
		r.UsingGTID = strings.TrimSpace(r.GTIDMode) == "1"
		if r.RetrievedGTIDSet, err = parseGTIDColumn(row, flavor, c.retrieved); err != nil {
			return Replica{}, err
		}
		if r.ExecutedGTIDSet, err = parseGTIDColumn(row, flavor, c.executed); err != nil {
			return Replica{}, err
		}
	}
	return r, nil
}

// parseGTIDColumn parses a GTID column; an absent column gives a zero
// GTIDValue (nil Set), a NULL or empty one an empty set.
func parseGTIDColumn(row statusRow, flavor Flavor, names []string) (GTIDValue, error) {
	v, ok := row.get(names)
	if !ok {
		return GTIDValue{}, nil
	}
	set, err := ParseGTIDs(flavor, v.String)
	if err != nil {
		return GTIDValue{}, fmt.Errorf("column %s: %w", names[0], err)
	}
	return GTIDValue{Raw: v.String, Set: set}, nil
}

// parseYesNo parses Slave_SQL_Running.
func parseYesNo(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("want Yes or No, got %q", v)
}

// pickDefaultChannel chooses, among the rows of a replica status statement,
// the one Read reports: none gives a Replica that is not Configured; one is
// taken whatever its channel; of several, the one on the default (unnamed)
// channel, and an error when there is none.
func pickDefaultChannel(rows []Replica) (Replica, error) {
	switch len(rows) {
	case 0:
		return Replica{}, nil
	case 1:
		return rows[0], nil
	}
	for _, r := range rows {
		if r.Channel == "" {
			return r, nil
		}
	}
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = strconv.Quote(r.Channel)
	}
	return Replica{}, fmt.Errorf("replication: %d replication channels (%s) and none is the default one",
		len(rows), strings.Join(names, ", "))
}
