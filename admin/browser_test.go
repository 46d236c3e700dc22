package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// attackPage is served from another origin (127.0.0.2). It tries every
// mutating endpoint the ways a page can without a CORS preflight (fetch
// no-cors with a text/plain body, a form POST), one way with a preflight
// (fetch with application/json), and tries to read /status. It writes what
// it saw into <pre id="out">.
const attackPage = `<!doctype html><html><body><script>
const base = %q;
const posts = {
  "/pause": "{}", "/resume": "{}", "/switchover": '{"to":"b"}', "/switchover/abort": "{}", "/rejoin": '{"node":"a"}',
  "/failover": '{"force":true,"confirm":true}', "/maintenance": '{"node":"b","on":true}',
};
const bounded = (p) => Promise.race([p, new Promise((_, no) => setTimeout(() => no(new Error("timeout")), 10000))]);
const results = {};
async function attempt(name, fn) {
  try { results[name] = "ok: " + await bounded(fn()); } catch (e) { results[name] = "error: " + e; }
}
function formPost(path, n) {
  return new Promise((done) => {
    const frame = document.createElement("iframe");
    frame.name = "f" + n;
    frame.onload = () => done("form posted");
    document.body.appendChild(frame);
    const form = document.createElement("form");
    form.method = "POST"; form.action = base + path; form.target = frame.name;
    form.enctype = "text/plain";
    const input = document.createElement("input");
    input.name = posts[path].slice(0, -1) + ',"x":"'; input.value = '"}';
    form.appendChild(input);
    document.body.appendChild(form);
    form.submit();
  });
}
(async () => {
  let n = 0;
  for (const [path, body] of Object.entries(posts)) {
    await attempt("no-cors " + path, () => fetch(base + path, {method: "POST", mode: "no-cors", body: body}).then(r => r.type));
    await attempt("cors-json " + path, () => fetch(base + path, {method: "POST", headers: {"Content-Type": "application/json"}, body: body}).then(r => r.status));
    await attempt("form " + path, () => formPost(path, n++));
  }
  await attempt("read /status", () => fetch(base + "/status").then(r => r.text()));
  await attempt("no-cors /status", () => fetch(base + "/status", {mode: "no-cors"}).then(r => r.type + " " + r.status));
  const out = document.createElement("pre");
  out.id = "out";
  out.textContent = JSON.stringify(results);
  document.body.appendChild(out);
})();
</script></body></html>`

// requestLog records what reached the admin server and how it answered.
type requestLog struct {
	mu   sync.Mutex
	seen map[string][]int // "METHOD /path" -> status codes
}

func (l *requestLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		l.mu.Lock()
		l.seen[r.Method+" "+r.URL.Path] = append(l.seen[r.Method+" "+r.URL.Path], rec.Code)
		l.mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func (l *requestLog) codes(key string) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.seen[key]...)
}

// chromium returns the path of Debian's chromium, failing the test when it
// is missing: `make test` installs it (scripts/chromium.sh install).
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: run `scripts/chromium.sh install` (make test does): %v", err)
	}
	return path
}

// TestBrowserCannotDriveAdminAPI runs headless Chromium against a real
// admin server on 127.0.0.1 while a page from 127.0.0.2 attacks it, then
// checks that the browser's requests arrived and were all refused, that
// nothing reached the manager, that the page read no status, that a
// rebound name (resolved to the API's address) reads only a refusal, and
// that the CLI's client still works against the same server.
func TestBrowserCannotDriveAdminAPI(t *testing.T) {
	bin := chromium(t)
	m := &fakeManager{}
	s, err := NewServer(Config{Listen: "127.0.0.1:0"}, m, func() SessionCounts { return SessionCounts{Total: 3} }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := &requestLog{seen: map[string][]int{}}
	s.srv.Handler = log.wrap(s.srv.Handler)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	base := "http://" + l.Addr().String()
	_, adminPort, _ := net.SplitHostPort(l.Addr().String())

	al, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("a second loopback address for the attacker's origin: %v", err)
	}
	attacker := &httptest.Server{Listener: al, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, attackPage, base)
	})}}
	attacker.Start()
	t.Cleanup(attacker.Close)

	// The timeout bounds the browser's whole life, every step included.
	tctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	actx, cancel := chromedp.NewExecAllocator(tctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Flag("no-proxy-server", true),
		// A rebound name: the browser resolves it to the API's address.
		chromedp.Flag("host-resolver-rules", "MAP rebind.test 127.0.0.1"))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()

	if err := chromedp.Do(ctx, chromedp.Navigate(attacker.URL), chromedp.WaitReady(chromedp.ID("out"))); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	out, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("out")))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	t.Logf("the page saw: %s", out)
	var results map[string]string
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("page output %q: %v", out, err)
	}

	// The browser did send the simple requests (so the test can fail),
	// and each was refused before reaching the manager.
	for _, path := range []string{"/pause", "/resume", "/switchover", "/switchover/abort", "/rejoin", "/failover", "/maintenance"} {
		codes := log.codes("POST " + path)
		if len(codes) < 2 {
			t.Errorf("POST %s reached the server %d times, want the fetch and the form (page: %s)", path, len(codes), results["no-cors "+path])
		}
		for _, c := range codes {
			if c != http.StatusForbidden {
				t.Errorf("POST %s answered %d, want 403", path, c)
			}
		}
		if r := results["cors-json "+path]; !strings.HasPrefix(r, "error") {
			t.Errorf("a JSON fetch to %s passed the preflight: %s", path, r)
		}
	}
	if calls := m.mutations(); len(calls) != 0 {
		t.Fatalf("the page drove the manager: %v", calls)
	}
	if codes := log.codes("GET /status"); len(codes) == 0 || codes[0] != http.StatusForbidden {
		t.Errorf("GET /status from the page: codes %v, want 403", codes)
	}
	if r := results["read /status"]; !strings.HasPrefix(r, "error") || strings.Contains(r, "epoch") {
		t.Errorf("the page read /status: %s", r)
	}

	// A page whose name was rebound to the API reads its own origin:
	// Chromium sends Host rebind.test, and gets only the refusal.
	if err := chromedp.Do(ctx, chromedp.Navigate("http://rebind.test:"+adminPort+"/status")); err != nil {
		t.Fatalf("chromium, rebound name: %v", err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatalf("chromium, rebound name: %v", err)
	}
	if !strings.Contains(body, "not a name of this API") || strings.Contains(body, "epoch") {
		t.Errorf("a rebound name read: %s", body)
	}
	// The same by hand, with a POST, as a non-browser client would.
	req, _ := http.NewRequest(http.MethodPost, base+"/pause", strings.NewReader("{}"))
	req.Host = "rebind.test:" + adminPort
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "Host") {
		t.Errorf("POST /pause with a foreign Host: %d %s", resp.StatusCode, b)
	}
	if calls := m.mutations(); len(calls) != 0 {
		t.Fatalf("a rebound request drove the manager: %v", calls)
	}

	// The CLI's client still works against the same server.
	c := &Client{Base: base}
	cctx := t.Context()
	if st, err := c.Status(cctx); err != nil || st.Decision.Epoch != 7 {
		t.Fatalf("client status: %+v %v", st, err)
	}
	if err := c.Pause(cctx); err != nil {
		t.Fatalf("client pause: %v", err)
	}
	if err := c.Resume(cctx); err != nil {
		t.Fatalf("client resume: %v", err)
	}
	if _, err := c.Switchover(cctx, SwitchoverRequest{To: "b"}); err != nil {
		t.Fatalf("client switchover: %v", err)
	}
	if _, err := c.Failover(cctx); err != nil {
		t.Fatalf("client failover: %v", err)
	}
	if err := c.Maintenance(cctx, "b", true); err != nil {
		t.Fatalf("client maintenance: %v", err)
	}
	if got := strings.Join(m.mutations(), ","); got != "pause,resume,switchover,failover,maintenance" {
		t.Fatalf("manager calls from the client: %s", got)
	}
}
