package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestGuard checks each rule that keeps web pages away from the API: the
// Host header, Sec-Fetch-Site, Origin and the POST content type. A refused
// request reaches no manager call and gets a JSON error naming the rule.
func TestGuard(t *testing.T) {
	const js = "application/json"
	for _, c := range []struct {
		name        string
		listen      string
		token       string
		allowed     []string
		method      string
		path        string
		host        string
		contentType string
		headers     map[string]string
		code        int
		why         string // in the error when refused
	}{
		{name: "status on the listen address", method: "GET", path: "/status", host: "127.0.0.1:9306", code: 200},
		{name: "localhost", method: "GET", path: "/status", host: "localhost:9306", code: 200},
		{name: "LOCALHOST. (case, trailing dot)", method: "GET", path: "/status", host: "LOCALHOST.:9306", code: 200},
		{name: "[::1]", method: "GET", path: "/status", host: "[::1]:9306", code: 200},
		{name: "other loopback IP", method: "GET", path: "/status", host: "127.0.0.2:9306", code: 200},
		{name: "host without port", method: "GET", path: "/status", host: "127.0.0.1", code: 200},
		{name: "rebound name", method: "GET", path: "/status", host: "attacker.example:9306", code: 403, why: "Host"},
		{name: "rebound name, pause", method: "POST", path: "/pause", host: "attacker.example:9306", contentType: js, code: 403, why: "Host"},
		{name: "localhost as a subdomain", method: "GET", path: "/status", host: "localhost.attacker.example", code: 403, why: "Host"},
		{name: "foreign IP on a loopback listener", method: "GET", path: "/status", host: "10.1.2.3:9306", code: 403, why: "Host"},
		{name: "configured name", allowed: []string{"Tandem-Admin.internal"}, method: "GET", path: "/status", host: "tandem-admin.internal:9306", code: 200},
		{name: "configured IP", allowed: []string{"10.1.2.3"}, method: "GET", path: "/status", host: "10.1.2.3:9306", code: 200},
		{name: "listen host", listen: "10.9.9.9:9306", token: "t", method: "GET", path: "/status", host: "10.9.9.9:9306", code: 200},
		{name: "any IP on 0.0.0.0", listen: "0.0.0.0:9306", token: "t", method: "GET", path: "/status", host: "10.1.2.3:9306", code: 200},
		{name: "a name on 0.0.0.0", listen: "0.0.0.0:9306", token: "t", method: "GET", path: "/status", host: "db-proxy.example:9306", code: 403, why: "Host"},
		{name: "guard before token", listen: "0.0.0.0:9306", token: "t", method: "GET", path: "/status", host: "db-proxy.example:9306", headers: map[string]string{"Authorization": "Bearer t"}, code: 403, why: "Host"},

		{name: "Sec-Fetch-Site cross-site", method: "GET", path: "/status", host: "127.0.0.1:9306", headers: map[string]string{"Sec-Fetch-Site": "cross-site"}, code: 403, why: "cross-site"},
		{name: "Sec-Fetch-Site same-site", method: "POST", path: "/pause", host: "127.0.0.1:9306", contentType: js, headers: map[string]string{"Sec-Fetch-Site": "same-site"}, code: 403, why: "Sec-Fetch-Site"},
		{name: "Sec-Fetch-Site same-origin", method: "POST", path: "/pause", host: "127.0.0.1:9306", contentType: js, headers: map[string]string{"Sec-Fetch-Site": "same-origin"}, code: 200},
		{name: "Sec-Fetch-Site none", method: "GET", path: "/status", host: "127.0.0.1:9306", headers: map[string]string{"Sec-Fetch-Site": "none"}, code: 200},
		{name: "foreign Origin", method: "POST", path: "/failover", host: "127.0.0.1:9306", contentType: js, headers: map[string]string{"Origin": "http://attacker.example"}, code: 403, why: "Origin"},
		{name: "Origin null", method: "POST", path: "/pause", host: "127.0.0.1:9306", contentType: js, headers: map[string]string{"Origin": "null"}, code: 403, why: "Origin"},
		{name: "Origin on another port", method: "GET", path: "/status", host: "127.0.0.1:9306", headers: map[string]string{"Origin": "http://127.0.0.1:8080"}, code: 403, why: "Origin"},
		{name: "own Origin", method: "POST", path: "/pause", host: "127.0.0.1:9306", contentType: js, headers: map[string]string{"Origin": "http://127.0.0.1:9306"}, code: 200},

		{name: "POST text/plain", method: "POST", path: "/pause", host: "127.0.0.1:9306", contentType: "text/plain", code: 415, why: "Content-Type"},
		{name: "POST form", method: "POST", path: "/failover", host: "127.0.0.1:9306", contentType: "application/x-www-form-urlencoded", code: 415, why: "Content-Type"},
		{name: "POST multipart", method: "POST", path: "/maintenance", host: "127.0.0.1:9306", contentType: "multipart/form-data; boundary=x", code: 415, why: "Content-Type"},
		{name: "POST without Content-Type", method: "POST", path: "/resume", host: "127.0.0.1:9306", code: 415, why: "Content-Type"},
		{name: "POST json with charset", method: "POST", path: "/resume", host: "127.0.0.1:9306", contentType: "application/json; charset=utf-8", code: 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			listen := c.listen
			if listen == "" {
				listen = "127.0.0.1:9306"
			}
			m := &fakeManager{}
			s, err := NewServer(Config{Listen: listen, Token: c.token, AllowedHosts: c.allowed}, m, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(c.method, "http://"+c.host+c.path, strings.NewReader("{}"))
			req.Host = c.host
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			s.srv.Handler.ServeHTTP(rec, req)
			if rec.Code != c.code {
				t.Fatalf("%s %s Host %s: %d %s, want %d", c.method, c.path, c.host, rec.Code, rec.Body.String(), c.code)
			}
			if c.code < 400 {
				return
			}
			var eb ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || !strings.Contains(eb.Error, c.why) {
				t.Fatalf("error body %q (%v) does not name %q", rec.Body.String(), err, c.why)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("error Content-Type %q", ct)
			}
			if calls := m.mutations(); len(calls) != 0 {
				t.Fatalf("a refused request reached the manager: %v", calls)
			}
		})
	}
}

func TestCheckAllowedHosts(t *testing.T) {
	for _, c := range []struct {
		hosts []string
		ok    bool
	}{
		{nil, true},
		{[]string{"admin.example", "10.0.0.5", "::1", "[fe80::1]"}, true},
		{[]string{""}, false},
		{[]string{"admin.example:9306"}, false},
		{[]string{"http://admin.example"}, false},
		{[]string{"admin.example/x"}, false},
		{[]string{"*.example"}, false},
	} {
		err := CheckAllowedHosts(c.hosts)
		if (err == nil) != c.ok {
			t.Errorf("CheckAllowedHosts(%q) = %v", c.hosts, err)
		}
		if err != nil && !strings.Contains(err.Error(), "admin.allowed_hosts[") {
			t.Errorf("error does not name the key: %v", err)
		}
	}
	if _, err := NewServer(Config{Listen: "127.0.0.1:0", AllowedHosts: []string{"x:1"}}, &fakeManager{}, nil, nil, nil); err == nil {
		t.Error("NewServer took a bad allowed host")
	}
}

// TestClientHeaders: the CLI's client sends what the guard wants on every
// call, including the POSTs without a body (pause, resume).
func TestClientHeaders(t *testing.T) {
	var seen []string
	m := &fakeManager{}
	s, err := NewServer(Config{Listen: "127.0.0.1:0"}, m, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		s.srv.Handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := &Client{Base: srv.URL}
	ctx := t.Context()
	for _, call := range []func() error{
		func() error { _, err := c.Status(ctx); return err },
		func() error { return c.Pause(ctx) },
		func() error { return c.Resume(ctx) },
		func() error { _, err := c.Switchover(ctx, SwitchoverRequest{DryRun: true}); return err },
		func() error { _, err := c.Failover(ctx); return err },
		func() error { return c.Maintenance(ctx, "b", true) },
		func() error { _, err := c.Events(ctx); return err },
	} {
		if err := call(); err != nil {
			t.Fatalf("%v (requests so far: %q)", err, seen)
		}
	}
	if got, want := m.mutations(), []string{"pause", "resume", "switchover", "failover", "maintenance"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("manager calls %v, want %v", got, want)
	}
}

// TestRefusalLogBounded: a page sending refused requests in a loop gets
// one log line a second, which counts the others.
func TestRefusalLogBounded(t *testing.T) {
	var out strings.Builder
	log := hclog.New(&hclog.LoggerOptions{Output: &out, JSONFormat: true})
	s, err := NewServer(Config{Listen: "127.0.0.1:9306"}, &fakeManager{}, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		req := httptest.NewRequest("GET", "http://attacker.example/status", nil)
		rec := httptest.NewRecorder()
		s.srv.Handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Fatalf("answer %d", rec.Code)
		}
	}
	if n := strings.Count(out.String(), "admin request refused"); n < 1 || n > 3 {
		t.Fatalf("%d refusal lines for 100 requests within a moment:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), `"reason":"Host \"attacker.example\" is not a name of this API`) {
		t.Fatalf("the refusal line lacks its reason:\n%s", out.String())
	}
}
