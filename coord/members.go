package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Member is one tandem as registered under <prefix>/members/<id>. The key
// is attached to the tandem's lease: when the lease expires in etcd the key
// is deleted in the same step.
type Member struct {
	ID         string    `json:"id"`
	Host       string    `json:"host,omitempty"`
	Admin      string    `json:"admin,omitempty"`
	AckedEpoch uint64    `json:"acked_epoch"`
	Updated    time.Time `json:"updated"`

	// From etcd, not stored in the value.
	Lease          int64 `json:"-"` // lease the key is attached to
	CreateRevision int64 `json:"-"`
	// Present: the key exists now. A member seen earlier by this session
	// whose key is gone has Present false: its lease has certainly
	// expired (or it closed its session).
	Present bool `json:"-"`
	// Self: the key is attached to this session's current lease.
	Self bool `json:"-"`
}

// self is this session's member value with the given acked epoch.
func (s *Session) self(acked uint64) Member {
	return Member{ID: s.cfg.ID, Host: s.cfg.Host, Admin: s.cfg.Admin, AckedEpoch: acked, Updated: time.Now().UTC()}
}

// errIDTaken: another live lease holds this session's member key.
var errIDTaken = errors.New("is registered by another live session: is another tandem using the same id?")

// register puts this session's member key under lease, only if no other
// lease holds it: a key of another lease means another session with the
// same ID (or this tandem before a restart) is still alive in etcd.
func (s *Session) register(ctx context.Context, lease clientv3.LeaseID) error {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	s.mu.Lock()
	val, _ := json.Marshal(s.self(s.acked))
	s.mu.Unlock()
	key := s.cfg.memberKey(s.cfg.ID)
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	// Sent to every member: at most one copy creates the key, the others
	// find it under this lease.
	resp, err := first(rctx, s, func(ctx context.Context, c *clientv3.Client) (*clientv3.TxnResponse, error) {
		return c.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).
			Else(clientv3.OpGet(key)).Commit()
	})
	if err != nil {
		return fmt.Errorf("coord: register member %q: %w", s.cfg.ID, err)
	}
	if resp.Succeeded {
		s.memberRev = resp.Header.Revision
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 1 && kvs[0].Lease == int64(lease) {
		s.memberRev = kvs[0].ModRevision
		return nil // another copy, or an earlier attempt, landed
	}
	return fmt.Errorf("coord: ID %q %w", s.cfg.ID, errIDTaken)
}

// Ack records in etcd that this tandem has adopted epoch: acked_epoch only
// increases (a smaller or equal epoch is a no-op). Call it only after the
// tandem routes by that epoch's decision.
func (s *Session) Ack(ctx context.Context, epoch uint64) error {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	s.mu.Lock()
	lease, acked, closed := s.lease, s.acked, s.closed
	val, _ := json.Marshal(s.self(epoch))
	s.mu.Unlock()
	if closed || lease == 0 {
		return ErrNoLease
	}
	if epoch <= acked {
		return nil
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	// Only this session writes its key (Open made sure of that), under its
	// lease (an expired lease fails the put), each write conditional on the
	// ModRevision it last wrote: sent to every member at once, one copy
	// takes effect and the others find its value; a copy that arrives late
	// can never overwrite a later acknowledgement.
	key := s.cfg.memberKey(s.cfg.ID)
ack:
	for attempt := 1; ; attempt++ {
		rev := s.memberRev // read here: copies may still run when first returns
		resp, err := first(rctx, s, func(ctx context.Context, c *clientv3.Client) (*clientv3.TxnResponse, error) {
			return c.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
				Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).
				Else(clientv3.OpGet(key)).Commit()
		})
		if err != nil {
			return fmt.Errorf("coord: ack epoch %d: %w", epoch, err)
		}
		if resp.Succeeded {
			s.memberRev = resp.Header.Revision
			break ack
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		switch {
		case len(kvs) == 0:
			// Deleted by hand while the lease lives: a missing key's
			// ModRevision is 0, so the next attempt creates it again.
			s.memberRev = 0
		case kvs[0].Lease != int64(lease):
			return fmt.Errorf("coord: ack epoch %d: this tandem's member key is under another lease: %w", epoch, ErrNoLease)
		default:
			s.memberRev = kvs[0].ModRevision
			if m, err := parseMember(kvs[0].Value); err == nil && m.AckedEpoch >= epoch {
				break ack // another copy of this acknowledgement took effect
			}
		}
		// An earlier write whose answer was lost took effect, or the key
		// was gone: again, over the revision found.
		if attempt == 3 {
			return fmt.Errorf("coord: ack epoch %d: the member key keeps changing under this tandem", epoch)
		}
	}
	s.mu.Lock()
	if epoch > s.acked {
		s.acked = epoch
	}
	s.mu.Unlock()
	return nil
}

// Members lists every member, with a linearizable read from every etcd
// member at once (the first answer wins): those whose key
// exists (Present) and those this session saw before whose key is gone.
// Sorted by ID.
func (s *Session) Members(ctx context.Context) ([]Member, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	prefix := s.cfg.membersPrefix()
	resp, err := first(rctx, s, func(ctx context.Context, c *clientv3.Client) (*clientv3.GetResponse, error) {
		return c.Get(ctx, prefix, clientv3.WithPrefix())
	})
	if err != nil {
		return nil, fmt.Errorf("coord: list members: %w", err)
	}
	s.mu.Lock()
	lease := int64(s.lease)
	s.mu.Unlock()
	present := map[string]bool{}
	var out []Member
	for _, kv := range resp.Kvs {
		m, err := parseMember(kv.Value)
		if err != nil {
			s.log.Warn("unreadable member key", "key", string(kv.Key), "error", err)
			continue
		}
		id := strings.TrimPrefix(string(kv.Key), s.cfg.membersPrefix())
		m.ID = id
		m.Lease, m.CreateRevision, m.Present = kv.Lease, kv.CreateRevision, true
		m.Self = lease != 0 && kv.Lease == lease
		present[id] = true
		out = append(out, m)
	}
	s.mu.Lock()
	for _, m := range out {
		s.seen[m.ID] = m
	}
	for id, m := range s.seen {
		if !present[id] {
			m.Present, m.Self = false, false
			out = append(out, m)
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func parseMember(b []byte) (Member, error) {
	var m Member
	if err := json.Unmarshal(b, &m); err != nil {
		return Member{}, err
	}
	return m, nil
}

// WaitAcked is the barrier before a new node becomes writable: it returns
// nil once every member whose key exists has acked_epoch >= epoch (a
// member whose key is gone has certainly lost its lease, so it fences
// itself and does not count). It re-reads the members with linearizable
// reads every PollInterval (a watch only wakes it earlier) until ctx ends;
// the error then lists who did not acknowledge.
func (s *Session) WaitAcked(ctx context.Context, epoch uint64) error {
	wake, stop := s.wakeOn(ctx, s.cfg.membersPrefix(), true)
	defer stop()
	var mu sync.Mutex
	var pending []string
	var lastErr error
	err := s.poll(ctx, wake, func(ctx context.Context) bool {
		ms, err := s.Members(ctx)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			lastErr = err
			return false
		}
		lastErr = nil
		pending = pending[:0]
		for _, m := range ms {
			if m.Present && m.AckedEpoch < epoch {
				pending = append(pending, fmt.Sprintf("%s (host %q, acked %d)", m.ID, m.Host, m.AckedEpoch))
			}
		}
		return len(pending) == 0
	})
	if err == nil {
		return nil
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pending) == 0 {
		if lastErr == nil {
			lastErr = errors.New("no answer from etcd")
		}
		return fmt.Errorf("coord: barrier for epoch %d: members not read (%v): %w", epoch, lastErr, err)
	}
	return fmt.Errorf("coord: barrier for epoch %d: not acknowledged by %s: %w", epoch, strings.Join(pending, ", "), err)
}

// wakeOn watches key (or the prefix) and signals the returned channel on
// every change: a hint to re-read sooner, never a source of truth. The
// watch is set up in its own goroutine: clientv3's Watch blocks until its
// stream is registered, which a hung member delays.
func (s *Session) wakeOn(ctx context.Context, key string, prefix bool) (<-chan struct{}, func()) {
	ctx, cancel := context.WithCancel(ctx)
	wake := make(chan struct{}, 1)
	opts := []clientv3.OpOption{}
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	go func() {
		for range s.cli.Watch(clientv3.WithRequireLeader(ctx), key, opts...) {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	return wake, cancel
}
