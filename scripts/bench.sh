#!/usr/bin/env bash
# bench.sh — throughput, latency and memory of tandem against the setup it
# replaces (HAProxy in TCP mode with mysql-check and a backup server) and
# against no proxy at all, on the local pair from scripts/pair.sh.
#
# Method
#   * One run measures three targets: the writable node directly (node a
#     normally; node b if the shared pair has failed over) (the floor for any
#     proxy), HAProxy (testdata/haproxy.cfg, nbthread 1) and tandem (a config
#     written into the results directory, max_procs 1), all on 127.0.0.1.
#   * sysbench 1.0.20 (Debian) runs oltp_point_select and oltp_read_write at
#     1, 8 and 32 threads, over TCP, TLS off, server-side prepared statements
#     (--db-ps-mode=auto, sysbench's default); only lock conflicts are retried
#     (--mysql-ignore-errors=1213,1020,1205), any other error fails the run.
#     The tables (--tables/--table-size, small) are prepared once, directly on
#     the writable node, and replicated to the other before the runs.
#   * For each (test, threads) the targets ALTERNATE: BENCH_ROUNDS rounds of
#     one BENCH_SECONDS run per target, the order rotating each round
#     (direct,haproxy,tandem / haproxy,tandem,direct / ...), so drift on the
#     machine (other work, buffer pool, replication backlog) hits all three
#     alike. Figures are medians over the rounds: transactions per second and
#     sysbench's 95th-percentile latency in ms.
#   * Connect-per-request (scripts/connbench), what a PHP app without
#     persistent connections does for each page view: every request opens a
#     fresh connection, logs in, runs its work as text statements and closes
#     (COM_QUIT). connect_select: one point SELECT; connect_rw: BEGIN, a point
#     SELECT, an UPDATE of that row, COMMIT. At 1, 8 and 32 concurrent
#     clients, alternating targets like sysbench's runs; the "tps" columns
#     are then requests per second and p95 the latency of a whole request
#     (connect to close). Lock conflicts are counted, not retried.
#     These rows have a fourth target: a second tandem with pooled node
#     sessions for the benchmark's account ([pool] users, "pooled"), the
#     mode issue 13 asks to beat direct connections with.
#   * CPU per request of each part, from /proc/PID/stat around every run:
#     the proxy, the writable node's mariadbd (its pid file in the pair's
#     directory) and, for the connect rows, the load generator (connbench
#     reports its own). On two shared cores the rate is at most 2 cores
#     over their sum, whatever the proxy does.
#   * Memory: VmRSS of the haproxy and tandem processes, idle, then with
#     BENCH_IDLE_CONNS (1,000) idle client sessions that completed the MySQL
#     login through each proxy to the node (scripts/idleconns), measured before
#     any sysbench load; per-session KiB = (with - idle) / sessions.
#
# Caveat
#   This machine has 2 cores shared by sysbench, the proxy and both MariaDB
#   nodes. Any extra hop (HAProxy or tandem) costs about two thirds of the
#   direct throughput here, because the proxy competes with the client and
#   the server for the same two cores, not because of its own latency. The
#   ratios tandem/haproxy (and the p95 difference tandem - haproxy) are the
#   meaningful figures; tandem/direct mostly measures the machine.
#   Writes are semi-synchronous (AFTER_SYNC) to the other node, so oltp_read_write
#   also measures replication on the same two cores.
#
# Usage: scripts/bench.sh            (or: make bench)
# Environment (defaults in brackets):
#   BENCH_SECONDS [10]  BENCH_ROUNDS [3]  BENCH_THREADS ["1 8 32"]
#   BENCH_TESTS ["oltp_point_select oltp_read_write"] ("" skips sysbench)
#   BENCH_CONN_TESTS ["connect_select connect_rw"] ("" skips them)
#   BENCH_CONN_CLIENTS ["1 8 32"]
#   BENCH_TABLES [4]  BENCH_TABLE_SIZE [10000]  BENCH_WARMUP [3] (s, 0 = none)
#   BENCH_IDLE_CONNS [1000] (0 skips the memory part)
#   BENCH_TANDEM_LISTEN [127.0.0.1:13310]  BENCH_HAPROXY_LISTEN [127.0.0.1:13311]
#   BENCH_ADMIN_LISTEN [127.0.0.1:13312] (tandem's admin API)
#   BENCH_POOL_LISTEN [127.0.0.1:13313]  BENCH_POOL_ADMIN_LISTEN [127.0.0.1:13314]
#   BENCH_POOL [1] (0: no pooled target)
#   BENCH_TANDEM_MAX_PROCS [1] (proxy.max_procs; HAProxy runs nbthread 1)
#   BENCH_RESULTS_DIR [bench-results]  (a timestamped directory is made in it)
#   BENCH_SKIP_PAIR_UP [0]  BENCH_SKIP_BUILD [0]  BENCH_PAIR_WAIT [120]
#   BENCH_IGNORE_ERRORS [1213,1020,1205] (lock conflicts only; "none" to abort on them)
#   TANDEM_PAIR_PORT_A [13306]  TANDEM_PAIR_PORT_B [13307]
#   BENCH_ADMIN_USER/BENCH_ADMIN_PASSWORD [tandem/tandem]  (node admin)
#   BENCH_USER/BENCH_PASSWORD [app/apppass]  (the benchmark's client account)
# Quick run: BENCH_SECONDS=3 BENCH_ROUNDS=1 scripts/bench.sh
#
# Everything is bounded: each sysbench has --time and an outer timeout, each
# wait has a limit, and haproxy, tandem and idleconns are stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
THREADS=${BENCH_THREADS:-"1 8 32"}
TESTS=${BENCH_TESTS-"oltp_point_select oltp_read_write"}
CONN_TESTS=${BENCH_CONN_TESTS-"connect_select connect_rw"}
CONN_CLIENTS=${BENCH_CONN_CLIENTS:-"1 8 32"}
TABLES=${BENCH_TABLES:-4}
TABLE_SIZE=${BENCH_TABLE_SIZE:-10000}
WARMUP=${BENCH_WARMUP:-3}
IDLE_CONNS=${BENCH_IDLE_CONNS:-1000}
TANDEM_LISTEN=${BENCH_TANDEM_LISTEN:-127.0.0.1:13310}
HAPROXY_LISTEN=${BENCH_HAPROXY_LISTEN:-127.0.0.1:13311}
# tandem's admin API: off the default 9306, which a demo may hold.
ADMIN_LISTEN=${BENCH_ADMIN_LISTEN:-127.0.0.1:13312}
POOL_LISTEN=${BENCH_POOL_LISTEN:-127.0.0.1:13313}
POOL_ADMIN_LISTEN=${BENCH_POOL_ADMIN_LISTEN:-127.0.0.1:13314}
POOL=${BENCH_POOL:-1}
PAIR_DIR=${TANDEM_PAIR_DIR:-/tmp/tandem-pair}
RESULTS_BASE=${BENCH_RESULTS_DIR:-bench-results}
TANDEM_MAX_PROCS=${BENCH_TANDEM_MAX_PROCS:-1}
# Lock conflicts (deadlock 1213, lock wait timeout 1205, 1020) roll back and
# retry the transaction, as an application would (and as sysbench does by
# default): with none, one deadlock among 32 threads on small tables aborts a
# whole run whichever the target. Every other error, notably a lost
# connection, still aborts the run (sysbench 1.0.20 would crash reconnecting).
# The count of retried transactions is in raw.tsv and the summary.
IGNORE_ERRORS=${BENCH_IGNORE_ERRORS:-1213,1020,1205}
NODE_A=127.0.0.1:${TANDEM_PAIR_PORT_A:-13306}
NODE_B=127.0.0.1:${TANDEM_PAIR_PORT_B:-13307}
# The writable node the benchmark uses (W) and the other one (P): node a,
# unless the shared pair has failed over to b (choose_writer).
W=a
NODE_W=$NODE_A
NODE_P=$NODE_B
ADMIN_USER=${BENCH_ADMIN_USER:-tandem}
ADMIN_PASSWORD=${BENCH_ADMIN_PASSWORD:-tandem}
APP_USER=${BENCH_USER:-app}
APP_PASSWORD=${BENCH_PASSWORD:-apppass}
DB=sbtest
TARGETS=(direct haproxy tandem)
# The connect-per-request rows also run against the pooled tandem.
CONN_TARGETS=(direct haproxy tandem pooled)
# max_connections the writable node needs: the idle sessions, sysbench, the checks and
# whatever else uses the pair meanwhile.
NEED_MAX_CONNECTIONS=2100
SET_MAX_CONNECTIONS=3000

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
for v in SECONDS_PER_RUN ROUNDS TABLES TABLE_SIZE WARMUP IDLE_CONNS TANDEM_MAX_PROCS POOL; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
((SECONDS_PER_RUN >= 1 && ROUNDS >= 1)) || die "BENCH_SECONDS and BENCH_ROUNDS must be >= 1"
((POOL <= 1)) || die "BENCH_POOL must be 0 or 1 (got '$POOL')"
((POOL)) || CONN_TARGETS=(direct haproxy tandem)

host_of() { printf '%s' "${1%:*}"; }
port_of() { printf '%s' "${1##*:}"; }
target_addr() {
	case $1 in
	direct) echo "$NODE_W" ;;
	haproxy) echo "$HAPROXY_LISTEN" ;;
	tandem) echo "$TANDEM_LISTEN" ;;
	pooled) echo "$POOL_LISTEN" ;;
	esac
}

# SQL as the admin account on a node address; extra mariadb flags allowed.
admin_sql() {
	local addr=$1
	shift
	timeout 30 mariadb --protocol=tcp -h"$(host_of "$addr")" -P"$(port_of "$addr")" \
		-u"$ADMIN_USER" -p"$ADMIN_PASSWORD" --connect-timeout=5 -N -B "$@"
}
# One query as the client account through a target; succeeds if it answers.
app_ping() {
	timeout 10 mariadb --protocol=tcp -h"$(host_of "$1")" -P"$(port_of "$1")" \
		-u"$APP_USER" -p"$APP_PASSWORD" --connect-timeout=3 -N -B -e 'SELECT 1' "$DB" >/dev/null 2>&1
}
# The pair is shared (tests elsewhere may kill, restart, demote or promote
# nodes). pair_state [ADDR] prints that node's (default: the writable one's)
# "Uptime read_only", or "down".
pair_state() {
	admin_sql "${1:-$NODE_W}" -e "SELECT VARIABLE_VALUE, @@read_only FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='UPTIME'" 2>/dev/null |
		tr '\t' ' ' | grep -E '^[0-9]+ [01]$' || echo down
}
# wait_pair: until the writable node answers and is writable, at most PAIR_WAIT seconds.
PAIR_WAIT=${BENCH_PAIR_WAIT:-120}
wait_pair() {
	local i st
	for ((i = 0; i <= PAIR_WAIT; i++)); do
		st=$(pair_state)
		if [[ $st =~ ^[0-9]+\ 0$ ]]; then
			((i == 0)) || say "node $W is back and writable after ${i}s"
			PAIR_UPTIME=${st% *}
			return 0
		fi
		((i == 0)) && say "node $W is $([[ $st == down ]] && echo down || echo read-only): waiting up to ${PAIR_WAIT}s (someone else is using the pair?)"
		sleep 1
	done
	die "node $W ($NODE_W) not writable for ${PAIR_WAIT}s: the pair is in use elsewhere; run the benchmark when it is quiet"
}
# choose_writer: node a if it is writable, else node b if it is (the shared
# pair has failed over), else wait for one (PAIR_WAIT seconds at most).
P=b
choose_writer() {
	local i
	for ((i = 0; i <= PAIR_WAIT; i++)); do
		if [[ $(pair_state "$NODE_A") =~ \ 0$ ]]; then
			W=a NODE_W=$NODE_A P=b NODE_P=$NODE_B
			return 0
		fi
		if [[ $(pair_state "$NODE_B") =~ \ 0$ ]]; then
			W=b NODE_W=$NODE_B P=a NODE_P=$NODE_A
			say "warning: node a is not writable but node b is (the pair has failed over): benchmarking against node b"
			return 0
		fi
		((i == 0)) && say "no node of the pair is writable: waiting up to ${PAIR_WAIT}s (someone else is using the pair?)"
		sleep 1
	done
	die "no node of the pair ($NODE_A, $NODE_B) became writable within ${PAIR_WAIT}s (a restarted pair comes up read-only, and no tandem runs in front of it: 'scripts/pair.sh reset' makes node a writable)"
}
# pair_changed: true if the writable node restarted or turned read-only since wait_pair.
pair_changed() {
	local st
	st=$(pair_state)
	[[ $st =~ ^([0-9]+)\ 0$ ]] || return 0
	((BASH_REMATCH[1] < PAIR_UPTIME))
}

# CPU time (user+system) a process has used, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
CLK_TCK=$(getconf CLK_TCK)
vmrss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ------------------------------------------------------------ cleanup / trap

HAPROXY_PID=
TANDEM_PID=
POOL_PID=
IDLE_PID=
RESTORE_MAX_CONNECTIONS=

# stop_pid pid name seconds: SIGTERM, wait, then SIGKILL; the exit code is
# left in STOP_RC (not a $(...) subshell: only this shell can wait for it).
STOP_RC=
stop_pid() {
	local pid=$1 name=$2 secs=$3 i
	STOP_RC=
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "$name (pid $pid) ignored SIGTERM for ${secs}s: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	STOP_RC=0
	wait "$pid" 2>/dev/null || STOP_RC=$?
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [[ -n $IDLE_PID ]]; then
		exec 9>&- 2>/dev/null
		stop_pid "$IDLE_PID" idleconns 15
	fi
	if [[ -n $TANDEM_PID ]]; then
		stop_pid "$TANDEM_PID" tandem 15
		say "tandem stopped (exit code $STOP_RC after SIGTERM)"
		[[ -n ${RUN_DIR:-} ]] && echo "tandem exit code after SIGTERM: $STOP_RC" >>"$RUN_DIR/notes.txt"
	fi
	if [[ -n $POOL_PID ]]; then
		stop_pid "$POOL_PID" "pooled tandem" 15
		say "pooled tandem stopped (exit code $STOP_RC after SIGTERM)"
		[[ -n ${RUN_DIR:-} ]] && echo "pooled tandem exit code after SIGTERM: $STOP_RC" >>"$RUN_DIR/notes.txt"
	fi
	[[ -n $HAPROXY_PID ]] && stop_pid "$HAPROXY_PID" haproxy 5
	if [[ -n $RESTORE_MAX_CONNECTIONS ]]; then
		admin_sql "$NODE_W" -e "SET GLOBAL max_connections=$RESTORE_MAX_CONNECTIONS" &&
			say "node $W: max_connections restored to $RESTORE_MAX_CONNECTIONS"
	fi
	[[ -n ${RUN_DIR:-} ]] && rm -f "$RUN_DIR/idleconns" "$RUN_DIR/connbench" "$RUN_DIR"/idleconns-*.fifo
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------- tools install

install_tools() {
	local missing=()
	command -v sysbench >/dev/null || missing+=(sysbench)
	command -v haproxy >/dev/null || missing+=(haproxy)
	command -v mariadb >/dev/null || missing+=(mariadb-client)
	((${#missing[@]} == 0)) && return 0
	[[ $(id -u) == 0 ]] || die "missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root"
	say "installing ${missing[*]} from Debian (services kept stopped)"
	apt_install "${missing[@]}"
	# If something started the packaged service anyway, say so (it uses
	# /etc/haproxy/haproxy.cfg, which binds nothing of ours).
	if pgrep -x haproxy >/dev/null; then
		say "warning: a haproxy process is running besides ours: $(pgrep -ax haproxy | head -3 | tr '\n' ';')"
	fi
}

# ------------------------------------------------------------------- phases

start_time=$(date +%s)
start_load=$(cut -d' ' -f1-3 /proc/loadavg)
install_tools

if [[ ${BENCH_SKIP_PAIR_UP:-0} != 1 ]]; then
	say "scripts/pair.sh up"
	scripts/pair.sh up >&2 || die "scripts/pair.sh up failed"
fi
choose_writer
wait_pair
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
	say "go build -o bin/tandem ./cmd/tandem"
	go build -o bin/tandem ./cmd/tandem || die "building tandem failed"
fi
[[ -x bin/tandem ]] || die "bin/tandem missing"

stamp=$(date +%Y%m%d-%H%M%S)
RUN_DIR=$RESULTS_BASE/$stamp
[[ $RESULTS_BASE == /* ]] || RUN_DIR=$ROOT/$RUN_DIR
mkdir -p "$RUN_DIR/runs"
say "results in $RUN_DIR"
go build -o "$RUN_DIR/idleconns" ./scripts/idleconns || die "building scripts/idleconns failed"
go build -o "$RUN_DIR/connbench" ./scripts/connbench || die "building scripts/connbench failed"

{
	echo "date: $(date -Is)"
	echo "git: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' (work tree has changes)')"
	echo "host: $(nproc) cores, $(uname -r)"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "busiest processes at start:"
	ps -eo pcpu,etime,args --sort=-pcpu | sed -n '2,6p' | cut -c1-150 | sed 's/^/    /'
	echo "sysbench: $(sysbench --version)"
	echo "haproxy: $(haproxy -v | head -1)"
	echo "mariadb: $(admin_sql "$NODE_W" -e 'SELECT @@version')"
	echo "writable node: $W ($NODE_W)"
	echo "settings: seconds=$SECONDS_PER_RUN rounds=$ROUNDS threads='$THREADS' tests='$TESTS' conn_tests='$CONN_TESTS' conn_clients='$CONN_CLIENTS' tables=$TABLES table_size=$TABLE_SIZE warmup=$WARMUP idle_conns=$IDLE_CONNS ignore_errors=$IGNORE_ERRORS tandem_max_procs=$TANDEM_MAX_PROCS"
	echo "node $W threads_connected at start: $(admin_sql "$NODE_W" -e "SHOW GLOBAL STATUS LIKE 'Threads_connected'" | cut -f2)"
	echo "node $W semi-sync master status at start: $(admin_sql "$NODE_W" -e "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'" | cut -f2)"
} >"$RUN_DIR/notes.txt"

# --- the node must take the idle sessions of one proxy plus sysbench.
max_conn=$(admin_sql "$NODE_W" -e 'SELECT @@max_connections')
echo "node $W max_connections: $max_conn" >>"$RUN_DIR/notes.txt"
if ((IDLE_CONNS > 0 && max_conn < NEED_MAX_CONNECTIONS)); then
	say "node $W allows only $max_conn connections (< $NEED_MAX_CONNECTIONS): raising to $SET_MAX_CONNECTIONS for the run"
	echo "raised node $W max_connections $max_conn -> $SET_MAX_CONNECTIONS for the run (restored at exit)" >>"$RUN_DIR/notes.txt"
	admin_sql "$NODE_W" -e "SET GLOBAL max_connections=$SET_MAX_CONNECTIONS"
	RESTORE_MAX_CONNECTIONS=$max_conn
fi

# --- HAProxy's check user: created on the writable node only and replicated
# (IF NOT EXISTS is harmless on the other node if it already has it).
admin_sql "$NODE_W" -e "CREATE USER IF NOT EXISTS 'haproxy'@'127.0.0.1'" 2>/dev/null ||
	die "cannot create haproxy@127.0.0.1 on node $W"

# --- sysbench tables, prepared once directly on the writable node.
sb_common=(--db-driver=mysql --mysql-user="$APP_USER" --mysql-password="$APP_PASSWORD"
	--mysql-db="$DB" --mysql-ssl=off --tables="$TABLES" --table-size="$TABLE_SIZE")
tables_ok=1
for ((t = 1; t <= TABLES; t++)); do
	n=$(admin_sql "$NODE_W" -e "SELECT COUNT(*) FROM $DB.sbtest$t" 2>/dev/null || echo -1)
	# oltp_read_write's delete/insert pairs make the row count drift up a
	# little; only a missing or clearly different table is prepared again.
	[[ $n =~ ^[0-9]+$ ]] && ((n >= TABLE_SIZE * 9 / 10 && n <= TABLE_SIZE * 3 / 2)) || { tables_ok=0; break; }
done
if ((!tables_ok)); then
	say "preparing $TABLES sysbench tables of $TABLE_SIZE rows on node $W"
	sb_a=(--mysql-host="$(host_of "$NODE_W")" --mysql-port="$(port_of "$NODE_W")")
	timeout 120 sysbench oltp_read_write "${sb_common[@]}" "${sb_a[@]}" cleanup >"$RUN_DIR/prepare.log" 2>&1 || true
	timeout 300 sysbench oltp_read_write "${sb_common[@]}" "${sb_a[@]}" prepare >>"$RUN_DIR/prepare.log" 2>&1 ||
		die "sysbench prepare failed; see $RUN_DIR/prepare.log"
else
	say "sysbench tables already prepared ($TABLES x ~$TABLE_SIZE rows)"
fi
pos=$(admin_sql "$NODE_W" -e 'SELECT @@gtid_binlog_pos')
if w=$(admin_sql "$NODE_P" -e "SELECT MASTER_GTID_WAIT('$pos', 25)" 2>&1); then
	if [[ $w == 0 ]]; then
		say "node $P has replicated node $W up to $pos"
	else
		say "warning: node $P did not reach $pos within 25s (replication broken?)"
		echo "node $P did not replicate node $W's position $pos within 25s" >>"$RUN_DIR/notes.txt"
	fi
else
	say "warning: node $P ($NODE_P): $w"
	echo "node $P could not be asked to wait for $pos: $w" >>"$RUN_DIR/notes.txt"
fi

# --- HAProxy, our own process in the foreground mode (-db), our config.
start_haproxy() {
	BENCH_HAPROXY_LISTEN=$HAPROXY_LISTEN BENCH_PRIMARY=$NODE_W BENCH_BACKUP=$NODE_P \
		haproxy -db -f "$ROOT/testdata/haproxy.cfg" >>"$RUN_DIR/haproxy.log" 2>&1 &
	HAPROXY_PID=$!
	echo "$HAPROXY_PID" >"$RUN_DIR/haproxy.pid"
}
# --- tandem with a config written here: tandem_config LISTEN ADMIN NAME
# POOLED (NAME keeps its state file and schema apart; POOLED 1 pools the
# benchmark account's node sessions).
tandem_config() {
	cat <<EOF
# Written by scripts/bench.sh.
[log]
level = "warn"
format = "text"

[proxy]
listen = ["$1"]
max_connections = 4096
shutdown_timeout = "5s"
# Like HAProxy's nbthread 1: one core for the proxy on a 2-core box shared
# with the client and both nodes (BENCH_TANDEM_MAX_PROCS; 0 = all cores).
max_procs = $TANDEM_MAX_PROCS

[admin]
listen = "$2"

[[user]]
name = "$APP_USER"
password = "$APP_PASSWORD"

# Plaintext to the nodes, as sysbench directly and HAProxy's TCP relay are:
# the comparison is of relaying. (The pair offers TLS, which the default,
# preferred, would use.)
[[node]]
name = "a"
address = "$NODE_A"
tls = "off"

[[node]]
name = "b"
address = "$NODE_B"
tls = "off"

# The monitor runs as in production (checks every 250ms, heartbeat writes on
# the active node), but the pair is shared with tests and demos: this
# instance keeps its own state file and schema, and a fail_after this large
# (~7 hours of failed checks) keeps it from ever fencing or promoting a node.
[failover]
initial_active = "$W"
state_file = "$RUN_DIR/$3-state.json"
admin_user = "$ADMIN_USER"
admin_password = "$ADMIN_PASSWORD"
schema = "tandem_bench${3#tandem}"
fail_after = 100000
EOF
	if (($4)); then
		cat <<EOF

# Pooled node sessions for the benchmark's account (defaults otherwise).
[pool]
users = ["$APP_USER"]
EOF
	fi
}
tandem_config "$TANDEM_LISTEN" "$ADMIN_LISTEN" tandem 0 >"$RUN_DIR/tandem.toml"
tandem_config "$POOL_LISTEN" "$POOL_ADMIN_LISTEN" tandem_pool 1 >"$RUN_DIR/pooled.toml"
start_tandem() {
	bin/tandem serve -config "$RUN_DIR/tandem.toml" >>"$RUN_DIR/tandem.log" 2>&1 &
	TANDEM_PID=$!
	echo "$TANDEM_PID" >"$RUN_DIR/tandem.pid"
}
start_pooled() {
	bin/tandem serve -config "$RUN_DIR/pooled.toml" >>"$RUN_DIR/pooled.log" 2>&1 &
	POOL_PID=$!
	echo "$POOL_PID" >"$RUN_DIR/pooled.pid"
}
wait_ready() { # target pid
	local addr pid=$2 i
	addr=$(target_addr "$1")
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || die "$1 exited at start; see $RUN_DIR/$1.log: $(tail -5 "$RUN_DIR/$1.log")"
		app_ping "$addr" && return 0
		sleep 0.1
	done
	die "$1 on $addr did not let $APP_USER log in within 10s; see $RUN_DIR/$1.log"
}
ports=("$(port_of "$HAPROXY_LISTEN")" "$(port_of "$TANDEM_LISTEN")" "$(port_of "$ADMIN_LISTEN")")
((POOL)) && ports+=("$(port_of "$POOL_LISTEN")" "$(port_of "$POOL_ADMIN_LISTEN")")
for port in "${ports[@]}"; do
	if ss -Hltn "sport = :$port" | grep -q .; then
		die "port $port is already in use: $(ss -Hltnp "sport = :$port" | head -1)"
	fi
done
start_haproxy
start_tandem
((POOL)) && start_pooled
wait_ready haproxy "$HAPROXY_PID"
wait_ready tandem "$TANDEM_PID"
say "haproxy (pid $HAPROXY_PID) on $HAPROXY_LISTEN and tandem (pid $TANDEM_PID) on $TANDEM_LISTEN are up"
if ((POOL)); then
	wait_ready pooled "$POOL_PID"
	say "pooled tandem (pid $POOL_PID) on $POOL_LISTEN is up"
fi

# ------------------------------------------------------------------- memory

MEM_FILE=$RUN_DIR/memory.tsv
printf 'target\tsessions\trss_idle_kib\trss_with_sessions_kib\tper_session_kib\tnode_threads_connected\n' >"$MEM_FILE"
measure_memory() { # target pid
	local target=$1 pid=$2 addr base with out fifo i ready=0 threads
	addr=$(target_addr "$target")
	out=$RUN_DIR/idleconns-$target.log
	fifo=$RUN_DIR/idleconns-$target.fifo
	sleep 1
	base=$(vmrss_kib "$pid")
	rm -f "$fifo"
	mkfifo "$fifo"
	"$RUN_DIR/idleconns" -addr "$addr" -user "$APP_USER" -password "$APP_PASSWORD" -db "$DB" \
		-n "$IDLE_CONNS" -hold 120s <"$fifo" >"$out" 2>&1 &
	IDLE_PID=$!
	exec 9>"$fifo" # idleconns holds while this stays open
	for ((i = 0; i < 900; i++)); do
		if grep -q '^ready' "$out"; then
			ready=1
			break
		fi
		kill -0 "$IDLE_PID" 2>/dev/null || break
		sleep 0.1
	done
	if ((ready)); then
		sleep 2 # let the proxy settle
		with=$(vmrss_kib "$pid")
		threads=$(admin_sql "$NODE_W" -e "SHOW GLOBAL STATUS LIKE 'Threads_connected'" 2>/dev/null | cut -f2 || true)
	fi
	exec 9>&-
	local rc=0
	wait "$IDLE_PID" || rc=$?
	IDLE_PID=
	rm -f "$fifo"
	if ((!ready || rc != 0)); then
		say "memory: $IDLE_CONNS idle sessions through $target failed: $(tail -3 "$out" | tr '\n' ' ')"
		printf '%s\t%s\t%s\tFAILED\t-\t-\n' "$target" "$IDLE_CONNS" "$base" >>"$MEM_FILE"
		echo "memory through $target FAILED: $(tail -3 "$out" | tr '\n' ' ')" >>"$RUN_DIR/notes.txt"
		return 0
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$IDLE_CONNS" "$base" "$with" \
		"$(awk -v a="$base" -v b="$with" -v n="$IDLE_CONNS" 'BEGIN{printf "%.1f", (b-a)/n}')" "$threads" >>"$MEM_FILE"
	say "memory: $target RSS ${base} KiB idle, ${with} KiB with $IDLE_CONNS sessions"
}
if ((IDLE_CONNS > 0)); then
	say "memory: opening $IDLE_CONNS idle logged-in sessions through each proxy"
	measure_memory haproxy "$HAPROXY_PID"
	measure_memory tandem "$TANDEM_PID"
	sleep 1 # let the node reap the closed sessions
fi

# ------------------------------------------------------------------ sysbench

RAW=$RUN_DIR/raw.tsv
printf 'test\tthreads\tround\ttarget\ttps\tp95_ms\tignored_errors\treconnects\tload1\tstatus\tproxy_cpu_s\ttransactions\tnode_cpu_s\tclient_cpu_us_per_txn\n' >"$RAW"
FAILURES=$RUN_DIR/failures.txt
: >"$FAILURES"

# run_sysbench test threads seconds target logfile: sysbench's exit code.
run_sysbench() {
	local test=$1 threads=$2 secs=$3 target=$4 log=$5 addr
	addr=$(target_addr "$target")
	timeout --kill-after=5 $((secs + 60)) sysbench "$test" "${sb_common[@]}" \
		--mysql-host="$(host_of "$addr")" --mysql-port="$(port_of "$addr")" \
		--db-ps-mode=auto --mysql-ignore-errors="$IGNORE_ERRORS" \
		--threads="$threads" --time="$secs" --events=0 --report-interval=0 \
		--percentile=95 run >"$log" 2>&1
}

# run_connbench work clients seconds target logfile: connect-per-request
# (scripts/connbench prints its result in sysbench's words).
run_connbench() {
	local work=$1 clients=$2 secs=$3 target=$4 log=$5
	timeout --kill-after=5 $((secs + 60)) "$RUN_DIR/connbench" -addr "$(target_addr "$target")" \
		-user "$APP_USER" -password "$APP_PASSWORD" -db "$DB" -tables "$TABLES" -table-size "$TABLE_SIZE" \
		-work "$work" -clients "$clients" -duration "${secs}s" >"$log" 2>&1
}

# A proxy that died is reported and restarted so the other runs go on.
ensure_alive() { # target
	local pid
	case $1 in haproxy) pid=$HAPROXY_PID ;; tandem) pid=$TANDEM_PID ;; pooled) pid=$POOL_PID ;; *) return 0 ;; esac
	kill -0 "$pid" 2>/dev/null && return 0
	local rc=0
	wait "$pid" 2>/dev/null || rc=$?
	say "$1 (pid $pid) DIED (exit code $rc); restarting it"
	echo "$1 (pid $pid) died with exit code $rc during the runs; restarted" | tee -a "$FAILURES" >>"$RUN_DIR/notes.txt"
	case $1 in
	haproxy) start_haproxy && wait_ready haproxy "$HAPROXY_PID" ;;
	tandem) start_tandem && wait_ready tandem "$TANDEM_PID" ;;
	pooled) start_pooled && wait_ready pooled "$POOL_PID" ;;
	esac
}

if ((WARMUP > 0)); then
	say "warm-up: oltp_read_write, 8 threads, ${WARMUP}s per target"
	warm=("${TARGETS[@]}")
	((POOL)) && warm+=(pooled) # fills its pool too
	for target in "${warm[@]}"; do
		run_sysbench oltp_read_write 8 "$WARMUP" "$target" "$RUN_DIR/runs/warmup-$target.log" ||
			say "warning: warm-up through $target failed: $(grep -m1 -E 'FATAL|error' "$RUN_DIR/runs/warmup-$target.log")"
		ensure_alive "$target"
	done
fi

total_runs=0
# The (test, threads) pairs: sysbench's tests at BENCH_THREADS, then the
# connect-per-request ones (scripts/connbench) at BENCH_CONN_CLIENTS.
CASES=()
for test in $TESTS; do for threads in $THREADS; do CASES+=("$test $threads"); done; done
for test in $CONN_TESTS; do for threads in $CONN_CLIENTS; do CASES+=("$test $threads"); done; done
((${#CASES[@]} > 0)) || die "nothing to run: BENCH_TESTS and BENCH_CONN_TESTS are both empty"
for case in "${CASES[@]}"; do
	if [[ $case == connect_* ]]; then
		total_runs=$((total_runs + ROUNDS * ${#CONN_TARGETS[@]}))
	else
		total_runs=$((total_runs + ROUNDS * ${#TARGETS[@]}))
	fi
done
# The writable node's mariadbd, for its CPU per request ("-" if the pid file
# is not the pair's).
node_pid() {
	local pid
	pid=$(cat "$PAIR_DIR/$W/mysqld.pid" 2>/dev/null || true)
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
	return 0
}
run_no=0
for case in "${CASES[@]}"; do
	read -r test threads <<<"$case"
	targets=("${TARGETS[@]}")
	[[ $test == connect_* ]] && targets=("${CONN_TARGETS[@]}")
	for ((round = 1; round <= ROUNDS; round++)); do
		for ((k = 0; k < ${#targets[@]}; k++)); do
			target=${targets[$(((k + round - 1) % ${#targets[@]}))]}
			run_no=$((run_no + 1))
			log=$RUN_DIR/runs/$test-t$threads-r$round-$target.log
			# A run during which the node restarted or was demoted says
			# nothing about the proxies: it is repeated once, then
			# recorded as "pair-changed" and left out of the medians.
			for attempt in 1 2; do
				wait_pair
				load=$(cut -d' ' -f1 /proc/loadavg)
				tlines=$(wc -l <"$RUN_DIR/tandem.log")
				plines=0
				[[ -f $RUN_DIR/pooled.log ]] && plines=$(wc -l <"$RUN_DIR/pooled.log")
				rc=0
				ppid=
				case $target in haproxy) ppid=$HAPROXY_PID ;; tandem) ppid=$TANDEM_PID ;; pooled) ppid=$POOL_PID ;; esac
				cpu0=0
				[[ -n $ppid ]] && cpu0=$(cpu_ticks "$ppid")
				npid=$(node_pid)
				ncpu0=0
				[[ -n $npid ]] && ncpu0=$(cpu_ticks "$npid")
				if [[ $test == connect_* ]]; then
					run_connbench "${test#connect_}" "$threads" "$SECONDS_PER_RUN" "$target" "$log" || rc=$?
				else
					run_sysbench "$test" "$threads" "$SECONDS_PER_RUN" "$target" "$log" || rc=$?
				fi
				cpu=-
				[[ -n $ppid ]] && cpu=$(awk -v a="$cpu0" -v b="$(cpu_ticks "$ppid")" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz}')
				ncpu=-
				[[ -n $npid ]] && ncpu=$(awk -v a="$ncpu0" -v b="$(cpu_ticks "$npid")" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz}')
				disturbed=0
				pair_changed && disturbed=1
				((disturbed && attempt == 1)) || break
				cp "$log" "${log%.log}-disturbed.log"
				echo "$test threads=$threads round=$round target=$target: node $W restarted or turned read-only during the run; repeated" >>"$RUN_DIR/notes.txt"
				say "node $W restarted or turned read-only during the run: repeating it"
				ensure_alive "$target"
			done
			tps=$(sed -nE 's/^ *transactions: *[0-9]+ +\(([0-9.]+) per sec\.\).*/\1/p' "$log" | head -1)
			p95=$(sed -nE 's/^ *95th percentile: *([0-9.]+).*/\1/p' "$log" | head -1)
			ign=$(sed -nE 's/^ *ignored errors: *([0-9]+).*/\1/p' "$log" | head -1)
			rec=$(sed -nE 's/^ *reconnects: *([0-9]+).*/\1/p' "$log" | head -1)
			txns=$(sed -nE 's/^ *transactions: *([0-9]+) +\(.*/\1/p' "$log" | head -1)
			ccpu=$(sed -nE 's/^ *client CPU per request: *([0-9.]+) us.*/\1/p' "$log" | head -1)
			status=ok
			if ((disturbed)); then
				status=pair-changed
				echo "$test threads=$threads round=$round target=$target: node $W changed again; left out" >>"$RUN_DIR/notes.txt"
			elif ((rc != 0)) || [[ -z $tps || -z $p95 ]] || grep -q FATAL "$log"; then
				status="fail(rc=$rc)"
				((rc == 124 || rc == 137)) && status="timeout(rc=$rc)"
				{
					echo "== $test threads=$threads round=$round target=$target: $status (log: ${log#"$ROOT"/})"
					grep -E 'FATAL|ALERT|error|Error' "$log" | head -10
					if [[ $target == tandem ]]; then
						echo "-- tandem log lines during the run:"
						tail -n +$((tlines + 1)) "$RUN_DIR/tandem.log" | head -40
					elif [[ $target == pooled ]]; then
						echo "-- pooled tandem log lines during the run:"
						tail -n +$((plines + 1)) "$RUN_DIR/pooled.log" | head -40
					fi
				} >>"$FAILURES"
			fi
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$test" "$threads" "$round" "$target" \
				"${tps:--}" "${p95:--}" "${ign:--}" "${rec:--}" "$load" "$status" "$cpu" "${txns:--}" "$ncpu" "${ccpu:--}" >>"$RAW"
			say "[$run_no/$total_runs] $test threads=$threads round=$round $target: tps=${tps:--} p95=${p95:--}ms load=$load $status"
			ensure_alive "$target"
		done
	done
done

# ------------------------------------------------------------------- report

# Medians over the successful rounds, one row per (test, threads, target).
SUMMARY=$RUN_DIR/summary.tsv
# Functions for the awk programs below. median(s): the median of the numbers
# in the space-separated string s ("" if none). ratio(a, b): a/b to two
# places, "-" when either is missing ("" or "-") or b is 0.
AWK_FUNCS='
function ratio(a, b) { return (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) ? "-" : sprintf("%.2f", a / b) }
function median(s,   a, n, t, i, j) {
	n = split(s, a, " ")
	if (n == 0) return ""
	# insertion sort: a handful of values
	for (i = 2; i <= n; i++) { t = a[i] + 0; j = i - 1; while (j >= 1 && a[j] + 0 > t) { a[j + 1] = a[j]; j-- } a[j + 1] = t }
	return (n % 2) ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}'
awk -F'\t' "$AWK_FUNCS"'
NR == 1 { next }
{
	k = $1 SUBSEP $2 SUBSEP $4
	if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
	runs[k]++
	if ($10 == "ok") {
		ok[k]++; tps[k] = tps[k] " " $5; p95[k] = p95[k] " " $6; ign[k] += $7
		if ($11 != "-" && $12 + 0 > 0) cpu[k] = cpu[k] " " ($11 * 1e6 / $12)
		if ($13 != "-" && $13 != "" && $12 + 0 > 0) ncpu[k] = ncpu[k] " " ($13 * 1e6 / $12)
		if ($14 != "-" && $14 != "") ccpu[k] = ccpu[k] " " $14
	}
}
END {
	print "test\tthreads\ttarget\tmedian_tps\tmedian_p95_ms\tok_runs\truns\tretried_lock_errors\tproxy_cpu_us_per_txn\tnode_cpu_us_per_txn\tclient_cpu_us_per_txn"
	for (i = 1; i <= nk; i++) {
		k = order[i]; split(k, f, SUBSEP)
		mt = median(tps[k]); mp = median(p95[k]); mc = median(cpu[k]); mn = median(ncpu[k]); mcl = median(ccpu[k])
		printf "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", f[1], f[2], f[3], (mt == "" ? "-" : sprintf("%.2f", mt)), (mp == "" ? "-" : sprintf("%.2f", mp)), ok[k], runs[k], ign[k], (mc == "" ? "-" : sprintf("%.1f", mc)), (mn == "" ? "-" : sprintf("%.1f", mn)), (mcl == "" ? "-" : sprintf("%.1f", mcl))
	}
}' "$RAW" >"$SUMMARY"

# One row per (test, threads): the three targets side by side with ratios.
compare() { # text|md
	awk -F'\t' -v fmt="$1" "$AWK_FUNCS"'
	NR == 1 { next }
	{
		k = $1 SUBSEP $2
		if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
		tps[k, $3] = $4; p95[k, $3] = $5; okr[k, $3] = $6 "/" $7
	}
	function delta(a, b) { return (a == "-" || b == "-") ? "-" : sprintf("%+.2f", a - b) }
	function mark(k, t,   f) { split(okr[k, t], f, "/"); return (f[1] == f[2]) ? "" : " (" t " " okr[k, t] " ok)" }
	END {
		if (fmt == "md") {
			print "| test | threads | direct tps | HAProxy tps | tandem tps | tandem/direct | tandem/HAProxy | direct p95 ms | HAProxy p95 ms | tandem p95 ms | p95 tandem − HAProxy ms |"
			print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		} else {
			printf "%-18s %7s %10s %10s %10s %7s %7s %8s %8s %8s %8s\n", "test", "threads", "direct", "haproxy", "tandem", "t/d", "t/h", "p95 d", "p95 h", "p95 t", "t-h p95"
			printf "%-18s %7s %10s %10s %10s %7s %7s %8s %8s %8s %8s\n", "", "", "tps", "tps", "tps", "tps", "tps", "ms", "ms", "ms", "ms"
		}
		for (i = 1; i <= nk; i++) {
			k = order[i]; split(k, f, SUBSEP)
			d = tps[k, "direct"]; h = tps[k, "haproxy"]; t = tps[k, "tandem"]
			pd = p95[k, "direct"]; ph = p95[k, "haproxy"]; pt = p95[k, "tandem"]
			note = mark(k, "direct") mark(k, "haproxy") mark(k, "tandem")
			if (fmt == "md")
				printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", f[1], f[2], d, h, t, ratio(t, d), ratio(t, h), pd, ph, pt, delta(pt, ph)
			else
				printf "%-18s %7s %10s %10s %10s %7s %7s %8s %8s %8s %8s%s\n", f[1], f[2], d, h, t, ratio(t, d), ratio(t, h), pd, ph, pt, delta(pt, ph), note
		}
	}' "$SUMMARY"
}
# Proxy CPU time per sysbench transaction (median over rounds): what the
# extra hop costs on the shared cores, independent of how busy they were.
cpu_table() { # text|md
	awk -F'\t' -v fmt="$1" "$AWK_FUNCS"'
	NR == 1 { next }
	$3 == "haproxy" || $3 == "tandem" {
		k = $1 SUBSEP $2
		if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
		c[k, $3] = $9
	}
	END {
		if (fmt == "md") {
			print "| test | threads | HAProxy CPU µs/txn | tandem CPU µs/txn | tandem/HAProxy |"
			print "|---|---:|---:|---:|---:|"
		} else
			printf "%-18s %7s %12s %12s %8s\n", "test", "threads", "haproxy us", "tandem us", "t/h"
		for (i = 1; i <= nk; i++) {
			k = order[i]; split(k, f, SUBSEP); h = c[k, "haproxy"]; t = c[k, "tandem"]
			r = ratio(t, h)
			if (fmt == "md") printf "| %s | %s | %s | %s | %s |\n", f[1], f[2], h, t, r
			else printf "%-18s %7s %12s %12s %8s\n", f[1], f[2], h, t, r
		}
	}' "$SUMMARY"
}
memory_table() { # text|md
	awk -F'\t' -v fmt="$1" '
	NR == 1 { if (fmt == "md") { print "| proxy | idle RSS KiB | RSS with sessions KiB | sessions | KiB per session |"; print "|---|---:|---:|---:|---:|" }
	          else printf "%-8s %14s %22s %9s %16s\n", "proxy", "idle RSS KiB", "RSS with sessions KiB", "sessions", "KiB per session"; next }
	{ if (fmt == "md") printf "| %s | %s | %s | %s | %s |\n", $1, $3, $4, $2, $5
	  else printf "%-8s %14s %22s %9s %16s\n", $1, $3, $4, $2, $5 }' "$MEM_FILE"
}

# The ratios within each round (the targets ran one after the other), median
# over the rounds: steadier than the ratio of each target's own median when
# the load moves between rounds.
round_ratio_table() { # text|md
	awk -F'\t' -v fmt="$1" "$AWK_FUNCS"'
	function show(s,   m) { m = median(s); return m == "" ? "-" : sprintf("%.2f", m) }
	function span(s,   a, n, i, lo, hi) {
		n = split(s, a, " "); if (n == 0) return "-"
		lo = hi = a[1] + 0
		for (i = 2; i <= n; i++) { if (a[i] + 0 < lo) lo = a[i] + 0; if (a[i] + 0 > hi) hi = a[i] + 0 }
		return sprintf("%.2f–%.2f", lo, hi)
	}
	NR == 1 { next }
	$10 == "ok" {
		k = $1 SUBSEP $2
		if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
		v[k, $3, $4] = $5; rounds[k, $3] = 1; if ($3 + 0 > maxr) maxr = $3 + 0
	}
	END {
		if (fmt == "md") { print "| test | threads | tandem/HAProxy | single rounds | pooled/direct | single rounds |"; print "|---|---:|---:|---|---:|---|" }
		else printf "%-18s %7s %8s %12s %8s %12s\n", "test", "threads", "t/h", "rounds", "p/d", "rounds"
		for (i = 1; i <= nk; i++) {
			k = order[i]; split(k, f, SUBSEP); th = ""; pd = ""
			for (r = 1; r <= maxr; r++) {
				if (!((k, r) in rounds)) continue
				if (v[k, r, "tandem"] != "" && v[k, r, "haproxy"] + 0 > 0) th = th " " v[k, r, "tandem"] / v[k, r, "haproxy"]
				if (v[k, r, "pooled"] != "" && v[k, r, "direct"] + 0 > 0) pd = pd " " v[k, r, "pooled"] / v[k, r, "direct"]
			}
			if (fmt == "md") printf "| %s | %s | %s | %s | %s | %s |\n", f[1], f[2], show(th), span(th), show(pd), span(pd)
			else printf "%-18s %7s %8s %12s %8s %12s\n", f[1], f[2], show(th), span(th), show(pd), span(pd)
		}
	}' "$RAW"
}
# Connect-per-request with pooled node sessions: the pooled tandem against
# direct connections and the plain tandem (issue 13: >= 1.5x direct).
pooled_table() { # text|md
	awk -F'\t' -v fmt="$1" "$AWK_FUNCS"'
	NR == 1 { next }
	$1 ~ /^connect_/ {
		k = $1 SUBSEP $2
		if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
		tps[k, $3] = $4; p95[k, $3] = $5
	}
	END {
		if (fmt == "md") {
			print "| test | clients | direct req/s | tandem req/s | pooled req/s | pooled/direct | pooled/tandem | direct p95 ms | pooled p95 ms |"
			print "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
		} else
			printf "%-16s %7s %10s %10s %10s %7s %7s %8s %8s\n", "test", "clients", "direct", "tandem", "pooled", "p/d", "p/t", "p95 d", "p95 p"
		for (i = 1; i <= nk; i++) {
			k = order[i]; split(k, f, SUBSEP)
			d = tps[k, "direct"]; t = tps[k, "tandem"]; p = tps[k, "pooled"]
			if (fmt == "md") printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", f[1], f[2], d, t, p, ratio(p, d), ratio(p, t), p95[k, "direct"], p95[k, "pooled"]
			else printf "%-16s %7s %10s %10s %10s %7s %7s %8s %8s\n", f[1], f[2], d, t, p, ratio(p, d), ratio(p, t), p95[k, "direct"], p95[k, "pooled"]
		}
	}' "$SUMMARY"
}
# Where the CPU of a connect-per-request goes (medians, µs per request): the
# load generator, the proxy, the node; with 2 shared cores the rate cannot
# pass 2 s of CPU per second over their sum ("bound").
accounting_table() { # text|md
	awk -F'\t' -v fmt="$1" '
	BEGIN {
		if (fmt == "md") { print "| test | clients | target | client µs | proxy µs | node µs | together µs | bound req/s | measured req/s |"; print "|---|---:|---|---:|---:|---:|---:|---:|---:|" }
		else printf "%-16s %7s %-8s %8s %8s %8s %8s %8s %10s\n", "test", "clients", "target", "client", "proxy", "node", "sum", "bound", "measured"
	}
	NR == 1 || $1 !~ /^connect_/ { next }
	{
		proxy = ($3 == "direct") ? 0 : $9
		sum = ($11 == "-" || $10 == "-" || proxy == "-") ? "-" : sprintf("%.0f", $11 + proxy + $10)
		bound = (sum == "-" || sum + 0 == 0) ? "-" : sprintf("%.0f", 2e6 / sum)
		if (fmt == "md") printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $11, proxy, $10, sum, bound, $4
		else printf "%-16s %7s %-8s %8s %8s %8s %8s %8s %10s\n", $1, $2, $3, $11, proxy, $10, sum, bound, $4
	}' "$SUMMARY"
}

elapsed=$(($(date +%s) - start_time))
{
	echo "tandem benchmark $(date -Is) — $SECONDS_PER_RUN s per run, $ROUNDS round(s), medians; $(nproc) cores (see the caveat in scripts/bench.sh)"
	echo "load average at start: $start_load; at end: $(cut -d' ' -f1-3 /proc/loadavg) (per-run load in raw.tsv; above ~1 before the start, other work was competing for the cores)"
	if grep -q 'pair-changed\|repeated' "$RUN_DIR/notes.txt"; then
		echo "note: node $W restarted or turned read-only during some runs (see notes.txt): repeated or left out"
	fi
	echo
	echo "Per target (median over ok rounds):"
	column -t -s $'\t' "$SUMMARY"
	echo
	echo "Comparison (t/d = tandem/direct, t/h = tandem/haproxy, t-h p95 = tandem p95 - haproxy p95):"
	compare text
	echo
	echo "Ratios within each round, median over the rounds (t/h = tandem/haproxy, p/d = pooled/direct):"
	round_ratio_table text
	echo
	echo "Proxy CPU time per transaction (user+system, median):"
	cpu_table text
	if grep -q $'\tpooled\t' "$SUMMARY"; then
		echo
		echo "Connect per request with pooled node sessions (p/d = pooled/direct, p/t = pooled/tandem):"
		pooled_table text
	fi
	if grep -q '^connect_' "$SUMMARY"; then
		echo
		echo "CPU per connect-per-request (us, medians; bound = 2 cores / sum):"
		accounting_table text
	fi
	if ((IDLE_CONNS > 0)); then
		echo
		echo "Memory (VmRSS), $IDLE_CONNS idle logged-in sessions:"
		memory_table text
	fi
	echo
	echo "Markdown:"
	echo
	compare md
	echo
	round_ratio_table md
	echo
	cpu_table md
	if grep -q $'\tpooled\t' "$SUMMARY"; then
		echo
		pooled_table md
	fi
	if grep -q '^connect_' "$SUMMARY"; then
		echo
		accounting_table md
	fi
	if ((IDLE_CONNS > 0)); then
		echo
		memory_table md
	fi
	echo
	if [[ -s $FAILURES ]]; then
		echo "FAILURES ($(grep -c '^==' "$FAILURES") run(s); details in ${FAILURES#"$ROOT"/}):"
		cat "$FAILURES"
		echo
	fi
	echo "elapsed: ${elapsed}s; raw results: ${RAW#"$ROOT"/}; logs: ${RUN_DIR#"$ROOT"/}"
} | tee "$RUN_DIR/summary.txt"
[[ ! -s $FAILURES ]] || exit 3
