package coord

import (
	"context"
	"encoding/json"
	"fmt"
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
// campaign again.
func (s *Session) Campaign(ctx context.Context) error {
	key := s.cfg.coordinatorKey()
	wake, stop := s.wakeOn(ctx, key, false)
	defer stop()
	for {
		if s.IsCoordinator() {
			return nil
		}
		s.mu.Lock()
		lease, ok := s.lease, s.lease != 0 && !s.closed && time.Now().Before(s.until)
		val, _ := json.Marshal(s.self(s.acked))
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return ErrNoLease
		}
		if ok {
			rctx, cancel := s.reqCtx(ctx)
			resp, err := s.cli.Txn(rctx).
				If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
				Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).
				Else(clientv3.OpGet(key)).Commit()
			cancel()
			switch {
			case err != nil:
				s.log.Debug("campaign", "error", err)
			case resp.Succeeded:
				s.becameCoordinator(lease, resp.Header.Revision)
			default:
				kvs := resp.Responses[0].GetResponseRange().Kvs
				if len(kvs) == 1 && kvs[0].Lease == int64(lease) {
					// An earlier attempt whose answer was lost.
					s.becameCoordinator(lease, kvs[0].CreateRevision)
				}
			}
			if s.IsCoordinator() {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-time.After(s.cfg.PollInterval):
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
	ctx, cancel := context.WithTimeout(s.stopCtx, s.cfg.RenewTimeout)
	defer cancel()
	resp, err := s.cli.Get(clientv3.WithRequireLeader(ctx), s.cfg.coordinatorKey())
	if err != nil {
		return // validity runs out by itself if etcd stays unreachable
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != rev {
		s.lostCoordinator(rev, "coordinator key deleted or replaced in etcd")
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
	_, err := s.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return fmt.Errorf("coord: resign: %w", err)
	}
	return nil
}

// Coordinator reads (linearizable) who holds the coordinator key. Self is
// decided by the key's lease, never by the stored value: the ID in the
// value may be this tandem's own from before a restart.
func (s *Session) Coordinator(ctx context.Context) (Member, bool, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.cfg.coordinatorKey())
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
