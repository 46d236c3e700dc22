package hoststest

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemdb/tandem/failover"
)

// rounds repeats the partition scenarios of TestHostsFaults, for the
// medians that `make cluster-bench` prints.
var rounds = flag.Int("hosts.rounds", 1, "rounds of the partition scenarios in TestHostsFaults (make cluster-bench)")

// The phases of a fault, each timed from it: for a partition of host1,
// what host1's tandem did, what host2's tandem did (its events and its
// log), and when writes through host2 flowed again; for the other faults,
// when writes through each tandem flowed again.
const (
	phFenced    = "host1 self-fenced"
	phElected   = "host2 elected"   // coord's "became coordinator" in host2's log: host1's lease expired in etcd, plus one poll
	phLeads     = "host2 leads"     // host2's coordinator_changed event: decision read, acting
	phDown      = "a seen down"     // host2's node_down event for a
	phFailStart = "failover start"  // host2's failover_started
	phFailEnd   = "failover end"    // host2's failover_finished: b writable, routed to
	phUnsynced  = "a unsynced"      // host2's passive_unsynced for a: b's commits stop waiting for a
	phRouting   = "host2 routes"    // host2's status: coordinator routing to b (polled every 20 ms)
	phFirst     = "first write"     // first insert started after the cut and acknowledged through host2
	phPause     = "longest pause"   // longest time between two inserts acknowledged through host2
	phAfterLead = "leads→write"     // first write − host2 leads (what acting costs once elected)
	phDetect    = "failover length" // failover end − failover start
	phFirst1    = "first write via host1"
	phFirst2    = "first write via host2"
	phPause1    = "longest pause via host1"
	phPause2    = "longest pause via host2"
)

var phaseOrder = []string{phFenced, phElected, phLeads, phDown, phFailStart, phFailEnd, phUnsynced, phRouting, phFirst, phPause, phAfterLead, phDetect,
	phFirst1, phFirst2, phPause1, phPause2}

// partitionTiming is one partition's phases.
type partitionTiming map[string]time.Duration

func (p partitionTiming) String() string {
	var b strings.Builder
	for _, k := range phaseOrder {
		if d, ok := p[k]; ok {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %v", k, d.Round(10*time.Millisecond))
		}
	}
	return b.String()
}

// timings collects the phases of every partition by scenario.
type timings struct {
	mu     sync.Mutex
	order  []string
	rounds map[string][]partitionTiming
}

func (ts *timings) add(scenario string, p partitionTiming) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.rounds == nil {
		ts.rounds = map[string][]partitionTiming{}
	}
	if _, ok := ts.rounds[scenario]; !ok {
		ts.order = append(ts.order, scenario)
	}
	ts.rounds[scenario] = append(ts.rounds[scenario], p)
}

// summary gives, per scenario, the median (min–max) of each phase.
func (ts *timings) summary() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []string
	for _, sc := range ts.order {
		ps := ts.rounds[sc]
		var parts []string
		for _, k := range phaseOrder {
			var ds []time.Duration
			for _, p := range ps {
				if d, ok := p[k]; ok {
					ds = append(ds, d)
				}
			}
			if len(ds) == 0 {
				continue
			}
			slices.Sort(ds)
			parts = append(parts, fmt.Sprintf("%s %v (%v–%v)", k, median(ds).Round(10*time.Millisecond),
				ds[0].Round(10*time.Millisecond), ds[len(ds)-1].Round(10*time.Millisecond)))
		}
		out = append(out, fmt.Sprintf("%s, %d round(s): %s", sc, len(ps), strings.Join(parts, ", ")))
	}
	return out
}

// median of sorted ds.
func median(ds []time.Duration) time.Duration {
	n := len(ds)
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}

// hostPhases reads, from host2's status events and log, when its tandem
// was elected, led, saw a down, failed over and marked a unsynced, each
// the first after cut.
func (r *rig) hostPhases(cut time.Time, s failover.Status, p partitionTiming) {
	firstEvent := func(name string, match func(failover.Event) bool) {
		for _, e := range s.Events {
			if e.Time.After(cut) && match(e) {
				p[name] = e.Time.Sub(cut)
				return
			}
		}
	}
	firstEvent(phLeads, func(e failover.Event) bool {
		return e.Type == failover.EventCoordinator && e.Reason == "this tandem is the coordinator"
	})
	firstEvent(phDown, func(e failover.Event) bool { return e.Type == failover.EventNodeDown && e.Node == "a" })
	firstEvent(phFailStart, func(e failover.Event) bool { return e.Type == failover.EventFailoverStarted })
	firstEvent(phFailEnd, func(e failover.Event) bool { return e.Type == failover.EventFailoverFinished })
	firstEvent(phUnsynced, func(e failover.Event) bool { return e.Type == failover.EventUnsynced && e.Node == "a" })
	if st, ok := p[phFailStart]; ok {
		if end, ok := p[phFailEnd]; ok {
			p[phDetect] = end - st
		}
	}
	if at, ok := logTime(filepath.Join(r.dir, "host2", "tandem", "tandem.log"), "tandem.etcd.coord: became coordinator", cut); ok {
		p[phElected] = at.Sub(cut)
	}
}

// logTime is the time of the first line of a tandem log after cut that
// contains what (hclog's line format: RFC 3339 time with milliseconds
// first).
func logTime(path, what string, cut time.Time) (time.Time, bool) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, what) {
			continue
		}
		stamp, _, _ := strings.Cut(line, " ")
		at, err := time.Parse("2006-01-02T15:04:05.000Z0700", stamp)
		if err == nil && at.After(cut) {
			return at, true
		}
	}
	return time.Time{}, false
}

// TestTimingsSummary checks the summary's arithmetic on fixed figures.
func TestTimingsSummary(t *testing.T) {
	var ts timings
	for _, ms := range []int{300, 100, 200} {
		ts.add("x", partitionTiming{phFirst: time.Duration(ms) * time.Millisecond})
	}
	ts.add("y", partitionTiming{phFirst: time.Second, phLeads: 2 * time.Second})
	ts.add("y", partitionTiming{phFirst: 3 * time.Second})
	got := ts.summary()
	want := []string{
		"x, 3 round(s): first write 200ms (100ms–300ms)",
		"y, 2 round(s): host2 leads 2s (2s–2s), first write 2s (1s–3s)",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("summary:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	path := filepath.Join(t.TempDir(), "tandem.log")
	log := "2026-11-30T11:58:44.855Z [INFO]  tandem.etcd.coord: became coordinator: revision=17\n" +
		"2026-11-30T11:59:04.677Z [INFO]  tandem.etcd.coord: became coordinator: revision=44\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	cut := time.Date(2026, 11, 30, 11, 59, 0, 0, time.UTC)
	at, ok := logTime(path, "became coordinator", cut)
	if !ok || !at.Equal(time.Date(2026, 11, 30, 11, 59, 4, 677e6, time.UTC)) {
		t.Fatalf("logTime: %v %v", at, ok)
	}
}
