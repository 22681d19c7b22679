#!/usr/bin/env bash
# Integration test for lbd-decap (bpf/decap.bpf.c, src/decap/main.cpp).
#
# Topology: namespace "sender" <-veth-> namespace "backend". The backend has
# lbd-decap attached to its veth, VIPs on lo and a UDP echo server bound to
# the VIPs. This kernel has no ipip device, so the sender crafts IP-in-IP
# frames with a raw AF_PACKET socket (tests/integration/lib/decap_send.py) and
# waits for the backend's direct reply (DSR: source = VIP).
#
# Env: LBD_BUILD_DIR (default build/ under the repo root) holds lbd-decap.
# Exit 0 pass, 77 skip (not root, unless CI=true), anything else fail.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${LBD_BUILD_DIR:-build}
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
DECAP=$BUILD/lbd-decap
HELPER=$REPO/tests/integration/lib/decap_send.py

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
skip() {
	if [[ ${CI:-} == true ]]; then
		fail "$* (CI=true: not skipping)"
	fi
	echo "SKIP: $*"
	exit 77
}

[[ $(id -u) -eq 0 ]] || skip "test_decap.sh needs root (network namespaces, XDP)"
for tool in ip python3 timeout bpftool ping; do
	command -v "$tool" >/dev/null || skip "$tool not found"
done
[[ -x $DECAP ]] || fail "$DECAP not found (build first or set LBD_BUILD_DIR)"

NS_C=dcap-c-$$            # sender ("client")
NS_B=dcap-b-$$            # backend
VC=dcc$$                  # veth in the sender namespace
VB=dcb$$                  # veth in the backend namespace
C4=198.18.100.1 B4=198.18.100.2 VIP4=198.18.101.100
C6=fd00:1b:100::1 B6=fd00:1b:100::2 VIP6=fd00:1b:101::100
PORT=9999
TMP=$(mktemp -d /tmp/test_decap.XXXXXX)
LOG=$TMP/server.log
SERVER_PID=

cleanup() {
	local rc=$?
	trap - EXIT
	set +e
	if [[ -n $SERVER_PID ]]; then
		kill "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
	fi
	ip netns del "$NS_C" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
	if [[ $rc -ne 0 && -s $LOG ]]; then
		echo "--- server log:" >&2
		cat "$LOG" >&2
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR

nsb() { timeout 10 ip netns exec "$NS_B" "$@"; }
nsc() { timeout 10 ip netns exec "$NS_C" "$@"; }
decap() { nsb "$DECAP" "$@"; }

# ------------------------------------------------------------------ topology
ip netns add "$NS_C"
ip netns add "$NS_B"
ip link add "$VC" netns "$NS_C" type veth peer name "$VB" netns "$NS_B"
ip -n "$NS_C" link set lo up
ip -n "$NS_B" link set lo up
ip -n "$NS_C" addr add "$C4/24" dev "$VC"
ip -n "$NS_C" addr add "$C6/64" dev "$VC" nodad
ip -n "$NS_B" addr add "$B4/24" dev "$VB"
ip -n "$NS_B" addr add "$B6/64" dev "$VB" nodad
ip -n "$NS_B" addr add "$VIP4/32" dev lo
ip -n "$NS_B" addr add "$VIP6/128" dev lo nodad
ip -n "$NS_C" link set "$VC" up
ip -n "$NS_B" link set "$VB" up
MAC_B=$(nsb cat "/sys/class/net/$VB/address")

# The UDP echo server, bound to the VIPs only.
timeout 60 ip netns exec "$NS_B" python3 "$HELPER" serve --bind "$VIP4" --bind "$VIP6" \
	--port "$PORT" --log "$LOG" --ready "$TMP/ready" &
SERVER_PID=$!
for _ in $(seq 50); do
	[[ -s $TMP/ready ]] && break
	kill -0 "$SERVER_PID" 2>/dev/null || fail "UDP server did not start"
	sleep 0.1
done
[[ -s $TMP/ready ]] || fail "UDP server not ready after 5 s"

# ------------------------------------------------------------------ helpers
counter() {
	decap status "$VB" | awk -v n="$1" '$1 == n { print $2 }'
}

SPORT=40000
send() {
	SPORT=$((SPORT + 1))
	nsc python3 "$HELPER" send --ifname "$VC" --dst-mac "$MAC_B" --sport "$SPORT" \
		--dport "$PORT" "$@"
}

# expect_decap WHAT TOKEN SEND-ARGS...: decapsulated, served, answered from the VIP.
expect_decap() {
	local what=$1 token=$2 before after out
	shift 2
	before=$(counter decapsulated)
	out=$(send --payload "$token" --expect reply "$@") || fail "$what: $out"
	grep -q " $token\$" "$LOG" || fail "$what: the server did not get '$token'"
	after=$(counter decapsulated)
	[[ $after -eq $((before + 1)) ]] || fail "$what: decapsulated $before -> $after"
	ok "$what"
}

# expect_pass WHAT COUNTER TOKEN SEND-ARGS...: not decapsulated, COUNTER + 1.
expect_pass() {
	local what=$1 cnt=$2 token=$3 before after out
	shift 3
	before=$(counter "$cnt")
	out=$(send --payload "$token" --expect none --wait 1 "$@") || fail "$what: $out"
	if grep -q " $token\$" "$LOG"; then
		fail "$what: the server got '$token'"
	fi
	after=$(counter "$cnt")
	[[ $after -eq $((before + 1)) ]] || fail "$what: $cnt $before -> $after"
	ok "$what"
}

attached_xdp() { ip -n "$NS_B" link show dev "$VB" | grep -oE 'xdp[a-z]*' | head -n1; }

# ------------------------------------------------------------------ attach
out=$(decap attach "$VB") || fail "attach: $out"
echo "   $out"
[[ $(attached_xdp) == xdp ]] || fail "attach: ip link shows '$(attached_xdp)', want native xdp"
status=$(decap status "$VB") || fail "status after attach exited non-zero"
grep -q "lbd-decap attached, prog id [0-9]*, native mode" <<<"$status" \
	|| fail "status: $status"
grep -q "endpoints:.* $B4\b" <<<"$status" || fail "status lacks $B4: $status"
grep -q "endpoints:.* $B6\b" <<<"$status" || fail "status lacks $B6: $status"
ok "attached in native mode; status lists $B4 and $B6 as endpoints"

# ------------------------------------------------------------------ decapsulation
expect_decap "4in4 datagram decapsulated and answered from the VIP" tok-4in4-$$ \
	--outer-src "$C4" --outer-dst "$B4" --inner-src "$C4" --inner-dst "$VIP4"
expect_decap "6in6 datagram decapsulated and answered from the VIP" tok-6in6-$$ \
	--outer-src "$C6" --outer-dst "$B6" --inner-src "$C6" --inner-dst "$VIP6"
expect_decap "6in6 with a destination options header (ip6tnl encap limit) decapsulated" \
	tok-6in6do-$$ --dstopts \
	--outer-src "$C6" --outer-dst "$B6" --inner-src "$C6" --inner-dst "$VIP6"
expect_decap "6in4 datagram decapsulated and answered from the VIP" tok-6in4-$$ \
	--outer-src "$C4" --outer-dst "$B4" --inner-src "$C6" --inner-dst "$VIP6"
expect_decap "4in6 datagram decapsulated and answered from the VIP" tok-4in6-$$ \
	--outer-src "$C6" --outer-dst "$B6" --inner-src "$C4" --inner-dst "$VIP4"

# ------------------------------------------------------------------ not for us
expect_pass "4in4 for another host's address (198.18.100.77) not decapsulated" \
	passed_not_local tok-nl4-$$ \
	--outer-src "$C4" --outer-dst 198.18.100.77 --inner-src "$C4" --inner-dst "$VIP4"
expect_pass "6in6 for another host's address (fd00:1b:100::77) not decapsulated" \
	passed_not_local tok-nl6-$$ \
	--outer-src "$C6" --outer-dst fd00:1b:100::77 --inner-src "$C6" --inner-dst "$VIP6"
expect_pass "outer IPv4 fragment (MF) not decapsulated" passed_fragment tok-fr4-$$ \
	--outer-frag --outer-src "$C4" --outer-dst "$B4" --inner-src "$C4" --inner-dst "$VIP4"
expect_pass "outer IPv6 fragment header not decapsulated" passed_fragment tok-fr6-$$ \
	--outer-frag --outer-src "$C6" --outer-dst "$B6" --inner-src "$C6" --inner-dst "$VIP6"
expect_pass "protocol 4 carrying an IPv6 packet counted as malformed" malformed tok-bad-$$ \
	--outer-proto 4 --outer-src "$C4" --outer-dst "$B4" --inner-src "$C6" --inner-dst "$VIP6"

# ------------------------------------------------------------------ plain traffic
before=$(counter passed_not_tunnel)
nsc ping -c 1 -W 2 "$B4" >/dev/null || fail "ping $B4 with lbd-decap attached"
nsc ping -6 -c 1 -W 2 "$B6" >/dev/null || fail "ping $B6 with lbd-decap attached"
after=$(counter passed_not_tunnel)
[[ $after -ge $((before + 2)) ]] || fail "passed_not_tunnel $before -> $after after two pings"
ok "plain IPv4 and IPv6 ping to the backend still work (passed_not_tunnel $before -> $after)"

# ------------------------------------------------------------------ VLAN tags (bpftool prog run)
prog_id=$(decap status "$VB" | sed -n 's/.*prog id \([0-9]*\),.*/\1/p')
python3 "$HELPER" frame --src-mac 02:00:00:00:00:01 --dst-mac "$MAC_B" \
	--vlan 88a8:10 --vlan 8100:20 --outer-src "$C4" --outer-dst "$B4" \
	--inner-src "$C6" --inner-dst "$VIP6" --sport 1 --dport "$PORT" --payload qinq \
	--out "$TMP/qinq.in" --expect-out "$TMP/qinq.want"
run=$(nsb bpftool prog run id "$prog_id" data_in "$TMP/qinq.in" data_out "$TMP/qinq.out") \
	|| fail "bpftool prog run: $run"
grep -q "Return value: 2" <<<"$run" || fail "QinQ frame: want XDP_PASS (2): $run"
cmp -s "$TMP/qinq.out" "$TMP/qinq.want" || fail "QinQ frame: decapsulated frame differs"
ok "QinQ-tagged 6in4 frame decapsulated with both VLAN tags kept (bpftool prog run)"

# ------------------------------------------------------------------ re-attach, generic mode
out=$(decap attach "$VB") || fail "second attach: $out"
grep -q "replacing 'lbd_decap'" <<<"$out" || fail "second attach did not replace: $out"
new_id=$(decap status "$VB" | sed -n 's/.*prog id \([0-9]*\),.*/\1/p')
[[ $new_id != "$prog_id" ]] || fail "second attach kept prog id $prog_id"
ok "attach again replaces the earlier lbd-decap program (prog id $prog_id -> $new_id)"

out=$(decap attach "$VB" --mode generic) || fail "attach --mode generic: $out"
[[ $(attached_xdp) == xdpgeneric ]] || fail "generic attach: ip link shows '$(attached_xdp)'"
decap status "$VB" | grep -q "generic mode" || fail "status does not say generic mode"
expect_decap "generic mode: 4in4 datagram decapsulated and answered from the VIP" \
	tok-gen-$$ --outer-src "$C4" --outer-dst "$B4" --inner-src "$C4" --inner-dst "$VIP4"

# ------------------------------------------------------------------ errors
if out=$(decap attach nosuch$$ 2>&1); then fail "attach to a missing interface succeeded"; fi
grep -q "unknown interface" <<<"$out" || fail "missing interface: $out"
if out=$(decap attach "$VB" --address 198.18.300.1 2>&1); then fail "bad --address accepted"; fi
grep -q "bad address" <<<"$out" || fail "bad address: $out"
ok "unknown interface and bad --address are refused with an error"

# ------------------------------------------------------------------ detach
out=$(decap detach "$VB") || fail "detach: $out"
echo "   $out"
[[ -z $(attached_xdp) ]] || fail "after detach ip link still shows $(attached_xdp)"
rc=0
decap status "$VB" >/dev/null || rc=$?
[[ $rc -eq 3 ]] || fail "status after detach exited $rc, want 3"
out=$(decap detach "$VB") || fail "second detach failed: $out"
grep -q "nothing attached" <<<"$out" || fail "second detach: $out"
ok "detach removes the XDP program and a second detach is a no-op (exit 0)"

expect_pass_plain() {
	# After detach a 4in4 packet must not reach the server (no ipip module).
	local out
	out=$(send --payload tok-after-$$ --expect none --wait 1 \
		--outer-src "$C4" --outer-dst "$B4" --inner-src "$C4" --inner-dst "$VIP4") \
		|| fail "after detach: $out"
	if grep -q " tok-after-$$\$" "$LOG"; then
		fail "after detach a 4in4 datagram still reached the server"
	fi
}
expect_pass_plain
ok "after detach 4in4 datagrams no longer reach the server"

echo "PASS: test_decap.sh"
