#!/usr/bin/env bash
# `make e2e`: ripplecache end to end on a kind cluster. Needs a running Docker engine; kind and helm are
# installed with `go install` when missing (kubectl too is taken from PATH or built by tools/kube).
# Steps: create the kind cluster, build and load both images, helm install the chart, apply a
# CacheCluster and an annotated demo app, then check (test/e2e/checks.sh) that Redis really runs the
# eviction settings, that a change is applied live without restarts, and that sidecars invalidate
# each other. E2E_KEEP=1 keeps the cluster afterwards; E2E_CLUSTER names it (default ripplecache-e2e).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
CLUSTER=${E2E_CLUSTER:-ripplecache-e2e}
TAG=e2e-$(git rev-parse --short HEAD 2>/dev/null || echo dev)
KIND_VERSION=v0.30.0
log() { printf '\n[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[e2e] %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker is not installed: the kind end-to-end tests need a Docker engine"
docker info >/dev/null 2>&1 || die "docker cannot reach a Docker engine (is it running, and may this user use it?)"
bin="${XDG_CACHE_HOME:-$HOME/.cache}/ripplecache/e2e-bin"
mkdir -p "$bin"
export PATH="$bin:$PATH"
if ! command -v kind >/dev/null; then
  log "Installing kind ${KIND_VERSION} with go install"
  GOBIN="$bin" go install "sigs.k8s.io/kind@${KIND_VERSION}"
fi
if ! command -v helm >/dev/null || ! command -v kubectl >/dev/null; then
  log "Building helm and kubectl (tools/kube/build.sh; reused afterwards)"
  kube_bin=$(bash tools/kube/build.sh | tail -n 1)
  export PATH="$PATH:$kube_bin"
fi

if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "Creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --wait 120s
fi
export KUBECONFIG="${KUBECONFIG_E2E:-$(mktemp)}"
kind get kubeconfig --name "$CLUSTER" > "$KUBECONFIG"
cleanup() {
  if [ "${E2E_KEEP:-0}" = 1 ]; then log "Keeping cluster $CLUSTER (KUBECONFIG=$KUBECONFIG)"; else log "Deleting cluster $CLUSTER"; kind delete cluster --name "$CLUSTER"; fi
}
trap cleanup EXIT

log "Building images (tag $TAG)"
docker build -f images/operator.Dockerfile -t "ghcr.io/ripplecache/operator:$TAG" .
docker build -f images/sidecar.Dockerfile -t "ghcr.io/ripplecache/sidecar:$TAG" .
log "Loading images into kind"
kind load docker-image --name "$CLUSTER" "ghcr.io/ripplecache/operator:$TAG" "ghcr.io/ripplecache/sidecar:$TAG"

log "helm install"
helm upgrade --install ripplecache charts/ripplecache --namespace ripplecache-system --create-namespace \
  --set image.tag="$TAG" --set image.pullPolicy=Never \
  --set sidecar.image.tag="$TAG" \
  --wait --timeout 5m
kubectl -n ripplecache-system rollout status deployment/ripplecache --timeout=180s

log "Applying the CacheCluster and the demo app"
kubectl create namespace e2e --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f test/e2e/manifests/cachecluster.yaml
kubectl -n e2e wait cachecluster/e2e --for=jsonpath='{.status.phase}'=Ready --timeout=300s
kubectl apply -f test/e2e/manifests/demo-app.yaml
kubectl -n e2e rollout status deployment/demo-app --timeout=300s

log "Running the checks"
bash test/e2e/checks.sh
log "End-to-end tests passed"
