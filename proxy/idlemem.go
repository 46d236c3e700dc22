package proxy

// Returning memory after a burst of logins. Each login leaves garbage (the
// handshake's buffers, hash and TLS state), each session's first command
// borrows relay buffers that then stay pooled, and a session's goroutine
// keeps the stack its commands grew: 4 KiB at least, since the runtime
// halves an idle goroutine's stack at a garbage collection only while less
// than a quarter of it is in use counting an 800-byte margin, and a session
// waiting for a command uses about 0.75 KiB of it. The runtime collects
// garbage at its next collection, which a proxy that went quiet after
// opening many sessions may not run for two minutes (its forced period), and
// returns freed pages to the system only gradually; until then the resident
// memory of idle sessions counts all of that.
//
// After burstLogins sessions have started since the last trim, a goroutine
// waits until none has started for burstQuiet, then
//   - parks the idle sessions (parkIdle): each waits for its next command
//     on a new goroutine, whose small wait fits the smallest stack (2 KiB),
//     and the old goroutine and its stack go;
//   - collects twice (sync.Pool keeps what it held before a collection for
//     one more) and returns the free memory to the system
//     (debug.FreeOSMemory).
// The goroutine runs only from the burstLogins-th login of a burst to its
// trim.

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// burstLogins is how many sessions must have started since the last
	// trim for the next one: a few logins leave too little to be worth a
	// collection.
	burstLogins = 64
	// burstQuiet is how long no session must start before the trim: a
	// steady stream of logins is served by the runtime's own collections.
	burstQuiet = 250 * time.Millisecond
	// parkWait bounds how long a trim waits for the sessions it parked
	// to move to their new goroutines before collecting.
	parkWait = 2 * time.Second
)

// idleTrim is a Proxy's trim state.
type idleTrim struct {
	logins  atomic.Int64 // sessions started since the last trim
	running atomic.Bool  // a trimAfterBurst goroutine is waiting
	trims   atomic.Int64 // trims done (tests)
	parked  atomic.Int64 // sessions parked (tests)

	// parkMu orders parkIdle's interruption of a session's wait with the
	// session's own end of it (clientReader.waitFirst): the session
	// clears the read deadline only after parkIdle has set it.
	parkMu sync.Mutex
	// moving counts the sessions parkIdle interrupted that have neither
	// started waiting on their new goroutine nor taken a command that
	// arrived meanwhile.
	moving atomic.Int64
}

// sessionStarted counts a started session and starts the trim goroutine at
// the burstLogins-th since the last trim.
func (t *idleTrim) sessionStarted(p *Proxy) {
	if t.logins.Add(1) >= burstLogins && !t.running.Load() && t.running.CompareAndSwap(false, true) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.trimAfterBurst()
		}()
	}
}

// trimAfterBurst waits until no session has started for burstQuiet, then
// parks the idle sessions, collects and returns free memory to the system.
// It gives up when the proxy shuts down.
func (p *Proxy) trimAfterBurst() {
	t := &p.trim
	defer t.running.Store(false)
	timer := time.NewTimer(burstQuiet)
	defer timer.Stop()
	for {
		seen := t.logins.Load()
		select {
		case <-timer.C:
		case <-p.closed:
			return
		}
		if t.logins.Load() == seen {
			break
		}
		timer.Reset(burstQuiet)
	}
	t.logins.Store(0)
	p.parkIdle()
	runtime.GC()         // pooled buffers move to the pools' victim caches
	debug.FreeOSMemory() // collects them and returns free pages
	t.trims.Add(1)
	// Sessions that started meanwhile count for the next trim, whose
	// goroutine starts with the next login once they make a burst.
}

// longAgo is a read deadline that has passed.
var longAgo = time.Unix(1, 0)

// parkIdle interrupts the wait of every session waiting for a command on a
// plain socket (a read deadline in the past), unless it waits on a goroutine
// parked already and has run no command since: each goes on waiting on a new
// goroutine (Proxy.runCommands). It returns once they have, or after
// parkWait.
func (p *Proxy) parkIdle() {
	p.mu.Lock()
	waiting := make([]*clientReader, 0, len(p.sessions))
	for _, s := range p.sessions {
		if s.crd != nil && s.crd.wait.Load() == idleWaiting {
			waiting = append(waiting, s.crd)
		}
	}
	p.mu.Unlock()
	parking := waiting[:0]
	t := &p.trim
	for _, c := range waiting {
		t.parkMu.Lock()
		if c.wait.CompareAndSwap(idleWaiting, idleParking) {
			t.moving.Add(1)
			_ = c.conn.SetReadDeadline(longAgo)
			parking = append(parking, c)
		}
		t.parkMu.Unlock()
	}
	t.parked.Add(int64(len(parking)))
	// Wait until each has moved (an old goroutine ends right after it
	// starts the new one): a stack freed while the collector runs goes
	// back to the system only after the next collection.
	deadline := time.Now().Add(parkWait)
	for t.moving.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	runtime.Gosched()
}
