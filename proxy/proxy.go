// Package proxy is tandem's data path: it speaks the MySQL protocol to
// clients, logs each session in to the active node and relays packets
// verbatim. It knows nothing of failover policy; it offers a narrow control
// surface (see control.go) that a caller drives.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/hashicorp/go-hclog"
)

// Config is the data path's configuration. The zero value of each field
// means its default, given in DefaultConfig.
type Config struct {
	// Users maps each user name clients may log in as to its password.
	// tandem checks the password itself and logs in to the node with it.
	// Optional: a user not listed here logs in with its node account
	// (Accounts). A listed user never uses its node account.
	Users map[string]string

	// Accounts, when set, loads the accounts of the node called node (its
	// mysql.user rows), so that every mysql_native_password account of
	// the active node can log in through tandem without being listed in
	// Users (see accounts.go). It is called at a login when the accounts
	// are older than AccountsRefresh, and when a login finds no matching
	// account or a wrong password (at most once a second). Default: none,
	// only Users log in.
	Accounts func(ctx context.Context, node string) ([]Account, error)

	// AccountsRefresh is how old the loaded accounts may be before a
	// login reloads them. Default 5s.
	AccountsRefresh time.Duration

	// TLS, when set, lets clients upgrade their connection to TLS.
	TLS *tls.Config
	// RequireTLS refuses clients that do not upgrade to TLS (needs TLS).
	RequireTLS bool

	// DefaultAuthPlugin is the plugin named in tandem's greeting:
	// mysql_native_password (default) or caching_sha2_password. A client
	// that answers with the other one is accepted too.
	DefaultAuthPlugin string

	// MaxConnections caps concurrent logged-in client sessions; one more
	// gets error 1040. Connections still logging in do not count (see
	// MaxHandshakes). Default 4096.
	MaxConnections int

	// MaxHandshakes caps connections that have not yet proved their
	// password (greeting, TLS, login); each holds a node connection. When
	// all are taken, a new connection makes room by closing the one that
	// has waited longest on its client, preferring one that was greeted
	// and has not answered: a flood of silent sockets cannot keep a real
	// client out, whose handshake takes milliseconds. Connections still
	// being greeted (tandem opening their node connection) are never
	// closed; if all are, the new connection waits for a slot, up to half
	// of HandshakeTimeout, then gets error 1040. Default 64.
	MaxHandshakes int

	// HandshakeTimeout bounds the client handshake, TLS included, from
	// accept to the password check: a silent client is cut after it.
	// Default 10s.
	HandshakeTimeout time.Duration

	// ConnectTimeout bounds the TCP connect to a node. Default 2s: on a
	// LAN a connect takes milliseconds; longer means the node is gone.
	ConnectTimeout time.Duration

	// LoginTimeout bounds the login to a node once connected. Default 5s.
	LoginTimeout time.Duration

	// MaxPacket is the largest client packet tandem buffers whole (the
	// text of a prepared statement, COM_CHANGE_USER). Packets relayed
	// verbatim stream through in constant memory and are bounded only by
	// the node's max_allowed_packet. Default 64 MiB.
	MaxPacket int

	// HoldTimeout is how long a command or a new session waits while
	// traffic is held (a switchover or failover in progress) before it
	// gets an error. Default 10s: longer than a failover takes with the
	// default detection settings, short enough for an app's own timeouts.
	HoldTimeout time.Duration

	// NetReadTimeout bounds how long tandem waits for the rest of a
	// command (or of a LOCAL INFILE file) a client has started to send;
	// past it the session is closed. Default 30s, MySQL's own
	// net_read_timeout. An idle client, between commands, is not bounded.
	NetReadTimeout time.Duration

	// NetWriteTimeout bounds each write to a client, as MariaDB's
	// net_write_timeout: a client that stops reading a result is cut
	// after it. Default 60s, MariaDB's default.
	NetWriteTimeout time.Duration

	// IdleCheck: before running a command on a node connection that has
	// been idle this long, tandem peeks (one non-blocking recv) whether
	// the node closed it meanwhile, and if so moves the session instead of
	// failing the command. Default 250ms; busy sessions never pay for it.
	IdleCheck time.Duration

	// Observer receives per-session and per-command events (metrics).
	// Default: none.
	Observer Observer

	// NodeFailed, when set, is called with a node's name when a session's
	// exchange with that node fails (the connection dropped mid-command,
	// or a dial or login failed), from the session's goroutine: it must
	// return at once. tandem's monitor uses it to check the node now
	// rather than at its next interval. Default: none.
	NodeFailed func(node string)

	// Settle, when set, is asked, after a node failed during a COMMIT or
	// an autocommit statement and traffic moved to another node, whether
	// the transaction was committed there (settle.go); the client then
	// gets that exact answer instead of "it may or may not have taken
	// effect". It is called from the session's goroutine and must return
	// by ctx's deadline (HoldTimeout from the failure). Setting it makes
	// tandem put a marker comment in front of each statement it relays.
	// Default: none.
	Settle func(ctx context.Context, req SettleRequest) SettleResult

	// Pool configures pooled node sessions (pool.go): off unless
	// Pool.Users names a user. While it is on, tandem greets clients
	// itself instead of with a node connection opened at accept.
	Pool PoolConfig

	// Logger receives session-level events. Default: hclog.NewNullLogger().
	Logger hclog.Logger
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		DefaultAuthPlugin: mysql.AUTH_NATIVE_PASSWORD,
		MaxConnections:    4096,
		MaxHandshakes:     64,
		HandshakeTimeout:  10 * time.Second,
		ConnectTimeout:    2 * time.Second,
		LoginTimeout:      5 * time.Second,
		MaxPacket:         64 << 20,
		HoldTimeout:       10 * time.Second,
		NetReadTimeout:    30 * time.Second,
		NetWriteTimeout:   60 * time.Second,
		IdleCheck:         250 * time.Millisecond,
		AccountsRefresh:   5 * time.Second,
		Logger:            hclog.NewNullLogger(),
	}
}

func (c *Config) withDefaults() Config {
	d := DefaultConfig()
	out := *c
	orDefault(&out.DefaultAuthPlugin, d.DefaultAuthPlugin)
	orDefault(&out.MaxConnections, d.MaxConnections)
	orDefault(&out.MaxHandshakes, d.MaxHandshakes)
	orDefault(&out.HandshakeTimeout, d.HandshakeTimeout)
	orDefault(&out.ConnectTimeout, d.ConnectTimeout)
	orDefault(&out.LoginTimeout, d.LoginTimeout)
	orDefault(&out.MaxPacket, d.MaxPacket)
	orDefault(&out.HoldTimeout, d.HoldTimeout)
	orDefault(&out.NetReadTimeout, d.NetReadTimeout)
	orDefault(&out.NetWriteTimeout, d.NetWriteTimeout)
	orDefault(&out.IdleCheck, d.IdleCheck)
	orDefault(&out.AccountsRefresh, d.AccountsRefresh)
	if out.Logger == nil {
		out.Logger = d.Logger
	}
	if out.Observer == nil {
		out.Observer = nopObserver{}
	}
	return out
}

// orDefault sets *v to def when it holds its zero value.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Validate reports the first bad field by name.
func (c *Config) Validate() error {
	if !clientPluginOK(c.DefaultAuthPlugin) && c.DefaultAuthPlugin != "" {
		return fmt.Errorf("DefaultAuthPlugin: %q is not mysql_native_password or caching_sha2_password", c.DefaultAuthPlugin)
	}
	if c.MaxConnections < 0 {
		return fmt.Errorf("MaxConnections: %d is negative", c.MaxConnections)
	}
	if c.MaxHandshakes < 0 {
		return fmt.Errorf("MaxHandshakes: %d is negative", c.MaxHandshakes)
	}
	for name, d := range map[string]time.Duration{"HandshakeTimeout": c.HandshakeTimeout, "ConnectTimeout": c.ConnectTimeout,
		"LoginTimeout": c.LoginTimeout, "HoldTimeout": c.HoldTimeout, "IdleCheck": c.IdleCheck, "NetReadTimeout": c.NetReadTimeout,
		"NetWriteTimeout": c.NetWriteTimeout, "AccountsRefresh": c.AccountsRefresh} {
		if d < 0 {
			return fmt.Errorf("%s: %v is negative", name, d)
		}
	}
	if c.RequireTLS && c.TLS == nil {
		return errors.New("RequireTLS: set, but TLS is not configured")
	}
	if c.MaxPacket < 0 {
		return fmt.Errorf("MaxPacket: %d is negative", c.MaxPacket)
	}
	return c.Pool.validate()
}

// Proxy accepts client sessions and relays each to the active node.
type Proxy struct {
	cfg   Config
	log   hclog.Logger
	nodes []*Node

	accounts *accountCache // nil without Config.Accounts
	pool     *pool         // nil unless Config.Pool.Users is set

	route   atomic.Pointer[route]
	routeMu sync.Mutex // orders route changes
	nextID  atomic.Uint32

	mu sync.Mutex
	// sessions holds every connection by id, logged in or not; loggedIn
	// counts those past the password check, handshakes the others.
	sessions   map[uint32]*session
	loggedIn   int
	handshakes map[*session]struct{}
	// slotChanged is closed when a handshake slot frees or may be freed
	// (register waits on it when every handshake is being greeted).
	slotChanged chan struct{}
	listeners   map[net.Listener]struct{}
	closing     bool
	// handshakers: handshake goroutines waiting for a new connection
	// (handshake.go); closed tells them to end (Shutdown).
	handshakers chan net.Conn
	closed      chan struct{}
	// watchOnce starts the watcher of clients that leave mid-command
	// (watch.go) with the first Serve.
	watchOnce sync.Once
	// clientBufsHeld counts the client read buffers sessions hold (none
	// while idle: conn.go).
	clientBufsHeld atomic.Int64
	wg             sync.WaitGroup
	// trim returns memory after a burst of logins (idlemem.go).
	trim idleTrim

	// settle is set when Config.Settle is (settle.go).
	settle *settler
	// capturing counts session states being read before a move
	// (uservars.go); Activity counts them as busy.
	capturing atomic.Int64

	// snapshotFacts makes sessions copy their facts under their lock
	// after every command, so that tests can read them race-free.
	snapshotFacts bool
}

// ErrClosed is returned by Serve after Shutdown.
var ErrClosed = errors.New("proxy: closed")

// New returns a Proxy for nodes, routing to active (one of nodes' names), or
// down if active is "".
func New(cfg Config, nodes []*Node, active string) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Proxy{
		cfg:         cfg.withDefaults(),
		nodes:       nodes,
		sessions:    make(map[uint32]*session),
		handshakes:  make(map[*session]struct{}),
		listeners:   make(map[net.Listener]struct{}),
		handshakers: make(chan net.Conn),
		closed:      make(chan struct{}),
	}
	p.log = p.cfg.Logger
	if p.cfg.Accounts != nil {
		p.accounts = &accountCache{load: p.cfg.Accounts, refresh: p.cfg.AccountsRefresh,
			timeout: p.cfg.ConnectTimeout + p.cfg.LoginTimeout, log: p.log}
	}
	if p.cfg.Settle != nil {
		p.settle = newSettler(nodes)
	}
	if active == "" {
		p.setRoute(&route{reason: "no active node chosen yet"})
	} else if err := p.Route(active); err != nil {
		return nil, err
	}
	p.pool = newPool(p, p.cfg.Pool)
	return p, nil
}

// Serve accepts connections on l until Shutdown. It always returns an error:
// ErrClosed after Shutdown.
func (p *Proxy) Serve(l net.Listener) error {
	if tl, ok := l.(*net.TCPListener); ok {
		// Plain accept4(2) calls, the options set once on the
		// listening socket (sock.go).
		if a, err := newAcceptor(tl); err == nil {
			defer a.f.Close()
			l = a
		} else {
			p.log.Warn("cannot set up the listener for plain accept4 calls; accepting through net", "address", l.Addr(), "error", err)
		}
	}
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return ErrClosed
	}
	p.listeners[l] = struct{}{}
	p.watchOnce.Do(func() { // under p.mu, before Shutdown's Wait
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.watchClients() // watch.go
		}()
	})
	p.mu.Unlock()
	var delay time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			p.mu.Lock()
			closing := p.closing
			p.mu.Unlock()
			if closing {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				p.log.Warn("accept failed; retrying", "error", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		p.startHandshake(conn)
	}
}

// Shutdown stops accepting, waits for sessions to end until ctx is done, then
// closes the ones left. It returns ctx.Err() if it had to close sessions.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if !p.closing {
		close(p.closed)
	}
	p.closing = true
	for l := range p.listeners {
		_ = l.Close()
	}
	p.mu.Unlock()
	p.pool.close()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	for _, s := range p.sessions {
		s.closeConns()
	}
	p.mu.Unlock()
	<-done
	return ctx.Err()
}

// SessionCount is the number of logged-in client sessions open now.
func (p *Proxy) SessionCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.loggedIn
}

// HandshakeCount is the number of connections still logging in.
func (p *Proxy) HandshakeCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.handshakes)
}

// register adds a new connection under a fresh connection id, as logging
// in. It reports false when the logged-in sessions are at their limit.
// When the handshakes are at theirs, the connection that has waited
// longest on its client is closed to make room; if every one is still being
// greeted (tandem opening its node connection, which takes milliseconds),
// register waits for one to be greeted or to leave, until deadline, and
// reports false past it.
func (p *Proxy) register(s *session, deadline time.Time) bool {
	p.mu.Lock()
	for {
		if p.loggedIn >= p.cfg.MaxConnections {
			p.mu.Unlock()
			return false
		}
		if len(p.handshakes) < p.cfg.MaxHandshakes {
			break
		}
		// The oldest of those that were greeted and have not answered,
		// else the oldest that answered (it is about to leave the slot).
		// One still being greeted is never closed: its wait is
		// tandem's, not its client's, and a flood of silent sockets
		// must not push out a real client before it could answer.
		var oldest *session
		for h := range p.handshakes {
			c := h.evictClass()
			if c < 0 {
				continue
			}
			if oldest == nil || c < oldest.evictClass() || c == oldest.evictClass() && h.accepted.Before(oldest.accepted) {
				oldest = h
			}
		}
		if oldest != nil {
			delete(p.handshakes, oldest)
			oldest.evicted.Store(true)
			_ = oldest.raw.Close() // its goroutine fails its next read or write
			break
		}
		if p.slotChanged == nil {
			p.slotChanged = make(chan struct{})
		}
		ch := p.slotChanged
		p.mu.Unlock()
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ch:
			t.Stop()
		case <-t.C:
			return false
		}
		p.mu.Lock()
	}
	defer p.mu.Unlock()
	p.handshakes[s] = struct{}{}
	for {
		id := p.nextID.Add(1)
		if _, taken := p.sessions[id]; id != 0 && !taken {
			s.id = id
			p.sessions[id] = s
			return true
		}
	}
}

// slotsChangedLocked wakes connections waiting in register. p.mu is held.
func (p *Proxy) slotsChangedLocked() {
	if p.slotChanged != nil {
		close(p.slotChanged)
		p.slotChanged = nil
	}
}

// greeted marks s as greeted: from now on it may be closed to make room.
func (p *Proxy) greeted(s *session) {
	p.mu.Lock()
	s.greeted.Store(true)
	p.slotsChangedLocked()
	p.mu.Unlock()
}

// evictClass ranks a connection still logging in for eviction, lowest
// first: greeted and silent (0), answered (1); -1 while it is still being
// greeted (never evicted).
func (s *session) evictClass() int {
	switch {
	case s.answered.Load():
		return 1
	case s.greeted.Load():
		return 0
	}
	return -1
}

// admit moves s from logging in to logged in, or reports false when the
// logged-in sessions are at their limit or s was closed meanwhile.
func (p *Proxy) admit(s *session) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.handshakes[s]; !ok || p.loggedIn >= p.cfg.MaxConnections {
		return false
	}
	delete(p.handshakes, s)
	s.admitted = true
	p.loggedIn++
	p.slotsChangedLocked()
	return true
}

func (p *Proxy) unregister(s *session) {
	p.mu.Lock()
	delete(p.sessions, s.id)
	delete(p.handshakes, s)
	if s.admitted {
		p.loggedIn--
	}
	p.slotsChangedLocked()
	p.mu.Unlock()
}

// killTarget resolves the id of a KILL run by a session on node: the
// session whose node connection is thread id on node; else the one session
// greeted with id that has moved to node since (its driver still knows it
// by that id), with its current thread. ok is false when there is none, or
// when id names both (a thread on node, and a moved session's old id): a
// KILL must never reach the wrong session.
func (p *Proxy) killTarget(node *Node, id uint32) (target *session, thread uint32, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var cur, moved *session
	n := 0
	for _, s := range p.sessions {
		s.mu.Lock()
		be := s.be
		s.mu.Unlock()
		if be == nil || be.node != node {
			continue
		}
		switch {
		case be.threadID == id:
			cur, thread = s, id
			n++
		case s.greetID == id:
			moved = s
			n++
		}
	}
	switch {
	case n != 1:
		return nil, 0, false
	case cur != nil:
		return cur, thread, true
	}
	moved.mu.Lock()
	thread = moved.be.threadID
	moved.mu.Unlock()
	return moved, thread, true
}

func (p *Proxy) timeouts() dialTimeouts {
	return dialTimeouts{Connect: p.cfg.ConnectTimeout, Login: p.cfg.LoginTimeout}
}
