# shellcheck shell=bash
# Shared helpers for the namespace tests and the lab: make namespaces and
# veths with unique names, start processes inside them, and tear everything
# down (processes by PID, then namespaces, which takes veths and XDP
# attachments with them) on success and on failure.
#
# Source it, then call t_init NAME. Everything made through these helpers is
# removed by the EXIT trap t_init installs.

T_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T_BUILD=${LBD_BUILD_DIR:-$T_REPO/build}
case $T_BUILD in /*) ;; *) T_BUILD=$T_REPO/$T_BUILD ;; esac
LBD=$T_BUILD/lbd
LBD_DECAP=$T_BUILD/lbd-decap
FLOWS="python3 $T_REPO/tests/lib/flows.py"

T_NAMESPACES=()
T_PIDS=()
T_PINS=()
T_TMP=
T_NAME=

t_fail() { echo "FAIL: $*" >&2; exit 1; }
t_ok() { echo "ok: $*"; }
t_info() { echo "   $*"; }

t_skip() {
	if [[ ${CI:-} == true ]]; then
		t_fail "$* (CI=true: not skipping)"
	fi
	echo "SKIP: $*"
	exit 77
}

t_require_root() {
	[[ $(id -u) -eq 0 ]] || t_skip "$T_NAME needs root (network namespaces, XDP)"
	local tool
	for tool in ip python3 timeout curl ethtool; do
		command -v "$tool" >/dev/null || t_skip "$tool not found"
	done
	[[ -x $LBD ]] || t_fail "$LBD not found (build first or set LBD_BUILD_DIR)"
	[[ -x $LBD_DECAP ]] || t_fail "$LBD_DECAP not found"
}

# t_init NAME: unique tmp dir, cleanup trap.
t_init() {
	T_NAME=$1
	T_TMP=$(mktemp -d "/tmp/$T_NAME.XXXXXX")
	trap t_cleanup EXIT
	trap 'exit 130' INT TERM
}

t_cleanup() {
	local rc=$? pid ns i
	trap - EXIT
	set +e
	if [[ $rc -ne 0 && -n ${T_PAUSE_ON_FAIL:-} ]]; then
		echo "T_PAUSE_ON_FAIL: pausing ${T_PAUSE_ON_FAIL}s before cleanup (namespaces: ${T_NAMESPACES[*]})" >&2
		sleep "$T_PAUSE_ON_FAIL"
	fi
	for ((i = ${#T_PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${T_PIDS[$i]}" 2>/dev/null
	done
	for pid in "${T_PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	for pin in "${T_PINS[@]}"; do
		[[ -e $pin ]] && "$LBD" --detach --pin-path "$pin" >/dev/null 2>&1
		[[ -e $pin ]] && rm -rf "$pin"
	done
	for ns in "${T_NAMESPACES[@]}"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	if [[ $rc -ne 0 && -n $T_TMP ]]; then
		local f
		for f in "$T_TMP"/*.log; do
			[[ -s $f ]] || continue
			echo "--- $(basename "$f") (last 40 lines):" >&2
			tail -n 40 "$f" >&2
		done
	fi
	[[ -n $T_TMP ]] && rm -rf "$T_TMP"
	exit "$rc"
}

# t_ns NAME: a namespace with lo up; echoes nothing. Forwarding off, rp_filter off.
t_ns() {
	ip netns add "$1"
	T_NAMESPACES+=("$1")
	ip -n "$1" link set lo up
	ip netns exec "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}

# t_link NS1 IF1 NS2 IF2: a veth pair between two namespaces, both ends up.
# TX checksum offload is turned off: a veth otherwise hands packets on with
# the checksum left to "hardware" (CHECKSUM_PARTIAL), and a frame that goes
# through native XDP on the way loses that state, so it would arrive with an
# unfinished checksum. Real NICs fill checksums in on transmit.
t_link() {
	ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
	ip netns exec "$1" ethtool -K "$2" tx off >/dev/null
	ip netns exec "$3" ethtool -K "$4" tx off >/dev/null
	ip -n "$1" link set "$2" up
	ip -n "$3" link set "$4" up
}

# t_addr NS IF ADDR/LEN...: add addresses (IPv6 without DAD).
t_addr() {
	local ns=$1 dev=$2 a
	shift 2
	for a in "$@"; do
		if [[ $a == *:* ]]; then
			ip -n "$ns" addr add "$a" dev "$dev" nodad
		else
			ip -n "$ns" addr add "$a" dev "$dev"
		fi
	done
}

# t_bg NS LOGNAME CMD...: run CMD in NS in the background, output to
# $T_TMP/LOGNAME.log; sets T_LAST_PID. It enters only the network namespace
# (nsenter), not the private mount namespace `ip netns exec` makes: there a
# fresh /sys hides the host's bpffs, and lbd's pins would vanish with it.
t_bg() {
	local ns=$1 log=$2
	shift 2
	nsenter --net="/run/netns/$ns" "$@" >"$T_TMP/$log.log" 2>&1 &
	T_LAST_PID=$!
	T_PIDS+=("$T_LAST_PID")
}

# t_lbd_dirs NAME: sets LBD_PIN (a bpffs pin directory, removed with
# `lbd --detach` at cleanup), LBD_STATE (state dir) and LBD_SOCK (control
# socket) unique to this test run, for the config of lbd instance NAME.
t_lbd_dirs() {
	LBD_PIN=/sys/fs/bpf/lbd-$T_NAME-$$-$1
	LBD_STATE=$T_TMP/state-$1
	LBD_SOCK=$T_TMP/lbd-$1.sock
	T_PINS+=("$LBD_PIN")
}

# t_wait_for SECONDS DESCRIPTION CMD...: poll CMD until it succeeds.
t_wait_for() {
	local secs=$1 what=$2
	shift 2
	local end=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < end)) || t_fail "timed out after ${secs}s waiting for $what"
		sleep 0.1
	done
}

# t_log_has LOGNAME REGEX
t_log_has() { grep -Eq -- "$2" "$T_TMP/$1.log"; }

# t_stop PID: SIGTERM and wait (up to 10 s).
t_stop() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	wait "$pid" 2>/dev/null || true
}

# t_backend NS IF IPV4/LEN IPV6/LEN GW4 GW6 TAG VIP...: a backend host with
# lbd-decap on IF, the VIPs on lo, and tagged HTTP, UDP and TCP echo servers.
t_backend() {
	local ns=$1 dev=$2 a4=$3 a6=$4 gw4=$5 gw6=$6 tag=$7
	shift 7
	local vip
	t_addr "$ns" "$dev" "$a4" "$a6"
	for vip in "$@"; do
		if [[ $vip == *:* ]]; then t_addr "$ns" lo "$vip/128"; else t_addr "$ns" lo "$vip/32"; fi
	done
	ip -n "$ns" route add default via "$gw4"
	ip -n "$ns" -6 route add default via "$gw6"
	ip netns exec "$ns" "$LBD_DECAP" attach "$dev" >/dev/null
	T_BACKEND_NS[$tag]=$ns
	T_BACKEND_VIPS[$tag]="$*"
	t_server_start "$tag"
}

declare -A T_BACKEND_NS T_BACKEND_VIPS T_SERVER_PID

# t_server_start TAG / t_server_stop TAG: a backend's servers (HTTP :80,
# TCP echo :7000, UDP echo :5300 on its VIPs), started and stopped by PID.
t_server_start() {
	local tag=$1
	# shellcheck disable=SC2086 # the VIP list splits into arguments
	t_bg "${T_BACKEND_NS[$tag]}" "server-$tag" $FLOWS serve --tag "$tag" --http 80 --tcp-echo 7000 \
		--udp-echo 5300 --udp-bind ${T_BACKEND_VIPS[$tag]}
	T_SERVER_PID[$tag]=$T_LAST_PID
	t_wait_for 10 "servers on $tag" grep -q "serving" "$T_TMP/server-$tag.log"
}
t_server_stop() {
	t_stop "${T_SERVER_PID[$1]}"
}

# t_single_lb_topology PREFIX NBACKENDS: the namespaces of one LB node
#
#   client --- router --- lb (lb0; the router's rl0 runs lbd-decap so that
#                 |            native XDP_TX on lb0 reaches it)
#                 +-- br0 --- b1..bN (lbd-decap, VIPs on lo, tagged servers)
#
# Sets CL RT LB, BACKENDS (namespace names), VIP4 VIP6, and backend i's
# addresses 198.18.30.1i / fd00:1b:30::1i.
t_single_lb_topology() {
	local p=$1 n=$2 i b
	CL=$p-cl-$$ RT=$p-rt-$$ LB=$p-lb-$$
	VIP4=198.18.1.100 VIP6=fd00:1b:1::100
	BACKENDS=()
	for ns in "$CL" "$RT" "$LB"; do t_ns "$ns"; done
	ip netns exec "$RT" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	t_link "$CL" c0 "$RT" rc0
	t_addr "$CL" c0 198.18.10.2/24 fd00:1b:10::2/64
	t_addr "$RT" rc0 198.18.10.1/24 fd00:1b:10::1/64
	ip -n "$CL" route add default via 198.18.10.1
	ip -n "$CL" -6 route add default via fd00:1b:10::1
	t_link "$RT" rl0 "$LB" lb0
	t_addr "$RT" rl0 198.18.20.1/24 fd00:1b:20::1/64
	t_addr "$LB" lb0 198.18.20.2/24 fd00:1b:20::2/64
	ip -n "$LB" route add default via 198.18.20.1
	ip -n "$LB" -6 route add default via fd00:1b:20::1
	ip -n "$RT" route add "$VIP4/32" via 198.18.20.2
	ip -n "$RT" -6 route add "$VIP6/128" via fd00:1b:20::2
	ip netns exec "$RT" "$LBD_DECAP" attach rl0 >/dev/null
	ip -n "$RT" link add br0 type bridge
	ip -n "$RT" link set br0 up
	t_addr "$RT" br0 198.18.30.1/24 fd00:1b:30::1/64
	for ((i = 1; i <= n; i++)); do
		b=$p-b$i-$$
		BACKENDS+=("$b")
		t_ns "$b"
		t_link "$b" eth0 "$RT" "rb$i"
		ip -n "$RT" link set "rb$i" master br0
		t_backend "$b" eth0 "198.18.30.1$i/24" "fd00:1b:30::1$i/64" 198.18.30.1 fd00:1b:30::1 "b$i" "$VIP4" "$VIP6"
	done
}

# t_lbd_config_head: the datapath and control sections for the single-LB
# topology (after t_lbd_dirs), for a config built with a heredoc.
t_lbd_config_head() {
	cat <<-YAML
	datapath:
	  interfaces: [lb0]
	  xdp_mode: native
	  conntrack_size: 65536
	  max_vips: 8
	  max_backends: 64
	  pin_path: $LBD_PIN
	control:
	  socket: $LBD_SOCK
	  state_dir: $LBD_STATE
	YAML
}
