package main

// Unit tests of the bench's own helpers; the bench itself runs on the real
// pair (make failover-bench).

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func TestLongestGap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := &workload{}
	for _, ms := range []int{-50, 10, 30, 530, 540, 600} {
		w.writes = append(w.writes, write{ids: []int64{int64(ms)}, end: at(ms)})
	}
	if got := w.longestGap(t0); got != 500*time.Millisecond {
		t.Fatalf("longest gap %v; want 500ms (30 -> 530)", got)
	}
	if got := w.longestGapEnd(t0); !got.Equal(at(530)) {
		t.Fatalf("gap ends at %v; want %v", got, at(530))
	}
	if got := w.firstWriteAfter(at(30)); !got.Equal(at(530)) {
		t.Fatalf("first write after 30 ms: %v", got)
	}
	if got := (&workload{}).longestGap(t0); got != 0 {
		t.Fatalf("no writes: gap %v", got)
	}
}

func TestRefusal(t *testing.T) {
	for reason, want := range map[string]string{
		"no node can take writes: node a failed: x; not promoting: node b may lack writes the active acknowledged (unsynced since ...)": "b unsynced",
		"no node can take writes: node a is down; not promoting: node a answers but could not be fenced (Error 1040)":                   "a alive, unfenceable",
		"no node can take writes: node a is down; not promoting: this tandem never saw node a answer, so ...":                           "a never seen by this tandem",
		"no node can take writes: x; not promoting: node b is unreachable too (<nil>)":                                                  "b not yet healthy",
		"no node can take writes: x; not promoting: something new":                                                                      "something new",
		"unexpected": "unexpected",
	} {
		if got := refusal(reason); got != want {
			t.Errorf("refusal(%q) = %q; want %q", reason, got, want)
		}
	}
}

// TestRelay: the relay forwards bytes both ways, then in "refuse" mode
// answers like a server with too many connections (the driver sees MySQL
// error 1040), and in "cut" mode closes new connections at once.
func TestRelay(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					_, _ = c.Write([]byte(strings.ToUpper(sc.Text()) + "\n"))
				}
			}()
		}
	}()
	r, err := newRelay(echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()

	c, err := net.DialTimeout("tcp", r.addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "HELLO\n" {
		t.Fatalf("through the relay: %q, %v", line, err)
	}

	r.set("refuse")
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a relayed connection survived refuse mode")
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "x", "y", "tcp", r.addr()
	cfg.Timeout, cfg.ReadTimeout = 2*time.Second, 2*time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = db.PingContext(ctx)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1040 {
		t.Fatalf("login through a refusing relay: %v; want MySQL error 1040", err)
	}

	r.set("cut")
	c2, err := net.DialTimeout("tcp", r.addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c2.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("a new connection to a cut relay: read %d, %v; want it closed", n, err)
	}

	r.set("")
	c3, err := net.DialTimeout("tcp", r.addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	_ = c3.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c3.Write([]byte("again\n"))
	if line, err := bufio.NewReader(c3).ReadString('\n'); err != nil || line != "AGAIN\n" {
		t.Fatalf("healed relay: %q, %v", line, err)
	}
}
