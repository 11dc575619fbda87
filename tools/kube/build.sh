#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kubectl (from Go modules, through the Go module
# proxy) and helm into a per-machine cache outside the clone, keyed by version. Reuses what is there.
# Prints the directory holding the binaries on its last line; progress goes to stderr, with a heartbeat
# line at least every $RIPPLECACHE_BUILD_HEARTBEAT_SECONDS (default 30) while a build or the wait for
# another caller's build is under way. A cold build took about 20 minutes on a fresh two-core machine
# (module downloads included): etcd ~2, kube-apiserver ~8, kube-controller-manager ~3, kubectl ~1, helm ~4.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBE_VERSION=v1.36.3
HELM_VERSION=v3.22.0
cache_root=${RIPPLECACHE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ripplecache}
key="kube-${KUBE_VERSION}-etcd-v3.6.8-helm-${HELM_VERSION}-$(sha256sum "$here/go.sum" | cut -c1-12)"
bin="$cache_root/$key/bin"
heartbeat_seconds=${RIPPLECACHE_BUILD_HEARTBEAT_SECONDS:-30}
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$bin"
log() { printf '[tools/kube %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# with_heartbeat WHAT COMMAND...: runs COMMAND and, while it runs, logs "WHAT: still running (Ns elapsed)"
# every $heartbeat_seconds, so that a long build is never silent. Returns COMMAND's exit status.
with_heartbeat() {
  local what=$1 start=$SECONDS status=0 work beat
  shift
  "$@" &
  work=$!
  (
    # Stops by itself if this script is gone; sleep gets no inherited pipe, so a killed beat holds none open.
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
exec 9>"$cache_root/$key/.lock"
if ! flock -n 9; then
  log "another build of $key is running (a cold build takes about 20 minutes on two cores); waiting for it..."
  with_heartbeat "waiting for the other build" flock 9
  log "the other build finished"
fi

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=${KUBE_VERSION} -X $pkg.gitMajor=1 -X $pkg.gitMinor=36"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=2026-01-01T00:00:00Z"
done

build() { # name package minutes-on-two-cores
  local name=$1 pkg=$2 minutes=$3
  if [ -x "$bin/$name" ]; then log "$name: cached ($bin/$name)"; return; fi
  log "$name: building $pkg (cold, on two cores: about $minutes min)..."
  local start=$SECONDS
  (cd "$here" && with_heartbeat "$name: go build" go build -trimpath -ldflags "$ldflags" -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  log "$name: built in $((SECONDS - start))s"
}

build etcd go.etcd.io/etcd/server/v3 2
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver 8
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager 3
build kubectl k8s.io/kubernetes/cmd/kubectl 1
if [ ! -x "$bin/helm" ]; then
  log "helm: go install helm.sh/helm/v3/cmd/helm@${HELM_VERSION} (cold, on two cores: about 4 min)..."
  start=$SECONDS
  with_heartbeat "helm: go install" env GOBIN="$bin" GOFLAGS= go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
  log "helm: built in $((SECONDS - start))s"
else
  log "helm: cached ($bin/helm)"
fi
echo "$bin"
