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
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
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
