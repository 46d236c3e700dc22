package alert

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := "https://hooks.example.com/tandem"
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" means valid
	}{
		{"default", DefaultConfig(), ""},
		{"zero fields mean defaults", Config{Webhooks: []WebhookConfig{{URL: ok}}, Commands: []CommandConfig{{Path: "/bin/true"}}}, ""},
		{"full", Config{Webhooks: []WebhookConfig{DefaultWebhookConfig(ok)}, Commands: []CommandConfig{DefaultCommandConfig("/bin/true", "-x")}}, ""},
		{"no retries", Config{Webhooks: []WebhookConfig{{URL: ok, Retries: -1}}}, ""},
		{"queue", Config{QueueSize: -1}, "QueueSize: -1"},
		{"url missing", Config{Webhooks: []WebhookConfig{{URL: ok}, {}}}, "Webhooks[1].URL: missing"},
		{"url scheme", Config{Webhooks: []WebhookConfig{{URL: "ftp://x/y?token=s3cret"}}}, `Webhooks[0].URL: "ftp://x" is not http or https`},
		{"url host", Config{Webhooks: []WebhookConfig{{URL: "http:///path"}}}, "Webhooks[0].URL: \"http:\" has no host"},
		{"url parse", Config{Webhooks: []WebhookConfig{{URL: "http://u:s3cret@[::1/x"}}}, "Webhooks[0].URL: \"(unparsable URL)\" does not parse"},
		{"format", Config{Webhooks: []WebhookConfig{{URL: ok, Format: "xml"}}}, `Webhooks[0].Format: "xml" is not json or slack`},
		{"timeout", Config{Webhooks: []WebhookConfig{{URL: ok, Timeout: -time.Second}}}, "Webhooks[0].Timeout: -1s must not be negative"},
		{"backoff", Config{Webhooks: []WebhookConfig{{URL: ok, Backoff: -1}}}, "Webhooks[0].Backoff"},
		{"max backoff", Config{Webhooks: []WebhookConfig{{URL: ok, MaxBackoff: -1}}}, "Webhooks[0].MaxBackoff"},
		{"retries", Config{Webhooks: []WebhookConfig{{URL: ok, Retries: -2}}}, "Webhooks[0].Retries: -2"},
		{"header name", Config{Webhooks: []WebhookConfig{{URL: ok, Headers: map[string]string{"Bad Name": "x"}}}}, `Webhooks[0].Headers: "Bad Name" is not a valid header name`},
		{"header value", Config{Webhooks: []WebhookConfig{{URL: ok, Headers: map[string]string{"X-A": "a\r\nX-B: b"}}}}, "Webhooks[0].Headers[X-A]: value holds a line break"},
		{"content type", Config{Webhooks: []WebhookConfig{{URL: ok, Headers: map[string]string{"content-type": "text/plain"}}}}, "Webhooks[0].Headers: Content-Type is set by the format"},
		{"command path", Config{Commands: []CommandConfig{{Path: "/bin/true"}, {Args: []string{"x"}}}}, "Commands[1].Path: missing"},
		{"command timeout", Config{Commands: []CommandConfig{{Path: "/bin/true", Timeout: -1}}}, "Commands[0].Timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tc.want != "" && err == nil:
				t.Errorf("Validate: nil, want %q", tc.want)
			case tc.want != "" && !strings.HasPrefix(err.Error(), tc.want):
				t.Errorf("Validate: %q, want it to start with %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows a credential: %v", err)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	c := Config{
		Webhooks: []WebhookConfig{{URL: "http://x/"}, {URL: "http://y/", Retries: -1, Backoff: 10 * time.Second}},
		Commands: []CommandConfig{{Path: "/bin/true"}},
	}.withDefaults()
	if c.QueueSize != 100 {
		t.Errorf("QueueSize %d", c.QueueSize)
	}
	w := c.Webhooks[0]
	if w.Format != FormatJSON || w.Timeout != 2*time.Second || w.Retries != 3 || w.Backoff != 200*time.Millisecond || w.MaxBackoff != 5*time.Second {
		t.Errorf("webhook defaults: %+v", w)
	}
	if w := c.Webhooks[1]; w.Retries != 0 || w.MaxBackoff != 10*time.Second {
		t.Errorf("Retries -1 and Backoff over MaxBackoff: %+v", w)
	}
	if c.Commands[0].Timeout != 10*time.Second {
		t.Errorf("command Timeout %v", c.Commands[0].Timeout)
	}
}

func TestNewCommandNotInPath(t *testing.T) {
	_, err := New(Config{Commands: []CommandConfig{{Path: "tandem-no-such-alert-command"}}}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "Commands[0].Path: ") {
		t.Fatalf("New: %v, want a Commands[0].Path error", err)
	}
}
