#!/usr/bin/env bash
# Fleet tests on the namespace lab (lab/lab.sh, docs/lab.md): two LB nodes
# running lbd (native XDP, ExaBGP) behind a BIRD router with ECMP, three
# backends. The lab is brought up once; six checks run on it:
#
#   1. ECMP spread: both LB nodes carry new flows.
#   2. Consistency across nodes: long-lived TCP connections keep working when
#      their LB node goes into maintenance and their packets move to the other.
#   3. Backend failure: no new connection lands on the failed backend after
#      detection; connections to the other backends are unaffected.
#   4. An LB node loses its backends (blackhole route): its health checks fail,
#      it withdraws, traffic goes to the other node; only in-flight fails.
#   5. Graceful remove-backend on every node: established connections to it
#      continue, new ones skip it.
#   6. lbd SIGKILLed and started again on a node: no connection broken.
#
# Each check prints what it measured. Exit 0 pass, 77 skip (not root, unless
# CI=true), anything else fail. LBD_BUILD_DIR as for the other tests.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export LAB_NAME=fleet$$ LAB_STATE_DIR=/run/lbd-lab/fleet$$ LAB_LBS=2 LAB_CLIENTS=2
export LAB_HC_INTERVAL=${LAB_HC_INTERVAL:-300ms} LAB_HC_TIMEOUT=${LAB_HC_TIMEOUT:-250ms}
# shellcheck source=SCRIPTDIR/../../lab/lab.sh
source "$REPO/lab/lab.sh"

[[ $(id -u) -eq 0 ]] || t_skip "test_fleet.sh needs root (network namespaces, XDP)"
for tool in bird birdc; do command -v "$tool" >/dev/null || t_skip "$tool not found (apt-get install bird2)"; done
[[ -x $EXABGP ]] || t_skip "$EXABGP not found (apt-get install exabgp)"
command -v nginx >/dev/null || export LAB_NGINX=0 # the lab would install it; a test does not

fl_cleanup() {
	local rc=$?
	trap - EXIT
	set +e
	if ((rc != 0)) && [[ -d $LAB_STATE/log ]]; then
		local f
		for f in "$LAB_STATE"/log/*.log; do
			[[ -s $f ]] || continue
			echo "--- $(basename "$f") (last 25 lines):" >&2
			tail -n 25 "$f" >&2
		done
	fi
	lab_down >/dev/null 2>&1
	exit "$rc"
}
trap fl_cleanup EXIT
trap 'exit 130' INT TERM

fl_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
ECHO_B=() # backend addresses
for ((j = 1; j <= LAB_BACKENDS; j++)); do ECHO_B+=("$(lab_b_v4 "$j")"); done

# fl_tcp CLIENT COUNT [ADDR]: COUNT new connections to the echo VIP; prints
# flows.py's JSON ({"tried", "failed", "backends"}).
fl_tcp() {
	ip netns exec "$(lab_cl_ns "$1")" python3 "$LAB_REPO/tests/lib/flows.py" tcp --addr "${3:-$VIP4}" \
		--port 7000 --count "$2" --timeout 2 || true
}
fl_json() { # JSON KEY: a top-level value
	python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print(json.dumps(v) if isinstance(v,(dict,list)) else v)' "$1" "$2"
}
# fl_hold_start NAME CLIENT COUNT: long-lived connections to the echo VIP,
# talked to again once $LAB_STATE/NAME.go exists.
fl_hold_start() {
	rm -f "$LAB_STATE/$1.go"
	lab_bg "$1" "$(lab_cl_ns "$2")" python3 "$LAB_REPO/tests/lib/flows.py" hold --addr "$VIP4" --port 7000 \
		--count "$3" --go "$LAB_STATE/$1.go" --wait 120 --timeout 2
	lab_wait 20 "$3 connections ($1)" grep -q '"phase": "open"' "$(lab_log "$1")"
}
# fl_hold_end NAME [BACKEND-TAG]: release the connections, wait for the
# report; prints "connections=N broken=B moved=M on_TAG=K broken_on_TAG=X
# broken_elsewhere=Y" (the TAG fields only with a TAG).
fl_hold_end() {
	touch "$LAB_STATE/$1.go"
	local pid
	pid=$(lab_pid "$1")
	for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	python3 - "$(lab_log "$1")" "${2:-}" <<-'PY'
	import json, sys
	lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
	opened = [l for l in lines if l.get("phase") == "open"][-1]["backends"]
	after = [l for l in lines if l.get("phase") == "after"][-1]
	out = "connections=%d broken=%d moved=%d" % (after["connections"], after["broken"], after["moved"])
	tag = sys.argv[2]
	if tag:
	    on = sum(1 for b in opened if b == tag)
	    b_on = sum(1 for b, a in zip(opened, after["backends"]) if b == tag and a is None)
	    b_else = sum(1 for b, a in zip(opened, after["backends"]) if b != tag and a is None)
	    out += " on_%s=%d broken_on_%s=%d broken_elsewhere=%d" % (tag, on, tag, b_on, b_else)
	print(out)
	PY
}
fl_field() { sed -n "s/.*\\b$2=\\([0-9]*\\).*/\\1/p" <<<"$1"; } # "a=1 b=2" KEY
fl_flows() { local i out=(); for ((i = 1; i <= LAB_LBS; i++)); do out+=("$(lab_new_flows "$i" echo)"); done; echo "${out[*]}"; }
fl_paths_are() { [[ $(lab_paths "$VIP4") -eq $1 && $(lab_paths "$VIP6") -eq $1 ]]; }

START=$SECONDS
t0=$(fl_ms)
lab_up >/dev/null
t_ok "lab up in $(($(fl_ms) - t0)) ms: $LAB_LBS LB nodes, $LAB_BACKENDS backends, $LAB_CLIENTS clients (nginx: $([[ $LAB_NGINX == 1 ]] && echo yes || echo 'no, python HTTP'))"

# ---------------------------------------------------------------- 1. ECMP
read -ra f0 <<<"$(fl_flows)"
r1=$(fl_tcp 1 200)
r2=$(fl_tcp 2 200)
read -ra f1 <<<"$(fl_flows)"
d1=$((f1[0] - f0[0])) d2=$((f1[1] - f0[1]))
failed=$(($(fl_json "$r1" failed) + $(fl_json "$r2" failed)))
t_info "1. tried 400 connections, succeeded $((400 - failed)), failed $failed; new flows lb1=$d1 lb2=$d2; backends $(fl_json "$r1" backends) $(fl_json "$r2" backends)"
((failed == 0)) || t_fail "1. ECMP spread: $failed connections failed"
((d1 > 0 && d2 > 0)) || t_fail "1. ECMP spread: an LB node carried no new flows (lb1=$d1 lb2=$d2)"
t_ok "1. ECMP spread: both LB nodes carry new flows"

# ---------------------------------------------------------------- 2. consistency
a=$(lab_new_flows 1 echo)
fl_hold_start hold2 1 30
on1=$(($(lab_new_flows 1 echo) - a))
((on1 > 0)) || t_fail "2. none of the 30 connections went through lb1"
lab_lbctl 1 maintenance on >/dev/null
t0=$(fl_ms)
lab_wait 15 "lb1 withdrawn from the router" fl_paths_are 1
ms=$(($(fl_ms) - t0))
b2before=$(lab_new_flows 2 echo)
res=$(fl_hold_end hold2)
b2after=$(lab_new_flows 2 echo)
after=$(fl_tcp 1 100)
t_info "2. 30 long-lived connections, $on1 through lb1; maintenance on lb1: withdrawn in ${ms} ms; afterwards: $res (lb2 picked up $((b2after - b2before)) of them as new flows); 100 new connections: failed $(fl_json "$after" failed)"
[[ $(fl_field "$res" broken) -eq 0 && $(fl_field "$res" moved) -eq 0 ]] || t_fail "2. connections broke or changed backend: $res"
[[ $(fl_json "$after" failed) -eq 0 ]] || t_fail "2. new connections failed during maintenance: $after"
lab_lbctl 1 maintenance off >/dev/null
lab_wait 15 "lb1 back in ECMP" fl_paths_are 2
t_ok "2. consistency: connections moved from lb1 to lb2 kept working, same backend (Maglev on both nodes)"

# ---------------------------------------------------------------- 3. backend failure
fl_hold_start hold3 2 30
lab_stop echo-b3
t0=$(fl_ms)
lab_wait 15 "b3 down for echo on every LB node" lab_all_nodes_say echo "$(lab_b_v4 3)" down
ms=$(($(fl_ms) - t0))
r1=$(fl_tcp 1 150)
r2=$(fl_tcp 2 150)
res=$(fl_hold_end hold3 b3)
t_info "3. echo server on b3 stopped: down on both nodes after ${ms} ms; 300 new connections: failed $(($(fl_json "$r1" failed) + $(fl_json "$r2" failed))), backends $(fl_json "$r1" backends) $(fl_json "$r2" backends)"
t_info "3. 30 connections open before the failure: $res"
[[ $r1$r2 != *'"b3"'* ]] || t_fail "3. a new connection landed on the failed b3: $r1 $r2"
[[ $(fl_json "$r1" failed) -eq 0 && $(fl_json "$r2" failed) -eq 0 ]] || t_fail "3. new connections failed: $r1 $r2"
[[ $(fl_field "$res" broken_elsewhere) -eq 0 && $(fl_field "$res" moved) -eq 0 ]] || t_fail "3. connections to other backends affected: $res"
lab_start_echo 3
lab_wait 15 "b3 up again on every node" lab_all_nodes_say echo "$(lab_b_v4 3)" up
t_ok "3. backend failure: no new connection on b3 after detection; connections to b1/b2 unaffected (only b3's own broke)"

# ---------------------------------------------------------------- 4. LB node loses its backends
fl_hold_start hold4 1 30
stop=$LAB_STATE/load4.stop
rm -f "$stop"
# A steady load of new connections from both clients while lb1 loses its backends.
load_pids=()
for c in 1 2; do
	(while [[ ! -e $stop ]]; do fl_tcp "$c" 20; done >"$LAB_STATE/load4-$c.json") &
	load_pids+=($!)
done
sleep 1
t0=$(fl_ms)
ip -n "$(lab_lb_ns 1)" route add blackhole 198.18.30.0/24
ip -n "$(lab_lb_ns 1)" -6 route add blackhole fd00:1b:30::/64
lab_wait 20 "lb1 to withdraw" fl_paths_are 1
ms=$(($(fl_ms) - t0))
sleep 1
touch "$stop"
wait "${load_pids[@]}"
lb1_state=$(lab_lbctl 1 lb list | awk '$1 == "echo" {print $6}')
load=$(cat "$LAB_STATE"/load4-*.json | python3 -c '
import json, sys
rs = [json.loads(l) for l in sys.stdin if l.startswith("{")]
print("tried=%d failed=%d" % (sum(r["tried"] for r in rs), sum(r["failed"] for r in rs)))')
a=$(lab_new_flows 1 echo)
r=$(fl_tcp 1 200)
d1=$(($(lab_new_flows 1 echo) - a))
res=$(fl_hold_end hold4)
t_info "4. blackhole to the backends on lb1: echo healthy on lb1 $lb1_state, withdrawn from the router ${ms} ms after the cut"
t_info "4. load during the cut: $load (failed = connections in flight through lb1 before the withdrawal)"
t_info "4. after the withdrawal: 200 new connections, failed $(fl_json "$r" failed), through lb1 $d1; 30 long-lived: $res"
[[ $(fl_json "$r" failed) -eq 0 && $d1 -eq 0 ]] || t_fail "4. traffic after the withdrawal: failed $(fl_json "$r" failed), lb1 $d1"
tried=$(fl_field "$load" tried) failed=$(fl_field "$load" failed)
((failed * 4 <= tried)) || t_fail "4. more than in-flight requests failed: $load"
[[ $(fl_field "$res" broken) -eq 0 ]] || t_fail "4. long-lived connections broke: $res"
ip -n "$(lab_lb_ns 1)" route del blackhole 198.18.30.0/24
ip -n "$(lab_lb_ns 1)" -6 route del blackhole fd00:1b:30::/64
t0=$(fl_ms)
lab_wait 20 "lb1 back in ECMP" fl_paths_are 2
t_info "4. link restored: lb1 re-announced after $(($(fl_ms) - t0)) ms (health + hold_down $HOLD_DOWN)"
t_ok "4. LB node without backends withdrew; the other carried the traffic"

# ---------------------------------------------------------------- 5. graceful remove-backend
fl_hold_start hold5 2 30
for ((i = 1; i <= LAB_LBS; i++)); do lab_lbctl "$i" lb remove-backend echo --backend "$(lab_b_v4 2):7000" >/dev/null; done
r1=$(fl_tcp 1 150)
r2=$(fl_tcp 2 150)
res=$(fl_hold_end hold5 b2)
t_info "5. b2 removed from echo on both nodes; 300 new connections: failed $(($(fl_json "$r1" failed) + $(fl_json "$r2" failed))), backends $(fl_json "$r1" backends) $(fl_json "$r2" backends)"
t_info "5. 30 connections open before: $res"
[[ $r1$r2 != *'"b2"'* ]] || t_fail "5. a new connection went to removed b2"
[[ $(fl_json "$r1" failed) -eq 0 && $(fl_json "$r2" failed) -eq 0 ]] || t_fail "5. new connections failed"
[[ $(fl_field "$res" on_b2) -gt 0 ]] || t_fail "5. no held connection was on b2 (nothing shown): $res"
[[ $(fl_field "$res" broken) -eq 0 && $(fl_field "$res" moved) -eq 0 ]] || t_fail "5. established connections broke or moved: $res"
for ((i = 1; i <= LAB_LBS; i++)); do lab_lbctl "$i" lb add-backend echo --backend "$(lab_b_v4 2):7000" >/dev/null; done
lab_wait 15 "b2 back in echo on every node" lab_all_nodes_say echo "$(lab_b_v4 2)" up
t_ok "5. graceful remove-backend: established connections to b2 continued, new ones skipped it"

# ---------------------------------------------------------------- 6. lbd restart
fl_hold_start hold6 1 30
rm -f "$LAB_STATE/stream6.go"
lab_bg stream6 "$(lab_cl_ns 2)" python3 "$LAB_REPO/tests/lib/flows.py" stream --addr "$VIP4" --port 5300 \
	--rate 200 --go "$LAB_STATE/stream6.go" --wait 60
sleep 1
lab_stop lbd1 KILL
t0=$(fl_ms)
ip -n "$(lab_lb_ns 1)" link show lb0 | grep -q xdp || t_fail "6. XDP detached when lbd died"
lab_start_lbd 1
lab_started lbd1 'adopted the XDP link' || t_fail "6. the new lbd did not adopt the pinned XDP link"
lab_wait 20 "lb1 back in ECMP" fl_paths_are 2
ms=$(($(fl_ms) - t0))
sleep 1
res=$(fl_hold_end hold6)
touch "$LAB_STATE/stream6.go"
pid=$(lab_pid stream6)
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
stream=$(grep '^{' "$(lab_log stream6)" | tail -n 1)
t_info "6. lbd on lb1 SIGKILLed and started again (adopted the pinned datapath), back in ECMP after ${ms} ms"
t_info "6. 30 long-lived TCP connections: $res; UDP stream (200/s): $stream"
[[ $(fl_field "$res" broken) -eq 0 && $(fl_field "$res" moved) -eq 0 ]] || t_fail "6. connections broke across the restart: $res"
[[ $(fl_json "$stream" lost) -eq 0 ]] || t_fail "6. datagrams lost across the restart: $stream"
t_ok "6. lbd restart: no connection broken, no datagram lost"

echo "PASS: test_fleet ($((SECONDS - START)) s)"
