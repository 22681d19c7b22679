#!/usr/bin/env bash
# `via: tunnel` health checks through the real lbd: the probes go to the VIP,
# encapsulated to each backend by lbd's TC egress program exactly as client
# traffic is, and come back from the backend directly (DSR).
#
# b1 and b2 are complete backends. b3 runs the same HTTP server on its own
# address, with lbd-decap, but without the VIP on lo: client traffic sent to
# it would be lost. Via tunnel (http and icmp on IPv4, tcp on IPv6), b3 is
# marked down while b1 and b2 are up; the same b3 passes `via: direct`
# checks (so the test can fail), and passes via tunnel once the VIP is on
# its lo. The probe packets really
# are encapsulated: lbd's tunnel counters and every backend's decapsulation
# counter, b3's included, move. lbd's host runs strict rp_filter. A clean
# stop removes the TC filter; one an lbd killed with SIGKILL left is replaced
# by the next lbd and removed by `lbd --detach`.
set -euo pipefail
# shellcheck source=../lib/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"
t_init test_health_tunnel
t_require_root
command -v tc >/dev/null || t_skip "tc not found"

t_single_lb_topology ht 3
B3=${BACKENDS[2]}
ip -n "$B3" addr del "$VIP4/32" dev lo
ip -n "$B3" addr del "$VIP6/128" dev lo
# The replies come from the VIP on lb0, where the VIP's route leaves.
ip netns exec "$LB" sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1

t_lbd_dirs lb
cfg=$T_TMP/lbd.yaml
{
	t_lbd_config_head
	cat <<-YAML
	vips:
	  - name: web
	    address: $VIP4
	    port: 80
	    health: {type: http, path: /healthz, via: tunnel, interval: 400ms, timeout: 250ms, unhealthy_threshold: 2, healthy_threshold: 2}
	    backends: [{address: 198.18.30.11}, {address: 198.18.30.12}, {address: 198.18.30.13}]
	  - name: web6
	    address: $VIP6
	    port: 80
	    health: {type: tcp, via: tunnel, interval: 400ms, timeout: 250ms, unhealthy_threshold: 2, healthy_threshold: 2}
	    backends: [{address: "fd00:1b:30::11"}, {address: "fd00:1b:30::12"}, {address: "fd00:1b:30::13"}]
	  - name: echo
	    address: $VIP4
	    port: 7000
	    health: {type: icmp, via: tunnel, interval: 400ms, timeout: 250ms, unhealthy_threshold: 2, healthy_threshold: 2}
	    backends: [{address: 198.18.30.11}, {address: 198.18.30.12}, {address: 198.18.30.13}]
	YAML
} >"$cfg"
LBCTL=$T_BUILD/lbctl
ctl() { "$LBCTL" --socket "$LBD_SOCK" "$@"; }
state_of() { # VIP ADDRESS -> the backend's state in `lbctl lb show`
	ctl --json lb show "$1" | python3 -c '
import json, sys
vip = json.load(sys.stdin)["vip"]
print(next(b["state"] for b in vip["backends"] if b["address"] == sys.argv[1]))' "$2"
}
is_state() { [[ $(state_of "$1" "$2") == "$3" ]]; }
tunnel_counter() { ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["probe_tunnel"][sys.argv[1]])' "$1"; }
decapsulated() { ip netns exec "$1" "$LBD_DECAP" status eth0 | awk '$1 == "decapsulated" {print $2}'; }
egress_filters() { ip netns exec "$LB" tc filter show dev lb0 egress; }

t_bg "$LB" lbd "$LBD" --config "$cfg"
LBD_PID=$T_LAST_PID
t_wait_for 15 "lbd running" t_log_has lbd "lbd .* running"
t_log_has lbd "attached the health-check tunnel \(TC egress\) to lb0" || t_fail "no tunnel attach logged"
egress_filters | grep -q "handle 0x4c42 .*hc_tunnel" || t_fail "no hc_tunnel filter on lb0: $(egress_filters)"
declare -A decap_before
for b in "${BACKENDS[@]}"; do decap_before[$b]=$(decapsulated "$b"); done

for vip in web web6 echo; do
	if [[ $vip == web6 ]]; then a=fd00:1b:30::1; else a=198.18.30.1; fi
	t_wait_for 10 "$vip: b1 up" is_state "$vip" "${a}1" up
	t_wait_for 10 "$vip: b2 up" is_state "$vip" "${a}2" up
	t_wait_for 10 "$vip: b3 down" is_state "$vip" "${a}3" down
done
t_log_has lbd "health: vip web backend 198.18.30.13:80 unknown -> down \(timeout after 250ms\)" ||
	t_fail "b3's transition to down not logged"
t_log_has lbd "health: vip web6 backend \[fd00:1b:30::13\]:80 unknown -> down" || t_fail "b3 (IPv6) not logged down"
t_ok "via tunnel: b1 and b2 up, b3 (no VIP on lo) down, IPv4 (http, icmp) and IPv6 (tcp): $(grep -o 'vip web backend 198.18.30.13:80 unknown -> down.*' "$T_TMP/lbd.log" | head -1)"
via=$(ctl --json lb show web | python3 -c 'import json,sys; b=json.load(sys.stdin)["vip"]["backends"][2]["health"]; print(b["via"], hex(b["mark"]))')
[[ $via == "tunnel 0x4c42"* ]] || t_fail "lbctl lb show: health via/mark: $via"
t_info "lbctl lb show web: b3 health via $via"

# The probes really went through the tunnel.
v4=$(tunnel_counter encap_v4) v6=$(tunnel_counter encap_v6)
((v4 > 0 && v6 > 0)) || t_fail "tunnel counters did not move: encap_v4=$v4 encap_v6=$v6"
for c in drop_no_target drop_family drop_malformed drop_encap drop_no_route drop_too_big; do
	[[ $(tunnel_counter $c) == 0 ]] || t_fail "tunnel counter $c = $(tunnel_counter $c)"
done
for b in "${BACKENDS[@]}"; do
	now=$(decapsulated "$b")
	((now > decap_before[$b])) || t_fail "$b decapsulated nothing (${decap_before[$b]} -> $now)"
done
t_ok "probes encapsulated: encap_v4=$v4 encap_v6=$v6, no drops; each backend's lbd-decap decapsulated them, b3's too"
line=$(ctl status | grep '^health tunnel:') || t_fail "lbctl status shows no tunnel: $(ctl status)"
[[ $line == *"6 backends via tunnel (marks 0x4c420000/0xffff0000), encap_v4 "* ]] || t_fail "lbctl status: $line"
t_info "lbctl status: $line"

# Client traffic: only b1 and b2.
s=$(for _ in $(seq 20); do ip netns exec "$CL" curl -s --max-time 3 "http://$VIP4/" || echo FAIL; done |
	sort | uniq -c | awk '{printf "%s=%s ", $2, $1}')
[[ $s != *b3=* && $s != *FAIL* && $s == *b1=* && $s == *b2=* ]] || t_fail "client requests: $s"
t_ok "20 client requests through the VIP: $s"

# The same b3 passes direct checks: its server answers on its own address.
ctl lb set-health web --via direct >/dev/null
t_wait_for 10 "b3 up via direct" is_state web 198.18.30.13 up
t_ok "lbctl lb set-health web --via direct: b3 up (this test would see a broken tunnel)"
ctl lb set-health web --via tunnel >/dev/null
t_wait_for 10 "b3 down via tunnel again" is_state web 198.18.30.13 down
t_ok "back to --via tunnel: b3 down again"

# With the VIP on its lo, b3 passes via tunnel too.
t_addr "$B3" lo "$VIP4/32" "$VIP6/128"
t_wait_for 10 "web: b3 up via tunnel" is_state web 198.18.30.13 up
t_wait_for 10 "web6: b3 up via tunnel" is_state web6 fd00:1b:30::13 up
t_wait_for 10 "echo: b3 up via tunnel" is_state echo 198.18.30.13 up
t_ok "VIP added to b3's lo: b3 up via tunnel (http, tcp over IPv6, icmp)"

# A clean stop takes the filter and its pin away.
t_stop "$LBD_PID"
t_log_has lbd "health-check tunnel: encap_v4=" || t_fail "no tunnel counters in the exit summary"
egress_filters | grep -q hc_tunnel && t_fail "filter left after a clean stop: $(egress_filters)"
[[ -e $LBD_PIN/hc_tunnel ]] && t_fail "$LBD_PIN/hc_tunnel left after a clean stop"
t_ok "SIGTERM: filter detached, pin removed"

# SIGKILL leaves it; the next lbd replaces it, `lbd --detach` removes it.
t_bg "$LB" lbd2 "$LBD" --config "$cfg"
t_wait_for 15 "lbd running again" t_log_has lbd2 "lbd .* running"
{ kill -KILL "$T_LAST_PID" && wait "$T_LAST_PID"; } 2>/dev/null || true
egress_filters | grep -q hc_tunnel || t_fail "no filter after SIGKILL (expected one left)"
[[ -e $LBD_PIN/hc_tunnel ]] || t_fail "no pin after SIGKILL"
t_bg "$LB" lbd3 "$LBD" --config "$cfg"
t_wait_for 15 "lbd after SIGKILL" t_log_has lbd3 "lbd .* running"
t_log_has lbd3 "removed the health-check tunnel an earlier lbd left on lb0" || t_fail "stale filter not removed"
[[ $(egress_filters | grep -c hc_tunnel) == 1 ]] || t_fail "filters: $(egress_filters)"
t_wait_for 10 "b1 up after restart" is_state web 198.18.30.11 up
{ kill -KILL "$T_LAST_PID" && wait "$T_LAST_PID"; } 2>/dev/null || true
nsenter --net="/run/netns/$LB" "$LBD" --detach --pin-path "$LBD_PIN" >"$T_TMP/detach.log" 2>&1 ||
	t_fail "lbd --detach: $(cat "$T_TMP/detach.log")"
grep -q "removed the health-check tunnel an earlier lbd left on lb0" "$T_TMP/detach.log" ||
	t_fail "--detach did not remove the filter: $(cat "$T_TMP/detach.log")"
egress_filters | grep -q hc_tunnel && t_fail "filter left after --detach: $(egress_filters)"
[[ -e $LBD_PIN ]] && t_fail "$LBD_PIN left after --detach"
t_ok "SIGKILL: the next lbd replaced the stale filter; lbd --detach removed it and the pins"
echo "PASS: test_health_tunnel"
