package proxy

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestPoolConfigValidateNamesTheField(t *testing.T) {
	for _, c := range []struct {
		pool PoolConfig
		want string
	}{
		{PoolConfig{Users: []string{"app"}, Size: -1}, "Pool.Size"},
		{PoolConfig{Users: []string{"app"}, MinIdle: -1}, "Pool.MinIdle"},
		{PoolConfig{Users: []string{"app"}, Size: 2, MinIdle: 3}, "Pool.MinIdle"},
		{PoolConfig{Users: []string{"app"}, MinIdle: 17}, "Pool.MinIdle"},
		{PoolConfig{Users: []string{"app"}, IdleTimeout: -time.Second}, "Pool.IdleTimeout"},
		{PoolConfig{Users: []string{"app"}, MaxAge: -time.Second}, "Pool.MaxAge"},
		{PoolConfig{Users: []string{"app", ""}}, "Pool.Users[1]"},
		{PoolConfig{Users: []string{"*"}, Size: 4, MinIdle: 4}, ""},
		{PoolConfig{}, ""},
	} {
		cfg := DefaultConfig()
		cfg.Pool = c.pool
		err := cfg.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want+":")) {
			t.Errorf("%+v: %v, want an error naming %q", c.pool, err, c.want)
		}
	}
}

func TestPoolOffByDefault(t *testing.T) {
	p, err := New(DefaultConfig(), []*Node{{Name: "a", Address: "127.0.0.1:1"}}, "a")
	if err != nil {
		t.Fatal(err)
	}
	if p.pool != nil || p.PoolStats() != (PoolStats{}) {
		t.Fatal("pooling is on without Pool.Users")
	}
	if g, _ := p.pool.greeting(); g != nil {
		t.Fatal("a greeting from tandem itself without pooling")
	}
}

func TestPooledGreetIDsAvoidNodeThreadIDs(t *testing.T) {
	for _, id := range []uint32{1, 2, 1<<31 - 1} {
		if g := pooledGreetID(id); g < 1<<31 || g&^(1<<31) != id {
			t.Errorf("pooledGreetID(%d) = %d", id, g)
		}
	}
}

// scriptedReset runs resetSession (the COM_RESET_CONNECTION path) against a
// fake node that answers with replies, and returns its error.
func scriptedReset(t *testing.T, replies ...[]byte) error {
	t.Helper()
	ours, node := net.Pipe()
	defer ours.Close()
	go func() {
		defer node.Close()
		br := bufio.NewReader(node)
		// COM_RESET_CONNECTION and the role and schema query.
		for range 2 {
			if _, _, err := readPacket(br, nil, 1<<16); err != nil {
				return
			}
		}
		for i, r := range replies {
			if _, err := node.Write(appendFrameSeq(r, byte(i+1))); err != nil {
				return
			}
		}
	}()
	be := &backend{node: &Node{Name: "fake"}, conn: ours, caps: requiredCaps | mysql.CLIENT_PLUGIN_AUTH, authed: time.Now()}
	_, err := resetSession(be, &loginParams{User: "app", DB: "app"}, time.Hour, 5*time.Second)
	return err
}

func appendFrameSeq(payload []byte, seq byte) []byte {
	b := appendFrame(nil, payload)
	b[3] = seq
	return b
}

// resultOf is a one-row result of two columns with values v1, v2 (text
// protocol, with EOF packets).
func resultOf(v1, v2 string) [][]byte {
	col := []byte{3, 'd', 'e', 'f', 0, 0, 0, 1, 'x', 0, 0x0c, 0x3f, 0, 1, 0, 0, 0, 8, 0x80, 0, 0, 0, 0}
	eof := []byte{0xfe, 0, 0, 2, 0}
	row := append([]byte{byte(len(v1))}, v1...)
	row = append(append(row, byte(len(v2))), v2...)
	return [][]byte{{2}, col, col, eof, row, eof}
}

func TestResetSessionAnswers(t *testing.T) {
	ok := appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, requiredCaps)
	if err := scriptedReset(t, append([][]byte{ok}, resultOf("1", "1")...)...); err != nil {
		t.Fatalf("clean reset: %v", err)
	}
	if err := scriptedReset(t, append([][]byte{ok}, resultOf("0", "1")...)...); !errors.Is(err, errRoleSet) {
		t.Fatalf("a role left: %v, want errRoleSet", err)
	}
	refused := appendErr(nil, newError(1047, "Unknown command"))
	var e *sqlError
	if err := scriptedReset(t, refused); !errors.As(err, &e) || e.Code != 1047 {
		t.Fatalf("reset refused: %v, want the node's error", err)
	}
	if err := scriptedReset(t, []byte{0x01, 0x02}); !errors.Is(err, errNodeProtocol) {
		t.Fatalf("garbage for an OK: %v, want errNodeProtocol", err)
	}
	if err := scriptedReset(t, ok, []byte{5}); !errors.Is(err, errNodeProtocol) {
		t.Fatalf("five columns: %v, want errNodeProtocol", err)
	}
	if err := scriptedReset(t, ok, []byte{2}); err == nil {
		t.Fatal("the node closed mid-result: no error")
	}
}
