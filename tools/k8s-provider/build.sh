#!/usr/bin/env bash
# Build the test double of the Pulumi Kubernetes provider plugin.
#
#   tools/k8s-provider/build.sh OUT_DIR
#
# Writes OUT_DIR/pulumi-resource-kubernetes (static, -trimpath), reporting the
# pulumi-kubernetes version pinned in pyproject.toml (override with
# K8S_PROVIDER_VERSION).  Idempotent: rebuilding unchanged sources is a cache
# hit, and the binary is replaced atomically.  Modules come from the Go module
# proxy only; the Go caches default to the toolchain cache of
# scripts/toolchain.sh so the two share downloads and compiled packages.
set -euo pipefail

if [[ $# -ne 1 || -z $1 ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)

command -v go >/dev/null || { echo "build.sh: go is not on PATH" >&2; exit 1; }

CACHE=${ARC_ZFS_CACHE_TOOLCHAIN_DIR:-$HOME/.cache/arc-zfs-cache/toolchain}
export GOMODCACHE=${GOMODCACHE:-$CACHE/go/mod}
export GOCACHE=${GOCACHE:-$CACHE/go/build}
export GOPATH=${GOPATH:-$CACHE/go/path}
# Only the module proxy is reachable; the checksum database is not (go.sum,
# committed, pins every module's hash).
export GOPROXY=${GOPROXY:-https://proxy.golang.org}
export GOSUMDB=${GOSUMDB:-off}
# -mod=readonly: the committed go.mod/go.sum are the build's pins; a build
# must not rewrite them.
export GOFLAGS="-mod=readonly -modcacherw"
export GOWORK=off CGO_ENABLED=0 GOTELEMETRY=off

version=${K8S_PROVIDER_VERSION:-}
if [[ -z $version ]]; then
    version=$(python3 - "$ROOT/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
pins = [d.split("==", 1)[1] for d in deps if d.startswith("pulumi-kubernetes==")]
if len(pins) != 1:
    sys.exit("pyproject.toml pins no pulumi-kubernetes==<version>")
print(pins[0])
PY
)
fi

tmp=$(mktemp "$OUT/.pulumi-resource-kubernetes.XXXXXX")
trap 'rm -f "$tmp"' EXIT
(
    cd "$HERE"
    go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$tmp" .
)
chmod 0755 "$tmp"
mv -f "$tmp" "$OUT/pulumi-resource-kubernetes"
trap - EXIT
echo "built $OUT/pulumi-resource-kubernetes (stands in for pulumi-kubernetes v$version)" >&2
