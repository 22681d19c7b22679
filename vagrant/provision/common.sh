# shellcheck shell=bash
# Shared by vagrant/provision/*.sh (run as root inside the VMs, repo synced
# to /vagrant). The addresses and templates are the namespace lab's
# (lab/lab.sh, lab/templates/).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
REPO=${REPO:-/vagrant}
# shellcheck source=SCRIPTDIR/../../lab/render.sh
source "$REPO/lab/render.sh"
# Used by the scripts that source this file:
# shellcheck disable=SC2034
TEMPLATES=$REPO/lab/templates VIP4=198.18.1.100 VIP6=fd00:1b:1::100 ROUTER_AS=65000 LB_AS=65001 HOLD_TIME=3

# iface_of IPV4: the interface that has IPV4 (Vagrant names them).
iface_of() {
	local dev
	dev=$(ip -o -4 addr show | awk -v a="$1" '{ split($4, p, "/"); if (p[1] == a) print $2 }' | head -n 1)
	[[ -n $dev ]] || { echo "no interface has $1" >&2; return 1; }
	echo "$dev"
}

# add6 IPV4 IPV6/LEN: give the interface with IPV4 the lab's IPv6 address too.
add6() {
	local dev
	dev=$(iface_of "$1")
	ip -6 addr replace "$2" dev "$dev" nodad
}

apt_install() {
	dpkg-query -W -f='${Status}' "$@" 2>/dev/null | grep -c "install ok installed" | grep -qx "$#" && return 0
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# persist_sysctl NAME KEY=VALUE...: set now and at boot.
persist_sysctl() {
	local name=$1 kv
	shift
	: >"/etc/sysctl.d/90-lbd-lab-$name.conf"
	for kv in "$@"; do
		echo "$kv" >>"/etc/sysctl.d/90-lbd-lab-$name.conf"
		sysctl -qw "$kv"
	done
}
