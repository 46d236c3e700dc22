package proxy

// The compressed protocol (CLIENT_COMPRESS, zlib). After the login's OK,
// everything on a compressed connection travels in compressed packets: a
// 7-byte header (3-byte compressed length, 1-byte compressed sequence id,
// 3-byte uncompressed length, 0 meaning "stored as is") and a zlib stream.
// A compressed packet may carry several MySQL packets or part of one; its
// sequence id counts separately from theirs.
//
// Where tandem inflates: on both links. The relay must see the MySQL
// packets to follow the protocol, so the client link is inflated on read
// and deflated on write; the node link is compressed too whenever the
// client's is, so that the node negotiates what it would directly
// (SHOW STATUS LIKE 'Compression' says ON, and a node across the network
// gets the bandwidth saving the client asked for). The cost: every byte is
// inflated and deflated twice in tandem (CPU; tandem deflates at zlib level
// 1), one pooled zlib writer per write in progress (shared by all
// sessions), and per session two buffers (the compressed packet being read,
// the one being written) that grow with the largest compressed packet
// (dropped after one over 256 KiB); a packet is inflated as the relay asks
// for its bytes, never whole.
// zstd (CLIENT_ZSTD_COMPRESSION_ALGORITHM) is not offered: it is MySQL 8's,
// and MariaDB nodes do not speak it.

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"sync"
)

const (
	// compHeaderLen is the size of a compressed packet's header.
	compHeaderLen = 7
	// minCompressLen: shorter writes are sent stored, as MySQL does
	// (MIN_COMPRESS_LENGTH): deflating them costs more than it saves.
	minCompressLen = 50
	// compressChunk is the most tandem puts in one compressed packet.
	compressChunk = 1 << 20
	// keepCompBuf: buffers grown beyond this by a large packet are
	// dropped after it, so an idle session stays small.
	keepCompBuf = 256 << 10
)

// ErrCompressed is wrapped by every malformed compressed packet.
var ErrCompressed = errors.New("bad compressed packet")

var (
	// Level 1 (BestSpeed): measured here 5 to 6 times cheaper than the
	// default level (9 µs against 43 µs per 60-byte packet, 500 against
	// 82 MB/s for 64 KiB ones); a proxy spends CPU on every byte.
	zlibWriters = sync.Pool{New: func() any { w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed); return w }}
	zlibReaders sync.Pool // io.ReadCloser implementing zlib.Resetter
)

// compressedIO reads and writes the compressed protocol over rw. Read
// returns the MySQL packets' bytes, inflated as they are asked for; each
// Write goes out as one compressed packet (or several, for writes over
// compressChunk). Not safe for concurrent use: one session goroutine reads
// and writes it.
type compressedIO struct {
	rw io.ReadWriter
	// seq is the next compressed sequence id to write: one more than the
	// last one read, as a server does; newCommand sets it to 0, as a
	// client does before each command. Incoming sequence ids are not
	// checked: servers and clients disagree on them in pipelined
	// exchanges, and the MySQL packets inside carry their own.
	seq byte

	hdr  [compHeaderLen]byte
	in   []byte // the current packet's payload, as it came
	left int    // bytes of the current packet not yet returned
	// zr inflates the current packet (nil: stored, read from in).
	// Inflating as the bytes are asked for, never a whole packet ahead,
	// keeps a zlib bomb (16 MiB from 16 KiB) from costing 16 MiB.
	zr     io.ReadCloser
	stored []byte // the rest of a stored packet
	br     bytes.Reader

	wbuf []byte // header and deflated payload of the packet being written
}

func newCompressedIO(rw io.ReadWriter) *compressedIO { return &compressedIO{rw: rw} }

// newCommand starts a command on a link where tandem is the client.
func (c *compressedIO) newCommand() { c.seq = 0 }

// buffered is the number of bytes read from the peer but not yet returned.
func (c *compressedIO) buffered() int { return c.left }

// Read returns inflated bytes, reading the next compressed packet when
// those of the current one are used up.
func (c *compressedIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for c.left == 0 {
		if err := c.readPacket(); err != nil {
			return 0, err
		}
	}
	p = p[:min(len(p), c.left)]
	var n int
	if c.zr == nil {
		n = copy(p, c.stored)
		c.stored = c.stored[n:]
	} else {
		var err error
		if n, err = io.ReadAtLeast(c.zr, p, 1); err != nil {
			_ = c.endPacket()
			return 0, fmt.Errorf("%w: inflating: %v", ErrCompressed, err)
		}
	}
	if c.left -= n; c.left == 0 {
		if err := c.endPacket(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// endPacket ends the current packet: a zlib stream must end exactly where
// the header said, its checksum right.
func (c *compressedIO) endPacket() error {
	c.left, c.stored = 0, nil
	if c.zr == nil {
		return nil
	}
	var one [1]byte
	n, err := c.zr.Read(one[:])
	zlibReaders.Put(c.zr)
	c.zr = nil
	switch {
	case n != 0 || err == nil:
		return fmt.Errorf("%w: more than the announced bytes", ErrCompressed)
	case err != io.EOF:
		return fmt.Errorf("%w: %v", ErrCompressed, err)
	case c.br.Len() != 0:
		return fmt.Errorf("%w: bytes after the zlib stream", ErrCompressed)
	}
	return nil
}

// readPacket reads the next compressed packet's header and payload and
// prepares to return its bytes.
func (c *compressedIO) readPacket() error {
	if cap(c.in) > keepCompBuf {
		c.in = nil
	}
	if _, err := io.ReadFull(c.rw, c.hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return fmt.Errorf("%w: truncated header", ErrCompressed)
		}
		return err // io.EOF: a clean close between packets
	}
	clen := int(c.hdr[0]) | int(c.hdr[1])<<8 | int(c.hdr[2])<<16
	c.seq = c.hdr[3] + 1
	ulen := int(c.hdr[4]) | int(c.hdr[5])<<8 | int(c.hdr[6])<<16
	var err error
	if c.in, err = appendFull(c.rw, c.in[:0], clen); err != nil {
		return compressedEOF(err)
	}
	if ulen == 0 { // stored
		c.stored, c.left = c.in, clen
		return nil
	}
	c.br.Reset(c.in)
	if v := zlibReaders.Get(); v != nil {
		c.zr = v.(io.ReadCloser)
		err = c.zr.(zlib.Resetter).Reset(&c.br, nil)
	} else {
		c.zr, err = zlib.NewReader(&c.br)
	}
	if err != nil {
		if c.zr != nil {
			zlibReaders.Put(c.zr)
			c.zr = nil
		}
		return fmt.Errorf("%w: %v", ErrCompressed, err)
	}
	c.left = ulen
	return nil
}

func compressedEOF(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: truncated payload", ErrCompressed)
	}
	return err
}

// appendWriter appends to a byte slice (what zlib writes into).
type appendWriter struct{ b *[]byte }

func (w appendWriter) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}

// Write sends p as compressed packets, each in one write to rw.
func (c *compressedIO) Write(p []byte) (int, error) {
	done := 0
	for len(p) > 0 {
		n := min(len(p), compressChunk)
		if err := c.writePacket(p[:n]); err != nil {
			return done, err
		}
		done += n
		p = p[n:]
	}
	return done, nil
}

func (c *compressedIO) writePacket(p []byte) error {
	if cap(c.wbuf) > keepCompBuf+compHeaderLen {
		c.wbuf = nil
	}
	c.wbuf = append(c.wbuf[:0], make([]byte, compHeaderLen)...)
	ulen := 0
	if len(p) >= minCompressLen {
		zw := zlibWriters.Get().(*zlib.Writer)
		zw.Reset(appendWriter{&c.wbuf})
		_, err := zw.Write(p)
		if err == nil {
			err = zw.Close()
		}
		zlibWriters.Put(zw)
		if err != nil {
			return err
		}
		ulen = len(p)
		if len(c.wbuf)-compHeaderLen >= len(p) { // did not shrink: store it
			c.wbuf, ulen = c.wbuf[:compHeaderLen], 0
		}
	}
	if ulen == 0 {
		c.wbuf = append(c.wbuf, p...)
	}
	clen := len(c.wbuf) - compHeaderLen
	h := c.wbuf[:compHeaderLen]
	h[0], h[1], h[2] = byte(clen), byte(clen>>8), byte(clen>>16)
	h[3] = c.seq
	h[4], h[5], h[6] = byte(ulen), byte(ulen>>8), byte(ulen>>16)
	c.seq++
	_, err := c.rw.Write(c.wbuf)
	return err
}

// newCommandOn tells rw, when it is compressed, that tandem starts a
// command on it as a client.
func newCommandOn(rw io.ReadWriter) {
	if c, ok := rw.(*compressedIO); ok {
		c.newCommand()
	}
}

// seqShift renumbers a node's answer for a compressed client. On a
// compressed link a server numbers its answer's packets from the number of
// compressed packets the command came in, not from the command's packets;
// tandem cuts its writes to the node into compressed packets of its own,
// so the node's numbering follows tandem's count, and the client expects
// its own. The first packet of an answer (and the first after a LOCAL
// INFILE upload) fixes the shift: the client's count minus the node's
// number. Clients do not check these numbers on a compressed link (the
// compressed header carries the checked one), but they log them.
type seqShift struct {
	client *compressedIO // nil: the client link is not compressed
	sync   bool          // the next packet fixes by
	by     byte
}

func (q *seqShift) start(s *session) {
	q.client, _ = s.cio.(*compressedIO)
	q.sync, q.by = q.client != nil, 0
}

func (q *seqShift) resync() { q.sync = q.client != nil }

// add returns what to add to the sequence id of a node packet numbered seq.
func (q *seqShift) add(seq byte) byte {
	if q.sync {
		q.by, q.sync = q.client.seq-seq, false
	}
	return q.by
}
