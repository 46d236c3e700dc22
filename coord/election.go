package coord

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The election is one key, <prefix>/coordinator, created by a transaction
// "if the key does not exist, put it under my lease". Whoever created it is
// coordinator for as long as the key exists, i.e. as long as its lease
// lives; the key's CreateRevision identifies that term.
//
// Why not concurrency.Election: it needs a concurrency.Session, which runs
// the client library's own KeepAlive stream and Done() (the late detection
// this package avoids); it waits for its predecessors through watches,
// which a hung member traps for 10 s and more; and its Leader/Observe
// return the stored value, so a restarted candidate with the same name
// believes it leads while its old lease lives. One key, one transaction and
// linearizable polling (a watch only as a wake-up hint) avoid all three.

// Campaign blocks until this session is coordinator, or ctx ends. It only
// tries while Valid(); a lost lease ends a term, and the session must
// campaign again. Attempts start every PollInterval (and when a watch says
// the key changed), up to three at once; each reads the key from every
// member at once and, if it is free, sends the creating transaction to
// every member at once, so an unreachable member delays nothing.
func (s *Session) Campaign(ctx context.Context) error {
	key := s.cfg.coordinatorKey()
	wake, stop := s.wakeOn(ctx, key, false)
	defer stop()
	s.mu.Lock()
	s.campaigns++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.campaigns--
		s.mu.Unlock()
	}()
	// Attempts may still run when Campaign returns; from then on they
	// must not make this session coordinator (the caller may have resigned
	// meanwhile). A key one of them still creates is an orphan, which the
	// renewal loop removes.
	var overMu sync.Mutex
	over := false
	cctx, cancelAttempts := context.WithCancel(ctx)
	defer func() {
		overMu.Lock()
		over = true
		overMu.Unlock()
		cancelAttempts()
	}()
	won := func(lease clientv3.LeaseID, rev int64) {
		overMu.Lock()
		defer overMu.Unlock()
		if !over {
			s.becameCoordinator(lease, rev)
		}
	}
	err := s.poll(cctx, wake, func(ctx context.Context) bool {
		overMu.Lock()
		stale := over
		overMu.Unlock()
		if stale || s.IsCoordinator() {
			return true
		}
		s.mu.Lock()
		lease, ok := s.lease, s.lease != 0 && !s.closed && time.Now().Before(s.until)
		val, _ := json.Marshal(s.self(s.acked))
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return true
		}
		if !ok {
			return false
		}
		// A linearizable read first (cheap, no raft entry): while another
		// tandem is coordinator, that is all an attempt costs etcd.
		rctx, cancel := s.reqCtx(ctx)
		defer cancel()
		sent := time.Now()
		cur, err := first(rctx, s, func(ctx context.Context, c *clientv3.Client) (*clientv3.GetResponse, error) {
			return c.Get(ctx, key)
		})
		if err != nil {
			s.log.Debug("campaign: read the coordinator key", "error", err)
			return false
		}
		if len(cur.Kvs) == 1 {
			if cur.Kvs[0].Lease == int64(lease) {
				// An earlier attempt of this session created it.
				won(lease, cur.Kvs[0].CreateRevision)
			}
			return s.IsCoordinator()
		}
		// Sent to every member: at most one copy creates the key; the
		// others find it under this lease.
		resp, err := first(rctx, s, func(ctx context.Context, c *clientv3.Client) (*clientv3.TxnResponse, error) {
			return c.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
				Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).
				Else(clientv3.OpGet(key)).Commit()
		})
		if s.log.IsTrace() {
			s.log.Trace("campaign attempt", "error", err, "took", time.Since(sent), "won", err == nil && resp.Succeeded)
		}
		switch {
		case err != nil:
			s.log.Debug("campaign", "error", err)
		case resp.Succeeded:
			won(lease, resp.Header.Revision)
		default:
			kvs := resp.Responses[0].GetResponseRange().Kvs
			if len(kvs) == 1 && kvs[0].Lease == int64(lease) {
				// Another copy of this attempt, or an earlier attempt
				// whose answer was lost.
				won(lease, kvs[0].CreateRevision)
			}
		}
		return s.IsCoordinator()
	})
	if err != nil {
		return err
	}
	if !s.IsCoordinator() {
		return ErrNoLease // closed, or the lease lost right after winning
	}
	return nil
}

// poll starts attempt at once, then every PollInterval and on each wake,
// with up to three running at a time: a request stuck on an unreachable
// member (until RequestTimeout) does not hold up the next. It returns nil
// when an attempt reports done, or ctx's error. Attempts still running
// then end by themselves (their ctx is bounded).
func (s *Session) poll(ctx context.Context, wake <-chan struct{}, attempt func(context.Context) bool) error {
	const maxInFlight = 3
	done := make(chan bool, maxInFlight)
	inflight := 0
	start := func() {
		if inflight < maxInFlight {
			inflight++
			go func() { done <- attempt(ctx) }()
		}
	}
	start()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ok := <-done:
			inflight--
			if ok {
				return nil
			}
		case <-wake:
			start()
		case <-t.C:
			start()
		}
	}
}

// becameCoordinator records a won term, unless the lease changed meanwhile.
func (s *Session) becameCoordinator(lease clientv3.LeaseID, rev int64) {
	s.mu.Lock()
	if s.lease != lease || s.closed || (s.elected && s.electRev == rev) {
		s.mu.Unlock()
		return
	}
	s.elected, s.electLease, s.electRev = true, lease, rev
	s.mu.Unlock()
	s.log.Info("became coordinator", "revision", rev)
	s.event(EventBecameCoordinator, fmt.Sprintf("revision %d", rev))
}

// lostCoordinator ends the term rev (if still current).
func (s *Session) lostCoordinator(rev int64, why string) {
	s.mu.Lock()
	if !s.elected || s.electRev != rev {
		s.mu.Unlock()
		return
	}
	s.elected = false
	s.mu.Unlock()
	s.log.Warn("lost coordinator", "why", why)
	s.event(EventLostCoordinator, why)
}

// IsCoordinator reports whether this session won the election under its
// current lease and that lease is Valid now. Check it right before every
// action a coordinator takes; Save checks it again inside etcd.
func (s *Session) IsCoordinator() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closed && s.elected && s.lease != 0 && s.electLease == s.lease && time.Now().Before(s.until)
}

// checkCoordinator confirms, after each renewal, that the coordinator key
// still belongs to this term (an operator may delete it).
func (s *Session) checkCoordinator(lease clientv3.LeaseID) {
	s.mu.Lock()
	elected, rev := s.elected && s.electLease == lease, s.electRev
	s.mu.Unlock()
	if !elected {
		return
	}
	resp, err := s.getCoordinatorKey(s.stopCtx, s.cfg.RenewTimeout)
	if err != nil {
		return // validity runs out by itself if etcd stays unreachable
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != rev {
		s.lostCoordinator(rev, "coordinator key deleted or replaced in etcd")
	}
}

// checkOrphan removes a coordinator key held by this session's lease that
// no term of this session owns: a campaign attempt that landed after its
// caller gave up. Left alone it would block every election for as long as
// this tandem lives.
func (s *Session) checkOrphan(lease clientv3.LeaseID) {
	key := s.cfg.coordinatorKey()
	resp, err := s.getCoordinatorKey(s.stopCtx, s.cfg.RenewTimeout)
	if err != nil || len(resp.Kvs) == 0 || resp.Kvs[0].Lease != int64(lease) {
		return
	}
	ctx, cancel := context.WithTimeout(s.stopCtx, s.cfg.RenewTimeout)
	defer cancel()
	s.mu.Lock()
	busy := s.campaigns > 0 || (s.elected && s.electRev == resp.Kvs[0].CreateRevision)
	s.mu.Unlock()
	if busy {
		return
	}
	if _, err := s.cli.Txn(clientv3.WithRequireLeader(ctx)).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", resp.Kvs[0].CreateRevision)).
		Then(clientv3.OpDelete(key)).Commit(); err == nil {
		s.log.Warn("removed a coordinator key of this lease that no campaign owns", "revision", resp.Kvs[0].CreateRevision)
	}
}

// Resign ends this session's term now, if it has one: it stops being
// coordinator locally first, then deletes the key (only if still its own),
// so another candidate wins within one round trip.
func (s *Session) Resign(ctx context.Context) error {
	s.mu.Lock()
	if !s.elected {
		s.mu.Unlock()
		return nil
	}
	rev := s.electRev
	s.mu.Unlock()
	s.lostCoordinator(rev, "resigned")
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	key := s.cfg.coordinatorKey()
	_, err := first(rctx, s, func(ctx context.Context, c *clientv3.Client) (*clientv3.TxnResponse, error) {
		return c.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
			Then(clientv3.OpDelete(key)).Commit()
	})
	if err != nil {
		return fmt.Errorf("coord: resign: %w", err)
	}
	return nil
}

// Coordinator reads (linearizable) who holds the coordinator key. Self is
// decided by the key's lease, never by the stored value: the ID in the
// value may be this tandem's own from before a restart.
func (s *Session) Coordinator(ctx context.Context) (Member, bool, error) {
	resp, err := s.getCoordinatorKey(ctx, s.cfg.RequestTimeout)
	if err != nil {
		return Member{}, false, fmt.Errorf("coord: read coordinator: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return Member{}, false, nil
	}
	kv := resp.Kvs[0]
	m, err := parseMember(kv.Value)
	if err != nil {
		return Member{}, false, fmt.Errorf("coord: coordinator key holds unreadable value: %w", err)
	}
	s.mu.Lock()
	lease := int64(s.lease)
	s.mu.Unlock()
	m.Lease, m.CreateRevision, m.Present = kv.Lease, kv.CreateRevision, true
	m.Self = lease != 0 && kv.Lease == lease
	return m, true, nil
}

// getCoordinatorKey reads the coordinator key (linearizable) from every
// member at once, bounded by timeout.
func (s *Session) getCoordinatorKey(ctx context.Context, timeout time.Duration) (*clientv3.GetResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	key := s.cfg.coordinatorKey()
	return first(clientv3.WithRequireLeader(ctx), s, func(ctx context.Context, c *clientv3.Client) (*clientv3.GetResponse, error) {
		return c.Get(ctx, key)
	})
}
