#!/usr/bin/env bash
# End to end through the real lbd in network namespaces:
#
#   client --- router --- lb (lbd, XDP native on its uplink)
#                 |
#                 +-- br --- b1, b2 (b3 joins later): lbd-decap, VIPs on lo,
#                                     tagged HTTP / TCP echo / UDP echo servers
#
# The router sends VIP traffic to lb; lbd encapsulates it to a backend and
# sends it back out the same interface (XDP_TX); the backend decapsulates it
# and answers the client directly (DSR).
#
# Checks: curl over IPv4 and IPv6 reaches every backend; UDP over IPv4 and
# IPv6 is answered from the VIP by every backend; established TCP connections
# keep their backend when a backend is added by a live reload (SIGHUP) while
# new connections reach the new one; a reload with errors is refused and
# changes nothing.
set -euo pipefail
# shellcheck source=../lib/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"
t_init test_forwarding
t_require_root

t_single_lb_topology fwd 3

cfg=$T_TMP/lbd.yaml
t_lbd_dirs lb
write_config() { # backends for echo4: "b1 b2" or "b1 b2 b3"
	local n
	{
		cat <<-YAML
		datapath:
		  interfaces: [lb0]
		  xdp_mode: native
		  conntrack_size: 65536
		  maglev_ring_size: 65537
		  max_vips: 8
		  max_backends: 64
		  encap_source_v4: 198.18.40.0/24
		  pin_path: $LBD_PIN
		control:
		  socket: $LBD_SOCK
		  state_dir: $LBD_STATE
		vips:
		  - {name: web4, address: $VIP4, port: 80, protocol: tcp, backends: [{address: 198.18.30.11}, {address: 198.18.30.12}]}
		  - {name: web6, address: "$VIP6", port: 80, protocol: tcp, backends: [{address: "fd00:1b:30::11"}, {address: "fd00:1b:30::12"}]}
		  - {name: dns4, address: $VIP4, port: 5300, protocol: udp, backends: [{address: 198.18.30.11}, {address: 198.18.30.12}]}
		  - {name: dns6, address: "$VIP6", port: 5300, protocol: udp, backends: [{address: "fd00:1b:30::11"}, {address: "fd00:1b:30::12"}]}
		  - name: echo4
		    address: $VIP4
		    port: 7000
		    protocol: tcp
		    backends:
		YAML
		for n in "$@"; do echo "      - address: 198.18.30.1${n#b}"; done
	} >"$cfg"
}
write_config b1 b2
"$LBD" --check-config "$cfg" >/dev/null || t_fail "lbd --check-config rejected the test config"

t_bg "$LB" lbd "$LBD" --config "$cfg"
LBD_PID=$T_LAST_PID
t_wait_for 15 "lbd running" t_log_has lbd "lbd .* running"
t_ok "lbd attached: $(grep -o 'attached XDP to .*mode' "$T_TMP/lbd.log")"

# 1. HTTP over IPv4 and IPv6 with real curl; every backend answers.
http_spread() { # URL COUNT -> "b1=N b2=M"
	local url=$1 count=$2 out
	for _ in $(seq "$count"); do
		out=$(ip netns exec "$CL" curl -sg --max-time 5 "$url") || t_fail "curl $url failed"
		echo "$out"
	done | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}'
}
spread=$(http_spread "http://$VIP4/" 40)
[[ $spread == *b1=* && $spread == *b2=* ]] || t_fail "IPv4 HTTP did not reach both backends: $spread"
t_ok "40/40 curl requests to $VIP4:80 answered, split: $spread"
spread=$(http_spread "http://[$VIP6]/" 40)
[[ $spread == *b1=* && $spread == *b2=* ]] || t_fail "IPv6 HTTP did not reach both backends: $spread"
t_ok "40/40 curl requests to [$VIP6]:80 answered, split: $spread"

# 2. UDP over IPv4 and IPv6: answered from the VIP (DSR), spread over backends.
for vip in "$VIP4" "$VIP6"; do
	out=$(ip netns exec "$CL" $FLOWS udp --addr "$vip" --port 5300 --count 40) ||
		t_fail "UDP to $vip:5300: $out"
	[[ $out == *'"b1"'* && $out == *'"b2"'* ]] || t_fail "UDP to $vip did not reach both backends: $out"
	t_ok "UDP $vip:5300: $out"
done

# 3. Established connections survive adding a backend (live reload).
go=$T_TMP/go
t_bg "$CL" hold $FLOWS hold --addr "$VIP4" --port 7000 --count 24 --go "$go" --wait 60
HOLD_PID=$T_LAST_PID
t_wait_for 20 "24 held connections" t_log_has hold '"phase": "open"'
t_info "held: $(grep -o '"backends".*' "$T_TMP/hold.log" | head -1)"
write_config b1 b2 b3
kill -HUP "$LBD_PID"
t_wait_for 10 "reload applied" t_log_has lbd "reload applied"
t_log_has lbd "vip echo4: backend 198.18.30.13 added" || t_fail "reload did not add b3"
out=$(ip netns exec "$CL" $FLOWS tcp --addr "$VIP4" --port 7000 --count 40) || t_fail "new connections: $out"
[[ $out == *'"b3"'* ]] || t_fail "no new connection reached the added backend: $out"
t_ok "after adding b3, new connections: $out"
touch "$go"
wait "$HOLD_PID" || t_fail "held connections broke or moved: $(tail -1 "$T_TMP/hold.log")"
t_ok "24 established connections kept their backend: $(tail -1 "$T_TMP/hold.log")"

# 4. A reload with errors is refused and changes nothing.
echo "  - {name: bad, address: 198.18.1.999, port: 80}" >>"$cfg"
kill -HUP "$LBD_PID"
t_wait_for 10 "reload refused" t_log_has lbd "reload refused"
t_log_has lbd "vips\[5\]\.address" || t_fail "refused reload did not name the bad key"
out=$(ip netns exec "$CL" $FLOWS tcp --addr "$VIP4" --port 7000 --count 20) || t_fail "after refused reload: $out"
t_ok "bad reload refused (names vips[5].address); traffic unaffected: $out"

# 5. SIGTERM stops lbd; the pinned datapath keeps forwarding; --detach removes it.
t_stop "$LBD_PID"
t_log_has lbd "XDP stays attached" || t_fail "lbd did not stop cleanly"
grep -E "counters:" "$T_TMP/lbd.log" | sed 's/^/   /'
out=$(ip netns exec "$CL" $FLOWS tcp --addr "$VIP4" --port 7000 --count 10) ||
	t_fail "no forwarding after lbd stopped: $out"
t_ok "lbd stopped on SIGTERM; the pinned XDP program still forwards: $out"
"$LBD" --detach --pin-path "$LBD_PIN" >"$T_TMP/detach.log" 2>&1 || t_fail "lbd --detach failed: $(cat "$T_TMP/detach.log")"
ip -n "$LB" link show lb0 | grep -q xdp && t_fail "XDP still attached after lbd --detach"
[[ -e $LBD_PIN ]] && t_fail "$LBD_PIN still there after lbd --detach"
t_ok "lbd --detach removed the XDP link and the pins"
echo "PASS: test_forwarding"
