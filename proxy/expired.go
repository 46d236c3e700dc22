package proxy

// Expired passwords. A node logs in an account whose password has expired
// in sandbox mode (only SET PASSWORD and a few SET statements run; anything
// else gets 1820) when the client sets CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS
// or the node's disconnect_on_expired_password is off; otherwise it refuses
// the login with 1862. tandem relays the flag as the client negotiated it
// and the node's answer as it is, for logins tandem checks and for logins
// the node checks itself.
//
// A sandboxed session never moves to another node: the login there would
// land in sandbox mode too, where tandem's replay of the session's state
// fails, and once the client has changed its password tandem's credential
// is stale. Such a session is closed with 1927 when it would move
// (move.go), as a session whose state cannot be rebuilt. tandem knows a
// session is sandboxed from the account it checked (Account.PasswordExpired,
// at login or COM_CHANGE_USER) and from the node's 1820 to any of its
// commands (an account that expired by password_lifetime, or an account of
// Config.Users).

import "encoding/binary"

// erMustChangePassword is ER_MUST_CHANGE_PASSWORD, the node's answer to a
// sandboxed session's statement.
const erMustChangePassword = 1820

// sandboxedReason is the reason a sandboxed session cannot move (relogin).
const sandboxedReason = "a login with an expired password (sandbox mode)"

// mustChangePassword reports whether an ERR packet is the node's 1820.
func mustChangePassword(p []byte) bool {
	return len(p) >= 3 && binary.LittleEndian.Uint16(p[1:]) == erMustChangePassword
}

// noteExpired marks the session sandboxed when expired is set: it will not
// move to another node.
func (s *session) noteExpired(expired bool) {
	if expired && s.relogin == "" {
		s.relogin = sandboxedReason
	}
}
