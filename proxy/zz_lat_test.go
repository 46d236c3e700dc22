package proxy

import (
	"context"
	"database/sql/driver"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/tandemdb/tandem/internal/testpair"
)

func TestZZLatency(t *testing.T) {
	pooled := startProxy(t, func(c *Config, _ []*Node) { c.Pool = PoolConfig{Users: []string{testpair.AppUser}} })
	plain := startProxy(t, nil)
	for _, addr := range []string{testpair.Addr(testpair.A), pooled.addr, plain.addr, testpair.Addr(testpair.A), pooled.addr, plain.addr} {
		conn, _ := mysql.NewConnector(driverConfig(addr))
		var tc, tq, tx time.Duration
		const n = 300
		for range n {
			ctx := context.Background()
			t0 := time.Now()
			c, err := conn.Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
			rows, err := c.(driver.QueryerContext).QueryContext(ctx, "SELECT v FROM pool_bench WHERE id = 2", nil)
			if err != nil {
				t.Fatal(err)
			}
			dest := make([]driver.Value, 1)
			rows.Next(dest)
			rows.Close()
			t2 := time.Now()
			c.Close()
			t3 := time.Now()
			tc += t1.Sub(t0)
			tq += t2.Sub(t1)
			tx += t3.Sub(t2)
		}
		t.Logf("%s: connect %v query %v close %v", addr, tc/n, tq/n, tx/n)
	}
}
