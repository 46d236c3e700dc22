package coord

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Config configures a Session. Build it from DefaultConfig.
type Config struct {
	// Endpoints are the etcd members' client addresses, host:port or
	// http(s)://host:port. Give all of them (three in production): every
	// renewal, read and save goes to all of them at once over one
	// connection each, and the first answer wins, so a member that is
	// hung or cut off delays nothing. Required.
	Endpoints []string
	// Prefix is the key prefix of one cluster of tandems ("/tandem/prod");
	// tandems with the same Prefix agree with each other, others never
	// meet. Starts with "/", no trailing "/". Default "/tandem".
	Prefix string
	// ID is this tandem's stable identity (letters, digits, "._-", at most
	// 64). Two live tandems must never share it: Open waits for an older
	// session's member key with the same ID to expire and fails if it
	// does not. Required.
	ID string
	// Host is free text shown in status (e.g. the app server's name).
	Host string
	// Admin is this tandem's admin API address, host:port, published so
	// that other tandems can forward requests to the coordinator or name
	// it when refusing. Optional.
	Admin string

	// LeaseTTL is the etcd lease's time to live, whole seconds. A tandem
	// that cannot renew for LeaseTTL-Margin stops acting; a dead tandem's
	// member and coordinator keys vanish LeaseTTL after its last renewal
	// reached etcd. etcd raises a TTL below ceil(1.5 × its election
	// timeout) to that minimum (2 s with etcd's defaults, 1 s with
	// --election-timeout=500): Open then logs and uses the granted TTL.
	// Default 1s (needs etcd's --election-timeout ≤ 666 ms).
	LeaseTTL time.Duration
	// RenewInterval is how often the session renews its lease, counted
	// from one renewal's send to the next. Each renewal goes to every
	// endpoint at once (one connection per member), so a member that is
	// hung, cut off or catching up never delays it. After a failed
	// renewal the next one goes RenewInterval/5 after its send (while etcd
	// elects a leader, members refuse at once; the first renewal after
	// the election should not wait a whole interval). Default 250ms.
	RenewInterval time.Duration
	// RenewTimeout bounds one renewal (and the coordinator key check that
	// follows it). Default 300ms.
	RenewTimeout time.Duration
	// Margin is taken off every validity window: the lease is trusted
	// until (send time of the last successful renewal) + TTL − Margin.
	// It covers the difference in clock rate between this host and
	// etcd's leader over one TTL and the time between checking Valid and
	// an action taking effect. etcd itself counts the TTL from when its
	// leader received the renewal, which is after the send, so the send
	// time is already on the safe side. Times are read from Go's monotonic
	// clock, so a step of the wall clock does not matter; only a
	// difference in rate does. Default 100ms.
	Margin time.Duration
	// RequestTimeout bounds each other etcd request (grant, register,
	// ack, campaign step, load, save), sent to every member at once.
	// Default 1s.
	RequestTimeout time.Duration
	// DialTimeout bounds connecting to etcd in Open. Default 2s.
	DialTimeout time.Duration
	// PollInterval is how often Campaign and WaitAcked re-read etcd
	// (linearizable reads; watches only wake them earlier). Default 100ms.
	PollInterval time.Duration

	// PreferredLeader, if set, is the name (--name) of the etcd member that
	// should hold etcd's raft leadership: the witness's. The coordinator
	// moves the leadership there whenever it finds it elsewhere, so that
	// the death of an app server never also costs an etcd leader election
	// and a lease extension. Default empty (off).
	PreferredLeader string
	// LeaderCheckInterval is how often the coordinator checks where etcd's
	// leader is, when PreferredLeader is set. Default 5s.
	LeaderCheckInterval time.Duration

	// CAFile, CertFile, KeyFile: TLS to etcd. CAFile alone verifies the
	// server; CertFile and KeyFile (both or neither) add a client
	// certificate. Endpoints must then use https:// or bare host:port.
	CAFile   string
	CertFile string
	KeyFile  string
	// Username and Password for etcd's authentication (both or neither).
	Username string
	Password string

	// Events, if set, is called on lease lost, lease regained, became
	// coordinator and lost coordinator (kinds Event*). It is called from
	// the session's goroutines, outside any lock, and must return quickly.
	Events func(kind, detail string)
}

// Event kinds passed to Config.Events.
const (
	EventLeaseLost         = "lease lost"
	EventLeaseRegained     = "lease regained"
	EventBecameCoordinator = "became coordinator"
	EventLostCoordinator   = "lost coordinator"
)

// DefaultConfig returns the defaults; set Endpoints and ID.
func DefaultConfig() Config {
	return Config{
		Prefix:         "/tandem",
		LeaseTTL:       1 * time.Second,
		RenewInterval:  250 * time.Millisecond,
		RenewTimeout:   300 * time.Millisecond,
		Margin:         100 * time.Millisecond,
		RequestTimeout: 1 * time.Second,
		DialTimeout:    2 * time.Second,
		PollInterval:   100 * time.Millisecond,

		LeaderCheckInterval: 5 * time.Second,
	}
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Validate checks every field and the timing rule
//
//	RenewInterval + 2×RenewTimeout + Margin ≤ LeaseTTL
//
// (one renewal may fail and the next still lands inside the lease), naming
// the field at fault.
func (c *Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("coord: Endpoints: at least one etcd endpoint is required")
	}
	for _, e := range c.Endpoints {
		if err := checkEndpoint(e); err != nil {
			return fmt.Errorf("coord: Endpoints: %q: %w", e, err)
		}
	}
	if c.Prefix == "" || !strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") {
		return fmt.Errorf("coord: Prefix: %q must start with \"/\" and not end with \"/\"", c.Prefix)
	}
	if strings.ContainsAny(c.Prefix, " \t\n\x00") {
		return fmt.Errorf("coord: Prefix: %q contains whitespace or NUL", c.Prefix)
	}
	if !idRE.MatchString(c.ID) {
		return fmt.Errorf("coord: ID: %q must be 1-64 letters, digits, '.', '_' or '-'", c.ID)
	}
	if len(c.Host) > 255 {
		return errors.New("coord: Host: longer than 255 bytes")
	}
	if c.Admin != "" {
		if _, _, err := net.SplitHostPort(c.Admin); err != nil {
			return fmt.Errorf("coord: Admin: %q is not host:port: %v", c.Admin, err)
		}
	}
	if c.LeaseTTL < time.Second || c.LeaseTTL%time.Second != 0 {
		return fmt.Errorf("coord: LeaseTTL: %v must be a whole number of seconds, at least 1s (etcd leases count in seconds)", c.LeaseTTL)
	}
	if c.LeaseTTL > time.Hour {
		return fmt.Errorf("coord: LeaseTTL: %v is longer than 1h", c.LeaseTTL)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"RenewInterval", c.RenewInterval}, {"RenewTimeout", c.RenewTimeout}, {"Margin", c.Margin},
		{"RequestTimeout", c.RequestTimeout}, {"DialTimeout", c.DialTimeout}, {"PollInterval", c.PollInterval},
		{"LeaderCheckInterval", c.LeaderCheckInterval},
	} {
		if d.v <= 0 {
			return fmt.Errorf("coord: %s: %v must be positive", d.name, d.v)
		}
	}
	if c.Margin < c.LeaseTTL/100 {
		return fmt.Errorf("coord: Margin: %v is below 1%% of LeaseTTL (%v), too little for clock rate drift", c.Margin, c.LeaseTTL)
	}
	if need := c.RenewInterval + 2*c.RenewTimeout + c.Margin; need > c.LeaseTTL {
		return fmt.Errorf("coord: RenewInterval: RenewInterval (%v) + 2×RenewTimeout (%v) + Margin (%v) = %v exceeds LeaseTTL (%v): one failed renewal would already end the lease",
			c.RenewInterval, c.RenewTimeout, c.Margin, need, c.LeaseTTL)
	}
	if c.PollInterval > c.LeaseTTL {
		return fmt.Errorf("coord: PollInterval: %v exceeds LeaseTTL (%v)", c.PollInterval, c.LeaseTTL)
	}
	if strings.ContainsAny(c.PreferredLeader, " \t\n,=") {
		return fmt.Errorf("coord: PreferredLeader: %q is not an etcd member name", c.PreferredLeader)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("coord: CertFile/KeyFile: give both or neither")
	}
	if (c.Username == "") != (c.Password == "") {
		return errors.New("coord: Username/Password: give both or neither")
	}
	if c.CAFile != "" || c.CertFile != "" {
		for _, e := range c.Endpoints {
			if strings.HasPrefix(e, "http://") {
				return fmt.Errorf("coord: Endpoints: %q uses http:// but TLS files are set", e)
			}
		}
	}
	return nil
}

// checkEndpoint accepts host:port or http(s)://host:port.
func checkEndpoint(e string) error {
	hp := e
	if strings.Contains(e, "://") {
		u, err := url.Parse(e)
		if err != nil {
			return err
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("scheme %q is not http or https", u.Scheme)
		}
		if u.Path != "" && u.Path != "/" {
			return errors.New("must not have a path")
		}
		hp = u.Host
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("not host:port: %v", err)
	}
	if host == "" || port == "" {
		return errors.New("host and port are required")
	}
	return nil
}

// useTLS reports whether the client must speak TLS.
func (c *Config) useTLS() bool {
	if c.CAFile != "" || c.CertFile != "" {
		return true
	}
	for _, e := range c.Endpoints {
		if strings.HasPrefix(e, "https://") {
			return true
		}
	}
	return false
}

// Key layout under Prefix.
func (c *Config) membersPrefix() string      { return c.Prefix + "/members/" }
func (c *Config) memberKey(id string) string { return c.membersPrefix() + id }
func (c *Config) coordinatorKey() string     { return c.Prefix + "/coordinator" }
func (c *Config) decisionKey() string        { return c.Prefix + "/decision" }
