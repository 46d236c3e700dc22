package replication

import (
	"strings"
	"testing"
)

func TestDetectFlavor(t *testing.T) {
	tests := []struct {
		version string
		want    Flavor
	}{
		{"10.11.6-MariaDB-0+deb12u1-log", MariaDB},
		{"10.11.19-MariaDB-0+deb12u1-log", MariaDB},
		{"11.4.2-MariaDB", MariaDB},
		{"5.5.5-10.11.6-MariaDB-log", MariaDB},
		{"10.6.16-mariadb", MariaDB},
		{"  10.5.23-MariaDB-1:10.5.23+maria~ubu2004  ", MariaDB},
		{"8.0.36", MySQL},
		{"8.0.36-28", MySQL},
		{"8.4.0-log", MySQL},
		{"5.7.44-log", MySQL},
		{"9.1.0-commercial", MySQL},
		{"", UnknownFlavor},
		{"   ", UnknownFlavor},
	}
	for _, tt := range tests {
		if got := DetectFlavor(tt.version); got != tt.want {
			t.Errorf("DetectFlavor(%q) = %v, want %v", tt.version, got, tt.want)
		}
	}
}

func TestFlavorString(t *testing.T) {
	for f, want := range map[Flavor]string{MariaDB: "mariadb", MySQL: "mysql", UnknownFlavor: "unknown", Flavor(7): "unknown"} {
		if got := f.String(); got != want {
			t.Errorf("Flavor(%d).String() = %q, want %q", int(f), got, want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in                  string
		major, minor, patch int
		ok                  bool
	}{
		{"8.0.22", 8, 0, 22, true},
		{"8.0.36-28", 8, 0, 36, true},
		{"10.11.6-MariaDB-0+deb12u1-log", 10, 11, 6, true},
		{" 5.7.44-log", 5, 7, 44, true},
		{"8.0", 0, 0, 0, false},
		{"8..1", 0, 0, 0, false},
		{"v8.0.1", 0, 0, 0, false},
		{"", 0, 0, 0, false},
		{"99999999999999999999.0.0", 0, 0, 0, false},
	}
	for _, tt := range tests {
		ma, mi, pa, ok := parseVersion(tt.in)
		if ok != tt.ok || ma != tt.major || mi != tt.minor || pa != tt.patch {
			t.Errorf("parseVersion(%q) = %d %d %d %v, want %d %d %d %v", tt.in, ma, mi, pa, ok, tt.major, tt.minor, tt.patch, tt.ok)
		}
	}
}

func TestReplicaStatusQuery(t *testing.T) {
	tests := []struct {
		flavor  Flavor
		version string
		want    string
	}{
		{MariaDB, "10.11.6-MariaDB-0+deb12u1-log", "SHOW SLAVE STATUS"},
		{MariaDB, "10.4.32-MariaDB", "SHOW SLAVE STATUS"},
		{MySQL, "5.7.44-log", "SHOW SLAVE STATUS"},
		{MySQL, "8.0.21", "SHOW SLAVE STATUS"},
		{MySQL, "8.0.22", "SHOW REPLICA STATUS"},
		{MySQL, "8.4.0", "SHOW REPLICA STATUS"},
		{MySQL, "9.1.0", "SHOW REPLICA STATUS"},
		{MySQL, "weird", "SHOW REPLICA STATUS"},
	}
	for _, tt := range tests {
		if got := replicaStatusQuery(tt.flavor, tt.version); got != tt.want {
			t.Errorf("replicaStatusQuery(%v, %q) = %q, want %q", tt.flavor, tt.version, got, tt.want)
		}
	}
}

// mariaDBVars is what SHOW GLOBAL VARIABLES returned on node a of the local
// pair (MariaDB 10.11), names as the server prints them.
func mariaDBVars() map[string]string {
	return map[string]string{
		"gtid_binlog_pos":  "0-2-2",
		"gtid_current_pos": "0-2-2",
		"gtid_domain_id":   "0",
		"gtid_slave_pos":   "0-2-2",
		"gtid_strict_mode": "ON",
		"read_only":        "OFF",
		"server_id":        "1",
		"version":          "10.11.19-MariaDB-0+deb12u1-log",
	}
}

// mySQLVars is what the MySQL 8.0 manual documents for a GTID replica.
func mySQLVars() map[string]string {
	return map[string]string{
		"gtid_executed":   uuid80 + ":1-3,\n" + uuid57 + ":1-5",
		"gtid_mode":       "ON",
		"read_only":       "ON",
		"server_id":       "2",
		"server_uuid":     "8a94f357-aab4-11df-86ab-c80aa9429562",
		"super_read_only": "ON",
		"version":         "8.0.36",
	}
}

func TestParseVariables(t *testing.T) {
	f, err := parseVariables(mariaDBVars())
	if err != nil {
		t.Fatal(err)
	}
	if f.Flavor != MariaDB || f.ServerID != 1 || f.ReadOnly || !f.Writable() || !f.GTIDStrictMode || f.GTIDDomainID != 0 {
		t.Errorf("MariaDB facts: %+v", f)
	}
	if f.CurrentPos.Raw != "0-2-2" || f.Executed() == nil || f.Executed().String() != "0-2-2" {
		t.Errorf("MariaDB Executed() = %v, CurrentPos %+v", f.Executed(), f.CurrentPos)
	}
	if f.GTIDExecuted.Set != nil {
		t.Errorf("MariaDB has a MySQL gtid_executed: %+v", f.GTIDExecuted)
	}

	f, err = parseVariables(mySQLVars())
	if err != nil {
		t.Fatal(err)
	}
	if f.Flavor != MySQL || f.ServerID != 2 || !f.ReadOnly || !f.SuperReadOnly || f.Writable() || f.GTIDMode != "ON" {
		t.Errorf("MySQL facts: %+v", f)
	}
	if want := uuid57 + ":1-5," + uuid80 + ":1-3"; f.Executed() == nil || f.Executed().String() != want {
		t.Errorf("MySQL Executed() = %v, want %s", f.Executed(), want)
	}
	if f.CurrentPos.Set != nil {
		t.Errorf("MySQL has a MariaDB position: %+v", f.CurrentPos)
	}

	if (Facts{}).Executed() != nil {
		t.Error("zero Facts has an Executed set")
	}
}

func TestParseVariablesErrors(t *testing.T) {
	tests := []struct {
		name    string
		base    func() map[string]string
		edit    func(map[string]string)
		wantErr string
	}{
		{"no version", mariaDBVars, func(m map[string]string) { delete(m, "version") }, "version missing"},
		{"empty version", mariaDBVars, func(m map[string]string) { m["version"] = "" }, "empty version"},
		{"no server_id", mariaDBVars, func(m map[string]string) { delete(m, "server_id") }, "server_id missing"},
		{"bad server_id", mariaDBVars, func(m map[string]string) { m["server_id"] = "-1" }, "server_id"},
		{"bad read_only", mariaDBVars, func(m map[string]string) { m["read_only"] = "SOMETIMES" }, "read_only: not a boolean"},
		{"no gtid_slave_pos", mariaDBVars, func(m map[string]string) { delete(m, "gtid_slave_pos") }, "gtid_slave_pos missing"},
		{"bad gtid_current_pos", mariaDBVars, func(m map[string]string) { m["gtid_current_pos"] = "0-1-x" }, "gtid_current_pos"},
		{"bad gtid_domain_id", mariaDBVars, func(m map[string]string) { m["gtid_domain_id"] = "x" }, "gtid_domain_id"},
		{"bad gtid_strict_mode", mariaDBVars, func(m map[string]string) { m["gtid_strict_mode"] = "x" }, "gtid_strict_mode"},
		{"no gtid_executed", mySQLVars, func(m map[string]string) { delete(m, "gtid_executed") }, "gtid_executed missing"},
		{"bad gtid_executed", mySQLVars, func(m map[string]string) { m["gtid_executed"] = "x:1" }, "gtid_executed"},
		{"bad super_read_only", mySQLVars, func(m map[string]string) { m["super_read_only"] = "2" }, "super_read_only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.base()
			tt.edit(m)
			_, err := parseVariables(m)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseReadOnly(t *testing.T) {
	for v, want := range map[string]bool{"ON": true, "OFF": false, "1": true, "0": false, "NO_LOCK": true, "no_lock_no_admin": true} {
		got, err := parseReadOnly("read_only", v)
		if err != nil || got != want {
			t.Errorf("parseReadOnly(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
}
