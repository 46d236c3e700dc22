package proxy

// The session state that the response grammar tests found lost on a move,
// on the real pair: the statement MariaDB's id 0xffffffff names, and
// multi-statements turned on with COM_SET_OPTION. Each is first checked
// directly on node a (what the client expects), then through tandem across
// a move to node b.

import (
	"bytes"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/tandemdb/tandem/internal/testpair"
)

// lastStatementValue prepares two statements on c, executes the statement
// id 0xffffffff after move, and returns the value of the row it returned.
func lastStatementValue(t *testing.T, c *rawConn, move func()) []byte {
	t.Helper()
	for _, q := range []string{"SELECT 'first'", "SELECT 'second'"} {
		c.send(append([]byte{mysql.COM_STMT_PREPARE}, q...))
		if p := c.read(1)[0]; p[0] != 0 {
			t.Fatalf("prepare %q: % x", q, p)
		}
		c.read(2) // one column, EOF
	}
	move()
	c.send([]byte{mysql.COM_STMT_EXECUTE, 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0})
	if p := c.read(1)[0]; p[0] != 1 {
		e, _ := parseErr(p)
		t.Fatalf("execute of the last statement: % x (%+v); want one column", p, e)
	}
	rs := c.read(4)  // column, EOF, row, EOF
	return rs[2][2:] // header 0x00, NULL bitmap, then the value
}

func TestLastStatementIDAfterMove(t *testing.T) {
	p := startProxy(t, nil)
	defer p.Route("a")
	direct := lastStatementValue(t, dialRaw(t, testpair.Addr(testpair.A), 0), func() {})
	if !bytes.Equal(direct, lenStr(nil, "second")) {
		t.Fatalf("directly on node a, statement 0xffffffff returned %q; want the last prepared", direct)
	}
	moved := lastStatementValue(t, dialRaw(t, p.addr, 0), func() {
		if err := p.Route("b"); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(moved, direct) {
		t.Fatalf("through tandem, after a move, statement 0xffffffff returned %q; directly %q", moved, direct)
	}
}

// multiStatementsAfterSetOption turns multi-statements on with
// COM_SET_OPTION, then runs two statements in one COM_QUERY after move and
// returns the first packet of each answer.
func multiStatementsAfterSetOption(t *testing.T, c *rawConn, move func()) [][]byte {
	t.Helper()
	c.send([]byte{mysql.COM_SET_OPTION, mysql.MYSQL_OPTION_MULTI_STATEMENTS_ON, 0})
	if p := c.read(1)[0]; p[0] != 0xfe {
		t.Fatalf("COM_SET_OPTION: % x", p)
	}
	move()
	c.send(append([]byte{mysql.COM_QUERY}, "SELECT 1; SELECT 2"...))
	first := c.read(1)[0]
	if first[0] == 0xff {
		e, _ := parseErr(first)
		return [][]byte{[]byte(e.Message)}
	}
	rs := c.read(4) // column, EOF, row, EOF (more results)
	second := c.read(5)
	return [][]byte{first, rs[2], second[0], second[3]}
}

func TestSetOptionMultiStatementsAfterMove(t *testing.T) {
	p := startProxy(t, nil)
	defer p.Route("a")
	direct := multiStatementsAfterSetOption(t, dialRaw(t, testpair.Addr(testpair.A), mysql.CLIENT_MULTI_RESULTS), func() {})
	if len(direct) != 4 {
		t.Fatalf("directly on node a: %q; want two result sets", direct)
	}
	moved := multiStatementsAfterSetOption(t, dialRaw(t, p.addr, mysql.CLIENT_MULTI_RESULTS), func() {
		if err := p.Route("b"); err != nil {
			t.Fatal(err)
		}
	})
	if len(moved) != 4 {
		t.Fatalf("through tandem, after a move: %q; want two result sets as directly", moved)
	}
	for i := range direct {
		if !bytes.Equal(direct[i], moved[i]) {
			t.Fatalf("packet %d: directly % x, through tandem after a move % x", i, direct[i], moved[i])
		}
	}
}

// A client that leaves in the middle of a large result ends its session;
// the node is not reported as failed (which would make the failover
// monitor check it at once, and log a node failure).
func TestClientLeavingMidResultIsNotANodeFailure(t *testing.T) {
	failed := make(chan string, 8)
	p := startProxy(t, func(c *Config, _ []*Node) { c.NodeFailed = func(n string) { failed <- n } })
	c := dialRaw(t, p.addr, 0)
	c.send(append([]byte{mysql.COM_QUERY}, "SELECT REPEAT('x', 100000) FROM seq_1_to_2000"...))
	c.read(10) // the start of 200 MB
	c.conn.Close()
	waitFor(t, 60*time.Second, "the session to end", func() bool { return p.SessionCount() == 0 })
	select {
	case n := <-failed:
		t.Fatalf("NodeFailed(%q) for a client that left", n)
	default:
	}
}
