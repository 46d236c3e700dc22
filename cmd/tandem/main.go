// Command tandem is a MySQL-aware active/passive proxy for a pair of
// MariaDB/MySQL nodes. `tandem serve -config FILE` runs it.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tandemdb/tandem/admin"
	"github.com/tandemdb/tandem/alert"
	"github.com/tandemdb/tandem/cluster"
	"github.com/tandemdb/tandem/coord"
	"github.com/tandemdb/tandem/failover"
	"github.com/tandemdb/tandem/internal/config"
	"github.com/tandemdb/tandem/internal/nodeaccounts"
	"github.com/tandemdb/tandem/internal/settlehook"
	"github.com/tandemdb/tandem/metrics"
	"github.com/tandemdb/tandem/proxy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1 // runtime failure
	exitConfig = 2 // bad command line or configuration
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitConfig
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "status":
		return cmdStatus(args[1:], stdout, stderr)
	case "switchover":
		return cmdSwitchover(args[1:], stdout, stderr)
	case "failover":
		return cmdFailover(args[1:], stdout, stderr)
	case "maintenance":
		return cmdMaintenance(args[1:], stdout, stderr)
	case "rejoin":
		return cmdRejoin(args[1:], stdout, stderr)
	case "pause", "resume":
		return cmdPauseResume(args[0], args[1:], stdout, stderr)
	case "events":
		return cmdEvents(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "tandem", version)
		return exitOK
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "tandem: unknown command %q\n", args[0])
	usage(stderr)
	return exitConfig
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: tandem <command> [flags]

commands:
  serve -config FILE [-log-level LEVEL]     run the proxy
  status [-json]                            nodes, roles, health, replication, lag, sessions
  switchover [-to NODE] [-timeout D] [-dry-run]
                                            move traffic to the other node with no client error
  failover -force                           promote the other node now, skipping safety checks
  maintenance NODE on|off                   keep a passive node out of promotion
  rejoin NODE                               clear the exclusion of a rebuilt node
  pause | resume                            hold all traffic / release it
  events [-json]                            recent failover events
  version                                   print the version

Operator commands talk to a running tandem's admin API: -admin URL (default
http://127.0.0.1:9306), or -config FILE to read admin.listen and the token;
-token T or TANDEM_ADMIN_TOKEN for the bearer token.
Exit codes: 0 ok, 1 failed or refused, 2 bad usage or config, 3 tandem unreachable.
`)
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/tandem/tandem.toml", "configuration file")
	level := fs.String("log-level", "", "log level, overriding log.level")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, "tandem: config:", err)
		return exitConfig
	}
	if *level != "" {
		cfg.Log.Level = *level
		if err := cfg.Validate(); err != nil {
			fmt.Fprintln(stderr, "tandem: -log-level:", err)
			return exitConfig
		}
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name:       "tandem",
		Level:      hclog.LevelFromString(cfg.Log.Level),
		JSONFormat: cfg.Log.Format == "json",
		Output:     stderr,
	})
	useMySQLLogger(log.Named("mysql"))

	if cfg.Proxy.MaxProcs > 0 {
		runtime.GOMAXPROCS(cfg.Proxy.MaxProcs)
	}
	pcfg := proxy.DefaultConfig()
	pcfg.Users = make(map[string]string, len(cfg.Users))
	for _, u := range cfg.Users {
		pcfg.Users[u.Name] = u.Secret()
	}
	pcfg.MaxConnections = cfg.Proxy.MaxConnections
	pcfg.HandshakeTimeout = cfg.Proxy.HandshakeTimeout.Duration
	pcfg.ConnectTimeout = cfg.Proxy.ConnectTimeout.Duration
	pcfg.LoginTimeout = cfg.Proxy.LoginTimeout.Duration
	pcfg.HoldTimeout = cfg.Proxy.HoldTimeout.Duration
	pcfg.NetReadTimeout = cfg.Proxy.NetReadTimeout.Duration
	pcfg.NetWriteTimeout = cfg.Proxy.NetWriteTimeout.Duration
	pcfg.MaxHandshakes = cfg.Proxy.MaxHandshakes
	pcfg.DefaultAuthPlugin = cfg.Proxy.DefaultAuthPlugin
	pcfg.MaxPacket = cfg.Proxy.MaxPacket
	pcfg.RequireTLS = cfg.Proxy.RequireTLS
	pcfg.Pool = proxy.PoolConfig{Users: cfg.Pool.Users, Size: cfg.Pool.Size, MinIdle: cfg.Pool.MinIdle,
		IdleTimeout: cfg.Pool.IdleTimeout.Duration, MaxAge: cfg.Pool.MaxAge.Duration}
	pcfg.Logger = log.Named("proxy")
	reg := metrics.New()
	pcfg.Observer = reg.ProxyObserver()
	if cfg.Proxy.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Proxy.TLSCert, cfg.Proxy.TLSKey)
		if err != nil {
			fmt.Fprintln(stderr, "tandem: config: proxy.tls_cert/proxy.tls_key:", err)
			return exitConfig
		}
		pcfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	nodes := make([]*proxy.Node, len(cfg.Nodes))
	anodes := make([]nodeaccounts.Node, len(cfg.Nodes))
	for i, n := range cfg.Nodes {
		nodes[i] = &proxy.Node{Name: n.Name, Address: n.Address, TLS: n.TLSClient(), OnPlaintext: plaintextWarning(log, n.Name)}
		anodes[i] = nodeaccounts.Node{Name: n.Name, Address: n.Address, TLS: n.TLSClient()}
		log.Info("node", "node", n.Name, "address", n.Address, "tls", n.TLS)
	}
	// Users not listed in [[user]] log in with their node account, read
	// as tandem's admin account.
	accounts := nodeaccounts.New(anodes, cfg.Failover.AdminUser, cfg.Failover.AdminSecret())
	defer accounts.Close()
	pcfg.Accounts = accounts.Load
	pcfg.AccountsRefresh = cfg.Proxy.AccountsRefresh.Duration
	// The proxy starts with no route; the failover manager's saved
	// decision (or failover.initial_active) gives it one below.
	// A session that sees a node fail asks the monitor to check it now
	// (the manager is made below, before any session starts).
	var mgr *failover.Manager
	pcfg.NodeFailed = func(node string) { mgr.CheckNow(node) }
	if cfg.Proxy.SettleCommits {
		hook := settlehook.New(nodes, cfg.Failover.AdminUser, cfg.Failover.AdminSecret())
		tctx, stopTrack := context.WithCancel(context.Background())
		defer stopTrack()
		hook.Track(tctx) // where each node's binlog ends, for short checks
		pcfg.Settle = hook.Settle
	}
	p, err := proxy.New(pcfg, nodes, "")
	if err != nil {
		fmt.Fprintln(stderr, "tandem: config:", err)
		return exitConfig
	}
	fo := cfg.Failover
	fcfg := failover.DefaultConfig()
	fcfg.Interval, fcfg.CheckTimeout = fo.Interval.Duration, fo.CheckTimeout.Duration
	fcfg.FailAfter, fcfg.RecoverAfter = fo.FailAfter, fo.RecoverAfter
	fcfg.CatchupTimeout, fcfg.MaxPromoteLag = fo.CatchupTimeout.Duration, fo.MaxPromoteLag.Duration
	fcfg.LagWarning, fcfg.FenceTimeout = fo.LagWarning.Duration, fo.FenceTimeout.Duration
	fcfg.RetryInterval, fcfg.HeartbeatSchema = fo.RetryInterval.Duration, fo.Schema
	fcfg.AckTimeout, fcfg.SemiSyncTimeout = fo.AckTimeout.Duration, fo.SemiSyncTimeout.Duration
	fcfg.MaxSwitchoverTimeout = fo.MaxSwitchoverTimeout.Duration
	fcfg.AdminUser, fcfg.AdminPassword = fo.AdminUser, fo.AdminSecret()
	fnodes := make([]failover.NodeConfig, len(cfg.Nodes))
	for i, n := range cfg.Nodes {
		fnodes[i] = failover.NodeConfig{Name: n.Name, Address: n.Address, TLS: n.TLSClient()}
	}
	acfg := cfg.Alert.AlertConfig()
	acfg.Version = version
	alerter, err := alert.New(acfg, log.Named("alert"))
	if err != nil {
		fmt.Fprintln(stderr, "tandem: config: alert:", err)
		return exitConfig
	}
	defer func() {
		// Deliver what is queued, for a bounded time.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = alerter.Close(ctx)
	}()
	var store failover.Store = &failover.FileStore{Path: fo.StateFile}
	if cfg.Etcd.Enabled() {
		// Several tandems: the decision lives in etcd and only the
		// elected coordinator acts (failover/cluster.go).
		ccfg := cfg.Etcd.CoordConfig()
		elog := log.Named("etcd")
		ccfg.Events = func(kind, detail string) { elog.Warn(kind, "detail", detail) }
		// etcd may have no leader yet (several hosts booting at once):
		// try for a minute before giving up.
		var sess *coord.Session
		for deadline := time.Now().Add(time.Minute); ; {
			octx, cancel := context.WithTimeout(context.Background(), ccfg.DialTimeout+ccfg.LeaseTTL+5*time.Second)
			sess, err = coord.Open(octx, ccfg, elog)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(stderr, "tandem: etcd:", err)
				return exitFail
			}
			elog.Warn("cannot join etcd yet; retrying", "error", err)
			time.Sleep(time.Second)
		}
		defer func() {
			// Resign at once so another tandem takes over without
			// waiting for the lease to expire.
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = sess.Resign(rctx)
			cancel()
			_ = sess.Close()
		}()
		cl := cluster.New(sess)
		fcfg.Cluster, store = cl, cl
	}
	mgr, err = failover.New(fcfg, fnodes, fo.InitialActive, p, store, log.Named("failover"),
		reg.FailoverHook(), alerter.Hook())
	if err != nil {
		fmt.Fprintln(stderr, "tandem: failover:", err)
		return exitConfig
	}
	if err := reg.WatchStatus(mgr.Status); err != nil {
		fmt.Fprintln(stderr, "tandem:", err)
		return exitFail
	}
	// Without a saved decision the manager holds traffic until it has
	// read the nodes (failover.New).
	if dec := mgr.Decision(); dec.Active != "" {
		if err := p.Route(dec.Active); err != nil {
			fmt.Fprintln(stderr, "tandem:", err)
			return exitConfig
		}
		log.Info("active node", "node", dec.Active, "epoch", dec.Epoch, "since", dec.Time, "reason", dec.Reason)
	}
	mctx, stopMonitor := context.WithCancel(context.Background())
	monitorDone := make(chan struct{})
	go func() { _ = mgr.Run(mctx); close(monitorDone) }()
	defer func() { stopMonitor(); <-monitorDone }()

	api, err := admin.NewServer(admin.Config{Listen: cfg.Admin.Listen, Token: cfg.Admin.Token(), AllowedHosts: cfg.Admin.AllowedHosts}, mgr, func() admin.SessionCounts {
		s := p.Sessions()
		return admin.SessionCounts{Total: s.Total, Busy: s.Busy, InTransaction: s.InTransaction, ByNode: s.ByNode}
	}, reg.Handler(), log.Named("admin"))
	if err != nil {
		fmt.Fprintln(stderr, "tandem: config:", err)
		return exitConfig
	}
	apiListener, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		log.Error("cannot listen for the admin API", "address", cfg.Admin.Listen, "error", err)
		return exitFail
	}
	log.Info("admin API listening", "address", cfg.Admin.Listen)
	go func() {
		if err := api.Serve(apiListener); err != nil {
			log.Error("admin API stopped", "error", err)
		}
	}()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = api.Shutdown(ctx)
	}()

	var listeners []net.Listener
	for _, a := range cfg.Proxy.Listen {
		l, err := listen(a)
		if err != nil {
			log.Error("cannot listen", "address", a, "error", err)
			for _, l := range listeners {
				l.Close()
			}
			return exitFail
		}
		listeners = append(listeners, l)
		log.Info("listening", "address", a)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	errc := make(chan error, len(listeners))
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Serve(l); !errors.Is(err, proxy.ErrClosed) {
				errc <- fmt.Errorf("serving %s: %w", l.Addr(), err)
			}
		}()
	}
	code := exitOK
	select {
	case sig := <-sigs:
		log.Info("shutting down: no new sessions; waiting for open ones", "signal", sig.String(), "timeout", cfg.Proxy.ShutdownTimeout.Duration, "sessions", p.SessionCount())
	case err := <-errc:
		log.Error("listener failed; shutting down", "error", err)
		code = exitFail
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Proxy.ShutdownTimeout.Duration)
	defer cancel()
	go func() { // a second signal closes sessions at once
		<-sigs
		cancel()
	}()
	if err := p.Shutdown(ctx); err != nil {
		log.Warn("shutdown timeout passed; closed the remaining sessions")
	}
	wg.Wait()
	log.Info("stopped")
	return code
}

// plaintextWarning returns a proxy.Node.OnPlaintext hook that warns, once,
// that a node with tls = "preferred" does not offer TLS.
func plaintextWarning(log hclog.Logger, node string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			log.Warn("node does not offer TLS: its sessions are in plaintext (tls = \"preferred\"); configure TLS on the node, or set tls = \"off\" to say so", "node", node)
		})
	}
}

func listen(a string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(a, "unix:"); ok {
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			// A socket left by a previous run: remove it only if nobody answers.
			if c, err := net.Dial("unix", path); err == nil {
				c.Close()
				return nil, fmt.Errorf("%s is in use", path)
			}
			_ = os.Remove(path)
		}
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", a) // Serve sets the client socket options once on it (proxy/sock.go)
}
