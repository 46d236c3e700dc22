package coord

import (
	"bytes"
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Load reads the decision (<prefix>/decision) with a linearizable read,
// from every member at once (the first answer wins). modRev is the key's
// ModRevision, to pass to Save; ok is false (and modRev 0) when no decision
// was ever saved.
func (s *Session) Load(ctx context.Context) (value []byte, modRev int64, ok bool, err error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	key := s.cfg.decisionKey()
	resp, err := first(rctx, s, func(ctx context.Context, c *clientv3.Client) (*clientv3.GetResponse, error) {
		return c.Get(ctx, key)
	})
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

// saveTxn is Save's transaction for the coordinator term rev, sent to
// every member at once. All copies carry the same condition, so at most one
// takes effect; a copy that failed it after another took effect finds the
// decision equal to value, written in this term (only this term's
// coordinator can write it, one save at a time), and counts as the save.
func (s *Session) saveTxn(ctx context.Context, value []byte, prevModRev, rev int64) (int64, error) {
	dkey, ckey := s.cfg.decisionKey(), s.cfg.coordinatorKey()
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := first(rctx, s, func(ctx context.Context, c *clientv3.Client) (*clientv3.TxnResponse, error) {
		return c.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(dkey), "=", prevModRev),
				clientv3.Compare(clientv3.CreateRevision(ckey), "=", rev)).
			Then(clientv3.OpPut(dkey, string(value))).
			Else(clientv3.OpGet(dkey), clientv3.OpGet(ckey)).Commit()
	})
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
		if bytes.Equal(dkvs[0].Value, value) && cur > prevModRev {
			return cur, nil // another copy of this save took effect
		}
	}
	return 0, fmt.Errorf("%w (loaded at revision %d, now %d)", ErrConflict, prevModRev, cur)
}
