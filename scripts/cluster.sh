#!/usr/bin/env bash
# cluster.sh — three "hosts" on one machine for testing several tandems:
# network namespaces host1, host2 and witness, wired to a bridge that lives in
# a fourth namespace (the switch), each running one etcd member. Nothing is
# added to the machine's own network namespace: the addresses exist only
# inside these namespaces. Needs root and iproute2.
#
# Usage: scripts/cluster.sh up | demo | down [--purge] | status | env
#                           exec HOST CMD [ARGS...]
#                           partition HOST | heal HOST
#                           kill HOST [SERVICE] | start HOST [SERVICE]
#                           stop HOST SERVICE | cont HOST SERVICE
#                           leader HOST
#   HOST is host1, host2 or witness; SERVICE is etcd, node or tandem (host1
#   runs node a, host2 node b; the witness only etcd).
#
#   up         creates the namespaces and links (if missing), starts every
#              etcd member that is not running, waits until all are healthy.
#   demo       up, then the MariaDB pair (node a in host1, node b in host2,
#              initialised the first time: a writable, b read-only) and a
#              tandem in host1 and in host2; moves etcd's leader to the
#              witness; prints how to connect. What runs is left running.
#   down       stops the tandems and nodes, kills every process in the
#              namespaces and deletes them; --purge also deletes the data
#              directory.
#   exec       runs CMD inside HOST's namespace (its environment is kept).
#   partition  cuts HOST off the others: the switch's port to it goes down,
#              so its packets are silently lost (its own processes still
#              reach each other).
#   heal       brings that port back up.
#   kill       SIGKILLs every process in HOST's namespace (a host dying), or
#              only SERVICE.
#   start      starts HOST's etcd member again (data kept) and, once `demo`
#              set them up, its node and tandem; or only SERVICE.  A node
#              starts read-only with its replica threads stopped
#              (skip_slave_start): the coordinator tandem starts them.
#   stop/cont  SIGSTOP / SIGCONT SERVICE on HOST (hung, not dead).
#   leader     makes HOST's etcd member the raft leader.
#   env        prints the exports a client inside the namespaces needs.
#
# Namespaces: ${TANDEM_CLUSTER_NS:-tdm}-host1, -host2, -witness, -sw (prefix:
# 1-6 lowercase letters or digits). Addresses: ${TANDEM_CLUSTER_NET:-10.77.0}.11,
# .12, .13 /24 (host1, host2, witness); etcd clients on :2379, peers on :2380.
# Data, logs and pid files under ${TANDEM_CLUSTER_DIR:-/tmp/tandem-cluster}/HOST/.
# etcd timing: heartbeat ${TANDEM_CLUSTER_HEARTBEAT:-50} ms, election
# ${TANDEM_CLUSTER_ELECTION:-500} ms (at most 666: minimum lease TTL 1 s).
# TANDEM_ETCD_BIN overrides the etcd binary (default bin/etcd, see
# scripts/etcd.sh build); TANDEM_CLUSTER_TIMEOUT (30) bounds waits, seconds.
#
# The pair (demo): nodes listen on HOST's address, port
# ${TANDEM_CLUSTER_NODE_PORT:-3307} (never 3306), with scripts/pair.sh's
# my.cnf (scripts/lib/mariadb.sh: GTIDs, semi-sync AFTER_SYNC both ways,
# read_only=ON and init_rpl_role=SLAVE at every start) and accounts
# app/apppass, tandem/tandem and repl/replpass for the hosts ${NET}.%;
# root over each node's unix socket, HOST/a|b/mysqld.sock. Node files
# under HOST/a (host1) and HOST/b (host2). Each tandem
# (${TANDEM_BIN:-bin/tandem}, built with `make build`) runs from
# HOST/tandem/tandem.toml (rewritten on every start), logs to
# HOST/tandem/tandem.log, listens on HOST's address and 127.0.0.1, port
# 3306, its admin API on HOST's address port 9306 with the token in
# admin.token, and joins etcd under prefix ${TANDEM_CLUSTER_PREFIX:-/tandem}
# with id host1 or host2 (lease_ttl 1s, preferred_leader witness).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NS=${TANDEM_CLUSTER_NS:-tdm}
NET=${TANDEM_CLUSTER_NET:-10.77.0}
DIR=${TANDEM_CLUSTER_DIR:-/tmp/tandem-cluster}
DIR=${DIR%/}
BIN=${TANDEM_ETCD_BIN:-$ROOT/bin/etcd}
WAIT_SECS=${TANDEM_CLUSTER_TIMEOUT:-30}
HOSTS=(host1 host2 witness)
NODE_PORT=${TANDEM_CLUSTER_NODE_PORT:-3307}
TANDEM_BIN=${TANDEM_BIN:-$ROOT/bin/tandem}
PREFIX=${TANDEM_CLUSTER_PREFIX:-/tandem}
HEARTBEAT=${TANDEM_CLUSTER_HEARTBEAT:-50}
ELECTION=${TANDEM_CLUSTER_ELECTION:-500}

say() { printf 'cluster: %s\n' "$*"; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }

[[ $NS =~ ^[a-z0-9]{1,6}$ ]] || die "TANDEM_CLUSTER_NS must be 1-6 lowercase letters or digits (got '$NS')"
[[ $NET =~ ^10\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "TANDEM_CLUSTER_NET must be the first three octets of a 10.x.y.0/24 (got '$NET')"
[[ $WAIT_SECS =~ ^[0-9]+$ ]] || die "TANDEM_CLUSTER_TIMEOUT must be whole seconds"
[[ $NODE_PORT =~ ^[0-9]+$ && $NODE_PORT != 3306 && $NODE_PORT != 2379 && $NODE_PORT != 2380 && $NODE_PORT != 9306 ]] ||
	die "TANDEM_CLUSTER_NODE_PORT must be a port other than 3306 (tandem's), 2379, 2380 and 9306 (got '$NODE_PORT')"
[[ $PREFIX =~ ^/[A-Za-z0-9._/-]*$ ]] || die "TANDEM_CLUSTER_PREFIX must be an etcd key prefix such as /tandem (got '$PREFIX')"
[[ $HEARTBEAT =~ ^[0-9]+$ && $ELECTION =~ ^[0-9]+$ && $ELECTION -ge $((5 * HEARTBEAT)) && $ELECTION -le 666 ]] ||
	die "TANDEM_CLUSTER_HEARTBEAT and TANDEM_CLUSTER_ELECTION must be milliseconds, the election at least 5 heartbeats and at most 666 (the tandems' lease_ttl is 1s) (got $HEARTBEAT, $ELECTION)"

host_index() {
	case ${1:-} in
	host1) echo 1 ;; host2) echo 2 ;; witness) echo 3 ;;
	*) die "HOST must be host1, host2 or witness (got '${1:-}')" ;;
	esac
}
ns_of() { echo "$NS-$1"; }
sw() { echo "$NS-sw"; }
ip_of() { echo "$NET.1$(host_index "$1")"; }
hdir() { echo "$DIR/$1"; }
endpoints() {
	local h out=""
	for h in "${HOSTS[@]}"; do out+="${out:+,}$(ip_of "$h"):2379"; done
	echo "$out"
}
ns_exists() { ip netns list | awk '{print $1}' | grep -qxF -- "$1"; }

need_root() {
	[[ $(id -u) == 0 ]] || die "needs root (network namespaces)"
	command -v ip >/dev/null || die "needs iproute2 (apt-get install iproute2)"
}

# ---------------------------------------------------------------- network

make_net() {
	local h i s
	s=$(sw)
	if ! ns_exists "$s"; then
		ip netns add "$s"
		ip -n "$s" link set lo up
		ip -n "$s" link add br0 type bridge
		ip -n "$s" link set br0 up
	fi
	for h in "${HOSTS[@]}"; do
		i=$(host_index "$h")
		ns_exists "$(ns_of "$h")" && continue
		ip netns add "$(ns_of "$h")"
		ip -n "$(ns_of "$h")" link set lo up
		# Both ends are created in the root namespace under unique names and
		# moved at once; no address is ever set outside the namespaces.
		ip link add "${NS}h${i}a" type veth peer name "${NS}h${i}b"
		ip link set "${NS}h${i}a" netns "$(ns_of "$h")"
		ip link set "${NS}h${i}b" netns "$s"
		ip -n "$(ns_of "$h")" link set "${NS}h${i}a" name eth0
		ip -n "$(ns_of "$h")" addr add "$(ip_of "$h")/24" dev eth0
		ip -n "$(ns_of "$h")" link set eth0 up
		ip -n "$s" link set "${NS}h${i}b" name "$h"
		ip -n "$s" link set "$h" master br0
		ip -n "$s" link set "$h" up
	done
}

# ---------------------------------------------------------------- etcd

member_pid() {
	local pf pid
	pf="$(hdir "$1")/etcd.pid"
	[[ -s $pf ]] || return 0
	pid=$(<"$pf")
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	{ tr '\0' '\n' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qxF -- "--data-dir=$(hdir "$1")/data" || return 0
	echo "$pid"
}

member_alive() {
	local pf pid
	pf="$(hdir "$1")/etcd.pid"
	[[ -s $pf ]] || return 1
	pid=$(<"$pf")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
		[[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

healthy() {
	ip netns exec "$(ns_of "$1")" curl -fsS --max-time 1 "http://$(ip_of "$1"):2379/health" 2>/dev/null | grep -q '"health":"true"'
}

start_member() {
	local h=$1 d cluster="" m token
	[[ -n $(member_pid "$h") ]] && return 0
	d=$(hdir "$h")
	mkdir -p "$d"
	for m in "${HOSTS[@]}"; do cluster+="${cluster:+,}$m=http://$(ip_of "$m"):2380"; done
	token="tandem-cluster-$(printf '%s' "$NS$DIR" | cksum | cut -d' ' -f1)"
	ip netns exec "$(ns_of "$h")" setsid "$BIN" --name="$h" --data-dir="$d/data" \
		--listen-client-urls="http://$(ip_of "$h"):2379,http://127.0.0.1:2379" \
		--advertise-client-urls="http://$(ip_of "$h"):2379" \
		--listen-peer-urls="http://$(ip_of "$h"):2380" \
		--initial-advertise-peer-urls="http://$(ip_of "$h"):2380" \
		--initial-cluster="$cluster" --initial-cluster-state=new --initial-cluster-token="$token" \
		--heartbeat-interval="$HEARTBEAT" --election-timeout="$ELECTION" \
		--log-level=warn </dev/null >>"$d/etcd.log" 2>&1 &
	echo $! >"$d/etcd.pid"
}

wait_healthy() {
	local deadline=$((SECONDS + WAIT_SECS)) h ok
	while :; do
		ok=1
		for h in "$@"; do
			member_alive "$h" || die "etcd on $h exited; see $(hdir "$h")/etcd.log"
			healthy "$h" || ok=0
		done
		[[ $ok == 1 ]] && return 0
		((SECONDS < deadline)) || die "etcd on $* not healthy after ${WAIT_SECS}s; see $DIR/*/etcd.log"
		sleep 0.1
	done
}

kill_ns() {
	local ns=$1 pids deadline=$((SECONDS + WAIT_SECS))
	ns_exists "$ns" || return 0
	while :; do
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[[ -z $pids ]] && return 0
		# shellcheck disable=SC2086
		kill -CONT $pids 2>/dev/null || true
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null || true
		((SECONDS < deadline)) || die "processes in $ns do not die: $pids"
		sleep 0.05
	done
}

# ---------------------------------------------------------------- the pair

# The node functions of scripts/pair.sh, pointed at the namespaces.
MDB_SCRIPT=scripts/cluster.sh
# shellcheck source=lib/mariadb.sh
. "$ROOT/scripts/lib/mariadb.sh"
ACCOUNT_HOSTS=("$NET.%")
node_host() {
	case ${1:-} in
	a) echo host1 ;; b) echo host2 ;;
	*) die "NODE must be a or b (got '${1:-}')" ;;
	esac
}
# The node on HOST, or nothing (the witness).
host_node() {
	case $1 in host1) echo a ;; host2) echo b ;; esac
}
node_dir() { echo "$DIR/$(node_host "$1")/$1"; }
node_port() { echo "$NODE_PORT"; }
node_peer() { if [[ $1 == a ]]; then echo b; else echo a; fi; }
node_server_id() { if [[ $1 == a ]]; then echo 1; else echo 2; fi; }
node_address() { ip_of "$(node_host "$1")"; }
node_exec() {
	local n=$1
	shift
	ip netns exec "$(ns_of "$(node_host "$n")")" "$@"
}
pair_initialized() { [[ -f $DIR/.pair-initialized ]]; }

# pair_up: initialise the pair the first time (a writable, b read-only,
# replicating both ways, in sync); later, start the nodes that are not
# running (read-only, as every start) and their replication.
pair_up() {
	local b n
	for b in mariadbd mariadb-install-db mariadb mariadb-admin; do
		command -v "$b" >/dev/null || die "$b is missing (run: make pair-install)"
	done
	if pair_initialized; then
		for n in a b; do start_node "$n"; done
		for n in a b; do ensure_replication "$n"; done
		wait_replicating || die "replication is not running on both nodes (see above)"
		return 0
	fi
	for n in a b; do
		if [[ -n $(node_pid "$n") ]]; then stop_node "$n"; fi
		rm -rf "$(node_dir "$n")"
	done
	say "initialising nodes a ($(node_address a):$NODE_PORT) and b ($(node_address b):$NODE_PORT)"
	for n in a b; do init_node "$n"; done
	for n in a b; do start_node "$n"; done
	for n in a b; do setup_accounts "$n"; done
	for n in a b; do sql "$n" "$(change_master_sql "$n"); START SLAVE;"; done
	wait_replicating || die "replication is not running on both nodes (see above)"
	canary a b || die "replication a -> b does not work"
	canary b a || die "replication b -> a does not work"
	wait_in_sync || die "nodes did not reach the same GTID position"
	sql a 'SET GLOBAL read_only = OFF'
	touch "$DIR/.pair-initialized"
}

# ---------------------------------------------------------------- tandem

tdir() { echo "$DIR/$1/tandem"; }
tandem_cfg() { echo "$(tdir "$1")/tandem.toml"; }
token_file() { echo "$DIR/admin.token"; }
admin_addr() { echo "$(ip_of "$1"):9306"; }

tandem_pid() {
	local pf pid
	pf="$(tdir "$1")/tandem.pid"
	[[ -s $pf ]] || return 0
	pid=$(<"$pf")
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	{ tr '\0' '\n' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qxF -- "$(tandem_cfg "$1")" || return 0
	[[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 0
	echo "$pid"
}

tandem_alive() {
	local pid
	pid=$(<"$(tdir "$1")/tandem.pid") 2>/dev/null || return 1
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
		[[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

write_tandem_cfg() {
	local h=$1 eps="" m
	for m in "${HOSTS[@]}"; do eps+="${eps:+, }\"$(ip_of "$m"):2379\""; done
	mkdir -p "$(tdir "$h")"
	if [[ ! -s $(token_file) ]]; then
		(umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$(token_file)")
	fi
	cat >"$(tandem_cfg "$h")" <<EOF
# Generated by scripts/cluster.sh for the tandem on $h; rewritten on every start.
[log]
level = "info"

[proxy]
listen = ["$(ip_of "$h"):3306", "127.0.0.1:3306"]
hold_timeout = "5s"

[[user]]
name = "app"
password = "apppass"

[[node]]
name = "a"
address = "$(node_address a):$NODE_PORT"

[[node]]
name = "b"
address = "$(node_address b):$NODE_PORT"

[failover]
initial_active = "a"
state_file = "$(tdir "$h")/state.json"
admin_user = "tandem"
admin_password = "tandem"

[admin]
listen = "$(admin_addr "$h")"
token_file = "$(token_file)"

[etcd]
endpoints = [$eps]
prefix = "$PREFIX"
id = "$h"
host = "$h"
lease_ttl = "1s"
# The coordinator keeps etcd's raft leader on the witness: an app server's
# death then never also costs an etcd election and a lease extension.
preferred_leader = "witness"
EOF
}

# admin_get HOST PATH: GET from HOST's tandem admin API, inside HOST.
admin_get() {
	ip netns exec "$(ns_of "$1")" curl -fsS --max-time 2 -H "Authorization: Bearer $(<"$(token_file)")" \
		"http://$(admin_addr "$1")$2"
}

start_tandem() {
	local h=$1 d
	[[ -n $(tandem_pid "$h") ]] && return 0
	[[ -x $TANDEM_BIN ]] || die "no tandem binary at $TANDEM_BIN (run: make build)"
	d=$(tdir "$h")
	write_tandem_cfg "$h"
	ip netns exec "$(ns_of "$h")" setsid "$TANDEM_BIN" serve -config "$(tandem_cfg "$h")" \
		</dev/null >>"$d/tandem.log" 2>&1 &
	echo $! >"$d/tandem.pid"
}

# wait_tandems HOST...: bounded wait until each tandem's admin API answers.
# A tandem that exits while starting (tandem gives up at once when etcd
# has no leader, e.g. during an election after a heal) is started again,
# at most twice, as a service manager would.
wait_tandems() {
	local deadline=$((SECONDS + WAIT_SECS)) h ok
	local -A starts=()
	while :; do
		ok=1
		for h in "$@"; do
			# (right after the fork the process may not show its command line yet)
			if ! tandem_alive "$h"; then
				tail -n 3 "$(tdir "$h")/tandem.log" >&2
				((${starts[$h]:-1} < 3)) || die "tandem on $h exited; see $(tdir "$h")/tandem.log"
				starts[$h]=$((${starts[$h]:-1} + 1))
				say "tandem on $h exited while starting; starting it again (attempt ${starts[$h]} of 3)"
				sleep 1
				start_tandem "$h"
				ok=0
				continue
			fi
			admin_get "$h" /status >/dev/null 2>&1 || ok=0
		done
		[[ $ok == 1 ]] && return 0
		((SECONDS < deadline)) || die "tandem on $* does not answer after ${WAIT_SECS}s; see $DIR/*/tandem/tandem.log"
		sleep 0.1
	done
}

stop_tandem() {
	local pid deadline=$((SECONDS + 10))
	pid=$(tandem_pid "$1")
	[[ -n $pid ]] || return 0
	kill -CONT "$pid" 2>/dev/null || true
	kill -TERM "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; do
		((SECONDS < deadline)) || { kill -KILL "$pid" 2>/dev/null || true; break; }
		sleep 0.1
	done
}

# ---------------------------------------------------------------- etcd leader

# member_status HOST: etcd's maintenance status from HOST's member (JSON).
member_status() {
	ip netns exec "$(ns_of "$1")" curl -fsS --max-time 2 -X POST -d '{}' "http://$(ip_of "$1"):2379/v3/maintenance/status"
}
json_str() { sed -n "s/.*\"$1\":\"\\{0,1\\}\\([0-9]*\\).*/\\1/p"; }

cmd_leader() {
	local target=$1 h st id leader lhost="" deadline=$((SECONDS + WAIT_SECS))
	host_index "$target" >/dev/null
	while :; do
		st=$(member_status "$target" 2>/dev/null) || st=""
		id=$(json_str member_id <<<"$st")
		leader=$(json_str leader <<<"$st")
		if [[ -n $id && $id == "$leader" ]]; then
			say "etcd leader is on $target"
			return 0
		fi
		lhost=""
		for h in "${HOSTS[@]}"; do
			[[ $(member_status "$h" 2>/dev/null | json_str member_id) == "$leader" ]] && lhost=$h
		done
		if [[ -n $id && -n $lhost ]]; then
			ip netns exec "$(ns_of "$lhost")" curl -fsS --max-time 5 -X POST -d "{\"targetID\":\"$id\"}" \
				"http://$(ip_of "$lhost"):2379/v3/maintenance/transfer-leadership" >/dev/null 2>&1 || true
		fi
		((SECONDS < deadline)) || die "could not move etcd's leader to $target"
		sleep 0.2
	done
}

# ---------------------------------------------------------------- services

check_service() {
	local h=$1 s=$2
	case $s in
	etcd) ;;
	node | tandem) [[ -n $(host_node "$h") ]] || die "$h runs no $s (only etcd)" ;;
	*) die "SERVICE must be etcd, node or tandem (got '$s')" ;;
	esac
}

service_pid() {
	case $2 in
	etcd) member_pid "$1" ;;
	node) node_pid "$(host_node "$1")" ;;
	tandem) tandem_pid "$1" ;;
	esac
}

# signal_service SIG HOST SERVICE
signal_service() {
	local pid
	check_service "$2" "$3"
	pid=$(service_pid "$2" "$3")
	[[ -n $pid ]] || die "$3 on $2 is not running"
	kill "-$1" "$pid"
	if [[ $1 == KILL ]]; then
		wait_gone "$pid" 10 || die "$3 on $2 (pid $pid) survived SIGKILL"
		if [[ $3 == node ]]; then
			# The main thread may be a zombie while other threads still
			# hold the listening socket: wait until the port is free, so
			# that `start` right after does not find it taken.
			local deadline=$((SECONDS + 10))
			while port_in_use "$(host_node "$2")" "$NODE_PORT"; do
				((SECONDS < deadline)) || die "node on $2: port $NODE_PORT still taken 10 s after SIGKILL"
				sleep 0.05
			done
		fi
	fi
	say "$3 on $2: SIG$1 (pid $pid)"
}

start_service() {
	local h=$1 s=$2
	check_service "$h" "$s"
	case $s in
	etcd)
		start_member "$h"
		wait_healthy "$h"
		;;
	node)
		pair_initialized || die "the pair was never set up; run demo first"
		start_node "$(host_node "$h")"
		;;
	tandem)
		start_tandem "$h"
		wait_tandems "$h"
		;;
	esac
	if [[ $s == node ]]; then s="node $(host_node "$h")"; fi
	say "$s on $h running"
}

# ---------------------------------------------------------------- commands

cmd_up() {
	need_root
	[[ -x $BIN ]] || die "no etcd binary at $BIN (run: make etcd-build)"
	make_net
	local h
	for h in "${HOSTS[@]}"; do start_member "$h"; done
	wait_healthy "${HOSTS[@]}"
	say "up: $(endpoints) (namespaces $NS-*, data $DIR)"
}

cmd_demo() {
	cmd_up
	pair_up
	local h
	for h in host1 host2; do start_tandem "$h"; done
	wait_tandems host1 host2
	# An app server's death then costs no etcd election (README).
	cmd_leader witness
	cat <<EOF

Three hosts (network namespaces $NS-host1, $NS-host2, $NS-witness):
  host1 $(ip_of host1): etcd member, MariaDB node a :$NODE_PORT, tandem :3306 (admin :9306)
  host2 $(ip_of host2): etcd member, MariaDB node b :$NODE_PORT, tandem :3306 (admin :9306)
  witness $(ip_of witness): etcd member
Connect through the tandem on host1 (or host2):
  scripts/cluster.sh exec host1 mariadb -h 127.0.0.1 -P 3306 -u app -papppass app
Ask either tandem:
  scripts/cluster.sh exec host1 $TANDEM_BIN status -config $(tandem_cfg host1)
  scripts/cluster.sh exec host2 $TANDEM_BIN status -admin http://$(admin_addr host2) -token \$(cat $(token_file))
Faults: scripts/cluster.sh partition|heal|kill|start HOST, kill|stop|cont|start HOST etcd|node|tandem,
        leader HOST, status; stop everything: make cluster-down (scripts/cluster.sh down).
Logs: $DIR/HOST/tandem/tandem.log, $DIR/HOST/a|b/error.log, $DIR/HOST/etcd.log
EOF
}

cmd_down() {
	need_root
	local h n
	for h in host1 host2; do stop_tandem "$h"; done
	for n in a b; do
		if [[ -n $(node_pid "$n") ]]; then stop_node "$n"; fi
	done
	for h in "${HOSTS[@]}"; do kill_ns "$(ns_of "$h")"; done
	for h in "${HOSTS[@]}" sw; do
		if ns_exists "$NS-$h"; then ip netns del "$NS-$h"; fi
	done
	if [[ ${1:-} == --purge ]]; then
		rm -rf "$DIR"
		say "down, data deleted"
	else
		say "down"
	fi
}

cmd_status() {
	need_root
	local h rc=0 link pid hl n st js
	ns_exists "$(sw)" || { say "not up"; return 1; }
	for h in "${HOSTS[@]}"; do
		link=$(ip -n "$(sw)" -o link show "$h" 2>/dev/null | grep -q 'state UP' && echo connected || echo partitioned)
		pid=$(member_pid "$h")
		if [[ -z $pid ]]; then
			hl="etcd not running"
			rc=1
		elif healthy "$h"; then
			hl="etcd pid $pid healthy"
		else
			hl="etcd pid $pid unhealthy"
			rc=1
		fi
		printf '%-8s %s %-11s %s\n' "$h" "$(ip_of "$h")" "$link" "$hl"
		n=$(host_node "$h")
		[[ -n $n ]] && pair_initialized || continue
		pid=$(node_pid "$n")
		if [[ -z $pid ]]; then
			printf '         node %s not running\n' "$n"
			rc=1
		elif [[ $(proc_state "$pid") == T ]]; then
			printf '         node %s pid %s stopped (SIGSTOP)\n' "$n" "$pid"
			rc=1
		elif ! ping_node "$n"; then
			printf '         node %s pid %s not answering\n' "$n" "$pid"
			rc=1
		else
			st=$(slave_status "$n")
			printf '         node %s pid %s :%s read_only=%s io=%s sql=%s gtid=%s\n' "$n" "$pid" "$NODE_PORT" \
				"$(sql "$n" 'SELECT IF(@@read_only, "ON", "OFF")')" "$(field Slave_IO_Running <<<"$st")" \
				"$(field Slave_SQL_Running <<<"$st")" "$(sql "$n" 'SELECT @@GLOBAL.gtid_current_pos')"
		fi
		pid=$(tandem_pid "$h")
		if [[ -z $pid ]]; then
			printf '         tandem not running\n'
			rc=1
		elif js=$(admin_get "$h" /status 2>/dev/null | tr -d ' \t\n'); then
			printf '         tandem pid %s: active=%s epoch=%s coordinator=%s self_fenced=%s\n' "$pid" \
				"$(sed -n 's/.*"decision":{[^}]*"active":"\([^"]*\)".*/\1/p' <<<"$js")" \
				"$(sed -n 's/.*"decision":{[^}]*"epoch":\([0-9]*\).*/\1/p' <<<"$js")" \
				"$(sed -n 's/.*"coordinator":\(true\|false\).*/\1/p' <<<"$js")" \
				"$(grep -q '"self_fenced":true' <<<"$js" && echo true || echo false)"
		else
			printf '         tandem pid %s: admin API not answering\n' "$pid"
			rc=1
		fi
	done
	return $rc
}

cmd=${1:-}
shift || true
case $cmd in
up) cmd_up ;;
demo) cmd_demo ;;
down) cmd_down "${1:-}" ;;
status) cmd_status ;;
env)
	printf 'export TANDEM_CLUSTER_NS=%q\n' "$NS"
	printf 'export TANDEM_CLUSTER_DIR=%q\n' "$DIR"
	printf 'export TANDEM_CLUSTER_ENDPOINTS=%q\n' "$(endpoints)"
	printf 'export TANDEM_CLUSTER_NODES=%q\n' "$(node_address a):$NODE_PORT,$(node_address b):$NODE_PORT"
	printf 'export TANDEM_ADMIN_TOKEN_FILE=%q\n' "$(token_file)"
	;;
exec)
	need_root
	h=${1:-}
	host_index "$h" >/dev/null
	shift
	[[ $# -gt 0 ]] || die "exec: no command"
	exec ip netns exec "$(ns_of "$h")" "$@"
	;;
partition)
	need_root
	host_index "${1:-}" >/dev/null
	ip -n "$(sw)" link set "$1" down
	say "$1 partitioned"
	;;
heal)
	need_root
	host_index "${1:-}" >/dev/null
	ip -n "$(sw)" link set "$1" up
	say "$1 connected"
	;;
kill)
	need_root
	host_index "${1:-}" >/dev/null
	if [[ -n ${2:-} ]]; then
		signal_service KILL "$1" "$2"
	else
		kill_ns "$(ns_of "$1")"
		say "$1: every process killed"
	fi
	;;
stop | cont)
	need_root
	host_index "${1:-}" >/dev/null
	[[ -n ${2:-} ]] || die "$cmd HOST SERVICE: which service (etcd, node or tandem)?"
	if [[ $cmd == stop ]]; then signal_service STOP "$1" "$2"; else signal_service CONT "$1" "$2"; fi
	;;
start)
	need_root
	host_index "${1:-}" >/dev/null
	if [[ -n ${2:-} ]]; then
		start_service "$1" "$2"
	else
		start_service "$1" etcd
		if pair_initialized && [[ -n $(host_node "$1") ]]; then
			start_service "$1" node
			[[ -s $(tandem_cfg "$1") ]] && start_service "$1" tandem
		fi
	fi
	;;
leader)
	need_root
	cmd_leader "${1:-}"
	;;
-h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
*) die "unknown command '${cmd}' (try --help)" ;;
esac
