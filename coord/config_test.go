package coord

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		c := DefaultConfig()
		c.Endpoints = []string{"127.0.0.1:2379", "http://etcd2:2379", "https://[::1]:2379"}
		c.ID = "app-1"
		return c
	}
	if c := good(); c.Validate() != nil {
		t.Fatalf("good config: %v", c.Validate())
	}
	cases := []struct {
		name, field string
		mod         func(*Config)
	}{
		{"no endpoints", "Endpoints", func(c *Config) { c.Endpoints = nil }},
		{"endpoint without port", "Endpoints", func(c *Config) { c.Endpoints = []string{"etcd1"} }},
		{"endpoint bad scheme", "Endpoints", func(c *Config) { c.Endpoints = []string{"unix://x:1"} }},
		{"endpoint with path", "Endpoints", func(c *Config) { c.Endpoints = []string{"http://e:1/v3"} }},
		{"prefix empty", "Prefix", func(c *Config) { c.Prefix = "" }},
		{"prefix relative", "Prefix", func(c *Config) { c.Prefix = "tandem" }},
		{"prefix trailing slash", "Prefix", func(c *Config) { c.Prefix = "/tandem/" }},
		{"prefix space", "Prefix", func(c *Config) { c.Prefix = "/tan dem" }},
		{"id empty", "ID", func(c *Config) { c.ID = "" }},
		{"id slash", "ID", func(c *Config) { c.ID = "a/b" }},
		{"id long", "ID", func(c *Config) { c.ID = strings.Repeat("x", 65) }},
		{"host long", "Host", func(c *Config) { c.Host = strings.Repeat("h", 256) }},
		{"admin not host:port", "Admin", func(c *Config) { c.Admin = "localhost" }},
		{"ttl fractional", "LeaseTTL", func(c *Config) { c.LeaseTTL = 1500 * time.Millisecond }},
		{"ttl zero", "LeaseTTL", func(c *Config) { c.LeaseTTL = 0 }},
		{"ttl huge", "LeaseTTL", func(c *Config) { c.LeaseTTL = 2 * time.Hour }},
		{"renew interval zero", "RenewInterval", func(c *Config) { c.RenewInterval = 0 }},
		{"renew timeout negative", "RenewTimeout", func(c *Config) { c.RenewTimeout = -1 }},
		{"margin zero", "Margin", func(c *Config) { c.Margin = 0 }},
		{"margin too small", "Margin", func(c *Config) { c.LeaseTTL = 60 * time.Second; c.Margin = 100 * time.Millisecond }},
		{"request timeout zero", "RequestTimeout", func(c *Config) { c.RequestTimeout = 0 }},
		{"dial timeout zero", "DialTimeout", func(c *Config) { c.DialTimeout = 0 }},
		{"poll zero", "PollInterval", func(c *Config) { c.PollInterval = 0 }},
		{"poll over ttl", "PollInterval", func(c *Config) { c.PollInterval = 2 * time.Second }},
		{"timing rule", "RenewInterval", func(c *Config) { c.RenewInterval = 500 * time.Millisecond }},
		{"timing rule timeout", "RenewInterval", func(c *Config) { c.RenewTimeout = 400 * time.Millisecond }},
		{"leader check zero", "LeaderCheckInterval", func(c *Config) { c.LeaderCheckInterval = 0 }},
		{"preferred leader list", "PreferredLeader", func(c *Config) { c.PreferredLeader = "a,b" }},
		{"cert without key", "CertFile/KeyFile", func(c *Config) { c.CertFile = "c.pem" }},
		{"user without password", "Username/Password", func(c *Config) { c.Username = "u" }},
		{"tls over http", "Endpoints", func(c *Config) { c.CAFile = "ca.pem" }},
	}
	for _, tc := range cases {
		c := good()
		tc.mod(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "coord: "+tc.field+":") {
			t.Errorf("%s: error %q does not name %s", tc.name, err, tc.field)
		}
	}
	// The rule holds exactly at the boundary.
	c := good()
	c.LeaseTTL, c.RenewInterval, c.RenewTimeout, c.Margin = 2*time.Second, time.Second, 450*time.Millisecond, 100*time.Millisecond
	if err := c.Validate(); err != nil {
		t.Fatalf("boundary: %v", err)
	}
}

func TestKeys(t *testing.T) {
	c := DefaultConfig()
	c.Prefix = "/t/prod"
	if c.memberKey("x") != "/t/prod/members/x" || c.coordinatorKey() != "/t/prod/coordinator" || c.decisionKey() != "/t/prod/decision" {
		t.Fatal(c.memberKey("x"), c.coordinatorKey(), c.decisionKey())
	}
}

func TestUseTLS(t *testing.T) {
	c := DefaultConfig()
	c.Endpoints = []string{"127.0.0.1:1"}
	if c.useTLS() {
		t.Fatal("plain endpoints use TLS")
	}
	c.Endpoints = []string{"https://e:1"}
	if !c.useTLS() {
		t.Fatal("https endpoint without TLS")
	}
	c.Endpoints, c.CAFile = []string{"e:1"}, "ca.pem"
	if !c.useTLS() {
		t.Fatal("CA file without TLS")
	}
}
