#!/usr/bin/env bash
# The client VM: curl and the lab's traffic tool (tests/lib/flows.py), the
# lab's prefixes via the router.
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" 2>/dev/null || source /vagrant/vagrant/provision/common.sh
apt_install curl python3 iproute2
dev=$(iface_of 198.18.10.11)
add6 198.18.10.11 fd00:1b:10::11/64
ip route replace 198.18.0.0/15 via 198.18.10.1 dev "$dev"
ip -6 route replace fd00:1b::/32 via fd00:1b:10::1 dev "$dev"
echo "client: curl http://$VIP4/ ; python3 $REPO/tests/lib/flows.py tcp --addr $VIP4 --port 7000 --count 100"
