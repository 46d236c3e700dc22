// Command idleconns opens N MySQL connections that complete the login, pings
// each once, then holds them idle so that a proxy's resident memory per
// session can be measured (scripts/bench.sh uses it).
//
//	go run ./scripts/idleconns -addr 127.0.0.1:13310 -n 1000 -hold 120s
//
// It prints "ready N" on stdout once all N sessions are logged in and pinged,
// then holds them until stdin is closed, SIGINT/SIGTERM arrives, or -hold
// elapses (whichever comes first), closes them and exits 0. Any failure to
// open a session prints the error and exits 1. Every step is bounded in time.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

func main() {
	os.Exit(run())
}

func run() int {
	addr := flag.String("addr", "127.0.0.1:3306", "host:port to connect to (TCP)")
	user := flag.String("user", "app", "user name")
	password := flag.String("password", "apppass", "password")
	dbName := flag.String("db", "sbtest", "default database")
	n := flag.Int("n", 1000, "number of idle sessions to open")
	parallel := flag.Int("parallel", 16, "sessions opened concurrently")
	openTimeout := flag.Duration("open-timeout", 60*time.Second, "bound for opening all sessions")
	hold := flag.Duration("hold", 120*time.Second, "maximum time to hold the sessions")
	flag.Parse()
	if *n < 1 || *parallel < 1 {
		fmt.Fprintln(os.Stderr, "idleconns: -n and -parallel must be >= 1")
		return 2
	}

	cfg := mysql.NewConfig()
	cfg.User = *user
	cfg.Passwd = *password
	cfg.Net = "tcp"
	cfg.Addr = *addr
	cfg.DBName = *dbName
	cfg.Timeout = 5 * time.Second
	cfg.ReadTimeout = 10 * time.Second
	cfg.WriteTimeout = 10 * time.Second
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		return 2
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	db.SetMaxOpenConns(*n)
	db.SetMaxIdleConns(*n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	// Each session is a raw *sql.Conn held by this program, so database/sql
	// can neither share nor close it behind our back.
	conns := make([]*sql.Conn, *n)
	ctx, cancel := context.WithTimeout(context.Background(), *openTimeout)
	defer cancel()
	var (
		next     atomic.Int64
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < *parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *n || ctx.Err() != nil {
					return
				}
				c, err := db.Conn(ctx)
				if err == nil {
					err = c.PingContext(ctx)
					if err != nil {
						c.Close()
					}
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("session %d: %w", i+1, err) })
					cancel()
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	closeAll := func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("opening %d sessions: %w", *n, ctx.Err())
	}
	if firstErr != nil {
		opened := 0
		for _, c := range conns {
			if c != nil {
				opened++
			}
		}
		fmt.Fprintf(os.Stderr, "idleconns: %v (%d of %d open)\n", firstErr, opened, *n)
		closeAll()
		return 1
	}
	fmt.Printf("ready %d (%.2fs)\n", *n, time.Since(start).Seconds())

	// Hold until stdin closes, a signal arrives, or the bound elapses.
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	timer := time.NewTimer(*hold)
	defer timer.Stop()
	reason := ""
	select {
	case <-stdinClosed:
		reason = "stdin closed"
	case s := <-sigs:
		reason = s.String()
	case <-timer.C:
		reason = "hold time elapsed"
	}

	// Check the sessions are still alive before letting go: a proxy that
	// dropped idle sessions would make the memory figure meaningless.
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	dead := 0
	var lastErr error
	for _, c := range conns {
		if err := c.PingContext(pctx); err != nil {
			dead++
			lastErr = err
		}
	}
	closeAll()
	if dead > 0 {
		if errors.Is(lastErr, context.DeadlineExceeded) {
			lastErr = fmt.Errorf("pings timed out: %w", lastErr)
		}
		fmt.Fprintf(os.Stderr, "idleconns: %d of %d sessions dead at the end (%v): %v\n", dead, *n, reason, lastErr)
		return 1
	}
	fmt.Printf("closed %d (%s)\n", *n, reason)
	return 0
}
