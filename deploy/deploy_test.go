package deploy

import (
	"bufio"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem/internal/config"
)

// root is the repository root, seen from this package's directory.
const root = ".."

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ---------------------------------------------------------------------------
// A YAML subset, enough for docker-compose.yml: block maps, block lists of
// scalars, one-line flow sequences of scalars, comments, quotes, anchors on
// maps (key: &name) and merge keys (<<: *name). Compose itself was checked
// with the real loader when the file was written; this keeps it honest.

type ynode struct {
	scalar string
	keys   []string
	m      map[string]*ynode
	list   []*ynode
}

type yline struct {
	indent int
	text   string
	no     int
}

type yparser struct {
	lines   []yline
	pos     int
	anchors map[string]*ynode
}

func parseYAML(t *testing.T, src string) *ynode {
	t.Helper()
	p := &yparser{anchors: map[string]*ynode{}}
	for i, l := range strings.Split(src, "\n") {
		l = stripComment(strings.TrimRight(l, " \t\r"))
		if strings.TrimSpace(l) == "" {
			continue
		}
		if strings.Contains(l, "\t") {
			t.Fatalf("docker-compose.yml:%d: tab in indentation", i+1)
		}
		text := strings.TrimLeft(l, " ")
		p.lines = append(p.lines, yline{indent: len(l) - len(text), text: text, no: i + 1})
	}
	n, err := p.block(0)
	if err != nil {
		t.Fatal(err)
	}
	if p.pos != len(p.lines) {
		t.Fatalf("docker-compose.yml:%d: unexpected indentation", p.lines[p.pos].no)
	}
	return n
}

// stripComment drops a # comment that starts a line or follows a blank,
// outside quotes.
func stripComment(l string) string {
	var quote rune
	for i, r := range l {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '#' && (i == 0 || l[i-1] == ' '):
			return l[:i]
		}
	}
	return l
}

func (p *yparser) block(indent int) (*ynode, error) {
	n := &ynode{}
	if p.pos < len(p.lines) && strings.HasPrefix(p.lines[p.pos].text, "- ") {
		for p.pos < len(p.lines) && p.lines[p.pos].indent == indent && strings.HasPrefix(p.lines[p.pos].text, "- ") {
			n.list = append(n.list, &ynode{scalar: unquote(strings.TrimPrefix(p.lines[p.pos].text, "- "))})
			p.pos++
		}
		return n, nil
	}
	n.m = map[string]*ynode{}
	for p.pos < len(p.lines) && p.lines[p.pos].indent == indent {
		l := p.lines[p.pos]
		key, val, ok := strings.Cut(l.text, ":")
		if !ok || (val != "" && val[0] != ' ') {
			return nil, fmt.Errorf("docker-compose.yml:%d: not a key: value line: %q", l.no, l.text)
		}
		key, val = unquote(key), strings.TrimSpace(val)
		if _, dup := n.m[key]; dup {
			return nil, fmt.Errorf("docker-compose.yml:%d: key %q twice", l.no, key)
		}
		p.pos++
		var child *ynode
		anchor, isAnchor := strings.CutPrefix(val, "&")
		if val == "" || isAnchor {
			child = &ynode{}
			if p.pos < len(p.lines) && p.lines[p.pos].indent > indent {
				var err error
				if child, err = p.block(p.lines[p.pos].indent); err != nil {
					return nil, err
				}
			}
			if isAnchor {
				p.anchors[anchor] = child
			}
		} else if alias, ok := strings.CutPrefix(val, "*"); ok {
			if child = p.anchors[alias]; child == nil {
				return nil, fmt.Errorf("docker-compose.yml:%d: unknown alias %q", l.no, alias)
			}
		} else if strings.HasPrefix(val, "[") && strings.HasSuffix(val, "]") {
			child = &ynode{}
			for _, item := range flowItems(val[1 : len(val)-1]) {
				child.list = append(child.list, &ynode{scalar: unquote(item)})
			}
		} else {
			child = &ynode{scalar: unquote(val)}
		}
		n.keys = append(n.keys, key)
		n.m[key] = child
	}
	return n, nil
}

// flowItems splits the inside of a flow sequence at commas outside quotes.
func flowItems(s string) []string {
	var items []string
	var quote rune
	start := 0
	for i, r := range s {
		switch {
		case quote != 0 && r == quote && (i == 0 || s[i-1] != '\\'):
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote = r
		case quote == 0 && r == ',':
			items = append(items, s[start:i])
			start = i + 1
		}
	}
	if strings.TrimSpace(s[start:]) != "" {
		items = append(items, s[start:])
	}
	return items
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		if u, err := strconv.Unquote(`"` + s[1:len(s)-1] + `"`); err == nil {
			return u
		}
		return s[1 : len(s)-1]
	}
	return s
}

// get follows keys through maps, merge keys (<<) included; nil if absent.
func (n *ynode) get(keys ...string) *ynode {
	for _, k := range keys {
		if n == nil || n.m == nil {
			return nil
		}
		next := n.m[k]
		if next == nil && n.m["<<"] != nil {
			next = n.m["<<"].get(k)
		}
		n = next
	}
	return n
}

func (n *ynode) str(keys ...string) string {
	if c := n.get(keys...); c != nil {
		return c.scalar
	}
	return ""
}

func (n *ynode) strs(keys ...string) []string {
	var out []string
	if c := n.get(keys...); c != nil {
		for _, e := range c.list {
			out = append(out, e.scalar)
		}
	}
	return out
}

func compose(t *testing.T) *ynode {
	t.Helper()
	return parseYAML(t, read(t, "docker-compose.yml"))
}

// mounts returns target → source of a service's volumes.
func mounts(svc *ynode) map[string]string {
	m := map[string]string{}
	for _, v := range svc.strs("volumes") {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			m[parts[1]] = parts[0]
		}
	}
	return m
}

// ---------------------------------------------------------------------------
// MySQL option files and init SQL.

// cnf reads a MySQL option file: [mysqld] keys with - and _ equivalent
// and a loose- prefix reported separately. plugin-load-add may repeat.
type cnfEntry struct {
	value string
	loose bool
}

func readCnf(t *testing.T, rel string) map[string][]cnfEntry {
	t.Helper()
	out := map[string][]cnfEntry{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(read(t, rel)))
	for no := 1; sc.Scan(); no++ {
		l := strings.TrimSpace(sc.Text())
		if i := strings.Index(l, "#"); i >= 0 {
			l = strings.TrimSpace(l[:i])
		}
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, "[") {
			section = strings.Trim(l, "[]")
			continue
		}
		if section != "mysqld" {
			t.Fatalf("%s:%d: option outside [mysqld]", rel, no)
		}
		k, v, _ := strings.Cut(l, "=")
		k = strings.ReplaceAll(strings.TrimSpace(k), "-", "_")
		loose := strings.HasPrefix(k, "loose_")
		k = strings.TrimPrefix(k, "loose_")
		out[k] = append(out[k], cnfEntry{value: strings.TrimSpace(v), loose: loose})
	}
	return out
}

var createUser = regexp.MustCompile(`CREATE USER '([^']+)'@'%' IDENTIFIED BY '([^']*)'`)

// sqlPasswords returns user → password from the CREATE USER statements.
func sqlPasswords(t *testing.T) map[string]string {
	t.Helper()
	pw := map[string]string{}
	for _, m := range createUser.FindAllStringSubmatch(read(t, "deploy/compose/init/01-accounts.sql"), -1) {
		pw[m[1]] = m[2]
	}
	return pw
}

// grants returns the privileges granted to user ON on, upper-cased.
func grants(sql, user, on string) []string {
	re := regexp.MustCompile(`GRANT (.+) ON ` + regexp.QuoteMeta(on) + ` TO '` + regexp.QuoteMeta(user) + `'@'%'`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(sql, -1) {
		for _, p := range strings.Split(m[1], ",") {
			out = append(out, strings.ToUpper(strings.TrimSpace(p)))
		}
	}
	return out
}

// ---------------------------------------------------------------------------

// The TOML files under deploy/ load with tandem's own loader, given the
// environment docker-compose.yml gives the tandem container, and agree with
// the accounts the nodes are initialised with.
func TestTOMLLoads(t *testing.T) {
	tandem := compose(t).get("services", "tandem")
	env := tandem.get("environment")
	if env == nil || len(env.keys) == 0 {
		t.Fatal("docker-compose.yml: tandem has no environment")
	}
	for _, k := range env.keys {
		t.Setenv(k, env.m[k].scalar)
	}
	var files []string
	err := filepath.WalkDir(filepath.Join(root, "deploy"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".toml") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, filepath.Join(root, "deploy/compose/tandem.toml")) {
		t.Fatalf("deploy/compose/tandem.toml not found among %v", files)
	}
	for _, f := range files {
		if _, err := config.Load(f); err != nil {
			t.Errorf("%v", err)
		}
	}

	cfg, err := config.Load(filepath.Join(root, "deploy/compose/tandem.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.Proxy.Listen, "0.0.0.0:3306") {
		t.Errorf("proxy.listen = %v: want 0.0.0.0:3306 inside the container", cfg.Proxy.Listen)
	}
	// The admin API stays on the container's loopback (and is not published).
	if host, _, err := net.SplitHostPort(cfg.Admin.Listen); err != nil || net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback() {
		t.Errorf("admin.listen = %q: want a loopback address", cfg.Admin.Listen)
	}
	var addrs []string
	for _, n := range cfg.Nodes {
		addrs = append(addrs, n.Address)
		svc, _, _ := strings.Cut(n.Address, ":")
		if compose(t).get("services", svc) == nil {
			t.Errorf("node %s: address %s names no compose service", n.Name, n.Address)
		}
	}
	if !slices.Equal(addrs, []string{"node-a:3306", "node-b:3306"}) {
		t.Errorf("node addresses %v, want node-a:3306 node-b:3306", addrs)
	}
	if cfg.Failover.InitialActive != "node-a" {
		t.Errorf("failover.initial_active = %q, want node-a (the writable node)", cfg.Failover.InitialActive)
	}
	if dir := filepath.Dir(cfg.Failover.StateFile); dir != "/var/lib/tandem" || mounts(tandem)[dir] == "" {
		t.Errorf("failover.state_file %s: want it on the volume mounted at /var/lib/tandem", cfg.Failover.StateFile)
	}
	if cfg.Failover.AdminPasswordEnv == "" || cfg.Failover.AdminPassword != "" {
		t.Error("failover: give the admin password through admin_password_env")
	}

	pw := sqlPasswords(t)
	for _, u := range cfg.Users {
		if u.Password != "" {
			t.Errorf("user %s: password in the file; use password_env", u.Name)
		}
		if got, ok := pw[u.Name]; !ok || got != u.Secret() {
			t.Errorf("user %s: tandem's password does not match init/01-accounts.sql", u.Name)
		}
	}
	if got, ok := pw[cfg.Failover.AdminUser]; !ok || got != cfg.Failover.AdminSecret() {
		t.Errorf("admin user %s: tandem's password does not match init/01-accounts.sql", cfg.Failover.AdminUser)
	}
	if grace, err := time.ParseDuration(tandem.str("stop_grace_period")); err != nil || grace <= cfg.Proxy.ShutdownTimeout.Duration {
		t.Errorf("tandem stop_grace_period %q: want more than proxy.shutdown_timeout %v", tandem.str("stop_grace_period"), cfg.Proxy.ShutdownTimeout)
	}
}

func TestCompose(t *testing.T) {
	c := compose(t)
	svcs := c.get("services")
	if svcs == nil {
		t.Fatal("no services")
	}
	if want := []string{"node-a", "node-b", "replication-setup", "tandem"}; !slices.Equal(svcs.keys, want) {
		t.Errorf("services %v, want %v", svcs.keys, want)
	}
	for _, name := range svcs.keys {
		svc := svcs.m[name]
		// Only tandem is published, and only on the host's loopback.
		ports := svc.strs("ports")
		if name == "tandem" {
			if !slices.Equal(ports, []string{"127.0.0.1:3306:3306"}) {
				t.Errorf("tandem ports %v, want [127.0.0.1:3306:3306]", ports)
			}
		} else if svc.get("ports") != nil {
			t.Errorf("%s publishes ports %v: only tandem should", name, ports)
		}
		// Every bind mount's source is in the repository.
		for target, src := range mounts(svc) {
			if !strings.HasPrefix(src, "./") {
				continue
			}
			if fi, err := os.Stat(filepath.Join(root, src)); err != nil || fi.IsDir() {
				t.Errorf("%s: mount %s -> %s: source is not a file in the repository", name, src, target)
			} else if fi.Mode().Perm()&0o002 != 0 {
				t.Errorf("%s: %s is world-writable (mysqld ignores such option files)", name, src)
			}
		}
	}

	for _, n := range []string{"node-a", "node-b"} {
		svc := svcs.m[n]
		if img := svc.str("image"); img != "mysql:8.0" {
			t.Errorf("%s image %q, want mysql:8.0", n, img)
		}
		if hc := strings.Join(svc.strs("healthcheck", "test"), " "); !strings.Contains(hc, "mysqladmin ping") || !strings.Contains(hc, "--host=127.0.0.1") {
			t.Errorf("%s healthcheck %q: want mysqladmin ping over TCP (the init server listens on its socket only)", n, hc)
		}
		if svc.str("hostname") != n {
			t.Errorf("%s: hostname %q, want %s", n, svc.str("hostname"), n)
		}
		if svc.get("environment", "MYSQL_DATABASE") != nil || svc.get("environment", "MYSQL_USER") != nil {
			t.Errorf("%s: MYSQL_DATABASE/MYSQL_USER are created with binary logging on; init/01-accounts.sql creates them", n)
		}
		m := mounts(svc)
		for _, target := range []string{"/etc/mysql/conf.d/common.cnf", "/etc/mysql/conf.d/node.cnf", "/docker-entrypoint-initdb.d/01-accounts.sql", "/docker-entrypoint-initdb.d/99-reset-gtid-history.sql", "/var/lib/mysql"} {
			if m[target] == "" {
				t.Errorf("%s: nothing mounted at %s", n, target)
			}
		}
		if want := "./deploy/compose/mysql/" + n + ".cnf"; m["/etc/mysql/conf.d/node.cnf"] != want {
			t.Errorf("%s: node.cnf is %s, want %s", n, m["/etc/mysql/conf.d/node.cnf"], want)
		}
		_, readOnly := m["/docker-entrypoint-initdb.d/90-node-b-read-only.sql"]
		if readOnly != (n == "node-b") {
			t.Errorf("%s: 90-node-b-read-only.sql mounted = %v", n, readOnly)
		}
	}

	rs := svcs.m["replication-setup"]
	if rs.str("image") != "mysql:8.0" {
		t.Errorf("replication-setup image %q, want mysql:8.0", rs.str("image"))
	}
	for _, n := range []string{"node-a", "node-b"} {
		if got := rs.str("depends_on", n, "condition"); got != "service_healthy" {
			t.Errorf("replication-setup depends_on %s: condition %q, want service_healthy", n, got)
		}
	}
	if rs.str("environment", "MYSQL_ROOT_PASSWORD") != svcs.m["node-a"].str("environment", "MYSQL_ROOT_PASSWORD") {
		t.Error("replication-setup and the nodes disagree on MYSQL_ROOT_PASSWORD")
	}
	if got := rs.str("restart"); got != "no" {
		t.Errorf("replication-setup restart %q, want no (one-shot)", got)
	}

	tandem := svcs.m["tandem"]
	if tandem.str("build", "context") != "." {
		t.Errorf("tandem build context %q, want .", tandem.str("build", "context"))
	}
	if got := tandem.str("depends_on", "replication-setup", "condition"); got != "service_completed_successfully" {
		t.Errorf("tandem depends_on replication-setup: condition %q, want service_completed_successfully", got)
	}
	if hc := strings.Join(tandem.strs("healthcheck", "test"), " "); hc != "CMD /usr/local/bin/tandem status -config /etc/tandem/tandem.toml" {
		t.Errorf("tandem healthcheck %q: want tandem status -config /etc/tandem/tandem.toml", hc)
	}
	m := mounts(tandem)
	if m["/etc/tandem/tandem.toml"] != "./deploy/compose/tandem.toml" {
		t.Errorf("tandem: /etc/tandem/tandem.toml comes from %q", m["/etc/tandem/tandem.toml"])
	}
	if src := m["/var/lib/tandem"]; src == "" || c.get("volumes", src) == nil {
		t.Errorf("tandem: /var/lib/tandem is %q, want a named volume", src)
	}
}

func TestMySQLConfig(t *testing.T) {
	common := readCnf(t, "deploy/compose/mysql/common.cnf")
	want := map[string]string{
		"gtid_mode": "ON", "enforce_gtid_consistency": "ON", "log_replica_updates": "ON",
		"binlog_format": "ROW", "auto_increment_increment": "2",
	}
	for k, v := range want {
		if e := common[k]; len(e) != 1 || !strings.EqualFold(e[0].value, v) || e[0].loose {
			t.Errorf("common.cnf: %s = %v, want %s", k, e, v)
		}
	}
	// Semi-sync, 8.0.26+ names; loose- because mysqld --initialize does not
	// load plugin-load-add plugins and would reject the variables.
	var plugins []string
	for _, e := range common["plugin_load_add"] {
		plugins = append(plugins, e.value)
	}
	if !slices.Equal(plugins, []string{"semisync_source.so", "semisync_replica.so"}) {
		t.Errorf("common.cnf: plugin-load-add %v, want semisync_source.so and semisync_replica.so", plugins)
	}
	for k, v := range map[string]string{
		"rpl_semi_sync_source_enabled": "ON", "rpl_semi_sync_replica_enabled": "ON",
		"rpl_semi_sync_source_wait_point": "AFTER_SYNC",
	} {
		if e := common[k]; len(e) != 1 || !strings.EqualFold(e[0].value, v) || !e[0].loose {
			t.Errorf("common.cnf: want loose-%s = %s, got %v", k, v, e)
		}
	}
	for i, n := range []string{"node-a", "node-b"} {
		node := readCnf(t, "deploy/compose/mysql/"+n+".cnf")
		for k := range node {
			if common[k] != nil {
				t.Errorf("%s.cnf and common.cnf both set %s (include order is not guaranteed)", n, k)
			}
		}
		all := map[string][]cnfEntry{}
		for k, v := range common {
			all[k] = v
		}
		for k, v := range node {
			all[k] = v
		}
		id := strconv.Itoa(i + 1)
		if e := all["server_id"]; len(e) != 1 || e[0].value != id {
			t.Errorf("%s: server_id %v, want %s", n, e, id)
		}
		if e := all["auto_increment_offset"]; len(e) != 1 || e[0].value != id {
			t.Errorf("%s: auto_increment_offset %v, want %s", n, e, id)
		}
		for k := range all {
			switch {
			case k == "read_only" || k == "super_read_only":
				t.Errorf("%s: %s in an option file breaks the image's first initialisation; persist it from init SQL", n, k)
			case k == "default_authentication_plugin" || k == "authentication_policy":
				t.Errorf("%s: %s: leave the default (caching_sha2_password)", n, k)
			case strings.Contains(k, "semi_sync_master") || strings.Contains(k, "semi_sync_slave"):
				t.Errorf("%s: %s: pre-8.0.26 semi-sync name", n, k)
			}
		}
	}
}

func TestInitSQL(t *testing.T) {
	sql := read(t, "deploy/compose/init/01-accounts.sql")
	logOff := strings.Index(sql, "SET SESSION sql_log_bin = 0;")
	if first := strings.Index(sql, "CREATE "); logOff < 0 || first < logOff {
		t.Error("01-accounts.sql: SET SESSION sql_log_bin = 0 must come before any CREATE")
	}
	if !strings.Contains(sql, "CREATE DATABASE app;") {
		t.Error("01-accounts.sql: no CREATE DATABASE app")
	}
	pw := sqlPasswords(t)
	for u, p := range map[string]string{"app": "apppass", "tandem": "tandem", "repl": "replpass"} {
		if pw[u] != p {
			t.Errorf("01-accounts.sql: user %s password %q, want %q", u, pw[u], p)
		}
	}
	if g := grants(sql, "app", "`app`.*"); !slices.Contains(g, "ALL PRIVILEGES") {
		t.Errorf("app grants on app.*: %v", g)
	}
	if g := grants(sql, "repl", "*.*"); !slices.Equal(g, []string{"REPLICATION SLAVE"}) {
		t.Errorf("repl grants %v, want REPLICATION SLAVE only", g)
	}
	g := grants(sql, "tandem", "*.*")
	for _, need := range []string{"SYSTEM_VARIABLES_ADMIN", "REPLICATION CLIENT", "REPLICATION_SLAVE_ADMIN", "CONNECTION_ADMIN", "PROCESS"} {
		if !slices.Contains(g, need) && !(need == "SYSTEM_VARIABLES_ADMIN" && slices.Contains(g, "SUPER")) {
			t.Errorf("tandem lacks %s on *.* (has %v)", need, g)
		}
	}
	if schema := config.Default().Failover.Schema; !slices.Contains(grants(sql, "tandem", "`"+schema+"`.*"), "ALL PRIVILEGES") {
		t.Errorf("tandem lacks ALL PRIVILEGES on `%s`.*", schema)
	}

	ro := read(t, "deploy/compose/init/90-node-b-read-only.sql")
	for _, s := range []string{"SET PERSIST_ONLY read_only = ON;", "SET PERSIST_ONLY super_read_only = ON;"} {
		if !strings.Contains(ro, s) {
			t.Errorf("90-node-b-read-only.sql: missing %s", s)
		}
	}
	if reset := read(t, "deploy/compose/init/99-reset-gtid-history.sql"); !strings.Contains(reset, "RESET MASTER;") {
		t.Error("99-reset-gtid-history.sql: no RESET MASTER")
	}
}

func TestReplicationSetup(t *testing.T) {
	const rel = "deploy/compose/replication-setup.sh"
	sh := read(t, rel)
	for _, s := range []string{
		"CHANGE REPLICATION SOURCE TO", "SOURCE_USER='$REPL_USER'", "SOURCE_PASSWORD='$REPL_PASSWORD'",
		"SOURCE_AUTO_POSITION=1", "GET_SOURCE_PUBLIC_KEY=1", "START REPLICA;", "SHOW REPLICA STATUS",
		"REPL_USER=repl\n",
	} {
		if !strings.Contains(sh, s) {
			t.Errorf("%s: missing %q", rel, s)
		}
	}
	if m := regexp.MustCompile(`REPL_PASSWORD=(\S+)`).FindStringSubmatch(sh); m == nil || m[1] != sqlPasswords(t)["repl"] {
		t.Errorf("%s: REPL_PASSWORD does not match the repl account of init/01-accounts.sql", rel)
	}
	for _, old := range []string{"CHANGE MASTER", "START SLAVE", "MASTER_AUTO_POSITION"} {
		if strings.Contains(sh, old) {
			t.Errorf("%s: %s is the pre-8.0.23 syntax", rel, old)
		}
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		if out, err := exec.Command(bash, "-n", filepath.Join(root, rel)).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", rel, err, out)
		}
	}
}

// dockerfile returns the instructions, continuation lines joined.
func dockerfile(t *testing.T) []string {
	t.Helper()
	var out []string
	cur := ""
	for _, l := range strings.Split(read(t, "Dockerfile"), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") || (l == "" && cur == "") {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur += s + " "
			continue
		}
		out = append(out, strings.Join(strings.Fields(cur+l), " "))
		cur = ""
	}
	return out
}

func TestDockerfile(t *testing.T) {
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(read(t, "go.mod"))
	if goVersion == nil {
		t.Fatal("go.mod: no go directive")
	}
	var froms []string
	var last []string // instructions of the final stage
	for _, ins := range dockerfile(t) {
		if strings.HasPrefix(ins, "FROM ") {
			froms = append(froms, ins)
			last = nil
		}
		last = append(last, ins)
	}
	if want := "FROM golang:" + goVersion[1] + "-bookworm AS build"; len(froms) != 2 || froms[0] != want {
		t.Fatalf("stages %q, want %q then the runtime image", froms, want)
	}
	if froms[1] != "FROM gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage %q", froms[1])
	}
	all := strings.Join(dockerfile(t), "\n")
	for _, s := range []string{
		"ENV CGO_ENABLED=0",
		`go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/tandem ./cmd/tandem`,
	} {
		if !strings.Contains(all, s) {
			t.Errorf("Dockerfile: missing %s", s)
		}
	}
	if !strings.Contains(read(t, "cmd/tandem/main.go"), "var version = ") {
		t.Error("cmd/tandem/main.go has no var version for -X main.version")
	}
	final := strings.Join(last, "\n")
	cfgPath := "/etc/tandem/tandem.toml"
	stateDir := filepath.Dir(config.Default().Failover.StateFile)
	for _, s := range []string{
		"COPY --from=build /out/tandem /usr/local/bin/tandem",
		"COPY --from=build --chown=65532:65532 /out/state " + stateDir,
		`VOLUME ["` + stateDir + `"]`,
		"USER 65532:65532",
		"EXPOSE 3306",
		`ENTRYPOINT ["/usr/local/bin/tandem"]`,
		`CMD ["serve", "-config", "` + cfgPath + `"]`,
	} {
		if !strings.Contains(final, s) {
			t.Errorf("Dockerfile final stage: missing %s", s)
		}
	}
	if !strings.Contains(read(t, "cmd/tandem/main.go"), `fs.String("config", "`+cfgPath+`"`) {
		t.Errorf("cmd/tandem: -config flag or its default is not %s", cfgPath)
	}
}

// dockerignored reports whether a .dockerignore pattern excludes rel.
func dockerignored(pattern, rel string) bool {
	pattern = strings.Trim(pattern, "/")
	if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
		for p := rel; ; {
			if m, _ := filepath.Match(rest, p); m {
				return true
			}
			_, after, ok := strings.Cut(p, "/")
			if !ok {
				return false
			}
			p = after
		}
	}
	for p := rel; p != "." && p != "/"; p = filepath.Dir(p) {
		if m, _ := filepath.Match(pattern, p); m {
			return true
		}
	}
	return false
}

func TestDockerignore(t *testing.T) {
	var patterns []string
	for _, l := range strings.Split(read(t, ".dockerignore"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	for _, must := range []string{".git", "bin/", "bench-results/", ".demo/"} {
		if !slices.Contains(patterns, must) {
			t.Errorf(".dockerignore: missing %s", must)
		}
	}
	// Nothing the build needs is left out: go.mod, go.sum and every
	// non-test Go file outside the excluded directories.
	var inputs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && slices.ContainsFunc(patterns, func(p string) bool { return dockerignored(p, rel) }) {
				return filepath.SkipDir
			}
			return nil
		}
		if rel == "go.mod" || rel == "go.sum" || strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go") {
			inputs = append(inputs, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, need := range []string{"go.mod", "go.sum", "cmd/tandem/main.go"} {
		if !slices.Contains(inputs, need) {
			t.Errorf(".dockerignore leaves out %s", need)
		}
	}
	for _, in := range inputs {
		for _, p := range patterns {
			if dockerignored(p, in) {
				t.Errorf(".dockerignore pattern %q leaves out build input %s", p, in)
			}
		}
	}
}

// unit reads a systemd unit: section → key → values.
func unit(t *testing.T, rel string) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	section := ""
	for _, l := range strings.Split(read(t, rel), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("%s: bad line %q", rel, l)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	const rel = "deploy/tandem.service"
	u := unit(t, rel)
	svc := u["Service"]
	want := map[string]string{
		"Type": "simple", "User": "tandem",
		"ExecStart":                "/usr/local/bin/tandem serve -config /etc/tandem/tandem.toml",
		"Restart":                  "on-failure",
		"StateDirectory":           "tandem",
		"EnvironmentFile":          "-/etc/tandem/tandem.env",
		"NoNewPrivileges":          "yes",
		"ProtectSystem":            "strict",
		"ProtectHome":              "yes",
		"PrivateTmp":               "yes",
		"ReadWritePaths":           "/var/lib/tandem",
		"LimitNOFILE":              "65536",
		"KillSignal":               "SIGTERM",
		"RestartPreventExitStatus": "2",
	}
	for k, v := range want {
		if got := svc[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s: %s=%v, want %s", rel, k, got, v)
		}
	}
	if !strings.Contains(read(t, "cmd/tandem/main.go"), "exitConfig = 2") {
		t.Error("cmd/tandem no longer exits 2 on a bad configuration: fix RestartPreventExitStatus")
	}
	if dir := "/var/lib/" + svc["StateDirectory"][0]; dir != filepath.Dir(config.Default().Failover.StateFile) {
		t.Errorf("StateDirectory %s is not the directory of the default failover.state_file", dir)
	}
	stop, err := time.ParseDuration(strings.Join(svc["TimeoutStopSec"], ""))
	if def := config.Default().Proxy.ShutdownTimeout.Duration; err != nil || stop <= def {
		t.Errorf("%s: TimeoutStopSec=%v: want more than the default shutdown_timeout %v", rel, svc["TimeoutStopSec"], def)
	}
	if got := u["Install"]["WantedBy"]; !slices.Equal(got, []string{"multi-user.target"}) {
		t.Errorf("%s: WantedBy=%v", rel, got)
	}
}
