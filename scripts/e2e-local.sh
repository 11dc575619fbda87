#!/usr/bin/env bash
# `make e2e-local`: the end-to-end tests on real pods (kubelet, containerd, runc, kube-proxy, kube-scheduler on
# this machine, next to the test harness's control plane; see test/harness/node.ts). Needs Linux and root, no
# Docker. Builds the node tools into ~/.cache/ripplecache on first use (tools/node/build.sh; see the README for
# the cold build time). When the machine cannot run a node it prints `e2e-local: SKIPPED: <reason>` and exits
# 0 with --skip-if-unsupported (what .ci/run uses), or exits 1 without it. Other arguments go to vitest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
skip_ok=""
args=()
for a in "$@"; do
  if [ "$a" = "--skip-if-unsupported" ]; then skip_ok=1; else args+=("$a"); fi
done

reason=$(npx tsx -e "import('./test/harness/node.ts').then((m) => { const s = m.localNodeSupport(); console.log(s.ok ? '' : s.reason); })")
if [ -n "$reason" ]; then
  echo "e2e-local: SKIPPED: this machine cannot run a local node: $reason" >&2
  [ -n "$skip_ok" ] && exit 0
  exit 1
fi
bash tools/node/build.sh >/dev/null
# The images are made from the compiled dist/ and the operator's bundle (as images/*.Dockerfile do).
npm run build
RIPPLECACHE_E2E_LOCAL=1 npx vitest run --project e2e-local "${args[@]}"
