package failover

// NodeOps is every statement the monitor and the state machine run on one
// node. failover owns the interface; sqlNode (below) runs it on a real node
// through tandem's admin account, and the unit tests drive the state
// machine's sequences (fence, catch-up, save, unfence, route, rollback)
// against a fake.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/replication"
)

// NodeOps runs statements on one node. Every method is bounded by its
// context. Methods may be called from the monitor goroutine and the state
// machine goroutine at once.
type NodeOps interface {
	// Read states the node's facts (replication.Read).
	Read(ctx context.Context) (replication.Facts, error)
	// SetReadOnly fences (on) or unfences the node.
	SetReadOnly(ctx context.Context, flavor replication.Flavor, on bool) error
	// KillClients ends every client connection but replication's and
	// tandem's own (keep), returning how many it ended.
	KillClients(ctx context.Context, keep string) (int, error)
	// StopReceiving stops the replica I/O thread and returns once it is
	// stopped: nothing more is received or acknowledged; the SQL thread
	// goes on applying what was.
	StopReceiving(ctx context.Context, flavor replication.Flavor) error
	// StopApplier stops the replica SQL thread.
	StopApplier(ctx context.Context, flavor replication.Flavor) error
	// StartReplica starts both replica threads as a semi-sync replica;
	// restartIO restarts a running I/O thread so that it acknowledges.
	StartReplica(ctx context.Context, flavor replication.Flavor, restartIO bool) error
	// Resume starts a fenced node's replica threads from the position its
	// binary log backs (replication.Resume), moving gtid_slave_pos back
	// from transactions of its own that its crash recovery dropped; it
	// returns those and the position set, "" when there were none.
	Resume(ctx context.Context) (lost, pos string, err error)
	// UndoResume puts back the gtid_slave_pos Resume moved back from
	// lost (replication.UndoResume); it returns the position set.
	UndoResume(ctx context.Context, lost string) (string, error)
	// SetSemiSyncSource turns the source side of semi-sync on or off; it
	// reports whether the node has semi-sync at all.
	SetSemiSyncSource(ctx context.Context, on bool) (bool, error)
	// ConfigureSemiSyncSource makes the node a lossless semi-sync source
	// that waits up to timeout per commit.
	ConfigureSemiSyncSource(ctx context.Context, timeout time.Duration) error
	// WaitExecuted waits until the node applied want, for at most timeout.
	WaitExecuted(ctx context.Context, flavor replication.Flavor, want gomysql.GTIDSet, timeout time.Duration) error
	// SkipLostSequence moves a restarted node's GTID sequence past what
	// its crash recovery may have dropped, with a heartbeat write
	// (replication.SkipLostSequence); it returns the GTID written.
	SkipLostSequence(ctx context.Context, schema, node string, epoch uint64, now time.Time) (string, error)
	// WriteHeartbeat and ReadHeartbeat keep tandem's heartbeat row.
	WriteHeartbeat(ctx context.Context, schema, node string, epoch uint64, now time.Time) error
	ReadHeartbeat(ctx context.Context, schema, node string) (time.Time, error)
	// WriteDecision records d in the node's decision table;
	// ReadDecision reads it back (ok false when there is none).
	WriteDecision(ctx context.Context, schema string, d Decision) error
	ReadDecision(ctx context.Context, schema string) (d Decision, ok bool, err error)
	// Close releases the node's connections.
	Close() error
}

// Reach says what an error from a node proves about it.
type Reach int

const (
	// ReachUnknown: no answer in time, a reset, or an error tandem cannot
	// read: the node may be alive (hung, slow, cut off) and writable.
	ReachUnknown Reach = iota
	// ReachGone: the node's host refused the connection: no process
	// listens there, so the node is certainly not taking writes.
	ReachGone
	// ReachAlive: the server itself answered with an error: it is alive.
	ReachAlive
)

func (r Reach) String() string {
	switch r {
	case ReachGone:
		return "gone (connection refused)"
	case ReachAlive:
		return "alive (the server answered with an error)"
	}
	return "unknown (no answer)"
}

// Classify tells what err, from a statement on a node, proves.
func Classify(err error) Reach {
	var me *mysql.MySQLError
	switch {
	case err == nil:
		return ReachAlive
	case errors.As(err, &me):
		return ReachAlive
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReachGone
	}
	// A unix socket whose server is gone: the file is there but nobody
	// listens (ECONNREFUSED above), or the file is gone.
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" && errors.Is(err, os.ErrNotExist) {
		return ReachGone
	}
	return ReachUnknown
}

// sqlNode is NodeOps on a real node, with two connection pools.
//
// Writes to the active node wait for the passive's semi-sync
// acknowledgement, and when the passive is cut off (a partition: nothing
// comes back, nothing is closed) they wait until tandem releases them.
// tandem's own writes are such writes: the heartbeat, and the decision
// recorded after each save (markUnsynced saves just before the release).
// They run in the background on bg, apart from the checks and the actions
// (the release among them) on db, so that writes stuck on the
// acknowledgement can never take the connections the check that sees them
// and the statement that releases them need. With one shared pool of 3,
// the heartbeat and two records queued after two saves in a row held all
// three: the release and every check then waited for a connection until
// their deadlines, the active looked failed, and writes stopped until the
// records' own 10 s deadline freed one (issue 8, 2 of 24 partitions).
type sqlNode struct {
	db *sql.DB // checks and actions: never used by a write that may wait for an acknowledgement
	bg *sql.DB // background writes: the heartbeat, the recorded decision

	decisionTables sync.Map // schema → true: its decision table was made by this process
}

// openNode opens the connection pool to n: kept open, every operation
// bounded.
func openNode(cfg Config, n NodeConfig) (*sqlNode, error) {
	c := mysql.NewConfig()
	c.User, c.Passwd = cfg.AdminUser, cfg.AdminPassword
	c.Net, c.Addr = "tcp", n.Address
	if len(n.Address) > 0 && n.Address[0] == '/' {
		c.Net = "unix"
	}
	c.Timeout = cfg.CheckTimeout
	// Statements are bounded by their contexts; these only stop a
	// connection from hanging forever if a context is missing.
	c.ReadTimeout, c.WriteTimeout = 10*time.Second, 10*time.Second
	c.Params = map[string]string{"sql_log_bin": "1"}
	if err := n.TLS.Apply(c); err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(3) // a check, an action, and one spare
	db.SetMaxIdleConns(3)
	db.SetConnMaxIdleTime(0)
	bg := sql.OpenDB(conn)
	bg.SetMaxOpenConns(2) // the heartbeat, a decision record
	bg.SetMaxIdleConns(2)
	bg.SetConnMaxIdleTime(0)
	return &sqlNode{db: db, bg: bg}, nil
}

func (s *sqlNode) Read(ctx context.Context) (replication.Facts, error) {
	return replication.Read(ctx, s.db)
}

func (s *sqlNode) SetReadOnly(ctx context.Context, flavor replication.Flavor, on bool) error {
	return replication.SetReadOnly(ctx, s.db, orMariaDB(flavor), on)
}

func (s *sqlNode) KillClients(ctx context.Context, keep string) (int, error) {
	return replication.KillClients(ctx, s.db, keep)
}

func (s *sqlNode) StopReceiving(ctx context.Context, flavor replication.Flavor) error {
	return replication.StopReceiving(ctx, s.db, orMariaDB(flavor))
}

func (s *sqlNode) StopApplier(ctx context.Context, flavor replication.Flavor) error {
	return replication.StopReplicaApplier(ctx, s.db, orMariaDB(flavor))
}

func (s *sqlNode) StartReplica(ctx context.Context, flavor replication.Flavor, restartIO bool) error {
	return replication.StartReplicaSemiSync(ctx, s.db, orMariaDB(flavor), restartIO)
}

func (s *sqlNode) Resume(ctx context.Context) (string, string, error) {
	return replication.Resume(ctx, s.db)
}

func (s *sqlNode) SetSemiSyncSource(ctx context.Context, on bool) (bool, error) {
	return replication.SetSemiSyncSource(ctx, s.db, on)
}

func (s *sqlNode) ConfigureSemiSyncSource(ctx context.Context, timeout time.Duration) error {
	return replication.ConfigureSemiSyncSource(ctx, s.db, replication.SemiSyncSettings{Timeout: timeout})
}

func (s *sqlNode) WaitExecuted(ctx context.Context, flavor replication.Flavor, want gomysql.GTIDSet, timeout time.Duration) error {
	return replication.WaitExecuted(ctx, s.db, flavor, want, timeout)
}

func (s *sqlNode) WriteHeartbeat(ctx context.Context, schema, node string, epoch uint64, now time.Time) error {
	hb := replication.Heartbeat{Schema: schema}
	err := hb.Write(ctx, s.bg, node, epoch, now)
	if err != nil && (errors.Is(err, replication.ErrNoHeartbeat) || isMissingTable(err)) {
		if err := hb.EnsureTable(ctx, s.bg); err != nil {
			return err
		}
		return hb.Write(ctx, s.bg, node, epoch, now)
	}
	return err
}

func (s *sqlNode) UndoResume(ctx context.Context, lost string) (string, error) {
	return replication.UndoResume(ctx, s.db, lost)
}

func (s *sqlNode) SkipLostSequence(ctx context.Context, schema, node string, epoch uint64, now time.Time) (string, error) {
	hb := replication.Heartbeat{Schema: schema}
	if err := hb.EnsureTable(ctx, s.bg); err != nil {
		return "", err
	}
	return replication.SkipLostSequence(ctx, s.bg, hb, node, epoch, now)
}

func (s *sqlNode) ReadHeartbeat(ctx context.Context, schema, node string) (time.Time, error) {
	written, _, err := replication.Heartbeat{Schema: schema}.Read(ctx, s.db, node)
	return written, err
}

// The decision table holds one row: the whole decision as JSON, and its
// epoch and active node in columns for people reading it. It replicates
// with everything else, so either node holds the latest decision its
// peer wrote: a tandem that lost its state file reads it back here.
func decisionTable(schema string) string { return "`" + schema + "`.`decision`" }

func (s *sqlNode) WriteDecision(ctx context.Context, schema string, d Decision) error {
	doc, err := json.Marshal(d)
	if err != nil {
		return err
	}
	reason := d.Reason
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	// The table is made once per process (each of these statements is
	// written to the binary log and, on the active, waits for the
	// passive's acknowledgement like any write), and again if the row
	// cannot be written for want of it (a rebuilt node).
	for attempt := 0; ; attempt++ {
		if _, made := s.decisionTables.Load(schema); !made {
			if err := s.makeDecisionTable(ctx, schema); err != nil {
				return err
			}
			s.decisionTables.Store(schema, true)
		}
		// Never replace a newer decision by an older one: the epoch
		// only grows.
		_, err = s.bg.ExecContext(ctx, "INSERT INTO "+decisionTable(schema)+" VALUES (1, ?, ?, ?, ?, ?) "+
			"ON DUPLICATE KEY UPDATE active = IF(VALUES(epoch) >= epoch, VALUES(active), active), "+
			"decided_at = IF(VALUES(epoch) >= epoch, VALUES(decided_at), decided_at), "+
			"reason = IF(VALUES(epoch) >= epoch, VALUES(reason), reason), "+
			"doc = IF(VALUES(epoch) >= epoch, VALUES(doc), doc), "+
			"epoch = GREATEST(epoch, VALUES(epoch))",
			d.Active, d.Epoch, d.Time, reason, string(doc))
		if err != nil && attempt == 0 && (isMissingTable(err) || isMissingColumn(err) || isColumnCount(err)) {
			s.decisionTables.Delete(schema)
			continue
		}
		if err != nil {
			return fmt.Errorf("recording the decision: %w", err)
		}
		return nil
	}
}

// makeDecisionTable creates schema's decision table, or adds the column
// an earlier tandem's table lacks.
func (s *sqlNode) makeDecisionTable(ctx context.Context, schema string) error {
	for _, stmt := range []string{
		"CREATE DATABASE IF NOT EXISTS `" + schema + "`",
		"CREATE TABLE IF NOT EXISTS " + decisionTable(schema) + " (id TINYINT PRIMARY KEY, active VARCHAR(64) NOT NULL, " +
			"epoch BIGINT UNSIGNED NOT NULL, decided_at DATETIME(6) NOT NULL, reason VARCHAR(1024) NOT NULL, doc JSON NULL) ENGINE=InnoDB",
		// Tables made by an earlier tandem lack doc.
		"ALTER TABLE " + decisionTable(schema) + " ADD COLUMN IF NOT EXISTS doc JSON NULL",
	} {
		if _, err := s.bg.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("recording the decision: %w", err)
		}
	}
	return nil
}

func (s *sqlNode) ReadDecision(ctx context.Context, schema string) (Decision, bool, error) {
	var doc sql.NullString
	var active string
	var epoch uint64
	err := s.db.QueryRowContext(ctx, "SELECT active, epoch, doc FROM "+decisionTable(schema)+" WHERE id = 1").Scan(&active, &epoch, &doc)
	if errors.Is(err, sql.ErrNoRows) || isMissingTable(err) || isMissingColumn(err) {
		return Decision{}, false, nil
	}
	if err != nil {
		return Decision{}, false, fmt.Errorf("reading the decision table: %w", err)
	}
	var d Decision
	if doc.Valid && doc.String != "" {
		if err := json.Unmarshal([]byte(doc.String), &d); err != nil {
			return Decision{}, false, fmt.Errorf("reading the decision table: %w", err)
		}
	}
	// The columns are authoritative for who and which epoch.
	d.Active, d.Epoch = active, epoch
	return d, true, nil
}

func (s *sqlNode) Close() error { return errors.Join(s.db.Close(), s.bg.Close()) }

// orMariaDB is flavor, or MariaDB when no check has told it yet.
func orMariaDB(flavor replication.Flavor) replication.Flavor {
	if flavor == replication.UnknownFlavor {
		return replication.MariaDB
	}
	return flavor
}

// isMissingTable reports MySQL errors 1146 (no table) and 1049 (no database).
func isMissingTable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1146 || me.Number == 1049)
}

// isColumnCount reports MySQL error 1136 (column count does not match):
// a decision table of an earlier tandem, without doc.
func isColumnCount(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1136
}

// isMissingColumn reports MySQL error 1054 (unknown column).
func isMissingColumn(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1054
}
