package replication

import (
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func mustGTIDs(t testing.TB, flavor Flavor, s string) mysql.GTIDSet {
	t.Helper()
	set, err := ParseGTIDs(flavor, s)
	if err != nil {
		t.Fatalf("ParseGTIDs(%v, %q): %v", flavor, s, err)
	}
	return set
}

func TestParseGTIDs(t *testing.T) {
	tests := []struct {
		flavor  Flavor
		in      string
		want    string // canonical String(); ignored when wantErr
		wantErr string
	}{
		{MariaDB, "", "", ""},
		{MariaDB, "  ", "", ""},
		{MariaDB, "0-1-42", "0-1-42", ""},
		{MariaDB, "1-2-7,0-1-42", "0-1-42,1-2-7", ""},
		{MariaDB, " 0-1-42 , 1-2-7 \n", "0-1-42,1-2-7", ""},
		{MariaDB, "0-1-18446744073709551615", "0-1-18446744073709551615", ""},
		{MariaDB, "0-1-5,", "", "empty element"},
		{MariaDB, ",0-1-5", "", "empty element"},
		{MariaDB, "0-1-5,0-2-6", "", "domain 0 listed twice"},
		{MariaDB, "0-0-0", "", "0-0-0 is no transaction"},
		{MariaDB, "0-1", "", "must domain-server-sequence"},
		{MariaDB, "0-1-2-3", "", "must domain-server-sequence"},
		{MariaDB, "a-1-2", "", "Domain ID"},
		{MariaDB, "4294967296-1-2", "", "Domain ID"},
		{MariaDB, "0-1--2", "", "must domain-server-sequence"},
		{MySQL, "", "", ""},
		{MySQL, uuid80 + ":1-3", uuid80 + ":1-3", ""},
		{MySQL, uuid80 + ":1-3,\n" + uuid57 + ":1-5:7-9", uuid57 + ":1-5:7-9," + uuid80 + ":1-3", ""},
		{MySQL, uuid80 + ":1-3:2-5", uuid80 + ":1-5", ""},
		{MySQL, uuid80 + ":tag1:1-3", uuid80 + ":tag1:1-3", ""},
		{MySQL, uuid80, "", "invalid GTID format"},
		{MySQL, "not-a-uuid:1-3", "", "invalid UUID"},
		{MySQL, uuid80 + ":3-1", "", "end must >= start"},
		{MySQL, uuid80 + ":x", "", "missing interval for tag x"},
		{MySQL, uuid80 + ":1-y", "", "invalid syntax"},
		{UnknownFlavor, "0-1-2", "", "unsupported flavor"},
	}
	for _, tt := range tests {
		got, err := ParseGTIDs(tt.flavor, tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseGTIDs(%v, %q) err = %v, want it to contain %q", tt.flavor, tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseGTIDs(%v, %q): %v", tt.flavor, tt.in, err)
			continue
		}
		if got.String() != tt.want {
			t.Errorf("ParseGTIDs(%v, %q) = %q, want %q", tt.flavor, tt.in, got.String(), tt.want)
		}
	}
}

func TestContains(t *testing.T) {
	m := func(s string) mysql.GTIDSet { return mustGTIDs(t, MariaDB, s) }
	y := func(s string) mysql.GTIDSet { return mustGTIDs(t, MySQL, s) }
	var nilMaria *mysql.MariadbGTIDSet
	tests := []struct {
		name       string
		have, want mysql.GTIDSet
		contains   bool
	}{
		{"nil want", nil, nil, true},
		{"empty want", m("0-1-5"), m(""), true},
		{"typed nil want", m("0-1-5"), nilMaria, true},
		{"nil have", nil, m("0-1-5"), false},
		{"typed nil have", nilMaria, m("0-1-5"), false},
		{"same", m("0-1-5"), m("0-1-5"), true},
		{"ahead", m("0-1-6"), m("0-1-5"), true},
		{"behind", m("0-1-4"), m("0-1-5"), false},
		{"server_id ignored", m("0-2-5"), m("0-1-5"), true},
		{"missing domain", m("0-1-9"), m("0-1-5,1-1-1"), false},
		{"extra domain", m("0-1-9,1-1-1"), m("0-1-5"), true},
		{"mysql subset", y(uuid80 + ":1-10"), y(uuid80 + ":3-5"), true},
		{"mysql gap", y(uuid80 + ":1-3:5-10"), y(uuid80 + ":3-5"), false},
		{"mysql other uuid", y(uuid80 + ":1-10"), y(uuid57 + ":1"), false},
		{"flavors differ", m("0-1-5"), y(uuid80 + ":1"), false},
	}
	for _, tt := range tests {
		if got := Contains(tt.have, tt.want); got != tt.contains {
			t.Errorf("%s: Contains(%v, %v) = %v, want %v", tt.name, tt.have, tt.want, got, tt.contains)
		}
	}
}

func TestErrantMariaDB(t *testing.T) {
	tests := []struct {
		name              string
		active, candidate string
		want              string
	}{
		{"equal", "0-1-10", "0-1-10", ""},
		{"candidate behind", "0-1-10", "0-1-8", ""},
		{"candidate behind, last written by the other node", "0-1-10", "0-2-8", ""},
		{"candidate ahead in the only domain", "0-1-10", "0-2-11", "0-2-11"},
		{"same seq, different server: diverged", "0-1-10", "0-2-10", "0-2-10"},
		{"empty candidate", "0-1-10", "", ""},
		{"empty active", "", "0-1-3", "0-1-3"},
		{"domain unknown to active", "0-1-10", "0-1-10,7-2-1", "7-2-1"},
		{"active has more domains", "0-1-10,1-2-5", "0-1-10", ""},
		{"multi-domain: ahead in one only", "0-1-100,1-2-50,2-3-7", "0-1-100,1-2-51,2-3-6", "1-2-51"},
		{"multi-domain: ahead in two", "0-1-100,1-2-50", "0-1-101,1-2-51", "0-1-101,1-2-51"},
		{"multi-domain: behind everywhere", "0-1-100,1-2-50", "0-1-99,1-1-49", ""},
		{"per-node domains, each node writes its own", "1-1-500,2-2-20", "1-1-500,2-2-21", "2-2-21"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			active := mustGTIDs(t, MariaDB, tt.active)
			candidate := mustGTIDs(t, MariaDB, tt.candidate)
			got, errant := Errant(active, candidate)
			if errant != (tt.want != "") {
				t.Errorf("errant = %v, want %v", errant, tt.want != "")
			}
			if got.String() != tt.want {
				t.Errorf("Errant(%s, %s) = %q, want %q", tt.active, tt.candidate, got.String(), tt.want)
			}
		})
	}
}

func TestErrantMySQL(t *testing.T) {
	const u1, u2 = uuid80, uuid57
	tests := []struct {
		name              string
		active, candidate string
		want              string
	}{
		{"equal", u1 + ":1-10", u1 + ":1-10", ""},
		{"candidate behind", u1 + ":1-10", u1 + ":1-7", ""},
		{"candidate ahead", u1 + ":1-10", u1 + ":1-12", u1 + ":11-12"},
		{"hole in active", u1 + ":1-4:6-10", u1 + ":1-10", u1 + ":5"},
		{"write on the passive (own uuid)", u1 + ":1-10", u1 + ":1-10,\n" + u2 + ":1-2", u2 + ":1-2"},
		{"several holes", u1 + ":2-3:6-7:10", u1 + ":1-12", u1 + ":1:4-5:8-9:11-12"},
		{"active has other uuids", u1 + ":1-10,\n" + u2 + ":1-99", u1 + ":1-10", ""},
		{"empty active", "", u1 + ":1-3,\n" + u2 + ":5", u2 + ":5," + u1 + ":1-3"},
		{"empty candidate", u1 + ":1-3", "", ""},
		{"tags compared separately", u1 + ":1-5", u1 + ":1-5:tag_a:1-2", u1 + ":tag_a:1-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errant := Errant(mustGTIDs(t, MySQL, tt.active), mustGTIDs(t, MySQL, tt.candidate))
			if errant != (tt.want != "") {
				t.Errorf("errant = %v, want %v", errant, tt.want != "")
			}
			if got.String() != tt.want {
				t.Errorf("Errant = %q, want %q", got.String(), tt.want)
			}
		})
	}
}

func TestErrantOddInputs(t *testing.T) {
	maria := mustGTIDs(t, MariaDB, "0-1-5")
	my := mustGTIDs(t, MySQL, uuid80+":1-3")
	var nilMaria *mysql.MariadbGTIDSet

	if got, errant := Errant(maria, nil); errant || got != nil {
		t.Errorf("nil candidate: %v, %v", got, errant)
	}
	if _, errant := Errant(maria, nilMaria); errant {
		t.Error("typed nil candidate is errant")
	}
	if got, errant := Errant(nil, maria); !errant || got.String() != "0-1-5" {
		t.Errorf("nil active: %v, %v", got, errant)
	}
	if got, errant := Errant(nilMaria, maria); !errant || got.String() != "0-1-5" {
		t.Errorf("typed nil active: %v, %v", got, errant)
	}
	if got, errant := Errant(my, maria); !errant || got.String() != "0-1-5" {
		t.Errorf("flavors differ: %v, %v", got, errant)
	}
	if got, errant := Errant(maria, my); !errant || got.String() != uuid80+":1-3" {
		t.Errorf("flavors differ: %v, %v", got, errant)
	}
	// The result is a copy: changing it leaves the candidate alone.
	got, _ := Errant(nil, maria)
	got.(*mysql.MariadbGTIDSet).Sets[0].SequenceNumber = 99
	if maria.String() != "0-1-5" {
		t.Errorf("Errant aliased the candidate: %v", maria)
	}
}

func TestIntervalsMinus(t *testing.T) {
	iv := func(pairs ...int64) mysql.IntervalSlice {
		var s mysql.IntervalSlice
		for i := 0; i+1 < len(pairs); i += 2 {
			s = append(s, mysql.Interval{Start: pairs[i], Stop: pairs[i+1]})
		}
		return s
	}
	tests := []struct {
		a, b, want mysql.IntervalSlice
	}{
		{iv(1, 11), nil, iv(1, 11)},
		{iv(1, 11), iv(1, 11), nil},
		{iv(1, 11), iv(0, 20), nil},
		{iv(1, 11), iv(3, 5), iv(1, 3, 5, 11)},
		{iv(1, 11), iv(1, 2, 10, 11), iv(2, 10)},
		{iv(1, 5, 8, 12), iv(4, 9), iv(1, 4, 9, 12)},
		{iv(1, 3, 5, 7, 9, 11), iv(2, 10), iv(1, 2, 10, 11)},
		{iv(5, 6), iv(1, 2, 3, 4, 7, 8), iv(5, 6)},
		{nil, iv(1, 2), nil},
	}
	for _, tt := range tests {
		got := intervalsMinus(tt.a, tt.b)
		if len(got) != len(tt.want) || (len(got) > 0 && !got.Equal(tt.want)) {
			t.Errorf("%v - %v = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
