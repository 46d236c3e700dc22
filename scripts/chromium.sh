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

# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

cmd_install() {
	if command -v chromium >/dev/null 2>&1; then
		return 0
	fi
	[[ $(id -u) == 0 ]] || die "chromium is not installed and installing it needs root (apt-get install chromium)"
	say "installing chromium from Debian"
	apt_install chromium
	say "installed $(chromium --version 2>/dev/null | head -n1)"
}

case "${1:-}" in
install) cmd_install ;;
*) die "usage: scripts/chromium.sh install" ;;
esac
