#!/bin/sh
# Builds bench/baseline.bpf.c by hand, with the flags cmake/BpfObject.cmake
# uses for bpf/xdp_lb.bpf.c, into BUILD_DIR/bpf/bench_baseline.bpf.o: the
# path `bpf_object(bench_baseline bench/baseline.bpf.c)` would produce, and
# the first place xdp_bench looks (next to the xdp_lb skeleton's object).
#
#   bench/build_baseline.sh [BUILD_DIR]     (default: build)
set -eu
src_dir=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-$src_dir/build}
multiarch=$(cc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")
mkdir -p "$build_dir/bpf"
clang -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -Wall -Werror \
    -I"$src_dir/bpf" -idirafter "/usr/include/$multiarch" \
    -c "$src_dir/bench/baseline.bpf.c" -o "$build_dir/bpf/bench_baseline.bpf.o"
echo "$build_dir/bpf/bench_baseline.bpf.o"
