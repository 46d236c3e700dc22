package coord

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Load reads the decision (<prefix>/decision) with a linearizable read.
// modRev is the key's ModRevision, to pass to Save; ok is false (and modRev
// 0) when no decision was ever saved.
func (s *Session) Load(ctx context.Context) (value []byte, modRev int64, ok bool, err error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.cfg.decisionKey())
	if err != nil {
		return nil, 0, false, fmt.Errorf("coord: load decision: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, false, nil
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, true, nil
}

// Save writes the decision in one transaction that succeeds only if the
// decision's ModRevision is still prevModRev (0: it must not exist) AND the
// coordinator key still exists with this term's CreateRevision, so a stale
// coordinator's save fails inside etcd even if its own clock misleads it.
// It returns the decision's new ModRevision; ErrConflict if the decision
// changed; ErrNotCoordinator if this session is not coordinator (checked
// locally first, then by etcd). Any other error leaves the outcome unknown:
// Load to learn it.
func (s *Session) Save(ctx context.Context, value []byte, prevModRev int64) (int64, error) {
	s.mu.Lock()
	rev := s.electRev
	s.mu.Unlock()
	if !s.IsCoordinator() {
		return 0, ErrNotCoordinator
	}
	return s.saveTxn(ctx, value, prevModRev, rev)
}

// saveTxn is Save's transaction for the coordinator term rev.
func (s *Session) saveTxn(ctx context.Context, value []byte, prevModRev, rev int64) (int64, error) {
	dkey, ckey := s.cfg.decisionKey(), s.cfg.coordinatorKey()
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.ModRevision(dkey), "=", prevModRev),
			clientv3.Compare(clientv3.CreateRevision(ckey), "=", rev)).
		Then(clientv3.OpPut(dkey, string(value))).
		Else(clientv3.OpGet(dkey), clientv3.OpGet(ckey)).Commit()
	if err != nil {
		return 0, fmt.Errorf("coord: save decision: %w", err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	ckvs := resp.Responses[1].GetResponseRange().Kvs
	if len(ckvs) == 0 || ckvs[0].CreateRevision != rev {
		s.lostCoordinator(rev, "coordinator key gone or re-created when saving the decision")
		return 0, ErrNotCoordinator
	}
	cur := int64(0)
	if dkvs := resp.Responses[0].GetResponseRange().Kvs; len(dkvs) == 1 {
		cur = dkvs[0].ModRevision
	}
	return 0, fmt.Errorf("%w (loaded at revision %d, now %d)", ErrConflict, prevModRev, cur)
}

// Watch sends the decision's value whenever it is saved, until ctx ends
// (then the channel is closed). Only the latest value waits in the channel.
// It is a hint that something changed: act only on a fresh Load. On a
// (re)start of the underlying watch it first sends the current value, so a
// change missed while the watch was down is not lost.
func (s *Session) Watch(ctx context.Context) <-chan []byte {
	out := make(chan []byte, 1)
	send := func(v []byte) {
		for {
			select {
			case out <- v:
				return
			default:
			}
			select { // drop the older value, keep the latest
			case <-out:
			default:
			}
		}
	}
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			s.watchOnce(ctx, send)
			select {
			case <-ctx.Done():
			case <-time.After(s.cfg.PollInterval):
			}
		}
	}()
	return out
}

// watchOnce sends the current decision, then every saved one until the
// watch fails or ctx ends.
func (s *Session) watchOnce(ctx context.Context, send func([]byte)) {
	rctx, cancel := s.reqCtx(ctx)
	resp, err := s.cli.Get(rctx, s.cfg.decisionKey())
	cancel()
	if err != nil {
		s.log.Debug("decision watch: load", "error", err)
		return
	}
	if len(resp.Kvs) == 1 {
		send(resp.Kvs[0].Value)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := s.cli.Watch(clientv3.WithRequireLeader(wctx), s.cfg.decisionKey(), clientv3.WithRev(resp.Header.Revision+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			s.log.Debug("decision watch", "error", err)
			return
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypePut {
				send(ev.Kv.Value)
			}
		}
	}
}
