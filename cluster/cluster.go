// Package cluster adapts a coord.Session (several tandems agreeing through
// etcd) to what the failover state machine asks of it: failover.Cluster,
// and failover.Store for the decision, each save a compare-and-set inside
// etcd over the revision this tandem last read or wrote.
package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/tandemdb/tandem/coord"
	"github.com/tandemdb/tandem/failover"
)

// Cluster is a coord.Session seen by failover.
type Cluster struct {
	s *coord.Session

	mu     sync.Mutex
	modRev int64 // the decision's ModRevision as last loaded or saved
}

// New adapts s.
func New(s *coord.Session) *Cluster { return &Cluster{s: s} }

var (
	_ failover.Cluster = (*Cluster)(nil)
	_ failover.Store   = (*Cluster)(nil)
)

// Valid reports whether the session's lease is valid now.
func (c *Cluster) Valid() bool { _, ok := c.s.Valid(); return ok }

// Lease is the session's current lease ID (0 while it has none).
func (c *Cluster) Lease() int64 { return c.s.Status().Lease }

func (c *Cluster) Campaign(ctx context.Context) error { return c.s.Campaign(ctx) }
func (c *Cluster) IsCoordinator() bool                { return c.s.IsCoordinator() }
func (c *Cluster) Ack(ctx context.Context, epoch uint64) error {
	return c.s.Ack(ctx, epoch)
}
func (c *Cluster) WaitAcked(ctx context.Context, epoch uint64) error {
	return c.s.WaitAcked(ctx, epoch)
}

// Members lists the registered tandems, marking the coordinator.
func (c *Cluster) Members(ctx context.Context) ([]failover.ClusterMember, error) {
	ms, err := c.s.Members(ctx)
	if err != nil {
		return nil, err
	}
	coordinator, hasCoordinator, err := c.s.Coordinator(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]failover.ClusterMember, 0, len(ms))
	for _, m := range ms {
		fm := member(m)
		fm.Coordinator = hasCoordinator && coordinator.ID == m.ID && coordinator.Lease == m.Lease
		out = append(out, fm)
	}
	return out, nil
}

// Coordinator names the coordinator, if there is one.
func (c *Cluster) Coordinator(ctx context.Context) (failover.ClusterMember, bool, error) {
	m, ok, err := c.s.Coordinator(ctx)
	if err != nil || !ok {
		return failover.ClusterMember{}, ok, err
	}
	fm := member(m)
	fm.Coordinator = true
	return fm, true, nil
}

func member(m coord.Member) failover.ClusterMember {
	return failover.ClusterMember{ID: m.ID, Host: m.Host, Admin: m.Admin, AckedEpoch: m.AckedEpoch, LeaseValid: m.Present, Self: m.Self}
}

// Load reads the decision with a linearizable read and remembers its
// revision for the next Save.
func (c *Cluster) Load() (failover.Decision, bool, error) {
	v, rev, ok, err := c.s.Load(context.Background())
	if err != nil {
		return failover.Decision{}, false, err
	}
	c.mu.Lock()
	c.modRev = rev
	c.mu.Unlock()
	if !ok {
		return failover.Decision{}, false, nil
	}
	var d failover.Decision
	if err := json.Unmarshal(v, &d); err != nil {
		return failover.Decision{}, false, fmt.Errorf("cluster: the decision in etcd is unreadable: %w", err)
	}
	return d, true, nil
}

// Save writes d only if the decision is still the one this tandem last
// read or wrote and this tandem is still the coordinator: both are checked
// inside etcd, in one transaction (coord.ErrConflict, coord.ErrNotCoordinator).
func (c *Cluster) Save(d failover.Decision) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rev, err := c.s.Save(context.Background(), b, c.modRev)
	if err != nil {
		return err
	}
	c.modRev = rev
	return nil
}
