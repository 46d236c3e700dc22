package coord

import (
	"context"
	"strings"
	"testing"
	"time"
)

// leaderName reads which member of the test cluster leads, through obs.
func leaderName(t *testing.T, s *Session) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := s.etcdLeader(ctx)
	if err != nil {
		return ""
	}
	ml, err := s.cli.MemberList(ctx)
	if err != nil {
		return ""
	}
	for _, m := range ml.Members {
		if m.ID == id {
			return m.Name
		}
	}
	return ""
}

// TestMoveLeaderTo moves etcd's leadership on request, does nothing when it
// is already there, and names the members when asked for an unknown one.
func TestMoveLeaderTo(t *testing.T) {
	s := open(t, testConfig(t, prefixFor(t), "a"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var cur string
	waitFor(t, 10*time.Second, "a leader", func() bool { cur = leaderName(t, s); return cur != "" })
	target := "m1"
	if cur == "m1" {
		target = "m2"
	}
	moved, err := s.MoveLeaderTo(ctx, target)
	if err != nil || !moved {
		t.Fatalf("MoveLeaderTo(%s) from %s: moved %v err %v", target, cur, moved, err)
	}
	waitFor(t, 10*time.Second, "leader "+target, func() bool { return leaderName(t, s) == target })
	if moved, err := s.MoveLeaderTo(ctx, target); err != nil || moved {
		t.Fatalf("MoveLeaderTo the current leader: moved %v err %v", moved, err)
	}
	if _, err := s.MoveLeaderTo(ctx, "witness"); err == nil || !strings.Contains(err.Error(), `"witness" (members: m1, m2, m3)`) {
		t.Fatalf("unknown member: %v", err)
	}
}

// TestPreferredLeader: the coordinator keeps etcd's leader on the
// preferred member; a follower never moves it.
func TestPreferredLeader(t *testing.T) {
	prefix := prefixFor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	obsCfg := testConfig(t, prefix, "obs")
	o := open(t, obsCfg)
	var cur string
	waitFor(t, 10*time.Second, "a leader", func() bool { cur = leaderName(t, o); return cur != "" })
	want := "m3"
	if cur == "m3" {
		want = "m2"
	}
	cfg := testConfig(t, prefix, "a")
	cfg.PreferredLeader = want
	cfg.LeaderCheckInterval = 100 * time.Millisecond
	a := open(t, cfg)
	// Not coordinator yet: a must leave the leader alone. The observer is
	// coordinator, so a cannot win in the meantime.
	if err := o.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * cfg.LeaderCheckInterval) // several checks a follower must skip
	if got := leaderName(t, o); got != cur {
		t.Fatalf("a follower moved etcd's leader from %s to %s", cur, got)
	}
	if err := o.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "leader on the preferred member "+want, func() bool { return leaderName(t, o) == want })
}
