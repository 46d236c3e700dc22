package replication

import (
	"context"
	"strings"
	"testing"
)

func TestChangeSourceSQL(t *testing.T) {
	src := Source{Host: "10.0.0.2", Port: 3307, User: "repl", Password: "it's"}
	for _, c := range []struct {
		flavor  Flavor
		version string
		src     Source
		want    string
	}{
		{MariaDB, "10.11.14-MariaDB-0+deb12u2-log", src,
			"CHANGE MASTER TO MASTER_HOST = '10.0.0.2', MASTER_PORT = 3307, MASTER_USER = 'repl', MASTER_PASSWORD = 'it''s', MASTER_USE_GTID = slave_pos"},
		{MariaDB, "10.11.14-MariaDB", Source{Host: "db-b", Port: 3306},
			"CHANGE MASTER TO MASTER_HOST = 'db-b', MASTER_PORT = 3306, MASTER_USE_GTID = slave_pos"},
		{MySQL, "8.0.22", src,
			"CHANGE MASTER TO MASTER_HOST = '10.0.0.2', MASTER_PORT = 3307, MASTER_USER = 'repl', MASTER_PASSWORD = 'it''s', MASTER_AUTO_POSITION = 1"},
		{MySQL, "8.0.36-28", src,
			"CHANGE REPLICATION SOURCE TO SOURCE_HOST = '10.0.0.2', SOURCE_PORT = 3307, SOURCE_USER = 'repl', SOURCE_PASSWORD = 'it''s', SOURCE_AUTO_POSITION = 1"},
		{MySQL, "garbage", Source{Host: "h", Port: 1},
			"CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'h', SOURCE_PORT = 1, SOURCE_AUTO_POSITION = 1"},
	} {
		if got := changeSourceSQL(c.flavor, c.version, c.src); got != c.want {
			t.Errorf("%v %s:\n got %s\nwant %s", c.flavor, c.version, got, c.want)
		}
	}
}

func TestSourceValidate(t *testing.T) {
	for _, c := range []struct {
		src  Source
		want string // substring of the error; "" for none
	}{
		{Source{Host: "127.0.0.1", Port: 3306, User: "repl", Password: "p'q"}, ""},
		{Source{Host: " ", Port: 3306}, "host is empty"},
		{Source{Host: "h", Port: 0}, "port 0"},
		{Source{Host: "h", Port: 65536}, "port 65536"},
		{Source{Host: "h", Port: 1, User: "u", Password: `a\b`}, "backslash"},
		{Source{Host: "h\x00", Port: 1}, "NUL"},
	} {
		err := c.src.validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.src, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: error %v; want one containing %q", c.src, err, c.want)
		}
	}
}

// Bad input is refused before any statement reaches a node (nil
// Queriers would panic if used).
func TestRejoinRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	if err := Rejoin(ctx, nil, nil, UnknownFlavor, Source{Host: "h", Port: 1}); err == nil || !strings.Contains(err.Error(), "flavor") {
		t.Errorf("unknown flavor: %v", err)
	}
	if err := Rejoin(ctx, nil, nil, MariaDB, Source{Host: "h", Port: -1}); err == nil || !strings.Contains(err.Error(), "port") {
		t.Errorf("bad port: %v", err)
	}
}
