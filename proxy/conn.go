package proxy

// The client session's command phase: the command/response state machine
// that relays each command to the node and knows where each response ends.
// This is the only file that follows the command phase; the connection
// phase (greeting, TLS, authentication, COM_CHANGE_USER) is handshake.go.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

const (
	// clientBufSize is the size of the client read buffer a session
	// borrows from clientBufs while a command arrives; an idle session
	// holds none (session.waitCommand).
	clientBufSize = 8 << 10
	// firstReadSize is what an idle session reads of the client's next
	// command into its own small array before borrowing a buffer: most
	// commands (a point SELECT, a prepared statement's execution, an
	// INSERT of a few rows) fit, so a command costs one read(2) as before.
	firstReadSize = 512
	// relayBufSize is the size of the pooled buffers a session borrows for
	// the length of one command.
	relayBufSize = 64 << 10
)

// session is one client connection and its node connection.
type session struct {
	p      *Proxy
	id     uint32
	raw    net.Conn      // the accepted connection (under TLS, if any)
	rawIO  io.ReadWriter // raw's own reads and writes (rawio.go)
	client net.Conn
	cio    io.ReadWriter // client's reads and writes after the handshake (rawio.go)
	crd    *clientReader // under cr: bounds reads inside a command
	cwr    *clientWriter // every write to the client after the handshake
	cr     *bufio.Reader
	caps   uint32 // negotiated with the client
	user   string
	pass   string
	stage1 []byte // SHA1(password) of a node account (accounts.go), else nil

	// extCaps are MariaDB's extended capabilities negotiated with the
	// client (packet.go, supportedExtCaps).
	extCaps uint32

	// greetID is the connection id of the greeting: the node thread id
	// of the session's first node connection, or pooledGreetID when
	// tandem greeted the client itself (pool.go).
	greetID uint32
	salt    []byte
	// relayable: the client is answering the node's own scramble (the
	// greeting came from the node connection opened at accept), so the
	// node can authenticate it itself (authRelay).
	relayable bool
	// relogin says why the session cannot be logged in on another node
	// ("" if it can): the node authenticated it itself.
	relogin string
	hdr     [headerLen]byte

	mu     sync.Mutex // guards be against closeConns from other goroutines
	be     *backend
	closed atomic.Bool
	// killed is the node thread id another session's KILL CONNECTION is
	// ending (set before tandem sends the KILL): when that node
	// connection then closes, the node did not fail (nodeFailed).
	killed atomic.Uint32

	facts    Facts
	snapshot *Facts // a copy of facts for tests, under mu (Proxy.snapshotFacts)
	attrs    []byte // the client's connection attributes, for new logins

	// route is the route the session's node connection follows; broken
	// is set when that connection failed and must be replaced.
	route   *route
	broken  bool
	lastCmd time.Time
	// stmts maps the client's statement ids to the node's once the
	// session has moved (nil until then: the ids are the node's).
	stmts    map[uint32]uint32
	nextStmt uint32
	// lastStmt is the client's id of the statement prepared last (0:
	// none, or its prepare failed), which MariaDB's statement id
	// 0xffffffff names; execStmt is the client's id of the statement the
	// command in flight executes.
	lastStmt, execStmt uint32
	// meta follows the column definitions each prepared statement's
	// client holds, with MARIADB_CLIENT_CACHE_METADATA (cachedmeta.go);
	// nil otherwise.
	meta map[uint32]stmtMeta

	mark txMark // markers for settling outcomes (settle.go)

	busy atomic.Bool // running a command (read by Sessions)
	// cmdStart is when the command in flight was read (UnixNano), 0
	// between commands: the watcher checks the client of a long one
	// (watch.go).
	cmdStart atomic.Int64
	inTx     atomic.Bool // facts.InTransaction, for other goroutines

	// Captures of the session's state before a planned move
	// (uservars.go): wantCapture mirrors facts.needsCapture; claim says
	// who uses the node connection; capDone and capture are under mu.
	wantCapture atomic.Bool
	cut         atomic.Bool // Cut interrupted the node connection
	claim       atomic.Int32
	capDone     chan struct{}
	capture     *captured

	// Under Proxy.mu: when the connection was accepted, whether it passed
	// the password check (counts against MaxConnections), and whether it
	// was closed to make room for a newer handshake.
	accepted time.Time
	admitted bool
	evicted  atomic.Bool
	greeted  atomic.Bool // the greeting was sent
	answered atomic.Bool // the client answered the greeting
}

// clientReader is what the session's buffered reader reads the client
// through. While armed (the rest of a command, or a LOCAL INFILE file, is
// on its way), every read must complete within timeout, as MySQL's
// net_read_timeout: a client that stops mid-command is cut, one that keeps
// sending slowly is not. Unarmed, it costs one branch per read.
type clientReader struct {
	conn    net.Conn
	r       io.Reader
	timeout time.Duration
	armed   bool
	// wait is the idle state (idleRunning, idleWaiting, idleParked,
	// idleParking) that parkIdle (idlemem.go) reads from other goroutines.
	wait atomic.Int32
	// trim is the proxy's, whose parkIdle may interrupt waitFirst (nil:
	// never parked).
	trim *idleTrim
	// pending is what waitFirst read and no Read has returned yet, in
	// first, an array from firstBufs (nil when pending is empty).
	pending []byte
	first   *[firstReadSize]byte
}

// clientReader.wait states.
const (
	idleRunning int32 = iota // not waiting for a command (or not parkable)
	idleWaiting              // blocked in waitFirst, parkable
	idleParked               // blocked in waitFirst on a resumed goroutine: parked already
	idleParking              // parkIdle is interrupting waitFirst
)

func (c *clientReader) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.dropFirst()
		}
		return n, nil
	}
	if c.armed {
		_ = c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
	return c.r.Read(p)
}

// dropFirst returns the first-read array to firstBufs.
func (c *clientReader) dropFirst() {
	if c.first != nil {
		firstBufs.Put(c.first)
		c.first, c.pending = nil, nil
	}
}

// errParked ends a session goroutine whose idle wait parkIdle interrupted:
// the session waits on a new goroutine (Proxy.runCommands).
var errParked = errors.New("idle session parked")

// waitFirst waits, without a deadline, for the start of the client's next
// command and keeps what arrives for the next Reads. On a plain socket it
// holds no buffer while it waits (rawIO.readFirst) and, in state idleWaiting,
// parkIdle may interrupt it (errParked); under TLS or compression it holds a
// pooled array while it waits (crypto/tls keeps its own record buffer
// anyway). state is idleWaiting, or idleParked on a resumed goroutine.
func (c *clientReader) waitFirst(state int32) error {
	var (
		first *[firstReadSize]byte
		n     int
		err   error
	)
	if rio, ok := c.r.(*rawIO); ok {
		c.wait.Store(state)
		first, n, err = rio.readFirst()
		if !c.wait.CompareAndSwap(state, idleRunning) {
			// parkIdle set a read deadline in the past (or is about
			// to): wait until it has, then clear it.
			c.trim.parkMu.Lock()
			_ = c.conn.SetReadDeadline(time.Time{})
			c.wait.Store(idleRunning)
			c.trim.parkMu.Unlock()
			if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				return errParked // resumeSession counts it moved
			}
			c.trim.moving.Add(-1) // the command came first: not parked
		}
	} else {
		first = firstBufs.Get().(*[firstReadSize]byte)
		n, err = c.r.Read(first[:])
	}
	c.first = first
	if n > 0 {
		c.pending = c.first[:n]
		return nil // an error comes back on the next read
	}
	c.dropFirst()
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// clientBufs holds the client read buffers of sessions that are not idle.
var clientBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, clientBufSize) }}

// waitCommand waits for the client's next command while holding no read
// buffer: an idle session costs its small structs and its goroutine only.
// s.cr must hold no bytes. It does not wait when resumeSession already
// did.
func (s *session) waitCommand() error {
	s.releaseClientBuf()
	if len(s.crd.pending) == 0 {
		if err := s.crd.waitFirst(idleWaiting); err != nil {
			return err
		}
	}
	s.borrowClientBuf()
	return nil
}

// borrowClientBuf gives the session a client read buffer.
func (s *session) borrowClientBuf() {
	s.cr = clientBufs.Get().(*bufio.Reader)
	s.cr.Reset(s.crd)
	s.p.clientBufsHeld.Add(1)
}

// releaseClientBuf returns the session's client read buffer, if it holds
// one.
func (s *session) releaseClientBuf() {
	if s.cr != nil {
		s.cr.Reset(nil)
		clientBufs.Put(s.cr)
		s.cr = nil
		s.p.clientBufsHeld.Add(-1)
	}
}

func (c *clientReader) disarm() {
	c.armed = false
	_ = c.conn.SetReadDeadline(time.Time{})
}

// clientWriter is what the session writes the client through. Every write
// must complete within timeout, as MariaDB's net_write_timeout: a client
// that stops reading is cut. since tells other goroutines (Activity) how
// long the write in progress has been waiting for the client.
type clientWriter struct {
	conn    net.Conn
	w       io.Writer
	timeout time.Duration
	since   atomic.Int64 // UnixNano when the write in progress began; 0 when none
}

func (c *clientWriter) Write(p []byte) (int, error) {
	now := time.Now()
	_ = c.conn.SetWriteDeadline(now.Add(c.timeout))
	c.since.Store(now.UnixNano())
	n, err := c.w.Write(p)
	c.since.Store(0)
	if err != nil {
		err = fmt.Errorf("%w: %w", errClientGone, err)
	}
	return n, err
}

// errClientGone marks a failed write to the client, or a failed read in the
// middle of its LOCAL INFILE upload: the client's failure, not the node's.
var errClientGone = errors.New("client connection failed")

// stuck reports whether a write to the client has been waiting for longer
// than d at time now.
func (c *clientWriter) stuck(now time.Time, d time.Duration) bool {
	since := c.since.Load()
	return since != 0 && now.UnixNano()-since > int64(d)
}

// relay holds the buffers a session borrows for one command.
type relay struct {
	br *bufio.Reader // from the node
	bw *bufio.Writer // to the node
	cw *bufio.Writer // to the client
	// wrote is set once any byte of the response was handed to cw: after
	// that, a failure cannot be reported as a clean ERR packet.
	wrote bool
	// out counts bytes sent to the client; failed is set when the last
	// packet was an ERR (for the Observer).
	out    int
	failed bool
	// commit is set while the command is a COMMIT (its failure has an
	// unknown outcome); mayCommit while it is any statement that may
	// commit the open transaction (mayEndTransaction).
	commit, mayCommit bool
	// sandboxed: the node answered 1820, "You must SET PASSWORD" (expired.go).
	sandboxed bool
	// progress: the session negotiated MARIADB_CLIENT_PROGRESS, so an
	// ERR with code 0xffff is a progress report, not the end of a response.
	progress bool
	// seq follows a compressed client's numbering (compress.go).
	seq seqShift
	// hdr holds packet headers read from the node (a field, so that it
	// does not escape to the heap on every packet).
	hdr [headerLen]byte
}

var relayPool = sync.Pool{New: func() any {
	return &relay{
		br: bufio.NewReaderSize(nil, relayBufSize),
		bw: bufio.NewWriterSize(nil, relayBufSize),
		cw: bufio.NewWriterSize(nil, relayBufSize),
	}
}}

func (s *session) getRelay() *relay {
	r := relayPool.Get().(*relay)
	r.br.Reset(s.be.rw)
	r.bw.Reset(s.be.rw)
	r.cw.Reset(s.cwr)
	r.wrote = false
	r.out, r.failed, r.commit, r.mayCommit, r.sandboxed = 0, false, false, false, false
	r.progress = s.extCaps&mariadbClientProgress != 0
	r.seq.start(s)
	return r
}

// putRelay returns r to the pool. After a complete response (ended), a
// node that sent bytes beyond its end is out of step with us: its connection
// is closed.
func (s *session) putRelay(r *relay, ended bool) {
	if ended && r.br.Buffered() > 0 {
		s.p.log.Error("node sent data after the end of a response; closing session", "session", s.id, "node", s.be.node.Name)
		s.closeConns()
	}
	r.br.Reset(nil)
	r.bw.Reset(nil)
	r.cw.Reset(nil)
	relayPool.Put(r)
}

// closeConns closes both connections; the session's goroutine then ends.
// Safe from any goroutine.
func (s *session) closeConns() {
	if s.closed.Swap(true) {
		return
	}
	s.mu.Lock()
	client, be := s.client, s.be // the handshake may switch client to TLS
	s.mu.Unlock()
	_ = client.Close()
	if be != nil {
		_ = be.closeSocket()
	}
}

// serveConn runs one client connection's handshake, then hands the session
// to a goroutine of its own (serveSession). Go's TCP sockets come with
// TCP_NODELAY set.
func (p *Proxy) serveConn(conn net.Conn) {
	s := &session{p: p, raw: conn, client: conn, accepted: time.Now()}
	// The handshake reads and writes through the same raw I/O and pooled
	// read buffer as the command phase (rawio.go).
	s.cio = newConnIO(conn)
	s.rawIO = s.cio
	s.crd = &clientReader{conn: conn, r: s.cio, timeout: p.cfg.NetReadTimeout, trim: &p.trim}
	s.cwr = &clientWriter{conn: conn, w: s.cio, timeout: p.cfg.NetWriteTimeout}
	s.borrowClientBuf()
	// Every byte of the handshake, TLS included, within HandshakeTimeout.
	_ = conn.SetDeadline(s.accepted.Add(p.cfg.HandshakeTimeout))
	if !p.register(s, s.accepted.Add(p.cfg.HandshakeTimeout/2)) {
		_ = writeRaw(s.cio, 0, appendErr(nil, newError(erConCount, "Too many connections")))
		p.cfg.Observer.HandshakeFailed("limit")
		p.log.Warn("connection refused: too many connections", "remote", conn.RemoteAddr(),
			"max_connections", p.cfg.MaxConnections, "max_handshakes", p.cfg.MaxHandshakes)
		s.releaseClientBuf()
		_ = conn.Close()
		return
	}
	if err := s.handshake(); err != nil {
		if s.evicted.Load() {
			p.log.Info("connection still logging in closed to make room for a new one", "session", s.id,
				"remote", conn.RemoteAddr(), "max_handshakes", p.cfg.MaxHandshakes)
			p.cfg.Observer.HandshakeFailed("limit")
		} else {
			p.log.Info("handshake failed", "session", s.id, "remote", conn.RemoteAddr(), "error", err)
			p.cfg.Observer.HandshakeFailed(handshakeFailure(err))
		}
		p.unregister(s)
		s.releaseClientBuf()
		_ = conn.Close()
		return
	}
	// The session runs on a new goroutine, which starts with a small
	// stack: the handshake's calls (dialing, TLS, password hashes) grew
	// this one's, and the runtime shrinks the stack of an idle goroutine
	// only at a garbage collection, which an idle proxy seldom runs.
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.serveSession(s)
	}()
}

// serveSession runs a logged-in session's command phase until it ends.
func (p *Proxy) serveSession(s *session) {
	p.cfg.Observer.SessionOpened()
	_ = s.client.SetDeadline(time.Time{})
	if p.log.IsDebug() {
		p.log.Debug("session started", "session", s.id, "user", s.user, "node", s.be.node.Name, "backend_thread", s.be.threadID)
	}
	// The node connection was logged in a moment ago: the first command
	// needs no idle check (checkRoute).
	s.lastCmd = time.Now()
	p.trim.sessionStarted(p) // idlemem.go
	p.runCommands(s, nil)
}

// resumeSession goes on with a session parked by parkIdle, on a new
// goroutine: its wait for the next command runs in a few small frames, on
// the smallest stack the runtime gives a goroutine, until the command
// arrives.
func (p *Proxy) resumeSession(s *session) {
	p.trim.moving.Add(-1)
	p.runCommands(s, s.crd.waitFirst(idleParked))
}

// runCommands runs the session's commands (after waitErr, the result of a
// wait resumeSession did) until the session ends, or hands it to a new
// goroutine when parkIdle parks it. Not inlined: resumeSession's frame
// must stay small.
//
//go:noinline
func (p *Proxy) runCommands(s *session, waitErr error) {
	err := waitErr
	if err == nil {
		err = s.commandLoop()
	} else if errors.Is(err, io.EOF) {
		err = nil
	}
	if err == errParked {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.resumeSession(s)
		}()
		return
	}
	p.endSession(s, err)
}

// endSession ends a session after its last command.
func (p *Proxy) endSession(s *session, err error) {
	defer closeConn(s.raw, s.rawIO)
	defer p.unregister(s)
	defer s.releaseClientBuf()
	defer p.cfg.Observer.SessionClosed()
	if !s.release(err) { // pool.go
		s.mu.Lock()
		s.be.close()
		s.mu.Unlock()
	}
	if err != nil && !s.closed.Load() {
		p.log.Info("session closed", "session", s.id, "error", err)
	}
}

// okStatus returns the status flags of an OK packet payload (header 0x00
// or, with CLIENT_DEPRECATE_EOF, 0xfe), or 0 if it is malformed.
func okStatus(p []byte, caps uint32) uint16 {
	_, pos, ok := lenEncInt(p, 1)
	if !ok {
		return 0
	}
	_, pos, ok = lenEncInt(p, pos)
	if !ok || pos+2 > len(p) {
		return 0
	}
	return binary.LittleEndian.Uint16(p[pos:])
}

// eofStatus returns the status flags of an EOF packet payload.
func eofStatus(p []byte) uint16 {
	if len(p) < 5 {
		return 0
	}
	return binary.LittleEndian.Uint16(p[3:])
}

// terminatorStatus returns the status flags of the packet that ends a row
// or column list: EOF, or with CLIENT_DEPRECATE_EOF an OK with header 0xfe.
func (s *session) terminatorStatus(p []byte) uint16 {
	if s.caps&mysql.CLIENT_DEPRECATE_EOF != 0 {
		return okStatus(p, s.caps)
	}
	return eofStatus(p)
}

// isTerminator reports whether a packet with this first byte and length ends
// a row list. A row can start with 0xfe only if it is at least 2^24 bytes
// long; an EOF is under 9 bytes, an OK-as-EOF under 2^24.
func (s *session) isTerminator(first byte, length int) bool {
	if first != 0xfe {
		return false
	}
	if s.caps&mysql.CLIENT_DEPRECATE_EOF != 0 {
		return length < maxPayload
	}
	return length < 9
}

// errClientProtocol marks a session closed for a client's protocol error.
var errClientProtocol = errors.New("client protocol error")

// commandLoop reads commands until the client quits or a connection fails.
// It waits for each in its own small frame: the stack an idle session uses
// stays under 1 KiB, which keeps the runtime's starting stack size for new
// goroutines (the average use at the last collection, rounded up to a power
// of two after adding a guard) at 2 KiB while most sessions are idle.
func (s *session) commandLoop() error {
	for {
		if s.cr == nil || s.cr.Buffered() == 0 { // nil: resumeSession
			if err := s.waitCommand(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
		if quit, err := s.oneCommand(); quit || err != nil {
			return err
		}
	}
}

// oneCommand runs the command that has begun to arrive; quit is set on
// COM_QUIT and at the end of the client's input. Not inlined: its frame is
// large and must not be on the stack while the session waits.
//
//go:noinline
func (s *session) oneCommand() (quit bool, err error) {
	length, seq, err := readHeader(s.cr, &s.hdr)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		return false, err
	}
	if seq != 0 && s.caps&mysql.CLIENT_COMPRESS == 0 {
		// On a compressed link the compressed header carries the
		// checked number; a node does not check the packets' own
		// (Connector/J numbers a command after a COM_STMT_CLOSE
		// from 1), so tandem does not either.
		return false, fmt.Errorf("%w: command packet with sequence id %d", ErrPacketSequence, seq)
	}
	if length == 0 {
		return false, fmt.Errorf("%w: empty command packet", errClientProtocol)
	}
	b, err := s.cr.Peek(1)
	if err != nil {
		return false, err
	}
	if b[0] == mysql.COM_QUIT {
		return true, nil
	}
	cmd := b[0]
	start := time.Now()
	// A command whose body is not all here yet must arrive within
	// NetReadTimeout: a client that stops mid-packet is cut, as
	// MySQL's net_read_timeout does. Small commands never pay for it.
	partial := length > s.cr.Buffered()
	s.crd.armed = partial
	s.busy.Store(true)
	if s.cr.Buffered()+len(s.crd.pending) <= length {
		// Nothing of a next command is here: the watcher may check
		// the client while this one runs (watch.go). One that sent
		// more (pipelining) has not left.
		s.cmdStart.Store(start.UnixNano())
	}
	s.claimConn()
	r := s.getRelay()
	handled, err := s.checkRoute(r, cmd, length, start)
	if !handled && err == nil {
		if s.p.settle != nil {
			s.beginCommand(cmd)
		}
		newCommandOn(s.be.rw) // a compressed node link counts from 0 again
		err = s.command(r, cmd, length)
		if s.p.settle != nil && err == nil {
			s.endCommand(r.failed)
		}
		if errors.Is(err, ErrPacketTooLarge) && !r.wrote {
			// Say why before closing (clientPayload skipped the
			// packet, so the client now reads).
			_ = queueErr(r.cw, s.replySeq(), newError(erNetPacketTooLarge,
				"Got a packet bigger than tandem's max_packet (%d bytes)", s.p.cfg.MaxPacket))
		}
	}
	// The command is over on the node: publish what it changed
	// before the client can see the end of the response, so that
	// whoever acts on the client's next step (a switchover, a test)
	// finds the facts up to date.
	s.inTx.Store(s.facts.InTransaction)
	s.wantCapture.Store(s.facts.needsCapture())
	if s.p.snapshotFacts {
		s.mu.Lock()
		c := s.facts.clone()
		s.snapshot = &c
		s.mu.Unlock()
	}
	s.claim.Store(claimIdle)
	s.cmdStart.Store(0)
	s.busy.Store(false)
	// The end of the response (the command functions leave it in
	// cw), even after an error: it may be the ERR saying why the
	// session ends.
	if ferr := r.cw.Flush(); err == nil {
		err = ferr
	}
	out, failed := r.out, r.failed || handled
	if r.sandboxed {
		s.noteExpired(true)
	}
	s.putRelay(r, err == nil)
	if partial {
		s.crd.disarm()
	}
	s.lastCmd = time.Now()
	s.p.cfg.Observer.Command(cmd, headerLen+length, out, s.lastCmd.Sub(start), failed)
	return false, err
}

// command relays one command whose header is in s.hdr and whose first
// payload byte is cmd.
func (s *session) command(r *relay, cmd byte, length int) error {
	switch cmd {
	case mysql.COM_QUERY:
		return s.query(r, length)
	case mysql.COM_STMT_EXECUTE, comStmtBulkExecute:
		// A bulk execute (MariaDB) is answered as an execute: OK, ERR,
		// or result sets (RETURNING, unit results).
		s.execStmt, _ = s.mapStmt(length)
		return s.forward(r, length, s.readResults, true)
	case mysql.COM_STMT_PREPARE:
		return s.prepare(r, length)
	case mysql.COM_STMT_FETCH:
		s.mapStmt(length)
		return s.forward(r, length, s.readRows, true)
	case mysql.COM_STMT_CLOSE:
		if id, ok := s.mapStmt(length); ok {
			s.facts.noteStmtClose(id)
			delete(s.stmts, id)
			delete(s.meta, id)
			if id == s.lastStmt {
				s.lastStmt = 0
			}
		}
		return s.forward(r, length, nil, false)
	case mysql.COM_STMT_SEND_LONG_DATA:
		s.mapStmt(length)
		return s.forward(r, length, nil, false)
	case mysql.COM_STMT_RESET:
		s.mapStmt(length)
		return s.forward(r, length, s.readOne, false)
	case mysql.COM_SET_OPTION:
		return s.setOption(r, length)
	case mysql.COM_PING, mysql.COM_DEBUG, mysql.COM_REFRESH, mysql.COM_SHUTDOWN:
		return s.forward(r, length, s.readOne, false)
	case mysql.COM_STATISTICS:
		return s.forward(r, length, s.readOne, false)
	case mysql.COM_PROCESS_INFO:
		return s.forward(r, length, s.readResults, false)
	case mysql.COM_FIELD_LIST:
		return s.forward(r, length, s.readRows, false)
	case mysql.COM_INIT_DB:
		body, err := s.clientPayload(length)
		if err != nil {
			return err
		}
		db := string(body[1:])
		return s.sendToNode(r, body, func(r *relay, binary bool) error {
			ok, err := s.readOneOK(r)
			if ok {
				s.facts.Schema = db
			}
			return err
		})
	case mysql.COM_RESET_CONNECTION:
		return s.forward(r, length, func(r *relay, binary bool) error {
			ok, err := s.readOneOK(r)
			if ok {
				s.facts.reset(s.facts.Schema, s.facts.Collation)
				if s.stmts != nil {
					s.stmts = map[uint32]uint32{}
				}
				s.forgetStmts()
			}
			return err
		}, false)
	case mysql.COM_PROCESS_KILL:
		body, err := s.clientPayload(length)
		if err != nil {
			return err
		}
		if len(body) < 5 {
			return fmt.Errorf("%w: short COM_PROCESS_KILL", errClientProtocol)
		}
		return s.kill(r, "", binary.LittleEndian.Uint32(body[1:]))
	case mysql.COM_CHANGE_USER:
		return s.changeUser(r, length)
	case mysql.COM_BINLOG_DUMP, mysql.COM_BINLOG_DUMP_GTID, mysql.COM_REGISTER_SLAVE, mysql.COM_TABLE_DUMP:
		if err := s.discardClient(length); err != nil {
			return err
		}
		return s.replyErr(r, newError(erNotSupportedYet, "tandem does not relay replication commands; connect a replica to a node directly"))
	default:
		if err := s.discardClient(length); err != nil {
			return err
		}
		return s.replyErr(r, newError(erUnknownCom, "Unknown command 0x%02x", cmd))
	}
}

// responseFunc reads one whole response from the node, relaying it.
type responseFunc func(r *relay, binary bool) error

// forward relays the client's command packet (header in s.hdr) to the node
// unchanged, then its response. resp is nil for commands without one.
func (s *session) forward(r *relay, length int, resp responseFunc, binary bool) error {
	if _, _, err := relayBody(r.bw, s.cr, &s.hdr, length); err != nil {
		// Part of a large command may be unread: the session cannot go on.
		return fmt.Errorf("relaying a command to node %s: %w", s.be.node.Name, err)
	}
	if err := r.bw.Flush(); err != nil {
		if resp == nil {
			s.broken = true
			return nil
		}
		return s.nodeFailed(r, err)
	}
	if resp == nil {
		return nil
	}
	return s.finish(r, resp(r, binary))
}

// lastPreparedID is MariaDB's statement id for "the statement this
// connection prepared last" (a prepare and its execute sent together).
const lastPreparedID = 0xffffffff

// unknownStmt is a statement id no node hands out (they count up from 1),
// which the node answers with "unknown prepared statement handler"
// (1243). Not 0xffffffff: MariaDB reads that as "the statement prepared
// last".
const unknownStmt = 0xfffffffe

// mapStmt rewrites, in the client reader's buffer, the statement id of the
// COM_STMT_* packet about to be relayed from the client's id to the node's,
// and returns the client's id (lastPreparedID resolved to the client's last
// prepared statement). After a move, lastPreparedID becomes the node's id of
// that statement: the node's own "last" is whatever tandem re-prepared last.
// The bytes are still unread (Peek), so the relay then copies the rewritten
// packet.
func (s *session) mapStmt(length int) (clientID uint32, ok bool) {
	if length < 5 {
		return 0, false
	}
	b, err := s.cr.Peek(5)
	if err != nil {
		return 0, false
	}
	clientID = binary.LittleEndian.Uint32(b[1:])
	last := clientID == lastPreparedID
	if last {
		clientID = s.lastStmt
	}
	if s.stmts != nil { // 0 (no statement prepared last) maps to unknownStmt
		id, ok := s.stmts[clientID]
		if !ok {
			// Not a statement of this session's: it must not reach
			// whatever the node has under that number.
			id = unknownStmt
		}
		binary.LittleEndian.PutUint32(b[1:], id)
	}
	return clientID, true
}

// sendToNode sends a command payload tandem holds in memory, then relays
// the response.
func (s *session) sendToNode(r *relay, body []byte, resp responseFunc) error {
	if _, err := writePacket(r.bw, 0, body); err != nil {
		return s.nodeFailed(r, err)
	}
	if err := r.bw.Flush(); err != nil {
		return s.nodeFailed(r, err)
	}
	if resp == nil {
		return nil
	}
	return s.finish(r, resp(r, false))
}

// finish ends a response (commandLoop flushes it), or handles a failure.
func (s *session) finish(r *relay, err error) error {
	if err != nil {
		return s.nodeFailed(r, err)
	}
	return nil
}

// nodeFailed handles a failed exchange with the node. If nothing of the
// response reached the client, it gets exactly one ERR packet and the
// session lives on: its next command moves it to a working node. If part of
// the response was sent, the client connection must be closed.
func (s *session) nodeFailed(r *relay, err error) error {
	if errors.Is(err, errClientProtocol) || errors.Is(err, ErrPacketTooLarge) || errors.Is(err, errClientGone) || errors.Is(err, errStaleMetadata) {
		return err
	}
	node := s.be.node
	if t := s.killed.Load(); t != 0 && t == s.be.threadID {
		// Another session's KILL ended this node connection: the client's
		// connection ends too, with nothing sent, as a MariaDB connection
		// killed in the middle of a statement (the client reports a lost
		// connection); no ERR of tandem's own, no node failure.
		return fmt.Errorf("%w: thread %d on node %s", errKilledOther, t, node.Name)
	}
	if f := s.p.cfg.NodeFailed; f != nil && !s.closed.Load() {
		f(node.Name)
	}
	if r.wrote || s.closed.Load() {
		return fmt.Errorf("node %s failed in the middle of a response: %w", node.Name, err)
	}
	s.broken = true
	var e *sqlError
	switch {
	case s.settleable(r):
		// Wait for the new node and ask it (settle.go).
		if e = s.settleFailed(r, node, err); e == nil {
			s.facts.InTransaction = false
			return nil
		}
	case s.facts.InTransaction && r.commit:
		// The COMMIT may have been applied (and replicated) before the
		// node failed: "retry" could apply the transaction twice.
		e = newError(erInterrupted, "tandem: node %s failed during COMMIT (%v); the transaction may or may not have been committed: check before retrying", node.Name, err)
	case s.facts.InTransaction && r.mayCommit:
		// DDL, BEGIN, SET autocommit = 1, LOCK TABLES, CALL...: it may
		// have committed the transaction (implicitly) before failing.
		e = newError(erInterrupted, "tandem: node %s failed during a statement that commits the open transaction implicitly (%v); the transaction may or may not have been committed: check before retrying", node.Name, err)
	case s.facts.InTransaction:
		e = &sqlError{Code: erTxLost, State: "40001", Message: fmt.Sprintf(
			"tandem: node %s failed during the transaction (%v); the transaction is lost, retry it", node.Name, err)}
	default:
		e = newError(erInterrupted, "tandem: node %s failed while this statement ran (%v); it may or may not have taken effect", node.Name, err)
	}
	s.facts.InTransaction = false
	r.cw.Reset(s.cwr)
	return queueErr(r.cw, s.replySeq(), e)
}

// replyErr answers the current command with an ERR packet of tandem's own.
func (s *session) replyErr(r *relay, e *sqlError) error {
	return queueErr(r.cw, s.replySeq(), e)
}

// replySeq is the sequence id of a packet tandem sends the client in answer
// to what it has read of the current command: one more than the last
// client packet's (a command of several chunks, a LOCAL INFILE upload).
// s.hdr holds the header of every client packet read in a command.
func (s *session) replySeq() byte { return s.hdr[headerLen-1] + 1 }

// clientPayload reads the rest of the current client packet into memory,
// bounded by MaxPacket. Memory grows with the bytes that arrive, not with
// the announced length. A packet over the bound is skipped (so that the
// client reads the error) and ErrPacketTooLarge returned.
func (s *session) clientPayload(length int) ([]byte, error) {
	if length > s.p.cfg.MaxPacket || length >= maxPayload {
		if err := s.discardClient(length); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %d-byte command", ErrPacketTooLarge, length)
	}
	return appendFull(s.cr, nil, length)
}

// maxDiscard bounds how much of one client packet tandem skips: MariaDB's
// largest max_allowed_packet. Past it the session is closed.
const maxDiscard = 1 << 30

// discardClient skips the rest of the current client packet.
func (s *session) discardClient(length int) error {
	total := 0
	for {
		if total += length; total > maxDiscard {
			return fmt.Errorf("%w: a packet of over %d bytes", errClientProtocol, maxDiscard)
		}
		if _, err := s.cr.Discard(length); err != nil {
			return err
		}
		if length < maxPayload {
			return nil
		}
		var err error
		if length, _, err = readHeader(s.cr, &s.hdr); err != nil {
			return err
		}
	}
}

// next relays one logical packet from the node to the client. Before a read
// that would block it flushes what the client has not seen yet, so rows
// stream and the client never waits on our buffer.
//
// With MARIADB_CLIENT_PROGRESS, progress reports the node sends while a
// command runs are relayed on the way: next returns the packet after them.
func (r *relay) next() (head []byte, first byte, length int, err error) {
	for {
		if r.br.Buffered() == 0 && r.cw.Buffered() > 0 {
			if err := r.cw.Flush(); err != nil {
				return nil, 0, 0, err
			}
		}
		if length, _, err = readHeader(r.br, &r.hdr); err != nil {
			return nil, 0, 0, err // nothing of this packet reached cw
		}
		r.wrote = true
		r.out += headerLen + length
		head, first, err = relayBodySeq(r.cw, r.br, &r.hdr, length, r.seq.add(r.hdr[3]))
		r.failed = first == 0xff
		if r.failed && mustChangePassword(head) {
			r.sandboxed = true // expired.go
		}
		if err != nil || first != 0xff || !r.progress || !isProgress(head) {
			return head, first, length, err
		}
	}
}

// isProgress reports whether a packet is a MariaDB progress report: an
// ERR packet with error code 0xffff.
func isProgress(p []byte) bool {
	return len(p) >= 3 && p[0] == 0xff && p[1] == 0xff && p[2] == 0xff
}

// readOne relays a response of exactly one packet.
func (s *session) readOne(r *relay, _ bool) error {
	head, first, _, err := r.next()
	if err == nil && head != nil {
		switch first {
		case 0x00:
			s.facts.noteStatus(okStatus(head, s.caps))
		case 0xfe: // EOF, or an OK with header 0xfe (CLIENT_DEPRECATE_EOF)
			s.facts.noteStatus(s.terminatorStatus(head))
		}
	}
	return err
}

// setOption relays COM_SET_OPTION. Turning multi-statements on or off lasts
// for the rest of the session: it is kept in s.caps, so that the login to a
// node after a move asks for the same.
func (s *session) setOption(r *relay, length int) error {
	var opt uint16 = 0xffff
	if b, err := s.cr.Peek(min(length, 3)); err == nil && len(b) == 3 {
		opt = binary.LittleEndian.Uint16(b[1:])
	}
	return s.forward(r, length, func(r *relay, _ bool) error {
		err := s.readOne(r, false)
		if err == nil && !r.failed {
			switch opt {
			case mysql.MYSQL_OPTION_MULTI_STATEMENTS_ON:
				s.caps |= mysql.CLIENT_MULTI_STATEMENTS
			case mysql.MYSQL_OPTION_MULTI_STATEMENTS_OFF:
				s.caps &^= mysql.CLIENT_MULTI_STATEMENTS
			}
		}
		return err
	}, false)
}

// readOneOK relays a one-packet OK/ERR response and reports whether it was OK.
func (s *session) readOneOK(r *relay) (bool, error) {
	head, first, _, err := r.next()
	if err != nil {
		return false, err
	}
	if first == 0x00 && head != nil {
		s.facts.noteStatus(okStatus(head, s.caps))
		return true, nil
	}
	return false, nil
}

// readResults relays the response to COM_QUERY or COM_STMT_EXECUTE: OK,
// ERR, a LOCAL INFILE request, or result sets, as many as the status flags
// say (SERVER_MORE_RESULTS_EXISTS).
func (s *session) readResults(r *relay, binary bool) error {
	for {
		head, first, length, err := r.next()
		if err != nil {
			return err
		}
		switch {
		case first == 0x00 && head != nil: // OK
			st := okStatus(head, s.caps)
			s.facts.noteStatus(st)
			s.noteOK(head)
			if st&mysql.SERVER_MORE_RESULTS_EXISTS == 0 {
				return nil
			}
			continue
		case first == 0xff:
			return nil
		case first == 0xfb && !binary && head != nil: // LOCAL INFILE request
			if err := s.relayInfile(r); err != nil {
				return err
			}
			continue
		}
		if head == nil {
			return fmt.Errorf("%w: oversized result set header", errNodeProtocol)
		}
		ncols, pos, ok := lenEncInt(head, 0)
		if !ok {
			return fmt.Errorf("%w: bad column count", errNodeProtocol)
		}
		follows, track := true, false
		if s.extCaps&mariadbClientCacheMetadata != 0 {
			// MARIADB_CLIENT_CACHE_METADATA: a byte says whether the
			// column definitions follow (a prepared statement's
			// client may hold them already).
			if pos >= len(head) {
				return fmt.Errorf("%w: column count without its metadata flag", errNodeProtocol)
			}
			follows = head[pos] != 0
			if binary {
				if !follows && s.meta[s.execStmt].stale {
					return s.staleMetadata(r, length)
				}
				track = follows
			}
		}
		var crc uint32
		for i := uint64(0); follows && i < ncols; i++ {
			head, first, _, err := r.next()
			if err != nil {
				return err
			}
			if track {
				crc = metaCRC(crc, head, first)
			}
		}
		if track {
			s.noteMeta(s.execStmt, crc)
		}
		if s.caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
			head, _, _, err := r.next()
			if err != nil {
				return err
			}
			if binary && eofStatus(head)&mysql.SERVER_STATUS_CURSOR_EXISTS != 0 {
				// A cursor was opened: rows come with COM_STMT_FETCH.
				s.facts.noteStatus(eofStatus(head))
				return nil
			}
		}
		more, err := s.rows(r)
		if err != nil || !more {
			return err
		}
		_ = length
	}
}

// rows relays rows up to and including the terminator and reports whether
// more result sets follow.
func (s *session) rows(r *relay) (more bool, err error) {
	for {
		head, first, length, err := r.next()
		if err != nil {
			return false, err
		}
		if first == 0xff && head != nil {
			return false, nil
		}
		if s.isTerminator(first, length) {
			st := s.terminatorStatus(head)
			s.facts.noteStatus(st)
			return st&mysql.SERVER_MORE_RESULTS_EXISTS != 0, nil
		}
	}
}

// readRows relays the response to COM_STMT_FETCH or COM_FIELD_LIST: packets
// up to a terminator or an ERR.
func (s *session) readRows(r *relay, _ bool) error {
	_, err := s.rows(r)
	return err
}

// errNodeProtocol marks a node response tandem could not follow.
var errNodeProtocol = errors.New("node protocol error")

// relayInfile answers a LOCAL INFILE request: the client's file content
// packets go to the node up to the empty packet that ends them; the node's
// OK or ERR then follows as the rest of the response.
func (s *session) relayInfile(r *relay) error {
	if err := r.cw.Flush(); err != nil {
		return err
	}
	// The file must keep coming: each read within NetReadTimeout.
	s.crd.armed = true
	defer s.crd.disarm()
	for {
		_, _, length, _, err := relayPacket(r.bw, s.cr, &s.hdr)
		if err != nil {
			if ferr := r.bw.Flush(); ferr != nil {
				return ferr // the write to the node failed
			}
			return fmt.Errorf("%w: during its LOCAL INFILE upload: %w", errClientGone, err)
		}
		if length == 0 {
			// The client now waits for the node's OK or ERR: if the
			// node fails before it, tandem's own ERR (sequence id
			// replySeq) is a clean answer.
			r.wrote = false
			r.seq.resync() // the node's answer follows the file's packets
			return r.bw.Flush()
		}
	}
}

// prepare relays COM_STMT_PREPARE and remembers the statement for the
// session's facts.
func (s *session) prepare(r *relay, length int) error {
	body, err := s.clientPayload(length)
	if err != nil {
		return err
	}
	s.lastStmt = 0
	return s.sendToNode(r, body, func(r *relay, _ bool) error {
		// Read the first packet by hand: after a move, the node's
		// statement id is replaced by one of the session's own.
		length, _, err := readHeader(r.br, &r.hdr)
		if err != nil {
			return err
		}
		for r.progress && length < r.br.Size() {
			if p, err := r.br.Peek(min(3, length)); err != nil || !isProgress(p) {
				break
			}
			r.wrote = true
			if _, _, err := relayBodySeq(r.cw, r.br, &r.hdr, length, r.seq.add(r.hdr[3])); err != nil {
				return err
			}
			if length, _, err = readHeader(r.br, &r.hdr); err != nil {
				return err
			}
		}
		if length < 12 || length >= r.br.Size() {
			r.wrote = true
			_, first, err := relayBodySeq(r.cw, r.br, &r.hdr, length, r.seq.add(r.hdr[3]))
			r.failed = first == 0xff
			s.lastStmt = 0 // a failed prepare leaves no last statement
			return err     // not a prepare OK
		}
		head, err := r.br.Peek(length)
		if err != nil {
			return unexpectedEOF(err)
		}
		if head[0] != 0x00 { // ERR: relay it as it is
			r.wrote = true
			r.failed = head[0] == 0xff
			s.lastStmt = 0
			_, _, err := relayBodySeq(r.cw, r.br, &r.hdr, length, r.seq.add(r.hdr[3]))
			return err
		}
		id := binary.LittleEndian.Uint32(head[1:])
		cols := int(binary.LittleEndian.Uint16(head[5:]))
		params := int(binary.LittleEndian.Uint16(head[7:]))
		if s.stmts != nil {
			s.nextStmt++
			for s.facts.Prepared[s.nextStmt] != "" || s.nextStmt == 0 {
				s.nextStmt++
			}
			s.stmts[s.nextStmt] = id
			id = s.nextStmt
			binary.LittleEndian.PutUint32(head[1:], id)
		}
		if _, _, err := relayBodySeq(r.cw, r.br, &r.hdr, length, r.seq.add(r.hdr[3])); err != nil {
			return err
		}
		r.wrote = true
		s.facts.notePrepare(id, string(body[1:]))
		s.lastStmt = id
		cached := s.extCaps&mariadbClientCacheMetadata != 0
		var crc uint32
		for i, n := range [2]int{params, cols} {
			for range n {
				head, first, _, err := r.next()
				if err != nil {
					return err
				}
				if cached && i == 1 { // the column definitions the client now holds
					crc = metaCRC(crc, head, first)
				}
			}
			if n > 0 && s.caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
				if _, _, _, err := r.next(); err != nil { // the EOF after the definitions
					return err
				}
			}
		}
		if cached {
			s.noteMeta(id, crc)
		}
		return nil
	})
}

// query relays COM_QUERY. It reads the statement's beginning to keep the
// session's facts and to map KILL to the node's thread id.
func (s *session) query(r *relay, length int) error {
	n := min(length, s.cr.Size())
	text, err := s.cr.Peek(n)
	if err != nil {
		return err
	}
	text = text[1:]
	start := 1 // where the statement begins in the payload
	if s.caps&mysql.CLIENT_QUERY_ATTRIBUTES != 0 {
		// MySQL 8 clients put query attributes before the statement.
		off, ok := skipQueryAttrs(text)
		if !ok {
			s.facts.pin("query attributes longer than tandem inspects (8 KiB)")
			return s.forward(r, length, s.readResults, false)
		}
		text = text[off:]
		start += off
	}
	if k, ok := parseKill(text); ok && length == n {
		_, _ = s.cr.Discard(n)
		return s.kill(r, k.modifier, k.id)
	}
	s.facts.noteQuery(text, length == n)
	if kw, _ := firstWord(text); kw == "COMMIT" {
		r.commit = true
	}
	r.mayCommit = r.commit || s.facts.InTransaction && mayEndTransaction(text, length == n)
	if s.p.settle != nil {
		mk, sp := s.markerFor(text, length == n, r.commit)
		if mk != nil || r.commit {
			s.startSettleable() // the bounds of a command it may settle
		}
		if mk != nil || sp {
			return s.forwardMarked(r, n, start, mk, sp)
		}
	}
	return s.forward(r, length, s.readResults, false)
}

// mayEndTransaction reports whether a statement run inside a transaction
// may end it with a commit: every statement but those that surely leave
// it open or only roll it back (rows read or written, SHOW, SAVEPOINT,
// ROLLBACK, SET of anything but autocommit, LOAD DATA, USE). Statements
// that commit implicitly (DDL, BEGIN, LOCK TABLES, GRANT, ...), CALL
// (its procedure may commit), COMMIT, XA and anything tandem did not read
// whole or that holds several statements may.
func mayEndTransaction(text []byte, whole bool) bool {
	if !whole || afterFirstStatement(text) != nil {
		return true
	}
	switch verbOf(text) {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "DO", "WITH", "VALUES", "TABLE",
		"SHOW", "DESC", "DESCRIBE", "EXPLAIN", "HANDLER", "SAVEPOINT", "RELEASE", "ROLLBACK", "USE":
		return false
	case "SET":
		return indexFold(text, "AUTOCOMMIT") >= 0
	case "LOAD":
		// LOAD DATA and LOAD XML do not commit; LOAD INDEX does.
		w := skipSpace(skipSpace(text)[len("LOAD"):])
		return !(hasWordFold(w, "DATA") || hasWordFold(w, "XML"))
	}
	return true
}

// hasWordFold reports whether t begins with the word w, in any case.
func hasWordFold(t []byte, w string) bool {
	return len(t) >= len(w) && indexFold(t[:len(w)], w) == 0 && (len(t) == len(w) || !isIdentByte(t[len(w)]))
}

// forwardMarked relays a COM_QUERY of n bytes, all in the client reader's
// buffer, with mk in front of the statement, which begins at start (after
// the query attributes, if any), or after the marking savepoint (sp), then
// its response (settle.go).
func (s *session) forwardMarked(r *relay, n, start int, mk []byte, sp bool) error {
	body, err := s.cr.Peek(n)
	if err != nil {
		return err
	}
	if sp {
		// Mark a transaction whose writes may carry no marker
		// (settle.go). The savepoint's answer, tandem's own, must be
		// in before the COMMIT goes: a SAVEPOINT can fail (an engine
		// without savepoints in the transaction) where the COMMIT
		// would not, and a node that fails before the savepoint's
		// answer arrives (SIGKILL, a cut link, tandem's own cut of a
		// failed node) has then certainly not run the COMMIT, which
		// is settled as one never sent. Sent in the same write, a
		// COMMIT whose savepoint's fate is unknown could only get the
		// "may or may not" answer: one round trip buys settling it.
		s.mark.savepoint = s.p.settle.appendSavepoint(appendQuery(s.mark.savepoint[:0], s.be.caps, ""), markID{s.id, s.mark.seq})
		_, err := writePacket(r.bw, 0, s.mark.savepoint)
		if err == nil {
			err = r.bw.Flush()
		}
		var p []byte
		if err == nil {
			p, _, err = readPacket(r.br, nil, 1<<16)
		}
		if err != nil { // the COMMIT was not sent
			_, _ = s.cr.Discard(n)
			return s.nodeFailed(r, err)
		}
		if len(p) == 0 || p[0] != 0x00 {
			s.mark.clean = false // not marked: the COMMIT cannot be settled
		}
		newCommandOn(s.be.rw) // the COMMIT is a command of its own
		if body, err = s.cr.Peek(n); err != nil {
			return err
		}
	}
	putHeader(r.hdr[:], n+len(mk), s.hdr[headerLen-1]) // r.hdr: no escape
	_, _ = r.bw.Write(r.hdr[:])
	_, _ = r.bw.Write(body[:start])
	_, _ = r.bw.Write(mk)
	_, _ = r.bw.Write(body[start:])
	_, _ = s.cr.Discard(n)
	if err := r.bw.Flush(); err != nil {
		return s.nodeFailed(r, err)
	}
	return s.finish(r, s.readResults(r, false))
}

// errKilledSelf ends a session that killed its own connection.
var errKilledSelf = errors.New("the session killed its own connection")

// errKilledOther ends a session whose node connection another session's
// KILL ended.
var errKilledOther = errors.New("the node connection was killed by KILL")

// kill handles KILL [QUERY] <id> and COM_PROCESS_KILL, where id is a node
// thread id: a session's CONNECTION_ID(), which is also the id tandem
// greeted it with until it moves; after a move, the greeting's id still
// names the session when no thread on the killer's node has that number
// (Proxy.killTarget). The node decides, with its own privilege rules: tandem
// runs the KILL over the killer's own node connection, and only for a thread
// of one of its sessions on the killer's node. Any other id, a session on
// the other node (after a move, before its own next command) included, is
// refused as an unknown thread and never reaches a node.
func (s *session) kill(r *relay, modifier string, id uint32) error {
	node := s.be.node
	target, thread, ok := s.p.killTarget(node, id)
	if !ok {
		return s.replyErr(r, newError(erNoSuchThread, "Unknown thread id: %d", id))
	}
	query := containsFold(modifier, "QUERY")
	stmt := "KILL " + modifier + strconv.FormatUint(uint64(thread), 10)
	body := appendQuery(nil, s.be.caps, stmt)
	if !query && target != s {
		// Before the node can close the target's connection.
		target.killed.Store(thread)
	}
	err := s.sendToNode(r, body, func(r *relay, _ bool) error {
		ok, err := s.readOneOK(r)
		if !ok && !query && target != s {
			target.killed.CompareAndSwap(thread, 0) // refused (1095): nothing ends
		}
		if !ok || query || target == s {
			return err
		}
		// The node killed the target's thread: close its client too,
		// as a killed MariaDB connection is closed; unless it moved
		// meanwhile (then the node killed a thread it no longer uses).
		target.mu.Lock()
		same := target.be != nil && target.be.threadID == thread && target.be.node == node
		target.mu.Unlock()
		if same {
			target.closeConns()
		}
		return err
	})
	if err == nil && target == s && !query {
		// The node closed this session's connection after its answer
		// (an ERR: "connection was killed"); the client's session ends
		// with it instead of moving to a new node connection.
		return errKilledSelf
	}
	return err
}
