// Package settlehook wires the proxy's Settle hook to the replication
// package: when a node fails during a COMMIT, the proxy asks the node
// traffic moved to, and this reads that node's binlog. It is wiring only
// (cmd/tandem and the failover tests use it); the mechanism lives in
// proxy/settle.go and replication/settle.go.
package settlehook

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/proxy"
	"github.com/tandemdb/tandem/replication"
)

// Hook answers the proxy's settle requests with tandem's admin account on
// the nodes (it needs REPLICATION SLAVE, to read the binlog as a replica
// does, and SELECT on information_schema).
type Hook struct {
	nodes          map[string]*proxy.Node
	user, password string

	mu       sync.Mutex
	settlers map[string]*replication.Settler
}

// New returns a Hook for nodes.
func New(nodes []*proxy.Node, user, password string) *Hook {
	h := &Hook{nodes: map[string]*proxy.Node{}, user: user, password: password, settlers: map[string]*replication.Settler{}}
	for _, n := range nodes {
		h.nodes[n.Name] = n
	}
	return h
}

// Settle is a proxy.Config.Settle.
func (h *Hook) Settle(ctx context.Context, req proxy.SettleRequest) proxy.SettleResult {
	s, why := h.settler(req.To)
	if s == nil {
		return proxy.SettleResult{Why: why}
	}
	res, err := s.Settle(ctx, replication.SettleQuery{Marker: req.Marker, Bounds: req.Bounds, Commit: req.Commit, After: req.After,
		Since: req.BoundsSince})
	if err != nil {
		return proxy.SettleResult{Why: "reading node " + req.To + "'s binlog failed: " + err.Error()}
	}
	return proxy.SettleResult{Known: res.Known, Committed: res.Committed, AffectedRows: res.Rows,
		RowsKnown: res.RowsKnown, InsertID: res.InsertID, Why: res.Why, Search: res.Search}
}

// trackEvery is how often Track records where each node's binlog ends.
const trackEvery = 500 * time.Millisecond

// Track records, until ctx ends, where each node's binlog ends (every
// 500 ms), so that a check after a failover reads the new active's binlog
// only from shortly before the transactions it looks for, not its newest
// file from the start (replication.Settler.Track). It returns at once.
func (h *Hook) Track(ctx context.Context) {
	for name := range h.nodes {
		if s, _ := h.settler(name); s != nil {
			go s.Track(ctx, trackEvery)
		}
	}
}

func (h *Hook) settler(name string) (*replication.Settler, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.settlers[name]; s != nil {
		return s, ""
	}
	n, ok := h.nodes[name]
	if !ok {
		return nil, "unknown node " + name
	}
	addr := n.Address
	if len(addr) > 0 && addr[0] == '/' {
		return nil, "node " + name + " is reached over a unix socket; its binlog is read over TCP only"
	}
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = h.user, h.password, "tcp", addr
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 2*time.Second, 10*time.Second, 10*time.Second
	if err := n.TLS.Apply(c); err != nil {
		return nil, err.Error()
	}
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err.Error()
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	db.SetConnMaxIdleTime(30 * time.Second) // used only after a failover
	s := &replication.Settler{DB: db, Source: replication.BinlogSource{Address: addr, User: h.user, Password: h.password,
		TLS: n.TLS.Config(), TLSIfOffered: n.TLS.Optional()}}
	h.settlers[name] = s
	return s, ""
}
