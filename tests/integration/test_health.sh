#!/usr/bin/env bash
# Health checks end to end, through the real lbd: curl traffic through a VIP
# while one backend's server is stopped. After detection (2 failed http
# checks) no new connection goes to it and connections to the other backends
# are unaffected; when it comes back (2 passed checks) it gets traffic again.
# A VIP whose every regular backend is down falls back to its sorry backend.
# The echo VIP's checks are half-open (tcp, half_open: true): up on the
# SYN-ACK, down on the RST of a stopped server, switched off live by lbctl.
set -euo pipefail
# shellcheck source=../lib/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"
t_init test_health
t_require_root

t_single_lb_topology hc 3
t_lbd_dirs lb
cfg=$T_TMP/lbd.yaml
{
	t_lbd_config_head
	cat <<-YAML
	vips:
	  - name: web
	    address: $VIP4
	    port: 80
	    protocol: tcp
	    health: {type: http, path: /healthz, interval: 500ms, timeout: 300ms, unhealthy_threshold: 2, healthy_threshold: 2}
	    backends: [{address: 198.18.30.11}, {address: 198.18.30.12}, {address: 198.18.30.13}]
	  - name: echo
	    address: $VIP4
	    port: 7000
	    protocol: tcp
	    health: {type: tcp, half_open: true, interval: 500ms, timeout: 300ms, unhealthy_threshold: 2, healthy_threshold: 2}
	    backends: [{address: 198.18.30.11}, {address: 198.18.30.12}, {address: 198.18.30.13, sorry: true}]
	YAML
} >"$cfg"
t_bg "$LB" lbd "$LBD" --config "$cfg"
LBD_PID=$T_LAST_PID
t_wait_for 15 "lbd running" t_log_has lbd "lbd .* running"
ring_has() { t_log_has lbd "vip $1: backend $2 back in the ring"; }
for b in 11 12 13; do t_wait_for 10 "198.18.30.$b up" ring_has web "198.18.30.$b"; done
t_ok "all three backends passed 2 http checks and entered the ring"
for b in 11 12 13; do
	t_wait_for 10 "echo 198.18.30.$b up (half-open)" t_log_has lbd "vip echo backend 198\.18\.30\.$b:7000 unknown -> up \(syn-ack\)"
done
t_ok "echo's three backends up on half-open checks (syn-ack)"

split() { # COUNT -> per-backend counts; fails on any failed request
	local out
	for _ in $(seq "$1"); do
		out=$(ip netns exec "$CL" curl -s --max-time 3 "http://$VIP4/") || t_fail "a curl request failed"
		echo "$out"
	done | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}'
}
s=$(split 60)
[[ $s == *b1=* && $s == *b2=* && $s == *b3=* ]] || t_fail "not every backend served: $s"
t_ok "60 requests: $s"

go=$T_TMP/go
t_bg "$CL" hold $FLOWS hold --addr "$VIP4" --port 7000 --count 12 --go "$go" --wait 60
HOLD=$T_LAST_PID
t_wait_for 10 "held connections" t_log_has hold '"phase": "open"'

t_server_stop b2
stopped=$SECONDS
t_wait_for 10 "b2 out of the ring" t_log_has lbd "vip web: backend 198.18.30.12 out of the ring"
t_ok "b2's server stopped: out of the ring after $((SECONDS - stopped))s ($(grep -o 'vip web: backend 198.18.30.12 out of the ring.*' "$T_TMP/lbd.log" | head -1 | sed 's/.*(//; s/)$//'))"
s=$(split 60)
[[ $s != *b2=* && $s == *b1=* && $s == *b3=* ]] || t_fail "after detection: $s"
t_ok "60 requests after detection, none to b2: $s"

touch "$go"
wait "$HOLD" || true
after=$(tail -1 "$T_TMP/hold.log")
before=$(grep '"phase": "open"' "$T_TMP/hold.log")
python3 - "$before" "$after" <<'PY' || t_fail "connections to healthy backends were affected: $after"
import json, sys
before = json.loads(sys.argv[1])["backends"]
after = json.loads(sys.argv[2])["backends"]
bad = [i for i, b in enumerate(before) if b != "b2" and after[i] != b]
on_b2 = sum(1 for b in before if b == "b2")
print(f"ok: {len(before) - on_b2} held connections to b1/b3 unaffected; {on_b2} were on b2 (its server is gone)")
sys.exit(1 if bad else 0)
PY

t_server_start b2
back_again() { [[ $(grep -c "vip web: backend 198.18.30.12 back in the ring" "$T_TMP/lbd.log") -ge 2 ]]; }
t_wait_for 10 "b2 back" back_again
s=$(split 60)
n=$(grep -o 'b2=[0-9]*' <<<"$s" | cut -d= -f2)
((${n:-0} >= 8)) || t_fail "b2 got too little traffic after coming back (want about a third): $s"
t_ok "b2 back after 2 passed checks; 60 requests: $s"

# The echo VIP: b3 is its sorry backend, used only when b1 and b2 are down.
out=$(ip netns exec "$CL" $FLOWS tcp --addr "$VIP4" --port 7000 --count 30)
[[ $out != *'"b3"'* ]] || t_fail "the sorry backend served while others were up: $out"
t_server_stop b1
t_server_stop b2
t_wait_for 10 "echo b1 down" t_log_has lbd "vip echo: backend 198.18.30.11 out of the ring"
# b2 left the echo ring once already (above): wait for its second exit.
echo_b2_down_again() { [[ $(grep -c "vip echo: backend 198.18.30.12 out of the ring" "$T_TMP/lbd.log") -ge 2 ]]; }
t_wait_for 10 "echo b2 down" echo_b2_down_again
out=$(ip netns exec "$CL" $FLOWS tcp --addr "$VIP4" --port 7000 --count 20) || t_fail "sorry backend: $out"
[[ $out == *'"b3": 20'* ]] || t_fail "not all to the sorry backend: $out"
t_ok "with b1 and b2 down, the sorry backend b3 serves: $out"
t_log_has lbd "vip echo: backend 198\.18\.30\.11 out of the ring \(refused\)" ||
	t_fail "echo's b1 did not leave the ring on half-open checks refused"
t_ok "half-open checks: b1 and b2 down (refused) with their servers stopped"

# lbctl lb set-health: bad values refused, nothing changed; a good change
# applies live and survives a restart.
LBCTL=$T_BUILD/lbctl
ctl() { "$LBCTL" --socket "$LBD_SOCK" "$@"; }
before=$(ctl --json lb show web | python3 -c 'import json,sys; print(json.load(sys.stdin)["vip"]["backends"][0]["health"]["type"])')
for bad in "--interval 1s --timeout 2s" "--type gopher" "--unhealthy-threshold 0" "--type tcp --half-open true --via tunnel"; do
	rc=0
	# shellcheck disable=SC2086 # the options split into arguments
	err=$(ctl lb set-health web $bad 2>&1 >/dev/null) || rc=$?
	[[ $rc -eq 1 ]] || t_fail "set-health $bad: exit $rc ($err)"
	t_info "refused: lbctl lb set-health web $bad -> $err"
done
after=$(ctl --json lb show web | python3 -c 'import json,sys; print(json.load(sys.stdin)["vip"]["backends"][0]["health"]["type"])')
[[ $before == "$after" ]] || t_fail "a refused set-health changed the checks"
ctl lb set-health web --type tcp --interval 400ms --timeout 200ms >/dev/null || t_fail "set-health tcp"
half_open_of() { ctl --json lb show echo | python3 -c 'import json,sys; print(json.load(sys.stdin)["vip"]["backends"][0]["health"]["half_open"])'; }
[[ $(half_open_of) == True ]] || t_fail "echo's checks are not shown half-open: $(half_open_of)"
ctl lb set-health echo --half-open false >/dev/null || t_fail "set-health --half-open false"
for _ in $(seq 50); do [[ $(half_open_of) == False ]] && break; sleep 0.1; done
[[ $(half_open_of) == False ]] || t_fail "lbctl lb set-health --half-open false not applied"
t_info "lbctl lb set-health echo --half-open false: applied live"
has_tcp() { ctl --json lb show web | grep -q '"type": "tcp"'; }
t_wait_for 5 "tcp checks on web" has_tcp
t_stop "$LBD_PID"
t_bg "$LB" lbd2 "$LBD" --config "$cfg"
t_wait_for 15 "lbd restarted" t_log_has lbd2 "lbd .* running"
t_wait_for 5 "tcp checks after restart" has_tcp
t_ok "lbctl lb set-health: 4 bad changes refused; http -> tcp applied live and kept across a restart; half-open off live"
echo "PASS: test_health"
