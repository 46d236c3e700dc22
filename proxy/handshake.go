package proxy

// The connection phase, both directions, in one file: the greeting tandem
// sends to a client and the one it reads from a node, the client's handshake
// response and the one tandem sends to a node, and password scrambles.
//
// Why not go-mysql's server package: it cannot advertise
// CLIENT_MULTI_STATEMENTS, CLIENT_FOUND_ROWS or CLIENT_DEPRECATE_EOF, and
// its client cannot request CLIENT_LOCAL_FILES or pass the client's
// collation byte through. tandem must offer a client exactly what the node's
// session will negotiate, or results and affected-row counts silently differ,
// so it writes these few packets itself with go-mysql's constants and
// scramble functions.

import (
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// supportedCaps are the capability flags tandem can relay unchanged: every
// one of them either changes nothing tandem parses or is understood by the
// relay state machine. Left out on purpose: CLIENT_COMPRESS and
// CLIENT_ZSTD_COMPRESSION_ALGORITHM (the relay would have to inflate),
// CLIENT_OPTIONAL_RESULTSET_METADATA (changes result set framing),
// CLIENT_SSL (offered only when tandem has a certificate, and never passed
// on: the node link is separate), MariaDB's extended capabilities (tandem
// presents itself with CLIENT_LONG_PASSWORD set, so clients do not use them).
const supportedCaps = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_FOUND_ROWS |
	mysql.CLIENT_LONG_FLAG | mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_NO_SCHEMA |
	mysql.CLIENT_ODBC | mysql.CLIENT_LOCAL_FILES | mysql.CLIENT_IGNORE_SPACE |
	mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_INTERACTIVE | mysql.CLIENT_IGNORE_SIGPIPE |
	mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_SECURE_CONNECTION |
	mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS |
	mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_PLUGIN_AUTH |
	mysql.CLIENT_CONNECT_ATTRS | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
	mysql.CLIENT_SESSION_TRACK | mysql.CLIENT_DEPRECATE_EOF |
	mysql.CLIENT_QUERY_ATTRIBUTES

// requiredCaps must be set by every client: tandem speaks protocol 4.1 only.
const requiredCaps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION

// sslRequestLen is the length of an SSLRequest packet payload.
const sslRequestLen = 32

// ErrHandshake is wrapped by every malformed-handshake error.
var ErrHandshake = errors.New("bad handshake")

// greeting is the initial handshake packet (protocol version 10).
type greeting struct {
	Version    string
	ConnID     uint32
	Salt       []byte // 20 bytes
	Caps       uint32
	Collation  byte
	Status     uint16
	AuthPlugin string
}

// appendGreeting appends the payload of an initial handshake packet.
func appendGreeting(b []byte, g *greeting) []byte {
	b = append(b, 10)
	b = append(b, g.Version...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, g.ConnID)
	b = append(b, g.Salt[:8]...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(g.Caps))
	b = append(b, g.Collation)
	b = binary.LittleEndian.AppendUint16(b, g.Status)
	b = binary.LittleEndian.AppendUint16(b, uint16(g.Caps>>16))
	b = append(b, byte(len(g.Salt)+1))
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	b = append(b, g.Salt[8:]...)
	b = append(b, 0)
	b = append(b, g.AuthPlugin...)
	return append(b, 0)
}

// parseGreeting decodes a node's initial handshake packet. An ERR packet in
// its place (too many connections, host blocked) is returned as *sqlError.
func parseGreeting(p []byte) (*greeting, error) {
	if len(p) > 0 && p[0] == 0xff {
		e, ok := parseErr(p)
		if !ok {
			return nil, fmt.Errorf("%w: malformed error packet in place of greeting", ErrHandshake)
		}
		return nil, &e
	}
	if len(p) < 1 || p[0] != 10 {
		return nil, fmt.Errorf("%w: greeting protocol version is not 10", ErrHandshake)
	}
	g := &greeting{}
	v, pos, ok := nulString(p, 1)
	if !ok || pos+4+8+1+2 > len(p) {
		return nil, fmt.Errorf("%w: greeting truncated in server version", ErrHandshake)
	}
	g.Version = string(v)
	g.ConnID = binary.LittleEndian.Uint32(p[pos:])
	pos += 4
	salt := append([]byte(nil), p[pos:pos+8]...)
	pos += 8 + 1
	g.Caps = uint32(binary.LittleEndian.Uint16(p[pos:]))
	pos += 2
	if pos == len(p) {
		g.Salt = salt
		return g, nil
	}
	if pos+1+2+2+1+10 > len(p) {
		return nil, fmt.Errorf("%w: greeting truncated in capabilities", ErrHandshake)
	}
	g.Collation = p[pos]
	g.Status = binary.LittleEndian.Uint16(p[pos+1:])
	g.Caps |= uint32(binary.LittleEndian.Uint16(p[pos+3:])) << 16
	saltLen := int(p[pos+5])
	pos += 6 + 10
	if g.Caps&mysql.CLIENT_SECURE_CONNECTION != 0 {
		n := max(13, saltLen-8)
		if pos+n > len(p) {
			return nil, fmt.Errorf("%w: greeting truncated in auth data", ErrHandshake)
		}
		part := p[pos : pos+n]
		if part[len(part)-1] == 0 {
			part = part[:len(part)-1]
		}
		salt = append(salt, part...)
		pos += n
	}
	g.Salt = salt
	if g.Caps&mysql.CLIENT_PLUGIN_AUTH != 0 {
		name, _, ok := nulString(p, pos)
		if !ok { // some servers omit the final NUL
			name = p[pos:]
		}
		g.AuthPlugin = string(name)
	}
	return g, nil
}

// handshakeResponse is a client's HandshakeResponse41.
type handshakeResponse struct {
	Caps      uint32
	MaxPacket uint32
	Collation byte
	User      string
	Auth      []byte
	DB        string
	Plugin    string
	// Attrs is the raw connection-attributes block (length-encoded
	// length included), passed on to the node as it is.
	Attrs []byte
}

// isSSLRequest reports whether a first client packet is an SSLRequest.
func isSSLRequest(p []byte) bool {
	return len(p) == sslRequestLen && binary.LittleEndian.Uint32(p)&mysql.CLIENT_SSL != 0
}

// parseHandshakeResponse decodes a HandshakeResponse41 payload. Every
// length is checked: short or inconsistent input is an error, never a panic.
func parseHandshakeResponse(p []byte) (*handshakeResponse, error) {
	if len(p) < 32 {
		return nil, fmt.Errorf("%w: handshake response shorter than 32 bytes", ErrHandshake)
	}
	r := &handshakeResponse{
		Caps:      binary.LittleEndian.Uint32(p),
		MaxPacket: binary.LittleEndian.Uint32(p[4:]),
		Collation: p[8],
	}
	if r.Caps&requiredCaps != requiredCaps {
		return nil, fmt.Errorf("%w: client lacks CLIENT_PROTOCOL_41 or CLIENT_SECURE_CONNECTION", ErrHandshake)
	}
	user, pos, ok := nulString(p, 32)
	if !ok {
		return nil, fmt.Errorf("%w: user name not terminated", ErrHandshake)
	}
	r.User = string(user)
	if r.Caps&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
		r.Auth, pos, ok = lenEncBytes(p, pos)
	} else if pos < len(p) {
		n := int(p[pos])
		ok = pos+1+n <= len(p)
		if ok {
			r.Auth = p[pos+1 : pos+1+n]
			pos += 1 + n
		}
	} else {
		ok = false
	}
	if !ok {
		return nil, fmt.Errorf("%w: auth response truncated", ErrHandshake)
	}
	r.Auth = append([]byte(nil), r.Auth...)
	if r.Caps&mysql.CLIENT_CONNECT_WITH_DB != 0 && pos < len(p) {
		db, next, ok := nulString(p, pos)
		if !ok {
			return nil, fmt.Errorf("%w: database name not terminated", ErrHandshake)
		}
		r.DB, pos = string(db), next
	}
	if r.Caps&mysql.CLIENT_PLUGIN_AUTH != 0 && pos < len(p) {
		name, next, ok := nulString(p, pos)
		if !ok {
			return nil, fmt.Errorf("%w: auth plugin name not terminated", ErrHandshake)
		}
		r.Plugin, pos = string(name), next
	}
	if r.Caps&mysql.CLIENT_CONNECT_ATTRS != 0 && pos < len(p) {
		n, next, ok := lenEncInt(p, pos)
		if !ok || n > uint64(len(p)-next) {
			return nil, fmt.Errorf("%w: connection attributes truncated", ErrHandshake)
		}
		r.Attrs = append([]byte(nil), p[pos:next+int(n)]...)
	}
	return r, nil
}

// appendHandshakeResponse appends a HandshakeResponse41 payload that tandem
// sends to a node.
func appendHandshakeResponse(b []byte, r *handshakeResponse) []byte {
	caps := r.Caps
	if len(r.Auth) > 250 {
		caps |= mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
	}
	b = binary.LittleEndian.AppendUint32(b, caps)
	b = binary.LittleEndian.AppendUint32(b, r.MaxPacket)
	b = append(b, r.Collation)
	b = append(b, make([]byte, 23)...)
	b = append(b, r.User...)
	b = append(b, 0)
	if caps&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
		b = mysql.AppendLengthEncodedInteger(b, uint64(len(r.Auth)))
	} else {
		b = append(b, byte(len(r.Auth)))
	}
	b = append(b, r.Auth...)
	if caps&mysql.CLIENT_CONNECT_WITH_DB != 0 {
		b = append(b, r.DB...)
		b = append(b, 0)
	}
	if caps&mysql.CLIENT_PLUGIN_AUTH != 0 {
		b = append(b, r.Plugin...)
		b = append(b, 0)
	}
	if caps&mysql.CLIENT_CONNECT_ATTRS != 0 {
		if len(r.Attrs) == 0 {
			b = append(b, 0)
		} else {
			b = append(b, r.Attrs...)
		}
	}
	return b
}

// scramble computes the auth response for plugin from a salt and a
// plaintext password. ok is false for plugins tandem does not speak.
func scramble(plugin string, salt []byte, password string) (resp []byte, ok bool) {
	switch plugin {
	case mysql.AUTH_NATIVE_PASSWORD, "":
		return mysql.CalcNativePassword(salt, []byte(password)), true
	case mysql.AUTH_CACHING_SHA2_PASSWORD:
		return mysql.CalcCachingSha2Password(salt, []byte(password)), true
	case mysql.AUTH_MARIADB_ED25519:
		if password == "" {
			return nil, true
		}
		r, err := mysql.CalcEd25519Password(salt, password)
		return r, err == nil
	}
	return nil, false
}

// checkScramble reports whether a client's auth response for plugin
// matches password under salt. An empty password matches an empty response
// (some clients send a single NUL for it).
func checkScramble(plugin string, salt, resp []byte, password string) bool {
	if password == "" {
		return len(resp) == 0 || (len(resp) == 1 && resp[0] == 0)
	}
	if plugin != mysql.AUTH_NATIVE_PASSWORD && plugin != mysql.AUTH_CACHING_SHA2_PASSWORD {
		return false
	}
	want, _ := scramble(plugin, salt, password)
	return len(want) > 0 && subtle.ConstantTimeCompare(want, resp) == 1
}

// clientPluginOK reports whether tandem can check a client's scramble for plugin.
func clientPluginOK(plugin string) bool {
	return plugin == mysql.AUTH_NATIVE_PASSWORD || plugin == mysql.AUTH_CACHING_SHA2_PASSWORD
}

// appendAuthSwitch appends an AuthSwitchRequest payload.
func appendAuthSwitch(b []byte, plugin string, salt []byte) []byte {
	b = append(b, 0xfe)
	b = append(b, plugin...)
	b = append(b, 0)
	b = append(b, salt...)
	return append(b, 0)
}

// parseAuthSwitch decodes an AuthSwitchRequest payload from a node.
func parseAuthSwitch(p []byte) (plugin string, salt []byte, err error) {
	if len(p) < 1 || p[0] != 0xfe {
		return "", nil, fmt.Errorf("%w: not an auth switch request", ErrHandshake)
	}
	name, pos, ok := nulString(p, 1)
	if !ok {
		return "", nil, fmt.Errorf("%w: auth switch plugin name not terminated", ErrHandshake)
	}
	salt = append([]byte(nil), p[pos:]...)
	if n := len(salt); n > 0 && salt[n-1] == 0 {
		salt = salt[:n-1]
	}
	return string(name), salt, nil
}

// encryptPassword answers a caching_sha2_password full authentication
// over a plain connection: the password XORed with the salt, encrypted with
// the node's RSA public key (PEM).
func encryptPassword(password string, salt, pemKey []byte) ([]byte, error) {
	block, _ := pem.Decode(pemKey)
	if block == nil {
		return nil, fmt.Errorf("%w: node sent no PEM public key", ErrHandshake)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: node public key: %v", ErrHandshake, err)
	}
	rsaKey, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: node public key is not RSA", ErrHandshake)
	}
	return mysql.EncryptPassword(password, salt, rsaKey)
}
