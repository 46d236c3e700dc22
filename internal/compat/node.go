package compat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Accounts and databases the suites use, created on the nodes by Prepare.
// None is listed in tandem's config: tandem reads them from the nodes.
const (
	GoUser     = "gotest"     // go-sql-driver's MYSQL_TEST_USER, @127.0.0.1 and @localhost
	GoPassword = "gotestpass" // MYSQL_TEST_PASS
	GoDB       = "gotest"     // MYSQL_TEST_DBNAME
	// mysql-test-run logs in as root with no password (its tests say
	// `connect (con1,localhost,root,,)`): root@localhost gets an empty
	// mysql_native_password as an alternative to unix_socket, and
	// root@127.0.0.1 the same, for tandem's TCP login to the node and the
	// tests' TCP connections.
	MTRUser = "root"
	// TandemSchema is failover.schema of the tandem the harness starts:
	// never dropped as a test's leftover.
	TandemSchema = "tandem"
)

// mtrGlobals are the server settings mysql-test-run's own servers start with
// (include/default_mysqld.cnf) that differ from the pair's and that the
// chosen tests depend on; the pair's auto_increment_increment=2 (for
// master-master) is put back to 1 as well. Prepare sets them for the run,
// the returned restore function puts the old values back.
var mtrGlobals = []struct{ name, value string }{
	{"log_bin_trust_function_creators", "1"},
	{"character_set_server", "'latin1'"},
	{"collation_server", "'latin1_swedish_ci'"},
	{"auto_increment_increment", "1"},
	{"auto_increment_offset", "1"},
	{"max_heap_table_size", "1048576"},
	{"sort_buffer_size", "262144"},
}

// Prepared is what Prepare learnt about the pair.
type Prepared struct {
	// Restore puts back the settings and the filter and takes root's
	// password alternative away again; it leaves the accounts and the
	// databases the suites use.
	Restore func(context.Context) error
	// databases on node a before the suites ran: FreshTestDB drops any
	// other (tests leave some behind).
	databases map[string]bool
	// accounts on node a before the suites ran ('user'@'host'):
	// FreshTestDB drops any other.
	accounts map[string]bool
	bStopped bool // node b's SQL thread stopped for the runs
}

// Admin is a node reached with tandem's admin account (ALL PRIVILEGES
// WITH GRANT OPTION on the local pair).
type Admin struct {
	Addr     string // host:port
	User     string
	Password string
}

func (a Admin) open() (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = a.User, a.Password, "tcp", a.Addr
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 5*time.Second, 5*time.Minute, time.Minute
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	return db, nil
}

// Prepare readies the pair for the suites: the accounts and databases they
// need (created on active node a, replicated to b), mysql-test-run's `mtr`
// database and server settings on a; then it stops node b's SQL thread.
// While the suites run, b receives and acknowledges every transaction
// (semi-sync works as always) but applies none: their row events (tables
// without keys, scanned once per row) would take the small machine longer
// to apply than the suites take to run, and some of their statements
// depend on settings only a has. Restore cleans a up to what b holds and
// resumes b's replication after the suites' transactions (skipSuites).
func Prepare(ctx context.Context, a, b Admin, mtrDir string) (*Prepared, error) {
	da, err := a.open()
	if err != nil {
		return nil, err
	}
	defer da.Close()
	db, err := b.open()
	if err != nil {
		return nil, err
	}
	defer db.Close()

	stmts := []string{
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'127.0.0.1' IDENTIFIED BY '%s'", GoUser, GoPassword),
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'localhost' IDENTIFIED BY '%s'", GoUser, GoPassword),
		fmt.Sprintf("GRANT ALL ON %s.* TO '%s'@'127.0.0.1'", GoDB, GoUser),
		fmt.Sprintf("GRANT ALL ON %s.* TO '%s'@'localhost'", GoDB, GoUser),
		"ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket",
		"CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY ''",
		"GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION",
	}
	for _, s := range stmts {
		if _, err := da.ExecContext(ctx, s); err != nil {
			return nil, fmt.Errorf("node a: %s: %w", s, err)
		}
	}
	saved := make([]string, len(mtrGlobals))
	for i, g := range mtrGlobals {
		if err := da.QueryRowContext(ctx, "SELECT @@GLOBAL."+g.name).Scan(&saved[i]); err != nil {
			return nil, fmt.Errorf("node a: reading %s: %w", g.name, err)
		}
	}
	var savedB string
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.log_bin_trust_function_creators").Scan(&savedB); err != nil {
		return nil, fmt.Errorf("node b: %w", err)
	}
	p := &Prepared{}
	p.Restore = func(ctx context.Context) error {
		da, err := a.open()
		if err != nil {
			return err
		}
		defer da.Close()
		db, err := b.open()
		if err != nil {
			return err
		}
		defer db.Close()
		var errs []error
		if p.databases != nil {
			if err := p.fresh(ctx, da); err != nil {
				errs = append(errs, err)
			}
		}
		if p.bStopped {
			if err := skipSuites(ctx, da, db); err != nil {
				errs = append(errs, err)
			}
		}
		for i, g := range mtrGlobals {
			if _, err := da.ExecContext(ctx, fmt.Sprintf("SET GLOBAL %s = %s", g.name, literal(saved[i]))); err != nil {
				errs = append(errs, fmt.Errorf("node a: restoring %s: %w", g.name, err))
			}
		}
		// Replicated as usual: they also bring b's binary log up to a's
		// position after the skip.
		for _, s := range []string{
			"ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING 'invalid' OR unix_socket",
			"DROP USER IF EXISTS root@'127.0.0.1'",
		} {
			if _, err := da.ExecContext(ctx, s); err != nil {
				errs = append(errs, fmt.Errorf("node a: %s: %w", s, err))
			}
		}
		if err := waitApplied(ctx, da, db, 2*time.Minute); err != nil {
			errs = append(errs, err)
		}
		if _, err := db.ExecContext(ctx, "SET GLOBAL log_bin_trust_function_creators = "+literal(savedB)); err != nil {
			errs = append(errs, fmt.Errorf("node b: restoring log_bin_trust_function_creators: %w", err))
		}
		return errors.Join(errs...)
	}
	fail := func(err error) (*Prepared, error) {
		if rerr := p.Restore(ctx); rerr != nil {
			err = fmt.Errorf("%w (and restoring: %v)", err, rerr)
		}
		return nil, err
	}
	for _, g := range mtrGlobals {
		if _, err := da.ExecContext(ctx, fmt.Sprintf("SET GLOBAL %s = %s", g.name, g.value)); err != nil {
			return fail(fmt.Errorf("node a: SET GLOBAL %s: %w", g.name, err))
		}
	}
	// b applies the mtr database's stored functions and triggers below.
	if _, err := db.ExecContext(ctx, "SET GLOBAL log_bin_trust_function_creators = 1"); err != nil {
		return fail(fmt.Errorf("node b: %w", err))
	}
	if mtrDir != "" {
		if err := loadMTRWarnings(ctx, da, mtrDir); err != nil {
			return fail(err)
		}
	}
	for _, name := range []string{"test", GoDB} {
		if err := recreateDB(ctx, da, name); err != nil {
			return fail(err)
		}
	}
	if p.databases, err = databases(ctx, da); err != nil {
		return fail(err)
	}
	if p.accounts, err = accounts(ctx, da); err != nil {
		return fail(err)
	}
	if err := waitApplied(ctx, da, db, 2*time.Minute); err != nil {
		return fail(err)
	}
	if _, err := db.ExecContext(ctx, "STOP SLAVE SQL_THREAD"); err != nil {
		return fail(fmt.Errorf("node b: STOP SLAVE SQL_THREAD: %w", err))
	}
	p.bStopped = true
	return p, nil
}

// skipSuites makes node b skip what the suites wrote on node a: b's SQL
// thread was stopped for the runs (its IO thread kept receiving, and
// acknowledging, every transaction), a has just been cleaned up to what b
// holds (the suites' databases empty, those they created dropped), and b's
// replication now resumes from a's current position. Only while a is still
// the writable node and b read-only: after a failover this would lose
// writes, and it refuses.
func skipSuites(ctx context.Context, da, db *sql.DB) error {
	var roA, roB int
	if err := da.QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&roA); err != nil {
		return fmt.Errorf("node a: %w", err)
	}
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&roB); err != nil {
		return fmt.Errorf("node b: %w", err)
	}
	if roA != 0 || roB != 1 {
		return fmt.Errorf("node a read_only=%d, node b read_only=%d: the roles changed during the runs, so node b's replication was left stopped (scripts/pair.sh reset rebuilds the pair)", roA, roB)
	}
	var pos string
	if err := da.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos").Scan(&pos); err != nil {
		return fmt.Errorf("node a: gtid_binlog_pos: %w", err)
	}
	// tandem's own tables (its decision, its heartbeat) changed on a
	// during the runs too: b gets a's rows, unlogged, so that it does not
	// miss what a's later statements on them expect.
	if err := copySchema(ctx, da, db, tandemSchema); err != nil {
		return err
	}
	for _, s := range []string{"STOP SLAVE", "SET GLOBAL gtid_slave_pos = '" + pos + "'", "START SLAVE"} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("node b: %s: %w", s, err)
		}
	}
	return nil
}

// literal writes a global variable's value read back as text: numbers as
// they are (SET GLOBAL refuses a string for a numeric variable), anything
// else quoted.
func literal(v string) string {
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(v) + "'"
}

// accounts returns node a's accounts and roles, as the statement that
// drops each: DROP USER 'user'@'host' or DROP ROLE 'role'.
func accounts(ctx context.Context, db *sql.DB) (map[string]bool, error) {
	list, err := queryStrings(ctx, db, "SELECT IF(is_role = 'Y', CONCAT('DROP ROLE IF EXISTS ', QUOTE(User)), CONCAT('DROP USER IF EXISTS ', QUOTE(User), '@', QUOTE(Host))) FROM mysql.user")
	if err != nil {
		return nil, fmt.Errorf("node a: reading mysql.user: %w", err)
	}
	return set(list), nil
}

func databases(ctx context.Context, db *sql.DB) (map[string]bool, error) {
	list, err := queryStrings(ctx, db, "SHOW DATABASES")
	if err != nil {
		return nil, fmt.Errorf("node a: SHOW DATABASES: %w", err)
	}
	return set(list), nil
}

// queryStrings returns the first column of every row q returns.
func queryStrings(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func set(list []string) map[string]bool {
	out := make(map[string]bool, len(list))
	for _, v := range list {
		out[v] = true
	}
	return out
}

// FreshTestDB empties mysql-test-run's `test` database (and the go
// suite's) before a run, and drops the databases tests created and left
// behind (any not there at Prepare), and the accounts they left (likewise):
// mtr starts each run on a fresh server,
// which --extern cannot.
func (p *Prepared) FreshTestDB(ctx context.Context, a Admin) error {
	da, err := a.open()
	if err != nil {
		return err
	}
	defer da.Close()
	return p.fresh(ctx, da)
}

func (p *Prepared) fresh(ctx context.Context, da *sql.DB) error {
	now, err := databases(ctx, da)
	if err != nil {
		return err
	}
	for n := range now {
		// tandem's own schema (failover.schema) appears once tandem runs.
		if !p.databases[n] && n != "test" && n != GoDB && n != TandemSchema {
			if _, err := da.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+strings.ReplaceAll(n, "`", "``")+"`"); err != nil {
				return fmt.Errorf("node a: dropping database %q left by a test: %w", n, err)
			}
		}
	}
	users, err := accounts(ctx, da)
	if err != nil {
		return err
	}
	for u := range users {
		if !p.accounts[u] {
			if _, err := da.ExecContext(ctx, u); err != nil {
				return fmt.Errorf("node a: %s (left by a test): %w", u, err)
			}
		}
	}
	for _, name := range []string{"test", GoDB} {
		if err := recreateDB(ctx, da, name); err != nil {
			return err
		}
	}
	return nil
}

// recreateDB drops and creates database name. Tests leave files of their
// own in the database's directory (SELECT ... INTO OUTFILE 't1.dat'), which
// make DROP DATABASE fail with 1010; those are removed (the pair is local)
// and the drop retried. IF NOT EXISTS: node b ignores these databases
// during the runs and may still have them.
func recreateDB(ctx context.Context, db *sql.DB, name string) error {
	drop := "DROP DATABASE IF EXISTS " + name
	if _, err := db.ExecContext(ctx, drop); err != nil {
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1010 {
			return fmt.Errorf("node a: %s: %w", drop, err)
		}
		var datadir string
		if err := db.QueryRowContext(ctx, "SELECT @@datadir").Scan(&datadir); err != nil {
			return fmt.Errorf("node a: @@datadir: %w", err)
		}
		dir := filepath.Join(datadir, name)
		ents, rerr := os.ReadDir(dir)
		if rerr != nil {
			return fmt.Errorf("node a: %s: %w (and reading %s: %v)", drop, err, dir, rerr)
		}
		for _, e := range ents {
			if !e.IsDir() {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
		}
		if _, err := db.ExecContext(ctx, drop); err != nil {
			return fmt.Errorf("node a: %s (stray files removed from %s): %w", drop, dir, err)
		}
	}
	create := "CREATE DATABASE IF NOT EXISTS " + name
	if _, err := db.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("node a: %s: %w", create, err)
	}
	return nil
}

// waitApplied waits until b has applied everything a had logged when it was
// called.
func waitApplied(ctx context.Context, da, db *sql.DB, bound time.Duration) error {
	var pos string
	if err := da.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos").Scan(&pos); err != nil {
		return fmt.Errorf("node a: gtid_binlog_pos: %w", err)
	}
	// tandem's own tables (its decision, its heartbeat) changed on a
	// during the runs too: b gets a's rows, unlogged, so that it does not
	// miss what a's later statements on them expect.
	if err := copySchema(ctx, da, db, tandemSchema); err != nil {
		return err
	}
	var r sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, ?)", pos, int(bound/time.Second)).Scan(&r); err != nil {
		return fmt.Errorf("node b: waiting for %s: %w", pos, err)
	}
	if !r.Valid || r.Int64 != 0 {
		return fmt.Errorf("node b did not apply node a's %s within %s", pos, bound)
	}
	return nil
}

var delimiterLine = regexp.MustCompile(`^delimiter (.*)`)

// loadMTRWarnings creates the `mtr` database of mysql-test-run's own
// servers (tests call mtr.add_suppression), from include/mtr_warnings.sql,
// converted the way mysql-test-run's sql_to_bootstrap does.
func loadMTRWarnings(ctx context.Context, db *sql.DB, mtrDir string) error {
	src, err := os.ReadFile(filepath.Join(mtrDir, "include", "mtr_warnings.sql"))
	if err != nil {
		return fmt.Errorf("mysql-test-run's mtr database: %w", err)
	}
	for _, s := range []string{"DROP DATABASE IF EXISTS mtr", "CREATE DATABASE mtr CHARSET=latin1"} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("node a: %s: %w", s, err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "USE mtr"); err != nil {
		return err
	}
	for _, s := range bootstrapStatements(string(src)) {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("node a: mtr_warnings.sql: %s: %w", truncate(s, 80), err)
		}
	}
	return nil
}

// bootstrapStatements splits a mysqltest-style SQL file into statements:
// `delimiter X` lines change the delimiter, lines starting with -- are
// dropped, as in mysql-test-run's sql_to_bootstrap.
func bootstrapStatements(src string) []string {
	delim := ";"
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n") {
		if m := delimiterLine.FindStringSubmatch(line); m != nil {
			delim = strings.TrimSuffix(strings.TrimSpace(m[1]), delim)
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		line = strings.ReplaceAll(line, "'@HOSTNAME@'", "localhost")
		if t := strings.TrimRight(line, " \t"); strings.HasSuffix(t, delim) {
			cur.WriteString(strings.TrimSuffix(t, delim))
			if s := strings.TrimSpace(cur.String()); s != "" {
				out = append(out, s)
			}
			cur.Reset()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// tandemSchema is where tandem keeps its decision and heartbeat on the
// nodes (failover.heartbeat_schema's default, as the harness's tandem uses).
const tandemSchema = "tandem"

// copySchema makes schema on on what it is on from: each table recreated
// as from has it, with from's rows, without writing to on's binary log.
// on's SQL thread is stopped.
func copySchema(ctx context.Context, from, on *sql.DB, schema string) error {
	tables, err := queryStrings(ctx, from, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'", schema)
	if err != nil {
		return fmt.Errorf("node a: tables of %s: %w", schema, err)
	}
	conn, err := on.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	quoted := "`" + strings.ReplaceAll(schema, "`", "``") + "`"
	for _, q := range []string{"SET SESSION sql_log_bin = 0", "CREATE DATABASE IF NOT EXISTS " + quoted, "USE " + quoted} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("node b: %s: %w", q, err)
		}
	}
	for _, t := range tables {
		name := quoted + ".`" + strings.ReplaceAll(t, "`", "``") + "`"
		// The table itself may be new on a (created during the runs).
		var tn, create string
		if err := from.QueryRowContext(ctx, "SHOW CREATE TABLE "+name).Scan(&tn, &create); err != nil {
			return fmt.Errorf("node a: %s: %w", name, err)
		}
		data, err := tableRows(ctx, from, name)
		if err != nil {
			return fmt.Errorf("node a: %s: %w", name, err)
		}
		for _, q := range []string{"DROP TABLE IF EXISTS " + name, create} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("node b: %s: %w", name, err)
			}
		}
		for _, r := range data {
			q := "INSERT INTO " + name + " VALUES (?" + strings.Repeat(", ?", len(r)-1) + ")"
			if _, err := conn.ExecContext(ctx, q, r...); err != nil {
				return fmt.Errorf("node b: %s: %w", name, err)
			}
		}
	}
	return nil
}

// tableRows reads every row of table, each column as bytes (nil for NULL).
func tableRows(ctx context.Context, db *sql.DB, table string) ([][]any, error) {
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]any
	for rows.Next() {
		raw := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range raw {
			ptrs[i] = &raw[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r := make([]any, len(cols))
		for i, v := range raw {
			if v != nil {
				r[i] = append([]byte{}, v...)
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
