package proxy

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// nativeAuthString is what a node stores for password under
// mysql_native_password: "*" and HEX(SHA1(SHA1(password))).
func nativeAuthString(password string) string {
	s1 := sha1.Sum([]byte(password))
	s2 := sha1.Sum(s1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(s2[:]))
}

func TestCheckNativeRecoversStage1(t *testing.T) {
	salt := []byte("abcdefghij0123456789")
	stored := nativeAuthString("s3cret")
	resp := mysql.CalcNativePassword(salt, []byte("s3cret"))
	stage1, ok := checkNative(salt, resp, stored)
	if !ok {
		t.Fatal("the right password is refused")
	}
	want := sha1.Sum([]byte("s3cret"))
	if !bytes.Equal(stage1, want[:]) {
		t.Fatalf("stage1 %x, want SHA1(password) %x", stage1, want)
	}
	// stage1 answers any other scramble exactly as the password would.
	for _, other := range [][]byte{[]byte("ZYXWVUTSRQPONMLKJIHG"), make([]byte, 20)} {
		if got, want := scrambleStage1(other, stage1), mysql.CalcNativePassword(other, []byte("s3cret")); !bytes.Equal(got, want) {
			t.Fatalf("scramble from stage1 %x, from the password %x", got, want)
		}
	}
	for name, c := range map[string]struct {
		resp   []byte
		stored string
	}{
		"wrong password":         {mysql.CalcNativePassword(salt, []byte("guess")), stored},
		"empty answer":           {nil, stored},
		"short answer":           {resp[:19], stored},
		"other salt":             {mysql.CalcNativePassword([]byte("00000000000000000000"), []byte("s3cret")), stored},
		"not a native hash":      {resp, "invalid"},
		"bad hex":                {resp, "*" + strings.Repeat("Z", 40)},
		"password for no-passwd": {resp, ""},
	} {
		if _, ok := checkNative(salt, c.resp, c.stored); ok {
			t.Errorf("%s: accepted", name)
		}
	}
	// An account without a password takes an empty answer (or one NUL).
	for _, r := range [][]byte{nil, {0}} {
		if s1, ok := checkNative(salt, r, ""); !ok || s1 != nil {
			t.Errorf("empty password, answer %q: ok=%v stage1=%x", r, ok, s1)
		}
	}
}

func TestHostMatches(t *testing.T) {
	for _, c := range []struct {
		pattern, host string
		want          bool
	}{
		{"%", "10.1.2.3", true},
		{"", "10.1.2.3", true},
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "127.0.0.2", false},
		{"10.1.%", "10.1.2.3", true},
		{"10.1.%", "10.10.2.3", false},
		{"10.1.2._", "10.1.2.3", true},
		{"10.1.2._", "10.1.2.33", false},
		{"10.0.0.0/255.0.0.0", "10.200.1.1", true},
		{"10.0.0.0/255.0.0.0", "11.0.0.1", false},
		{"10.0.0.0/255.0.0.0", "localhost", false},
		{"localhost", "localhost", true},
		{"localhost", "127.0.0.1", false}, // as a node with skip_name_resolve
		{"db.example.com", "10.1.2.3", false},
		{"127.0.0.1", "::ffff:127.0.0.1", true},
		{"10\\_1", "10_1", true},
		{"10\\_1", "1021", false},
	} {
		if got := hostMatches(c.pattern, c.host); got != c.want {
			t.Errorf("hostMatches(%q, %q) = %v, want %v", c.pattern, c.host, got, c.want)
		}
	}
}

func TestMatchAccountMostSpecificFirst(t *testing.T) {
	m := indexAccounts([]Account{
		{User: "app", Host: "%", AuthString: "any"},
		{User: "app", Host: "10.1.%", AuthString: "net"},
		{User: "app", Host: "10.1.2.3", AuthString: "exact"},
		{User: "app", Host: "10.%", AuthString: "wide"},
		{User: "", Host: "10.1.2.3", AuthString: "anonymous"},
	})
	for host, want := range map[string]string{"10.1.2.3": "exact", "10.1.9.9": "net", "10.9.9.9": "wide", "192.0.2.1": "any"} {
		a, ok := matchAccount(m["app"], host)
		if !ok || a.AuthString != want {
			t.Errorf("client at %s matched %+v (%v), want the %q row", host, a, ok, want)
		}
	}
	if _, ok := m[""]; ok {
		t.Error("anonymous accounts are indexed")
	}
}

// countingLoader is an Accounts hook over a list the test changes.
type countingLoader struct {
	mu    sync.Mutex
	list  []Account
	err   error
	calls atomic.Int32
}

func (l *countingLoader) load(_ context.Context, node string) ([]Account, error) {
	l.calls.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if node != "a" {
		return nil, errors.New("asked the wrong node " + node)
	}
	return append([]Account(nil), l.list...), l.err
}

func TestAccountCacheReloadsWhenStaleOrMissedAtMostOnceASecond(t *testing.T) {
	l := &countingLoader{list: []Account{{User: "u", Host: "%", AuthString: "1"}}}
	c := &accountCache{load: l.load, refresh: time.Hour, timeout: time.Second}
	rows, err := c.get("u", "a", false)
	if err != nil || len(rows) != 1 || l.calls.Load() != 1 {
		t.Fatalf("first get: %v, %v, %d loads", rows, err, l.calls.Load())
	}
	// Fresh: no reload, even for a user it does not know, unless forced.
	if rows, _ := c.get("v", "a", false); rows != nil || l.calls.Load() != 1 {
		t.Fatalf("unknown user, not forced: %v, %d loads", rows, l.calls.Load())
	}
	// Forced within a second of the last load: the reload waits for the
	// second to pass (rate limit), then finds the new account.
	l.mu.Lock()
	l.list = append(l.list, Account{User: "v", Host: "%", AuthString: "2"})
	l.mu.Unlock()
	c.mu.Lock()
	tried := c.triedAt
	c.mu.Unlock()
	if rows, _ := c.get("v", "a", true); len(rows) != 1 || l.calls.Load() != 2 {
		t.Fatalf("forced reload: %v, %d loads", rows, l.calls.Load())
	}
	c.mu.Lock()
	if gap := c.triedAt.Sub(tried); gap < accountsMinReload {
		t.Fatalf("two loads %v apart, want at least %v", gap, accountsMinReload)
	}
	c.mu.Unlock()
	// A failed load keeps what was loaded.
	l.mu.Lock()
	l.err = errors.New("node down")
	l.mu.Unlock()
	c.mu.Lock()
	c.triedAt, c.loadedAt = c.triedAt.Add(-accountsMinReload), c.loadedAt.Add(-2*time.Hour)
	c.mu.Unlock()
	if rows, err := c.get("u", "a", false); err != nil || len(rows) != 1 || l.calls.Load() != 3 {
		t.Fatalf("stale get with a failing loader: %v, %v, %d loads", rows, err, l.calls.Load())
	}
	// Stale, and the last (failed) load a moment ago: no new load.
	if rows, err := c.get("u", "a", false); err != nil || len(rows) != 1 || l.calls.Load() != 3 {
		t.Fatalf("stale get right after a failed load: %v, %v, %d loads", rows, err, l.calls.Load())
	}
	// Without anything loaded, the error is the answer.
	empty := &accountCache{load: l.load, refresh: time.Hour, timeout: time.Second}
	if _, err := empty.get("u", "a", false); err == nil {
		t.Fatal("no accounts and a failing loader: no error")
	}
}

func TestAccountCacheSharesOneLoad(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	c := &accountCache{refresh: time.Hour, timeout: 5 * time.Second, load: func(context.Context, string) ([]Account, error) {
		calls.Add(1)
		<-release
		return []Account{{User: "u", Host: "%"}}, nil
	}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rows, err := c.get("u", "a", false); err != nil || len(rows) != 1 {
				t.Errorf("get: %v, %v", rows, err)
			}
		}()
	}
	waitFor(t, 5*time.Second, "a load to start", func() bool { return calls.Load() == 1 })
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d loads for 8 concurrent logins, want 1", n)
	}
}

// The COM_CHANGE_USER tandem sends a node parses as one, answers the node's
// scramble with stage1 (or the password), and follows an auth switch.
func TestBackendChangeUserPacket(t *testing.T) {
	salt := []byte("abcdefghij0123456789")
	caps := uint32(requiredCaps | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS)
	attrs := attrBlock("_client_name", "test")
	stage1 := sha1.Sum([]byte("pw"))
	for name, lp := range map[string]*loginParams{
		"stage1":   {User: "acc", Stage1: stage1[:], DB: "app", Collation: 45, Attrs: attrs},
		"password": {User: "acc", Password: "pw", DB: "", Collation: 33},
	} {
		a, b := tcpPair(t)
		be := &backend{node: &Node{Name: "fake"}, conn: a, salt: salt, plugin: mysql.AUTH_NATIVE_PASSWORD, caps: caps}
		type result struct {
			status uint16
			err    error
		}
		done := make(chan result, 1)
		go func() {
			st, err := be.changeUser(lp, 10*time.Second)
			done <- result{st, err}
		}()
		_ = b.SetDeadline(time.Now().Add(10 * time.Second))
		p, seq, err := readPacket(b, nil, 1<<16)
		if err != nil || seq != 0 {
			t.Fatalf("%s: node reading COM_CHANGE_USER: seq %d, %v", name, seq, err)
		}
		cu, err := parseChangeUser(p, caps)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := mysql.CalcNativePassword(salt, []byte("pw")); cu.User != "acc" || cu.DB != lp.DB || cu.Collation != lp.Collation ||
			cu.Plugin != mysql.AUTH_NATIVE_PASSWORD || !bytes.Equal(cu.Auth, want) || !bytes.Equal(cu.Attrs, lp.Attrs) && len(lp.Attrs) > 0 {
			t.Fatalf("%s: node got %+v", name, cu)
		}
		// The node asks for a new scramble, then accepts.
		salt2 := []byte("ZYXWVUTSRQPONMLKJIHG")
		if _, err := b.Write(packet(seq+1, appendAuthSwitch(nil, mysql.AUTH_NATIVE_PASSWORD, salt2))); err != nil {
			t.Fatal(err)
		}
		p, seq, err = readPacket(b, nil, 1<<16)
		if err != nil || !bytes.Equal(p, mysql.CalcNativePassword(salt2, []byte("pw"))) {
			t.Fatalf("%s: answer to the auth switch %x, %v", name, p, err)
		}
		if _, err := b.Write(packet(seq+1, appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0))); err != nil {
			t.Fatal(err)
		}
		if r := <-done; r.err != nil || r.status != mysql.SERVER_STATUS_AUTOCOMMIT {
			t.Fatalf("%s: changeUser: status %x, %v", name, r.status, r.err)
		}
	}
}

// A client that leaves before logging in: tandem ends the node connection
// it opened for the greeting with a failed login, never by closing it in
// the middle of the handshake (which nodes count against
// max_connect_errors for tandem's host).
func TestAbandonedHandshakeEndsWithAFailedLogin(t *testing.T) {
	nodeL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer nodeL.Close()
	got := make(chan string, 1)
	go func() {
		c, err := nodeL.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		g := &greeting{Version: "10.11.0-fake", ConnID: 4711, Salt: []byte("abcdefghij0123456789"),
			Caps: requiredCaps | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_LONG_PASSWORD, Collation: 45,
			AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}
		if err := writeRaw(c, 0, appendGreeting(nil, g)); err != nil {
			got <- err.Error()
			return
		}
		p, seq, err := readPacket(c, nil, 1<<16)
		if err != nil {
			got <- "node: connection closed in the middle of the handshake: " + err.Error()
			return
		}
		r, err := parseHandshakeResponse(p)
		if err != nil {
			got <- err.Error()
			return
		}
		_ = writeRaw(c, seq+1, appendErr(nil, newError(erAccessDenied, "Access denied")))
		got <- "login as " + r.User
	}()
	p, err := New(Config{Users: map[string]string{"app": "pw"}}, []*Node{{Name: "fake", Address: nodeL.Addr().String()}}, "fake")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.Serve(l) }()
	defer p.Shutdown(context.Background())
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	g, _, err := readPacket(c, nil, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	if gr, err := parseGreeting(g); err != nil || gr.ConnID != 4711 {
		t.Fatalf("greeting %+v, %v: want the node thread's id 4711", gr, err)
	}
	c.Close() // a TCP health check: gone after the greeting
	select {
	case s := <-got:
		if s != "login as "+abandonUser {
			t.Fatal(s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the node heard nothing")
	}
}
