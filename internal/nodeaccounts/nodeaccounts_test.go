package nodeaccounts

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem/internal/nodetls"
	"github.com/tandemdb/tandem/internal/testpair"
)

func TestLoadReadsTheNodesAccountsWithoutRoles(t *testing.T) {
	testpair.Require(t)
	admin := testpair.AdminDB(t, testpair.A)
	for _, q := range []string{
		"DROP ROLE IF EXISTS tandem_acc_role",
		"CREATE ROLE tandem_acc_role",
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP ROLE IF EXISTS tandem_acc_role") })
	l := New([]Node{{Name: "a", Address: testpair.Addr(testpair.A)}}, testpair.AdminUser, testpair.AdminPassword)
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := l.Load(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range list {
		if a.User == "tandem_acc_role" {
			t.Fatalf("the role is listed as an account: %+v", a)
		}
		if a.User == testpair.AppUser && a.Host == "127.0.0.1" {
			found = true
			if a.Plugin != "mysql_native_password" || len(a.AuthString) != 41 || !strings.HasPrefix(a.AuthString, "*") {
				t.Fatalf("app account read as %+v", a)
			}
		}
	}
	if !found {
		t.Fatalf("no app@127.0.0.1 among %d accounts", len(list))
	}
	if _, err := l.Load(ctx, "nosuch"); err == nil {
		t.Fatal("a node that does not exist: no error")
	}
}

// TestLoadOverTLS: the accounts are read with the node's TLS settings: an
// admin account that REQUIRE SSL reads them with verify-full and is
// refused without TLS.
func TestLoadOverTLS(t *testing.T) {
	testpair.Require(t)
	admin := testpair.AdminDB(t, testpair.A)
	const acct = "'tls_accounts'@'127.0.0.1'"
	for _, q := range []string{
		"DROP USER IF EXISTS " + acct,
		"CREATE USER " + acct + " IDENTIFIED BY 'accpw' REQUIRE SSL",
		"GRANT SELECT ON mysql.* TO " + acct,
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP USER IF EXISTS " + acct) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, c := range []struct {
		name string
		tls  *nodetls.Client
	}{{"verify-full", testpair.TLS(t)}, {"off", nil}} {
		l := New([]Node{{Name: "a", Address: testpair.Addr(testpair.A), TLS: c.tls}}, "tls_accounts", "accpw")
		list, err := l.Load(ctx, "a")
		l.Close()
		if c.tls != nil && (err != nil || len(list) == 0) {
			t.Fatalf("%s: %d accounts, %v", c.name, len(list), err)
		}
		if c.tls == nil && (err == nil || !strings.Contains(err.Error(), "1045")) {
			t.Fatalf("%s: a REQUIRE SSL account read the accounts in plaintext: %v", c.name, err)
		}
	}
}

func TestLoadReadsPasswordExpired(t *testing.T) {
	testpair.Require(t)
	admin := testpair.AdminDB(t, testpair.A)
	for _, q := range []string{
		"DROP USER IF EXISTS tandem_acc_exp@'127.0.0.1'",
		"CREATE USER tandem_acc_exp@'127.0.0.1' IDENTIFIED BY 'x' PASSWORD EXPIRE",
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP USER IF EXISTS tandem_acc_exp@'127.0.0.1'") })
	l := New([]Node{{Name: "a", Address: testpair.Addr(testpair.A)}}, testpair.AdminUser, testpair.AdminPassword)
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := l.Load(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range list {
		if a.User == "tandem_acc_exp" || a.User == testpair.AppUser {
			seen[a.User] = a.PasswordExpired
		}
	}
	if e, ok := seen["tandem_acc_exp"]; !ok || !e {
		t.Fatalf("the account created with PASSWORD EXPIRE: listed %v, expired %v", ok, e)
	}
	if seen[testpair.AppUser] {
		t.Fatal("the app account is listed as expired")
	}
}
