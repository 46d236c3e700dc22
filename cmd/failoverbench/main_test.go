package main

// Unit tests of the bench's own helpers; the bench itself runs on the real
// pair (make failover-bench).

import (
	"testing"
	"time"
)

func TestLongestGap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := &workload{}
	for _, ms := range []int{-50, 10, 30, 530, 540, 600} {
		w.writes = append(w.writes, write{ids: []int64{int64(ms)}, end: at(ms)})
	}
	if got := w.longestGap(t0); got != 500*time.Millisecond {
		t.Fatalf("longest gap %v; want 500ms (30 -> 530)", got)
	}
	if got := w.longestGapEnd(t0); !got.Equal(at(530)) {
		t.Fatalf("gap ends at %v; want %v", got, at(530))
	}
	if got := w.firstWriteAfter(at(30)); !got.Equal(at(530)) {
		t.Fatalf("first write after 30 ms: %v", got)
	}
	if got := (&workload{}).longestGap(t0); got != 0 {
		t.Fatalf("no writes: gap %v", got)
	}
}

func TestRefusal(t *testing.T) {
	for reason, want := range map[string]string{
		"no node can take writes: node a failed: x; not promoting: node b may lack writes the active acknowledged (unsynced since ...)": "b unsynced",
		"no node can take writes: node a is down; not promoting: node a answers but could not be fenced (Error 1040)":                   "a alive, unfenceable",
		"no node can take writes: node a is down; not promoting: this tandem never saw node a answer, so ...":                           "a never seen by this tandem",
		"no node can take writes: x; not promoting: node b is unreachable too (<nil>)":                                                  "b not yet healthy",
		"no node can take writes: x; not promoting: something new":                                                                      "something new",
		"unexpected": "unexpected",
	} {
		if got := refusal(reason); got != want {
			t.Errorf("refusal(%q) = %q; want %q", reason, got, want)
		}
	}
}
