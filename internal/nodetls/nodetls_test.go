package nodetls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// testCA is a CA that signs certificates for the tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM
}

func newCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(dir, name+".pem")
	writePEM(t, file, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, file: file}
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue makes a certificate for names (DNS names or IPs), for server or
// client use, and writes it and its key as PEM files.
func (ca *testCA) issue(t *testing.T, dir, base string, client bool, names ...string) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: base},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, base+"-cert.pem"), filepath.Join(dir, base+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return c, certFile, keyFile
}

func TestParseMode(t *testing.T) {
	for m := Off; m <= VerifyFull; m++ {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Fatalf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	for _, bad := range []string{"", "on", "true", "VERIFY-FULL", "verify_full", "disabled"} {
		if _, err := ParseMode(bad); err == nil || !strings.Contains(err.Error(), "verify-full") {
			t.Fatalf("ParseMode(%q): %v", bad, err)
		}
	}
}

// TestNewRefusesBadSettings: every inconsistent setting is refused up
// front, naming its key.
func TestNewRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir, "ca")
	_, cert, key := ca.issue(t, dir, "client", true, "tandem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	cases := []struct {
		name string
		s    Settings
		addr string
		key  string // the key the error must name
		want string // in the error
	}{
		{"ca with off", Settings{Mode: Off, CAFile: ca.file}, "127.0.0.1:1", "tls_ca", "tls is off"},
		{"cert with off", Settings{Mode: Off, CertFile: cert, KeyFile: key}, "127.0.0.1:1", "tls_cert", "tls is off"},
		{"server name with off", Settings{Mode: Off, ServerName: "x"}, "127.0.0.1:1", "tls_server_name", "tls is off"},
		{"verify-ca without ca", Settings{Mode: VerifyCA}, "127.0.0.1:1", "tls_ca", "missing"},
		{"verify-full without ca", Settings{Mode: VerifyFull}, "127.0.0.1:1", "tls_ca", "missing"},
		{"ca with required", Settings{Mode: Required, CAFile: ca.file}, "127.0.0.1:1", "tls_ca", "verify-ca or verify-full"},
		{"ca with preferred", Settings{Mode: Preferred, CAFile: ca.file}, "127.0.0.1:1", "tls_ca", "verify-ca or verify-full"},
		{"server name with verify-ca", Settings{Mode: VerifyCA, CAFile: ca.file, ServerName: "x"}, "127.0.0.1:1", "tls_server_name", "verify-full"},
		{"cert without key", Settings{Mode: Required, CertFile: cert}, "127.0.0.1:1", "tls_key", "both or neither"},
		{"key without cert", Settings{Mode: Required, KeyFile: key}, "127.0.0.1:1", "tls_cert", "both or neither"},
		{"cert and key swapped", Settings{Mode: Required, CertFile: key, KeyFile: cert}, "127.0.0.1:1", "tls_cert", ""},
		{"missing ca file", Settings{Mode: VerifyCA, CAFile: missing}, "127.0.0.1:1", "tls_ca", "no such file"},
		{"ca file without certificates", Settings{Mode: VerifyFull, CAFile: garbage}, "127.0.0.1:1", "tls_ca", "no PEM certificate"},
		{"verify-full over a socket", Settings{Mode: VerifyFull, CAFile: ca.file}, "/run/mysqld/mysqld.sock", "tls_server_name", "unix socket"},
		{"unknown mode", Settings{Mode: Mode(9)}, "127.0.0.1:1", "tls", "unknown mode"},
	}
	for _, c := range cases {
		_, err := New(c.s, c.addr)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Key != c.key || !strings.HasPrefix(err.Error(), c.key+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error on %s containing %q", c.name, err, c.key, c.want)
		}
	}
	// Good settings.
	if c, err := New(Settings{Mode: Off}, "127.0.0.1:1"); c != nil || err != nil {
		t.Fatalf("off: %v, %v", c, err)
	}
	c, err := New(Settings{Mode: VerifyFull, CAFile: ca.file, CertFile: cert, KeyFile: key, ServerName: "db.example"}, "/run/mysqld/mysqld.sock")
	if err != nil || c.Config().ServerName != "db.example" || len(c.Config().Certificates) != 1 {
		t.Fatalf("verify-full over a socket with a server name: %v", err)
	}
	c, err = New(Settings{Mode: VerifyFull, CAFile: ca.file}, "db1.example:3306")
	if err != nil || c.Config().ServerName != "db1.example" || c.Config().InsecureSkipVerify {
		t.Fatalf("verify-full takes the address's host: %+v, %v", c.Config(), err)
	}
}

// serveTLS accepts TLS connections with cert on loopback and completes
// their handshakes (asking for a client certificate signed by clientCA,
// when set); it returns the address and the client certificates seen.
func serveTLS(t *testing.T, cert tls.Certificate, clientCA *testCA) (string, <-chan []*x509.Certificate) {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCA != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clientCA.cert)
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	seen := make(chan []*x509.Certificate, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				if tc.Handshake() == nil {
					seen <- tc.ConnectionState().PeerCertificates
					_, _ = tc.Write([]byte("x")) // TLS 1.3: the client learns of a rejection by reading
				}
			}()
		}
	}()
	return l.Addr().String(), seen
}

func dial(addr string, c *Client) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, c.Config())
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	return err
}

// TestModesCheckWhatTheySay: required checks nothing, verify-ca the chain
// only, verify-full the chain and the name; failures are config errors.
func TestModesCheckWhatTheySay(t *testing.T) {
	dir := t.TempDir()
	ca, other := newCA(t, dir, "ca"), newCA(t, dir, "other")
	// The node's certificate names db.example only, not 127.0.0.1.
	cert, _, _ := ca.issue(t, dir, "node", false, "db.example")
	addr, _ := serveTLS(t, cert, nil)
	mk := func(s Settings) *Client {
		c, err := New(s, addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ok := []struct {
		name string
		s    Settings
	}{
		{"preferred", Settings{Mode: Preferred}},
		{"required", Settings{Mode: Required}},
		{"verify-ca, name not checked", Settings{Mode: VerifyCA, CAFile: ca.file}},
		{"verify-full with the certificate's name", Settings{Mode: VerifyFull, CAFile: ca.file, ServerName: "db.example"}},
	}
	for _, c := range ok {
		if err := dial(addr, mk(c.s)); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	bad := []struct {
		name string
		s    Settings
		want string
	}{
		{"verify-ca with another CA", Settings{Mode: VerifyCA, CAFile: other.file}, "unknown authority"},
		{"verify-full with another CA", Settings{Mode: VerifyFull, CAFile: other.file, ServerName: "db.example"}, "unknown authority"},
		{"verify-full with the address's IP", Settings{Mode: VerifyFull, CAFile: ca.file}, "127.0.0.1"},
		{"verify-full with a wrong name", Settings{Mode: VerifyFull, CAFile: ca.file, ServerName: "wrong.example"}, "wrong.example"},
	}
	for _, c := range bad {
		err := dial(addr, mk(c.s))
		if err == nil || !strings.Contains(err.Error(), c.want) || !IsConfigError(err) {
			t.Errorf("%s: got %v (config error: %v), want an error containing %q", c.name, err, IsConfigError(err), c.want)
		}
	}
	if IsConfigError(nil) || IsConfigError(net.ErrClosed) || IsConfigError(os.ErrDeadlineExceeded) {
		t.Fatal("IsConfigError takes a network failure for a config error")
	}
	if !IsConfigError(mysql.ErrNoTLS) || !IsConfigError(ErrNotOffered) {
		t.Fatal("not offering TLS is a config error")
	}
}

// TestClientCertificate: tls_cert/tls_key are presented to the node.
func TestClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir, "ca")
	cert, _, _ := ca.issue(t, dir, "node", false, "127.0.0.1")
	_, ccert, ckey := ca.issue(t, dir, "tandem", true, "tandem")
	addr, seen := serveTLS(t, cert, ca)
	c, err := New(Settings{Mode: VerifyFull, CAFile: ca.file, CertFile: ccert, KeyFile: ckey}, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(addr, c); err != nil {
		t.Fatal(err)
	}
	select {
	case certs := <-seen:
		if len(certs) == 0 || certs[0].Subject.CommonName != "tandem" {
			t.Fatalf("node saw client certificates %v", certs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the node never finished the handshake")
	}
}

// TestApply sets go-sql-driver's options; preferred falls back.
func TestApply(t *testing.T) {
	var nilClient *Client
	mc := mysql.NewConfig()
	if err := nilClient.Apply(mc); err != nil || mc.TLS != nil {
		t.Fatal("off must leave the driver in plaintext")
	}
	for _, m := range []Mode{Preferred, Required} {
		c, err := New(Settings{Mode: m}, "127.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		mc := mysql.NewConfig()
		if err := c.Apply(mc); err != nil || mc.TLS == nil || mc.AllowFallbackToPlaintext != (m == Preferred) {
			t.Fatalf("%s: TLS %v fallback %v err %v", m, mc.TLS, mc.AllowFallbackToPlaintext, err)
		}
		if mc.TLS == c.config {
			t.Fatal("Apply must hand out a copy")
		}
	}
}
