package metrics

import (
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/prometheus/client_golang/prometheus"
)

// ProxyObserver is what the proxy reports about its sessions. It has the
// method set of proxy.Observer, so a ProxyObserver can be set there
// without either package importing the other.
//
// Methods are called from every session's goroutine concurrently; each
// returns at once, takes no lock and allocates nothing.
type ProxyObserver interface {
	// SessionOpened and SessionClosed bracket each client session.
	SessionOpened()
	SessionClosed()
	// Command is called once per client command after its response: the
	// command byte, bytes from and to the client, how long it took, and
	// whether the response was an error (an ERR packet from the node or
	// tandem's own).
	Command(cmd byte, in, out int, d time.Duration, failed bool)
	// SessionMoved is called when a session moved to another node; ok is
	// false when it could not be moved and got an error.
	SessionMoved(ok bool)
	// HandshakeFailed counts a failed login by reason: "auth", "backend",
	// "protocol", "limit" or "timeout"; any other reason counts as
	// "other".
	HandshakeFailed(reason string)
}

// commandNames names the commands a client may send that get a label of
// their own; every other byte counts as "other". Names are the protocol's
// COM_ names, lower case, without the prefix.
var commandNames = map[byte]string{
	mysql.COM_INIT_DB:             "init_db",
	mysql.COM_QUERY:               "query",
	mysql.COM_FIELD_LIST:          "field_list",
	mysql.COM_REFRESH:             "refresh",
	mysql.COM_SHUTDOWN:            "shutdown",
	mysql.COM_STATISTICS:          "statistics",
	mysql.COM_PROCESS_INFO:        "process_info",
	mysql.COM_PROCESS_KILL:        "process_kill",
	mysql.COM_DEBUG:               "debug",
	mysql.COM_PING:                "ping",
	mysql.COM_CHANGE_USER:         "change_user",
	mysql.COM_BINLOG_DUMP:         "binlog_dump",
	mysql.COM_TABLE_DUMP:          "table_dump",
	mysql.COM_REGISTER_SLAVE:      "register_slave",
	mysql.COM_STMT_PREPARE:        "stmt_prepare",
	mysql.COM_STMT_EXECUTE:        "stmt_execute",
	mysql.COM_STMT_SEND_LONG_DATA: "stmt_send_long_data",
	mysql.COM_STMT_CLOSE:          "stmt_close",
	mysql.COM_STMT_RESET:          "stmt_reset",
	mysql.COM_SET_OPTION:          "set_option",
	mysql.COM_STMT_FETCH:          "stmt_fetch",
	mysql.COM_BINLOG_DUMP_GTID:    "binlog_dump_gtid",
	mysql.COM_RESET_CONNECTION:    "reset_connection",
}

// otherCommand labels every command byte not in commandNames.
const otherCommand = "other"

// CommandName returns the command label for cmd: "query",
// "stmt_execute", ..., or "other".
func CommandName(cmd byte) string {
	if n, ok := commandNames[cmd]; ok {
		return n
	}
	return otherCommand
}

// Handshake failure reasons with a series of their own.
var handshakeReasons = []string{"auth", "backend", "protocol", "limit", "timeout", "other"}

// durationBuckets spans 50µs (a point select on a local node) to 10s (a
// report query, or a command held through a failover), about 2.5 per
// decade.
var durationBuckets = []float64{
	50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
	1, 2.5, 5, 10,
}

// proxyMetrics implements ProxyObserver. Every series is made in
// newProxyMetrics, so the methods only add to counters.
type proxyMetrics struct {
	open       prometheus.Gauge
	opened     prometheus.Counter
	handshake  *prometheus.CounterVec
	handshakes map[string]prometheus.Counter // by reason, read only
	commandVec *prometheus.CounterVec
	errorVec   *prometheus.CounterVec
	// commands and errors are indexed by command byte; bytes sharing a
	// label share a counter.
	commands [256]prometheus.Counter
	errors   [256]prometheus.Counter
	bytesVec *prometheus.CounterVec
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
	duration prometheus.Histogram
	movedVec *prometheus.CounterVec
	movedOK  prometheus.Counter
	movedErr prometheus.Counter
}

var _ ProxyObserver = (*proxyMetrics)(nil)

func newProxyMetrics() *proxyMetrics {
	m := &proxyMetrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "client_connections",
			Help: "Client sessions open now.",
		}),
		opened: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "client_connections_total",
			Help: "Client sessions opened since start.",
		}),
		handshake: counterVec("handshake_failures_total",
			"Failed client logins by reason: auth, backend, protocol, limit, timeout, other.", "reason"),
		commandVec: counterVec("commands_total",
			"Client commands answered, by command.", "command"),
		errorVec: counterVec("command_errors_total",
			"Client commands answered with an error, from the node or from tandem, by command.", "command"),
		bytesVec: counterVec("bytes_total",
			"Bytes of client commands (in) and of their responses (out), packet headers included.", "direction"),
		duration: newHistogram("command_duration_seconds",
			"Time from a client command to the end of its response, holds included.", durationBuckets),
		movedVec: counterVec("sessions_moved_total",
			"Sessions moved to another node (ok), or that could not be and got an error (error).", "result"),
	}
	m.handshakes = make(map[string]prometheus.Counter, len(handshakeReasons))
	for _, r := range handshakeReasons {
		m.handshakes[r] = m.handshake.WithLabelValues(r)
	}
	other, otherErr := m.commandVec.WithLabelValues(otherCommand), m.errorVec.WithLabelValues(otherCommand)
	for i := range m.commands {
		m.commands[i], m.errors[i] = other, otherErr
	}
	for cmd, name := range commandNames {
		m.commands[cmd] = m.commandVec.WithLabelValues(name)
		m.errors[cmd] = m.errorVec.WithLabelValues(name)
	}
	m.bytesIn = m.bytesVec.WithLabelValues("in")
	m.bytesOut = m.bytesVec.WithLabelValues("out")
	m.movedOK = m.movedVec.WithLabelValues("ok")
	m.movedErr = m.movedVec.WithLabelValues("error")
	return m
}

func (m *proxyMetrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.open, m.opened, m.handshake, m.commandVec, m.errorVec,
		m.bytesVec, m.duration, m.movedVec)
}

func (m *proxyMetrics) SessionOpened() {
	m.open.Inc()
	m.opened.Inc()
}

func (m *proxyMetrics) SessionClosed() { m.open.Dec() }

func (m *proxyMetrics) Command(cmd byte, in, out int, d time.Duration, failed bool) {
	m.commands[cmd].Inc()
	if failed {
		m.errors[cmd].Inc()
	}
	// Counter.Add panics on a negative value; an integral one is a single
	// atomic add.
	if in > 0 {
		m.bytesIn.Add(float64(in))
	}
	if out > 0 {
		m.bytesOut.Add(float64(out))
	}
	m.duration.Observe(d.Seconds())
}

func (m *proxyMetrics) SessionMoved(ok bool) {
	if ok {
		m.movedOK.Inc()
	} else {
		m.movedErr.Inc()
	}
}

func (m *proxyMetrics) HandshakeFailed(reason string) {
	c, ok := m.handshakes[reason]
	if !ok {
		c = m.handshakes["other"]
	}
	c.Inc()
}
