#!/usr/bin/env bash
# Installs everything lbd needs to build, test and run its lab, from Debian 12
# packages. Idempotent; needs root.
set -euo pipefail

PACKAGES=(
	# build
	build-essential cmake pkg-config clang llvm bpftool libbpf-dev
	libboost-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libssl-dev
	libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev
	# route health injection (ExaBGP under lbd) and a real BGP peer for tests
	exabgp bird2
	# tests and lab
	iproute2 ethtool curl python3 iputils-ping procps openssl dnsmasq-base
	libcap2-bin # capsh: the half-open test drops CAP_NET_RAW
	nginx-light shellcheck
)

if [[ $(id -u) -ne 0 ]]; then
	echo "install-deps: run as root (apt-get install)" >&2
	exit 1
fi
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# nginx, bird and dnsmasq run only by hand inside the lab's namespaces:
	# keep their packages from starting system services (policy-rc.d 101).
	policy=/usr/sbin/policy-rc.d
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all ${#PACKAGES[@]} packages present"
