package nodetls

import (
	"crypto/tls"
	_ "unsafe" // go:linkname
)

// Go's crypto/tls has no setting for TLS 1.3 cipher suites (by design,
// golang/go#29349): it offers, and as a server prefers, AES-128-GCM first
// when the CPU has AES instructions. OpenSSL, and so libmariadb, the
// mariadb CLI, PHP, Python and Node, offers AES-256-GCM first, as Java
// does; MariaDB and MySQL pick the client's first choice. Through tandem
// the node reports the cipher of tandem's link to it (SHOW STATUS LIKE
// 'Ssl_cipher'), so with Go's order those clients saw TLS_AES_128_GCM_SHA256
// where directly they see TLS_AES_256_GCM_SHA384 (mysql-test-run's
// main.ssl_cipher_tlsv13).
//
// tandem therefore uses OpenSSL's default TLS 1.3 order in the whole
// process, on its links to the nodes and as a server to its clients: the
// node link negotiates what such a client negotiates directly, and so does
// the client's link to tandem. The list Go keeps is reachable by name:
// crypto/tls marks it for go:linkname and promises to keep its type.
// Only the order changes, never the set of suites; Go's choice of
// ChaCha20 first on CPUs without AES instructions (another list) stays.
//
//go:linkname goTLS13Suites crypto/tls.defaultCipherSuitesTLS13
var goTLS13Suites []uint16

// openSSLTLS13Order is OpenSSL's default TLS 1.3 cipher suite order
// (TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256).
var openSSLTLS13Order = []uint16{
	tls.TLS_AES_256_GCM_SHA384,
	tls.TLS_CHACHA20_POLY1305_SHA256,
	tls.TLS_AES_128_GCM_SHA256,
}

func init() {
	useTLS13Order(openSSLTLS13Order)
}

// useTLS13Order reorders Go's TLS 1.3 list in place when order holds the
// same suites; otherwise (a Go release that changed the list) it leaves
// Go's order alone.
func useTLS13Order(order []uint16) bool {
	if len(goTLS13Suites) != len(order) {
		return false
	}
	for _, want := range order {
		found := false
		for _, have := range goTLS13Suites {
			found = found || have == want
		}
		if !found {
			return false
		}
	}
	copy(goTLS13Suites, order)
	return true
}
