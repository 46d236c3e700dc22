package replication

import "testing"

// TestLostOwnTail: gtid_slave_pos naming a GTID of the node's own
// server_id beyond its binary log is a lost tail, and Executed does not
// count it; anything else is not.
func TestLostOwnTail(t *testing.T) {
	for _, c := range []struct {
		name                   string
		id                     uint32
		current, binlog, slave string
		lost, executed         string
	}{
		{"lost own", 2, "0-2-17549", "0-2-17548", "0-2-17549", "0-2-17549", "0-2-17548"},
		{"lost own, other domain fine", 2, "0-2-9,1-1-4", "0-2-8,1-1-4", "0-2-9,1-1-4", "0-2-9", "0-2-8,1-1-4"},
		{"lost own, binlog lacks the domain", 2, "0-2-3,1-1-4", "1-1-4", "0-2-3,1-1-4", "0-2-3", "1-1-4"},
		{"peer's GTID ahead of the binlog", 2, "0-1-10", "0-2-8", "0-1-10", "", "0-1-10"},
		{"own, binlog equal", 2, "0-2-9", "0-2-9", "0-2-9", "", "0-2-9"},
		{"own, binlog ahead", 2, "0-2-10", "0-2-10", "0-2-9", "", "0-2-10"},
		{"empty slave pos", 2, "0-2-10", "0-2-10", "", "", "0-2-10"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := Facts{Flavor: MariaDB, ServerID: c.id}
			var err error
			for _, g := range []struct {
				dst *GTIDValue
				raw string
			}{{&f.CurrentPos, c.current}, {&f.BinlogPos, c.binlog}, {&f.SlavePos, c.slave}} {
				if *g.dst, err = parseGTIDValue(MariaDB, "x", g.raw); err != nil {
					t.Fatal(err)
				}
			}
			lost := ""
			if l := f.LostOwnTail(); l != nil {
				lost = l.String()
			}
			if lost != c.lost {
				t.Errorf("LostOwnTail = %q; want %q", lost, c.lost)
			}
			if got := f.Executed().String(); got != c.executed {
				t.Errorf("Executed = %q; want %q", got, c.executed)
			}
			if got := honestCurrent(c.id, f.CurrentPos.Set, f.BinlogPos.Set, f.SlavePos.Set).String(); got != c.executed {
				t.Errorf("honestCurrent = %q; want %q", got, c.executed)
			}
		})
	}
	if l := (Facts{Flavor: MySQL}).LostOwnTail(); l != nil {
		t.Errorf("MySQL LostOwnTail = %v; want nil", l)
	}
}
