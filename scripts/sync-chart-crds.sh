#!/usr/bin/env bash
# Copies the generated CRDs (crds/*.yaml) into the Helm chart (charts/ripplecache/files/crds/), where the
# chart's templates/crds.yaml renders them: Helm can read only files inside the chart directory.
#
#   scripts/sync-chart-crds.sh           # copy (run after `npm run manifests`)
#   scripts/sync-chart-crds.sh --check   # exit 1 when the chart's copy differs from crds/
#
# test/integration/chart.test.ts fails when the two differ.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/crds"
dest="$root/charts/ripplecache/files/crds"

if [[ "${1:-}" == "--check" ]]; then
  if diff -r -q "$src" "$dest" >/dev/null 2>&1; then
    echo "charts/ripplecache/files/crds is up to date with crds/"
    exit 0
  fi
  echo "charts/ripplecache/files/crds differs from crds/; run: scripts/sync-chart-crds.sh" >&2
  diff -r "$src" "$dest" | head -40 >&2 || true
  exit 1
fi

mkdir -p "$dest"
rm -f "$dest"/*.yaml
cp "$src"/*.yaml "$dest"/
echo "Copied $(ls "$src"/*.yaml | wc -l) CRD file(s) from crds/ to charts/ripplecache/files/crds/"
