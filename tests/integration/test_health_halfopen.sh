#!/usr/bin/env bash
# Half-open tcp checks (`half_open: true`) through lbd's checker
# (tests/tools/hc_probe) against a backend namespace, IPv4 and IPv6:
#
#   hc (hc_probe) --- veth --- be: a listener on port 7000 that never
#   198.18.51.1                    accepts; nothing on 7001
#   fd00:1b:51::1                  198.18.51.10, fd00:1b:51::10
#
# Checks:
#   - a listening port is up with reason "syn-ack", a closed one down with
#     "refused" (IPv4 and IPv6); with a `source` of ours up, with one that
#     is not down ("bind ...: Cannot assign requested address");
#   - no connection is ever made: the listener's accept queue stays empty,
#     and no half-open connection (SYN-RECV) is left in the backend: lbd's
#     kernel resets each SYN-ACK;
#   - TCP to the backend dropped (tc, ingress of the backend's veth) -> down
#     with "timeout after 100ms"; a reload meanwhile (SIGHUP) that changes
#     one target's timeout and removes another: the first keeps its state
#     and times out with the new value, the removed one reports nothing
#     more; the drop removed -> up again;
#   - SIGTERM: hc_probe exits (the prober's sockets do not keep the loop);
#   - without CAP_NET_RAW the probes fail with a reason that says so, and
#     it is logged once.
set -euo pipefail
# shellcheck source=../lib/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"
t_init test_health_halfopen

[[ $(id -u) -eq 0 ]] || t_skip "test_health_halfopen needs root (network namespaces, raw sockets)"
for tool in ip tc ss python3 timeout pgrep capsh; do
	command -v "$tool" >/dev/null || t_skip "$tool not found"
done
HC=$T_BUILD/tests/hc_probe
[[ -x $HC ]] || t_fail "hc_probe not found in $T_BUILD/tests (build the hc_probe target)"

S=$(($$ % 100000))
HCNS=ho-hc-$S BE=ho-be-$S
t_ns "$HCNS"
t_ns "$BE"
ip link add "ol$S" netns "$HCNS" type veth peer name "ob$S" netns "$BE"
ip -n "$HCNS" link set "ol$S" up
ip -n "$BE" link set "ob$S" up
t_addr "$HCNS" "ol$S" 198.18.51.1/24 fd00:1b:51::1/64
t_addr "$BE" "ob$S" 198.18.51.10/24 fd00:1b:51::10/64

# A listener on both families that never accepts: a completed handshake
# would sit in its accept queue (ss: Recv-Q).
t_bg "$BE" listener timeout 120 python3 -c '
import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 7000))
s.listen(64)
print("listening", flush=True)
time.sleep(120)
'
t_wait_for 10 "the listener" grep -q listening "$T_TMP/listener.log"

cat >"$T_TMP/targets.yaml" <<-YAML
	targets:
	  - {vip: open4, address: 198.18.51.10, port: 7000, health: {type: tcp, half_open: true, interval: 200ms, timeout: 100ms, unhealthy_threshold: 2, healthy_threshold: 2}}
	  - {vip: open6, address: "fd00:1b:51::10", port: 7000, health: {type: tcp, half_open: true, interval: 200ms, timeout: 100ms, unhealthy_threshold: 2, healthy_threshold: 2}}
	  - {vip: closed4, address: 198.18.51.10, port: 7001, health: {type: tcp, half_open: true, interval: 200ms, timeout: 100ms}}
	  - {vip: closed6, address: "fd00:1b:51::10", port: 7001, health: {type: tcp, half_open: true, interval: 200ms, timeout: 100ms}}
	  - {vip: src4, address: 198.18.51.10, port: 7000, source: 198.18.51.1, health: {type: tcp, half_open: true, interval: 200ms, timeout: 100ms}}
	  - {vip: badsrc4, address: 198.18.51.10, port: 7000, source: 198.18.99.99, health: {type: tcp, half_open: true, interval: 200ms, timeout: 100ms}}
YAML
t_bg "$HCNS" hc-stderr sh -c "exec timeout 100 '$HC' --probes '$T_TMP/targets.yaml' >'$T_TMP/hc.log'"
HC_WRAPPER=$T_LAST_PID
LOG=$T_TMP/hc.log
t_wait_for 10 "hc_probe to start" grep -q " ready " "$LOG"
HC_PID=$(pgrep -P "$HC_WRAPPER" -f hc_probe | head -n1)
[[ -n $HC_PID ]] || t_fail "no hc_probe process under $HC_WRAPPER"

now() { tail -n 1 "$LOG" | cut -d' ' -f1; }
expect() { t_wait_for "$1" "'$2' in hc_probe's output" grep -Eq -- "$2" "$LOG"; }
expect_after() { # expect_after SECONDS TIME REGEX
	t_wait_for "$1" "'$3' after t=$2" sh -c "awk -v t='$2' '\$1 >= t' '$LOG' | grep -Eq -- '$3'"
}

expect 10 'change open4 198\.18\.51\.10:7000 unknown -> up \(syn-ack\)'
expect 10 'change open6 \[fd00:1b:51::10\]:7000 unknown -> up \(syn-ack\)'
expect 10 'change closed4 198\.18\.51\.10:7001 unknown -> down \(refused\)'
expect 10 'change closed6 \[fd00:1b:51::10\]:7001 unknown -> down \(refused\)'
expect 10 'change src4 198\.18\.51\.10:7000 unknown -> up \(syn-ack\)'
expect 10 'change badsrc4 198\.18\.51\.10:7000 unknown -> down \(bind 198\.18\.99\.99: Cannot assign requested address\)'
t_log_has hc-stderr 'half-open tcp checks \(IPv4\): raw socket open' || t_fail "no raw socket opened for IPv4"
t_ok "listening port up (syn-ack), closed port down (refused), IPv4 and IPv6; a source of ours up, one not ours down (bind ...)"

# ------------------------------------------------- nothing left behind
sleep 1 # ~5 more probes of each target
syn_recv() { ip netns exec "$BE" ss -Htn state syn-recv | grep -c . || true; }
accept_queue() { ip netns exec "$BE" ss -Hltn 'sport = :7000' | awk '{print $2}'; }
n_ok=$(grep -c 'probe open[46] .* ok syn-ack' "$LOG")
((n_ok >= 10)) || t_fail "only $n_ok successful half-open probes"
# A SYN-RECV lives a few microseconds between the SYN-ACK and the RST; one
# left behind would stay for the SYN-ACK retransmissions (about a minute).
n=$(syn_recv)
((n <= 1)) || t_fail "$n half-open connections (SYN-RECV) in the backend while probing"
[[ $(accept_queue) == 0 ]] || t_fail "a connection was established (accept queue $(accept_queue))"
t_stop "$HC_PID"
sleep 0.3
n=$(syn_recv)
((n == 0)) || t_fail "$n half-open connections (SYN-RECV) left in the backend after $n_ok probes: $(ip netns exec "$BE" ss -Htn state syn-recv)"
[[ $(accept_queue) == 0 ]] || t_fail "a connection was established (accept queue $(accept_queue))"
t_ok "$n_ok successful probes: no connection established, no SYN-RECV left in the backend"

# ------------------------------------------------- dropped -> timeout
t_bg "$HCNS" hc2-stderr sh -c "exec timeout 60 '$HC' --probes '$T_TMP/targets.yaml' >'$T_TMP/hc2.log'"
HC2_WRAPPER=$T_LAST_PID
LOG=$T_TMP/hc2.log
expect 10 'change open4 .* unknown -> up \(syn-ack\)'
expect 10 'change open6 .* unknown -> up \(syn-ack\)'
ip netns exec "$BE" tc qdisc add dev "ob$S" clsact
# A classic BPF filter in direct-action mode: "ldb [23] (after the Ethernet
# header: the IPv4 protocol; IPv6: [20], next header); jeq #6 (TCP) ?
# ret #2 (TC_ACT_SHOT) : ret #-1". Needs only cls_bpf in the kernel (not
# nft, flower or the gact module).
drop_tcp() { # drop_tcp ip|ipv6 PREF OFFSET
	ip netns exec "$BE" tc filter add dev "ob$S" ingress protocol "$1" pref "$2" bpf da \
		bytecode "4,48 0 0 $3,21 0 1 6,6 0 0 2,6 0 0 4294967295"
}
drop_tcp ip 1 23
drop_tcp ipv6 2 20
t0=$(now)
expect_after 5 "$t0" 'change open4 198\.18\.51\.10:7000 up -> down \(timeout after 100ms\)'
expect_after 5 "$t0" 'change open6 \[fd00:1b:51::10\]:7000 up -> down \(timeout after 100ms\)'

# A reload while probes wait for their timeouts: open4's timeout changes
# (its probe in flight is dropped, it keeps its state and is probed with
# the new one), closed6 goes (its probe in flight is cancelled: no result
# of it after the reload).
HC2_PID=$(pgrep -P "$HC2_WRAPPER" -f hc_probe | head -n1)
[[ -n $HC2_PID ]] || t_fail "no hc_probe process under $HC2_WRAPPER"
cp "$T_TMP/targets.yaml" "$T_TMP/targets.orig.yaml"
sed -i -e '/vip: closed6/d' -e '/vip: open4/s/timeout: 100ms/timeout: 150ms/' "$T_TMP/targets.yaml"
grep -q 'open4.*timeout: 150ms' "$T_TMP/targets.yaml" || t_fail "targets.yaml not edited"
kill -HUP "$HC2_PID"
expect 5 ' ready 5$'
t_reload=$(grep ' ready 5$' "$LOG" | head -n1 | cut -d' ' -f1)
expect_after 5 "$t_reload" 'probe open4 198\.18\.51\.10:7000 fail timeout after 150ms'
sleep 0.5
if awk -v t="$t_reload" '$1 > t' "$LOG" | grep -q 'probe closed6 '; then
	t_fail "a result of the removed target closed6 after the reload"
fi
if awk -v t="$t_reload" '$1 > t' "$LOG" | grep -q 'change open4 '; then
	t_fail "open4 changed state on a reload that changed only its timeout: $(awk -v t="$t_reload" '$1 > t' "$LOG" | grep 'change open4 ')"
fi
ip netns exec "$BE" tc qdisc del dev "ob$S" clsact
t0=$(now)
expect_after 5 "$t0" 'change open4 198\.18\.51\.10:7000 down -> up \(syn-ack\)'
expect_after 5 "$t0" 'change open6 \[fd00:1b:51::10\]:7000 down -> up \(syn-ack\)'
cp "$T_TMP/targets.orig.yaml" "$T_TMP/targets.yaml"
t_ok "TCP dropped at the backend -> down (timeout after 100ms), IPv4 and IPv6; a reload meanwhile (timeout changed: state kept, new timeout used; a target removed: no result of it); undropped -> up"

# SIGTERM: the checker stops, the prober closes its sockets, hc_probe exits.
kill -TERM "$HC2_PID"
for _ in $(seq 50); do kill -0 "$HC2_WRAPPER" 2>/dev/null || break; sleep 0.1; done
kill -0 "$HC2_WRAPPER" 2>/dev/null && t_fail "hc_probe with half-open checks did not exit within 5 s of SIGTERM"
rc=0
wait "$HC2_WRAPPER" || rc=$?
[[ $rc -eq 0 ]] || t_fail "hc_probe exited $rc after SIGTERM"
t_ok "SIGTERM: hc_probe with half-open checks exits 0"

# ------------------------------------------------- without CAP_NET_RAW
t_bg "$HCNS" hc3-stderr capsh --drop=cap_net_raw -- -c "exec timeout 20 '$HC' --probes '$T_TMP/targets.yaml' >'$T_TMP/hc3.log'"
LOG=$T_TMP/hc3.log
expect 5 'probe open4 198\.18\.51\.10:7000 fail half-open: raw socket: Operation not permitted \(needs CAP_NET_RAW\)$'
expect 5 'probe open6 \[fd00:1b:51::10\]:7000 fail half-open: raw socket: Operation not permitted \(needs CAP_NET_RAW\)$'
sleep 0.5
n=$(grep -c 'half-open tcp checks (IPv4) cannot run: .*needs CAP_NET_RAW' "$T_TMP/hc3-stderr.log" || true)
[[ $n == 1 ]] || t_fail "the missing CAP_NET_RAW was logged $n times (want once)"
t_ok "without CAP_NET_RAW: probes fail saying so, logged once"
echo "PASS: test_health_halfopen"
