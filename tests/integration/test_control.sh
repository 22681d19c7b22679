#!/usr/bin/env bash
# The control surface end to end: lbctl against the real lbd.
#  - every lb command, and traffic through a VIP created with lbctl;
#  - bad requests (unknown VIP, malformed or out-of-range address or port,
#    duplicate name or VIP, backend port unequal to the VIP's, unknown
#    algorithm, too many VIPs or backends): a one-line error, exit 1, and the
#    running and persisted state exactly as before;
#  - live changes survive a restart; SIGKILL in a loop of changes leaves the
#    old or the new state, never a torn one;
#  - lbctl reload applies a config edit, refuses a broken one.
set -euo pipefail
# shellcheck source=../lib/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"
t_init test_control
t_require_root
LBCTL=$T_BUILD/lbctl
[[ -x $LBCTL ]] || t_fail "$LBCTL not found"

t_single_lb_topology ctl 3
t_lbd_dirs lb
cfg=$T_TMP/lbd.yaml
write_cfg() { # extra backend lines for "web"
	{
		t_lbd_config_head | sed 's/max_vips: 8/max_vips: 6/; s/max_backends: 64/max_backends: 12/'
		cat <<-YAML
		vips:
		  - name: web
		    address: $VIP4
		    port: 80
		    protocol: tcp
		    backends:
		      - {address: 198.18.30.11}
		      - {address: 198.18.30.12}
		YAML
		printf '%s\n' "$@"
	} >"$cfg"
}
write_cfg
start_lbd() {
	t_bg "$LB" "$1" "$LBD" --config "$cfg"
	LBD_PID=$T_LAST_PID
	last_log=$1
	t_wait_for 15 "lbd ($1)" t_log_has "$1" "lbd .* running"
}
start_lbd lbd1
ctl() { "$LBCTL" --socket "$LBD_SOCK" "$@"; }

out=$(ctl status) || t_fail "lbctl status: $out"
grep -q "lb0" <<<"$out" || t_fail "status does not show the interface: $out"
t_ok "lbctl status: $(tr '\n' ' ' <<<"$out" | cut -c1-150)..."
out=$(ctl lb list)
grep -Eq '^web +198\.18\.1\.100:80 +tcp +maglev +2 +2/2 +config' <<<"$out" || t_fail "lb list: $out"
t_ok "lb list shows the config VIP: $(sed -n 2p <<<"$out")"

# Create, change and use a VIP through lbctl.
ctl lb create --name echo --vip "$VIP4:7000" --protocol tcp --algorithm maglev \
	--backends 198.18.30.11:7000,198.18.30.12:7000:3 >/dev/null || t_fail "lb create"
out=$(ip netns exec "$CL" $FLOWS tcp --addr "$VIP4" --port 7000 --count 40) || t_fail "traffic to the created VIP: $out"
t_ok "traffic through the lbctl-created VIP (weights 1:3): $out"
ctl lb add-backend echo --backend 198.18.30.13:7000 >/dev/null || t_fail "add-backend"
out=$(ip netns exec "$CL" $FLOWS tcp --addr "$VIP4" --port 7000 --count 40)
[[ $out == *'"b3"'* ]] || t_fail "added backend gets no traffic: $out"
ctl lb set-weight echo --backend 198.18.30.12 --weight 0 >/dev/null || t_fail "set-weight"
out=$(ip netns exec "$CL" $FLOWS tcp --addr "$VIP4" --port 7000 --count 40)
[[ $out != *'"b2"'* ]] || t_fail "drained backend got new connections: $out"
t_ok "add-backend, then set-weight 0 (drain) took effect at once: $out"
show=$(ctl lb show echo)
grep -Eq '198\.18\.30\.12 +7000 +0 +draining' <<<"$show" || t_fail "lb show: $show"
t_ok "lb show: $(grep 198.18.30.12 <<<"$show" | tr -s ' ')"
ctl lb remove-backend echo --backend 198.18.30.12:7000 >/dev/null || t_fail "remove-backend"
ctl lb remove-backend echo --backend 198.18.30.13:7000 --force >/dev/null || t_fail "remove-backend --force"
out=$(ctl --json lb show echo)
[[ $(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["vip"]["backends"]))' <<<"$out") == 1 ]] ||
	t_fail "after removals: $out"
ctl lb create --name gone --vip "[$VIP6]:80" --backends "[fd00:1b:30::11]:80" >/dev/null || t_fail "IPv6 create"
ctl lb delete gone >/dev/null || t_fail "lb delete"
t_ok "remove-backend (graceful and --force), IPv6 create, delete"

# Bad requests: error, exit 1, nothing changed.
snapshot() { ctl --json lb list; sha256sum "$LBD_STATE/state.json"; }
refused() { # EXPECTED-ERROR-FRAGMENT ARGS...
	local want=$1 before after err rc=0
	shift
	before=$(snapshot)
	err=$(ctl "$@" 2>&1 >/dev/null) || rc=$?
	after=$(snapshot)
	[[ $rc -eq 1 ]] || t_fail "lbctl $* exited $rc (want 1): $err"
	[[ $(wc -l <<<"$err") -eq 1 ]] || t_fail "lbctl $*: error is not one line: $err"
	[[ $err == *"$want"* ]] || t_fail "lbctl $*: '$err' does not say '$want'"
	[[ $before == "$after" ]] || t_fail "lbctl $* changed the state"
	t_info "refused, state unchanged: lbctl $* -> $err"
}
refused "no VIP named 'nope'" lb show nope
refused "no VIP named 'nope'" lb add-backend nope --backend 198.18.30.13
refused "not an endpoint" lb create --name x --vip 198.18.1.999:80
refused "not an endpoint" lb create --name x --vip "$VIP4:70000"
refused "not a backend" lb add-backend web --backend 198.18.30.999
refused "port must be between 1 and 65535" lb add-backend web --backend 198.18.30.13:0
refused "already exists" lb create --name web --vip "$VIP4:81"
refused "is already VIP 'web'" lb create --name web2 --vip "$VIP4:80"
refused "must equal the VIP's port 80" lb add-backend web --backend 198.18.30.13:81
refused "must equal the VIP's port 80" lb create --name x --vip "$VIP4:80" --protocol udp --backends 198.18.30.11:53
refused "unknown algorithm 'fastest'" lb create --name x --vip "$VIP4:82" --algorithm fastest
refused "already in 'web'" lb add-backend web --backend 198.18.30.11
refused "is not in 'web'" lb remove-backend web --backend 198.18.30.13
refused "IPv4 in IPv4" lb add-backend web --backend "fd00:1b:30::13"
for i in 1 2 3 4; do ctl lb create --name "v$i" --vip "$VIP4:$((900 + i))" >/dev/null || t_fail "create v$i"; done
refused "max_vips" lb create --name v5 --vip "$VIP4:905"
for i in 1 2 3 4; do ctl lb delete "v$i" >/dev/null; done
many=$(for i in $(seq 10 22); do printf '198.18.31.%d,' "$i"; done)
refused "max_backends" lb create --name big --vip "$VIP4:906" --backends "${many%,}"
t_ok "16 bad requests refused with a one-line error each, state unchanged"

# Live changes survive a restart (SIGTERM), with their sources.
before=$(ctl lb list)
t_stop "$LBD_PID"
start_lbd lbd2
after=$(ctl lb list)
[[ $before == "$after" ]] || t_fail "lb list changed across a restart:\n$before\n---\n$after"
grep -Eq '^echo .* lbctl$' <<<"$after" || t_fail "source of echo lost: $after"
out=$(ip netns exec "$CL" $FLOWS tcp --addr "$VIP4" --port 7000 --count 10) || t_fail "echo after restart: $out"
t_ok "after a restart lb list is identical and echo still serves: $(grep '^echo' <<<"$after" | tr -s ' ')"

# SIGKILL in a loop of changes: the saved state is the old or the new one.
for round in 1 2 3 4 5 6; do
	(for i in $(seq 100); do
		ctl lb add-backend echo --backend "198.18.31.$((i % 6 + 1))" >/dev/null 2>&1 || true
		ctl lb remove-backend echo --backend "198.18.31.$(((i + 3) % 6 + 1))" >/dev/null 2>&1 || true
	done) &
	loop=$!
	sleep "0.$((RANDOM % 5 + 1))"
	kill -KILL "$LBD_PID" || t_fail "round $round: lbd had already died during the changes: $(tail -3 "$T_TMP/$last_log.log")"
	wait "$LBD_PID" 2>/dev/null || true
	kill "$loop" 2>/dev/null || true # the loop may have finished already
	wait "$loop" 2>/dev/null || true
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$LBD_STATE/state.json" ||
		t_fail "round $round: state.json torn after SIGKILL"
	[[ ! -e $LBD_STATE/state.json.tmp ]] || t_info "round $round: a leftover state.json.tmp (ignored, replaced on the next save)"
	start_lbd "kill$round"
	n=$(ctl --json lb show echo | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["vip"]["backends"]))')
	saved=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["overrides"]["vips"]["echo"]["backends"]))' "$LBD_STATE/state.json")
	[[ $n == "$saved" ]] || t_fail "round $round: running echo has $n backends, saved state $saved"
done
t_ok "6 SIGKILLs during a loop of changes: state.json always whole, lbd restarted on it each time"

# lbctl reload: a config edit applies; a broken config is refused.
write_cfg "      - {address: 198.18.30.13}"  # a third backend for web
out=$(ctl reload) || t_fail "lbctl reload: $out"
grep -q "198.18.30.13 added" <<<"$out" || t_fail "reload did not report the change: $out"
t_ok "lbctl reload: $(tr '\n' ' ' <<<"$out")"
echo "  - {name: broken, address: 198.18.1.999, port: 80}" >>"$cfg"
before=$(snapshot)
rc=0; err=$(ctl reload 2>&1) || rc=$?
[[ $rc -eq 1 && $err == *"vips[1].address"* ]] || t_fail "broken reload: rc=$rc $err"
[[ $before == "$(snapshot)" ]] || t_fail "a refused reload changed the state"
t_ok "lbctl reload of a broken config refused (exit 1), state unchanged: $(head -1 <<<"$err")"
echo "PASS: test_control"
