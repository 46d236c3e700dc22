package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `
[proxy]
listen = ["127.0.0.1:3306", "unix:/tmp/tandem.sock"]
[[user]]
name = "app"
password = "apppass"
[[node]]
name = "a"
address = "127.0.0.1:13306"
[[node]]
name = "b"
address = "127.0.0.1:13307"
[failover]
admin_password = "tandem"
`

func load(t *testing.T, text string) (*File, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tandem.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

func TestGoodConfigGetsDefaults(t *testing.T) {
	f, err := load(t, good)
	if err != nil {
		t.Fatal(err)
	}
	if f.Failover.InitialActive != "a" || f.Proxy.MaxConnections != 4096 || f.Failover.Interval.Duration != 250*time.Millisecond ||
		f.Users[0].Secret() != "apppass" || f.Failover.AdminSecret() != "tandem" || f.Log.Level != "info" ||
		f.Proxy.MaxHandshakes != 64 || f.Proxy.NetWriteTimeout.Duration != 60*time.Second || !f.Proxy.SettleCommits ||
		f.Failover.AckTimeout.Duration != time.Second || f.Failover.SemiSyncTimeout.Duration != 30*time.Second ||
		f.Failover.MaxSwitchoverTimeout.Duration != time.Minute || len(f.Pool.Users) != 0 || f.Pool.Size != 16 ||
		f.Pool.IdleTimeout.Duration != time.Minute || f.Pool.MaxAge.Duration != time.Hour {
		t.Fatalf("defaults not applied: %+v", f)
	}
	f, err = load(t, strings.Replace(good, "[proxy]", "[proxy]\nsettle_commits = false", 1))
	if err != nil {
		t.Fatal(err)
	}
	if f.Proxy.SettleCommits {
		t.Fatal("settle_commits = false not applied")
	}
}

func TestExampleConfigLoads(t *testing.T) {
	t.Setenv("TANDEM_ADMIN_PASSWORD", "tandem")
	f, err := Load("../../testdata/tandem.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Users) != 2 || f.Users[1].Secret() != "tandem" || f.Failover.AdminSecret() != "tandem" ||
		len(f.Pool.Users) != 0 || f.Pool.Size != 16 || f.Pool.MaxAge.Duration != time.Hour {
		t.Fatalf("example config: %+v", f)
	}
}

func TestPasswordFromEnvAndFile(t *testing.T) {
	t.Setenv("APP_PW", "from-env")
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(good, `password = "apppass"`, `password_env = "APP_PW"`, 1) +
		"\n[[user]]\nname = \"other\"\npassword_file = \"" + pwFile + "\"\n"
	f, err := load(t, text)
	if err != nil {
		t.Fatal(err)
	}
	if f.Users[0].Secret() != "from-env" || f.Users[1].Secret() != "from-file" {
		t.Fatalf("secrets: %q %q", f.Users[0].Secret(), f.Users[1].Secret())
	}
}

func TestBadConfigNamesTheKey(t *testing.T) {
	for _, c := range []struct{ edit, want string }{
		{"\nbogus = 1", "unknown key failover.bogus"},
		{"\n[proxy2]\nx = 1", "unknown key proxy2"},
		{`|listen = ["127.0.0.1:3306", "unix:/tmp/tandem.sock"]|listen = ["localhost"]`, "proxy.listen[0]"},
		{`|listen = ["127.0.0.1:3306", "unix:/tmp/tandem.sock"]|listen = ["unix:relative.sock"]`, "proxy.listen[0]"},
		{`|listen = ["127.0.0.1:3306", "unix:/tmp/tandem.sock"]|listen = []`, "proxy.listen"},
		{`|address = "127.0.0.1:13307"|address = "127.0.0.1:99999"`, "node[1].address"},
		{`|name = "b"|name = "a"`, `node[1].name: "a" defined twice`},
		{"|[[node]]\nname = \"b\"\naddress = \"127.0.0.1:13307\"|", ""},
		{`|password = "apppass"|password = "x"
password_env = "Y"`, "user[0] (app): password, password_env and password_file: set only one"},
		{`|password = "apppass"|password_env = "TANDEM_TEST_UNSET_VAR"`, "TANDEM_TEST_UNSET_VAR is not set"},
		{"\n[log]\nlevel = \"loud\"", "log.level"},
		{"|[failover]|[failover]\ninterval = \"soon\"", "interval"},
		{"|[failover]|[failover]\nfail_after = 0", "failover.fail_after"},
		{"|[failover]|[failover]\ninitial_active = \"c\"", "failover.initial_active"},
		{"|[failover]|[failover]\nschema = \"bad-name\"", "failover.schema"},
		{"|[proxy]|[proxy]\ntls_cert = \"/x.pem\"", "proxy.tls_cert, proxy.tls_key"},
		{"|[proxy]|[proxy]\nmax_connections = -1", "proxy.max_connections"},
		{"|[proxy]|[proxy]\nmax_connections = \"many\"", "max_connections"},
		{"|[proxy]|[proxy]\nmax_handshakes = 0", "proxy.max_handshakes"},
		{"\n[pool]\nusers = [\"app\"]\nsize = 0", "pool.size"},
		{"\n[pool]\nusers = [\"app\", \"\"]", "pool.users[1]"},
		{"\n[pool]\nusers = [\"app\"]\nmin_idle = 17", "pool.min_idle"},
		{"\n[pool]\nusers = [\"app\"]\nidle_timeout = \"0s\"", "pool.idle_timeout"},
		{"\n[pool]\nusers = [\"app\"]\nmax_age = \"-1s\"", "pool.max_age"},
		{"\n[pool]\nusers = [\"*\"]\nmin_idle = 2\nmax_age = \"10m\"", ""},
		{"\n[pool]\nsizes = 3", "unknown key pool.sizes"},
		{"|[proxy]|[proxy]\nnet_write_timeout = \"0s\"", "proxy.net_write_timeout"},
		{"\n[alert]\n[[alert.webhook]]\nurl = \"ftp://x\"", "alert.webhook[0].URL"},
		{"\n[alert]\n[[alert.webhook]]\nurl = \"http://127.0.0.1:9/hook\"\nformat = \"xml\"", "alert.webhook[0].Format"},
		{"\n[[admin.bogus]]", "unknown key admin.bogus"},
		{"\n[admin]\nlisten = \"0.0.0.0:9306\"", "admin.listen"},
		{"\n[admin]\nallowed_hosts = [\"tandem1.example:9306\"]", "admin.allowed_hosts[0]"},
		{"\n[admin]\nallowed_hosts = [\"ok.example\", \"http://x\"]", "admin.allowed_hosts[1]"},
		{"\n[admin]\nallowed_hosts = [\"tandem1.example\", \"10.0.0.5\"]", ""},
		{"\n[etcd]\nid = \"t1\"", "etcd.endpoints: missing"},
		{"\n[etcd]\nendpoints = [\"e1:2379\"]", "etcd.id: missing"},
		{"\n[etcd]\nendpoints = [\"e1\"]\nid = \"t1\"", "etcd.endpoints"},
		{"\n[etcd]\nendpoints = [\"e1:2379\"]\nid = \"t/1\"", "etcd.id"},
		{"\n[etcd]\nendpoints = [\"e1:2379\"]\nid = \"t1\"\nprefix = \"x\"", "etcd.prefix"},
		{"\n[etcd]\nendpoints = [\"e1:2379\"]\nid = \"t1\"\nlease_ttl = \"1500ms\"", "etcd.lease_ttl"},
		{"\n[etcd]\nendpoints = [\"e1:2379\"]\nid = \"t1\"\nrenew_interval = \"900ms\"", "etcd.renew_interval: renew_interval (900ms)"},
		{"\n[etcd]\nendpoints = [\"e1:2379\"]\nid = \"t1\"\nca_file = \"/nonexistent/ca.pem\"", "etcd.ca_file"},
		{"\n[etcd]\nendpoints = [\"e1:2379\"]\nid = \"t1\"\ncert_file = \"/dev/null\"", "etcd.cert_file, etcd.key_file"},
		{"\n[etcd]\nendpoints = [\"e1:2379\"]\nid = \"t1\"\nusername = \"u\"", "etcd.username, etcd.password"},
		{"\n[etcd]\nendpoints = [\"e1:2379\"]\nid = \"t1\"\npassword = \"p\"\npassword_env = \"X\"", "etcd.password, password_env"},
		{"\n[etcd]\nendpoints = [\"e1:2379\"]\nid = \"t1\"\nbogus = 1", "unknown key etcd.bogus"},
		{"\n[etcd]\nendpoints = [\"e1:2379\"]\nid = \"t1\"\npreferred_leader = \"a b\"", "etcd.preferred_leader"},
	} {
		text := good
		if strings.HasPrefix(c.edit, "|") {
			parts := strings.SplitN(c.edit[1:], "|", 2)
			text = strings.Replace(text, parts[0], parts[1], 1)
		} else {
			text += c.edit
		}
		_, err := load(t, text)
		if c.want == "" { // one node is allowed; good allowed_hosts
			if err != nil {
				t.Errorf("edit %q: %v", c.edit, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("edit %q: error %v, want it to mention %q", c.edit, err, c.want)
		}
	}
}

func TestEtcdSection(t *testing.T) {
	f, err := load(t, good)
	if err != nil {
		t.Fatal(err)
	}
	if f.Etcd.Enabled() {
		t.Fatal("etcd enabled without an [etcd] section")
	}
	t.Setenv("ETCD_PW", "secret")
	f, err = load(t, good+`
[etcd]
endpoints = ["10.0.0.1:2379", "10.0.0.2:2379", "10.0.0.3:2379"]
id = "app1"
username = "tandem"
password_env = "ETCD_PW"
lease_ttl = "2s"
preferred_leader = "witness"
`)
	if err != nil {
		t.Fatal(err)
	}
	c := f.Etcd.CoordConfig()
	if !f.Etcd.Enabled() || c.ID != "app1" || c.Prefix != "/tandem" || c.LeaseTTL != 2*time.Second ||
		c.RenewInterval != 250*time.Millisecond || c.Password != "secret" || c.Username != "tandem" ||
		c.Admin != "127.0.0.1:9306" || c.Host == "" || len(c.Endpoints) != 3 || c.PreferredLeader != "witness" {
		t.Fatalf("coord config: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.toml")); err == nil || !strings.Contains(err.Error(), "none.toml") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestUsersAreOptional(t *testing.T) {
	text := strings.Replace(good, "[[user]]\nname = \"app\"\npassword = \"apppass\"\n", "", 1)
	if strings.Contains(text, "[[user]]") {
		t.Fatal("the test config still has a [[user]]")
	}
	f, err := load(t, text)
	if err != nil {
		t.Fatalf("a config without [[user]]: %v", err)
	}
	if len(f.Users) != 0 || f.Proxy.AccountsRefresh.Duration != 5*time.Second {
		t.Fatalf("no users: %+v, accounts_refresh %v", f.Users, f.Proxy.AccountsRefresh)
	}
	if _, err := load(t, strings.Replace(text, "[proxy]\n", "[proxy]\naccounts_refresh = \"-1s\"\n", 1)); err == nil ||
		!strings.Contains(err.Error(), "proxy.accounts_refresh") {
		t.Fatalf("negative accounts_refresh: %v", err)
	}
}

// TestNodeTLS: each node's tls keys are checked up front, naming the node
// and the key; the default encrypts a TCP link whenever the node offers it.
func TestNodeTLS(t *testing.T) {
	f, err := load(t, good)
	if err != nil {
		t.Fatal(err)
	}
	if f.Nodes[0].TLS != "preferred" || !f.Nodes[0].TLSClient().Optional() {
		t.Fatalf("default tls for a TCP node: %q", f.Nodes[0].TLS)
	}
	sock := strings.Replace(good, `address = "127.0.0.1:13307"`, `address = "/run/mysqld/mysqld.sock"`, 1)
	if f, err = load(t, sock); err != nil || f.Nodes[1].TLS != "off" || f.Nodes[1].TLSClient() != nil {
		t.Fatalf("default tls for a socket node: %v", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte(testCAPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	full := strings.Replace(good, `address = "127.0.0.1:13307"`, `address = "127.0.0.1:13307"
tls = "verify-full"
tls_ca = "`+ca+`"`, 1)
	if f, err = load(t, full); err != nil || f.Nodes[1].TLSClient().Config().ServerName != "127.0.0.1" {
		t.Fatalf("verify-full: %v", err)
	}
	// -log-level validates again: the tls keys must survive it.
	if err := f.Validate(); err != nil || f.Nodes[1].TLSClient() == nil {
		t.Fatalf("second Validate: %v", err)
	}
	node1 := `address = "127.0.0.1:13307"`
	for _, c := range []struct{ add, want string }{
		{`tls = "on"`, `node[1].tls: "on" is not one of off, preferred, required, verify-ca, verify-full`},
		{`tls = "verify-ca"`, "node[1].tls_ca: missing"},
		{`tls = "verify-full"` + "\ntls_ca = \"/nonexistent/ca.pem\"", "node[1].tls_ca: open /nonexistent/ca.pem"},
		{`tls = "required"` + "\ntls_ca = \"" + ca + "\"", "node[1].tls_ca: set, but tls = \"required\" checks no certificate"},
		{`tls = "off"` + "\ntls_cert = \"/x.pem\"", "node[1].tls_cert: set, but tls is off"},
		{`tls = "required"` + "\ntls_cert = \"/x.pem\"", "node[1].tls_key: missing"},
		{`tls = "required"` + "\ntls_cert = \"/x.pem\"\ntls_key = \"/y.pem\"", "node[1].tls_cert: open /x.pem"},
		{`tls = "verify-ca"` + "\ntls_ca = \"" + ca + "\"\ntls_server_name = \"db\"", "node[1].tls_server_name: set, but only tls = \"verify-full\""},
		{"tls_bogus = 1", "unknown key node.tls_bogus"},
	} {
		_, err := load(t, strings.Replace(good, node1, node1+"\n"+c.add, 1))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.add, err, c.want)
		}
	}
}

// testCAPEM is a self-signed CA certificate (made with openssl; only
// parsed here).
const testCAPEM = `-----BEGIN CERTIFICATE-----
MIIBljCCAT2gAwIBAgIUBXP7OTDNnuU3DWmTIqRjIHj4ZqUwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVdGFuZGVtIGNvbmZpZyB0ZXN0IENBMCAXDTI2MTEzMDEyMDQx
MVoYDzIxMjYxMTA2MTIwNDExWjAgMR4wHAYDVQQDDBV0YW5kZW0gY29uZmlnIHRl
c3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT4GkhK/1ooWTTAuk0jHNnb
J8T4OJua5V8ZMEfnjJyv29qUTx3l4KKR9iqVFmhXtygXTEBPz6QtSbk/ZgKUrx/8
o1MwUTAdBgNVHQ4EFgQUch7I4eKmkkzuHWbhy8bWNwxSE0owHwYDVR0jBBgwFoAU
ch7I4eKmkkzuHWbhy8bWNwxSE0owDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD
AgNHADBEAiAQHjJpIvLhRfgi85adS5ka9lemkQ2XKe+9tecDMNSowAIgArBZqYCQ
2YV3rJEws7cnj2Zl0sQn5QUpjgEI0FpyFuE=
-----END CERTIFICATE-----
`
