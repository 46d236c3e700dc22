package replication

import (
	"strings"
	"testing"
	"time"
)

// Values as MariaDB 10.11 prints them (SHOW GLOBAL VARIABLES / STATUS),
// and MySQL 8.0.26+'s source/replica names.
func TestParseSemiSync(t *testing.T) {
	vars := map[string]string{
		"rpl_semi_sync_master_enabled": "ON", "rpl_semi_sync_master_timeout": "30000",
		"rpl_semi_sync_master_wait_point": "AFTER_SYNC", "rpl_semi_sync_master_wait_no_slave": "ON",
		"rpl_semi_sync_slave_enabled": "OFF",
	}
	s, err := parseSemiSyncVariables(vars)
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{
		"rpl_semi_sync_master_status": "ON", "rpl_semi_sync_master_clients": "1",
		"rpl_semi_sync_master_wait_sessions": "2", "rpl_semi_sync_master_no_tx": "7",
		"rpl_semi_sync_master_yes_tx": "4502", "rpl_semi_sync_slave_status": "OFF",
	}
	if err := parseSemiSyncStatus(&s, status); err != nil {
		t.Fatal(err)
	}
	want := SemiSync{Known: true, SourceEnabled: true, SourceOn: true, SourceTimeout: 30 * time.Second, WaitPoint: "AFTER_SYNC",
		WaitNoReplica: true, Clients: 1, WaitSessions: 2, NoTx: 7, YesTx: 4502}
	if s != want {
		t.Fatalf("MariaDB: %+v\nwant %+v", s, want)
	}

	mysql := map[string]string{
		"rpl_semi_sync_source_enabled": "OFF", "rpl_semi_sync_source_timeout": "10000",
		"rpl_semi_sync_source_wait_point": "after_commit", "rpl_semi_sync_source_wait_no_replica": "OFF",
		"rpl_semi_sync_replica_enabled": "ON",
	}
	s, err = parseSemiSyncVariables(mysql)
	if err != nil {
		t.Fatal(err)
	}
	if err := parseSemiSyncStatus(&s, map[string]string{"rpl_semi_sync_source_status": "OFF", "rpl_semi_sync_replica_status": "ON"}); err != nil {
		t.Fatal(err)
	}
	want = SemiSync{Known: true, SourceTimeout: 10 * time.Second, WaitPoint: "AFTER_COMMIT", ReplicaEnabled: true, ReplicaOn: true}
	if s != want {
		t.Fatalf("MySQL: %+v\nwant %+v", s, want)
	}

	if s, err := parseSemiSyncVariables(map[string]string{"version": "8.0.36"}); err != nil || s.Known {
		t.Fatalf("no semi-sync variables: %+v, %v", s, err)
	}
	for _, bad := range []map[string]string{
		{"rpl_semi_sync_master_enabled": "maybe"},
		{"rpl_semi_sync_master_enabled": "ON", "rpl_semi_sync_master_timeout": "-1"},
	} {
		if _, err := parseSemiSyncVariables(bad); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
	for _, bad := range []map[string]string{
		{"rpl_semi_sync_master_status": "2"},
		{"rpl_semi_sync_master_clients": "x"},
		{"rpl_semi_sync_master_yes_tx": "18446744073709551616"},
	} {
		var s SemiSync
		if err := parseSemiSyncStatus(&s, bad); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
}

func FuzzParseSemiSync(f *testing.F) {
	f.Add("rpl_semi_sync_master_enabled=ON\nrpl_semi_sync_master_timeout=30000\nrpl_semi_sync_master_wait_point=AFTER_SYNC",
		"rpl_semi_sync_master_status=ON\nrpl_semi_sync_master_yes_tx=12\nrpl_semi_sync_master_wait_sessions=1")
	f.Add("rpl_semi_sync_source_enabled=1\nrpl_semi_sync_source_timeout=18446744073709551615", "rpl_semi_sync_source_no_tx=3")
	split := func(data string) map[string]string {
		m := map[string]string{}
		for _, line := range strings.Split(data, "\n") {
			k, v, _ := strings.Cut(line, "=")
			m[k] = v
		}
		return m
	}
	f.Fuzz(func(t *testing.T, vars, status string) {
		s, err := parseSemiSyncVariables(split(vars))
		if err != nil {
			return
		}
		if s.SourceTimeout < 0 {
			t.Fatalf("negative timeout %v", s.SourceTimeout)
		}
		_ = parseSemiSyncStatus(&s, split(status))
	})
}
