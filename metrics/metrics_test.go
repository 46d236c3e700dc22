package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/tandemdb/tandem/failover"
)

// proxyObserver mirrors proxy.Observer: a ProxyObserver must satisfy it.
type proxyObserver interface {
	SessionOpened()
	SessionClosed()
	Command(cmd byte, in, out int, d time.Duration, failed bool)
	SessionMoved(ok bool)
	HandshakeFailed(reason string)
}

var _ proxyObserver = New().ProxyObserver()

func TestObserverAllocs(t *testing.T) {
	o := New().ProxyObserver()
	cases := map[string]func(){
		"Command":          func() { o.Command(mysql.COM_QUERY, 40, 1200, 300*time.Microsecond, false) },
		"Command failed":   func() { o.Command(mysql.COM_STMT_EXECUTE, 40, 11, 2*time.Millisecond, true) },
		"Command other":    func() { o.Command(0xfe, 5, 11, 0, true) },
		"Command slow":     func() { o.Command(mysql.COM_QUERY, 40, 11, time.Minute, false) },
		"SessionOpened":    o.SessionOpened,
		"SessionClosed":    o.SessionClosed,
		"SessionMoved":     func() { o.SessionMoved(true) },
		"HandshakeFailed":  func() { o.HandshakeFailed("auth") },
		"HandshakeUnknown": func() { o.HandshakeFailed("no such reason") },
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %v allocs per call, want 0", name, n)
		}
	}
}

func BenchmarkCommand(b *testing.B) {
	o := New().ProxyObserver()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		o.Command(mysql.COM_QUERY, 64, 512, time.Duration(i&1023)*time.Microsecond, i&63 == 0)
	}
}

// BenchmarkCommandParallel shows the cost when every core's sessions add to
// the same counters.
func BenchmarkCommandParallel(b *testing.B) {
	o := New().ProxyObserver()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			o.Command(mysql.COM_QUERY, 64, 512, time.Duration(i&1023)*time.Microsecond, i&63 == 0)
			i++
		}
	})
}

// TestConcurrentScrape runs sessions and scrapes together, for -race.
func TestConcurrentScrape(t *testing.T) {
	r := New()
	o := r.ProxyObserver()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.SessionOpened()
			for i := 0; i < 2000; i++ {
				o.Command(byte(i), i, 2*i, time.Duration(i)*time.Microsecond, i%7 == 0)
			}
			o.SessionClosed()
		}()
	}
	for i := 0; i < 20; i++ {
		if _, err := r.Prometheus().Gather(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	h := histogram(t, r.Prometheus(), "tandem_command_duration_seconds")
	if h.GetSampleCount() != 8000 {
		t.Errorf("%d durations, want 8000", h.GetSampleCount())
	}
	if got := testutil.ToFloat64(r.proxy.open); got != 0 {
		t.Errorf("%v sessions open, want 0", got)
	}
}

func TestCommandName(t *testing.T) {
	for cmd, want := range map[byte]string{
		mysql.COM_QUERY:            "query",
		mysql.COM_STMT_EXECUTE:     "stmt_execute",
		mysql.COM_STMT_PREPARE:     "stmt_prepare",
		mysql.COM_PING:             "ping",
		mysql.COM_INIT_DB:          "init_db",
		mysql.COM_RESET_CONNECTION: "reset_connection",
		mysql.COM_SLEEP:            "other",
		0xff:                       "other",
	} {
		if got := CommandName(cmd); got != want {
			t.Errorf("CommandName(0x%02x) = %q, want %q", cmd, got, want)
		}
	}
}

func TestProxyMetrics(t *testing.T) {
	r := New()
	o := r.ProxyObserver()
	o.SessionOpened()
	o.SessionOpened()
	o.SessionOpened()
	o.SessionClosed()
	o.Command(mysql.COM_QUERY, 30, 100, 200*time.Microsecond, false)
	o.Command(mysql.COM_QUERY, 30, 11, 3*time.Millisecond, true)
	o.Command(mysql.COM_STMT_EXECUTE, 20, 50, 2*time.Second, false)
	o.Command(0xee, 5, 11, 0, true)
	o.Command(mysql.COM_PING, -1, -1, time.Millisecond, false) // ignored sizes, no panic
	o.SessionMoved(true)
	o.SessionMoved(true)
	o.SessionMoved(false)
	o.HandshakeFailed("auth")
	o.HandshakeFailed("timeout")
	o.HandshakeFailed("whatever")

	expected := `
# HELP tandem_bytes_total Bytes of client commands (in) and of their responses (out), packet headers included.
# TYPE tandem_bytes_total counter
tandem_bytes_total{direction="in"} 85
tandem_bytes_total{direction="out"} 172
# HELP tandem_client_connections Client sessions open now.
# TYPE tandem_client_connections gauge
tandem_client_connections 2
# HELP tandem_client_connections_total Client sessions opened since start.
# TYPE tandem_client_connections_total counter
tandem_client_connections_total 3
# HELP tandem_handshake_failures_total Failed client logins by reason: auth, backend, protocol, limit, timeout, other.
# TYPE tandem_handshake_failures_total counter
tandem_handshake_failures_total{reason="auth"} 1
tandem_handshake_failures_total{reason="backend"} 0
tandem_handshake_failures_total{reason="limit"} 0
tandem_handshake_failures_total{reason="other"} 1
tandem_handshake_failures_total{reason="protocol"} 0
tandem_handshake_failures_total{reason="timeout"} 1
# HELP tandem_sessions_moved_total Sessions moved to another node (ok), or that could not be and got an error (error).
# TYPE tandem_sessions_moved_total counter
tandem_sessions_moved_total{result="error"} 1
tandem_sessions_moved_total{result="ok"} 2
`
	if err := testutil.GatherAndCompare(r.Prometheus(), strings.NewReader(expected),
		"tandem_bytes_total", "tandem_client_connections", "tandem_client_connections_total",
		"tandem_handshake_failures_total", "tandem_sessions_moved_total"); err != nil {
		t.Error(err)
	}

	cmds := counters(t, r.Prometheus(), "tandem_commands_total", "command")
	errs := counters(t, r.Prometheus(), "tandem_command_errors_total", "command")
	if len(cmds) != len(commandNames)+1 || len(errs) != len(commandNames)+1 {
		t.Errorf("%d command series and %d error series, want %d each (every name and other, from the start)",
			len(cmds), len(errs), len(commandNames)+1)
	}
	for name, want := range map[string][2]float64{
		"query": {2, 1}, "stmt_execute": {1, 0}, "other": {1, 1}, "ping": {1, 0}, "stmt_prepare": {0, 0},
	} {
		if cmds[name] != want[0] || errs[name] != want[1] {
			t.Errorf("command %q: %v commands, %v errors; want %v, %v", name, cmds[name], errs[name], want[0], want[1])
		}
	}

	h := histogram(t, r.Prometheus(), "tandem_command_duration_seconds")
	if h.GetSampleCount() != 5 {
		t.Errorf("duration count %d, want 5", h.GetSampleCount())
	}
	if want := 0.0002 + 0.003 + 2 + 0.001; !near(h.GetSampleSum(), want) {
		t.Errorf("duration sum %v, want %v", h.GetSampleSum(), want)
	}
	b := h.GetBucket()
	if first, last := b[0].GetUpperBound(), b[len(b)-1].GetUpperBound(); first != 50e-6 || last != 10 {
		t.Errorf("buckets from %v to %v, want 50µs to 10s", first, last)
	}
	for _, bk := range b {
		// 0 and 200µs are at or under 250µs; 1ms and 3ms under 5ms.
		switch bk.GetUpperBound() {
		case 250e-6:
			if bk.GetCumulativeCount() != 2 {
				t.Errorf("bucket 250µs holds %d, want 2", bk.GetCumulativeCount())
			}
		case 5e-3:
			if bk.GetCumulativeCount() != 4 {
				t.Errorf("bucket 5ms holds %d, want 4", bk.GetCumulativeCount())
			}
		}
	}
}

func TestHandler(t *testing.T) {
	r := New()
	o := r.ProxyObserver()
	o.SessionOpened()
	o.Command(mysql.COM_QUERY, 30, 100, time.Millisecond, false)
	r.FailoverHook()(failover.Event{Type: failover.EventFailoverFinished, Duration: 1500 * time.Millisecond})
	if err := r.WatchStatus(func() failover.Status {
		return failover.Status{State: "active", Nodes: []failover.NodeStatus{{Name: "db1", Role: "active", Healthy: true}}}
	}); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	text := string(body)
	for _, want := range []string{
		"tandem_client_connections 1\n",
		"tandem_client_connections_total 1\n",
		`tandem_commands_total{command="query"} 1` + "\n",
		`tandem_commands_total{command="stmt_execute"} 0` + "\n",
		`tandem_command_errors_total{command="query"} 0` + "\n",
		`tandem_bytes_total{direction="in"} 30` + "\n",
		`tandem_command_duration_seconds_bucket{le="0.001"} 1` + "\n",
		"tandem_command_duration_seconds_count 1\n",
		`tandem_failovers_total{result="finished"} 1` + "\n",
		`tandem_events_total{type="failover_finished"} 1` + "\n",
		"tandem_failover_duration_seconds_sum 1.5\n",
		`tandem_node_up{node="db1"} 1` + "\n",
		`tandem_node_active{node="db1"} 1` + "\n",
		`tandem_state{state="active"} 1` + "\n",
		"tandem_epoch 0\n",
		"# TYPE go_goroutines gauge\n",
		"# TYPE process_cpu_seconds_total counter\n",
		"# TYPE promhttp_metric_handler_errors_total counter\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", strings.TrimSpace(want))
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}
}

func TestStatusCollector(t *testing.T) {
	st := failover.Status{
		State:    "failing_over",
		Decision: failover.Decision{Active: "db2", Epoch: 7},
		Nodes: []failover.NodeStatus{
			{Name: "db1", Role: "passive", Healthy: false, ReadOnly: true, FactsCurrent: true},
			{Name: "db2", Role: "active", Healthy: true, SQLRunning: false, FactsCurrent: true},
			{Name: "db3", Role: "passive", Healthy: true, ReadOnly: true, SQLRunning: true, Lag: 1500 * time.Millisecond, LagKnown: true, FactsCurrent: true},
		},
	}
	calls := 0
	c := newStatusCollector(func() failover.Status { calls++; return st })
	expected := `
# HELP tandem_epoch Epoch of the current decision: one more at every change of active node.
# TYPE tandem_epoch gauge
tandem_epoch 7
# HELP tandem_node_active 1 for the node decided active (taking traffic), else 0.
# TYPE tandem_node_active gauge
tandem_node_active{node="db1"} 0
tandem_node_active{node="db2"} 1
tandem_node_active{node="db3"} 0
# HELP tandem_node_read_only 1 if the node has read_only or super_read_only on, else 0.
# TYPE tandem_node_read_only gauge
tandem_node_read_only{node="db1"} 1
tandem_node_read_only{node="db2"} 0
tandem_node_read_only{node="db3"} 1
# HELP tandem_node_replica_sql_running 1 if the node's replication SQL thread runs, else 0.
# TYPE tandem_node_replica_sql_running gauge
tandem_node_replica_sql_running{node="db1"} 0
tandem_node_replica_sql_running{node="db2"} 0
tandem_node_replica_sql_running{node="db3"} 1
# HELP tandem_node_replication_lag_seconds Replication lag last measured on the node; absent when unknown.
# TYPE tandem_node_replication_lag_seconds gauge
tandem_node_replication_lag_seconds{node="db3"} 1.5
# HELP tandem_node_up 1 if the node passed its last health check, else 0.
# TYPE tandem_node_up gauge
tandem_node_up{node="db1"} 0
tandem_node_up{node="db2"} 1
tandem_node_up{node="db3"} 1
# HELP tandem_state 1 for the failover state machine's current state, else 0.
# TYPE tandem_state gauge
tandem_state{state="active"} 0
tandem_state{state="down"} 0
tandem_state{state="failing_over"} 1
tandem_state{state="switching_over"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected)); err != nil {
		t.Error(err)
	}
	if calls != 1 {
		t.Errorf("status read %d times for one scrape, want 1", calls)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}

	// A state this package does not know still shows as current.
	st = failover.Status{State: "State(9)"}
	expected = `
# HELP tandem_state 1 for the failover state machine's current state, else 0.
# TYPE tandem_state gauge
tandem_state{state="State(9)"} 1
tandem_state{state="active"} 0
tandem_state{state="down"} 0
tandem_state{state="failing_over"} 0
tandem_state{state="switching_over"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected), "tandem_state"); err != nil {
		t.Error(err)
	}
}

func TestWatchStatusRefused(t *testing.T) {
	r := New()
	if err := r.WatchStatus(nil); err == nil {
		t.Error("WatchStatus(nil) accepted")
	}
	f := func() failover.Status { return failover.Status{} }
	if err := r.WatchStatus(f); err != nil {
		t.Fatal(err)
	}
	if err := r.WatchStatus(f); err == nil {
		t.Error("a second WatchStatus accepted")
	}
}

func TestFailoverHook(t *testing.T) {
	r := New()
	hook := r.FailoverHook()
	for _, e := range []failover.Event{
		{Type: failover.EventNodeDown, Node: "db1"},
		{Type: failover.EventFailoverStarted},
		{Type: failover.EventFailoverRefused},
		{Type: failover.EventNoWriter},
		{Type: failover.EventFailoverStarted},
		{Type: failover.EventFailoverFinished, Duration: 3 * time.Second},
		{Type: failover.EventSwitchoverStarted},
		{Type: failover.EventSwitchoverFinished, Duration: 40 * time.Millisecond},
		{Type: failover.EventSwitchoverStarted},
		{Type: failover.EventSwitchoverRollback, Duration: 2 * time.Second},
		{Type: failover.EventSwitchoverRollback}, // no duration: not observed
		{Type: "something_new"},
	} {
		hook(e)
	}
	expected := `
# HELP tandem_failovers_total Failovers that promoted the other node (finished) or found it unsafe to promote (refused).
# TYPE tandem_failovers_total counter
tandem_failovers_total{result="finished"} 1
tandem_failovers_total{result="refused"} 1
# HELP tandem_switchovers_total Planned switchovers that moved traffic (finished) or gave up and restored the old active (rolled_back).
# TYPE tandem_switchovers_total counter
tandem_switchovers_total{result="finished"} 1
tandem_switchovers_total{result="rolled_back"} 2
`
	if err := testutil.GatherAndCompare(r.Prometheus(), strings.NewReader(expected),
		"tandem_failovers_total", "tandem_switchovers_total"); err != nil {
		t.Error(err)
	}
	events := counters(t, r.Prometheus(), "tandem_events_total", "type")
	if len(events) != len(eventTypes)+1 {
		t.Errorf("%d event series, want %d (every known type from the start, and something_new)", len(events), len(eventTypes)+1)
	}
	for typ, want := range map[string]float64{
		"node_down": 1, "node_up": 0, "failover_started": 2, "failover_refused": 1, "no_writable_node": 1,
		"failover_finished": 1, "switchover_started": 2, "switchover_rolled_back": 2, "something_new": 1,
	} {
		if events[typ] != want {
			t.Errorf("events_total{type=%q} = %v, want %v", typ, events[typ], want)
		}
	}
	fo := histogram(t, r.Prometheus(), "tandem_failover_duration_seconds")
	if fo.GetSampleCount() != 1 || fo.GetSampleSum() != 3 {
		t.Errorf("failover duration: %d samples summing to %v, want 1 of 3s", fo.GetSampleCount(), fo.GetSampleSum())
	}
	wp := histogram(t, r.Prometheus(), "tandem_switchover_write_pause_seconds")
	if wp.GetSampleCount() != 2 || !near(wp.GetSampleSum(), 2.04) {
		t.Errorf("write pause: %d samples summing to %v, want 2 summing to 2.04s", wp.GetSampleCount(), wp.GetSampleSum())
	}
}

func TestLint(t *testing.T) {
	r := New()
	if err := r.WatchStatus(func() failover.Status {
		return failover.Status{State: "active", Nodes: []failover.NodeStatus{{Name: "db1", LagKnown: true}}}
	}); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(r.Prometheus())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "tandem_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

// family gathers g and returns the family called name.
func family(t *testing.T, g prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// counters returns the values of the counter family name by its label.
func counters(t *testing.T, g prometheus.Gatherer, name, label string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range family(t, g, name).GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				out[l.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func histogram(t *testing.T, g prometheus.Gatherer, name string) *dto.Histogram {
	t.Helper()
	return family(t, g, name).GetMetric()[0].GetHistogram()
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
