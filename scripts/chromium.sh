#!/usr/bin/env bash
# chromium.sh — install Debian's headless-capable Chromium if it is missing.
# The admin API's browser test (admin/browser_test.go) drives it to prove
# that no web page can use the admin API. Installing needs root; the
# package's services (none today) are kept from starting, as in pair.sh.
#
# Usage: scripts/chromium.sh install
set -euo pipefail

say() { printf 'chromium: %s\n' "$*"; }
die() { printf 'chromium: error: %s\n' "$*" >&2; exit 1; }

cmd_install() {
	if command -v chromium >/dev/null 2>&1; then
		return 0
	fi
	[[ $(id -u) == 0 ]] || die "chromium is not installed and installing it needs root (apt-get install chromium)"
	say "installing chromium from Debian"
	local policy=/usr/sbin/policy-rc.d backup="" log
	if [[ -e $policy ]]; then
		backup=$(mktemp)
		cp -p "$policy" "$backup"
	fi
	restore_policy() {
		if [[ -n $backup ]]; then
			cp -p "$backup" "$policy"
			rm -f "$backup"
		else
			rm -f "$policy"
		fi
	}
	trap restore_policy EXIT
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	log=$(mktemp)
	local rc=0
	# A fresh machine may have no package lists yet.
	if ! apt-cache show chromium >/dev/null 2>&1; then
		apt-get update -qq >"$log" 2>&1 || rc=$?
	fi
	((rc != 0)) || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		chromium >"$log" 2>&1 || rc=$?
	restore_policy
	trap - EXIT
	if ((rc != 0)); then
		tail -n 30 "$log" >&2
		rm -f "$log"
		die "apt-get failed (exit $rc) installing chromium"
	fi
	rm -f "$log"
	say "installed $(chromium --version 2>/dev/null | head -n1)"
}

case "${1:-}" in
install) cmd_install ;;
*) die "usage: scripts/chromium.sh install" ;;
esac
