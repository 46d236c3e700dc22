package main

import (
	"bytes"
	"strings"
	"testing"
)

// Bad flags get a clear error and exit code 2, before the pair is touched.
func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-suites", "gosql,nope"}, `unknown suite "nope"`},
		{[]string{"-node-a", "carrier-pigeon"}, "-node-a must be socket or tcp"},
		{[]string{"-suites", "mtr", "-mtr-list", "/nonexistent/list"}, "/nonexistent/list"},
		{[]string{"-suites", "gosql", "-listen", "nowhere"}, "-listen"},
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
