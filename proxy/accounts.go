package proxy

// Accounts from the nodes: a client whose user is not in Config.Users logs
// in with an account of the active node (mysql.user), which tandem reads
// through the Config.Accounts hook. For mysql_native_password tandem never
// needs the password: the node stores H2 = SHA1(SHA1(password)); from the
// client's scramble response R = SHA1(pw) XOR SHA1(salt + H2) tandem
// recovers stage1 = SHA1(pw), checks SHA1(stage1) == H2, and keeps stage1
// for the session. stage1 answers any node's scramble for that account, so
// the session logs in to the node, and to the other node after a move, as
// the client's own account; the node then applies its own rules (locked
// account, expiry, max_user_connections, privileges).

import (
	"context"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/hashicorp/go-hclog"
)

// Account is one account row of a node (mysql.user): what tandem needs to
// check a client's password the way the node would.
type Account struct {
	User string
	// Host is the account's host pattern: a name or address, with % and _
	// wildcards, or address/netmask.
	Host string
	// Plugin is the authentication plugin; "" means mysql_native_password.
	Plugin string
	// AuthString is the stored authentication string: for
	// mysql_native_password "*" and 40 hex digits (H2), or "" for an
	// account without a password.
	AuthString string
	// PasswordExpired: the account's password was expired (mysql.user's
	// password_expired, PASSWORD EXPIRE): a login lands in sandbox mode
	// (expired.go).
	PasswordExpired bool
}

// accountsMinReload is the shortest time between two reloads caused by a
// login that found no account or a wrong password: a stream of bad logins
// costs the node at most one query a second.
const accountsMinReload = time.Second

// accountCache holds the node accounts last loaded, by user name, each
// user's rows most specific host first (the order the node matches in).
type accountCache struct {
	load    func(ctx context.Context, node string) ([]Account, error)
	refresh time.Duration
	timeout time.Duration
	log     hclog.Logger // nil: no log

	mu       sync.Mutex
	byUser   map[string][]Account
	loadedAt time.Time // last successful load
	triedAt  time.Time // last attempt
	inflight chan struct{}
	lastErr  error
}

// get returns the accounts of user, loading them from node first when they
// are older than refresh, or (force: a login found no account or a wrong
// password) unless a load has begun since the call. Loads are at least
// accountsMinReload apart: a forced get waits for that (under a second), a
// stale one uses what it has. Concurrent callers share one load. A failed
// load keeps the accounts loaded before (and is returned only when none
// were ever loaded).
func (c *accountCache) get(user, node string, force bool) ([]Account, error) {
	arrived := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for node != "" {
		if c.inflight != nil {
			ch := c.inflight
			c.mu.Unlock()
			<-ch
			c.mu.Lock()
			continue
		}
		now := time.Now()
		stale := c.byUser == nil || now.Sub(c.loadedAt) >= c.refresh
		if !c.triedAt.Before(arrived) || !stale && !force {
			break // loaded since this call began, or fresh enough
		}
		if wait := c.triedAt.Add(accountsMinReload).Sub(now); wait > 0 {
			if !force {
				break // the last load was a moment ago (and failed)
			}
			c.mu.Unlock()
			time.Sleep(wait)
			c.mu.Lock()
			continue
		}
		ch := make(chan struct{})
		c.inflight = ch
		c.triedAt = now
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		list, err := c.load(ctx, node)
		cancel()
		c.mu.Lock()
		c.inflight = nil
		close(ch)
		c.lastErr = err
		if err == nil {
			c.byUser = indexAccounts(list)
			c.loadedAt = time.Now()
		} else if c.log != nil {
			c.log.Warn("cannot read the node's accounts; logins use the accounts read before, if any", "node", node, "error", err)
		}
	}
	if c.byUser == nil {
		return nil, c.lastErr
	}
	return c.byUser[user], nil
}

// indexAccounts groups accounts by user, each group sorted most specific
// host first. Anonymous accounts (user "") are left out: tandem matches
// only named accounts.
func indexAccounts(list []Account) map[string][]Account {
	m := make(map[string][]Account)
	for _, a := range list {
		if a.User == "" {
			continue
		}
		m[a.User] = append(m[a.User], a)
	}
	for _, rows := range m {
		sort.SliceStable(rows, func(i, j int) bool { return hostRank(rows[i].Host) > hostRank(rows[j].Host) })
	}
	return m
}

// hostRank orders host patterns as MariaDB does: exact names and addresses
// first, then wildcard patterns by the length of their literal prefix, and
// "%" (or "") last.
func hostRank(h string) int {
	if h == "" || h == "%" {
		return 0
	}
	if i := strings.IndexAny(h, "%_"); i >= 0 {
		return 1 + i
	}
	return 1 << 20
}

// matchAccount returns the first of rows (most specific first) whose host
// pattern matches the client's host: an IP address, or "localhost" for a
// unix socket client.
func matchAccount(rows []Account, host string) (Account, bool) {
	for _, a := range rows {
		if hostMatches(a.Host, host) {
			return a, true
		}
	}
	return Account{}, false
}

// hostMatches reports whether a client at host (an IP address, or
// "localhost" for a unix socket) matches an account's host pattern. tandem
// resolves no names, as a node with skip_name_resolve: a pattern that is a
// host name matches nothing but "localhost", which matches unix socket
// clients only.
func hostMatches(pattern, host string) bool {
	if pattern == "" { // the same as "%"
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		if v4 := ip.To4(); v4 != nil {
			host = v4.String()
		}
	}
	if addr, mask, ok := strings.Cut(pattern, "/"); ok {
		a, m, h := net.ParseIP(addr).To4(), net.ParseIP(mask).To4(), net.ParseIP(host).To4()
		if a == nil || m == nil || h == nil {
			return false
		}
		for i := range 4 {
			if h[i]&m[i] != a[i] {
				return false
			}
		}
		return true
	}
	return wildcardMatch(strings.ToLower(pattern), strings.ToLower(host))
}

// wildcardMatch matches s against a LIKE pattern with % and _ (a backslash
// escapes either).
func wildcardMatch(p, s string) bool {
	for len(p) > 0 {
		switch c := p[0]; {
		case c == '%':
			for len(p) > 0 && p[0] == '%' {
				p = p[1:]
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if wildcardMatch(p, s[i:]) {
					return true
				}
			}
			return false
		case c == '_':
			if s == "" {
				return false
			}
			p, s = p[1:], s[1:]
		default:
			if c == '\\' && len(p) > 1 {
				p = p[1:]
				c = p[0]
			}
			if s == "" || s[0] != c {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return s == ""
}

// nativeHash returns H2 from a mysql_native_password authentication string
// ("*" and 40 hex digits), or ok=false if it is not one.
func nativeHash(auth string) (h2 []byte, ok bool) {
	if len(auth) != 41 || auth[0] != '*' {
		return nil, false
	}
	h2, err := hex.DecodeString(auth[1:])
	return h2, err == nil
}

// isNative reports whether an account plugin is mysql_native_password.
func isNative(plugin string) bool {
	return plugin == "" || plugin == mysql.AUTH_NATIVE_PASSWORD
}

// emptyAuth reports whether a client's auth response means no password.
func emptyAuth(resp []byte) bool {
	return len(resp) == 0 || len(resp) == 1 && resp[0] == 0
}

// checkNative checks a client's mysql_native_password response to salt
// against the stored authentication string. On success it returns stage1
// = SHA1(password), or nil for an account without a password.
func checkNative(salt, resp []byte, authString string) (stage1 []byte, ok bool) {
	if authString == "" {
		return nil, emptyAuth(resp)
	}
	h2, ok := nativeHash(authString)
	if !ok || len(resp) != sha1.Size || len(salt) < 20 {
		return nil, false
	}
	h := sha1.New()
	h.Write(salt[:20])
	h.Write(h2)
	stage1 = h.Sum(nil)
	for i := range stage1 {
		stage1[i] ^= resp[i]
	}
	check := sha1.Sum(stage1)
	if subtle.ConstantTimeCompare(check[:], h2) != 1 {
		return nil, false
	}
	return stage1, true
}

// scrambleStage1 answers a mysql_native_password scramble with stage1 =
// SHA1(password): stage1 XOR SHA1(salt + SHA1(stage1)).
func scrambleStage1(salt, stage1 []byte) []byte {
	if len(salt) > 20 {
		salt = salt[:20]
	}
	h2 := sha1.Sum(stage1)
	h := sha1.New()
	h.Write(salt)
	h.Write(h2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= stage1[i]
	}
	return out
}

// credential is how a session logs in to nodes: a plaintext password from
// Config.Users, or stage1 recovered from a node account's scramble.
type credential struct {
	password string
	stage1   []byte // SHA1(password) of a mysql_native_password account; nil: use password
	expired  bool   // the node account's password is expired
}

// respond computes the auth response to a node's scramble for plugin. ok
// is false when this credential cannot answer that plugin.
func (c *credential) respond(plugin string, salt []byte) ([]byte, bool) {
	if c.stage1 != nil {
		if !isNative(plugin) {
			return nil, false
		}
		return scrambleStage1(salt, c.stage1), true
	}
	return scramble(plugin, salt, c.password)
}

// authResult is the outcome of checking a client's login against the node
// accounts.
type authResult int

const (
	authOK authResult = iota
	authDenied
	// authUnsupported: the account exists, but its plugin is not one
	// tandem can check without the password.
	authUnsupported
	// authUnavailable: the accounts could not be loaded.
	authUnavailable
)

// checkAccount checks a client's mysql_native_password response against the
// node account matching user and host, reloading the accounts from node
// once if none matches or the password is wrong (the account may have been
// created or changed a moment ago).
func (p *Proxy) checkAccount(user, host, node string, salt, resp []byte) (*credential, authResult, string) {
	for attempt := range 2 {
		rows, err := p.accounts.get(user, node, attempt == 1)
		if err != nil {
			return nil, authUnavailable, err.Error()
		}
		a, found := matchAccount(rows, host)
		if found && !isNative(a.Plugin) {
			return nil, authUnsupported, a.Plugin
		}
		if found {
			if stage1, ok := checkNative(salt, resp, a.AuthString); ok {
				return &credential{stage1: stage1, expired: a.PasswordExpired}, authOK, ""
			}
		}
	}
	return nil, authDenied, ""
}
