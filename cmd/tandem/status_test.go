package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/tandemdb/tandem/admin"
	"github.com/tandemdb/tandem/failover"
)

// tandem status shows every tandem of a cluster, and says when the one
// answering relays nothing; a node whose last check failed shows no stale
// facts.
func TestPrintStatusCluster(t *testing.T) {
	st := admin.Status{Status: failover.Status{
		State: "following", Decision: failover.Decision{Active: "b", Epoch: 4},
		Nodes: []failover.NodeStatus{
			{Name: "a", Role: "passive", FailedChecks: 3, LastError: "connection refused", ReadOnly: false, IORunning: "Yes"},
			{Name: "b", Role: "active", Healthy: true, FactsCurrent: true, IORunning: "No"},
		},
		Cluster: []failover.ClusterMember{
			{ID: "app1", Host: "web1", Admin: "10.0.0.1:9306", AckedEpoch: 3, LeaseValid: false},
			{ID: "app2", Host: "web2", Admin: "10.0.0.2:9306", AckedEpoch: 4, LeaseValid: true, Coordinator: true, Self: true},
		},
		Coordinator: true, SelfFenced: true,
	}}
	var b strings.Builder
	printStatus(&b, st)
	out := b.String()
	if !strings.Contains(out, "this tandem: coordinator, SELF-FENCED") {
		t.Errorf("status does not say this tandem is self-fenced:\n%s", out)
	}
	// Columns, whatever their widths.
	var rows []string
	for _, line := range strings.Split(out, "\n") {
		rows = append(rows, strings.Join(strings.Fields(line), " "))
	}
	for _, want := range []string{
		"app1 web1 10.0.0.1:9306 EXPIRED 3 follower",
		"app2 web2 10.0.0.2:9306 valid 4 coordinator (this one)",
	} {
		if !slices.Contains(rows, want) {
			t.Errorf("status lacks the row %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "a ") && (!strings.Contains(line, " ? ") || strings.Contains(line, "Yes")) {
			t.Errorf("node a's stale facts shown: %q", line)
		}
	}
}
