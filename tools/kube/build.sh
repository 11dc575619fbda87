#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kubectl (from Go modules, through the Go module
# proxy) and helm into a per-machine cache outside the clone, keyed by version. Reuses what is there.
# Prints the directory holding the binaries on its last line.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBE_VERSION=v1.36.3
HELM_VERSION=v3.22.0
cache_root=${RIPPLECACHE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ripplecache}
key="kube-${KUBE_VERSION}-etcd-v3.6.8-helm-${HELM_VERSION}-$(sha256sum "$here/go.sum" | cut -c1-12)"
bin="$cache_root/$key/bin"
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$bin"
log() { printf '[tools/kube %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# One build at a time per cache entry: several clones or test runs on one machine may call this at once.
exec 9>"$cache_root/$key/.lock"
if ! flock -n 9; then
  log "another build of $key is running; waiting for it..."
  flock 9
fi

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=${KUBE_VERSION} -X $pkg.gitMajor=1 -X $pkg.gitMinor=36"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=2026-01-01T00:00:00Z"
done

build() { # name package
  local name=$1 pkg=$2
  if [ -x "$bin/$name" ]; then log "$name: cached ($bin/$name)"; return; fi
  log "$name: building $pkg (a cold build takes several minutes on two cores)..."
  local start=$SECONDS
  (cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  log "$name: built in $((SECONDS - start))s"
}

build etcd go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kubectl k8s.io/kubernetes/cmd/kubectl
if [ ! -x "$bin/helm" ]; then
  log "helm: go install helm.sh/helm/v3/cmd/helm@${HELM_VERSION}..."
  start=$SECONDS
  GOBIN="$bin" GOFLAGS= go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
  log "helm: built in $((SECONDS - start))s"
else
  log "helm: cached ($bin/helm)"
fi
echo "$bin"
