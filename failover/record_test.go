package failover

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// stuckRecorder is a node whose decision writes wait, as writes on an
// active cut off from its passive wait for the acknowledgement, until
// release is closed.
type stuckRecorder struct {
	*fakeNode
	release chan struct{}

	mu             sync.Mutex
	inFlight, most int
	written        []string
}

func (s *stuckRecorder) WriteDecision(ctx context.Context, schema string, d Decision) error {
	s.mu.Lock()
	s.inFlight++
	s.most = max(s.most, s.inFlight)
	s.mu.Unlock()
	<-s.release
	s.mu.Lock()
	s.inFlight--
	s.written = append(s.written, d.Reason)
	s.mu.Unlock()
	return s.fakeNode.WriteDecision(ctx, schema, d)
}

// TestRecordOneWriterNewestLast: saves in a row while the node's writes
// wait (markUnsynced's among them, just before the release) give one
// write at a time, never a pile of them holding the node's connections,
// and the newest decision is the one left on the node.
func TestRecordOneWriterNewestLast(t *testing.T) {
	m, _ := newTestManager(t, &memStore{})
	n := m.node("a")
	n.ops.Close()
	rec := &stuckRecorder{fakeNode: &fakeNode{name: "a", log: &opLog{}}, release: make(chan struct{})}
	n.ops = rec
	m.record(Decision{Active: "a", Epoch: 1, Reason: "save 0"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec.mu.Lock()
		in := rec.inFlight
		rec.mu.Unlock()
		if in == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first record did not start")
		}
		time.Sleep(time.Millisecond)
	}
	for i := 1; i < 5; i++ {
		m.record(Decision{Active: "a", Epoch: 1, Reason: fmt.Sprint("save ", i)})
	}
	close(rec.release)
	for {
		n.recordMu.Lock()
		busy := n.recording
		n.recordMu.Unlock()
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the records did not finish")
		}
		time.Sleep(time.Millisecond)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.most != 1 {
		t.Errorf("%d decision writes at once; want 1", rec.most)
	}
	if want := []string{"save 0", "save 4"}; fmt.Sprint(rec.written) != fmt.Sprint(want) {
		t.Errorf("written %q; want %q (the first, then the newest)", rec.written, want)
	}
	if d, ok, _ := rec.ReadDecision(context.Background(), ""); !ok || d.Reason != "save 4" {
		t.Errorf("left on the node: %+v; want the newest decision", d)
	}
}
