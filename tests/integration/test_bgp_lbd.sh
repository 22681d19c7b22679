#!/usr/bin/env bash
# Route health injection through the real lbd: lbd runs ExaBGP, which peers
# with BIRD 2 on the router. The VIP's route is learnt over BGP only (no
# static route) and traffic flows through it; the maintenance file (via
# lbctl maintenance on|off) withdraws and restores it; every backend's server
# stopped withdraws it after the health checks see it, one back announces it
# after hold_down; SIGTERM withdraws it before lbd exits.
set -euo pipefail
# shellcheck source=../lib/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"
t_init test_bgp_lbd
t_require_root
for tool in bird birdc exabgp; do
	command -v "$tool" >/dev/null || t_skip "$tool not found (apt-get install bird2 exabgp)"
done
LBCTL=$T_BUILD/lbctl

t_single_lb_topology bgl 2
ip -n "$RT" route del "$VIP4/32" # the route must come from BGP
ip -n "$RT" -6 route del "$VIP6/128"

BIRD_SOCK=$T_TMP/bird.ctl
cat >"$T_TMP/bird.conf" <<BIRD
router id 198.18.20.1;
log stderr all;
protocol device { scan time 1; }
protocol kernel { ipv4 { export all; }; merge paths on; }
protocol bgp lb {
	local as 65000;
	neighbor 198.18.20.2 as 65001;
	hold time 6;
	connect retry time 1;
	error wait time 1, 2;
	ipv4 { import all; export none; };
}
BIRD
t_bg "$RT" bird bird -f -c "$T_TMP/bird.conf" -s "$BIRD_SOCK" -P "$T_TMP/bird.pid"
t_wait_for 10 "BIRD's control socket" birdc -s "$BIRD_SOCK" show status
routed() { ip -n "$RT" route show "$VIP4/32" | grep -q "via 198.18.20.2"; }
not_routed() { ! routed; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

t_lbd_dirs lb
maint=$T_TMP/disable
cfg=$T_TMP/lbd.yaml
{
	t_lbd_config_head
	cat <<-YAML
	bgp:
	  local_as: 65001
	  router_id: 198.18.20.2
	  local_address: 198.18.20.2
	  hold_time: 6
	  neighbors: [{address: 198.18.20.1, peer_as: 65000}]
	  next_hop: self
	  maintenance_file: $maint
	  withdraw_quorum: 1
	  hold_down: 2s
	vips:
	  - name: web
	    address: $VIP4
	    port: 80
	    protocol: tcp
	    health: {type: http, interval: 300ms, timeout: 200ms, unhealthy_threshold: 2, healthy_threshold: 2}
	    backends: [{address: 198.18.30.11}, {address: 198.18.30.12}]
	YAML
} >"$cfg"
t_bg "$LB" lbd "$LBD" --config "$cfg"
LBD_PID=$T_LAST_PID
t_wait_for 15 "lbd running" t_log_has lbd "lbd .* running"
start=$SECONDS
t_wait_for 20 "the VIP's route in the router's FIB" routed
t_ok "$VIP4/32 learnt over BGP from lbd's ExaBGP, in the router's FIB $((SECONDS - start))s after start: $(ip -n "$RT" route show "$VIP4/32")"
out=$(ip netns exec "$CL" curl -s --max-time 5 "http://$VIP4/") || t_fail "no traffic over the BGP route"
t_ok "curl through the announced VIP answered by $out"
status=$("$LBCTL" --socket "$LBD_SOCK" bgp status)
grep -q "established" <<<"$status" || t_fail "lbctl bgp status: $status"
t_info "lbctl bgp status:"
sed 's/^/     /' <<<"$status"

"$LBCTL" --socket "$LBD_SOCK" maintenance on >/dev/null
t0=$(date +%s%N)
t_wait_for 2 "withdrawal after maintenance on" not_routed
t_ok "lbctl maintenance on: route gone from the router in $(ms_since "$t0") ms"
"$LBCTL" --socket "$LBD_SOCK" maintenance off >/dev/null
t0=$(date +%s%N)
t_wait_for 2 "announcement after maintenance off" routed
t_ok "lbctl maintenance off: route back in $(ms_since "$t0") ms"

t_server_stop b1
t_server_stop b2
t_wait_for 10 "withdrawal when no backend is healthy" not_routed
t_ok "every backend's server stopped: withdrawn after the health checks saw it"
t_server_start b1
t0=$(date +%s%N)
t_wait_for 10 "re-announcement after a backend came back" routed
t_ok "b1 back: re-announced $(ms_since "$t0") ms after its server started (2 checks + hold_down 2s)"

kill -TERM "$LBD_PID"
for _ in $(seq 100); do kill -0 "$LBD_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$LBD_PID" 2>/dev/null && t_fail "lbd did not exit after SIGTERM"
birdc -s "$BIRD_SOCK" show route "$VIP4/32" | grep -q via && t_fail "route still in BIRD when lbd had exited"
t_log_has lbd "routes withdrawn" || t_fail "lbd did not log the withdrawal"
t_ok "SIGTERM: lbd withdrew the route before it exited"
echo "PASS: test_bgp_lbd"
