#!/usr/bin/env bash
# Development certificates for the Braid control plane (mTLS). NOT for production.
#
#   scripts/gen-dev-certs.sh OUTDIR [--cloud-san "DNS:braid-cloud,IP:198.18.0.1,IP:127.0.0.1"] [--edge-id edge-1]
#                                   [--admin-san "DNS:localhost,DNS:braid-admin,IP:127.0.0.1"]
#
# Writes into OUTDIR:
#   ca.pem, ca.key                 dev CA that signs both sides
#   cloud.pem, cloud.key           cloud server certificate (serverAuth, SANs from --cloud-san)
#   edge.pem, edge.key             edge client certificate (clientAuth, CN = --edge-id)
#   operator.pem, operator.key     operator client certificate for the admin API and the braid
#                                  CLI (clientAuth, OU=operator, CN=operator)
#   admin.pem, admin.key           admin API server certificate (serverAuth, SANs from --admin-san)
#   rogue-ca.pem, rogue-ca.key     an unrelated CA, for tests only
#   rogue-edge.pem, rogue-edge.key an edge client certificate signed by the rogue CA, for tests:
#                                  the cloud must refuse it
#
# EC P-256 keys, 30 days of validity. Idempotent: files that exist are kept, and a certificate
# is re-issued only when it is missing, its key is new, or the requested SAN/CN changed. Quiet on
# success; errors (with openssl's own output) go to stderr and exit non-zero.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [--cloud-san SANS] [--edge-id ID] [--admin-san SANS]" >&2; exit 2; }

[[ $# -ge 1 ]] || usage
out=$1; shift
cloud_san="DNS:localhost,DNS:braid-cloud,IP:127.0.0.1"
edge_id="edge-1"
admin_san="DNS:localhost,DNS:braid-admin,IP:127.0.0.1"
while [[ $# -gt 0 ]]; do
  case $1 in
    --cloud-san) [[ $# -ge 2 ]] || usage; cloud_san=$2; shift 2 ;;
    --edge-id) [[ $# -ge 2 ]] || usage; edge_id=$2; shift 2 ;;
    --admin-san) [[ $# -ge 2 ]] || usage; admin_san=$2; shift 2 ;;
    *) usage ;;
  esac
done
# The edge id becomes a certificate subject: keep it to characters that need no escaping.
[[ $edge_id =~ ^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$ ]] || { echo "$0: invalid --edge-id: $edge_id" >&2; exit 2; }
[[ $cloud_san =~ ^[A-Za-z0-9.:,_*-]+$ ]] || { echo "$0: invalid --cloud-san: $cloud_san" >&2; exit 2; }
[[ $admin_san =~ ^[A-Za-z0-9.:,_*-]+$ ]] || { echo "$0: invalid --admin-san: $admin_san" >&2; exit 2; }

command -v openssl >/dev/null || { echo "$0: openssl not found (Debian: apt-get install -y openssl)" >&2; exit 1; }

days=30
mkdir -p "$out"
cd "$out"
umask 077 # private keys readable by the owner only
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Run openssl, showing its chatter only when it fails.
ossl() {
  if ! openssl "$@" >"$tmp/log" 2>&1; then
    cat "$tmp/log" >&2
    echo "$0: openssl $1 failed" >&2
    exit 1
  fi
}

key() { # key FILE: a new EC P-256 key unless FILE exists
  [[ -s $1 ]] || ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
}

# stamp NAME DESCRIPTION: records what a certificate was issued for, so that a changed flag (or
# a new key/CA) re-issues it and an unchanged run does nothing.
fresh() { # fresh NAME WANT -> 0 if NAME.pem exists, matches WANT, and is not about to expire
  local name=$1 want=$2
  [[ -s $name.pem && -s .$name.issued && "$(cat ".$name.issued")" == "$want" ]] || return 1
  openssl x509 -in "$name.pem" -noout -checkend 86400 >/dev/null 2>&1
}

ca() { # ca NAME CN
  local name=$1 cn=$2
  key "$name.key"
  local want; want="ca $cn $(openssl pkey -in "$name.key" -pubout 2>/dev/null | sha256sum)"
  fresh "$name" "$want" && return 0
  ossl req -x509 -new -key "$name.key" -sha256 -days "$days" -subj "/O=Braid dev/CN=$cn" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out "$name.pem"
  echo "$want" >".$name.issued"
  chmod 644 "$name.pem"
}

leaf() { # leaf NAME CA CN EXTENSIONS [OU]
  local name=$1 ca=$2 cn=$3 ext=$4 ou=${5:-}
  key "$name.key"
  local want; want="leaf $cn${ou:+ OU=$ou} $ext $(openssl pkey -in "$name.key" -pubout 2>/dev/null | sha256sum) $(sha256sum <"$ca.pem")"
  fresh "$name" "$want" && return 0
  printf '%b\n' "$ext" >"$tmp/$name.ext"
  ossl req -new -key "$name.key" -subj "/O=Braid dev${ou:+/OU=$ou}/CN=$cn" -out "$tmp/$name.csr"
  ossl x509 -req -in "$tmp/$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -sha256 -days "$days" -extfile "$tmp/$name.ext" -out "$name.pem"
  echo "$want" >".$name.issued"
  chmod 644 "$name.pem"
}

common_ext='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash'

ca ca "Braid dev CA"
leaf cloud ca "braid-cloud" "$common_ext\nextendedKeyUsage=serverAuth\nsubjectAltName=$cloud_san"
leaf edge ca "$edge_id" "$common_ext\nextendedKeyUsage=clientAuth"
# The operator: same CA, told apart from edges by its OU (the admin API admits only OU=operator).
leaf operator ca "operator" "$common_ext\nextendedKeyUsage=clientAuth" operator
leaf admin ca "braid-admin" "$common_ext\nextendedKeyUsage=serverAuth\nsubjectAltName=$admin_san"

# For tests: an edge certificate that looks right but comes from a CA nobody trusts.
ca rogue-ca "Rogue CA"
leaf rogue-edge rogue-ca "$edge_id" "$common_ext\nextendedKeyUsage=clientAuth"
