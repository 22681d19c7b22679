#!/usr/bin/env bash
# The README's main command: installs what is needed, builds, brings up a
# small lab in network namespaces and shows lbd at work:
#
#   client --- router --- lb (lbd: XDP on lb0, Maglev, IPIP to backends)
#                 |
#                 +-- br0 --- b1, b2, b3 (lbd-decap, VIP on lo, HTTP + UDP)
#
# 1,000 curl requests through the VIP (IPv4) and 300 over IPv6, the split
# per backend; one backend drained by a live reload; the datapath counters.
# Everything is torn down at the end, also on failure. Exits non-zero if any
# step does not behave as shown.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export LBD_BUILD_DIR=${LBD_BUILD_DIR:-$REPO/build}
if [[ ${1:-} != --no-build ]]; then
	"$REPO/scripts/install-deps.sh"
	"$REPO/scripts/build.sh" >/dev/null
fi
# shellcheck source=../tests/lib/netns.sh
source "$REPO/tests/lib/netns.sh"
t_init lbd-demo
t_require_root

step() { printf '\n== %s\n' "$*"; }

step "Building the lab: client, router, one LB node, three backends (namespaces)"
t_single_lb_topology demo 3
echo "   client 198.18.10.2 -> router -> lb 198.18.20.2 (VIP $VIP4, [$VIP6]) -> backends 198.18.30.11-13"

cfg=$T_TMP/lbd.yaml
t_lbd_dirs lb
write_config() { # weight of b3
	cat >"$cfg" <<-YAML
	datapath:
	  interfaces: [lb0]
	  xdp_mode: native
	  max_vips: 4
	  max_backends: 32
	  pin_path: $LBD_PIN
	control:
	  socket: $LBD_SOCK
	  state_dir: $LBD_STATE
	vips:
	  - name: web
	    address: $VIP4
	    port: 80
	    protocol: tcp
	    backends:
	      - {address: 198.18.30.11}
	      - {address: 198.18.30.12}
	      - {address: 198.18.30.13, weight: $1}
	  - name: web6
	    address: "$VIP6"
	    port: 80
	    protocol: tcp
	    backends: [{address: "fd00:1b:30::11"}, {address: "fd00:1b:30::12"}, {address: "fd00:1b:30::13"}]
	YAML
}
write_config 1
step "Starting lbd on the LB node"
t_bg "$LB" lbd "$LBD" --config "$cfg"
LBD_PID=$T_LAST_PID
t_wait_for 15 "lbd running" t_log_has lbd "lbd .* running"
sed -n 's/^[^ ]* info /   lbd: /p' "$T_TMP/lbd.log"

requests() { # URL COUNT: prints the split
	local url=$1 n=$2
	ip netns exec "$CL" bash -c '
		for _ in $(seq '"$n"'); do curl -sg --max-time 5 "'"$url"'" || echo FAILED; done' |
		sort | uniq -c | awk '{printf "%s=%d ", $2, $1}'
}
check_split() { # SPLIT EXPECTED-BACKENDS...
	local split=$1 b
	shift
	[[ $split != *FAILED* ]] || t_fail "some requests failed: $split"
	for b in "$@"; do [[ $split == *"$b="* ]] || t_fail "$b got no requests: $split"; done
}

step "1,000 HTTP requests to $VIP4:80 with curl (each a new TCP connection)"
split=$(requests "http://$VIP4/" 1000)
check_split "$split" b1 b2 b3
echo "   answered by: $split"

step "300 HTTP requests over IPv6 to [$VIP6]:80"
split=$(requests "http://[$VIP6]/" 300)
check_split "$split" b1 b2 b3
echo "   answered by: $split"

step "Draining b3 (weight 0) with a live reload (SIGHUP): new flows skip it"
write_config 0
kill -HUP "$LBD_PID"
t_wait_for 10 "reload applied" t_log_has lbd "reload applied"
grep -o 'vip web: backend .*draining.*' "$T_TMP/lbd.log" | sed 's/^/   lbd: /'
split=$(requests "http://$VIP4/" 300)
check_split "$split" b1 b2
[[ $split != *b3=* ]] || t_fail "drained b3 still got new connections: $split"
echo "   answered by: $split"

step "Stopping lbd (SIGTERM): what the datapath counted"
t_stop "$LBD_PID"
sed -n 's/^[^ ]* info \(counters\|vip \)/   \1/p' "$T_TMP/lbd.log"
echo "   (the XDP program stays attached with its pinned maps and keeps forwarding;"
echo "    the demo removes it with: lbd --detach --pin-path $LBD_PIN)"
step "Done: every step behaved as shown; the lab is torn down"
