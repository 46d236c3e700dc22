package proxy

import "time"

// Observer receives the data path's events, for metrics. Its methods are
// called from session goroutines concurrently and must be cheap: Command
// runs once per client command.
type Observer interface {
	// SessionOpened and SessionClosed bracket each client session that
	// completed its login.
	SessionOpened()
	SessionClosed()
	// Command is called after each command's response: the command byte,
	// bytes read from the client and sent back to it, the time from the
	// command's arrival to the end of its response, and whether the
	// response was an error.
	Command(cmd byte, in, out int, d time.Duration, failed bool)
	// SessionMoved is called when a session moved to another node
	// (ok=false: it could not be moved and got an error).
	SessionMoved(ok bool)
	// HandshakeFailed counts failed logins by reason: "auth", "backend",
	// "protocol", "limit" or "timeout".
	HandshakeFailed(reason string)
}

// nopObserver is the Observer used when Config.Observer is nil.
type nopObserver struct{}

func (nopObserver) SessionOpened()                              {}
func (nopObserver) SessionClosed()                              {}
func (nopObserver) Command(byte, int, int, time.Duration, bool) {}
func (nopObserver) SessionMoved(bool)                           {}
func (nopObserver) HandshakeFailed(string)                      {}
