#!/usr/bin/env bash
# demo.sh — `make demo` and `make stop`: the local pair plus tandem in front
# of it on 127.0.0.1:3306.
#
# Usage: scripts/demo.sh start | stop
#
# start: installs MariaDB when missing and starts the pair (scripts/pair.sh
# up), builds bin/tandem, writes .demo/tandem.toml and starts tandem in the
# background (log in .demo/tandem.log, pid in .demo/tandem.pid), waits until
# it answers, then prints how to connect. Idempotent: a running demo is left
# as it is.
# stop: stops tandem (SIGTERM, then SIGKILL after a bound) and the pair, and
# forgets the demo's decision (the pair restarts with node a as the writer).
set -euo pipefail

cd "$(dirname "$0")/.."
DEMO_DIR=${TANDEM_DEMO_DIR:-$PWD/.demo}
LISTEN=${TANDEM_DEMO_LISTEN:-127.0.0.1:3306}
PORT_A=${TANDEM_PAIR_PORT_A:-13306}
PORT_B=${TANDEM_PAIR_PORT_B:-13307}
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

start() {
	scripts/pair.sh up
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

[[node]]
name = "b"
address = "127.0.0.1:$PORT_B"

[failover]
initial_active = "a"
state_file = "$DEMO_DIR/state.json"
admin_user = "tandem"
admin_password = "tandem"
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
	mariadb -h"${LISTEN%:*}" -P"${LISTEN##*:}" --protocol=tcp -uapp -papppass -e 'SELECT 1' >/dev/null ||
		die "tandem does not answer on $LISTEN; see $DEMO_DIR/tandem.log"
	sleep 0.6 # two checks of each node, so that the status below says "up"
	echo
	echo "tandem is running on $LISTEN in front of the local pair (node a 127.0.0.1:$PORT_A, node b 127.0.0.1:$PORT_B):"
	echo
	bin/tandem status -config "$DEMO_DIR/tandem.toml" || true
	cat <<MSG

Connect as the app would:
  mariadb -h ${LISTEN%:*} -P ${LISTEN##*:} --protocol=tcp -u app -papppass app
  DSN for go-sql-driver:  app:apppass@tcp($LISTEN)/app

Status:           bin/tandem status -config $DEMO_DIR/tandem.toml
Try a failover:   scripts/pair.sh kill a      (tandem promotes b; watch $DEMO_DIR/tandem.log)
Bring a back:     scripts/pair.sh start a     (tandem fences it: it stays passive)
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
	# The pair restarts with node a writable and b read-only (their
	# my.cnf), so a demo's saved decision would disagree with it next time.
	rm -f "$DEMO_DIR/state.json"
	scripts/pair.sh down
}

case ${1:-} in
start) start ;;
stop) stop ;;
*) die "usage: scripts/demo.sh start | stop" ;;
esac
