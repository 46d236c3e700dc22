// Command connbench measures connect-per-request: what a web app without
// persistent connections (PHP's default) does for every page view. Each
// request opens a fresh MySQL connection, runs one unit of work, and closes
// it (COM_QUIT); no connection is ever reused.
//
//	go run ./scripts/connbench -addr 127.0.0.1:13310 -work select -clients 8 -duration 10s
//
// Work:
//
//	select  one point SELECT on a sysbench table (sbtestN, id random)
//	rw      BEGIN; a point SELECT; UPDATE of that row's k; COMMIT
//
// Statements go as text (COM_QUERY, parameters interpolated by the driver,
// as PHP's PDO does by default), so a request is: TCP connect, handshake,
// 1 (select) or 4 (rw) statements, COM_QUIT, close.
//
// -clients goroutines run requests back to back until -duration elapses or
// -requests have started, whichever comes first. Lock conflicts of rw (1213
// deadlock, 1205 lock wait timeout) are counted and the request is not
// retried; any other error stops the run with exit code 1. The result is
// printed in sysbench's words, so that scripts/bench.sh reads both alike:
//
//	transactions: 51234 (5123.40 per sec.)
//	95th percentile: 2.31
//	ignored errors: 0
//
// plus a line "connbench: ..." with the median and max latency. Every step
// is bounded: the dial (-timeout), each read and write (-timeout) and the
// whole run (-duration plus -timeout).
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

func main() {
	os.Exit(run())
}

type options struct {
	work      string
	tables    int
	tableSize int
}

func run() int {
	addr := flag.String("addr", "127.0.0.1:3306", "host:port to connect to (TCP)")
	user := flag.String("user", "app", "user name")
	password := flag.String("password", "apppass", "password")
	dbName := flag.String("db", "sbtest", "database holding the sysbench tables")
	work := flag.String("work", "select", "work per connection: select or rw")
	clients := flag.Int("clients", 8, "concurrent clients")
	duration := flag.Duration("duration", 10*time.Second, "how long to run")
	maxRequests := flag.Int64("requests", 10_000_000, "bound on the number of requests")
	tables := flag.Int("tables", 4, "sysbench tables sbtest1..N")
	tableSize := flag.Int("table-size", 10000, "rows per sysbench table (ids 1..N)")
	timeout := flag.Duration("timeout", 10*time.Second, "bound for the dial and for each read or write")
	flag.Parse()
	switch {
	case *work != "select" && *work != "rw":
		return usage("-work must be select or rw (got %q)", *work)
	case *clients < 1:
		return usage("-clients must be >= 1")
	case *duration <= 0 || *timeout <= 0:
		return usage("-duration and -timeout must be > 0")
	case *maxRequests < 1:
		return usage("-requests must be >= 1")
	case *tables < 1 || *tableSize < 1:
		return usage("-tables and -table-size must be >= 1")
	}

	cfg := mysql.NewConfig()
	cfg.User = *user
	cfg.Passwd = *password
	cfg.Net = "tcp"
	cfg.Addr = *addr
	cfg.DBName = *dbName
	cfg.Timeout = *timeout
	cfg.ReadTimeout = *timeout
	cfg.WriteTimeout = *timeout
	cfg.InterpolateParams = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return usage("%v", err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	// No pooling: every request dials, logs in, and closes its connection.
	db.SetMaxIdleConns(0)
	db.SetMaxOpenConns(*clients)

	o := options{work: *work, tables: *tables, tableSize: *tableSize}
	ctx, cancel := context.WithTimeout(context.Background(), *duration+*timeout)
	defer cancel()
	var (
		started  atomic.Int64
		ignored  atomic.Int64
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
		lat      = make([][]time.Duration, *clients)
	)
	begin := time.Now()
	end := begin.Add(*duration)
	for c := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c)+1, uint64(begin.UnixNano())))
			for time.Now().Before(end) && ctx.Err() == nil && started.Add(1) <= *maxRequests {
				t0 := time.Now()
				err := request(ctx, db, &o, rng)
				if err != nil {
					var me *mysql.MySQLError
					if errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205) {
						ignored.Add(1)
						continue
					}
					errOnce.Do(func() { firstErr = err })
					cancel()
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "FATAL: connbench:", firstErr)
		return 1
	}
	all := slices.Concat(lat...)
	if len(all) == 0 {
		fmt.Fprintln(os.Stderr, "FATAL: connbench: no request completed")
		return 1
	}
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	fmt.Printf("connbench: addr=%s work=%s clients=%d elapsed=%.2fs median=%.2fms max=%.2fms\n",
		*addr, *work, *clients, elapsed.Seconds(), ms(all[len(all)/2]), ms(all[len(all)-1]))
	fmt.Printf("    transactions:                        %d (%.2f per sec.)\n", len(all), float64(len(all))/elapsed.Seconds())
	fmt.Printf("    ignored errors:                      %d\n", ignored.Load())
	fmt.Printf("    reconnects:                          0\n")
	fmt.Printf("         95th percentile:                %.2f\n", ms(all[percentileIndex(len(all), 0.95)]))
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		fmt.Printf("    client CPU per request:              %.1f us\n", float64(cpu.Microseconds())/float64(len(all)))
	}
	return 0
}

// percentileIndex is the index of the q-quantile in n sorted values
// (nearest rank).
func percentileIndex(n int, q float64) int {
	i := int(float64(n)*q+0.999999) - 1
	return min(max(i, 0), n-1)
}

// request opens a connection, runs the work, and closes it.
func request(ctx context.Context, db *sql.DB, o *options, rng *rand.Rand) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer func() {
		// Close sends COM_QUIT; with no idle pool the connection is
		// closed, not kept.
		if cerr := conn.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	table := fmt.Sprintf("sbtest%d", 1+rng.IntN(o.tables))
	id := 1 + rng.IntN(o.tableSize)
	var c string
	if o.work == "select" {
		if err := conn.QueryRowContext(ctx, "SELECT c FROM "+table+" WHERE id=?", id).Scan(&c); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("point select: %w", err)
		}
		return nil
	}
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("BEGIN: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT c FROM "+table+" WHERE id=?", id).Scan(&c); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("point select: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "UPDATE "+table+" SET k=k+1 WHERE id=?", id); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("COMMIT: %w", err)
	}
	return nil
}

func usage(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "connbench: "+format+"\n", args...)
	return 2
}
