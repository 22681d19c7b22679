#!/usr/bin/env bash
# Configures and builds lbd into build/ (or $LBD_BUILD_DIR).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${LBD_BUILD_DIR:-$REPO/build}
cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
