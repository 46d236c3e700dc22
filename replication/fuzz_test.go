package replication

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Fuzz targets, one per parser. Run one for a while with e.g.
//
//	go test ./replication -run '^$' -fuzz '^FuzzParseReplicaStatus$' -fuzztime 20s
//
// Plain go test runs their seeds.

// encodeStatusRow renders a row for the fuzzer: one "column=value" line per
// column, a line without '=' for a NULL value.
func encodeStatusRow(cols []string, vals []sql.NullString) string {
	var b strings.Builder
	for i, c := range cols {
		b.WriteString(c)
		if vals[i].Valid {
			b.WriteByte('=')
			b.WriteString(strings.ReplaceAll(vals[i].String, "\n", `\n`))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// decodeStatusRow undoes encodeStatusRow on any input.
func decodeStatusRow(data string) ([]string, []sql.NullString) {
	var cols []string
	var vals []sql.NullString
	for _, line := range strings.Split(data, "\n") {
		name, value, ok := strings.Cut(line, "=")
		cols = append(cols, name)
		vals = append(vals, sql.NullString{String: strings.ReplaceAll(value, `\n`, "\n"), Valid: ok})
	}
	return cols, vals
}

func FuzzParseReplicaStatus(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	for _, p := range paths {
		fix := loadFixture(f, filepath.Base(p))
		for i := range fix.Rows {
			cols, vals := fix.row(i)
			f.Add(uint8(fix.flavor()), encodeStatusRow(cols, vals))
		}
	}
	f.Add(uint8(MariaDB), "Slave_IO_Running=Yes\nSlave_SQL_Running=Yes\nSeconds_Behind_Master\nGtid_IO_Pos=0-1-5,1-2-3")
	f.Add(uint8(MySQL), "Replica_IO_Running=Connecting\nReplica_SQL_Running=No\nExecuted_Gtid_Set="+uuid80+":1-3:5")
	f.Fuzz(func(t *testing.T, flavor uint8, data string) {
		cols, vals := decodeStatusRow(data)
		r, err := parseReplicaStatus(Flavor(flavor), cols, vals)
		if err != nil {
			return
		}
		if r.IORunning != IONo && r.IORunning != IOConnecting && r.IORunning != IOYes {
			t.Fatalf("IORunning = %d", r.IORunning)
		}
		if r.Configured != (strings.TrimSpace(r.MasterHost) != "") {
			t.Fatalf("Configured = %v with host %q", r.Configured, r.MasterHost)
		}
		for _, g := range []GTIDValue{r.GTIDIOPos, r.RetrievedGTIDSet, r.ExecutedGTIDSet} {
			if g.Set != nil {
				_ = g.Set.String()
			}
		}
	})
}

func FuzzParseGTIDs(f *testing.F) {
	for _, s := range []string{
		"", "0-1-42", "0-1-42,1-2-7", " 0-1-5 ,\n1-2-3", "0-1-5,", "0-0-0", "0-1-18446744073709551615",
		uuid80 + ":1-3", uuid80 + ":1-3,\n" + uuid57 + ":1-5:7", uuid80 + ":tag:1-2", uuid80 + ":1-9223372036854775806",
	} {
		f.Add(true, s)
		f.Add(false, s)
	}
	f.Fuzz(func(t *testing.T, mariadb bool, s string) {
		flavor := MySQL
		if mariadb {
			flavor = MariaDB
		}
		set, err := ParseGTIDs(flavor, s)
		if err != nil {
			return
		}
		again, err := ParseGTIDs(flavor, set.String())
		if err != nil {
			t.Fatalf("%q parsed, but its String %q does not: %v", s, set.String(), err)
		}
		if !again.Equal(set) {
			t.Fatalf("%q: String round trip %q gives %q", s, set.String(), again.String())
		}
		if !Contains(set, set) {
			t.Fatalf("%q does not contain itself", s)
		}
		if e, errant := Errant(set, set); errant {
			t.Fatalf("%q is errant against itself: %v", s, e)
		}
	})
}

func FuzzErrant(f *testing.F) {
	f.Add(true, "0-1-10", "0-2-11")
	f.Add(true, "0-1-100,1-2-50", "0-1-101,1-2-49,3-3-3")
	f.Add(true, "0-1-10", "0-2-10")
	f.Add(false, uuid80+":1-10", uuid80+":1-4:6-12,\n"+uuid57+":1")
	f.Add(false, uuid80+":2-3:6-7:10", uuid80+":1-12")
	f.Fuzz(func(t *testing.T, mariadb bool, activeStr, candidateStr string) {
		flavor := MySQL
		if mariadb {
			flavor = MariaDB
		}
		active, err := ParseGTIDs(flavor, activeStr)
		if err != nil {
			return
		}
		candidate, err := ParseGTIDs(flavor, candidateStr)
		if err != nil {
			return
		}
		out, errant := Errant(active, candidate)
		if errant != !out.IsEmpty() {
			t.Fatalf("errant = %v but result %q", errant, out)
		}
		if !Contains(candidate, out) {
			t.Fatalf("errant %q not within candidate %q", out, candidate)
		}
		if !errant && !Contains(active, candidate) {
			t.Fatalf("nothing errant, yet active %q does not contain candidate %q", active, candidate)
		}
		if flavor == MySQL && errant == Contains(active, candidate) {
			t.Fatalf("MySQL: errant = %v but Contains(active, candidate) = %v", errant, !errant)
		}
		if flavor == MySQL && errant && Contains(active, out) {
			t.Fatalf("MySQL: active %q contains the errant %q", active, out)
		}
		if m, ok := out.(*mysql.MariadbGTIDSet); ok {
			for d := range m.Sets {
				if _, ok := candidate.(*mysql.MariadbGTIDSet).Sets[d]; !ok {
					t.Fatalf("errant domain %d not in candidate", d)
				}
			}
		}
	})
}

func FuzzParseVariables(f *testing.F) {
	encode := func(m map[string]string) string {
		var b strings.Builder
		for k, v := range m {
			b.WriteString(k + "=" + strings.ReplaceAll(v, "\n", `\n`) + "\n")
		}
		return b.String()
	}
	f.Add(encode(mariaDBVars()))
	f.Add(encode(mySQLVars()))
	f.Fuzz(func(t *testing.T, data string) {
		vars := map[string]string{}
		for _, line := range strings.Split(data, "\n") {
			k, v, _ := strings.Cut(line, "=")
			vars[k] = strings.ReplaceAll(v, `\n`, "\n")
		}
		facts, err := parseVariables(vars)
		if err != nil {
			return
		}
		if facts.Flavor != MariaDB && facts.Flavor != MySQL {
			t.Fatalf("flavor %v without error", facts.Flavor)
		}
		if facts.Executed() == nil {
			t.Fatalf("no Executed set without error: %+v", facts)
		}
	})
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"8.0.22", "10.11.6-MariaDB-0+deb12u1-log", "5.5.5-10.11.6-MariaDB", "8.0", "", "999999999.1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		major, minor, patch, ok := parseVersion(s)
		if ok && (major < 0 || minor < 0 || patch < 0) {
			t.Fatalf("parseVersion(%q) = %d.%d.%d", s, major, minor, patch)
		}
		fl := DetectFlavor(s)
		if (fl == UnknownFlavor) != (strings.TrimSpace(s) == "") {
			t.Fatalf("DetectFlavor(%q) = %v", s, fl)
		}
		_ = replicaStatusQuery(fl, s)
	})
}

// TestFuzzSeedsDecode checks the fuzz encoding round-trips a fixture, so
// the seeds are the fixtures and not something else.
func TestFuzzSeedsDecode(t *testing.T) {
	fix := loadFixture(t, "mysql57_slave_running.json")
	cols, vals := fix.row(0)
	gotCols, gotVals := decodeStatusRow(strings.TrimSuffix(encodeStatusRow(cols, vals), "\n"))
	if len(gotCols) != len(cols) {
		t.Fatalf("%d columns, want %d", len(gotCols), len(cols))
	}
	for i := range cols {
		if gotCols[i] != cols[i] || gotVals[i] != vals[i] {
			t.Fatalf("column %d: %q=%v, want %q=%v", i, gotCols[i], gotVals[i], cols[i], vals[i])
		}
	}
	if _, err := os.Stat(fixtureDir); err != nil {
		t.Fatal(err)
	}
}
