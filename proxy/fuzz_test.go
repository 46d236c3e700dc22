package proxy

// One fuzz target per parser of bytes that a client or a node sends. Each
// is seeded with the fixtures of the unit tests; inputs the fuzzer found
// worth keeping are committed under testdata/fuzz/. Run one at a time:
//
//	go test ./proxy -run XXX -fuzz=FuzzParseGreeting -fuzztime=20s

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func FuzzParseGreeting(f *testing.F) {
	f.Add(payloadOf(f, loadHex(f, "mariadb-10.11-greeting.hex")))
	f.Add(appendGreeting(nil, &greeting{Version: "8.0.36", Salt: []byte("abcdefghijklmnopqrst"),
		Caps: supportedCaps | requiredCaps, AuthPlugin: mysql.AUTH_CACHING_SHA2_PASSWORD}))
	f.Add(append([]byte{0xff, 0x10, 0x04, '#', '0', '8', '0', '0', '4'}, "Too many connections"...))
	f.Add([]byte{10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0x80})
	f.Fuzz(func(t *testing.T, p []byte) {
		g, err := parseGreeting(p)
		if err != nil {
			var se *sqlError
			if g != nil || !(errors.Is(err, ErrHandshake) || errors.As(err, &se)) {
				t.Fatalf("parseGreeting = %+v, %v", g, err)
			}
			return
		}
		if len(g.Salt) < 8 || strings.IndexByte(g.Version, 0) >= 0 || strings.IndexByte(g.AuthPlugin, 0) >= 0 {
			t.Fatalf("parseGreeting = %+v", g)
		}
		if g.Caps&mysql.CLIENT_PLUGIN_AUTH == 0 && g.AuthPlugin != "" {
			t.Fatalf("plugin %q without CLIENT_PLUGIN_AUTH", g.AuthPlugin)
		}
		// The full 4.1 form survives appendGreeting (whose one-byte salt
		// length holds salts of up to 254 bytes; tandem's are 20).
		if g.Caps&mysql.CLIENT_SECURE_CONNECTION != 0 && len(g.Salt) >= 20 && len(g.Salt) < 255 {
			back, err := parseGreeting(appendGreeting(nil, g))
			if err != nil || !reflect.DeepEqual(back, g) {
				t.Fatalf("round trip of %+v: %+v, %v", g, back, err)
			}
		}
	})
}

func FuzzParseHandshakeResponse(f *testing.F) {
	for _, c := range clientResponses {
		f.Add(payloadOf(f, loadHex(f, c.file)))
	}
	f.Add(appendHandshakeResponse(nil, &handshakeResponse{Caps: requiredCaps | mysql.CLIENT_CONNECT_WITH_DB |
		mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS, User: "u", Auth: pattern(300, 1), DB: "d", Plugin: "p",
		Attrs: attrBlock("a", "b")}))
	f.Add(appendHandshakeResponse(nil, &handshakeResponse{Caps: requiredCaps, User: "root"}))
	ssl := make([]byte, 32)
	ssl[1] = byte(mysql.CLIENT_SSL >> 8)
	f.Add(ssl)
	f.Fuzz(func(t *testing.T, p []byte) {
		_ = isSSLRequest(p)
		r, err := parseHandshakeResponse(p)
		if err != nil {
			if r != nil || !errors.Is(err, ErrHandshake) {
				t.Fatalf("parseHandshakeResponse = %+v, %v", r, err)
			}
			return
		}
		if r.Caps&requiredCaps != requiredCaps || strings.IndexByte(r.User, 0) >= 0 ||
			strings.IndexByte(r.DB, 0) >= 0 || strings.IndexByte(r.Plugin, 0) >= 0 {
			t.Fatalf("parseHandshakeResponse = %+v", r)
		}
		// What tandem would send on re-reads the same, except that a long
		// auth response forces the lenenc flag and an absent attribute
		// block becomes an empty one.
		want := *r
		if len(r.Auth) > 250 {
			want.Caps |= mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
		}
		if r.Caps&mysql.CLIENT_CONNECT_ATTRS != 0 && len(r.Attrs) == 0 {
			want.Attrs = []byte{0}
		}
		back, err := parseHandshakeResponse(appendHandshakeResponse(nil, r))
		if err != nil || !reflect.DeepEqual(*back, want) {
			t.Fatalf("round trip of %+v: %+v, %v", r, back, err)
		}
	})
}

func FuzzParseChangeUser(f *testing.F) {
	caps := uint32(mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS)
	f.Add(changeUserPacket("bob", knownNative, "shop", []byte{0x21, 0}, mysql.AUTH_NATIVE_PASSWORD, attrBlock("k", "v")), caps)
	f.Add(changeUserPacket("root", nil, "", nil, "", nil), uint32(0))
	f.Add([]byte{mysql.COM_CHANGE_USER, 'u', 0, 0xff}, caps)
	f.Fuzz(func(t *testing.T, p []byte, caps uint32) {
		cu, err := parseChangeUser(p, caps)
		if err != nil {
			if cu != nil || !errors.Is(err, ErrHandshake) {
				t.Fatalf("parseChangeUser = %+v, %v", cu, err)
			}
			return
		}
		if len(cu.Auth) > 255 || strings.IndexByte(cu.User, 0) >= 0 || strings.IndexByte(cu.DB, 0) >= 0 ||
			strings.IndexByte(cu.Plugin, 0) >= 0 {
			t.Fatalf("parseChangeUser = %+v", cu)
		}
		if caps&mysql.CLIENT_PLUGIN_AUTH == 0 && cu.Plugin != "" || caps&mysql.CLIENT_CONNECT_ATTRS == 0 && cu.Attrs != nil {
			t.Fatalf("caps %#x but %+v", caps, cu)
		}
		if len(cu.Attrs) > 0 {
			if n, next, ok := lenEncInt(cu.Attrs, 0); !ok || uint64(len(cu.Attrs)-next) != n {
				t.Fatalf("attribute block % x is not one length-encoded string", cu.Attrs)
			}
		}
	})
}

func FuzzParseAuthSwitch(f *testing.F) {
	f.Add(appendAuthSwitch(nil, mysql.AUTH_NATIVE_PASSWORD, []byte("abcdefghijklmnopqrst")))
	f.Add(appendAuthSwitch(nil, mysql.AUTH_MARIADB_ED25519, pattern(32, 3)))
	f.Add([]byte{0xfe})
	f.Add([]byte{0xfe, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		plugin, salt, err := parseAuthSwitch(p)
		if err != nil {
			if !errors.Is(err, ErrHandshake) {
				t.Fatalf("parseAuthSwitch: %v", err)
			}
			return
		}
		if strings.IndexByte(plugin, 0) >= 0 {
			t.Fatalf("plugin %q", plugin)
		}
		plugin2, salt2, err := parseAuthSwitch(appendAuthSwitch(nil, plugin, salt))
		if err != nil || plugin2 != plugin || !bytes.Equal(salt2, salt) {
			t.Fatalf("round trip %q % x: %q % x %v", plugin, salt, plugin2, salt2, err)
		}
	})
}

func FuzzParseErr(f *testing.F) {
	f.Add(appendErr(nil, &sqlError{Code: 1045, State: "28000", Message: "Access denied"}))
	f.Add(append([]byte{0xff, 0x69, 0x04}, "Host is blocked"...))
	f.Add([]byte{0xff, 0x10, 0x04, '#', '0', '8'})
	f.Fuzz(func(t *testing.T, p []byte) {
		e, ok := parseErr(p)
		if !ok {
			return
		}
		if len(e.State) != 0 && len(e.State) != 5 {
			t.Fatalf("state %q", e.State)
		}
		if e.State != "" {
			back, ok := parseErr(appendErr(nil, &e))
			if !ok || back != e {
				t.Fatalf("round trip %+v: %+v", e, back)
			}
		}
		if !bytes.Equal(appendErr(nil, &e)[:3], p[:3]) {
			t.Fatalf("code %d from % x", e.Code, p[:3])
		}
	})
}

func FuzzLenEnc(f *testing.F) {
	f.Add([]byte{0xfc, 0x2c, 0x01, 'a'}, 0)
	f.Add([]byte{0xfe, 1, 2, 3, 4, 5, 6, 7, 8}, 0)
	f.Add([]byte("xx\x02hi\x00"), 2)
	f.Add([]byte{0xfb, 0xff, 0x00}, 1)
	f.Fuzz(func(t *testing.T, b []byte, pos int) {
		if pos < 0 || pos > len(b)+1 {
			pos = int(uint(pos) % uint(len(b)+2))
		}
		v, next, ok := lenEncInt(b, pos)
		if ok {
			if next <= pos || next > len(b) {
				t.Fatalf("lenEncInt(% x, %d) = %d, next %d", b, pos, v, next)
			}
			if back, _, ok := lenEncInt(mysql.AppendLengthEncodedInteger(nil, v), 0); !ok || back != v {
				t.Fatalf("lenEncInt of the encoding of %d = %d, %v", v, back, ok)
			}
		} else if next != pos || v != 0 {
			t.Fatalf("failed lenEncInt(% x, %d) = %d, next %d", b, pos, v, next)
		}
		s, next, ok := lenEncBytes(b, pos)
		if ok {
			if n, p, _ := lenEncInt(b, pos); uint64(len(s)) != n || next != p+len(s) || !bytes.Equal(s, b[p:next]) {
				t.Fatalf("lenEncBytes(% x, %d) = % x, next %d", b, pos, s, next)
			}
		} else if next != pos || s != nil {
			t.Fatalf("failed lenEncBytes(% x, %d) = % x, next %d", b, pos, s, next)
		}
		s, next, ok = nulString(b, pos)
		if ok {
			if bytes.IndexByte(s, 0) >= 0 || next != pos+len(s)+1 || b[next-1] != 0 {
				t.Fatalf("nulString(% x, %d) = % x, next %d", b, pos, s, next)
			}
		} else if next != pos || (pos < len(b) && bytes.IndexByte(b[pos:], 0) >= 0) {
			t.Fatalf("failed nulString(% x, %d), next %d", b, pos, next)
		}
	})
}

// refFrames splits framed input the simple way: it returns the payload and
// last sequence id of the first logical packet and how many bytes it took,
// or ok false if the input ends inside it.
func refFrames(b []byte) (payload []byte, seq byte, used int, ok bool) {
	for {
		if len(b)-used < headerLen {
			return nil, 0, 0, false
		}
		n := int(b[used]) | int(b[used+1])<<8 | int(b[used+2])<<16
		seq = b[used+3]
		used += headerLen
		if len(b)-used < n {
			return nil, 0, 0, false
		}
		payload = append(payload, b[used:used+n]...)
		used += n
		if n < maxPayload {
			return payload, seq, used, true
		}
	}
}

func FuzzReadPacket(f *testing.F) {
	f.Add(frame(0, []byte("\x03SELECT 1")), uint16(100))
	f.Add(append(frame(3, nil), frame(4, []byte{1})...), uint16(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0x00, 1, 2, 3}, uint16(65535))
	f.Add([]byte{0x05, 0x00, 0x00}, uint16(8))
	f.Fuzz(func(t *testing.T, in []byte, limit16 uint16) {
		// A positive limit keeps a 16 MiB header from allocating 16 MiB.
		limit := int(limit16) + 1
		p, seq, err := readPacket(bytes.NewReader(in), nil, limit)
		p1, seq1, err1 := readPacket(iotest.OneByteReader(bytes.NewReader(in)), make([]byte, 0, 8), limit)
		if !bytes.Equal(p, p1) || seq != seq1 || (err == nil) != (err1 == nil) {
			t.Fatalf("one-byte reads differ: % x %d %v / % x %d %v", p, seq, err, p1, seq1, err1)
		}
		want, wantSeq, _, ok := refFrames(in)
		switch {
		case errors.Is(err, ErrPacketTooLarge):
			if ok && len(want) <= limit {
				t.Fatalf("refused a %d-byte packet with limit %d", len(want), limit)
			}
		case err != nil:
			if ok || !(err == io.EOF && len(in) == 0 || errors.Is(err, io.ErrUnexpectedEOF)) {
				t.Fatalf("readPacket: %v (input % x)", err, in)
			}
		default:
			if !ok || !bytes.Equal(p, want) || seq != wantSeq || len(p) > limit {
				t.Fatalf("readPacket = % x, %d; want % x, %d", p, seq, want, wantSeq)
			}
		}
	})
}

func FuzzRelayPacket(f *testing.F) {
	f.Add(frame(1, []byte{0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00}), uint8(0), uint8(0))
	f.Add(append(frame(1, pattern(40, 1)), frame(2, []byte{0xfe, 0, 0, 2, 0})...), uint8(8), uint8(3))
	f.Add(frame(0, pattern(100, 2)), uint8(0), uint8(0))
	f.Add([]byte{0x64, 0x00, 0x00, 0x00, 0xfe, 1, 2}, uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, rsize, wsize uint8) {
		rd := bytes.NewReader(in)
		src := bufio.NewReaderSize(iotest.HalfReader(rd), 16+int(rsize%64))
		var out bytes.Buffer
		dst := bufio.NewWriterSize(&out, 16+int(wsize%64))
		var hdr [headerLen]byte
		rest := in
		for {
			head, first, length, seq, err := relayPacket(dst, src, &hdr)
			want, wantSeq, used, ok := refFrames(rest)
			if err != nil {
				if ok {
					t.Fatalf("relayPacket: %v on a complete packet", err)
				}
				break
			}
			if !ok || length != min(len(want), maxPayload) || rest[3] != seq {
				t.Fatalf("relayed length %d seq %d; want %d %d (%v)", length, seq, len(want), wantSeq, ok)
			}
			if head != nil && !bytes.Equal(head, want) {
				t.Fatalf("head % x; want % x", head, want)
			}
			if head == nil && length < src.Size() {
				t.Fatalf("nil head for a %d-byte packet and a %d-byte buffer", length, src.Size())
			}
			if len(want) > 0 && first != want[0] {
				t.Fatalf("first %#x; want %#x", first, want[0])
			}
			rest = rest[used:]
		}
		if err := dst.Flush(); err != nil {
			t.Fatal(err)
		}
		// Everything consumed was written, except the bytes of a header
		// cut short by the end of the input.
		consumed := len(in) - rd.Len() - src.Buffered()
		if w := out.Bytes(); !bytes.HasPrefix(in[:consumed], w) || consumed-len(w) >= headerLen {
			t.Fatalf("wrote % x; consumed % x", w, in[:consumed])
		}
	})
}

func FuzzNoteQuery(f *testing.F) {
	for _, q := range []string{"USE `we``ird`", "SET NAMES utf8mb4", "SET @x = 1", "SELECT GET_LOCK('a', 1)",
		"/* c */ CREATE TEMPORARY TABLE t (a INT)", "-- c\nLOCK TABLES t READ", "# c\nPREPARE s FROM 'x'",
		"((SELECT @@version))", "SET TRANSACTION READ ONLY", "/*!40101 SET NAMES utf8 */"} {
		f.Add([]byte(q), true)
	}
	f.Add([]byte("SET sql_mode = 'ANSI'"), false)
	f.Fuzz(func(t *testing.T, text []byte, whole bool) {
		var fa Facts
		fa.reset("app", 45)
		fa.noteQuery(text, whole)
		fa.noteQuery(text, whole) // twice: a second run must not grow past one setting per call
		if len(fa.Settings) > 2 {
			t.Fatalf("settings %q", fa.Settings)
		}
		for _, s := range fa.Settings {
			if s != string(text) {
				t.Fatalf("recorded %q for %q", s, text)
			}
			if _, rest := firstWord(text); !whole || hasUserVar(text) && !literalUserVars(rest) {
				t.Fatalf("recorded %q (whole=%v)", s, whole)
			}
		}
		if fa.Schema != "app" && fa.Settings != nil {
			t.Fatalf("one statement both changed the schema and was recorded: %+v", fa)
		}
	})
}

func FuzzParseKill(f *testing.F) {
	for _, q := range []string{"KILL 5", "kill query 5", "KILL CONNECTION 5", "KILL HARD QUERY 5", "KILL QUERY ID 5",
		"KILL USER bob", "KILL 5 6", "KILL 99999999999", "KILL /*c*/ 7", "KILL 5 ; ", "KILL SOFT 4294967295"} {
		f.Add([]byte(q))
	}
	modifiers := map[string]bool{"": true, "QUERY ": true, "CONNECTION ": true, "HARD ": true, "SOFT ": true,
		"HARD QUERY ": true, "HARD CONNECTION ": true, "SOFT QUERY ": true, "SOFT CONNECTION ": true}
	f.Fuzz(func(t *testing.T, text []byte) {
		k, ok := parseKill(text)
		if !ok {
			return
		}
		if !modifiers[k.modifier] {
			t.Fatalf("parseKill(%q): modifier %q", text, k.modifier)
		}
		id := strconv.FormatUint(uint64(k.id), 10)
		if !bytes.Contains(text, []byte(id)) {
			t.Fatalf("parseKill(%q): id %s is not in the text", text, id)
		}
		// What tandem sends the node parses back the same.
		k2, ok := parseKill([]byte("KILL " + k.modifier + id))
		if !ok || k2 != k {
			t.Fatalf("parseKill(%q) = %+v; its rewrite parses as %+v, %v", text, k, k2, ok)
		}
	})
}

func FuzzOKStatus(f *testing.F) {
	f.Add([]byte{0x00, 0xfc, 0x10, 0x27, 0x05, 0x22, 0x00, 0x01, 0x00}, uint32(0))
	f.Add([]byte{0xfe, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00}, uint32(mysql.CLIENT_DEPRECATE_EOF))
	f.Add([]byte{0xfe, 0x00, 0x00, 0x22, 0x00}, uint32(0))
	f.Fuzz(func(t *testing.T, p []byte, caps uint32) {
		st := okStatus(p, caps)
		_, pos, ok := lenEncInt(p, 1)
		if ok {
			_, pos, ok = lenEncInt(p, pos)
		}
		if ok && pos+2 <= len(p) {
			if want := uint16(p[pos]) | uint16(p[pos+1])<<8; st != want {
				t.Fatalf("okStatus(% x) = %#x; want %#x", p, st, want)
			}
		} else if st != 0 {
			t.Fatalf("okStatus(% x) = %#x for a malformed OK", p, st)
		}
		est := eofStatus(p)
		if len(p) >= 5 && est != uint16(p[3])|uint16(p[4])<<8 || len(p) < 5 && est != 0 {
			t.Fatalf("eofStatus(% x) = %#x", p, est)
		}
		s := &session{caps: caps}
		if len(p) > 0 {
			_ = s.isTerminator(p[0], len(p))
		}
		_ = s.terminatorStatus(p)
	})
}
