#!/usr/bin/env bash
# compat.sh — `make compat`: client test suites run directly against node a
# of the local pair and through tandem, compared test by test (README,
# "Compatibility").
#
# Usage: scripts/compat.sh [install | run [cmd/compat flags...]]
#
# install: installs Debian's mariadb-test (mysql-test-run) if missing.
# run (the default): install, start the pair (scripts/pair.sh up), build
# bin/tandem, then `go run ./cmd/compat`, which prepares the pair (accounts
# and databases the suites need, mysql-test-run's server settings on node a,
# node b ignoring the suites' tables meanwhile; all put back afterwards),
# starts tandem with no [[user]] entries, runs each suite both ways and
# prints the table (the tests of TLS to the server go through a second
# tandem that reaches node a over TCP with verify-full TLS). Exit 1 when a
# test differs.
#
# Environment: TANDEM_COMPAT_LISTEN (127.0.0.1:13330, tandem's client
# address), TANDEM_COMPAT_ADMIN (127.0.0.1:13331), TANDEM_COMPAT_DIR
# (.compat, logs and each run's output), TANDEM_COMPAT_SUITES (gosql,mtr),
# and the pair's TANDEM_PAIR_DIR, TANDEM_PAIR_PORT_A, TANDEM_PAIR_PORT_B.
set -euo pipefail

cd "$(dirname "$0")/.."

say() { printf 'compat: %s\n' "$*"; }
die() { printf 'compat: error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=lib/apt.sh
. scripts/lib/apt.sh

MTR_DIR=/usr/share/mysql/mysql-test

cmd_install() {
	if [[ -f $MTR_DIR/mariadb-test-run.pl ]] && command -v mariadb-test >/dev/null 2>&1; then
		return 0
	fi
	say "installing mariadb-test (mysql-test-run)"
	apt_install mariadb-test
	[[ -f $MTR_DIR/mariadb-test-run.pl ]] || die "mariadb-test installed but $MTR_DIR/mariadb-test-run.pl is missing"
}

find_go() {
	if command -v go >/dev/null 2>&1; then return; fi
	[[ -x /usr/local/go/bin/go ]] || die "Go is not installed (want Go 1.26+ in /usr/local/go)"
	export PATH=/usr/local/go/bin:$PATH
}

# trust_mtr_ca: the pair's nodes also trust mysql-test-run's test CA
# (std_data/cacert.pem), as the servers mysql-test-run starts itself do:
# its TLS tests present client certificates signed by that CA
# (main.ssl_8k_key), which the nodes would otherwise refuse directly. The CA
# is appended to the pair's CA file, which the nodes use as ssl_ca (tandem
# goes on verifying the nodes' certificates with it: they are signed by the
# pair's own CA, still first in the file), and FLUSH SSL reloads it.
trust_mtr_ca() {
	local mtr_ca=$MTR_DIR/std_data/cacert.pem sock
	[[ -s $mtr_ca ]] || die "$mtr_ca is missing (mariadb-test)"
	eval "$(scripts/pair.sh env)"
	if ! grep -qF "$(sed -n 2p "$mtr_ca")" "$TANDEM_PAIR_CA"; then
		cat "$mtr_ca" >>"$TANDEM_PAIR_CA"
		say "the pair's nodes trust mysql-test-run's test CA too ($TANDEM_PAIR_CA)"
	fi
	for sock in "$TANDEM_PAIR_SOCK_A" "$TANDEM_PAIR_SOCK_B"; do
		mariadb --protocol=socket -S "$sock" -uroot -e 'FLUSH SSL'
	done
}

cmd_run() {
	cmd_install
	find_go
	scripts/pair.sh up
	trust_mtr_ca
	go build -o bin/tandem ./cmd/tandem
	go run ./cmd/compat \
		-tandem bin/tandem \
		-dir "${TANDEM_COMPAT_DIR:-.compat}" \
		-suites "${TANDEM_COMPAT_SUITES:-gosql,mtr}" \
		"$@"
}

case ${1:-run} in
install) cmd_install ;;
run)
	shift || true
	cmd_run "$@"
	;;
-*) cmd_run "$@" ;;
*) die "usage: scripts/compat.sh [install | run [cmd/compat flags...]]" ;;
esac
