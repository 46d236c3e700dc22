// Package admin is tandem's HTTP/JSON admin API, and the client the CLI
// uses to call it. It drives the failover manager through the small
// interface it declares, and reads session counts from the proxy.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tandemdb/tandem/failover"
)

// Manager is what the admin API needs of the failover manager.
type Manager interface {
	Status() failover.Status
	Switchover(ctx context.Context, o failover.SwitchoverOptions) (failover.SwitchoverReport, error)
	AbortSwitchover() error
	Failover(ctx context.Context, force bool) error
	SetMaintenance(ctx context.Context, node string, on bool) error
	ClearExclusion(ctx context.Context, node string) error
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
}

// Sessions reports client session counts (the proxy's Sessions, adapted).
type Sessions func() SessionCounts

// SessionCounts are the proxy's session counts as the API shows them.
type SessionCounts struct {
	Total         int            `json:"total"`
	Busy          int            `json:"busy"`
	InTransaction int            `json:"in_transaction"`
	ByNode        map[string]int `json:"by_node"`
}

// Config configures the admin API.
type Config struct {
	// Listen is host:port. Default 127.0.0.1:9306.
	Listen string
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every request. Without a token tandem refuses to listen anywhere
	// but on a loopback address.
	Token string
	// AllowedHosts are extra names (or IP addresses) that requests may
	// carry in their Host header, without port: the names operators use
	// to reach the API from elsewhere. Always allowed: localhost, any
	// loopback IP, Listen's own host and, when Listen is an unspecified
	// address (0.0.0.0, [::]), any IP address. Any other Host is refused
	// (403), which defeats DNS rebinding.
	AllowedHosts []string
}

// Status is the body of GET /status.
type Status struct {
	failover.Status
	Sessions SessionCounts `json:"sessions"`
}

// SwitchoverRequest is the body of POST /switchover.
type SwitchoverRequest struct {
	To      string `json:"to,omitempty"`
	Timeout string `json:"timeout,omitempty"` // Go duration, default 5s
	DryRun  bool   `json:"dry_run,omitempty"`
}

// FailoverRequest is the body of POST /failover: a forced failover needs
// both fields, so that nobody triggers it by accident.
type FailoverRequest struct {
	Force   bool `json:"force"`
	Confirm bool `json:"confirm"`
}

// MaintenanceRequest is the body of POST /maintenance.
type MaintenanceRequest struct {
	Node string `json:"node"`
	On   bool   `json:"on"`
}

// ErrorBody is every error response's body.
type ErrorBody struct {
	Error string `json:"error"`
}

// Server serves the admin API.
type Server struct {
	cfg      Config
	mgr      Manager
	sessions Sessions
	metrics  http.Handler
	log      hclog.Logger
	hosts    hostRule
	srv      *http.Server

	refusedAt    atomic.Int64 // unix ns of the last refusal logged
	refusedQuiet atomic.Int64 // refusals not logged since
}

// NewServer checks cfg and returns a server. metrics (may be nil) is served
// at /metrics.
func NewServer(cfg Config, mgr Manager, sessions Sessions, metrics http.Handler, log hclog.Logger) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:9306"
	}
	if err := CheckListen(cfg.Listen, cfg.Token); err != nil {
		return nil, err
	}
	if err := CheckAllowedHosts(cfg.AllowedHosts); err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Server{cfg: cfg, mgr: mgr, sessions: sessions, metrics: metrics, log: log, hosts: newHostRule(cfg.Listen, cfg.AllowedHosts)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", s.status)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("POST /switchover", s.switchover)
	mux.HandleFunc("POST /switchover/abort", s.abortSwitchover)
	mux.HandleFunc("POST /failover", s.failover)
	mux.HandleFunc("POST /maintenance", s.maintenance)
	mux.HandleFunc("POST /rejoin", s.rejoin)
	mux.HandleFunc("POST /pause", s.pause)
	mux.HandleFunc("POST /resume", s.resume)
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	s.srv = &http.Server{Handler: s.guard(s.auth(mux)), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	return s, nil
}

// CheckListen refuses a non-loopback address without a token.
func CheckListen(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin.listen: %q is not host:port", addr)
	}
	if token != "" {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("admin.listen: %q is not a loopback address; set admin.token to listen there", addr)
	}
	return nil
}

// Serve accepts on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ListenAndServe listens on the configured address.
func (s *Server) ListenAndServe() error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

func (s *Server) auth(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := []byte("Bearer " + s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			writeJSON(w, http.StatusUnauthorized, ErrorBody{"missing or wrong bearer token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeErr maps an operation's error to a status code: refusals are 409
// (the request was valid, the state did not allow it), bad input 400.
func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, failover.ErrRefused):
		code = http.StatusConflict
	case errors.Is(err, errBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusGatewayTimeout
	}
	writeJSON(w, code, ErrorBody{err.Error()})
}

var errBadRequest = errors.New("bad request")

func decode(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st := Status{Status: s.mgr.Status()}
	if s.sessions != nil {
		st.Sessions = s.sessions()
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.mgr.Status().Events)
}

func (s *Server) switchover(w http.ResponseWriter, r *http.Request) {
	var req SwitchoverRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	o := failover.SwitchoverOptions{To: req.To, DryRun: req.DryRun, Timeout: 5 * time.Second}
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 {
			writeErr(w, fmt.Errorf("%w: timeout %q is not a positive duration", errBadRequest, req.Timeout))
			return
		}
		o.Timeout = d
	}
	s.log.Info("switchover requested", "to", req.To, "timeout", o.Timeout, "dry_run", req.DryRun, "remote", r.RemoteAddr)
	ctx, cancel := context.WithTimeout(r.Context(), o.Timeout+30*time.Second)
	defer cancel()
	rep, err := s.mgr.Switchover(ctx, o)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		code := http.StatusConflict
		if !errors.Is(err, failover.ErrRefused) && !rep.RolledBack {
			code = http.StatusInternalServerError
		}
		writeJSON(w, code, struct {
			ErrorBody
			Report failover.SwitchoverReport `json:"report"`
		}{ErrorBody{err.Error()}, rep})
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) abortSwitchover(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	s.log.Warn("switchover abort requested", "remote", r.RemoteAddr)
	if err := s.mgr.AbortSwitchover(); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Aborting bool `json:"aborting"`
	}{true})
}

func (s *Server) failover(w http.ResponseWriter, r *http.Request) {
	var req FailoverRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if !req.Force || !req.Confirm {
		writeErr(w, fmt.Errorf("%w: a forced failover needs {\"force\": true, \"confirm\": true}; for a safe move use /switchover", errBadRequest))
		return
	}
	s.log.Warn("forced failover requested", "remote", r.RemoteAddr)
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	if err := s.mgr.Failover(ctx, true); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.mgr.Status().Decision)
}

func (s *Server) maintenance(w http.ResponseWriter, r *http.Request) {
	var req MaintenanceRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if strings.TrimSpace(req.Node) == "" {
		writeErr(w, fmt.Errorf("%w: node missing", errBadRequest))
		return
	}
	if err := s.mgr.SetMaintenance(r.Context(), req.Node, req.On); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.mgr.Status().Decision)
}

// RejoinRequest is the body of POST /rejoin.
type RejoinRequest struct {
	Node string `json:"node"`
}

func (s *Server) rejoin(w http.ResponseWriter, r *http.Request) {
	var req RejoinRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if strings.TrimSpace(req.Node) == "" {
		writeErr(w, fmt.Errorf("%w: node missing", errBadRequest))
		return
	}
	s.log.Warn("exclusion clear requested", "node", req.Node, "remote", r.RemoteAddr)
	if err := s.mgr.ClearExclusion(r.Context(), req.Node); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.mgr.Status().Decision)
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	if err := s.mgr.Pause(r.Context()); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"traffic": "paused"})
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	if err := s.mgr.Resume(r.Context()); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"traffic": "resumed"})
}
