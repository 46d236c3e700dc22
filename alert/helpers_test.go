package alert

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tandemdb/tandem/failover"
)

// syncBuffer is a log output that tests read while sinks write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger() (hclog.Logger, *syncBuffer) {
	out := &syncBuffer{}
	return hclog.New(&hclog.LoggerOptions{Output: out, Level: hclog.Trace}), out
}

// start builds an Alerter closed at the end of the test: sinks still busy
// after 500ms (a dead webhook's queue) are aborted.
func start(t *testing.T, cfg Config, log hclog.Logger) *Alerter {
	t.Helper()
	if cfg.Host == "" {
		cfg.Host = "proxy1"
	}
	a, err := New(cfg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_ = a.Close(ctx)
	})
	return a
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// request is what a receiver got.
type request struct {
	at     time.Time
	header http.Header
	body   []byte
}

// receiver is an httptest server on 127.0.0.1 answering each POST with
// the status answer returns, after recording it.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newReceiver(t *testing.T, answer func(n int, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.reqs)
		rc.reqs = append(rc.reqs, request{at: time.Now(), header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		status := http.StatusNoContent
		if answer != nil {
			status = answer(n, r)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

// deadURL is an http URL on 127.0.0.1 where nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/hook"
}

// fastWebhook is a webhook with short timings for tests.
func fastWebhook(url string) WebhookConfig {
	return WebhookConfig{URL: url, Timeout: time.Second, Retries: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
}

func testEvent(epoch uint64) failover.Event {
	return failover.Event{
		Type: failover.EventFailoverFinished, Time: time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC),
		From: "a", To: "b", Epoch: epoch, Reason: "a failed 3 checks in a row", Duration: 812 * time.Millisecond,
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
