// Package config reads tandem's TOML configuration file and validates it
// up front: every error names the key at fault.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/tandemdb/tandem/admin"
	"github.com/tandemdb/tandem/alert"
	"github.com/tandemdb/tandem/coord"
	"github.com/tandemdb/tandem/internal/nodetls"
)

// File is the whole configuration file.
type File struct {
	Log      Log      `toml:"log"`
	Proxy    Proxy    `toml:"proxy"`
	Users    []User   `toml:"user"`
	Nodes    []Node   `toml:"node"`
	Failover Failover `toml:"failover"`
	Admin    Admin    `toml:"admin"`
	Alert    Alert    `toml:"alert"`
	Pool     Pool     `toml:"pool"`
	// Etcd, when its endpoints are set, makes several tandems agree
	// through etcd; absent, tandem decides alone as a single instance.
	Etcd Etcd `toml:"etcd"`
}

// Etcd is the [etcd] section: several tandems (one per app server) agree
// through one etcd cluster (see package coord). Without endpoints the
// section is off and tandem runs as a single instance.
type Etcd struct {
	// Endpoints are the etcd members' client addresses (host:port or
	// http(s)://host:port); list all three.
	Endpoints []string `toml:"endpoints"`
	// Prefix is the key prefix of one cluster of tandems. Default /tandem.
	Prefix string `toml:"prefix"`
	// ID is this tandem's stable identity, unique within the prefix
	// (letters, digits, "._-"). Required.
	ID string `toml:"id"`
	// Host is free text shown in status. Default: the machine's hostname.
	Host string `toml:"host"`
	// AdminAddress is where other tandems reach this tandem's admin API
	// (host:port). Default: admin.listen.
	AdminAddress string `toml:"admin_address"`
	// LeaseTTL, whole seconds: a tandem that cannot renew its lease for
	// this long stops routing. Default 1s (etcd with
	// --election-timeout=500ms or less; etcd's default needs 2s).
	LeaseTTL       Duration `toml:"lease_ttl"`
	RenewInterval  Duration `toml:"renew_interval"`  // default 250ms
	RenewTimeout   Duration `toml:"renew_timeout"`   // default 300ms
	Margin         Duration `toml:"margin"`          // default 100ms
	RequestTimeout Duration `toml:"request_timeout"` // default 1s
	DialTimeout    Duration `toml:"dial_timeout"`    // default 2s
	// PreferredLeader is the etcd member name (--name) of the witness: the
	// coordinator keeps etcd's raft leader there, so that an app server's
	// death never also costs an etcd election. Optional.
	PreferredLeader string `toml:"preferred_leader"`
	// CAFile verifies etcd's certificate; CertFile and KeyFile (both or
	// neither) authenticate this tandem.
	CAFile   string `toml:"ca_file"`
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// Username for etcd's authentication, with exactly one of password,
	// password_env, password_file.
	Username     string `toml:"username"`
	Password     string `toml:"password"`
	PasswordEnv  string `toml:"password_env"`
	PasswordFile string `toml:"password_file"`

	secret string
}

// Enabled reports whether the [etcd] section is in use.
func (e *Etcd) Enabled() bool { return len(e.Endpoints) > 0 }

// CoordConfig converts the section for package coord (valid after Validate).
func (e *Etcd) CoordConfig() coord.Config {
	c := coord.DefaultConfig()
	c.Endpoints = e.Endpoints
	c.Prefix, c.ID, c.Host, c.Admin = e.Prefix, e.ID, e.Host, e.AdminAddress
	c.LeaseTTL, c.RenewInterval, c.RenewTimeout = e.LeaseTTL.Duration, e.RenewInterval.Duration, e.RenewTimeout.Duration
	c.Margin, c.RequestTimeout, c.DialTimeout = e.Margin.Duration, e.RequestTimeout.Duration, e.DialTimeout.Duration
	c.PreferredLeader = e.PreferredLeader
	c.CAFile, c.CertFile, c.KeyFile = e.CAFile, e.CertFile, e.KeyFile
	c.Username, c.Password = e.Username, e.secret
	return c
}

// etcdKeys maps coord's field names to this file's keys in errors.
var etcdKeys = strings.NewReplacer("coord: Endpoints", "etcd.endpoints", "coord: Prefix", "etcd.prefix",
	"coord: ID", "etcd.id", "coord: Host", "etcd.host", "coord: Admin", "etcd.admin_address",
	"coord: LeaseTTL", "etcd.lease_ttl", "coord: RenewInterval", "etcd.renew_interval",
	"coord: RenewTimeout", "etcd.renew_timeout", "coord: Margin", "etcd.margin",
	"coord: RequestTimeout", "etcd.request_timeout", "coord: DialTimeout", "etcd.dial_timeout",
	"coord: PreferredLeader", "etcd.preferred_leader",
	"coord: CertFile/KeyFile", "etcd.cert_file, etcd.key_file", "coord: Username/Password", "etcd.username, etcd.password",
	"RenewInterval (", "renew_interval (", "2×RenewTimeout (", "2×renew_timeout (", "Margin (", "margin (",
	"LeaseTTL (", "lease_ttl (")

// validate checks the [etcd] section (only when enabled) and fills defaults.
func (e *Etcd) validate(adminListen string) error {
	if !e.Enabled() {
		return nil
	}
	if e.ID == "" {
		return errors.New("etcd.id: missing (each tandem needs its own stable id)")
	}
	if e.Host == "" {
		e.Host, _ = os.Hostname()
	}
	if e.AdminAddress == "" {
		e.AdminAddress = adminListen
	}
	for _, ca := range []struct{ key, path string }{{"etcd.ca_file", e.CAFile}, {"etcd.cert_file", e.CertFile}, {"etcd.key_file", e.KeyFile}} {
		if ca.path == "" {
			continue
		}
		if _, err := os.Stat(ca.path); err != nil {
			return fmt.Errorf("%s: %w", ca.key, err)
		}
	}
	pw := User{Name: e.Username, Password: e.Password, PasswordEnv: e.PasswordEnv, PasswordFile: e.PasswordFile}
	if err := pw.resolve(); err != nil {
		return fmt.Errorf("etcd.%w", err)
	}
	e.secret = pw.secret
	c := e.CoordConfig()
	if err := c.Validate(); err != nil {
		return errors.New(etcdKeys.Replace(err.Error()))
	}
	return nil
}

// Alert configures where failover events are sent (see package alert).
type Alert struct {
	// QueueSize is how many events wait per sink; the oldest is dropped
	// past it. Default 100.
	QueueSize int       `toml:"queue_size"`
	Webhooks  []Webhook `toml:"webhook"`
	Commands  []Command `toml:"command"`
}

// Webhook is one [[alert.webhook]].
type Webhook struct {
	URL        string            `toml:"url"`
	Format     string            `toml:"format"`      // json (default) or slack
	Timeout    Duration          `toml:"timeout"`     // per attempt, default 2s
	Retries    int               `toml:"retries"`     // default 3, -1 for none
	Backoff    Duration          `toml:"backoff"`     // first retry wait, default 200ms
	MaxBackoff Duration          `toml:"max_backoff"` // default 5s
	Headers    map[string]string `toml:"headers"`
}

// Command is one [[alert.command]].
type Command struct {
	Path    string   `toml:"path"`
	Args    []string `toml:"args"`
	Timeout Duration `toml:"timeout"` // default 10s
}

// AlertConfig converts the [alert] section for package alert.
func (a Alert) AlertConfig() alert.Config {
	c := alert.DefaultConfig()
	c.QueueSize = a.QueueSize
	for _, w := range a.Webhooks {
		c.Webhooks = append(c.Webhooks, alert.WebhookConfig{URL: w.URL, Format: w.Format, Timeout: w.Timeout.Duration,
			Retries: w.Retries, Backoff: w.Backoff.Duration, MaxBackoff: w.MaxBackoff.Duration, Headers: w.Headers})
	}
	for _, cmd := range a.Commands {
		c.Commands = append(c.Commands, alert.CommandConfig{Path: cmd.Path, Args: cmd.Args, Timeout: cmd.Timeout.Duration})
	}
	return c
}

// Admin configures the admin HTTP API (status, switchover, metrics).
type Admin struct {
	// Listen is host:port. Default 127.0.0.1:9306. A non-loopback address
	// needs a token.
	Listen string `toml:"listen"`
	// Give at most one of token, token_env, token_file: clients must then
	// send "Authorization: Bearer <token>".
	TokenValue string `toml:"token"`
	TokenEnv   string `toml:"token_env"`
	TokenFile  string `toml:"token_file"`
	// AllowedHosts lists extra names (or IPs) that requests may carry in
	// their Host header, without port, e.g. ["tandem1.example"]: the
	// names operators use to reach the API from elsewhere. Always
	// allowed: localhost, loopback IPs, the listen address's host, and
	// any IP when listening on 0.0.0.0 or [::]. Other names are refused,
	// which defeats DNS rebinding. Default none.
	AllowedHosts []string `toml:"allowed_hosts"`

	token string
}

// Token returns the bearer token as resolved by Validate ("" for none).
func (a *Admin) Token() string { return a.token }

// Log configures logging.
type Log struct {
	// Level is trace, debug, info (default), warn or error.
	Level string `toml:"level"`
	// Format is text (default) or json.
	Format string `toml:"format"`
}

// Proxy configures the client-facing side.
type Proxy struct {
	// Listen lists addresses to accept clients on: host:port, or
	// unix:/path for a unix socket. Default ["127.0.0.1:3306"].
	Listen []string `toml:"listen"`
	// MaxConnections caps concurrent logged-in client sessions. Default
	// 4096.
	MaxConnections int `toml:"max_connections"`
	// MaxHandshakes caps connections still logging in; when full, a new
	// one closes the oldest. They never count against MaxConnections.
	// Default 64.
	MaxHandshakes int `toml:"max_handshakes"`
	// HandshakeTimeout cuts a client that has not finished logging in
	// (TLS included). Default 10s.
	HandshakeTimeout Duration `toml:"handshake_timeout"`
	// AccountsRefresh: clients whose user is not a [[user]] log in with
	// their account on the active node, which tandem reads (mysql.user,
	// as failover.admin_user) at a login when what it read is older than
	// this, and at once when a login finds no account or a wrong password
	// (at most once a second). Default 5s.
	AccountsRefresh Duration `toml:"accounts_refresh"`
	// ConnectTimeout bounds a TCP connect to a node. Default 2s.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// LoginTimeout bounds a login to a node. Default 5s.
	LoginTimeout Duration `toml:"login_timeout"`
	// NetReadTimeout cuts a client that stops in the middle of sending a
	// command. Default 30s.
	NetReadTimeout Duration `toml:"net_read_timeout"`
	// NetWriteTimeout cuts a client that does not take a block of a
	// response for this long (MariaDB's net_write_timeout). Default 60s.
	NetWriteTimeout Duration `toml:"net_write_timeout"`
	// SettleCommits marks each relayed statement with a comment so that a
	// COMMIT interrupted by a node failure gets its exact outcome (README,
	// "Settled outcomes"); false relays statements unmodified and such a
	// COMMIT gets 1317 (outcome unknown). Default true.
	SettleCommits bool `toml:"settle_commits"`
	// HoldTimeout is how long a command or a new session waits while
	// traffic is held (failover, switchover). Default 10s.
	HoldTimeout Duration `toml:"hold_timeout"`
	// ShutdownTimeout is how long SIGTERM waits for sessions to end
	// before closing them. Default 30s.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// DefaultAuthPlugin is mysql_native_password (default) or
	// caching_sha2_password.
	DefaultAuthPlugin string `toml:"default_auth_plugin"`
	// TLSCert and TLSKey are PEM files; both set enables TLS for clients.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// RequireTLS refuses clients that do not use TLS.
	RequireTLS bool `toml:"require_tls"`
	// MaxPacket is the largest client packet, in bytes, tandem holds in
	// memory whole (prepared statement text). Default 64 MiB.
	MaxPacket int `toml:"max_packet"`
	// MaxProcs caps the CPU cores tandem's Go runtime uses (GOMAXPROCS);
	// 0 leaves Go's default (all cores). On a small machine shared with the
	// database and the app, 1 is faster: see the README's benchmarks.
	MaxProcs int `toml:"max_procs"`
}

// Pool is the [pool] section: pooled node sessions (README, "Pooled node
// sessions"). Off unless users names at least one user.
type Pool struct {
	// Users lists the users whose node sessions are pooled, or ["*"] for
	// every user. Default none: pooling off.
	Users []string `toml:"users"`
	// Size is the most idle sessions kept per account. Default 16.
	Size int `toml:"size"`
	// MinIdle is how many idle sessions per account tandem opens ahead
	// once it has seen a client of that account log in. Default 0.
	MinIdle int `toml:"min_idle"`
	// IdleTimeout closes a session idle in the pool this long. Default 60s.
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxAge closes a node session this old instead of pooling it.
	// Default 1h.
	MaxAge Duration `toml:"max_age"`
}

// User is one account clients log in to tandem with, optional: tandem logs
// in to the nodes as the same user with the same password. Users not listed
// log in with their node account (see Proxy.AccountsRefresh); list a user
// whose plugin tandem cannot check from the node's stored hash (anything but
// mysql_native_password, such as MySQL 8's caching_sha2_password).
type User struct {
	Name string `toml:"name"`
	// Exactly one of Password, PasswordEnv (an environment variable's
	// name) and PasswordFile (a file whose first line is the password).
	Password     string `toml:"password"`
	PasswordEnv  string `toml:"password_env"`
	PasswordFile string `toml:"password_file"`

	secret string // the password, whichever way it was given
}

// Secret returns the user's password as resolved by Validate.
func (u *User) Secret() string { return u.secret }

// Node is one database server.
type Node struct {
	Name    string `toml:"name"`
	Address string `toml:"address"` // host:port or /path/to/socket
	// TLS is how every connection tandem makes to the node (sessions,
	// monitor, fencing, accounts, settling) uses TLS: off, preferred,
	// required, verify-ca or verify-full (see package nodetls). Default
	// preferred for a host:port address, off for a unix socket.
	TLS string `toml:"tls"`
	// TLSCA is the PEM file of CAs that verify-ca and verify-full check
	// the node's certificate against.
	TLSCA string `toml:"tls_ca"`
	// TLSCert and TLSKey (both or neither) are a client certificate.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// TLSServerName is the name verify-full expects in the node's
	// certificate. Default: the host of address.
	TLSServerName string `toml:"tls_server_name"`

	tls *nodetls.Client
}

// TLSClient returns the node's TLS settings as built by Validate: nil for
// plaintext.
func (n *Node) TLSClient() *nodetls.Client { return n.tls }

// Failover configures the monitor and the choice of active node. See
// failover.Config for why each default is what it is.
type Failover struct {
	// InitialActive is only suggested to the operator when no decision is
	// saved or recorded on the nodes and not exactly one node is writable
	// (see failover.New). Default: the first node.
	InitialActive string `toml:"initial_active"`
	// StateFile keeps the decision (active node, epoch) across restarts.
	// Default /var/lib/tandem/state.json.
	StateFile string `toml:"state_file"`
	// AdminUser is tandem's own account on the nodes (monitoring,
	// fencing, heartbeats). Give exactly one of admin_password,
	// admin_password_env, admin_password_file.
	AdminUser         string `toml:"admin_user"`
	AdminPassword     string `toml:"admin_password"`
	AdminPasswordEnv  string `toml:"admin_password_env"`
	AdminPasswordFile string `toml:"admin_password_file"`
	// Schema holds tandem's heartbeat and decision tables. Default tandem.
	Schema         string   `toml:"schema"`
	Interval       Duration `toml:"interval"`        // default 250ms
	CheckTimeout   Duration `toml:"check_timeout"`   // default 400ms
	FailAfter      int      `toml:"fail_after"`      // default 3
	RecoverAfter   int      `toml:"recover_after"`   // default 2
	CatchupTimeout Duration `toml:"catchup_timeout"` // default 5s
	MaxPromoteLag  Duration `toml:"max_promote_lag"` // default 5s
	LagWarning     Duration `toml:"lag_warning"`     // default 1s
	FenceTimeout   Duration `toml:"fence_timeout"`   // default 2s
	RetryInterval  Duration `toml:"retry_interval"`  // default 2s
	// AckTimeout, SemiSyncTimeout, MaxSwitchoverTimeout: see
	// failover.Config.
	AckTimeout           Duration `toml:"ack_timeout"`            // default 1s
	SemiSyncTimeout      Duration `toml:"semi_sync_timeout"`      // default 30s
	MaxSwitchoverTimeout Duration `toml:"max_switchover_timeout"` // default 60s

	adminSecret string
}

// AdminSecret returns the admin password as resolved by Validate.
func (f *Failover) AdminSecret() string { return f.adminSecret }

// Duration is a time.Duration written as a string ("250ms", "2s").
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like 250ms or 2s", b)
	}
	d.Duration = v
	return nil
}

// MarshalText formats the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns a File with every default filled in and no nodes or users.
func Default() File {
	return File{
		Log: Log{Level: "info", Format: "text"},
		Proxy: Proxy{
			Listen:            []string{"127.0.0.1:3306"},
			MaxConnections:    4096,
			MaxHandshakes:     64,
			HandshakeTimeout:  Duration{10 * time.Second},
			AccountsRefresh:   Duration{5 * time.Second},
			ConnectTimeout:    Duration{2 * time.Second},
			LoginTimeout:      Duration{5 * time.Second},
			ShutdownTimeout:   Duration{30 * time.Second},
			HoldTimeout:       Duration{10 * time.Second},
			NetReadTimeout:    Duration{30 * time.Second},
			NetWriteTimeout:   Duration{60 * time.Second},
			SettleCommits:     true,
			DefaultAuthPlugin: "mysql_native_password",
			MaxPacket:         64 << 20,
		},
		Admin: Admin{Listen: "127.0.0.1:9306"},
		Pool:  Pool{Size: 16, IdleTimeout: Duration{60 * time.Second}, MaxAge: Duration{time.Hour}},
		Failover: Failover{
			StateFile:      "/var/lib/tandem/state.json",
			AdminUser:      "tandem",
			Schema:         "tandem",
			Interval:       Duration{250 * time.Millisecond},
			CheckTimeout:   Duration{400 * time.Millisecond},
			FailAfter:      3,
			RecoverAfter:   2,
			CatchupTimeout: Duration{5 * time.Second},
			MaxPromoteLag:  Duration{5 * time.Second},
			LagWarning:     Duration{time.Second},
			FenceTimeout:   Duration{2 * time.Second},
			RetryInterval:  Duration{2 * time.Second},

			AckTimeout:           Duration{time.Second},
			SemiSyncTimeout:      Duration{30 * time.Second},
			MaxSwitchoverTimeout: Duration{time.Minute},
		},
		Etcd: defaultEtcd(),
	}
}

func defaultEtcd() Etcd {
	c := coord.DefaultConfig()
	return Etcd{Prefix: c.Prefix, LeaseTTL: Duration{c.LeaseTTL}, RenewInterval: Duration{c.RenewInterval},
		RenewTimeout: Duration{c.RenewTimeout}, Margin: Duration{c.Margin},
		RequestTimeout: Duration{c.RequestTimeout}, DialTimeout: Duration{c.DialTimeout}}
}

// Load reads and validates the file at path. Passwords given by env var or
// file are resolved (see User.Secret).
func Load(path string) (*File, error) {
	f := Default()
	md, err := toml.DecodeFile(path, &f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: unknown key %s", path, strings.Join(keys, ", "))
	}
	if md.IsDefined("etcd") && !f.Etcd.Enabled() {
		return nil, fmt.Errorf("%s: etcd.endpoints: missing (remove [etcd] to run a single tandem)", path)
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// Validate checks every field, resolves passwords, and returns the first
// problem, naming its key.
func (f *File) Validate() error {
	switch f.Log.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not one of trace, debug, info, warn, error", f.Log.Level)
	}
	if f.Log.Format != "text" && f.Log.Format != "json" {
		return fmt.Errorf("log.format: %q is not text or json", f.Log.Format)
	}
	p := &f.Proxy
	if len(p.Listen) == 0 {
		return errors.New("proxy.listen: no address to listen on")
	}
	for i, a := range p.Listen {
		if err := checkListen(a); err != nil {
			return fmt.Errorf("proxy.listen[%d]: %w", i, err)
		}
	}
	if p.MaxConnections <= 0 {
		return fmt.Errorf("proxy.max_connections: %d must be positive", p.MaxConnections)
	}
	if p.MaxHandshakes <= 0 {
		return fmt.Errorf("proxy.max_handshakes: %d must be positive", p.MaxHandshakes)
	}
	for key, d := range map[string]Duration{
		"proxy.handshake_timeout": p.HandshakeTimeout, "proxy.connect_timeout": p.ConnectTimeout,
		"proxy.login_timeout": p.LoginTimeout, "proxy.shutdown_timeout": p.ShutdownTimeout,
		"proxy.hold_timeout": p.HoldTimeout, "proxy.net_read_timeout": p.NetReadTimeout,
		"proxy.net_write_timeout": p.NetWriteTimeout, "proxy.accounts_refresh": p.AccountsRefresh,
	} {
		if d.Duration <= 0 {
			return fmt.Errorf("%s: %v must be positive", key, d.Duration)
		}
	}
	if p.DefaultAuthPlugin != "mysql_native_password" && p.DefaultAuthPlugin != "caching_sha2_password" {
		return fmt.Errorf("proxy.default_auth_plugin: %q is not mysql_native_password or caching_sha2_password", p.DefaultAuthPlugin)
	}
	if (p.TLSCert == "") != (p.TLSKey == "") {
		return errors.New("proxy.tls_cert, proxy.tls_key: set both or neither")
	}
	if p.RequireTLS && p.TLSCert == "" {
		return errors.New("proxy.require_tls: needs proxy.tls_cert and proxy.tls_key")
	}
	if p.MaxProcs < 0 {
		return fmt.Errorf("proxy.max_procs: %d is negative", p.MaxProcs)
	}
	if p.MaxPacket < 1024 {
		return fmt.Errorf("proxy.max_packet: %d is under 1024 bytes", p.MaxPacket)
	}
	if err := f.Pool.validate(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i := range f.Users {
		u := &f.Users[i]
		key := fmt.Sprintf("user[%d]", i)
		if u.Name == "" {
			return fmt.Errorf("%s.name: missing", key)
		}
		if seen[u.Name] {
			return fmt.Errorf("%s.name: %q defined twice", key, u.Name)
		}
		seen[u.Name] = true
		if err := u.resolve(); err != nil {
			return fmt.Errorf("%s (%s): %w", key, u.Name, err)
		}
	}
	if len(f.Nodes) < 1 || len(f.Nodes) > 2 {
		return fmt.Errorf("node: %d [[node]] defined; tandem needs one or two", len(f.Nodes))
	}
	names := map[string]bool{}
	for i := range f.Nodes {
		n := &f.Nodes[i]
		key := fmt.Sprintf("node[%d]", i)
		if n.Name == "" {
			return fmt.Errorf("%s.name: missing", key)
		}
		if names[n.Name] {
			return fmt.Errorf("%s.name: %q defined twice", key, n.Name)
		}
		names[n.Name] = true
		if err := checkNodeAddress(n.Address); err != nil {
			return fmt.Errorf("%s.address: %w", key, err)
		}
		if err := n.buildTLS(); err != nil {
			return fmt.Errorf("%s.%w", key, err)
		}
	}
	fo := &f.Failover
	for key, d := range map[string]Duration{
		"failover.interval": fo.Interval, "failover.check_timeout": fo.CheckTimeout,
		"failover.catchup_timeout": fo.CatchupTimeout, "failover.max_promote_lag": fo.MaxPromoteLag,
		"failover.lag_warning": fo.LagWarning, "failover.fence_timeout": fo.FenceTimeout,
		"failover.retry_interval": fo.RetryInterval, "failover.ack_timeout": fo.AckTimeout,
		"failover.semi_sync_timeout": fo.SemiSyncTimeout, "failover.max_switchover_timeout": fo.MaxSwitchoverTimeout,
	} {
		if d.Duration <= 0 {
			return fmt.Errorf("%s: %v must be positive", key, d.Duration)
		}
	}
	if fo.FailAfter < 1 {
		return fmt.Errorf("failover.fail_after: %d must be at least 1", fo.FailAfter)
	}
	if fo.RecoverAfter < 1 {
		return fmt.Errorf("failover.recover_after: %d must be at least 1", fo.RecoverAfter)
	}
	if fo.StateFile == "" {
		return errors.New("failover.state_file: missing")
	}
	if fo.AdminUser == "" {
		return errors.New("failover.admin_user: missing")
	}
	if err := checkSchema(fo.Schema); err != nil {
		return fmt.Errorf("failover.schema: %w", err)
	}
	nodeAdmin := User{Name: fo.AdminUser, Password: fo.AdminPassword, PasswordEnv: fo.AdminPasswordEnv, PasswordFile: fo.AdminPasswordFile}
	if err := nodeAdmin.resolve(); err != nil {
		return fmt.Errorf("failover.admin_%w", err)
	}
	fo.adminSecret = nodeAdmin.secret
	tok := User{Name: "admin", Password: f.Admin.TokenValue, PasswordEnv: f.Admin.TokenEnv, PasswordFile: f.Admin.TokenFile}
	if err := tok.resolve(); err != nil {
		return fmt.Errorf("admin.token: %s", strings.ReplaceAll(err.Error(), "password", "token"))
	}
	f.Admin.token = tok.secret
	if err := admin.CheckListen(f.Admin.Listen, f.Admin.token); err != nil {
		return err
	}
	if err := admin.CheckAllowedHosts(f.Admin.AllowedHosts); err != nil {
		return err
	}
	ac := f.Alert.AlertConfig()
	if err := ac.Validate(); err != nil {
		msg := strings.NewReplacer("Webhooks[", "alert.webhook[", "Commands[", "alert.command[", "QueueSize", "alert.queue_size").Replace(err.Error())
		return errors.New(msg)
	}
	if f.Failover.InitialActive == "" {
		f.Failover.InitialActive = f.Nodes[0].Name
	} else if !names[f.Failover.InitialActive] {
		return fmt.Errorf("failover.initial_active: no node named %q", f.Failover.InitialActive)
	}
	return f.Etcd.validate(f.Admin.Listen)
}

func (u *User) resolve() error {
	set := 0
	for _, s := range []string{u.Password, u.PasswordEnv, u.PasswordFile} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		return errors.New("password, password_env and password_file: set only one")
	}
	switch {
	case u.Password != "":
		u.secret = u.Password
	case u.PasswordEnv != "":
		v, ok := os.LookupEnv(u.PasswordEnv)
		if !ok {
			return fmt.Errorf("password_env: environment variable %s is not set", u.PasswordEnv)
		}
		u.secret = v
	case u.PasswordFile != "":
		b, err := os.ReadFile(u.PasswordFile)
		if err != nil {
			return fmt.Errorf("password_file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		u.secret = strings.TrimSuffix(line, "\r")
	}
	return nil
}

func checkSchema(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%q: want 1 to 64 characters", s)
	}
	for _, r := range s {
		if !(r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return fmt.Errorf("%q: only letters, digits, _ and $", s)
		}
	}
	return nil
}

func checkListen(a string) error {
	if path, ok := strings.CutPrefix(a, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("%q: a unix socket path must be absolute", a)
		}
		return nil
	}
	return checkHostPort(a)
}

// buildTLS checks the node's tls keys and reads their files; the error
// starts with the key at fault.
func (n *Node) buildTLS() error {
	if n.TLS == "" {
		// Encrypt by default where the link can leave the host: TLS
		// whenever the node offers it (MySQL 8 and MariaDB 11.4+ do out
		// of the box). A unix socket never leaves the host.
		n.TLS = nodetls.Preferred.String()
		if strings.HasPrefix(n.Address, "/") {
			n.TLS = nodetls.Off.String()
		}
	}
	mode, err := nodetls.ParseMode(n.TLS)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	c, err := nodetls.New(nodetls.Settings{Mode: mode, CAFile: n.TLSCA, CertFile: n.TLSCert, KeyFile: n.TLSKey,
		ServerName: n.TLSServerName}, n.Address)
	if err != nil {
		return err
	}
	n.tls = c
	return nil
}

func checkNodeAddress(a string) error {
	if strings.HasPrefix(a, "/") {
		return nil
	}
	if a == "" {
		return errors.New("missing")
	}
	return checkHostPort(a)
}

func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port (%v)", a, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", a)
	}
	if _, err := net.LookupPort("tcp", port); err != nil || port == "0" {
		return fmt.Errorf("%q has a bad port", a)
	}
	return nil
}

func (p *Pool) validate() error {
	for i, u := range p.Users {
		if u == "" {
			return fmt.Errorf("pool.users[%d]: empty user name", i)
		}
	}
	if p.Size <= 0 {
		return fmt.Errorf("pool.size: %d must be positive", p.Size)
	}
	if p.MinIdle < 0 || p.MinIdle > p.Size {
		return fmt.Errorf("pool.min_idle: %d must be between 0 and pool.size (%d)", p.MinIdle, p.Size)
	}
	for key, d := range map[string]Duration{"pool.idle_timeout": p.IdleTimeout, "pool.max_age": p.MaxAge} {
		if d.Duration <= 0 {
			return fmt.Errorf("%s: %v must be positive", key, d.Duration)
		}
	}
	return nil
}
