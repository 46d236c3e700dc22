package replication

import (
	"database/sql"
	"reflect"
	"strings"
	"testing"
)

func i64(n int64) *int64 { return &n }

const (
	uuid80 = "73f86016-978b-11ee-ade5-8d2a2a562feb"
	uuid57 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
)

// TestParseReplicaStatusFixtures parses every committed capture and checks
// every field Replica has.
func TestParseReplicaStatusFixtures(t *testing.T) {
	tests := []struct {
		file string
		row  int
		want Replica
	}{{
		file: "mariadb1011_slave_running.json",
		want: Replica{
			Configured: true, IORunning: IOYes, SQLRunning: true,
			IOStateText:   "Waiting for master to send event",
			SQLStateText:  "Slave has read all relay log; waiting for more updates",
			SecondsBehind: i64(0),
			MasterHost:    "127.0.0.1", MasterPort: 13306, MasterServerID: 1,
			UsingGTID: true, GTIDMode: "Slave_Pos",
			GTIDIOPos: GTIDValue{Raw: "0-1-15"},
		},
	}, {
		file: "mariadb1011_slave_sql_stopped.json",
		want: Replica{
			Configured: true, IORunning: IOYes, SQLRunning: false,
			IOStateText: "Waiting for master to send event",
			MasterHost:  "127.0.0.1", MasterPort: 13306, MasterServerID: 1,
			UsingGTID: true, GTIDMode: "Slave_Pos",
			GTIDIOPos: GTIDValue{Raw: "0-1-15"},
		},
	}, {
		file: "mariadb1011_slave_sql_error.json",
		want: Replica{
			Configured: true, IORunning: IOYes, SQLRunning: false,
			IOStateText:  "Waiting for master to send event",
			LastSQLErrno: 1062,
			LastSQLError: "Could not execute Write_rows_v1 event on table tandem_replication_test.conflict; Duplicate entry '1' for key 'PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log bin.000001, end_log_pos 4907",
			MasterHost:   "127.0.0.1", MasterPort: 13306, MasterServerID: 1,
			UsingGTID: true, GTIDMode: "Slave_Pos",
			GTIDIOPos: GTIDValue{Raw: "0-1-18"},
		},
	}, {
		file: "mariadb1011_slave_io_connecting.json",
		want: Replica{
			Configured: true, IORunning: IOConnecting, SQLRunning: true,
			IOStateText:  "Connecting to master",
			SQLStateText: "Slave has read all relay log; waiting for more updates",
			LastIOErrno:  2003,
			LastIOError:  "error connecting to master 'repl@127.0.0.1:13399' - retry-time: 1  maximum-retries: 100000  message: Can't connect to server on '127.0.0.1' (111 \"Connection refused\")",
			MasterHost:   "127.0.0.1", MasterPort: 13399, MasterServerID: 2,
			UsingGTID: true, GTIDMode: "Slave_Pos",
			GTIDIOPos: GTIDValue{Raw: "0-1-18"},
		},
	}, {
		file: "mysql80_replica_running.json",
		want: Replica{
			Configured: true, IORunning: IOYes, SQLRunning: true,
			IOStateText:   "Waiting for source to send event",
			SQLStateText:  "Replica has read all relay log; waiting for more updates",
			SecondsBehind: i64(0),
			MasterHost:    "127.0.0.1", MasterPort: 13000, MasterServerID: 1, MasterUUID: uuid80,
			UsingGTID: true, GTIDMode: "1",
			RetrievedGTIDSet: GTIDValue{Raw: uuid80 + ":1-3"},
			ExecutedGTIDSet:  GTIDValue{Raw: uuid80 + ":1-3"},
		},
	}, {
		file: "mysql80_replica_io_connecting.json",
		want: Replica{
			Configured: true, IORunning: IOConnecting, SQLRunning: true,
			IOStateText:  "Connecting to source",
			SQLStateText: "Replica has read all relay log; waiting for more updates",
			LastIOErrno:  2003,
			LastIOError:  "error connecting to source 'root@127.0.0.1:13000' - retry-time: 1 retries: 4 message: Can't connect to MySQL server on '127.0.0.1:13000' (111)",
			MasterHost:   "127.0.0.1", MasterPort: 13000, MasterServerID: 1, MasterUUID: uuid80,
			UsingGTID: true, GTIDMode: "1",
			RetrievedGTIDSet: GTIDValue{Raw: uuid80 + ":1-3"},
			ExecutedGTIDSet:  GTIDValue{Raw: uuid80 + ":1-3"},
		},
	}, {
		file: "mysql80_replica_sql_error.json",
		want: Replica{
			Configured: true, IORunning: IOYes, SQLRunning: false,
			IOStateText:  "Waiting for source to send event",
			LastSQLErrno: 1062,
			LastSQLError: "Coordinator stopped because there were error(s) in the worker(s). The most recent failure being: Worker 1 failed executing transaction '" + uuid80 + ":4' at source log master-bin.000001, end_log_pos 1210. See error log and/or performance_schema.replication_applier_status_by_worker table for more details about this failure or others, if any.",
			MasterHost:   "127.0.0.1", MasterPort: 13000, MasterServerID: 1, MasterUUID: uuid80,
			UsingGTID: true, GTIDMode: "1",
			RetrievedGTIDSet: GTIDValue{Raw: uuid80 + ":1-4"},
			ExecutedGTIDSet:  GTIDValue{Raw: uuid80 + ":1-3"},
		},
	}, {
		file: "mysql80_replica_multisource.json",
		row:  0,
		want: Replica{
			Configured: true, Channel: "reporting", IORunning: IOYes, SQLRunning: true,
			IOStateText:   "Waiting for source to send event",
			SQLStateText:  "Replica has read all relay log; waiting for more updates",
			SecondsBehind: i64(0),
			MasterHost:    "reporting-source.example", MasterPort: 3306, MasterServerID: 1,
			MasterUUID: "b3a7c9e2-5f14-11ee-8c99-0242ac120002",
			UsingGTID:  true, GTIDMode: "1",
			RetrievedGTIDSet: GTIDValue{Raw: "b3a7c9e2-5f14-11ee-8c99-0242ac120002:1-7"},
			ExecutedGTIDSet:  GTIDValue{Raw: uuid80 + ":1-3,\nb3a7c9e2-5f14-11ee-8c99-0242ac120002:1-7"},
		},
	}, {
		file: "mysql57_slave_running.json",
		want: Replica{
			Configured: true, IORunning: IOYes, SQLRunning: true,
			IOStateText:   "Waiting for master to send event",
			SQLStateText:  "Reading event from the relay log",
			SecondsBehind: i64(0),
			MasterHost:    "localhost", MasterPort: 13000, MasterServerID: 1, MasterUUID: uuid57,
			UsingGTID: true, GTIDMode: "1",
			RetrievedGTIDSet: GTIDValue{Raw: uuid57 + ":1-5"},
			ExecutedGTIDSet:  GTIDValue{Raw: uuid57 + ":1-5,\nd2a0b5d4-71ca-11e1-9e33-c80aa9429562:1-2:4"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			fix := loadFixture(t, tt.file)
			cols, vals := fix.row(tt.row)
			got, err := parseReplicaStatus(fix.flavor(), cols, vals)
			if err != nil {
				t.Fatalf("parseReplicaStatus: %v", err)
			}
			for _, g := range []struct {
				name      string
				got, want GTIDValue
			}{
				{"GTIDIOPos", got.GTIDIOPos, tt.want.GTIDIOPos},
				{"RetrievedGTIDSet", got.RetrievedGTIDSet, tt.want.RetrievedGTIDSet},
				{"ExecutedGTIDSet", got.ExecutedGTIDSet, tt.want.ExecutedGTIDSet},
			} {
				checkGTIDValue(t, fix.flavor(), g.name, g.got, g.want.Raw)
			}
			got.GTIDIOPos.Set, got.RetrievedGTIDSet.Set, got.ExecutedGTIDSet.Set = nil, nil, nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// checkGTIDValue checks Raw and that Set holds what Raw says (a MariaDB or
// MySQL value column is present in every fixture of its flavor, so an
// absent one has a nil Set).
func checkGTIDValue(t *testing.T, flavor Flavor, name string, got GTIDValue, wantRaw string) {
	t.Helper()
	if got.Raw != wantRaw {
		t.Errorf("%s.Raw = %q, want %q", name, got.Raw, wantRaw)
	}
	if wantRaw == "" {
		if got.Set != nil {
			t.Errorf("%s.Set = %v, want nil for a column of the other flavor", name, got.Set)
		}
		return
	}
	want, err := ParseGTIDs(flavor, wantRaw)
	if err != nil {
		t.Fatalf("ParseGTIDs(%q): %v", wantRaw, err)
	}
	if got.Set == nil || !got.Set.Equal(want) {
		t.Errorf("%s.Set = %v, want %v", name, got.Set, want)
	}
}

func TestPickDefaultChannelFixture(t *testing.T) {
	fix := loadFixture(t, "mysql80_replica_multisource.json")
	var rows []Replica
	for i := range fix.Rows {
		cols, vals := fix.row(i)
		r, err := parseReplicaStatus(fix.flavor(), cols, vals)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	got, err := pickDefaultChannel(rows)
	if err != nil {
		t.Fatal(err)
	}
	if got.Channel != "" || got.MasterHost != "127.0.0.1" {
		t.Errorf("picked channel %q from %s, want the default channel from 127.0.0.1", got.Channel, got.MasterHost)
	}
}

func TestPickDefaultChannel(t *testing.T) {
	named := func(n string) Replica { return Replica{Configured: true, Channel: n, MasterHost: "h-" + n} }
	tests := []struct {
		name    string
		rows    []Replica
		want    Replica
		wantErr string
	}{
		{name: "no rows: not a replica", rows: nil, want: Replica{}},
		{name: "one named channel is taken", rows: []Replica{named("x")}, want: named("x")},
		{name: "default among several", rows: []Replica{named("x"), named(""), named("y")}, want: named("")},
		{name: "several without default", rows: []Replica{named("x"), named("y")}, wantErr: `2 replication channels ("x", "y")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickDefaultChannel(tt.rows)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// row builds parseReplicaStatus input from alternating column, value
// strings; the value "<NULL>" is SQL NULL.
func row(kv ...string) ([]string, []sql.NullString) {
	var cols []string
	var vals []sql.NullString
	for i := 0; i+1 < len(kv); i += 2 {
		cols = append(cols, kv[i])
		if kv[i+1] == "<NULL>" {
			vals = append(vals, sql.NullString{})
		} else {
			vals = append(vals, sql.NullString{String: kv[i+1], Valid: true})
		}
	}
	return cols, vals
}

func TestParseReplicaStatusCases(t *testing.T) {
	tests := []struct {
		name    string
		flavor  Flavor
		kv      []string
		check   func(t *testing.T, r Replica)
		wantErr string
	}{{
		name:   "minimal row, column names in any case",
		flavor: MariaDB,
		kv:     []string{"slave_io_running", "yes", "SLAVE_SQL_RUNNING", "No"},
		check: func(t *testing.T, r Replica) {
			if r.IORunning != IOYes || r.SQLRunning || r.Configured || r.SecondsBehind != nil {
				t.Errorf("got %+v", r)
			}
		},
	}, {
		name:   "empty Seconds_Behind_Master is unknown, not 0",
		flavor: MariaDB,
		kv:     []string{"Slave_IO_Running", "Yes", "Slave_SQL_Running", "Yes", "Seconds_Behind_Master", ""},
		check: func(t *testing.T, r Replica) {
			if r.SecondsBehind != nil {
				t.Errorf("SecondsBehind = %d, want nil", *r.SecondsBehind)
			}
		},
	}, {
		name:   "NULL GTID column is an empty set",
		flavor: MariaDB,
		kv:     []string{"Slave_IO_Running", "No", "Slave_SQL_Running", "No", "Gtid_IO_Pos", "<NULL>", "Using_Gtid", "No"},
		check: func(t *testing.T, r Replica) {
			if r.GTIDIOPos.Set == nil || !r.GTIDIOPos.Set.IsEmpty() || r.UsingGTID {
				t.Errorf("got %+v", r)
			}
		},
	}, {
		name:   "first of duplicate columns wins",
		flavor: MySQL,
		kv:     []string{"Replica_IO_Running", "Yes", "Replica_IO_Running", "bogus", "Replica_SQL_Running", "Yes"},
		check: func(t *testing.T, r Replica) {
			if r.IORunning != IOYes {
				t.Errorf("IORunning = %v", r.IORunning)
			}
		},
	}, {
		name:   "big lag",
		flavor: MySQL,
		kv:     []string{"Replica_IO_Running", "Yes", "Replica_SQL_Running", "Yes", "Seconds_Behind_Source", "86400"},
		check: func(t *testing.T, r Replica) {
			if r.SecondsBehind == nil || *r.SecondsBehind != 86400 {
				t.Errorf("SecondsBehind = %v", r.SecondsBehind)
			}
		},
	},
		{name: "no IO column", flavor: MariaDB, kv: []string{"Slave_SQL_Running", "Yes"}, wantErr: "column Slave_IO_Running missing"},
		{name: "no SQL column", flavor: MariaDB, kv: []string{"Slave_IO_Running", "Yes"}, wantErr: "column Slave_SQL_Running missing"},
		{name: "unknown IO state", flavor: MariaDB, kv: []string{"Slave_IO_Running", "Sleeping", "Slave_SQL_Running", "Yes"}, wantErr: `unknown I/O thread state "Sleeping"`},
		{name: "NULL IO state", flavor: MariaDB, kv: []string{"Slave_IO_Running", "<NULL>", "Slave_SQL_Running", "Yes"}, wantErr: "Slave_IO_Running"},
		{name: "bad SQL state", flavor: MariaDB, kv: []string{"Slave_IO_Running", "No", "Slave_SQL_Running", "Maybe"}, wantErr: `want Yes or No, got "Maybe"`},
		{name: "bad errno", flavor: MariaDB, kv: []string{"Slave_IO_Running", "No", "Slave_SQL_Running", "No", "Last_IO_Errno", "x"}, wantErr: "column Last_IO_Errno"},
		{name: "bad port", flavor: MariaDB, kv: []string{"Slave_IO_Running", "No", "Slave_SQL_Running", "No", "Master_Port", "99999999999"}, wantErr: "column Master_Port"},
		{name: "bad lag", flavor: MySQL, kv: []string{"Replica_IO_Running", "No", "Replica_SQL_Running", "No", "Seconds_Behind_Source", "soon"}, wantErr: "column Seconds_Behind_Master"},
		{name: "server id out of range", flavor: MySQL, kv: []string{"Replica_IO_Running", "No", "Replica_SQL_Running", "No", "Source_Server_Id", "4294967296"}, wantErr: "out of range"},
		{name: "bad MariaDB GTID", flavor: MariaDB, kv: []string{"Slave_IO_Running", "No", "Slave_SQL_Running", "No", "Gtid_IO_Pos", "0-1"}, wantErr: "column Gtid_IO_Pos"},
		{name: "bad MySQL GTID", flavor: MySQL, kv: []string{"Replica_IO_Running", "No", "Replica_SQL_Running", "No", "Executed_Gtid_Set", "nope:1"}, wantErr: "column Executed_Gtid_Set"},
		{name: "unknown flavor", flavor: UnknownFlavor, kv: []string{"Slave_IO_Running", "No", "Slave_SQL_Running", "No"}, wantErr: "unsupported flavor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cols, vals := row(tt.kv...)
			got, err := parseReplicaStatus(tt.flavor, cols, vals)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}

func TestParseReplicaStatusLengthMismatch(t *testing.T) {
	_, err := parseReplicaStatus(MariaDB, []string{"Slave_IO_Running", "Slave_SQL_Running"}, []sql.NullString{{String: "Yes", Valid: true}})
	if err == nil || !strings.Contains(err.Error(), "2 columns but 1 values") {
		t.Fatalf("err = %v", err)
	}
}

func TestIOStateString(t *testing.T) {
	for s, want := range map[IOState]string{IONo: "No", IOConnecting: "Connecting", IOYes: "Yes", IOState(9): "IOState(9)"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(s), got, want)
		}
	}
}

// Slave_IO_Running as MariaDB 10.11 shows it, Preparing included (a
// starting I/O thread, seen during a failover under load).
func TestParseIOState(t *testing.T) {
	for v, want := range map[string]IOState{"Yes": IOYes, "No": IONo, "Connecting": IOConnecting, "Preparing": IOConnecting, " yes ": IOYes} {
		if got, err := parseIOState(v); err != nil || got != want {
			t.Errorf("parseIOState(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	if _, err := parseIOState("Sleeping"); err == nil {
		t.Error("an unknown state was accepted")
	}
}
