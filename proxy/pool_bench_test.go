package proxy

// Connect-per-request through tandem with and without pooled node
// sessions, and directly, on the real pair: 8 clients each connect, run
// one point SELECT and close, as a PHP page view does. Run with
//
//	go test -run '^$' -bench ConnectPerRequest -benchtime 2000x -count 5 ./proxy/
//
// and compare the req/s medians. Targets alternate within each count.
// tandem runs in the benchmark's own process (its CPU shares the 2 cores
// with the load generator, as a separate process would).

import (
	"context"
	"database/sql/driver"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/testpair"
)

func BenchmarkConnectPerRequest(b *testing.B) {
	plain := startProxy(b, nil)
	pooled := startProxy(b, func(c *Config, _ []*Node) { c.Pool = PoolConfig{Users: []string{testpair.AppUser}} })
	setup := openDB(b, driverConfig(testpair.Addr(testpair.A)))
	mustExec(b, setup, "CREATE TABLE IF NOT EXISTS pool_bench (id INT PRIMARY KEY, v VARCHAR(32))")
	mustExec(b, setup, "INSERT IGNORE INTO pool_bench VALUES (1, 'one'), (2, 'two'), (3, 'three')")
	for _, target := range []struct{ name, addr string }{
		{"direct", testpair.Addr(testpair.A)}, {"tandem", plain.addr}, {"pooled", pooled.addr},
	} {
		b.Run(target.name, func(b *testing.B) {
			conn, err := mysql.NewConnector(driverConfig(target.addr))
			if err != nil {
				b.Fatal(err)
			}
			const clients = 8
			var next atomic.Int64
			var failed atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := onePageView(conn); err != nil {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d requests failed", n, b.N)
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
		})
	}
}

// onePageView connects, runs one point SELECT and closes.
func onePageView(conn driver.Connector) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := conn.Connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	rows, err := c.(driver.QueryerContext).QueryContext(ctx, "SELECT v FROM pool_bench WHERE id = 2", nil)
	if err != nil {
		return err
	}
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return err
	}
	return rows.Close()
}
