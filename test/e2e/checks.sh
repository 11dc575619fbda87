#!/usr/bin/env bash
# The end-to-end assertions, run by run.sh against a cluster where the chart, the CacheCluster `e2e`
# (namespace e2e) and the annotated demo-app Deployment are installed. Each check prints what it saw.
set -euo pipefail
ns=e2e
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
pass() { printf 'ok: %s\n' "$*"; }
pods=$(kubectl -n $ns get pods -l cache.ripplecache.io/cluster=e2e,app.kubernetes.io/component=server -o jsonpath='{.items[*].metadata.name}')
[ "$(wc -w <<<"$pods")" = 3 ] || fail "expected 3 Redis pods, got: $pods"

config_get() { # pod setting
  kubectl -n $ns exec "$1" -c redis -- sh -c "REDISCLI_AUTH=\"\$REDIS_PASSWORD\" redis-cli CONFIG GET $2" | tail -n 1
}
wait_config() { # setting value
  for pod in $pods; do
    for _ in $(seq 1 60); do [ "$(config_get "$pod" "$1")" = "$2" ] && break; sleep 2; done
    [ "$(config_get "$pod" "$1")" = "$2" ] || fail "$pod: CONFIG GET $1 is $(config_get "$pod" "$1"), expected $2"
  done
  pass "every Redis pod reports $1 = $2"
}

# 1. The eviction settings from the spec are what Redis runs, on the primary and both replicas.
wait_config maxmemory 67108864
wait_config maxmemory-policy allkeys-lru
[ "$(kubectl -n $ns exec e2e-1 -c redis -- sh -c 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ROLE' | head -n 1)" = slave ] || fail "e2e-1 is not a replica"
pass "e2e-1 replicates from e2e-0"

# 2. A change is applied live: same pods (uids), no restarts, the pod template unchanged.
uids_before=$(kubectl -n $ns get pods -l cache.ripplecache.io/cluster=e2e,app.kubernetes.io/component=server -o jsonpath='{.items[*].metadata.uid}')
gen_before=$(kubectl -n $ns get statefulset e2e -o jsonpath='{.metadata.generation}')
kubectl -n $ns patch cachecluster e2e --type=merge -p '{"spec":{"eviction":{"policy":"allkeys-lfu","maxMemory":"96Mi"}}}'
wait_config maxmemory 100663296
wait_config maxmemory-policy allkeys-lfu
kubectl -n $ns wait cachecluster/e2e --for=condition=ConfigApplied --timeout=120s
uids_after=$(kubectl -n $ns get pods -l cache.ripplecache.io/cluster=e2e,app.kubernetes.io/component=server -o jsonpath='{.items[*].metadata.uid}')
gen_after=$(kubectl -n $ns get statefulset e2e -o jsonpath='{.metadata.generation}')
[ "$uids_before" = "$uids_after" ] || fail "Redis pods were replaced by an eviction change"
[ "$gen_before" = "$gen_after" ] || fail "the StatefulSet changed (generation $gen_before -> $gen_after)"
restarts=$(kubectl -n $ns get pods -l cache.ripplecache.io/cluster=e2e -o jsonpath='{.items[*].status.containerStatuses[*].restartCount}')
for r in $restarts; do [ "$r" = 0 ] || fail "a Redis container restarted ($restarts)"; done
pass "eviction change applied live: no pod replaced or restarted"

# 3. Sidecars were injected and invalidate each other.
app_pods=($(kubectl -n $ns get pods -l app=demo-app -o jsonpath='{.items[*].metadata.name}'))
[ "${#app_pods[@]}" -ge 2 ] || fail "expected 2 demo-app pods"
a=${app_pods[0]}; b=${app_pods[1]}
for p in "$a" "$b"; do
  # A native sidecar: an init container with restartPolicy Always.
  kubectl -n $ns get pod "$p" -o jsonpath='{range .spec.initContainers[*]}{.name}={.restartPolicy}{"\n"}{end}' \
    | grep -qx 'ripplecache-sidecar=Always' || fail "$p has no native sidecar"
done
pass "sidecar injected into $a and $b (native sidecar)"
curl_in() { kubectl -n $ns exec "$1" -c app -- curl -sS "${@:2}"; }
curl_in "$a" -X PUT --data-binary v1 -H 'Content-Type: text/plain' http://127.0.0.1:7070/v1/cache/greeting >/dev/null
[ "$(curl_in "$b" http://127.0.0.1:7070/v1/cache/greeting)" = v1 ] || fail "$b did not read v1"
[ "$(curl_in "$b" http://127.0.0.1:7070/v1/cache/greeting)" = v1 ] || fail "$b did not read v1 from L1"
curl_in "$a" -X PUT --data-binary v2 -H 'Content-Type: text/plain' http://127.0.0.1:7070/v1/cache/greeting >/dev/null
for _ in $(seq 1 20); do [ "$(curl_in "$b" http://127.0.0.1:7070/v1/cache/greeting)" = v2 ] && break; sleep 0.5; done
[ "$(curl_in "$b" http://127.0.0.1:7070/v1/cache/greeting)" = v2 ] || fail "$b still serves the old value after a write on $a"
pass "a write on $a invalidated $b's L1"

# 4. The sidecar's metrics and probe port (rc-metrics, 7071) answers on the pod IP; its cache API does not.
[ "$(kubectl -n $ns get pods -l app=demo-app,cache.ripplecache.io/sidecar=injected -o name | wc -l)" -ge 2 ] \
  || fail "the demo-app pods do not carry cache.ripplecache.io/sidecar=injected"
ip_b=$(kubectl -n $ns get pod "$b" -o jsonpath='{.status.podIP}')
curl_in "$a" "http://$ip_b:7071/metrics" | grep -q '^ripplecache_sidecar_requests_total' || fail "no sidecar metrics on $ip_b:7071"
[ "$(curl_in "$a" -o /dev/null -w '%{http_code}' "http://$ip_b:7071/v1/cache/greeting")" = 404 ] || fail "$ip_b:7071 serves the cache API"
if kubectl -n $ns exec "$a" -c app -- curl -sS --max-time 3 "http://$ip_b:7070/healthz" >/dev/null 2>&1; then
  fail "the cache API of $b is reachable from another pod on $ip_b:7070"
fi
pass "$b serves /metrics on $ip_b:7071 and keeps its cache API on loopback"
