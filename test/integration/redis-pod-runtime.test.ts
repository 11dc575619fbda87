/**
 * The Redis container as the pod template describes it, run for real without a kubelet: the exact
 * command (the entrypoint script) and the rendered `redis.conf`, as the pod's uid and gid, on a read-only
 * root filesystem, with the template's volumes (an emptyDir at the data mount, the ConfigMap at the
 * config mount, read-only). A primary (pod 0, started as every pod is, a replica of the placeholder, then
 * promoted with REPLICAOF NO ONE as the operator does) and a replica (a second redis-server from the same
 * root, as pod 1 would be, but following 127.0.0.1: there is no cluster DNS here) must start, replicate (the
 * replica writes the received RDB into the data dir) and BGSAVE.
 *
 * Debian's redis-server stands in for the image's (the same major version line); the root is a private
 * mount namespace (`unshare -m -n`) with the host's /usr bound read-only, so this needs root and is
 * skipped otherwise, saying so. Everything runs in its own network namespace: port 6379 of the config
 * never clashes with anything.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderRedisConf } from '../../operator/src/desired/redis-conf.js';
import { desiredStatefulSet } from '../../operator/src/desired/stateful-set.js';
import { cacheCluster, inNamespace, withReplicas, withTopology, withUid } from '../fixtures/cache-cluster.js';
import { trackTempDir } from '../harness/tools.js';

const isRoot = process.getuid?.() === 0;

/** Sets up the pod's filesystem in a private mount namespace, runs the pods, prints KEY=value lines. */
const RUNNER = String.raw`
set -eu
dir="$1"; R="$dir/root"
ip link set lo up
mkdir -p "$R"; mount -t tmpfs tmpfs "$R"
for d in usr bin sbin lib lib64; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$R/$d"
  elif [ -d "/$d" ]; then mkdir "$R/$d"; mount --rbind "/$d" "$R/$d"; mount -o remount,ro,bind "$R/$d"; fi
done
mkdir -p "$R/dev" "$R/proc" "$R$DATA_MOUNT" "$R$CONF_MOUNT"
mount --rbind /dev "$R/dev"
mount -t proc proc "$R/proc"
# emptyDir with fsGroup: world-writable, setgid, owned by the fsGroup.
mount -t tmpfs -o "mode=2777,gid=$FS_GROUP" tmpfs "$R$DATA_MOUNT"
mount --bind "$dir/config" "$R$CONF_MOUNT"; mount -o remount,ro,bind "$R$CONF_MOUNT"
if [ "$READ_ONLY_ROOT" = true ]; then mount -o remount,ro,bind "$R"; fi
# Not a shell function: so that $! is the process that becomes redis-server (chroot, setpriv, sh exec).
as_pod="setpriv --reuid $RUN_AS_USER --regid $RUN_AS_GROUP --groups $FS_GROUP"
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null || true; done' EXIT
POD_NAME=cache-0 chroot "$R" $as_pod sh -c "$(cat "$dir/command")" >"$dir/primary.log" 2>&1 &
pids="$pids $!"; primary=$!
chroot "$R" $as_pod redis-server "$CONF_MOUNT/redis.conf" --port 6380 --replicaof 127.0.0.1 6379 >"$dir/replica.log" 2>&1 &
pids="$pids $!"; replica=$!
for i in $(seq 1 50); do
  [ "$(redis-cli -p 6379 ping 2>/dev/null)" = PONG ] && [ "$(redis-cli -p 6380 ping 2>/dev/null)" = PONG ] && break
  sleep 0.2
done
echo "PRIMARY_IDS=$(awk '/^Uid:/{u=$2} /^Gid:/{g=$2} END{print u":"g}' /proc/$primary/status)"
echo "REPLICA_IDS=$(awk '/^Uid:/{u=$2} /^Gid:/{g=$2} END{print u":"g}' /proc/$replica/status)"
# Every pod starts as a replica of the placeholder (redis.conf); the operator makes pod 0 the primary.
echo "STARTED_ROLE=$(redis-cli -p 6379 role | head -1)"
redis-cli -p 6379 replicaof no one >/dev/null
# The rendered fence (durability replicated): no write before a replica is attached.
echo "EARLY_SET=$(redis-cli -p 6379 set early-key x 2>&1)"
# Replication starts after repl-diskless-sync-delay (5 s by default).
link=down
for i in $(seq 1 60); do
  redis-cli -p 6380 info replication | grep -q 'master_link_status:up' && { link=up; break; }
  sleep 0.5
done
echo "LINK=$link"
# SET and WAIT on one connection: WAIT waits for what its own connection wrote (a fresh one returns at once).
for i in $(seq 1 20); do
  out=$(printf 'SET probe-key probe-value\nWAIT 1 5000\n' | redis-cli -p 6379 2>&1); set=$(echo "$out" | head -1)
  [ "$set" = OK ] && break
  sleep 0.5
done
echo "SET=$set"
echo "WAIT=$(echo "$out" | sed -n 2p)"
echo "REPLICA_GET=$(redis-cli -p 6380 get probe-key)"
redis-cli -p 6379 bgsave >/dev/null
for i in $(seq 1 25); do [ -e "$R$DATA_MOUNT/dump.rdb" ] && break; sleep 0.2; done
echo "DUMP=$(stat -c '%u' "$R$DATA_MOUNT/dump.rdb" 2>/dev/null || echo missing)"
echo "ROOT_WRITE=$(chroot "$R" sh -c ': > /probe' 2>&1 && echo writable || true)"
redis-cli -p 6380 shutdown nosave >/dev/null 2>&1 || true
redis-cli -p 6379 shutdown nosave >/dev/null 2>&1 || true
`;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 90_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr }),
    );
  });
}

describe('the Redis container of the pod template, run as the template says', () => {
  it.skipIf(!isRoot)(
    'runs as the redis user on a read-only root; replicates and saves into the data emptyDir (needs root)',
    async () => {
      const cc = cacheCluster('cache', inNamespace('ns'), withUid('u-1'), withTopology('replication'), withReplicas(1));
      const pod = desiredStatefulSet(cc).spec.template.spec;
      const redis = pod.containers.find((c) => c.name === 'redis')!;
      const sc = pod.securityContext;
      // What a kubelet would enforce: a non-root uid, set by the pod (the image's entrypoint is bypassed).
      expect(sc?.runAsNonRoot).toBe(true);
      expect(sc?.runAsUser).toBeGreaterThan(0);
      expect(redis.securityContext?.readOnlyRootFilesystem).toBe(true);
      const mount = (volume: string) => redis.volumeMounts!.find((m) => m.name === volume)!.mountPath;
      expect(pod.volumes!.find((v) => v.name === 'data')!.emptyDir).toBeDefined();

      const dir = mkdtempSync(join(tmpdir(), 'ripplecache-redis-pod-'));
      trackTempDir(dir);
      writeFileSync(join(dir, 'command'), redis.command![2]!);
      writeFileSync(join(dir, 'runner.sh'), RUNNER);
      mkdirSync(join(dir, 'config'));
      writeFileSync(
        join(dir, 'config', 'redis.conf'),
        renderRedisConf(cc, { maxmemory: 64 * 1024 * 1024, maxmemoryPolicy: 'allkeys-lru' }),
      );
      const r = await run('unshare', ['-m', '-n', '--propagation', 'private', 'sh', join(dir, 'runner.sh'), dir], {
        ...process.env,
        RUN_AS_USER: String(sc!.runAsUser),
        RUN_AS_GROUP: String(sc!.runAsGroup),
        FS_GROUP: String(sc!.fsGroup),
        READ_ONLY_ROOT: String(redis.securityContext!.readOnlyRootFilesystem),
        DATA_MOUNT: mount('data'),
        CONF_MOUNT: mount('config'),
      });
      const logs = ['primary.log', 'replica.log'].map((f) => {
        try {
          return `${f}:\n${readFileSync(join(dir, f), 'utf8')}`;
        } catch {
          return `${f}: (none)`;
        }
      });
      const context = `${r.out}\n${logs.join('\n')}`;
      expect(r.code, context).toBe(0);
      const value = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(r.out)?.[1];
      const ids = `${sc!.runAsUser}:${sc!.runAsGroup}`;
      expect(value('PRIMARY_IDS'), context).toBe(ids);
      expect(value('REPLICA_IDS'), context).toBe(ids);
      // It started without a role: a replica of the placeholder, until REPLICAOF NO ONE (the operator's part).
      expect(value('STARTED_ROLE'), context).toBe('slave');
      expect(value('EARLY_SET'), context).toMatch(/NOREPLICAS/);
      expect(value('LINK'), context).toBe('up');
      expect(value('SET'), context).toBe('OK');
      expect(value('WAIT'), context).toBe('1');
      expect(value('REPLICA_GET'), context).toBe('probe-value');
      expect(value('DUMP'), context).toBe(String(sc!.runAsUser));
      expect(value('ROOT_WRITE'), context).toMatch(/Read-only file system/);
      expect(logs.join('\n')).not.toMatch(/Permission denied|Read-only file system|Can't open/i);
    },
  );
});
