package replication

import (
	"context"
	"strings"
	"testing"
	"time"
)

// These tests pass a nil Querier: each case must fail (or succeed) before
// touching the database.

func TestHeartbeatTableName(t *testing.T) {
	tests := []struct {
		schema, want, wantErr string
	}{
		{"", "`tandem`.`heartbeat`", ""},
		{"tandem_ops", "`tandem_ops`.`heartbeat`", ""},
		{"a$1", "`a$1`.`heartbeat`", ""},
		{"bad`name", "", "only letters"},
		{"two words", "", "only letters"},
		{"tändem", "", "only letters"},
		{strings.Repeat("x", 65), "", "1 to 64"},
	}
	for _, tt := range tests {
		got, err := Heartbeat{Schema: tt.schema}.table()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("schema %q: err = %v, want %q", tt.schema, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("schema %q: %q, %v; want %q", tt.schema, got, err, tt.want)
		}
	}
}

func TestHeartbeatRefusesBadInputBeforeSQL(t *testing.T) {
	ctx := context.Background()
	bad := Heartbeat{Schema: "x;y"}
	if err := bad.EnsureTable(ctx, nil); err == nil {
		t.Error("EnsureTable accepted a bad schema")
	}
	if err := bad.Write(ctx, nil, "a", 1, time.Now()); err == nil {
		t.Error("Write accepted a bad schema")
	}
	if _, _, err := bad.Read(ctx, nil, "a"); err == nil {
		t.Error("Read accepted a bad schema")
	}
	for _, node := range []string{"", strings.Repeat("n", 65)} {
		if err := WriteHeartbeat(ctx, nil, node, 1, time.Now()); err == nil || !strings.Contains(err.Error(), "node name") {
			t.Errorf("WriteHeartbeat(node %q): %v", node, err)
		}
		if _, _, err := ReadHeartbeat(ctx, nil, node); err == nil || !strings.Contains(err.Error(), "node name") {
			t.Errorf("ReadHeartbeat(node %q): %v", node, err)
		}
	}
}

func TestWaitExecutedWithoutSQL(t *testing.T) {
	ctx := context.Background()
	if err := WaitExecuted(ctx, nil, MariaDB, nil, time.Second); err != nil {
		t.Errorf("nil set: %v", err)
	}
	if err := WaitExecuted(ctx, nil, MariaDB, mustGTIDs(t, MariaDB, ""), time.Second); err != nil {
		t.Errorf("empty set: %v", err)
	}
	if err := WaitExecuted(ctx, nil, MySQL, mustGTIDs(t, MariaDB, "0-1-5"), time.Second); err == nil || !strings.Contains(err.Error(), "is not a mysql GTID set") {
		t.Errorf("MariaDB set on MySQL: %v", err)
	}
	if err := WaitExecuted(ctx, nil, MariaDB, mustGTIDs(t, MySQL, uuid80+":1"), time.Second); err == nil || !strings.Contains(err.Error(), "is not a mariadb GTID set") {
		t.Errorf("MySQL set on MariaDB: %v", err)
	}
	if err := WaitExecuted(ctx, nil, UnknownFlavor, nil, time.Second); err == nil || !strings.Contains(err.Error(), "unsupported flavor") {
		t.Errorf("unknown flavor: %v", err)
	}
}

func TestSetReadOnlyUnknownFlavor(t *testing.T) {
	if err := SetReadOnly(context.Background(), nil, UnknownFlavor, true); err == nil || !strings.Contains(err.Error(), "unsupported flavor") {
		t.Errorf("err = %v", err)
	}
}
