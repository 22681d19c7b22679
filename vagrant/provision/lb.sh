#!/usr/bin/env bash
# An LB node VM: lbd from this repo's build (build/lbd, build/lbctl, synced
# to /vagrant), ExaBGP under lbd, config from lab/templates/lbd.yaml.tmpl
# (the namespace lab's), run by the repo's systemd unit. Usage: lb.sh I
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" 2>/dev/null || source /vagrant/vagrant/provision/common.sh
i=${1:?LB node number}
# One uplink segment shared by the LB nodes (see router.sh).
local4=198.18.0.$((4 * i - 2)) router4=198.18.0.1
local6=fd00:1b::$((4 * i - 2)) router6=fd00:1b::1

apt_install exabgp libbpf1 libyaml-cpp0.7 libspdlog1.1 libfmt9 libssl3 iproute2 curl
for bin in lbd lbctl; do
	[[ -x $REPO/build/$bin ]] || { echo "lb$i: $REPO/build/$bin missing: build on the host first (scripts/build.sh)" >&2; exit 1; }
	install -m 0755 "$REPO/build/$bin" "/usr/sbin/$bin"
done
dev=$(iface_of "$local4")
add6 "$local4" "$local6/64"
# The lab's prefixes via the router (the VM's default route is Vagrant's NAT).
ip route replace 198.18.0.0/15 via "$router4" dev "$dev"
ip -6 route replace fd00:1b::/32 via "$router6" dev "$dev"
ip -6 route replace fd00:1b::/64 dev "$dev"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

mkdir -p /etc/lbd /var/lib/lbd /run/lbd /etc/lb
backends4='' backends6=''
for j in 1 2 3; do
	backends4+="${backends4:+, }{address: 198.18.30.1$j}"
	backends6+="${backends6:+, }{address: \"fd00:1b:30::1$j\"}"
done
lab_render "$TEMPLATES/lbd.yaml.tmpl" IFACE="$dev" XDP_MODE=auto PIN_PATH=/sys/fs/bpf/lbd \
	SOCKET=/run/lbd/lbd.sock STATE_DIR=/var/lib/lbd EXABGP=/usr/sbin/exabgp LB_AS=$LB_AS \
	LOCAL_V4="$local4" LOCAL_V6="$local6" ROUTER_V4="$router4" ROUTER_AS=$ROUTER_AS HOLD_TIME=$HOLD_TIME \
	MAINTENANCE_FILE=/etc/lb/disable HOLD_DOWN=1s VIP4=$VIP4 VIP6=$VIP6 HC_INTERVAL=1s HC_TIMEOUT=500ms \
	BACKENDS4="$backends4" BACKENDS6="$backends6" >/etc/lbd/lbd.yaml
/usr/sbin/lbd --check-config /etc/lbd/lbd.yaml
install -m 0644 "$REPO/systemd/lbd.service" /etc/systemd/system/lbd.service
systemctl daemon-reload
systemctl enable lbd >/dev/null 2>&1 || true
systemctl restart lbd
echo "lb$i: lbd running on $dev; lbctl lb list; lbctl bgp status; lbctl maintenance on|off"
