#!/usr/bin/env bash
# systemd/lbd.service passes `systemd-analyze verify`, with the binaries it
# names standing in at a temporary root (the unit points at /usr/sbin).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${LBD_BUILD_DIR:-$REPO/build}
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not found"; [[ ${CI:-} == true ]] && exit 1; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/usr/sbin" "$tmp/etc/systemd/system"
cp "$BUILD/lbd" "$tmp/usr/sbin/lbd"
sed "s|/usr/sbin/lbd|$tmp/usr/sbin/lbd|g" "$REPO/systemd/lbd.service" >"$tmp/etc/systemd/system/lbd.service"
out=$(systemd-analyze verify "$tmp/etc/systemd/system/lbd.service" 2>&1) || { echo "$out"; echo "FAIL: systemd-analyze verify"; exit 1; }
# verify prints warnings without failing; treat any line about our unit as a failure.
if grep -i "lbd.service" <<<"$out"; then
	echo "FAIL: systemd-analyze has remarks about lbd.service"
	exit 1
fi
grep -q '^Type=notify' "$REPO/systemd/lbd.service"
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID' "$REPO/systemd/lbd.service"
echo "ok: systemd-analyze verify lbd.service: clean (Type=notify, ExecReload=SIGHUP)"
echo "PASS: test_systemd_unit"
