package proxy

// Idle sessions on the real pair: what an idle session holds, parking after
// a burst of logins (idlemem.go), and parking racing with commands.

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	gmysql "github.com/go-mysql-org/go-mysql/mysql"
)

// idleSessions returns the logged-in sessions of p whose goroutine waits
// for the client's next command, and how many sessions p has.
func idleSessions(p *testProxy) (idle []*session, all int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.sessions {
		if st := s.crd.wait.Load(); st == idleWaiting || st == idleParked {
			idle = append(idle, s)
		}
	}
	return idle, len(p.sessions)
}

// checkNoBuffers fails if an idle session holds a read buffer: the pooled
// client reader, or the array the first bytes of a command land in. The
// session's wait state (an atomic the session sets after letting go of
// them) orders these reads after its writes.
func checkNoBuffers(t *testing.T, idle []*session) {
	t.Helper()
	for _, s := range idle {
		if s.cr != nil {
			t.Errorf("idle session %d holds a client read buffer (%d bytes)", s.id, s.cr.Size())
		}
		if s.crd.first != nil || s.crd.pending != nil {
			t.Errorf("idle session %d holds a first-read array (%d bytes pending)", s.id, len(s.crd.pending))
		}
		// Order these reads before the session's writes once its
		// next command arrives (the session swaps the same atomic).
		st := s.crd.wait.Load()
		s.crd.wait.CompareAndSwap(st, st)
	}
}

// resumedGoroutines counts the goroutines in Proxy.resumeSession's wait.
func resumedGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "proxy.(*Proxy).resumeSession(")
}

// After a burst of logins, the idle sessions are parked on new goroutines
// and hold no read buffer, before and after parking; each then serves
// commands, short and longer than a first read, and is idle without a
// buffer again.
func TestIdleSessionsParkAfterBurst(t *testing.T) {
	p := startProxy(t, nil)
	n := burstLogins + 16
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dialRaw(t, p.addr, 0)
		conns[i].send([]byte{gmysql.COM_PING})
		if r := conns[i].read(1)[0]; r[0] != 0 {
			t.Fatalf("session %d: ping answered %x", i, r)
		}
	}
	waitFor(t, 30*time.Second, "a trim after the burst of logins", func() bool {
		return p.trim.trims.Load() >= 1
	})
	var idle []*session
	waitFor(t, 10*time.Second, "every session idle", func() bool {
		var all int
		idle, all = idleSessions(p)
		return len(idle) == n && all == n
	})
	checkNoBuffers(t, idle)
	if got := p.trim.parked.Load(); got < int64(n) {
		t.Fatalf("%d sessions parked; want %d", got, n)
	}
	if got := resumedGoroutines(); got < n {
		t.Fatalf("%d sessions wait on a resumed goroutine; want %d", got, n)
	}

	long := strings.Repeat("x", 3*firstReadSize)
	for i, c := range conns {
		c.send(append([]byte{gmysql.COM_QUERY}, "SELECT '"+long+"'"...))
		pkts := readResultSet(t, c)
		if !strings.Contains(string(pkts[len(pkts)-2]), long) {
			t.Fatalf("session %d: the long statement's row is missing", i)
		}
		c.send(append([]byte{gmysql.COM_QUERY}, fmt.Sprintf("SELECT %d", i)...))
		pkts = readResultSet(t, c)
		if got := string(pkts[len(pkts)-2][1:]); got != fmt.Sprint(i) {
			t.Fatalf("session %d: SELECT %d returned %q", i, i, got)
		}
	}
	waitFor(t, 10*time.Second, "every session idle again", func() bool {
		var all int
		idle, all = idleSessions(p)
		return len(idle) == n && all == n
	})
	checkNoBuffers(t, idle)
	waitFor(t, 10*time.Second, "no client read buffer held", func() bool {
		return p.clientBufsHeld.Load() == 0
	})
}

// Parking races with commands arriving: sessions running queries back to
// back while their waits are interrupted again and again lose no command
// and see no error.
func TestParkingRacesWithCommands(t *testing.T) {
	p := startProxy(t, nil)
	db := openDB(t, driverConfig(p.addr))
	const clients, queries = 8, 300
	db.SetMaxOpenConns(clients)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	errs := make(chan error, clients)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := db.Conn(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			for q := 0; q < queries; q++ {
				var got string
				want := fmt.Sprintf("%d-%d-%s", c, q, strings.Repeat("y", q%3*firstReadSize))
				if err := conn.QueryRowContext(ctx, "SELECT ?", want).Scan(&got); err != nil {
					errs <- fmt.Errorf("client %d, query %d: %w", c, q, err)
					return
				}
				if got != want {
					errs <- fmt.Errorf("client %d, query %d: got %.40q, want %.40q", c, q, got, want)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	rounds := 0
	for running := true; running; rounds++ {
		select {
		case <-done:
			running = false
		case <-ctx.Done():
			t.Fatal("queries did not finish within 120s")
		default:
			p.parkIdle()
		}
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p.trim.parked.Load() == 0 {
		t.Fatalf("no session parked in %d rounds", rounds)
	}
	t.Logf("%d parking rounds, %d sessions parked", rounds, p.trim.parked.Load())
}
