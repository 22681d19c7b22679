#!/usr/bin/env bash
# Route health injection against a real router: BIRD 2 in a "router"
# namespace, two LB namespaces each running bgp_driver (a BgpSpeaker with
# ExaBGP under it, tests/tools/bgp_driver.cpp).
#
#   lb A (AS 65001) 198.18.0.2/30, fd00:1b:0:1::2/64 --- router (AS 65000, BIRD)
#   lb B (AS 65001) 198.18.0.6/30, fd00:1b:0:2::2/64 ---/
#
# A has an IPv4 and an IPv6 session, graceful restart offered, maintenance
# action withdraw. B carries IPv4 and IPv6 over one IPv4 session (explicit
# next_hop_v6), maintenance action depref. Both announce 198.18.1.100/32 and
# fd00:1b:1::100/128; hold_down is 3 s.
#
# Env: LBD_BUILD_DIR (default build/ under the repo root) holds
# tests/bgp_driver and tests/bgp_relay. Exit 0 pass, 77 skip (not root, or
# exabgp/bird missing, unless CI=true), anything else fail.
set -euo pipefail

# shellcheck source=../lib/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"
t_init test_bgp_routes

DRIVER=$T_BUILD/tests/bgp_driver
RELAY=$T_BUILD/tests/bgp_relay
EXABGP=${EXABGP:-/usr/sbin/exabgp}
HOLD_DOWN_MS=3000

[[ $(id -u) -eq 0 ]] || t_skip "test_bgp_routes.sh needs root (network namespaces)"
for tool in ip bird birdc; do
	command -v "$tool" >/dev/null || t_skip "$tool not found (apt-get install bird2)"
done
[[ -x $EXABGP ]] || t_skip "$EXABGP not found (apt-get install exabgp)"
[[ -x $DRIVER && -x $RELAY ]] || t_fail "$DRIVER or $RELAY not found (build first or set LBD_BUILD_DIR)"

R=bgp-r-$$ A=bgp-a-$$ B=bgp-b-$$ X=bgp-x-$$
VIP4=198.18.1.100 VIP6=fd00:1b:1::100
BIRD_SOCK=$T_TMP/bird.ctl
PID_A='' PID_B=''
FA='' FB=''

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# until_ms LIMIT_MS DESCRIPTION CMD...: poll CMD every 50 ms; prints the
# milliseconds it took; fails after LIMIT_MS.
until_ms() {
	local limit=$1 what=$2 start
	shift 2
	start=$(now_ms)
	until "$@" >/dev/null 2>&1; do
		(($(now_ms) - start < limit)) || t_fail "timed out after ${limit} ms waiting for $what"
		sleep 0.05
	done
	echo $(($(now_ms) - start))
}
not() { ! "$@"; }

link() { # NS1 IF1 NS2 IF2
	ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
	ip -n "$1" link set "$2" up
	ip -n "$3" link set "$4" up
}

birdc_() { birdc -s "$BIRD_SOCK" "$@"; }
# bird_has PREFIX PROTOCOL: BIRD holds a route for PREFIX learnt over PROTOCOL.
bird_has() { birdc_ show route "$1" protocol "$2" | grep -qw via; }
# fib_paths PREFIX: next hops of the router's kernel route (0 if none).
fib_route() { ip -n "$R" "$([[ $1 == *:* ]] && echo -6 || echo -4)" route show "$1"; }
fib_paths() {
	local out
	out=$(fib_route "$1" 2>/dev/null)
	if [[ -z $out ]]; then echo 0
	elif grep -q nexthop <<<"$out"; then grep -c nexthop <<<"$out"
	else echo 1
	fi
}
fib_paths_is() { [[ $(fib_paths "$1") -eq $2 ]]; }
fib_via() { fib_route "$1" | grep -q "via $2"; }

# ------------------------------------------------------------------ topology
t_ns "$R"
t_ns "$A"
t_ns "$B"
t_ns "$X"
link "$R" ra$$ "$A" ar$$
link "$R" rb$$ "$B" br$$
ip -n "$R" addr add 198.18.0.1/30 dev ra$$
ip -n "$R" addr add fd00:1b:0:1::1/64 dev ra$$ nodad
ip -n "$A" addr add 198.18.0.2/30 dev ar$$
ip -n "$A" addr add fd00:1b:0:1::2/64 dev ar$$ nodad
ip -n "$R" addr add 198.18.0.5/30 dev rb$$
ip -n "$R" addr add fd00:1b:0:2::1/64 dev rb$$ nodad
ip -n "$B" addr add 198.18.0.6/30 dev br$$
ip -n "$B" addr add fd00:1b:0:2::2/64 dev br$$ nodad

cat >"$T_TMP/bird.conf" <<EOF
router id 198.18.0.1;
log stderr all;
protocol device { scan time 1; }
protocol kernel { ipv4 { export all; }; merge paths on; }
protocol kernel { ipv6 { export all; }; merge paths on; }
template bgp lb {
	local as 65000;
	hold time 9;
	connect retry time 1;
	error wait time 1, 2;
}
protocol bgp lba from lb {
	neighbor 198.18.0.2 as 65001;
	ipv4 { import all; export none; };
}
protocol bgp lba6 from lb {
	neighbor fd00:1b:0:1::2 as 65001;
	ipv6 { import all; export none; };
}
protocol bgp lbb from lb {
	neighbor 198.18.0.6 as 65001;
	ipv4 { import all; export none; };
	ipv6 { import all; export none; };
}
EOF
t_bg "$R" bird bird -f -c "$T_TMP/bird.conf" -s "$BIRD_SOCK" -P "$T_TMP/bird.pid"
t_wait_for 10 "BIRD's control socket" birdc_ show status

cat >"$T_TMP/a.yaml" <<EOF
bgp:
  exabgp: $EXABGP
  local_as: 65001
  router_id: 198.18.0.2
  local_address: 198.18.0.2
  hold_time: 9
  neighbors:
    - address: 198.18.0.1
      peer_as: 65000
    - address: fd00:1b:0:1::1
      peer_as: 65000
      local_address: fd00:1b:0:1::2
  med: 100
  communities: ["65001:100", "65001:1:2"]
  maintenance_file: $T_TMP/a-disable
  maintenance_action: withdraw
  withdraw_quorum: 1
  hold_down: ${HOLD_DOWN_MS}ms
  graceful_restart: 120
vips:
  - {name: web, address: $VIP4, healthy: 2}
  - {name: web6, address: $VIP6, healthy: 2}
EOF
cat >"$T_TMP/b.yaml" <<EOF
bgp:
  exabgp: $EXABGP
  local_as: 65001
  local_address: 198.18.0.6
  hold_time: 9
  neighbors:
    - address: 198.18.0.5
      peer_as: 65000
      families: [ipv4, ipv6]
  next_hop_v6: fd00:1b:0:2::2
  med: 100
  maintenance_file: $T_TMP/b-disable
  maintenance_action: depref
  maintenance_med: 1000
  maintenance_community: "65001:666"
  hold_down: ${HOLD_DOWN_MS}ms
vips:
  - {name: web, address: $VIP4, healthy: 1}
  - {name: web6, address: $VIP6, healthy: 1}
EOF

# start_driver NAME NS: bgp_driver with commands from a FIFO; sets PID_<NAME>
# and the write end F<NAME>.
start_driver() {
	local name=$1 ns=$2 fd
	mkfifo "$T_TMP/$name.in"
	exec {fd}<>"$T_TMP/$name.in" # read-write: opening does not wait for a reader
	printf -v "F${name^^}" %s "$fd"
	# Not t_bg: an asynchronous command gets /dev/null as stdin unless it
	# redirects stdin itself.
	ip netns exec "$ns" "$DRIVER" "$T_TMP/$name.yaml" --relay "$RELAY" --runtime-dir "$T_TMP/$name-run" \
		<"$T_TMP/$name.in" >"$T_TMP/driver-$name.log" 2>&1 &
	T_PIDS+=($!)
	printf -v "PID_${name^^}" %s $!
}
start_driver a "$A"
start_driver b "$B"
command_a() { echo "$*" >&"$FA"; }
command_b() { echo "$*" >&"$FB"; }

# ------------------------------------------------------------------ announced
ms=$(until_ms 20000 "$VIP4/32 from both LB nodes in BIRD" \
	eval "bird_has $VIP4/32 lba && bird_has $VIP4/32 lbb")
t_ok "$VIP4/32 in BIRD's table from both LB nodes (${ms} ms after start)"
until_ms 5000 "$VIP6/128 from both LB nodes" eval "bird_has $VIP6/128 lba6 && bird_has $VIP6/128 lbb" >/dev/null
t_ok "$VIP6/128 in BIRD's table from A (IPv6 session) and B (IPv6 over the IPv4 session)"
birdc_ show route $VIP4/32 protocol lba all | grep -q 'BGP.med: 100' ||
	t_fail "A's route lacks MED 100: $(birdc_ show route $VIP4/32 protocol lba all)"
birdc_ show route $VIP4/32 protocol lba all | grep -q 'BGP.community: (65001,100)' ||
	t_fail "A's route lacks community 65001:100"
birdc_ show route $VIP4/32 protocol lba all | grep -q 'BGP.large_community: (65001, 1, 2)' ||
	t_fail "A's route lacks large community 65001:1:2"
t_ok "attributes: MED 100, community (65001,100), large community (65001,1,2)"

until_ms 5000 "two next hops for $VIP4 in the router's FIB" fib_paths_is $VIP4 2 >/dev/null
if ! fib_via $VIP4 198.18.0.2 || ! fib_via $VIP4 198.18.0.6; then t_fail "FIB: $(fib_route $VIP4)"; fi
t_ok "router FIB: one multipath route for $VIP4 via 198.18.0.2 and 198.18.0.6"
until_ms 5000 "two next hops for $VIP6 in the router's FIB" fib_paths_is $VIP6 2 >/dev/null
t_ok "router FIB: one multipath route for $VIP6 via fd00:1b:0:1::2 and fd00:1b:0:2::2"

birdc_ show protocols all lba | sed -n '/Neighbor capabilities/,/Session:/p' | grep -q 'Restart time: 120' ||
	t_fail "BIRD does not see A's graceful restart capability: $(birdc_ show protocols all lba)"
t_ok "graceful restart offered by A (BIRD sees restart time 120)"

# ------------------------------------------------------------------ maintenance
touch "$T_TMP/a-disable"
ms=$(until_ms 2000 "A's routes to leave BIRD after the maintenance file" \
	eval "not bird_has $VIP4/32 lba && not bird_has $VIP6/128 lba6")
t_ok "maintenance file on A: $VIP4/32 and $VIP6/128 withdrawn from BIRD in ${ms} ms"
until_ms 2000 "a single next hop (B)" fib_paths_is $VIP4 1 >/dev/null
fib_via $VIP4 198.18.0.6 || t_fail "FIB: $(fib_route $VIP4)"
t_ok "router FIB: $VIP4 only via B while A is in maintenance"
rm "$T_TMP/a-disable"
ms=$(until_ms 2000 "A's routes back in BIRD" eval "bird_has $VIP4/32 lba && bird_has $VIP6/128 lba6")
t_ok "maintenance file removed: re-announced in ${ms} ms (no hold-down after maintenance)"
until_ms 2000 "two next hops again" fib_paths_is $VIP4 2 >/dev/null

touch "$T_TMP/b-disable"
until_ms 2000 "B's route with the maintenance MED" \
	eval "birdc_ show route $VIP4/32 protocol lbb all | grep -q 'BGP.med: 1000'" >/dev/null
birdc_ show route $VIP4/32 protocol lbb all | grep -q 'BGP.community:.*(65001,666)' ||
	t_fail "B's depref route lacks community 65001:666: $(birdc_ show route $VIP4/32 protocol lbb all)"
until_ms 2000 "the router to prefer A only" fib_paths_is $VIP4 1 >/dev/null
fib_via $VIP4 198.18.0.2 || t_fail "FIB: $(fib_route $VIP4)"
t_ok "depref on B: still announced with MED 1000 + community (65001,666); router uses A only"
rm "$T_TMP/b-disable"
until_ms 2000 "B back to MED 100 and ECMP" eval "fib_paths_is $VIP4 2" >/dev/null
t_ok "depref ended: ECMP over both nodes again"

# ------------------------------------------------------------------ health
command_a healthy web 0
ms=$(until_ms 2000 "A's $VIP4/32 withdrawn" not bird_has $VIP4/32 lba)
t_ok "healthy web 0 on A: $VIP4/32 withdrawn in ${ms} ms"
bird_has $VIP6/128 lba6 || t_fail "web6 on A was withdrawn too"
until_ms 2000 "a single next hop" fib_paths_is $VIP4 1 >/dev/null
fib_via $VIP4 198.18.0.6 || t_fail "FIB: $(fib_route $VIP4)"
t_ok "router FIB: withdrawing on A leaves the single next hop via B"
command_a healthy web 1
ms=$(until_ms 10000 "A's $VIP4/32 re-announced" bird_has $VIP4/32 lba)
((ms >= HOLD_DOWN_MS - 100)) || t_fail "re-announced after ${ms} ms, before hold_down ${HOLD_DOWN_MS} ms"
((ms <= HOLD_DOWN_MS + 1500)) || t_fail "re-announced only after ${ms} ms (hold_down ${HOLD_DOWN_MS} ms)"
t_ok "healthy web 1 on A: re-announced after ${ms} ms (hold_down ${HOLD_DOWN_MS} ms)"

# ------------------------------------------------------------------ ExaBGP crash
EXA_B=$(pgrep -P "$PID_B" | head -1)
if [[ -z $EXA_B ]] || ! grep -q exabgp "/proc/$EXA_B/cmdline"; then t_fail "no ExaBGP under B's driver"; fi
start=$(now_ms)
kill -KILL "$EXA_B"
until_ms 5000 "B's route to go with its session" not bird_has $VIP4/32 lbb >/dev/null
until_ms 10000 "B's route to come back" eval "bird_has $VIP4/32 lbb && bird_has $VIP6/128 lbb" >/dev/null
ms=$(($(now_ms) - start))
new=$(pgrep -P "$PID_B" | head -1)
[[ -n $new && $new != "$EXA_B" ]] || t_fail "ExaBGP was not restarted"
t_ok "kill -9 of ExaBGP on B (pid $EXA_B): restarted as pid $new, routes back in ${ms} ms"

# A offers graceful restart: BIRD keeps its routes while ExaBGP restarts, and
# the end-of-RIB lbd sends after re-announcing ends BIRD's recovery.
EXA_A=$(pgrep -P "$PID_A" | head -1)
start=$(now_ms)
kill -KILL "$EXA_A"
until_ms 5000 "BIRD to notice A's restart" eval "birdc_ show protocols all lba | grep -q 'graceful restart active'" >/dev/null
while birdc_ show protocols all lba | grep -q 'graceful restart active'; do
	bird_has $VIP4/32 lba || t_fail "A's route left BIRD during graceful restart"
	(($(now_ms) - start < 10000)) || t_fail "graceful restart of A not over after 10 s: $(birdc_ show protocols all lba)"
	sleep 0.05
done
if ! bird_has $VIP4/32 lba || ! bird_has $VIP6/128 lba6; then t_fail "A's routes gone after its graceful restart"; fi
birdc_ show protocols lba | grep -q Established || t_fail "A not established after its restart"
t_ok "kill -9 of ExaBGP on A (graceful restart): route kept throughout, recovery (end-of-RIB) done in $(($(now_ms) - start)) ms"

# ------------------------------------------------------------------ graceful stop
# A offers graceful restart, so BIRD would keep A's routes as stale for 120 s
# if A only dropped its sessions: their absence right at exit shows they were
# withdrawn first.
kill -TERM "$PID_A"
rc=0
wait "$PID_A" || rc=$?
if bird_has $VIP4/32 lba || bird_has $VIP6/128 lba6; then
	t_fail "A's routes still in BIRD when its driver had exited: $(birdc_ show route protocol lba)"
fi
[[ $rc -eq 0 ]] || t_fail "driver A exited with $rc after SIGTERM"
t_ok "SIGTERM to A's driver: routes withdrawn before it exited (exit 0)"
bird_has $VIP4/32 lbb || t_fail "B's route went too"
[[ -z $(ip netns pids "$A") ]] || t_fail "processes left in A: $(ip netns pids "$A" | xargs)"
[[ ! -e $T_TMP/a-run/api.sock && ! -e $T_TMP/a-run/exabgp.conf ]] || t_fail "runtime files left in $T_TMP/a-run"
t_ok "ExaBGP and the relay reaped, runtime files removed"
grep -q 'withdrawals sent' "$T_TMP/driver-a.log" || t_fail "A stopped without confirmed withdrawals"

# ------------------------------------------------------------------ bad config
# bad_config NAME KEY YAML: the driver must refuse it naming KEY with a line,
# and start nothing.
bad_config() {
	local name=$1 key=$2 rc=0
	printf '%s\n' "$3" >"$T_TMP/bad-$name.yaml"
	ip netns exec "$X" timeout 10 "$DRIVER" "$T_TMP/bad-$name.yaml" --relay "$RELAY" \
		>"$T_TMP/bad-$name.log" 2>&1 || rc=$?
	[[ $rc -ne 0 && $rc -ne 124 ]] || t_fail "bad config $name: exit $rc"
	grep -Eq "bad-$name.yaml:[0-9]+: $key: " "$T_TMP/bad-$name.log" ||
		t_fail "bad config $name: no error naming $key: $(cat "$T_TMP/bad-$name.log")"
	! grep -q 'started ExaBGP' "$T_TMP/bad-$name.log" || t_fail "bad config $name started ExaBGP"
	[[ -z $(ip netns pids "$X") ]] || t_fail "bad config $name left processes"
	t_ok "bad config ($name): exit $rc, $(grep -E "$key: " "$T_TMP/bad-$name.log" | head -1 | sed "s|$T_TMP/||")"
}
bad_config no-neighbor 'bgp.neighbors' "bgp:
  exabgp: $EXABGP
  local_as: 65001
  local_address: 198.18.0.2
  neighbors: []"
bad_config invalid-as 'bgp.local_as' "bgp:
  exabgp: $EXABGP
  local_as: 4294967296
  local_address: 198.18.0.2
  neighbors: [{address: 198.18.0.1, peer_as: 65000}]"
bad_config exabgp-path 'bgp.exabgp' "bgp:
  exabgp: /nonexistent/exabgp
  local_as: 65001
  local_address: 198.18.0.2
  neighbors: [{address: 198.18.0.1, peer_as: 65000}]"

command_b quit
wait "$PID_B" || t_fail "driver B exited with $?"
t_ok "all checks passed"
