package proxy

import (
	"io"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// An idle session holds neither its client read buffer nor a first-read
// array, after commands small and larger than a first read.
func TestIdleScriptedSessionHoldsNoBuffer(t *testing.T) {
	ss := startScripted(t, mysql.CLIENT_PROTOCOL_41)
	ok := packet(1, appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0))
	for _, size := range []int{1, firstReadSize - headerLen, firstReadSize, 3*firstReadSize + 7} {
		body := make([]byte, size)
		body[0] = mysql.COM_QUERY
		for i := 1; i < size; i++ {
			body[i] = 'x'
		}
		query := packet(0, body)
		if _, err := ss.client.Write(query); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(query))
		if _, err := io.ReadFull(ss.node, got); err != nil {
			t.Fatalf("%d-byte command: %v", size, err)
		}
		if string(got) != string(query) {
			t.Fatalf("%d-byte command relayed as %d different bytes", size, len(got))
		}
		if _, err := ss.node.Write(ok); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(ss.client, make([]byte, len(ok))); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the session to wait for a command", func() bool {
			return ss.s.crd.wait.Load() == idleWaiting
		})
		checkNoBuffers(t, []*session{ss.s})
	}
}
