package compat

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// An excerpt of mysql-test-run's output (10.11, --extern), with a worker
// column as --parallel prints it and a combination name.
const mtrFixture = `Logging: mariadb-test-run.pl  --extern socket=/tmp/x.sock main.1st main.alias
MariaDB Version 10.11.14
 - skipping SSL, mysqld not compiled with SSL
==============================================================================

TEST                                      RESULT   TIME (ms) or COMMENT
--------------------------------------------------------------------------

main.file_contents                       [ disabled ]  MDEV-6526 these files are not installed anymore
main.insert_debug                        [ skipped ]  Requires debug build
worker[01] Using MTR_BUILD_THREAD 300, with reserved ports 19000..19029
main.bool                                [ pass ]     12
main.1st                                 w1 [ fail ]
        Test ended at 2026-11-30 12:08:52

--- /usr/share/mysql/mysql-test/main/1st.result
+++ /usr/share/mysql/mysql-test/main/1st.reject
+gotest

 - saving '/tmp/var/log/main.1st/' to '/tmp/var/log/main.1st/'
main.alias 'innodb'                      w2 [ pass ]    308
main.flaky                               [ fail ]
main.flaky                               [ retry-pass ]   5
--------------------------------------------------------------------------
The servers were restarted 0 times
Completed: Failed 1/5 tests, 80.00% were successful.
`

func TestParseMTR(t *testing.T) {
	res, det, err := ParseMTR(strings.NewReader(mtrFixture))
	if err != nil {
		t.Fatal(err)
	}
	want := Results{
		"main.file_contents":  Skip,
		"main.insert_debug":   Skip,
		"main.bool":           Pass,
		"main.1st":            Fail,
		"main.alias 'innodb'": Pass,
		"main.flaky":          Pass,
	}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("results:\n got %v\nwant %v", res, want)
	}
	if !strings.Contains(det["main.1st"], "+gotest") || strings.Contains(det["main.1st"], "main.alias") {
		t.Fatalf("details of main.1st: %q", det["main.1st"])
	}
	if det["main.insert_debug"] != "Requires debug build" {
		t.Fatalf("skip reason: %q", det["main.insert_debug"])
	}
}

func TestParseGoTestJSON(t *testing.T) {
	in := `{"Action":"start","Package":"github.com/go-sql-driver/mysql"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0}
{"Action":"run","Package":"p","Test":"TestB/sub"}
{"Action":"output","Package":"p","Test":"TestB/sub","Output":"    x_test.go:1: boom\n"}
{"Action":"fail","Package":"p","Test":"TestB/sub","Elapsed":0}
{"Action":"fail","Package":"p","Test":"TestB","Elapsed":0}
{"Action":"skip","Package":"p","Test":"TestC","Elapsed":0}
{"Action":"fail","Package":"p","Elapsed":1}
`
	res, out, err := ParseGoTestJSON(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Results{"TestA": Pass, "TestB/sub": Fail, "TestB": Fail, "TestC": Skip}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("got %v want %v", res, want)
	}
	if !strings.Contains(out["TestB/sub"], "boom") {
		t.Fatalf("output: %q", out["TestB/sub"])
	}
	if _, _, err := ParseGoTestJSON(strings.NewReader("# github.com/x\nbuild failed\n")); err == nil {
		t.Fatal("non-JSON output accepted")
	}
}

func TestCompare(t *testing.T) {
	direct := Results{"a": Pass, "b": Fail, "c": Skip, "d": Pass}
	via := Results{"a": Pass, "b": Pass, "c": Skip}
	row := Compare("s", direct, via, []string{"a", "b", "c", "d", "e"})
	if row.Tests != 5 || row.PassDirect != 2 || row.PassVia != 2 || row.SkipDirect != 1 || row.FailDirect != 1 {
		t.Fatalf("counts: %+v", row)
	}
	want := []Diff{{"b", Fail, Pass}, {"d", Pass, Missing}}
	if !reflect.DeepEqual(row.Diffs, want) {
		t.Fatalf("diffs %v want %v", row.Diffs, want)
	}
	var b strings.Builder
	if err := WriteTable(&b, []Row{row, Compare("same", direct, direct, nil)}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"| s | 5 | 2 | 2 |", "b (fail direct, pass via tandem), d (pass direct, missing via tandem)", "| same | 4 | 2 | 2 | 1 / 1 | 1 / 1 | none |"} {
		if !strings.Contains(b.String(), s) {
			t.Fatalf("table lacks %q:\n%s", s, b.String())
		}
	}
}

func TestBootstrapStatements(t *testing.T) {
	src := "-- comment\ndelimiter ||;\nuse mtr||\nCREATE TABLE t (\n  a INT\n) ENGINE=MyISAM||\nCREATE PROCEDURE p()\nBEGIN\n  --SELECT 1;\n  SELECT 2;\nEND||\nINSERT INTO t VALUES ('@HOSTNAME@')||\n"
	got := bootstrapStatements(src)
	want := []string{"use mtr", "CREATE TABLE t (\n  a INT\n) ENGINE=MyISAM", "CREATE PROCEDURE p()\nBEGIN\n  SELECT 2;\nEND", "INSERT INTO t VALUES (localhost)"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestReadListIsolate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list")
	if err := os.WriteFile(path, []byte("# a comment\nmain.a pass\n\nmain.b pass isolate\nmain.c skip\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests, isolated, err := ReadList(path)
	if err != nil || !slices.Equal(tests, []string{"main.a", "main.c"}) || !slices.Equal(isolated, []string{"main.b"}) {
		t.Fatalf("ReadList: %q, %q, %v", tests, isolated, err)
	}
	if err := os.WriteFile(path, []byte("# nothing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadList(path); err == nil {
		t.Fatal("an empty list was taken")
	}
}
