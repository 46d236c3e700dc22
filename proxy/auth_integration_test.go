package proxy

// Client-side authentication variants: caching_sha2_password, TLS (optional
// and required), and a unix socket listener.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/testpair"
)

func TestCachingSha2Password(t *testing.T) {
	p := startProxy(t, func(c *Config, _ []*Node) { c.DefaultAuthPlugin = "caching_sha2_password" })
	var port int
	if err := openDB(t, driverConfig(p.addr)).QueryRow("SELECT @@port").Scan(&port); err != nil {
		t.Fatalf("caching_sha2_password login: %v", err)
	}
	c := driverConfig(p.addr)
	c.Passwd = "wrong"
	if code, _ := mysqlErr(openDB(t, c).Ping()); code != 1045 {
		t.Fatal("caching_sha2_password with a wrong password was not refused with 1045")
	}
	// A native-password greeting, answered after an auth switch.
	c = driverConfig(p.addr)
	c.AllowNativePasswords = true
	if err := openDB(t, c).Ping(); err != nil {
		t.Fatal(err)
	}
}

// selfSigned returns a TLS config with a fresh self-signed certificate.
func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tandem-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

func TestTLS(t *testing.T) {
	serverTLS := selfSigned(t)
	if err := mysql.RegisterTLSConfig("tandem-test", &tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatal(err)
	}
	for _, require := range []bool{false, true} {
		p := startProxy(t, func(c *Config, _ []*Node) { c.TLS, c.RequireTLS = serverTLS, require })
		c := driverConfig(p.addr)
		c.TLSConfig = "tandem-test"
		db := openDB(t, c)
		db.SetMaxOpenConns(1)
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM seq_1_to_1000").Scan(&n); err != nil || n != 1000 {
			t.Fatalf("require=%v: query over TLS: %d, %v", require, n, err)
		}
		p.mu.Lock()
		for _, s := range p.sessions {
			if _, ok := s.client.(*tls.Conn); !ok {
				t.Errorf("require=%v: session %d is not on TLS", require, s.id)
			}
		}
		p.mu.Unlock()
		plain := openDB(t, driverConfig(p.addr)).Ping()
		if require {
			if code, _ := mysqlErr(plain); code != 1045 {
				t.Fatalf("require_tls: a plain client got %v, want error 1045", plain)
			}
		} else if plain != nil {
			t.Fatalf("optional TLS: a plain client got %v", plain)
		}
	}
}

func TestUnixSocketListener(t *testing.T) {
	p := startProxy(t, nil)
	path := filepath.Join(t.TempDir(), "tandem.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(l)
	c := driverConfig(path)
	c.Net = "unix"
	var port int
	if err := openDB(t, c).QueryRow("SELECT @@port").Scan(&port); err != nil || port != testpair.Port(testpair.A) {
		t.Fatalf("over the unix socket: port %d, %v", port, err)
	}
}
