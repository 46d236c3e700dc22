package compat

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestTLSTests(t *testing.T) {
	dir := t.TempDir()
	write := func(path, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "main", "ssl.test"), "--source include/have_ssl_communication.inc\nSELECT 1;\n")
	write(filepath.Join(dir, "main", "tls13.test"), "--source include/have_tlsv13.inc\n")
	write(filepath.Join(dir, "main", "crypto.test"), "--source include/have_ssl_crypto_functs.inc\n")
	write(filepath.Join(dir, "main", "plain.test"), "SELECT 1;\n")
	write(filepath.Join(dir, "suite", "x", "t", "ssl2.test"), "--source include/have_ssl_communication.inc\n")
	tls, other, err := TLSTests(dir, []string{"main.plain", "main.ssl", "main.crypto", "x.ssl2", "main.tls13"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"main.ssl", "x.ssl2", "main.tls13"}; !reflect.DeepEqual(tls, want) {
		t.Errorf("TLS tests %q, want %q", tls, want)
	}
	if want := []string{"main.plain", "main.crypto"}; !reflect.DeepEqual(other, want) {
		t.Errorf("other tests %q, want %q", other, want)
	}
	for _, bad := range []string{"nodot", "main.missing"} {
		if _, _, err := TLSTests(dir, []string{bad}); err == nil {
			t.Errorf("TLSTests(%q): no error", bad)
		}
	}
}

func TestTandemConfigNodeTLS(t *testing.T) {
	td := &Tandem{Dir: "/d", Listen: "127.0.0.1:1", Admin: "127.0.0.1:2", NodeA: "127.0.0.1:3", NodeB: "127.0.0.1:4",
		NodeATLS: "verify-full", NodeATLSCA: "/ca.pem"}
	cfg := td.config()
	if !strings.Contains(cfg, "address = \"127.0.0.1:3\"\ntls = \"verify-full\"\ntls_ca = \"/ca.pem\"\n") {
		t.Errorf("node a's TLS missing from\n%s", cfg)
	}
	td.NodeATLS, td.NodeATLSCA = "", ""
	if cfg := td.config(); strings.Contains(cfg, "tls =") || strings.Contains(cfg, "tls_ca") {
		t.Errorf("TLS keys without NodeATLS:\n%s", cfg)
	}
}
