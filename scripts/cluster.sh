#!/usr/bin/env bash
# cluster.sh — three "hosts" on one machine for testing several tandems:
# network namespaces host1, host2 and witness, wired to a bridge that lives in
# a fourth namespace (the switch), each running one etcd member. Nothing is
# added to the machine's own network namespace: the addresses exist only
# inside these namespaces. Needs root and iproute2.
#
# Usage: scripts/cluster.sh up | down [--purge] | status | env
#                           exec HOST CMD [ARGS...]
#                           partition HOST | heal HOST | kill HOST | start HOST
#   HOST is host1, host2 or witness.
#
#   up         creates the namespaces and links (if missing), starts every
#              etcd member that is not running, waits until all are healthy.
#   down       kills every process in the namespaces and deletes them;
#              --purge also deletes the data directory.
#   exec       runs CMD inside HOST's namespace (its environment is kept).
#   partition  cuts HOST off the others: the switch's port to it goes down,
#              so its packets are silently lost (its own processes still
#              reach each other).
#   heal       brings that port back up.
#   kill       SIGKILLs every process in HOST's namespace (a host dying).
#   start      starts HOST's etcd member again (data kept).
#   env        prints the exports a client inside the namespaces needs.
#
# Namespaces: ${TANDEM_CLUSTER_NS:-tdm}-host1, -host2, -witness, -sw (prefix:
# 1-6 lowercase letters or digits). Addresses: ${TANDEM_CLUSTER_NET:-10.77.0}.11,
# .12, .13 /24 (host1, host2, witness); etcd clients on :2379, peers on :2380.
# Data, logs and pid files under ${TANDEM_CLUSTER_DIR:-/tmp/tandem-cluster}/HOST/.
# etcd timing: heartbeat 50 ms, election 500 ms (minimum lease TTL 1 s).
# TANDEM_ETCD_BIN overrides the etcd binary (default bin/etcd, see
# scripts/etcd.sh build); TANDEM_CLUSTER_TIMEOUT (30) bounds waits, seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NS=${TANDEM_CLUSTER_NS:-tdm}
NET=${TANDEM_CLUSTER_NET:-10.77.0}
DIR=${TANDEM_CLUSTER_DIR:-/tmp/tandem-cluster}
DIR=${DIR%/}
BIN=${TANDEM_ETCD_BIN:-$ROOT/bin/etcd}
WAIT_SECS=${TANDEM_CLUSTER_TIMEOUT:-30}
HOSTS=(host1 host2 witness)

say() { printf 'cluster: %s\n' "$*"; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }

[[ $NS =~ ^[a-z0-9]{1,6}$ ]] || die "TANDEM_CLUSTER_NS must be 1-6 lowercase letters or digits (got '$NS')"
[[ $NET =~ ^10\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "TANDEM_CLUSTER_NET must be the first three octets of a 10.x.y.0/24 (got '$NET')"
[[ $WAIT_SECS =~ ^[0-9]+$ ]] || die "TANDEM_CLUSTER_TIMEOUT must be whole seconds"

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
	tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "--data-dir=$(hdir "$1")/data" || return 0
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
		--heartbeat-interval=50 --election-timeout=500 \
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

cmd_down() {
	need_root
	local h
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
	local h rc=0 link pid hl
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
	done
	return $rc
}

cmd=${1:-}
shift || true
case $cmd in
up) cmd_up ;;
down) cmd_down "${1:-}" ;;
status) cmd_status ;;
env)
	printf 'export TANDEM_CLUSTER_NS=%q\n' "$NS"
	printf 'export TANDEM_CLUSTER_DIR=%q\n' "$DIR"
	printf 'export TANDEM_CLUSTER_ENDPOINTS=%q\n' "$(endpoints)"
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
	kill_ns "$(ns_of "$1")"
	say "$1: every process killed"
	;;
start)
	need_root
	host_index "${1:-}" >/dev/null
	start_member "$1"
	wait_healthy "$1"
	say "etcd on $1 up"
	;;
-h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
*) die "unknown command '${cmd}' (try --help)" ;;
esac
