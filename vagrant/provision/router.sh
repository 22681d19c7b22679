#!/usr/bin/env bash
# The edge router VM: forwarding, ECMP hashed on L4 ports (IPv4 and IPv6),
# BIRD 2 with one eBGP session per LB node, config from
# lab/templates/bird.conf.tmpl (the namespace lab's). Usage: router.sh NODES
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" 2>/dev/null || source /vagrant/vagrant/provision/common.sh
nodes=${1:-2}

apt_install bird2
persist_sysctl router net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
	net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1 \
	net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
add6 198.18.10.1 fd00:1b:10::1/64
add6 198.18.30.1 fd00:1b:30::1/64
# The LB nodes share one uplink segment here (the namespace lab gives each a
# /30): 198.18.0.0/24, fd00:1b::/64.
add6 198.18.0.1 fd00:1b::1/64
neighbors=
for ((i = 1; i <= nodes; i++)); do
	neighbors+=$(lab_render "$TEMPLATES/bird-neighbor.tmpl" NAME="lb$i" ADDRESS="198.18.0.$((4 * i - 2))" LB_AS=$LB_AS)
	neighbors+=$'\n'
done
lab_render "$TEMPLATES/bird.conf.tmpl" ROUTER_ID=198.18.0.1 ROUTER_AS=$ROUTER_AS HOLD_TIME=$HOLD_TIME \
	NEIGHBORS="$neighbors" >/etc/bird/bird.conf
systemctl enable bird >/dev/null 2>&1 || true
systemctl restart bird
echo "router: BIRD up with $nodes LB neighbours; birdc show protocols; ip route show $VIP4"
