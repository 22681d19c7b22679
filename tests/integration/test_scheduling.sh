#!/usr/bin/env bash
# Per-VIP scheduling end to end, through the real lbd in namespaces (the
# single-LB topology of test_forwarding.sh, three backends). For every
# algorithm, a TCP VIP (curl, HTTP) and a UDP VIP (flows.py udp): the VIPs
# are re-created with `lbctl lb create --algorithm ...` between phases.
#
#   maglev       spread over the backends
#   round-robin  an even split
#   weighted     3:1:1
#   least-conn   held connections split evenly, counters follow the closes
#   source-hash  one client, one backend; several clients spread
#   failover     everything on the highest weight, the next one when drained
#   persistence  round-robin, yet one client stays on one backend
#   one-packet   the datagrams of one 5-tuple spread over the backends
#
# Bad combinations are refused by `lbd --check-config` (key path and line)
# and by lbctl create (exit 1, one line).
#
# Round-robin and weighted keep a cursor per CPU: the clients run pinned to
# one CPU, so that (on veths) the LB's XDP program sees their packets on one.
set -euo pipefail
# shellcheck source=../lib/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"
t_init test_scheduling
t_require_root
LBCTL=$T_BUILD/lbctl
[[ -x $LBCTL ]] || t_fail "$LBCTL not found"
command -v taskset >/dev/null || t_skip "taskset not found"

t_single_lb_topology sch 3
t_lbd_dirs lb
cfg=$T_TMP/lbd.yaml
B=(198.18.30.11 198.18.30.12 198.18.30.13)

# 0. The config refuses bad combinations, naming key path and line.
{
	t_lbd_config_head
	cat <<-YAML
	vips:
	  - name: web
	    address: $VIP4
	    port: 80
	    one_packet: true
	    persistence:
	      netmask: 33
	  - name: dns
	    address: $VIP4
	    port: 5300
	    protocol: udp
	    algorithm: fastest
	YAML
} >"$cfg"
out=$("$LBD" --check-config "$cfg" 2>&1) && t_fail "lbd --check-config accepted a bad config"
for want in "15: vips\[0\]\.one_packet: one_packet applies to UDP VIPs only" \
	"17: vips\[0\]\.persistence\.netmask: must be between 1 and 32" \
	"22: vips\[1\]\.algorithm: unknown algorithm 'fastest'"; do
	grep -Eq "$want" <<<"$out" || t_fail "check-config does not say '$want': $out"
done
t_ok "bad config refused: $(grep -c 'vips\[' <<<"$out") errors with key path and line"

{
	t_lbd_config_head
	cat <<-YAML
	vips:
	  - {name: web, address: $VIP4, port: 80, protocol: tcp, backends: [{address: ${B[0]}}, {address: ${B[1]}}, {address: ${B[2]}}]}
	  - {name: dns, address: $VIP4, port: 5300, protocol: udp, backends: [{address: ${B[0]}}, {address: ${B[1]}}, {address: ${B[2]}}]}
	  - {name: echo, address: $VIP4, port: 7000, protocol: tcp, algorithm: least-conn, backends: [{address: ${B[0]}}, {address: ${B[1]}}, {address: ${B[2]}}]}
	YAML
} >"$cfg"
"$LBD" --check-config "$cfg" >/dev/null || t_fail "lbd --check-config rejected the test config"
t_bg "$LB" lbd "$LBD" --config "$cfg"
t_wait_for 15 "lbd running" t_log_has lbd "lbd .* running"
ctl() { "$LBCTL" --socket "$LBD_SOCK" "$@"; }
# Clients on CPU 0 (see above).
client() { ip netns exec "$CL" taskset -c 0 "$@"; }

# recreate NAME PORT PROTO ALGO BACKENDS [lbctl create options...]
recreate() {
	local name=$1 port=$2 proto=$3 alg=$4 backends=$5
	shift 5
	ctl lb delete "$name" >/dev/null || t_fail "lb delete $name"
	ctl lb create --name "$name" --vip "$VIP4:$port" --protocol "$proto" --algorithm "$alg" \
		--backends "$backends" "$@" >/dev/null || t_fail "lb create $name --algorithm $alg $*"
}
all3() { echo "${B[0]},${B[1]},${B[2]}"; }
http() { # COUNT [curl options]: "b1=N b2=M ..." sorted by backend
	local count=$1 out
	shift
	for _ in $(seq "$count"); do
		out=$(client curl -s --max-time 5 "$@" "http://$VIP4/") || t_fail "curl $* http://$VIP4/ failed"
		echo "$out"
	done | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}'
}
udp() { # COUNT: flows.py's JSON (a new source port per datagram)
	client $FLOWS udp --addr "$VIP4" --port 5300 --count "$1" || t_fail "UDP to $VIP4:5300 lost datagrams"
}
n_of() { # TAG SPLIT: the count of TAG in "b1=N ..." or in flows.py's JSON
	local m
	m=$(grep -oE "\"?$1\"?(=|: )[0-9]+" <<<"$2" | grep -oE '[0-9]+$' || true)
	echo "${m:-0}"
}
between() { # N LO HI
	(($1 >= $2 && $1 <= $3))
}
used() { # SPLIT: how many backends appear
	grep -oE 'b[0-9]' <<<"$1" | sort -u | wc -l
}
lc_active() { # VIP: "N N N", lb show's least-conn counters in backend order
	ctl --json lb show "$1" | python3 -c 'import json,sys
print(" ".join(str(b.get("lc_active", "-")) for b in json.load(sys.stdin)["vip"]["backends"]))'
}

# 1. maglev (the default): spread.
s=$(http 30)
(($(used "$s") >= 2)) || t_fail "maglev HTTP did not spread: $s"
u=$(udp 30)
(($(used "$u") >= 2)) || t_fail "maglev UDP did not spread: $u"
t_ok "maglev: HTTP $s; UDP $u"

# 2. round-robin: an even split, TCP and UDP.
recreate web 80 tcp round-robin "$(all3)"
recreate dns 5300 udp round-robin "$(all3)"
s=$(http 30)
for b in b1 b2 b3; do between "$(n_of $b "$s")" 9 11 || t_fail "round-robin HTTP is not even: $s"; done
u=$(udp 30)
for b in b1 b2 b3; do between "$(n_of $b "$u")" 9 11 || t_fail "round-robin UDP is not even: $u"; done
# Without one_packet a 5-tuple is one flow: a stream stays on one backend.
go=$T_TMP/go-stream1
t_bg "$CL" stream1 taskset -c 0 $FLOWS stream --addr "$VIP4" --port 5300 --go "$go" --wait 20
sleep 1.5
touch "$go"
wait "$T_LAST_PID" || t_fail "stream lost datagrams: $(cat "$T_TMP/stream1.log")"
st=$(cat "$T_TMP/stream1.log")
(($(used "$st") == 1)) || t_fail "one UDP 5-tuple reached several backends without one_packet: $st"
t_ok "round-robin: HTTP $s; UDP $u; one 5-tuple stays on one backend: $st"
grep -Eq '^web +198\.18\.1\.100:80 +tcp +round-robin' <<<"$(ctl lb list)" || t_fail "lb list: $(ctl lb list)"

# 3. weighted 3:1:1, smooth.
recreate web 80 tcp weighted "${B[0]}:80:3,${B[1]}:80:1,${B[2]}:80:1"
recreate dns 5300 udp weighted "${B[0]}:5300:3,${B[1]}:5300:1,${B[2]}:5300:1"
s=$(http 50)
between "$(n_of b1 "$s")" 27 33 || t_fail "weighted 3:1:1 HTTP: $s"
u=$(udp 50)
between "$(n_of b1 "$u")" 27 33 || t_fail "weighted 3:1:1 UDP: $u"
t_ok "weighted 3:1:1: HTTP $s; UDP $u"

# 4. least-conn: held connections go to the emptiest backend; closes count.
go=$T_TMP/go-hold
t_bg "$CL" hold $FLOWS hold --addr "$VIP4" --port 7000 --count 12 --go "$go" --wait 30
HOLD_PID=$T_LAST_PID
t_wait_for 15 "12 held connections" t_log_has hold '"phase": "open"'
held=$(grep '"phase": "open"' "$T_TMP/hold.log")
for b in b1 b2 b3; do
	[[ $(grep -o "\"$b\"" <<<"$held" | wc -l) -eq 4 ]] || t_fail "least-conn did not split 12 held connections 4/4/4: $held"
done
[[ $(lc_active echo) == "4 4 4" ]] || t_fail "lb show lc_active with 12 held: $(lc_active echo)"
touch "$go"
wait "$HOLD_PID" || t_fail "held connections broke: $(tail -1 "$T_TMP/hold.log")"
t_wait_for 5 "closed connections no longer counted" bash -c "[[ \$(\"$LBCTL\" --socket \"$LBD_SOCK\" --json lb show echo | grep -o '\"lc_active\": [0-9]*' | grep -vc ': 0$') == 0 ]]"
t_ok "least-conn: 12 held connections 4/4/4 (lb show lc_active 4 4 4), 0 0 0 after they closed"
recreate web 80 tcp least-conn "$(all3)"
recreate dns 5300 udp least-conn "$(all3)"
s=$(http 20)
t_wait_for 5 "curl's connections closed" bash -c "[[ \$(\"$LBCTL\" --socket \"$LBD_SOCK\" --json lb show web | grep -o '\"lc_active\": [0-9]*' | grep -vc ': 0$') == 0 ]]"
u=$(udp 30)  # UDP flows stay open until idle: the split is exact
for b in b1 b2 b3; do [[ $(n_of $b "$u") -eq 10 ]] || t_fail "least-conn UDP flows not 10/10/10: $u"; done
[[ $(lc_active dns) == "10 10 10" ]] || t_fail "lb show dns lc_active: $(lc_active dns)"
t_ok "least-conn: HTTP $s (closed, counters back to 0); UDP $u; lb show dns lc_active $(lc_active dns)"

# 5. source-hash: one client, one backend; several clients spread.
recreate web 80 tcp source-hash "$(all3)"
recreate dns 5300 udp source-hash "$(all3)"
s=$(http 20)
(($(used "$s") == 1)) || t_fail "source-hash: one client reached several backends: $s"
u=$(udp 20)
(($(used "$u") == 1)) || t_fail "source-hash: one UDP client reached several backends: $u"
spread=""
for i in $(seq 3 12); do
	ip -n "$CL" addr add "198.18.10.$i/24" dev c0
	one=$(http 3 --interface "198.18.10.$i")
	(($(used "$one") == 1)) || t_fail "source-hash: client 198.18.10.$i reached several backends: $one"
	spread+="$one"
done
(($(used "$spread") >= 2)) || t_fail "source-hash: 10 clients all on one backend: $spread"
t_ok "source-hash: HTTP $s; UDP $u; 10 more clients, each on one backend, $(used "$spread") backends used"

# 6. failover: the highest weight takes everything; the next when it is drained.
recreate web 80 tcp failover "${B[0]}:80:1,${B[1]}:80:5,${B[2]}:80:3"
recreate dns 5300 udp failover "${B[0]}:5300:1,${B[1]}:5300:5,${B[2]}:5300:3"
s=$(http 20)
[[ $(n_of b2 "$s") -eq 20 ]] || t_fail "failover HTTP not all on b2 (weight 5): $s"
u=$(udp 20)
[[ $(n_of b2 "$u") -eq 20 ]] || t_fail "failover UDP not all on b2: $u"
ctl lb set-weight web --backend "${B[1]}" --weight 0 >/dev/null || t_fail "set-weight"
s2=$(http 20)
[[ $(n_of b3 "$s2") -eq 20 ]] || t_fail "failover HTTP with b2 drained not all on b3 (weight 3): $s2"
t_ok "failover: HTTP $s, UDP $u; b2 drained: HTTP $s2"

# 7. persistence: round-robin, yet the client keeps its backend.
recreate web 80 tcp round-robin "$(all3)" --persistence 60s --persistence-netmask 24
recreate dns 5300 udp round-robin "$(all3)" --persistence 60s
s=$(http 15)
(($(used "$s") == 1)) || t_fail "persistence: HTTP client spread over backends: $s"
s2=$(http 6 --interface 198.18.10.5)
(($(used "$s $s2") == 1)) || t_fail "persistence netmask 24: another address of the /24 moved: $s / $s2"
u=$(udp 15)
(($(used "$u") == 1)) || t_fail "persistence: UDP client spread over backends: $u"
grep -q "persistence" <<<"$(ctl --json lb show web)" || t_fail "lb show does not show persistence"
t_ok "persistence (round-robin, 60s, /24): HTTP $s + $s2 from another address of the /24; UDP $u"

# 8. one-packet: the datagrams of one 5-tuple spread.
recreate dns 5300 udp round-robin "$(all3)" --one-packet
go=$T_TMP/go-stream2
t_bg "$CL" stream2 taskset -c 0 $FLOWS stream --addr "$VIP4" --port 5300 --go "$go" --wait 20
sleep 1.5
touch "$go"
wait "$T_LAST_PID" || t_fail "one-packet stream lost datagrams: $(cat "$T_TMP/stream2.log")"
st=$(cat "$T_TMP/stream2.log")
(($(used "$st") == 3)) || t_fail "one-packet: one 5-tuple did not reach all backends: $st"
t_ok "one-packet (round-robin): one 5-tuple's datagrams: $st"

# 9. lbctl create refuses bad combinations: exit 1, one line, nothing changed.
refused() { # EXPECTED-FRAGMENT ARGS...
	local want=$1 err rc=0 before
	shift
	before=$(ctl --json lb list)
	err=$(ctl "$@" 2>&1 >/dev/null) || rc=$?
	[[ $rc -eq 1 ]] || t_fail "lbctl $* exited $rc (want 1): $err"
	[[ $(wc -l <<<"$err") -eq 1 && $err == *"$want"* ]] || t_fail "lbctl $*: '$err' does not say '$want'"
	[[ $(ctl --json lb list) == "$before" ]] || t_fail "lbctl $* changed the state"
	t_info "refused: lbctl $* -> $err"
}
refused "one_packet applies to UDP VIPs only" lb create --name x --vip "$VIP4:81" --one-packet
refused "persistence.netmask: must be between 1 and 32" lb create --name x --vip "$VIP4:81" --persistence-netmask 33
refused "unknown algorithm 'fastest'" lb create --name x --vip "$VIP4:81" --algorithm fastest
refused "one_packet does not combine with least-conn" lb create --name x --vip "$VIP4:81" --protocol udp \
	--algorithm least-conn --one-packet
t_ok "lbctl create refuses one_packet on TCP, netmask 33, an unknown algorithm, one_packet with least-conn"
echo "PASS: test_scheduling"
