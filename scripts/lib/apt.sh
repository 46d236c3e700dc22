# apt.sh — install Debian packages without starting their services.
# Sourced by the project's scripts; the caller defines say and die.
#
# apt_install PACKAGE...: installs the packages (root only), with
# /usr/sbin/policy-rc.d answering 101 ("action forbidden") meanwhile so
# that no packaged service starts (a packaged mariadb would take 3306,
# which is tandem's); a policy-rc.d that was already there is put back.
# Updates the package lists first when they do not know the first package
# (a fresh machine). On failure prints the end of apt's log and dies.

apt_install() {
	local policy=/usr/sbin/policy-rc.d log rc=0 caller_trap
	APT_POLICY_BACKUP=""
	[[ $(id -u) == 0 ]] || die "installing $* needs root (apt-get install $*)"
	if [[ -e $policy ]]; then
		APT_POLICY_BACKUP=$(mktemp)
		cp -p "$policy" "$APT_POLICY_BACKUP"
	fi
	# Put the policy back even if the script is stopped meanwhile; the
	# caller's own EXIT trap is restored afterwards.
	caller_trap=$(trap -p EXIT)
	trap 'apt_restore_policy' EXIT
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	log=$(mktemp)
	if ! apt-cache show "$1" >/dev/null 2>&1; then
		apt-get update -qq >"$log" 2>&1 || rc=$?
	fi
	((rc != 0)) || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >>"$log" 2>&1 || rc=$?
	apt_restore_policy
	eval "${caller_trap:-trap - EXIT}"
	if ((rc != 0)); then
		tail -n 30 "$log" >&2
		rm -f "$log"
		die "apt-get failed (exit $rc) installing $*"
	fi
	rm -f "$log"
}

# apt_restore_policy puts back the policy-rc.d apt_install replaced.
apt_restore_policy() {
	if [[ -n ${APT_POLICY_BACKUP:-} ]]; then
		cp -p "$APT_POLICY_BACKUP" /usr/sbin/policy-rc.d
		rm -f "$APT_POLICY_BACKUP"
		APT_POLICY_BACKUP=""
	else
		rm -f /usr/sbin/policy-rc.d
	fi
}
