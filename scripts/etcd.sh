#!/usr/bin/env bash
# etcd.sh — a local three-member etcd cluster for tandem's coordination tests
# (package coord) and for trying several tandems on one machine.
#
# Usage: scripts/etcd.sh build | up | down [--purge] | status | env
#                        kill N | stop N | cont N | start N | pid N
#   N is a member number, 1, 2 or 3.
#
#   build     builds bin/etcd from tools/etcd (its own Go module, pinned
#             server release) if it is missing or older than that module.
#   up        builds if needed, starts every member that is not running and
#             waits until all three answer healthy.
#   down      stops every member (SIGTERM, then SIGKILL); --purge also
#             deletes the data directory.
#   kill N    SIGKILLs member N (data kept: `start N` brings it back).
#   stop N    SIGSTOPs member N (hung: accepts connections, answers nothing);
#   cont N    SIGCONTs it.
#   start N   starts member N and waits until it is healthy.
#   env       prints the exports a client needs (TANDEM_ETCD_ENDPOINTS).
#
# Members listen on loopback only: clients 127.0.0.1:${TANDEM_ETCD_CLIENT_PORTS}
# (default "23791 23792 23793"), peers ${TANDEM_ETCD_PEER_PORTS} (default
# "23801 23802 23803"); data, logs and pid files under
# ${TANDEM_ETCD_DIR:-/tmp/tandem-etcd}/mN/.  Raft timing is tuned to
# heartbeat ${TANDEM_ETCD_HEARTBEAT:-50} ms / election
# ${TANDEM_ETCD_ELECTION:-500} ms, so the minimum lease TTL is 1 s
# (ceil(1.5 × election timeout)).  TANDEM_ETCD_TIMEOUT (30) bounds every
# wait, in seconds.  TANDEM_ETCD_BIN overrides the binary (default bin/etcd).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ETCD_DIR=${TANDEM_ETCD_DIR:-/tmp/tandem-etcd}
ETCD_DIR=${ETCD_DIR%/}
read -r -a CLIENT_PORTS <<<"${TANDEM_ETCD_CLIENT_PORTS:-23791 23792 23793}"
read -r -a PEER_PORTS <<<"${TANDEM_ETCD_PEER_PORTS:-23801 23802 23803}"
HEARTBEAT=${TANDEM_ETCD_HEARTBEAT:-50}
ELECTION=${TANDEM_ETCD_ELECTION:-500}
WAIT_SECS=${TANDEM_ETCD_TIMEOUT:-30}
BIN=${TANDEM_ETCD_BIN:-$ROOT/bin/etcd}
GO=${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}

say() { printf 'etcd: %s\n' "$*"; }
die() { printf 'etcd: error: %s\n' "$*" >&2; exit 1; }

[[ ${#CLIENT_PORTS[@]} -eq 3 && ${#PEER_PORTS[@]} -eq 3 ]] ||
	die "TANDEM_ETCD_CLIENT_PORTS and TANDEM_ETCD_PEER_PORTS must each list 3 ports"
[[ $WAIT_SECS =~ ^[0-9]+$ ]] || die "TANDEM_ETCD_TIMEOUT must be whole seconds (got '$WAIT_SECS')"

check_n() { [[ ${1:-} =~ ^[123]$ ]] || die "N must be 1, 2 or 3 (got '${1:-}')"; }
mdir() { printf '%s/m%s' "$ETCD_DIR" "$1"; }
client_port() { echo "${CLIENT_PORTS[$(($1 - 1))]}"; }
peer_port() { echo "${PEER_PORTS[$(($1 - 1))]}"; }
endpoints() {
	local n out=""
	for n in 1 2 3; do out+="${out:+,}127.0.0.1:$(client_port "$n")"; done
	echo "$out"
}

# ---------------------------------------------------------------- build

# The server version pinned in tools/etcd/go.mod.
pinned_version() { awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' "$ROOT/tools/etcd/go.mod"; }

build_needed() {
	[[ -x $BIN ]] || return 0
	[[ -n $(find "$ROOT/tools/etcd" -newer "$BIN" -type f 2>/dev/null) ]] && return 0
	local want have
	want=$(pinned_version)
	have=$("$BIN" --version 2>/dev/null | awk '/^etcd Version:/ {print $3}')
	[[ "v$have" != "$want" ]]
}

cmd_build() {
	if [[ -n ${TANDEM_ETCD_BIN:-} ]]; then
		[[ -x $BIN ]] || die "TANDEM_ETCD_BIN=$BIN is not executable"
		return 0
	fi
	build_needed || return 0
	say "building bin/etcd $(pinned_version) from tools/etcd"
	mkdir -p "$(dirname "$BIN")"
	(cd "$ROOT/tools/etcd" && GOWORK=off CGO_ENABLED=0 "$GO" build -trimpath -o "$BIN.tmp" .) || die "build failed"
	mv "$BIN.tmp" "$BIN"
	"$BIN" --version | head -1
}

# ---------------------------------------------------------------- processes

# pid of member N if it is running (the pid file is trusted only if that
# process is an etcd with this member's data dir).
member_pid() {
	local pf pid
	pf="$(mdir "$1")/etcd.pid"
	[[ -s $pf ]] || return 0
	pid=$(<"$pf")
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "--data-dir=$(mdir "$1")/data" || return 0
	echo "$pid"
}

# Whether the process started for member N still lives (it may not have
# exec'd etcd yet, so its command line is not checked).
member_alive() {
	local pf pid
	pf="$(mdir "$1")/etcd.pid"
	[[ -s $pf ]] || return 1
	pid=$(<"$pf")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && [[ $(member_state "$pid") != Z ]]
}

member_state() {
	local pid=$1
	awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo "?"
}

healthy() {
	curl -fsS --max-time 1 "http://127.0.0.1:$(client_port "$1")/health" 2>/dev/null | grep -q '"health":"true"'
}

start_member() {
	local n=$1 d cluster="" m token
	d=$(mdir "$n")
	if [[ -n $(member_pid "$n") ]]; then return 0; fi
	mkdir -p "$d"
	for m in 1 2 3; do cluster+="${cluster:+,}m$m=http://127.0.0.1:$(peer_port "$m")"; done
	token="tandem-$(printf '%s' "$ETCD_DIR" | cksum | cut -d' ' -f1)"
	local extra=()
	[[ ${TANDEM_ETCD_NO_FSYNC:-0} == 1 ]] && extra+=(--unsafe-no-fsync)
	# setsid + all three streams redirected: the member outlives this
	# script and never holds a caller's pipe open.
	setsid "$BIN" --name="m$n" --data-dir="$d/data" \
		--listen-client-urls="http://127.0.0.1:$(client_port "$n")" \
		--advertise-client-urls="http://127.0.0.1:$(client_port "$n")" \
		--listen-peer-urls="http://127.0.0.1:$(peer_port "$n")" \
		--initial-advertise-peer-urls="http://127.0.0.1:$(peer_port "$n")" \
		--initial-cluster="$cluster" --initial-cluster-state=new --initial-cluster-token="$token" \
		--heartbeat-interval="$HEARTBEAT" --election-timeout="$ELECTION" \
		--log-level=warn "${extra[@]}" </dev/null >>"$d/etcd.log" 2>&1 &
	echo $! >"$d/etcd.pid"
}

wait_healthy() {
	local deadline=$((SECONDS + WAIT_SECS)) n ok
	while :; do
		ok=1
		for n in "$@"; do
			member_alive "$n" || die "member $n exited; see $(mdir "$n")/etcd.log"
			healthy "$n" || ok=0
		done
		[[ $ok == 1 ]] && return 0
		((SECONDS < deadline)) || die "members $* not healthy after ${WAIT_SECS}s; see $ETCD_DIR/m*/etcd.log"
		sleep 0.1
	done
}

wait_gone() {
	local pid=$1 deadline=$((SECONDS + WAIT_SECS))
	while kill -0 "$pid" 2>/dev/null; do
		# a zombie is gone for our purposes
		[[ $(member_state "$pid") == Z ]] && return 0
		((SECONDS < deadline)) || return 1
		sleep 0.05
	done
}

# ---------------------------------------------------------------- commands

cmd_up() {
	cmd_build
	[[ -x $BIN ]] || die "no etcd binary at $BIN (run: make etcd-build)"
	local n
	for n in 1 2 3; do start_member "$n"; done
	wait_healthy 1 2 3
	say "up: $(endpoints) (data $ETCD_DIR)"
}

cmd_down() {
	local n pid
	for n in 1 2 3; do
		pid=$(member_pid "$n")
		[[ -n $pid ]] || continue
		kill -CONT "$pid" 2>/dev/null || true
		kill -TERM "$pid" 2>/dev/null || true
	done
	for n in 1 2 3; do
		pid=$(member_pid "$n")
		[[ -n $pid ]] || continue
		if ! wait_gone "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone "$pid" || die "member $n (pid $pid) does not die"
		fi
	done
	if [[ ${1:-} == --purge ]]; then
		rm -rf "$ETCD_DIR"
		say "down, data deleted"
	else
		say "down"
	fi
}

cmd_status() {
	local n pid rc=0 h
	for n in 1 2 3; do
		pid=$(member_pid "$n")
		if [[ -z $pid ]]; then
			printf 'm%s 127.0.0.1:%s not running\n' "$n" "$(client_port "$n")"
			rc=1
			continue
		fi
		if healthy "$n"; then h=healthy; else h=unhealthy; rc=1; fi
		printf 'm%s 127.0.0.1:%s pid %s state %s %s\n' "$n" "$(client_port "$n")" "$pid" "$(member_state "$pid")" "$h"
	done
	return $rc
}

signal_member() {
	local sig=$1 n=$2 pid
	pid=$(member_pid "$n")
	[[ -n $pid ]] || die "member $n is not running"
	kill -"$sig" "$pid"
	if [[ $sig == KILL ]]; then wait_gone "$pid" || die "member $n (pid $pid) does not die"; fi
	say "member $n (pid $pid): SIG$sig"
}

cmd=${1:-}
shift || true
case $cmd in
build) cmd_build ;;
up) cmd_up ;;
down) cmd_down "${1:-}" ;;
status) cmd_status ;;
env)
	printf 'export TANDEM_ETCD_DIR=%q\n' "$ETCD_DIR"
	printf 'export TANDEM_ETCD_CLIENT_PORTS=%q\n' "${CLIENT_PORTS[*]}"
	printf 'export TANDEM_ETCD_PEER_PORTS=%q\n' "${PEER_PORTS[*]}"
	printf 'export TANDEM_ETCD_ENDPOINTS=%q\n' "$(endpoints)"
	;;
kill) check_n "${1:-}"; signal_member KILL "$1" ;;
stop) check_n "${1:-}"; signal_member STOP "$1" ;;
cont) check_n "${1:-}"; signal_member CONT "$1" ;;
start) check_n "${1:-}"; [[ -x $BIN ]] || die "no etcd binary at $BIN (run: make etcd-build)"; start_member "$1"; wait_healthy "$1"; say "member $1 up" ;;
pid) check_n "${1:-}"; member_pid "$1" ;;
-h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
*) die "unknown command '${cmd}' (try --help)" ;;
esac
