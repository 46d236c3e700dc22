// Package faultrelay is a loopback TCP relay that injects the network
// faults tandem's tests and benchmarks need between a client and a server:
// a delay each way, a cut link, a black hole (a partition: nothing passes,
// nothing is closed), and a live server that refuses connections the way
// MySQL does when it cannot take one (an ERR packet 1040 in place of its
// greeting).
package faultrelay

import (
	"net"
	"sync"
	"time"
)

// Mode is what the relay does with connections.
type Mode int

const (
	// Forward relays connections to the target.
	Forward Mode = iota
	// Cut closes every relayed connection and each new one at once.
	Cut
	// Refuse closes every relayed connection and answers each new one
	// with MySQL error 1040 "Too many connections", as a live server
	// that cannot take a connection does.
	Refuse
	// Stall stops forwarding in both directions without closing
	// anything, as a network partition does: the relay reads nothing more
	// from either side (so their socket buffers fill and their writes
	// block), and new connections are accepted but get nothing. Forward
	// again resumes every connection where it stopped.
	Stall
)

// Relay forwards connections accepted on 127.0.0.1 to a target.
type Relay struct {
	l      net.Listener
	target string
	delay  time.Duration

	mu     sync.Mutex
	mode   Mode
	closed bool
	conns  map[net.Conn]bool
	// resume is closed when the relay leaves Stall (or closes).
	resume chan struct{}
}

// New starts a relay to target that holds each chunk of data delay long in
// either direction (0: none).
func New(target string, delay time.Duration) (*Relay, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{l: l, target: target, delay: delay, conns: map[net.Conn]bool{}, resume: make(chan struct{})}
	go r.serve()
	return r, nil
}

// Addr is where clients connect.
func (r *Relay) Addr() string { return r.l.Addr().String() }

// Port is Addr's port.
func (r *Relay) Port() int { return r.l.Addr().(*net.TCPAddr).Port }

// Set switches the relay to m; every relayed connection is closed unless m
// is Forward.
func (r *Relay) Set(m Mode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode == Stall && m != Stall {
		close(r.resume)
		r.resume = make(chan struct{})
	}
	r.mode = m
	if m != Forward && m != Stall {
		r.dropLocked()
	}
}

// gate returns at once unless the relay stalls; then it waits until it
// does not.
func (r *Relay) gate() {
	for {
		r.mu.Lock()
		if r.mode != Stall || r.closed {
			r.mu.Unlock()
			return
		}
		ch := r.resume
		r.mu.Unlock()
		<-ch
	}
}

// Close stops the relay and closes every connection.
func (r *Relay) Close() {
	r.mu.Lock()
	if !r.closed && r.mode == Stall {
		close(r.resume)
	}
	r.closed = true
	r.dropLocked()
	r.mu.Unlock()
	r.l.Close()
}

func (r *Relay) dropLocked() {
	for c := range r.conns {
		c.Close()
	}
	r.conns = map[net.Conn]bool{}
}

// track registers c while the relay forwards; otherwise it closes c.
func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.mode != Forward && r.mode != Stall {
		c.Close()
		return false
	}
	r.conns[c] = true
	return true
}

func (r *Relay) untrack(cs ...net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		delete(r.conns, c)
	}
}

func (r *Relay) serve() {
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		refuse := r.mode == Refuse && !r.closed
		r.mu.Unlock()
		if refuse {
			go refuseConn(c)
			continue
		}
		if r.track(c) {
			go r.relay(c)
		}
	}
}

// refuseConn answers c as MySQL does when it has no room for a connection.
func refuseConn(c net.Conn) {
	defer c.Close()
	const msg = "Too many connections"
	pkt := []byte{byte(3 + len(msg)), 0, 0, 0, 0xff, 0x10, 0x04} // ERR 1040
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(append(pkt, msg...))
}

func (r *Relay) relay(c net.Conn) {
	r.gate() // a connection made during a partition gets nothing
	up, err := net.DialTimeout("tcp", r.target, 2*time.Second)
	if err != nil {
		c.Close()
		r.untrack(c)
		return
	}
	if !r.track(up) {
		c.Close()
		r.untrack(c)
		return
	}
	var once sync.Once
	stop := func() { once.Do(func() { c.Close(); up.Close(); r.untrack(c, up) }) }
	done := make(chan struct{}, 2)
	go func() { r.pipe(up, c); stop(); done <- struct{}{} }()
	go func() { r.pipe(c, up); stop(); done <- struct{}{} }()
	<-done
	<-done
}

// pipe copies src to dst until either fails, each chunk delay after it was
// read; what is held when the peer goes is dropped.
func (r *Relay) pipe(dst, src net.Conn) {
	if r.delay <= 0 {
		buf := make([]byte, 32<<10)
		for {
			r.gate()
			n, err := src.Read(buf)
			if n > 0 {
				r.gate() // what was read when the partition began stays here
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	type chunk struct {
		at time.Time
		b  []byte
	}
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			r.gate()
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{time.Now().Add(r.delay), buf[:n]}
			}
			if err != nil {
				dst.Close() // the peer is gone: the other direction ends too
				return
			}
		}
	}()
	for ch := range q {
		time.Sleep(time.Until(ch.at)) // the delay under test
		r.gate()
		if _, err := dst.Write(ch.b); err != nil {
			src.Close()
			for range q {
			}
			return
		}
	}
}
