#!/usr/bin/env bash
# Make the e2e tier's real tools available, built from package registries only.
#
#   scripts/toolchain.sh            ensure every tool; progress on stderr
#   scripts/toolchain.sh env        ensure every tool, then print `export` lines
#                                   on stdout: eval "$(scripts/toolchain.sh env)"
#   scripts/toolchain.sh [env] TOOL...
#                                   the same for some tools only, out of:
#                                   pulumi (CLI, Python language host, shims)
#                                   pulumi-kubernetes (the provider plugin)
#                                   kubernetes (kube-apiserver, kubectl,
#                                   kube-controller-manager, kube-scheduler,
#                                   kubelet) etcd actionlint
#                                   csi-provisioner external-snapshotter
#                                   (snapshot-controller, csi-snapshotter and
#                                   the VolumeSnapshot CRDs) csi-spec (the
#                                   ZFS driver double's Python gRPC code: CSI
#                                   and the kubelet's plugin registration)
#                                   zfs-fuse (Debian package, needs root)
#
# Versions come from pyproject.toml alone (scripts/toolchain/pins.py reads
# them).  Everything is built from Go modules served by the Go module proxy,
# into ${ARC_ZFS_CACHE_TOOLCHAIN_DIR:-~/.cache/arc-zfs-cache/toolchain}, one
# directory per tool and version, so changing one pin rebuilds only that tool.
# A tool that cannot be had makes the script fail, naming it and why: nothing
# is skipped.  See scripts/toolchain/README.md.
# The builders are only called through `ensure`, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail

# The whole script is one block, parsed before anything runs: others edit this
# checkout while builds run, and bash otherwise reads a script as it goes.
{
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPERS=$ROOT/scripts/toolchain
CACHE=${ARC_ZFS_CACHE_TOOLCHAIN_DIR:-$HOME/.cache/arc-zfs-cache/toolchain}
# One compile job per core: the machines this runs on have 2 cores and plenty
# of memory, and more jobs than cores only adds context switches.
JOBS=${ARC_ZFS_CACHE_TOOLCHAIN_JOBS:-$(nproc 2>/dev/null || echo 2)}

ALL_TOOLS=(pulumi pulumi-kubernetes kubernetes etcd actionlint
    csi-provisioner external-snapshotter csi-spec zfs-fuse)

log() { printf 'toolchain: %s\n' "$*" >&2; }
die() { printf 'toolchain: error: %s\n' "$*" >&2; exit 1; }

mode="ensure"
if [[ ${1:-} == env ]]; then
    mode="env"
    shift
fi
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
fi
tools=("$@")
if ((${#tools[@]} == 0)); then
    tools=("${ALL_TOOLS[@]}")
fi
for t in "${tools[@]}"; do
    [[ " ${ALL_TOOLS[*]} " == *" $t "* ]] || die "unknown tool '$t' (known: ${ALL_TOOLS[*]})"
done
# The provider plugin is installed with the pinned CLI, so it needs that too.
if [[ " ${tools[*]} " == *" pulumi-kubernetes "* && " ${tools[*]} " != *" pulumi "* ]]; then
    tools=(pulumi "${tools[@]}")
fi
wanted() { [[ " ${tools[*]} " == *" $1 "* ]]; }

command -v go >/dev/null || die "the Go toolchain is needed (go not on PATH)"
command -v python3 >/dev/null || die "python3 (3.11+, for tomllib) is needed to read pyproject.toml"
command -v flock >/dev/null || die "flock (util-linux) is needed to lock the cache"

# PIN_PULUMI PIN_PULUMI_KUBERNETES PIN_PULUMI_COMMAND PIN_KUBERNETES PIN_ETCD
# PIN_ACTIONLINT, and PIN_PULUMI_LANGUAGE_PYTHON (empty unless pinned apart)
pins=$(python3 "$HELPERS/pins.py" "$ROOT/pyproject.toml") || die "cannot read the pins from pyproject.toml"
eval "$pins"

mkdir -p "$CACHE/tmp" "$CACHE/logs" "$CACHE/locks"
CACHE=$(cd "$CACHE" && pwd)
PULUMI_HOME_DIR=$CACHE/pulumi-home

# --- Go environment -----------------------------------------------------------
# All downloads and compiled packages live under the cache root, so a rebuild
# after a pin change reuses everything that did not change, and ~/go stays
# untouched.
export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOPATH=$CACHE/go/path
# Only the Go module proxy is reachable here.  "direct" (the default fallback)
# would try to clone from the VCS host after a 404 and hang or fail slowly;
# a GOPROXY set by the caller (a mirror) is respected.
export GOPROXY=${GOPROXY:-https://proxy.golang.org}
# The checksum database (sum.golang.org) does not resolve on these machines, so
# it cannot be consulted.  The upstream go.sum of each module we build still
# pins the hashes of its dependencies; only modules missing from it are taken
# on trust from the proxy.
export GOSUMDB=off
# -mod=mod: upstream go.mod files are edited (replaces) and go.sum may need new
# lines; -modcacherw keeps the module cache deletable with a plain rm -rf.
export GOFLAGS="-mod=mod -modcacherw"
# The module zips ship go.work files that point at directories they do not
# contain; every build here is a single module.
export GOWORK=off
# Static binaries: no C toolchain needed and nothing to break when libc moves.
export CGO_ENABLED=0
export GOTELEMETRY=off

GOBUILD=(go build -trimpath -p "$JOBS")

# --- helpers --------------------------------------------------------------------

# module_dir MODULE VERSION: download MODULE@VERSION into the module cache and
# print its (read-only) source directory; on failure print the proxy's answer.
module_dir() {
    if ! go mod download -json "$1@$2" | python3 "$HELPERS/gomod.py" download-dir; then
        echo "$1@$2 cannot be had from the Go module proxy ($GOPROXY): see its answer above" >&2
        return 1
    fi
}

# module_time MODULE VERSION: the release time the proxy records (for the
# build date that kubernetes embeds, so builds are reproducible).
module_time() {
    go mod download -json "$1@$2" | python3 "$HELPERS/gomod.py" download-time
}

# writable_copy SRC DEST: a build directory we may edit (module cache is r/o).
writable_copy() {
    cp -r "$1" "$2"
    chmod -R u+w "$2"
}

# pin_relative_replaces DIR VERSION: upstream monorepos replace sibling
# modules with relative directories that are not inside the published zip;
# point each at the published module at VERSION instead.
pin_relative_replaces() {
    local dir=$1 version=$2 mod
    (
        cd "$dir"
        for mod in $(go mod edit -json | python3 "$HELPERS/gomod.py" relative-replaces); do
            echo "replace $mod => $mod $version"
            go mod edit -replace "$mod=$mod@$version"
        done
    )
}

fmt_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

failures=()

# If this script is interrupted mid-build, stop the builder and drop its
# temporary directory (nothing was renamed into place, so nothing looks built).
current_work=""
current_pid=""
cleanup() {
    if [[ -n $current_pid ]]; then
        kill -TERM -- "-$current_pid" 2>/dev/null || true
        wait "$current_pid" 2>/dev/null || true
    fi
    if [[ -n $current_work ]]; then
        rm -rf "$current_work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# complete KEY FILE...: the cache entry exists and has every FILE.
complete() {
    local dir=$CACHE/$1 f
    shift
    [[ -d $dir ]] || return 1
    for f in "$@"; do
        [[ -e $dir/$f ]] || return 1
    done
}

# ensure KEY LABEL ESTIMATE BUILD_FUNCTION FILE...
#   $CACHE/KEY is the finished tool.  BUILD_FUNCTION fills $1/out in a private
#   temporary directory, which is renamed into place only after the function
#   succeeded (a rename within one file system is atomic), so an interrupted
#   build never leaves a half tool that looks complete.  An entry lacking one
#   of FILE (made by an older version of this script) is rebuilt.  A lock per
#   key lets concurrent runs share the cache.
ensure() {
    local key=$1 label=$2 estimate=$3 fn=$4
    shift 4
    local dest=$CACHE/$key logfile=$CACHE/logs/$key.log
    if complete "$key" "$@"; then
        log "$label cached"
        return 0
    fi
    local lockfd
    exec {lockfd}>"$CACHE/locks/$key.lock"
    if ! flock -n "$lockfd"; then
        log "waiting for another run that is building $label…"
        flock "$lockfd"
    fi
    if complete "$key" "$@"; then
        exec {lockfd}>&-
        log "$label cached (built by another run)"
        return 0
    fi
    local work start rc=0
    work=$(mktemp -d "$CACHE/tmp/$key.XXXXXX")
    if [[ -d $dest ]]; then
        log "$key is incomplete (older layout): rebuilding it"
        mv "$dest" "$work/stale"
    fi
    mkdir -p "$work/out/bin"
    log "building $label (cold, ~$estimate; log: $logfile)…"
    start=$SECONDS
    # Run the builder as a background job and wait for it: bash ignores
    # `set -e` inside anything whose status is tested (`f || rc=$?`), so a
    # failing step would otherwise be ignored and the build carry on.
    current_work=$work
    # Job control on for this one spawn: the builder gets a process group of
    # its own, so cleanup can stop it together with the go processes it runs.
    set -m
    ("$fn" "$work") >"$logfile" 2>&1 </dev/null &
    current_pid=$!
    set +m
    wait "$current_pid" || rc=$?
    current_pid=""
    if ((rc == 0)); then
        mv "$work/out" "$dest"
        log "built $label in $(fmt_secs $((SECONDS - start)))"
    else
        log "FAILED to build $label after $(fmt_secs $((SECONDS - start))); last lines of $logfile:"
        tail -n 15 "$logfile" | sed 's/^/    /' >&2
        failures+=("$label: $(grep -v '^\s*$' "$logfile" | tail -n 1)")
    fi
    rm -rf "$work"
    current_work=""
    exec {lockfd}>&-
    return 0
}

# --- builders -------------------------------------------------------------------
# Each runs in a subshell with its output in the log, `set -e` in force, and
# must leave the finished tool in $1/out.

PULUMI_MODULE=github.com/pulumi/pulumi
PULUMI_VERSION_LDFLAG=github.com/pulumi/pulumi/sdk/v3/go/common/version.Version

build_pulumi_cli() {
    local work=$1 src got
    # The CLI is pkg/cmd/pulumi in the pkg/v3 module, whose go.mod replaces
    # sdk/v3 with ../sdk; use the published sdk/v3 of the same version.
    src=$(module_dir "$PULUMI_MODULE/pkg/v3" "v$PIN_PULUMI")
    writable_copy "$src" "$work/src"
    pin_relative_replaces "$work/src" "v$PIN_PULUMI"
    cd "$work/src"
    # The same flags as upstream's release build (goreleaser): the version is
    # stamped into sdk/go/common/version.
    "${GOBUILD[@]}" -ldflags "-s -w -X $PULUMI_VERSION_LDFLAG=v$PIN_PULUMI" \
        -o "$work/out/bin/pulumi" ./cmd/pulumi
    got=$("$work/out/bin/pulumi" version)
    echo "pulumi version: $got"
    [[ $got == "v$PIN_PULUMI" ]] || { echo "built pulumi reports '$got', want v$PIN_PULUMI"; return 1; }
}

build_pulumi_language_python() {
    local work=$1 src
    if [[ -z $PIN_PULUMI_LANGUAGE_PYTHON ]]; then
        # Since pulumi v3.7x the Python language host is a module of its own,
        # .../sdk/python/cmd/pulumi-language-python/v3, whose go.mod replaces
        # sdk/v3 and pkg/v3 with sibling directories.
        src=$(module_dir "$PULUMI_MODULE/sdk/python/cmd/pulumi-language-python/v3" "v$PIN_PULUMI")
        writable_copy "$src" "$work/src"
        pin_relative_replaces "$work/src" "v$PIN_PULUMI"
        cd "$work/src"
        "${GOBUILD[@]}" -ldflags "-s -w -X $PULUMI_VERSION_LDFLAG=v$PIN_PULUMI" \
            -o "$work/out/bin/pulumi-language-python" .
    else
        # Pinned apart (see pyproject.toml): a release from before the split,
        # when the language host was the package python/cmd/pulumi-language-python
        # of the sdk/v3 module itself.
        local v=$PIN_PULUMI_LANGUAGE_PYTHON
        src=$(module_dir "$PULUMI_MODULE/sdk/v3" "v$v")
        [[ -d $src/python/cmd/pulumi-language-python ]] || {
            echo "sdk/v3 v$v has no python/cmd/pulumi-language-python: pin a release from before v3.7x"
            return 1
        }
        writable_copy "$src" "$work/src"
        cd "$work/src"
        # Today's engine runs a policy pack through RunPlugin and names its
        # directory only in a field this old host does not know: patch the host
        # to read it (see the helper). The helper fails the build if the source
        # moved.
        python3 "$HELPERS/patch_langhost.py" python/cmd/pulumi-language-python/main.go
        "${GOBUILD[@]}" -ldflags "-s -w -X $PULUMI_VERSION_LDFLAG=v$v" \
            -o "$work/out/bin/pulumi-language-python" ./python/cmd/pulumi-language-python
    fi
}

build_pulumi_python_shims() {
    local work=$1 src f
    # The Python helpers the CLI distribution carries next to the binaries:
    # the exec script the language host runs a program with and the
    # dynamic-provider plugin (pulumi-resource-pulumi-python).  They are plain
    # files of the sdk/v3 module (python/cmd, python/dist).
    src=$(module_dir "$PULUMI_MODULE/sdk/v3" "v$PIN_PULUMI")
    for f in "$src"/python/dist/pulumi-* "$src"/python/cmd/pulumi-*; do
        [[ -f $f && $f != *.cmd ]] || continue
        install -m 0755 "$f" "$work/out/bin/"
        echo "shim: ${f#"$src"/}"
    done
    [[ -x $work/out/bin/pulumi-resource-pulumi-python && -x $work/out/bin/pulumi-language-python-exec ]] || {
        echo "sdk/v3 v$PIN_PULUMI lacks python/dist/pulumi-resource-pulumi-python or python/cmd/pulumi-language-python-exec"
        return 1
    }
}

# The parts of the Pulumi distribution, assembled into one directory the way
# the released tarball has them: the CLI looks for language hosts next to its
# own executable (and warns about any found elsewhere on PATH), and the
# language host looks for pulumi-language-python-exec next to its own.  Hard
# links, so the assembled copy costs no space.
PULUMI_PARTS=()
build_pulumi_dist() {
    local work=$1 part f
    for part in "${PULUMI_PARTS[@]}"; do
        for f in "$CACHE/$part"/bin/*; do
            ln "$f" "$work/out/bin/" 2>/dev/null || cp "$f" "$work/out/bin/"
            echo "$part: ${f##*/}"
        done
    done
}

PULUMI_KUBERNETES_MODULE=github.com/pulumi/pulumi-kubernetes/provider/v4

build_pulumi_kubernetes() {
    # The real provider plugin, built as upstream's release does: the module's
    # cmd/pulumi-resource-kubernetes, with the schema and Terraform mapping
    # embedded the way its generate.go writes them (schema version set to the
    # pin).  The module's go.mod replaces sdk/v4 with ../sdk, which is not in
    # its zip; dropping the replace uses the sdk/v4 release it requires.
    local work=$1 src got
    src=$(module_dir "$PULUMI_KUBERNETES_MODULE" "$PIN_PULUMI_KUBERNETES_MODULE") || {
        echo "the real provider plugin comes from $PULUMI_KUBERNETES_MODULE@$PIN_PULUMI_KUBERNETES_MODULE"
        return 1
    }
    writable_copy "$src" "$work/src"
    cd "$work/src"
    go mod edit -dropreplace github.com/pulumi/pulumi-kubernetes/sdk/v4
    (cd cmd/pulumi-resource-kubernetes && VERSION=$PIN_PULUMI_KUBERNETES go run ./generate.go)
    "${GOBUILD[@]}" -ldflags "-s -w -X $PULUMI_KUBERNETES_MODULE/pkg/version.Version=$PIN_PULUMI_KUBERNETES" \
        -o "$work/out/bin/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes
    # The plugin answers GetPluginInfo with its version; the schema says it too.
    got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
        cmd/pulumi-resource-kubernetes/schema-embed.json)
    echo "embedded schema version: $got"
    [[ $got == "$PIN_PULUMI_KUBERNETES" ]] || { echo "schema says $got, want $PIN_PULUMI_KUBERNETES"; return 1; }
}

build_kubernetes() {
    local work=$1 src date minor=${PIN_KUBERNETES#*.}
    minor=${minor%%.*}
    src=$(module_dir k8s.io/kubernetes "v$PIN_KUBERNETES")
    date=$(module_time k8s.io/kubernetes "v$PIN_KUBERNETES")
    writable_copy "$src" "$work/src"
    # k8s.io/kubernetes replaces every k8s.io/* library with
    # ./staging/src/k8s.io/*; those are separate modules, left out of its zip,
    # and published as k8s.io/<name> v0.<minor>.<patch> from the same commit.
    pin_relative_replaces "$work/src" "v0.${PIN_KUBERNETES#*.}"
    cd "$work/src"
    # What hack/lib/version.sh stamps, so --version and the apiserver's own
    # compatibility version are right (unset, it would be v0.0.0-master).
    local ld="-s -w" pkg cmd
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ld+=" -X $pkg.gitVersion=v$PIN_KUBERNETES -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${date:-1970-01-01T00:00:00Z}"
    done
    # kubectl, the controller-manager, the scheduler and the kubelet share most
    # packages with the apiserver, so they add little once it is built.
    for cmd in kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet; do
        "${GOBUILD[@]}" -ldflags "$ld" -o "$work/out/bin/$cmd" "./cmd/$cmd"
    done
    "$work/out/bin/kube-apiserver" --version
    "$work/out/bin/kube-apiserver" --version | grep -qx "Kubernetes v$PIN_KUBERNETES"
}

build_etcd() {
    local work=$1
    # etcd's own main module (go.etcd.io/etcd/v3) replaces its sub-modules with
    # relative paths; the server module carries the whole command line in
    # etcdmain, so a one-line main around it is the same etcd binary.
    mkdir -p "$work/src"
    cd "$work/src"
    cat >main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    go mod init arc-zfs-cache.local/toolchain/etcd
    go mod edit -require "go.etcd.io/etcd/server/v3@v$PIN_ETCD"
    go mod tidy
    "${GOBUILD[@]}" -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v$PIN_ETCD" \
        -o "$work/out/bin/etcd" .
    "$work/out/bin/etcd" --version
    "$work/out/bin/etcd" --version | grep -qx "etcd Version: $PIN_ETCD"
}

build_actionlint() {
    local work=$1
    # No replace directives: go install works straight from the proxy.
    GOBIN=$work/out/bin go install -trimpath \
        "github.com/rhysd/actionlint/cmd/actionlint@v$PIN_ACTIONLINT"
    "$work/out/bin/actionlint" --version
}

CSI_PROVISIONER_MODULE=github.com/kubernetes-csi/external-provisioner/v6
EXTERNAL_SNAPSHOTTER_MODULE=github.com/kubernetes-csi/external-snapshotter/v8
CSI_SPEC_MODULE=github.com/container-storage-interface/spec

build_csi_provisioner() {
    local work=$1 src
    # Its go.mod pins every k8s.io library with published versions (no
    # relative replaces); the version is what upstream's Makefile stamps.
    src=$(module_dir "$CSI_PROVISIONER_MODULE" "v$PIN_CSI_PROVISIONER")
    writable_copy "$src" "$work/src"
    cd "$work/src"
    "${GOBUILD[@]}" -ldflags "-s -w -X main.version=v$PIN_CSI_PROVISIONER" \
        -o "$work/out/bin/csi-provisioner" ./cmd/csi-provisioner
    "$work/out/bin/csi-provisioner" --version | grep -q "v$PIN_CSI_PROVISIONER"
}

build_external_snapshotter() {
    local work=$1 src crd
    # One module holds both the snapshot controller and the csi-snapshotter
    # sidecar; its go.mod replaces client/v8 with ./client, a module of its
    # own (not in this zip) published at the same version.  The CRDs live in
    # that client module, so they come from the same release as the binaries.
    src=$(module_dir "$EXTERNAL_SNAPSHOTTER_MODULE" "v$PIN_EXTERNAL_SNAPSHOTTER")
    writable_copy "$src" "$work/src"
    pin_relative_replaces "$work/src" "v$PIN_EXTERNAL_SNAPSHOTTER"
    cd "$work/src"
    for cmd in snapshot-controller csi-snapshotter; do
        "${GOBUILD[@]}" -ldflags "-s -w -X main.version=v$PIN_EXTERNAL_SNAPSHOTTER" \
            -o "$work/out/bin/$cmd" "./cmd/$cmd"
    done
    "$work/out/bin/csi-snapshotter" --version | grep -q "v$PIN_EXTERNAL_SNAPSHOTTER"
    crd=$(module_dir "${EXTERNAL_SNAPSHOTTER_MODULE%/v8}/client/v8" "v$PIN_EXTERNAL_SNAPSHOTTER")/config/crd
    mkdir -p "$work/out/crd"
    cp "$crd"/snapshot.storage.k8s.io_*.yaml "$work/out/crd/"
    ls "$work/out/crd"
}

# python_grpc WORK PROTO PACKAGE NAME: Python gRPC code for PROTO (copied as
# NAME.proto) in package PACKAGE under WORK/out/python, by grpcio-tools (a pinned
# test dependency in pyproject.toml), then imported once to show its services.
python_grpc() {
    local work=$1 proto=$2 package=$3 name=$4 out
    out="$work/out/python/$package"
    [[ -x $ROOT/.venv/bin/python ]] || { echo "no .venv: run make deps first"; return 1; }
    mkdir -p "$out"
    cp "$proto" "$work/out/$name.proto"
    "$ROOT/.venv/bin/python" -m grpc_tools.protoc -I "$work/out" \
        --python_out="$out" --grpc_python_out="$out" --pyi_out="$out" "$work/out/$name.proto"
    # protoc writes `import NAME_pb2` into the gRPC module; make it relative to
    # the package it lives in.
    sed -i "s/^import ${name}_pb2 as/from . import ${name}_pb2 as/" "$out/${name}_pb2_grpc.py"
    touch "$out/__init__.py"
    "$ROOT/.venv/bin/python" -c "import sys; sys.path.insert(0, '$work/out/python'); \
from $package import ${name}_pb2, ${name}_pb2_grpc; print('$name.proto services:', \
', '.join(${name}_pb2.DESCRIPTOR.services_by_name))"
}

build_csi_spec() {
    local work=$1 src
    # The driver double (localcluster/zfs_csi) speaks CSI through Python code
    # generated from the spec module's own csi.proto by grpcio-tools (a pinned
    # test dependency in pyproject.toml), so the wire format is the spec's.
    src=$(module_dir "$CSI_SPEC_MODULE" "v$PIN_CSI_SPEC")
    python_grpc "$work" "$src/csi.proto" csi_pb csi
}

# The kubelet's plugin registration API (pluginregistration v1), which the
# driver double serves itself in place of node-driver-registrar: the proto of
# the k8s.io/kubelet module at the pinned kubernetes release (v0.<minor>.<patch>).
KUBELET_MODULE=k8s.io/kubelet
PLUGIN_REGISTRATION_PROTO=pkg/apis/pluginregistration/v1/api.proto

build_plugin_registration() {
    local work=$1 src
    src=$(module_dir "$KUBELET_MODULE" "v0.${PIN_KUBERNETES#*.}")
    python_grpc "$work" "$src/$PLUGIN_REGISTRATION_PROTO" pluginregistration_pb api
}

# install_zfs_fuse: Debian's zfs-fuse at the pinned package version.  Not a
# cache entry: apt installs into the system, and dpkg says what is there.
install_zfs_fuse() {
    local have
    have=$(dpkg-query -W -f '${Status} ${Version}' zfs-fuse 2>/dev/null || true)
    if [[ $have == "install ok installed $PIN_ZFS_FUSE" ]]; then
        log "zfs-fuse $PIN_ZFS_FUSE installed"
        return 0
    fi
    if ((EUID != 0)); then
        failures+=("zfs-fuse $PIN_ZFS_FUSE: not installed (${have:-absent}) and installing needs root: run sudo apt-get install zfs-fuse=$PIN_ZFS_FUSE")
        return 0
    fi
    log "installing zfs-fuse $PIN_ZFS_FUSE with apt-get (log: $CACHE/logs/zfs-fuse.log)…"
    # The lock timeout: another apt-get (another engineer's toolchain) may hold
    # the dpkg lock for a while.  policy-rc.d in containers keeps the package's
    # init script from starting a daemon; localcluster starts its own.
    if ! { apt-get -o DPkg::Lock::Timeout=600 install -y "zfs-fuse=$PIN_ZFS_FUSE" ||
        { apt-get -o DPkg::Lock::Timeout=600 update &&
            apt-get -o DPkg::Lock::Timeout=600 install -y "zfs-fuse=$PIN_ZFS_FUSE"; }; } \
        >"$CACHE/logs/zfs-fuse.log" 2>&1 </dev/null; then
        failures+=("zfs-fuse $PIN_ZFS_FUSE: apt-get install failed: $(grep -v '^\s*$' "$CACHE/logs/zfs-fuse.log" | tail -n 1)")
        return 0
    fi
    log "installed zfs-fuse $PIN_ZFS_FUSE"
}

# --- the steps ------------------------------------------------------------------

bin_path=() # directories for PATH, in order
exports=()  # NAME=VALUE for `env`
pulumi_bin=""

if wanted pulumi; then
    existing=$(command -v pulumi || true)
    if [[ -n $existing && $existing != "$CACHE"/* ]] &&
        [[ $("$existing" version 2>/dev/null || true) == "v$PIN_PULUMI" ]]; then
        # An installed distribution of exactly the pinned version carries its
        # own language hosts and shims next to it: use it as it is.
        log "pulumi v$PIN_PULUMI found on PATH ($existing), not building it"
        pulumi_bin=$existing
    else
        langhost=${PIN_PULUMI_LANGUAGE_PYTHON:-$PIN_PULUMI}
        # A host pinned apart is patched (build_pulumi_language_python): its
        # cache entry says so, so an unpatched build is never reused.
        [[ -z $PIN_PULUMI_LANGUAGE_PYTHON ]] || langhost+="-runplugin-info"
        ensure "pulumi-cli-v$PIN_PULUMI" "pulumi v$PIN_PULUMI" "4 min" build_pulumi_cli bin/pulumi
        if [[ -n $PIN_PULUMI_LANGUAGE_PYTHON ]]; then
            log "pulumi-language-python is pinned apart, to v$langhost (pyproject.toml)"
        fi
        ensure "pulumi-language-python-v$langhost" "pulumi-language-python v$langhost" "1 min" \
            build_pulumi_language_python bin/pulumi-language-python
        ensure "pulumi-python-shims-v$PIN_PULUMI" "pulumi Python shims v$PIN_PULUMI" "seconds" \
            build_pulumi_python_shims bin/pulumi-language-python-exec
        PULUMI_PARTS=("pulumi-cli-v$PIN_PULUMI" "pulumi-language-python-v$langhost"
            "pulumi-python-shims-v$PIN_PULUMI")
        dist=pulumi-v$PIN_PULUMI
        [[ $langhost == "$PIN_PULUMI" ]] || dist+="-language-python-v$langhost"
        if complete "${PULUMI_PARTS[0]}" && complete "${PULUMI_PARTS[1]}" && complete "${PULUMI_PARTS[2]}"; then
            ensure "$dist" "pulumi distribution v$PIN_PULUMI" "seconds" build_pulumi_dist \
                bin/pulumi bin/pulumi-language-python bin/pulumi-language-python-exec
        fi
        bin_path+=("$CACHE/$dist/bin")
        pulumi_bin=$CACHE/$dist/bin/pulumi
        if [[ -n $PIN_PULUMI_LANGUAGE_PYTHON ]]; then
            # Hosts from before the split take the project's `virtualenv`
            # runtime option only as a command-line flag, which today's engine
            # no longer passes; they run PULUMI_PYTHON_CMD instead.
            exports+=("PULUMI_PYTHON_CMD=${PULUMI_PYTHON_CMD:-$ROOT/.venv/bin/python}")
        fi
    fi
    exports+=("PULUMI_BIN=$pulumi_bin")
fi

# install_plugin NAME VERSION BINARY: register a provider binary in our
# PULUMI_HOME, laid out as `pulumi plugin install` lays out downloads, so the
# engine finds it and never tries to download it.
install_plugin() {
    local name=$1 version=$2 binary=$3 cli
    local dir=$PULUMI_HOME_DIR/plugins/resource-$name-v$version
    # The marker names the cache entry the installed binary came from: a plugin
    # of the same version from another cache entry is reinstalled.
    local marker=$PULUMI_HOME_DIR/plugins/.resource-$name-v$version.source
    if [[ -d $dir && ! -e $dir.partial && $(cat "$marker" 2>/dev/null) == "$binary" ]]; then
        log "plugin resource $name v$version installed"
        return 0
    fi
    cli=${pulumi_bin:-$(command -v pulumi || true)}
    if [[ -z $cli || ! -x $cli ]]; then
        failures+=("plugin $name v$version: no pulumi CLI to install it with")
        return 0
    fi
    log "installing plugin resource $name v$version into $PULUMI_HOME_DIR"
    if ! PULUMI_HOME=$PULUMI_HOME_DIR PULUMI_SKIP_UPDATE_CHECK=true \
        "$cli" plugin install resource "$name" "$version" --file "$binary" --reinstall >&2; then
        failures+=("plugin $name v$version: pulumi plugin install failed")
    else
        printf '%s\n' "$binary" >"$marker"
    fi
}

if wanted pulumi-kubernetes; then
    key=pulumi-resource-kubernetes-v$PIN_PULUMI_KUBERNETES
    ensure "$key" "pulumi-resource-kubernetes v$PIN_PULUMI_KUBERNETES ($PULUMI_KUBERNETES_MODULE)" "20 min" \
        build_pulumi_kubernetes bin/pulumi-resource-kubernetes
    if complete "$key" bin/pulumi-resource-kubernetes; then
        install_plugin kubernetes "$PIN_PULUMI_KUBERNETES" "$CACHE/$key/bin/pulumi-resource-kubernetes"
    fi
fi
if wanted pulumi || wanted pulumi-kubernetes; then
    exports+=("PULUMI_HOME=$PULUMI_HOME_DIR" "PULUMI_SKIP_UPDATE_CHECK=true")
fi

if wanted kubernetes; then
    key=kubernetes-v$PIN_KUBERNETES
    ensure "$key" "kube-apiserver, kubectl, kube-controller-manager, kube-scheduler, kubelet v$PIN_KUBERNETES" "8 min" \
        build_kubernetes bin/kube-apiserver bin/kubectl bin/kube-controller-manager \
        bin/kube-scheduler bin/kubelet
    bin_path+=("$CACHE/$key/bin")
    exports+=("KUBE_APISERVER_BIN=$CACHE/$key/bin/kube-apiserver"
        "KUBECTL_BIN=$CACHE/$key/bin/kubectl"
        "KUBE_CONTROLLER_MANAGER_BIN=$CACHE/$key/bin/kube-controller-manager"
        "KUBE_SCHEDULER_BIN=$CACHE/$key/bin/kube-scheduler"
        "KUBELET_BIN=$CACHE/$key/bin/kubelet")
fi
if wanted etcd; then
    ensure "etcd-v$PIN_ETCD" "etcd v$PIN_ETCD" "1 min" build_etcd bin/etcd
    bin_path+=("$CACHE/etcd-v$PIN_ETCD/bin")
    exports+=("ETCD_BIN=$CACHE/etcd-v$PIN_ETCD/bin/etcd")
fi
if wanted actionlint; then
    ensure "actionlint-v$PIN_ACTIONLINT" "actionlint v$PIN_ACTIONLINT" "1 min" build_actionlint \
        bin/actionlint
    bin_path+=("$CACHE/actionlint-v$PIN_ACTIONLINT/bin")
    exports+=("ACTIONLINT_BIN=$CACHE/actionlint-v$PIN_ACTIONLINT/bin/actionlint")
fi

if wanted csi-provisioner; then
    key=csi-provisioner-v$PIN_CSI_PROVISIONER
    ensure "$key" "csi-provisioner v$PIN_CSI_PROVISIONER" "6 min" build_csi_provisioner \
        bin/csi-provisioner
    exports+=("CSI_PROVISIONER_BIN=$CACHE/$key/bin/csi-provisioner")
fi
if wanted external-snapshotter; then
    key=external-snapshotter-v$PIN_EXTERNAL_SNAPSHOTTER
    ensure "$key" "snapshot-controller, csi-snapshotter v$PIN_EXTERNAL_SNAPSHOTTER" "6 min" \
        build_external_snapshotter bin/snapshot-controller bin/csi-snapshotter \
        crd/snapshot.storage.k8s.io_volumesnapshots.yaml
    exports+=("SNAPSHOT_CONTROLLER_BIN=$CACHE/$key/bin/snapshot-controller"
        "CSI_SNAPSHOTTER_BIN=$CACHE/$key/bin/csi-snapshotter"
        "VOLUME_SNAPSHOT_CRD_DIR=$CACHE/$key/crd")
fi
if wanted csi-spec; then
    # Keyed by the grpcio-tools pin too: generated code must match the runtime.
    grpc_tools=$(sed -n 's/^ *"grpcio-tools==\([0-9.]*\)".*/\1/p' "$ROOT/pyproject.toml")
    key=csi-spec-v$PIN_CSI_SPEC-grpcio-tools-${grpc_tools:-unpinned}
    ensure "$key" "CSI spec v$PIN_CSI_SPEC Python gRPC code" "seconds" build_csi_spec \
        python/csi_pb/csi_pb2.py python/csi_pb/csi_pb2_grpc.py
    exports+=("CSI_PB_PYTHONPATH=$CACHE/$key/python")
    key=kubelet-pluginregistration-v$PIN_KUBERNETES-grpcio-tools-${grpc_tools:-unpinned}
    ensure "$key" "kubelet plugin registration v1 ($KUBELET_MODULE v0.${PIN_KUBERNETES#*.}) Python gRPC code" \
        "seconds" build_plugin_registration \
        python/pluginregistration_pb/api_pb2.py python/pluginregistration_pb/api_pb2_grpc.py
    exports+=("PLUGIN_REGISTRATION_PB_PYTHONPATH=$CACHE/$key/python")
fi
if wanted zfs-fuse; then
    install_zfs_fuse
fi

if ((${#failures[@]} > 0)); then
    log "FAILED: these tools could not be had (nothing was skipped):"
    for f in "${failures[@]}"; do
        log "  - $f"
    done
    # `eval "$(scripts/toolchain.sh env)"` ignores our exit status; make the
    # eval itself fail instead of silently exporting half a toolchain.
    [[ $mode == env ]] && echo "false"
    exit 1
fi

if [[ $mode == env ]]; then
    if ((${#bin_path[@]} > 0)); then
        path_value=$(IFS=:; echo "${bin_path[*]}")
        # "$PATH" stays literal: it is expanded by the shell that evals this.
        # shellcheck disable=SC2016
        printf 'export PATH=%q:"$PATH"\n' "$path_value"
    fi
    for kv in "${exports[@]}"; do
        printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
    done
fi
log "ready"
exit 0
}
