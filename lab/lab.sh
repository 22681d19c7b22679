#!/usr/bin/env bash
# The lbd lab in network namespaces: clients, an edge router (BIRD 2, ECMP
# with L4 hashing), N LB nodes (lbd with native XDP and ExaBGP), three
# backends (lbd-decap, VIPs on lo, nginx on :80, TCP/UDP echo). See
# docs/lab.md for the drawing.
#
#   lab/lab.sh up        build the lab (idempotent; a half-built lab is
#                        torn down first)
#   lab/lab.sh down      remove everything: processes (by recorded PID),
#                        bpffs pins (lbd --detach), namespaces (with their
#                        veths and XDP programs), the state dir
#   lab/lab.sh status    what runs, BGP sessions, the router's routes, VIPs
#   lab/lab.sh demo [--keep]   up, the demo (docs/lab.md), down unless --keep
#
# Env: LAB_NAME (namespace prefix, default lab), LAB_STATE_DIR (default
# /run/lbd-lab/$LAB_NAME), LAB_LBS (LB nodes, default 2), LAB_CLIENTS
# (default 2), LBD_BUILD_DIR (default build/), LAB_HC_INTERVAL (default
# 400ms), LAB_NGINX=0 to serve HTTP with tests/lib/flows.py instead of nginx.
#
# This file can also be sourced (tests/integration/test_fleet.sh does): it
# then only defines the lab_* functions.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_REPO=$(cd "$LAB_DIR/.." && pwd)
# shellcheck source=SCRIPTDIR/render.sh
source "$LAB_DIR/render.sh"
# shellcheck source=SCRIPTDIR/../tests/lib/netns.sh
source "$LAB_REPO/tests/lib/netns.sh" # t_link, t_addr; $LBD, $LBD_DECAP, $FLOWS
LBCTL=$T_BUILD/lbctl
EXABGP=${EXABGP:-/usr/sbin/exabgp}

LAB_NAME=${LAB_NAME:-lab}
LAB_STATE=${LAB_STATE_DIR:-/run/lbd-lab/$LAB_NAME}
LAB_LBS=${LAB_LBS:-2}
LAB_CLIENTS=${LAB_CLIENTS:-2}
LAB_BACKENDS=3
LAB_HC_INTERVAL=${LAB_HC_INTERVAL:-400ms}
LAB_HC_TIMEOUT=${LAB_HC_TIMEOUT:-300ms}
LAB_NGINX=${LAB_NGINX:-1}
ROUTER_AS=65000 LB_AS=65001 HOLD_TIME=3 HOLD_DOWN=1s
VIP4=198.18.1.100 VIP6=fd00:1b:1::100
RT=$LAB_NAME-rt

lab_lb_ns() { echo "$LAB_NAME-lb$1"; }
lab_b_ns() { echo "$LAB_NAME-b$1"; }
lab_cl_ns() { echo "$LAB_NAME-cl$1"; }
lab_lb_v4() { echo "198.18.0.$((4 * $1 - 2))"; }      # LB i's uplink
lab_rt_v4() { echo "198.18.0.$((4 * $1 - 3))"; }      # the router's side
lab_lb_v6() { echo "fd00:1b:0:$1::2"; }
lab_rt_v6() { echo "fd00:1b:0:$1::1"; }
lab_b_v4() { echo "198.18.30.1$1"; }
lab_b_v6() { echo "fd00:1b:30::1$1"; }
lab_cl_v4() { echo "198.18.10.$((10 + $1))"; }
lab_cl_v6() { echo "fd00:1b:10::$((10 + $1))"; }
lab_sock() { echo "$LAB_STATE/lb$1/lbd.sock"; }
lab_pin() { echo "/sys/fs/bpf/lbd-lab-$LAB_NAME-lb$1"; }
lab_lbctl() { local i=$1; shift; "$LBCTL" --socket "$(lab_sock "$i")" "$@"; }
lab_birdc() { birdc -s "$LAB_STATE/bird.ctl" "$@"; }
lab_log() { echo "$LAB_STATE/log/$1.log"; }
lab_say() { echo "lab: $*"; }
lab_die() { echo "lab: ERROR: $*" >&2; exit 1; }

# Every namespace the lab may have, from the recorded sizes (for down).
lab_all_ns() {
	local i lbs=$LAB_LBS cls=$LAB_CLIENTS
	if [[ -f $LAB_STATE/sizes ]]; then read -r lbs cls <"$LAB_STATE/sizes"; fi
	echo "$RT"
	for ((i = 1; i <= lbs; i++)); do lab_lb_ns "$i"; done
	for ((i = 1; i <= LAB_BACKENDS; i++)); do lab_b_ns "$i"; done
	for ((i = 1; i <= cls; i++)); do lab_cl_ns "$i"; done
}

# lab_bg NAME NS CMD...: start CMD in NS's network namespace (nsenter, not
# `ip netns exec`: lbd must see the host's bpffs), output to the log NAME,
# PID recorded in $LAB_STATE/pids. Sets LAB_PID.
lab_bg() {
	local name=$1 ns=$2
	shift 2
	LAB_MARK=0
	[[ -f $(lab_log "$name") ]] && LAB_MARK=$(wc -l <"$(lab_log "$name")")
	nsenter --net="/run/netns/$ns" "$@" </dev/null >>"$(lab_log "$name")" 2>&1 &
	LAB_PID=$!
	disown "$LAB_PID" # outlives `lab.sh up`; stopped by PID (lab_stop, lab_down)
	echo "$name $LAB_PID" >>"$LAB_STATE/pids"
}
# lab_started NAME REGEX: REGEX is in what NAME logged since its last lab_bg.
lab_started() { tail -n "+$((LAB_MARK + 1))" "$(lab_log "$1")" | grep -Eq -- "$2"; }
# lab_pid NAME: the last recorded PID of NAME.
lab_pid() { awk -v n="$1" '$1 == n { p = $2 } END { if (p) print p }' "$LAB_STATE/pids"; }
lab_alive() { local p; p=$(lab_pid "$1"); [[ -n $p ]] && kill -0 "$p" 2>/dev/null; }
# lab_stop NAME [SIGNAL]: signal NAME's process, wait for it (KILL after 8 s).
lab_stop() {
	local pid sig=${2:-TERM}
	pid=$(lab_pid "$1")
	[[ -n $pid ]] || return 0
	kill "-$sig" "$pid" 2>/dev/null || return 0
	for _ in $(seq 80); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
}

lab_wait() { # SECONDS DESCRIPTION CMD...
	local secs=$1 what=$2
	shift 2
	local end=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < end)) || lab_die "timed out after ${secs}s waiting for $what"
		sleep 0.1
	done
}

lab_ns_add() {
	echo "$1" >>"$LAB_STATE/namespaces"
	ip netns add "$1"
	ip -n "$1" link set lo up
	ip netns exec "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}

lab_backends_list() { # 4|6: the flow-style YAML list of backends
	local fam=$1 i out=
	for ((i = 1; i <= LAB_BACKENDS; i++)); do
		[[ -n $out ]] && out+=", "
		if [[ $fam == 4 ]]; then out+="{address: $(lab_b_v4 "$i")}"; else out+="{address: \"$(lab_b_v6 "$i")\"}"; fi
	done
	echo "$out"
}

lab_start_lbd() { # I: start (or restart) lbd on LB node I, wait until running
	local i=$1
	lab_bg "lbd$i" "$(lab_lb_ns "$i")" "$LBD" --config "$LAB_STATE/lb$i/lbd.yaml"
	lab_wait 20 "lbd on lb$i running" lab_started "lbd$i" 'lbd .* running'
}

lab_start_servers() { # J: the backend's nginx (or python HTTP) and echo servers
	local j=$1
	if [[ $LAB_NGINX == 1 ]]; then
		lab_start_nginx "$j"
		lab_start_echo "$j"
	else
		lab_bg "echo-b$j" "$(lab_b_ns "$j")" python3 "$LAB_REPO/tests/lib/flows.py" serve --tag "b$j" --http 80 \
			--tcp-echo 7000 --udp-echo 5300 --udp-bind "$VIP4" "$VIP6"
		lab_wait 10 "servers on b$j" lab_started "echo-b$j" serving
	fi
}

# lab_start_echo J: the backend's TCP echo (:7000) and UDP echo (:5300,
# bound to the VIPs) server (nginx mode; otherwise lab_start_servers).
lab_start_echo() {
	local j=$1
	lab_bg "echo-b$j" "$(lab_b_ns "$j")" python3 "$LAB_REPO/tests/lib/flows.py" serve --tag "b$j" --tcp-echo 7000 \
		--udp-echo 5300 --udp-bind "$VIP4" "$VIP6"
	lab_wait 10 "echo servers on b$j" lab_started "echo-b$j" serving
}

lab_start_nginx() { # J
	local j=$1 ns
	ns=$(lab_b_ns "$j")
	lab_bg "nginx-b$j" "$ns" nginx -c "$LAB_STATE/b$j/nginx.conf" -p "$LAB_STATE/b$j"
	lab_wait 10 "nginx on b$j" ip netns exec "$ns" curl -sf --max-time 1 "http://$(lab_b_v4 "$j")/"
}
# lab_http_stop J / lab_http_start J: the backend's HTTP server only.
lab_http_stop() { if [[ $LAB_NGINX == 1 ]]; then lab_stop "nginx-b$1"; else lab_stop "echo-b$1"; fi; }
lab_http_start() { if [[ $LAB_NGINX == 1 ]]; then lab_start_nginx "$1"; else lab_start_servers "$1"; fi; }

# lab_vip_json I VIP: lbctl --json lb show VIP on LB node I.
lab_vip_json() { lab_lbctl "$1" --json lb show "$2"; }
# lab_new_flows I VIP: the VIP's new_flows counter on LB node I.
lab_new_flows() { lab_vip_json "$1" "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vip"]["new_flows"])'; }
# lab_backend_state I VIP ADDRESS: up|down|unknown|draining|absent
lab_backend_state() {
	lab_vip_json "$1" "$2" | python3 -c '
import json, sys
bs = [b for b in json.load(sys.stdin)["vip"]["backends"] if b["address"] == sys.argv[1]]
print(bs[0]["state"] if bs else "absent")' "$3"
}
# lab_all_nodes_say VIP ADDRESS STATE: every LB node sees the backend in STATE.
lab_all_nodes_say() {
	local i
	for ((i = 1; i <= LAB_LBS; i++)); do [[ $(lab_backend_state "$i" "$1" "$2") == "$3" ]] || return 1; done
}
# lab_curl CLIENT COUNT URL-HOST [--resolve ...]: COUNT HTTP GETs, each on a
# new connection; prints one line per answer (the backend's name) or FAILED.
lab_curl() {
	local c=$1 n=$2 host=$3 out
	shift 3
	out=$(ip netns exec "$(lab_cl_ns "$c")" curl -s --connect-timeout 1 --max-time 2 -H 'Connection: close' "$@" "http://$host/?n=[1-$n]" || true)
	printf '%s\n' "$out" | grep -E '^b[0-9]+$' || true
	local got
	got=$(grep -cE '^b[0-9]+$' <<<"$out" || true)
	for ((; got < n; got++)); do echo FAILED; done
}

lab_is_up() {
	[[ -f $LAB_STATE/up ]] || return 1
	local ns name
	for ns in $(lab_all_ns); do [[ -e /run/netns/$ns ]] || return 1; done
	while read -r name; do lab_alive "$name" || return 1; done < <(awk '{print $1}' "$LAB_STATE/pids" | sort -u)
}

lab_up() {
	if lab_is_up; then lab_say "already up ($LAB_STATE)"; return 0; fi
	[[ $(id -u) -eq 0 ]] || lab_die "needs root"
	lab_deps
	if [[ -d $LAB_STATE ]]; then lab_say "a previous lab is partly up: tearing it down first"; lab_down; fi
	mkdir -p "$LAB_STATE/log"
	echo "$LAB_LBS $LAB_CLIENTS" >"$LAB_STATE/sizes"
	: >"$LAB_STATE/pids"
	: >"$LAB_STATE/namespaces"
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	local i j ns

	# router
	lab_ns_add "$RT"
	ip netns exec "$RT" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1
	ip -n "$RT" link add brc type bridge
	ip -n "$RT" link set brc up
	t_addr "$RT" brc 198.18.10.1/24 fd00:1b:10::1/64
	ip -n "$RT" link add brb type bridge
	ip -n "$RT" link set brb up
	t_addr "$RT" brb 198.18.30.1/24 fd00:1b:30::1/64
	# clients
	for ((i = 1; i <= LAB_CLIENTS; i++)); do
		ns=$(lab_cl_ns "$i")
		lab_ns_add "$ns"
		t_link "$ns" c0 "$RT" "rc$i"
		ip -n "$RT" link set "rc$i" master brc
		t_addr "$ns" c0 "$(lab_cl_v4 "$i")/24" "$(lab_cl_v6 "$i")/64"
		ip -n "$ns" route add default via 198.18.10.1
		ip -n "$ns" -6 route add default via fd00:1b:10::1
	done
	# backends
	for ((j = 1; j <= LAB_BACKENDS; j++)); do
		ns=$(lab_b_ns "$j")
		lab_ns_add "$ns"
		t_link "$ns" eth0 "$RT" "rb$j"
		ip -n "$RT" link set "rb$j" master brb
		t_addr "$ns" eth0 "$(lab_b_v4 "$j")/24" "$(lab_b_v6 "$j")/64"
		t_addr "$ns" lo "$VIP4/32" "$VIP6/128"
		ip -n "$ns" route add default via 198.18.30.1
		ip -n "$ns" -6 route add default via fd00:1b:30::1
		ip netns exec "$ns" "$LBD_DECAP" attach eth0 >/dev/null
		mkdir -p "$LAB_STATE/b$j/www"
		echo "b$j" >"$LAB_STATE/b$j/www/index.txt"
		lab_render "$LAB_DIR/templates/nginx.conf.tmpl" DAEMON=off DIR="$LAB_STATE/b$j" >"$LAB_STATE/b$j/nginx.conf"
		lab_start_servers "$j"
	done
	# LB nodes; the router's side of each uplink gets an XDP program, without
	# which native XDP_TX on the LB's veth would not reach it.
	local neighbors=
	for ((i = 1; i <= LAB_LBS; i++)); do
		ns=$(lab_lb_ns "$i")
		lab_ns_add "$ns"
		t_link "$RT" "rl$i" "$ns" lb0
		t_addr "$RT" "rl$i" "$(lab_rt_v4 "$i")/30" "$(lab_rt_v6 "$i")/64"
		t_addr "$ns" lb0 "$(lab_lb_v4 "$i")/30" "$(lab_lb_v6 "$i")/64"
		ip -n "$ns" route add default via "$(lab_rt_v4 "$i")"
		ip -n "$ns" -6 route add default via "$(lab_rt_v6 "$i")"
		ip netns exec "$RT" "$LBD_DECAP" attach "rl$i" >/dev/null
		neighbors+=$(lab_render "$LAB_DIR/templates/bird-neighbor.tmpl" NAME="lb$i" ADDRESS="$(lab_lb_v4 "$i")" LB_AS=$LB_AS)
		neighbors+=$'\n'
	done
	lab_render "$LAB_DIR/templates/bird.conf.tmpl" ROUTER_ID=198.18.0.1 ROUTER_AS=$ROUTER_AS HOLD_TIME=$HOLD_TIME \
		NEIGHBORS="$neighbors" >"$LAB_STATE/bird.conf"
	lab_bg bird "$RT" bird -f -c "$LAB_STATE/bird.conf" -s "$LAB_STATE/bird.ctl" -P "$LAB_STATE/bird.pid"
	lab_wait 10 "BIRD's control socket" lab_birdc show status
	for ((i = 1; i <= LAB_LBS; i++)); do
		mkdir -p "$LAB_STATE/lb$i/state"
		lab_pin "$i" >>"$LAB_STATE/pins"
		lab_render "$LAB_DIR/templates/lbd.yaml.tmpl" IFACE=lb0 XDP_MODE=native PIN_PATH="$(lab_pin "$i")" \
			SOCKET="$(lab_sock "$i")" STATE_DIR="$LAB_STATE/lb$i/state" EXABGP="$EXABGP" LB_AS=$LB_AS \
			LOCAL_V4="$(lab_lb_v4 "$i")" LOCAL_V6="$(lab_lb_v6 "$i")" ROUTER_V4="$(lab_rt_v4 "$i")" \
			ROUTER_AS=$ROUTER_AS HOLD_TIME=$HOLD_TIME MAINTENANCE_FILE="$LAB_STATE/lb$i/maintenance" \
			HOLD_DOWN=$HOLD_DOWN VIP4=$VIP4 VIP6=$VIP6 HC_INTERVAL="$LAB_HC_INTERVAL" HC_TIMEOUT="$LAB_HC_TIMEOUT" \
			BACKENDS4="$(lab_backends_list 4)" BACKENDS6="$(lab_backends_list 6)" >"$LAB_STATE/lb$i/lbd.yaml"
		lab_start_lbd "$i"
	done
	lab_wait 30 "every VIP route via all $LAB_LBS LB nodes" lab_ecmp_full
	touch "$LAB_STATE/up"
	lab_say "up: $LAB_LBS LB nodes, $LAB_BACKENDS backends, $LAB_CLIENTS clients; VIPs $VIP4 [$VIP6] (state: $LAB_STATE)"
}

# lab_paths VIP: number of next hops of the router's route to VIP (0 if none).
lab_paths() {
	local out
	out=$(ip -n "$RT" "$([[ $1 == *:* ]] && echo -6 || echo -4)" route show "$1" 2>/dev/null)
	if [[ -z $out ]]; then echo 0
	elif grep -q nexthop <<<"$out"; then grep -c nexthop <<<"$out"
	else echo 1
	fi
}
lab_ecmp_full() { [[ $(lab_paths $VIP4) -eq $LAB_LBS && $(lab_paths $VIP6) -eq $LAB_LBS ]]; }

lab_deps() {
	local t missing=()
	for t in ip bird birdc curl ethtool python3 nsenter; do command -v "$t" >/dev/null || missing+=("$t"); done
	[[ -x $EXABGP ]] || missing+=(exabgp)
	if [[ $LAB_NGINX == 1 ]] && ! command -v nginx >/dev/null; then missing+=(nginx); fi
	if ((${#missing[@]})); then
		lab_say "installing missing tools: ${missing[*]}"
		local pkgs=()
		for t in "${missing[@]}"; do
			case $t in
			bird | birdc) pkgs+=(bird2) ;; nginx) pkgs+=(nginx-light) ;; nsenter) pkgs+=(util-linux) ;;
			ip) pkgs+=(iproute2) ;; *) pkgs+=("$t") ;;
			esac
		done
		# nginx-light's service would start a host-wide nginx: keep services
		# from starting during the install (policy-rc.d, if none is there).
		local policy=/usr/sbin/policy-rc.d own_policy=0
		if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1; fi
		local rc=0
		{ apt-get install -y "${pkgs[@]}" || { apt-get update && apt-get install -y "${pkgs[@]}"; }; } >/dev/null || rc=$?
		((own_policy)) && rm -f "$policy"
		((rc == 0)) || lab_die "could not install ${pkgs[*]}"
	fi
	[[ -x $LBD && -x $LBD_DECAP && -x $LBCTL ]] || lab_die "lbd, lbd-decap or lbctl not found in $T_BUILD (build first)"
}

lab_down() {
	local name pid ns pin
	if [[ -f $LAB_STATE/pids ]]; then
		# reverse order: lbd before BIRD, so its routes are withdrawn cleanly
		while read -r name pid; do
			kill -TERM "$pid" 2>/dev/null || true
		done < <(tac "$LAB_STATE/pids")
		while read -r name pid; do
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$pid" 2>/dev/null || true
		done <"$LAB_STATE/pids"
	fi
	local pins=()
	[[ -f $LAB_STATE/pins ]] && mapfile -t pins <"$LAB_STATE/pins"
	local i lbs=$LAB_LBS
	if [[ -f $LAB_STATE/sizes ]]; then read -r lbs _ <"$LAB_STATE/sizes"; fi
	for ((i = 1; i <= lbs; i++)); do pins+=("$(lab_pin "$i")"); done
	for pin in "${pins[@]}"; do
		[[ -e $pin ]] || continue
		"$LBD" --detach --pin-path "$pin" >/dev/null 2>&1 || true
		rm -rf "$pin"
	done
	for ns in $(lab_all_ns; [[ -f $LAB_STATE/namespaces ]] && cat "$LAB_STATE/namespaces"); do
		[[ -e /run/netns/$ns ]] || continue
		# whatever still runs in the lab's own namespaces was started by it
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "$LAB_STATE"
	rmdir /run/lbd-lab 2>/dev/null || true
}

lab_status() {
	if [[ ! -d $LAB_STATE ]]; then echo "lab $LAB_NAME: down"; return 3; fi
	local name pid i
	echo "lab $LAB_NAME ($LAB_STATE): $(lab_is_up && echo up || echo 'NOT fully up')"
	echo "processes:"
	while read -r name pid; do
		printf '  %-10s pid %-7s %s\n' "$name" "$pid" "$(kill -0 "$pid" 2>/dev/null && echo running || echo gone)"
	done <"$LAB_STATE/pids"
	echo "namespaces: $(lab_all_ns | xargs)"
	if lab_birdc show status >/dev/null 2>&1; then
		echo "BGP sessions (BIRD on the router):"
		lab_birdc show protocols | awk '$2 == "BGP" { printf "  %s\n", $0 }'
	fi
	echo "router: ip route show $VIP4 / $VIP6"
	ip -n "$RT" route show "$VIP4" | sed 's/^/  /'
	ip -n "$RT" -6 route show "$VIP6" | sed 's/^/  /'
	for ((i = 1; i <= $(awk '{print $1}' "$LAB_STATE/sizes"); i++)); do
		echo "lb$i: lbctl --socket $(lab_sock "$i") lb list"
		lab_lbctl "$i" lb list 2>&1 | sed 's/^/  /' || true
	done
}

lab_main() {
	case ${1:-} in
	up) lab_up ;;
	down) lab_down; lab_say "down" ;;
	status) lab_status ;;
	demo)
		shift
		# shellcheck source=SCRIPTDIR/demo.sh
		source "$LAB_DIR/demo.sh"
		lab_demo "$@"
		;;
	*)
		echo "usage: $0 up|down|status|demo [--keep]" >&2
		exit 2
		;;
	esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then lab_main "$@"; fi
