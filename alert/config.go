// Package alert turns failover events into webhook posts (JSON or
// Slack-compatible) and command runs. Send never waits for a receiver:
// each sink has its own bounded queue, drained by its own goroutine, and
// a full queue drops its oldest event and counts it. A dead or slow
// receiver therefore costs its own events only, never the failover hook
// goroutine nor the other sinks.
package alert

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Config lists the sinks. DefaultConfig gives the defaults; a zero field
// in a WebhookConfig or CommandConfig means its default, so a config file
// only names what it changes.
type Config struct {
	// Webhooks receive each event as an HTTP POST.
	Webhooks []WebhookConfig
	// Commands are run once per event.
	Commands []CommandConfig
	// QueueSize bounds the events waiting for one sink. Default 100: far
	// more than a failover raises (a handful), so only a sink that stays
	// down through many events loses any, and then the oldest first.
	QueueSize int
	// Version and Host identify this tandem in payloads ("tandem":
	// {"version", "host"}). Host defaults to os.Hostname(); Version is
	// the binary's, set by cmd/tandem.
	Version string
	Host    string
}

// Webhook formats.
const (
	FormatJSON  = "json"  // the event as a JSON object; see Payload
	FormatSlack = "slack" // {"text": "..."}, accepted by Slack, Mattermost, Rocket.Chat, Teams workflows
)

// WebhookConfig is one HTTP receiver.
type WebhookConfig struct {
	// URL receives a POST per event; http or https.
	URL string
	// Format of the body: FormatJSON (default) or FormatSlack.
	Format string
	// Timeout bounds one attempt: connect, send, read the answer.
	// Default 2s.
	Timeout time.Duration
	// Retries is how many times a failed attempt (network error, 5xx,
	// 429) is tried again. 0 means the default 3; -1 means none. Other
	// 4xx are never retried: the receiver refused the request itself.
	Retries int
	// Backoff is the wait before the first retry, doubled each retry up
	// to MaxBackoff. Default 200ms.
	Backoff time.Duration
	// MaxBackoff caps the wait between retries. Default 5s.
	MaxBackoff time.Duration
	// Headers are added to each request, e.g. Authorization. They may
	// override User-Agent, not Content-Type.
	Headers map[string]string
}

// CommandConfig is one program run per event: the event in TANDEM_EVENT_*
// environment variables and as JSON on stdin.
type CommandConfig struct {
	// Path of the program: absolute, or looked up in PATH by New.
	Path string
	// Args are passed as they are, no shell involved.
	Args []string
	// Timeout bounds a run; then the program's whole process group is
	// killed. Default 10s.
	Timeout time.Duration
}

// DefaultConfig returns the defaults: no sink, a queue of 100 per sink.
func DefaultConfig() Config {
	return Config{QueueSize: 100}
}

// DefaultWebhookConfig returns the defaults of a webhook posting to url.
func DefaultWebhookConfig(url string) WebhookConfig {
	return WebhookConfig{
		URL:        url,
		Format:     FormatJSON,
		Timeout:    2 * time.Second,
		Retries:    3,
		Backoff:    200 * time.Millisecond,
		MaxBackoff: 5 * time.Second,
	}
}

// DefaultCommandConfig returns the defaults of a command running path.
func DefaultCommandConfig(path string, args ...string) CommandConfig {
	return CommandConfig{Path: path, Args: args, Timeout: 10 * time.Second}
}

// Validate names the first bad field. Zero values are fine: they mean the
// default.
func (c *Config) Validate() error {
	if c.QueueSize < 0 {
		return fmt.Errorf("QueueSize: %d must not be negative", c.QueueSize)
	}
	for i, w := range c.Webhooks {
		if err := w.validate(); err != nil {
			return fmt.Errorf("Webhooks[%d].%w", i, err)
		}
	}
	for i, cmd := range c.Commands {
		if err := cmd.validate(); err != nil {
			return fmt.Errorf("Commands[%d].%w", i, err)
		}
	}
	return nil
}

func (w *WebhookConfig) validate() error {
	if w.URL == "" {
		return errors.New("URL: missing")
	}
	u, err := url.Parse(w.URL)
	if err != nil {
		return fmt.Errorf("URL: %q does not parse", redact(w.URL))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL: %q is not http or https", redactURL(u))
	}
	if u.Host == "" {
		return fmt.Errorf("URL: %q has no host", redactURL(u))
	}
	switch w.Format {
	case "", FormatJSON, FormatSlack:
	default:
		return fmt.Errorf("Format: %q is not json or slack", w.Format)
	}
	for name, d := range map[string]time.Duration{"Timeout": w.Timeout, "Backoff": w.Backoff, "MaxBackoff": w.MaxBackoff} {
		if d < 0 {
			return fmt.Errorf("%s: %v must not be negative", name, d)
		}
	}
	if w.Retries < -1 {
		return fmt.Errorf("Retries: %d must be -1 (none), 0 (default 3) or more", w.Retries)
	}
	for k, v := range w.Headers {
		if !validHeaderName(k) {
			return fmt.Errorf("Headers: %q is not a valid header name", k)
		}
		if strings.EqualFold(k, "Content-Type") {
			return errors.New("Headers: Content-Type is set by the format")
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("Headers[%s]: value holds a line break or NUL", k)
		}
	}
	return nil
}

func (c *CommandConfig) validate() error {
	if c.Path == "" {
		return errors.New("Path: missing")
	}
	if c.Timeout < 0 {
		return fmt.Errorf("Timeout: %v must not be negative", c.Timeout)
	}
	return nil
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.QueueSize == 0 {
		c.QueueSize = DefaultConfig().QueueSize
	}
	ws := make([]WebhookConfig, len(c.Webhooks))
	for i, w := range c.Webhooks {
		d := DefaultWebhookConfig(w.URL)
		if w.Format == "" {
			w.Format = d.Format
		}
		if w.Timeout == 0 {
			w.Timeout = d.Timeout
		}
		switch w.Retries {
		case 0:
			w.Retries = d.Retries
		case -1:
			w.Retries = 0
		}
		if w.Backoff == 0 {
			w.Backoff = d.Backoff
		}
		if w.MaxBackoff == 0 {
			w.MaxBackoff = d.MaxBackoff
		}
		if w.MaxBackoff < w.Backoff {
			w.MaxBackoff = w.Backoff
		}
		ws[i] = w
	}
	c.Webhooks = ws
	cs := make([]CommandConfig, len(c.Commands))
	for i, cmd := range c.Commands {
		if cmd.Timeout == 0 {
			cmd.Timeout = DefaultCommandConfig(cmd.Path).Timeout
		}
		cs[i] = cmd
	}
	c.Commands = cs
	return c
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// redact returns only raw's scheme and host: user info, query and path may
// all hold credentials (a Slack webhook's secret is its path). A URL that
// does not parse is hidden entirely.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return redactURL(u)
}

func redactURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
}

// urlSecrets lists the parts of raw that redact hides, longest first, so
// that they can be cut out of text a receiver sends back (a 404 page that
// echoes the path).
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return []string{raw}
	}
	var out []string
	for _, s := range []string{u.RequestURI(), u.EscapedPath(), u.Path, u.RawQuery, u.Query().Encode(), u.User.String(), u.Fragment} {
		if len(s) > 1 {
			out = append(out, s)
		}
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		out = append(out, pw)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}
