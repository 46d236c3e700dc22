#!/usr/bin/env bash
# pair.sh — the local two-node MariaDB master-master pair used by tandem's
# integration tests and `make demo`.
#
# Usage: scripts/pair.sh install | up | down [--purge] | status | env | reset
#                        kill NODE | stop NODE | cont NODE | start NODE [--read-only]
#   NODE is "a" or "b".  reset restores the normal state after fault
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

# ---------------------------------------------------------------- node paths

check_node() { [[ ${1:-} == a || ${1:-} == b ]] || die "NODE must be 'a' or 'b' (got '${1:-}')"; }
node_dir() { printf '%s/%s' "$PAIR_DIR" "$1"; }
node_cnf() { printf '%s/my.cnf' "$(node_dir "$1")"; }
node_sock() { printf '%s/mysqld.sock' "$(node_dir "$1")"; }
node_pidfile() { printf '%s/mysqld.pid' "$(node_dir "$1")"; }
node_errlog() { printf '%s/error.log' "$(node_dir "$1")"; }
node_port() { if [[ $1 == a ]]; then echo "$PORT_A"; else echo "$PORT_B"; fi; }
node_peer() { if [[ $1 == a ]]; then echo b; else echo a; fi; }
node_server_id() { if [[ $1 == a ]]; then echo 1; else echo 2; fi; }
# The role-based read_only that 'up' (first time) and 'reset' set at run
# time.  my.cnf always says read_only=ON.
node_read_only() { if [[ $1 == a ]]; then echo OFF; else echo ON; fi; }

# pid of this node's mariadbd, or nothing.  The pid file is trusted only if
# that process really is a mariadbd started with this node's my.cnf (pid files
# go stale after SIGKILL).  While a server starts up it has no pid file yet,
# so the process table is also searched for that exact command line.
node_pid() {
	local n=$1 cnf pid
	cnf=$(node_cnf "$n")
	if [[ -s $(node_pidfile "$n") ]]; then
		pid=$(<"$(node_pidfile "$n")")
		if [[ $pid =~ ^[0-9]+$ ]] && is_our_mariadbd "$pid" "$cnf"; then
			echo "$pid"
			return 0
		fi
	fi
	pgrep -f -- "^mariadbd --defaults-file=$(re_quote "$cnf") " | head -n1 || true
}

re_quote() { sed 's/[][\\.^$*+?(){}|]/\\&/g' <<<"$1"; }

is_our_mariadbd() {
	local cmdline
	cmdline=$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null) || return 1
	[[ $cmdline == mariadbd\ --defaults-file="$2"\ * ]]
}

# Process state letter from /proc (R, S, D, T = stopped by SIGSTOP, Z, ...).
proc_state() { awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true; }

# --------------------------------------------------------------- SQL helpers

# sql NODE QUERY: run QUERY as root over the node's unix socket, tab-separated,
# no headers.  Bounded so that a SIGSTOPped server cannot hang the script.
sql() {
	timeout 20 mariadb --no-defaults --protocol=socket -S "$(node_sock "$1")" -uroot \
		--connect-timeout=3 -N -B -e "$2"
}

# ping NODE: is the server accepting connections?
ping_node() {
	timeout 5 mariadb-admin --no-defaults --protocol=socket -S "$(node_sock "$1")" -uroot \
		--connect-timeout=2 ping >/dev/null 2>&1
}

# slave_status NODE: "Field<TAB>Value" lines of SHOW SLAVE STATUS (none if the
# node has no master configured).
slave_status() {
	timeout 20 mariadb --no-defaults --protocol=socket -S "$(node_sock "$1")" -uroot \
		--connect-timeout=3 -e 'SHOW SLAVE STATUS\G' |
		sed -n 's/^ *\([A-Za-z_]*\): \{0,1\}\(.*\)$/\1\t\2/p'
}

# field NAME: read one field from slave_status output on stdin.
field() { awk -F'\t' -v k="$1" '$1 == k { print $2; exit }'; }

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

	# Keep the packaged service from starting: invoke-rc.d asks policy-rc.d,
	# and 101 means "action forbidden".  A policy-rc.d that was already there
	# is put back afterwards.
	local policy=/usr/sbin/policy-rc.d backup="" log
	if [[ -e $policy ]]; then
		backup=$(mktemp)
		cp -p "$policy" "$backup"
	fi
	restore_policy() {
		if [[ -n $backup ]]; then
			cp -p "$backup" "$policy"
			rm -f "$backup"
		else
			rm -f "$policy"
		fi
	}
	trap restore_policy EXIT
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	log=$(mktemp)
	local rc=0
	# A fresh machine may have no package lists yet.
	if ! apt-cache show mariadb-server >/dev/null 2>&1; then
		apt-get update -qq >"$log" 2>&1 || rc=$?
	fi
	((rc != 0)) || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		mariadb-server mariadb-client >"$log" 2>&1 || rc=$?
	restore_policy
	trap - EXIT
	if ((rc != 0)); then
		tail -n 30 "$log" >&2
		rm -f "$log"
		die "apt-get failed (exit $rc) installing mariadb-server mariadb-client"
	fi
	rm -f "$log"

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

# --------------------------------------------------------------- lifecycle

write_cnf() {
	local n=$1 d
	d=$(node_dir "$n")
	mkdir -p "$d/data" "$d/binlog" "$d/relay" "$d/tmp"
	cat >"$(node_cnf "$n")" <<EOF
# Generated by scripts/pair.sh for node $n; rewritten on every start.
[mysqld]
server_id                 = $(node_server_id "$n")
port                      = $(node_port "$n")
bind_address              = 127.0.0.1
socket                    = $(node_sock "$n")
pid_file                  = $(node_pidfile "$n")
datadir                   = $d/data
tmpdir                    = $d/tmp
log_error                 = $(node_errlog "$n")
report_host               = 127.0.0.1
report_port               = $(node_port "$n")
skip_name_resolve         = ON
character_set_server      = utf8mb4
collation_server          = utf8mb4_general_ci
max_connections           = 300
max_allowed_packet        = 1G
slave_max_allowed_packet  = 1G
local_infile              = ON
# Every start is read-only, whatever the node's role: a restarted node
# must not take writes until tandem (or 'up'/'reset' of a fresh pair)
# decides it is the active one.
read_only                 = ON

# Binary log and GTIDs.  Both nodes use GTID domain 0 (the default): tandem
# lets only one node write at a time, so a single domain gives one linear
# history whose positions compare directly (in sync = equal gtid_binlog_pos),
# and gtid_strict_mode turns any divergence (a write on both nodes, or an
# unreplicated commit on a failed master that later rejoins) into a
# replication error instead of silently merged histories.  Concurrent writes
# on both nodes would need one domain per node; they are not tandem's model.
log_bin                   = $d/binlog/bin
log_bin_index             = $d/binlog/bin.index
relay_log                 = $d/relay/relay
relay_log_index           = $d/relay/relay.index
binlog_format             = ROW
log_slave_updates         = ON
gtid_domain_id            = 0
gtid_strict_mode          = ON
auto_increment_increment  = 2
auto_increment_offset     = $(node_server_id "$n")
slave_net_timeout         = 10

# Semi-synchronous replication, both ways (built into MariaDB >= 10.3).
# AFTER_SYNC is the lossless wait point; after 2 s without an ack the master
# falls back to asynchronous until the peer catches up again.
rpl_semi_sync_master_enabled    = ON
rpl_semi_sync_slave_enabled     = ON
rpl_semi_sync_master_wait_point = AFTER_SYNC
rpl_semi_sync_master_timeout    = 2000

# Crash recovery of an old active (MariaDB >= 10.6.19 / 10.11.9 / 11.4.3,
# MDEV-33465; the truncation itself is MDEV-21117, MDEV-28461).  With
# init_rpl_role=SLAVE, a server whose binary log was not closed cleanly
# (SIGKILL, crash) truncates the binlog at the first transaction that is
# in the binlog but only PREPARED in InnoDB, and rolls those transactions
# back.  Under AFTER_SYNC those are exactly the commits that were still
# waiting for the peer's acknowledgement: no client was told about them.
# Conditions: the binlog is on; the transactions are in a transactional
# engine (InnoDB; mysql.gtid_slave_pos is InnoDB here); a non-transactional
# event (DDL, MyISAM/Aria write) after the truncation point makes the
# server refuse to start instead.  Commits that timed out
# (rpl_semi_sync_master_timeout) were committed in InnoDB and are kept.
# A clean shutdown truncates nothing.  rpl_semi_sync_slave_enabled no
# longer triggers it (it did before MDEV-33465).  With gtid_strict_mode,
# a truncated transaction that the peer did receive comes back from the
# peer and is applied although it carries this node's server_id
# (MDEV-27760, MDEV-28609).
init_rpl_role                   = SLAVE

# Small footprint.  flush_log_at_trx_commit=2 survives SIGKILL of mariadbd
# (the OS keeps the written log), which is the failure the tests inject.
performance_schema             = OFF
innodb_buffer_pool_size        = 64M
innodb_log_file_size           = 128M
innodb_flush_log_at_trx_commit = 2
key_buffer_size                = 8M
aria_pagecache_buffer_size     = 16M
EOF
}

# wait_gone PID SECS: wait for a process to exit.
wait_gone() {
	local pid=$1 deadline=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null && [[ $(proc_state "$pid") != Z ]]; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

port_in_use() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

show_errlog() {
	local n=$1
	echo "---- last lines of $(node_errlog "$n") ----" >&2
	tail -n 25 "$(node_errlog "$n")" >&2 2>/dev/null || echo "(no error log)" >&2
}

# start_node NODE [extra mariadbd args...]: start the server on its existing
# datadir and wait until it accepts connections.
start_node() {
	local n=$1
	shift
	local pid port
	pid=$(node_pid "$n")
	if [[ -n $pid ]]; then
		[[ $(proc_state "$pid") != T ]] || die "node $n (pid $pid) is stopped (SIGSTOP); use 'cont $n'"
		wait_ready "$n"
		return 0
	fi
	[[ -d $(node_dir "$n")/data/mysql ]] || die "node $n has no data in $(node_dir "$n"); run 'up' first"
	port=$(node_port "$n")
	port_in_use "$port" && die "port $port (node $n) is already in use by another process"
	write_cnf "$n"
	rm -f "$(node_sock "$n")" "$(node_sock "$n").lock" "$(node_pidfile "$n")"
	# setsid + redirected stdio: the server must not hold the caller's pipes
	# (go test waits for them) nor die with the caller's process group; nor
	# may it inherit fd 9, this script's lock.
	setsid mariadbd --defaults-file="$(node_cnf "$n")" --user=root "$@" \
		</dev/null >>"$(node_dir "$n")/mariadbd.out" 2>&1 9>&- &
	wait_ready "$n"
	say "node $n started (pid $(node_pid "$n"), port $port)"
}

# wait_ready NODE: bounded wait for the server to answer a ping.
wait_ready() {
	local n=$1 deadline=$((SECONDS + WAIT_SECS)) seen=0
	while ! ping_node "$n"; do
		if [[ -z $(node_pid "$n") ]]; then
			# Give a just-forked server a moment to show up in /proc.
			if ((seen++ > 10)); then
				show_errlog "$n"
				die "node $n: mariadbd exited during startup"
			fi
		fi
		if ((SECONDS >= deadline)); then
			show_errlog "$n"
			die "node $n: not ready after ${WAIT_SECS}s"
		fi
		sleep 0.2
	done
}

# stop_node NODE: graceful shutdown over the socket, SIGKILL after the bound.
stop_node() {
	local n=$1 pid
	pid=$(node_pid "$n")
	[[ -n $pid ]] || return 0
	kill -CONT "$pid" 2>/dev/null || true # a SIGSTOPped server cannot shut down
	timeout "$WAIT_SECS" mariadb-admin --no-defaults --protocol=socket -S "$(node_sock "$n")" -uroot \
		--connect-timeout=3 shutdown >/dev/null 2>&1 || true
	if ! wait_gone "$pid" "$WAIT_SECS"; then
		say "node $n (pid $pid) did not shut down within ${WAIT_SECS}s; sending SIGKILL"
		kill -9 "$pid" 2>/dev/null || true
		wait_gone "$pid" 10 || die "node $n (pid $pid) survived SIGKILL"
	fi
	say "node $n stopped"
}

# --------------------------------------------------------------- replication

init_node() {
	local n=$1 d log
	d=$(node_dir "$n")
	write_cnf "$n"
	log="$d/install-db.log"
	if ! mariadb-install-db --defaults-file="$(node_cnf "$n")" --user=root \
		--auth-root-authentication-method=socket --skip-test-db >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		die "node $n: mariadb-install-db failed (log: $log)"
	fi
}

# Users and databases, identical on both nodes and kept out of the binlog.
setup_accounts() {
	sql "$1" "
SET SESSION sql_log_bin = 0;
DELETE FROM mysql.global_priv WHERE User = '';
DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';
FLUSH PRIVILEGES;
CREATE USER IF NOT EXISTS 'tandem'@'127.0.0.1' IDENTIFIED BY 'tandem';
CREATE USER IF NOT EXISTS 'tandem'@'localhost' IDENTIFIED BY 'tandem';
GRANT ALL PRIVILEGES ON *.* TO 'tandem'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'tandem'@'localhost' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'app'@'127.0.0.1' IDENTIFIED BY 'apppass';
GRANT ALL PRIVILEGES ON \`app\`.* TO 'app'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`sbtest\`.* TO 'app'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY 'replpass';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';
CREATE DATABASE IF NOT EXISTS app;
CREATE DATABASE IF NOT EXISTS sbtest;
CREATE DATABASE IF NOT EXISTS tandem_pair;
CREATE TABLE IF NOT EXISTS tandem_pair.canary (id INT PRIMARY KEY, token VARCHAR(64) NOT NULL, at TIMESTAMP(6) NOT NULL);
RESET MASTER;
SET GLOBAL gtid_slave_pos = '';
"
}

change_master_sql() {
	local peer
	peer=$(node_peer "$1")
	printf "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, MASTER_USER='repl', MASTER_PASSWORD='replpass', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1" \
		"$(node_port "$peer")"
}

# ensure_replication NODE: make NODE replicate from its peer with the
# standard settings, (re)configuring and starting the slave threads if needed.
ensure_replication() {
	local n=$1 st port host gtid io sqlr
	st=$(slave_status "$n")
	port=$(field Master_Port <<<"$st")
	host=$(field Master_Host <<<"$st")
	gtid=$(field Using_Gtid <<<"$st")
	io=$(field Slave_IO_Running <<<"$st")
	sqlr=$(field Slave_SQL_Running <<<"$st")
	if [[ $host != 127.0.0.1 || $port != "$(node_port "$(node_peer "$n")")" || $gtid != Slave_Pos ]]; then
		sql "$n" "STOP SLAVE; $(change_master_sql "$n"); START SLAVE;"
	elif [[ $io != Yes || $sqlr != Yes ]]; then
		sql "$n" "START SLAVE;"
	fi
}

# repl_ok NODE: both slave threads of NODE are running.
repl_ok() {
	local st
	st=$(slave_status "$1" 2>/dev/null) || return 1
	[[ $(field Slave_IO_Running <<<"$st") == Yes && $(field Slave_SQL_Running <<<"$st") == Yes ]]
}

# repl_dead NODE: a slave thread of NODE has stopped (state "No", as after a
# replication error), as opposed to still connecting.
repl_dead() {
	local st
	st=$(slave_status "$1" 2>/dev/null) || return 1
	[[ $(field Slave_IO_Running <<<"$st") == No || $(field Slave_SQL_Running <<<"$st") == No ]]
}

# wait_replicating: bounded wait for all four slave threads to run; gives up
# early if a thread stays stopped (an error) for 5 s.
wait_replicating() {
	local deadline=$((SECONDS + WAIT_SECS)) n dead_since=-1
	until repl_ok a && repl_ok b; do
		if repl_dead a || repl_dead b; then
			((dead_since >= 0)) || dead_since=$SECONDS
		else
			dead_since=-1
		fi
		if ((SECONDS >= deadline || (dead_since >= 0 && SECONDS - dead_since >= 5))); then
			for n in a b; do
				echo "---- node $n slave status ----" >&2
				slave_status "$n" | grep -E '^(Slave_IO_Running|Slave_SQL_Running|Slave_IO_State|Last_IO_Error|Last_SQL_Error)' >&2 || true
			done
			return 1
		fi
		sleep 0.2
	done
}

binlog_pos() { sql "$1" 'SELECT @@GLOBAL.gtid_binlog_pos'; }

# caught_up SECS: both nodes replicating, and each has applied everything the
# other had binlogged a moment ago (MASTER_GTID_WAIT, at most SECS each).
# With one GTID domain the comparison is by sequence number, so it also
# holds under continuous writes, where equal positions might never be seen.
caught_up() {
	local pa pb r
	repl_ok a && repl_ok b || return 1
	pa=$(binlog_pos a 2>/dev/null) || return 1
	pb=$(binlog_pos b 2>/dev/null) || return 1
	r=$(sql b "SELECT MASTER_GTID_WAIT('$pa', $1)" 2>/dev/null) && [[ $r == 0 ]] || return 1
	r=$(sql a "SELECT MASTER_GTID_WAIT('$pb', $1)" 2>/dev/null) && [[ $r == 0 ]]
}

wait_in_sync() {
	local deadline=$((SECONDS + WAIT_SECS))
	until caught_up 2; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}

# canary FROM TO: write a fresh token on FROM and wait until TO has it.
canary() {
	local from=$1 to=$2 token deadline=$((SECONDS + WAIT_SECS)) got
	token="$from-$(date +%s%N)-$RANDOM"
	sql "$from" "REPLACE INTO tandem_pair.canary VALUES (1, '$token', NOW(6))"
	until got=$(sql "$to" 'SELECT token FROM tandem_pair.canary WHERE id = 1' 2>/dev/null) && [[ $got == "$token" ]]; do
		if ((SECONDS >= deadline)); then
			echo "pair: a write on node $from did not reach node $to within ${WAIT_SECS}s" >&2
			return 1
		fi
		sleep 0.1
	done
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
		if healthy; then
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
			cmd_down --purge
			cmd_up
			return
		fi
		die "replication threads did not start within ${WAIT_SECS}s"
	fi
	wait_in_sync || die "nodes did not catch up with each other within ${WAIT_SECS}s"
	# tandem records its decision on the nodes (tandem.decision), and a
	# tandem without a state file reads it back: the pair is reset to a as
	# the writer, so an older decision is forgotten too.
	if [[ -n $(sql a "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'tandem' AND TABLE_NAME = 'decision'") ]]; then
		sql a 'DELETE FROM tandem.decision'
		wait_in_sync || die "nodes did not catch up with each other within ${WAIT_SECS}s"
	fi
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
	install | up | down | reset | kill | stop | cont | start)
		# Serialise commands that change things (tests may call in parallel).
		mkdir -p "$(dirname "$LOCK_FILE")"
		exec 9>"$LOCK_FILE"
		flock -w 600 9 || die "could not lock $LOCK_FILE"
		case $cmd in
		install) cmd_install ;;
		up) cmd_up ;;
		down) cmd_down "$@" ;;
		reset) cmd_reset ;;
		kill | stop | cont | start)
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
