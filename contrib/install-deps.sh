#!/usr/bin/env bash
# Install the Debian packages bitnetd needs to build and test (no-op when present).
# Runs apt-get as root, or through sudo.
set -euo pipefail
packages=(build-essential autoconf automake libtool pkg-config
          libuv1-dev libmsgpack-dev liburing-dev libpcre2-dev libjansson-dev libcriterion-dev)
[ "${BITNET_DEPS_EXTRA:-}" ] && read -r -a extra <<<"$BITNET_DEPS_EXTRA" && packages+=("${extra[@]}")
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
