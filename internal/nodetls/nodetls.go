// Package nodetls builds the TLS settings of every connection tandem makes
// to one node: the proxy's node sessions (package proxy speaks the MySQL
// SSLRequest itself) and tandem's own SQL through go-sql-driver (monitor,
// fencing, accounts, settling) and go-mysql (the binlog read that settles an
// interrupted commit).
//
// The modes follow MySQL's --ssl-mode:
//
//	off          plaintext
//	preferred    TLS when the node offers it (CLIENT_SSL), else plaintext;
//	             no certificate check
//	required     TLS, or the connection fails; no certificate check
//	verify-ca    TLS, the node's chain verified against the CA file
//	verify-full  verify-ca, and the certificate names the node (its
//	             address's host, or the configured server name)
package nodetls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/go-sql-driver/mysql"
)

// Mode is how a connection to a node uses TLS.
type Mode int

// The modes, weakest first.
const (
	Off Mode = iota
	Preferred
	Required
	VerifyCA
	VerifyFull
)

var modeNames = [...]string{"off", "preferred", "required", "verify-ca", "verify-full"}

func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return fmt.Sprintf("Mode(%d)", int(m))
	}
	return modeNames[m]
}

// ParseMode reads a mode's name.
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if s == n {
			return Mode(i), nil
		}
	}
	return Off, fmt.Errorf("%q is not one of off, preferred, required, verify-ca, verify-full", s)
}

// Settings are one node's TLS keys, as written in its config section.
type Settings struct {
	Mode Mode
	// CAFile is a PEM file of the certificates that may sign the node's
	// chain. Needed by verify-ca and verify-full, refused by the others
	// (a CA given but not checked would be a false sense of safety).
	CAFile string
	// CertFile and KeyFile (both or neither) are a client certificate
	// tandem presents, for accounts created with REQUIRE X509 / SUBJECT.
	CertFile, KeyFile string
	// ServerName is the name verify-full expects in the node's
	// certificate. Default: the host of the node's address (an IP address
	// is matched against the certificate's IP SANs). Needed for a node
	// reached over a unix socket.
	ServerName string
}

// FieldError is a problem with one of Settings' keys.
type FieldError struct {
	Key string // tls, tls_ca, tls_cert, tls_key, tls_server_name
	Err error
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(key, format string, a ...any) error {
	return &FieldError{Key: key, Err: fmt.Errorf(format, a...)}
}

// Client is how tandem secures its connections to one node. A nil *Client
// means plaintext (mode off). Safe for concurrent use; never modified after
// New.
type Client struct {
	Mode Mode
	// config is the crypto/tls configuration; hand out clones only.
	config *tls.Config
}

// New checks s for the node at address (host:port, or a unix socket path
// starting with "/"), reads its files, and returns the client settings:
// nil for mode off. Every error is a *FieldError naming the key at fault.
func New(s Settings, address string) (*Client, error) {
	if s.Mode < Off || s.Mode > VerifyFull {
		return nil, fieldErr("tls", "unknown mode %d", int(s.Mode))
	}
	if s.Mode == Off {
		for _, k := range []struct{ key, v string }{{"tls_ca", s.CAFile}, {"tls_cert", s.CertFile}, {"tls_key", s.KeyFile}, {"tls_server_name", s.ServerName}} {
			if k.v != "" {
				return nil, fieldErr(k.key, "set, but tls is off")
			}
		}
		return nil, nil
	}
	verify := s.Mode == VerifyCA || s.Mode == VerifyFull
	if verify && s.CAFile == "" {
		return nil, fieldErr("tls_ca", "missing: tls = %q checks the node's certificate against this CA file", s.Mode)
	}
	if !verify && s.CAFile != "" {
		return nil, fieldErr("tls_ca", "set, but tls = %q checks no certificate; use verify-ca or verify-full", s.Mode)
	}
	if s.ServerName != "" && s.Mode != VerifyFull {
		return nil, fieldErr("tls_server_name", "set, but only tls = \"verify-full\" checks the node's name")
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		if s.CertFile == "" {
			return nil, fieldErr("tls_cert", "missing: tls_key is set; give both or neither")
		}
		return nil, fieldErr("tls_key", "missing: tls_cert is set; give both or neither")
	}
	// The session cache is shared by every clone: later connections to
	// the node resume the session (MariaDB and MySQL issue tickets),
	// which skips the certificate exchange and checks.
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(64)}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, &FieldError{Key: "tls_cert", Err: err}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	var roots *x509.CertPool
	if verify {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, &FieldError{Key: "tls_ca", Err: err}
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fieldErr("tls_ca", "%s holds no PEM certificate", s.CAFile)
		}
	}
	switch s.Mode {
	case Preferred, Required:
		// Encryption without authentication, as MySQL's --ssl-mode of the
		// same names: it stops eavesdroppers, not an active attacker.
		cfg.InsecureSkipVerify = true
	case VerifyCA:
		// crypto/tls always checks the name unless told to skip the whole
		// check; verify the chain here instead.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return verifyChain(cs, roots) }
	case VerifyFull:
		name := s.ServerName
		if name == "" {
			if len(address) > 0 && address[0] == '/' {
				return nil, fieldErr("tls_server_name", "missing: tls = \"verify-full\" over a unix socket needs the name the node's certificate holds")
			}
			host, _, err := net.SplitHostPort(address)
			if err != nil || host == "" {
				return nil, fieldErr("tls_server_name", "missing, and the node address %q has no host to use", address)
			}
			name = host
		}
		cfg.RootCAs, cfg.ServerName = roots, name
	}
	return &Client{Mode: s.Mode, config: cfg}, nil
}

// verifyChain checks the node's certificate chain against roots, without
// its names (verify-ca).
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return &noCertError{}
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// Config returns a copy of the crypto/tls configuration (nil for a nil
// Client).
func (c *Client) Config() *tls.Config {
	if c == nil {
		return nil
	}
	return c.config.Clone()
}

// Optional reports whether a node that does not offer TLS is reached in
// plaintext (preferred) rather than refused.
func (c *Client) Optional() bool { return c != nil && c.Mode == Preferred }

// Apply sets go-sql-driver's TLS options on mc: nothing for a nil Client.
func (c *Client) Apply(mc *mysql.Config) error {
	if c == nil {
		return nil
	}
	mc.TLS = c.Config()
	mc.AllowFallbackToPlaintext = c.Optional()
	if mc.AllowFallbackToPlaintext {
		// go-sql-driver v1.10 falls back by setting TLS to nil in the
		// connection's Config, which is the connector's own unless a
		// BeforeConnect hook makes it clone one per connection: without
		// the hook one node without TLS would turn every later connection
		// of the pool to plaintext (and race).
		return mc.Apply(mysql.BeforeConnect(func(context.Context, *mysql.Config) error { return nil }))
	}
	return nil
}

// IsConfigError reports whether err, from a connection attempt, says that
// the TLS settings and the node disagree rather than that the node is
// unreachable: its certificate does not verify (chain or name), it
// rejected the TLS handshake with an alert, or it does not offer TLS where
// the mode requires it. Retrying does not help; fixing a config does.
func IsConfigError(err error) bool {
	if err == nil {
		return false
	}
	var (
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		hne x509.HostnameError
		cie x509.CertificateInvalidError
		ale tls.AlertError
		nce *noCertError
	)
	return errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie) ||
		errors.As(err, &ale) || errors.As(err, &nce) || errors.Is(err, mysql.ErrNoTLS) || errors.Is(err, ErrNotOffered)
}

// ErrNotOffered is wrapped by tandem's own refusals of a node that does
// not offer TLS where the mode requires it.
var ErrNotOffered = errors.New("the node does not offer TLS")

type noCertError struct{}

func (*noCertError) Error() string { return "the node sent no certificate" }
