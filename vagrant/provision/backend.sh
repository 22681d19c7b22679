#!/usr/bin/env bash
# A backend VM: the kernel's ipip module decapsulates lbd's IPv4-in-IPv4 (and
# ip6_tunnel its IPv6-in-IPv6), the VIPs are on lo, nginx serves a page that
# names the backend (lab/templates/nginx.conf.tmpl, the namespace lab's), and
# tests/lib/flows.py runs the TCP echo (:7000) and UDP echo (:5300) servers.
# Usage: backend.sh J
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" 2>/dev/null || source /vagrant/vagrant/provision/common.sh
j=${1:?backend number}
addr4=198.18.30.1$j

# nginx-light's own service is not used (policy-rc.d keeps it from starting).
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt_install nginx-light python3 iproute2
systemctl disable --now nginx >/dev/null 2>&1 || true

dev=$(iface_of "$addr4")
add6 "$addr4" "fd00:1b:30::1$j/64"
ip route replace 198.18.0.0/15 via 198.18.30.1 dev "$dev"
ip -6 route replace fd00:1b::/32 via fd00:1b:30::1 dev "$dev"

modprobe ipip
modprobe ip6_tunnel
ip link set tunl0 up
ip link set ip6tnl0 up
ip addr replace "$VIP4/32" dev lo
ip -6 addr replace "$VIP6/128" dev lo nodad
# Decapsulated packets arrive on tunl0 while the route back to the client
# leaves by $dev: strict rp_filter would drop them. The VIP on lo must not be
# answered for in ARP on the shared segment.
persist_sysctl backend net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
	net.ipv4.conf.tunl0.rp_filter=0 net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2

dir=/srv/lbd-lab
mkdir -p "$dir/www"
echo "b$j" >"$dir/www/index.txt"
lab_render "$TEMPLATES/nginx.conf.tmpl" DAEMON=off DIR="$dir" >"$dir/nginx.conf"
systemctl stop lbd-lab-nginx lbd-lab-echo >/dev/null 2>&1 || true
systemd-run --unit lbd-lab-nginx --property Restart=on-failure nginx -c "$dir/nginx.conf" -p "$dir"
systemd-run --unit lbd-lab-echo --property Restart=on-failure python3 "$REPO/tests/lib/flows.py" serve \
	--tag "b$j" --tcp-echo 7000 --udp-echo 5300 --udp-bind "$VIP4" "$VIP6"
echo "b$j: nginx and the echo servers running; VIPs $VIP4 $VIP6 on lo"
