package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/hashicorp/go-hclog"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMySQLDriverLogsAsJSON: with the adapter installed, a line the driver
// itself logs (here: a server that closes the connection during the
// handshake) comes out as a JSON log line of tandem's logger, and nothing
// of it as plain text.
func TestMySQLDriverLogsAsJSON(t *testing.T) {
	var out lockedBuffer
	log := hclog.New(&hclog.LoggerOptions{Name: "tandem", JSONFormat: true, Output: &out})
	useMySQLLogger(log.Named("mysql"))

	// The adapter by itself.
	mysqlLogger{log.Named("mysql")}.Print("packets.go:58: ", "unexpected EOF")

	// The real driver, through a configuration made after the adapter.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// A greeting header announcing more bytes than follow, then EOF.
			_, _ = c.Write([]byte{0x40, 0, 0, 0, 10})
			c.Close()
		}
	}()
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User = "tcp", l.Addr().String(), "x"
	cfg.Timeout = 5 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err == nil {
		t.Fatal("ping through a broken server succeeded")
	}

	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("a log line is not JSON: %q (%v)", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) < 2 {
		t.Fatalf("want the adapter's line and the driver's own, got:\n%s", out.String())
	}
	for _, m := range lines {
		if m["@module"] != "tandem.mysql" || m["@level"] != "warn" {
			t.Errorf("line %v: want module tandem.mysql at warn", m)
		}
	}
	if msg := lines[0]["@message"]; msg != "packets.go:58: unexpected EOF" {
		t.Errorf("adapter message %q", msg)
	}
	if msg, _ := lines[1]["@message"].(string); !strings.Contains(msg, "EOF") {
		t.Errorf("driver message %q, want the driver's read error", msg)
	}
}
