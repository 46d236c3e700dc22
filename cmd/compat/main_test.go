package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad flags get a clear error and exit code 2, before the pair is touched.
func TestBadFlags(t *testing.T) {
	// A TLS test marked isolate would run through the wrong tandem.
	mtr := t.TempDir()
	for name, body := range map[string]string{
		"mariadb-test-run.pl": "",
		"main/ssl.test":       "--source include/have_ssl_communication.inc\n",
		"main/bool.test":      "SELECT 1;\n",
		"iso.list":            "main.bool pass\nmain.ssl pass isolate\n",
	} {
		path := filepath.Join(mtr, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-suites", "gosql,nope"}, `unknown suite "nope"`},
		{[]string{"-node-a", "carrier-pigeon"}, "-node-a must be socket or tcp"},
		{[]string{"-suites", "mtr", "-mtr-list", "/nonexistent/list"}, "/nonexistent/list"},
		{[]string{"-suites", "gosql", "-listen", "nowhere"}, "-listen"},
		{[]string{"-suites", "mtr", "-mtr-dir", mtr, "-mtr-list", filepath.Join(mtr, "iso.list")}, "main.ssl tests TLS to the server and cannot be marked isolate"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
		if strings.Contains(out.String(), "preparing the pair") {
			t.Errorf("%v: touched the pair", tc.args)
		}
	}
}
