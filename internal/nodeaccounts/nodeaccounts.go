// Package nodeaccounts reads the accounts of the database nodes (their
// mysql.user rows) for tandem's data path, as tandem's admin account: see
// proxy.Config.Accounts.
package nodeaccounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tandemdb/tandem/internal/nodetls"
	"github.com/tandemdb/tandem/proxy"
)

// Node is one node to read accounts from.
type Node struct {
	Name    string
	Address string          // host:port, or the path of a unix socket
	TLS     *nodetls.Client // nil: plaintext
}

// Loader reads the accounts of the nodes, one small connection pool per
// node, opened at the first read. Safe for concurrent use.
type Loader struct {
	user, password string
	nodes          map[string]Node

	mu  sync.Mutex
	dbs map[string]*sql.DB
}

// New returns a Loader for nodes, logging in as user with password.
func New(nodes []Node, user, password string) *Loader {
	l := &Loader{user: user, password: password, nodes: map[string]Node{}, dbs: map[string]*sql.DB{}}
	for _, n := range nodes {
		l.nodes[n.Name] = n
	}
	return l
}

// Queries that read the accounts, tried in order: MariaDB's mysql.user (a
// view over mysql.global_priv) lists roles too, which cannot log in; MySQL's
// has no is_role column; servers before MariaDB 10.4 have no
// password_expired.
var queries = []string{
	"SELECT User, Host, plugin, authentication_string, password_expired FROM mysql.user WHERE is_role = 'N'",
	"SELECT User, Host, plugin, authentication_string, password_expired FROM mysql.user",
	"SELECT User, Host, plugin, authentication_string, 'N' FROM mysql.user WHERE is_role = 'N'",
	"SELECT User, Host, plugin, authentication_string, 'N' FROM mysql.user",
}

// erBadField is ER_BAD_FIELD_ERROR (unknown column).
const erBadField = 1054

// Load reads the accounts of the node called node. It is a
// proxy.Config.Accounts hook.
func (l *Loader) Load(ctx context.Context, node string) ([]proxy.Account, error) {
	db, err := l.db(node)
	if err != nil {
		return nil, err
	}
	for i, q := range queries {
		list, err := read(ctx, db, q)
		var me *mysql.MySQLError
		if err != nil && i+1 < len(queries) && errors.As(err, &me) && me.Number == erBadField {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading the accounts of node %s: %w", node, err)
		}
		return list, nil
	}
	return nil, nil // not reached
}

func read(ctx context.Context, db *sql.DB, q string) ([]proxy.Account, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []proxy.Account
	for rows.Next() {
		var a proxy.Account
		var plugin, auth, expired sql.NullString
		if err := rows.Scan(&a.User, &a.Host, &plugin, &auth, &expired); err != nil {
			return nil, err
		}
		a.Plugin, a.AuthString, a.PasswordExpired = plugin.String, auth.String, expired.String == "Y"
		list = append(list, a)
	}
	return list, rows.Err()
}

func (l *Loader) db(node string) (*sql.DB, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if db, ok := l.dbs[node]; ok {
		return db, nil
	}
	n, ok := l.nodes[node]
	if !ok {
		return nil, fmt.Errorf("no node named %q", node)
	}
	addr := n.Address
	c := mysql.NewConfig()
	c.User, c.Passwd = l.user, l.password
	c.Net, c.Addr = "tcp", addr
	if len(addr) > 0 && addr[0] == '/' {
		c.Net = "unix"
	}
	// Reads are bounded by their contexts; these only stop a connection
	// from hanging forever if a context is missing.
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 5*time.Second, 10*time.Second, 10*time.Second
	if err := n.TLS.Apply(c); err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(time.Minute)
	l.dbs[node] = db
	return db, nil
}

// Close closes the connection pools.
func (l *Loader) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, db := range l.dbs {
		_ = db.Close()
		delete(l.dbs, name)
	}
	return nil
}
