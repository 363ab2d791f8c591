#!/usr/bin/env bash
# Install the Debian packages the local cluster's node needs (localcluster/node.py):
#
#   containerd, runc                  the container runtime the kubelet talks CRI to
#   containernetworking-plugins       CNI bridge, host-local, loopback, portmap
#   iptables                          the bridge plugin's masquerade rules
#   busybox-static                    the stand-in images (localcluster/images.py)
#
#   scripts/node-packages.sh          install what is missing (as root; idempotent)
#   scripts/node-packages.sh check    exit 0 if everything is installed, else print
#                                     the one line naming what is missing
#
# Upstream versions are pinned below (the Debian revision may move with security
# updates). Nothing is started: the node runs its own containerd with a config in
# the cluster's state directory. Failure prints ONE line naming what is missing.
set -euo pipefail

# package=upstream-version (bookworm).
PACKAGES=(
    "containerd=1.6.20"
    "runc=1.1.5"
    "containernetworking-plugins=1.1.1"
    "iptables=1.8.9"
    "busybox-static=1:1.35.0"
)

die() { printf 'node-packages: error: %s\n' "$*" >&2; exit 1; }

installed_version() {
    dpkg-query -W -f='${db:Status-Status} ${Version}\n' "$1" 2>/dev/null |
        awk '$1 == "installed" {print $2}'
}

missing=()
for entry in "${PACKAGES[@]}"; do
    name=${entry%%=*}
    want=${entry#*=}
    have=$(installed_version "$name" || true)
    if [[ -z $have || $have != "$want"* ]]; then
        missing+=("$entry")
    fi
done

if ((${#missing[@]} == 0)); then
    exit 0
fi
names=$(printf '%s ' "${missing[@]%%=*}")
if [[ ${1:-} == check ]]; then
    die "node packages missing: ${names% } (install them with: sudo scripts/node-packages.sh)"
fi
command -v apt-get >/dev/null || die "apt-get not found: install ${names% } with your package manager"
[[ $(id -u) == 0 ]] || die "node packages missing: ${names% }; run as root: sudo scripts/node-packages.sh"

args=()
for entry in "${missing[@]}"; do
    args+=("${entry%%=*}=${entry#*=}*")
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# Another apt run may hold the lock (other sessions install their packages too): wait for it.
apt_opts=(-o DPkg::Lock::Timeout=600 -q -y --no-install-recommends)
if ! apt-get "${apt_opts[@]}" install "${args[@]}" >"$log" 2>&1; then
    # The package lists may be stale or absent: refresh them once and retry.
    if ! apt-get -o DPkg::Lock::Timeout=600 -q update >>"$log" 2>&1 ||
        ! apt-get "${apt_opts[@]}" install "${args[@]}" >>"$log" 2>&1; then
        reason=$(grep -E '^(E|W):' "$log" | head -1 || true)
        die "could not install ${names% }: ${reason:-apt-get failed (see apt-get install ${args[*]})}"
    fi
fi
for entry in "${missing[@]}"; do
    name=${entry%%=*}
    have=$(installed_version "$name" || true)
    [[ $have == "${entry#*=}"* ]] || die "$name: installed ${have:-nothing}, wanted ${entry#*=}"
done
printf 'node-packages: installed %s\n' "${names% }" >&2
