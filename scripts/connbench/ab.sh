#!/usr/bin/env bash
# ab.sh — A/B of two tandem binaries against HAProxy on one workload: the
# three targets alternate (the order rotating each round), and the medians of
# requests (or transactions) per second and of proxy CPU per request are
# printed. For measuring a change to the data path without the 20 minutes of
# make bench. The pair must be up and prepared (a make bench run, or
# scripts/bench.sh with BENCH_CONN_CLIENTS=1 BENCH_ROUNDS=1, prepares it).
#
# Usage: scripts/connbench/ab.sh OLD_BINARY NEW_BINARY
# Environment (defaults in brackets):
#   AB_TEST [connect_select]  connect_select, connect_rw, oltp_point_select or oltp_read_write
#   AB_CLIENTS [8]  AB_ROUNDS [5]  AB_SECONDS [5]
#   AB_PORT_BASE [22340]: HAProxy on +1, old tandem on +0 (admin +2), new on +3 (admin +4)
#   TANDEM_PAIR_PORT_A [13306]  TANDEM_PAIR_PORT_B [13307]  (node a is the active one)
#   AB_DIR [a new directory under /tmp]: logs and results
# Every run is bounded (timeout), and the proxies are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

(($# == 2)) || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }
OLD=$(realpath "$1")
NEW=$(realpath "$2")
[[ -x $OLD && -x $NEW ]] || { echo "ab: $OLD or $NEW is not executable" >&2; exit 2; }
TEST=${AB_TEST:-connect_select}
CLIENTS=${AB_CLIENTS:-8}
ROUNDS=${AB_ROUNDS:-5}
SECS=${AB_SECONDS:-5}
BASE=${AB_PORT_BASE:-22340}
for v in CLIENTS ROUNDS SECS BASE; do
	[[ ${!v} =~ ^[0-9]+$ ]] || { echo "ab: $v must be a whole number" >&2; exit 2; }
done
case $TEST in connect_select | connect_rw | oltp_point_select | oltp_read_write) ;;
*) echo "ab: AB_TEST $TEST unknown" >&2; exit 2 ;;
esac
NODE_A=127.0.0.1:${TANDEM_PAIR_PORT_A:-13306}
NODE_B=127.0.0.1:${TANDEM_PAIR_PORT_B:-13307}
DIR=${AB_DIR:-$(mktemp -d /tmp/tandem-ab.XXXXXX)}
mkdir -p "$DIR"
say() { printf 'ab: %s\n' "$*" >&2; }

declare -A ADDR PID
ADDR[old]=127.0.0.1:$BASE
ADDR[haproxy]=127.0.0.1:$((BASE + 1))
ADDR[new]=127.0.0.1:$((BASE + 3))

cleanup() {
	local t
	for t in "${!PID[@]}"; do
		kill -TERM "${PID[$t]}" 2>/dev/null || true
	done
	for t in "${!PID[@]}"; do
		timeout 15 tail --pid="${PID[$t]}" -f /dev/null 2>/dev/null || kill -KILL "${PID[$t]}" 2>/dev/null || true
	done
}
trap cleanup EXIT

tandem_config() { # name listen admin
	cat <<EOF
[log]
level = "warn"
format = "text"
[proxy]
listen = ["$2"]
max_connections = 4096
shutdown_timeout = "5s"
max_procs = 1
[admin]
listen = "$3"
[[user]]
name = "app"
password = "apppass"
[[node]]
name = "a"
address = "$NODE_A"
tls = "off"
[[node]]
name = "b"
address = "$NODE_B"
tls = "off"
[failover]
initial_active = "a"
state_file = "$DIR/state-$1.json"
admin_user = "tandem"
admin_password = "tandem"
schema = "tandem_ab_$1"
fail_after = 100000
EOF
}
tandem_config old "${ADDR[old]}" "127.0.0.1:$((BASE + 2))" >"$DIR/old.toml"
tandem_config new "${ADDR[new]}" "127.0.0.1:$((BASE + 4))" >"$DIR/new.toml"
"$OLD" serve -config "$DIR/old.toml" >"$DIR/old.log" 2>&1 &
PID[old]=$!
"$NEW" serve -config "$DIR/new.toml" >"$DIR/new.log" 2>&1 &
PID[new]=$!
BENCH_HAPROXY_LISTEN=${ADDR[haproxy]} BENCH_PRIMARY=$NODE_A BENCH_BACKUP=$NODE_B \
	haproxy -db -f "$ROOT/testdata/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 &
PID[haproxy]=$!

go build -o "$DIR/connbench" ./scripts/connbench
for t in old new haproxy; do
	ok=0
	for ((i = 0; i < 100; i++)); do
		if timeout 10 mariadb --protocol=tcp -h127.0.0.1 -P"${ADDR[$t]##*:}" -uapp -papppass \
			--connect-timeout=3 -N -B -e 'SELECT 1' sbtest >/dev/null 2>&1; then
			ok=1
			break
		fi
		sleep 0.1
	done
	((ok)) || { say "$t on ${ADDR[$t]} did not answer; see $DIR/$t.log"; exit 1; }
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)
run_one() { # target log
	local addr=${ADDR[$1]}
	case $TEST in
	connect_*)
		timeout $((SECS + 60)) "$DIR/connbench" -addr "$addr" -work "${TEST#connect_}" \
			-clients "$CLIENTS" -duration "${SECS}s" >"$2" 2>&1
		;;
	*)
		timeout $((SECS + 60)) sysbench "$TEST" --db-driver=mysql --mysql-user=app --mysql-password=apppass \
			--mysql-db=sbtest --mysql-ssl=off --tables=4 --table-size=10000 \
			--mysql-host=127.0.0.1 --mysql-port="${addr##*:}" --db-ps-mode=auto \
			--mysql-ignore-errors=1213,1020,1205 --threads="$CLIENTS" --time="$SECS" \
			--events=0 --report-interval=0 --percentile=95 run >"$2" 2>&1
		;;
	esac
}

# Node a's mariadbd (the active node): its CPU per request too, and for
# connect_* the client's (connbench reports its own).
NODE_PID=$(cat "${TANDEM_PAIR_DIR:-/tmp/tandem-pair}/a/mysqld.pid" 2>/dev/null || true)
[[ $NODE_PID =~ ^[0-9]+$ ]] && kill -0 "$NODE_PID" 2>/dev/null || NODE_PID=
printf 'round\ttarget\ttps\tcpu_us_per_txn\tp95_ms\tnode_cpu_us\tclient_cpu_us\n' >"$DIR/raw.tsv"
TARGETS=(old new haproxy)
for ((r = 0; r < ROUNDS; r++)); do
	for ((k = 0; k < 3; k++)); do
		t=${TARGETS[$(((k + r) % 3))]}
		log=$DIR/run-$r-$t.log
		c0=$(cpu_ticks "${PID[$t]}")
		n0=$([[ -n $NODE_PID ]] && cpu_ticks "$NODE_PID" || echo 0)
		run_one "$t" "$log" || { say "run $r $t failed: $(tail -3 "$log")"; exit 1; }
		c1=$(cpu_ticks "${PID[$t]}")
		n1=$([[ -n $NODE_PID ]] && cpu_ticks "$NODE_PID" || echo 0)
		tps=$(sed -nE 's/.*transactions: +([0-9]+) +\(([0-9.]+) per sec.*/\2/p' "$log")
		n=$(sed -nE 's/.*transactions: +([0-9]+) .*/\1/p' "$log")
		p95=$(sed -nE 's/.*95th percentile: +([0-9.]+).*/\1/p' "$log")
		cpu=$(awk -v a="$c0" -v b="$c1" -v n="$n" -v hz="$CLK_TCK" 'BEGIN{printf "%.1f", (b-a)/hz*1e6/n}')
		ncpu=$(awk -v a="$n0" -v b="$n1" -v n="$n" -v hz="$CLK_TCK" 'BEGIN{printf "%.1f", (b-a)/hz*1e6/n}')
		ccpu=$(sed -nE 's/.*client CPU per request: +([0-9.]+) us.*/\1/p' "$log")
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "$tps" "$cpu" "$p95" "$ncpu" "${ccpu:--}" >>"$DIR/raw.tsv"
		say "round $r $t: $tps/s, $cpu us CPU per request, p95 $p95 ms, node $ncpu us, client ${ccpu:--} us"
	done
done

median() { sort -g | awk '{a[NR]=$1} END{if (NR == 0) exit; if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
echo "$TEST, $CLIENTS clients, $ROUNDS rounds of ${SECS}s (results in $DIR):"
declare -A MT MC
for t in old new haproxy; do
	MT[$t]=$(awk -F'\t' -v t="$t" '$2==t {print $3}' "$DIR/raw.tsv" | median)
	MC[$t]=$(awk -F'\t' -v t="$t" '$2==t {print $4}' "$DIR/raw.tsv" | median)
	printf '  %-8s %10s /s  %8s us CPU/request  p95 %s ms  node %s us  client %s us\n' "$t" "${MT[$t]}" "${MC[$t]}" \
		"$(awk -F'\t' -v t="$t" '$2==t {print $5}' "$DIR/raw.tsv" | median)" \
		"$(awk -F'\t' -v t="$t" '$2==t {print $6}' "$DIR/raw.tsv" | median)" \
		"$(awk -F'\t' -v t="$t" '$2==t && $7!="-" {print $7}' "$DIR/raw.tsv" | median | grep . || echo -)"
done
awk -v o="${MT[old]}" -v n="${MT[new]}" -v h="${MT[haproxy]}" \
	'BEGIN{printf "  old/HAProxy %.2f  new/HAProxy %.2f  new/old %.2f\n", o/h, n/h, n/o}'
