package proxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/tandemdb/tandem/internal/nodetls"
)

// nodeCert makes a certificate for 127.0.0.1 that is its own CA, and
// writes it as a PEM file (the CA file of verify modes).
func nodeCert(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}

// tlsNode is a scripted node: it greets with caching_sha2_password (and
// CLIENT_SSL when offerTLS), takes an SSLRequest and TLS if asked, then
// runs script on the handshake response. What it saw is sent on seen.
type tlsNode struct {
	t        *testing.T
	cert     tls.Certificate
	offerTLS bool
	salt     []byte
	// script answers the handshake response; it returns what the node
	// reports on seen (or an error text).
	script func(c net.Conn, resp *handshakeResponse, seq byte) string
	seen   chan string
	// sslReq is the SSLRequest's payload, when one came.
	sslReq atomic.Pointer[[]byte]
}

func (fn *tlsNode) listen() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fn.t.Fatal(err)
	}
	fn.t.Cleanup(func() { l.Close() })
	fn.seen = make(chan string, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fn.serve(c)
			}()
		}
	}()
	return l.Addr().String()
}

// serve runs the script on c and reports its outcome on seen; then, when
// logged in, it stays connected, idle, until tandem closes the connection.
func (fn *tlsNode) serve(c net.Conn) {
	conn, out := fn.login(c)
	fn.seen <- out
	if conn != nil {
		_, _ = io.Copy(io.Discard, conn)
	}
}

func (fn *tlsNode) login(c net.Conn) (net.Conn, string) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	caps := uint32(requiredCaps | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_CONNECT_WITH_DB |
		mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_MULTI_RESULTS)
	if fn.offerTLS {
		caps |= mysql.CLIENT_SSL
	}
	g := &greeting{Version: "8.0.40-fake", ConnID: 4242, Salt: fn.salt, Caps: caps, Collation: 45,
		AuthPlugin: mysql.AUTH_CACHING_SHA2_PASSWORD}
	if err := writeRaw(c, 0, appendGreeting(nil, g)); err != nil {
		return nil, err.Error()
	}
	var conn net.Conn = c
	p, seq, err := readPacket(conn, nil, 1<<16)
	if err != nil {
		return nil, "node: " + err.Error()
	}
	if isSSLRequest(p) {
		req := append([]byte(nil), p...)
		fn.sslReq.Store(&req)
		if !fn.offerTLS {
			return nil, "SSLRequest to a node that does not offer TLS"
		}
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{fn.cert}})
		if err := tc.Handshake(); err != nil {
			return nil, "node: TLS handshake: " + err.Error()
		}
		conn = tc
		if p, seq, err = readPacket(conn, nil, 1<<16); err != nil {
			return nil, "node: " + err.Error()
		}
	}
	resp, err := parseHandshakeResponse(p)
	if err != nil {
		return nil, err.Error()
	}
	return conn, fn.script(conn, resp, seq)
}

// fullAuth is the script of a node that does not have the account's hash
// cached: it checks the fast answer, asks for full authentication and
// reports the reply; then it accepts, so the login finishes.
func fullAuth(key *rsa.PrivateKey, salt []byte) func(net.Conn, *handshakeResponse, byte) string {
	return func(c net.Conn, resp *handshakeResponse, seq byte) string {
		if want := mysql.CalcCachingSha2Password(salt, []byte("s3cret")); !bytes.Equal(resp.Auth, want) {
			return fmt.Sprintf("fast auth answer %x, want %x", resp.Auth, want)
		}
		if err := writeRaw(c, seq+1, []byte{1, 4}); err != nil { // perform full authentication
			return err.Error()
		}
		p, seq, err := readPacket(c, nil, 1<<16)
		if err != nil {
			return err.Error()
		}
		got := ""
		if len(p) == 1 && p[0] == 2 { // public key request
			der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
			if err := writeRaw(c, seq+1, append([]byte{1}, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)); err != nil {
				return err.Error()
			}
			if p, seq, err = readPacket(c, nil, 1<<16); err != nil {
				return err.Error()
			}
			plain, err := rsa.DecryptOAEP(sha1.New(), rand.Reader, key, p, nil)
			if err != nil {
				return "RSA: " + err.Error()
			}
			for i := range plain {
				plain[i] ^= salt[i%len(salt)]
			}
			got = "rsa:" + string(plain)
		} else {
			got = "clear:" + string(p)
		}
		if err := writeRaw(c, seq+1, appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0)); err != nil {
			return err.Error()
		}
		return got
	}
}

func tlsLoginParams() *loginParams {
	return &loginParams{User: "sha2user", Password: "s3cret", DB: "app", Collation: 45, MaxPacket: 1 << 24,
		Caps: requiredCaps | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_MULTI_RESULTS}
}

func nodeTLS(t *testing.T, s nodetls.Settings, addr string) *nodetls.Client {
	t.Helper()
	c, err := nodetls.New(s, addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var testTimeouts = dialTimeouts{Connect: 5 * time.Second, Login: 10 * time.Second}

// TestCachingSha2FullAuthOverTLS: a MySQL 8 node that asks for
// caching_sha2_password full authentication gets the password in clear
// over TLS (no RSA key fetched), and an RSA-encrypted one without TLS;
// the SSLRequest carries the handshake response's own capabilities.
func TestCachingSha2FullAuthOverTLS(t *testing.T) {
	cert, caFile := nodeCert(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	salt := []byte("0123456789abcdefghij")
	for _, c := range []struct {
		name     string
		offerTLS bool
		mode     nodetls.Mode
		want     string
		tls      bool
	}{
		{"verify-full", true, nodetls.VerifyFull, "clear:s3cret\x00", true},
		{"required", true, nodetls.Required, "clear:s3cret\x00", true},
		{"preferred, offered", true, nodetls.Preferred, "clear:s3cret\x00", true},
		{"preferred, not offered", false, nodetls.Preferred, "rsa:s3cret\x00", false},
		{"off", true, nodetls.Off, "rsa:s3cret\x00", false},
	} {
		fn := &tlsNode{t: t, cert: cert, offerTLS: c.offerTLS, salt: salt, script: fullAuth(rsaKey, salt)}
		addr := fn.listen()
		s := nodetls.Settings{Mode: c.mode}
		if c.mode == nodetls.VerifyFull {
			s.CAFile = caFile
		}
		var plain atomic.Int32
		n := &Node{Name: "fake", Address: addr, TLS: nodeTLS(t, s, addr), OnPlaintext: func() { plain.Add(1) }}
		be, err := dialBackend(context.Background(), n, tlsLoginParams(), testTimeouts)
		if err != nil {
			t.Fatalf("%s: %v (node: %s)", c.name, err, <-fn.seen)
		}
		if got := <-fn.seen; got != c.want {
			t.Fatalf("%s: node got %q, want %q", c.name, got, c.want)
		}
		if be.tls() != c.tls {
			t.Fatalf("%s: TLS %v, want %v", c.name, be.tls(), c.tls)
		}
		if _, isTLS := be.conn.(*tls.Conn); isTLS != c.tls {
			t.Fatalf("%s: node connection %T", c.name, be.conn)
		}
		if wantPlain := int32(0); c.mode == nodetls.Preferred && !c.offerTLS {
			if plain.Load() != 1 {
				t.Fatalf("%s: OnPlaintext called %d times", c.name, plain.Load())
			}
		} else if plain.Load() != wantPlain {
			t.Fatalf("%s: OnPlaintext called", c.name)
		}
		if req := fn.sslReq.Load(); c.tls {
			if req == nil {
				t.Fatalf("%s: no SSLRequest", c.name)
			}
			if caps := uint32((*req)[0]) | uint32((*req)[1])<<8 | uint32((*req)[2])<<16 | uint32((*req)[3])<<24; caps != be.caps || caps&mysql.CLIENT_SSL == 0 {
				t.Fatalf("%s: SSLRequest caps %x, handshake response caps %x", c.name, caps, be.caps)
			}
		} else if req != nil {
			t.Fatalf("%s: SSLRequest sent", c.name)
		}
		if !be.idleAndOpen() {
			t.Fatalf("%s: an idle node connection looks closed", c.name)
		}
		be.close()
	}
}

// TestChangeUserFullAuthOverTLS: COM_CHANGE_USER on a TLS node connection
// answers full authentication in clear too.
func TestChangeUserFullAuthOverTLS(t *testing.T) {
	cert, _ := nodeCert(t)
	salt := []byte("0123456789abcdefghij")
	cuDone := make(chan string, 1)
	fn := &tlsNode{t: t, cert: cert, offerTLS: true, salt: salt}
	fn.script = func(c net.Conn, resp *handshakeResponse, seq byte) string {
		if err := writeRaw(c, seq+1, []byte{1, 3}); err != nil { // fast auth OK
			return err.Error()
		}
		if err := writeRaw(c, seq+2, appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0)); err != nil {
			return err.Error()
		}
		p, _, err := readPacket(c, nil, 1<<16)
		if err != nil || len(p) == 0 || p[0] != mysql.COM_CHANGE_USER {
			cuDone <- fmt.Sprintf("want COM_CHANGE_USER, got %x, %v", p, err)
			return "login"
		}
		_ = writeRaw(c, 1, []byte{1, 4})
		p, seq, err = readPacket(c, nil, 1<<16)
		if err != nil {
			cuDone <- err.Error()
			return "login"
		}
		cuDone <- string(p)
		_ = writeRaw(c, seq+1, appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0))
		return "login"
	}
	addr := fn.listen()
	n := &Node{Name: "fake", Address: addr, TLS: nodeTLS(t, nodetls.Settings{Mode: nodetls.Required}, addr)}
	be, err := dialBackend(context.Background(), n, tlsLoginParams(), testTimeouts)
	if err != nil {
		t.Fatal(err)
	}
	defer be.close()
	lp := tlsLoginParams()
	lp.User, lp.Password = "other", "0th3r"
	if _, err := be.changeUser(lp, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := <-cuDone; got != "0th3r\x00" {
		t.Fatalf("node got %q for full authentication after COM_CHANGE_USER", got)
	}
}

// TestNodeTLSRefusals: what tandem refuses to do, with an error meant for
// the client (a *sqlError) that says why.
func TestNodeTLSRefusals(t *testing.T) {
	cert, caFile := nodeCert(t)
	salt := []byte("0123456789abcdefghij")
	accept := func(c net.Conn, _ *handshakeResponse, seq byte) string {
		_ = writeRaw(c, seq+1, appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0))
		return "accepted"
	}
	clearSwitch := func(c net.Conn, _ *handshakeResponse, seq byte) string {
		_ = writeRaw(c, seq+1, appendAuthSwitch(nil, mysql.AUTH_CLEAR_PASSWORD, nil))
		p, seq, err := readPacket(c, nil, 1<<16)
		if err != nil {
			return "no answer to mysql_clear_password"
		}
		_ = writeRaw(c, seq+1, appendOK(nil, mysql.SERVER_STATUS_AUTOCOMMIT, 0))
		return "clear:" + string(p)
	}
	stage1 := sha1.Sum([]byte("s3cret"))
	for _, c := range []struct {
		name     string
		offerTLS bool
		s        nodetls.Settings
		lp       func(*loginParams)
		script   func(net.Conn, *handshakeResponse, byte) string
		want     string // in the error; "" for success
		node     string // what the node reports
	}{
		{"required, not offered", false, nodetls.Settings{Mode: nodetls.Required}, nil, accept,
			`node fake: the node does not offer TLS (its greeting lacks CLIENT_SSL), and its tls = "required" requires it`, ""},
		{"verify-full, not offered", false, nodetls.Settings{Mode: nodetls.VerifyFull, CAFile: caFile}, nil, accept,
			"does not offer TLS", ""},
		{"verify-full, wrong name", true, nodetls.Settings{Mode: nodetls.VerifyFull, CAFile: caFile, ServerName: "db.example"}, nil, accept,
			`TLS with node fake (tls = "verify-full") failed: tls: failed to verify certificate: x509: certificate is not valid for any names, but wanted to match db.example`, ""},
		{"verify-ca, wrong name", true, nodetls.Settings{Mode: nodetls.VerifyCA, CAFile: caFile}, nil, accept, "", "accepted"},
		{"clear password over TLS", true, nodetls.Settings{Mode: nodetls.Required}, nil, clearSwitch, "", "clear:s3cret\x00"},
		{"clear password without TLS", true, nodetls.Settings{}, nil, clearSwitch, "asks for a cleartext password; tandem sends it only over TLS", ""},
		{"clear password without the password", true, nodetls.Settings{Mode: nodetls.Required},
			func(lp *loginParams) { lp.Password, lp.Stage1 = "", stage1[:] }, clearSwitch, "does not hold", ""},
	} {
		fn := &tlsNode{t: t, cert: cert, offerTLS: c.offerTLS, salt: salt, script: c.script}
		addr := fn.listen()
		lp := tlsLoginParams()
		if c.lp != nil {
			c.lp(lp)
		}
		be, err := dialBackend(context.Background(), &Node{Name: "fake", Address: addr, TLS: nodeTLS(t, c.s, addr)}, lp, testTimeouts)
		if c.want == "" {
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			be.close()
			if got := <-fn.seen; got != c.node {
				t.Fatalf("%s: node reports %q, want %q", c.name, got, c.node)
			}
			continue
		}
		if err == nil {
			be.close()
			t.Fatalf("%s: logged in", c.name)
		}
		e, refused := isNodeRefusal(err)
		if !refused || !strings.Contains(e.Message, c.want) {
			t.Fatalf("%s: got %v (for the client: %v), want %q", c.name, err, refused, c.want)
		}
		if strings.Contains(c.name, "not offered") && fn.sslReq.Load() != nil {
			t.Fatalf("%s: SSLRequest sent to a node without TLS", c.name)
		}
	}
}

// TestAbandonedHandshakeOverTLS: the failed login that ends a node
// connection whose client left goes over TLS too.
func TestAbandonedHandshakeOverTLS(t *testing.T) {
	cert, _ := nodeCert(t)
	fn := &tlsNode{t: t, cert: cert, offerTLS: true, salt: []byte("0123456789abcdefghij")}
	fn.script = func(c net.Conn, resp *handshakeResponse, seq byte) string {
		_ = writeRaw(c, seq+1, appendErr(nil, newError(erAccessDenied, "Access denied")))
		_, isTLS := c.(*tls.Conn)
		return fmt.Sprintf("login as %s, TLS %v", resp.User, isTLS)
	}
	addr := fn.listen()
	n := &Node{Name: "fake", Address: addr, TLS: nodeTLS(t, nodetls.Settings{Mode: nodetls.Required}, addr)}
	p, err := New(Config{Users: map[string]string{"app": "pw"}}, []*Node{n}, "fake")
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
	if _, _, err := readPacket(c, nil, 1<<16); err != nil {
		t.Fatal(err)
	}
	c.Close() // gone after the greeting
	select {
	case s := <-fn.seen:
		if want := "login as " + abandonUser + ", TLS true"; s != want {
			t.Fatalf("node saw %q, want %q", s, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the node heard nothing")
	}
}
