#!/usr/bin/env bash
# The README's main command: installs what is needed, builds, and runs the
# lab's demo (lab/lab.sh demo; see docs/lab.md):
#
#   clients --- router (BIRD, ECMP) ===> lb1, lb2 (lbd: XDP + ExaBGP) ---> b1, b2, b3
#
# 1. BGP: the router has each VIP via both LB nodes; 2. 1,000 curl requests
# split over backends and LB nodes; 3. a backend's nginx stopped: health
# checks take it out; 4. maintenance on lb1: its routes are withdrawn, all
# traffic moves to lb2 and long-lived TCP connections keep working; 5. all
# restored. Exits non-zero if any step does not behave as shown; tears the lab
# down at the end unless --keep is given.
#
#   scripts/demo.sh [--no-build] [--keep]
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export LBD_BUILD_DIR=${LBD_BUILD_DIR:-$REPO/build}
if [[ ${1:-} != --no-build ]]; then
	"$REPO/scripts/install-deps.sh"
	"$REPO/scripts/build.sh" >/dev/null
else
	shift
fi
exec "$REPO/lab/lab.sh" demo "$@"
