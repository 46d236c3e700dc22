package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// webhook posts each event to one URL, retrying what may succeed later.
type webhook struct {
	cfg       WebhookConfig // defaults applied
	url       string        // cfg.URL's scheme and host only: safe to log
	secrets   []string      // the rest of cfg.URL, never to be logged
	userAgent string
	client    *http.Client
	log       hclog.Logger
}

func newWebhook(cfg WebhookConfig, version string, log hclog.Logger) *webhook {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 1 // one event at a time
	ua := "tandem"
	if version != "" {
		ua += "/" + version
	}
	w := &webhook{
		cfg:       cfg,
		url:       redact(cfg.URL),
		secrets:   urlSecrets(cfg.URL),
		userAgent: ua,
		client: &http.Client{
			Transport: tr,
			// A redirect is an answer, not a success: a POST followed
			// to its new place would turn into a GET.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	w.log = log.With("url", w.url)
	return w
}

func (w *webhook) close() { w.client.CloseIdleConnections() }

// deliver posts p, retrying network errors, 5xx and 429 with a doubling
// backoff. Every failure is logged; the last one says it gives up.
func (w *webhook) deliver(ctx context.Context, p Payload) error {
	body := p.JSON()
	if w.cfg.Format == FormatSlack {
		body = p.SlackJSON()
	}
	backoff := w.cfg.Backoff
	for attempt := 1; ; attempt++ {
		retry, err := w.post(ctx, body)
		if err == nil {
			if attempt > 1 {
				w.log.Info("webhook delivered after retries", "type", p.Type, "attempts", attempt)
			}
			return nil
		}
		if !retry || attempt > w.cfg.Retries || ctx.Err() != nil {
			w.log.Error("webhook failed; giving up", "type", p.Type, "attempts", attempt, "error", err)
			return err
		}
		w.log.Warn("webhook failed; will retry", "type", p.Type, "attempt", attempt, "retry_in", backoff, "error", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			w.log.Error("webhook failed; giving up: closing", "type", p.Type, "attempts", attempt, "error", err)
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// post makes one attempt, bounded by cfg.Timeout, and says whether a
// failure is worth retrying. Errors never hold the URL.
func (w *webhook) post(ctx context.Context, body []byte) (retry bool, err error) {
	actx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("cannot build the request") // the URL was validated; its error would show it
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.userAgent)
	for k, v := range w.cfg.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return true, w.cleanError(ctx, actx, err)
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	err = fmt.Errorf("HTTP %s", resp.Status)
	if s := w.hide(strings.Join(strings.Fields(string(head)), " ")); s != "" {
		err = fmt.Errorf("HTTP %s: %s", resp.Status, s)
	}
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, err
}

// hide cuts the URL's secret parts out of s (text from the receiver).
func (w *webhook) hide(s string) string {
	for _, sec := range w.secrets {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return s
}

// cleanError strips the URL that net/http puts in its errors (its query
// may hold a token) and names a timeout.
func (w *webhook) cleanError(ctx, actx context.Context, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %v", w.cfg.Timeout)
	}
	return err
}
