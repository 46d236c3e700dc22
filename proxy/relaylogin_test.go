package proxy

// A login tandem cannot check itself is relayed to the node (authRelay).
// These tests script the node's side of that exchange to fail the ways a
// real node can: it stalls (SIGSTOP, a cut link), or its connection ends
// in the middle (SIGKILL, a restart). The client must get one clear error
// within the login bound, never a hang, and tandem must go on serving.

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	mysqldriver "github.com/go-sql-driver/mysql"
)

// relayNode is a scripted node: it greets every connection, reads the
// handshake response tandem relays, then does what the test's step says.
type relayNode struct {
	addr  string
	steps chan func(c net.Conn, seq byte)
}

func startRelayNode(t *testing.T) *relayNode {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &relayNode{addr: l.Addr().String(), steps: make(chan func(net.Conn, byte), 8)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for id := uint32(700); ; id++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go func(c net.Conn, id uint32) {
				_ = c.SetDeadline(time.Now().Add(60 * time.Second))
				g := &greeting{Version: "10.11.0-scripted", ConnID: id, Salt: []byte("abcdefghij0123456789"),
					Caps: supportedCaps | requiredCaps, Collation: 45, AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}
				if writeRaw(c, 0, appendGreeting(nil, g)) != nil {
					return
				}
				_, seq, err := readPacket(c, nil, 1<<16)
				if err != nil {
					return
				}
				step := <-n.steps
				step(c, seq+1)
			}(c, id)
		}
	}()
	return n
}

func TestRelayedLoginNodeFailsMidExchange(t *testing.T) {
	node := startRelayNode(t)
	// No [[user]] and no account on the node that tandem knows: every
	// login is relayed for the node to decide.
	cfg := Config{
		LoginTimeout: time.Second,
		Accounts:     func(context.Context, string) ([]Account, error) { return nil, nil },
	}
	p, err := New(cfg, []*Node{{Name: "n", Address: node.addr}}, "n")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})

	login := func() error {
		c := mysqldriver.NewConfig()
		c.User, c.Passwd, c.Net, c.Addr = "nobody", "pw", "tcp", l.Addr().String()
		c.Timeout, c.ReadTimeout = 30*time.Second, 30*time.Second
		conn, err := mysqldriver.NewConnector(c)
		if err != nil {
			return err
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return db.PingContext(ctx)
	}
	cases := []struct {
		name string
		step func(c net.Conn, seq byte)
		want string
	}{
		{"node stalls", func(c net.Conn, seq byte) {
			// Says nothing; tandem's login bound must end the wait.
			_, _ = c.Read(make([]byte, 1))
		}, "tandem"},
		{"node closes", func(c net.Conn, seq byte) { c.Close() }, "tandem"},
		{"node closes after an auth switch", func(c net.Conn, seq byte) {
			// Asks the client for another plugin's answer, then dies
			// before it judges that answer.
			sw := append([]byte{0xfe}, "mysql_native_password\x00"...)
			sw = append(sw, "ABCDEFGHIJ9876543210\x00"...)
			if writeRaw(c, seq, sw) != nil {
				return
			}
			_, _, _ = readPacket(c, nil, 1<<16)
			c.Close()
		}, "tandem"},
		{"node refuses", func(c net.Conn, seq byte) {
			_ = writeRaw(c, seq, appendErr(nil, newError(1045, "Access denied for user 'nobody'@'localhost' (using password: YES)")))
		}, "Access denied for user 'nobody'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node.steps <- tc.step
			done := make(chan error, 1)
			go func() { done <- login() }()
			select {
			case err := <-done:
				var me *mysqldriver.MySQLError
				if err == nil || !errors.As(err, &me) || !strings.Contains(me.Message, tc.want) {
					t.Fatalf("login: %v; want a MySQL error mentioning %q", err, tc.want)
				}
				t.Logf("client got: %v", err)
			case <-time.After(40 * time.Second):
				t.Fatal("the client hung")
			}
		})
	}
	// tandem still serves: a node that accepts the relayed login.
	node.steps <- func(c net.Conn, seq byte) {
		if writeRaw(c, seq, appendOK(nil, stAC, 0)) != nil {
			return
		}
		// COM_PING, then COM_QUIT.
		if _, s, err := readPacket(c, nil, 1<<16); err == nil {
			_ = writeRaw(c, s+1, appendOK(nil, stAC, 0))
		}
		_, _, _ = readPacket(c, nil, 1<<16)
	}
	if err := login(); err != nil {
		t.Fatalf("a login after the failures: %v", err)
	}
}
