#!/usr/bin/env bash
# demo.sh — `make demo` and `make stop`: the local pair plus tandem in front
# of it on 127.0.0.1:3306.
#
# Usage: scripts/demo.sh start | stop | rebuild
#
# start: installs MariaDB when missing and starts the pair (scripts/pair.sh
# up), builds bin/tandem, writes .demo/tandem.toml and starts tandem in the
# background (log in .demo/tandem.log, pid in .demo/tandem.pid), waits until
# it answers and its active node takes writes, then prints how to connect.
# Idempotent: a running demo is left as it is. It works from whatever state
# the demo's own suggestions leave (a failover, a killed or stopped node, a
# node restarted): both nodes always start read-only and tandem, resuming
# its saved decision (.demo/state.json), makes its active node writable.
# If the nodes' histories diverged, it says so and names the rebuild.
# stop: stops tandem (SIGTERM, then SIGKILL after a bound) and the pair. It
# makes no node writable and keeps tandem's decision for the next start.
# rebuild: stop, delete the pair and the decision, start afresh (the demo's
# data is lost).
#
# Environment: TANDEM_DEMO_LISTEN (127.0.0.1:3306), TANDEM_DEMO_ADMIN
# (127.0.0.1:9306, the admin API), TANDEM_DEMO_DIR (.demo), and the pair's
# TANDEM_PAIR_DIR, TANDEM_PAIR_PORT_A, TANDEM_PAIR_PORT_B.
set -euo pipefail

cd "$(dirname "$0")/.."
DEMO_DIR=${TANDEM_DEMO_DIR:-$PWD/.demo}
LISTEN=${TANDEM_DEMO_LISTEN:-127.0.0.1:3306}
ADMIN=${TANDEM_DEMO_ADMIN:-127.0.0.1:9306}
PORT_A=${TANDEM_PAIR_PORT_A:-13306}
PORT_B=${TANDEM_PAIR_PORT_B:-13307}
# The pair's test CA (scripts/pair.sh makes it): tandem verifies both nodes.
PAIR_CA=${TANDEM_PAIR_DIR:-/tmp/tandem-pair}
PAIR_CA=${PAIR_CA%/}/tls/ca.pem
PIDFILE=$DEMO_DIR/tandem.pid

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

find_go() {
	if command -v go >/dev/null 2>&1; then return; fi
	if [[ -x /usr/local/go/bin/go ]]; then
		export PATH=/usr/local/go/bin:$PATH
		return
	fi
	die "Go is not installed. tandem needs Go 1.26 or newer: install it from https://go.dev/dl/ into /usr/local/go (Debian 12's golang-go is too old)."
}

running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# client QUERY: run QUERY through tandem as the app, bounded.
client() {
	timeout 10 mariadb --no-defaults -h"${LISTEN%:*}" -P"${LISTEN##*:}" --protocol=tcp -uapp -papppass \
		--connect-timeout=3 -N -B -e "$1" 2>/dev/null
}

# pair_up: start the pair; when replication cannot resume, say why in
# plain words and what to do, rather than pair.sh's raw output alone.
pair_up() {
	if scripts/pair.sh up; then
		return 0
	fi
	echo >&2
	local st
	st=$(scripts/pair.sh status 2>&1 || true)
	printf '%s\n' "$st" >&2
	echo >&2
	if grep -qiE 'out-of-order|diverged|not in the master|errant|1236|1950' <<<"$st"; then
		cat >&2 <<MSG
demo: error: the two nodes' histories diverged: a node holds transactions its
peer never received (errant transactions), so replication cannot resume and
tandem would keep that node fenced. Either
  - rebuild the demo from scratch (the demo's data is lost):
      scripts/demo.sh rebuild
  - or keep the data: rebuild the diverged node from the other by hand
    (README, "Errant transactions").
MSG
	else
		echo "demo: error: the local pair did not come up (see above); 'scripts/pair.sh status' shows its state, 'scripts/demo.sh rebuild' starts afresh (the demo's data is lost)" >&2
	fi
	exit 1
}

start() {
	pair_up
	find_go
	mkdir -p "$DEMO_DIR" bin
	go build -o bin/tandem ./cmd/tandem
	if running; then
		say "tandem is already running (pid $(cat "$PIDFILE"))"
	else
		cat >"$DEMO_DIR/tandem.toml" <<CONF
# Written by scripts/demo.sh for the local pair; see testdata/tandem.toml for every key.
[log]
level = "info"
format = "text"

[proxy]
listen = ["$LISTEN", "unix:$DEMO_DIR/tandem.sock"]

[[user]]
name = "app"
password = "apppass"

[[node]]
name = "a"
address = "127.0.0.1:$PORT_A"
tls = "verify-full"
tls_ca = "$PAIR_CA"

[[node]]
name = "b"
address = "127.0.0.1:$PORT_B"
tls = "verify-full"
tls_ca = "$PAIR_CA"

[failover]
initial_active = "a"
state_file = "$DEMO_DIR/state.json"
admin_user = "tandem"
admin_password = "tandem"

[admin]
listen = "$ADMIN"
CONF
		nohup bin/tandem serve -config "$DEMO_DIR/tandem.toml" >"$DEMO_DIR/tandem.log" 2>&1 &
		echo $! >"$PIDFILE"
		for _ in $(seq 1 50); do
			if mariadb -h"${LISTEN%:*}" -P"${LISTEN##*:}" --protocol=tcp -uapp -papppass -e 'SELECT 1' >/dev/null 2>&1; then
				break
			fi
			running || { tail -20 "$DEMO_DIR/tandem.log" >&2; die "tandem exited; its log is above"; }
			sleep 0.2
		done
	fi
	client 'SELECT 1' >/dev/null || die "tandem does not answer on $LISTEN; see $DEMO_DIR/tandem.log"
	# Both nodes started read-only: wait until tandem has made its active
	# node writable (a session lands on the active node).
	local ro="" i
	for i in $(seq 1 150); do
		ro=$(client 'SELECT @@read_only') || true
		[[ $ro == 0 ]] && break
		running || { tail -20 "$DEMO_DIR/tandem.log" >&2; die "tandem exited; its log is above"; }
		sleep 0.2
	done
	if [[ $ro != 0 ]]; then
		bin/tandem status -config "$DEMO_DIR/tandem.toml" >&2 || true
		die "tandem answers but its active node is still read-only after 30 s; see the status above and $DEMO_DIR/tandem.log"
	fi
	# A few checks of each node, so that the status below says "up".
	local st
	for i in $(seq 1 25); do
		st=$(bin/tandem status -config "$DEMO_DIR/tandem.toml" 2>/dev/null) || true
		[[ $st == *' starting '* ]] || break
		sleep 0.2
	done
	echo
	echo "tandem is running on $LISTEN in front of the local pair (node a 127.0.0.1:$PORT_A, node b 127.0.0.1:$PORT_B):"
	echo
	st=$(bin/tandem status -config "$DEMO_DIR/tandem.toml" 2>&1) || true
	printf '%s\n' "$st"
	if [[ $st == *EXCLUDED* ]]; then
		cat <<MSG

A node is EXCLUDED: it holds transactions of its own that the active node
never had (errant transactions), so tandem keeps it fenced and never
promotes it. Rebuild it from the active (README, "Errant transactions"), or
start the demo afresh with scripts/demo.sh rebuild (the demo's data is lost).
MSG
	fi
	cat <<MSG

Connect as the app would:
  mariadb -h ${LISTEN%:*} -P ${LISTEN##*:} --protocol=tcp -u app -papppass app
  DSN for go-sql-driver:  app:apppass@tcp($LISTEN)/app

Status:           bin/tandem status -config $DEMO_DIR/tandem.toml
Try a failover:   scripts/pair.sh kill a      (tandem promotes b; watch $DEMO_DIR/tandem.log)
Bring a back:     scripts/pair.sh start a     (read-only; drops commits b never acknowledged; replicates from b)
Switch back:      bin/tandem switchover -config $DEMO_DIR/tandem.toml
Stop everything:  make stop
MSG
}

stop() {
	if running; then
		pid=$(cat "$PIDFILE")
		kill -TERM "$pid"
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		say "tandem stopped"
	fi
	rm -f "$PIDFILE"
	# Both nodes restart read-only (their my.cnf): the saved decision
	# (state.json) stays, and the next start resumes it.
	scripts/pair.sh down
}

rebuild() {
	stop
	scripts/pair.sh down --purge
	rm -f "$DEMO_DIR/state.json"
	say "pair and decision deleted; starting afresh"
	start
}

case ${1:-} in
start) start ;;
stop) stop ;;
rebuild) rebuild ;;
*) die "usage: scripts/demo.sh start | stop | rebuild" ;;
esac
