#!/bin/bash
# One-shot service of docker-compose.yml: points each node's replica at the
# other node (GTID auto-positioning) and starts it, so node-a and node-b
# replicate both ways. Runs in a mysql:8.0 container once both nodes are
# healthy; tandem starts only after it exited 0.
#
# docker compose runs it again on every `up`. A node whose replication is
# already configured is left exactly as it is: after a failover tandem has
# stopped the new active node's replica on purpose, and starting it again
# here would undo that decision.
set -euo pipefail

NODES=(node-a node-b)
REPL_USER=repl
REPL_PASSWORD=replpass # as created by init/01-accounts.sql
WAIT_SECONDS=60

peer() { if [[ $1 == node-a ]]; then echo node-b; else echo node-a; fi; }
say() { echo "replication-setup: $*"; }

# Root's password goes in an option file, not on the command line.
umask 077
cnf=$(mktemp)
trap 'rm -f "$cnf"' EXIT
printf '[client]\nuser=root\npassword="%s"\nport=3306\nprotocol=tcp\nconnect-timeout=5\n' \
	"${MYSQL_ROOT_PASSWORD:?MYSQL_ROOT_PASSWORD is not set}" >"$cnf"

# sql HOST STATEMENT... runs the statements on HOST, tab-separated output
# without column names.
sql() {
	local host=$1
	shift
	mysql --defaults-extra-file="$cnf" --host="$host" --batch --skip-column-names -e "$*"
}

for n in "${NODES[@]}"; do
	for ((i = 0; ; i++)); do
		sql "$n" 'SELECT 1' >/dev/null 2>&1 && break
		((i < WAIT_SECONDS)) || { say "$n does not answer"; sql "$n" 'SELECT 1'; exit 1; }
		sleep 1
	done
done

configured=()
for n in "${NODES[@]}"; do
	p=$(peer "$n")
	status=$(sql "$n" 'SHOW REPLICA STATUS')
	if [[ -n $status ]]; then
		say "$n: replication already configured; left as it is"
		continue
	fi
	say "$n: gtid_executed='$(sql "$n" 'SELECT @@GLOBAL.gtid_executed')'; replicating from $p"
	sql "$n" "CHANGE REPLICATION SOURCE TO
		SOURCE_HOST='$p', SOURCE_PORT=3306,
		SOURCE_USER='$REPL_USER', SOURCE_PASSWORD='$REPL_PASSWORD',
		SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1,
		SOURCE_CONNECT_RETRY=2, SOURCE_RETRY_COUNT=86400, SOURCE_HEARTBEAT_PERIOD=1;
		START REPLICA;"
	configured+=("$n")
done

# Both threads of every replica started here must run: the receiver
# connected to its source, the applier without error.
for n in ${configured[@]+"${configured[@]}"}; do
	for ((i = 0; ; i++)); do
		io=$(sql "$n" "SELECT SERVICE_STATE FROM performance_schema.replication_connection_status WHERE CHANNEL_NAME = ''")
		applier=$(sql "$n" "SELECT SERVICE_STATE FROM performance_schema.replication_applier_status WHERE CHANNEL_NAME = ''")
		[[ $io == ON && $applier == ON ]] && break
		if ((i >= WAIT_SECONDS)); then
			say "$n: replication did not start (receiver $io, applier $applier)"
			mysql --defaults-extra-file="$cnf" --host="$n" -e 'SHOW REPLICA STATUS\G'
			exit 1
		fi
		sleep 1
	done
	say "$n: replicating from $(peer "$n")"
done

for n in "${NODES[@]}"; do
	say "$n: read_only=$(sql "$n" 'SELECT @@GLOBAL.read_only') super_read_only=$(sql "$n" 'SELECT @@GLOBAL.super_read_only') $(sql "$n" "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_%_status'" | tr '\t\n' '= ')"
done
