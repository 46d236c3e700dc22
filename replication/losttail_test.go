package replication

import (
	"fmt"
	"testing"
)

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

// TestSkippedOwn: a GTID of the node's own server_id in the active's
// gtid_binlog_state that the node's lacks while its position is past it.
func TestSkippedOwn(t *testing.T) {
	mk := func(id uint32, state, current string) Facts {
		vars := map[string]string{"version": "10.11.14-MariaDB", "server_id": fmt.Sprint(id), "read_only": "ON",
			"gtid_current_pos": current, "gtid_binlog_pos": current, "gtid_slave_pos": "", "gtid_binlog_state": state}
		f, err := parseVariables(vars)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, c := range []struct {
		name                   string
		nodeState, nodeCurrent string
		activeState            string
		want                   string
	}{
		{"went past its lost own", "0-1-11,0-2-13", "0-2-13", "0-1-12,0-2-19", "0-1-12"},
		{"not yet past (repairable)", "0-1-11", "0-1-11", "0-1-12,0-2-19", ""},
		{"has it", "0-1-12,0-2-13", "0-2-13", "0-1-12,0-2-19", ""},
		{"nothing of its own (rebuilt)", "0-2-13", "0-2-13", "0-1-12,0-2-19", ""},
		{"other domain", "0-1-11,1-2-4", "0-1-11,1-2-4", "1-1-12,1-2-4,0-1-11", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := SkippedOwn(mk(1, c.nodeState, c.nodeCurrent), mk(2, c.activeState, "0-2-19")); got != c.want {
				t.Errorf("SkippedOwn = %q; want %q", got, c.want)
			}
		})
	}
	if _, err := parseVariables(map[string]string{"version": "10.11.14-MariaDB", "server_id": "1", "read_only": "ON",
		"gtid_current_pos": "", "gtid_binlog_pos": "", "gtid_slave_pos": "", "gtid_binlog_state": "0-1-x"}); err == nil {
		t.Error("bad gtid_binlog_state accepted")
	}
}

func TestMaxSequence(t *testing.T) {
	for _, tt := range []struct {
		positions []string
		domain    uint32
		want      uint64
	}{
		{[]string{"0-1-7074", "0-1-7074", "0-1-7390", "0-1-7074", "0-1-7390"}, 0, 7390}, // stale binlog pos, slave pos and the file ahead
		{[]string{"0-1-10,1-2-500", "0-2-12", ""}, 0, 12},
		{[]string{"0-1-10,1-2-500", "0-2-12"}, 1, 500},
		{[]string{"1-2-500"}, 0, 0},
		{nil, 0, 0},
	} {
		got, err := maxSequence(tt.positions, tt.domain)
		if err != nil || got != tt.want {
			t.Errorf("maxSequence(%q, %d) = %d, %v; want %d", tt.positions, tt.domain, got, err, tt.want)
		}
	}
	if _, err := maxSequence([]string{"0-1-x"}, 0); err == nil {
		t.Error("a malformed position was taken")
	}
}
