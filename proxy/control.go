package proxy

// The control surface: the few things a caller (the failover package, via
// cmd) may ask of the data path. Nothing here decides anything.

import "fmt"

// Nodes returns the nodes the proxy knows, in configuration order.
func (p *Proxy) Nodes() []*Node { return p.nodes }

// Active returns the node new sessions are routed to.
func (p *Proxy) Active() *Node { return p.active.Load() }

// Route sends new sessions to the node called name.
func (p *Proxy) Route(name string) error {
	for _, n := range p.nodes {
		if n.Name == name {
			p.active.Store(n)
			p.log.Info("routing new sessions", "node", n.Name, "address", n.Address)
			return nil
		}
	}
	return fmt.Errorf("proxy: no node named %q", name)
}
