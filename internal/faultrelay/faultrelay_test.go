package faultrelay

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestRelay: the relay forwards bytes both ways, then in Refuse mode
// answers like a server with too many connections (the driver sees MySQL
// error 1040), and in Cut mode closes new connections at once.
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
	r, err := New(echo.Addr().String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	c, err := net.DialTimeout("tcp", r.Addr(), 2*time.Second)
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

	r.Set(Refuse)
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a relayed connection survived refuse mode")
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "x", "y", "tcp", r.Addr()
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

	r.Set(Cut)
	c2, err := net.DialTimeout("tcp", r.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c2.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("a new connection to a cut relay: read %d, %v; want it closed", n, err)
	}

	r.Set(Forward)
	c3, err := net.DialTimeout("tcp", r.Addr(), 2*time.Second)
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

// TestDelay: each direction is held about the delay, and a relay without
// a delay adds none of it.
func TestDelay(t *testing.T) {
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
			go func() { defer c.Close(); _, _ = bufio.NewReader(c).WriteTo(c) }()
		}
	}()
	const d = 50 * time.Millisecond
	r, err := New(echo.Addr().String(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.DialTimeout("tcp", r.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 2*d {
		t.Fatalf("round trip %v through a relay holding each way %v", took, d)
	}
}

// TestStall: a stalled relay passes nothing either way and closes nothing
// (the writer's own buffers fill and its writes block, as in a partition);
// Forward resumes the same connection with nothing lost.
func TestStall(t *testing.T) {
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		b, _ := io.ReadAll(c)
		got <- b
	}()
	r, err := New(srv.Addr().String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.DialTimeout("tcp", r.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("before ")); err != nil {
		t.Fatal(err)
	}
	r.Set(Stall)
	// Far more than the socket buffers on both sides of the relay hold:
	// the writes must block, not fail.
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	_ = c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	written := 0
	for range 64 {
		n, err := c.Write(chunk)
		written += n
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("a write into a stalled relay: %v; want it to block until its deadline", err)
			}
			break
		}
	}
	if written >= 64<<20 {
		t.Fatal("64 MiB went into a stalled relay")
	}
	select {
	case b := <-got:
		t.Fatalf("the server saw the connection end while stalled (%d bytes)", len(b))
	default:
	}
	r.Set(Forward)
	_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte(" after")); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	select {
	case b := <-got:
		want := 7 + written + 6
		if len(b) != want || !bytes.HasPrefix(b, []byte("before ")) || !bytes.HasSuffix(b, []byte(" after")) {
			t.Fatalf("the server got %d bytes; want %d, the same stream as sent", len(b), want)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("nothing arrived after the relay forwarded again")
	}
}
