package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemdb/tandem/failover"
)

// fakeManager records calls; the real manager is exercised by the
// integration tests in cmd/tandem and failover.
type fakeManager struct {
	mu          sync.Mutex
	calls       []string // every mutating call, in order
	switchovers []failover.SwitchoverOptions
	forced      int
	refuse      error
	paused      bool
}

func (f *fakeManager) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

// mutations returns the mutating calls made so far.
func (f *fakeManager) mutations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeManager) Status() failover.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return failover.Status{State: "active", Paused: f.paused, Decision: failover.Decision{Active: "a", Epoch: 7}}
}
func (f *fakeManager) Switchover(_ context.Context, o failover.SwitchoverOptions) (failover.SwitchoverReport, error) {
	f.record("switchover")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.switchovers = append(f.switchovers, o)
	if f.refuse != nil {
		return failover.SwitchoverReport{From: "a", To: "b", RolledBack: true}, f.refuse
	}
	return failover.SwitchoverReport{From: "a", To: "b", Epoch: 8, DryRun: o.DryRun, WritePause: 5 * time.Millisecond}, nil
}
func (f *fakeManager) Failover(context.Context, bool) error {
	f.record("failover")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forced++
	return f.refuse
}
func (f *fakeManager) SetMaintenance(_ context.Context, node string, on bool) error {
	f.record("maintenance")
	if node == "a" && on {
		return fmt.Errorf("%w: node a is active", failover.ErrRefused)
	}
	return nil
}
func (f *fakeManager) ClearExclusion(_ context.Context, node string) error {
	f.record("rejoin " + node)
	return f.refuse
}
func (f *fakeManager) AbortSwitchover() error {
	f.record("abort")
	return f.refuse
}
func (f *fakeManager) Pause(context.Context) error {
	f.record("pause")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused = true
	return nil
}
func (f *fakeManager) Resume(context.Context) error {
	f.record("resume")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused = false
	return nil
}

func serve(t *testing.T, token string, m Manager) *Client {
	t.Helper()
	s, err := NewServer(Config{Listen: "127.0.0.1:0", Token: token}, m, func() SessionCounts { return SessionCounts{Total: 3} }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return &Client{Base: "http://" + l.Addr().String(), Token: token}
}

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:9306", "", true},
		{"[::1]:9306", "", true},
		{"localhost:9306", "", true},
		{"0.0.0.0:9306", "", false},
		{"10.1.2.3:9306", "", false},
		{"0.0.0.0:9306", "secret", true},
		{"nohost", "", false},
	} {
		if err := CheckListen(c.addr, c.token); (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, token=%v) = %v", c.addr, c.token != "", err)
		}
	}
}

func TestAPI(t *testing.T) {
	m := &fakeManager{}
	c := serve(t, "", m)
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil || st.Decision.Epoch != 7 || st.Sessions.Total != 3 {
		t.Fatalf("status: %+v %v", st, err)
	}
	rep, err := c.Switchover(ctx, SwitchoverRequest{To: "b", Timeout: "3s", DryRun: true})
	if err != nil || !rep.DryRun || m.switchovers[0].Timeout != 3*time.Second || m.switchovers[0].To != "b" {
		t.Fatalf("switchover: %+v %v %+v", rep, err, m.switchovers)
	}
	_, err = c.Switchover(ctx, SwitchoverRequest{Timeout: "soon"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != 400 {
		t.Fatalf("bad timeout: %v", err)
	}
	err = c.Maintenance(ctx, "a", true)
	if !errors.As(err, &ae) || ae.Code != http.StatusConflict || !strings.Contains(ae.Message, "active") {
		t.Fatalf("maintenance on active: %v", err)
	}
	if err := c.Pause(ctx); err != nil || !m.paused {
		t.Fatalf("pause: %v", err)
	}
	if err := c.Resume(ctx); err != nil || m.paused {
		t.Fatalf("resume: %v", err)
	}
	if err := c.AbortSwitchover(ctx); err != nil || !slices.Contains(m.mutations(), "abort") {
		t.Fatalf("abort: %v", err)
	}
	if err := c.Rejoin(ctx, "b"); err != nil || !slices.Contains(m.mutations(), "rejoin b") {
		t.Fatalf("rejoin: %v", err)
	}
	if _, err := c.Failover(ctx); err != nil || m.forced != 1 {
		t.Fatalf("forced failover: %v", err)
	}
	// Without both fields a forced failover is refused.
	err = c.do(ctx, http.MethodPost, "/failover", map[string]bool{"force": true}, nil)
	if !errors.As(err, &ae) || ae.Code != 400 || m.forced != 1 {
		t.Fatalf("failover without confirm: %v", err)
	}
	err = c.do(ctx, http.MethodPost, "/maintenance", map[string]any{"node": "b", "bogus": 1}, nil)
	if !errors.As(err, &ae) || ae.Code != 400 {
		t.Fatalf("unknown field: %v", err)
	}
	m.mu.Lock()
	m.refuse = fmt.Errorf("%w: node b lags", failover.ErrRefused)
	m.mu.Unlock()
	rep, err = c.Switchover(ctx, SwitchoverRequest{})
	if !errors.As(err, &ae) || ae.Code != http.StatusConflict || !rep.RolledBack {
		t.Fatalf("refused switchover: %+v %v", rep, err)
	}
}

func TestToken(t *testing.T) {
	c := serve(t, "s3cret", &fakeManager{})
	ctx := context.Background()
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	c.Token = "wrong"
	_, err := c.Status(ctx)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != 401 {
		t.Fatalf("wrong token: %v", err)
	}
	c.Base = "http://127.0.0.1:1"
	if _, err := c.Status(ctx); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("nothing listening: %v", err)
	}
}
