#!/usr/bin/env bash
# Hitless restart: lbd is killed with SIGKILL (twice) and started again while
# a steady UDP stream with sequence numbers and long-lived TCP connections go
# through a VIP. The pinned XDP program keeps forwarding while no lbd runs;
# the new lbd adopts the maps and the connection table and swaps its program
# into the pinned link. Checks: no datagram lost, no connection broken or
# moved, the UDP flow stays on one backend; a datapath pinned with other
# settings (hash seed) is detected and refused without touching it.
set -euo pipefail
# shellcheck source=../lib/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"
t_init test_restart
t_require_root

t_single_lb_topology rst 3
t_lbd_dirs lb
cfg=$T_TMP/lbd.yaml
{
	t_lbd_config_head
	cat <<-YAML
	vips:
	  - {name: dns, address: $VIP4, port: 5300, protocol: udp, backends: [{address: 198.18.30.11}, {address: 198.18.30.12}, {address: 198.18.30.13}]}
	  - {name: echo, address: $VIP4, port: 7000, protocol: tcp, backends: [{address: 198.18.30.11}, {address: 198.18.30.12}, {address: 198.18.30.13}]}
	YAML
} >"$cfg"

start_lbd() { # LOGNAME
	t_bg "$LB" "$1" "$LBD" --config "$cfg"
	LBD_PID=$T_LAST_PID
	t_wait_for 15 "lbd running ($1)" t_log_has "$1" "lbd .* running"
}
start_lbd lbd1

go=$T_TMP/go
t_bg "$CL" stream $FLOWS stream --addr "$VIP4" --port 5300 --rate 200 --go "$go" --wait 90
STREAM_PID=$T_LAST_PID
t_bg "$CL" hold $FLOWS hold --addr "$VIP4" --port 7000 --count 16 --go "$go" --wait 90
HOLD_PID=$T_LAST_PID
t_wait_for 20 "16 held connections" t_log_has hold '"phase": "open"'
sleep 1

for round in 2 3; do
	kill -KILL "$LBD_PID"
	wait "$LBD_PID" 2>/dev/null || true
	t_info "lbd killed with SIGKILL; forwarding on with the pinned datapath"
	sleep 1
	ip -n "$LB" link show lb0 | grep -q xdp || t_fail "XDP detached when lbd died"
	start_lbd "lbd$round"
	t_log_has "lbd$round" "adopted the XDP link on lb0" || t_fail "restart $round did not adopt the pinned link"
	t_log_has "lbd$round" "vip echo: adopted with 3 of 3 backends" || t_fail "restart $round did not adopt the VIPs"
	t_log_has "lbd$round" "connection table: 65536 entries \(8192 buckets of 8\), 4 MiB, adopted with its flows" ||
		t_fail "restart $round did not say it kept the connection table"
	t_ok "restart $round: $(grep -o 'adopted the XDP link.*' "$T_TMP/lbd$round.log")"
	sleep 1
done

touch "$go"
wait "$STREAM_PID" || t_fail "datagrams lost across restarts: $(tail -1 "$T_TMP/stream.log")"
out=$(tail -1 "$T_TMP/stream.log")
[[ $(grep -o '"backends": {[^}]*}' <<<"$out" | grep -o '"b[0-9]"' | wc -l) -eq 1 ]] ||
	t_fail "the UDP flow changed backend across restarts: $out"
t_ok "UDP stream across two SIGKILL restarts: $out"
wait "$HOLD_PID" || t_fail "connections broke or moved: $(tail -1 "$T_TMP/hold.log")"
t_ok "16 TCP connections across two SIGKILL restarts: $(tail -1 "$T_TMP/hold.log" | grep -o '"broken".*"moved": [0-9]*')"

# A datapath pinned with other settings is refused, and left as it was.
t_stop "$LBD_PID"
sed -i 's/^  pin_path:/  hash_seed: 0x1234\n  pin_path:/' "$cfg"
if nsenter --net="/run/netns/$LB" "$LBD" --config "$cfg" >"$T_TMP/mismatch.log" 2>&1; then
	t_fail "lbd started on a datapath pinned with another hash seed"
fi
grep -q "pinned maps have hash_seed" "$T_TMP/mismatch.log" || t_fail "mismatch not explained: $(cat "$T_TMP/mismatch.log")"
ip -n "$LB" link show lb0 | grep -q xdp || t_fail "the refused start touched the pinned datapath"
t_ok "pinned datapath with another hash seed refused: $(grep -o 'pinned maps have.*(config: [0-9]*)' "$T_TMP/mismatch.log")"
echo "PASS: test_restart"
