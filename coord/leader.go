package coord

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// When the host holding etcd's raft leader dies, the survivors elect a new
// leader and every lease is extended by a full TTL: a coordinator on that
// host is replaced only after about 2×LeaseTTL + the election timeout
// (measured 3.4-3.6 s with TTL 1 s, against 1.0-2.0 s otherwise). Keeping
// the leader on the witness, which runs no database, keeps an app server's
// death within the 3 s goal.

// MoveLeaderTo makes the etcd member called name (its --name) the raft
// leader, if it is not already: moved reports whether a transfer was asked.
// The transfer is sent to the current leader, as etcd requires.
func (s *Session) MoveLeaderTo(ctx context.Context, name string) (moved bool, err error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	ml, err := s.cli.MemberList(rctx)
	if err != nil {
		return false, fmt.Errorf("coord: move etcd leader: list members: %w", err)
	}
	var target uint64
	var names []string
	urls := map[uint64][]string{}
	for _, m := range ml.Members {
		names = append(names, m.Name)
		urls[m.ID] = m.ClientURLs
		if m.Name == name {
			target = m.ID
		}
	}
	if target == 0 {
		sort.Strings(names)
		return false, fmt.Errorf("coord: move etcd leader: no etcd member named %q (members: %s)", name, strings.Join(names, ", "))
	}
	leader, err := s.etcdLeader(rctx)
	if err != nil {
		return false, err
	}
	if leader == target {
		return false, nil
	}
	if len(urls[leader]) == 0 {
		return false, fmt.Errorf("coord: move etcd leader: leader %x publishes no client URL", leader)
	}
	cfg := s.ccfg
	cfg.Endpoints = urls[leader]
	lc, err := clientv3.New(cfg)
	if err != nil {
		return false, fmt.Errorf("coord: move etcd leader: connect to the leader: %w", err)
	}
	defer lc.Close()
	if _, err := lc.MoveLeader(rctx, target); err != nil {
		return true, fmt.Errorf("coord: move etcd leader to %q: %w", name, err)
	}
	return true, nil
}

// etcdLeader asks every configured endpoint at once who leads and takes
// the first answer: one unreachable member must not use up the timeout.
func (s *Session) etcdLeader(ctx context.Context) (uint64, error) {
	type answer struct {
		leader uint64
		err    error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan answer, len(s.cfg.Endpoints))
	for _, ep := range s.cfg.Endpoints {
		go func(ep string) {
			st, err := s.cli.Status(ctx, ep)
			switch {
			case err != nil:
				answers <- answer{err: fmt.Errorf("%s: %w", ep, err)}
			case st.Leader == 0:
				answers <- answer{err: fmt.Errorf("%s: no leader", ep)}
			default:
				answers <- answer{leader: st.Leader}
			}
		}(ep)
	}
	var errs []error
	for range s.cfg.Endpoints {
		a := <-answers
		if a.err == nil {
			return a.leader, nil
		}
		errs = append(errs, a.err)
	}
	return 0, fmt.Errorf("coord: find etcd leader: %w", errors.Join(errs...))
}

// leaderLoop runs while PreferredLeader is set: every LeaderCheckInterval
// the coordinator (and only it, so that tandems do not race) moves etcd's
// leadership back to the preferred member.
func (s *Session) leaderLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.LeaderCheckInterval)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-s.stopCtx.Done():
			return
		case <-t.C:
		}
		if !s.IsCoordinator() {
			continue
		}
		moved, err := s.MoveLeaderTo(s.stopCtx, s.cfg.PreferredLeader)
		switch {
		case err != nil:
			if err.Error() != lastErr {
				s.log.Warn("cannot keep etcd's leader on the preferred member", "member", s.cfg.PreferredLeader, "error", err)
				lastErr = err.Error()
			}
		case moved:
			s.log.Info("moved etcd's leader to the preferred member", "member", s.cfg.PreferredLeader)
			lastErr = ""
		default:
			lastErr = ""
		}
	}
}
