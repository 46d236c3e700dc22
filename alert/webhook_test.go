package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestWebhookDelivers(t *testing.T) {
	rc := newReceiver(t, nil)
	slack := newReceiver(t, nil)
	cfg := Config{Version: "1.2.3", Webhooks: []WebhookConfig{
		{URL: rc.URL + "/hook", Headers: map[string]string{"Authorization": "Bearer t0ken", "User-Agent": "tandem-test"}},
		{URL: slack.URL + "/services/T0/B0/x", Format: FormatSlack},
	}}
	a := start(t, cfg, nil)
	sent := time.Now()
	a.Send(testEvent(2))
	waitFor(t, time.Second, "both receivers got the event", func() bool { return rc.count() == 1 && slack.count() == 1 })
	t.Logf("delivered in %v", time.Since(sent))

	r := rc.requests()[0]
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if h := r.header.Get("Authorization"); h != "Bearer t0ken" {
		t.Errorf("Authorization %q", h)
	}
	if ua := r.header.Get("User-Agent"); ua != "tandem-test" {
		t.Errorf("User-Agent %q, want the configured header", ua)
	}
	var p Payload
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	want := Payload{Type: "failover_finished", Time: "2025-03-14T09:26:53.589Z", From: "a", To: "b", Epoch: 2,
		Reason: "a failed 3 checks in a row", DurationMS: 812, Tandem: Source{Version: "1.2.3", Host: "proxy1"}}
	if p != want {
		t.Errorf("payload\n got %+v\nwant %+v", p, want)
	}

	s := slack.requests()[0]
	if ua := s.header.Get("User-Agent"); ua != "tandem/1.2.3" {
		t.Errorf("User-Agent %q", ua)
	}
	var text struct{ Text string }
	if err := json.Unmarshal(s.body, &text); err != nil || !strings.HasPrefix(text.Text, "tandem on proxy1: failover_finished: traffic moved from a to b") {
		t.Errorf("slack body %s (%v)", s.body, err)
	}
	waitFor(t, time.Second, "stats count both as sent", func() bool {
		st := a.Stats().Sinks
		return st[0].Sent == 1 && st[1].Sent == 1
	})
	if st := a.Stats().Sinks[0]; st.Kind != "webhook" || st.Name != rc.URL || st.Failed != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestWebhookRetriesWithBackoff(t *testing.T) {
	rc := newReceiver(t, func(n int, _ *http.Request) int {
		if n < 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	log, out := testLogger()
	w := fastWebhook(rc.URL + "/hook?token=s3cret")
	w.Backoff = 30 * time.Millisecond
	w.MaxBackoff = time.Second
	a := start(t, Config{Webhooks: []WebhookConfig{w}}, log)
	a.Send(testEvent(1))
	waitFor(t, 2*time.Second, "the event delivered on the third attempt", func() bool { return a.Stats().Sinks[0].Sent == 1 })
	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, min := range []time.Duration{30 * time.Millisecond, 60 * time.Millisecond} {
		if gap := reqs[i+1].at.Sub(reqs[i].at); gap < min {
			t.Errorf("retry %d came %v after the previous attempt, want at least %v", i+1, gap, min)
		}
	}
	if string(reqs[0].body) != string(reqs[2].body) {
		t.Errorf("retry body differs:\n%s\n%s", reqs[0].body, reqs[2].body)
	}
	logs := out.String()
	if n := strings.Count(logs, "webhook failed; will retry"); n != 2 {
		t.Errorf("%d retry lines logged, want 2:\n%s", n, logs)
	}
	if !strings.Contains(logs, "503 Service Unavailable") || !strings.Contains(logs, "url="+rc.URL) || strings.Contains(logs, "/hook") {
		t.Errorf("log lacks the status or the URL's scheme and host, or shows its path:\n%s", logs)
	}
	if strings.Contains(logs, "s3cret") {
		t.Errorf("log shows the query string:\n%s", logs)
	}
	if st := a.Stats().Sinks[0]; st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestWebhookGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		attempts int
	}{
		{"400 is not retried", http.StatusBadRequest, 1},
		{"404 is not retried", http.StatusNotFound, 1},
		{"redirect is not followed", http.StatusFound, 1},
		{"429 is retried", http.StatusTooManyRequests, 3},
		{"500 is retried", http.StatusInternalServerError, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, func(_ int, _ *http.Request) int { return tc.status })
			log, out := testLogger()
			w := fastWebhook(strings.Replace(rc.URL, "http://", "http://user:pa55@", 1) + "/hook?key=s3cret")
			w.Retries = 2
			a := start(t, Config{Webhooks: []WebhookConfig{w}}, log)
			a.Send(testEvent(1))
			waitFor(t, 2*time.Second, "the event counted as failed", func() bool { return a.Stats().Sinks[0].Failed == 1 })
			time.Sleep(50 * time.Millisecond) // room for a wrong retry: backoff is 10ms
			if n := rc.count(); n != tc.attempts {
				t.Errorf("%d attempts, want %d", n, tc.attempts)
			}
			logs := out.String()
			if !strings.Contains(logs, "webhook failed; giving up") || !strings.Contains(logs, "url="+rc.URL) || strings.Contains(logs, "/hook") {
				t.Errorf("no give-up line with the URL's scheme and host, or the path shown:\n%s", logs)
			}
			if strings.Contains(logs, "s3cret") || strings.Contains(logs, "pa55") {
				t.Errorf("log shows a credential:\n%s", logs)
			}
		})
	}
}

func TestWebhookDownOrSlow(t *testing.T) {
	release := make(chan struct{})
	slow := newReceiver(t, func(_ int, r *http.Request) int {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return http.StatusOK
	})
	t.Cleanup(func() { close(release) }) // before slow.Close, which waits for handlers
	log, out := testLogger()
	a := start(t, Config{Webhooks: []WebhookConfig{
		{URL: deadURL(t), Timeout: 100 * time.Millisecond, Retries: -1},
		{URL: slow.URL, Timeout: 100 * time.Millisecond, Retries: -1},
	}}, log)
	a.Send(testEvent(1))
	waitFor(t, 2*time.Second, "both failed", func() bool {
		st := a.Stats().Sinks
		return st[0].Failed == 1 && st[1].Failed == 1
	})
	logs := out.String()
	if !strings.Contains(logs, "connection refused") || !strings.Contains(logs, "no answer within 100ms") {
		t.Errorf("log does not say why:\n%s", logs)
	}
}

// A dead webhook and a slow one must not slow Send nor a healthy webhook.
func TestSendNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	slow := newReceiver(t, func(_ int, r *http.Request) int {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return http.StatusOK
	})
	t.Cleanup(func() { close(release) })
	healthy := newReceiver(t, nil)
	const events = 200
	a := start(t, Config{QueueSize: events, Webhooks: []WebhookConfig{
		fastWebhook(deadURL(t)),
		{URL: slow.URL, Timeout: 200 * time.Millisecond},
		fastWebhook(healthy.URL),
	}}, nil)

	var total, worst time.Duration
	for i := range events {
		t0 := time.Now()
		a.Send(testEvent(uint64(i)))
		d := time.Since(t0)
		total += d
		worst = max(worst, d)
	}
	t.Logf("%d Sends: total %v, worst %v", events, total, worst)
	if total > 50*time.Millisecond {
		t.Errorf("%d Sends took %v, want under 50ms", events, total)
	}
	sent := time.Now()
	waitFor(t, time.Second, "the healthy webhook got every event", func() bool { return healthy.count() == events })
	t.Logf("healthy webhook had all %d events %v after the last Send", events, time.Since(sent))
	for i, r := range healthy.requests() {
		var p Payload
		if err := json.Unmarshal(r.body, &p); err != nil || p.Epoch != uint64(i) {
			t.Fatalf("request %d: epoch %d (%v), want in order", i, p.Epoch, err)
		}
	}
}

func TestDropOldest(t *testing.T) {
	got := make(chan uint64, 10)
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, r *http.Request) int {
		if n == 0 {
			got <- 0
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		return http.StatusOK
	})
	a := start(t, Config{QueueSize: 3, Webhooks: []WebhookConfig{{URL: rc.URL, Timeout: 5 * time.Second}}}, nil)
	a.Send(testEvent(0))
	select {
	case <-got: // the sink is busy with event 0
	case <-time.After(time.Second):
		t.Fatal("event 0 not received")
	}
	for i := 1; i <= 5; i++ {
		a.Send(testEvent(uint64(i)))
	}
	if st := a.Stats().Sinks[0]; st.Dropped != 2 || st.Queued != 3 {
		t.Errorf("with 5 events behind a busy sink and a queue of 3: %+v, want 2 dropped, 3 queued", st)
	}
	close(release)
	waitFor(t, time.Second, "the queued events delivered", func() bool { return a.Stats().Sinks[0].Sent == 4 })
	var epochs []uint64
	for _, r := range rc.requests() {
		var p Payload
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		epochs = append(epochs, p.Epoch)
	}
	if want := []uint64{0, 3, 4, 5}; len(epochs) != 4 || epochs[1] != 3 || epochs[2] != 4 || epochs[3] != 5 {
		t.Errorf("delivered epochs %v, want %v: the oldest dropped", epochs, want)
	}
}

func TestCloseDrains(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request) int { time.Sleep(10 * time.Millisecond); return http.StatusOK })
	a, err := New(Config{Webhooks: []WebhookConfig{fastWebhook(rc.URL)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		a.Send(testEvent(uint64(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := rc.count(); n != 10 {
		t.Errorf("%d events delivered before Close returned, want 10", n)
	}
	a.Send(testEvent(10))
	if st := a.Stats().Sinks[0]; st.Sent != 10 || st.Dropped != 1 || st.Queued != 0 {
		t.Errorf("after Close and one more Send: %+v, want 10 sent, 1 dropped", st)
	}
	if err := a.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseGivesUp(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, r *http.Request) int {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return http.StatusOK
	})
	t.Cleanup(func() { close(release) })
	a, err := New(Config{Webhooks: []WebhookConfig{{URL: rc.URL, Timeout: 5 * time.Second}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		a.Send(testEvent(uint64(i)))
	}
	waitFor(t, time.Second, "the first event in flight", func() bool { return rc.count() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err = a.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), context.DeadlineExceeded.Error()) {
		t.Errorf("Close: %v, want the deadline", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Close took %v after its context ended", d)
	}
	if st := a.Stats().Sinks[0]; st.Failed != 1 || st.Dropped != 2 || st.Sent != 0 {
		t.Errorf("stats %+v, want the one in flight failed, 2 dropped", st)
	}
}

// TestWebhookHidesSecretPath: a Slack-style URL carries its secret in the
// path. Neither the log, the stats nor the error show it, even when the
// receiver echoes the path back in its answer.
func TestWebhookHidesSecretPath(t *testing.T) {
	const secret = "B0SECRET/xoxSecretPathToken"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "no route for %s (raw %s)", r.URL.Path, r.URL.RequestURI())
	}))
	t.Cleanup(echo.Close)
	log, out := testLogger()
	w := fastWebhook(echo.URL + "/services/T0/" + secret + "?sig=" + "querySecret9")
	w.Format = FormatSlack
	a := start(t, Config{Webhooks: []WebhookConfig{w}}, log)
	a.Send(testEvent(1))
	waitFor(t, 2*time.Second, "the event counted as failed", func() bool { return a.Stats().Sinks[0].Failed == 1 })
	logs := out.String()
	if !strings.Contains(logs, "404 Not Found") || !strings.Contains(logs, "[redacted]") {
		t.Errorf("log lacks the answer:\n%s", logs)
	}
	for _, s := range []string{"xoxSecretPathToken", "B0SECRET", "querySecret9", "/services/T0"} {
		if strings.Contains(logs, s) {
			t.Errorf("log shows %q:\n%s", s, logs)
		}
		if st := a.Stats().Sinks[0]; strings.Contains(st.Name, s) {
			t.Errorf("stats name shows %q: %s", s, st.Name)
		}
	}
}
