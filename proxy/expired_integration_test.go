package proxy

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	gmysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/tandemdb/tandem/internal/testpair"
)

// expiredAccounts is an Accounts hook reading mysql.user on the pair's nodes
// with password_expired, as internal/nodeaccounts does; none: a hook that
// finds no account, so that the node authenticates every client itself.
func expiredAccounts(t *testing.T, none bool) func(ctx context.Context, node string) ([]Account, error) {
	dbs := map[string]*sql.DB{"a": testpair.AdminDB(t, testpair.A), "b": testpair.AdminDB(t, testpair.B)}
	return func(ctx context.Context, node string) ([]Account, error) {
		if none {
			return []Account{}, nil
		}
		rows, err := dbs[node].QueryContext(ctx, "SELECT User, Host, plugin, authentication_string, password_expired FROM mysql.user WHERE is_role = 'N'")
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var list []Account
		for rows.Next() {
			var a Account
			var exp string
			if err := rows.Scan(&a.User, &a.Host, &a.Plugin, &a.AuthString, &exp); err != nil {
				return nil, err
			}
			a.PasswordExpired = exp == "Y"
			list = append(list, a)
		}
		return list, rows.Err()
	}
}

// expiredClient is a hand-driven client that can set
// CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS, which no Go driver does.
type expiredClient struct {
	t    *testing.T
	conn net.Conn
}

// loginExpired logs in to addr as user; it returns the client, or nil and
// the error code of the login's ERR.
func loginExpired(t *testing.T, addr, user, password string, canHandle bool) (*expiredClient, uint16) {
	t.Helper()
	conn, g := dialGreeting(t, "tcp", addr)
	caps := (requiredCaps | clientPluginAuth) & g.Caps
	if canHandle {
		if g.Caps&gmysql.CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS == 0 {
			t.Fatalf("%s does not offer CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS", addr)
		}
		caps |= gmysql.CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS
	}
	auth, _ := scramble(g.AuthPlugin, g.Salt, password)
	resp := appendHandshakeResponse(nil, &handshakeResponse{Caps: caps, MaxPacket: 1 << 30, Collation: 45,
		User: user, Auth: auth, Plugin: g.AuthPlugin})
	if err := writeRaw(conn, 1, resp); err != nil {
		t.Fatal(err)
	}
	for {
		p, _, err := readPacket(conn, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		switch p[0] {
		case 1:
			continue // caching_sha2 fast-auth notice
		case 0:
			return &expiredClient{t: t, conn: conn}, 0
		case 0xff:
			return nil, binary.LittleEndian.Uint16(p[1:])
		}
		t.Fatalf("login as %s: unexpected packet %q", user, p)
	}
}

// run sends a COM_QUERY and returns "ok", "row <value>" or "error <code>",
// or "closed" when the connection ends instead.
func (c *expiredClient) run(q string) string {
	c.t.Helper()
	if err := writeRaw(c.conn, 0, append([]byte{gmysql.COM_QUERY}, q...)); err != nil {
		return "closed"
	}
	var pk [][]byte
	for {
		p, _, err := readPacket(c.conn, nil, 0)
		if err != nil {
			return "closed"
		}
		switch {
		case len(pk) == 0 && p[0] == 0x00:
			return "ok"
		case p[0] == 0xff:
			return fmt.Sprintf("error %d", binary.LittleEndian.Uint16(p[1:]))
		}
		pk = append(pk, p)
		if len(pk) >= 5 && p[0] == 0xfe && len(p) < 9 { // count, column, EOF, row, EOF
			v, _, _ := lenEncBytes(pk[3], 0)
			return "row " + string(v)
		}
	}
}

// expiredOutcome is what a client sees of an expired account: the login,
// a SELECT (1820 in sandbox mode), a SET of a user variable (allowed), and
// when asked SET PASSWORD to the same password, then a SELECT again. The
// caller expires the account again afterwards.
func expiredOutcome(t *testing.T, addr string, canHandle, setPassword bool) string {
	c, code := loginExpired(t, addr, "acc_exp", "pw-exp", canHandle)
	if c == nil {
		return fmt.Sprintf("login error %d", code)
	}
	out := "login ok; SELECT: " + c.run("SELECT 1") + "; SET @v: " + c.run("SET @v = 1")
	if setPassword {
		out += "; SET PASSWORD: " + c.run("SET PASSWORD = PASSWORD('pw-exp')") + "; SELECT: " + c.run("SELECT 2")
	}
	return out
}

// TestExpiredPasswordAsDirectly: an account created with PASSWORD EXPIRE
// logs in through tandem as directly, for a client with and without
// CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS, with disconnect_on_expired_password
// off (sandbox mode either way) and on (1862 without the flag), whether
// tandem checks the password (a node account it has read) or the node does
// (an account tandem does not find).
func TestExpiredPasswordAsDirectly(t *testing.T) {
	checked := startProxy(t, func(c *Config, _ []*Node) {
		c.Users, c.Accounts = nil, expiredAccounts(t, false)
	})
	relayed := startProxy(t, func(c *Config, _ []*Node) {
		c.Users, c.Accounts = nil, expiredAccounts(t, true)
	})
	admin := testpair.AdminDB(t, testpair.A)
	runtimeAccounts(t, map[string]string{"'acc_exp'@'127.0.0.1'": "IDENTIFIED BY 'pw-exp' PASSWORD EXPIRE"})
	var was int
	if err := admin.QueryRow("SELECT @@GLOBAL.disconnect_on_expired_password").Scan(&was); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(fmt.Sprintf("SET GLOBAL disconnect_on_expired_password = %d", was)) })
	for _, disconnect := range []int{0, 1} {
		mustExec(t, admin, fmt.Sprintf("SET GLOBAL disconnect_on_expired_password = %d", disconnect))
		for _, canHandle := range []bool{true, false} {
			for _, setPassword := range []bool{false, true} {
				name := fmt.Sprintf("disconnect=%d/flag=%v/setpassword=%v", disconnect, canHandle, setPassword)
				t.Run(name, func(t *testing.T) {
					var outs [3]string
					for i, addr := range []string{testpair.Addr(testpair.A), checked.addr, relayed.addr} {
						outs[i] = expiredOutcome(t, addr, canHandle, setPassword)
						mustExec(t, admin, "ALTER USER 'acc_exp'@'127.0.0.1' PASSWORD EXPIRE")
					}
					t.Logf("directly: %s", outs[0])
					if outs[1] != outs[0] || outs[2] != outs[0] {
						t.Fatalf("directly: %s\ntandem checking: %s\nnode checking: %s", outs[0], outs[1], outs[2])
					}
				})
			}
		}
	}
}

// TestSandboxedSessionDoesNotMove: a session in sandbox mode is closed with
// 1927 when it would move to the other node, whether tandem knew the
// account expired at login or learnt it from the node's 1820; a session of
// the same account after SET PASSWORD (logged in again, no longer expired)
// moves.
func TestSandboxedSessionDoesNotMove(t *testing.T) {
	for _, known := range []bool{true, false} {
		t.Run(fmt.Sprintf("known=%v", known), func(t *testing.T) {
			p := startProxy(t, func(c *Config, _ []*Node) {
				c.Users = nil
				accounts := expiredAccounts(t, false)
				c.Accounts = func(ctx context.Context, node string) ([]Account, error) {
					list, err := accounts(ctx, node)
					for i := range list {
						list[i].PasswordExpired = list[i].PasswordExpired && known
					}
					return list, err
				}
			})
			runtimeAccounts(t, map[string]string{"'acc_exp'@'127.0.0.1'": "IDENTIFIED BY 'pw-exp' PASSWORD EXPIRE"})
			bdb := testpair.AdminDB(t, testpair.B)
			waitFor(t, 30*time.Second, "the account on node b", func() bool {
				var n int
				err := bdb.QueryRow("SELECT COUNT(*) FROM mysql.user WHERE User = 'acc_exp' AND password_expired = 'Y'").Scan(&n)
				return err == nil && n == 1
			})
			c, code := loginExpired(t, p.addr, "acc_exp", "pw-exp", true)
			if c == nil {
				t.Fatalf("login: error %d", code)
			}
			if !known {
				if got := c.run("SELECT 1"); got != "error 1820" {
					t.Fatalf("SELECT in sandbox mode: %s", got)
				}
			}
			if err := p.Route("b"); err != nil {
				t.Fatal(err)
			}
			defer p.Route("a")
			if got := c.run("SET @v = 1"); got != "error 1927" {
				t.Fatalf("the sandboxed session's next command after the route changed: %s, want error 1927", got)
			}
			if got := c.run("SET @v = 1"); got != "closed" {
				t.Fatalf("the sandboxed session after its 1927: %s, want closed", got)
			}
		})
	}
}
