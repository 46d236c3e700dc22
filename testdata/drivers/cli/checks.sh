#!/usr/bin/env bash
# The mariadb command-line client's checks for scripts/drivers.sh.
#
# Environment: DRV_HOST, DRV_PORT, DRV_TLS (1 = TLS with DRV_CA), DRV_WORK.
# Prints one stable line per check, "name: result" (the client's output,
# stdout and stderr, newlines shown as " | "); lines starting with "#" are
# not compared.
set -uo pipefail

TLS_ARGS=()
[[ ${DRV_TLS:-0} == 1 ]] && TLS_ARGS=(--ssl --ssl-ca="$DRV_CA")

# m [ARGS...]: the client as drv_user on drvtest, bounded in time; the
# first arguments may override the account (-u, -p) or add options.
m() {
	timeout 120 mariadb --no-defaults -h"$DRV_HOST" -P"$DRV_PORT" --protocol=tcp "${TLS_ARGS[@]}" \
		--connect-timeout=10 -udrv_user -pdrvpass -D drvtest -N -B "$@"
}

# vm ARGS...: m in verbose mode (statements echoed, "N rows affected"),
# without the timings.
vm() {
	m -vvv "$@" 2>&1 | grep -vE '^(--------------|Bye)?$' | sed 's/ ([0-9.]* sec)//'
}

# fresh TABLE DEFINITION: drops and creates a table quietly (whether a DROP
# warns depends on earlier runs).
fresh() {
	m -e "DROP TABLE IF EXISTS $1; CREATE TABLE $1 $2"
}

# check NAME CMD...: runs CMD and prints its output on one line.
check() {
	local name=$1 out
	shift
	out=$("$@" 2>&1)
	out=${out//$'\n'/ | }
	printf '%s: %s\n' "$name" "$out"
}

echo "# driver cli $(mariadb --version)"
printf '# tls: %s\n' "$(m -e 'status' 2>&1 | grep -i '^SSL:' | sed 's/Cipher in use is .*/cipher in use/')"
check connect m -e 'SELECT CURRENT_USER(), DATABASE(), @@character_set_client'

thread_id() {
	local out st id
	out=$(m -e 'status; SELECT CONNECTION_ID()') || return 1
	st=$(sed -n 's/^Connection id:[[:space:]]*//p' <<<"$out")
	id=$(tail -1 <<<"$out")
	[[ $st == "$id" ]] && echo equal || echo "differ (status $st, CONNECTION_ID() $id)"
}
check thread_id thread_id
server() {
	m -e 'status' | grep -E '^(Server:|Server version:|Protocol version:|Server characterset:|Conn\.  characterset:)'
}
check server server
check wrong_password m -udrv_user -pwrong -e 'SELECT 1'
check locked_account m -udrv_locked -plockedpass -e 'SELECT 1'
check host_pattern_specific m -udrv_host -phostpass1 -e 'SELECT CURRENT_USER()'
check host_pattern_shadowed m -udrv_host -phostpass2 -e 'SELECT CURRENT_USER()'
check host_pattern_nomatch m -udrv_far -pfarpass -e 'SELECT CURRENT_USER()'
check unknown_user m -udrv_nobody -px -e 'SELECT 1'
check no_password m -udrv_nopw --skip-password -e 'SELECT CURRENT_USER()'
check expired_password m -udrv_expired -pexpiredpass -e 'SELECT CURRENT_USER()'
check unknown_db m -D drv_nodb -e 'SELECT 1'
check db_denied m -udrv_other -potherpass -D mysql -e 'SELECT 1'

# wait_state ID STATE: polls the process list (bounded) for thread ID in STATE.
wait_state() {
	local i
	for ((i = 0; i < 300; i++)); do
		[[ -n $(m -e "SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = $1 AND STATE = '$2'") ]] && return 0
		sleep 0.1
	done
	return 1
}

kill_query() {
	local f=$DRV_WORK/cli-sleeper.out pid id
	m --unbuffered -e 'SELECT CONNECTION_ID(); SELECT SLEEP(60); SELECT "alive"' >"$f" 2>&1 &
	pid=$!
	for ((i = 0; i < 300; i++)); do
		id=$(head -1 "$f")
		[[ -n $id ]] && break
		sleep 0.1
	done
	wait_state "$id" 'User sleep' || { echo "sleeping thread never seen"; kill "$pid"; return; }
	m -e "KILL QUERY $id"
	wait "$pid"
	echo "exit=$?"
	tail -n +2 "$f"
}
check kill_query kill_query

kill_other_user() {
	local f=$DRV_WORK/cli-victim.out pid id out
	m --unbuffered -e 'SELECT CONNECTION_ID(); SELECT SLEEP(3); SELECT "alive"' >"$f" 2>&1 &
	pid=$!
	for ((i = 0; i < 300; i++)); do
		id=$(head -1 "$f")
		[[ -n $id ]] && break
		sleep 0.1
	done
	out=$(m -udrv_other -potherpass -e "KILL $id" 2>&1)
	echo "${out//$id/<victim>}"
	wait "$pid"
	tail -n +2 "$f"
}
check kill_other_user kill_other_user
check kill_unknown m -e 'KILL QUERY 999999999'
check kill_self m -e 'SELECT 1; KILL CONNECTION_ID(); SELECT 2'
check multi_statements m -e "SELECT 1; SELECT 'two', 2; DO 3"
check procedure m -e 'CALL drv_proc(5, @y); SELECT @y'
check sql_prepare m -e "PREPARE s FROM 'SELECT ? + 1'; SET @a = 41; EXECUTE s USING @a; DEALLOCATE PREPARE s"
fresh drv_cli_tx '(id INT PRIMARY KEY)'
check transaction m -e 'BEGIN; INSERT INTO drv_cli_tx VALUES (1); ROLLBACK; SELECT COUNT(*) FROM drv_cli_tx;
	BEGIN; INSERT INTO drv_cli_tx VALUES (2); COMMIT; SELECT COUNT(*) FROM drv_cli_tx'
fresh drv_cli_aff '(id INT PRIMARY KEY, v INT)'
check affected_rows vm -e 'INSERT INTO drv_cli_aff VALUES (1, 1), (2, 2); UPDATE drv_cli_aff SET v = 1'
fresh drv_cli_ai '(id INT AUTO_INCREMENT PRIMARY KEY, v INT)'
check last_insert_id m -e 'INSERT INTO drv_cli_ai (v) VALUES (1), (2); SELECT LAST_INSERT_ID(); INSERT INTO drv_cli_ai (v) VALUES (3); SELECT LAST_INSERT_ID()'
check compression m --compress -e "SHOW SESSION STATUS LIKE 'Compression'; SELECT LENGTH(REPEAT('abc', 400000)), MD5(REPEAT('abc', 400000))"

load_data() {
	local f=$DRV_WORK/infile-cli.csv i
	for ((i = 1; i <= 1000; i++)); do echo "$i,row $i"; done >"$f"
	fresh drv_cli_load '(id INT PRIMARY KEY, v VARCHAR(20))'
	vm --local-infile=1 -e "LOAD DATA LOCAL INFILE '$f' INTO TABLE drv_cli_load FIELDS TERMINATED BY ','; SELECT COUNT(*), SUM(id), MAX(v) FROM drv_cli_load"
}
check load_data_local load_data
check load_data_local_refused m --local-infile=0 -e "LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE drv_t"

large_result() {
	m --quick -e "SELECT seq, REPEAT('x', seq % 100) FROM seq_1_to_200000" | awk '{n++; s+=$1; b+=length($2)} END {print "rows=" n, "sum=" s, "bytes=" b}'
}
check large_result large_result
big_value() {
	m --max-allowed-packet=256M -e "SELECT REPEAT('y', 20 * 1024 * 1024)" | tr -d '\n' | md5sum | cut -d' ' -f1
}
check big_value big_value
big_insert() {
	fresh drv_cli_big '(b LONGBLOB)'
	{
		printf "INSERT INTO drv_cli_big VALUES ('"
		head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' 'z'
		printf "');\nSELECT LENGTH(b), MD5(b) FROM drv_cli_big;\n"
	} | m --max-allowed-packet=256M
}
check big_insert big_insert
check error_syntax m -e 'SELEC 1'
check error_no_table m -e 'SELECT * FROM drv_no_such_table'
check error_too_long m -e "INSERT INTO drv_t (k) VALUES (REPEAT('k', 100))"
check warnings m --show-warnings -e "SELECT 1/0, CAST('12abc' AS INT)"
check charset m --default-character-set=utf8mb4 -e "SELECT '😀', CHAR_LENGTH('😀'), HEX('é')"

script() {
	fresh drv_cli_script '(id INT PRIMARY KEY, v VARCHAR(10))'
	vm --force <<'SQL'
INSERT INTO drv_cli_script VALUES (1, 'a'), (2, 'b');
INSERT INTO drv_cli_script VALUES (1, 'dup');
SET @n := (SELECT COUNT(*) FROM drv_cli_script);
USE mysql;
SELECT @n, DATABASE();
USE drvtest;
CREATE TEMPORARY TABLE drv_cli_tmp (x INT);
INSERT INTO drv_cli_tmp VALUES (7);
SELECT * FROM drv_cli_tmp;
SELECT GET_LOCK('drv_cli', 1), RELEASE_LOCK('drv_cli');
SHOW WARNINGS;
SQL
}
check script script
