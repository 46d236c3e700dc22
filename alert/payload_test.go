package alert

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tandemdb/tandem/failover"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json from the current output")

// cet is not UTC, so the golden files show times converted.
var cet = time.FixedZone("CET", 3600)

var goldenEvents = []failover.Event{
	{Type: failover.EventFailoverFinished, Time: time.Date(2025, 3, 14, 10, 26, 53, 589_123_456, cet), From: "db1", To: "db2", Epoch: 2,
		Reason: "db1 failed 3 checks in a row: dial tcp 10.0.0.1:3306: connect: connection refused", Duration: 812_400 * time.Microsecond},
	{Type: failover.EventFailoverStarted, Time: time.Date(2025, 3, 14, 10, 26, 52, 777_000_000, cet), From: "db1", Epoch: 1,
		Reason: "db1 failed 3 checks in a row"},
	{Type: failover.EventNodeDown, Time: time.Date(2025, 3, 14, 10, 26, 52, 0, cet), Node: "db1", Epoch: 1,
		Reason: `Error 1045 (28000): Access denied for user 'tandem'@'10.0.0.9' & <more>`},
	{Type: failover.EventNoWriter, Time: time.Date(2025, 3, 14, 10, 26, 54, 5_000_000, time.UTC), Epoch: 1,
		Reason: "no node can take writes: db2 lag 12s over 5s"},
	{Type: failover.EventSwitchoverRollback, Time: time.Date(2025, 3, 14, 11, 0, 0, 1_000_000, time.UTC), From: "db2", To: "db1", Epoch: 2,
		Reason: "db1 did not catch up within 5s", Duration: 40 * time.Millisecond},
	{Type: failover.EventRecovered, Time: time.Date(2025, 3, 14, 11, 0, 1, 0, time.UTC), Node: "db2", To: "db2", Epoch: 2,
		Reason: "the active node answers again"},
}

func TestPayloadGolden(t *testing.T) {
	src := Source{Version: "1.2.3", Host: "proxy1"}
	for _, e := range goldenEvents {
		p := NewPayload(e, src)
		for _, f := range []struct {
			file string
			body []byte
		}{
			{string(e.Type) + ".json", p.JSON()},
			{string(e.Type) + ".slack.json", p.SlackJSON()},
		} {
			t.Run(f.file, func(t *testing.T) {
				if !json.Valid(f.body) || bytes.ContainsRune(f.body, '\n') {
					t.Fatalf("body is not one line of JSON: %s", f.body)
				}
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, f.body, "", "  "); err != nil {
					t.Fatal(err)
				}
				pretty.WriteByte('\n')
				path := filepath.Join("testdata", f.file)
				if *update {
					if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (go test ./alert -run Golden -update writes it)", err)
				}
				if got := pretty.String(); got != string(want) {
					t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", path, got, want)
				}
			})
		}
	}
}

func TestPayloadKeysAlwaysPresent(t *testing.T) {
	var m map[string]any
	if err := json.Unmarshal(NewPayload(failover.Event{Type: failover.EventNoWriter}, Source{}).JSON(), &m); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"duration_ms", "epoch", "from", "node", "reason", "tandem", "time", "to", "type"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
}

func TestSummary(t *testing.T) {
	e := testEvent(2)
	got := NewPayload(e, Source{Host: "proxy1"}).Summary()
	want := "tandem on proxy1: failover_finished: traffic moved from a to b (epoch 2) in 812ms: a failed 3 checks in a row"
	if got != want {
		t.Errorf("Summary:\n got %q\nwant %q", got, want)
	}
	if got := NewPayload(failover.Event{Type: failover.EventSplitBrain, Node: "b"}, Source{}).Summary(); got != "tandem: split_brain: node b (epoch 0)" {
		t.Errorf("no host, no reason: %q", got)
	}
}

func TestEnv(t *testing.T) {
	e := testEvent(7)
	e.Node = "a"
	e.Reason = "bad\x00byte"
	got := NewPayload(e, Source{}).Env()
	want := []string{
		"TANDEM_EVENT_TYPE=failover_finished",
		"TANDEM_EVENT_TIME=2025-03-14T09:26:53.589Z",
		"TANDEM_EVENT_NODE=a",
		"TANDEM_EVENT_FROM=a",
		"TANDEM_EVENT_TO=b",
		"TANDEM_EVENT_EPOCH=7",
		"TANDEM_EVENT_REASON=badbyte",
		"TANDEM_EVENT_DURATION_MS=812",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Env:\n got %q\nwant %q", got, want)
	}
}
