package admin

// What keeps web pages away from the admin API. A page in a browser on the
// admin host can send requests to 127.0.0.1:9306: a "simple" cross-site
// POST (text/plain, a form) gets no CORS preflight, and DNS rebinding makes
// a page's own name point at the API so that the browser lets it read the
// answers. The API has no web UI, so it refuses:
//   - a Host header that is not one of its own names (rebinding: the Host
//     is then the attacker's name);
//   - any request a browser marks as cross-site (Sec-Fetch-Site other than
//     same-origin or none) or whose Origin is not the API's own origin,
//     whatever the method (net/http's CrossOriginProtection does the same
//     for unsafe methods only);
//   - a POST without Content-Type: application/json (no page can send that
//     cross-site without a preflight, which the API never grants).
// The CLI's client sends no Origin nor Sec-Fetch-Site, a Host the API
// accepts, and JSON on every POST.

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// CheckAllowedHosts refuses admin.allowed_hosts entries that are not a bare
// host name or IP address (no port, scheme or path).
func CheckAllowedHosts(hosts []string) error {
	for i, h := range hosts {
		bad := h == "" || strings.ContainsAny(h, "/:@ \t?#*\\") && net.ParseIP(strings.Trim(h, "[]")) == nil
		if bad {
			return fmt.Errorf("admin.allowed_hosts[%d]: %q is not a host name or IP address (give it without scheme or port)", i, h)
		}
	}
	return nil
}

// hostRule says which Host headers the API answers.
type hostRule struct {
	names map[string]bool // lower case, IPv6 without brackets
	anyIP bool            // listening on an unspecified address
}

func newHostRule(listen string, extra []string) hostRule {
	r := hostRule{names: map[string]bool{"localhost": true}}
	if host, _, err := net.SplitHostPort(listen); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() || host == "" {
			r.anyIP = true
		} else {
			r.names[strings.ToLower(host)] = true
		}
	}
	for _, h := range extra {
		r.names[strings.ToLower(strings.Trim(h, "[]"))] = true
	}
	return r
}

// allowed reports whether hostport (a request's Host) names this API.
func (r hostRule) allowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	host = strings.TrimSuffix(host, ".")
	if r.names[host] {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		// An IP literal needs no DNS, so it cannot be rebound.
		return ip.IsLoopback() || r.anyIP || r.names[ip.String()]
	}
	return false
}

// guard applies the rules above before anything else, token included: a
// refused request changes nothing and learns nothing.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hosts.allowed(r.Host) {
			s.refuse(w, r, http.StatusForbidden, fmt.Sprintf("Host %q is not a name of this API (admin.allowed_hosts lists extra names)", r.Host))
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			s.refuse(w, r, http.StatusForbidden, fmt.Sprintf("cross-site request refused (Sec-Fetch-Site: %s)", site))
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r.Host) {
			s.refuse(w, r, http.StatusForbidden, fmt.Sprintf("cross-site request refused (Origin %q is not this API)", origin))
			return
		}
		if r.Method == http.MethodPost {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				s.refuse(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type must be application/json, not %q", r.Header.Get("Content-Type")))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// refuse answers code with why. It logs at most one refusal a second (a
// page in a loop must not flood the log), counting the ones it left out.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, why string) {
	now := time.Now().UnixNano()
	last := s.refusedAt.Load()
	if now-last >= int64(time.Second) && s.refusedAt.CompareAndSwap(last, now) {
		s.log.Warn("admin request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", why,
			"not_logged_before", s.refusedQuiet.Swap(0))
	} else {
		s.refusedQuiet.Add(1)
	}
	writeJSON(w, code, ErrorBody{why})
}

// sameOrigin reports whether origin is http(s)://host, host being the
// request's (already allowed) Host.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" && u.Path != "/" {
		return false
	}
	return strings.EqualFold(u.Host, host)
}
