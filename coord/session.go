package coord

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Errors callers decide on.
var (
	// ErrNotCoordinator: this session is not (or no longer) the elected
	// coordinator with a valid lease; inside Save it means etcd found the
	// coordinator key gone or re-created.
	ErrNotCoordinator = errors.New("coord: not the coordinator")
	// ErrConflict: the decision changed since the caller loaded it.
	ErrConflict = errors.New("coord: decision changed since it was loaded")
	// ErrNoLease: the session holds no lease right now (lost, being
	// re-granted) or is closed.
	ErrNoLease = errors.New("coord: no valid lease")
)

// Session is one tandem's presence in etcd: its lease, renewed by its own
// loop, its member key, and its coordinator candidacy. Its methods are safe
// for concurrent use.
type Session struct {
	cfg  Config
	log  hclog.Logger
	cli  *clientv3.Client
	ccfg clientv3.Config // to reach one member directly (MoveLeaderTo)
	// perMember: one client per endpoint (or just cli when there is one),
	// to send a request to every member at once (first, renewOnce).
	perMember []*clientv3.Client

	stopCtx context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup

	// regMu serialises writes of this session's member key; memberRev is
	// the key's ModRevision as this session last wrote or read it (Ack
	// compares it, so that each acknowledgement takes effect once, in
	// order, however many members it was sent to).
	regMu     sync.Mutex
	memberRev int64

	mu       sync.Mutex
	lease    clientv3.LeaseID // 0 while lost
	ttl      time.Duration    // as granted by etcd
	lastSent time.Time        // send time of the last successful renewal or grant
	until    time.Time        // lastSent + ttl - Margin
	acked    uint64
	// elected: this session won the election under electLease; the
	// coordinator key it created has CreateRevision electRev.
	elected    bool
	electLease clientv3.LeaseID
	electRev   int64
	campaigns  int               // Campaign calls running
	seen       map[string]Member // every member ever listed, for Members
	closed     bool
}

// Open connects to etcd, grants a lease, registers this tandem as a member
// and starts the renewal loop. If an older session with the same ID still
// has its member key, Open waits (bounded by ctx and 2×LeaseTTL+2s) for it
// to expire. log may be nil.
func Open(ctx context.Context, cfg Config, log hclog.Logger) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	ccfg := clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      zap.NewNop(),
		// Keepalive pings cannot go below 10 s: the renewal loop's own
		// per-request timeouts are what detect a hung member.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
	}
	if cfg.useTLS() {
		if cfg.CAFile != "" || cfg.CertFile != "" {
			info := transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.CAFile}
			t, err := info.ClientConfig()
			if err != nil {
				return nil, fmt.Errorf("coord: TLS files: %w", err)
			}
			ccfg.TLS = t
		} else {
			ccfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	cli, err := clientv3.New(ccfg)
	if err != nil {
		return nil, fmt.Errorf("coord: connect to etcd %v: %w", cfg.Endpoints, err)
	}
	s := &Session{cfg: cfg, log: log.Named("coord"), cli: cli, ccfg: ccfg, seen: map[string]Member{}}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	// One client per member, for the requests sent to all at once: the
	// shared client's balancer may queue a request behind a member that is
	// cut off or catching up, while a direct one to each member cannot be.
	s.perMember = []*clientv3.Client{cli}
	if len(cfg.Endpoints) > 1 {
		s.perMember = nil
		for _, ep := range cfg.Endpoints {
			one := ccfg
			one.Endpoints = []string{ep}
			rc, err := clientv3.New(one)
			if err != nil {
				s.stop()
				s.closeClients()
				return nil, fmt.Errorf("coord: connect to etcd %s: %w", ep, err)
			}
			s.perMember = append(s.perMember, rc)
		}
	}

	lease, ttl, sent, err := s.join(ctx)
	if err != nil {
		s.stop()
		s.closeClients()
		return nil, err
	}
	s.mu.Lock()
	s.setLease(lease, ttl, sent)
	s.mu.Unlock()
	s.log.Info("joined", "prefix", cfg.Prefix, "id", cfg.ID, "lease", fmt.Sprintf("%x", int64(lease)), "ttl", ttl)
	s.wg.Add(1)
	go s.renewLoop()
	if cfg.PreferredLeader != "" {
		s.wg.Add(1)
		go s.leaderLoop()
	}
	return s, nil
}

// join grants a lease and registers the member key under it. While an
// older session's key with the same ID exists it revokes its fresh lease,
// waits PollInterval and tries again, for at most 2×LeaseTTL+2s (an old
// lease of this tandem expires within that) or until ctx ends.
func (s *Session) join(ctx context.Context) (clientv3.LeaseID, time.Duration, time.Time, error) {
	deadline := time.Now().Add(2*s.cfg.LeaseTTL + 2*time.Second)
	var taken error // the last "ID taken" answer: what join waits on
	first := true
	for {
		gctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
		lease, ttl, sent, err := s.grant(gctx)
		cancel()
		if err != nil {
			if first {
				return 0, 0, sent, fmt.Errorf("coord: grant lease from etcd %v: %w", s.cfg.Endpoints, err)
			}
		} else {
			err = s.register(ctx, lease)
			if err == nil {
				return lease, ttl, sent, nil
			}
			s.revoke(lease)
			if !errors.Is(err, errIDTaken) {
				return 0, 0, sent, joinError(taken, err, nil)
			}
			taken = err
		}
		first = false
		if time.Now().After(deadline) {
			return 0, 0, sent, joinError(taken, err, nil)
		}
		select {
		case <-ctx.Done():
			return 0, 0, sent, joinError(taken, err, ctx.Err())
		case <-time.After(s.cfg.PollInterval):
		}
	}
}

// joinError is why join gave up: its last try's error and, if ctx ended,
// ctx's. A last try that failed otherwise (a grant timing out under load)
// does not hide that an earlier one found the ID taken, which is what join
// waited on.
func joinError(taken, last, ctxErr error) error {
	err := last
	if taken != nil && last != taken {
		err = fmt.Errorf("%w (last try: %v)", taken, last)
	}
	if ctxErr != nil {
		err = fmt.Errorf("%w (%v)", err, ctxErr)
	}
	return err
}

// grant asks etcd for a new lease; sent is when the request was sent.
func (s *Session) grant(ctx context.Context) (clientv3.LeaseID, time.Duration, time.Time, error) {
	sent := time.Now()
	resp, err := s.cli.Grant(clientv3.WithRequireLeader(ctx), int64(s.cfg.LeaseTTL/time.Second))
	if err != nil {
		return 0, 0, sent, err
	}
	ttl := time.Duration(resp.TTL) * time.Second
	if ttl != s.cfg.LeaseTTL {
		s.log.Warn("etcd granted a different lease TTL (its minimum is ceil(1.5 × election timeout))",
			"asked", s.cfg.LeaseTTL, "granted", ttl)
	}
	return resp.ID, ttl, sent, nil
}

// setLease installs a lease whose grant or renewal was sent at sent. s.mu held.
func (s *Session) setLease(lease clientv3.LeaseID, ttl time.Duration, sent time.Time) {
	s.lease, s.ttl, s.lastSent = lease, ttl, sent
	s.until = sent.Add(ttl - s.cfg.Margin)
}

// revoke drops a lease, best effort, bounded by RequestTimeout.
func (s *Session) revoke(lease clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	if _, err := first(ctx, s, func(ctx context.Context, c *clientv3.Client) (*clientv3.LeaseRevokeResponse, error) {
		return c.Revoke(ctx, lease)
	}); err != nil {
		s.log.Debug("revoke lease", "error", err)
	}
}

// Valid reports whether this session may act: it holds a lease that it
// renewed itself, and until (the send time of the last successful renewal +
// the granted TTL − Margin) has not passed. etcd cannot expire the lease,
// and so no other tandem can take over its keys, before until.
func (s *Session) Valid() (until time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.lease == 0 {
		return time.Time{}, false
	}
	return s.until, time.Now().Before(s.until)
}

// Status is a snapshot for the admin API.
type Status struct {
	ID          string
	Host        string
	Lease       int64         // etcd lease ID, 0 while lost
	TTL         time.Duration // as granted
	LastRenewal time.Time     // send time of the last successful renewal
	ValidUntil  time.Time
	Valid       bool
	Coordinator bool
	AckedEpoch  uint64
}

// Status returns a snapshot of this session.
func (s *Session) Status() Status {
	until, ok := s.Valid()
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{ID: s.cfg.ID, Host: s.cfg.Host, Lease: int64(s.lease), TTL: s.ttl, LastRenewal: s.lastSent,
		ValidUntil: until, Valid: ok, Coordinator: ok && s.elected && s.electLease == s.lease, AckedEpoch: s.acked}
}

// renewLoop renews the lease every RenewInterval through every member at
// once (renewOnce), each renewal bounded by RenewTimeout and sent with
// WithRequireLeader, so a hung or leaderless member costs nothing; after a
// failed renewal it tries again every RenewInterval/5. It never relies on the client
// library's KeepAlive stream or Session.Done, which notice a loss late.
func (s *Session) renewLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(s.cfg.RenewInterval)
	defer timer.Stop()
	failing := false
	for tick := 0; ; tick++ {
		select {
		case <-s.stopCtx.Done():
			return
		case <-timer.C:
		}
		sent := time.Now()
		timer.Reset(s.cfg.RenewInterval)
		s.mu.Lock()
		lease := s.lease
		s.mu.Unlock()
		if lease == 0 {
			s.regrant()
			continue
		}
		ttl, err := s.renewOnce(lease)
		switch {
		case err == nil:
			s.mu.Lock()
			if s.lease == lease {
				s.setLease(lease, ttl, sent)
			}
			s.mu.Unlock()
			if failing {
				s.log.Info("lease renewals succeed again")
				failing = false
			}
			s.checkCoordinator(lease)
			if tick%4 == 0 {
				s.checkOrphan(lease)
			}
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			s.leaseLost(lease, "etcd no longer knows the lease")
			s.regrant()
		case s.stopCtx.Err() != nil:
			return
		default:
			s.log.Debug("renewal failed", "error", err, "took", time.Since(sent))
			if !failing {
				until, _ := s.Valid()
				s.log.Warn("lease renewal failed", "error", err, "valid_until", until)
				failing = true
			}
			// Again soon, not a whole interval later: while etcd elects
			// a new leader, members answer "no leader" at once, and the
			// first renewal after the election should land right after
			// it, before the validity left runs out.
			timer.Reset(max(0, time.Until(sent.Add(s.retryInterval()))))
		}
	}
}

// retryInterval spaces renewals after a failed one: RenewInterval/5.
func (s *Session) retryInterval() time.Duration { return s.cfg.RenewInterval / 5 }

// renewOnce sends one renewal of lease through every member at once, each
// bounded by RenewTimeout and refused by a member without a leader, and
// returns the granted TTL of the first success. The lease counts as lost
// only if no member renewed it and one said it does not exist.
func (s *Session) renewOnce(lease clientv3.LeaseID) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(s.stopCtx, s.cfg.RenewTimeout)
	defer cancel()
	type result struct {
		ttl time.Duration
		err error
	}
	results := make(chan result, len(s.perMember))
	for _, rc := range s.perMember {
		go func(rc *clientv3.Client) {
			resp, err := rc.KeepAliveOnce(clientv3.WithRequireLeader(ctx), lease)
			if err != nil {
				results <- result{err: err}
				return
			}
			results <- result{ttl: time.Duration(resp.TTL) * time.Second}
		}(rc)
	}
	var notFound, other error
	for range s.perMember {
		r := <-results
		switch {
		case r.err == nil:
			return r.ttl, nil
		case errors.Is(r.err, rpctypes.ErrLeaseNotFound):
			notFound = r.err
		default:
			other = r.err
		}
	}
	if notFound != nil {
		return 0, notFound
	}
	return 0, other
}

// closeClients closes the shared client and the per-member clients.
func (s *Session) closeClients() error {
	err := s.cli.Close()
	for _, rc := range s.perMember {
		if rc != s.cli {
			rc.Close()
		}
	}
	return err
}

// leaseLost forgets lease (if still current) and everything bound to it.
func (s *Session) leaseLost(lease clientv3.LeaseID, why string) {
	s.mu.Lock()
	if s.lease != lease || lease == 0 {
		s.mu.Unlock()
		return
	}
	s.lease, s.until = 0, time.Time{}
	wasCoord := s.elected
	s.elected = false
	s.mu.Unlock()
	s.log.Warn("lease lost", "lease", fmt.Sprintf("%x", int64(lease)), "why", why)
	s.event(EventLeaseLost, why)
	if wasCoord {
		s.event(EventLostCoordinator, "lease lost")
	}
}

// regrant grants a new lease and re-registers under it. A new lease never
// carries the coordinator role: the session must campaign again.
func (s *Session) regrant() {
	ctx, cancel := context.WithTimeout(s.stopCtx, s.cfg.RequestTimeout)
	defer cancel()
	lease, ttl, sent, err := s.grant(ctx)
	if err != nil {
		s.log.Debug("grant lease", "error", err)
		return
	}
	if err := s.register(ctx, lease); err != nil {
		s.log.Warn("re-register", "error", err)
		s.revoke(lease)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.setLease(lease, ttl, sent)
	s.mu.Unlock()
	s.log.Info("lease regained", "lease", fmt.Sprintf("%x", int64(lease)))
	s.event(EventLeaseRegained, fmt.Sprintf("lease %x", int64(lease)))
}

func (s *Session) event(kind, detail string) {
	if s.cfg.Events != nil {
		s.cfg.Events(kind, detail)
	}
}

// Close stops the renewal loop and revokes the lease, which deletes this
// tandem's member key and, if it is coordinator, the coordinator key at
// once (a clean hand-over). Bounded by RequestTimeout.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	lease := s.lease
	wasCoord := s.elected
	s.elected, s.lease = false, 0
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
	if wasCoord {
		s.event(EventLostCoordinator, "session closed")
	}
	if lease != 0 {
		s.revoke(lease)
	}
	return s.closeClients()
}

// abandon stops the session without revoking its lease, as a crash would
// (tests only): the lease, member key and coordinator key live on in etcd
// until the TTL runs out.
func (s *Session) abandon() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
	s.closeClients()
}

// reqCtx bounds one etcd request by RequestTimeout and requires a leader.
func (s *Session) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	return clientv3.WithRequireLeader(ctx), cancel
}
