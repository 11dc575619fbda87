#!/usr/bin/env bash
# Builds the node half of a real cluster for `make e2e-local` into a per-machine cache outside the clone,
# keyed by version, next to tools/kube's control plane: kubelet, kube-scheduler and kube-proxy (from this
# module: the same k8s.io/kubernetes release as tools/kube), containerd + ctr + containerd-shim-runc-v2,
# runc (cgo, with seccomp: needs libseccomp-dev and a C compiler), the CNI plugins bridge, host-local and
# loopback, and the pause binary (static, from the pause.c that ships in the kubernetes module).
# containerd, runc and the CNI plugins are each built in a copy of their own released module, with that
# module's own go.sum, so their dependencies are exactly upstream's. Everything comes from the Go module
# proxy; nothing is installed on the machine.
# Prints the cache directory on its last line (binaries in bin/, CNI plugins in cni-bin/); progress goes
# to stderr, with a heartbeat line at least every $RIPPLECACHE_BUILD_HEARTBEAT_SECONDS (default 30).
# Cold build time on this project's two-core machine (Go build cache warm from tools/kube, modules not yet
# downloaded): see README ("Real pods: make e2e-local").
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBE_VERSION=v1.36.3
CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.5.3
CNI_PLUGINS_VERSION=v1.10.0
cache_root=${RIPPLECACHE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ripplecache}
key="node-${KUBE_VERSION}-containerd-${CONTAINERD_VERSION}-runc-${RUNC_VERSION}-cni-${CNI_PLUGINS_VERSION}-$(sha256sum "$here/go.sum" | cut -c1-12)"
dir="$cache_root/$key"
bin="$dir/bin"
cni_bin="$dir/cni-bin"
heartbeat_seconds=${RIPPLECACHE_BUILD_HEARTBEAT_SECONDS:-30}
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$bin" "$cni_bin"
log() { printf '[tools/node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# with_heartbeat WHAT COMMAND...: runs COMMAND and, while it runs, logs "WHAT: still running (Ns elapsed)"
# every $heartbeat_seconds, so that a long build is never silent. Returns COMMAND's exit status.
with_heartbeat() {
  local what=$1 start=$SECONDS status=0 work beat
  shift
  "$@" &
  work=$!
  (
    while sleep "$heartbeat_seconds" </dev/null >/dev/null 2>&1; do
      kill -0 $$ 2>/dev/null || exit 0
      log "$what: still running ($((SECONDS - start))s elapsed)"
    done
  ) &
  beat=$!
  wait "$work" || status=$?
  kill "$beat" 2>/dev/null || true
  wait "$beat" 2>/dev/null || true
  return "$status"
}

# One build at a time per cache entry: several clones or test runs on one machine may call this at once.
exec 9>"$dir/.lock"
if ! flock -n 9; then
  log "another build of $key is running; waiting for it..."
  with_heartbeat "waiting for the other build" flock 9
  log "the other build finished"
fi
total_start=$SECONDS

# --- kubelet, kube-scheduler, kube-proxy: same ldflags as tools/kube/build.sh ---------------------------------
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=${KUBE_VERSION} -X $pkg.gitMajor=1 -X $pkg.gitMinor=36"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=2026-01-01T00:00:00Z"
done
build_kube() { # name package
  local name=$1 pkg=$2
  if [ -x "$bin/$name" ]; then log "$name: cached"; return; fi
  log "$name: building $pkg..."
  local start=$SECONDS
  (cd "$here" && with_heartbeat "$name: go build" go build -trimpath -ldflags "$ldflags" -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  log "$name: built in $((SECONDS - start))s"
}
build_kube kubelet k8s.io/kubernetes/cmd/kubelet
build_kube kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build_kube kube-proxy k8s.io/kubernetes/cmd/kube-proxy

# --- modules built from a writable copy of their released source ----------------------------------------------
# module_copy MODULE@VERSION: downloads the module (checked against the checksum database) and prints a fresh
# writable copy of its directory under $dir/src.
module_copy() {
  local modver=$1 src
  src=$(cd "$here" && GOFLAGS= go mod download -json "$modver" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || { log "error: go mod download $modver gave no directory"; return 1; }
  local copy="$dir/src/${modver//[\/@]/_}"
  rm -rf "$copy"
  mkdir -p "$dir/src"
  cp -r "$src" "$copy"
  chmod -R u+w "$copy"
  echo "$copy"
}

if [ -x "$bin/runc" ]; then
  log "runc: cached"
else
  pkg-config --exists libseccomp || { log "error: runc needs libseccomp-dev (scripts/ensure-tools.sh installs it)"; exit 1; }
  log "runc ${RUNC_VERSION}: building with cgo and seccomp..."
  start=$SECONDS
  src=$(module_copy "github.com/opencontainers/runc@${RUNC_VERSION}")
  (cd "$src" && CGO_ENABLED=1 with_heartbeat "runc: go build" go build -trimpath -buildmode=pie \
    -tags "seccomp urfave_cli_no_docs" -ldflags "-X main.version=${RUNC_VERSION#v}" -o "$bin/runc.tmp" .)
  mv "$bin/runc.tmp" "$bin/runc"
  log "runc: built in $((SECONDS - start))s"
fi

if [ -x "$bin/containerd" ] && [ -x "$bin/ctr" ] && [ -x "$bin/containerd-shim-runc-v2" ]; then
  log "containerd, ctr, containerd-shim-runc-v2: cached"
else
  log "containerd ${CONTAINERD_VERSION}: building containerd, ctr and containerd-shim-runc-v2..."
  start=$SECONDS
  src=$(module_copy "github.com/containerd/containerd/v2@${CONTAINERD_VERSION}")
  cld="-s -w -X github.com/containerd/containerd/v2/version.Version=${CONTAINERD_VERSION}"
  (cd "$src" && with_heartbeat "containerd: go build" go build -trimpath -tags "urfave_cli_no_docs no_btrfs" \
    -ldflags "$cld" -o "$src/out/" ./cmd/containerd ./cmd/ctr)
  (cd "$src" && with_heartbeat "containerd-shim-runc-v2: go build" go build -trimpath \
    -tags "urfave_cli_no_docs no_grpc" -ldflags "$cld" -o "$src/out/" ./cmd/containerd-shim-runc-v2)
  mv "$src/out/containerd" "$src/out/ctr" "$src/out/containerd-shim-runc-v2" "$bin/"
  log "containerd: built in $((SECONDS - start))s"
fi

if [ -x "$cni_bin/bridge" ] && [ -x "$cni_bin/host-local" ] && [ -x "$cni_bin/loopback" ]; then
  log "CNI plugins: cached"
else
  log "CNI plugins ${CNI_PLUGINS_VERSION}: building bridge, host-local, loopback..."
  start=$SECONDS
  src=$(module_copy "github.com/containernetworking/plugins@${CNI_PLUGINS_VERSION}")
  (cd "$src" && with_heartbeat "CNI plugins: go build" go build -trimpath -ldflags "-s -w" -o "$src/out/" \
    ./plugins/main/bridge ./plugins/main/loopback ./plugins/ipam/host-local)
  mv "$src/out/bridge" "$src/out/loopback" "$src/out/host-local" "$cni_bin/"
  log "CNI plugins: built in $((SECONDS - start))s"
fi

if [ -x "$bin/pause" ]; then
  log "pause: cached"
else
  log "pause: compiling build/pause/linux/pause.c from k8s.io/kubernetes@${KUBE_VERSION} (static)..."
  kdir=$(cd "$here" && GOFLAGS= go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  gcc -static -O2 -DVERSION="${KUBE_VERSION}" -o "$bin/pause.tmp" "$kdir/build/pause/linux/pause.c"
  mv "$bin/pause.tmp" "$bin/pause"
fi

rm -rf "$dir/src"
log "all node tools are in $dir ($((SECONDS - total_start))s)"
echo "$dir"
