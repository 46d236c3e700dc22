#!/usr/bin/env bash
# drivers.sh — `make drivers`: common client drivers directly against the
# active node and through tandem, compared check by check.
#
# Usage: scripts/drivers.sh [install [DRIVER...] | run [DRIVER...]]   (default: run, all drivers)
#
# Drivers: php-mysqli php-pdo pymysql mysqldb mysql2 connectorj cli. Each
# has a small program under testdata/drivers/ that prints one stable line
# per check ("name: result"; lines starting with "#" are not compared).
# install puts in what the drivers need when missing (Debian php-cli
# php-mysql python3-pymysql python3-mysqldb libmariadb-java
# openjdk-17-jdk-headless mariadb-client; node's mysql2 from the committed
# package-lock). run installs, starts the pair (scripts/pair.sh up, then
# reset: a writable),
# creates the accounts of testdata/drivers/setup.sql on node a at run time
# and starts bin/tandem in front of the pair with no [[user]] entry at all.
# Each program then runs directly against node a, through tandem, and
# through a tandem restarted with require_tls (every connection of that
# run used TLS to tandem). Each tandem run is compared line by line with
# the direct run; a table sums it up. Exit status: 0 when every check gave
# the same result, 1 on a difference, 2 on a setup failure. Differences
# listed in testdata/drivers/known-differences.txt (with their cause) are
# shown apart and, with TANDEM_DRIVERS_ALLOW_KNOWN=1, do not fail the run.
#
# Environment: TANDEM_PAIR_DIR, TANDEM_PAIR_PORT_A, TANDEM_PAIR_PORT_B (the
# pair), TANDEM_DRIVERS_LISTEN (127.0.0.1:13330), TANDEM_DRIVERS_ADMIN
# (127.0.0.1:13331), TANDEM_DRIVERS_MODES ("tandem tandem-tls"),
# TANDEM_DRIVERS_DIR (outputs and tandem's log; by default a new
# /tmp/tandem-drivers.XXXXXX, removed when the run passes),
# TANDEM_DRIVERS_SKIP_INSTALL=1, TANDEM_DRIVERS_ALLOW_KNOWN=1.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PAIR_DIR=${TANDEM_PAIR_DIR:-/tmp/tandem-pair}
PORT_A=${TANDEM_PAIR_PORT_A:-13306}
PORT_B=${TANDEM_PAIR_PORT_B:-13307}
LISTEN=${TANDEM_DRIVERS_LISTEN:-127.0.0.1:13330}
ADMIN=${TANDEM_DRIVERS_ADMIN:-127.0.0.1:13331}
ALL_DRIVERS=(php-mysqli php-pdo pymysql mysqldb mysql2 connectorj cli)
MODES=(${TANDEM_DRIVERS_MODES:-tandem tandem-tls})
KNOWN=$ROOT/testdata/drivers/known-differences.txt
CONNECTORJ_JAR=/usr/share/java/mariadb-java-client.jar
NODE_DIR=$ROOT/testdata/drivers/node

say() { printf 'drivers: %s\n' "$*" >&2; }
die() {
	printf 'drivers: error: %s\n' "$*" >&2
	exit 2
}

# shellcheck source=lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"

# --- install ---------------------------------------------------------------

# packages DRIVER...: the Debian packages the drivers need.
packages() {
	local d
	echo mariadb-client openssl # the script's own readiness checks and certificate
	for d in "$@"; do
		case $d in
		php-mysqli | php-pdo) echo php-cli php-mysql ;;
		pymysql) echo python3-pymysql ;;
		mysqldb) echo python3-mysqldb ;;
		connectorj) echo libmariadb-java openjdk-17-jdk-headless ;;
		mysql2) command -v node >/dev/null && command -v npm >/dev/null || echo nodejs npm ;;
		cli) ;;
		*) die "unknown driver $d (known: ${ALL_DRIVERS[*]})" ;;
		esac
	done
}

install() {
	local drivers=("$@") missing=() p i
	((${#drivers[@]} > 0)) || drivers=("${ALL_DRIVERS[@]}")
	for p in $(packages "${drivers[@]}" | tr ' ' '\n' | sort -u); do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if ((${#missing[@]} > 0)); then
		say "installing ${missing[*]}"
		# Other users of the machine may hold apt's lock: retry, bounded.
		for ((i = 1; ; i++)); do
			if (apt_install "${missing[@]}"); then break; fi
			((i < 20)) || die "could not install ${missing[*]}"
			say "apt busy or failing; retrying in 10s ($i/20)"
			sleep 10
		done
	fi
	if [[ " ${drivers[*]} " == *" mysql2 "* ]] &&
		[[ ! -f $NODE_DIR/node_modules/mysql2/package.json || $NODE_DIR/package-lock.json -nt $NODE_DIR/node_modules/.package-lock.json ]]; then
		say "installing mysql2 from testdata/drivers/node/package-lock.json (npm ci)"
		(cd "$NODE_DIR" && timeout 300 npm ci --no-audit --no-fund >/dev/null) || die "npm ci failed in $NODE_DIR"
	fi
}

# --- tandem ----------------------------------------------------------------

TANDEM_PID=""
stop_tandem() {
	[[ -n $TANDEM_PID ]] || return 0
	kill -TERM "$TANDEM_PID" 2>/dev/null || true
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$TANDEM_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$TANDEM_PID" 2>/dev/null || true
	wait "$TANDEM_PID" 2>/dev/null || true
	TANDEM_PID=""
}

# write_config REQUIRE_TLS: tandem's config, without any [[user]].
write_config() {
	local tls=""
	if [[ $1 == 1 ]]; then
		tls="tls_cert = \"$RUN_DIR/cert.pem\"
tls_key = \"$RUN_DIR/key.pem\"
require_tls = true"
	fi
	cat >"$RUN_DIR/tandem.toml" <<EOF
# Written by scripts/drivers.sh: no [[user]], every account comes from the node.
[log]
level = "info"

[proxy]
listen = ["$LISTEN"]
shutdown_timeout = "2s"
# PHP's mysqlnd compresses although tandem offers no compression: tandem
# then waits for the rest of a command that never comes (known-differences).
net_read_timeout = "10s"
$tls

[[node]]
name = "a"
address = "127.0.0.1:$PORT_A"

[[node]]
name = "b"
address = "127.0.0.1:$PORT_B"

[failover]
initial_active = "a"
state_file = "$RUN_DIR/state.json"
admin_user = "tandem"
admin_password = "tandem"

[admin]
listen = "$ADMIN"
EOF
}

# start_tandem REQUIRE_TLS: starts tandem and waits until drv_user can log in
# through it and lands on a writable node.
start_tandem() {
	write_config "$1"
	bin/tandem serve -config "$RUN_DIR/tandem.toml" >>"$RUN_DIR/tandem.log" 2>&1 &
	TANDEM_PID=$!
	local i ro="" ssl=()
	[[ $1 == 1 ]] && ssl=(--ssl --ssl-ca="$RUN_DIR/cert.pem")
	for ((i = 0; i < 150; i++)); do
		kill -0 "$TANDEM_PID" 2>/dev/null || die "tandem exited; see $RUN_DIR/tandem.log: $(tail -5 "$RUN_DIR/tandem.log")"
		ro=$(timeout 10 mariadb --no-defaults -h"${LISTEN%:*}" -P"${LISTEN##*:}" --protocol=tcp "${ssl[@]}" \
			-udrv_user -pdrvpass --connect-timeout=3 -N -B -e 'SELECT @@read_only' 2>/dev/null) || true
		[[ $ro == 0 ]] && return 0
		sleep 0.2
	done
	die "tandem on $LISTEN did not let drv_user reach a writable node within 30s; see $RUN_DIR/tandem.log"
}

# --- drivers ---------------------------------------------------------------

# run_driver DRIVER MODE: runs DRIVER's checks against MODE (direct, tandem,
# tandem-tls) into $RUN_DIR/DRIVER.MODE.out, bounded in time.
run_driver() {
	local drv=$1 mode=$2 host port tls=0
	case $mode in
	direct) host=127.0.0.1 port=$PORT_A ;;
	tandem) host=${LISTEN%:*} port=${LISTEN##*:} ;;
	tandem-tls) host=${LISTEN%:*} port=${LISTEN##*:} tls=1 ;;
	esac
	local cmd=()
	case $drv in
	php-mysqli) cmd=(php -d mysqli.allow_local_infile=1 -d mysqlnd.net_read_timeout=30 -d default_socket_timeout=30 "$ROOT/testdata/drivers/php/checks.php" mysqli) ;;
	php-pdo) cmd=(php -d mysqli.allow_local_infile=1 -d mysqlnd.net_read_timeout=30 -d default_socket_timeout=30 "$ROOT/testdata/drivers/php/checks.php" pdo) ;;
	pymysql) cmd=(/usr/bin/python3 "$ROOT/testdata/drivers/python/checks.py" pymysql) ;;
	mysqldb) cmd=(/usr/bin/python3 "$ROOT/testdata/drivers/python/checks.py" mysqldb) ;;
	mysql2) cmd=(node "$ROOT/testdata/drivers/node/checks.js") ;;
	connectorj) cmd=(java -cp "$RUN_DIR/java:$CONNECTORJ_JAR" Checks) ;;
	cli) cmd=(bash "$ROOT/testdata/drivers/cli/checks.sh") ;;
	*) die "unknown driver $drv (known: ${ALL_DRIVERS[*]})" ;;
	esac
	mkdir -p "$RUN_DIR/work"
	DRV_HOST=$host DRV_PORT=$port DRV_TLS=$tls DRV_CA=$RUN_DIR/cert.pem DRV_WORK=$RUN_DIR/work \
		timeout 300 "${cmd[@]}" >"$RUN_DIR/$drv.$mode.out" 2>"$RUN_DIR/$drv.$mode.err" ||
		echo "exit: $? (stderr in $RUN_DIR/$drv.$mode.err)" >>"$RUN_DIR/$drv.$mode.out"
}

# compare DRIVER MODE: prints "checks same known different" for MODE vs
# direct (known and different: comma-separated names, "-" for none) and,
# on stderr, known differences that are gone.
compare() {
	python3 - "$RUN_DIR/$1.direct.out" "$RUN_DIR/$1.$2.out" "$KNOWN" "$1" <<'PY'
import sys
def load(p):
    d, order = {}, []
    for line in open(p, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        name, _, val = line.partition(": ")
        if name in d:
            name += "#%d" % order.count(name)
        order.append(name)
        d[name] = val
    return order, d
oa, a = load(sys.argv[1])
ob, b = load(sys.argv[2])
known, mine = set(), set()
for line in open(sys.argv[3], encoding="utf-8"):
    f = line.rstrip("\n").split("\t")
    if len(f) >= 2 and not line.startswith("#") and f[0] in ("*", sys.argv[4]):
        known.add(f[1])
        if f[0] != "*":
            mine.add(f[1])
names = oa + [n for n in ob if n not in a]
diff = [n for n in names if a.get(n) != b.get(n)]
k = [n for n in diff if n in known]
u = [n for n in diff if n not in known]
for n in sorted(mine - set(diff)):
    print("drivers: %s: known difference %s no longer differs (update %s)" % (sys.argv[4], n, sys.argv[3]), file=sys.stderr)
print(len(names), len(names) - len(diff), ",".join(k) or "-", ",".join(u) or "-")
PY
}

run() {
	local drivers=("$@")
	((${#drivers[@]} > 0)) || drivers=("${ALL_DRIVERS[@]}")
	RUN_DIR=${TANDEM_DRIVERS_DIR:-$(mktemp -d /tmp/tandem-drivers.XXXXXX)}
	mkdir -p "$RUN_DIR"
	: >"$RUN_DIR/tandem.log"
	trap stop_tandem EXIT
	say "outputs in $RUN_DIR"
	for port in "${LISTEN##*:}" "${ADMIN##*:}"; do
		if ss -Hltn "sport = :$port" | grep -q .; then
			die "port $port is already in use: $(ss -Hltnp "sport = :$port" | head -1)"
		fi
	done
	# The normal state (a writable, b read-only, in sync): the direct
	# runs write to node a, whatever an earlier test left.
	scripts/pair.sh up >&2
	scripts/pair.sh reset >&2
	GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
	"$GO" build -o bin/tandem ./cmd/tandem
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$RUN_DIR/key.pem" -out "$RUN_DIR/cert.pem" 2>/dev/null ||
		die "openssl could not make a certificate"
	timeout 60 mariadb --no-defaults --protocol=socket -S "$PAIR_DIR/a/mysqld.sock" -uroot \
		<testdata/drivers/setup.sql || die "setting up accounts on node a failed"
	if [[ " ${drivers[*]} " == *" connectorj "* ]]; then
		mkdir -p "$RUN_DIR/java"
		javac -cp "$CONNECTORJ_JAR" -d "$RUN_DIR/java" testdata/drivers/java/Checks.java || die "javac failed"
	fi

	local drv
	for drv in "${drivers[@]}"; do
		say "$drv: direct"
		run_driver "$drv" direct
	done
	local mode
	for mode in "${MODES[@]}"; do
		case $mode in
		tandem) start_tandem 0 ;;
		tandem-tls) start_tandem 1 ;;
		*) die "unknown mode $mode (tandem, tandem-tls)" ;;
		esac
		for drv in "${drivers[@]}"; do
			say "$drv: through $mode"
			run_driver "$drv" "$mode"
		done
		stop_tandem
	done

	local fail=0 n same known diff
	printf '\n%-12s %-11s %6s %5s  %-28s %s\n' driver mode checks same known-different different
	for drv in "${drivers[@]}"; do
		for mode in "${MODES[@]}"; do
			read -r n same known diff < <(compare "$drv" "$mode")
			printf '%-12s %-11s %6s %5s  %-28s %s\n' "$drv" "$mode" "$n" "$same" "$known" "$diff"
			if [[ $diff != - ]] || ((n == 0)); then fail=1; fi
			if [[ $known != - && ${TANDEM_DRIVERS_ALLOW_KNOWN:-0} != 1 ]]; then fail=1; fi
		done
	done
	echo
	if ((fail == 0)) && [[ -z ${TANDEM_DRIVERS_DIR:-} ]]; then
		rm -rf "$RUN_DIR"
	else
		echo "outputs: $RUN_DIR/DRIVER.{direct,$(
			IFS=,
			echo "${MODES[*]}"
		)}.out (kept), tandem's log: $RUN_DIR/tandem.log"
	fi
	echo "causes of known differences: testdata/drivers/known-differences.txt"
	return $fail
}

case ${1:-run} in
install)
	shift
	install "$@"
	;;
run)
	shift || true
	[[ ${TANDEM_DRIVERS_SKIP_INSTALL:-0} == 1 ]] || install "$@"
	run "$@"
	;;
-h | --help) sed -n '2,30p' "$0" ;;
*) die "unknown command $1 (install | run [DRIVER...])" ;;
esac
