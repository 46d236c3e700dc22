package main

// Operator subcommands: they call a running tandem's admin API.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tandemdb/tandem/admin"
	"github.com/tandemdb/tandem/internal/config"
)

// exitUnreachable: the admin API could not be reached.
const exitUnreachable = 3

// cliFlags are the flags every operator subcommand takes.
type cliFlags struct {
	fs     *flag.FlagSet
	url    *string
	token  *string
	config *string
}

func newCLIFlags(name string, stderr io.Writer) *cliFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &cliFlags{
		fs:  fs,
		url: fs.String("admin", envOr("TANDEM_ADMIN_URL", ""), "admin API URL (default: from -config, else http://127.0.0.1:9306; env TANDEM_ADMIN_URL)"),
		// No default from the environment: flag usage would print it.
		token:  fs.String("token", "", "bearer token (env TANDEM_ADMIN_TOKEN)"),
		config: fs.String("config", "", "read the admin API address and token from this tandem config file"),
	}
}

// parse parses flags given before, between or after the positional
// arguments (`tandem maintenance b on -admin URL`), and returns the
// positional ones.
func (f *cliFlags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			return nil, err
		}
		args = f.fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// first returns the first non-empty string.
func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// client builds the API client from the flags.
func (f *cliFlags) client() (*admin.Client, error) {
	c := &admin.Client{Base: *f.url, Token: first(*f.token, os.Getenv("TANDEM_ADMIN_TOKEN"))}
	if *f.config != "" {
		cfg, err := config.Load(*f.config)
		if err != nil {
			return nil, err
		}
		if c.Base == "" {
			c.Base = "http://" + cfg.Admin.Listen
		}
		if c.Token == "" {
			c.Token = cfg.Admin.Token()
		}
	}
	if c.Base == "" {
		c.Base = "http://127.0.0.1:9306"
	}
	return c, nil
}

// cliError prints err in one line with what to do, and returns the exit code.
func cliError(stderr io.Writer, err error) int {
	var ae *admin.APIError
	switch {
	case errors.Is(err, admin.ErrUnreachable):
		fmt.Fprintf(stderr, "tandem: %v (is tandem running? check -admin or -config)\n", err)
		return exitUnreachable
	case errors.As(err, &ae) && ae.Code == 401:
		fmt.Fprintf(stderr, "tandem: %v (pass -token or set TANDEM_ADMIN_TOKEN)\n", err)
		return exitFail
	default:
		fmt.Fprintf(stderr, "tandem: %v\n", err)
		return exitFail
	}
}

func cliContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

// start parses args (which must hold npos positional arguments, -1 for any
// number checked by the caller) and builds the API client. code is non-zero
// when the command must end with it (usage printed).
func (f *cliFlags) start(args []string, npos int, usage string) (c *admin.Client, pos []string, code int) {
	pos, err := f.parse(args)
	if err != nil || (npos >= 0 && len(pos) != npos) {
		fmt.Fprintln(f.fs.Output(), "usage: "+usage)
		return nil, nil, exitConfig
	}
	if c, err = f.client(); err != nil {
		fmt.Fprintln(f.fs.Output(), "tandem:", err)
		return nil, nil, exitConfig
	}
	return c, pos, exitOK
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	f := newCLIFlags("status", stderr)
	asJSON := f.fs.Bool("json", false, "print JSON")
	c, _, code := f.start(args, 0, "tandem status [-json] [-admin URL | -config FILE] [-token T]")
	if code != exitOK {
		return code
	}
	ctx, cancel := cliContext()
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return cliError(stderr, err)
	}
	if *asJSON {
		return printJSON(stdout, st)
	}
	printStatus(stdout, st)
	if st.State != "active" {
		return exitFail
	}
	return exitOK
}

// printJSON prints v indented, for -json.
func printJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return exitFail
	}
	return exitOK
}

func printStatus(w io.Writer, st admin.Status) {
	d := st.Decision
	paused := ""
	if st.Paused {
		paused = ", traffic PAUSED"
	}
	fmt.Fprintf(w, "state %s%s: node %s active, epoch %d, since %s (%s)\n\n", st.State, paused, d.Active, d.Epoch,
		d.Time.Format(time.RFC3339), d.Reason)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tHEALTH\tREAD_ONLY\tREPLICA IO/SQL\tLAG\tGTID EXECUTED\tNOTE")
	for _, n := range st.Nodes {
		health := "up"
		switch {
		case n.Healthy:
		case n.FailedChecks == 0:
			health = "starting" // not yet RecoverAfter good checks
		default:
			health = "DOWN"
		}
		ro := "OFF"
		if n.ReadOnly {
			ro = "ON"
		}
		if !n.FactsCurrent {
			ro = "?" // the last check failed: nothing current is known
		}
		lag := "-"
		if n.LagKnown {
			lag = n.Lag.Round(time.Millisecond).String()
		}
		sql := "No"
		if n.SQLRunning {
			sql = "Yes"
		}
		if !n.FactsCurrent {
			sql, n.IORunning = "?", "?"
		}
		var notes []string
		if n.LastError != "" {
			notes = append(notes, "last error: "+n.LastError)
		}
		if n.ReplicaError != "" {
			notes = append(notes, "replication: "+n.ReplicaError)
		}
		if n.ExcludedWhy != "" {
			notes = append(notes, "EXCLUDED: "+n.ExcludedWhy)
		}
		if n.UnsyncedWhy != "" {
			notes = append(notes, "UNSYNCED (not promotable): "+n.UnsyncedWhy)
		}
		if d.Maintenance[n.Name] {
			notes = append(notes, "maintenance")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s/%s\t%s\t%s\t%s\n", n.Name, n.Role, health, ro, n.IORunning, sql, lag, n.Executed, strings.Join(notes, "; "))
	}
	tw.Flush()
	if len(st.Cluster) > 0 {
		role := "follower"
		if st.Coordinator {
			role = "coordinator"
		}
		if st.SelfFenced {
			role += ", SELF-FENCED (no valid etcd lease: relaying nothing)"
		}
		fmt.Fprintf(w, "\nthis tandem: %s\n", role)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TANDEM\tHOST\tADMIN\tLEASE\tEPOCH ACKED\tROLE")
		for _, c := range st.Cluster {
			lease, role := "valid", "follower"
			if !c.LeaseValid {
				lease = "EXPIRED"
			}
			if c.Coordinator {
				role = "coordinator"
			}
			if c.Self {
				role += " (this one)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", c.ID, c.Host, c.Admin, lease, c.AckedEpoch, role)
		}
		tw.Flush()
	}
	s := st.Sessions
	var by []string
	for node, n := range s.ByNode {
		by = append(by, fmt.Sprintf("%s=%d", node, n))
	}
	sort.Strings(by)
	fmt.Fprintf(w, "\nsessions: %d (running a command %d, in a transaction %d) by node: %s\n", s.Total, s.Busy, s.InTransaction, strings.Join(by, " "))
}

func cmdSwitchover(args []string, stdout, stderr io.Writer) int {
	f := newCLIFlags("switchover", stderr)
	to := f.fs.String("to", "", "node to make active (default: the other node)")
	timeout := f.fs.Duration("timeout", 5*time.Second, "bound on the write pause; past it the switchover rolls back")
	dry := f.fs.Bool("dry-run", false, "run every pre-flight check and say what would happen")
	abort := f.fs.Bool("abort", false, "roll back the switchover in progress (the old active keeps the writes)")
	c, _, code := f.start(args, 0, "tandem switchover [-to NODE] [-timeout D] [-dry-run] | -abort [-admin URL | -config FILE]")
	if code != exitOK {
		return code
	}
	ctx, cancel := cliContext()
	defer cancel()
	if *abort {
		if err := c.AbortSwitchover(ctx); err != nil {
			return cliError(stderr, err)
		}
		fmt.Fprintln(stdout, "abort requested: the switchover in progress rolls back")
		return exitOK
	}
	rep, err := c.Switchover(ctx, admin.SwitchoverRequest{To: *to, Timeout: timeout.String(), DryRun: *dry})
	if err != nil {
		if rep.RolledBack {
			fmt.Fprintf(stderr, "tandem: %v\ntraffic stays on node %s; nothing was lost and clients saw no error (pause %v)\n", err, rep.From, rep.WritePause.Round(time.Millisecond))
			return exitFail
		}
		return cliError(stderr, err)
	}
	if rep.DryRun {
		fmt.Fprintf(stdout, "pre-flight checks passed: a switchover would move traffic from node %s to node %s (epoch %d):\n", rep.From, rep.To, rep.Epoch)
		for i, step := range rep.Plan {
			fmt.Fprintf(stdout, "  %d. %s\n", i+1, step)
		}
		return exitOK
	}
	fmt.Fprintf(stdout, "switched over from node %s to node %s (epoch %d); writes paused for %v\n", rep.From, rep.To, rep.Epoch, rep.WritePause.Round(time.Millisecond))
	return exitOK
}

func cmdFailover(args []string, stdout, stderr io.Writer) int {
	f := newCLIFlags("failover", stderr)
	force := f.fs.Bool("force", false, "required: promote the other node now, skipping the safety checks")
	c, _, code := f.start(args, 0, "tandem failover -force [-admin URL | -config FILE]")
	if code != exitOK {
		return code
	}
	if !*force {
		fmt.Fprintln(stderr, "usage: tandem failover -force [-admin URL | -config FILE]\n"+
			"A forced failover skips the checks that protect against losing writes; for a planned move use `tandem switchover`.")
		return exitConfig
	}
	ctx, cancel := cliContext()
	defer cancel()
	d, err := c.Failover(ctx)
	if err != nil {
		return cliError(stderr, err)
	}
	fmt.Fprintf(stdout, "node %s is active (epoch %d)\n", d.Active, d.Epoch)
	if strings.Contains(d.Reason, "WARNING") {
		fmt.Fprintf(stderr, "tandem: %s\n", d.Reason)
	}
	return exitOK
}

func cmdMaintenance(args []string, stdout, stderr io.Writer) int {
	f := newCLIFlags("maintenance", stderr)
	const usage = "tandem maintenance NODE on|off [-admin URL | -config FILE]"
	c, pos, code := f.start(args, 2, usage)
	if code != exitOK {
		return code
	}
	if pos[1] != "on" && pos[1] != "off" {
		fmt.Fprintln(stderr, "usage: "+usage)
		return exitConfig
	}
	ctx, cancel := cliContext()
	defer cancel()
	node, on := pos[0], pos[1] == "on"
	if err := c.Maintenance(ctx, node, on); err != nil {
		return cliError(stderr, err)
	}
	fmt.Fprintf(stdout, "node %s maintenance %s\n", node, pos[1])
	return exitOK
}

func cmdRejoin(args []string, stdout, stderr io.Writer) int {
	f := newCLIFlags("rejoin", stderr)
	c, pos, code := f.start(args, 1, "tandem rejoin NODE [-admin URL | -config FILE]")
	if code != exitOK {
		return code
	}
	ctx, cancel := cliContext()
	defer cancel()
	if err := c.Rejoin(ctx, pos[0]); err != nil {
		return cliError(stderr, err)
	}
	fmt.Fprintf(stdout, "node %s is no longer excluded\n", pos[0])
	return exitOK
}

func cmdPauseResume(name string, args []string, stdout, stderr io.Writer) int {
	f := newCLIFlags(name, stderr)
	c, _, code := f.start(args, 0, "tandem "+name+" [-admin URL | -config FILE]")
	if code != exitOK {
		return code
	}
	var err error
	ctx, cancel := cliContext()
	defer cancel()
	if name == "pause" {
		err = c.Pause(ctx)
	} else {
		err = c.Resume(ctx)
	}
	if err != nil {
		return cliError(stderr, err)
	}
	if name == "pause" {
		fmt.Fprintln(stdout, "traffic paused: statements wait (up to proxy.hold_timeout) until `tandem resume`")
	} else {
		fmt.Fprintln(stdout, "traffic resumed")
	}
	return exitOK
}

func cmdEvents(args []string, stdout, stderr io.Writer) int {
	f := newCLIFlags("events", stderr)
	asJSON := f.fs.Bool("json", false, "print JSON")
	c, _, code := f.start(args, 0, "tandem events [-json] [-admin URL | -config FILE]")
	if code != exitOK {
		return code
	}
	ctx, cancel := cliContext()
	defer cancel()
	evs, err := c.Events(ctx)
	if err != nil {
		return cliError(stderr, err)
	}
	if *asJSON {
		return printJSON(stdout, evs)
	}
	for _, e := range evs {
		line := fmt.Sprintf("%s  %-22s epoch %d", e.Time.Format("2006-01-02T15:04:05.000Z07:00"), e.Type, e.Epoch)
		if e.Node != "" {
			line += " node " + e.Node
		}
		if e.From != "" || e.To != "" {
			line += fmt.Sprintf(" %s→%s", e.From, e.To)
		}
		if e.Duration > 0 {
			line += " in " + e.Duration.Round(time.Millisecond).String()
		}
		fmt.Fprintf(stdout, "%s: %s\n", line, e.Reason)
	}
	return exitOK
}
