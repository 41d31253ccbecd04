#!/usr/bin/env bash
# Rootful podman for the container tests (test/containers*.it.test.ts): the Debian packages and
# the /etc/containers/containers.conf this kind of machine needs. Safe to run again; does
# nothing when not root (the container tests then skip, or fail under CI=true).
#
# Why each setting (see ../shared/DESIGN.md, "What these machines offer for testing"):
#   runtime = runc          crun refuses the hybrid cgroup layout of these machines
#   cgroup_manager=cgroupfs no systemd as PID 1 here
#   events_logger = file    no journald
#   default_ulimits         no CAP_SYS_RESOURCE to raise limits; nproc must not exceed pid_max
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-podman: not root, skipping podman setup (container tests will skip)" >&2
  exit 0
fi
PKGS=(podman runc buildah fuse-overlayfs slirp4netns uidmap busybox-static catatonit)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-podman: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
conf=/etc/containers/containers.conf
marker="# braid: rootful podman settings"
if ! grep -qF "$marker" "$conf" 2>/dev/null; then
  mkdir -p /etc/containers
  pid_max=$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo 32768)
  nproc=$(( pid_max < 32768 ? pid_max : 32768 ))
  # Written whole: a partial TOML merge with an existing file would be ambiguous.
  [ -f "$conf" ] && cp "$conf" "$conf.braid-backup"
  cat > "$conf" <<CONF
$marker
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  echo "setup-podman: wrote $conf" >&2
fi
