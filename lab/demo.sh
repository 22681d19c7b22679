# shellcheck shell=bash
# The lab's demo: `lab/lab.sh demo [--keep]` (sourced by lab.sh, which
# defines the lab_* functions). Each step checks what it shows and the demo
# exits non-zero at the first step that does not behave as shown. The lab is
# torn down at the end (also on failure) unless --keep is given.

demo_step() { printf '\n== %s\n' "$*"; }
demo_fail() { echo "DEMO FAILED: $*" >&2; exit 1; }
demo_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# demo_split LINES...: "b1=331 b2=340 b3=329" from one backend name per line.
demo_split() { sort | uniq -c | awk '{printf "%s=%d ", $2, $1}' | sed 's/ $//'; }

# demo_requests COUNT HOST [CURL-ARGS]: COUNT requests shared by the clients
# (in parallel); prints the answers, one per line.
demo_requests() {
	local n=$1 host=$2 c pids=() per
	shift 2
	per=$((n / LAB_CLIENTS))
	for ((c = 1; c <= LAB_CLIENTS; c++)); do
		local this=$per
		((c == LAB_CLIENTS)) && this=$((n - per * (LAB_CLIENTS - 1)))
		lab_curl "$c" "$this" "$host" "$@" >"$LAB_STATE/demo-req-$c" &
		pids+=($!)
	done
	wait "${pids[@]}"
	for ((c = 1; c <= LAB_CLIENTS; c++)); do cat "$LAB_STATE/demo-req-$c"; done
}

# demo_flows VIP: "N1 N2 ..." new_flows of VIP on each LB node.
demo_flows() {
	local i out=()
	for ((i = 1; i <= LAB_LBS; i++)); do out+=("$(lab_new_flows "$i" "$1")"); done
	echo "${out[*]}"
}
# demo_per_node BEFORE AFTER: "lb1=N lb2=M" (differences).
demo_per_node() {
	local -a b a
	read -ra b <<<"$1"
	read -ra a <<<"$2"
	local i s=
	for ((i = 0; i < LAB_LBS; i++)); do s+="lb$((i + 1))=$((a[i] - b[i])) "; done
	echo "${s% }"
}

# demo_http COUNT VIP-NAME EXPECT-BACKENDS...: run COUNT requests to web (or
# web6), print the split per backend and per LB node; sets DEMO_SPLIT and
# DEMO_NODES. Fails if any request failed or an expected backend got none.
demo_http() {
	local n=$1 vip=$2 before after answers b
	shift 2
	before=$(demo_flows "$vip")
	if [[ $vip == web6 ]]; then
		answers=$(demo_requests "$n" web6.lab --resolve "web6.lab:80:[$VIP6]")
	else
		answers=$(demo_requests "$n" "$VIP4")
	fi
	after=$(demo_flows "$vip")
	DEMO_SPLIT=$(demo_split <<<"$answers")
	DEMO_NODES=$(demo_per_node "$before" "$after")
	echo "   per backend (the page each answer named): $DEMO_SPLIT"
	echo "   per LB node (new flows of VIP $vip, from lbctl --json lb show $vip): $DEMO_NODES"
	[[ $DEMO_SPLIT != *FAILED* ]] || demo_fail "some requests failed: $DEMO_SPLIT"
	for b in "$@"; do [[ " $DEMO_SPLIT" == *" $b="* ]] || demo_fail "$b got no requests: $DEMO_SPLIT"; done
}
demo_node_flows() { # NODE-SPLIT NODE: the count of lbNODE in "lb1=N lb2=M"
	sed -n "s/.*lb$2=\([0-9]*\).*/\1/p" <<<"$1"
}

demo_exit() {
	local rc=$?
	if ((DEMO_KEEP)); then
		((rc == 0)) || echo "(lab left up for a look: lab/lab.sh status; lab/lab.sh down removes it)" >&2
	else
		lab_down >/dev/null 2>&1
	fi
	exit "$rc"
}

lab_demo() {
	local keep=0 i
	[[ ${1:-} == --keep ]] && keep=1
	DEMO_KEEP=$keep
	trap demo_exit EXIT
	local all_b=() j
	for ((j = 1; j <= LAB_BACKENDS; j++)); do all_b+=("b$j"); done

	demo_step "Building the lab in network namespaces"
	lab_up
	cat <<-EOF2
	   clients $(lab_cl_v4 1)..  --- router $RT (BIRD, AS $ROUTER_AS, ECMP, L4 hash)
	   LB nodes (lbd + XDP native + ExaBGP, AS $LB_AS): $(for ((i = 1; i <= LAB_LBS; i++)); do printf 'lb%d %s  ' "$i" "$(lab_lb_v4 "$i")"; done)
	   backends (lbd-decap, VIPs on lo, nginx :80, echo :7000, UDP :5300): 198.18.30.11-13, fd00:1b:30::11-13
	   VIPs $VIP4 and $VIP6
	EOF2

	demo_step "1. BGP: the router learns each VIP from every LB node (ECMP)"
	echo "   router# ip route show $VIP4"
	ip -n "$RT" route show "$VIP4" | sed 's/^/     /'
	echo "   router# ip -6 route show $VIP6"
	ip -n "$RT" -6 route show "$VIP6" | sed 's/^/     /'
	echo "   router# birdc show route"
	lab_birdc show route | sed -n '2,$p' | sed 's/^/     /'
	[[ $(lab_paths "$VIP4") -eq $LAB_LBS ]] || demo_fail "$VIP4 has $(lab_paths "$VIP4") next hops, not $LAB_LBS"
	[[ $(lab_paths "$VIP6") -eq $LAB_LBS ]] || demo_fail "$VIP6 has $(lab_paths "$VIP6") next hops, not $LAB_LBS"
	echo "   ok: $VIP4 and $VIP6 each via $LAB_LBS next hops"

	demo_step "2. 1,000 HTTP requests (curl, a new TCP connection each) from $LAB_CLIENTS clients to http://$VIP4/"
	demo_http 1000 web "${all_b[@]}"
	for ((i = 1; i <= LAB_LBS; i++)); do
		[[ $(demo_node_flows "$DEMO_NODES" "$i") -gt 0 ]] || demo_fail "lb$i carried no flows: $DEMO_NODES"
	done
	echo "   and 200 over IPv6 to http://[$VIP6]/"
	demo_http 200 web6 "${all_b[@]}"
	echo "   UDP: 200 datagrams from 200 source ports to $VIP4:5300 (flows.py udp; answers come from the VIP: DSR)"
	local udp
	udp=$(ip netns exec "$(lab_cl_ns 1)" python3 "$LAB_REPO/tests/lib/flows.py" udp --addr "$VIP4" --port 5300 --count 200 --timeout 1) ||
		demo_fail "UDP: $udp"
	echo "   $udp"

	demo_step "3. A backend fails: nginx on b3 is stopped"
	local t0 ms
	t0=$(demo_ms)
	lab_http_stop 3
	lab_wait 20 "every LB node to mark b3 down" lab_all_nodes_say web "$(lab_b_v4 3)" down
	ms=$(($(demo_ms) - t0))
	echo "   health checks took b3 out on all $LAB_LBS LB nodes after ${ms} ms:"
	lab_lbctl 1 lb show web | sed -n '/^ADDRESS/,$p' | sed 's/^/     lb1: /'
	demo_http 1000 web b1 b2
	[[ $DEMO_SPLIT != *b3=* ]] || demo_fail "b3 still got requests: $DEMO_SPLIT"
	echo "   ok: no request reached b3, none failed"

	demo_step "4. Maintenance on lb1 (lbctl maintenance on): its routes are withdrawn"
	local go=$LAB_STATE/demo-go before_echo after_echo on_lb1
	rm -f "$go"
	before_echo=$(lab_new_flows 1 echo)
	lab_bg demo-hold "$(lab_cl_ns 1)" python3 "$LAB_REPO/tests/lib/flows.py" hold --addr "$VIP4" --port 7000 \
		--count 20 --go "$go" --wait 120
	local hold_pid=$LAB_PID
	lab_wait 20 "20 long-lived TCP connections open" grep -q '"phase": "open"' "$(lab_log demo-hold)"
	after_echo=$(lab_new_flows 1 echo)
	on_lb1=$((after_echo - before_echo))
	echo "   20 long-lived TCP connections to $VIP4:7000 (echo) are open; $on_lb1 of them go through lb1"
	((on_lb1 > 0)) || demo_fail "none of the 20 connections went through lb1"
	t0=$(demo_ms)
	lab_lbctl 1 maintenance on | sed 's/^/   lb1# lbctl maintenance on: /'
	lab_wait 20 "the router to drop lb1's next hop" eval "[[ \$(lab_paths $VIP4) -eq $((LAB_LBS - 1)) && \$(lab_paths $VIP6) -eq $((LAB_LBS - 1)) ]]"
	ms=$(($(demo_ms) - t0))
	echo "   withdrawn after ${ms} ms; router# ip route show $VIP4"
	ip -n "$RT" route show "$VIP4" | sed 's/^/     /'
	lab_birdc show route "$VIP4/32" | sed -n '2,$p' | sed 's/^/     /'
	demo_http 1000 web b1 b2
	[[ $(demo_node_flows "$DEMO_NODES" 1) -eq 0 ]] || demo_fail "lb1 still got new flows: $DEMO_NODES"
	echo "   ok: all new flows went to the other node(s)"
	local lb2_before
	lb2_before=$(lab_new_flows 2 echo)
	touch "$go"
	lab_wait 30 "the long-lived connections' report" grep -q '"phase": "after"' "$(lab_log demo-hold)"
	while kill -0 "$hold_pid" 2>/dev/null; do sleep 0.1; done
	local held
	held=$(grep '"phase": "after"' "$(lab_log demo-hold)" | tail -n 1)
	echo "   the 20 long-lived connections, talked to again: $(grep -o '"connections".*"moved": [0-9]*' <<<"$held")"
	[[ $held == *'"broken": 0, "moved": 0'* ]] || demo_fail "long-lived connections broke or moved: $held"
	echo "   lb2 saw $(($(lab_new_flows 2 echo) - lb2_before)) of them as flows new to it (no connection state of lb1's there)"
	echo "   ok: the $on_lb1 connections that were on lb1 now go through another node, to the same backend (same Maglev table)"

	demo_step "5. Everything restored: maintenance off, nginx on b3 started again"
	lab_lbctl 1 maintenance off | sed 's/^/   lb1# lbctl maintenance off: /'
	lab_http_start 3
	lab_wait 20 "b3 up on every LB node" lab_all_nodes_say web "$(lab_b_v4 3)" up
	lab_wait 20 "ECMP over every LB node" lab_ecmp_full
	ip -n "$RT" route show "$VIP4" | sed 's/^/     /'
	demo_http 1000 web "${all_b[@]}"
	for ((i = 1; i <= LAB_LBS; i++)); do
		[[ $(demo_node_flows "$DEMO_NODES" "$i") -gt 0 ]] || demo_fail "lb$i carried no flows: $DEMO_NODES"
	done

	if ((keep)); then
		demo_step "Done: every step behaved as shown. The lab stays up (--keep): lab/lab.sh status, lab/lab.sh down"
	else
		demo_step "Done: every step behaved as shown; tearing the lab down"
	fi
}
