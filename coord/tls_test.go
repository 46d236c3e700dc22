package coord

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tandemdb/tandem/internal/testetcd"
)

// TestTLSAndAuth runs a one-member etcd of its own with TLS, client
// certificates and authentication, and checks that a session with the
// right CA, certificate and password works, and that a wrong CA or a wrong
// password is a clear error from Open.
func TestTLSAndAuth(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := writeCA(t, dir)
	writeCert(t, dir, "server", ca, caKey, true)
	writeCert(t, dir, "client", ca, caKey, false)
	otherCA, _ := writeCA(t, t.TempDir())

	ports, err := testetcd.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	client := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tc.Bin, "--name=tls1", "--data-dir="+filepath.Join(dir, "data"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=tls1="+peer, "--heartbeat-interval=50", "--election-timeout=500",
		"--cert-file="+filepath.Join(dir, "server.pem"), "--key-file="+filepath.Join(dir, "server-key.pem"),
		"--trusted-ca-file="+filepath.Join(dir, "ca.pem"), "--client-cert-auth", "--log-level=warn")
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	// Turn authentication on with a root user, over TLS.
	tlsCfg := clientTLS(t, dir, "ca.pem")
	admin, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	waitFor(t, 30*time.Second, "the TLS member to answer", func() bool {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := admin.Get(c, "x")
		return err == nil
	})
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}

	cfg := DefaultConfig()
	cfg.Endpoints = []string{client}
	cfg.Prefix, cfg.ID = "/coordtest/tls", "a"
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	cfg.Username, cfg.Password = "root", "rootpw"
	cfg.DialTimeout = 3 * time.Second
	s, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("Open over TLS with auth: %v", err)
	}
	defer s.Close()
	if err := s.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, []byte("tls"), 0); err != nil {
		t.Fatal(err)
	}

	bad := cfg
	bad.Password = "wrong"
	if _, err := Open(ctx, bad, nil); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("Open with a wrong password: %v", err)
	}
	bad = cfg
	bad.CAFile = filepath.Join(filepath.Dir(otherCA), "ca.pem")
	bad.DialTimeout = time.Second
	if _, err := Open(ctx, bad, nil); err == nil {
		t.Fatal("Open trusting another CA succeeded")
	}
	bad = cfg
	bad.CAFile = filepath.Join(dir, "missing.pem")
	if _, err := Open(ctx, bad, nil); err == nil || !strings.Contains(err.Error(), "coord: TLS files") {
		t.Fatalf("Open with a missing CA file: %v", err)
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeCA writes ca.pem in dir and returns its path and key.
func writeCA(t *testing.T, dir string) (string, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "coord test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	writePEM(t, path, "CERTIFICATE", der)
	return path, key
}

// writeCert writes NAME.pem and NAME-key.pem signed by the CA at caPath.
func writeCert(t *testing.T, dir, name, caPath string, caKey *ecdsa.PrivateKey, server bool) {
	t.Helper()
	b, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+"-key.pem"), "EC PRIVATE KEY", kb)
}

// clientTLS is the test's own TLS config with the client certificate.
func clientTLS(t *testing.T, dir, caFile string) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	b, err := os.ReadFile(filepath.Join(dir, caFile))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
}
