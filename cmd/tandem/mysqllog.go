package main

import (
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/hashicorp/go-hclog"
)

// mysqlLogger sends go-sql-driver's own log lines (a connection that broke
// under it, a bad packet) through tandem's logger, instead of the driver's
// default plain-text logger on stderr that would break JSON logs. The
// driver logs only failures, hence Warn.
type mysqlLogger struct{ log hclog.Logger }

func (l mysqlLogger) Print(v ...any) {
	l.log.Warn(strings.TrimSpace(fmt.Sprint(v...)))
}

// useMySQLLogger makes log the driver's logger. It must run before any
// driver configuration is made: mysql.NewConfig copies the logger of the
// moment.
func useMySQLLogger(log hclog.Logger) {
	_ = mysql.SetLogger(mysqlLogger{log}) // fails only for a nil logger
}
