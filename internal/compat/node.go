package compat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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

// SuiteDBFilter is set as node b's replicate_wild_ignore_table while the
// suites run: b still receives (and acknowledges) every transaction, but
// does not apply the suites' own tables, whose row events (tables without
// keys, scanned once per row) would take the small machine longer to apply
// than the suites take to run, slowing both runs. tandem's own tables
// replicate as always.
const SuiteDBFilter = "test.%,gotest.%,mtr.%,mysqltest%.%"

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
// database, mtr's server settings on a, and b's filter. restore undoes the
// settings and the filter and takes root's password alternative away
// again; it leaves the accounts and databases.
func Prepare(ctx context.Context, a, b Admin, mtrDir string) (restore func(context.Context) error, err error) {
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
		"CREATE DATABASE IF NOT EXISTS " + GoDB,
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'127.0.0.1' IDENTIFIED BY '%s'", GoUser, GoPassword),
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'localhost' IDENTIFIED BY '%s'", GoUser, GoPassword),
		fmt.Sprintf("GRANT ALL ON %s.* TO '%s'@'127.0.0.1'", GoDB, GoUser),
		fmt.Sprintf("GRANT ALL ON %s.* TO '%s'@'localhost'", GoDB, GoUser),
		"ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket",
		"CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY ''",
		"GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION",
		"GRANT PROXY ON ''@'%' TO root@'127.0.0.1' WITH GRANT OPTION",
	}
	for _, s := range stmts {
		if _, err := da.ExecContext(ctx, s); err != nil {
			return nil, fmt.Errorf("node a: %s: %w", s, err)
		}
	}
	// The accounts must reach b before its filter is set (they are in the
	// mysql schema, which the filter does not touch, but b must be in
	// sync before the runs anyway).
	if err := waitApplied(ctx, da, db, time.Minute); err != nil {
		return nil, err
	}
	if err := setFilter(ctx, db, SuiteDBFilter); err != nil {
		return nil, err
	}

	saved := make([]string, len(mtrGlobals))
	for i, g := range mtrGlobals {
		if err := da.QueryRowContext(ctx, "SELECT @@GLOBAL."+g.name).Scan(&saved[i]); err != nil {
			return nil, fmt.Errorf("node a: reading %s: %w", g.name, err)
		}
	}
	restore = func(ctx context.Context) error {
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
		for i, g := range mtrGlobals {
			if _, err := da.ExecContext(ctx, fmt.Sprintf("SET GLOBAL %s = ?", g.name), saved[i]); err != nil {
				errs = append(errs, fmt.Errorf("node a: restoring %s: %w", g.name, err))
			}
		}
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
		if err := setFilter(ctx, db, ""); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	for _, g := range mtrGlobals {
		if _, err := da.ExecContext(ctx, fmt.Sprintf("SET GLOBAL %s = %s", g.name, g.value)); err != nil {
			_ = restore(ctx)
			return nil, fmt.Errorf("node a: SET GLOBAL %s: %w", g.name, err)
		}
	}
	if mtrDir != "" {
		if err := loadMTRWarnings(ctx, da, mtrDir); err != nil {
			_ = restore(ctx)
			return nil, err
		}
	}
	return restore, nil
}

// FreshTestDB empties mysql-test-run's `test` database (and the go
// suite's) before a run: mtr does so by starting a fresh server, which
// --extern cannot.
func FreshTestDB(ctx context.Context, a Admin) error {
	da, err := a.open()
	if err != nil {
		return err
	}
	defer da.Close()
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

// setFilter sets node b's replicate_wild_ignore_table (the SQL thread must
// be stopped meanwhile).
func setFilter(ctx context.Context, db *sql.DB, filter string) error {
	for _, s := range []string{"STOP SLAVE SQL_THREAD", "SET GLOBAL replicate_wild_ignore_table = '" + filter + "'", "START SLAVE SQL_THREAD"} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("node b: %s: %w", s, err)
		}
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
