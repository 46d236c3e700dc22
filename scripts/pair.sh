#!/usr/bin/env bash
# pair.sh — the local two-node MariaDB master-master pair used by tandem's
# integration tests and `make demo`.
#
# Usage: scripts/pair.sh install | up | down [--purge] | status | env | reset
#                        kill NODE | stop NODE | cont NODE | start NODE [--read-only]
#                        resume NODE
#   NODE is "a" or "b".  start leaves the node's replica threads stopped
#   (skip_slave_start: tandem starts them once it has checked the node's
#   position); resume starts them as tandem would, for tests without tandem.  reset restores the normal state after fault
#   injection (rebuilding the pair if the nodes' histories diverged).
#
# Layout: ${TANDEM_PAIR_DIR:-/tmp/tandem-pair}/{a,b}/ each hold my.cnf, data/,
# binlog/, relay/, tmp/, mysqld.sock, mysqld.pid and error.log.  The servers are
# plain `mariadbd --user=root` processes in the background (no systemd), bound
# to 127.0.0.1 on ${TANDEM_PAIR_PORT_A:-13306} and ${TANDEM_PAIR_PORT_B:-13307}.
# Port 3306 is tandem's and is never used here.  TANDEM_PAIR_TIMEOUT (60)
# bounds every wait, in seconds.
#
# Roles: node a is the writer, node b the passive standby; each replicates
# from the other (GTID, semi-synchronous both ways), so either can be
# promoted.  Both nodes START read-only (read_only=ON in their my.cnf): only
# initialising the pair (first 'up') and 'reset' make node a writable, at
# run time.  A plain restart ('start NODE', 'up' of a stopped pair) never
# makes a node writable: deciding which node writes is tandem's job.
#
# Crash recovery: both nodes start with init_rpl_role=SLAVE, so a node
# SIGKILLed while commits waited for the peer's semi-sync acknowledgement
# discards those commits on restart (see write_cnf and README "Crash
# recovery of the old active").
#
# TLS: both nodes offer TLS (plaintext stays allowed) with certificates of
# the pair's own CA, $PAIR_DIR/tls/ca.pem, made once with openssl; 'env'
# prints its path as TANDEM_PAIR_CA.  A node running without TLS (started by
# an older version of this script) is restarted cleanly by 'up' and 'reset'.
#
# Users (identical on both nodes, created with sql_log_bin=0 before
# replication starts, so the GTID history starts empty on both):
#   tandem@127.0.0.1, tandem@localhost / tandem   ALL PRIVILEGES WITH GRANT OPTION
#   app@127.0.0.1                      / apppass  ALL ON app.*, sbtest.*
#   repl@127.0.0.1                     / replpass REPLICATION SLAVE
#   root@localhost                     unix_socket auth over the node's socket
# Databases: app, sbtest, and tandem_pair (this script's canary table).
set -euo pipefail

PAIR_DIR=${TANDEM_PAIR_DIR:-/tmp/tandem-pair}
PAIR_DIR=${PAIR_DIR%/}
PORT_A=${TANDEM_PAIR_PORT_A:-13306}
PORT_B=${TANDEM_PAIR_PORT_B:-13307}
# Bound, in seconds, for every wait (server readiness, replication, shutdown).
WAIT_SECS=${TANDEM_PAIR_TIMEOUT:-60}
# Commands that change the pair hold this lock (tests may call concurrently).
LOCK_FILE="$PAIR_DIR.lock"

say() { printf 'pair: %s\n' "$*"; }
die() { printf 'pair: error: %s\n' "$*" >&2; exit 1; }

# node_pid, sql, write_cnf, start_node, setup_accounts, the replication
# helpers...: shared with scripts/cluster.sh.
# shellcheck source=lib/mariadb.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/mariadb.sh"
# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

# ---------------------------------------------------------------- node paths

check_node() { [[ ${1:-} == a || ${1:-} == b ]] || die "NODE must be 'a' or 'b' (got '${1:-}')"; }
node_dir() { printf '%s/%s' "$PAIR_DIR" "$1"; }
node_port() { if [[ $1 == a ]]; then echo "$PORT_A"; else echo "$PORT_B"; fi; }
node_peer() { if [[ $1 == a ]]; then echo b; else echo a; fi; }
node_server_id() { if [[ $1 == a ]]; then echo 1; else echo 2; fi; }
# The role-based read_only that 'up' (first time) and 'reset' set at run
# time.  my.cnf always says read_only=ON.
node_read_only() { if [[ $1 == a ]]; then echo OFF; else echo ON; fi; }

# ------------------------------------------------------------------- install

cmd_install() {
	local missing=() b
	for b in mariadbd mariadb-install-db mariadb mariadb-admin; do
		command -v "$b" >/dev/null 2>&1 || missing+=("$b")
	done
	if ((${#missing[@]} == 0)); then
		return 0
	fi
	[[ $(id -u) == 0 ]] || die "mariadb is not installed (missing: ${missing[*]}) and installing needs root"
	say "installing mariadb-server and mariadb-client (missing: ${missing[*]})"

	# The packaged service must not start: 3306 is tandem's (lib/apt.sh).
	apt_install mariadb-server mariadb-client

	# If the packaged service started anyway, stop it: 3306 is tandem's.
	local ppid
	if [[ -s /run/mysqld/mysqld.pid ]]; then
		ppid=$(</run/mysqld/mysqld.pid)
		if [[ $ppid =~ ^[0-9]+$ ]] && kill -0 "$ppid" 2>/dev/null; then
			say "packaged mariadb service started despite policy-rc.d; stopping it (pid $ppid)"
			kill "$ppid" 2>/dev/null || true
			wait_gone "$ppid" "$WAIT_SECS" || kill -9 "$ppid" 2>/dev/null || true
		fi
	fi
	say "installed $(mariadbd --version 2>/dev/null | head -n1)"
}

is_initialized() { [[ -f $PAIR_DIR/.initialized ]]; }

# ------------------------------------------------------------------ commands

check_ports() {
	[[ $PORT_A =~ ^[0-9]+$ && $PORT_B =~ ^[0-9]+$ ]] || die "ports must be numbers (A=$PORT_A B=$PORT_B)"
	[[ $PORT_A != 3306 && $PORT_B != 3306 ]] || die "port 3306 is tandem's; pick other TANDEM_PAIR_PORT_A/B"
	[[ $PORT_A != "$PORT_B" ]] || die "TANDEM_PAIR_PORT_A and TANDEM_PAIR_PORT_B must differ"
	local s
	s=$(node_sock a)
	((${#s} < 100)) || die "socket path $s is too long for a unix socket; use a shorter TANDEM_PAIR_DIR"
}

healthy() {
	[[ -n $(node_pid a) && -n $(node_pid b) ]] &&
		[[ $(proc_state "$(node_pid a)") != T && $(proc_state "$(node_pid b)") != T ]] &&
		ping_node a && ping_node b && repl_ok a && repl_ok b
}

cmd_up() {
	cmd_install
	check_ports
	if is_initialized; then
		if healthy && tls_ok a && tls_ok b; then
			say "pair already up and replicating (a: 127.0.0.1:$PORT_A, b: 127.0.0.1:$PORT_B)"
			return 0
		fi
		local n pid
		for n in a b; do
			pid=$(node_pid "$n")
			if [[ -n $pid && $(proc_state "$pid") == T ]]; then
				say "node $n was stopped (SIGSTOP); continuing it"
				kill -CONT "$pid"
			fi
			restart_without_tls "$n"
			start_node "$n"
		done
		ensure_replication a
		ensure_replication b
	else
		if [[ -e $PAIR_DIR ]]; then
			say "$PAIR_DIR exists but was never fully set up; recreating it"
			stop_node a
			stop_node b
			rm -rf "$PAIR_DIR"
		fi
		mkdir -p "$PAIR_DIR"
		say "initialising nodes a and b in $PAIR_DIR"
		init_node a
		init_node b
		start_node a
		start_node b
		setup_accounts a
		setup_accounts b
		sql a "$(change_master_sql a); START SLAVE;"
		sql b "$(change_master_sql b); START SLAVE;"
	fi
	wait_replicating || die "replication is not running on both nodes (see above); 'reset' rebuilds a diverged pair"
	if is_initialized; then
		# A restart writes nothing: a test write on the node tandem keeps
		# passive would be a transaction of its own that the active lacks.
		wait_in_sync || die "nodes did not catch up with each other within ${WAIT_SECS}s"
	else
		# Once, on a fresh pair: prove both directions (root may write
		# despite read_only).
		canary a b || die "replication a -> b does not work"
		canary b a || die "replication b -> a does not work"
		wait_in_sync || die "nodes did not reach the same GTID position"
		# The one place besides 'reset' that makes a node writable: a fresh
		# pair, whose nodes hold the same (empty) history.
		sql a 'SET GLOBAL read_only = OFF'
		touch "$PAIR_DIR/.initialized"
	fi
	say "pair up and replicating both ways (a: 127.0.0.1:$PORT_A read_only=$(sql a 'SELECT @@read_only'), b: 127.0.0.1:$PORT_B read_only=$(sql b 'SELECT @@read_only'))"
}

# restart_without_tls NODE: a node started before the pair offered TLS is
# shut down cleanly (start_node then starts it read-only, with TLS).
restart_without_tls() {
	local n=$1
	if [[ -n $(node_pid "$n") ]] && ping_node "$n" && ! tls_ok "$n"; then
		say "node $n runs without TLS (started by an older pair.sh); restarting it"
		stop_node "$n"
	fi
}

cmd_down() {
	local purge=0
	case ${1:-} in
	--purge) purge=1 ;;
	"") ;;
	*) die "usage: down [--purge]" ;;
	esac
	stop_node a
	stop_node b
	if ((purge)); then
		rm -rf "$PAIR_DIR"
		say "removed $PAIR_DIR"
	fi
}

cmd_status() {
	local bad=0 n pid state st ro writable=0 sem
	for n in a b; do
		pid=$(node_pid "$n")
		if [[ -z $pid ]]; then
			printf 'node %s: DOWN     port %s\n' "$n" "$(node_port "$n")"
			bad=1
			continue
		fi
		state=$(proc_state "$pid")
		if [[ $state == T ]]; then
			printf 'node %s: STOPPED  port %s pid %s (SIGSTOP; use cont %s)\n' "$n" "$(node_port "$n")" "$pid" "$n"
			bad=1
			continue
		fi
		if ! ping_node "$n"; then
			printf 'node %s: NOT READY port %s pid %s\n' "$n" "$(node_port "$n")" "$pid"
			bad=1
			continue
		fi
		ro=$(sql "$n" 'SELECT @@read_only')
		[[ $ro == 0 ]] && writable=$((writable + 1))
		sem=$(sql "$n" "SELECT GROUP_CONCAT(CONCAT(VARIABLE_NAME, '=', VARIABLE_VALUE) SEPARATOR ' ') FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_slave_status')")
		st=$(slave_status "$n")
		printf 'node %s: running  port %s pid %s read_only=%s io=%s sql=%s gtid_current_pos=%s %s\n' \
			"$n" "$(node_port "$n")" "$pid" "$([[ $ro == 1 ]] && echo ON || echo OFF)" \
			"$(field Slave_IO_Running <<<"$st")" "$(field Slave_SQL_Running <<<"$st")" \
			"$(sql "$n" 'SELECT @@GLOBAL.gtid_current_pos')" "$sem"
		if [[ $(field Slave_IO_Running <<<"$st") != Yes || $(field Slave_SQL_Running <<<"$st") != Yes ]]; then
			bad=1
			local e
			e=$(field Last_IO_Error <<<"$st")
			[[ -z $e ]] || printf '        last IO error: %s\n' "$e"
			e=$(field Last_SQL_Error <<<"$st")
			[[ -z $e ]] || printf '        last SQL error: %s\n' "$e"
		fi
	done
	if ((writable == 2)); then
		echo "both nodes are writable (read_only=OFF): split-brain risk"
		bad=1
	fi
	return "$bad"
}

cmd_env() {
	local n N
	printf 'export TANDEM_PAIR_DIR=%q\n' "$PAIR_DIR"
	printf 'export TANDEM_PAIR_PORT_A=%q\n' "$PORT_A"
	printf 'export TANDEM_PAIR_PORT_B=%q\n' "$PORT_B"
	for n in a b; do
		N=${n^^}
		printf 'export TANDEM_PAIR_SOCK_%s=%q\n' "$N" "$(node_sock "$n")"
		printf 'export TANDEM_PAIR_PID_%s=%q\n' "$N" "$(node_pidfile "$n")"
	done
	printf 'export TANDEM_PAIR_CA=%q\n' "$(tls_dir)/ca.pem"
	echo '# TLS: both nodes offer it; TANDEM_PAIR_CA signs their certificates (names 127.0.0.1, localhost)' 
	echo '# users: tandem/tandem (admin), app/apppass (app.*, sbtest.*), repl/replpass; root via the sockets'
}

running_pid() {
	local pid
	pid=$(node_pid "$1")
	[[ -n $pid ]] || die "node $1 is not running"
	echo "$pid"
}

cmd_kill() {
	local pid
	pid=$(running_pid "$1")
	kill -KILL "$pid"
	wait_gone "$pid" 10 || die "node $1 (pid $pid) survived SIGKILL"
	say "node $1 killed (pid $pid)"
}

cmd_stop() {
	local pid
	pid=$(running_pid "$1")
	kill -STOP "$pid"
	say "node $1 stopped with SIGSTOP (pid $pid)"
}

cmd_cont() {
	local pid
	pid=$(running_pid "$1")
	kill -CONT "$pid"
	say "node $1 continued (pid $pid)"
}

cmd_start() {
	local n=$1
	shift
	is_initialized || die "the pair was never set up; run 'up' first"
	case ${1:-} in
	--read-only) start_node "$n" --read-only=ON ;;
	"") start_node "$n" ;;
	*) die "usage: start NODE [--read-only]" ;;
	esac
}

# keep_error_logs: the nodes' error logs go to $PAIR_DIR.rebuilt/ before a
# rebuild deletes them (what made replication fail is often only there).
keep_error_logs() {
	local n
	mkdir -p "$PAIR_DIR.rebuilt"
	for n in a b; do
		cp -f "$(node_errlog "$n")" "$PAIR_DIR.rebuilt/$n.error.log" 2>/dev/null || true
	done
	say "the nodes' error logs before the rebuild: $PAIR_DIR.rebuilt/"
}

cmd_resume() {
	running_pid "$1" >/dev/null
	resume_replication "$1"
	say "node $1 replicating again"
}

# reset: restore the normal state after a test broke it: both servers
# running, a writable, b read_only, semi-sync on, replication running both
# ways with the standard settings, both at the same GTID position.  If the
# histories diverged and replication cannot resume, the pair is rebuilt from
# scratch (all data is lost).
cmd_reset() {
	is_initialized || {
		cmd_up
		return
	}
	local n pid
	for n in a b; do
		pid=$(node_pid "$n")
		[[ -z $pid ]] || kill -CONT "$pid" 2>/dev/null || true
		restart_without_tls "$n"
		start_node "$n"
	done
	for n in a b; do
		if [[ $(sql "$n" 'SELECT @@rpl_semi_sync_slave_enabled') != 1 ]]; then
			# The slave side of semi-sync takes effect when the IO thread starts.
			sql "$n" 'SET GLOBAL rpl_semi_sync_slave_enabled = ON; STOP SLAVE IO_THREAD; START SLAVE IO_THREAD;'
		fi
		sql "$n" "SET GLOBAL read_only = $(node_read_only "$n");
SET GLOBAL rpl_semi_sync_master_enabled = ON, rpl_semi_sync_slave_enabled = ON,
           rpl_semi_sync_master_wait_point = AFTER_SYNC, rpl_semi_sync_master_timeout = 2000;"
	done
	ensure_replication a
	ensure_replication b
	if ! wait_replicating; then
		if repl_dead a || repl_dead b; then
			# A stopped thread after START SLAVE means an error that will not go
			# away: typically diverged histories under gtid_strict_mode.
			say "replication cannot resume (diverged histories?); rebuilding the pair from scratch"
			keep_error_logs
			cmd_down --purge
			cmd_up
			return
		fi
		die "replication threads did not start within ${WAIT_SECS}s"
	fi
	if ! wait_in_sync; then
		if repl_dead a || repl_dead b; then
			# Both threads started, then one stopped on an error while
			# applying: the data diverged (a row one node has and the
			# other lacks).
			say "replication stopped on an error while catching up (diverged data?); rebuilding the pair from scratch"
			keep_error_logs
			cmd_down --purge
			cmd_up
			return
		fi
		die "nodes did not catch up with each other within ${WAIT_SECS}s"
	fi
	# tandem records its decision on the nodes (tandem.decision), and a
	# tandem without a state file reads it back: the pair is reset to a as
	# the writer, so an older decision is forgotten too.
	if [[ -n $(sql a "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'tandem' AND TABLE_NAME = 'decision'") ]]; then
		sql a 'DELETE FROM tandem.decision'
		wait_in_sync || die "nodes did not catch up with each other within ${WAIT_SECS}s"
	fi
	# In sync, each node has read all of its peer's binary logs: start
	# new ones and drop the old, so that what tests read of a binary log
	# (settling an interrupted COMMIT scans the newest file) stays small
	# however many runs the pair has seen.
	for n in a b; do
		sql "$n" "FLUSH BINARY LOGS"
		sql "$n" "PURGE BINARY LOGS TO '$(sql "$n" "SHOW MASTER STATUS" | awk '{print $1}')'"
	done
	say "pair reset: a writable, b read_only, in sync at $(binlog_pos a)"
}

usage() {
	sed -n '2,/^#   injection/p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}

main() {
	local cmd=${1:-}
	[[ -n $cmd ]] || usage
	shift
	case $cmd in
	env) cmd_env ;;
	status) cmd_status ;;
	install | up | down | reset | kill | stop | cont | start | resume)
		# Serialise commands that change things (tests may call in parallel).
		mkdir -p "$(dirname "$LOCK_FILE")"
		exec 9>"$LOCK_FILE"
		flock -w 600 9 || die "could not lock $LOCK_FILE"
		case $cmd in
		install) cmd_install ;;
		up) cmd_up ;;
		down) cmd_down "$@" ;;
		reset) cmd_reset ;;
		kill | stop | cont | start | resume)
			check_node "${1:-}"
			"cmd_$cmd" "$@"
			;;
		esac
		;;
	-h | --help | help) usage ;;
	*) die "unknown command '$cmd' (see --help)" ;;
	esac
}

main "$@"
