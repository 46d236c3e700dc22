package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// frame builds one physical packet by hand, independently of putHeader and
// writePacket, so the tests do not check the code against itself.
func frame(seq byte, payload []byte) []byte {
	n := len(payload)
	b := []byte{byte(n), byte(n >> 8), byte(n >> 16), seq}
	return append(b, payload...)
}

// pattern returns n bytes that are not all alike, so that a shifted or
// reordered copy does not compare equal.
func pattern(n int, salt byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ byte(i>>11) ^ salt
	}
	return b
}

// bigFrames frames a payload of n bytes the way the protocol splits it:
// chunks of maxPayload and a final shorter (possibly empty) chunk, with
// sequence ids from seq on.
func bigFrames(seq byte, payload []byte) []byte {
	var out []byte
	for {
		n := min(len(payload), maxPayload)
		out = append(out, frame(seq, payload[:n])...)
		seq++
		payload = payload[n:]
		if n < maxPayload {
			return out
		}
	}
}

func TestReadHeader(t *testing.T) {
	tests := []struct {
		in     []byte
		length int
		seq    byte
	}{
		{[]byte{0x00, 0x00, 0x00, 0x00}, 0, 0},
		{[]byte{0x01, 0x00, 0x00, 0x00}, 1, 0},
		{[]byte{0x2c, 0x01, 0x00, 0x03}, 300, 3},
		{[]byte{0x00, 0x00, 0x01, 0xff}, 1 << 16, 255},
		{[]byte{0xfe, 0xff, 0xff, 0x07}, maxPayload - 1, 7},
		{[]byte{0xff, 0xff, 0xff, 0x01}, maxPayload, 1},
	}
	for _, tt := range tests {
		var hdr [headerLen]byte
		n, seq, err := readHeader(iotest.OneByteReader(bytes.NewReader(tt.in)), &hdr)
		if err != nil || n != tt.length || seq != tt.seq {
			t.Errorf("readHeader(% x) = %d, %d, %v; want %d, %d, nil", tt.in, n, seq, err, tt.length, tt.seq)
		}
		if !bytes.Equal(hdr[:], tt.in) {
			t.Errorf("readHeader(% x) left hdr % x", tt.in, hdr)
		}
		var put [headerLen]byte
		putHeader(put[:], tt.length, tt.seq)
		if !bytes.Equal(put[:], tt.in) {
			t.Errorf("putHeader(%d, %d) = % x; want % x", tt.length, tt.seq, put, tt.in)
		}
	}
}

func TestReadHeaderTruncated(t *testing.T) {
	full := []byte{0x05, 0x00, 0x00, 0x00}
	for i := 0; i < headerLen; i++ {
		want := io.ErrUnexpectedEOF
		if i == 0 {
			want = io.EOF // a clean close between packets
		}
		var hdr [headerLen]byte
		_, _, err := readHeader(iotest.OneByteReader(bytes.NewReader(full[:i])), &hdr)
		if !errors.Is(err, want) {
			t.Errorf("readHeader of %d bytes: err = %v; want %v", i, err, want)
		}
	}
}

func TestReadPacket(t *testing.T) {
	big := pattern(maxPayload+2, 0x5a)
	tests := []struct {
		name    string
		in      []byte
		payload []byte
		seq     byte // of the last chunk
	}{
		{"empty", frame(0, nil), []byte{}, 0},
		{"one byte", frame(3, []byte{0x0e}), []byte{0x0e}, 3},
		{"COM_QUERY", frame(0, []byte("\x03SELECT 1")), []byte("\x03SELECT 1"), 0},
		{"max-1", frame(1, big[:maxPayload-1]), big[:maxPayload-1], 1},
		{"max then empty", bigFrames(1, big[:maxPayload]), big[:maxPayload], 2},
		{"2^24", bigFrames(5, big[:maxPayload+1]), big[:maxPayload+1], 6},
		{"2^24+1", bigFrames(255, big[:maxPayload+2]), big[:maxPayload+2], 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, oneByte := range []bool{false, true} {
				var r io.Reader = bytes.NewReader(tt.in)
				if oneByte {
					r = iotest.OneByteReader(r)
				}
				got, seq, err := readPacket(r, nil, 0)
				if err != nil {
					t.Fatalf("oneByte=%v: readPacket: %v", oneByte, err)
				}
				if seq != tt.seq {
					t.Errorf("oneByte=%v: seq = %d; want %d", oneByte, seq, tt.seq)
				}
				if !bytes.Equal(got, tt.payload) {
					t.Errorf("oneByte=%v: payload differs (len %d; want %d)", oneByte, len(got), len(tt.payload))
				}
				if len(tt.in) > 1<<20 {
					break // one-byte reads of 16 MiB take too long
				}
			}
		})
	}
}

func TestReadPacketSequence(t *testing.T) {
	// Two packets back to back: each call consumes exactly one.
	in := append(frame(0, []byte("first")), frame(1, []byte("second"))...)
	r := iotest.OneByteReader(bytes.NewReader(in))
	for i, want := range []string{"first", "second"} {
		p, seq, err := readPacket(r, nil, 0)
		if err != nil || string(p) != want || seq != byte(i) {
			t.Fatalf("packet %d = %q, %d, %v; want %q, %d, nil", i, p, seq, err, want, i)
		}
	}
	if _, _, err := readPacket(r, nil, 0); err != io.EOF {
		t.Fatalf("after the last packet: err = %v; want io.EOF", err)
	}
}

func TestReadPacketReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	p, _, err := readPacket(bytes.NewReader(frame(0, []byte("hello"))), buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	if &p[0] != &buf[:1][0] {
		t.Error("readPacket allocated although buf was large enough")
	}
	// Too small: a new array, and buf's contents are not relied on.
	small := make([]byte, 0, 2)
	p, _, err = readPacket(bytes.NewReader(frame(0, []byte("hello"))), small, 0)
	if err != nil || string(p) != "hello" {
		t.Fatalf("readPacket with small buf = %q, %v", p, err)
	}
}

func TestReadPacketTruncated(t *testing.T) {
	in := frame(0, []byte("\x03SELECT 1"))
	for i := 0; i < len(in); i++ {
		want := io.ErrUnexpectedEOF
		if i == 0 {
			want = io.EOF
		}
		_, _, err := readPacket(iotest.OneByteReader(bytes.NewReader(in[:i])), nil, 0)
		if !errors.Is(err, want) {
			t.Errorf("readPacket of %d of %d bytes: err = %v; want %v", i, len(in), err, want)
		}
	}
	// A continuation chunk that never comes.
	head := frame(0, pattern(maxPayload, 1))
	for _, extra := range [][]byte{nil, {0x01}, {0x01, 0x00, 0x00, 0x01}} {
		_, _, err := readPacket(bytes.NewReader(append(head[:len(head):len(head)], extra...)), nil, 0)
		// Even a clean end before the next chunk's header is unexpected:
		// the first chunk promised more.
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("readPacket missing continuation (+% x): err = %v; want io.ErrUnexpectedEOF", extra, err)
		}
	}
}

// headerOnly yields a header and then fails the test if anything reads on.
type headerOnly struct {
	t   *testing.T
	hdr []byte
}

func (h *headerOnly) Read(p []byte) (int, error) {
	if len(h.hdr) == 0 {
		h.t.Error("readPacket read past the header of a packet over its limit")
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, h.hdr)
	h.hdr = h.hdr[n:]
	return n, nil
}

func TestReadPacketLimit(t *testing.T) {
	tests := []struct {
		length, limit int
		refused       bool
	}{
		{100, 100, false},
		{101, 100, true},
		{maxPayload, 1 << 16, true},
		{1 << 16, 1 << 16, false},
		{1<<16 + 1, 1 << 16, true},
		{maxPayload, 0, false}, // 0: no limit
	}
	for _, tt := range tests {
		hdr := []byte{byte(tt.length), byte(tt.length >> 8), byte(tt.length >> 16), 9}
		if tt.refused {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, seq, err := readPacket(&headerOnly{t: t, hdr: hdr}, nil, tt.limit)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrPacketTooLarge) {
				t.Errorf("length %d limit %d: err = %v; want ErrPacketTooLarge", tt.length, tt.limit, err)
			}
			if seq != 9 {
				t.Errorf("length %d limit %d: seq = %d; want 9", tt.length, tt.limit, seq)
			}
			if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
				t.Errorf("length %d limit %d: allocated %d bytes before refusing", tt.length, tt.limit, d)
			}
			continue
		}
		in := frame(9, pattern(tt.length, 3))
		if tt.length == maxPayload {
			in = append(in, frame(10, nil)...)
		}
		if _, _, err := readPacket(bytes.NewReader(in), nil, tt.limit); err != nil {
			t.Errorf("length %d limit %d: %v", tt.length, tt.limit, err)
		}
	}

	// The limit counts the whole logical packet, not one chunk: the second
	// chunk's header pushes it over.
	in := append(frame(0, pattern(maxPayload, 4)), 0x10, 0x00, 0x00, 0x01)
	_, seq, err := readPacket(bytes.NewReader(in), nil, maxPayload+15)
	if !errors.Is(err, ErrPacketTooLarge) || seq != 1 {
		t.Errorf("second chunk over the limit: seq %d, err %v; want 1, ErrPacketTooLarge", seq, err)
	}
}

// parseFrames splits raw framed output into (seq, payload) pairs.
func parseFrames(t *testing.T, b []byte) (seqs []byte, lens []int, payload []byte) {
	t.Helper()
	for len(b) > 0 {
		if len(b) < headerLen {
			t.Fatalf("trailing %d bytes are not a header", len(b))
		}
		n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		if len(b) < headerLen+n {
			t.Fatalf("frame of %d bytes has only %d", n, len(b)-headerLen)
		}
		seqs = append(seqs, b[3])
		lens = append(lens, n)
		payload = append(payload, b[headerLen:headerLen+n]...)
		b = b[headerLen+n:]
	}
	return seqs, lens, payload
}

func TestWritePacket(t *testing.T) {
	src := pattern(2*maxPayload+1, 0x33)
	tests := []struct {
		size    int
		seq     byte
		seqs    []byte
		lens    []int
		nextSeq byte
	}{
		{0, 0, []byte{0}, []int{0}, 1},
		{1, 5, []byte{5}, []int{1}, 6},
		{maxPayload - 1, 0, []byte{0}, []int{maxPayload - 1}, 1},
		{maxPayload, 0, []byte{0, 1}, []int{maxPayload, 0}, 2},
		{maxPayload + 1, 0, []byte{0, 1}, []int{maxPayload, 1}, 2},
		{maxPayload, 255, []byte{255, 0}, []int{maxPayload, 0}, 1},
		{2 * maxPayload, 254, []byte{254, 255, 0}, []int{maxPayload, maxPayload, 0}, 1},
		{2*maxPayload + 1, 254, []byte{254, 255, 0}, []int{maxPayload, maxPayload, 1}, 1},
		{3, 255, []byte{255}, []int{3}, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d@%d", tt.size, tt.seq), func(t *testing.T) {
			var out bytes.Buffer
			w := bufio.NewWriterSize(&out, 4096)
			next, err := writePacket(w, tt.seq, src[:tt.size])
			if err != nil {
				t.Fatal(err)
			}
			if next != tt.nextSeq {
				t.Errorf("next seq = %d; want %d", next, tt.nextSeq)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			seqs, lens, payload := parseFrames(t, out.Bytes())
			if !bytes.Equal(seqs, tt.seqs) || fmt.Sprint(lens) != fmt.Sprint(tt.lens) {
				t.Errorf("frames seq %v len %v; want seq %v len %v", seqs, lens, tt.seqs, tt.lens)
			}
			if !bytes.Equal(payload, src[:tt.size]) {
				t.Error("payload differs")
			}
			// readPacket takes back what writePacket wrote.
			back, lastSeq, err := readPacket(bytes.NewReader(out.Bytes()), nil, 0)
			if err != nil || !bytes.Equal(back, src[:tt.size]) || lastSeq != tt.nextSeq-1 {
				t.Errorf("readPacket of the output: len %d, seq %d, err %v", len(back), lastSeq, err)
			}
		})
	}
}

// failWriter fails every write.
type failWriter struct{}

var errWrite = errors.New("write failed")

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestWritePacketError(t *testing.T) {
	w := bufio.NewWriterSize(failWriter{}, 16)
	if _, err := writePacket(w, 0, pattern(100, 0)); !errors.Is(err, errWrite) {
		t.Errorf("writePacket to a failing writer: err = %v; want %v", err, errWrite)
	}
}

// relayOne relays one packet from in, through a bufio.Reader of rsize
// bytes to a bufio.Writer of wsize bytes, and returns what was written
// (flushed) and relayPacket's results, with head copied.
func relayOne(t *testing.T, in []byte, rsize, wsize int) (out []byte, head []byte, first byte, length int, seq byte, err error) {
	t.Helper()
	var buf bytes.Buffer
	src := bufio.NewReaderSize(bytes.NewReader(in), rsize)
	dst := bufio.NewWriterSize(&buf, wsize)
	var hdr [headerLen]byte
	head, first, length, seq, err = relayPacket(dst, src, &hdr)
	if head != nil {
		head = append([]byte{}, head...) // valid only until the next read
	}
	if ferr := dst.Flush(); ferr != nil {
		t.Fatal(ferr)
	}
	return buf.Bytes(), head, first, length, seq, err
}

func TestRelayPacketSmall(t *testing.T) {
	const rsize = 16 // bufio's minimum: packets of up to 15 bytes are small
	tests := []struct {
		name    string
		payload []byte
		seq     byte
	}{
		{"empty", []byte{}, 0},
		{"OK", []byte{0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00}, 1},
		{"EOF", []byte{0xfe, 0x00, 0x00, 0x02, 0x00}, 5},
		{"size-1", pattern(rsize-1, 9), 255},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := frame(tt.seq, tt.payload)
			for _, wsize := range []int{16, 4096} {
				out, head, first, length, seq, err := relayOne(t, in, rsize, wsize)
				if err != nil {
					t.Fatal(err)
				}
				if head == nil || !bytes.Equal(head, tt.payload) {
					t.Errorf("head = % x; want % x", head, tt.payload)
				}
				var wantFirst byte
				if len(tt.payload) > 0 {
					wantFirst = tt.payload[0]
				}
				if first != wantFirst || length != len(tt.payload) || seq != tt.seq {
					t.Errorf("first, length, seq = %#x, %d, %d; want %#x, %d, %d", first, length, seq, wantFirst, len(tt.payload), tt.seq)
				}
				if !bytes.Equal(out, in) {
					t.Errorf("relayed % x; want % x", out, in)
				}
			}
		})
	}
}

func TestRelayPacketLarge(t *testing.T) {
	big := pattern(2*maxPayload+1, 0x77)
	big[0] = 0xfe // a row that starts like an EOF
	tests := []struct {
		name string
		in   []byte
		size int
	}{
		{"buffer size", frame(3, big[:16]), 16},
		{"buffer size+1", frame(3, big[:17]), 17},
		{"64 KiB", frame(0, big[:64<<10]), 64 << 10},
		{"max-1", frame(1, big[:maxPayload-1]), maxPayload - 1},
		{"max then empty", bigFrames(1, big[:maxPayload]), maxPayload},
		{"2^24", bigFrames(1, big[:maxPayload+1]), maxPayload},
		{"2^24+1", bigFrames(254, big[:maxPayload+2]), maxPayload},
		{"two full chunks", bigFrames(7, big[:2*maxPayload+1]), maxPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, head, first, length, seq, err := relayOne(t, tt.in, 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			if head != nil {
				t.Errorf("head is %d bytes; want nil for a packet larger than the read buffer", len(head))
			}
			if first != 0xfe || length != tt.size || seq != tt.in[3] {
				t.Errorf("first, length, seq = %#x, %d, %d; want 0xfe, %d, %d", first, length, seq, tt.size, tt.in[3])
			}
			if !bytes.Equal(out, tt.in) {
				t.Errorf("output (%d bytes) differs from input (%d bytes)", len(out), len(tt.in))
			}
		})
	}
}

func TestRelayPacketStream(t *testing.T) {
	// Packets of every size around the read buffer's, back to back; each
	// call relays exactly one and the concatenated output equals the input.
	var in []byte
	var sizes []int
	for n := 0; n < 40; n++ {
		in = append(in, frame(byte(n), pattern(n, byte(n)))...)
		sizes = append(sizes, n)
	}
	in = append(in, bigFrames(200, pattern(maxPayload+3, 1))...)
	sizes = append(sizes, maxPayload)
	in = append(in, frame(202, []byte{0xfe, 0, 0, 2, 0})...)
	sizes = append(sizes, 5)

	var buf bytes.Buffer
	src := bufio.NewReaderSize(iotest.HalfReader(bytes.NewReader(in)), 16)
	dst := bufio.NewWriterSize(&buf, 16)
	var hdr [headerLen]byte
	for i, want := range sizes {
		_, _, length, _, err := relayPacket(dst, src, &hdr)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if length != want {
			t.Fatalf("packet %d: length %d; want %d", i, length, want)
		}
	}
	if _, _, _, _, err := relayPacket(dst, src, &hdr); err != io.EOF {
		t.Fatalf("after the last packet: err = %v; want io.EOF", err)
	}
	if err := dst.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), in) {
		t.Fatalf("output (%d bytes) differs from input (%d bytes)", buf.Len(), len(in))
	}
}

func TestRelayPacketTruncated(t *testing.T) {
	// Every prefix of a small and of a large packet fails and never writes
	// more than it read.
	for _, in := range [][]byte{frame(0, pattern(10, 1)), frame(0, pattern(100, 2))} {
		for i := 0; i < len(in); i++ {
			out, _, _, _, _, err := relayOne(t, in[:i], 16, 16)
			if err == nil {
				t.Errorf("%d of %d bytes: no error", i, len(in))
			}
			if i == 0 && err != io.EOF {
				t.Errorf("empty input: err = %v; want io.EOF", err)
			}
			if len(out) > i || !bytes.Equal(out, in[:len(out)]) {
				t.Errorf("%d of %d bytes: wrote % x", i, len(in), out)
			}
		}
	}
	// A missing continuation chunk.
	in := frame(0, pattern(maxPayload, 3))
	if _, _, _, _, _, err := relayOne(t, in, 16, 16); err == nil {
		t.Error("missing continuation chunk: no error")
	}
}

func TestRelayBodyWriteError(t *testing.T) {
	for _, n := range []int{5, 100} {
		src := bufio.NewReaderSize(bytes.NewReader(pattern(n, 0)), 16)
		dst := bufio.NewWriterSize(failWriter{}, 16)
		hdr := [headerLen]byte{byte(n), 0, 0, 0}
		// The small path only buffers: the error shows on the flush.
		_, _, err := relayBody(dst, src, &hdr, n)
		if err == nil {
			err = dst.Flush()
		}
		if !errors.Is(err, errWrite) {
			t.Errorf("%d bytes to a failing writer: err = %v; want %v", n, err, errWrite)
		}
	}
}

// relaySmallSetup is the small-packet relay the benchmark and the
// allocation test share: one 40-byte row, the size of a typical result row.
func relaySmallSetup() (run func() error) {
	in := frame(3, pattern(40, 0x21))
	rd := bytes.NewReader(in)
	src := bufio.NewReaderSize(rd, 4096)
	dst := bufio.NewWriterSize(io.Discard, 4096)
	var hdr [headerLen]byte
	return func() error {
		rd.Reset(in)
		src.Reset(rd)
		_, _, _, _, err := relayPacket(dst, src, &hdr)
		return err
	}
}

func TestRelaySmallPacketAllocs(t *testing.T) {
	run := relaySmallSetup()
	var err error
	allocs := testing.AllocsPerRun(1000, func() {
		if e := run(); e != nil {
			err = e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Errorf("relayPacket of a small packet: %v allocations; want 0", allocs)
	}
}

func BenchmarkRelaySmallPacket(b *testing.B) {
	run := relaySmallSetup()
	b.ReportAllocs()
	b.SetBytes(44)
	for b.Loop() {
		if err := run(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLenEncInt(t *testing.T) {
	tests := []struct {
		in   []byte
		pos  int
		v    uint64
		next int
		ok   bool
	}{
		{[]byte{0x00}, 0, 0, 1, true},
		{[]byte{0x01}, 0, 1, 1, true},
		{[]byte{0xfa}, 0, 250, 1, true},
		{[]byte{0xfb}, 0, 0, 0, false}, // NULL is not an integer
		{[]byte{0xff}, 0, 0, 0, false}, // ERR marker
		{[]byte{0xfc, 0xfb, 0x00}, 0, 251, 3, true},
		{[]byte{0xfc, 0xff, 0xff}, 0, 0xffff, 3, true},
		{[]byte{0xfc}, 0, 0, 0, false},
		{[]byte{0xfc, 0x01}, 0, 0, 0, false},
		{[]byte{0xfd, 0x01, 0x02, 0x03}, 0, 0x030201, 4, true},
		{[]byte{0xfd, 0x01, 0x02}, 0, 0, 0, false},
		{[]byte{0xfe, 1, 2, 3, 4, 5, 6, 7, 8}, 0, 0x0807060504030201, 9, true},
		{[]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0, 1<<64 - 1, 9, true},
		{[]byte{0xfe, 1, 2, 3, 4, 5, 6, 7}, 0, 0, 0, false},
		{[]byte{0xfe}, 0, 0, 0, false},
		{[]byte{}, 0, 0, 0, false},
		{[]byte{0x07, 0x08}, 1, 8, 2, true},
		{[]byte{0x07, 0x08}, 2, 0, 2, false}, // at the end
		{[]byte{0x07, 0x08}, 3, 0, 3, false}, // past the end
		{[]byte{0x00, 0xfc, 0x02, 0x01, 0x00}, 1, 0x0102, 4, true},
	}
	for _, tt := range tests {
		v, next, ok := lenEncInt(tt.in, tt.pos)
		if v != tt.v || next != tt.next || ok != tt.ok {
			t.Errorf("lenEncInt(% x, %d) = %d, %d, %v; want %d, %d, %v", tt.in, tt.pos, v, next, ok, tt.v, tt.next, tt.ok)
		}
	}
}

func TestLenEncBytes(t *testing.T) {
	long := pattern(300, 5)
	tests := []struct {
		in   []byte
		pos  int
		v    []byte
		next int
		ok   bool
	}{
		{[]byte{0x00}, 0, []byte{}, 1, true},
		{[]byte("\x03abc"), 0, []byte("abc"), 4, true},
		{[]byte("\x03abcd"), 0, []byte("abc"), 4, true},
		{[]byte("\x03ab"), 0, nil, 0, false},
		{[]byte{0xfb}, 0, nil, 0, false},
		{[]byte{0xff, 0x00}, 0, nil, 0, false},
		{append([]byte{0xfc, 0x2c, 0x01}, long...), 0, long, 303, true},
		{append([]byte{0xfc, 0x2c, 0x01}, long[:299]...), 0, nil, 0, false},
		{[]byte{0xfc, 0x2c}, 0, nil, 0, false},
		// A length near 2^64 must not overflow into a small slice.
		{[]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'a'}, 0, nil, 0, false},
		{[]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 'a'}, 0, nil, 0, false},
		{[]byte("xx\x02hi"), 2, []byte("hi"), 5, true},
		{[]byte("xx"), 2, nil, 2, false},
	}
	for _, tt := range tests {
		v, next, ok := lenEncBytes(tt.in, tt.pos)
		if !bytes.Equal(v, tt.v) || (v == nil) != (tt.v == nil) || next != tt.next || ok != tt.ok {
			t.Errorf("lenEncBytes(% x, %d) = %q, %d, %v; want %q, %d, %v", tt.in, tt.pos, v, next, ok, tt.v, tt.next, tt.ok)
		}
	}
}

func TestNulString(t *testing.T) {
	tests := []struct {
		in   string
		pos  int
		v    string
		next int
		ok   bool
	}{
		{"abc\x00", 0, "abc", 4, true},
		{"abc\x00def\x00", 4, "def", 8, true},
		{"\x00", 0, "", 1, true},
		{"abc", 0, "", 0, false},
		{"", 0, "", 0, false},
		{"abc\x00", 4, "", 4, false}, // at the end
		{"abc\x00", 5, "", 5, false}, // past the end
		{"a\x00b\x00", 1, "", 2, true},
	}
	for _, tt := range tests {
		v, next, ok := nulString([]byte(tt.in), tt.pos)
		if string(v) != tt.v || next != tt.next || ok != tt.ok {
			t.Errorf("nulString(%q, %d) = %q, %d, %v; want %q, %d, %v", tt.in, tt.pos, v, next, ok, tt.v, tt.next, tt.ok)
		}
	}
}

func TestLyingHeaderCostsWhatArrived(t *testing.T) {
	// A header announcing 16 MiB - 1, then 10 bytes and EOF: the buffer
	// grows with what arrives, not with the announced length.
	in := append([]byte{0xfe, 0xff, 0xff, 0}, "0123456789"...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := readPacket(bytes.NewReader(in), nil, 0)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 4*growChunk { // slack for -race
		t.Errorf("allocated %d bytes for 10 that arrived", d)
	}
	// appendFull grows in steps, and reads exactly n bytes.
	for _, n := range []int{0, 1, growChunk - 1, growChunk, 3*growChunk + 7, 1 << 20} {
		src := pattern(n+5, 1)
		got, err := appendFull(iotest.HalfReader(bytes.NewReader(src)), []byte("ab"), n)
		if err != nil || len(got) != n+2 || !bytes.Equal(got[2:], src[:n]) {
			t.Fatalf("appendFull(%d): %d bytes, %v", n, len(got), err)
		}
		if cap(got) > 2*(n+2)+growChunk {
			t.Errorf("appendFull(%d): capacity %d", n, cap(got))
		}
	}
}
