package proxy

// Connect-per-request through tandem with and without pooled node
// sessions, and directly, on the real pair: 8 clients each connect, run
// one point SELECT and close, as a PHP page view does. Run with
//
//	go test -run '^$' -bench ConnectPerRequest -benchtime 1x -v ./proxy/
//
// Each of 5 rounds runs 2000 page views against each target in turn; the
// medians and their ratios are reported.
// tandem runs in the benchmark's own process (its CPU shares the 2 cores
// with the load generator, as a separate process would).

import (
	"context"
	"database/sql/driver"
	"os"
	"slices"
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
	targets := []struct{ name, addr string }{
		{"direct", testpair.Addr(testpair.A)}, {"tandem", plain.addr}, {"pooled", pooled.addr},
	}
	rates := map[string][]float64{}
	for round := range connectRounds {
		for _, target := range targets {
			conn, err := mysql.NewConnector(driverConfig(target.addr))
			if err != nil {
				b.Fatal(err)
			}
			self0, node0 := testpair.CPU(os.Getpid()), testpair.CPU(testpair.PID(b, testpair.A))
			rate := pageViews(b, conn, pageViewsPerRound)
			self1, node1 := testpair.CPU(os.Getpid()), testpair.CPU(testpair.PID(b, testpair.A))
			rates[target.name] = append(rates[target.name], rate)
			b.Logf("round %d %s: %.0f req/s; CPU per page view: %v load generator and tandem, %v node (pool %+v)", round, target.name, rate,
				(self1-self0)/pageViewsPerRound, (node1-node0)/pageViewsPerRound, pooled.PoolStats())
		}
	}
	for _, target := range targets {
		b.ReportMetric(median(rates[target.name]), target.name+"-req/s")
	}
	b.ReportMetric(median(rates["pooled"])/median(rates["direct"]), "pooled/direct")
	b.ReportMetric(median(rates["tandem"])/median(rates["direct"]), "tandem/direct")
}

// connectRounds is how many times each target runs, alternating, with
// pageViewsPerRound page views each time (b.N is not used: run with
// -benchtime 1x).
const (
	connectRounds     = 5
	pageViewsPerRound = 2000
)

// pageViews runs n page views, 8 clients at a time, and returns their rate.
func pageViews(b *testing.B, conn driver.Connector, n int) float64 {
	const clients = 8
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := onePageView(conn); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d requests failed", f, n)
	}
	return float64(n) / el.Seconds()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
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
