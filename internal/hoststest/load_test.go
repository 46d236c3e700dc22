package hoststest

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemdb/tandem/failover"
)

// ---------------------------------------------------------------- write load

// workload runs autocommit INSERTs with unique ids through one tandem from
// a few workers and records what was acknowledged. Each row records the
// node that executed it (@@server_id: 1 is a, 2 is b) and when.
type workload struct {
	name, table string
	next        atomic.Int64

	mu     sync.Mutex
	acks   []ack
	errs   []clientErr
	cancel context.CancelFunc
	done   chan struct{}
}

type ack struct {
	id         int64
	start, end time.Time
}

type clientErr struct {
	at, start time.Time
	err       error
}

// startLoad creates table through db and starts workers inserting into it,
// each at most maxPer rows and for at most maxTime. A failed statement is
// not retried; the next one gets a new id (and, after a broken connection,
// a new connection from the pool).
func startLoad(t testing.TB, name string, db *sql.DB, table string, workers, maxPer int, maxTime time.Duration) *workload {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range []string{"DROP TABLE IF EXISTS " + table,
		"CREATE TABLE " + table + " (id BIGINT PRIMARY KEY, node INT NOT NULL, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %s: %v", name, q, err)
		}
	}
	w := &workload{name: name, table: table, done: make(chan struct{})}
	lctx, lcancel := context.WithTimeout(context.Background(), maxTime)
	w.cancel = lcancel
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range maxPer {
				if lctx.Err() != nil {
					return
				}
				id := w.next.Add(1)
				start := time.Now()
				sctx, scancel := context.WithTimeout(lctx, 15*time.Second)
				_, err := db.ExecContext(sctx, "INSERT INTO "+table+" (id, node) VALUES (?, @@server_id)", id)
				scancel()
				end := time.Now()
				w.mu.Lock()
				if err == nil {
					w.acks = append(w.acks, ack{id: id, start: start, end: end})
				} else if lctx.Err() == nil {
					w.errs = append(w.errs, clientErr{at: end, start: start, err: err})
				}
				w.mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond) // no busy loop against a fenced tandem
				} else {
					time.Sleep(2 * time.Millisecond)
				}
			}
		}()
	}
	go func() { wg.Wait(); close(w.done) }()
	return w
}

func (w *workload) stop() {
	w.cancel()
	<-w.done
}

func (w *workload) acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

// waitAcks waits for n more acknowledged inserts.
func (w *workload) waitAcks(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	want := w.acked() + n
	deadline := time.Now().Add(timeout)
	for w.acked() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: only %d of %d inserts acknowledged after %v; errors: %s", w.name, w.acked(), want, timeout, w.errorSummary(time.Time{}))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// firstAckAfter is the end of the first acknowledged insert that started
// at or after t0 (zero if none).
func (w *workload) firstAckAfter(t0 time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for _, a := range w.acks {
		if !a.start.Before(t0) && (first.IsZero() || a.end.Before(first)) {
			first = a.end
		}
	}
	return first
}

// longestPause is the longest time between two consecutive acknowledged
// inserts (by the time they were acknowledged) from t0 until n more were
// acknowledged after it, with t0 as the first point.
func (w *workload) longestPause(t0 time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ends []time.Time
	for _, a := range w.acks {
		if a.end.After(t0) {
			ends = append(ends, a.end)
		}
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i].Before(ends[j]) })
	prev, longest := t0, time.Duration(0)
	for _, e := range ends {
		longest = max(longest, e.Sub(prev))
		prev = e
	}
	return longest
}

// errorSummary counts the errors that ended after since, by kind.
func (w *workload) errorSummary(since time.Time) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	kinds := map[string]int{}
	for _, e := range w.errs {
		if e.at.Before(since) {
			continue
		}
		k := fmt.Sprintf("%d", errCode(e.err))
		if errCode(e.err) == 0 {
			k = e.err.Error()
			if i := strings.LastIndex(k, ": "); i > 0 && len(k) > 60 {
				k = k[i+2:]
			}
		}
		kinds[k]++
	}
	if len(kinds) == 0 {
		return "none"
	}
	var out []string
	for k, n := range kinds {
		out = append(out, fmt.Sprintf("%dx %s", n, k))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// row is what a node holds of one insert.
type row struct {
	node int
	at   time.Time
}

// rows reads the workload's table on node n.
func (r *rig) rows(t testing.TB, n string, w *workload) map[int64]row {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rs, err := r.nodes[n].QueryContext(ctx, "SELECT id, node, at FROM app."+w.table)
	if err != nil {
		t.Fatalf("reading %s on node %s: %v", w.table, n, err)
	}
	defer rs.Close()
	out := map[int64]row{}
	for rs.Next() {
		var id int64
		var rw row
		if err := rs.Scan(&id, &rw.node, &rw.at); err != nil {
			t.Fatal(err)
		}
		out[id] = rw
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkNoLoss fails the test unless node n holds every acknowledged insert
// of w; it returns the acknowledged rows as n holds them.
func (r *rig) checkNoLoss(t testing.TB, n string, w *workload) []row {
	t.Helper()
	have := r.rows(t, n, w)
	w.mu.Lock()
	defer w.mu.Unlock()
	var lost []int64
	var out []row
	for _, a := range w.acks {
		rw, ok := have[a.id]
		if !ok {
			lost = append(lost, a.id)
			continue
		}
		out = append(out, rw)
	}
	t.Logf("%s: %d inserts acknowledged, %d rows on node %s, %d acknowledged rows missing", w.name, len(w.acks), len(have), n, len(lost))
	if len(lost) > 0 {
		sort.Slice(lost, func(i, j int) bool { return lost[i] < lost[j] })
		t.Errorf("%s: acknowledged writes lost on node %s: %d, e.g. %v", w.name, n, len(lost), lost[:min(len(lost), 10)])
	}
	return out
}

// writerRuns orders acknowledged rows by the time the node executed them
// and returns the sequence of writing nodes (runs of the same node
// collapsed): "1" (only a), "1 2" (a, then b), "1 2 1" (interleaved).
func writerRuns(rows []row) string {
	sort.Slice(rows, func(i, j int) bool { return rows[i].at.Before(rows[j].at) })
	var runs []string
	for _, rw := range rows {
		s := fmt.Sprint(rw.node)
		if len(runs) == 0 || runs[len(runs)-1] != s {
			runs = append(runs, s)
		}
	}
	return strings.Join(runs, " ")
}

// ---------------------------------------------------------------- sampler

// sampler reads, every 20 ms, read_only of both nodes (from inside their
// hosts) and the routing of both tandems (admin /status: decision, opened,
// self_fenced). A node is "writable and routed to" when read_only=OFF and
// some tandem that is not self-fenced routes to it with the decision
// opened; a tandem whose status cannot be read is taken to route where it
// last did.
type sampler struct {
	r    *rig
	stop chan struct{}
	done chan struct{}

	mu                                 sync.Mutex
	samples, bothWritable, violations  int
	unknownNode, unknownTandem         int
	firstViolations, firstBothWritable []string
	route                              map[string]string
}

func startSampler(r *rig, maxTime time.Duration) *sampler {
	s := &sampler{r: r, stop: make(chan struct{}), done: make(chan struct{}), route: map[string]string{}}
	go func() {
		defer close(s.done)
		deadline := time.Now().Add(maxTime)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for time.Now().Before(deadline) {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			s.sample()
		}
	}()
	return s
}

func (s *sampler) sample() {
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	ro := map[string]bool{}
	roErr := map[string]error{}
	st := map[string]failover.Status{}
	stErr := map[string]error{}
	var mu sync.Mutex
	for _, n := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.r.readOnly(ctx, n)
			mu.Lock()
			ro[n], roErr[n] = v, err
			mu.Unlock()
		}()
	}
	for _, h := range []string{"host1", "host2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.r.statusCtx(ctx, h)
			mu.Lock()
			st[h], stErr[h] = v, err
			mu.Unlock()
		}()
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples++
	for _, h := range []string{"host1", "host2"} {
		if stErr[h] != nil {
			s.unknownTandem++
			continue
		}
		s.route[h] = routesTo(st[h])
	}
	writable := map[string]bool{}
	for _, n := range []string{"a", "b"} {
		if roErr[n] != nil {
			s.unknownNode++ // down or unreachable: it takes no writes
			continue
		}
		writable[n] = !ro[n]
	}
	routed := func(n string) bool { return s.route["host1"] == n || s.route["host2"] == n }
	now := time.Now().Format("15:04:05.000")
	if writable["a"] && writable["b"] {
		s.bothWritable++
		if len(s.firstBothWritable) < 3 {
			s.firstBothWritable = append(s.firstBothWritable, fmt.Sprintf("%s routes %v", now, s.route))
		}
		if routed("a") && routed("b") {
			s.violations++
			if len(s.firstViolations) < 5 {
				s.firstViolations = append(s.firstViolations, fmt.Sprintf("%s routes %v", now, s.route))
			}
		}
	}
}

// counts returns samples, moments with both nodes writable and routed to,
// and moments with both nodes writable (whether routed to or not).
func (s *sampler) counts() (samples, violations, bothWritable int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.violations, s.bothWritable
}

func (s *sampler) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// statusCtx is status bounded by ctx.
func (r *rig) statusCtx(ctx context.Context, host string) (failover.Status, error) {
	type res struct {
		s   failover.Status
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := r.status(host)
		ch <- res{s, err}
	}()
	select {
	case v := <-ch:
		return v.s, v.err
	case <-ctx.Done():
		return failover.Status{}, ctx.Err()
	}
}
