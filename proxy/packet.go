package proxy

// Packet framing, written once. A MySQL packet is a 3-byte little-endian
// payload length, a 1-byte sequence id and the payload. A payload of
// maxPayload (2^24-1) bytes or more is split into chunks of exactly
// maxPayload bytes followed by a shorter chunk (possibly empty); we call the
// whole run one "logical packet".
//
// The relay never decodes and re-encodes: it copies headers and payloads
// verbatim from one buffered side to the other and only looks at the first
// bytes of a payload to follow the protocol.

import (
	"bufio"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/go-mysql-org/go-mysql/mysql"
)

const (
	// maxPayload is the largest payload of one physical packet.
	maxPayload = 1<<24 - 1
	// headerLen is the size of a packet header.
	headerLen = 4
)

// ErrPacketSequence means a peer sent a packet with an unexpected sequence id.
var ErrPacketSequence = errors.New("packet out of sequence")

// ErrPacketTooLarge means a packet exceeded the configured limit.
var ErrPacketTooLarge = errors.New("packet too large")

// readHeader reads one packet header from r into hdr and returns the payload
// length and sequence id.
func readHeader(r io.Reader, hdr *[headerLen]byte) (int, byte, error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, err
	}
	return int(uint32(hdr[0]) | uint32(hdr[1])<<8 | uint32(hdr[2])<<16), hdr[3], nil
}

// putHeader writes a header for a payload of n bytes (n <= maxPayload).
func putHeader(hdr []byte, n int, seq byte) {
	hdr[0] = byte(n)
	hdr[1] = byte(n >> 8)
	hdr[2] = byte(n >> 16)
	hdr[3] = seq
}

// readPacket reads one whole logical packet from r into buf (reused when it is
// large enough) and returns the payload and the sequence id of its last
// chunk. It refuses payloads over limit bytes (0: no limit) before
// allocating. Used for the handshake and other small control exchanges, never
// on the relay path.
func readPacket(r io.Reader, buf []byte, limit int) ([]byte, byte, error) {
	var hdr [headerLen]byte
	buf = buf[:0]
	for {
		n, seq, err := readHeader(r, &hdr)
		if err != nil {
			if len(buf) > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF // a continuation chunk is missing
			}
			return nil, 0, err
		}
		if limit > 0 && len(buf)+n > limit {
			return nil, seq, fmt.Errorf("%w: more than %d bytes", ErrPacketTooLarge, limit)
		}
		if buf, err = appendFull(r, buf, n); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the header promised a payload
			}
			return nil, seq, err
		}
		if n < maxPayload {
			return buf, seq, nil
		}
	}
}

// growChunk is the most a buffer grows by ahead of the bytes that fill it.
const growChunk = 16 << 10

// appendFull appends exactly n bytes read from r to buf. It grows buf as
// the bytes arrive, by at most growChunk or by what it already holds
// (doubling), never by an announced length at once: a peer that announces
// 16 MiB and sends 10 bytes costs about growChunk, not 16 MiB. On error
// buf holds what was read.
func appendFull(r io.Reader, buf []byte, n int) ([]byte, error) {
	for n > 0 {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n, max(len(buf), growChunk)))
		}
		m := min(n, cap(buf)-len(buf))
		k, err := io.ReadFull(r, buf[len(buf):len(buf)+m])
		buf = buf[:len(buf)+k]
		n -= k
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// writePacket frames payload into w, splitting it as the protocol requires,
// and returns the sequence id that follows the last chunk. It only buffers;
// the caller flushes.
func writePacket(w *bufio.Writer, seq byte, payload []byte) (byte, error) {
	var hdr [headerLen]byte
	for {
		n := len(payload)
		if n > maxPayload {
			n = maxPayload
		}
		putHeader(hdr[:], n, seq)
		seq++
		if _, err := w.Write(hdr[:]); err != nil {
			return seq, err
		}
		if _, err := w.Write(payload[:n]); err != nil {
			return seq, err
		}
		payload = payload[n:]
		if n < maxPayload {
			return seq, nil
		}
	}
}

// relayPacket copies one logical packet from src to dst verbatim. It returns
// the sequence id of the first chunk and, when the packet fits in src's
// buffer, its payload (valid only until the next read from src); for a packet
// larger than that it returns a nil head and the first byte separately, and
// streams the payload through in constant memory.
func relayPacket(dst *bufio.Writer, src *bufio.Reader, hdr *[headerLen]byte) (head []byte, first byte, length int, seq byte, err error) {
	length, seq, err = readHeader(src, hdr)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	head, first, err = relayBody(dst, src, hdr, length)
	return head, first, length, seq, err
}

// relayBody is relayPacket after the header of the first chunk was read
// into hdr: it writes that header to dst and copies the payload.
func relayBody(dst *bufio.Writer, src *bufio.Reader, hdr *[headerLen]byte, length int) (head []byte, first byte, err error) {
	return relayBodySeq(dst, src, hdr, length, 0)
}

// relayBodySeq is relayBody adding add to the sequence id of every chunk
// (compress.go: a compressed link numbers a response differently).
func relayBodySeq(dst *bufio.Writer, src *bufio.Reader, hdr *[headerLen]byte, length int, add byte) (head []byte, first byte, err error) {
	hdr[3] += add
	if _, err = dst.Write(hdr[:]); err != nil {
		return nil, 0, err
	}
	if length < src.Size() && length < maxPayload {
		head, err = src.Peek(length)
		if err != nil {
			return nil, 0, unexpectedEOF(err)
		}
		if _, err = dst.Write(head); err != nil {
			return nil, 0, err
		}
		_, _ = src.Discard(length)
		if length > 0 {
			first = head[0]
		}
		return head, first, nil
	}
	// Large: note the first byte, then stream this chunk and any
	// continuation chunks.
	p, err := src.Peek(1)
	if err != nil {
		return nil, 0, unexpectedEOF(err)
	}
	first = p[0]
	n := length
	for {
		if _, err = io.CopyN(dst, src, int64(n)); err != nil {
			return nil, first, unexpectedEOF(err)
		}
		if n < maxPayload {
			return nil, first, nil
		}
		if n, _, err = readHeader(src, hdr); err != nil {
			return nil, first, unexpectedEOF(err)
		}
		hdr[3] += add
		if _, err = dst.Write(hdr[:]); err != nil {
			return nil, first, err
		}
	}
}

// unexpectedEOF turns io.EOF inside a packet into io.ErrUnexpectedEOF: only
// an EOF before a header is a clean close.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// lenEncInt decodes a length-encoded integer at b[pos:]. ok is false when the
// input is short or the first byte is not a valid integer prefix.
func lenEncInt(b []byte, pos int) (v uint64, next int, ok bool) {
	if pos >= len(b) {
		return 0, pos, false
	}
	switch c := b[pos]; {
	case c < 0xfb:
		return uint64(c), pos + 1, true
	case c == 0xfc:
		if pos+3 > len(b) {
			return 0, pos, false
		}
		return uint64(binary.LittleEndian.Uint16(b[pos+1:])), pos + 3, true
	case c == 0xfd:
		if pos+4 > len(b) {
			return 0, pos, false
		}
		return uint64(b[pos+1]) | uint64(b[pos+2])<<8 | uint64(b[pos+3])<<16, pos + 4, true
	case c == 0xfe:
		if pos+9 > len(b) {
			return 0, pos, false
		}
		return binary.LittleEndian.Uint64(b[pos+1:]), pos + 9, true
	default: // 0xfb (NULL) and 0xff are not integers
		return 0, pos, false
	}
}

// lenEncBytes decodes a length-encoded string at b[pos:].
func lenEncBytes(b []byte, pos int) (v []byte, next int, ok bool) {
	n, p, ok := lenEncInt(b, pos)
	if !ok || n > uint64(len(b)-p) {
		return nil, pos, false
	}
	return b[p : p+int(n)], p + int(n), true
}

// nulString decodes a NUL-terminated string at b[pos:].
func nulString(b []byte, pos int) (v []byte, next int, ok bool) {
	if pos > len(b) {
		return nil, pos, false
	}
	for i := pos; i < len(b); i++ {
		if b[i] == 0 {
			return b[pos:i], i + 1, true
		}
	}
	return nil, pos, false
}

// --- the connection phase's packets: greeting, handshake response, auth
// switch, and the password scrambles they carry.
//
// Why not go-mysql's server package: it cannot advertise
// CLIENT_MULTI_STATEMENTS, CLIENT_FOUND_ROWS or CLIENT_DEPRECATE_EOF, and
// its client cannot request CLIENT_LOCAL_FILES or pass the client's
// collation byte through. tandem must offer a client exactly what the node's
// session will negotiate, or results and affected-row counts silently differ,
// so it writes these few packets itself with go-mysql's constants and
// scramble functions.

// supportedCaps are the capability flags tandem can relay unchanged: every
// one of them either changes nothing tandem parses or is understood by the
// relay state machine. CLIENT_COMPRESS is relayed too (compress.go): tandem
// inflates both links. Left out on purpose:
// CLIENT_ZSTD_COMPRESSION_ALGORITHM (MySQL 8 only; MariaDB does not offer
// it, so tandem has no node to test it against), CLIENT_OPTIONAL_RESULTSET_METADATA
// (MySQL 8's metadata-less result sets: not followed by the relay),
// CLIENT_SSL (offered only when tandem has a certificate, and never passed
// on: the node link is separate). CLIENT_LONG_PASSWORD is MariaDB's
// CLIENT_MYSQL: a MariaDB node clears it in its greeting and puts its
// extended capabilities (supportedExtCaps) in the greeting's filler; tandem
// greets the same way. CLIENT_RESERVED and CLIENT_REMEMBER_OPTIONS change
// nothing on the wire and are passed on as the node offers them.
// CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS is relayed: the node decides, as for
// its own clients, whether an expired password logs in (sandbox mode) or is
// refused (1862); a sandboxed session never moves to another node
// (expired.go).
const supportedCaps = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_FOUND_ROWS |
	mysql.CLIENT_LONG_FLAG | mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_NO_SCHEMA |
	mysql.CLIENT_COMPRESS |
	mysql.CLIENT_ODBC | mysql.CLIENT_LOCAL_FILES | mysql.CLIENT_IGNORE_SPACE |
	mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_INTERACTIVE | mysql.CLIENT_IGNORE_SIGPIPE |
	mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_SECURE_CONNECTION |
	mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS |
	mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_PLUGIN_AUTH |
	mysql.CLIENT_CONNECT_ATTRS | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
	mysql.CLIENT_SESSION_TRACK | mysql.CLIENT_DEPRECATE_EOF |
	mysql.CLIENT_QUERY_ATTRIBUTES | mysql.CLIENT_RESERVED | mysql.CLIENT_REMEMBER_OPTIONS |
	mysql.CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS

// MariaDB's extended capabilities: bits 32 and up of the capability flags,
// carried as a 4-byte field (bit 0 here is bit 32 there) in the last 4
// bytes of the greeting's reserved filler and of the handshake response's,
// when the sender clears CLIENT_MYSQL (= CLIENT_LONG_PASSWORD).
const (
	mariadbClientProgress        = 1 << 0 // MARIADB_CLIENT_PROGRESS: progress reports (ERR 0xffff) during a command
	mariadbClientComMulti        = 1 << 1 // MARIADB_CLIENT_COM_MULTI: obsolete, never relayed
	mariadbClientBulkOperations  = 1 << 2 // MARIADB_CLIENT_STMT_BULK_OPERATIONS: COM_STMT_BULK_EXECUTE
	mariadbClientExtendedMeta    = 1 << 3 // MARIADB_CLIENT_EXTENDED_METADATA: longer column definitions
	mariadbClientCacheMetadata   = 1 << 4 // MARIADB_CLIENT_CACHE_METADATA: "metadata follows" byte after a column count
	mariadbClientBulkUnitResults = 1 << 5 // MARIADB_CLIENT_BULK_UNIT_RESULTS (11.5+): per-row results of a bulk execute
)

// supportedExtCaps are the extended capabilities tandem relays: the relay
// skips progress reports, follows COM_STMT_BULK_EXECUTE and its responses
// (OK, ERR or result sets), relays column definitions without reading them,
// and reads the "metadata follows" byte (conn.go, cachedmeta.go).
const supportedExtCaps = mariadbClientProgress | mariadbClientBulkOperations | mariadbClientExtendedMeta |
	mariadbClientCacheMetadata | mariadbClientBulkUnitResults

// comStmtBulkExecute is MariaDB's COM_STMT_BULK_EXECUTE.
const comStmtBulkExecute = 0xfa

// extCapsOffset is where the extended capabilities sit in a handshake
// response (and an SSLRequest): bytes 28 to 31.
const extCapsOffset = 28

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

	// ExtCaps are MariaDB's extended capabilities, present when Caps
	// lacks CLIENT_LONG_PASSWORD.
	ExtCaps uint32
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
	b = append(b, 0, 0, 0, 0, 0, 0)
	if g.Caps&mysql.CLIENT_LONG_PASSWORD == 0 {
		b = binary.LittleEndian.AppendUint32(b, g.ExtCaps)
	} else {
		b = append(b, 0, 0, 0, 0)
	}
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
	if g.Caps&mysql.CLIENT_LONG_PASSWORD == 0 { // a MariaDB server
		g.ExtCaps = binary.LittleEndian.Uint32(p[pos+6+6:])
	}
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

	// ExtCaps are MariaDB's extended capabilities, sent when Caps lacks
	// CLIENT_LONG_PASSWORD.
	ExtCaps uint32
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
	if r.Caps&mysql.CLIENT_LONG_PASSWORD == 0 {
		r.ExtCaps = binary.LittleEndian.Uint32(p[extCapsOffset:])
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
	b = append(b, make([]byte, 19)...)
	if caps&mysql.CLIENT_LONG_PASSWORD == 0 {
		b = binary.LittleEndian.AppendUint32(b, r.ExtCaps)
	} else {
		b = append(b, 0, 0, 0, 0)
	}
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

// writeRaw frames and writes one packet directly, for the few packets sent
// outside the relay (greeting, handshake errors).
func writeRaw(w io.Writer, seq byte, payload []byte) error {
	b := make([]byte, headerLen, headerLen+len(payload))
	putHeader(b, len(payload), seq)
	_, err := w.Write(append(b, payload...))
	return err
}

// appendOK appends a plain OK packet payload with status flags.
func appendOK(b []byte, status uint16, caps uint32) []byte {
	b = append(b, 0, 0, 0)
	b = binary.LittleEndian.AppendUint16(b, status)
	b = append(b, 0, 0)
	if caps&mysql.CLIENT_SESSION_TRACK != 0 {
		b = append(b, 0) // empty info string
	}
	return b
}

// changeUserRequest is a decoded COM_CHANGE_USER.
type changeUserRequest struct {
	User      string
	Auth      []byte
	DB        string
	Collation byte
	Plugin    string
	Attrs     []byte
}

// parseChangeUser decodes a COM_CHANGE_USER payload (command byte included).
func parseChangeUser(p []byte, caps uint32) (*changeUserRequest, error) {
	if len(p) < 2 || p[0] != mysql.COM_CHANGE_USER {
		return nil, fmt.Errorf("%w: not COM_CHANGE_USER", ErrHandshake)
	}
	cu := &changeUserRequest{}
	user, pos, ok := nulString(p, 1)
	if !ok || pos >= len(p) {
		return nil, fmt.Errorf("%w: change user: user name not terminated", ErrHandshake)
	}
	cu.User = string(user)
	n := int(p[pos])
	if pos+1+n > len(p) {
		return nil, fmt.Errorf("%w: change user: auth data truncated", ErrHandshake)
	}
	cu.Auth = append([]byte(nil), p[pos+1:pos+1+n]...)
	pos += 1 + n
	db, pos, ok := nulString(p, pos)
	if !ok {
		return nil, fmt.Errorf("%w: change user: database not terminated", ErrHandshake)
	}
	cu.DB = string(db)
	if pos+2 <= len(p) {
		cu.Collation = p[pos] // low byte of the 2-byte character set
		pos += 2
	}
	if caps&mysql.CLIENT_PLUGIN_AUTH != 0 && pos < len(p) {
		name, next, ok := nulString(p, pos)
		if !ok {
			return nil, fmt.Errorf("%w: change user: plugin name not terminated", ErrHandshake)
		}
		cu.Plugin, pos = string(name), next
	}
	if caps&mysql.CLIENT_CONNECT_ATTRS != 0 && pos < len(p) {
		n, next, ok := lenEncInt(p, pos)
		if !ok || n > uint64(len(p)-next) {
			return nil, fmt.Errorf("%w: change user: attributes truncated", ErrHandshake)
		}
		cu.Attrs = append([]byte(nil), p[pos:next+int(n)]...)
	}
	return cu, nil
}
