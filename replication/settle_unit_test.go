package replication

import (
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	gm "github.com/go-mysql-org/go-mysql/replication"
)

// Synthetic binlog events for settleScan.
func gtidEv(seq uint64, standalone bool) *gm.BinlogEvent {
	var flags byte
	if standalone {
		flags = gm.BINLOG_MARIADB_FL_STANDALONE
	}
	return &gm.BinlogEvent{Header: &gm.EventHeader{EventType: gm.MARIADB_GTID_EVENT},
		Event: &gm.MariadbGTIDEvent{GTID: mysql.MariadbGTID{ServerID: 1, SequenceNumber: seq}, Flags: flags}}
}

func annotateEv(q string) *gm.BinlogEvent {
	return &gm.BinlogEvent{Header: &gm.EventHeader{EventType: gm.MARIADB_ANNOTATE_ROWS_EVENT}, Event: &gm.MariadbAnnotateRowsEvent{Query: []byte(q)}}
}

func rowsEv(typ gm.EventType, table uint64, n int) *gm.BinlogEvent {
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{int64(i + 1)}
	}
	return &gm.BinlogEvent{Header: &gm.EventHeader{EventType: typ}, Event: &gm.RowsEvent{TableID: table, Rows: rows}}
}

func queryEv(q string) *gm.BinlogEvent {
	return &gm.BinlogEvent{Header: &gm.EventHeader{EventType: gm.QUERY_EVENT}, Event: &gm.QueryEvent{Query: []byte(q)}}
}

func xidEv() *gm.BinlogEvent {
	return &gm.BinlogEvent{Header: &gm.EventHeader{EventType: gm.XID_EVENT}, Event: &gm.XIDEvent{}}
}

func TestSettleScan(t *testing.T) {
	const (
		bound  = "/*tandem:p:1:1*/"
		ins    = "/*tandem:p:2:1*/"
		upd    = "/*tandem:p:3:1*/"
		twice  = "/*tandem:p:4:1*/"
		ddl    = "/*tandem:p:5:1*/"
		absent = "/*tandem:p:6:1*/"
		early  = "/*tandem:p:7:1*/"
		sp     = "/*tandem:p:8:1*/"
	)
	qs := []SettleQuery{
		{Marker: ins, Bounds: []string{bound}},
		{Marker: upd, Bounds: []string{bound}},
		{Marker: twice, Bounds: []string{bound}},
		{Marker: ddl},
		{Marker: absent, Bounds: []string{"/*tandem:p:9:9*/", bound}},
		{Marker: absent},
		{Marker: early, Bounds: []string{bound}},
		{Marker: sp, Bounds: []string{bound}},
	}
	sc := newSettleScan(qs)
	events := []*gm.BinlogEvent{
		// A transaction committed before the bound: found all the same.
		gtidEv(1, false), annotateEv(early + " INSERT INTO t VALUES (0)"), rowsEv(gm.WRITE_ROWS_EVENTv1, 1, 1), xidEv(),
		gtidEv(2, false), annotateEv(bound + " INSERT INTO t VALUES (1)"), rowsEv(gm.WRITE_ROWS_EVENTv1, 1, 1), xidEv(),
		gtidEv(3, false), queryEv("BEGIN"), annotateEv("INSERT INTO other VALUES (1)"), rowsEv(gm.WRITE_ROWS_EVENTv1, 1, 5),
		annotateEv(ins + " INSERT INTO t VALUES (2), (3)"), rowsEv(gm.WRITE_ROWS_EVENTv1, 1, 2), queryEv("COMMIT"),
		gtidEv(4, false), annotateEv(upd + " update t set v = 1"), rowsEv(gm.UPDATE_ROWS_EVENTv1, 1, 6), xidEv(),
		gtidEv(5, false), annotateEv(twice + " INSERT INTO t VALUES (4)"), rowsEv(gm.WRITE_ROWS_EVENTv1, 1, 1),
		annotateEv(twice + " INSERT INTO t VALUES (5)"), rowsEv(gm.WRITE_ROWS_EVENTv1, 1, 1), xidEv(),
		gtidEv(6, true), queryEv(ddl + " CREATE TABLE x (a INT)"),
		// Rows after a DDL belong to no marked statement.
		gtidEv(7, false), annotateEv("DELETE FROM t"), rowsEv(gm.DELETE_ROWS_EVENTv1, 1, 3), xidEv(),
		// Prepared statements, marked by a savepoint.
		gtidEv(8, false), annotateEv("INSERT INTO t VALUES (9)"), rowsEv(gm.WRITE_ROWS_EVENTv1, 1, 1),
		queryEv("SAVEPOINT `tandem_p_8_1`"), xidEv(),
	}
	for _, ev := range events {
		sc.event(ev)
	}
	sc.fileDone()
	got := sc.results("not far enough")
	want := []Settled{
		{Known: true, Committed: true, GTID: "0-1-3", Rows: 2, RowsKnown: true},
		{Known: true, Committed: true, GTID: "0-1-4", Rows: 3, RowsKnown: true},
		{Known: true, Committed: true, GTID: "0-1-5"},
		{Known: true, Committed: true, GTID: "0-1-6"},
		{Known: true},
		{Why: "not far enough"},
		{Known: true, Committed: true, GTID: "0-1-1", Rows: 1, RowsKnown: true},
		{Known: true, Committed: true, GTID: "0-1-8"},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("query %d (%s): got %+v, want %+v", i, qs[i].Marker, got[i], want[i])
		}
	}
	if sc.allSettled() {
		t.Error("allSettled with a query unanswered")
	}
}

func TestSettleScanBoundOnlyCountsWholeFiles(t *testing.T) {
	sc := newSettleScan([]SettleQuery{{Marker: "/*tandem:p:2:1*/", Bounds: []string{"/*tandem:p:1:1*/"}}})
	sc.event(gtidEv(1, false))
	sc.event(annotateEv("/*tandem:p:1:1*/ INSERT INTO t VALUES (1)"))
	sc.event(rowsEv(gm.WRITE_ROWS_EVENTv1, 1, 1))
	sc.event(xidEv())
	if sc.allSettled() {
		t.Fatal("settled before the file holding the bound was read to its end")
	}
	sc.fileDone()
	if !sc.allSettled() {
		t.Fatal("not settled after the file holding the bound was read")
	}
}

func TestParseMarkerAndVerb(t *testing.T) {
	for q, want := range map[string]string{
		"/*tandem:a:1:2*/ INSERT": "/*tandem:a:1:2*/", "INSERT /*tandem:a:1:2*/": "", "/*tandem:unterminated": "",
		"/*tandem:" + string(make([]byte, 200)) + "*/": "",
	} {
		if got, _ := parseMarker([]byte(q)); got != want {
			t.Errorf("parseMarker(%q) = %q, want %q", q, got, want)
		}
	}
	for q, want := range map[string]string{
		"SAVEPOINT `tandem_ab_7_12`": "/*tandem:ab:7:12*/", "SAVEPOINT `tandem_ab_7`": "", "SAVEPOINT `other`": "",
		"SAVEPOINT `tandem_a_b_c_d`": "", "SAVEPOINT `tandem_a__1`": "", "SAVEPOINT `tandem_a*/_1_2`": "",
	} {
		if got, _ := parseSavepoint([]byte(q)); got != want {
			t.Errorf("parseSavepoint(%q) = %q, want %q", q, got, want)
		}
	}
	if v, dup := firstVerb([]byte("/*m*/ (insert into t values (1) on duplicate key update v = 2"), "/*m*/"); v != "INSERT" || !dup {
		t.Errorf("firstVerb: %q %v", v, dup)
	}
}
