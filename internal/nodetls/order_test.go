package nodetls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/cpu"
)

func TestTLS13OrderIsOpenSSLs(t *testing.T) {
	if got := goTLS13Suites; !slices.Equal(got, openSSLTLS13Order) {
		t.Fatalf("TLS 1.3 order %x, want %x", got, openSSLTLS13Order)
	}
	if useTLS13Order([]uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, 0x1304}) {
		t.Fatal("an order with a suite Go does not have was taken")
	}
	if got := goTLS13Suites; !slices.Equal(got, openSSLTLS13Order) {
		t.Fatalf("a refused order changed the list: %x", got)
	}
}

// TestTLS13Negotiated: a Go client and a Go server in this process agree
// on AES-256-GCM where the CPU has AES-GCM instructions (Go's own order
// gives AES-128-GCM).
func TestTLS13Negotiated(t *testing.T) {
	if runtime.GOARCH != "amd64" || !cpu.X86.HasAES || !cpu.X86.HasPCLMULQDQ {
		t.Skip("Go prefers ChaCha20 without AES-GCM instructions; this checks amd64 with them")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "n"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"n"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	done := make(chan error, 1)
	go func() { done <- srv.Handshake() }()
	cl := tls.Client(b, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err := cl.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := cl.ConnectionState().CipherSuite; got != tls.TLS_AES_256_GCM_SHA384 {
		t.Fatalf("negotiated %s, want TLS_AES_256_GCM_SHA384", tls.CipherSuiteName(got))
	}
}
