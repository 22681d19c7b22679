#!/usr/bin/env bash
# The README's test command: installs what is needed, builds, and runs every
# test (unit, BPF packet tests, namespace integration tests) with ctest.
# Needs root for all but the unit tests; under CI=true nothing is skipped.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export LBD_BUILD_DIR=${LBD_BUILD_DIR:-$REPO/build}
"$REPO/scripts/install-deps.sh"
"$REPO/scripts/build.sh"
cd "$LBD_BUILD_DIR"
ctest --output-on-failure --timeout 600 "$@"
