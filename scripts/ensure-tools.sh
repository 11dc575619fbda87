#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian/Ubuntu machine that has Go and Node/npm: redis-server,
# redis-sentinel (the baseline of bench:failover), make, PostgreSQL and promtool (system packages; their services are never started: the tests run
# their own servers, and of the prometheus package only promtool is used), the npm dependencies, and the
# Kubernetes control-plane binaries (built into a cache outside the clone by tools/kube/build.sh; the test
# harness finds them there, so nothing is exported). Where the machine can run a real node for
# `make e2e-local` (Linux, root, a cgroup hierarchy), also libseccomp-dev and nftables (apt) and the node
# tools (tools/node/build.sh: kubelet, kube-scheduler, kube-proxy, containerd, runc, CNI plugins, pause);
# RIPPLECACHE_SKIP_NODE_TOOLS=1 skips that part.
# Idempotent: every step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log() { printf '[ensure-tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Same choice as test/harness/postgres.ts: $RIPPLECACHE_PG_BIN, else 15, else the newest installed major.
pg_bin() {
  if [ -n "${RIPPLECACHE_PG_BIN:-}" ]; then echo "$RIPPLECACHE_PG_BIN"; return; fi
  if [ -x /usr/lib/postgresql/15/bin/postgres ]; then echo /usr/lib/postgresql/15/bin; return; fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

for tool in go node npm; do
  command -v "$tool" >/dev/null || { log "error: $tool is not installed (this script installs everything else)"; exit 1; }
done

# --- system packages ----------------------------------------------------------------------------------------
packages=()
command -v redis-server >/dev/null || packages+=(redis-server)
command -v redis-sentinel >/dev/null || packages+=(redis-sentinel) # the baseline of `npm run bench:failover`
command -v make >/dev/null || packages+=(make)
command -v flock >/dev/null || packages+=(util-linux)
command -v wrk >/dev/null || packages+=(wrk) # the load generator of `npm run bench:write`
command -v promtool >/dev/null || packages+=(prometheus) # promtool, for `make promtool-test`
# The local node of `make e2e-local` (test/harness/node.ts) runs only as root on Linux with cgroups.
node_tools=""
if [ "${RIPPLECACHE_SKIP_NODE_TOOLS:-}" != "1" ] && [ "$(uname -s)" = Linux ] && [ "$(id -u)" -eq 0 ] \
  && { [ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ]; }; then
  node_tools=1
  [ -f /usr/include/seccomp.h ] || packages+=(libseccomp-dev) # runc's seccomp support (cgo)
  command -v nft >/dev/null || packages+=(nftables)           # kube-proxy's nftables mode
  command -v gcc >/dev/null || packages+=(gcc libc6-dev)      # runc (cgo) and the static pause binary
  command -v pkg-config >/dev/null || packages+=(pkg-config)
fi
pg=$(pg_bin)
[ -n "$pg" ] && [ -x "$pg/postgres" ] && [ -x "$pg/initdb" ] || packages+=(postgresql-15)

if [ ${#packages[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "error: need root (or sudo) to install ${packages[*]}"; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  if [[ " ${packages[*]} " == *" postgresql-15 "* ]] && ! apt-cache show postgresql-15 >/dev/null 2>&1; then
    log "postgresql-15 is not packaged here; installing the distribution's default postgresql instead"
    packages=("${packages[@]/postgresql-15/postgresql}")
  fi
  log "installing ${packages[*]}"
  # Keep apt from starting redis-server / the PostgreSQL "main" cluster as system services.
  added_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  status=0
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" || status=$?
  [ -z "$added_policy" ] || "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
  [ "$status" -eq 0 ] || { log "error: apt-get install failed ($status)"; exit "$status"; }
  # If a service was started anyway (systemd ignores policy-rc.d), stop and disable it; never at boot either.
  for svc in redis-server redis-sentinel postgresql prometheus; do
    [[ " ${packages[*]} " == *" $svc"* ]] || continue
    if command -v systemctl >/dev/null && systemctl is-enabled --quiet "$svc" 2>/dev/null; then
      "${sudo[@]}" systemctl disable "$svc" >/dev/null 2>&1 || true
    fi
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
      log "stopping the $svc system service (tests start their own)"
      "${sudo[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
    elif command -v service >/dev/null && service "$svc" status >/dev/null 2>&1; then
      log "stopping the $svc system service (tests start their own)"
      "${sudo[@]}" service "$svc" stop >/dev/null 2>&1 || true
    fi
  done
else
  log "system packages: redis-server, redis-sentinel, make, PostgreSQL ($pg) and promtool are installed"
fi

# --- npm dependencies ---------------------------------------------------------------------------------------
# `npm ci` wipes node_modules, which would break anyone running tests in this checkout: only when needed.
if [ -d node_modules ] && npm ls --depth=0 >/dev/null 2>&1; then
  log "npm dependencies: up to date"
elif [ -f package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund
else
  log "npm install (no package-lock.json)"
  npm install --no-audit --no-fund
fi

# --- Kubernetes control plane -------------------------------------------------------------------------------
log "control-plane binaries (tools/kube/build.sh; the first build takes about 20 minutes on two cores, with a progress line at least every 30 s; later runs reuse the cache)"
bin=$(tools/kube/build.sh | tail -n 1)
log "control-plane binaries are in $bin"

# --- local node for `make e2e-local` ------------------------------------------------------------------------
if [ -n "$node_tools" ]; then
  log "node tools (tools/node/build.sh; the first build took 21 minutes on a busy two-core VM, see the README; later runs reuse the cache)"
  node_dir=$(tools/node/build.sh | tail -n 1)
  log "node tools are in $node_dir"
else
  log "node tools: skipped (make e2e-local needs Linux, root and cgroups, or RIPPLECACHE_SKIP_NODE_TOOLS=1 is set)"
fi
log "done"
