package proxy

// Capabilities on the real pair, directly and through tandem: MariaDB's
// extended capabilities (bulk execute, extended metadata, metadata cache,
// progress reports) with hand-built packets, and the compressed protocol
// with go-sql-driver and with the hand-built client.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"
	"github.com/hashicorp/go-hclog"

	"github.com/tandemdb/tandem/internal/testpair"
)

// extConn is a hand-built client that negotiates MariaDB's extended
// capabilities and, optionally, compression.
type extConn struct {
	t    testing.TB
	conn net.Conn
	rw   io.ReadWriter
	br   *bytes.Buffer
	g    *greeting
	caps uint32
	ext  uint32
	seqs []byte // the sequence id of every packet read
}

// dialGreeting connects to addr (a minute for the whole exchange) and
// reads and parses the server's greeting.
func dialGreeting(t testing.TB, network, addr string) (net.Conn, *greeting) {
	t.Helper()
	conn, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	p, _, err := readPacket(conn, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	g, err := parseGreeting(p)
	if err != nil {
		t.Fatal(err)
	}
	return conn, g
}

// dialExt logs in to addr as the app user asking for caps and ext (masked
// with what the greeting offers).
func dialExt(t testing.TB, addr string, caps, ext uint32) *extConn {
	t.Helper()
	conn, g := dialGreeting(t, "tcp", addr)
	caps = (requiredCaps | clientPluginAuth | connectWithDB | caps) & g.Caps &^ mysql.CLIENT_LONG_PASSWORD
	ext &= g.ExtCaps
	auth, _ := scramble(g.AuthPlugin, g.Salt, testpair.AppPassword)
	resp := appendHandshakeResponse(nil, &handshakeResponse{Caps: caps, ExtCaps: ext, MaxPacket: 1 << 30, Collation: 45,
		User: testpair.AppUser, Auth: auth, DB: testpair.AppDB, Plugin: g.AuthPlugin})
	if err := writeRaw(conn, 1, resp); err != nil {
		t.Fatal(err)
	}
	var p []byte
	for {
		var err error
		if p, _, err = readPacket(conn, nil, 0); err != nil {
			t.Fatal(err)
		}
		if p[0] != 1 {
			break
		}
	}
	if p[0] != 0 {
		t.Fatalf("login failed: %x", p)
	}
	c := &extConn{t: t, conn: conn, rw: conn, g: g, caps: caps, ext: ext}
	if caps&mysql.CLIENT_COMPRESS != 0 {
		c.rw = newCompressedIO(conn)
	}
	return c
}

func (c *extConn) send(payload []byte) {
	c.t.Helper()
	newCommandOn(c.rw)
	if err := writeRaw(c.rw, 0, payload); err != nil {
		c.t.Fatal(err)
	}
}

func (c *extConn) readOne() []byte {
	c.t.Helper()
	p, seq, err := readPacket(c.rw, nil, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	c.seqs = append(c.seqs, seq)
	return p
}

// readResponse reads one whole response (OK, ERR or result sets, text or
// binary) and returns its packets, following DEPRECATE_EOF and the
// metadata cache byte as a client would.
func (c *extConn) readResponse(binary bool) [][]byte {
	c.t.Helper()
	var out [][]byte
	for {
		p := c.readOne()
		out = append(out, p)
		if isProgress(p) {
			continue
		}
		switch p[0] {
		case 0x00:
			if okStatus(p, c.caps)&mysql.SERVER_MORE_RESULTS_EXISTS != 0 {
				continue
			}
			return out
		case 0xff:
			return out
		}
		n, pos, _ := lenEncInt(p, 0)
		follows := true
		if c.ext&mariadbClientCacheMetadata != 0 {
			follows = p[pos] == 1
		}
		if follows {
			for range n {
				out = append(out, c.readOne())
			}
		}
		if c.caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
			out = append(out, c.readOne())
		}
		for {
			p := c.readOne()
			out = append(out, p)
			if p[0] == 0xff {
				return out
			}
			if p[0] == 0xfe && len(p) < 0xffffff {
				var st uint16
				if c.caps&mysql.CLIENT_DEPRECATE_EOF != 0 {
					st = okStatus(p, c.caps)
				} else {
					st = eofStatus(p)
				}
				if st&mysql.SERVER_MORE_RESULTS_EXISTS == 0 {
					return out
				}
				break
			}
		}
		_ = binary
	}
}

// prepare prepares text and returns the statement id and the response.
func (c *extConn) prepare(text string) (uint32, [][]byte) {
	c.t.Helper()
	c.send(append([]byte{mysql.COM_STMT_PREPARE}, text...))
	ok := c.readOne()
	if ok[0] != 0 {
		c.t.Fatalf("prepare %q: %x", text, ok)
	}
	out := [][]byte{ok}
	params := int(binary.LittleEndian.Uint16(ok[7:]))
	cols := int(binary.LittleEndian.Uint16(ok[5:]))
	for _, n := range []int{params, cols} {
		for range n {
			out = append(out, c.readOne())
		}
		if n > 0 && c.caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
			out = append(out, c.readOne())
		}
	}
	return binary.LittleEndian.Uint32(ok[1:]), out
}

// execute runs statement id with no parameters.
func (c *extConn) execute(id uint32) [][]byte {
	c.t.Helper()
	b := []byte{mysql.COM_STMT_EXECUTE, 0, 0, 0, 0, 0, 1, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[1:], id)
	c.send(b)
	return c.readResponse(true)
}

// changeUser sends COM_CHANGE_USER to the app user (native password,
// answering the greeting's scramble) and returns the answer's last packet.
func (c *extConn) changeUser() []byte {
	c.t.Helper()
	auth, _ := scramble(mysql.AUTH_NATIVE_PASSWORD, c.g.Salt, testpair.AppPassword)
	b := append([]byte{mysql.COM_CHANGE_USER}, testpair.AppUser...)
	b = append(b, 0, byte(len(auth)))
	b = append(b, auth...)
	b = append(b, testpair.AppDB...)
	b = append(b, 0, 45, 0)
	b = append(b, mysql.AUTH_NATIVE_PASSWORD...)
	b = append(b, 0)
	c.send(b)
	for {
		p, seq, err := readPacket(c.rw, nil, 0)
		if err != nil {
			c.t.Fatal(err)
		}
		if p[0] != 0xfe { // OK or ERR (its sequence id not compared: a
			// node may ask for an auth switch where tandem does not)
			return p
		}
		// An auth switch: answer it.
		_, salt, err := parseAuthSwitch(p)
		if err != nil {
			c.t.Fatal(err)
		}
		r, _ := scramble(mysql.AUTH_NATIVE_PASSWORD, salt, testpair.AppPassword)
		if err := writeRaw(c.rw, seq+1, r); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *extConn) query(text string) [][]byte {
	c.t.Helper()
	c.send(append([]byte{mysql.COM_QUERY}, text...))
	return c.readResponse(false)
}

const allExt = mariadbClientProgress | mariadbClientBulkOperations | mariadbClientExtendedMeta | mariadbClientCacheMetadata

// bulkInsert builds a COM_STMT_BULK_EXECUTE of (BIGINT, VARCHAR) rows.
func bulkInsert(id uint32, rows []int64) []byte {
	b := []byte{comStmtBulkExecute, 0, 0, 0, 0, 128, 0} // flags: STMT_BULK_FLAG_SEND_TYPES
	binary.LittleEndian.PutUint32(b[1:], id)
	b = append(b, mysql.MYSQL_TYPE_LONGLONG, 0, mysql.MYSQL_TYPE_VAR_STRING, 0)
	for _, r := range rows {
		b = append(b, 0) // indicator: a value follows
		b = binary.LittleEndian.AppendUint64(b, uint64(r))
		v := fmt.Sprintf("row %d", r)
		if r%3 == 0 {
			b = append(b, 1) // indicator: NULL
			continue
		}
		b = append(b, 0)
		b = append(mysql.AppendLengthEncodedInteger(b, uint64(len(v))), v...)
	}
	return b
}

func TestGreetingOffersNodeExtendedCaps(t *testing.T) {
	p := startProxy(t, nil)
	read := func(addr string) *greeting {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		pkt, _, err := readPacket(conn, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		g, err := parseGreeting(pkt)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	d, x := read(testpair.Addr(testpair.A)), read(p.addr)
	t.Logf("node: caps 0x%08x ext 0x%08x; tandem: caps 0x%08x ext 0x%08x", d.Caps, d.ExtCaps, x.Caps, x.ExtCaps)
	if d.Caps&mysql.CLIENT_LONG_PASSWORD != 0 || x.Caps&mysql.CLIENT_LONG_PASSWORD != 0 {
		t.Fatalf("CLIENT_MYSQL set: node 0x%x tandem 0x%x", d.Caps, x.Caps)
	}
	if want := d.ExtCaps & supportedExtCaps; x.ExtCaps != want || want&allExt != allExt {
		t.Fatalf("tandem offers extended caps 0x%x, want the node's 0x%x masked to 0x%x", x.ExtCaps, d.ExtCaps, want)
	}
	if x.Caps&mysql.CLIENT_COMPRESS == 0 || d.Caps&mysql.CLIENT_COMPRESS == 0 {
		t.Fatal("CLIENT_COMPRESS not offered")
	}
}

// compareExt runs f directly against node a and through tandem with the
// same capabilities and compares the packets.
func capsCompare(t *testing.T, p *testProxy, caps, ext uint32, f func(c *extConn) [][]byte) {
	t.Helper()
	dc, xc := dialExt(t, testpair.Addr(testpair.A), caps, ext), dialExt(t, p.addr, caps, ext)
	d, x := f(dc), f(xc)
	if !bytes.Equal(dc.seqs, xc.seqs) {
		t.Fatalf("sequence ids differ:\ndirect %v\ntandem %v", dc.seqs, xc.seqs)
	}
	if len(d) != len(x) {
		t.Fatalf("direct gave %d packets, tandem %d:\ndirect %q\ntandem %q", len(d), len(x), d, x)
	}
	for i := range d {
		if !bytes.Equal(d[i], x[i]) {
			t.Fatalf("packet %d differs:\ndirect %q\ntandem %q", i, d[i], x[i])
		}
	}
}

func setupCapsTable(t *testing.T) {
	t.Helper()
	db := openDB(t, driverConfig(testpair.Addr(testpair.A)))
	mustExec(t, db, "DROP TABLE IF EXISTS caps_t")
	mustExec(t, db, "CREATE TABLE caps_t (id BIGINT PRIMARY KEY, v VARCHAR(20), j JSON, g POINT)")
	testpair.WaitInSync(t, 30*time.Second)
}

func TestBulkExecuteDirectAndThroughTandem(t *testing.T) {
	p := startProxy(t, nil)
	setupCapsTable(t)
	for _, caps := range []uint32{0, mysql.CLIENT_DEPRECATE_EOF} {
		capsCompare(t, p, caps, allExt, func(c *extConn) [][]byte {
			c.query("DELETE FROM caps_t")
			id, _ := c.prepare("INSERT INTO caps_t (id, v) VALUES (?, ?)")
			var out [][]byte
			rows := []int64{1, 2, 3, 4, 5, 6, 7}
			c.send(bulkInsert(id, rows))
			out = append(out, c.readResponse(true)...)
			// A duplicate key: the node's ERR, relayed.
			c.send(bulkInsert(id, []int64{8, 1}))
			out = append(out, c.readResponse(true)...)
			out = append(out, c.query("SELECT id, v FROM caps_t ORDER BY id")...)
			// INSERT ... RETURNING in bulk: result sets.
			rid, _ := c.prepare("INSERT INTO caps_t (id, v) VALUES (?, ?) RETURNING id, v")
			c.send(bulkInsert(rid, []int64{20, 21, 22}))
			out = append(out, c.readResponse(true)...)
			// The statement prepared last, by MariaDB's id 0xffffffff.
			c.send(bulkInsert(lastPreparedID, []int64{30, 31}))
			out = append(out, c.readResponse(true)...)
			return out
		})
	}
	db := openDB(t, driverConfig(p.addr))
	var n int
	// 7 + 3 RETURNING + 2 by id 0xffffffff; the duplicate-key bulk
	// insert is rolled back as a whole.
	if err := db.QueryRow("SELECT COUNT(*) FROM caps_t").Scan(&n); err != nil || n != 12 {
		t.Fatalf("rows after the bulk inserts: %d, %v; want 12", n, err)
	}
}

func TestExtendedAndCachedMetadataDirectAndThroughTandem(t *testing.T) {
	p := startProxy(t, nil)
	setupCapsTable(t)
	db := openDB(t, driverConfig(testpair.Addr(testpair.A)))
	mustExec(t, db, "INSERT INTO caps_t VALUES (1, 'a', '{\"k\": 1}', POINT(1, 2)), (2, NULL, NULL, NULL)")
	testpair.WaitInSync(t, 30*time.Second)
	for _, caps := range []uint32{0, mysql.CLIENT_DEPRECATE_EOF} {
		for _, ext := range []uint32{allExt, mariadbClientExtendedMeta, mariadbClientCacheMetadata} {
			capsCompare(t, p, caps, ext, func(c *extConn) [][]byte {
				out := c.query("SELECT id, v, j, g FROM caps_t ORDER BY id")
				id, prep := c.prepare("SELECT id, v, j, g FROM caps_t WHERE id > ? ORDER BY id")
				prep[0] = prep[0][:1] // the statement id may differ
				out = append(out, prep...)
				b := []byte{mysql.COM_STMT_EXECUTE, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, mysql.MYSQL_TYPE_LONGLONG, 0}
				binary.LittleEndian.PutUint32(b[1:], id)
				b = binary.LittleEndian.AppendUint64(b, 0)
				for range 3 { // the metadata is left out after the first
					c.send(b)
					out = append(out, c.readResponse(true)...)
				}
				return out
			})
		}
	}
}

func TestProgressReportsRelayed(t *testing.T) {
	p := startProxy(t, nil)
	setupCapsTable(t)
	db := openDB(t, driverConfig(testpair.Addr(testpair.A)))
	rows := 50000
	mustExec(t, db, fmt.Sprintf("INSERT INTO caps_t (id, v) SELECT seq, 'x' FROM seq_1_to_%d", rows))
	// One ALTER TABLE that copies the rows, counting the progress reports
	// (at most one a second) before its OK.
	alter := func(c *extConn) int {
		n := 0
		out := c.query("ALTER TABLE caps_t FORCE, ALGORITHM=COPY")
		for _, p := range out {
			if isProgress(p) {
				n++
			}
		}
		if last := out[len(out)-1]; last[0] != 0 {
			t.Fatalf("ALTER TABLE: %q", last)
		}
		return n
	}
	open := func(addr string) *extConn {
		c := dialExt(t, addr, 0, allExt)
		c.query("SET SESSION progress_report_time = 1")
		return c
	}
	// Directly: enough rows for the copy to last over a second here.
	direct := open(testpair.Addr(testpair.A))
	d := alter(direct)
	for d == 0 {
		if rows >= 1<<21 {
			t.Fatalf("no progress report directly for an ALTER TABLE of %d rows", rows)
		}
		mustExec(t, db, fmt.Sprintf("INSERT INTO caps_t (id, v) SELECT seq + %d, 'x' FROM seq_1_to_%d", rows, rows))
		rows *= 2
		d = alter(direct)
	}
	// Through tandem, the same table: the reports come, and the session
	// is in step after them.
	through := open(p.addr)
	x := 0
	for i := 0; x == 0 && i < 5; i++ {
		x = alter(through)
	}
	t.Logf("progress reports for %d rows: direct %d, through tandem %d", rows, d, x)
	if x == 0 {
		t.Fatal("no progress report came through tandem in 5 ALTERs")
	}
	if r := through.query("SELECT 1"); len(r) < 3 {
		t.Fatalf("after the progress reports: %q", r)
	}
	testpair.WaitInSync(t, 120*time.Second)
}

// capsCountingConn counts the bytes a client reads.
type capsCountingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c capsCountingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func TestCompressionWithGoSQLDriver(t *testing.T) {
	p := startProxy(t, nil)
	both(t, p, func(t *testing.T, addr string) {
		c := driverConfig(addr)
		c.Apply(driver.EnableCompression(true))
		var read atomic.Int64
		c.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			return capsCountingConn{conn, &read}, err
		}
		db := openDB(t, c)
		db.SetMaxOpenConns(1)
		var name, val string
		if err := db.QueryRow("SHOW SESSION STATUS LIKE 'Compression'").Scan(&name, &val); err != nil || val != "ON" {
			t.Fatalf("Compression = %q, %v; want ON", val, err)
		}
		before := read.Load()
		var s string
		if err := db.QueryRow("SELECT REPEAT('tandem', 200000)").Scan(&s); err != nil || len(s) != 1200000 {
			t.Fatalf("large compressible value: %d bytes, %v", len(s), err)
		}
		if got := read.Load() - before; got > 200000 {
			t.Fatalf("the client read %d bytes for a 1.2 MB compressible value: not compressed", got)
		}
		// Prepared statements, many small packets, a large packet
		// split over several compressed packets.
		mustExec(t, db, "DROP TEMPORARY TABLE IF EXISTS ct")
		mustExec(t, db, "CREATE TEMPORARY TABLE ct (id INT PRIMARY KEY, b LONGBLOB)")
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB + a random tail
		big = append(big, []byte(strings.Repeat("z", 1234))...)
		mustExec(t, db, "INSERT INTO ct VALUES (?, ?)", 1, big)
		var back []byte
		if err := db.QueryRow("SELECT b FROM ct WHERE id = ?", 1).Scan(&back); err != nil || !bytes.Equal(back, big) {
			t.Fatalf("16 MiB blob round trip: %d bytes, %v", len(back), err)
		}
		stmt, err := db.Prepare("SELECT ? + id FROM ct")
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close()
		for i := range 200 {
			var v int
			if err := stmt.QueryRow(i).Scan(&v); err != nil || v != i+1 {
				t.Fatalf("prepared %d: %d, %v", i, v, err)
			}
		}
		// LOCAL INFILE: the file's packets are numbered on from the
		// request, on both links.
		path := filepath.Join(t.TempDir(), "rows.csv")
		var buf bytes.Buffer
		for i := range 30000 {
			fmt.Fprintf(&buf, "%d,value-%d\n", i+10, i)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		driver.RegisterLocalFile(path)
		r := mustExec(t, db, fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE ct FIELDS TERMINATED BY ','", path))
		if n, _ := r.RowsAffected(); n != 30000 {
			t.Fatalf("loaded %d rows, want 30000", n)
		}
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM ct").Scan(&n); err != nil || n != 30001 {
			t.Fatalf("rows after LOAD DATA: %d, %v", n, err)
		}
	})
}

// The hand-built client, compressed, with cached metadata: the packets are
// the same directly and through tandem.
func TestCompressedExtendedSessionDirectAndThroughTandem(t *testing.T) {
	p := startProxy(t, nil)
	setupCapsTable(t)
	capsCompare(t, p, mysql.CLIENT_COMPRESS|mysql.CLIENT_DEPRECATE_EOF, allExt, func(c *extConn) [][]byte {
		var out [][]byte
		out = append(out, c.query("SHOW SESSION STATUS LIKE 'Compression'")...)
		id, _ := c.prepare("INSERT INTO caps_t (id, v) VALUES (?, ?)")
		c.query("DELETE FROM caps_t")
		c.send(bulkInsert(id, []int64{1, 2, 4, 5}))
		out = append(out, c.readResponse(true)...)
		out = append(out, c.query("SELECT id, v, REPEAT(v, 1000) FROM caps_t ORDER BY id")...)
		if ok := c.changeUser(); ok[0] != 0 {
			t.Fatalf("COM_CHANGE_USER on a compressed session: %q", ok)
		}
		out = append(out, c.query("SELECT CURRENT_USER(), DATABASE(), @@session.autocommit")...)
		out = append(out, c.query("SHOW SESSION STATUS LIKE 'Compression'")...)
		return out
	})
}

// A switchover while compressed sessions hold prepared statements with
// cached metadata: the statements run on the new node, and the rows
// decode with the column definitions the client holds.
func TestSwitchoverWithCompressedCachedMetadataSessions(t *testing.T) {
	p := startProxy(t, nil)
	defer p.Route("a")
	setupCapsTable(t)
	db := openDB(t, driverConfig(testpair.Addr(testpair.A)))
	mustExec(t, db, "INSERT INTO caps_t (id, v) VALUES (1, 'one'), (2, 'two')")
	testpair.WaitInSync(t, 30*time.Second)

	c := dialExt(t, p.addr, mysql.CLIENT_COMPRESS|mysql.CLIENT_DEPRECATE_EOF, allExt)
	sel, _ := c.prepare("SELECT id, v FROM caps_t ORDER BY id")
	ins, _ := c.prepare("INSERT INTO caps_t (id, v) VALUES (?, ?)")
	first := c.execute(sel)
	again := c.execute(sel)
	n, pos, _ := lenEncInt(again[0], 0)
	if n != 2 || again[0][pos] != 0 {
		t.Fatalf("second execute: %q, want 2 columns without metadata", again[0])
	}
	// go-sql-driver, compressed, with a prepared statement open too.
	dc := driverConfig(p.addr)
	dc.Apply(driver.EnableCompression(true))
	gdb := openDB(t, dc)
	gdb.SetMaxOpenConns(1)
	stmt, err := gdb.Prepare("SELECT v FROM caps_t WHERE id = ?")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	var v string
	if err := stmt.QueryRow(1).Scan(&v); err != nil || v != "one" {
		t.Fatalf("before the switchover: %q, %v", v, err)
	}

	if err := p.Route("b"); err != nil {
		t.Fatal(err)
	}
	after := c.execute(sel)
	if port := c.query("SELECT @@port"); !bytes.Contains(port[len(port)-2], []byte(fmt.Sprint(testpair.Port(testpair.B)))) {
		t.Fatalf("the session did not move to b: %q", port)
	}
	// b left the metadata out (it has it from tandem's re-prepare, the
	// same bytes as the client's), and the rows are a's.
	if len(after) != len(again) {
		t.Fatalf("after the move: %q, before %q", after, again)
	}
	for i := range after {
		if !bytes.Equal(after[i], again[i]) {
			t.Fatalf("packet %d after the move %q, before %q (first %q)", i, after[i], again[i], first)
		}
	}
	// b is read-only: the re-prepared bulk insert runs there and gets
	// b's own refusal.
	c.send(bulkInsert(ins, []int64{10, 11}))
	if r := c.readResponse(true); len(r) != 1 {
		t.Fatalf("bulk insert after the move: %q", r)
	} else if e, ok := parseErr(r[0]); !ok || e.Code != mysql.ER_OPTION_PREVENTS_STATEMENT {
		t.Fatalf("bulk insert after the move on read-only b: %q", r)
	}
	if err := stmt.QueryRow(2).Scan(&v); err != nil || v != "two" {
		t.Fatalf("go-sql-driver after the switchover: %q, %v", v, err)
	}
	var name, val string
	if err := gdb.QueryRow("SHOW SESSION STATUS LIKE 'Compression'").Scan(&name, &val); err != nil || val != "ON" {
		t.Fatalf("Compression after the move = %q, %v; want ON", val, err)
	}
}

// A moved statement whose result changed shape on the new node: the node
// leaves out definitions the client does not hold, and tandem closes the
// session with an error rather than relay rows the client would misread.
func TestStaleCachedMetadataAfterMoveClosesSession(t *testing.T) {
	p := startProxy(t, nil)
	defer p.Route("a")
	db := openDB(t, driverConfig(testpair.Addr(testpair.A)))
	mustExec(t, db, "DROP TABLE IF EXISTS caps_s")
	mustExec(t, db, "CREATE TABLE caps_s (id INT PRIMARY KEY, v VARCHAR(20))")
	mustExec(t, db, "INSERT INTO caps_s VALUES (1, 'one')")
	testpair.WaitInSync(t, 30*time.Second)
	t.Cleanup(func() {
		cdb := openDB(t, driverConfig(testpair.Addr(testpair.A)))
		_, _ = cdb.Exec("DROP TABLE IF EXISTS caps_s")
		testpair.WaitInSync(t, 30*time.Second)
	})

	c := dialExt(t, p.addr, mysql.CLIENT_DEPRECATE_EOF, mariadbClientCacheMetadata)
	sel, _ := c.prepare("SELECT * FROM caps_s")
	c.execute(sel)
	// Change the table on b only (not logged, not replicated).
	bdb := testpair.AdminDB(t, testpair.B)
	conn, err := bdb.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"SET SESSION sql_log_bin = 0", "ALTER TABLE app.caps_s MODIFY v VARCHAR(40)"} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := p.Route("b"); err != nil {
		t.Fatal(err)
	}
	c.send([]byte{mysql.COM_STMT_EXECUTE, byte(sel), byte(sel >> 8), byte(sel >> 16), byte(sel >> 24), 0, 1, 0, 0, 0})
	// MariaDB 10.11's b leaves the definitions out (it sent them to
	// tandem's re-prepare), so the client would decode VARCHAR(40) rows
	// with VARCHAR(20) definitions.
	first := c.readOne()
	e, ok := parseErr(first)
	if !ok || e.Code != erConnectionKilled {
		t.Fatalf("execute of a statement whose metadata changed on the new node: %q, want error %d", first, erConnectionKilled)
	}
	if _, _, err := readPacket(c.rw, nil, 0); err == nil {
		t.Fatal("the session stayed open")
	}
}

// The mariadb command-line client (libmariadb: extended capabilities,
// progress reports) with --compress, directly and through tandem.
func TestMariaDBClientCompressed(t *testing.T) {
	p := startProxy(t, nil)
	host, port, _ := net.SplitHostPort(p.addr)
	_, aport, _ := net.SplitHostPort(testpair.Addr(testpair.A))
	run := func(port string, args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		base := []string{"-h", host, "-P", port, "-u" + testpair.AppUser, "-p" + testpair.AppPassword, "--protocol=tcp", "--ssl=0", "--compress", "-D", "app"}
		out, err := exec.CommandContext(ctx, "mariadb", append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("mariadb %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	script := `SHOW SESSION STATUS LIKE 'Compression';
CREATE TABLE IF NOT EXISTS cli_z (id INT PRIMARY KEY, v TEXT);
DELETE FROM cli_z;
INSERT INTO cli_z SELECT seq, REPEAT(CONCAT('v', seq), 50) FROM seq_1_to_2000;
SELECT COUNT(*), SUM(LENGTH(v)), MD5(GROUP_CONCAT(v ORDER BY id)) FROM cli_z;
SELECT id, v FROM cli_z WHERE id IN (1, 777, 2000) ORDER BY id;
SET @x = 5; PREPARE s FROM 'SELECT ? * id FROM cli_z WHERE id < 4 ORDER BY id'; EXECUTE s USING @x;
ALTER TABLE cli_z FORCE;
SELECT REPEAT('z', 300000) = REPEAT('z', 300000) AS same, LENGTH(REPEAT('abc', 100000)) AS len;
DROP TABLE cli_z;`
	direct := run(aport, "-e", script)
	through := run(port, "-e", script)
	if direct != through || !strings.Contains(through, "Compression\tON") {
		t.Fatalf("mariadb --compress output differs:\ndirect:\n%s\ntandem:\n%s", direct, through)
	}
}

// capsCommandCounter is an Observer counting commands by their first byte.
type capsCommandCounter struct {
	nopObserver
	n [256]atomic.Int64
}

func (c *capsCommandCounter) Command(cmd byte, _, _ int, _ time.Duration, _ bool) { c.n[cmd].Add(1) }

const connectorJBatch = `import java.sql.*;
public class Batch {
  public static void main(String[] a) throws Exception {
    try (Connection c = DriverManager.getConnection("jdbc:mariadb://" + a[0] + "/app?user=app&password=" + a[1] + a[2])) {
      try (Statement s = c.createStatement()) {
        s.execute("CREATE TABLE IF NOT EXISTS cj_t (id INT PRIMARY KEY, v VARCHAR(20))");
        s.execute("DELETE FROM cj_t");
      }
      try (PreparedStatement p = c.prepareStatement("INSERT INTO cj_t VALUES (?, ?)")) {
        for (int i = 0; i < 100; i++) { p.setInt(1, i); p.setString(2, "v" + i); p.addBatch(); }
        int[] r = p.executeBatch();
        System.out.println("batch " + r.length + " " + r[0] + " " + r[99]);
      }
      try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
          "SELECT COUNT(*), SUM(id), (SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'COMPRESSION') FROM cj_t")) {
        rs.next();
        System.out.println("rows " + rs.getInt(1) + " " + rs.getLong(2) + " compression " + rs.getString(3));
      }
    }
  }
}
`

// MariaDB Connector/J (Debian's 2.7) runs a batch of 100 inserts as one
// COM_STMT_BULK_EXECUTE through tandem, as directly; compressed too.
func TestConnectorJBatchIsOneBulkExecute(t *testing.T) {
	const jar = "/usr/share/java/mariadb-java-client.jar"
	if _, err := os.Stat(jar); err != nil {
		t.Fatalf("MariaDB Connector/J is not installed (apt-get install libmariadb-java): %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Batch.java"), []byte(connectorJBatch), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "javac", "-cp", jar, "-d", dir, filepath.Join(dir, "Batch.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	obs := &capsCommandCounter{}
	p := startProxy(t, func(c *Config, _ []*Node) {
		c.Observer = obs
		c.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: testWriter{t}})
	})
	run := func(addr, opts string) string {
		out, err := exec.CommandContext(ctx, "java", "-cp", jar+":"+dir, "Batch", addr, testpair.AppPassword, opts).CombinedOutput()
		if err != nil {
			t.Fatalf("java Batch %s%s: %v\n%s", addr, opts, err, out)
		}
		return string(out)
	}
	// Debian's Connector/J 2.7 uses bulk execute when asked
	// (useBulkStmts); 3.x does by default.
	for _, opts := range []string{"&useBulkStmts=true", "&useBulkStmts=true&useCompression=true"} {
		direct := run(testpair.Addr(testpair.A), opts)
		before := obs.n[comStmtBulkExecute].Load()
		execs := obs.n[mysql.COM_STMT_EXECUTE].Load()
		through := run(p.addr, opts)
		if direct != through || !strings.Contains(through, "rows 100 4950") {
			t.Fatalf("Connector/J%s:\ndirect:\n%s\ntandem:\n%s", opts, direct, through)
		}
		if n := obs.n[comStmtBulkExecute].Load() - before; n != 1 || obs.n[mysql.COM_STMT_EXECUTE].Load() != execs {
			t.Fatalf("Connector/J%s: %d bulk executes and %d executes through tandem; want one bulk execute", opts,
				n, obs.n[mysql.COM_STMT_EXECUTE].Load()-execs)
		}
		t.Logf("Connector/J%s: %s", opts, strings.ReplaceAll(strings.TrimSpace(through), "\n", "; "))
	}
	if !strings.Contains(run(p.addr, "&useBulkStmts=true&useCompression=true"), "compression ON") {
		t.Fatal("Compression is not ON through tandem for a compressed Connector/J session")
	}
}

const phpCompressed = `<?php
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
[$_, $host, $port, $pass, $flags] = $argv;
$m = mysqli_init();
$m->real_connect($host, 'app', $pass, 'app', (int)$port, null, (int)$flags);
$r = $m->query("SHOW SESSION STATUS LIKE 'Compression'"); echo implode(' ', $r->fetch_row()), "\n";
$m->query("CREATE TEMPORARY TABLE pz (id INT PRIMARY KEY, v TEXT)");
$s = $m->prepare("INSERT INTO pz VALUES (?, ?)");
for ($i = 0; $i < 300; $i++) { $v = str_repeat("v$i", 40); $s->bind_param('is', $i, $v); $s->execute(); }
$s->close();
$s = $m->prepare("SELECT id, v FROM pz WHERE id >= ? ORDER BY id");
$lo = 250; $s->bind_param('i', $lo); $s->execute(); $res = $s->get_result();
$n = 0; $h = ''; while ($row = $res->fetch_row()) { $n++; $h = md5($h . $row[0] . $row[1]); } echo "rows $n $h\n";
$r = $m->query("SELECT REPEAT('x', 2000000) AS big, CONNECTION_ID() = " . $m->thread_id . " AS sameid");
$row = $r->fetch_row(); echo strlen($row[0]), " sameid ", $row[1], "\n";
$m->multi_query("SELECT 1; SELECT 2, 3");
do { if ($res = $m->store_result()) { echo implode(',', $res->fetch_row()), "\n"; } } while ($m->next_result());
`

// PHP's mysqli (mysqlnd) with MYSQLI_CLIENT_COMPRESS, directly and
// through tandem.
func TestPHPMysqliCompressed(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "z.php")
	if err := os.WriteFile(script, []byte(phpCompressed), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, nil)
	run := func(addr string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		host, port, _ := net.SplitHostPort(addr)
		out, err := exec.CommandContext(ctx, "php", script, host, port, testpair.AppPassword, "32").CombinedOutput() // 32: MYSQLI_CLIENT_COMPRESS
		if err != nil {
			t.Fatalf("php %s: %v\n%s", addr, err, out)
		}
		return string(out)
	}
	direct, through := run(testpair.Addr(testpair.A)), run(p.addr)
	if direct != through || !strings.HasPrefix(through, "Compression ON\nrows 50 ") || !strings.Contains(through, "sameid 1") {
		t.Fatalf("php mysqli compressed:\ndirect:\n%s\ntandem:\n%s", direct, through)
	}
}

// A failover (node a SIGKILLed, traffic routed to b) while compressed
// sessions hold prepared statements with cached metadata.
func TestNodeKillWithCompressedCachedMetadataSessions(t *testing.T) {
	p := startProxy(t, nil)
	setupCapsTable(t)
	db := openDB(t, driverConfig(testpair.Addr(testpair.A)))
	mustExec(t, db, "INSERT INTO caps_t (id, v) VALUES (1, 'one'), (2, 'two')")
	testpair.WaitInSync(t, 30*time.Second)
	t.Cleanup(func() { testpair.Reset(t) })

	c := dialExt(t, p.addr, mysql.CLIENT_COMPRESS, allExt) // EOF packets, not DEPRECATE_EOF
	sel, _ := c.prepare("SELECT id, v FROM caps_t ORDER BY id")
	c.execute(sel)
	before := c.execute(sel)
	dc := driverConfig(p.addr)
	dc.Apply(driver.EnableCompression(true))
	gdb := openDB(t, dc)
	gdb.SetMaxOpenConns(1)
	stmt, err := gdb.Prepare("SELECT v FROM caps_t WHERE id = ?")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	var v string
	if err := stmt.QueryRow(1).Scan(&v); err != nil || v != "one" {
		t.Fatalf("before the failover: %q, %v", v, err)
	}

	testpair.Kill(t, testpair.A)
	if err := p.Route("b"); err != nil {
		t.Fatal(err)
	}
	after := c.execute(sel)
	if len(after) != len(before) {
		t.Fatalf("after the failover: %q, before %q", after, before)
	}
	for i := range after {
		if !bytes.Equal(after[i], before[i]) {
			t.Fatalf("packet %d after the failover %q, before %q", i, after[i], before[i])
		}
	}
	if r := c.query("SELECT @@port"); !bytes.Contains(r[len(r)-2], []byte(fmt.Sprint(testpair.Port(testpair.B)))) {
		t.Fatalf("not on b: %q", r)
	}
	if err := stmt.QueryRow(2).Scan(&v); err != nil || v != "two" {
		t.Fatalf("go-sql-driver after the failover: %q, %v", v, err)
	}
	var name, val string
	if err := gdb.QueryRow("SHOW SESSION STATUS LIKE 'Compression'").Scan(&name, &val); err != nil || val != "ON" {
		t.Fatalf("Compression after the failover = %q, %v; want ON", val, err)
	}
}

// With settling on, a transaction of prepared statements is marked by a
// SAVEPOINT sent in the same write as its COMMIT: on a compressed link
// both go in one compressed packet, and the COMMIT's answer still reaches
// the client as the node's, numbered as the client counts.
func TestCompressedMarkedCommit(t *testing.T) {
	p := startProxy(t, func(c *Config, _ []*Node) {
		c.Settle = func(context.Context, SettleRequest) SettleResult { return SettleResult{Why: "not used"} }
	})
	setupCapsTable(t)
	dc := driverConfig(p.addr)
	dc.Apply(driver.EnableCompression(true))
	db := openDB(t, dc)
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	for i := range 20 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		stmt, err := tx.Prepare("INSERT INTO caps_t (id, v) VALUES (?, ?)")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stmt.Exec(100+i, strings.Repeat("v", 20)); err != nil {
			t.Fatal(err)
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			t.Fatalf("COMMIT %d: %v", i, err)
		}
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM caps_t WHERE id >= 100").Scan(&n); err != nil || n != 20 {
		t.Fatalf("rows: %d, %v", n, err)
	}
	// The savepoints were logged: the transactions were marked.
	var events int
	adb := testpair.AdminDB(t, testpair.A)
	var file string
	var pos int64
	var doDB, ignoreDB sql.NullString
	if err := adb.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &doDB, &ignoreDB); err != nil {
		t.Fatal(err)
	}
	rows, err := adb.Query("SHOW BINLOG EVENTS IN '" + file + "'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(vals[len(vals)-1], []byte("SAVEPOINT `tandem_")) {
			events++
		}
	}
	if events < 20 {
		t.Fatalf("%d marking savepoints in the binlog, want at least 20", events)
	}
}
