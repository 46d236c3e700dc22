# shellcheck shell=bash
# lib/mariadb.sh — shell functions shared by scripts/pair.sh (the pair on
# loopback) and scripts/cluster.sh (the same pair inside network
# namespaces): a node's my.cnf, initialisation, accounts, start/stop,
# replication set-up and checks. Source it; it runs nothing by itself.
#
# The sourcing script defines, for NODE "a" or "b":
#   say, die                 messages; die exits
#   WAIT_SECS                bound, in seconds, of every wait
#   node_dir NODE            the node's directory (my.cnf, data/, binlog/, ...)
#   node_port NODE           its TCP port (never 3306: that is tandem's)
#   node_peer NODE           the other node
#   node_server_id NODE      1 for a, 2 for b (also auto_increment_offset)
# and may redefine, after sourcing (defaults: the loopback pair):
#   node_address NODE        address the node binds to, reports, and that its
#                            peer replicates from (127.0.0.1)
#   node_exec NODE CMD...    runs CMD where the node's network is (as is)
#   ACCOUNT_HOSTS            hosts of the app, tandem and repl accounts
#                            (127.0.0.1; tandem@localhost always)
#   MDB_SCRIPT               name written into the generated my.cnf
#   tls_dir                  where the pair's test CA lives (the directory
#                            above node a's, /tls)
# Servers are always reached for administration over their unix socket as
# root, so these functions work from any network namespace.

node_address() { echo 127.0.0.1; }
node_exec() {
	shift
	"$@"
}
ACCOUNT_HOSTS=(127.0.0.1)
MDB_SCRIPT=${MDB_SCRIPT:-scripts/pair.sh}

node_cnf() { printf '%s/my.cnf' "$(node_dir "$1")"; }
node_sock() { printf '%s/mysqld.sock' "$(node_dir "$1")"; }
node_pidfile() { printf '%s/mysqld.pid' "$(node_dir "$1")"; }
node_errlog() { printf '%s/error.log' "$(node_dir "$1")"; }

# ----------------------------------------------------------------------- TLS
#
# Every node offers TLS with a certificate of the pair's own test CA
# (tls_dir/ca.pem), so that tandem's connections to the nodes can be
# verified (tls = "verify-full", tls_ca = that file).  Each node's
# certificate names 127.0.0.1, localhost and the node's address.  Made
# once with openssl (ECDSA P-256, ten years) and kept; a node certificate
# that no longer verifies against the CA (the CA was remade) is remade.

tls_dir() { printf '%s/tls' "$(dirname "$(node_dir a)")"; }
node_tls_dir() { printf '%s/tls' "$(node_dir "$1")"; }

# ensure_tls NODE: the CA and NODE's certificate exist and agree.
ensure_tls() {
	local n=$1 ca cdir ndir san tmp
	command -v openssl >/dev/null 2>&1 || die "openssl is needed for the pair's TLS certificates (apt-get install openssl)"
	cdir=$(tls_dir)
	ndir=$(node_tls_dir "$n")
	ca=$cdir/ca.pem
	mkdir -p "$cdir" "$ndir"
	if [[ ! -s $ca || ! -s $cdir/ca-key.pem ]]; then
		tmp=$(mktemp -d "$cdir/.new.XXXXXX")
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
			-subj "/CN=tandem test pair CA" -keyout "$tmp/ca-key.pem" -out "$tmp/ca.pem" >/dev/null 2>&1 ||
			die "openssl could not make the pair's CA in $cdir"
		chmod 600 "$tmp/ca-key.pem"
		mv -f "$tmp/ca-key.pem" "$cdir/ca-key.pem"
		mv -f "$tmp/ca.pem" "$ca"
		rmdir "$tmp"
		say "made the pair's test CA $ca"
	fi
	if [[ -s $ndir/server-cert.pem && -s $ndir/server-key.pem ]] &&
		openssl verify -CAfile "$ca" "$ndir/server-cert.pem" >/dev/null 2>&1; then
		return 0
	fi
	san="IP:127.0.0.1,DNS:localhost"
	[[ $(node_address "$n") == 127.0.0.1 ]] || san="$san,IP:$(node_address "$n")"
	tmp=$(mktemp -d "$ndir/.new.XXXXXX")
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj "/CN=tandem test pair node $n" -keyout "$tmp/server-key.pem" -out "$tmp/server.csr" >/dev/null 2>&1 &&
		openssl x509 -req -in "$tmp/server.csr" -CA "$ca" -CAkey "$cdir/ca-key.pem" -CAcreateserial \
			-days 3650 -sha256 -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san") \
			-out "$tmp/server-cert.pem" >/dev/null 2>&1 ||
		die "openssl could not make node $n's certificate in $ndir"
	chmod 600 "$tmp/server-key.pem"
	mv -f "$tmp/server-key.pem" "$ndir/server-key.pem"
	mv -f "$tmp/server-cert.pem" "$ndir/server-cert.pem"
	rm -rf "$tmp"
	say "made node $n's TLS certificate ($san)"
}

# tls_ok NODE: the running server offers TLS.
tls_ok() { [[ $(sql "$1" 'SELECT @@have_ssl' 2>/dev/null) == YES ]]; }


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

# --------------------------------------------------------------- lifecycle

write_cnf() {
	local n=$1 d
	d=$(node_dir "$n")
	mkdir -p "$d/data" "$d/binlog" "$d/relay" "$d/tmp"
	ensure_tls "$n"
	cat >"$(node_cnf "$n")" <<EOF
# Generated by $MDB_SCRIPT for node $n; rewritten on every start.
[mysqld]
server_id                 = $(node_server_id "$n")
port                      = $(node_port "$n")
bind_address              = $(node_address "$n")
socket                    = $(node_sock "$n")
pid_file                  = $(node_pidfile "$n")
datadir                   = $d/data
tmpdir                    = $d/tmp
log_error                 = $(node_errlog "$n")
report_host               = $(node_address "$n")
report_port               = $(node_port "$n")
skip_name_resolve         = ON
character_set_server      = utf8mb4
collation_server          = utf8mb4_general_ci
max_connections           = 300
max_allowed_packet        = 1G
slave_max_allowed_packet  = 1G
local_infile              = ON
# TLS for clients that ask (tandem's node links); plaintext stays allowed.
ssl_ca                    = $(tls_dir)/ca.pem
ssl_cert                  = $(node_tls_dir "$n")/server-cert.pem
ssl_key                   = $(node_tls_dir "$n")/server-key.pem
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
max_binlog_size           = 64M
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

# Replica threads wait for tandem after every start.  With log_slave_updates
# both ways a node's own commit comes back to it through its peer, and its
# SQL thread records it in gtid_slave_pos (skipping it: own server_id)
# possibly before the node's own commit, which AFTER_SYNC holds until the
# peer acknowledges.  Killed then, the node comes back without the commit
# (crash recovery, above) but with gtid_slave_pos naming it: replica threads
# started at boot would fetch from the peer after it and never take it back.
# tandem starts them itself once it has moved gtid_slave_pos back
# (replication.Resume; 'resume NODE' below does the same for this pair).
skip_slave_start                = ON

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

# port_in_use NODE PORT: something listens on PORT where NODE runs.
port_in_use() { [[ -n $(node_exec "$1" ss -Hltn "sport = :$2" 2>/dev/null) ]]; }

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
	port_in_use "$n" "$port" && die "port $port (node $n) is already in use by another process"
	write_cnf "$n"
	rm -f "$(node_sock "$n")" "$(node_sock "$n").lock" "$(node_pidfile "$n")"
	# setsid + redirected stdio: the server must not hold the caller's pipes
	# (go test waits for them) nor die with the caller's process group; nor
	# may it inherit fd 9, this script's lock.
	node_exec "$n" setsid mariadbd --defaults-file="$(node_cnf "$n")" --user=root "$@" \
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

# account_sql: the accounts, for every host in ACCOUNT_HOSTS (tandem also
# @localhost).
account_sql() {
	local h
	echo "CREATE USER IF NOT EXISTS 'tandem'@'localhost' IDENTIFIED BY 'tandem';"
	echo "GRANT ALL PRIVILEGES ON *.* TO 'tandem'@'localhost' WITH GRANT OPTION;"
	for h in "${ACCOUNT_HOSTS[@]}"; do
		cat <<EOF
CREATE USER IF NOT EXISTS 'tandem'@'$h' IDENTIFIED BY 'tandem';
GRANT ALL PRIVILEGES ON *.* TO 'tandem'@'$h' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'app'@'$h' IDENTIFIED BY 'apppass';
GRANT ALL PRIVILEGES ON \`app\`.* TO 'app'@'$h';
GRANT ALL PRIVILEGES ON \`sbtest\`.* TO 'app'@'$h';
CREATE USER IF NOT EXISTS 'repl'@'$h' IDENTIFIED BY 'replpass';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'$h';
EOF
	done
}

# Users and databases, identical on both nodes and kept out of the binlog.
setup_accounts() {
	sql "$1" "
SET SESSION sql_log_bin = 0;
DELETE FROM mysql.global_priv WHERE User = '';
DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';
FLUSH PRIVILEGES;
$(account_sql)
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
	printf "CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%s, MASTER_USER='repl', MASTER_PASSWORD='replpass', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1" \
		"$(node_address "$peer")" "$(node_port "$peer")"
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
	if [[ $host != "$(node_address "$(node_peer "$n")")" || $port != "$(node_port "$(node_peer "$n")")" || $gtid != Slave_Pos ]]; then
		sql "$n" "STOP SLAVE; $(change_master_sql "$n"); START SLAVE;"
	elif [[ $io != Yes || $sqlr != Yes ]]; then
		resume_replication "$n"
	fi
}

# resume_replication NODE: start NODE's replica threads from the position
# its binary log backs (the nodes run with skip_slave_start, see write_cnf):
# when gtid_slave_pos names a transaction of the node's own beyond its
# binary log (its crash recovery dropped it after it had looped back through
# the peer), gtid_slave_pos goes back to gtid_binlog_pos first, so that the
# peer sends that transaction again.  The pair's form of tandem's
# replication.Resume: one GTID domain, log_slave_updates on both nodes.
resume_replication() {
	local n=$1 id slave binlog
	sql "$n" "STOP SLAVE;"
	id=$(sql "$n" 'SELECT @@GLOBAL.server_id')
	slave=$(sql "$n" 'SELECT @@GLOBAL.gtid_slave_pos')
	binlog=$(sql "$n" 'SELECT @@GLOBAL.gtid_binlog_pos')
	if [[ $slave =~ ^0-([0-9]+)-([0-9]+)$ && ${BASH_REMATCH[1]} == "$id" ]] &&
		[[ $binlog =~ ^0-[0-9]+-([0-9]+)$ ]] && ((${BASH_REMATCH[1]} < ${slave##*-})); then
		say "node $n lost its own $slave in crash recovery (binlog at $binlog): gtid_slave_pos back to $binlog"
		sql "$n" "SET GLOBAL gtid_slave_pos = '$binlog';"
	fi
	sql "$n" "START SLAVE;"
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

# wait_in_sync: bounded wait for caught_up; gives up early, like
# wait_replicating, when a slave thread stays stopped (an error such as a
# duplicate key in the applier: diverged data) for 5 s.
wait_in_sync() {
	local deadline=$((SECONDS + WAIT_SECS)) dead_since=-1
	until caught_up 2; do
		if repl_dead a || repl_dead b; then
			((dead_since >= 0)) || dead_since=$SECONDS
		else
			dead_since=-1
		fi
		((SECONDS < deadline && (dead_since < 0 || SECONDS - dead_since < 5))) || return 1
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

