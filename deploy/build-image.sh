#!/usr/bin/env bash
# Builds the Braid gateway image with no registry access: a root filesystem assembled from this
# machine (its node binary and the shared libraries ldd names, iproute2's `ip` and nftables'
# `nft` with theirs, the built app and its production dependencies), imported with
# `podman import`. The result has the same layout, entry points and user as deploy/Dockerfile,
# so the chart runs either one unchanged.
#
#   deploy/build-image.sh [IMAGE]        default IMAGE: localhost/braid:dev
#   BRAID_IMAGE_NO_TSC=1 deploy/build-image.sh   use the dist/ directories as they are
#
# Rebuilds only when an input changed (node binary, lockfile, built JavaScript, native addon):
# the inputs' hash is stored as the image label braid.inputs. Prints the image name.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:-localhost/braid:dev}
command -v podman >/dev/null || { echo "build-image: podman not found (scripts/setup-podman.sh installs it)" >&2; exit 2; }

# The JavaScript the image runs: tsc -b is incremental, cheap when nothing changed.
# BRAID_IMAGE_NO_TSC=1 packs the dist/ already there (built by an earlier step) as it is.
[ "${BRAID_IMAGE_NO_TSC:-}" = 1 ] || npx tsc -b >&2
addon=gateway-core/native/build/Release/braid_native.node
[ -f "$addon" ] || { echo "build-image: $addon missing (run npm ci)" >&2; exit 2; }

node_bin=$(readlink -f "$(command -v node)")
ip_bin=$(readlink -f "$(command -v ip || echo /usr/sbin/ip)")
nft_bin=$(readlink -f "$(command -v nft || echo /usr/sbin/nft)")
for b in "$ip_bin" "$nft_bin"; do [ -x "$b" ] || { echo "build-image: $b missing (apt-get install iproute2 nftables)" >&2; exit 2; }; done

WORKSPACES=(gateway-core gateway-edge gateway-cloud proto)
inputs=$( {
  sha256sum "$node_bin" "$ip_bin" "$nft_bin" package-lock.json "$addon" deploy/build-image.sh
  find gateway-*/dist proto/braid -type f \( -name '*.js' -o -name '*.proto' \) | sort | xargs sha256sum
} | sha256sum | cut -c1-16)
if [ "$(podman image inspect --format '{{index .Labels "braid.inputs"}}' "$image" 2>/dev/null || true)" = "$inputs" ]; then
  echo "$image"
  exit 0
fi

root=$(mktemp -d /tmp/braid-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{app,etc,tmp,usr/local/bin,usr/sbin,run} && chmod 1777 "$root/tmp"

# Binaries and every library they load (ldd's absolute paths, the loader included).
copy_with_libs() {
  local bin=$1 dest=$2
  install -D -m 0755 "$bin" "$root$dest"
  ldd "$bin" | grep -oE '/[^ ]+\.so[^ ]*' | sort -u | while read -r lib; do
    [ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}
copy_with_libs "$node_bin" /usr/local/bin/node
copy_with_libs "$ip_bin" /usr/sbin/ip
copy_with_libs "$nft_bin" /usr/sbin/nft
[ -d /etc/iproute2 ] && cp -a /etc/iproute2 "$root/etc/"
# Debian links /lib to /usr/lib; libraries were copied by their ldd paths, both work.
cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
P
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"

# The app: workspace manifests, built JavaScript, the addon, the .proto files.
cp package.json package-lock.json "$root/app/"
for w in "${WORKSPACES[@]}"; do
  mkdir -p "$root/app/$w"
  cp "$w/package.json" "$root/app/$w/"
  [ -d "$w/dist" ] && cp -a "$w/dist" "$root/app/$w/"
done
cp -a proto/braid "$root/app/proto/"
install -D -m 0755 "$addon" "$root/app/$addon"

# Production dependencies only, exactly as npm resolved them here (no registry needed): npm ls
# lists the directories of the workspaces' non-dev dependency tree.
npm ls --omit=dev --all --parseable "${WORKSPACES[@]/#/-w=}" 2>/dev/null | while read -r dir; do
  rel=${dir#"$PWD"/}
  case $rel in
    node_modules/*) ;;
    *) continue ;;
  esac
  if [ -L "$rel" ]; then
    # Workspace packages are symlinks into the repository; keep them relative.
    mkdir -p "$root/app/$(dirname "$rel")"
    cp -P "$rel" "$root/app/$rel"
  elif [ ! -e "$root/app/$rel" ]; then
    mkdir -p "$root/app/$(dirname "$rel")"
    # Nested node_modules are listed on their own; skip them here.
    mkdir -p "$root/app/$rel"
    tar -C "$rel" --exclude=./node_modules -cf - . | tar -C "$root/app/$rel" -xf -
  fi
done

tar -C "$root" -cf "$root.tar" .
trap 'rm -rf "$root" "$root.tar"' EXIT
podman import \
  --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_ENV=production' \
  --change 'WORKDIR /app' \
  --change 'USER 0' \
  --change 'CMD ["node", "/app/gateway-edge/dist/main.js", "--help"]' \
  --change "LABEL braid.inputs=$inputs" \
  --change 'LABEL org.opencontainers.image.title=braid' \
  "$root.tar" "$image" >/dev/null
echo "$image"
