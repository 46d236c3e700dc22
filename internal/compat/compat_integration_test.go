package compat

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem/internal/testpair"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestGoSQLDriverSuiteThroughTandem runs go-sql-driver/mysql's own test
// suite (the version in go.mod) directly against node a and through the
// tandem binary with no [[user]] entries, and requires the same outcome for
// every test and subtest (`make compat` does the same and adds
// mysql-test-run).
func TestGoSQLDriverSuiteThroughTandem(t *testing.T) {
	testpair.Require(t)
	root, err := testpair.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	dir := t.TempDir()
	bin := filepath.Join(dir, "tandem")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tandem")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building tandem: %v\n%s", err, out)
	}
	modDir, err := ModuleDir(ctx, "", root, "github.com/go-sql-driver/mysql")
	if err != nil {
		t.Fatal(err)
	}

	adminA := Admin{Addr: testpair.Addr(testpair.A), User: testpair.AdminUser, Password: testpair.AdminPassword}
	adminB := Admin{Addr: testpair.Addr(testpair.B), User: testpair.AdminUser, Password: testpair.AdminPassword}
	prep, err := Prepare(ctx, adminA, adminB, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := prep.Restore(rctx); err != nil {
			t.Errorf("restoring the pair: %v", err)
		}
	})

	td := &Tandem{
		Bin: bin, Dir: filepath.Join(dir, "run"), Listen: freeAddr(t), Admin: freeAddr(t),
		NodeA: testpair.Addr(testpair.A), NodeB: testpair.Addr(testpair.B),
		User: testpair.AdminUser, Password: testpair.AdminPassword,
		// Node a's own certificate: the suite's TLS tests run through
		// tandem as directly.
		TLSCert: filepath.Join(testpair.Dir(), "a", "tls", "server-cert.pem"),
		TLSKey:  filepath.Join(testpair.Dir(), "a", "tls", "server-key.pem"),
	}
	if err := td.Start(ctx, GoUser, GoPassword, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := td.Stop(40 * time.Second); err != nil {
			t.Error(err)
		}
	})

	s := GoSQLDriver{Dir: modDir, User: GoUser, Password: GoPassword, DB: GoDB, Timeout: 5 * time.Minute}
	var res [2]Results
	var out [2]map[string]string
	for i, addr := range []string{testpair.Addr(testpair.A), td.Listen} {
		if err := prep.FreshTestDB(ctx, adminA); err != nil {
			t.Fatal(err)
		}
		res[i], out[i], err = s.Run(ctx, addr, filepath.Join(dir, []string{"direct.json", "tandem.json"}[i]))
		if err != nil {
			t.Fatal(err)
		}
	}
	row := Compare("go-sql-driver", res[0], res[1], nil)
	var b strings.Builder
	_ = WriteTable(&b, []Row{row})
	t.Logf("\n%s", b.String())
	// The suite is real: most of it must run and pass directly.
	if row.PassDirect < 300 {
		t.Fatalf("only %d go-sql-driver tests passed directly: the suite did not run as planned", row.PassDirect)
	}
	for _, d := range row.Diffs {
		t.Errorf("%s: %s directly, %s through tandem\n-- direct:\n%s\n-- via tandem:\n%s", d.Test, d.Direct, d.Via, out[0][d.Test], out[1][d.Test])
	}
	if errs := td.LogErrors(); len(errs) > 0 {
		t.Logf("tandem's warnings and errors:\n%s", strings.Join(errs, "\n"))
	}
}
