package replication

// Settling a transaction whose client lost its answer: was it committed on
// this node? tandem marks every statement it relays with a comment naming
// the transaction (a marker, unique per tandem process, session and
// transaction); MariaDB copies the text of each statement that changes rows
// into the binlog (Annotate_rows, binlog_annotate_row_events), the passive
// keeps it when it applies the transaction (replicate_annotate_row_events)
// and writes it to its own binlog (log_slave_updates). So, after a
// promotion, the new active's binlog holds a transaction's marker if and
// only if the transaction was committed there with rows changed.
//
// Finding a marker proves the commit (markers are unique). Not finding it
// proves nothing by itself: the scan may not have gone back far enough. It
// proves "not committed" only once the scan has read, in the same binlog, a
// transaction that committed on the old node before the searched one's
// COMMIT was sent (a bound, given by the caller): the new active applied the
// old node's transactions in the old node's commit order, so the searched
// one, if there, comes after the bound.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	gm "github.com/go-mysql-org/go-mysql/replication"
)

// MarkerPrefix starts every marker tandem puts in front of a statement.
const MarkerPrefix = "/*tandem:"

// SettleQuery asks whether one transaction was committed.
type SettleQuery struct {
	// Marker is the comment tandem put in front of the transaction's
	// statements ("/*tandem:...*/", MarkerPrefix and all).
	Marker string
	// Bounds are markers of transactions that committed on the old node
	// before the searched transaction's COMMIT was sent. The answer "not
	// committed" needs one of them found in the binlog.
	Bounds []string
	// Commit: the query is about the COMMIT of an explicit transaction.
	// Only a transactional group (its GTID event flagged
	// FL_TRANSACTIONAL, kept by the replica that logs it again) proves
	// it: a statement that wrote non-transactional tables (MyISAM, Aria)
	// is logged, marker and all, at once in a group of its own, whatever
	// becomes of the transaction. A marker found only in such groups
	// leaves the answer unknown.
	Commit bool
	// After: the answer comes from a read of the binlog listed after
	// this moment. The proxy passes when traffic moved to the node
	// (everything the promotion applied is in its binlog by then), so
	// that the sessions a failover interrupted share one read. Zero: when
	// the query is made.
	After time.Time
	// Since is when the COMMIT of the newest of Bounds was sent (zero:
	// not known). A search may then begin at a point of the binlog that
	// Track recorded before Since instead of the newest file's start:
	// that bound's transaction, which the new active applied (the old
	// node acknowledged it, so its peer had received it), was not
	// committed anywhere yet, so it comes after that point.
	Since time.Time
}

// Settled is what the binlog says about a transaction.
type Settled struct {
	// Known is false when the binlog could not tell (Why says why).
	Known bool
	// Committed: the transaction is in the node's binlog.
	Committed bool
	// GTID is the committed transaction's GTID.
	GTID string
	// Rows is the number of rows the marked statement changed, as its OK
	// packet would have said, when RowsKnown (a one-table INSERT, UPDATE
	// or DELETE without ON DUPLICATE KEY).
	Rows      uint64
	RowsKnown bool
	// InsertID is the AUTO_INCREMENT value of the row a one-row INSERT
	// wrote (0 when not known or not applicable).
	InsertID uint64
	// Why explains an unknown outcome.
	Why string
	// Search says how the search that answered went (for logs): how long
	// each step took, how much it read, how many queries it answered.
	Search string
}

// BinlogSource says how to read one node's binlog (COM_BINLOG_DUMP, as a
// replica would: the account needs REPLICATION SLAVE).
type BinlogSource struct {
	Address  string // host:port
	User     string
	Password string
	// ServerID is the replica id tandem registers with while it reads;
	// it must differ from every server's. 0 picks a random one.
	ServerID uint32
	// TLS, when set, encrypts the read (nil: plaintext).
	TLS *tls.Config
	// TLSIfOffered uses TLS only if the node offers it (tls =
	// "preferred"): FindTransactions asks its SQL connection, which
	// negotiated the same way, whether it got TLS.
	TLSIfOffered bool
}

// SettleLimits bound one search.
type SettleLimits struct {
	// MaxBytes is the most binlog read, newest file first, before the
	// outcome is declared unknown. Default 256 MiB.
	MaxBytes int64
}

// Settle answers queries about transactions on the node that db and src
// both reach. A failover interrupts many sessions at once, and one read of
// the binlog answers all of them: once a search has listed the binlog
// (SHOW BINARY LOGS), it takes every query then waiting whose After is
// before that listing; queries made later, or with a later After, are
// answered together by the next search. So each search reads everything the node
// had binlogged at each of its queries' After.
type Settler struct {
	DB     Querier
	Source BinlogSource
	Limits SettleLimits

	mu      sync.Mutex
	running bool
	waiting []*settleReq
	points  []binlogPoint // recorded by Track, oldest first
}

// binlogPoint is where the node's binlog ended at some moment (SHOW MASTER
// STATUS): the boundary between two event groups.
type binlogPoint struct {
	at   time.Time // when the answer arrived: the point was read before
	file string
	pos  int64
}

// trackKeep is how many points Track keeps (at 500 ms, 32 s of them).
const trackKeep = 64

// Track records, every `every` until ctx ends, where the node's binlog ends,
// keeping the last 64 points, so that a search answering queries with
// Since can read only what the node binlogged from the newest point
// before Since (see SettleQuery.Since); without a point it reads the newest
// file from its start. It returns when ctx ends.
func (s *Settler) Track(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, every)
		p, err := masterStatus(qctx, s.DB)
		cancel()
		if err == nil {
			p.at = time.Now()
			s.mu.Lock()
			s.points = append(s.points, p)
			if len(s.points) > trackKeep {
				s.points = append(s.points[:0], s.points[len(s.points)-trackKeep:]...)
			}
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startPoint is where a search for qs may begin: the newest point recorded
// before the Since of every query (false: none, or a query without Since).
func (s *Settler) startPoint(qs []SettleQuery) (binlogPoint, bool) {
	if len(qs) == 0 {
		return binlogPoint{}, false
	}
	since := qs[0].Since
	for _, q := range qs {
		if q.Since.IsZero() {
			return binlogPoint{}, false
		}
		if q.Since.Before(since) {
			since = q.Since
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.points) - 1; i >= 0; i-- {
		if s.points[i].at.Before(since) {
			return s.points[i], true
		}
	}
	return binlogPoint{}, false
}

// masterStatus reads where the node's binlog ends.
func masterStatus(ctx context.Context, db Querier) (binlogPoint, error) {
	rows, err := db.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		return binlogPoint{}, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return binlogPoint{}, err
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return binlogPoint{}, err
		}
		return binlogPoint{}, errors.New("replication: SHOW MASTER STATUS: no binlog")
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return binlogPoint{}, err
	}
	if len(vals) < 2 {
		return binlogPoint{}, errors.New("replication: SHOW MASTER STATUS: too few columns")
	}
	pos, err := strconv.ParseInt(string(vals[1]), 10, 64)
	if err != nil || pos < 4 {
		return binlogPoint{}, fmt.Errorf("replication: SHOW MASTER STATUS: position %q", vals[1])
	}
	return binlogPoint{file: string(vals[0]), pos: pos}, rows.Err()
}

type settleReq struct {
	q    SettleQuery
	res  Settled
	err  error
	done chan struct{}
}

// Settle reports what the node's binlog says about q, waiting at most until
// ctx is done.
func (s *Settler) Settle(ctx context.Context, q SettleQuery) (Settled, error) {
	if !strings.HasPrefix(q.Marker, MarkerPrefix) {
		return Settled{}, fmt.Errorf("replication: settle: marker %q does not start with %q", q.Marker, MarkerPrefix)
	}
	if now := time.Now(); q.After.IsZero() || q.After.After(now) {
		q.After = now
	}
	r := &settleReq{q: q, done: make(chan struct{})}
	s.mu.Lock()
	s.waiting = append(s.waiting, r)
	if !s.running {
		s.running = true
		go s.run()
	}
	s.mu.Unlock()
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		return Settled{Why: "the binlog search did not finish in time"}, ctx.Err()
	}
}

// settleTimeout bounds one search of the binlog, whoever waits for it.
const settleTimeout = 30 * time.Second

func (s *Settler) run() {
	for {
		start := time.Now()
		s.mu.Lock()
		if len(s.waiting) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		var batch []*settleReq
		// take moves the waiting queries whose After is before listed
		// into this search's batch.
		take := func(listed time.Time) []SettleQuery {
			s.mu.Lock()
			var keep []*settleReq
			for _, r := range s.waiting {
				if r.q.After.Before(listed) {
					batch = append(batch, r)
				} else {
					keep = append(keep, r)
				}
			}
			s.waiting = keep
			s.mu.Unlock()
			qs := make([]SettleQuery, len(batch))
			for i, r := range batch {
				qs[i] = r.q
			}
			return qs
		}
		ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		res, err := findTransactions(ctx, s.DB, s.Source, s.Limits, take, s.startPoint)
		cancel()
		if batch == nil && err != nil {
			// Failed before it took any: the error answers the queries
			// made before it began (later ones get a search of their own).
			take(start)
		}
		for i, r := range batch {
			if err == nil {
				r.res = res[i]
			}
			r.err = err
			close(r.done)
		}
	}
}

// binlogFile is one line of SHOW BINARY LOGS.
type binlogFile struct {
	name string
	size int64
}

// FindTransactions searches the node's binlog, newest file first, for the
// transactions of qs and answers each. db is an ordinary connection to the
// node (for SHOW BINARY LOGS and table definitions); src is how to read its
// binlog. An error means nothing could be read; a query the binlog does not
// answer comes back with Known false and the reason.
func FindTransactions(ctx context.Context, db Querier, src BinlogSource, lim SettleLimits, qs []SettleQuery) ([]Settled, error) {
	return findTransactions(ctx, db, src, lim, func(time.Time) []SettleQuery { return qs }, nil)
}

// findTransactions is FindTransactions with the queries taken once the
// binlog is listed, given when it was listed (take may return none: nothing
// is read then). When start gives a point for them, it first reads from
// there to the end of the binlog as listed; if that settles every query
// (each found, or a bound seen, everything after it read), that is the
// answer, else it reads from the newest file's start as without a point.
func findTransactions(ctx context.Context, db Querier, src BinlogSource, lim SettleLimits, take func(listed time.Time) []SettleQuery,
	start func([]SettleQuery) (binlogPoint, bool)) ([]Settled, error) {
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = 256 << 20
	}
	began := time.Now()
	var steps []string
	step := func(what string) {
		now := time.Now()
		steps = append(steps, fmt.Sprintf("%s %v", what, now.Sub(began).Round(time.Millisecond)))
		began = now
	}
	if why, err := settleUsable(ctx, db); err != nil {
		return nil, err
	} else if why != "" {
		out := make([]Settled, len(take(time.Now())))
		for i := range out {
			out[i].Why = why
		}
		return out, nil
	}
	if src.TLS != nil && src.TLSIfOffered {
		var name, cipher string
		if err := db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
			return nil, fmt.Errorf("reading Ssl_cipher: %w", err)
		}
		if cipher == "" { // the node does not offer TLS
			src.TLS = nil
		}
	}
	step("settings")
	listed := time.Now()
	files, err := binaryLogs(ctx, db)
	if err != nil {
		return nil, err
	}
	step("listed")
	newest := files[len(files)-1]
	qs := take(listed)
	if len(qs) == 0 {
		return nil, nil
	}
	lazy := &lazyRows{m: map[*gm.RowsEvent]lazyBody{}}
	finish := func(sc *settleScan, read int64) []Settled {
		step(fmt.Sprintf("read %d bytes", read))
		out := sc.results(fmt.Sprintf("neither the transaction nor a transaction committed before it was found in the newest %d bytes of binlog", read))
		for i := range out {
			if out[i].Committed && sc.found[i].table != nil {
				out[i].InsertID = insertID(ctx, db, sc.found[i])
			}
		}
		search := fmt.Sprintf("%d queries: %s", len(qs), strings.Join(steps, ", "))
		for i := range out {
			out[i].Search = search
		}
		return out
	}
	if start != nil {
		if p, ok := start(qs); ok && listedFile(files, p.file) && (p.file != newest.name || p.pos < newest.size) {
			sc := newSettleScan(qs)
			read, err := readFrom(ctx, src, p, newest, sc, lazy)
			if err == nil {
				sc.fileDone() // read from p to the end: a bound seen settles its queries
				if sc.allSettled() {
					return finish(sc, read), nil
				}
				step(fmt.Sprintf("from %s:%d recorded %v before: %d bytes read, not all settled", p.file, p.pos,
					qs[0].Since.Sub(p.at).Round(time.Millisecond), read))
			} else {
				step(fmt.Sprintf("from %s:%d: %v", p.file, p.pos, err))
			}
		}
	}
	syncer, st, err := openBinlogFile(src, newest, lazy)
	if err != nil {
		return nil, fmt.Errorf("replication: reading binlog %s: %w", newest.name, err)
	}
	step("opened")
	sc := newSettleScan(qs)
	read := int64(0)
	// The newest file is read first, always (nothing is settled before and
	// MaxBytes is positive), with the syncer opened above.
	for i := len(files) - 1; i >= 0 && !sc.allSettled(); i-- {
		if read >= lim.MaxBytes {
			break
		}
		f := files[i]
		if i != len(files)-1 {
			syncer, st, err = openBinlogFile(src, f, lazy)
			if err != nil {
				return nil, fmt.Errorf("replication: reading binlog %s: %w", f.name, err)
			}
		}
		err := readBinlogFile(ctx, st, f, sc, lazy)
		syncer.Close()
		if err != nil {
			return nil, fmt.Errorf("replication: reading binlog %s: %w", f.name, err)
		}
		read += f.size
		sc.fileDone()
	}
	return finish(sc, read), nil
}

// settleUsable says why the node's binlog cannot settle anything ("" if it
// can): it must log, keep its replicated transactions and their statements.
func settleUsable(ctx context.Context, db Querier) (string, error) {
	var logBin, slaveUpdates, annotate sql.NullInt64
	err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.log_bin, @@GLOBAL.log_slave_updates, @@GLOBAL.replicate_annotate_row_events").
		Scan(&logBin, &slaveUpdates, &annotate)
	if err != nil {
		if strings.Contains(err.Error(), "Unknown system variable") {
			return "the node is not MariaDB (no replicate_annotate_row_events)", nil
		}
		return "", fmt.Errorf("replication: settle: reading binlog settings: %w", err)
	}
	switch {
	case logBin.Int64 != 1:
		return "the node has no binlog (log_bin=OFF)", nil
	case slaveUpdates.Int64 != 1:
		return "the node does not binlog what it replicates (log_slave_updates=OFF)", nil
	case annotate.Int64 != 1:
		return "the node drops statement annotations it replicates (replicate_annotate_row_events=OFF)", nil
	}
	return "", nil
}

func binaryLogs(ctx context.Context, db Querier) ([]binlogFile, error) {
	rows, err := db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, fmt.Errorf("replication: SHOW BINARY LOGS: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var files []binlogFile
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		if len(vals) < 2 {
			return nil, errors.New("replication: SHOW BINARY LOGS: too few columns")
		}
		size, err := strconv.ParseInt(string(vals[1]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("replication: SHOW BINARY LOGS: size %q: %w", vals[1], err)
		}
		files = append(files, binlogFile{name: string(vals[0]), size: size})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, errors.New("replication: SHOW BINARY LOGS: no binlog files")
	}
	return files, nil
}

// lazyRows keeps the body of each rows event the parser met, undecoded:
// decoding every row of a binlog (a []any per row) cost most of a search,
// and the scan needs the rows of the searched statements only. The parser
// decodes a rows event's header (its table) and leaves the body here;
// readBinlogFile takes it back for every rows event and decodes it only
// when the scan asks for the rows.
type lazyRows struct {
	mu sync.Mutex
	m  map[*gm.RowsEvent]lazyBody
}

type lazyBody struct {
	pos  int
	data []byte
}

// decodeHeader is the parser's RowsEventDecodeFunc.
func (l *lazyRows) decodeHeader(e *gm.RowsEvent, data []byte) error {
	pos, err := e.DecodeHeader(data)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.m[e] = lazyBody{pos: pos, data: data}
	l.mu.Unlock()
	return nil
}

// take removes and returns e's body.
func (l *lazyRows) take(e *gm.RowsEvent) (lazyBody, bool) {
	l.mu.Lock()
	b, ok := l.m[e]
	delete(l.m, e)
	l.mu.Unlock()
	return b, ok
}

// decodeIfWanted takes back the body of a rows event and decodes it when
// the scan counts the rows of the statement they belong to.
func (l *lazyRows) decodeIfWanted(ev *gm.BinlogEvent, sc *settleScan) error {
	e, ok := ev.Event.(*gm.RowsEvent)
	if !ok {
		return nil
	}
	body, ok := l.take(e)
	if !ok {
		return errors.New("a rows event arrived without its body")
	}
	if sc.current == nil {
		return nil
	}
	if err := e.DecodeData(body.pos, body.data); err != nil {
		return fmt.Errorf("decoding rows at %d: %w", ev.Header.LogPos, err)
	}
	return nil
}

// openBinlogFile starts reading f from its start, as a replica would.
func openBinlogFile(src BinlogSource, f binlogFile, lazy *lazyRows) (*gm.BinlogSyncer, *gm.BinlogStreamer, error) {
	return openBinlogAt(src, mysql.Position{Name: f.name, Pos: 4}, lazy)
}

// openBinlogAt starts reading the binlog at pos, as a replica would.
func openBinlogAt(src BinlogSource, at mysql.Position, lazy *lazyRows) (*gm.BinlogSyncer, *gm.BinlogStreamer, error) {
	host, portStr, err := net.SplitHostPort(src.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("address %q: %w", src.Address, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, nil, fmt.Errorf("address %q: port: %w", src.Address, err)
	}
	id := src.ServerID
	for id == 0 || id == 1 || id == 2 {
		var b [4]byte
		_, _ = rand.Read(b[:])
		id = binary.LittleEndian.Uint32(b[:])&0x3fffffff | 0x40000000
	}
	syncer := gm.NewBinlogSyncer(gm.BinlogSyncerConfig{
		ServerID: id, Flavor: mysql.MariaDBFlavor, Host: host, Port: uint16(port),
		User: src.User, Password: src.Password,
		DumpCommandFlag:  gm.BINLOG_SEND_ANNOTATE_ROWS_EVENT,
		DisableRetrySync: true, ReadTimeout: 10 * time.Second, HeartbeatPeriod: 2 * time.Second,
		TLSConfig:           src.TLS,
		Logger:              slog.New(slog.NewTextHandler(io.Discard, nil)),
		RowsEventDecodeFunc: lazy.decodeHeader,
	})
	st, err := syncer.StartSync(at)
	if err != nil {
		syncer.Close()
		return nil, nil, err
	}
	return syncer, st, nil
}

// listedFile reports whether name is among files.
func listedFile(files []binlogFile, name string) bool {
	for _, f := range files {
		if f.name == name {
			return true
		}
	}
	return false
}

// readFrom reads the binlog from p (an event group boundary) through every
// later file to the end of newest as listed, feeding each event to sc, and
// returns how many bytes it read (about).
func readFrom(ctx context.Context, src BinlogSource, p binlogPoint, newest binlogFile, sc *settleScan, lazy *lazyRows) (int64, error) {
	syncer, st, err := openBinlogAt(src, mysql.Position{Name: p.file, Pos: uint32(p.pos)}, lazy)
	if err != nil {
		return 0, err
	}
	defer syncer.Close()
	file, read, last := p.file, int64(0), p.pos
	for {
		ev, err := st.GetEvent(ctx)
		if err != nil {
			return read, err
		}
		if rot, ok := ev.Event.(*gm.RotateEvent); ok {
			if next := string(rot.NextLogName); next != file {
				if file == newest.name {
					return read, nil // past the end of newest
				}
				file, last = next, 4
			}
			continue
		}
		if err := lazy.decodeIfWanted(ev, sc); err != nil {
			return read, err
		}
		sc.event(ev)
		if pos := int64(ev.Header.LogPos); pos != 0 {
			read += max(0, pos-last)
			last = pos
			if file == newest.name && pos >= newest.size {
				return read, nil
			}
		}
	}
}

// readBinlogFile reads f, opened by openBinlogFile, to its size at the time
// it was listed and feeds each event to sc.
func readBinlogFile(ctx context.Context, st *gm.BinlogStreamer, f binlogFile, sc *settleScan, lazy *lazyRows) error {
	file := f.name
	for {
		ev, err := st.GetEvent(ctx)
		if err != nil {
			return err
		}
		if err := lazy.decodeIfWanted(ev, sc); err != nil {
			return err
		}
		if rot, ok := ev.Event.(*gm.RotateEvent); ok {
			if ev.Header.LogPos != 0 || ev.Header.Timestamp != 0 || string(rot.NextLogName) != file {
				return nil // the end of f: the next file begins
			}
			continue // the fake rotate that opens the dump
		}
		sc.event(ev)
		if ev.Header.LogPos != 0 && int64(ev.Header.LogPos) >= f.size {
			return nil
		}
	}
}

// settleScan follows transactions through binlog events and matches their
// markers with the queries.
type settleScan struct {
	qs      []SettleQuery
	byMark  map[string][]int // marker -> queries searching it
	bounds  map[string][]int // bound marker -> queries it bounds
	found   []stmtRows       // per query, the statement found (Committed)
	gtids   []string
	ok      []bool // found
	okTrans []bool // found in a transactional group
	bound   []bool // a bound seen in a file completely read
	seenB   []bool // a bound seen in the file being read

	// The transaction being read.
	gtid       string
	standalone bool // a DDL statement: ends with its Query event
	trans      bool // FL_TRANSACTIONAL: no non-transactional table
	marks      []string
	stmts      map[string]*stmtRows // by marker: the marked statement's rows
	current    *stmtRows            // the statement whose rows follow
}

// stmtRows counts what one annotated statement changed.
type stmtRows struct {
	verb     string
	dupKey   bool
	writes   uint64
	updates  uint64
	deletes  uint64
	tableIDs map[uint64]bool
	table    *gm.TableMapEvent // the table of the first row written
	firstRow []any
}

func newSettleScan(qs []SettleQuery) *settleScan {
	sc := &settleScan{qs: qs, byMark: map[string][]int{}, bounds: map[string][]int{},
		found: make([]stmtRows, len(qs)), gtids: make([]string, len(qs)),
		ok: make([]bool, len(qs)), okTrans: make([]bool, len(qs)), bound: make([]bool, len(qs)), seenB: make([]bool, len(qs))}
	for i, q := range qs {
		sc.byMark[q.Marker] = append(sc.byMark[q.Marker], i)
		for _, b := range q.Bounds {
			if b != "" && b != q.Marker {
				sc.bounds[b] = append(sc.bounds[b], i)
			}
		}
	}
	return sc
}

// allSettled reports whether every query has its answer.
func (sc *settleScan) allSettled() bool {
	for i := range sc.qs {
		if !sc.ok[i] && !sc.bound[i] {
			return false
		}
	}
	return true
}

// fileDone is called after a whole file was read: a bound seen in it
// settles its queries (their transaction, if committed, comes after the
// bound, in this file or a newer one, all read).
func (sc *settleScan) fileDone() {
	for i := range sc.qs {
		sc.bound[i] = sc.bound[i] || sc.seenB[i]
	}
}

func (sc *settleScan) results(unknown string) []Settled {
	out := make([]Settled, len(sc.qs))
	for i := range sc.qs {
		switch {
		case sc.ok[i] && sc.qs[i].Commit && !sc.okTrans[i]:
			out[i] = Settled{Why: "the transaction's marker was found only with writes to non-transactional tables, which are logged apart from its COMMIT"}
		case sc.ok[i]:
			st := &sc.found[i]
			out[i] = Settled{Known: true, Committed: true, GTID: sc.gtids[i]}
			out[i].Rows, out[i].RowsKnown = st.affected()
		case sc.bound[i]:
			out[i] = Settled{Known: true}
		default:
			out[i] = Settled{Why: unknown}
		}
	}
	return out
}

// affected is the affected-rows count the statement's OK packet would have
// carried, when the binlog shows it unambiguously.
func (st *stmtRows) affected() (uint64, bool) {
	if len(st.tableIDs) > 1 || st.dupKey {
		return 0, false
	}
	switch st.verb {
	case "INSERT":
		if st.updates == 0 && st.deletes == 0 {
			return st.writes, true
		}
	case "UPDATE":
		if st.writes == 0 && st.deletes == 0 {
			return st.updates, true
		}
	case "DELETE":
		if st.writes == 0 && st.updates == 0 {
			return st.deletes, true
		}
	}
	return 0, false
}

// parseMarker returns the marker at the start of q ("/*tandem:...*/").
func parseMarker(q []byte) (string, bool) {
	if !bytes.HasPrefix(q, []byte(MarkerPrefix)) {
		return "", false
	}
	end := bytes.Index(q, []byte("*/"))
	if end < 0 || end > 128 {
		return "", false
	}
	return string(q[:end+2]), true
}

// SavepointPrefix starts the name of the savepoint tandem sets just before
// the COMMIT of a transaction whose statements carry no marker (prepared
// statements): "tandem_<process>_<session>_<transaction>" stands for the
// marker "/*tandem:<process>:<session>:<transaction>*/". MariaDB logs it,
// inside the transaction, as SAVEPOINT `name`.
const SavepointPrefix = "tandem_"

// parseSavepoint returns the marker a logged SAVEPOINT statement stands for.
func parseSavepoint(q []byte) (string, bool) {
	const head = "SAVEPOINT `" + SavepointPrefix
	if len(q) > 128 || !bytes.HasPrefix(q, []byte(head)) || q[len(q)-1] != '`' {
		return "", false
	}
	parts := strings.Split(string(q[len(head):len(q)-1]), "_")
	if len(parts) != 3 {
		return "", false
	}
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, "`:*/") {
			return "", false
		}
	}
	return MarkerPrefix + parts[0] + ":" + parts[1] + ":" + parts[2] + "*/", true
}

// firstVerb returns the upper-cased first word of q after the marker and
// whether the statement holds ON DUPLICATE KEY.
func firstVerb(q []byte, marker string) (string, bool) {
	rest := bytes.TrimLeft(q[len(marker):], " \t\r\n(")
	i := 0
	for i < len(rest) && (rest[i] >= 'a' && rest[i] <= 'z' || rest[i] >= 'A' && rest[i] <= 'Z') {
		i++
	}
	return strings.ToUpper(string(rest[:i])), bytes.Contains(bytes.ToUpper(rest), []byte("ON DUPLICATE KEY"))
}

func (sc *settleScan) begin(gtid string) {
	sc.gtid = gtid
	sc.marks = sc.marks[:0]
	sc.stmts = nil
	sc.current = nil
	sc.standalone, sc.trans = false, false
}

func (sc *settleScan) mark(m string, q []byte) {
	sc.marks = append(sc.marks, m)
	if _, wanted := sc.byMark[m]; !wanted {
		sc.current = nil
		return
	}
	if sc.stmts == nil {
		sc.stmts = map[string]*stmtRows{}
	}
	st := sc.stmts[m]
	if st == nil {
		st = &stmtRows{tableIDs: map[uint64]bool{}}
		st.verb, st.dupKey = firstVerb(q, m)
		sc.stmts[m] = st
	} else {
		st.verb = "" // two statements with one marker: rows unknown
	}
	sc.current = st
}

// commit ends the group being read.
func (sc *settleScan) commit() {
	for _, m := range sc.marks {
		for _, i := range sc.byMark[m] {
			sc.ok[i] = true
			sc.okTrans[i] = sc.okTrans[i] || sc.trans
			sc.gtids[i] = sc.gtid
			if st := sc.stmts[m]; st != nil {
				sc.found[i] = *st
			}
		}
		for _, i := range sc.bounds[m] {
			sc.seenB[i] = true
		}
	}
	sc.begin("")
}

func (sc *settleScan) event(ev *gm.BinlogEvent) {
	switch e := ev.Event.(type) {
	case *gm.MariadbGTIDEvent:
		sc.begin(e.GTID.String())
		sc.standalone = e.Flags&gm.BINLOG_MARIADB_FL_STANDALONE != 0
		sc.trans = e.Flags&gm.BINLOG_MARIADB_FL_TRANSACTIONAL != 0
	case *gm.MariadbAnnotateRowsEvent:
		if m, ok := parseMarker(e.Query); ok {
			sc.mark(m, e.Query)
		} else {
			sc.current = nil
		}
	case *gm.QueryEvent:
		q := bytes.TrimSpace(e.Query)
		switch {
		case bytes.EqualFold(q, []byte("BEGIN")):
		case bytes.EqualFold(q, []byte("COMMIT")):
			sc.commit()
		default:
			// A statement logged as text (DDL, SAVEPOINT): its rows,
			// if any, are not counted.
			if m, ok := parseSavepoint(q); ok {
				sc.marks = append(sc.marks, m)
			} else if m, ok := parseMarker(q); ok {
				sc.mark(m, q)
				if st := sc.stmts[m]; st != nil {
					st.verb = ""
				}
			}
			sc.current = nil
			if sc.standalone {
				sc.commit() // DDL: a transaction of its own
			}
		}
	case *gm.XIDEvent:
		sc.commit()
	case *gm.RowsEvent:
		st := sc.current
		if st == nil {
			return
		}
		st.tableIDs[e.TableID] = true
		switch ev.Header.EventType {
		case gm.WRITE_ROWS_EVENTv0, gm.WRITE_ROWS_EVENTv1, gm.WRITE_ROWS_EVENTv2, gm.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1:
			if st.writes == 0 && len(e.Rows) > 0 {
				st.table, st.firstRow = e.Table, e.Rows[0]
			}
			st.writes += uint64(len(e.Rows))
		case gm.UPDATE_ROWS_EVENTv0, gm.UPDATE_ROWS_EVENTv1, gm.UPDATE_ROWS_EVENTv2, gm.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1:
			st.updates += uint64(len(e.Rows) / 2) // before and after images
		default:
			st.deletes += uint64(len(e.Rows))
		}
	}
}

// insertID returns the AUTO_INCREMENT value of the one row a found INSERT
// wrote, or 0.
func insertID(ctx context.Context, db Querier, st stmtRows) uint64 {
	if st.verb != "INSERT" || st.writes != 1 || st.updates != 0 || st.deletes != 0 || st.table == nil || len(st.tableIDs) != 1 {
		return 0
	}
	var pos int
	err := db.QueryRowContext(ctx, "SELECT ORDINAL_POSITION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND EXTRA LIKE '%auto_increment%'",
		string(st.table.Schema), string(st.table.Table)).Scan(&pos)
	if err != nil || pos < 1 || pos > len(st.firstRow) {
		return 0
	}
	switch v := st.firstRow[pos-1].(type) {
	case int8:
		return uint64(uint8(v))
	case int16:
		return uint64(uint16(v))
	case int32:
		return uint64(uint32(v))
	case int64:
		return uint64(v)
	case uint8:
		return uint64(v)
	case uint16:
		return uint64(v)
	case uint32:
		return uint64(v)
	case uint64:
		return v
	}
	return 0
}
