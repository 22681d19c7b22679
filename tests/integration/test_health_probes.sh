#!/usr/bin/env bash
# lbd's health checker (tests/tools/hc_probe) against real servers in
# network namespaces:
#
#   hc (hc_probe) --- veth --- be: TCP, HTTP, HTTPS, UDP servers (python3),
#   198.18.50.1                    dnsmasq; 198.18.50.10-12, fd00:1b:50::10/12
#
# Checks, with short intervals (200-500 ms):
#   - the first state of every kind of probe (up, or down with its reason);
#   - tcp: listener gone -> down after exactly unhealthy_threshold failures,
#     back -> up after exactly healthy_threshold successes;
#   - http: path, Host and the status range are honoured (the server checks
#     them); 503 -> down "status 503"; a server that accepts and never
#     answers -> down "timeout", while another target's probes keep their
#     pace; https with SNI against a real TLS server (throwaway certificate),
#     up without verification, down with tls_verify (self-signed);
#   - dns against dnsmasq: NOERROR up, NXDOMAIN down, dnsmasq gone -> down;
#   - udp echo (IPv4 and IPv6), icmp (IPv4 and IPv6; address removed -> down);
#   - exec: exit 0 / exit 1, and a sleeping command killed at its timeout,
#     with its process group, leaving no zombie;
#   - SIGHUP reload keeps the state of unchanged targets; SIGTERM exits 0.
set -euo pipefail
# shellcheck source=../lib/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"
t_init test_health_probes

[[ $(id -u) -eq 0 ]] || t_skip "test_health_probes needs root (network namespaces)"
for tool in ip python3 timeout openssl dnsmasq ps pgrep; do
	command -v "$tool" >/dev/null || t_skip "$tool not found"
done
HC=$T_BUILD/tests/hc_probe
[[ -x $HC ]] || HC=$T_BUILD/hc_probe
[[ -x $HC ]] || t_fail "hc_probe not found in $T_BUILD/tests (build the hc_probe target)"
SRV="python3 $T_REPO/tests/integration/lib/health_servers.py"
CHECK="python3 $T_REPO/tests/integration/lib/health_log.py"

S=$(($$ % 100000))
HCNS=hc-lb-$S BE=hc-be-$S
t_ns "$HCNS"
t_ns "$BE"
# Port unreachables for every closed UDP port, not one a second per
# destination: the udp and dns probes then see "refused" each time.
ip netns exec "$BE" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
ip link add "hl$S" netns "$HCNS" type veth peer name "hb$S" netns "$BE"
ip -n "$HCNS" link set "hl$S" up
ip -n "$BE" link set "hb$S" up
t_addr "$HCNS" "hl$S" 198.18.50.1/24 fd00:1b:50::1/64
t_addr "$BE" "hb$S" 198.18.50.10/24 198.18.50.11/24 198.18.50.12/24 fd00:1b:50::10/64 fd00:1b:50::12/64

# --------------------------------------------------------------- servers
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
	-keyout "$T_TMP/key.pem" -out "$T_TMP/cert.pem" -subj /CN=www.example.org \
	-addext subjectAltName=DNS:www.example.org >/dev/null 2>&1
echo 200 >"$T_TMP/http.state"
echo 200 >"$T_TMP/steady.state"

serve() { # serve LOGNAME ARGS...: a server in BE; sets PID_<LOGNAME>
	local name=$1
	shift
	t_bg "$BE" "$name" timeout 120 $SRV "$@"
	printf -v "PID_${name//-/_}" %s "$T_LAST_PID"
	t_wait_for 10 "server $name" grep -q serving "$T_TMP/$name.log"
}
serve tcp tcp --bind 198.18.50.10 --port 7000
serve http http --bind 198.18.50.10 --port 8080 --state "$T_TMP/http.state" --host www.example.org
serve steady http --bind 198.18.50.11 --port 8080 --state "$T_TMP/steady.state"
serve https http --bind 198.18.50.10 --port 8443 --state "$T_TMP/steady.state" --host www.example.org \
	--cert "$T_TMP/cert.pem" --key "$T_TMP/key.pem"
serve udp4 udp --bind 198.18.50.10 --port 5300
serve udp6 udp --bind fd00:1b:50::10 --port 5300
t_bg "$BE" dnsmasq timeout 120 dnsmasq --no-daemon --port=5353 --listen-address=198.18.50.10 --bind-interfaces \
	--except-interface=lo --address=/example.org/198.18.9.9 --address=/gone.test/ --no-resolv --no-hosts \
	--conf-file=/dev/null --pid-file= --log-facility=- --log-queries
PID_dnsmasq=$T_LAST_PID
t_wait_for 10 dnsmasq grep -q "started" "$T_TMP/dnsmasq.log"

cat >"$T_TMP/slow.sh" <<'EOF'
#!/bin/sh
sleep 31.7 &
sleep 31.7
EOF
chmod +x "$T_TMP/slow.sh"

# --------------------------------------------------------------- checker
# Generous timeouts: the python servers can be slow on a loaded machine.
fast="interval: 400ms, timeout: 300ms"
cfg=$T_TMP/targets.yaml
write_targets() { # write_targets [EXTRA_LINE]
	cat >"$cfg" <<-YAML
	targets:
	  - {vip: web-tcp, address: 198.18.50.10, port: 7000, health: {type: tcp, interval: 200ms, timeout: 100ms, unhealthy_threshold: 3, healthy_threshold: 2}}
	  - {vip: web-http, address: 198.18.50.10, port: 80, health: {type: http, port: 8080, path: /healthz, host: www.example.org, expect_status: 200-299, $fast, unhealthy_threshold: 2, healthy_threshold: 2}}
	  - {vip: web-http-path, address: 198.18.50.10, port: 8080, health: {type: http, path: /elsewhere, host: www.example.org, $fast, unhealthy_threshold: 1}}
	  - {vip: web-http-host, address: 198.18.50.10, port: 8080, health: {type: http, path: /healthz, host: other.example.org, $fast, unhealthy_threshold: 1}}
	  - {vip: web-http-range, address: 198.18.50.10, port: 8080, health: {type: http, path: /teapot, host: www.example.org, expect_status: 400-499, $fast, healthy_threshold: 1}}
	  - {vip: steady, address: 198.18.50.11, port: 8080, health: {type: http, path: /healthz, $fast, healthy_threshold: 1}}
	  - {vip: web-https, address: 198.18.50.10, port: 8443, health: {type: https, path: /healthz, host: www.example.org, $fast}}
	  - {vip: web-https-verify, address: 198.18.50.10, port: 8443, health: {type: https, path: /healthz, host: www.example.org, tls_verify: true, $fast, unhealthy_threshold: 1}}
	  - {vip: dns-ok, address: 198.18.50.10, port: 5353, health: {type: dns, query_name: example.org, query_type: A, $fast, unhealthy_threshold: 2}}
	  - {vip: dns-nx, address: 198.18.50.10, port: 5353, health: {type: dns, query_name: gone.test, $fast}}
	  - {vip: udp4, address: 198.18.50.10, port: 5300, health: {type: udp, payload: ping, expect: pong ping, $fast, unhealthy_threshold: 2}}
	  - {vip: udp6, address: "fd00:1b:50::10", port: 5300, health: {type: udp, payload: ping, expect: pong, $fast}}
	  - {vip: udp-wrong, address: 198.18.50.10, port: 5300, health: {type: udp, payload: ping, expect: nope, $fast}}
	  - {vip: icmp4, address: 198.18.50.12, health: {type: icmp, interval: 200ms, timeout: 100ms, unhealthy_threshold: 2}}
	  - {vip: icmp6, address: "fd00:1b:50::12", health: {type: icmp, interval: 200ms, timeout: 100ms, unhealthy_threshold: 2}}
	  - {vip: exec-ok, address: 198.18.50.10, port: 80, health: {type: exec, command: [/bin/sh, -c, 'test "\$LBD_BACKEND_ADDRESS" = 198.18.50.10 && test "\$LBD_BACKEND_PORT" = 80 && test "\$LBD_VIP_NAME" = exec-ok'], interval: 300ms, timeout: 250ms}}
	  - {vip: exec-fail, address: 198.18.50.10, port: 80, health: {type: exec, command: [/bin/false], interval: 300ms, timeout: 250ms}}
	  - {vip: exec-slow, address: 198.18.50.10, port: 80, health: {type: exec, command: ["$T_TMP/slow.sh"], interval: 500ms, timeout: 300ms, unhealthy_threshold: 1}}
	${1:-}
	YAML
}
write_targets
# stdout (the lines checked) to hc.log, the checker's own log to hc-stderr.log.
t_bg "$HCNS" hc-stderr sh -c "exec timeout 100 '$HC' --probes '$cfg' >'$T_TMP/hc.log'"
HC_WRAPPER=$T_LAST_PID
LOG=$T_TMP/hc.log
t_wait_for 10 "hc_probe to start" grep -q " ready " "$LOG"
HC_PID=$(pgrep -P "$HC_WRAPPER" -f hc_probe | head -n1)
[[ -n $HC_PID ]] || t_fail "no hc_probe process under $HC_WRAPPER"

now() { tail -n 1 "$LOG" | cut -d' ' -f1; } # hc_probe's clock, from its last line
expect() { # expect SECONDS REGEX: wait for a line matching REGEX in hc.log
	t_wait_for "$1" "'$2' in hc_probe's output" grep -Eq -- "$2" "$LOG"
}
expect_after() { # expect_after SECONDS TIME REGEX: ... on a line at or after TIME
	local secs=$1 t=$2 re=$3
	t_wait_for "$secs" "'$re' after t=$t" sh -c "awk -v t='$t' '\$1 >= t' '$LOG' | grep -Eq -- '$re'"
}

# ------------------------------------------------ first state of every target
# expect_first VIP ENDPOINT_RE up|down REASON_RE: the target comes up with
# that reason, or goes down from unknown and its probes fail with it. (One
# slow answer on a loaded machine may add a timeout before.)
expect_first() {
	if [[ $3 == up ]]; then
		expect 10 "change $1 $2 (unknown|down) -> up \\($4\\)"
	else
		expect 10 "change $1 $2 unknown -> down "
		expect 10 "probe $1 $2 fail $4\$"
	fi
}
expect_first web-tcp '198\.18\.50\.10:7000' up 'connected'
expect_first web-http '198\.18\.50\.10:8080' up 'status 200'
expect_first web-http-path '198\.18\.50\.10:8080' down 'status 404'
expect_first web-http-host '198\.18\.50\.10:8080' down 'status 400'
expect_first web-http-range '198\.18\.50\.10:8080' up 'status 418'
expect_first steady '198\.18\.50\.11:8080' up 'status 200'
expect_first web-https '198\.18\.50\.10:8443' up 'status 200'
expect_first web-https-verify '198\.18\.50\.10:8443' down 'tls handshake: self-signed certificate'
expect_first dns-ok '198\.18\.50\.10:5353' up 'NOERROR, 1 answers'
expect_first dns-nx '198\.18\.50\.10:5353' down 'rcode NXDOMAIN'
expect_first udp4 '198\.18\.50\.10:5300' up 'reply'
expect_first udp6 '\[fd00:1b:50::10\]:5300' up 'reply'
expect_first udp-wrong '198\.18\.50\.10:5300' down 'unexpected reply'
expect_first icmp4 '198\.18\.50\.12' up 'echo reply'
expect_first icmp6 'fd00:1b:50::12' up 'echo reply'
expect_first exec-ok '198\.18\.50\.10:80' up 'exit 0'
expect_first exec-fail '198\.18\.50\.10:80' down 'exit 1'
expect_first exec-slow '198\.18\.50\.10:80' down 'timeout after 300ms'
$CHECK streak "$LOG" web-tcp unknown up 2
$CHECK streak "$LOG" dns-nx unknown down 3
t_log_has http 'request /healthz host=www\.example\.org' || t_fail "the http server saw no GET /healthz with Host www.example.org"
t_log_has https 'request /healthz host=www\.example\.org sni=www\.example\.org' || t_fail "no SNI www.example.org at the https server"
t_log_has hc-stderr 'health: vip web-tcp backend 198\.18\.50\.10:7000 unknown -> up \(connected\)' ||
	t_fail "the checker's log has no transition line"
t_ok "first states: 18 targets of 7 types up or down with the expected reasons"

# ------------------------------------------- SIGHUP: a new target, state kept
t0=$(now)
write_targets "  - {vip: late, address: 198.18.50.11, port: 8080, health: {type: tcp, interval: 200ms, timeout: 100ms, healthy_threshold: 1}}"
kill -HUP "$HC_PID"
expect_after 5 "$t0" ' ready 19$'
expect_after 5 "$t0" 'change late 198\.18\.50\.11:8080 unknown -> up \(connected\)'
sleep 0.5
others=$($CHECK changes "$LOG" "$t0" | grep -v ' change late ' || true)
[[ -z $others ]] || t_fail "reload changed the state of unchanged targets: $others"
t_ok "SIGHUP reload: new target starts unknown and comes up; the others keep their state"

# ------------------------------------------------------------------ tcp
t0=$(now)
t_stop "$PID_tcp"
expect_after 5 "$t0" 'change web-tcp 198\.18\.50\.10:7000 up -> down \(refused\)'
$CHECK streak "$LOG" web-tcp up down 3 "$t0"
t0=$(now)
serve tcp tcp --bind 198.18.50.10 --port 7000
expect_after 5 "$t0" 'change web-tcp 198\.18\.50\.10:7000 down -> up \(connected\)'
$CHECK streak "$LOG" web-tcp down up 2 "$t0"
t_ok "tcp: down after exactly 3 failures (refused), up after exactly 2 successes"

# ------------------------------------------------------------------ http
t0=$(now)
echo 503 >"$T_TMP/http.state"
expect_after 5 "$t0" 'change web-http 198\.18\.50\.10:8080 up -> down \(status 503\)'
$CHECK streak "$LOG" web-http up down 2 "$t0"
t0=$(now)
echo 200 >"$T_TMP/http.state"
expect_after 5 "$t0" 'change web-http 198\.18\.50\.10:8080 down -> up \(status 200\)'
$CHECK streak "$LOG" web-http down up 2 "$t0"
t_ok "http: 503 -> down after exactly 2 failures, 200 -> up after exactly 2"

t0=$(now)
echo hang >"$T_TMP/http.state"
expect_after 5 "$t0" 'change web-http 198\.18\.50\.10:8080 up -> down \(timeout after 300ms\)'
sleep 1
t1=$(now)
echo 200 >"$T_TMP/http.state"
# Hanging probes of web-http (and the 404/400/418 targets on the same server)
# must not hold up anything else: steady's probes keep their 200 ms pace.
# (Were probes run one after another, the 300 ms hangs would stretch these.)
$CHECK gaps "$LOG" steady "$t0" "$t1" 0.65
$CHECK gaps "$LOG" web-tcp "$t0" "$t1" 0.4
t_ok "http: a backend that accepts and never answers -> down (timeout); other probes not delayed"

# ------------------------------------------------------------------- dns
t0=$(now)
t_stop "$PID_dnsmasq"
expect_after 5 "$t0" 'change dns-ok 198\.18\.50\.10:5353 up -> down \(refused\)'
t_ok "dns: dnsmasq gone -> down (refused)"

# ------------------------------------------------------------------- udp
t0=$(now)
t_stop "$PID_udp4"
expect_after 5 "$t0" 'change udp4 198\.18\.50\.10:5300 up -> down \(refused\)'
t_ok "udp: echo server gone -> down (refused)"

# ------------------------------------------------------------------ icmp
# The checker above got raw sockets (a new namespace allows ping sockets to
# no group). A second one, started after ping sockets are allowed, uses those.
ip netns exec "$HCNS" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
cat >"$T_TMP/ping.yaml" <<-YAML
	targets:
	  - {vip: ping4, address: 198.18.50.12, health: {type: icmp, interval: 200ms, timeout: 100ms, healthy_threshold: 1, unhealthy_threshold: 2}}
	  - {vip: ping6, address: "fd00:1b:50::12", health: {type: icmp, interval: 200ms, timeout: 100ms, healthy_threshold: 1, unhealthy_threshold: 2}}
YAML
t_bg "$HCNS" hc2-stderr sh -c "exec timeout 60 '$HC' --probes '$T_TMP/ping.yaml' >'$T_TMP/hc2.log'"
t_wait_for 5 "ping4 up (ping socket)" grep -q 'change ping4 198.18.50.12 unknown -> up (echo reply)' "$T_TMP/hc2.log"
t_wait_for 5 "ping6 up (ping socket)" grep -q 'change ping6 fd00:1b:50::12 unknown -> up (echo reply)' "$T_TMP/hc2.log"
t0=$(now)
ip -n "$BE" addr del 198.18.50.12/24 dev "hb$S"
ip -n "$BE" addr del fd00:1b:50::12/64 dev "hb$S"
expect_after 5 "$t0" 'change icmp4 198\.18\.50\.12 up -> down \((timeout after 100ms|unreachable)\)'
expect_after 5 "$t0" 'change icmp6 fd00:1b:50::12 up -> down \((timeout after 100ms|unreachable)\)'
t_wait_for 5 "ping4 down (ping socket)" grep -Eq 'change ping4 198.18.50.12 up -> down' "$T_TMP/hc2.log"
t_wait_for 5 "ping6 down (ping socket)" grep -Eq 'change ping6 fd00:1b:50::12 up -> down' "$T_TMP/hc2.log"
t_ok "icmp: address removed -> down (IPv4 and IPv6; raw and ping sockets)"

# ------------------------------------------------------------------ exec
slow_count() { ps -eo args= | grep -c '^sleep 31\.7$' || true; }
zombies() { ps -eo pid=,ppid=,stat= | awk -v p="$HC_PID" '$2 == p && $3 ~ /^Z/ { print $1 }'; }
max_slow=0
for _ in $(seq 15); do
	n=$(slow_count)
	((n > max_slow)) && max_slow=$n
	z=$(zombies)
	if [[ -n $z ]]; then # a child that just exited may be caught before it is reaped
		sleep 0.3
		for pid in $z; do
			[[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]] && t_fail "hc_probe leaves zombie child $pid"
		done
	fi
	sleep 0.2
done
# One probe's shell holds two sleeps; killed ones would pile up.
((max_slow <= 2)) || t_fail "$max_slow 'sleep 31.7' processes at once: timed-out exec probes were not killed"
n_timeouts=$(grep -c 'probe exec-slow .* fail timeout after 300ms' "$LOG")
((n_timeouts >= 5)) || t_fail "only $n_timeouts exec-slow timeouts"
t_ok "exec: $n_timeouts timed-out runs killed with their process group, no zombies (at most $max_slow sleeps at once)"

# ------------------------------------------------------------------ stop
kill -TERM "$HC_PID"
rc=0
for _ in $(seq 50); do kill -0 "$HC_WRAPPER" 2>/dev/null || break; sleep 0.1; done
kill -0 "$HC_WRAPPER" 2>/dev/null && t_fail "hc_probe did not exit within 5 s of SIGTERM"
wait "$HC_WRAPPER" || rc=$?
[[ $rc -eq 0 ]] || t_fail "hc_probe exited $rc after SIGTERM"
sleep 0.2
[[ $(slow_count) -eq 0 ]] || t_fail "exec probe processes left after hc_probe exited"
t_ok "SIGTERM: hc_probe exits 0, nothing left behind"
echo "PASS: test_health_probes"
