package proxy

import (
	"strings"
	"testing"
	"time"
)

func TestPoolConfigValidateNamesTheField(t *testing.T) {
	for _, c := range []struct {
		pool PoolConfig
		want string
	}{
		{PoolConfig{Users: []string{"app"}, Size: -1}, "Pool.Size"},
		{PoolConfig{Users: []string{"app"}, MinIdle: -1}, "Pool.MinIdle"},
		{PoolConfig{Users: []string{"app"}, Size: 2, MinIdle: 3}, "Pool.MinIdle"},
		{PoolConfig{Users: []string{"app"}, MinIdle: 17}, "Pool.MinIdle"},
		{PoolConfig{Users: []string{"app"}, IdleTimeout: -time.Second}, "Pool.IdleTimeout"},
		{PoolConfig{Users: []string{"app"}, MaxAge: -time.Second}, "Pool.MaxAge"},
		{PoolConfig{Users: []string{"app", ""}}, "Pool.Users[1]"},
		{PoolConfig{Users: []string{"*"}, Size: 4, MinIdle: 4}, ""},
		{PoolConfig{}, ""},
	} {
		cfg := DefaultConfig()
		cfg.Pool = c.pool
		err := cfg.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want+":")) {
			t.Errorf("%+v: %v, want an error naming %q", c.pool, err, c.want)
		}
	}
}

func TestPoolOffByDefault(t *testing.T) {
	p, err := New(DefaultConfig(), []*Node{{Name: "a", Address: "127.0.0.1:1"}}, "a")
	if err != nil {
		t.Fatal(err)
	}
	if p.pool != nil || p.PoolStats() != (PoolStats{}) {
		t.Fatal("pooling is on without Pool.Users")
	}
	if g, _ := p.pool.greeting(); g != nil {
		t.Fatal("a greeting from tandem itself without pooling")
	}
}

func TestPooledGreetIDsAvoidNodeThreadIDs(t *testing.T) {
	for _, id := range []uint32{1, 2, 1<<31 - 1} {
		if g := pooledGreetID(id); g < 1<<31 || g&^(1<<31) != id {
			t.Errorf("pooledGreetID(%d) = %d", id, g)
		}
	}
}
